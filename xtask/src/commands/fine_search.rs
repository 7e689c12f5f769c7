//! `cargo xtask fine-search`: the fine lambda search (the report's table 2) around the coarse search's best lambda. Resumable: re-running after an interruption
//! finishes only the unfinished trials. Writes `<results-dir>/fine-search/table.csv`.

use std::path::PathBuf;

use super::train;

/// Command-line flags.
#[derive(clap::Args)]
pub struct Args {
    /// The search config (default: experiments/fine-search.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub common: train::Common,
}

/// Run the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    args.common.run_search("fine-search", args.config, None)
}
