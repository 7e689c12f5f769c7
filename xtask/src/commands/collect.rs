//! `cargo xtask collect SEARCH`: write a search's `table.csv`, `lambdas.csv`
//! and pictures from its trial folders (after workers, or again after a local
//! run). Fails listing the unfinished trials when some are.

use std::path::PathBuf;

use experiment::commands;

use super::worker;

/// Command-line flags.
#[derive(clap::Args)]
pub struct Args {
    /// The search folder (holding plan.csv), or a search name under --results-dir.
    pub search: PathBuf,
    /// Where result folders go (default: <root>/results).
    #[arg(long)]
    pub results_dir: Option<PathBuf>,
}

/// Run the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    let dir = worker::search_dir(&args.search, args.results_dir);
    commands::collect(&dir)?;
    Ok(())
}
