//! Fused row operations of the training loop: bias + ReLU and its backward
//! mask, column sums, row softmax, softmax + cross-entropy + gradient, argmax.
//! All write into caller-provided buffers (no allocation).

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2};

use crate::Element;

/// `Z[i, j] = max(0, Z[i, j] + bias[j])`: the hidden layer's bias add and ReLU in one pass.
///
/// **Panics** if `bias.len() != z.ncols()`.
#[track_caller]
pub fn add_bias_relu<T: Element>(z: &mut ArrayViewMut2<'_, T>, bias: &ArrayView1<'_, T>) {
    assert_eq!(
        bias.len(),
        z.ncols(),
        "bias length must equal the number of columns"
    );
    for mut row in z.rows_mut() {
        for (v, &b) in row.iter_mut().zip(bias.iter()) {
            let s = *v + b;
            // NaN propagates: `s < 0` is false for NaN.
            *v = if s < T::zero() { T::zero() } else { s };
        }
    }
}

/// `Z[i, j] += bias[j]`.
///
/// **Panics** if `bias.len() != z.ncols()`.
#[track_caller]
pub fn add_bias<T: Element>(z: &mut ArrayViewMut2<'_, T>, bias: &ArrayView1<'_, T>) {
    assert_eq!(
        bias.len(),
        z.ncols(),
        "bias length must equal the number of columns"
    );
    for mut row in z.rows_mut() {
        row.zip_mut_with(bias, |v, &b| *v = *v + b);
    }
}

/// ReLU backward: `grad[i, j] = 0` where `activation[i, j] <= 0` (the unit was off).
///
/// **Panics** if the shapes differ.
#[track_caller]
pub fn relu_backward<T: Element>(grad: &mut ArrayViewMut2<'_, T>, activation: &ArrayView2<'_, T>) {
    assert_eq!(
        grad.dim(),
        activation.dim(),
        "gradient and activation shapes differ"
    );
    ndarray::Zip::from(grad).and(activation).for_each(|g, &a| {
        if a <= T::zero() {
            *g = T::zero();
        }
    });
}

/// Column sums `out[j] = sum_i g[i, j]` (bias gradients), summed in row order.
///
/// **Panics** if `out.len() != g.ncols()`.
#[track_caller]
pub fn column_sums<T: Element>(g: &ArrayView2<'_, T>, out: &mut ArrayViewMut1<'_, T>) {
    assert_eq!(
        out.len(),
        g.ncols(),
        "output length must equal the number of columns"
    );
    out.fill(T::zero());
    for row in g.rows() {
        out.zip_mut_with(&row, |o, &v| *o = *o + v);
    }
}

/// Numerically stable softmax of each row, in place.
pub fn softmax_rows<T: Element>(z: &mut ArrayViewMut2<'_, T>) {
    for mut row in z.rows_mut() {
        let max = row.iter().fold(
            T::neg_infinity(),
            |m, &v| if v > m || v.is_nan() { v } else { m },
        );
        let mut sum = T::zero();
        for v in row.iter_mut() {
            *v = (*v - max).exp();
            sum = sum + *v;
        }
        for v in row.iter_mut() {
            *v = *v / sum;
        }
    }
}

/// What one pass of softmax + cross-entropy over a block of rows yields.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossSum {
    /// `sum_i -log p[i, y_i]`, accumulated in f64.
    pub loss_sum: f64,
    /// How many rows have `argmax_j p[i, j] == y_i`.
    pub n_correct: usize,
}

/// Softmax + cross-entropy + its gradient in one pass.
///
/// For each row `i` of `logits`, writes `out[i, j] = p[i, j] - [j == labels[i]]`
/// (the gradient of `-log p[i, y_i]` with respect to the logits, not yet
/// divided by the batch size) and returns the summed loss and the number of
/// correct argmax predictions. `out` may alias nothing; pass `logits` as a
/// view of a separate buffer.
///
/// **Panics** if the shapes differ, `labels.len() != logits.nrows()`, or a
/// label is not a column index.
#[track_caller]
pub fn softmax_cross_entropy<T: Element>(
    logits: &ArrayView2<'_, T>,
    labels: &[u8],
    out: &mut ArrayViewMut2<'_, T>,
) -> LossSum {
    assert_eq!(logits.dim(), out.dim(), "logits and output shapes differ");
    assert_eq!(labels.len(), logits.nrows(), "one label per row");
    out.assign(logits);
    let mut loss_sum = 0.0f64;
    let mut n_correct = 0;
    for (mut row, &label) in out.rows_mut().into_iter().zip(labels) {
        let label = label as usize;
        assert!(label < row.len(), "label {label} out of range");
        let mut best = 0;
        for j in 1..row.len() {
            if row[j] > row[best] {
                best = j;
            }
        }
        n_correct += usize::from(best == label);
        let max = row[best];
        let mut sum = 0.0f64;
        for v in row.iter() {
            sum += (*v - max).to_f64().unwrap_or(f64::NAN).exp();
        }
        let log_sum = sum.ln();
        let z_label = (row[label] - max).to_f64().unwrap_or(f64::NAN);
        loss_sum += log_sum - z_label;
        let inv = T::from(1.0 / sum).unwrap_or(T::nan());
        for v in row.iter_mut() {
            *v = (*v - max).exp() * inv;
        }
        row[label] = row[label] - T::one();
    }
    LossSum {
        loss_sum,
        n_correct,
    }
}

/// Index of the largest entry of each row (first one on ties) into `out`.
///
/// **Panics** if `out.len() != x.nrows()`.
#[track_caller]
pub fn argmax_rows<T: Element>(x: &ArrayView2<'_, T>, out: &mut [usize]) {
    assert_eq!(out.len(), x.nrows(), "one output per row");
    for (row, o) in x.rows().into_iter().zip(out.iter_mut()) {
        let mut best = 0;
        for j in 1..row.len() {
            if row[j] > row[best] {
                best = j;
            }
        }
        *o = best;
    }
}
