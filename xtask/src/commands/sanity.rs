//! `cargo xtask sanity`: the report's sanity check. Train on the first 100
//! images of batch 1 with lambda 0 and a fixed learning rate for 200 epochs;
//! the network must overfit them (training loss below 0.01, training accuracy
//! 100%). The next 100 images of batch 1 are shown as a validation curve.
//! Writes `results/sanity/curve.csv` (one point per epoch).

use std::path::PathBuf;

use anyhow::Context;
use experiment::data::matrix_data;
use mlp::data::Augment;
use mlp::optim::OptimizerSpec;
use mlp::schedule::ScheduleSpec;
use mlp::train::{CurvePoint, Silent, TrainConfig, TrainSettings};

use super::paths;

/// Command-line flags. Fields are public and [`Default`] gives the same
/// values as the command line, so other commands (`reproduce`) can build one:
/// `sanity::Args { data_dir, results_dir, ..Default::default() }`.
#[derive(Clone, Debug, PartialEq, clap::Args)]
pub struct Args {
    /// Data dir (holding `cifar-10-batches-bin/`); default `$CIFAR10_DIR`, else `data/`.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Results dir; the curve goes to `<dir>/sanity/curve.csv`.
    #[arg(long)]
    pub results_dir: Option<PathBuf>,
    /// Training images (the first ones of batch 1).
    #[arg(long, default_value_t = DEFAULT_N_IMAGES)]
    pub n_images: usize,
    /// Epochs.
    #[arg(long, default_value_t = DEFAULT_EPOCHS)]
    pub epochs: u64,
    /// Mini-batch size.
    #[arg(long, default_value_t = DEFAULT_BATCH_SIZE)]
    pub batch_size: usize,
    /// The fixed learning rate.
    #[arg(long, default_value_t = DEFAULT_ETA)]
    pub eta: f64,
    /// Hidden units.
    #[arg(long, default_value_t = DEFAULT_N_HIDDEN)]
    pub n_hidden: usize,
    /// Seed of the initialisation and the shuffles.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
}

const DEFAULT_N_IMAGES: usize = 100;
const DEFAULT_EPOCHS: u64 = 200;
const DEFAULT_BATCH_SIZE: usize = 10;
const DEFAULT_ETA: f64 = 0.02;
const DEFAULT_N_HIDDEN: usize = 50;
const DEFAULT_SEED: u64 = 1;

impl Default for Args {
    fn default() -> Self {
        Self {
            data_dir: None,
            results_dir: None,
            n_images: DEFAULT_N_IMAGES,
            epochs: DEFAULT_EPOCHS,
            batch_size: DEFAULT_BATCH_SIZE,
            eta: DEFAULT_ETA,
            n_hidden: DEFAULT_N_HIDDEN,
            seed: DEFAULT_SEED,
        }
    }
}

/// Pass when the final training loss is below this...
const MAX_FINAL_LOSS: f64 = 0.01;

/// Run the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.n_images > 0 && args.batch_size > 0 && args.batch_size <= args.n_images,
        "need 0 < --batch-size <= --n-images"
    );
    anyhow::ensure!(args.epochs > 0, "--epochs must be at least 1");
    let data = super::fetch_data::ensure_and_load(&paths::data_dir(args.data_dir.clone()))?;
    run_with(&data, &args)
}

/// [`run`] on data already loaded (tests pass a small generated set).
pub fn run_with(data: &cifar::Cifar10, args: &Args) -> anyhow::Result<()> {
    let n_batch1 = data.train_batches[0].len();
    anyhow::ensure!(
        2 * args.n_images <= n_batch1,
        "batch 1 has {n_batch1} images; --n-images must be at most half of that"
    );
    let train_idx: Vec<usize> = (0..args.n_images).collect();
    let val_idx: Vec<usize> = (args.n_images..2 * args.n_images).collect();
    let stats = data.feature_stats(&train_idx);
    let train_set = data.train_dataset::<f32>(&train_idx, &stats);
    let val_set = data.train_dataset::<f32>(&val_idx, &stats);

    let steps_per_epoch = args.n_images.div_ceil(args.batch_size) as u64;
    let config = TrainConfig {
        lambda: 0.0,
        seed: args.seed,
        settings: TrainSettings {
            n_hidden: args.n_hidden,
            batch_size: args.batch_size,
            schedule: ScheduleSpec::Constant {
                eta: args.eta,
                n_steps: args.epochs * steps_per_epoch,
            },
            records_per_cycle: args.epochs,
            optimizer: OptimizerSpec::Sgd,
            dropout: 0.0,
            label_smoothing: 0.0,
            augment: Augment::NONE,
        },
    };
    println!(
        "sanity: {} images of batch 1, lambda 0, eta {}, batch {}, {} epochs ({} updates), m {}",
        args.n_images,
        args.eta,
        args.batch_size,
        args.epochs,
        args.epochs * steps_per_epoch,
        args.n_hidden
    );
    let trained = mlp::train::train(
        matrix_data(&train_set),
        matrix_data(&val_set),
        &config.validate()?,
        &mut Silent,
    )?;

    println!(
        "{:>6} {:>7} {:>11} {:>9} {:>11} {:>9}",
        "epoch", "step", "train loss", "train acc", "val loss", "val acc"
    );
    let print_every = (args.epochs / 10).max(1);
    for p in &trained.curve {
        let epoch = p.step / steps_per_epoch;
        if epoch.is_multiple_of(print_every) || p.step == config.settings.schedule.n_steps() {
            println!(
                "{:>6} {:>7} {:>11.5} {:>9.3} {:>11.5} {:>9.3}",
                epoch,
                p.step,
                p.train.loss,
                p.train.accuracy,
                p.validation.loss,
                p.validation.accuracy
            );
        }
    }

    let out_dir = paths::results_dir(args.results_dir.clone()).join("sanity");
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let path = out_dir.join("curve.csv");
    mlp::weights::write_atomic(&path, &curve_csv(&trained.curve, steps_per_epoch)?)?;
    println!("wrote {}", path.display());

    let last = trained.curve.last().context("empty learning curve")?;
    anyhow::ensure!(
        last.train.loss < MAX_FINAL_LOSS && last.train.accuracy == 1.0,
        "sanity check FAILED: final training loss {:.5} (must be < {MAX_FINAL_LOSS}), training accuracy {:.3} (must be 1)",
        last.train.loss,
        last.train.accuracy
    );
    println!(
        "sanity check passed: final training loss {:.5} < {MAX_FINAL_LOSS}, training accuracy 100%",
        last.train.loss
    );
    Ok(())
}

fn curve_csv(curve: &[CurvePoint], steps_per_epoch: u64) -> anyhow::Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "epoch",
        "step",
        "eta",
        "train_cost",
        "train_loss",
        "train_accuracy",
        "val_cost",
        "val_loss",
        "val_accuracy",
    ])?;
    for p in curve {
        w.write_record([
            (p.step / steps_per_epoch).to_string(),
            p.step.to_string(),
            p.eta.to_string(),
            p.train.cost.to_string(),
            p.train.loss.to_string(),
            p.train.accuracy.to_string(),
            p.validation.cost.to_string(),
            p.validation.loss.to_string(),
            p.validation.accuracy.to_string(),
        ])?;
    }
    Ok(w.into_inner()?)
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
    fn overfits_a_small_generated_set_and_writes_the_curve() {
        let dir = tempfile::tempdir().unwrap();
        let args = Args {
            results_dir: Some(dir.path().to_path_buf()),
            n_images: 40,
            epochs: 100,
            ..Args::default()
        };
        run_with(&cifar::Cifar10::synthetic(80, 2, 4), &args).unwrap();
        let curve = std::fs::read_to_string(dir.path().join("sanity/curve.csv")).unwrap();
        // Header, epoch 0, then one line per epoch.
        assert_eq!(curve.lines().count(), 1 + 1 + 100);
        // Too few epochs to overfit: the command fails.
        let short = Args { epochs: 1, ..args };
        assert!(run_with(&cifar::Cifar10::synthetic(80, 2, 4), &short).is_err());
    }

    #[test]
    fn default_matches_the_command_line_defaults() {
        let parsed = Cli::try_parse_from(["x"]).unwrap().args;
        assert_eq!(parsed, Args::default());
    }
}
