//! Is a difference signal or seed noise? Summaries over seeds and the
//! two-sample t-tests that searches use to say whether their winner beats the
//! runner-up beyond the spread between seeds.
//!
//! - [`paired_t_test`] when both settings ran with the same training seeds
//!   (searches share seeds between points, so seed luck cancels in the
//!   differences);
//! - [`welch_t_test`] otherwise (unequal variances, Welch–Satterthwaite
//!   degrees of freedom).
//!
//! Both are two-sided; the Student t distribution comes from `statrs`.

use statrs::distribution::{ContinuousCDF, StudentsT};

/// Mean and sample standard deviation (n - 1); `None` for no values, and a
/// `None` std below 2 values.
pub fn mean_std(values: &[f64]) -> (Option<f64>, Option<f64>) {
    if values.is_empty() {
        return (None, None);
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let std = (values.len() > 1)
        .then(|| (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt());
    (Some(mean), std)
}

/// Result of a two-sided t-test of `mean(a) - mean(b)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TTest {
    /// `mean(a) - mean(b)` (for the paired test: the mean difference).
    pub difference: f64,
    /// The t statistic.
    pub t: f64,
    /// Degrees of freedom.
    pub df: f64,
    /// Two-sided p-value: the chance of a |t| at least this large if both
    /// settings were equally good.
    pub p_value: f64,
}

impl TTest {
    /// True when the difference is significant at level `alpha` (e.g. 0.05).
    pub fn significant(&self, alpha: f64) -> bool {
        self.p_value < alpha
    }
}

/// Two-sided p-value of `t` under Student's t with `df` degrees of freedom;
/// a zero spread with a nonzero difference (`t` infinite) gives 0.
fn two_sided_p(t: f64, df: f64) -> f64 {
    if t.is_infinite() {
        return 0.0;
    }
    let dist = StudentsT::new(0.0, 1.0, df).expect("df > 0 and finite");
    2.0 * (1.0 - dist.cdf(t.abs()))
}

/// Welch's t-test (unequal variances). `None` when either side has fewer
/// than 2 values, or both have zero spread (no noise estimate: nothing to test).
pub fn welch_t_test(a: &[f64], b: &[f64]) -> Option<TTest> {
    let (Some(mean_a), Some(sd_a)) = mean_std(a) else {
        return None;
    };
    let (Some(mean_b), Some(sd_b)) = mean_std(b) else {
        return None;
    };
    let va = sd_a * sd_a / a.len() as f64;
    let vb = sd_b * sd_b / b.len() as f64;
    if va + vb == 0.0 {
        return None;
    }
    let difference = mean_a - mean_b;
    let t = difference / (va + vb).sqrt();
    let df =
        (va + vb).powi(2) / (va * va / (a.len() as f64 - 1.0) + vb * vb / (b.len() as f64 - 1.0));
    Some(TTest {
        difference,
        t,
        df,
        p_value: two_sided_p(t, df),
    })
}

/// Paired t-test on `a[i] - b[i]` (the same seed on both sides). `None`
/// when the lengths differ, there are fewer than 2 pairs, or every
/// difference is the same (no noise estimate).
pub fn paired_t_test(a: &[f64], b: &[f64]) -> Option<TTest> {
    if a.len() != b.len() {
        return None;
    }
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let (Some(mean), Some(sd)) = mean_std(&d) else {
        return None;
    };
    if sd == 0.0 {
        return None;
    }
    let df = d.len() as f64 - 1.0;
    let t = mean / (sd / (d.len() as f64).sqrt());
    Some(TTest {
        difference: mean,
        t,
        df,
        p_value: two_sided_p(t, df),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn welch_matches_a_hand_computed_case() {
        // a: mean 2, var 1 (n 3); b: mean 0, var 4 (n 3).
        // se^2 = 1/3 + 4/3 = 5/3; t = 2 / sqrt(5/3) = 1.549193...;
        // df = (5/3)^2 / ((1/3)^2/2 + (4/3)^2/2) = (25/9) / (17/18) = 50/17.
        let test = welch_t_test(&[1.0, 2.0, 3.0], &[-2.0, 0.0, 2.0]).unwrap();
        assert!((test.difference - 2.0).abs() < 1e-15);
        assert!((test.t - 2.0 / (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert!((test.df - 50.0 / 17.0).abs() < 1e-12);
        // scipy.stats.ttest_ind([1,2,3], [-2,0,2], equal_var=False).pvalue
        assert!((test.p_value - 0.2208).abs() < 5e-4, "p = {}", test.p_value);
        assert!(!test.significant(0.05));
    }

    #[test]
    fn t_distribution_matches_a_table_value() {
        // Student t with 3 df: P(T <= 3.182446) = 0.975 (tables).
        assert!((two_sided_p(3.182446, 3.0) - 0.05).abs() < 1e-6);
        assert_eq!(two_sided_p(f64::INFINITY, 3.0), 0.0);
    }

    #[test]
    fn paired_sees_a_consistent_small_gain_that_welch_misses() {
        // Seed noise (±0.01) shared by both settings, a steady +0.002 gain.
        let a = [0.512, 0.532, 0.522, 0.502];
        let b = [0.510, 0.529, 0.5205, 0.4995];
        let paired = paired_t_test(&a, &b).unwrap();
        let welch = welch_t_test(&a, &b).unwrap();
        assert!(paired.significant(0.05), "paired p = {}", paired.p_value);
        assert!(!welch.significant(0.05), "welch p = {}", welch.p_value);
        assert!((paired.difference - welch.difference).abs() < 1e-15);
    }

    #[test]
    fn too_few_values_or_no_spread_give_no_test() {
        assert!(welch_t_test(&[0.5], &[0.4, 0.41]).is_none());
        assert!(welch_t_test(&[0.5, 0.5], &[0.4, 0.4]).is_none());
        assert!(paired_t_test(&[0.5, 0.6], &[0.4]).is_none());
        assert!(paired_t_test(&[0.5, 0.6], &[0.4, 0.5]).is_none());
    }
}
