//! `cargo xtask predict WEIGHTS... [IMAGE...] [--test-index N]`: the top-3
//! classes a trained network (or several, averaged) gives a PNG or JPEG
//! picture, or a test image.

use std::path::PathBuf;

use experiment::data::DataSource;
use experiment::inference;

use super::paths;

/// Command-line flags.
#[derive(clap::Args)]
pub struct Args {
    /// weights.safetensors files (several are averaged), then the pictures
    /// (PNG or JPEG; centre-cropped to a square and resized to 32x32 with a
    /// triangle filter). Files ending in .safetensors are weights.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Also (or instead) ask about test image N (0-based), showing its true label.
    #[arg(long)]
    pub test_index: Option<usize>,
    /// CIFAR-10 folder, for --test-index (default: $CIFAR10_DIR, else <root>/data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// How many classes to show per image.
    #[arg(long, default_value_t = 3)]
    pub top: usize,
}

/// Run the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    let (weights, pictures): (Vec<PathBuf>, Vec<PathBuf>) = args
        .files
        .into_iter()
        .partition(|p| p.extension().is_some_and(|e| e == "safetensors"));
    anyhow::ensure!(
        !weights.is_empty(),
        "name at least one weights file (ending in .safetensors) before the pictures"
    );
    anyhow::ensure!(
        !pictures.is_empty() || args.test_index.is_some(),
        "name at least one picture (PNG or JPEG) or give --test-index N"
    );
    let networks = weights
        .iter()
        .map(|p| inference::load_network(p))
        .collect::<Result<Vec<_>, _>>()?;
    let mut predictions = inference::predict_pictures(&networks, &pictures)?;
    if let Some(index) = args.test_index {
        let data = DataSource::new(&paths::data_dir(args.data_dir));
        predictions.push(inference::predict_test_image(&networks, &data, index)?);
    }
    for p in &predictions {
        println!("{}", p.describe(args.top.max(1)));
    }
    Ok(())
}
