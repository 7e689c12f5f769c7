//! The files of one search folder: their names, `plan.csv` ([`Trial`]),
//! `table.csv` ([`TableRow`]) and `lambdas.csv` ([`LambdaStats`]), and the
//! pure functions that order and summarise the table.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::run::{RunState, RunSummary};
use crate::stats::mean_std;

/// File names inside a search folder.
pub mod files {
    /// The search config as run (after `--seed` / `--lambda`).
    pub const CONFIG: &str = "config.toml";
    /// Every trial's lambda and seed, drawn before any training.
    pub const PLAN: &str = "plan.csv";
    /// One row per trial, best first.
    pub const TABLE: &str = "table.csv";
    /// Mean and spread per lambda over its seeds.
    pub const LAMBDAS: &str = "lambdas.csv";
    /// Validation accuracy against lambda.
    pub const ACCURACY_SVG: &str = "accuracy-vs-lambda.svg";
    /// The same picture as PNG.
    pub const ACCURACY_PNG: &str = "accuracy-vs-lambda.png";
    /// Sub-folder holding one run folder per trial.
    pub const RUNS: &str = "runs";
}

/// One planned training: its number, lambda and training seed.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    /// 0-based trial number (also its folder `runs/trial-NN`).
    pub trial: usize,
    /// L2 strength.
    pub lambda: f64,
    /// Training seed (initialisation and shuffles).
    pub seed: u64,
}

/// The run folder of `trial` in the search folder `search_dir`.
pub fn trial_dir(search_dir: &Path, trial: usize) -> PathBuf {
    search_dir
        .join(files::RUNS)
        .join(format!("trial-{trial:02}"))
}

/// One row of `table.csv`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TableRow {
    /// 1 for the best trial.
    pub rank: usize,
    /// Trial number.
    pub trial: usize,
    /// Training seed.
    pub seed: u64,
    /// L2 strength.
    pub lambda: f64,
    /// `done` or `diverged`.
    pub state: RunState,
    /// Final validation accuracy.
    pub validation_accuracy: Option<f64>,
    /// Final validation cost.
    pub validation_cost: Option<f64>,
    /// Final training accuracy.
    pub train_accuracy: Option<f64>,
    /// Final training cost.
    pub train_cost: Option<f64>,
    /// Test accuracy, when the search evaluates it.
    pub test_accuracy: Option<f64>,
    /// Seconds the trial took.
    pub wall_seconds: f64,
}

impl TableRow {
    /// The row of a finished trial (rank set by [`sort_table`]).
    pub fn new(trial: &Trial, s: &RunSummary) -> Self {
        Self {
            rank: 0,
            trial: trial.trial,
            seed: trial.seed,
            lambda: trial.lambda,
            state: s.state,
            validation_accuracy: s.validation_accuracy,
            validation_cost: s.validation_cost,
            train_accuracy: s.train_accuracy,
            train_cost: s.train_cost,
            test_accuracy: s.test_accuracy,
            wall_seconds: s.wall_seconds,
        }
    }
}

/// Sort best first: finished before diverged, then validation accuracy
/// descending, then trial number; and number the ranks.
pub fn sort_table(rows: &mut [TableRow]) {
    rows.sort_by(|a, b| {
        let key = |r: &TableRow| (r.state != RunState::Done, r.validation_accuracy.is_none());
        key(a)
            .cmp(&key(b))
            .then_with(|| {
                let acc = |r: &TableRow| r.validation_accuracy.unwrap_or(f64::NEG_INFINITY);
                acc(b).total_cmp(&acc(a))
            })
            .then(a.trial.cmp(&b.trial))
    });
    for (i, row) in rows.iter_mut().enumerate() {
        row.rank = i + 1;
    }
}

/// One row of `lambdas.csv`: a lambda's trials summarised over their seeds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LambdaStats {
    /// L2 strength.
    pub lambda: f64,
    /// Finished trials.
    pub n_done: usize,
    /// Diverged trials.
    pub n_diverged: usize,
    /// Mean validation accuracy over finished trials.
    pub validation_accuracy_mean: Option<f64>,
    /// Sample standard deviation (n - 1) of the validation accuracy.
    pub validation_accuracy_std: Option<f64>,
    /// Mean test accuracy over finished trials (when evaluated).
    pub test_accuracy_mean: Option<f64>,
    /// Sample standard deviation (n - 1) of the test accuracy.
    pub test_accuracy_std: Option<f64>,
}

/// Per-lambda statistics of a table, best mean validation accuracy first;
/// ties keep the table's order (so with one seed per lambda the first entry
/// is the table's best row).
pub fn lambda_stats(rows: &[TableRow]) -> Vec<LambdaStats> {
    let mut order: Vec<u64> = Vec::new();
    let mut groups: BTreeMap<u64, Vec<&TableRow>> = BTreeMap::new();
    for row in rows {
        let key = row.lambda.to_bits();
        if !groups.contains_key(&key) {
            order.push(key);
        }
        groups.entry(key).or_default().push(row);
    }
    let mut stats: Vec<LambdaStats> = order
        .iter()
        .map(|key| {
            let group = &groups[key];
            let done: Vec<&&TableRow> =
                group.iter().filter(|r| r.state == RunState::Done).collect();
            let val: Vec<f64> = done.iter().filter_map(|r| r.validation_accuracy).collect();
            let test: Vec<f64> = done.iter().filter_map(|r| r.test_accuracy).collect();
            let (validation_accuracy_mean, validation_accuracy_std) = mean_std(&val);
            let (test_accuracy_mean, test_accuracy_std) = mean_std(&test);
            LambdaStats {
                lambda: group[0].lambda,
                n_done: done.len(),
                n_diverged: group.len() - done.len(),
                validation_accuracy_mean,
                validation_accuracy_std,
                test_accuracy_mean,
                test_accuracy_std,
            }
        })
        .collect();
    // Stable: equal means keep the table's order.
    stats.sort_by(|a, b| {
        let acc = |s: &LambdaStats| s.validation_accuracy_mean.unwrap_or(f64::NEG_INFINITY);
        acc(b).total_cmp(&acc(a))
    });
    stats
}
