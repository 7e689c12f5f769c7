//! `cargo xtask slurm SEARCH`: run a search as a Slurm job array. Prepares
//! the search folder (config and plan), saves a copy of this binary and two
//! batch scripts in `<search>/slurm/` (see [`experiment::slurm`]), submits the
//! array of workers and a collect job depending on it (`afterok`, with
//! `--kill-on-invalid-dep=yes` so a failed or cancelled worker cancels the
//! collect instead of leaving it pending for ever), and prints how to follow them.

use std::path::{Path, PathBuf};

use anyhow::Context;
use experiment::commands;
use experiment::slurm::{self, SlurmJob};
use experiment::worker;

use super::{paths, train, worker as worker_cmd};

/// Command-line flags.
#[derive(clap::Args)]
pub struct Args {
    /// A search: `coarse-search`, `fine-search`, `final-train` (the config
    /// experiments/<name>.toml), or the path of a search config.
    pub search: String,
    /// Array tasks, i.e. worker processes.
    #[arg(long, default_value_t = 2)]
    pub array: usize,
    /// Slurm partition (default: the cluster's default partition).
    #[arg(long)]
    pub partition: Option<String>,
    /// Time limit of each task, in Slurm's format (e.g. 1:00:00).
    #[arg(long)]
    pub time: Option<String>,
    /// CPUs per task; each worker trains that many trials at a time.
    #[arg(long, default_value_t = 1)]
    pub cpus_per_task: usize,
    /// Seconds a claim stays valid without renewal (default:
    /// $CIFAR_CLR_LEASE_SECONDS, else 60).
    #[arg(long)]
    pub lease_seconds: Option<f64>,
    /// Write the folder and scripts, print the sbatch commands, submit nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub common: train::Common,
}

/// The config file `search` names.
fn config_path(search: &str) -> PathBuf {
    let path = PathBuf::from(search);
    if path.extension().is_some_and(|e| e == "toml") || path.is_file() {
        path
    } else {
        paths::project_root().join(format!("experiments/{search}.toml"))
    }
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))
}

/// Run the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.array >= 1, "--array must be at least 1");
    anyhow::ensure!(
        args.cpus_per_task >= 1,
        "--cpus-per-task must be at least 1"
    );
    let lease = worker_cmd::lease(args.lease_seconds)?;
    let config = commands::load_search(&config_path(&args.search), args.common.seed, None)?;
    let data = args.common.data_source();
    data.check_present()?;
    let results_dir = absolute(&paths::results_dir(args.common.results_dir.clone()))?;
    let (dir, plan) = commands::prepare_search(&config, &results_dir)?;
    let n_left = worker::unfinished(&dir, &plan).len();

    let job = SlurmJob {
        name: config.name.clone(),
        search_dir: dir.clone(),
        program: slurm::slurm_dir(&dir).join("xtask"),
        data_dir: absolute(data.dir())?,
        n_workers: args.array,
        cpus_per_task: args.cpus_per_task,
        partition: args.partition,
        time: args.time,
        lease_seconds: lease.0.as_secs_f64(),
    };
    slurm::launch(&job, plan.len(), n_left, args.dry_run)?;
    Ok(())
}
