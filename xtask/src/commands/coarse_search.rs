//! `cargo xtask coarse-search`: the coarse lambda search (the report's table 1): 10 lambdas 10^U(-5,-1), 45000/5000 split. Resumable: re-running after an interruption
//! finishes only the unfinished trials. Writes `<results-dir>/coarse-search/table.csv`.

use std::path::PathBuf;

use super::train;

/// Command-line flags.
#[derive(clap::Args)]
pub struct Args {
    /// The search config (default: experiments/coarse-search.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub common: train::Common,
}

/// Run the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    args.common.run_search("coarse-search", args.config, None)
}
