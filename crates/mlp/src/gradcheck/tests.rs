//! Tests of the gradient check: the incremental, cancellation-free cost
//! difference against the plain full recomputation, the fast path against
//! the library functions, exact kink detection, and the check itself.

use ndarray::Array2;

use super::*;
use crate::tests::synthetic;

/// A small network whose hidden pre-activations spread around zero, so some
/// samples sit near a ReLU kink.
fn small_problem(n: usize, d: usize, seed: u64) -> (Mlp<f64>, Array2<f64>, Vec<u8>) {
    let (x, y) = synthetic(n, d, seed);
    let mut model = Mlp::<f64>::init(d, 6, 10, seed + 100);
    for (j, b) in model.b1.iter_mut().enumerate() {
        *b = 0.05 * j as f64 - 0.1;
    }
    model.b2[2] = 0.3;
    (model, x, y)
}

fn all_entries(model: &Mlp<f64>) -> Vec<Entry> {
    let (m, d, k) = (model.n_hidden(), model.n_input(), model.n_classes());
    let mut out = Vec::new();
    for hidden in 0..m {
        for input in 0..d {
            out.push(Entry::W1 { hidden, input });
        }
        out.push(Entry::B1 { hidden });
        for class in 0..k {
            out.push(Entry::W2 { class, hidden });
        }
    }
    out.extend((0..k).map(|class| Entry::B2 { class }));
    out
}

#[test]
fn incremental_difference_equals_full_recomputation() {
    // Large steps: the plain difference is then accurate to ~1e-13 relative,
    // many stencils cross kinks, and a wrong incremental formula shows.
    let (model, x, y) = small_problem(25, 12, 1);
    let lambda = 0.05;
    let base = BaseState::new(&model, x.view(), &y);
    let mut n_kinks = 0;
    for h in [1e-1, 3e-2, 1e-2] {
        for entry in all_entries(&model) {
            let inc = cost_difference(&model, &base, lambda, entry, h);
            let plain = plain_cost_difference(&model, &x.view(), &y, lambda, entry, h);
            n_kinks += inc.n_kinks;
            let tol = 1e-14 + 1e-10 * plain.abs();
            assert!(
                (inc.delta - plain).abs() <= tol,
                "{entry:?} h {h}: incremental {} vs full {plain}",
                inc.delta
            );
        }
    }
    assert!(n_kinks > 50, "the test should exercise kinks ({n_kinks})");
}

#[test]
fn cancellation_free_agrees_with_plain_within_its_rounding() {
    let (model, x, y) = small_problem(40, 30, 2);
    let lambda = 0.01;
    let h = DEFAULT_H;
    let base = BaseState::new(&model, x.view(), &y);
    let cost = model.cost(&x.view(), &y, lambda);
    // The plain difference of two costs near `cost` carries a rounding error
    // of a few ulps of `cost` (forward pass, sums, the subtraction): allow 64.
    let tol = 64.0 * f64::EPSILON * cost;
    let mut worst: f64 = 0.0;
    for entry in all_entries(&model) {
        let inc = cost_difference(&model, &base, lambda, entry, h);
        let plain = plain_cost_difference(&model, &x.view(), &y, lambda, entry, h);
        worst = worst.max((inc.delta - plain).abs());
        assert!(
            (inc.delta - plain).abs() <= tol,
            "{entry:?}: cancellation-free {} vs plain {plain} (tol {tol:e})",
            inc.delta
        );
    }
    // And the plain one's error is visible: it is not exactly the same number.
    assert!(worst > 0.0);
}

#[test]
fn fast_path_matches_the_library_functions() {
    let (model, x, y) = small_problem(30, 20, 3);
    let lambda = 0.02;
    let h = DEFAULT_H;
    let base = BaseState::new(&model, x.view(), &y);
    let num = numerical_gradients(&model, &x.view(), &y, lambda, h);
    for hidden in 0..model.n_hidden() {
        for input in 0..model.n_input() {
            let entry = Entry::W1 { hidden, input };
            let slow = cost_difference(&model, &base, lambda, entry, h);
            let g = slow.delta / (2.0 * h);
            let fast = num.grads.w1[[hidden, input]];
            assert!(
                (fast - g).abs() <= 1e-11 * g.abs() + 1e-15,
                "{entry:?}: fast {fast} vs library {g}"
            );
            assert_eq!(num.kinks.w1[[hidden, input]] as usize, slow.n_kinks);
        }
    }
}

#[test]
fn polynomials_match_libm() {
    for k in -200..=200 {
        let u = k as f64 * FAST_LIMIT / 200.0 + 1e-9;
        let rel = |a: f64, b: f64| (a - b).abs() / b.abs().max(f64::MIN_POSITIVE);
        assert!(
            rel(sinh_small(u), u.sinh()) < 4.0 * f64::EPSILON,
            "sinh {u}"
        );
        let half = (0.5 * u).sinh();
        assert!(
            rel(cosh_m1_small(u), 2.0 * half * half) < 4.0 * f64::EPSILON,
            "cosh-1 {u}"
        );
        let z = 2.0 * u;
        assert!(
            rel(atanh_small(z), z.atanh()) < 4.0 * f64::EPSILON,
            "atanh {z}"
        );
    }
}

#[test]
fn kinks_are_detected_exactly() {
    // One sample, x = [1, 2]; hidden unit 0 pre-activation set through b1.
    let x = Array2::from_shape_vec((1, 2), vec![1.0, 2.0]).unwrap();
    let y = vec![3u8];
    let mut model = Mlp::<f64>::init(2, 2, 10, 5);
    model.w1.fill(0.0);
    let h = 1e-5;
    // a = 1.5e-5: W1[0,0] moves a by +-1e-5 (no kink), W1[0,1] by +-2e-5 (kink),
    // b1[0] by +-1e-5 (no kink).
    model.b1[0] = 1.5e-5;
    // Unit 1 sits exactly at h: a - h == 0 is "off", a + h "on": a kink for
    // b1[1] and W1[1, 0]; W1[1, 1] (+-2h) crosses too.
    model.b1[1] = h;
    let num = numerical_gradients(&model, &x.view(), &y, 0.0, h);
    assert_eq!(
        num.kinks.w1,
        Array2::from_shape_vec((2, 2), vec![0, 1, 1, 1]).unwrap()
    );
    assert_eq!(num.kinks.b1.to_vec(), vec![0, 1]);
    assert!(num.kinks.w2.iter().all(|&k| k == 0));
    // Just outside: no kink.
    model.b1[0] = 2.0000001e-5;
    model.b1[1] = 2.0000001e-5;
    let num = numerical_gradients(&model, &x.view(), &y, 0.0, h);
    assert_eq!(
        num.kinks.w1,
        Array2::from_shape_vec((2, 2), vec![0, 0, 0, 0]).unwrap()
    );
}

#[test]
fn check_passes_on_a_correct_gradient_and_fails_on_a_wrong_one() {
    let (model, x, y) = small_problem(50, 40, 4);
    let lambda = 0.01;
    let (analytic, _) = model.gradients(&x.view(), &y, lambda);
    let num = numerical_gradients(&model, &x.view(), &y, lambda, DEFAULT_H);
    let report = compare(&analytic, &num);
    assert_eq!(report.len(), 4);
    assert_eq!(report[0].n_entries, 6 * 40);
    for row in &report {
        assert!(row.max_rel_error < 1e-8, "{row:?}");
        assert!(row.norm_rel_error < 1e-9, "{row:?}");
    }
    // A gradient off by 1e-6 relative in one entry is caught.
    let mut wrong = analytic.clone();
    wrong.w2[[3, 2]] *= 1.0 + 1e-5;
    let report = compare(&wrong, &num);
    assert!(report[2].max_rel_error > 4e-6, "{:?}", report[2]);
    // Kink entries are kept apart, not dropped.
    let total_kinks: usize = report.iter().map(|r| r.n_kink_entries).sum();
    let counted: u32 = num
        .kinks
        .w1
        .iter()
        .chain(num.kinks.b1.iter())
        .map(|&k| u32::from(k > 0))
        .sum();
    assert_eq!(total_kinks, counted as usize);
}

#[test]
fn relative_error_uses_the_floor() {
    assert_eq!(relative_error(1.0, 1.0), 0.0);
    assert!((relative_error(1.0, 3.0) - 0.5).abs() < 1e-15);
    assert!((relative_error(1e-9, 0.0) - 1e-3).abs() < 1e-15);
}

#[test]
fn plain_gradients_match_the_per_entry_plain_difference() {
    let (model, x, y) = small_problem(8, 5, 6);
    let plain = plain_numerical_gradients(&model, &x.view(), &y, 0.01, DEFAULT_H);
    for entry in all_entries(&model) {
        let expected = plain_cost_difference(&model, &x.view(), &y, 0.01, entry, DEFAULT_H)
            / (2.0 * DEFAULT_H);
        let mut g = plain.clone();
        assert_eq!(*entry.get_mut(&mut g), expected, "{entry:?}");
    }
}
