//! The report's sanity check: train on the first `n_images` images of
//! batch 1 with lambda 0 and a fixed learning rate; the network must
//! overfit them (training loss below 0.01, training accuracy 100%). The next
//! `n_images` images of batch 1 are shown as a validation curve. Its
//! settings are `experiments/checks/sanity.toml` ([`SanityConfig`]); it
//! writes `<results>/sanity/curve.csv` (one point per epoch).

use std::path::Path;

use anyhow::Context;
use mlp::data::Augment;
use mlp::optim::OptimizerSpec;
use mlp::schedule::ScheduleSpec;
use mlp::train::{CurvePoint, Silent, TrainConfig, TrainSettings};
use serde::{Deserialize, Serialize};

use crate::config::{InvalidValue, Validate};
use crate::data::matrix_data;
use crate::io;

/// The results sub-folder.
pub const FOLDER: &str = "sanity";
/// The curve inside it.
pub const CSV: &str = "curve.csv";

/// `experiments/checks/sanity.toml`: every setting of the check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SanityConfig {
    /// Training images (the first ones of batch 1).
    pub n_images: usize,
    /// Epochs.
    pub epochs: u64,
    /// Mini-batch size.
    pub batch_size: usize,
    /// The fixed learning rate.
    pub eta: f64,
    /// Hidden units.
    pub n_hidden: usize,
    /// Seed of the initialisation and the shuffles.
    pub seed: u64,
}

impl Validate for SanityConfig {
    fn validate(&self) -> Result<(), InvalidValue> {
        let bad = |key: &str, message: String| {
            Err(InvalidValue {
                key: key.to_string(),
                message,
            })
        };
        if self.n_images == 0 || self.n_images > cifar::RECORDS_PER_FILE / 2 {
            let max = cifar::RECORDS_PER_FILE / 2;
            return bad("n_images", format!("{} is not in 1..={max}", self.n_images));
        }
        if self.batch_size == 0 || self.batch_size > self.n_images {
            return bad(
                "batch_size",
                format!(
                    "{} is not in 1..={} (n_images)",
                    self.batch_size, self.n_images
                ),
            );
        }
        if self.epochs == 0 {
            return bad("epochs", "must be at least 1".into());
        }
        if !(self.eta > 0.0 && self.eta.is_finite()) {
            return bad("eta", format!("{} is not a finite number > 0", self.eta));
        }
        if self.n_hidden == 0 {
            return bad("n_hidden", "must be at least 1".into());
        }
        Ok(())
    }
}

/// Pass when the final training loss is below this...
const MAX_FINAL_LOSS: f64 = 0.01;

/// Train as `config` says on `data`'s batch 1 and write
/// `<results_dir>/sanity/curve.csv`; an error unless the network overfits
/// (final training loss below 0.01, training accuracy 100%).
pub fn run(data: &cifar::Cifar10, config: &SanityConfig, results_dir: &Path) -> anyhow::Result<()> {
    let args = config;
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
            curve_train_rows: mlp::train::CurveTrainRows::All,
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

    let path = results_dir.join(FOLDER).join(CSV);
    io::write_atomic(&path, &curve_csv(&trained.curve, steps_per_epoch)?)?;
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

/// The curve as CSV, one row per epoch.
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

    fn shipped_path() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/checks/sanity.toml")
    }

    #[test]
    fn overfits_a_small_generated_set_and_writes_the_curve() {
        let dir = tempfile::tempdir().unwrap();
        let args = SanityConfig {
            n_images: 40,
            epochs: 100,
            ..crate::config::load(&shipped_path()).unwrap()
        };
        run(&cifar::Cifar10::synthetic(80, 2, 4), &args, dir.path()).unwrap();
        let curve = std::fs::read_to_string(dir.path().join("sanity/curve.csv")).unwrap();
        // Header, epoch 0, then one line per epoch.
        assert_eq!(curve.lines().count(), 1 + 1 + 100);
        // Too few epochs to overfit: the command fails.
        let short = SanityConfig { epochs: 1, ..args };
        assert!(run(&cifar::Cifar10::synthetic(80, 2, 4), &short, dir.path()).is_err());
    }

    #[test]
    fn bad_values_and_unknown_keys_are_refused_naming_the_key() {
        let text = std::fs::read_to_string(shipped_path()).unwrap();
        let path = Path::new("sanity.toml");
        let edits = [
            ("epochs = 200", "epochs = 0", "epochs"),
            ("batch_size = 10", "batch_size = 101", "batch_size"),
            ("eta = 0.02", "eta = -1.0", "eta"),
            ("n_hidden = 50", "n_hidden = 0", "n_hidden"),
        ];
        super::super::assert_refused_naming_the_key::<SanityConfig>(&text, path, &edits, "lambda");
    }
}
