//! `cargo xtask train CONFIG.toml`: one training run described by a TOML file
//! (see `experiments/clr-1cycle.toml`), written to `<results-dir>/<name>/`.
//! Also holds the flags every experiment command shares ([`Common`]).

use std::path::PathBuf;
use std::sync::Once;

use experiment::commands::{self, Options};
use experiment::data::DataSource;

use super::paths;

/// Flags shared by `train`, `coarse-search`, `fine-search`, `final-train` and `reproduce`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct Common {
    /// CIFAR-10 folder holding `cifar-10-batches-bin/` (default: $CIFAR10_DIR, else <root>/data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Where result folders go (default: <root>/results).
    #[arg(long)]
    pub results_dir: Option<PathBuf>,
    /// Override the config's seed (a run's training seed; a search's plan seed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Worker threads: parallel runs of a search, or threads of one run (default: all cores).
    #[arg(long)]
    pub jobs: Option<usize>,
}

impl Common {
    /// The data source these flags point at.
    pub fn data_source(&self) -> DataSource {
        DataSource::new(&paths::data_dir(self.data_dir.clone()))
    }

    /// Run the search config at `config` (default `experiments/<default_name>.toml`),
    /// optionally with `lambda` fixed: the body of `coarse-search`,
    /// `fine-search` and `final-train`.
    pub fn run_search(
        &self,
        default_name: &str,
        config: Option<PathBuf>,
        lambda: Option<f64>,
    ) -> anyhow::Result<()> {
        explain_interrupt();
        let path = config.unwrap_or_else(|| {
            paths::project_root().join(format!("experiments/{default_name}.toml"))
        });
        let config = commands::load_search(&path, self.seed, lambda)?;
        let data = self.data_source();
        commands::search(&config, &self.options(&data))?;
        Ok(())
    }

    /// The experiment options for `data`.
    pub fn options<'a>(&self, data: &'a DataSource) -> Options<'a> {
        Options {
            data,
            results_dir: paths::results_dir(self.results_dir.clone()),
            repo_root: paths::project_root(),
            seed: self.seed,
            jobs: self.jobs.unwrap_or_else(commands::all_cores).max(1),
        }
    }
}

/// Command-line flags.
#[derive(clap::Args)]
pub struct Args {
    /// The run's TOML config, e.g. experiments/clr-1cycle.toml.
    pub config: PathBuf,
    #[command(flatten)]
    pub common: Common,
}

/// On Ctrl-C, say what is kept before exiting (every result file is written
/// atomically, so stopping at any moment is safe).
pub fn explain_interrupt() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = ctrlc::set_handler(|| {
            eprintln!(
                "\ninterrupted: finished runs are recorded; re-run the same command to finish \
                 the remaining ones"
            );
            std::process::exit(130);
        });
    });
}

/// Run the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    explain_interrupt();
    // A file with a `[lambdas]` table is a search over seeds (e.g.
    // experiments/beyond.toml, several seeds of one recipe): run it as one.
    let is_search = std::fs::read_to_string(&args.config)
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok())
        .is_some_and(|table| table.contains_key("lambdas"));
    if is_search {
        return args
            .common
            .run_search("beyond", Some(args.config.clone()), None);
    }
    let data = args.common.data_source();
    commands::train(&args.config, &args.common.options(&data))?;
    Ok(())
}
