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

use std::path::Path;
use std::time::Instant;

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::claim::Lease;
use crate::config::{LambdaGrid, SearchConfig};
pub use crate::records::search::{
    files, lambda_stats, sort_table, trial_dir, LambdaStats, TableRow, Trial,
};
use crate::run::{self, RunSummary};
use crate::worker::{self, WorkerOptions};
use crate::{io, plot, ExperimentError, Result};

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

/// `n` multiples of `step`, `step` apart, whose middle is as close as
/// possible to `centre`, all positive.
pub fn around(centre: f64, n: usize, step: f64) -> Vec<f64> {
    let first = (centre / step - (n as f64 - 1.0) / 2.0).round().max(1.0);
    (0..n).map(|j| tidy((first + j as f64) * step)).collect()
}

/// Round away binary noise (`13 * 0.0005 = 0.006500000000000001`) to 12 significant digits.
fn tidy(x: f64) -> f64 {
    format!("{x:.11e}").parse().unwrap_or(x)
}

/// The best lambda of the finished search `search`: highest mean validation
/// accuracy over its seeds. A clear error when its table is missing.
pub fn best_lambda(results_dir: &Path, search: &str) -> Result<f64> {
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
    lambda_stats(&rows)
        .iter()
        .find(|s| s.validation_accuracy_mean.is_some())
        .map(|s| s.lambda)
        .ok_or_else(|| ExperimentError::Format {
            path,
            message: "no finished (non-diverged) trial to take the best lambda from".into(),
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
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(1);
    let mut seeds: Vec<u64> = Vec::with_capacity(seeds_per_lambda);
    while seeds.len() < seeds_per_lambda {
        let s = u64::from(rng.next_u32());
        if !seeds.contains(&s) {
            seeds.push(s);
        }
    }
    lambdas
        .iter()
        .flat_map(|&lambda| seeds.iter().map(move |&seed| (lambda, seed)))
        .enumerate()
        .map(|(trial, (lambda, seed))| Trial {
            trial,
            lambda,
            seed,
        })
        .collect()
}

/// The plan of `config`: lambdas resolved, seeds drawn.
pub fn plan_for(config: &SearchConfig, results_dir: &Path) -> Result<Vec<Trial>> {
    let lambdas = resolve_lambdas(&config.lambdas, config.seed, results_dir)?;
    Ok(draw_plan(&lambdas, config.seeds_per_lambda, config.seed))
}

pub use crate::stats::mean_std;

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
                    "trial-{:02} (lambda {}, seed {})",
                    t.trial, t.lambda, t.seed
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

#[cfg(test)]
mod tests;
