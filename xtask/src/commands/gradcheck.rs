//! `cargo xtask gradcheck`: the flags, then [`experiment::checks::gradcheck`]
//! with `experiments/checks/gradcheck.toml` (or `--config`), each flag given
//! overriding its value.

use std::path::PathBuf;

use experiment::checks::gradcheck::{self, GradcheckConfig};
use experiment::config::Validate;

use super::paths;

/// Which scenarios to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// First 30 dimensions of the first image.
    A,
    /// All dimensions of the first 10 images.
    B,
    /// All dimensions of all 10000 images.
    C,
    /// (a), (b) and (c).
    All,
}

/// Command-line flags; each value flag overrides the config's key of the same name.
#[derive(Clone, Debug, PartialEq, clap::Args)]
pub struct Args {
    /// The check's settings (default: <root>/experiments/checks/gradcheck.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Data dir (holding `cifar-10-batches-bin/`); default `$CIFAR10_DIR`, else `data/`.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Results dir; the table goes to `<dir>/gradcheck/gradcheck.csv`.
    #[arg(long)]
    pub results_dir: Option<PathBuf>,
    /// Scenario to run (config: all).
    #[arg(long, value_enum)]
    pub scenario: Option<Scenario>,
    /// Seed of the network's initialisation (config: 1).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Hidden units (config: 50).
    #[arg(long)]
    pub n_hidden: Option<usize>,
    /// L2 strength (config: 0.01).
    #[arg(long)]
    pub lambda: Option<f64>,
    /// Finite-difference step (config: 1e-5).
    #[arg(long)]
    pub h: Option<f64>,
    /// Fail when a max elementwise relative error (kinks apart) is above this (config: 1e-6).
    #[arg(long)]
    pub limit: Option<f64>,
    /// Also run the plain method (two full cost evaluations per entry, one
    /// subtraction) on scenarios (a) and (b) and print its errors for
    /// comparison (not written to the CSV; (b) takes about two minutes).
    #[arg(long)]
    pub plain: bool,
}

/// Run the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    let path = args.config.clone().unwrap_or_else(|| {
        experiment::reproduce::check_config(&paths::project_root().join("experiments"), "gradcheck")
    });
    let config = with_flags(experiment::config::load(&path)?, &args);
    config.validate().map_err(|e| e.in_file(&path))?;
    let data = cifar::fetch::ensure_and_load(&paths::data_dir(args.data_dir))?;
    gradcheck::run(&data, &config, &paths::results_dir(args.results_dir))
}

/// `config` with the values the flags give.
fn with_flags(config: GradcheckConfig, args: &Args) -> GradcheckConfig {
    GradcheckConfig {
        scenario: args.scenario.map_or(config.scenario, |s| match s {
            Scenario::A => gradcheck::Scenario::A,
            Scenario::B => gradcheck::Scenario::B,
            Scenario::C => gradcheck::Scenario::C,
            Scenario::All => gradcheck::Scenario::All,
        }),
        seed: args.seed.unwrap_or(config.seed),
        n_hidden: args.n_hidden.unwrap_or(config.n_hidden),
        lambda: args.lambda.unwrap_or(config.lambda),
        h: args.h.unwrap_or(config.h),
        limit: args.limit.unwrap_or(config.limit),
        plain: args.plain || config.plain,
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
            "gradcheck",
        );
        let shipped: GradcheckConfig = experiment::config::load(&path).unwrap();
        let none = Cli::try_parse_from(["x"]).unwrap().args;
        assert_eq!(with_flags(shipped.clone(), &none), shipped);
        let some = Cli::try_parse_from(["x", "--scenario", "b", "--n-hidden", "8", "--plain"])
            .unwrap()
            .args;
        let got = with_flags(shipped.clone(), &some);
        assert_eq!(
            got,
            GradcheckConfig {
                scenario: gradcheck::Scenario::B,
                n_hidden: 8,
                plain: true,
                ..shipped
            }
        );
    }
}
