//! `cargo xtask final-train`: the report's figure 4, the fine search's best
//! lambda (or `--lambda`) on 49000 images, trained with several seeds in
//! parallel; prints test accuracy per seed and as mean ± std.

use std::path::PathBuf;

use super::train;

/// Command-line flags.
#[derive(clap::Args)]
pub struct Args {
    /// The config (default: experiments/final-train.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Train with this lambda instead of the fine search's best.
    #[arg(long, value_parser = train::parse_lambda)]
    pub lambda: Option<f64>,
    #[command(flatten)]
    pub common: train::Common,
}

/// Run the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    args.common
        .run_search("final-train", args.config, args.lambda)
}
