//! `cargo xtask lr-range-test [CONFIG]`: Smith's learning-rate range test on
//! a run config (default: the report's setting, experiments/clr-1cycle.toml).

use std::path::PathBuf;

use experiment::lr_range::{self, RangeSpec};

use super::paths;
use super::train::Common;

/// Command-line flags.
#[derive(clap::Args)]
pub struct Args {
    /// A run's TOML config: its network, data split, batch size, lambda,
    /// regularisation, optimizer and seed are used; its schedule is replaced
    /// by the rising eta. A search config (e.g. experiments/beyond.toml)
    /// stands for its first trial.
    pub config: Option<PathBuf>,
    /// First learning rate.
    #[arg(long, default_value_t = RangeSpec::default().eta_start)]
    pub eta_start: f64,
    /// Last learning rate (eta rises exponentially; the test stops earlier
    /// when the smoothed loss exceeds 4x its minimum).
    #[arg(long, default_value_t = RangeSpec::default().eta_end)]
    pub eta_end: f64,
    /// Epochs over which eta rises.
    #[arg(long, default_value_t = RangeSpec::default().epochs)]
    pub epochs: usize,
    /// Measure validation accuracy every this many updates.
    #[arg(long, default_value_t = RangeSpec::default().eval_every)]
    pub eval_every: u64,
    /// At most this many validation images per measurement.
    #[arg(long, default_value_t = RangeSpec::default().eval_images)]
    pub eval_images: usize,
    #[command(flatten)]
    pub common: Common,
}

/// Run the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    let config = args
        .config
        .unwrap_or_else(|| paths::project_root().join("experiments/clr-1cycle.toml"));
    let spec = RangeSpec {
        eta_start: args.eta_start,
        eta_end: args.eta_end,
        epochs: args.epochs,
        eval_every: args.eval_every,
        eval_images: args.eval_images,
    };
    args.common.ensure_data()?;
    let data = args.common.data_source();
    let (suggestion, dir) = lr_range::command(&config, &spec, &args.common.options(&data))?;
    print!("{}", lr_range::summary(suggestion.as_ref(), &dir));
    Ok(())
}
