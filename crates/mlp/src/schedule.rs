//! Learning-rate schedules: pure functions of the global update count `t`.

/// A learning-rate schedule: `eta(t)` for update step `t` (0-based).
pub trait Schedule: Send + Sync {
    /// The learning rate at update step `t`.
    fn eta(&self, t: u64) -> f64;
    /// Total number of update steps the schedule runs for.
    fn n_steps(&self) -> u64;
}

/// A schedule as written in a config file.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ScheduleSpec {
    /// Fixed `eta` for `n_steps` updates.
    Constant {
        /// Learning rate.
        eta: f64,
        /// Number of updates.
        n_steps: u64,
    },
    /// Triangular cyclical learning rate (SPEC.md), `n_cycles` whole cycles of `2 * n_s` steps.
    Triangular {
        /// Lowest learning rate (cycle ends).
        eta_min: f64,
        /// Highest learning rate (mid-cycle).
        eta_max: f64,
        /// Half-cycle length in update steps.
        n_s: u64,
        /// Number of whole cycles.
        n_cycles: u64,
    },
}
