//! The files of one learning-rate range test: their names and folder,
//! `lr-range.csv` ([`RangePoint`]) and `suggestion.csv` ([`Suggestion`]).

use serde::{Deserialize, Serialize};

/// One row of `lr-range.csv`: one update.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RangePoint {
    /// Update index (0-based).
    pub step: u64,
    /// Learning rate of this update.
    pub eta: f64,
    /// Mean loss of the mini-batch, before the update.
    pub loss: f64,
    /// Moving average of `loss` (bias-corrected).
    pub loss_smoothed: f64,
    /// Moving average of the mini-batch accuracy (bias-corrected).
    pub batch_accuracy_smoothed: f64,
    /// Validation accuracy after this update, on the updates where it is measured.
    pub validation_accuracy: Option<f64>,
}

/// What the curves suggest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Suggestion {
    /// Where validation accuracy starts to rise.
    pub eta_min: f64,
    /// Where validation accuracy peaks.
    pub eta_max: f64,
    /// Smith's alternative lower bound, `eta_max / 4`.
    pub eta_max_quarter: f64,
    /// The peak (3-point average) validation accuracy.
    pub peak_validation_accuracy: f64,
    /// Whether the loss exploded before `eta_end` (the test stopped early).
    pub stopped_early: bool,
    /// The rule, in words.
    pub rule: String,
}

/// Files of a range test, in `<results-dir>/lr-range-test/<name>/`.
pub mod files {
    /// One row per update ([`super::RangePoint`]).
    pub const CSV: &str = "lr-range.csv";
    /// The suggestion ([`super::Suggestion`]), one row.
    pub const SUGGESTION: &str = "suggestion.csv";
    /// The picture.
    pub const SVG: &str = "lr-range.svg";
    /// The picture, as PNG.
    pub const PNG: &str = "lr-range.png";
}

/// The folder of the range test of the run config named `name`.
pub fn folder(results_dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    results_dir.join("lr-range-test").join(name)
}
