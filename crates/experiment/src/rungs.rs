//! Pruning at work in a search folder (the rule is [`crate::prune`]): each
//! trial writes its validation accuracy at every rung, atomically, to
//! `<search>/rungs/trial-NN.csv`, waits for the rung values of the trials of
//! lower plan index, and asks the rule whether to stop. See
//! [`crate::prune`] for why the verdicts do not depend on `--jobs`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mlp::train::{CurvePoint, Observer, TrainSettings};
use serde::{Deserialize, Serialize};

use crate::claim::{self, Lease};
use crate::prune::{rung_records, Pruning};
use crate::records::search::{trial_dir, Trial};
use crate::{io, run, ExperimentError, Result};

/// Sub-folder of a search folder holding the rung values, one file per trial.
pub const RUNGS: &str = "rungs";

/// One row of a trial's rung file.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RungValue {
    /// Rung number, from 1.
    pub rung: usize,
    /// Update steps done at the rung.
    pub step: u64,
    /// Validation accuracy there.
    pub validation_accuracy: f64,
}

/// The rung file of `trial` in the search folder `dir`.
pub fn rung_file(dir: &Path, trial: usize) -> PathBuf {
    dir.join(RUNGS).join(format!("trial-{trial:02}.csv"))
}

/// The rung values `trial` has written (none when it has not reached a rung).
pub fn read_rungs(dir: &Path, trial: usize) -> Result<Vec<RungValue>> {
    let path = rung_file(dir, trial);
    if !path.is_file() {
        return Ok(Vec::new());
    }
    io::read_csv(&path)
}

/// Whether `trial` has its summary (finished, pruned or diverged) in `dir`.
fn has_summary(dir: &Path, trial: &Trial) -> Result<bool> {
    Ok(run::read_summary(&trial_dir(dir, trial.trial))?
        .is_some_and(|s| s.lambda == trial.lambda && s.seed == trial.seed))
}

/// The pruning decisions of one search folder.
pub struct Gate<'a> {
    dir: &'a Path,
    plan: &'a [Trial],
    pruning: &'a Pruning,
    lease: Lease,
    poll: Duration,
}

impl<'a> Gate<'a> {
    /// Decisions for the trials of `plan` in the search folder `dir`.
    pub fn new(dir: &'a Path, plan: &'a [Trial], pruning: &'a Pruning, lease: Lease) -> Self {
        Self {
            dir,
            plan,
            pruning,
            lease,
            poll: Duration::from_millis(20),
        }
    }

    /// Records between rungs, or `None` when nothing is pruned.
    pub fn rung_every(&self) -> Option<u64> {
        self.pruning.rung_every()
    }

    /// Trial `trial` reached rung `rung` (from 1) at `step` with validation
    /// accuracy `value`: record it, wait for the lower trials' values at this
    /// rung and decide. `Some(why)` when the trial stops here.
    pub fn at_rung(
        &self,
        trial: &Trial,
        rung: usize,
        step: u64,
        value: f64,
    ) -> Result<Option<String>> {
        let mut rows: Vec<RungValue> = read_rungs(self.dir, trial.trial)?
            .into_iter()
            .filter(|r| r.rung < rung)
            .collect();
        rows.push(RungValue {
            rung,
            step,
            validation_accuracy: value,
        });
        io::create_dir(&self.dir.join(RUNGS))?;
        io::write_csv(&rung_file(self.dir, trial.trial), &rows)?;
        let mut earlier = Vec::new();
        for other in self.plan.iter().filter(|o| o.trial < trial.trial) {
            if let Some(v) = self.wait_for(other, rung, trial)? {
                earlier.push(v);
            }
        }
        Ok(self
            .pruning
            .decide(value, &earlier)
            .map(|why| format!("pruned at rung {rung} (step {step}): {why}")))
    }

    /// The rung-`rung` value of `other`, once it is there; `None` when
    /// `other` finished without reaching the rung.
    fn wait_for(&self, other: &Trial, rung: usize, waiting: &Trial) -> Result<Option<f64>> {
        let mut orphan_since: Option<Instant> = None;
        loop {
            // Finished first, then the rungs: a rung is written before the
            // summary, so a finished trial's rung file is complete.
            let finished = has_summary(self.dir, other)?;
            if let Some(r) = read_rungs(self.dir, other.trial)?
                .iter()
                .find(|r| r.rung == rung)
            {
                return Ok(Some(r.validation_accuracy));
            }
            if finished {
                return Ok(None);
            }
            let stem = trial_dir(self.dir, other.trial);
            if claim::is_held(&stem, self.lease)? {
                orphan_since = None;
            } else {
                let since = *orphan_since.get_or_insert_with(Instant::now);
                if since.elapsed() > self.lease.0 * 2 {
                    return Err(ExperimentError::Conflict {
                        path: stem,
                        message: format!(
                            "trial-{:02} waits at rung {rung} for this lower trial, which is \
                             neither finished nor held by a live worker (a failed or stopped \
                             run?); re-run the search: pruning compares each trial with the \
                             lower ones, which run first",
                            waiting.trial
                        ),
                    });
                }
            }
            std::thread::sleep(self.poll);
        }
    }
}

/// The observer of a trial under pruning: at each rung it hands the
/// validation accuracy to the [`Gate`] and stops the training when told.
pub struct RungObserver<'g, 'a> {
    gate: &'g Gate<'a>,
    trial: &'g Trial,
    rung_steps: Vec<u64>,
    next: usize,
    /// Why the trial stopped, once the gate said so.
    pub verdict: Option<String>,
    /// A failure of the gate (an unreadable rung file, an orphaned lower trial).
    pub error: Option<ExperimentError>,
}

impl<'g, 'a> RungObserver<'g, 'a> {
    /// The observer of `trial`, trained with `settings` (which fix its record steps).
    pub fn new(gate: &'g Gate<'a>, trial: &'g Trial, settings: &TrainSettings) -> Self {
        let steps = mlp::train::record_steps(
            settings.schedule.build().as_ref(),
            settings.records_per_cycle,
        );
        let rung_steps = gate
            .rung_every()
            .map(|every| {
                rung_records(every, steps.len())
                    .into_iter()
                    .map(|k| steps[k])
                    .collect()
            })
            .unwrap_or_default();
        Self {
            gate,
            trial,
            rung_steps,
            next: 0,
            verdict: None,
            error: None,
        }
    }
}

impl Observer for RungObserver<'_, '_> {
    fn on_record(&mut self, point: &CurvePoint, _n_steps: u64) {
        if self.rung_steps.get(self.next) != Some(&point.step) || self.stop() {
            return;
        }
        self.next += 1;
        match self
            .gate
            .at_rung(self.trial, self.next, point.step, point.validation.accuracy)
        {
            Ok(verdict) => self.verdict = verdict,
            Err(e) => self.error = Some(e),
        }
    }

    fn stop(&mut self) -> bool {
        self.verdict.is_some() || self.error.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-made set of curves: each trial's rung values decided in plan
    /// order, with the verdicts worked out by hand.
    #[test]
    fn decisions_on_hand_made_curves() {
        let dir = tempfile::tempdir().unwrap();
        let plan: Vec<Trial> = (0..4)
            .map(|i| Trial {
                trial: i,
                point: i,
                lambda: 0.1,
                seed: 7,
                settings: String::new(),
            })
            .collect();
        let pruning = Pruning::Median {
            rung_every: 1,
            min_trials: 1,
        };
        let gate = Gate::new(dir.path(), &plan, &pruning, Lease(Duration::from_secs(60)));
        // Curves (validation accuracy at rungs 1 and 2):
        // t0: 0.30 0.40   (nothing earlier: goes on)
        // t1: 0.20        (< median 0.30 of [t0]: pruned at rung 1)
        // t2: 0.35 0.38   (rung 1: median of [0.30, 0.20] = 0.25, goes on;
        //                  rung 2: median of [0.40] (t1 stopped) = 0.40: pruned)
        // t3: 0.40 0.45   (rung 1: median of [0.30, 0.20, 0.35] = 0.30;
        //                  rung 2: median of [0.40, 0.38] = 0.39: goes on)
        let curves: [&[f64]; 4] = [&[0.30, 0.40], &[0.20, 0.9], &[0.35, 0.38], &[0.40, 0.45]];
        let mut verdicts = Vec::new();
        for (t, curve) in curves.iter().enumerate() {
            let mut stopped = None;
            for (r, &v) in curve.iter().enumerate() {
                if let Some(why) = gate
                    .at_rung(&plan[t], r + 1, (r as u64 + 1) * 10, v)
                    .unwrap()
                {
                    stopped = Some((r + 1, why));
                    break;
                }
            }
            // The trial's summary marks it finished (what the worker writes).
            let mut s = run::RunSummary::empty("x", run::RunState::Done, 0.1, 7, 30);
            if stopped.is_some() {
                s.state = run::RunState::Pruned;
            }
            let d = trial_dir(dir.path(), t);
            io::create_dir(&d).unwrap();
            run::write_summary(&d, &s).unwrap();
            verdicts.push(stopped.map(|(r, _)| r));
        }
        assert_eq!(verdicts, vec![None, Some(1), Some(2), None]);
        assert_eq!(read_rungs(dir.path(), 1).unwrap().len(), 1);
        assert_eq!(read_rungs(dir.path(), 3).unwrap().len(), 2);
    }
}

#[cfg(test)]
mod search_tests;
