//! A bad value of a config key, below every module that checks one (the
//! configs, the search space, the pruning rule), so they need not import
//! each other to report it. [`crate::config`] attaches the file name.

/// A bad value found by a `validate()`, before the file name is attached.
#[derive(Clone, Debug, PartialEq)]
pub struct InvalidValue {
    /// Dotted key, e.g. `train.schedule.eta_max`.
    pub key: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl InvalidValue {
    /// The bad value of `key` and what is wrong with it.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}
