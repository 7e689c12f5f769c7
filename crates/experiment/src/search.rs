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
use crate::space::{self, Point};
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
    let settings =
        space::parse_settings(&best.settings).map_err(|message| ExperimentError::Format {
            path: path.clone(),
            message: format!("column settings: {message}"),
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
            let parsed =
                space::validate(space, &config.train).map_err(|e| ExperimentError::Format {
                    path: results_dir.join(&config.name).join(files::CONFIG),
                    message: format!("`{}`: {}", e.key, e.message),
                })?;
            let best_of = |search: &str| best_point(results_dir, search);
            space::draw_points(&parsed, config.seed, results_dir, &best_of)
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
    Ok(draw_plan_points(
        &points,
        config.seeds_per_point,
        config.seed,
    ))
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
