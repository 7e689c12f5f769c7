//! Mini-batch gradient descent with a learning-rate schedule, learning curves
//! and divergence detection.

use ndarray::{s, Array2, ArrayViewMut2};
use rand::{RngCore, SeedableRng};

use crate::data::{gather_augmented, gather_rows, Augment, Data, MiniBatches};
use crate::optim::{Optimizer, OptimizerSpec};
use crate::schedule::{Schedule, ScheduleSpec};
use crate::{Evaluation, Mlp, StepOptions, Workspace};

mod curve_rows;
pub use curve_rows::CurveTrainRows;

/// ChaCha stream used for the per-epoch shuffles (the initialisation uses another).
pub(crate) const SHUFFLE_STREAM: u64 = 1;
/// ChaCha stream of the augmentation draws.
pub(crate) const AUGMENT_STREAM: u64 = 2;
/// ChaCha stream of the dropout masks.
pub(crate) const DROPOUT_STREAM: u64 = 3;

/// Upper bounds of the counts a config may ask for: far above any useful
/// value, low enough that a typo fails at once instead of running for ever
/// or allocating terabytes.
pub mod limits {
    /// Hidden units.
    pub const MAX_HIDDEN: usize = 1 << 16;
    /// Samples per update.
    pub const MAX_BATCH_SIZE: usize = 1 << 20;
    /// Learning-curve points per cycle.
    pub const MAX_RECORDS_PER_CYCLE: u64 = 10_000;
    /// Translation of the augmentation, in pixels.
    pub const MAX_TRANSLATE: usize = 64;
}

/// The training settings a search shares between its trials: everything
/// but the L2 strength and the seed.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSettings {
    /// Hidden units `m`.
    pub n_hidden: usize,
    /// Samples per update.
    pub batch_size: usize,
    /// Learning-rate schedule (it also fixes the number of updates).
    pub schedule: ScheduleSpec,
    /// Learning-curve points per cycle (plus step 0 and the end); for a
    /// non-cyclic schedule, points over the whole run.
    pub records_per_cycle: u64,
    /// Training rows the learning-curve points before the last one evaluate
    /// (`"all"` when absent: every point evaluates the whole split).
    #[serde(default)]
    pub curve_train_rows: CurveTrainRows,
    /// The optimizer (`sgd` when absent: the report's setting).
    #[serde(default = "sgd")]
    pub optimizer: OptimizerSpec,
    /// Inverted-dropout probability `p` in [0, 1) on the hidden layer (0 when absent).
    #[serde(default)]
    pub dropout: f64,
    /// Label smoothing `eps` in [0, 1) (0 when absent).
    #[serde(default)]
    pub label_smoothing: f64,
    /// Augmentation of training batches (none when absent).
    #[serde(default = "no_augment")]
    pub augment: Augment,
}

fn sgd() -> OptimizerSpec {
    OptimizerSpec::Sgd
}

fn no_augment() -> Augment {
    Augment::NONE
}

/// Everything one training run needs besides the data: the shared
/// settings plus the L2 strength and the seed. In a config file it is one
/// table (`[train]`) holding all of them.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// L2 strength.
    pub lambda: f64,
    /// Seed of the initialisation, the shuffles, the augmentation and the dropout masks.
    pub seed: u64,
    /// Everything else.
    #[serde(flatten)]
    pub settings: TrainSettings,
}

/// A bad training setting: the field (dotted below `train`, e.g.
/// `schedule.n_s`) and what is wrong. Config readers prefix their section.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidSetting {
    /// The field, e.g. `dropout` or `schedule.eta_max`.
    pub field: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

/// A [`TrainConfig`] whose values have been checked ([`TrainConfig::validate`]);
/// the only form training accepts.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidTrainConfig(TrainConfig);

impl std::ops::Deref for ValidTrainConfig {
    type Target = TrainConfig;
    fn deref(&self) -> &TrainConfig {
        &self.0
    }
}

/// One learning-curve point.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CurvePoint {
    /// Update steps done.
    pub step: u64,
    /// Learning rate at this step.
    pub eta: f64,
    /// On the training split: its first [`CurvePoint::train_rows`] rows.
    pub train: Evaluation,
    /// Training rows `train` was evaluated on: all of them at the last
    /// point of a run, fewer before it when
    /// [`TrainSettings::curve_train_rows`] says so.
    pub train_rows: usize,
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
    /// Asked after each recorded point: `true` stops the training there with
    /// [`TrainError::Stopped`] (a search pruning a hopeless trial).
    fn stop(&mut self) -> bool {
        false
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
    /// The config or the data do not fit (names the field or the split).
    #[error("invalid training config: {0}")]
    InvalidConfig(String),
    /// The observer asked to stop ([`Observer::stop`]) after a recorded point.
    #[error("training stopped by its observer at step {step}")]
    Stopped {
        /// Update steps done.
        step: u64,
        /// The learning curve up to there.
        curve: Vec<CurvePoint>,
    },
}

impl From<InvalidSetting> for TrainError {
    fn from(e: InvalidSetting) -> Self {
        TrainError::InvalidConfig(e.to_string())
    }
}

/// A finished run.
#[derive(Clone, Debug)]
pub struct Trained {
    /// Final weights.
    pub model: Mlp<f32>,
    /// Learning curves, in step order.
    pub curve: Vec<CurvePoint>,
}

fn check(ok: bool, field: &str, message: impl FnOnce() -> String) -> Result<(), InvalidSetting> {
    if ok {
        Ok(())
    } else {
        Err(InvalidSetting {
            field: field.to_string(),
            message: message(),
        })
    }
}

impl TrainSettings {
    /// The full config of one run with these settings.
    pub fn with(&self, lambda: f64, seed: u64) -> TrainConfig {
        TrainConfig {
            lambda,
            seed,
            settings: self.clone(),
        }
    }

    /// Check every value that does not depend on the data; the error names the field.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        use limits::*;
        check(
            (1..=MAX_HIDDEN).contains(&self.n_hidden),
            "n_hidden",
            || format!("{} is not in 1..={MAX_HIDDEN}", self.n_hidden),
        )?;
        check(
            (1..=MAX_BATCH_SIZE).contains(&self.batch_size),
            "batch_size",
            || format!("{} is not in 1..={MAX_BATCH_SIZE}", self.batch_size),
        )?;
        check(
            (1..=MAX_RECORDS_PER_CYCLE).contains(&self.records_per_cycle),
            "records_per_cycle",
            || {
                format!(
                    "{} is not in 1..={MAX_RECORDS_PER_CYCLE}",
                    self.records_per_cycle
                )
            },
        )?;
        if let Some(message) = self.curve_train_rows.problem() {
            return Err(InvalidSetting {
                field: "curve_train_rows".into(),
                message,
            });
        }
        self.schedule.validate().map_err(|e| InvalidSetting {
            field: format!("schedule.{}", e.field),
            message: e.message,
        })?;
        self.optimizer.validate().map_err(|e| InvalidSetting {
            field: format!("optimizer.{}", e.field),
            message: e.message,
        })?;
        check((0.0..1.0).contains(&self.dropout), "dropout", || {
            format!("{} must be in [0, 1)", self.dropout)
        })?;
        check(
            (0.0..1.0).contains(&self.label_smoothing),
            "label_smoothing",
            || format!("{} must be in [0, 1)", self.label_smoothing),
        )?;
        check(
            self.augment.translate <= MAX_TRANSLATE,
            "augment.translate",
            || format!("{} is not in 0..={MAX_TRANSLATE}", self.augment.translate),
        )
    }
}

impl TrainConfig {
    /// Check the values into a [`ValidTrainConfig`]; the error names the field.
    pub fn validate(&self) -> Result<ValidTrainConfig, InvalidSetting> {
        check(
            self.lambda.is_finite() && self.lambda >= 0.0,
            "lambda",
            || format!("{} must be a finite number >= 0", self.lambda),
        )?;
        // TOML integers are signed 64-bit: a larger seed could not be written back.
        check(self.seed <= i64::MAX as u64, "seed", || {
            format!("{} is too large (at most {})", self.seed, i64::MAX)
        })?;
        self.settings.validate()?;
        Ok(ValidTrainConfig(self.clone()))
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

fn check_data(name: &str, data: &Data<'_>, n_input: usize) -> Result<(), TrainError> {
    match data.problem(name, n_input) {
        Some(m) => Err(TrainError::InvalidConfig(m)),
        None => Ok(()),
    }
}

/// The update loop without the curves: a model, its optimizer, its work
/// buffers and the seeded mini-batch order, augmentation and dropout masks,
/// advanced one update at a time. [`train`] drives it; benchmarks and custom
/// loops can too.
pub struct Trainer<'a> {
    data: Data<'a>,
    model: Mlp<f32>,
    optimizer: Optimizer<f32>,
    ws: Workspace<f32>,
    rng: rand_chacha::ChaCha8Rng,
    augment_rng: rand_chacha::ChaCha8Rng,
    dropout_rng: rand_chacha::ChaCha8Rng,
    batches: MiniBatches,
    full_batch: Array2<f32>,
    last_batch: Array2<f32>,
    mask: Array2<f32>,
    batch_labels: Vec<u8>,
    next_batch: usize,
    lambda: f64,
    dropout: f64,
    label_smoothing: f64,
    augment: Augment,
    /// One image, for the augmented gather from a row source.
    scratch: Vec<f32>,
    t: u64,
}

impl<'a> Trainer<'a> {
    /// A fresh network ([`Mlp::init`] with `config.seed`) ready to train on
    /// `data`; checks that the data fit the config.
    pub fn new(data: Data<'a>, config: &ValidTrainConfig) -> Result<Self, TrainError> {
        let n_input = data.features.ncols();
        check_data("training", &data, n_input)?;
        let model = Mlp::<f32>::init(
            n_input,
            config.settings.n_hidden,
            data.n_classes,
            config.seed,
        );
        Self::with_model(data, model, config)
    }

    /// Continue training `model` on `data` as `config` says (its `n_hidden`
    /// is the model's own).
    pub fn with_model(
        data: Data<'a>,
        model: Mlp<f32>,
        config: &ValidTrainConfig,
    ) -> Result<Self, TrainError> {
        let n_train = data.features.nrows();
        let n_input = data.features.ncols();
        check_data("training", &data, model.n_input())?;
        let settings = &config.settings;
        let batch_size = settings.batch_size;
        if batch_size > n_train {
            return Err(TrainError::InvalidConfig(format!(
                "batch_size ({batch_size}) must be between 1 and the training split's size ({n_train} samples)"
            )));
        }
        if !settings.augment.is_none() && data.image.is_none() {
            return Err(TrainError::InvalidConfig(
                "augment needs image data (the training split has no image shape)".into(),
            ));
        }
        let stream = |id| {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(config.seed);
            rng.set_stream(id);
            rng
        };
        let batches = MiniBatches::new(n_train, batch_size);
        Ok(Self {
            data,
            ws: Workspace::for_model(&model, batch_size),
            optimizer: Optimizer::new(settings.optimizer, &model),
            mask: Array2::zeros((batch_size, model.n_hidden())),
            model,
            rng: stream(SHUFFLE_STREAM),
            augment_rng: stream(AUGMENT_STREAM),
            dropout_rng: stream(DROPOUT_STREAM),
            next_batch: batches.n_batches(),
            batches,
            full_batch: Array2::zeros((batch_size, n_input)),
            last_batch: Array2::zeros((n_train % batch_size, n_input)),
            batch_labels: Vec::with_capacity(batch_size),
            lambda: config.lambda,
            dropout: settings.dropout,
            label_smoothing: settings.label_smoothing,
            augment: settings.augment,
            scratch: Vec::with_capacity(n_input),
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
        match self.data.image {
            Some(shape) if !self.augment.is_none() => gather_augmented(
                &self.data.features,
                indices,
                shape,
                &self.augment,
                &mut self.augment_rng,
                &mut self.scratch,
                batch,
            ),
            _ => gather_rows(&self.data.features, indices, batch),
        }
        self.batch_labels.clear();
        self.batch_labels
            .extend(indices.iter().map(|&i| self.data.labels[i]));
        let n = indices.len();
        let mask = if self.dropout > 0.0 {
            let mut mask = self.mask.slice_mut(s![..n, ..]);
            draw_dropout_mask(self.dropout, &mut self.dropout_rng, &mut mask);
            Some(self.mask.slice(s![..n, ..]))
        } else {
            None
        };
        let options = StepOptions {
            dropout_mask: mask,
            label_smoothing: self.label_smoothing,
        };
        let sums = self.optimizer.step(
            &mut self.model,
            &batch.view(),
            &self.batch_labels,
            self.lambda,
            eta,
            &options,
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

/// Fill `mask` with inverted-dropout factors: each entry independently `0`
/// with probability `p`, else `1 / (1 - p)`; one `next_u32` per entry, in
/// row-major order.
pub fn draw_dropout_mask<R: RngCore>(p: f64, rng: &mut R, mask: &mut ArrayViewMut2<'_, f32>) {
    let keep = (1.0 / (1.0 - p)) as f32;
    // Drop when u < p 2^32, u uniform in 0..2^32.
    let threshold = (p * 4294967296.0) as u64;
    mask.map_inplace(|m| {
        *m = if u64::from(rng.next_u32()) < threshold {
            0.0
        } else {
            keep
        };
    });
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
/// Each point evaluates the whole validation split and, on the training
/// split, the first [`CurveTrainRows::rows`] rows, except the last point of
/// the run (its final step), which evaluates the whole training split. The
/// evaluations read the model only: the weights and every random stream are
/// the same whatever `curve_train_rows` says. A run stopped by its observer
/// ends on a point before the last, so its training numbers are those of
/// the first rows.
///
/// Stops with [`TrainError::Diverged`] as soon as a mini-batch loss or a
/// recorded cost is NaN or infinite.
pub fn train(
    train: Data<'_>,
    validation: Data<'_>,
    config: &ValidTrainConfig,
    observer: &mut dyn Observer,
) -> Result<Trained, TrainError> {
    let mut trainer = Trainer::new(train, config)?;
    check_data("validation", &validation, train.features.ncols())?;
    let schedule = config.settings.schedule.build();
    let n_steps = schedule.n_steps();
    let records = record_steps(schedule.as_ref(), config.settings.records_per_cycle);
    let mut curve = Vec::with_capacity(records.len());
    // The training rows of the points before the last (all of them unless
    // `curve_train_rows` says fewer).
    let n_head = config.settings.curve_train_rows.rows(train.len());
    let head = curve_rows::Head::new(&train.features, n_head);
    let head = head.features();

    let record =
        |model: &Mlp<f32>, step: u64, curve: &mut Vec<CurvePoint>, observer: &mut dyn Observer| {
            let eta = schedule.eta(step);
            let (train_eval, train_rows) = if step == n_steps {
                let all = model.evaluate_features(&train.features, train.labels, config.lambda);
                (all, train.len())
            } else {
                let labels = &train.labels[..n_head];
                (
                    model.evaluate_features(&head, labels, config.lambda),
                    n_head,
                )
            };
            let point = CurvePoint {
                step,
                eta,
                train: train_eval,
                train_rows,
                validation: model.evaluate_features(
                    &validation.features,
                    validation.labels,
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
        if observer.stop() {
            return Err(TrainError::Stopped { step: 0, curve });
        }
    }
    let mut t = 0;
    while t < n_steps {
        // The steps up to the next record run with the pool's other workers
        // kept awake for their split products (a record's evaluation needs
        // them free for its own parallel blocks).
        let until = records
            .get(next_record)
            .map_or(n_steps, |&r| r.min(n_steps));
        tensor::with_spinning_partners(|| {
            while t < until {
                let eta = schedule.eta(t);
                trainer.step(eta)?;
                t += 1;
                observer.on_step(t, n_steps, eta);
            }
            Ok::<(), TrainError>(())
        })?;
        if records.get(next_record) == Some(&t) {
            record(trainer.model(), t, &mut curve, observer)?;
            next_record += 1;
            if observer.stop() {
                return Err(TrainError::Stopped { step: t, curve });
            }
        }
    }
    Ok(Trained {
        model: trainer.into_model(),
        curve,
    })
}
