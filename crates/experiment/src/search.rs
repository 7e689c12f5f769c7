//! Searches: a plan of trials (lambda, seed) drawn up front and saved, run in
//! parallel over `jobs` workers (each trial single-threaded, so results do not
//! depend on `jobs`), each finished trial recorded atomically, so a re-run
//! after an interruption redoes only the unfinished trials and writes the same
//! table. A diverged trial is a row in state `diverged`, not the end of the search.
//!
//! Folder of a search `<results-dir>/<name>/`: `config.toml`, `plan.csv`,
//! `runs/trial-NN/` (one run folder each, see [`crate::run`]), and once every
//! trial is finished, `table.csv` (best first), `lambdas.csv` (mean and spread
//! per lambda over seeds) and `accuracy-vs-lambda.svg` (and `.png`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::claim::Lease;
use crate::config::{LambdaGrid, SearchConfig};
use crate::space::{self, Point};
use crate::run::{self, RunState, RunSummary};
use crate::worker::{self, WorkerOptions};
use crate::{io, plot, ExperimentError, Result};

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

/// The lambdas of `grid`. `LogUniform` draws from `seed` (ChaCha8, portable);
/// `AroundBest` and `BestOf` read `<results_dir>/<search>/table.csv`.
pub fn resolve_lambdas(grid: &LambdaGrid, seed: u64, results_dir: &Path) -> Result<Vec<f64>> {
    Ok(match grid {
        LambdaGrid::LogUniform {
            n,
            log10_min,
            log10_max,
        } => {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..*n)
                .map(|_| 10f64.powf(rng.random_range(*log10_min..*log10_max)))
                .collect()
        }
        LambdaGrid::List { values } => values.clone(),
        LambdaGrid::Range { start, step, n } => {
            (0..*n).map(|i| tidy(start + i as f64 * step)).collect()
        }
        LambdaGrid::AroundBest { search, n, step } => {
            let best = best_lambda(results_dir, search)?;
            around(best, *n, *step)
        }
        LambdaGrid::BestOf { search } => vec![best_lambda(results_dir, search)?],
    })
}

pub use crate::space::{around, tidy};

/// The best lambda of the finished search `search`: highest mean validation
/// accuracy over its seeds. A clear error when its table is missing.
pub fn best_lambda(results_dir: &Path, search: &str) -> Result<f64> {
    Ok(best_point(results_dir, search)?.lambda)
}

/// The best point of the finished search `search` (highest mean validation
/// accuracy over its seeds): its lambda and other settings. A clear error
/// when its table is missing.
pub fn best_point(results_dir: &Path, search: &str) -> Result<Point> {
    let path = results_dir.join(search).join(files::TABLE);
    if !path.is_file() {
        return Err(ExperimentError::Missing {
            path,
            hint: format!(
                "this experiment takes its lambda from the search `{search}`: run \
                 `cargo xtask {search}` first (with the same --results-dir), or give the \
                 lambda(s) in the config (a `list` or `range` grid; final-train also takes \
                 `--lambda`)"
            ),
        });
    }
    let rows = read_table(&path)?;
    let best = lambda_stats(&rows)
        .into_iter()
        .find(|s| s.validation_accuracy_mean.is_some())
        .ok_or_else(|| ExperimentError::Format {
            path: path.clone(),
            message: "no finished (non-diverged) trial to take the best lambda from".into(),
        })?;
    let settings = space::parse_settings(&best.settings).map_err(|message| {
        ExperimentError::Format {
            path: path.clone(),
            message: format!("column settings: {message}"),
        }
    })?;
    Ok(Point {
        lambda: best.lambda,
        settings,
    })
}

/// Read a search's `table.csv`: an error saying the table is malformed, and
/// on which line, when a row cannot be read or when it has no row at all
/// (empty, or only its header); a search writes at least one row.
pub fn read_table(path: &Path) -> Result<Vec<TableRow>> {
    let malformed = |message: String| ExperimentError::Format {
        path: path.to_path_buf(),
        message: format!(
            "malformed search table: {message}; re-run the search that writes it (or delete \
             its folder to start over)"
        ),
    };
    let bytes = std::fs::read(path).map_err(io::io_err(path))?;
    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    let mut rows = Vec::new();
    for row in reader.deserialize::<TableRow>() {
        let row = row.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            malformed(format!("line {line}: {e}"))
        })?;
        rows.push(row);
    }
    if rows.is_empty() {
        let what = if bytes.iter().all(u8::is_ascii_whitespace) {
            "the file is empty"
        } else {
            "line 1 (the header) is not followed by any data row"
        };
        return Err(malformed(format!("no trial rows: {what}")));
    }
    Ok(rows)
}

/// The plan: every lambda `seeds_per_lambda` times. The training seeds are
/// drawn from `seed` (a stream apart from the lambdas' draw) once and shared
/// by every lambda: trials of different lambdas then start from the same
/// initial weights and see the same mini-batch order, so the table compares
/// lambdas, not seeds (common random numbers).
pub fn draw_plan(lambdas: &[f64], seeds_per_lambda: usize, seed: u64) -> Vec<Trial> {
    let points: Vec<Point> = lambdas
        .iter()
        .map(|&lambda| Point {
            lambda,
            settings: Vec::new(),
        })
        .collect();
    draw_plan_points(&points, seeds_per_lambda, seed)
}

/// The plan of a space: every point `seeds_per_point` times, point-major,
/// with the same training seeds for every point (drawn as [`draw_plan`] does).
pub fn draw_plan_points(points: &[Point], seeds_per_point: usize, seed: u64) -> Vec<Trial> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(1);
    let mut seeds: Vec<u64> = Vec::with_capacity(seeds_per_point);
    while seeds.len() < seeds_per_point {
        let s = u64::from(rng.next_u32());
        if !seeds.contains(&s) {
            seeds.push(s);
        }
    }
    let settings: Vec<String> = points
        .iter()
        .map(|p| space::settings_string(&p.settings))
        .collect();
    points
        .iter()
        .enumerate()
        .flat_map(|(point, p)| seeds.iter().map(move |&seed| (point, p.lambda, seed)))
        .enumerate()
        .map(|(trial, (point, lambda, seed))| Trial {
            trial,
            point,
            lambda,
            seed,
            settings: settings[point].clone(),
        })
        .collect()
}

/// The points of `config`: its `[space]` drawn, or its `[lambdas]` resolved.
pub fn points_for(config: &SearchConfig, results_dir: &Path) -> Result<Vec<Point>> {
    match (&config.space, &config.lambdas) {
        (Some(space), _) => {
            let parsed = space::validate(space, &config.train).map_err(|e| {
                ExperimentError::Format {
                    path: results_dir.join(&config.name).join(files::CONFIG),
                    message: format!("`{}`: {}", e.key, e.message),
                }
            })?;
            space::draw_points(&parsed, config.seed, results_dir)
        }
        (None, Some(grid)) => Ok(resolve_lambdas(grid, config.seed, results_dir)?
            .into_iter()
            .map(|lambda| Point {
                lambda,
                settings: Vec::new(),
            })
            .collect()),
        (None, None) => Err(ExperimentError::Format {
            path: results_dir.join(&config.name).join(files::CONFIG),
            message: "the search has neither [space] nor [lambdas]".into(),
        }),
    }
}

/// The plan of `config`: points drawn (or lambdas resolved), seeds drawn.
pub fn plan_for(config: &SearchConfig, results_dir: &Path) -> Result<Vec<Trial>> {
    let points = points_for(config, results_dir)?;
    Ok(draw_plan_points(&points, config.seeds_per_point, config.seed))
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

pub use crate::stats::mean_std;

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
            let n_pruned = group
                .iter()
                .filter(|r| r.state == RunState::Pruned)
                .count();
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

/// What a search produced.
#[derive(Clone, Debug)]
pub struct SearchOutcome {
    /// The table, best first.
    pub rows: Vec<TableRow>,
    /// Per-lambda statistics, best first.
    pub lambdas: Vec<LambdaStats>,
    /// Trials run by this call (the others were recorded before).
    pub n_ran: usize,
    /// Seconds this call took.
    pub wall_seconds: f64,
}

/// Save `plan` as `plan.csv` in the search folder `dir` (created if need
/// be), or check that the saved one is the same. Any number of processes may
/// call this at once: each writes the same bytes atomically, then every one
/// reads the file back and refuses a plan that differs from its own.
pub fn save_plan(dir: &Path, plan: &[Trial]) -> Result<()> {
    io::create_dir(dir)?;
    let path = dir.join(files::PLAN);
    if !path.is_file() {
        io::write_csv(&path, plan)?;
    }
    let saved: Vec<Trial> = io::read_csv(&path)?;
    if saved != plan {
        return Err(ExperimentError::Conflict {
            path,
            message: "the saved plan differs from the one this config and seed give \
                      (different config, --seed, or an earlier search's result changed); \
                      delete this search folder to start over, or use another --results-dir"
                .into(),
        });
    }
    Ok(())
}

/// Run every unfinished trial of `plan` in the search folder `dir` with `jobs`
/// workers of this process, then write the table: [`save_plan`],
/// [`worker::work`] with the lease of [`Lease::from_env`], [`collect`].
/// `trial_fn` trains one trial into the run folder it is given and returns
/// its summary; it is called inside a single-thread rayon pool. The worker
/// records the summary (atomically) as the mark of a finished trial.
///
/// Other processes may work on the same folder at the same time (a second
/// local search, hand-started or Slurm workers): trials are claimed, so each
/// runs once, and this call returns when all are finished.
///
/// A trial that fails (an error, not a divergence) stops the scheduling of
/// new trials; the finished ones stay recorded and the error is returned.
pub fn run_trials<F>(
    name: &str,
    dir: &Path,
    plan: &[Trial],
    jobs: usize,
    trial_fn: F,
) -> Result<SearchOutcome>
where
    F: Fn(&Trial, &Path) -> Result<RunSummary> + Sync,
{
    let start = Instant::now();
    save_plan(dir, plan)?;
    let opts = WorkerOptions {
        jobs,
        lease: Lease::from_env(),
    };
    let report = worker::work(name, dir, plan, opts, trial_fn)?;
    let (rows, lambdas) = collect(name, dir, plan)?;
    Ok(SearchOutcome {
        rows,
        lambdas,
        n_ran: report.n_ran,
        wall_seconds: start.elapsed().as_secs_f64(),
    })
}

/// Write the results of the search folder `dir` from its trial folders:
/// `table.csv`, `lambdas.csv` and the accuracy-against-lambda pictures. An
/// error listing the unfinished trials (and who holds them) when some are.
pub fn collect(
    name: &str,
    dir: &Path,
    plan: &[Trial],
) -> Result<(Vec<TableRow>, Vec<LambdaStats>)> {
    let left = worker::unfinished(dir, plan);
    if !left.is_empty() {
        let list: Vec<String> = left
            .iter()
            .take(20)
            .map(|t| {
                format!(
                    "trial-{:02} (lambda {}{}, seed {})",
                    t.trial,
                    t.lambda,
                    if t.settings.is_empty() {
                        String::new()
                    } else {
                        format!(", {}", t.settings)
                    },
                    t.seed
                )
            })
            .collect();
        return Err(ExperimentError::Unfinished {
            dir: dir.to_path_buf(),
            n_unfinished: left.len(),
            n_trials: plan.len(),
            list: format!(
                "{}{}",
                list.join(", "),
                if left.len() > 20 { ", ..." } else { "" }
            ),
        });
    }
    let rows = write_table(dir, plan)?;
    let lambdas = lambda_stats(&rows);
    io::write_csv(&dir.join(files::LAMBDAS), &lambdas)?;
    plot::search_svg(&rows, name, &dir.join(files::ACCURACY_SVG))?;
    plot::search_png(&rows, name, &dir.join(files::ACCURACY_PNG))?;
    if rows.iter().any(|r| !r.settings.is_empty()) {
        plot::points_svg(&rows, name, &dir.join(files::POINTS_SVG))?;
        plot::points_png(&rows, name, &dir.join(files::POINTS_PNG))?;
    }
    Ok((rows, lambdas))
}

/// The plan saved in the search folder `dir`.
pub fn read_plan(dir: &Path) -> Result<Vec<Trial>> {
    let path = dir.join(files::PLAN);
    if !path.is_file() {
        return Err(ExperimentError::Missing {
            path,
            hint: "not a search folder, or its search was never started: prepare it with \
                   `cargo xtask slurm SEARCH --dry-run` or run the search once"
                .into(),
        });
    }
    io::read_csv(&path)
}

/// The compact line printed when a trial finishes.
pub(crate) fn trial_line(name: &str, trial: &Trial, n_total: usize, s: &RunSummary) -> String {
    let head = format!(
        "{name} trial {:>2}/{n_total} lambda {:.6}{} seed {:>10}",
        trial.trial + 1,
        trial.lambda,
        if trial.settings.is_empty() {
            String::new()
        } else {
            format!(" {}", trial.settings)
        },
        trial.seed
    );
    let fmt = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.4}"));
    match s.state {
        RunState::Done => format!(
            "{head}: val acc {} cost {} | train acc {}{} ({:.1} s)",
            fmt(s.validation_accuracy),
            fmt(s.validation_cost),
            fmt(s.train_accuracy),
            s.test_accuracy
                .map_or(String::new(), |t| format!(" | test acc {t:.4}")),
            s.wall_seconds
        ),
        RunState::Pruned => format!(
            "{head}: pruned: val acc {} ({})",
            fmt(s.validation_accuracy),
            s.message
        ),
        RunState::Diverged => format!("{head}: DIVERGED: {}", s.message),
    }
}

/// Build the table from the recorded summaries of every trial of `plan`,
/// sort it and write `table.csv`.
pub fn write_table(dir: &Path, plan: &[Trial]) -> Result<Vec<TableRow>> {
    let mut rows = Vec::with_capacity(plan.len());
    for trial in plan {
        let run_dir = trial_dir(dir, trial.trial);
        let summary = run::read_summary(&run_dir)?.ok_or_else(|| ExperimentError::Missing {
            path: run_dir.join(run::files::SUMMARY),
            hint: "the trial has not finished; re-run the search to finish it".into(),
        })?;
        rows.push(TableRow::new(trial, &summary));
    }
    sort_table(&mut rows);
    io::write_csv(&dir.join(files::TABLE), &rows)?;
    Ok(rows)
}

/// Refuse a search folder `dir` whose trial folders were made from other
/// data: a trial's `config.toml` records the data fingerprint it trained on,
/// and a resumed search must not mix two data sets in one table. The error
/// names the first such folder and the fix.
pub fn check_data_fingerprint(dir: &Path, plan: &[Trial], fingerprint: &str) -> Result<()> {
    for trial in plan {
        let run_dir = trial_dir(dir, trial.trial);
        let Some(prov) = run::read_provenance(&run_dir) else {
            continue;
        };
        if prov.data_fingerprint != fingerprint {
            return Err(ExperimentError::Conflict {
                path: run_dir.clone(),
                message: format!(
                    "this trial was trained on other data (fingerprint {}, from {}) than the \
                     data now given (fingerprint {fingerprint}); a table must not mix the two: \
                     use a fresh --results-dir, or delete {} (or the whole search folder {}) \
                     to redo it on these data",
                    prov.data_fingerprint,
                    prov.data_dir,
                    run_dir.display(),
                    dir.display()
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
