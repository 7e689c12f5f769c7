//! `cargo xtask worker SEARCH`: one worker process on a prepared search
//! folder: claims unfinished trials until none is left, then exits 0. Any
//! number may run at once, on any machines sharing the folder (by hand, or
//! as the tasks of `cargo xtask slurm`'s array job); `cargo xtask collect`
//! then writes the table.

use std::path::{Path, PathBuf};
use std::time::Duration;

use experiment::claim::Lease;
use experiment::commands;

use super::{paths, train};

/// Command-line flags.
#[derive(clap::Args)]
pub struct Args {
    /// The search folder (holding plan.csv), or a search name under --results-dir.
    pub search: PathBuf,
    /// Seconds a claim stays valid without renewal; a dead worker's trial is
    /// taken over after this (default: $CIFAR_CLR_LEASE_SECONDS, else 60).
    #[arg(long)]
    pub lease_seconds: Option<f64>,
    #[command(flatten)]
    pub common: train::Common,
}

/// The search folder `search` names: itself when it is a folder, else
/// `<results-dir>/<search>`.
pub fn search_dir(search: &Path, results_dir: Option<PathBuf>) -> PathBuf {
    if search.is_dir() {
        search.to_path_buf()
    } else {
        paths::results_dir(results_dir).join(search)
    }
}

/// The lease of `--lease-seconds`, else of the environment.
pub fn lease(seconds: Option<f64>) -> anyhow::Result<Lease> {
    match seconds {
        None => Ok(Lease::from_env()),
        Some(s) if s.is_finite() && s > 0.0 => Ok(Lease(Duration::from_secs_f64(s))),
        Some(s) => anyhow::bail!("--lease-seconds must be a positive number of seconds, not {s}"),
    }
}

/// Run the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    train::explain_interrupt(experiment::commands::Work::Search);
    let dir = search_dir(&args.search, args.common.results_dir.clone());
    let lease = lease(args.lease_seconds)?;
    let data = args.common.data_source();
    commands::worker(&dir, &args.common.options(&data), lease)?;
    Ok(())
}
