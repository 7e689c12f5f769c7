//! The fused row operations against `tensor::reference` and on edge cases
//! (extreme logits, all-equal rows, NaN, non-contiguous views).
//!
//! Tolerances: softmax / cross-entropy outputs within `64 * eps` (absolute,
//! values in [0, 1]) of the f64 reference, the loss within `1e-4` relative
//! for f32 and `1e-12` for f64; sums of probabilities within `16 * eps` of 1.

use ndarray::{array, Array1, Array2, ShapeBuilder};
use proptest::prelude::*;
use tensor::{
    add_bias, add_bias_relu, argmax_rows, column_sums, reference, relu_backward,
    softmax_cross_entropy, softmax_rows, Element,
};

fn eps<T: Element>() -> f64 {
    T::epsilon().to_f64().unwrap()
}

fn to_t<T: Element>(x: &Array2<f64>) -> Array2<T> {
    x.mapv(|v| T::from(v).unwrap())
}

/// Softmax rows of `z` are finite, sum to 1 and match the reference.
fn check_softmax<T: Element>(z: &Array2<f64>) {
    let z = to_t::<T>(z);
    let want = reference::softmax_rows(&z.view());
    // Also through a column-major copy (non-contiguous rows).
    let mut col_major = Array2::<T>::zeros(z.dim().f());
    col_major.assign(&z);
    for mut p in [z.clone(), col_major] {
        softmax_rows(&mut p.view_mut());
        for (row, want_row) in p.rows().into_iter().zip(want.rows()) {
            let sum: f64 = row.iter().map(|v| v.to_f64().unwrap()).sum();
            assert!(row.iter().all(|v| v.is_finite()), "{row:?}");
            assert!((sum - 1.0).abs() <= 16.0 * eps::<T>(), "sum {sum}");
            for (&g, &w) in row.iter().zip(want_row.iter()) {
                assert!(
                    (g.to_f64().unwrap() - w).abs() <= 64.0 * eps::<T>(),
                    "{g:?} vs {w}"
                );
            }
        }
    }
}

#[test]
fn softmax_is_finite_and_normalised_on_extreme_rows() {
    let z = array![
        [1e4, -1e4, 0.0],
        [-1e4, -1e4, -1e4],
        [1e4, 1e4, 1e4],
        [3.0, 3.0, 3.0],
        [0.0, 88.0, -88.0],
        [-1e4, 0.0, 1e4]
    ];
    check_softmax::<f32>(&z);
    check_softmax::<f64>(&z);
    // All-equal rows are uniform.
    let mut p = Array2::<f32>::from_elem((2, 10), 7.5);
    softmax_rows(&mut p.view_mut());
    assert!(p.iter().all(|&v| (v - 0.1).abs() < 1e-7));
}

#[test]
fn nan_in_a_row_makes_that_row_nan_and_nothing_else() {
    let mut z = array![
        [1.0f32, f32::NAN, 2.0],
        [1.0, 2.0, 3.0],
        [f32::NAN, 0.0, 0.0]
    ];
    let logits = z.clone();
    softmax_rows(&mut z.view_mut());
    assert!(z.row(0).iter().all(|v| v.is_nan()));
    assert!(z.row(2).iter().all(|v| v.is_nan()));
    assert!(z.row(1).iter().all(|v| v.is_finite()));

    let mut out = Array2::zeros((3, 3));
    // Row 0's argmax ignoring NaN would be 2 == its label: it must not count.
    let sums = softmax_cross_entropy(&logits.view(), &[2, 2, 0], &mut out.view_mut());
    assert!(sums.loss_sum.is_nan());
    assert_eq!(
        sums.n_correct, 1,
        "only the finite row 1 (argmax 2, label 2) is correct"
    );
    assert!(out.row(0).iter().all(|v| v.is_nan()));
    assert!(out.row(1).iter().all(|v| v.is_finite()));

    let mut idx = [9; 3];
    argmax_rows(&logits.view(), &mut idx);
    assert_eq!(
        idx,
        [1, 2, 0],
        "a NaN is reported as the argmax (first NaN)"
    );
}

#[test]
fn cross_entropy_matches_reference_on_extreme_logits() {
    let z = array![
        [1e4, -1e4, 0.0],
        [-1e4, -1e4, -1e4],
        [0.0, 0.0, 1e4],
        [5.0, 1.0, -3.0]
    ];
    let labels = [0u8, 1, 0, 2];
    let (want_loss, want_grad) = reference::softmax_cross_entropy(&z.view(), &labels);
    for_types(&z, &labels, want_loss, &want_grad);
}

fn for_types(z: &Array2<f64>, labels: &[u8], want_loss: f64, want_grad: &Array2<f64>) {
    fn one<T: Element>(
        z: &Array2<f64>,
        labels: &[u8],
        want_loss: f64,
        want_grad: &Array2<f64>,
        rel: f64,
    ) {
        let z = to_t::<T>(z);
        let mut out = Array2::<T>::zeros(z.dim());
        let sums = softmax_cross_entropy(&z.view(), labels, &mut out.view_mut());
        assert!(
            (sums.loss_sum - want_loss).abs() <= rel * want_loss.abs().max(1.0),
            "loss {} vs {want_loss}",
            sums.loss_sum
        );
        for (&g, &w) in out.iter().zip(want_grad.iter()) {
            assert!(
                (g.to_f64().unwrap() - w).abs() <= 64.0 * eps::<T>(),
                "{g:?} vs {w}"
            );
        }
        let want_correct = reference::argmax_rows(&z.view())
            .iter()
            .zip(labels)
            .filter(|(&p, &y)| p == usize::from(y))
            .count();
        assert_eq!(sums.n_correct, want_correct);
    }
    one::<f32>(z, labels, want_loss, want_grad, 1e-4);
    one::<f64>(z, labels, want_loss, want_grad, 1e-12);
}

#[test]
fn relu_backward_masks_off_units_and_flags_nan() {
    let act = array![[0.0f32, 1.0, -2.0, f32::NAN]];
    let mut grad = array![[5.0f32, 6.0, 7.0, 8.0]];
    relu_backward(&mut grad.view_mut(), &act.view());
    assert_eq!(grad[[0, 0]], 0.0);
    assert_eq!(grad[[0, 1]], 6.0);
    assert_eq!(grad[[0, 2]], 0.0);
    assert!(grad[[0, 3]].is_nan());
}

#[test]
fn bias_ops_keep_nan() {
    let mut z = array![[1.0f32, f32::NAN, -3.0]];
    add_bias_relu(&mut z.view_mut(), &array![1.0f32, 1.0, 1.0].view());
    assert_eq!(z[[0, 0]], 2.0);
    assert!(z[[0, 1]].is_nan());
    assert_eq!(z[[0, 2]], 0.0);
    let mut z = array![[1.0f64, 2.0]];
    add_bias(&mut z.view_mut(), &array![f64::NAN, 1.0].view());
    assert!(z[[0, 0]].is_nan());
    assert_eq!(z[[0, 1]], 3.0);
}

fn matrix(max_rows: usize, max_cols: usize, scale: f64) -> impl Strategy<Value = Array2<f64>> {
    (1..=max_rows, 1..=max_cols).prop_flat_map(move |(r, c)| {
        prop::collection::vec(-scale..scale, r * c)
            .prop_map(move |v| Array2::from_shape_vec((r, c), v).unwrap())
    })
}

proptest! {
    #[test]
    fn softmax_matches_reference(z in matrix(12, 17, 60.0)) {
        check_softmax::<f32>(&z);
        check_softmax::<f64>(&z);
    }

    #[test]
    fn softmax_is_shift_invariant(z in matrix(6, 10, 30.0), shift in -100.0..100.0f64) {
        let mut a = z.clone();
        let mut b = z.mapv(|v| v + shift);
        softmax_rows(&mut a.view_mut());
        softmax_rows(&mut b.view_mut());
        for (x, y) in a.iter().zip(b.iter()) {
            prop_assert!((x - y).abs() < 1e-12);
        }
    }

    #[test]
    fn cross_entropy_matches_reference(
        (z, labels) in matrix(20, 10, 40.0).prop_flat_map(|z| {
            let (r, c) = z.dim();
            (Just(z), prop::collection::vec(0..c as u8, r))
        })
    ) {
        let (loss, grad) = reference::softmax_cross_entropy(&z.view(), &labels);
        for_types(&z, &labels, loss, &grad);
    }

    #[test]
    fn bias_relu_and_column_sums_match_reference(z in matrix(9, 13, 5.0), seed in 0u64..1000) {
        let bias = Array1::from_shape_fn(z.ncols(), |j| ((j as u64 * 7 + seed) % 11) as f64 - 5.0);
        let mut got = z.mapv(|v| v as f32);
        let bias32 = bias.mapv(|v| v as f32);
        add_bias_relu(&mut got.view_mut(), &bias32.view());
        let want = reference::add_bias_relu(&z.mapv(|v| v as f32).view(), &bias32.view());
        for (g, w) in got.iter().zip(want.iter()) {
            prop_assert!((f64::from(*g) - w).abs() <= 1e-6 * w.abs().max(1.0));
        }
        // Column sums through a transposed (non-contiguous) view too.
        let mut sums = Array1::<f64>::zeros(z.ncols());
        column_sums(&z.view(), &mut sums.view_mut());
        let want = reference::column_sums(&z.view());
        let t = z.t().to_owned();
        let mut sums_t = Array1::<f64>::zeros(z.ncols());
        column_sums(&t.t(), &mut sums_t.view_mut());
        for ((g, gt), w) in sums.iter().zip(sums_t.iter()).zip(want.iter()) {
            prop_assert!((g - w).abs() <= 1e-12 * (z.nrows() as f64) * 5.0);
            prop_assert!((gt - w).abs() <= 1e-12 * (z.nrows() as f64) * 5.0);
        }
    }

    #[test]
    fn argmax_matches_reference(z in matrix(10, 12, 3.0)) {
        let z = z.mapv(|v| (v * 2.0).round()); // ties on purpose
        let mut got = vec![0; z.nrows()];
        argmax_rows(&z.view(), &mut got);
        prop_assert_eq!(got, reference::argmax_rows(&z.view()));
    }
}
