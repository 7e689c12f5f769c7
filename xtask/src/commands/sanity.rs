//! `cargo xtask sanity`: the flags, then [`experiment::checks::sanity`]
//! with `experiments/checks/sanity.toml` (or `--config`), each flag given
//! overriding its value.

use std::path::PathBuf;

use experiment::checks::sanity::{self, SanityConfig};
use experiment::config::Validate;

use super::paths;

/// Command-line flags; each value flag overrides the config's key of the same name.
#[derive(Clone, Debug, PartialEq, clap::Args)]
pub struct Args {
    /// The check's settings (default: <root>/experiments/checks/sanity.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Data dir (holding `cifar-10-batches-bin/`); default `$CIFAR10_DIR`, else `data/`.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Results dir; the curve goes to `<dir>/sanity/curve.csv`.
    #[arg(long)]
    pub results_dir: Option<PathBuf>,
    /// Training images, the first ones of batch 1 (config: 100).
    #[arg(long)]
    pub n_images: Option<usize>,
    /// Epochs (config: 200).
    #[arg(long)]
    pub epochs: Option<u64>,
    /// Mini-batch size (config: 10).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// The fixed learning rate (config: 0.02).
    #[arg(long)]
    pub eta: Option<f64>,
    /// Hidden units (config: 50).
    #[arg(long)]
    pub n_hidden: Option<usize>,
    /// Seed of the initialisation and the shuffles (config: 1).
    #[arg(long)]
    pub seed: Option<u64>,
}

/// Run the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    let path = args.config.clone().unwrap_or_else(|| {
        experiment::reproduce::check_config(&paths::project_root().join("experiments"), "sanity")
    });
    let config = with_flags(experiment::config::load(&path)?, &args);
    config.validate().map_err(|e| e.in_file(&path))?;
    let data = cifar::fetch::ensure_and_load(&paths::data_dir(args.data_dir))?;
    sanity::run(&data, &config, &paths::results_dir(args.results_dir))
}

/// `config` with the values the flags give.
fn with_flags(config: SanityConfig, args: &Args) -> SanityConfig {
    SanityConfig {
        n_images: args.n_images.unwrap_or(config.n_images),
        epochs: args.epochs.unwrap_or(config.epochs),
        batch_size: args.batch_size.unwrap_or(config.batch_size),
        eta: args.eta.unwrap_or(config.eta),
        n_hidden: args.n_hidden.unwrap_or(config.n_hidden),
        seed: args.seed.unwrap_or(config.seed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn flags_override_the_shipped_config_and_nothing_else() {
        let path = experiment::reproduce::check_config(
            &paths::project_root().join("experiments"),
            "sanity",
        );
        let shipped: SanityConfig = experiment::config::load(&path).unwrap();
        let none = Cli::try_parse_from(["x"]).unwrap().args;
        assert_eq!(with_flags(shipped.clone(), &none), shipped);
        let some = Cli::try_parse_from(["x", "--epochs", "5", "--eta", "0.1"])
            .unwrap()
            .args;
        let expected = SanityConfig {
            epochs: 5,
            eta: 0.1,
            ..shipped.clone()
        };
        assert_eq!(with_flags(shipped, &some), expected);
    }
}
