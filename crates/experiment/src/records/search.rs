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
    /// Validation accuracy against each setting a space varies (mean ± std
    /// per point), for searches over more than lambda.
    pub const POINTS_SVG: &str = "accuracy-vs-settings.svg";
    /// The same picture as PNG.
    pub const POINTS_PNG: &str = "accuracy-vs-settings.png";
    /// Sub-folder holding one run folder per trial.
    pub const RUNS: &str = "runs";
}

/// One planned training: its number, point of the space, lambda, training
/// seed and the other settings of its point.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    /// 0-based trial number (also its folder `runs/trial-NN`).
    pub trial: usize,
    /// 0-based point of the space (trials of one point differ only in seed).
    #[serde(default)]
    pub point: usize,
    /// L2 strength.
    pub lambda: f64,
    /// Training seed (initialisation and shuffles).
    pub seed: u64,
    /// The point's other settings, `key=value;...` (see
    /// [`space::settings_string`]); empty for a search over lambda alone.
    #[serde(default)]
    pub settings: String,
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
    /// Point of the space.
    #[serde(default)]
    pub point: usize,
    /// Training seed.
    pub seed: u64,
    /// L2 strength.
    pub lambda: f64,
    /// The point's other settings (`key=value;...`), empty for lambda alone.
    #[serde(default)]
    pub settings: String,
    /// `done`, `pruned` (stopped early; numbers at its last rung) or `diverged`.
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
            point: trial.point,
            seed: trial.seed,
            lambda: trial.lambda,
            settings: trial.settings.clone(),
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

/// Sort best first: finished, then pruned, then diverged; then validation
/// accuracy descending, then trial number; and number the ranks.
pub fn sort_table(rows: &mut [TableRow]) {
    rows.sort_by(|a, b| {
        let state = |s: RunState| match s {
            RunState::Done => 0,
            RunState::Pruned => 1,
            RunState::Diverged => 2,
        };
        let key = |r: &TableRow| (state(r.state), r.validation_accuracy.is_none());
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

/// One row of `lambdas.csv`: a point's trials (one lambda, with its other
/// settings) summarised over their seeds. Means and spreads are over the
/// trials that trained to the end (`done`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LambdaStats {
    /// L2 strength.
    pub lambda: f64,
    /// The point's other settings (`key=value;...`), empty for lambda alone.
    #[serde(default)]
    pub settings: String,
    /// Finished trials.
    pub n_done: usize,
    /// Trials stopped early by the pruning.
    #[serde(default)]
    pub n_pruned: usize,
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

/// Per-point statistics of a table (a point: one lambda with its other
/// settings), best mean validation accuracy first; ties keep the table's
/// order (so with one seed per point the first entry is the table's best row).
pub fn lambda_stats(rows: &[TableRow]) -> Vec<LambdaStats> {
    let mut order: Vec<(u64, &str)> = Vec::new();
    let mut groups: BTreeMap<(u64, &str), Vec<&TableRow>> = BTreeMap::new();
    for row in rows {
        let key = (row.lambda.to_bits(), row.settings.as_str());
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
            let n_pruned = group.iter().filter(|r| r.state == RunState::Pruned).count();
            LambdaStats {
                lambda: group[0].lambda,
                settings: group[0].settings.clone(),
                n_done: done.len(),
                n_pruned,
                n_diverged: group.len() - done.len() - n_pruned,
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
