//! Mini-batch gradient descent with a learning-rate schedule, learning curves
//! and divergence detection.

use ndarray::Array2;
use rand::SeedableRng;

use crate::schedule::{Schedule, ScheduleSpec};
use crate::{Evaluation, Mlp, Workspace};

/// ChaCha stream used for the per-epoch shuffles (the initialisation uses another).
pub(crate) const SHUFFLE_STREAM: u64 = 1;

/// Everything one training run needs besides the data.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Hidden units `m`.
    pub n_hidden: usize,
    /// L2 strength.
    pub lambda: f64,
    /// Samples per update.
    pub batch_size: usize,
    /// Learning-rate schedule (it also fixes the number of updates).
    pub schedule: ScheduleSpec,
    /// Learning-curve points per cycle (plus step 0 and the end); for a
    /// constant schedule, points over the whole run.
    pub records_per_cycle: u64,
    /// Seed of the initialisation and the shuffles.
    pub seed: u64,
}

/// One learning-curve point.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CurvePoint {
    /// Update steps done.
    pub step: u64,
    /// Learning rate at this step.
    pub eta: f64,
    /// On the training split.
    pub train: Evaluation,
    /// On the validation split.
    pub validation: Evaluation,
}

/// Hooks a caller uses to show progress; all methods default to doing nothing.
pub trait Observer {
    /// Called after every update step (cheap; no evaluation).
    fn on_step(&mut self, step: u64, n_steps: u64, eta: f64) {
        let _ = (step, n_steps, eta);
    }
    /// Called at each recorded learning-curve point.
    fn on_record(&mut self, point: &CurvePoint, n_steps: u64) {
        let _ = (point, n_steps);
    }
}

/// An observer that shows nothing.
pub struct Silent;
impl Observer for Silent {}

/// Why training stopped early.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The cost became NaN or infinite.
    #[error("training diverged at step {step} (eta {eta:.3e}): the cost became {value}; lower eta_max or raise lambda")]
    Diverged {
        /// Update step where it was seen.
        step: u64,
        /// Learning rate at that step.
        eta: f64,
        /// The non-finite value.
        value: f64,
    },
    /// The config is not usable (names the field).
    #[error("invalid training config: {0}")]
    InvalidConfig(String),
}

/// A finished run.
#[derive(Clone, Debug)]
pub struct Trained {
    /// Final weights.
    pub model: Mlp<f32>,
    /// Learning curves, in step order.
    pub curve: Vec<CurvePoint>,
}

impl TrainConfig {
    /// Check the values; the error names the offending field.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |m: String| Err(TrainError::InvalidConfig(m));
        if self.n_hidden == 0 {
            return bad("n_hidden must be at least 1".into());
        }
        if !(self.lambda.is_finite() && self.lambda >= 0.0) {
            return bad(format!(
                "lambda must be a finite number >= 0, got {}",
                self.lambda
            ));
        }
        if self.batch_size == 0 {
            return bad("batch_size must be at least 1".into());
        }
        if self.records_per_cycle == 0 {
            return bad("records_per_cycle must be at least 1".into());
        }
        self.schedule.validate().map_err(TrainError::InvalidConfig)
    }
}

/// The update steps at which learning curves are recorded: step 0, then
/// `records_per_cycle` evenly spaced points per period of the schedule (a
/// cycle; the whole run for a constant schedule), and always the last step.
/// Sorted, without duplicates.
pub fn record_steps(schedule: &dyn Schedule, records_per_cycle: u64) -> Vec<u64> {
    let n_steps = schedule.n_steps();
    let period = schedule.period().max(1);
    let per = records_per_cycle.max(1);
    let n_periods = n_steps.div_ceil(period);
    let mut steps: Vec<u64> = (0..=per * n_periods)
        .map(|k| {
            // k * period / per without overflow for any realistic run.
            let (q, r) = (k / per, k % per);
            q * period + r * period / per
        })
        .filter(|&t| t <= n_steps)
        .collect();
    steps.push(n_steps);
    steps.sort_unstable();
    steps.dedup();
    steps
}

/// Check that a data set fits the network and the label range; names the split.
fn check_dataset(name: &str, data: &cifar::Dataset<f32>, n_input: usize) -> Result<(), TrainError> {
    let bad = |m: String| Err(TrainError::InvalidConfig(m));
    if data.images.nrows() == 0 {
        return bad(format!("the {name} split is empty"));
    }
    if data.images.ncols() != n_input {
        return bad(format!(
            "the {name} split has {} features per image, the training split {n_input}",
            data.images.ncols()
        ));
    }
    if data.labels.len() != data.images.nrows() {
        return bad(format!(
            "the {name} split has {} labels for {} images",
            data.labels.len(),
            data.images.nrows()
        ));
    }
    if let Some((idx, &label)) = data
        .labels
        .iter()
        .enumerate()
        .find(|(_, &l)| usize::from(l) >= cifar::N_CLASSES)
    {
        return bad(format!(
            "the {name} split has label {label} at row {idx}; labels must be below {}",
            cifar::N_CLASSES
        ));
    }
    Ok(())
}

/// Train a fresh network on `train`, recording curves on `train` and `validation`.
///
/// Mini-batch gradient descent: the initial weights come from
/// [`Mlp::init`] with `config.seed`; before each epoch the training order is
/// reshuffled from a ChaCha8 stream seeded with `config.seed`; update `t`
/// uses `eta(t)` of the schedule, which also fixes the number of updates (an
/// epoch may be cut short by the end of the schedule). Each update runs on a
/// preallocated batch buffer and work buffers and allocates nothing.
///
/// Curves are recorded at [`record_steps`]; evaluations use the caller's
/// rayon pool, the updates run in the calling thread. Results are
/// bit-identical for the same data and config, whatever the thread count.
///
/// Stops with [`TrainError::Diverged`] as soon as a mini-batch loss or a
/// recorded cost is NaN or infinite.
pub fn train(
    train: &cifar::Dataset<f32>,
    validation: &cifar::Dataset<f32>,
    config: &TrainConfig,
    observer: &mut dyn Observer,
) -> Result<Trained, TrainError> {
    config.validate()?;
    let n_input = train.images.ncols();
    check_dataset("training", train, n_input)?;
    check_dataset("validation", validation, n_input)?;
    let n_train = train.images.nrows();
    if config.batch_size > n_train {
        return Err(TrainError::InvalidConfig(format!(
            "batch_size ({}) is larger than the training split ({n_train} images)",
            config.batch_size
        )));
    }

    let schedule = config.schedule.build();
    let n_steps = schedule.n_steps();
    let records = record_steps(schedule.as_ref(), config.records_per_cycle);
    let mut next_record = 0;

    let mut model = Mlp::<f32>::init(n_input, config.n_hidden, cifar::N_CLASSES, config.seed);
    let mut ws = Workspace::for_model(&model, config.batch_size);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(config.seed);
    rng.set_stream(SHUFFLE_STREAM);
    let mut batches = cifar::MiniBatches::new(n_train, config.batch_size);
    let mut full_batch = Array2::<f32>::zeros((config.batch_size, n_input));
    let mut last_batch = Array2::<f32>::zeros((n_train % config.batch_size, n_input));
    let mut batch_labels: Vec<u8> = Vec::with_capacity(config.batch_size);
    let mut curve = Vec::with_capacity(records.len());

    let record =
        |model: &Mlp<f32>, step: u64, curve: &mut Vec<CurvePoint>, observer: &mut dyn Observer| {
            let eta = schedule.eta(step);
            let point = CurvePoint {
                step,
                eta,
                train: model.evaluate(&train.images.view(), &train.labels, config.lambda),
                validation: model.evaluate(
                    &validation.images.view(),
                    &validation.labels,
                    config.lambda,
                ),
            };
            observer.on_record(&point, n_steps);
            curve.push(point);
            match [point.train.cost, point.validation.cost]
                .into_iter()
                .find(|v| !v.is_finite())
            {
                Some(value) => Err(TrainError::Diverged { step, eta, value }),
                None => Ok(()),
            }
        };

    let mut t = 0u64;
    if records.first() == Some(&0) {
        record(&model, 0, &mut curve, observer)?;
        next_record = 1;
    }
    'epochs: while t < n_steps {
        batches.shuffle(&mut rng);
        for indices in batches.iter() {
            if t == n_steps {
                break 'epochs;
            }
            let eta = schedule.eta(t);
            let batch = if indices.len() == config.batch_size {
                &mut full_batch
            } else {
                &mut last_batch
            };
            cifar::gather_rows(&train.images.view(), indices, batch);
            batch_labels.clear();
            batch_labels.extend(indices.iter().map(|&i| train.labels[i]));
            let sums = model.sgd_step(&batch.view(), &batch_labels, config.lambda, eta, &mut ws);
            if !sums.loss_sum.is_finite() {
                return Err(TrainError::Diverged {
                    step: t,
                    eta,
                    value: sums.loss_sum,
                });
            }
            t += 1;
            observer.on_step(t, n_steps, eta);
            if records.get(next_record) == Some(&t) {
                record(&model, t, &mut curve, observer)?;
                next_record += 1;
            }
        }
    }
    Ok(Trained { model, curve })
}
