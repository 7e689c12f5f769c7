//! Mini-batch gradient descent with a learning-rate schedule, learning curves
//! and divergence detection.

use crate::schedule::ScheduleSpec;
use crate::{Evaluation, Mlp};

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

/// Train a fresh network on `train`, recording curves on `train` and `validation`.
pub fn train(
    train: &cifar::Dataset<f32>,
    validation: &cifar::Dataset<f32>,
    config: &TrainConfig,
    observer: &mut dyn Observer,
) -> Result<Trained, TrainError> {
    let _ = (train, validation, config, observer);
    todo!("issue 4")
}
