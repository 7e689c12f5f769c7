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
        self.schedule
            .validate()
            .map_err(|e| TrainError::InvalidConfig(e.to_string()))
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

/// The update loop without the curves: a model, its work buffers and the
/// seeded mini-batch order, advanced one update at a time. [`train`] drives
/// it; benchmarks and custom loops can too.
pub struct Trainer<'a> {
    data: &'a cifar::Dataset<f32>,
    model: Mlp<f32>,
    ws: Workspace<f32>,
    rng: rand_chacha::ChaCha8Rng,
    batches: cifar::MiniBatches,
    full_batch: Array2<f32>,
    last_batch: Array2<f32>,
    batch_labels: Vec<u8>,
    next_batch: usize,
    lambda: f64,
    t: u64,
}

impl<'a> Trainer<'a> {
    /// A fresh network ([`Mlp::init`] with `config.seed`) ready to train on
    /// `data`; checks the config and the data.
    pub fn new(data: &'a cifar::Dataset<f32>, config: &TrainConfig) -> Result<Self, TrainError> {
        config.validate()?;
        let n_input = data.images.ncols();
        check_dataset("training", data, n_input)?;
        let model = Mlp::<f32>::init(n_input, config.n_hidden, cifar::N_CLASSES, config.seed);
        Self::with_model(data, model, config.batch_size, config.lambda, config.seed)
    }

    /// Continue training `model` on `data` with mini-batches of `batch_size`,
    /// L2 strength `lambda`, shuffles seeded from `seed`.
    pub fn with_model(
        data: &'a cifar::Dataset<f32>,
        model: Mlp<f32>,
        batch_size: usize,
        lambda: f64,
        seed: u64,
    ) -> Result<Self, TrainError> {
        let n_train = data.images.nrows();
        let n_input = data.images.ncols();
        check_dataset("training", data, model.n_input())?;
        if batch_size == 0 || batch_size > n_train {
            return Err(TrainError::InvalidConfig(format!(
                "batch_size ({batch_size}) must be between 1 and the training split's size ({n_train} images)"
            )));
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(SHUFFLE_STREAM);
        let batches = cifar::MiniBatches::new(n_train, batch_size);
        Ok(Self {
            data,
            ws: Workspace::for_model(&model, batch_size),
            model,
            rng,
            next_batch: batches.n_batches(),
            batches,
            full_batch: Array2::zeros((batch_size, n_input)),
            last_batch: Array2::zeros((n_train % batch_size, n_input)),
            batch_labels: Vec::with_capacity(batch_size),
            lambda,
            t: 0,
        })
    }

    /// One update with learning rate `eta` on the next mini-batch (the order
    /// is reshuffled when an epoch is used up). Returns the mini-batch's
    /// summed loss before the update, or [`TrainError::Diverged`] if it is
    /// not finite. Allocates nothing.
    pub fn step(&mut self, eta: f64) -> Result<tensor::LossSum, TrainError> {
        if self.next_batch == self.batches.n_batches() {
            self.batches.shuffle(&mut self.rng);
            self.next_batch = 0;
        }
        let indices = self
            .batches
            .iter()
            .nth(self.next_batch)
            .expect("batch index within the epoch");
        self.next_batch += 1;
        let batch = if indices.len() == self.full_batch.nrows() {
            &mut self.full_batch
        } else {
            &mut self.last_batch
        };
        cifar::gather_rows(&self.data.images.view(), indices, batch);
        self.batch_labels.clear();
        self.batch_labels
            .extend(indices.iter().map(|&i| self.data.labels[i]));
        let sums = self.model.sgd_step(
            &batch.view(),
            &self.batch_labels,
            self.lambda,
            eta,
            &mut self.ws,
        );
        if !sums.loss_sum.is_finite() {
            return Err(TrainError::Diverged {
                step: self.t,
                eta,
                value: sums.loss_sum,
            });
        }
        self.t += 1;
        Ok(sums)
    }

    /// Updates done so far.
    pub fn steps_done(&self) -> u64 {
        self.t
    }

    /// The current model.
    pub fn model(&self) -> &Mlp<f32> {
        &self.model
    }

    /// The model, giving up the trainer.
    pub fn into_model(self) -> Mlp<f32> {
        self.model
    }
}

/// Train a fresh network on `train`, recording curves on `train` and `validation`.
///
/// Mini-batch gradient descent: the initial weights come from
/// [`Mlp::init`] with `config.seed`; before each epoch the training order is
/// reshuffled from a ChaCha8 stream seeded with `config.seed`; update `t`
/// uses `eta(t)` of the schedule, which also fixes the number of updates (an
/// epoch may be cut short by the end of the schedule). Each update runs on a
/// preallocated batch buffer and work buffers and allocates nothing
/// ([`Trainer`]).
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
    let mut trainer = Trainer::new(train, config)?;
    check_dataset("validation", validation, train.images.ncols())?;
    let schedule = config.schedule.build();
    let n_steps = schedule.n_steps();
    let records = record_steps(schedule.as_ref(), config.records_per_cycle);
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

    let mut next_record = 0;
    if records.first() == Some(&0) {
        record(trainer.model(), 0, &mut curve, observer)?;
        next_record = 1;
    }
    for t in 0..n_steps {
        let eta = schedule.eta(t);
        trainer.step(eta)?;
        observer.on_step(t + 1, n_steps, eta);
        if records.get(next_record) == Some(&(t + 1)) {
            record(trainer.model(), t + 1, &mut curve, observer)?;
            next_record += 1;
        }
    }
    Ok(Trained {
        model: trainer.into_model(),
        curve,
    })
}
