//! The entry points of `cargo xtask train`, `coarse-search`, `fine-search` and
//! `final-train` (the xtask modules only parse flags and call these), so the
//! same code runs from the command line, from `reproduce` and from tests.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mlp::train::Silent;

use crate::claim::Lease;
use crate::config::{self, LambdaGrid, Provenance, RunConfig, SearchConfig, Validate};
use crate::data::{self, DataSource};
use crate::progress::RunProgress;
use crate::run::{self, RunState, RunSummary};
use crate::rungs::{Gate, RungObserver};
use crate::search::{self, SearchOutcome, Trial};
use crate::space::{self, Space};
use crate::worker::{self, WorkReport, WorkerOptions};
use crate::{io, ExperimentError, Result};

/// What every command shares: where the data and results are, and the
/// `--seed` / `--jobs` flags.
pub struct Options<'a> {
    /// The data, loaded once and shared by every stage of the process.
    pub data: &'a DataSource,
    /// Where result folders go.
    pub results_dir: PathBuf,
    /// The checkout, for `git rev-parse HEAD`.
    pub repo_root: PathBuf,
    /// Overrides the config's seed (a run's training seed, a search's plan seed).
    pub seed: Option<u64>,
    /// Worker threads: parallel trials of a search, or the threads of a single run.
    pub jobs: usize,
}

/// What a command is doing when Ctrl-C arrives, for the message it prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Work {
    /// `train`: one run.
    Run,
    /// A search (`coarse-search`, `fine-search`, `final-train`).
    Search,
    /// `reproduce`: every stage.
    Reproduce,
}

impl Work {
    /// What happens to the results when this work is interrupted.
    pub fn interrupt_message(self) -> &'static str {
        match self {
            Work::Run => {
                "interrupted: the run was stopped before it finished and nothing of it is kept; \
                 its folder still holds the previous result, if there was one (a run is built \
                 aside and swapped in only when complete); re-run the same command to train it"
            }
            Work::Search => {
                "interrupted: finished trials are recorded; re-run the same command to finish \
                 the remaining ones"
            }
            Work::Reproduce => {
                "interrupted: finished stages and search trials are recorded, a training in \
                 progress is not kept; re-run the same command to finish (finished trials are \
                 reused)"
            }
        }
    }
}

/// Whether the config at `path` is a search (it has a `[lambdas]` or `[space]` table,
/// e.g. experiments/beyond.toml, several seeds of one recipe) rather than
/// one run; `false` when it cannot be read or parsed (loading it then says why).
pub fn is_search_config(path: &Path) -> bool {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok())
        .is_some_and(|table| table.contains_key("lambdas") || table.contains_key("space"))
}

/// Every core the process may use (the default of `--jobs`).
pub fn all_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The provenance of runs made with `opts` (fingerprints the data once).
fn provenance(opts: &Options<'_>) -> Result<Provenance> {
    Ok(Provenance {
        git_revision: data::git_revision(&opts.repo_root),
        data_fingerprint: opts.data.fingerprint()?,
        data_dir: opts.data.dir().display().to_string(),
        search: None,
        trial: None,
    })
}

fn pool(jobs: usize) -> Result<rayon::ThreadPool> {
    tensor::pool::pool_builder(jobs)
        .build()
        .map_err(|e| ExperimentError::Threads(e.to_string()))
}

/// `cargo xtask train CONFIG.toml`: one training as `config_path` says, written
/// to `<results-dir>/<name>/`. A divergence writes the summary (state
/// `diverged`) and returns an error naming the step and eta.
pub fn train(config_path: &Path, opts: &Options<'_>) -> Result<RunSummary> {
    let mut config: RunConfig = config::load(config_path)?;
    if let Some(seed) = opts.seed {
        config.train.seed = seed;
        config.validate().map_err(|e| e.in_file(config_path))?;
    }
    train_config(config, opts)
}

/// [`train`] for a config already in memory.
pub fn train_config(mut config: RunConfig, opts: &Options<'_>) -> Result<RunSummary> {
    let splits = opts.data.splits(&config.data)?;
    config.provenance = Some(provenance(opts)?);
    let dir = opts.results_dir.join(&config.name);
    let mut progress =
        RunProgress::new(&config.name, run::n_steps(&config.train.settings.schedule))
            .with_train_rows(splits.train.len());
    // The pool runs this training alone: its step's products split too.
    let result = pool(opts.jobs)?.install(|| {
        tensor::with_small_products_split(|| run::execute(&splits, &config, &dir, &mut progress))
    });
    progress.finish();
    let summary = result?;
    run::write_summary(&dir, &summary)?;
    match summary.state {
        RunState::Done | RunState::Pruned => {
            println!("{}", describe_run(&summary, &dir));
            Ok(summary)
        }
        RunState::Diverged => Err(ExperimentError::Diverged {
            name: config.name,
            message: summary.message,
        }),
    }
}

/// One line on a finished run.
fn describe_run(s: &RunSummary, dir: &Path) -> String {
    let fmt = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.4}"));
    format!(
        "{}: train acc {} cost {} | val acc {} cost {} | test acc {} cost {} | {:.1} s -> {}",
        s.name,
        fmt(s.train_accuracy),
        fmt(s.train_cost),
        fmt(s.validation_accuracy),
        fmt(s.validation_cost),
        fmt(s.test_accuracy),
        fmt(s.test_cost),
        s.wall_seconds,
        dir.display()
    )
}

/// Load a search config and apply `--seed` and `--lambda` (which replaces the
/// lambdas, or the space's `lambda` key, by that one value).
pub fn load_search(
    config_path: &Path,
    seed: Option<u64>,
    lambda: Option<f64>,
) -> Result<SearchConfig> {
    let mut config: SearchConfig = config::load(config_path)?;
    if let Some(seed) = seed {
        config.seed = seed;
    }
    if let Some(lambda) = lambda {
        match &mut config.space {
            Some(space) => {
                let one = Space::lambda_grid(&[lambda]);
                space
                    .0
                    .insert(space::LAMBDA.into(), one.0[space::LAMBDA].clone());
            }
            None => {
                config.lambdas = Some(LambdaGrid::List {
                    values: vec![lambda],
                })
            }
        }
    }
    config.validate().map_err(|e| e.in_file(config_path))?;
    Ok(config)
}

/// Save the search config in its folder, or check it equals the saved one: a
/// finished trial is only reused by the same config. Safe to call from many
/// processes at once (the same bytes are written atomically, then read back).
fn save_or_check_config(dir: &Path, config: &SearchConfig) -> Result<()> {
    let path = dir.join(search::files::CONFIG);
    if !path.is_file() {
        io::write_toml(&path, config)?;
    }
    let saved: SearchConfig = config::load(&path)?;
    if &saved != config {
        return Err(ExperimentError::Conflict {
            path,
            message: format!(
                "this folder holds a search made with a different config; delete {} to start \
                 over, or use another --results-dir",
                dir.display()
            ),
        });
    }
    Ok(())
}

/// Create (or check) the search folder of `config`: `config.toml` and
/// `plan.csv`, so that workers need nothing else. Returns the folder and the plan.
pub fn prepare_search(config: &SearchConfig, results_dir: &Path) -> Result<(PathBuf, Vec<Trial>)> {
    let dir = results_dir.join(&config.name);
    let plan = search::plan_for(config, results_dir)?;
    io::create_dir(&dir)?;
    save_or_check_config(&dir, config)?;
    search::save_plan(&dir, &plan)?;
    Ok((dir, plan))
}

/// The function that trains one trial of `config` on `splits`: its point's
/// settings applied to the config's `[train]`, and, when the search prunes,
/// stopped at a rung where the [`Gate`] of the search folder `dir` says so.
fn trial_runner<'a>(
    config: &'a SearchConfig,
    splits: Arc<crate::data::Splits>,
    base: Provenance,
    gate: &'a Gate<'a>,
) -> impl Fn(&Trial, &Path) -> Result<RunSummary> + Sync + 'a {
    move |trial: &Trial, run_dir: &Path| {
        let settings = space::parse_settings(&trial.settings)
            .map_err(|message| ExperimentError::Format {
                path: run_dir.to_path_buf(),
                message: format!("the plan's settings of trial {}: {message}", trial.trial),
            })
            .and_then(|s| {
                space::apply(&config.train, &s).map_err(|e| ExperimentError::Format {
                    path: run_dir.to_path_buf(),
                    message: format!("trial {}: `{}`: {}", trial.trial, e.key, e.message),
                })
            })?;
        let run_config = RunConfig {
            name: format!("{}-trial-{:02}", config.name, trial.trial),
            evaluate_test: config.evaluate_test,
            data: config.data.clone(),
            train: settings.with(trial.lambda, trial.seed),
            provenance: Some(Provenance {
                search: Some(config.name.clone()),
                trial: Some(trial.trial),
                ..base.clone()
            }),
        };
        if gate.rung_every().is_none() {
            return run::execute(&splits, &run_config, run_dir, &mut Silent);
        }
        let mut observer = RungObserver::new(gate, trial, &settings);
        let mut summary = run::execute(&splits, &run_config, run_dir, &mut observer)?;
        if let Some(e) = observer.error {
            return Err(e);
        }
        if let Some(why) = observer.verdict {
            summary.message = why;
        }
        Ok(summary)
    }
}

/// `cargo xtask coarse-search` / `fine-search` / `final-train`: draw (or
/// reload) the plan, run the unfinished trials over `opts.jobs` workers on
/// one shared copy of the data, write the table and the picture. Workers in
/// other processes may share the folder (see [`crate::worker`]).
pub fn search(config: &SearchConfig, opts: &Options<'_>) -> Result<SearchOutcome> {
    let (dir, plan) = prepare_search(config, &opts.results_dir)?;
    let base = provenance(opts)?;
    search::check_data_fingerprint(&dir, &plan, &base.data_fingerprint)?;
    let splits = opts.data.splits(&config.data)?;
    let pruning = config.pruning();
    let gate = Gate::new(&dir, &plan, &pruning, Lease::from_env());
    let trial_fn = trial_runner(config, splits, base, &gate);
    let outcome = search::run_trials(&config.name, &dir, &plan, opts.jobs, trial_fn)?;
    print_outcome(config, &outcome, &dir);
    Ok(outcome)
}

/// The config and plan saved in the search folder `dir`.
pub fn load_search_dir(dir: &Path) -> Result<(SearchConfig, Vec<Trial>)> {
    let plan = search::read_plan(dir)?;
    let config: SearchConfig = config::load(&dir.join(search::files::CONFIG))?;
    Ok((config, plan))
}

/// `cargo xtask worker SEARCH_DIR`: work on the prepared search folder `dir`
/// with `opts.jobs` workers until every trial is finished (trials held by
/// live workers elsewhere are waited for, expired ones taken over). Writes no
/// table: that is [`collect`]'s job.
pub fn worker(dir: &Path, opts: &Options<'_>, lease: Lease) -> Result<WorkReport> {
    let (config, plan) = load_search_dir(dir)?;
    let base = provenance(opts)?;
    search::check_data_fingerprint(dir, &plan, &base.data_fingerprint)?;
    let splits = opts.data.splits(&config.data)?;
    let pruning = config.pruning();
    let gate = Gate::new(dir, &plan, &pruning, lease);
    let trial_fn = trial_runner(&config, splits, base, &gate);
    let worker_opts = WorkerOptions {
        jobs: opts.jobs,
        lease,
    };
    let report = worker::work(&config.name, dir, &plan, worker_opts, trial_fn)?;
    println!(
        "{}: worker {} pid {} ran {} trial(s) ({} taken over) in {:.1} s; no trial left",
        config.name,
        crate::claim::host_name(),
        std::process::id(),
        report.n_ran,
        report.n_taken_over,
        report.wall_seconds
    );
    Ok(report)
}

/// `cargo xtask collect SEARCH_DIR`: the table, `lambdas.csv` and pictures of
/// the search folder `dir` from its trial folders; an error listing the
/// unfinished trials when some are.
pub fn collect(dir: &Path) -> Result<SearchOutcome> {
    let start = std::time::Instant::now();
    let (config, plan) = load_search_dir(dir)?;
    let (rows, lambdas) = search::collect(&config.name, dir, &plan)?;
    let outcome = SearchOutcome {
        rows,
        lambdas,
        n_ran: 0,
        wall_seconds: start.elapsed().as_secs_f64(),
    };
    print_outcome(&config, &outcome, dir);
    Ok(outcome)
}

fn print_outcome(config: &SearchConfig, outcome: &SearchOutcome, dir: &Path) {
    let n_diverged = outcome
        .rows
        .iter()
        .filter(|r| r.state == RunState::Diverged)
        .count();
    let n_pruned = outcome
        .rows
        .iter()
        .filter(|r| r.state == RunState::Pruned)
        .count();
    println!(
        "{}: {} trials ({} run now, {} pruned, {} diverged) in {:.1} s -> {}",
        config.name,
        outcome.rows.len(),
        outcome.n_ran,
        n_pruned,
        n_diverged,
        outcome.wall_seconds,
        dir.join(search::files::TABLE).display()
    );
    if outcome.n_ran == outcome.rows.len() && outcome.wall_seconds > 0.0 {
        let busy: f64 = outcome.rows.iter().map(|r| r.wall_seconds).sum();
        println!(
            "{}: sum of trial times {busy:.1} s over {:.1} s wall: {:.2} trials at a time",
            config.name,
            outcome.wall_seconds,
            busy / outcome.wall_seconds
        );
    }
    if let Some(best) = outcome.lambdas.first() {
        let pm = |mean: Option<f64>, std: Option<f64>| match (mean, std) {
            (Some(m), Some(s)) => format!("{m:.4} ± {s:.4}"),
            (Some(m), None) => format!("{m:.4}"),
            _ => "-".to_string(),
        };
        println!(
            "{}: best lambda {:.6}{}: validation accuracy {} over {} run(s){}",
            config.name,
            best.lambda,
            if best.settings.is_empty() {
                String::new()
            } else {
                format!(" ({})", best.settings)
            },
            pm(best.validation_accuracy_mean, best.validation_accuracy_std),
            best.n_done,
            if best.test_accuracy_mean.is_some() {
                format!(
                    ", test accuracy {} (mean ± sample std)",
                    pm(best.test_accuracy_mean, best.test_accuracy_std)
                )
            } else {
                String::new()
            }
        );
    }
    if config.evaluate_test {
        let mut rows = outcome.rows.clone();
        rows.sort_by_key(|r| r.trial);
        for r in rows {
            println!(
                "{}: trial {} seed {} lambda {:.6}: test accuracy {}",
                config.name,
                r.trial,
                r.seed,
                r.lambda,
                r.test_accuracy
                    .map_or_else(|| r.state.to_string(), |t| format!("{t:.4}"))
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctrl_c_says_what_happens_to_a_single_run() {
        let run = Work::Run.interrupt_message();
        assert!(!run.contains("remaining"), "{run}");
        assert!(run.contains("previous result") && run.contains("nothing of it is kept"));
        assert!(Work::Search.interrupt_message().contains("remaining ones"));
        assert!(Work::Reproduce
            .interrupt_message()
            .contains("finished stages"));
    }
}
