//! Learning-rate schedules: pure functions of the global update count `t`
//! (never of the epoch), so a run's learning rates do not depend on the data
//! size, the batch order or where an epoch ends.

/// A learning-rate schedule: `eta(t)` for update step `t` (0-based).
pub trait Schedule: Send + Sync {
    /// The learning rate at update step `t`.
    fn eta(&self, t: u64) -> f64;
    /// Total number of update steps the schedule runs for.
    fn n_steps(&self) -> u64;
    /// Length of one period (a cycle) in update steps; learning curves are
    /// recorded a fixed number of times per period. Non-cyclic schedules
    /// have one period spanning the whole run.
    fn period(&self) -> u64 {
        self.n_steps()
    }
}

/// A schedule as written in a config file.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ScheduleSpec {
    /// Fixed `eta` for `n_steps` updates.
    Constant {
        /// Learning rate.
        eta: f64,
        /// Number of updates.
        n_steps: u64,
    },
    /// Triangular cyclical learning rate (SPEC.md), `n_cycles` whole cycles of `2 * n_s` steps.
    Triangular {
        /// Lowest learning rate (cycle ends).
        eta_min: f64,
        /// Highest learning rate (mid-cycle).
        eta_max: f64,
        /// Half-cycle length in update steps.
        n_s: u64,
        /// Number of whole cycles.
        n_cycles: u64,
    },
}

/// A fixed learning rate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Constant {
    /// Learning rate.
    pub eta: f64,
    /// Number of updates.
    pub n_steps: u64,
}

impl Schedule for Constant {
    fn eta(&self, _t: u64) -> f64 {
        self.eta
    }
    fn n_steps(&self) -> u64 {
        self.n_steps
    }
}

/// Triangular cyclical learning rate (Smith 2017; SPEC.md): in cycle `l`,
/// `eta` climbs linearly from `eta_min` at `t = 2 l n_s` to `eta_max` at
/// `(2l + 1) n_s`, then falls back to `eta_min` at `2 (l + 1) n_s`. Exactly
/// `eta_min` and `eta_max` at those points (no rounding drift).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Triangular {
    /// Lowest learning rate (cycle ends).
    pub eta_min: f64,
    /// Highest learning rate (mid-cycle).
    pub eta_max: f64,
    /// Half-cycle length in update steps (positive).
    pub n_s: u64,
    /// Number of whole cycles.
    pub n_cycles: u64,
}

impl Schedule for Triangular {
    fn eta(&self, t: u64) -> f64 {
        // Steps above the bottom of the current cycle, mirrored on the way
        // down: `eta_max - (r - n_s)/n_s (eta_max - eta_min)` equals
        // `eta_min + (2 n_s - r)/n_s (eta_max - eta_min)`, and one formula
        // makes the two ramps exact mirror images.
        let r = t % (2 * self.n_s);
        let k = r.min(2 * self.n_s - r);
        // The ends are returned as given: `eta_min + 1.0 * (eta_max - eta_min)`
        // may be an ulp off `eta_max`.
        if k == 0 {
            self.eta_min
        } else if k == self.n_s {
            self.eta_max
        } else {
            self.eta_min + (k as f64 / self.n_s as f64) * (self.eta_max - self.eta_min)
        }
    }
    fn n_steps(&self) -> u64 {
        2 * self.n_s * self.n_cycles
    }
    fn period(&self) -> u64 {
        2 * self.n_s
    }
}

/// A schedule value out of range: the field (as written in a config file,
/// without its section) and what is wrong with it. Config readers prefix the
/// field with their own section to name the key.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("schedule.{field}: {message}")]
pub struct InvalidSchedule {
    /// The field, e.g. `eta_max`.
    pub field: &'static str,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl ScheduleSpec {
    /// Check the values; the error names the offending field.
    pub fn validate(&self) -> Result<(), InvalidSchedule> {
        let check = |ok: bool, field: &'static str, message: &dyn Fn() -> String| {
            if ok {
                Ok(())
            } else {
                Err(InvalidSchedule {
                    field,
                    message: message(),
                })
            }
        };
        let positive = |field: &'static str, v: f64| {
            check(v.is_finite() && v > 0.0, field, &|| {
                format!("{v} must be a positive finite number")
            })
        };
        match *self {
            ScheduleSpec::Constant { eta, n_steps } => {
                positive("eta", eta)?;
                check(n_steps >= 1, "n_steps", &|| "must be at least 1".into())
            }
            ScheduleSpec::Triangular {
                eta_min,
                eta_max,
                n_s,
                n_cycles,
            } => {
                positive("eta_min", eta_min)?;
                positive("eta_max", eta_max)?;
                check(eta_max >= eta_min, "eta_max", &|| {
                    format!("{eta_max} is below eta_min {eta_min}")
                })?;
                check(n_s >= 1, "n_s", &|| "must be at least 1".into())?;
                check(n_cycles >= 1, "n_cycles", &|| "must be at least 1".into())?;
                let n_steps = n_s.checked_mul(2).and_then(|p| p.checked_mul(n_cycles));
                check(n_steps.is_some(), "n_cycles", &|| {
                    format!("2 * n_s * n_cycles overflows (n_s {n_s}, n_cycles {n_cycles})")
                })
            }
        }
    }

    /// The schedule this spec describes (call [`ScheduleSpec::validate`] first;
    /// an invalid spec gives a meaningless schedule).
    pub fn build(&self) -> Box<dyn Schedule> {
        match *self {
            ScheduleSpec::Constant { eta, n_steps } => Box::new(Constant { eta, n_steps }),
            ScheduleSpec::Triangular {
                eta_min,
                eta_max,
                n_s,
                n_cycles,
            } => Box::new(Triangular {
                eta_min,
                eta_max,
                n_s: n_s.max(1),
                n_cycles,
            }),
        }
    }

    /// Total update steps of the schedule.
    pub fn n_steps(&self) -> u64 {
        self.build().n_steps()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clr() -> Triangular {
        Triangular {
            eta_min: 1e-5,
            eta_max: 1e-1,
            n_s: 500,
            n_cycles: 3,
        }
    }

    #[test]
    fn triangular_is_exact_at_cycle_ends_and_peaks() {
        let s = clr();
        for l in 0..3u64 {
            assert_eq!(s.eta(2 * l * 500), 1e-5, "start of cycle {l}");
            assert_eq!(s.eta((2 * l + 1) * 500), 1e-1, "peak of cycle {l}");
        }
        assert_eq!(s.eta(2 * 3 * 500), 1e-5, "end of the last cycle");
        assert_eq!(s.n_steps(), 3000);
        assert_eq!(s.period(), 1000);
    }

    #[test]
    fn triangular_mid_ramp_matches_formula() {
        let s = clr();
        let mid = 1e-5 + 0.5 * (1e-1 - 1e-5);
        let tol = 1e-15;
        assert!((s.eta(250) - mid).abs() < tol, "{}", s.eta(250));
        assert!((s.eta(750) - mid).abs() < tol, "{}", s.eta(750));
        // Second cycle, a quarter up and three quarters down.
        let quarter = 1e-5 + 0.25 * (1e-1 - 1e-5);
        assert!((s.eta(1125) - quarter).abs() < tol);
        assert!((s.eta(1875) - quarter).abs() < tol);
        // SPEC.md's formula literally, for every step of two cycles.
        for t in 0..2000u64 {
            let l = t / 1000;
            let spec = if t <= (2 * l + 1) * 500 {
                1e-5 + (t - 2 * l * 500) as f64 / 500.0 * (1e-1 - 1e-5)
            } else {
                1e-1 - (t - (2 * l + 1) * 500) as f64 / 500.0 * (1e-1 - 1e-5)
            };
            assert!((s.eta(t) - spec).abs() < 1e-15, "t = {t}");
        }
    }

    #[test]
    fn triangular_is_symmetric_and_periodic() {
        let s = clr();
        for t in 0..=500u64 {
            assert_eq!(s.eta(t), s.eta(1000 - t), "t = {t}");
            assert_eq!(s.eta(t), s.eta(t + 1000));
            assert_eq!(s.eta(t), s.eta(t + 2000));
        }
    }

    #[test]
    fn constant_and_spec() {
        let spec = ScheduleSpec::Constant {
            eta: 0.01,
            n_steps: 7,
        };
        spec.validate().unwrap();
        let s = spec.build();
        assert_eq!(s.eta(0), 0.01);
        assert_eq!(s.eta(6), 0.01);
        assert_eq!(s.n_steps(), 7);
        assert_eq!(s.period(), 7);
    }

    #[test]
    fn validation_names_the_field() {
        let bad = ScheduleSpec::Triangular {
            eta_min: 0.1,
            eta_max: 0.01,
            n_s: 5,
            n_cycles: 1,
        };
        let err = bad.validate().unwrap_err();
        assert_eq!(err.field, "eta_max");
        assert!(err.to_string().contains("below eta_min"), "{err}");
        let bad = ScheduleSpec::Triangular {
            eta_min: 0.001,
            eta_max: 0.01,
            n_s: 0,
            n_cycles: 1,
        };
        assert_eq!(bad.validate().unwrap_err().field, "n_s");
        let bad = ScheduleSpec::Constant {
            eta: f64::NAN,
            n_steps: 1,
        };
        assert_eq!(bad.validate().unwrap_err().field, "eta");
    }
}
