//! `cargo xtask final-train`: the report's figure 4, the fine search's best
//! lambda (or `--lambda`) on 49000 images, trained with several seeds in
//! parallel; prints test accuracy per seed and as mean ± std.

use std::path::PathBuf;

use experiment::commands;

use super::{paths, train};

/// Command-line flags.
#[derive(clap::Args)]
pub struct Args {
    /// The config (default: experiments/final-train.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Train with this lambda instead of the fine search's best.
    #[arg(long)]
    pub lambda: Option<f64>,
    #[command(flatten)]
    pub common: train::Common,
}

/// Run the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    train::explain_interrupt();
    let path = args
        .config
        .unwrap_or_else(|| paths::project_root().join("experiments/final-train.toml"));
    let config = commands::load_search(&path, args.common.seed, args.lambda)?;
    let data = args.common.data_source();
    commands::search(&config, &args.common.options(&data))?;
    Ok(())
}
