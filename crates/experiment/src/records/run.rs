//! The files of one run folder: their names, `summary.csv` ([`RunSummary`],
//! with the [`RunState`]) and `curves.csv` ([`CurveRow`]).

use mlp::train::CurvePoint;
use mlp::Evaluation;
use serde::{Deserialize, Serialize};

/// File names inside a run folder.
pub mod files {
    /// The resolved config.
    pub const CONFIG: &str = "config.toml";
    /// Learning curves, one row per recorded point.
    pub const CURVES: &str = "curves.csv";
    /// Final numbers; written last, it marks the run as finished.
    pub const SUMMARY: &str = "summary.csv";
    /// Trained weights.
    pub const WEIGHTS: &str = "weights.safetensors";
    /// Learning-curve picture.
    pub const CURVES_SVG: &str = "curves.svg";
    /// The same picture as PNG.
    pub const CURVES_PNG: &str = "curves.png";
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Trained to the end.
    Done,
    /// Stopped early by a search's pruning; the numbers are those of its
    /// last recorded point (a point before the run's last, so its training
    /// numbers are on the first `curve_train_rows` rows).
    Pruned,
    /// The cost became NaN or infinite; no numbers.
    Diverged,
}

impl std::fmt::Display for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RunState::Done => "done",
            RunState::Pruned => "pruned",
            RunState::Diverged => "diverged",
        })
    }
}

/// The final numbers of one run: `summary.csv` (one row). Evaluations are
/// empty when the run diverged (and test ones when the test split was not evaluated).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// Run name.
    pub name: String,
    /// How it ended.
    pub state: RunState,
    /// L2 strength.
    pub lambda: f64,
    /// Training seed.
    pub seed: u64,
    /// Update steps of the schedule.
    pub n_steps: u64,
    /// Final cost on the training split.
    pub train_cost: Option<f64>,
    /// Final loss on the training split.
    pub train_loss: Option<f64>,
    /// Final accuracy on the training split.
    pub train_accuracy: Option<f64>,
    /// Final cost on the validation split.
    pub validation_cost: Option<f64>,
    /// Final loss on the validation split.
    pub validation_loss: Option<f64>,
    /// Final accuracy on the validation split.
    pub validation_accuracy: Option<f64>,
    /// Cost on the test split.
    pub test_cost: Option<f64>,
    /// Loss on the test split.
    pub test_loss: Option<f64>,
    /// Accuracy on the test split.
    pub test_accuracy: Option<f64>,
    /// Seconds from the start of training to the last evaluation.
    pub wall_seconds: f64,
    /// Why it diverged; empty when done.
    pub message: String,
}

impl RunSummary {
    /// A summary with no numbers yet.
    pub fn empty(name: &str, state: RunState, lambda: f64, seed: u64, n_steps: u64) -> Self {
        Self {
            name: name.to_string(),
            state,
            lambda,
            seed,
            n_steps,
            train_cost: None,
            train_loss: None,
            train_accuracy: None,
            validation_cost: None,
            validation_loss: None,
            validation_accuracy: None,
            test_cost: None,
            test_loss: None,
            test_accuracy: None,
            wall_seconds: 0.0,
            message: String::new(),
        }
    }

    pub(crate) fn set_final(&mut self, train: &Evaluation, validation: &Evaluation) {
        self.train_cost = Some(train.cost);
        self.train_loss = Some(train.loss);
        self.train_accuracy = Some(train.accuracy);
        self.validation_cost = Some(validation.cost);
        self.validation_loss = Some(validation.loss);
        self.validation_accuracy = Some(validation.accuracy);
    }

    pub(crate) fn set_test(&mut self, test: &Evaluation) {
        self.test_cost = Some(test.cost);
        self.test_loss = Some(test.loss);
        self.test_accuracy = Some(test.accuracy);
    }
}

/// One row of `curves.csv`: a learning-curve point, flattened.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CurveRow {
    /// Update steps done.
    pub step: u64,
    /// Learning rate at this step.
    pub eta: f64,
    /// Training rows the three train columns were evaluated on: the whole
    /// split at a run's last point, the first `curve_train_rows` rows
    /// before it. Empty in files written before the column existed (they
    /// evaluated the whole split at every point).
    #[serde(default)]
    pub train_rows: Option<usize>,
    /// Cost on the training split (its first `train_rows` rows).
    pub train_cost: f64,
    /// Loss on the training split.
    pub train_loss: f64,
    /// Accuracy on the training split.
    pub train_accuracy: f64,
    /// Cost on the validation split.
    pub validation_cost: f64,
    /// Loss on the validation split.
    pub validation_loss: f64,
    /// Accuracy on the validation split.
    pub validation_accuracy: f64,
}

impl From<&CurvePoint> for CurveRow {
    fn from(p: &CurvePoint) -> Self {
        Self {
            step: p.step,
            eta: p.eta,
            train_rows: Some(p.train_rows),
            train_cost: p.train.cost,
            train_loss: p.train.loss,
            train_accuracy: p.train.accuracy,
            validation_cost: p.validation.cost,
            validation_loss: p.validation.loss,
            validation_accuracy: p.validation.accuracy,
        }
    }
}
