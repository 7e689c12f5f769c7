//! `cargo xtask evaluate WEIGHTS... [--split test|validation|train]`: the
//! accuracy, loss, per-class accuracy and confusion matrix of one trained
//! network, or of several averaged (an ensemble).

use std::path::PathBuf;

use experiment::data::DataSource;
use experiment::inference::{self, EvalSplit};

use super::paths;

/// Which images to score.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Split {
    /// test_batch.bin (10000 images).
    Test,
    /// The validation rows of the split the networks were trained with.
    Validation,
    /// The training rows of that split.
    Train,
}

/// Command-line flags.
#[derive(clap::Args)]
pub struct Args {
    /// One or more weights.safetensors files written by `train` or a search;
    /// several are averaged (softmax outputs), e.g. the 3 seeds of final-train.
    #[arg(required = true)]
    pub weights: Vec<PathBuf>,
    /// The images to score.
    #[arg(long, value_enum, default_value = "test")]
    pub split: Split,
    /// CIFAR-10 folder holding `cifar-10-batches-bin/` (default: $CIFAR10_DIR, else <root>/data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Where the CSV files and pictures go (default:
    /// <root>/results/evaluate/<run name>[-ensemble-of-N]-<split>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Run the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    let split = match args.split {
        Split::Test => EvalSplit::Test,
        Split::Validation => EvalSplit::Validation,
        Split::Train => EvalSplit::Train,
    };
    let data = DataSource::new(&paths::data_dir(args.data_dir));
    let out = match args.out {
        Some(out) => out,
        None => {
            let first = inference::load_network(&args.weights[0])?;
            let ensemble = match args.weights.len() {
                1 => String::new(),
                n => format!("-ensemble-of-{n}"),
            };
            paths::results_dir(None).join("evaluate").join(format!(
                "{}{ensemble}-{}",
                first.name,
                split.name()
            ))
        }
    };
    let done = inference::evaluate(&args.weights, split, &data, &out)?;
    print!("{}", done.summary());
    Ok(())
}
