//! Pruning of hopeless trials, as Optuna's median pruner and (asynchronous)
//! successive halving do, but deterministic: the verdict on a trial never
//! depends on `--jobs`, on worker timing or on which machine ran what.
//!
//! Rungs are recorded learning-curve points (every `rung_every`-th record,
//! never the last). At rung `r`, trial `t` is compared with the rung-`r`
//! validation accuracies of the trials of *lower plan index* only, all of
//! them: it waits until each of those has written its rung-`r` value
//! (atomically, in `<search>/rungs/trial-NN.csv`) or has finished without
//! reaching rung `r` (pruned or diverged earlier, which is itself decided the
//! same way). By induction on the plan index every verdict is a function of
//! the plan and the data alone. Workers claim trials in plan order, so the
//! lower trials are always running or done; a lower trial that nobody holds
//! for two leases is an error, not a hang.
//!
//! A pruned trial has a summary in state `pruned` (its numbers those of the
//! rung where it stopped), so a resumed search does not run it again.
//!
//! This module holds the rule (`[pruning]` of a config) and its pure
//! decisions; [`crate::rungs`] runs it in a search folder.

use serde::{Deserialize, Serialize};

use crate::invalid::InvalidValue;

/// Whether and how a search stops hopeless trials (`[pruning]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Pruning {
    /// Every trial trains to the end.
    None,
    /// Stop a trial whose rung value is below the median of the lower trials' values there.
    Median {
        /// Recorded points between rungs (e.g. `records_per_cycle` for cycle ends).
        rung_every: u64,
        /// Lower trials' values needed at a rung before anything is pruned there.
        min_trials: usize,
    },
    /// Keep a trial only if its rung value is in the top `1 / reduction_factor`
    /// of its own and the lower trials' values there.
    SuccessiveHalving {
        /// Recorded points between rungs.
        rung_every: u64,
        /// Lower trials' values needed at a rung before anything is pruned there.
        min_trials: usize,
        /// Keep the best `1 / reduction_factor` (>= 2).
        reduction_factor: usize,
    },
}

fn invalid(key: &str, message: String) -> InvalidValue {
    InvalidValue {
        key: format!("pruning.{key}"),
        message,
    }
}

impl Pruning {
    /// Check the values; the error names `pruning.<key>`.
    pub fn validate(&self) -> Result<(), InvalidValue> {
        let (rung_every, min_trials) = match self {
            Pruning::None => return Ok(()),
            Pruning::Median {
                rung_every,
                min_trials,
            } => (*rung_every, *min_trials),
            Pruning::SuccessiveHalving {
                rung_every,
                min_trials,
                reduction_factor,
            } => {
                if !(2..=1000).contains(reduction_factor) {
                    return Err(invalid(
                        "reduction_factor",
                        format!("{reduction_factor} is not in 2..=1000"),
                    ));
                }
                (*rung_every, *min_trials)
            }
        };
        if !(1..=10_000).contains(&rung_every) {
            return Err(invalid(
                "rung_every",
                format!("{rung_every} is not in 1..=10000"),
            ));
        }
        if !(1..=10_000).contains(&min_trials) {
            return Err(invalid(
                "min_trials",
                format!("{min_trials} is not in 1..=10000"),
            ));
        }
        Ok(())
    }

    /// Records between rungs, or `None` when nothing is pruned.
    pub fn rung_every(&self) -> Option<u64> {
        match self {
            Pruning::None => None,
            Pruning::Median { rung_every, .. } | Pruning::SuccessiveHalving { rung_every, .. } => {
                Some(*rung_every)
            }
        }
    }

    /// Whether a trial whose value at a rung is `value` stops there, given
    /// the values of the lower trials at that rung (`earlier`): `Some(why)`
    /// to stop. Higher values are better.
    pub fn decide(&self, value: f64, earlier: &[f64]) -> Option<String> {
        let (min_trials, kind) = match self {
            Pruning::None => return None,
            Pruning::Median { min_trials, .. } => (*min_trials, None),
            Pruning::SuccessiveHalving {
                min_trials,
                reduction_factor,
                ..
            } => (*min_trials, Some(*reduction_factor)),
        };
        if earlier.len() < min_trials {
            return None;
        }
        let mut sorted = earlier.to_vec();
        sorted.sort_by(f64::total_cmp);
        match kind {
            None => {
                let median = median(&sorted);
                (value < median).then(|| {
                    format!(
                        "validation accuracy {value:.4} below the median {median:.4} of {} \
                         earlier trials",
                        earlier.len()
                    )
                })
            }
            Some(eta) => {
                // Rank among the lower trials and this one (0 = best; ties
                // in this trial's favour); keep the top ceil(n / eta).
                let n = earlier.len() + 1;
                let rank = earlier.iter().filter(|&&v| v > value).count();
                let keep = n.div_ceil(eta);
                (rank >= keep).then(|| {
                    format!(
                        "validation accuracy {value:.4} ranks {} of {n} at this rung; the top \
                         {keep} (1/{eta}) go on",
                        rank + 1
                    )
                })
            }
        }
    }
}

/// Median of sorted, non-empty values.
fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// The record indices (0 = step 0) that are rungs among `n_records`
/// recorded points: every `rung_every`-th, never the last (the end of the
/// training is no place to stop it).
pub fn rung_records(rung_every: u64, n_records: usize) -> Vec<usize> {
    let every = rung_every.max(1) as usize;
    (1..)
        .map(|r| r * every)
        .take_while(|&k| k + 1 < n_records)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn median_pruner(min_trials: usize) -> Pruning {
        Pruning::Median {
            rung_every: 1,
            min_trials,
        }
    }

    #[test]
    fn median_prunes_below_the_median_of_enough_earlier_values() {
        let p = median_pruner(2);
        // Too few earlier values: never pruned.
        assert_eq!(p.decide(0.1, &[0.5]), None);
        // Median of [0.3, 0.5, 0.4] is 0.4; of [0.3, 0.5] it is 0.4 too.
        assert!(p.decide(0.39, &[0.3, 0.5, 0.4]).is_some());
        assert_eq!(p.decide(0.4, &[0.3, 0.5, 0.4]), None);
        assert!(p.decide(0.399, &[0.3, 0.5]).is_some());
        assert_eq!(p.decide(0.41, &[0.3, 0.5]), None);
        assert_eq!(Pruning::None.decide(0.0, &[1.0, 1.0]), None);
    }

    #[test]
    fn successive_halving_keeps_the_top_fraction() {
        let p = Pruning::SuccessiveHalving {
            rung_every: 1,
            min_trials: 1,
            reduction_factor: 3,
        };
        // 6 values with this one: the top ceil(6/3) = 2 go on.
        let earlier = [0.50, 0.40, 0.30, 0.20, 0.10];
        assert_eq!(p.decide(0.45, &earlier), None); // rank 2
        assert!(p.decide(0.35, &earlier).is_some()); // rank 3
        assert_eq!(p.decide(0.60, &earlier), None); // rank 1
                                                    // Ties count in the trial's favour.
        assert_eq!(p.decide(0.40, &earlier), None);
        // 2 values: ceil(2/3) = 1 goes on.
        assert!(p.decide(0.2, &[0.3]).is_some());
        assert_eq!(p.decide(0.3, &[0.3]), None);
    }

    #[test]
    fn rungs_are_every_nth_record_but_never_the_last() {
        assert_eq!(rung_records(1, 5), vec![1, 2, 3]);
        assert_eq!(rung_records(2, 7), vec![2, 4]);
        assert_eq!(rung_records(2, 6), vec![2, 4]);
        assert_eq!(rung_records(3, 3), Vec::<usize>::new());
    }

    #[test]
    fn bad_values_are_named() {
        let bad = Pruning::SuccessiveHalving {
            rung_every: 1,
            min_trials: 1,
            reduction_factor: 1,
        };
        assert_eq!(bad.validate().unwrap_err().key, "pruning.reduction_factor");
        let bad = Pruning::Median {
            rung_every: 0,
            min_trials: 1,
        };
        assert_eq!(bad.validate().unwrap_err().key, "pruning.rung_every");
        let bad = Pruning::Median {
            rung_every: 1,
            min_trials: 0,
        };
        assert_eq!(bad.validate().unwrap_err().key, "pruning.min_trials");
    }
}
