//! Experiments: typed TOML configs, single runs with their result folders,
//! resumable parallel searches, CSV tables, learning-curve pictures and the report.
//!
//! SKELETON: issue 5 (and the `train` command of issue 4) implement this crate.
