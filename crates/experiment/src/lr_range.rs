//! The learning-rate range test (Smith 2017, section 3.3): train a fresh
//! network for a few epochs while eta rises exponentially from tiny to
//! large, record loss and accuracy against eta, stop once the loss explodes,
//! and read `eta_min` and `eta_max` off the curves.
//!
//! - eta at update `t` of `T`: `eta_start * (eta_end / eta_start)^(t / (T - 1))`
//!   (exponential, so every decade gets the same number of updates);
//! - each update's mini-batch loss and accuracy (measured before the update)
//!   are smoothed with an exponential moving average, `beta = 0.98`, with
//!   bias correction (`s_t / (1 - beta^t)`), as fastai's finder does;
//! - every `eval_every` updates the validation accuracy is measured (on the
//!   first `eval_images` validation images);
//! - the test stops early when the smoothed loss exceeds 4x its minimum, or
//!   the loss becomes NaN or infinite.
//!
//! The suggestion ([`suggest`]), stated in the output: `eta_max` is where
//! the validation accuracy (a 3-point moving average of the evaluations)
//! peaks: beyond it, accuracy stops rising; `eta_min` is where that
//! accuracy first rises by a tenth of its total rise above the start.
//! Smith's other rule, `eta_max / 4`, is given beside it.

use crate::config::RunConfig;
pub use crate::records::lr_range::{files, folder, RangePoint, Suggestion};
use crate::Result;

/// Smoothing factor of the moving averages.
pub const BETA: f64 = 0.98;
/// The test stops when the smoothed loss exceeds this multiple of its minimum.
pub const EXPLODE_FACTOR: f64 = 4.0;

/// How the range test runs.
#[derive(Clone, Debug, PartialEq)]
pub struct RangeSpec {
    /// First learning rate.
    pub eta_start: f64,
    /// Last learning rate (reached only if the loss does not explode first).
    pub eta_end: f64,
    /// Training epochs over which eta rises.
    pub epochs: usize,
    /// Validation accuracy is measured every this many updates.
    pub eval_every: u64,
    /// At most this many validation images per measurement.
    pub eval_images: usize,
}

impl Default for RangeSpec {
    fn default() -> Self {
        Self {
            eta_start: 1e-6,
            eta_end: 10.0,
            epochs: 4,
            eval_every: 10,
            eval_images: 2000,
        }
    }
}

impl RangeSpec {
    /// Checks the values; the message names the flag.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if !(self.eta_start > 0.0 && self.eta_start.is_finite()) {
            return Err(format!("--eta-start must be > 0, got {}", self.eta_start));
        }
        if !(self.eta_end > self.eta_start && self.eta_end.is_finite()) {
            return Err(format!(
                "--eta-end must be finite and above --eta-start ({}), got {}",
                self.eta_start, self.eta_end
            ));
        }
        if !(1..=100).contains(&self.epochs) {
            return Err(format!("--epochs must be in 1..=100, got {}", self.epochs));
        }
        if self.eval_every == 0 || self.eval_images == 0 {
            return Err("--eval-every and --eval-images must be at least 1".to_string());
        }
        Ok(())
    }

    /// eta at update `t` of `n_steps`.
    pub fn eta(&self, t: u64, n_steps: u64) -> f64 {
        if n_steps <= 1 {
            return self.eta_start;
        }
        let frac = t as f64 / (n_steps - 1) as f64;
        self.eta_start * (self.eta_end / self.eta_start).powf(frac)
    }
}

/// Bias-corrected exponential moving average.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ema {
    value: f64,
    n: i32,
}

impl Ema {
    /// Adds `x`; returns the corrected average so far.
    pub fn push(&mut self, x: f64) -> f64 {
        self.value = BETA * self.value + (1.0 - BETA) * x;
        self.n += 1;
        self.value / (1.0 - BETA.powi(self.n))
    }
}

/// The rule [`suggest`] applies, as printed and written.
pub const RULE: &str = "eta_max: peak of the validation accuracy (3-point moving average); \
                        eta_min: where that accuracy first rises by 10% of its total rise";

/// Reads `eta_min` and `eta_max` off the range test's points (see the module
/// docs). `None` when fewer than 3 validation measurements were made.
pub fn suggest(points: &[RangePoint], stopped_early: bool) -> Option<Suggestion> {
    let evals: Vec<(f64, f64)> = points
        .iter()
        .filter_map(|p| p.validation_accuracy.map(|a| (p.eta, a)))
        .collect();
    if evals.len() < 3 {
        return None;
    }
    let smooth: Vec<(f64, f64)> = (0..evals.len())
        .map(|i| {
            let lo = i.saturating_sub(1);
            let hi = (i + 1).min(evals.len() - 1);
            let mean = evals[lo..=hi].iter().map(|e| e.1).sum::<f64>() / (hi - lo + 1) as f64;
            (evals[i].0, mean)
        })
        .collect();
    let (peak_i, &(eta_max, peak)) = smooth
        .iter()
        .enumerate()
        .max_by(|a, b| a.1 .1.total_cmp(&b.1 .1).then(b.0.cmp(&a.0)))
        .expect("at least 3 points");
    let start = smooth[0].1;
    let threshold = start + 0.1 * (peak - start);
    let eta_min = smooth[..=peak_i]
        .iter()
        .find(|(_, a)| *a >= threshold && *a > start)
        .map_or(smooth[0].0, |(eta, _)| *eta);
    Some(Suggestion {
        eta_min,
        eta_max,
        eta_max_quarter: eta_max / 4.0,
        peak_validation_accuracy: peak,
        stopped_early,
        rule: RULE.to_string(),
    })
}

/// What a range test produced.
#[derive(Clone, Debug)]
pub struct RangeOutcome {
    /// One point per update done.
    pub points: Vec<RangePoint>,
    /// Whether the loss exploded before the last planned update.
    pub stopped_early: bool,
    /// Updates planned.
    pub n_steps: u64,
}

/// Runs the range test for `config`'s network, data split, batch size,
/// lambda and seed (its schedule is replaced by the exponential ramp of
/// `spec`) on `splits`.
pub fn run(
    config: &RunConfig,
    splits: &crate::data::Splits,
    spec: &RangeSpec,
    mut on_step: impl FnMut(u64, u64, f64),
) -> Result<RangeOutcome> {
    let steps_per_epoch = splits
        .train
        .len()
        .div_ceil(config.train.settings.batch_size.max(1)) as u64;
    let n_steps = steps_per_epoch * spec.epochs as u64;
    let valid = config
        .train
        .validate()
        .map_err(mlp::train::TrainError::from)?;
    let mut trainer = mlp::train::Trainer::new(crate::data::as_data(&splits.train), &valid)?;
    let n_eval = spec.eval_images.min(splits.validation.len());
    let val_images = splits.validation.rows(0, n_eval);
    let val_labels = &splits.validation.labels()[..n_eval];
    let (mut loss_avg, mut acc_avg) = (Ema::default(), Ema::default());
    let mut best = f64::INFINITY;
    let mut points = Vec::with_capacity(n_steps as usize);
    for t in 0..n_steps {
        let eta = spec.eta(t, n_steps);
        let batch = trainer.step(eta);
        let Ok(sums) = batch else {
            // The loss became NaN or infinite: the end of the useful range.
            return Ok(RangeOutcome {
                points,
                stopped_early: true,
                n_steps,
            });
        };
        let n = config.train.settings.batch_size.min(splits.train.len()) as f64;
        let loss = sums.loss_sum / n;
        let loss_smoothed = loss_avg.push(loss);
        let batch_accuracy_smoothed = acc_avg.push(sums.n_correct as f64 / n);
        best = best.min(loss_smoothed);
        let measure = n_eval > 0 && ((t + 1) % spec.eval_every == 0 || t + 1 == n_steps);
        let validation_accuracy = measure.then(|| {
            trainer
                .model()
                .evaluate(&val_images.view(), val_labels, 0.0)
                .accuracy
        });
        points.push(RangePoint {
            step: t,
            eta,
            loss,
            loss_smoothed,
            batch_accuracy_smoothed,
            validation_accuracy,
        });
        on_step(t, n_steps, eta);
        if t > 10 && loss_smoothed > EXPLODE_FACTOR * best {
            return Ok(RangeOutcome {
                points,
                stopped_early: true,
                n_steps,
            });
        }
    }
    Ok(RangeOutcome {
        points,
        stopped_early: false,
        n_steps,
    })
}

/// The run config at `path`; a search config (one with a `[lambdas]` or `[space]`
/// table, like `experiments/beyond.toml`) stands for its first trial: its
/// training settings with its first lambda and its plan seed.
fn run_config_of(path: &std::path::Path, results_dir: &std::path::Path) -> Result<RunConfig> {
    let text = std::fs::read_to_string(path).map_err(crate::io::io_err(path))?;
    let is_search = text
        .parse::<toml::Table>()
        .is_ok_and(|t| t.contains_key("lambdas") || t.contains_key("space"));
    if !is_search {
        return Ok(crate::config::load(path)?);
    }
    let search: crate::config::SearchConfig = crate::config::load(path)?;
    let points = crate::search::points_for(&search, results_dir)?;
    let Some(first) = points.first() else {
        return Err(crate::ExperimentError::Format {
            path: path.to_path_buf(),
            message: "the search has no point".to_string(),
        });
    };
    let lambda = first.lambda;
    let settings = crate::space::apply(&search.train, &first.settings).map_err(|e| {
        crate::ExperimentError::Format {
            path: path.to_path_buf(),
            message: format!("`{}`: {}", e.key, e.message),
        }
    })?;
    Ok(RunConfig {
        name: search.name,
        evaluate_test: false,
        data: search.data,
        train: settings.with(lambda, search.seed),
        provenance: None,
    })
}

/// `cargo xtask lr-range-test CONFIG`: runs the test for the run config at
/// `config_path` (its `--seed` override applied) and writes the CSV files
/// and the picture; returns the suggestion (if the curves allow one) and
/// the folder.
pub fn command(
    config_path: &std::path::Path,
    spec: &RangeSpec,
    opts: &crate::commands::Options<'_>,
) -> Result<(Option<Suggestion>, std::path::PathBuf)> {
    use mlp::train::Observer;
    spec.validate()
        .map_err(|message| crate::ExperimentError::Format {
            path: config_path.to_path_buf(),
            message,
        })?;
    let mut config = run_config_of(config_path, &opts.results_dir)?;
    if let Some(seed) = opts.seed {
        config.train.seed = seed;
    }
    let splits = opts.data.splits(&config.data)?;
    let steps_per_epoch = splits
        .train
        .len()
        .div_ceil(config.train.settings.batch_size.max(1)) as u64;
    let mut progress = crate::progress::RunProgress::new(
        &format!("{} lr-range-test", config.name),
        steps_per_epoch * spec.epochs as u64,
    );
    let outcome = run(&config, &splits, spec, |t, n, eta| {
        progress.on_step(t + 1, n, eta)
    })?;
    progress.finish();
    let suggestion = suggest(&outcome.points, outcome.stopped_early);
    let dir = folder(&opts.results_dir, &config.name);
    crate::io::write_csv(&dir.join(files::CSV), &outcome.points)?;
    crate::io::write_csv(&dir.join(files::SUGGESTION), suggestion.as_slice())?;
    let title = format!("{}: learning-rate range test", config.name);
    crate::plot::lr_range_svg(
        &outcome.points,
        suggestion.as_ref(),
        &title,
        &dir.join(files::SVG),
    )?;
    crate::plot::lr_range_png(
        &outcome.points,
        suggestion.as_ref(),
        &title,
        &dir.join(files::PNG),
    )?;
    Ok((suggestion, dir))
}

/// What `cargo xtask lr-range-test` prints: the suggestion (or why there is
/// none) and where the files went.
pub fn summary(suggestion: Option<&Suggestion>, dir: &std::path::Path) -> String {
    let mut out = match suggestion {
        Some(s) => format!(
            "suggested eta_min {:.1e}, eta_max {:.1e} (peak validation accuracy {:.4}; \
             Smith's eta_max / 4 = {:.1e}){}\nrule: {}\n",
            s.eta_min,
            s.eta_max,
            s.peak_validation_accuracy,
            s.eta_max_quarter,
            if s.stopped_early {
                "; stopped early: the loss exploded"
            } else {
                ""
            },
            s.rule
        ),
        None => "too few validation measurements for a suggestion: raise --epochs or lower \
                 --eval-every\n"
            .to_string(),
    };
    out.push_str(&format!(
        "-> {} (lr-range.csv, suggestion.csv, lr-range.svg, lr-range.png)\n",
        dir.display()
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_rises_exponentially_from_start_to_end() {
        let spec = RangeSpec {
            eta_start: 1e-6,
            eta_end: 1.0,
            ..RangeSpec::default()
        };
        assert_eq!(spec.eta(0, 7), 1e-6);
        assert!((spec.eta(6, 7) - 1.0).abs() < 1e-12);
        // Half-way is the geometric mean.
        assert!((spec.eta(3, 7) - 1e-3).abs() < 1e-15);
        assert!(spec.validate().is_ok());
        let bad = RangeSpec {
            eta_end: 1e-7,
            ..spec
        };
        assert!(bad.validate().unwrap_err().contains("--eta-end"));
    }

    #[test]
    fn moving_average_is_bias_corrected() {
        let mut ema = Ema::default();
        // A constant input reads as itself from the first value on.
        assert!((ema.push(2.0) - 2.0).abs() < 1e-12);
        assert!((ema.push(2.0) - 2.0).abs() < 1e-12);
        // Then it follows with weight (1 - beta) / (1 - beta^3) on the new value.
        let w = (1.0 - BETA) / (1.0 - BETA.powi(3));
        assert!((ema.push(5.0) - (2.0 + 3.0 * w)).abs() < 1e-12);
    }

    fn point(step: u64, eta: f64, acc: Option<f64>) -> RangePoint {
        RangePoint {
            step,
            eta,
            loss: 1.0,
            loss_smoothed: 1.0,
            batch_accuracy_smoothed: 0.0,
            validation_accuracy: acc,
        }
    }

    #[test]
    fn suggestion_reads_the_rise_and_the_peak() {
        // Flat at 0.1 up to eta 1e-4, rising to 0.5 at 1e-1, then falling.
        let etas = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0];
        let accs = [0.10, 0.10, 0.10, 0.20, 0.40, 0.50, 0.30, 0.10];
        let points: Vec<RangePoint> = etas
            .iter()
            .zip(accs)
            .enumerate()
            .map(|(i, (&e, a))| point(i as u64, e, Some(a)))
            .collect();
        let s = suggest(&points, true).unwrap();
        // 3-point averages: .1 .1 .133 .233 .367 .4 .3 .2 -> peak at 1e-1.
        assert_eq!(s.eta_max, 1e-1);
        assert!((s.peak_validation_accuracy - 0.4).abs() < 1e-12);
        // Start .1, threshold .1 + .1 * .3 = .13: first reached at 1e-4 (.133).
        assert_eq!(s.eta_min, 1e-4);
        assert_eq!(s.eta_max_quarter, 0.025);
        assert!(s.stopped_early);
        assert!(suggest(&points[..2], false).is_none());
    }
}
