//! The result files every other module reads or writes: their names and
//! their row types, with the pure functions that order and summarise rows.
//! This module sits below all the others (it uses only [`crate::stats`]), so
//! `run`, `search`, `worker`, `plot`, `lr_range` and `report` can share these
//! types without importing each other. The modules that write a file
//! re-export its types (`run::RunSummary` is [`run::RunSummary`]).

pub mod lr_range;
pub mod run;
pub mod search;
pub mod stages;
