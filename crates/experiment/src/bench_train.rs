//! `cargo xtask bench train`: the time of one training epoch against the
//! time of its matmul work alone (the same five gemm calls per step, on the
//! same shapes, timed in the same run), for each network width and rayon
//! thread count asked for, plus one evaluation of the training split (what
//! a learning-curve point costs) and the process's peak memory.
//!
//! The data are synthetic `u8` images (5 batches, a hold-out validation
//! split, as the real data) read through the same path as training: the
//! split refers to the raw bytes and each batch row is z-scored as it is
//! gathered ([`crate::data::Split`]). Timing does not depend on the values.

use std::time::Instant;

use anyhow::Context;
use ndarray::Array2;

use crate::data::{as_data, DataSource, Split};

/// What to measure.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Training images in the epoch.
    pub n_images: usize,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Network widths (hidden units) to time.
    pub widths: Vec<usize>,
    /// Rayon thread counts to time each width with.
    pub threads: Vec<usize>,
    /// Epochs timed per measurement; the best is reported.
    pub repeats: usize,
    /// Also time an epoch with flip + translation by this many pixels.
    pub augment_translate: Option<usize>,
}

/// One width on one thread count.
#[derive(Clone, Debug)]
pub struct Measured {
    /// Hidden units `m`.
    pub n_hidden: usize,
    /// Rayon threads.
    pub threads: usize,
    /// Updates in the epoch.
    pub n_steps: usize,
    /// Seconds of the epoch (best of the repeats).
    pub epoch: f64,
    /// Seconds of its gemm calls alone (best of the repeats).
    pub matmul: f64,
    /// Floating-point operations of those gemm calls.
    pub flops: f64,
    /// Seconds of one evaluation of the whole training split.
    pub evaluation: f64,
    /// Seconds of an epoch with augmentation, when asked for.
    pub augmented: Option<f64>,
}

impl Measured {
    /// Epoch time over its matmul time.
    pub fn ratio(&self) -> f64 {
        self.epoch / self.matmul
    }
}

/// Time every width on every thread count.
pub fn run(settings: &Settings) -> anyhow::Result<Vec<Measured>> {
    anyhow::ensure!(
        settings.batch_size > 0 && settings.batch_size <= settings.n_images,
        "--batch-size must be between 1 and --n-images"
    );
    let per_batch = (settings.n_images + 5000).div_ceil(5);
    let raw = cifar::Cifar10::synthetic(per_batch, 10, 1);
    let spec = cifar::SplitSpec::HoldOut {
        n_validation: 5 * per_batch - settings.n_images,
        seed: 1,
    };
    let source = DataSource::from_memory(raw, "sha256:synthetic");
    let splits = source.splits(&spec)?;
    let mut out = Vec::new();
    for &n_hidden in &settings.widths {
        for &threads in &settings.threads {
            let pool = tensor::pool::pool_builder(threads)
                .build()
                .context("cannot build the rayon pool")?;
            // As `cargo xtask train` runs one training: small products split.
            let measured = pool.install(|| {
                tensor::with_small_products_split(|| measure(settings, &splits.train, n_hidden))
            })?;
            out.push(Measured {
                threads,
                ..measured
            });
        }
    }
    Ok(out)
}

/// The measurements of one width in the current rayon pool.
fn measure(settings: &Settings, train: &Split, n_hidden: usize) -> anyhow::Result<Measured> {
    let (d, k) = (cifar::IMAGE_BYTES, cifar::N_CLASSES);
    let n = settings.batch_size;
    let n_steps = settings.n_images.div_ceil(n);
    let (lambda, eta) = (0.01, 0.01);
    let repeats = settings.repeats.max(1);
    let best_of = |f: &mut dyn FnMut() -> anyhow::Result<()>| -> anyhow::Result<f64> {
        let mut best = f64::INFINITY;
        for _ in 0..repeats {
            let start = Instant::now();
            f()?;
            best = best.min(start.elapsed().as_secs_f64());
        }
        Ok(best)
    };

    // The epoch, exactly as `mlp::train::train` runs its updates.
    let time_epoch = |augment: mlp::data::Augment| -> anyhow::Result<f64> {
        let settings = mlp::train::TrainSettings {
            n_hidden,
            batch_size: n,
            schedule: mlp::schedule::ScheduleSpec::Constant {
                eta,
                n_steps: n_steps as u64,
            },
            records_per_cycle: 1,
            curve_train_rows: mlp::train::CurveTrainRows::All,
            optimizer: mlp::optim::OptimizerSpec::Sgd,
            dropout: 0.0,
            label_smoothing: 0.0,
            augment,
        };
        let config = settings.with(lambda, 1).validate()?;
        best_of(&mut || {
            let model = mlp::Mlp::<f32>::init(d, n_hidden, k, 1);
            let mut t = mlp::train::Trainer::with_model(as_data(train), model, &config)?;
            tensor::with_spinning_partners(|| {
                for _ in 0..n_steps {
                    t.step(eta)?;
                }
                Ok(())
            })
        })
    };
    let epoch = time_epoch(mlp::data::Augment::NONE)?;
    let augmented = match settings.augment_translate {
        Some(translate) => Some(time_epoch(mlp::data::Augment {
            flip: true,
            translate,
        })?),
        None => None,
    };

    // Its matmul work alone: the five gemm calls of a step on one batch.
    let model = mlp::Mlp::<f32>::init(d, n_hidden, k, 1);
    let (mut w1, w2) = (model.w1.clone(), model.w2.clone());
    let mut w2_upd = w2.clone();
    let x = train.rows(0, n);
    let mut hidden = Array2::<f32>::zeros((n, n_hidden));
    let mut logits = Array2::<f32>::zeros((n, k));
    let grad_logits = Array2::<f32>::from_elem((n, k), 0.01);
    let mut grad_hidden = Array2::<f32>::zeros((n, n_hidden));
    let (alpha, beta) = (-(eta / n as f64) as f32, (1.0 - 2.0 * eta * lambda) as f32);
    // With the same spinning partners as the epoch.
    let matmul = best_of(&mut || {
        tensor::with_spinning_partners(|| {
            for _ in 0..n_steps {
                tensor::gemm(1.0, &x.view(), &w1.t(), 0.0, &mut hidden.view_mut());
                tensor::gemm(1.0, &hidden.view(), &w2.t(), 0.0, &mut logits.view_mut());
                tensor::gemm(
                    1.0,
                    &grad_logits.view(),
                    &w2.view(),
                    0.0,
                    &mut grad_hidden.view_mut(),
                );
                tensor::gemm(
                    alpha,
                    &grad_logits.t(),
                    &hidden.view(),
                    beta,
                    &mut w2_upd.view_mut(),
                );
                tensor::gemm(alpha, &grad_hidden.t(), &x.view(), beta, &mut w1.view_mut());
            }
        });
        Ok(())
    })?;
    std::hint::black_box((&w1, &w2_upd, &logits));

    // For scale: one evaluation of the whole split (a curve point's training half).
    let features = mlp::Features::Rows(train);
    let evaluation = best_of(&mut || {
        std::hint::black_box(model.evaluate_features(&features, train.labels(), lambda));
        Ok(())
    })?;

    let (dm, mk) = ((d * n_hidden) as f64, (n_hidden * k) as f64);
    Ok(Measured {
        n_hidden,
        threads: rayon::current_num_threads(),
        n_steps,
        epoch,
        matmul,
        flops: n_steps as f64 * 2.0 * n as f64 * (2.0 * dm + 3.0 * mk),
        evaluation,
        augmented,
    })
}

/// The process's peak resident memory in MB (`VmHWM` of `/proc/self/status`;
/// `None` where there is no such file).
pub fn peak_memory_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// What was measured, the Markdown table (one row per width and thread
/// count) and the peak memory, as the command prints them.
pub fn report(settings: &Settings, rows: &[Measured]) -> String {
    let mut out = format!(
        "one epoch: {} images, batch {}, d 3072, f32, synthetic u8 images, best of {}\n",
        settings.n_images, settings.batch_size, settings.repeats
    );
    out += &table(rows);
    if let Some(mb) = peak_memory_mb() {
        out += &format!("peak memory (VmHWM) of this process: {mb:.0} MB\n");
    }
    out
}

/// The results as a Markdown table (one row per width and thread count).
pub fn table(rows: &[Measured]) -> String {
    let mut out = String::from(
        "| m | threads | epoch s | matmul alone s | ratio | matmul GFLOP/s | eval of the split s | augmented epoch s |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let augmented = r.augmented.map_or("".to_string(), |s| format!("{s:.3}"));
        out += &format!(
            "| {} | {} | {:.3} | {:.3} | {:.2} | {:.1} | {:.3} | {augmented} |\n",
            r.n_hidden,
            r.threads,
            r.epoch,
            r.matmul,
            r.ratio(),
            r.flops / r.matmul / 1e9,
            r.evaluation,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_bench_times_every_width_and_thread_count() {
        let settings = Settings {
            n_images: 300,
            batch_size: 100,
            widths: vec![4, 8],
            threads: vec![1, 2],
            repeats: 1,
            augment_translate: Some(2),
        };
        let rows = run(&settings).unwrap();
        let got: Vec<(usize, usize)> = rows.iter().map(|r| (r.n_hidden, r.threads)).collect();
        assert_eq!(got, vec![(4, 1), (4, 2), (8, 1), (8, 2)]);
        for r in &rows {
            assert_eq!(r.n_steps, 3);
            assert!(r.epoch > 0.0 && r.matmul > 0.0 && r.evaluation > 0.0);
            assert!(r.augmented.is_some_and(|s| s > 0.0));
        }
        // 2 * n * (2 d m + 3 m K) flops per step.
        let want = 3.0 * 2.0 * 100.0 * (2.0 * 3072.0 * 4.0 + 3.0 * 4.0 * 10.0);
        assert_eq!(rows[0].flops, want);
        let text = table(&rows);
        assert_eq!(text.lines().count(), 2 + 4, "{text}");
        assert!(report(&settings, &rows).contains(&text));
        assert!(peak_memory_mb().is_none_or(|mb| mb > 1.0));
    }
}
