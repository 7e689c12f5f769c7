//! Pruning inside a whole search (a fake trial function in place of
//! training): the same table whatever `--jobs`, and a pruned trial is not
//! run again on resume.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::*;
use crate::run::{RunState, RunSummary};
use crate::search::{draw_plan, run_trials, TableRow};

/// Validation accuracy of a fake trial at rung `r` (1, 2, 3; 4 is the end):
/// a pure function of lambda, seed and rung.
fn fake_accuracy(trial: &Trial, r: usize) -> f64 {
    let x = trial.lambda.log10() + 2.5;
    0.3 + 0.05 * r as f64 - 0.02 * x * x + (trial.seed % 13) as f64 * 1e-3
}

/// A fake training under pruning: 3 rungs, then the end; sleeps a little,
/// differently per trial and worker count, so the workers' timing varies.
fn fake_trial(gate: &Gate<'_>, trial: &Trial, calls: &AtomicUsize) -> Result<RunSummary> {
    calls.fetch_add(1, Ordering::SeqCst);
    let mut s = RunSummary::empty("fake", RunState::Done, trial.lambda, trial.seed, 400);
    for r in 1..=4 {
        std::thread::sleep(Duration::from_millis(
            ((trial.trial * 7 + r * 3) % 5) as u64 * rayon::current_num_threads() as u64,
        ));
        let acc = fake_accuracy(trial, r);
        s.validation_accuracy = Some(acc);
        if r == 4 {
            break;
        }
        if let Some(why) = gate.at_rung(trial, r, r as u64 * 100, acc)? {
            s.state = RunState::Pruned;
            s.message = why;
            break;
        }
    }
    Ok(s)
}

fn plan() -> Vec<Trial> {
    let lambdas = [1e-4, 3e-2, 3e-3, 1e-5, 1e-3, 1e-2, 3e-4];
    draw_plan(&lambdas, 2, 3)
}

fn without_time(rows: &[TableRow]) -> Vec<TableRow> {
    rows.iter()
        .map(|r| TableRow {
            wall_seconds: 0.0,
            ..r.clone()
        })
        .collect()
}

fn lease() -> Lease {
    Lease(Duration::from_secs(60))
}

#[test]
fn pruned_search_gives_the_same_table_whatever_jobs() {
    let plan = plan();
    for pruning in [
        Pruning::Median {
            rung_every: 1,
            min_trials: 2,
        },
        Pruning::SuccessiveHalving {
            rung_every: 1,
            min_trials: 2,
            reduction_factor: 2,
        },
    ] {
        let mut tables = Vec::new();
        for jobs in [1, 2, 3] {
            let dir = tempfile::tempdir().unwrap();
            let gate = Gate::new(dir.path(), &plan, &pruning, lease());
            let calls = AtomicUsize::new(0);
            let out = run_trials("s", dir.path(), &plan, jobs, |t, _| {
                fake_trial(&gate, t, &calls)
            })
            .unwrap();
            assert_eq!(calls.load(Ordering::SeqCst), plan.len());
            tables.push(without_time(&out.rows));
        }
        assert_eq!(tables[0], tables[1], "{pruning:?}");
        assert_eq!(tables[0], tables[2], "{pruning:?}");
        let n_pruned = tables[0]
            .iter()
            .filter(|r| r.state == RunState::Pruned)
            .count();
        // Something is pruned, not everything; the best trial trained to the end.
        assert!(
            n_pruned > 0 && n_pruned < plan.len(),
            "{pruning:?}: {n_pruned}"
        );
        assert_eq!(tables[0][0].state, RunState::Done);
        assert!(tables[0]
            .iter()
            .skip_while(|r| r.state == RunState::Done)
            .all(|r| r.state != RunState::Done));
        // The trial 0 and 1 (nothing or too little to compare with) never stop.
        for r in &tables[0] {
            if r.trial < 2 {
                assert_eq!(r.state, RunState::Done);
            }
        }
    }
}

#[test]
fn a_pruned_trial_is_not_run_again_on_resume() {
    let plan = plan();
    let pruning = Pruning::Median {
        rung_every: 1,
        min_trials: 2,
    };
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::new(dir.path(), &plan, &pruning, lease());
    let reference = {
        let other = tempfile::tempdir().unwrap();
        let gate = Gate::new(other.path(), &plan, &pruning, lease());
        let calls = AtomicUsize::new(0);
        let out = run_trials("s", other.path(), &plan, 1, |t, _| {
            fake_trial(&gate, t, &calls)
        });
        without_time(&out.unwrap().rows)
    };
    // First attempt: trial 9 fails (an error, not a divergence): the run stops there.
    let calls = AtomicUsize::new(0);
    let err = run_trials("s", dir.path(), &plan, 1, |t, _| {
        if t.trial == 9 {
            return Err(ExperimentError::Threads("interrupted".into()));
        }
        fake_trial(&gate, t, &calls)
    });
    assert!(err.is_err());
    let before: Vec<RunState> = (0..9)
        .map(|i| {
            run::read_summary(&trial_dir(dir.path(), i))
                .unwrap()
                .unwrap()
                .state
        })
        .collect();
    assert!(before.contains(&RunState::Pruned), "{before:?}");
    // Resume: only trials 9.. run; the table is the uninterrupted one.
    let ran: std::sync::Mutex<Vec<usize>> = std::sync::Mutex::new(Vec::new());
    let calls = AtomicUsize::new(0);
    let out = run_trials("s", dir.path(), &plan, 2, |t, _| {
        ran.lock().unwrap().push(t.trial);
        fake_trial(&gate, t, &calls)
    })
    .unwrap();
    let mut ran = ran.into_inner().unwrap();
    ran.sort_unstable();
    assert_eq!(ran, (9..plan.len()).collect::<Vec<_>>());
    assert_eq!(without_time(&out.rows), reference);
}
