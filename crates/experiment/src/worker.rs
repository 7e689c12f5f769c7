//! Workers: the loop every process (and every thread of a local `--jobs N`
//! run) runs on a search folder. A worker scans the plan in order, skips the
//! finished trials (their `summary.csv` names the planned lambda and seed),
//! claims the first unfinished one nobody holds (see [`crate::claim`]),
//! trains it with its lease renewed in the background, records the summary,
//! removes the claim and starts over. When every unfinished trial is held by
//! someone else it waits and looks again, so a trial whose worker dies is
//! taken over once its lease expires; when every trial is finished it returns.
//!
//! Local runs and distributed workers run this same loop, so their trial
//! folders and tables are the same (timing columns apart).

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use crate::claim::{self, Attempt, Lease};
use crate::progress::SearchProgress;
use crate::records::search::{trial_dir, Trial};
use crate::run::{self, RunState, RunSummary};
use crate::{ExperimentError, Result};

/// How one process works on a search.
#[derive(Clone, Copy, Debug)]
pub struct WorkerOptions {
    /// Workers (threads) in this process, each training one trial at a time
    /// in a single-thread pool.
    pub jobs: usize,
    /// Lease of each claim.
    pub lease: Lease,
}

/// What the workers of one process did.
#[derive(Clone, Debug, Default)]
pub struct WorkReport {
    /// Trials this process trained.
    pub n_ran: usize,
    /// Of those, trials taken over from a worker whose lease had expired.
    pub n_taken_over: usize,
    /// Seconds from start to the last worker's exit.
    pub wall_seconds: f64,
}

/// Whether `trial` is finished in the search folder `dir`: its summary exists
/// and names the planned lambda and seed, and its weights file, if there is
/// one, loads as `evaluate` would load it (a truncated or corrupt weights
/// file makes the trial unfinished, so it is trained again, not reused).
pub fn is_finished(dir: &Path, trial: &Trial) -> bool {
    let run_dir = trial_dir(dir, trial.trial);
    let weights = run_dir.join(run::files::WEIGHTS);
    match run::read_summary(&run_dir) {
        Ok(Some(s)) if s.lambda == trial.lambda && s.seed == trial.seed => {
            !weights.exists() || mlp::weights::load(&weights).is_ok()
        }
        _ => false,
    }
}

/// The trials of `plan` not finished in `dir`.
pub fn unfinished(dir: &Path, plan: &[Trial]) -> Vec<Trial> {
    plan.iter()
        .filter(|t| !is_finished(dir, t))
        .cloned()
        .collect()
}

/// Run `opts.jobs` workers on the search folder `dir` (whose `plan.csv` must
/// already be saved) until every trial of `plan` is finished. `trial_fn`
/// trains one trial into the run folder it is given, inside a single-thread
/// rayon pool; the worker then writes the summary (the mark of a finished
/// trial).
///
/// A trial that fails (an error, not a divergence) gives its claim back and
/// stops this process's workers; the finished trials stay recorded and the
/// error is returned.
pub fn work<F>(
    name: &str,
    dir: &Path,
    plan: &[Trial],
    opts: WorkerOptions,
    trial_fn: F,
) -> Result<WorkReport>
where
    F: Fn(&Trial, &Path) -> Result<RunSummary> + Sync,
{
    let start = Instant::now();
    let n_left = unfinished(dir, plan).len();
    let jobs = opts.jobs.max(1).min(n_left.max(1));
    let progress = SearchProgress::new(name, plan.len(), plan.len() - n_left, jobs);
    let stop = AtomicBool::new(false);
    let errors: Mutex<Vec<ExperimentError>> = Mutex::new(Vec::new());
    let n_ran = AtomicUsize::new(0);
    let n_taken_over = AtomicUsize::new(0);
    let fail = |err: ExperimentError| {
        stop.store(true, Ordering::SeqCst);
        errors.lock().expect("errors lock").push(err);
    };
    // One pool of `jobs` threads shared by the workers: each trial runs on
    // one of its threads, and a thread whose worker has no trial left steals
    // the evaluation blocks of the trials still running (the last trials of
    // a search would otherwise leave a core idle). Results do not depend on
    // which thread computes a block.
    let pool = tensor::pool::pool_builder(jobs)
        .build()
        .map_err(|e| ExperimentError::Threads(e.to_string()))?;
    std::thread::scope(|scope| {
        for worker_idx in 0..jobs {
            let (progress, stop, n_ran, n_taken_over, trial_fn, fail, pool) = (
                &progress,
                &stop,
                &n_ran,
                &n_taken_over,
                &trial_fn,
                &fail,
                &pool,
            );
            scope.spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let (trial, claim) = match next_claim(dir, plan, opts.lease, worker_idx) {
                        Ok(Next::Claimed(trial, claim)) => (trial, claim),
                        Ok(Next::AllFinished) => break,
                        Ok(Next::AllHeld) => {
                            std::thread::sleep(opts.lease.poll_every());
                            continue;
                        }
                        Err(e) => return fail(e),
                    };
                    let mut claim = *claim;
                    claim.keep_alive(opts.lease);
                    if let Some((old, age)) = &claim.took_over {
                        n_taken_over.fetch_add(1, Ordering::SeqCst);
                        progress.note(&format!(
                            "{name} trial {}/{}: taking over the claim of {} (not renewed for \
                             {age:.1} s, lease {:.1} s)",
                            trial.trial + 1,
                            plan.len(),
                            old.as_ref().map_or("an unknown worker".into(), |i| i.who()),
                            opts.lease.0.as_secs_f64()
                        ));
                    }
                    let run_dir = trial_dir(dir, trial.trial);
                    let result = pool
                        .install(|| trial_fn(&trial, &run_dir))
                        .and_then(|summary| {
                            run::write_summary(&run_dir, &summary)?;
                            Ok(summary)
                        });
                    // Finished or failed, the claim goes: a failed trial is
                    // free for the next attempt at once.
                    let released = claim.release();
                    match result.and_then(|s| released.map(|()| s)) {
                        Ok(summary) => {
                            n_ran.fetch_add(1, Ordering::SeqCst);
                            progress.finished(&trial_line(name, &trial, plan.len(), &summary));
                        }
                        Err(err) => {
                            progress.finished(&format!(
                                "{name} trial {}/{}: FAILED: {err}",
                                trial.trial + 1,
                                plan.len()
                            ));
                            return fail(err);
                        }
                    }
                }
            });
        }
    });
    progress.finish();
    let mut errors = errors.into_inner().expect("errors lock");
    if !errors.is_empty() {
        return Err(ExperimentError::TrialsFailed {
            n_failed: errors.len(),
            n_trials: plan.len(),
            first: Box::new(errors.swap_remove(0)),
        });
    }
    Ok(WorkReport {
        n_ran: n_ran.into_inner(),
        n_taken_over: n_taken_over.into_inner(),
        wall_seconds: start.elapsed().as_secs_f64(),
    })
}

enum Next {
    Claimed(Trial, Box<claim::Claim>),
    AllFinished,
    AllHeld,
}

/// Claim the first unfinished trial of `plan` nobody holds.
fn next_claim(dir: &Path, plan: &[Trial], lease: Lease, worker_idx: usize) -> Result<Next> {
    let mut n_held = 0;
    for trial in plan {
        if is_finished(dir, trial) {
            continue;
        }
        match claim::try_claim(&trial_dir(dir, trial.trial), lease, worker_idx)? {
            Attempt::Held(_) => n_held += 1,
            Attempt::Claimed(claim) => {
                // Finished between our look and our claim (its finisher had
                // just removed the claim): give it back.
                if is_finished(dir, trial) {
                    claim.release()?;
                    continue;
                }
                return Ok(Next::Claimed(trial.clone(), Box::new(claim)));
            }
        }
    }
    Ok(if n_held == 0 {
        Next::AllFinished
    } else {
        Next::AllHeld
    })
}

/// The compact line printed when a trial finishes.
fn trial_line(name: &str, trial: &Trial, n_total: usize, s: &RunSummary) -> String {
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
