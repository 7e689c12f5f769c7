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
    /// Triangular with the amplitude halved every cycle (Smith 2017).
    Triangular2 {
        /// Lowest learning rate.
        eta_min: f64,
        /// Highest learning rate of the first cycle.
        eta_max: f64,
        /// Half-cycle length in update steps.
        n_s: u64,
        /// Number of whole cycles.
        n_cycles: u64,
    },
    /// Triangular with the amplitude multiplied by `gamma^t` (Smith 2017).
    ExpRange {
        /// Lowest learning rate.
        eta_min: f64,
        /// Highest learning rate at `t = 0`.
        eta_max: f64,
        /// Half-cycle length in update steps.
        n_s: u64,
        /// Number of whole cycles.
        n_cycles: u64,
        /// Decay of the amplitude per update step, in (0, 1].
        gamma: f64,
    },
    /// One cycle (Smith & Topping 2018; PyTorch's OneCycleLR): cosine
    /// warm-up from `eta_max / div_factor` to `eta_max` over the first
    /// `pct_start` of `n_steps`, then cosine annealing to
    /// `eta_max / (div_factor * final_div_factor)`.
    OneCycle {
        /// Peak learning rate.
        eta_max: f64,
        /// Number of updates.
        n_steps: u64,
        /// Fraction of the updates spent warming up, in (0, 1).
        pct_start: f64,
        /// `eta_max / eta(0)`.
        div_factor: f64,
        /// `eta(0) / eta(n_steps)`.
        final_div_factor: f64,
    },
    /// Cosine annealing with warm restarts (SGDR, Loshchilov & Hutter):
    /// `n_cycles` periods, the first `t_0` steps long, each next one `t_mult`
    /// times longer.
    Cosine {
        /// Learning rate at the end of each period.
        eta_min: f64,
        /// Learning rate at the start of each period.
        eta_max: f64,
        /// First period, in update steps.
        t_0: u64,
        /// Period growth factor (1 = equal periods).
        t_mult: u64,
        /// Number of periods.
        n_cycles: u64,
    },
}

/// Upper bound of any schedule's update count: 10^8 updates is weeks of
/// training here, and far below where step arithmetic could overflow.
pub const MAX_STEPS: u64 = 100_000_000;

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

/// `max(0, 1 - |t / n_s - 2c - 1|)` for `t` in cycle `c`: the triangle's
/// height in [0, 1], exact (0 at cycle ends, 1 at the peaks).
fn triangle(t: u64, n_s: u64) -> f64 {
    let r = t % (2 * n_s);
    let k = r.min(2 * n_s - r);
    if k == n_s {
        1.0
    } else {
        k as f64 / n_s as f64
    }
}

/// Triangular2 (Smith 2017; SPEC.md): `eta_min + (eta_max - eta_min) *
/// triangle(t) / 2^c` in cycle `c = floor(t / (2 n_s))`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Triangular2 {
    /// Lowest learning rate.
    pub eta_min: f64,
    /// Highest learning rate of the first cycle.
    pub eta_max: f64,
    /// Half-cycle length in update steps (positive).
    pub n_s: u64,
    /// Number of whole cycles.
    pub n_cycles: u64,
}

impl Schedule for Triangular2 {
    fn eta(&self, t: u64) -> f64 {
        let c = (t / (2 * self.n_s)).min(1023) as i32;
        self.eta_min + (self.eta_max - self.eta_min) * triangle(t, self.n_s) * 0.5f64.powi(c)
    }
    fn n_steps(&self) -> u64 {
        2 * self.n_s * self.n_cycles
    }
    fn period(&self) -> u64 {
        2 * self.n_s
    }
}

/// Exp-range (Smith 2017; SPEC.md): `eta_min + (eta_max - eta_min) *
/// triangle(t) * gamma^t`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExpRange {
    /// Lowest learning rate.
    pub eta_min: f64,
    /// Highest learning rate at `t = 0`.
    pub eta_max: f64,
    /// Half-cycle length in update steps (positive).
    pub n_s: u64,
    /// Number of whole cycles.
    pub n_cycles: u64,
    /// Amplitude decay per step.
    pub gamma: f64,
}

impl Schedule for ExpRange {
    fn eta(&self, t: u64) -> f64 {
        self.eta_min
            + (self.eta_max - self.eta_min) * triangle(t, self.n_s) * self.gamma.powf(t as f64)
    }
    fn n_steps(&self) -> u64 {
        2 * self.n_s * self.n_cycles
    }
    fn period(&self) -> u64 {
        2 * self.n_s
    }
}

/// One cycle (Smith & Topping 2018; SPEC.md), with cosine ramps: `eta(0) =
/// eta_max / div_factor`, `eta(t_up) = eta_max` where `t_up =
/// round(pct_start * n_steps)` (at least 1, at most `n_steps - 1`), and
/// `eta(n_steps) = eta(0) / final_div_factor`, far below where it started.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OneCycle {
    /// Peak learning rate.
    pub eta_max: f64,
    /// Number of updates (at least 2).
    pub n_steps: u64,
    /// Fraction of the updates spent warming up.
    pub pct_start: f64,
    /// `eta_max / eta(0)`.
    pub div_factor: f64,
    /// `eta(0) / eta(n_steps)`.
    pub final_div_factor: f64,
}

impl OneCycle {
    /// The step where the warm-up ends and `eta = eta_max`.
    pub fn t_up(&self) -> u64 {
        ((self.pct_start * self.n_steps as f64).round() as u64).clamp(1, self.n_steps - 1)
    }
}

/// `from` at `frac = 0` to `to` at `frac = 1` along half a cosine.
fn cosine_ramp(from: f64, to: f64, frac: f64) -> f64 {
    to + (from - to) * (1.0 + (std::f64::consts::PI * frac).cos()) / 2.0
}

impl Schedule for OneCycle {
    fn eta(&self, t: u64) -> f64 {
        let start = self.eta_max / self.div_factor;
        let end = start / self.final_div_factor;
        let t_up = self.t_up();
        if t == 0 {
            start
        } else if t == t_up {
            self.eta_max
        } else if t < t_up {
            cosine_ramp(start, self.eta_max, t as f64 / t_up as f64)
        } else if t >= self.n_steps {
            end
        } else {
            let frac = (t - t_up) as f64 / (self.n_steps - t_up) as f64;
            cosine_ramp(self.eta_max, end, frac)
        }
    }
    fn n_steps(&self) -> u64 {
        self.n_steps
    }
}

/// The SGDR periods `t_0, t_0 t_mult, t_0 t_mult^2, ...` (`None` on overflow).
fn cosine_periods(t_0: u64, t_mult: u64, n_cycles: u64) -> impl Iterator<Item = Option<u64>> {
    (0..n_cycles).scan(Some(t_0), move |p, _| {
        let cur = *p;
        *p = cur.and_then(|v| v.checked_mul(t_mult));
        Some(cur)
    })
}

/// Cosine annealing with warm restarts (SGDR; SPEC.md): in a period of
/// `T_i` steps, `eta = eta_min + (eta_max - eta_min) (1 + cos(pi T_cur /
/// T_i)) / 2`; `eta_max` at each restart, `eta_min` at the very end.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cosine {
    /// Learning rate at the end of each period.
    pub eta_min: f64,
    /// Learning rate at each restart.
    pub eta_max: f64,
    /// First period (positive).
    pub t_0: u64,
    /// Period growth factor (positive).
    pub t_mult: u64,
    /// Number of periods.
    pub n_cycles: u64,
}

impl Schedule for Cosine {
    fn eta(&self, t: u64) -> f64 {
        let mut start = 0;
        for period in cosine_periods(self.t_0, self.t_mult, self.n_cycles).flatten() {
            if t < start + period {
                let t_cur = t - start;
                if t_cur == 0 {
                    return self.eta_max;
                }
                return cosine_ramp(self.eta_max, self.eta_min, t_cur as f64 / period as f64);
            }
            start += period;
        }
        self.eta_min
    }
    fn n_steps(&self) -> u64 {
        cosine_periods(self.t_0, self.t_mult, self.n_cycles)
            .map(|p| p.unwrap_or(u64::MAX))
            .fold(0u64, u64::saturating_add)
    }
    fn period(&self) -> u64 {
        self.t_0
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
                check(n_steps >= 1, "n_steps", &|| "must be at least 1".into())?;
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
                check(n_s <= MAX_STEPS / 2, "n_s", &|| {
                    format!("{n_s} is above the limit of {}", MAX_STEPS / 2)
                })?;
                check(n_cycles >= 1, "n_cycles", &|| "must be at least 1".into())?;
                let n_steps = n_s.checked_mul(2).and_then(|p| p.checked_mul(n_cycles));
                check(n_steps.is_some(), "n_cycles", &|| {
                    format!("2 * n_s * n_cycles overflows (n_s {n_s}, n_cycles {n_cycles})")
                })?;
            }
            ScheduleSpec::Triangular2 {
                eta_min,
                eta_max,
                n_s,
                n_cycles,
            }
            | ScheduleSpec::ExpRange {
                eta_min,
                eta_max,
                n_s,
                n_cycles,
                ..
            } => {
                positive("eta_min", eta_min)?;
                positive("eta_max", eta_max)?;
                check(eta_max >= eta_min, "eta_max", &|| {
                    format!("{eta_max} is below eta_min {eta_min}")
                })?;
                check(n_s >= 1, "n_s", &|| "must be at least 1".into())?;
                check(n_cycles >= 1, "n_cycles", &|| "must be at least 1".into())?;
                if let ScheduleSpec::ExpRange { gamma, .. } = *self {
                    check(gamma > 0.0 && gamma <= 1.0, "gamma", &|| {
                        format!("{gamma} must be in (0, 1]")
                    })?;
                }
            }
            ScheduleSpec::OneCycle {
                eta_max,
                n_steps,
                pct_start,
                div_factor,
                final_div_factor,
            } => {
                positive("eta_max", eta_max)?;
                check(n_steps >= 2, "n_steps", &|| "must be at least 2".into())?;
                check(pct_start > 0.0 && pct_start < 1.0, "pct_start", &|| {
                    format!("{pct_start} must be in (0, 1)")
                })?;
                check(
                    div_factor.is_finite() && div_factor >= 1.0,
                    "div_factor",
                    &|| format!("{div_factor} must be a finite number >= 1"),
                )?;
                check(
                    final_div_factor.is_finite() && final_div_factor >= 1.0,
                    "final_div_factor",
                    &|| format!("{final_div_factor} must be a finite number >= 1"),
                )?;
            }
            ScheduleSpec::Cosine {
                eta_min,
                eta_max,
                t_0,
                t_mult,
                n_cycles,
            } => {
                check(eta_min.is_finite() && eta_min >= 0.0, "eta_min", &|| {
                    format!("{eta_min} must be a finite number >= 0")
                })?;
                positive("eta_max", eta_max)?;
                check(eta_max >= eta_min, "eta_max", &|| {
                    format!("{eta_max} is below eta_min {eta_min}")
                })?;
                check((1..=MAX_STEPS).contains(&t_0), "t_0", &|| {
                    format!("{t_0} is not in 1..={MAX_STEPS}")
                })?;
                check((1..=16).contains(&t_mult), "t_mult", &|| {
                    format!("{t_mult} is not in 1..=16")
                })?;
                check((1..=1000).contains(&n_cycles), "n_cycles", &|| {
                    format!("{n_cycles} is not in 1..=1000")
                })?;
                let total = cosine_periods(t_0, t_mult, n_cycles)
                    .try_fold(0u64, |a, p| a.checked_add(p?).filter(|&a| a <= MAX_STEPS));
                check(total.is_some(), "n_cycles", &|| {
                    format!("the periods add up to more than {MAX_STEPS} steps")
                })?;
            }
        }
        // Every cyclic count is bounded, so no run asks for an absurd number of steps.
        match *self {
            ScheduleSpec::Constant { n_steps, .. } | ScheduleSpec::OneCycle { n_steps, .. } => {
                check(n_steps <= MAX_STEPS, "n_steps", &|| {
                    format!("{n_steps} is above the limit of {MAX_STEPS} update steps")
                })
            }
            ScheduleSpec::Triangular { n_s, n_cycles, .. }
            | ScheduleSpec::Triangular2 { n_s, n_cycles, .. }
            | ScheduleSpec::ExpRange { n_s, n_cycles, .. } => {
                check(n_s <= MAX_STEPS / 2, "n_s", &|| {
                    format!("{n_s} is above the limit of {}", MAX_STEPS / 2)
                })?;
                check(n_cycles <= 1000, "n_cycles", &|| {
                    format!("{n_cycles} is above the limit of 1000 cycles")
                })?;
                check(2 * n_s * n_cycles <= MAX_STEPS, "n_cycles", &|| {
                    format!(
                        "2 * n_s * n_cycles = {} is above the limit of {MAX_STEPS} update steps",
                        2 * n_s * n_cycles
                    )
                })
            }
            ScheduleSpec::Cosine { .. } => Ok(()),
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
            ScheduleSpec::Triangular2 {
                eta_min,
                eta_max,
                n_s,
                n_cycles,
            } => Box::new(Triangular2 {
                eta_min,
                eta_max,
                n_s: n_s.max(1),
                n_cycles,
            }),
            ScheduleSpec::ExpRange {
                eta_min,
                eta_max,
                n_s,
                n_cycles,
                gamma,
            } => Box::new(ExpRange {
                eta_min,
                eta_max,
                n_s: n_s.max(1),
                n_cycles,
                gamma,
            }),
            ScheduleSpec::OneCycle {
                eta_max,
                n_steps,
                pct_start,
                div_factor,
                final_div_factor,
            } => Box::new(OneCycle {
                eta_max,
                n_steps: n_steps.max(2),
                pct_start,
                div_factor,
                final_div_factor,
            }),
            ScheduleSpec::Cosine {
                eta_min,
                eta_max,
                t_0,
                t_mult,
                n_cycles,
            } => Box::new(Cosine {
                eta_min,
                eta_max,
                t_0: t_0.max(1),
                t_mult: t_mult.max(1),
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

    #[test]
    fn triangular2_halves_the_amplitude_each_cycle() {
        let s = Triangular2 {
            eta_min: 0.001,
            eta_max: 0.101,
            n_s: 100,
            n_cycles: 3,
        };
        // SPEC.md: eta_min + (eta_max - eta_min) max(0, 1 - |t/n_s - 2c - 1|) / 2^c.
        for t in 0..=600u64 {
            let c = (t / 200) as i32;
            let spec = 0.001
                + 0.1 * (1.0 - (t as f64 / 100.0 - 2.0 * c as f64 - 1.0).abs()).max(0.0)
                    / 2f64.powi(c);
            assert!((s.eta(t) - spec).abs() < 1e-15, "t = {t}");
        }
        assert_eq!(s.eta(0), 0.001);
        assert_eq!(s.eta(100), 0.101);
        assert_eq!(s.eta(300), 0.001 + 0.05);
        assert_eq!(s.eta(500), 0.001 + 0.025);
        assert_eq!(s.eta(600), 0.001);
        assert_eq!(s.n_steps(), 600);
    }

    #[test]
    fn exp_range_scales_the_triangle_by_gamma_to_the_t() {
        let s = ExpRange {
            eta_min: 0.001,
            eta_max: 0.1,
            n_s: 50,
            n_cycles: 2,
            gamma: 0.99,
        };
        assert_eq!(s.eta(0), 0.001);
        assert_eq!(s.eta(100), 0.001);
        let peak = 0.001 + 0.099 * 0.99f64.powi(50);
        assert!((s.eta(50) - peak).abs() < 1e-15);
        let peak2 = 0.001 + 0.099 * 0.99f64.powi(150);
        assert!((s.eta(150) - peak2).abs() < 1e-15);
        let mid = 0.001 + 0.099 * 0.5 * 0.99f64.powi(25);
        assert!((s.eta(25) - mid).abs() < 1e-15);
        // gamma = 1 is the triangular policy.
        let flat = ExpRange { gamma: 1.0, ..s };
        let tri = Triangular {
            eta_min: 0.001,
            eta_max: 0.1,
            n_s: 50,
            n_cycles: 2,
        };
        for t in 0..=200 {
            assert!((flat.eta(t) - tri.eta(t)).abs() < 1e-15);
        }
    }

    #[test]
    fn one_cycle_hits_its_corners() {
        let s = OneCycle {
            eta_max: 0.1,
            n_steps: 1000,
            pct_start: 0.3,
            div_factor: 25.0,
            final_div_factor: 1e4,
        };
        assert_eq!(s.t_up(), 300);
        assert_eq!(s.eta(0), 0.1 / 25.0);
        assert_eq!(s.eta(300), 0.1);
        assert!((s.eta(1000) - 0.1 / 25.0 / 1e4).abs() < 1e-20);
        // Half-way up and half-way down: the cosine ramps' midpoints.
        assert!((s.eta(150) - (0.004 + 0.1) / 2.0).abs() < 1e-15);
        assert!((s.eta(650) - (0.1 + 4e-7) / 2.0).abs() < 1e-15);
        // Rising, then falling, ending far below where it started.
        assert!((1..300).all(|t| s.eta(t) > s.eta(t - 1)));
        assert!((301..=1000).all(|t| s.eta(t) < s.eta(t - 1)));
        assert!(s.eta(1000) < s.eta(0) / 1000.0);
        assert_eq!(s.n_steps(), 1000);
    }

    #[test]
    fn cosine_restarts_at_eta_max_with_growing_periods() {
        let s = Cosine {
            eta_min: 0.001,
            eta_max: 0.1,
            t_0: 100,
            t_mult: 2,
            n_cycles: 3,
        };
        assert_eq!(s.n_steps(), 100 + 200 + 400);
        for start in [0, 100, 300] {
            assert_eq!(s.eta(start), 0.1, "restart at {start}");
        }
        // SGDR: eta_min + (eta_max - eta_min) (1 + cos(pi T_cur / T_i)) / 2.
        let sgdr = |t_cur: f64, t_i: f64| {
            0.001 + 0.099 * (1.0 + (std::f64::consts::PI * t_cur / t_i).cos()) / 2.0
        };
        assert!((s.eta(50) - sgdr(50.0, 100.0)).abs() < 1e-15);
        assert!((s.eta(200) - sgdr(100.0, 200.0)).abs() < 1e-15);
        assert!((s.eta(699) - sgdr(399.0, 400.0)).abs() < 1e-15);
        assert!((s.eta(200) - 0.0505).abs() < 1e-15);
        assert_eq!(s.eta(700), 0.001);
    }

    #[test]
    fn new_schedules_validate_naming_the_field() {
        let bad = ScheduleSpec::OneCycle {
            eta_max: 0.1,
            n_steps: 100,
            pct_start: 1.0,
            div_factor: 25.0,
            final_div_factor: 1e4,
        };
        assert_eq!(bad.validate().unwrap_err().field, "pct_start");
        let bad = ScheduleSpec::ExpRange {
            eta_min: 0.001,
            eta_max: 0.1,
            n_s: 10,
            n_cycles: 1,
            gamma: 1.5,
        };
        assert_eq!(bad.validate().unwrap_err().field, "gamma");
        let bad = ScheduleSpec::Cosine {
            eta_min: 0.0,
            eta_max: 0.1,
            t_0: 1 << 40,
            t_mult: 2,
            n_cycles: 3,
        };
        assert_eq!(bad.validate().unwrap_err().field, "t_0");
        let bad = ScheduleSpec::Cosine {
            eta_min: 0.0,
            eta_max: 0.1,
            t_0: 1000,
            t_mult: 16,
            n_cycles: 10,
        };
        assert_eq!(bad.validate().unwrap_err().field, "n_cycles");
        let bad = ScheduleSpec::Triangular {
            eta_min: 1e-5,
            eta_max: 0.1,
            n_s: 1 << 62,
            n_cycles: 1,
        };
        assert_eq!(bad.validate().unwrap_err().field, "n_s");
    }
}
