//! `cargo xtask train CONFIG.toml`: one training run described by a TOML file
//! (see `experiments/clr-1cycle.toml`), written to `<results-dir>/<name>/`.
//! Also holds the flags every experiment command shares ([`Common`]).

use std::path::PathBuf;
use std::sync::Once;

use experiment::commands::{self, Options, Work};
use experiment::data::DataSource;

use super::paths;

/// Flags shared by `train`, `coarse-search`, `fine-search`, `final-train` and `reproduce`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct Common {
    /// CIFAR-10 folder holding `cifar-10-batches-bin/` (default: $CIFAR10_DIR, else <root>/data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// When the data dir holds no CIFAR-10: get it from this local cifar-10-binary.tar.gz (or
    /// extracted cifar-10-batches-bin/) instead of downloading it (default: $CIFAR10_FROM).
    #[arg(long, value_name = "PATH")]
    pub data_from: Option<PathBuf>,
    /// Where result folders go (default: <root>/results).
    #[arg(long)]
    pub results_dir: Option<PathBuf>,
    /// Override the config's seed (a run's training seed; a search's plan seed); 0 ..= 2^63-1.
    #[arg(long, value_parser = parse_seed)]
    pub seed: Option<u64>,
    /// Worker threads: parallel runs of a search, or threads of one run (default: all cores;
    /// at most 4 per core).
    #[arg(long, value_parser = parse_jobs)]
    pub jobs: Option<usize>,
}

/// The most `--jobs` a machine with `cores` cores accepts: 4 per core. More
/// workers than that only add threads (a search's table is the same for any
/// `--jobs`), and absurd values would start thousands of threads.
pub fn max_jobs(cores: usize) -> usize {
    4 * cores.max(1)
}

/// `--jobs`: a whole number from 1 to [`max_jobs`] of this machine's cores.
fn parse_jobs(text: &str) -> Result<usize, String> {
    let cores = commands::all_cores();
    let max = max_jobs(cores);
    match text.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "--jobs must be a whole number from 1 to {max} (4 per core; this machine has \
             {cores} core(s)), got {text:?}"
        )),
    }
}

/// `--seed`: a whole number a TOML config can hold (0 ..= 2^63-1).
fn parse_seed(text: &str) -> Result<u64, String> {
    let max = experiment::config::MAX_SEED;
    match text.parse::<u64>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(format!(
            "--seed must be a whole number from 0 to {max}, got {text:?}"
        )),
    }
}

/// `--lambda`: a finite number >= 0.
pub fn parse_lambda(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
        _ => Err(format!(
            "--lambda must be a finite number >= 0 (e.g. 0.0065), got {text:?}"
        )),
    }
}

impl Common {
    /// The data source these flags point at.
    pub fn data_source(&self) -> DataSource {
        DataSource::new(&paths::data_dir(self.data_dir.clone()))
    }

    /// When the data dir holds no CIFAR-10, fetch it first (verified and
    /// atomic, as `fetch-data` does; see [`cifar::fetch::ensure`]).
    pub fn ensure_data(&self) -> anyhow::Result<()> {
        let dir = paths::data_dir(self.data_dir.clone());
        cifar::fetch::ensure(
            &dir,
            self.data_from.clone(),
            Some(cifar::RECORDS_PER_FILE),
            cifar::fetch::Display::Auto,
        )?;
        Ok(())
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
        explain_interrupt(Work::Search);
        let path = config.unwrap_or_else(|| {
            paths::project_root().join(format!("experiments/{default_name}.toml"))
        });
        let config = commands::load_search(&path, self.seed, lambda)?;
        self.ensure_data()?;
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
            jobs: self.jobs.unwrap_or_else(commands::all_cores),
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
/// atomically and a run folder is swapped in whole, so stopping at any
/// moment is safe). The first call in a process decides the message.
pub fn explain_interrupt(work: Work) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = ctrlc::set_handler(move || {
            // Free this process's claimed trials for the next run at once.
            experiment::claim::release_all();
            eprintln!("\n{}", work.interrupt_message());
            std::process::exit(130);
        });
    });
}

/// Run the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    explain_interrupt(Work::Run);
    // A file with a `[lambdas]` or `[space]` table is a search (e.g.
    // experiments/beyond.toml, several seeds of one recipe): run it as one.
    if commands::is_search_config(&args.config) {
        return args
            .common
            .run_search("beyond", Some(args.config.clone()), None);
    }
    // A bad config is reported before any data is fetched.
    experiment::config::load::<experiment::config::RunConfig>(&args.config)?;
    args.common.ensure_data()?;
    let data = args.common.data_source();
    commands::train(&args.config, &args.common.options(&data))?;
    Ok(())
}
