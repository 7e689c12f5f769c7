//! Fused row operations of the training loop: bias + ReLU and its backward
//! mask, column sums, row softmax, softmax + cross-entropy + gradient, argmax.
//!
//! All of them write into caller-provided buffers and never allocate. Rows
//! are walked as contiguous slices when the layout allows (the usual
//! row-major case) and element by element otherwise.
//!
//! NaN policy: a NaN in the input shows up as NaN in the output (or, for
//! argmax, as the chosen index), never as a plausible-looking number.

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, Axis};

use crate::Element;

/// `Z[i, j] = max(0, Z[i, j] + bias[j])`: the hidden layer's bias add and ReLU in one pass.
/// NaN stays NaN.
///
/// **Panics** if `bias.len() != z.ncols()`.
#[track_caller]
pub fn add_bias_relu<T: Element>(z: &mut ArrayViewMut2<'_, T>, bias: &ArrayView1<'_, T>) {
    assert_eq!(
        bias.len(),
        z.ncols(),
        "bias length must equal the number of columns"
    );
    let relu = |v: &mut T, b: T| {
        let s = *v + b;
        // NaN propagates: `s < 0` is false for NaN.
        *v = if s < T::zero() { T::zero() } else { s };
    };
    match bias.as_slice() {
        Some(bias) => {
            for mut row in z.rows_mut() {
                match row.as_slice_mut() {
                    Some(row) => row.iter_mut().zip(bias).for_each(|(v, &b)| relu(v, b)),
                    None => row.iter_mut().zip(bias).for_each(|(v, &b)| relu(v, b)),
                }
            }
        }
        None => {
            for mut row in z.rows_mut() {
                row.zip_mut_with(bias, |v, &b| relu(v, b));
            }
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
        match (row.as_slice_mut(), bias.as_slice()) {
            (Some(row), Some(bias)) => row.iter_mut().zip(bias).for_each(|(v, &b)| *v = *v + b),
            _ => row.zip_mut_with(bias, |v, &b| *v = *v + b),
        }
    }
}

/// ReLU backward: `grad[i, j] = 0` where `activation[i, j] <= 0` (the unit
/// was off); where the activation is NaN the gradient becomes NaN (the mask
/// is undefined there).
///
/// **Panics** if the shapes differ.
#[track_caller]
pub fn relu_backward<T: Element>(grad: &mut ArrayViewMut2<'_, T>, activation: &ArrayView2<'_, T>) {
    assert_eq!(
        grad.dim(),
        activation.dim(),
        "gradient and activation shapes differ"
    );
    let mask = |g: &mut T, a: T| {
        if a <= T::zero() {
            *g = T::zero();
        } else if a.is_nan() {
            *g = a;
        }
    };
    for (mut g_row, a_row) in grad.rows_mut().into_iter().zip(activation.rows()) {
        match (g_row.as_slice_mut(), a_row.as_slice()) {
            (Some(g), Some(a)) => g.iter_mut().zip(a).for_each(|(g, &a)| mask(g, a)),
            _ => g_row.zip_mut_with(&a_row, |g, &a| mask(g, a)),
        }
    }
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
        match (out.as_slice_mut(), row.as_slice()) {
            (Some(o), Some(r)) => o.iter_mut().zip(r).for_each(|(o, &v)| *o = *o + v),
            _ => out.zip_mut_with(&row, |o, &v| *o = *o + v),
        }
    }
}

/// The largest entry of `row`, or NaN if the row contains a NaN (and
/// `-inf` for an empty row).
fn row_max<T: Element>(row: impl Iterator<Item = T>) -> T {
    let mut max = T::neg_infinity();
    for v in row {
        if v.is_nan() {
            return v;
        }
        if v > max {
            max = v;
        }
    }
    max
}

/// Index of the first largest entry, or of the first NaN if there is one.
fn row_argmax<T: Element>(row: impl Iterator<Item = T>) -> usize {
    let mut best = 0;
    let mut best_value = T::neg_infinity();
    for (j, v) in row.enumerate() {
        if v.is_nan() {
            return j;
        }
        if v > best_value || j == 0 {
            best = j;
            best_value = v;
        }
    }
    best
}

/// Softmax of one contiguous row in place; the sum of the exponentials is
/// accumulated in `f64`. Returns `(max, sum)` for callers that need the log-sum.
fn softmax_slice<T: Element>(row: &mut [T]) -> (T, f64) {
    let max = row_max(row.iter().copied());
    let mut sum = 0.0f64;
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += v.to_f64().unwrap_or(f64::NAN);
    }
    let inv = T::from(1.0 / sum).unwrap_or_else(T::nan);
    for v in row.iter_mut() {
        *v = *v * inv;
    }
    (max, sum)
}

/// Numerically stable softmax of each row, in place: `exp(z - max) / sum`.
///
/// Finite for any finite input (1e4, -1e4, all equal); a row containing NaN
/// (or `+inf`) becomes all NaN.
pub fn softmax_rows<T: Element>(z: &mut ArrayViewMut2<'_, T>) {
    for mut row in z.rows_mut() {
        match row.as_slice_mut() {
            Some(row) => {
                softmax_slice(row);
            }
            None => {
                let max = row_max(row.iter().copied());
                let mut sum = 0.0f64;
                for v in row.iter_mut() {
                    *v = (*v - max).exp();
                    sum += v.to_f64().unwrap_or(f64::NAN);
                }
                let inv = T::from(1.0 / sum).unwrap_or_else(T::nan);
                row.map_inplace(|v| *v = *v * inv);
            }
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
/// correct argmax predictions (first maximum on ties). `out` may alias
/// nothing; pass `logits` as a view of a separate buffer.
///
/// A row containing NaN yields a NaN gradient row and a NaN loss, and never
/// counts as correct.
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
    let n_classes = logits.ncols();
    if let Some(&bad) = labels.iter().find(|&&y| usize::from(y) >= n_classes) {
        label_panic(bad, n_classes);
    }
    let mut loss_sum = 0.0f64;
    let mut n_correct = 0;
    for ((z, mut o), &label) in logits
        .axis_iter(Axis(0))
        .zip(out.axis_iter_mut(Axis(0)))
        .zip(labels)
    {
        let label = usize::from(label);
        let predicted = row_argmax(z.iter().copied());
        let z_label = z[label];
        o.assign(&z);
        let (max, sum) = match o.as_slice_mut() {
            Some(row) => softmax_slice(row),
            None => {
                let max = row_max(o.iter().copied());
                let mut sum = 0.0f64;
                for v in o.iter_mut() {
                    *v = (*v - max).exp();
                    sum += v.to_f64().unwrap_or(f64::NAN);
                }
                let inv = T::from(1.0 / sum).unwrap_or_else(T::nan);
                o.map_inplace(|v| *v = *v * inv);
                (max, sum)
            }
        };
        // -log p_y = log(sum) - (z_y - max), without forming the rounded p_y.
        let shifted = (z_label - max).to_f64().unwrap_or(f64::NAN);
        loss_sum += sum.ln() - shifted;
        n_correct += usize::from(predicted == label && !max.is_nan());
        o[label] = o[label] - T::one();
    }
    LossSum {
        loss_sum,
        n_correct,
    }
}

#[cold]
#[inline(never)]
#[track_caller]
fn label_panic(label: u8, n_classes: usize) -> ! {
    panic!("label {label} out of range for {n_classes} classes")
}

/// Index of the largest entry of each row (first one on ties) into `out`.
/// A row containing NaN yields the index of its first NaN (as NumPy's
/// `argmax`), so a broken row never looks like a confident prediction.
///
/// **Panics** if `out.len() != x.nrows()`.
#[track_caller]
pub fn argmax_rows<T: Element>(x: &ArrayView2<'_, T>, out: &mut [usize]) {
    assert_eq!(out.len(), x.nrows(), "one output per row");
    for (row, o) in x.rows().into_iter().zip(out.iter_mut()) {
        *o = match row.as_slice() {
            Some(slice) => row_argmax(slice.iter().copied()),
            None => row_argmax(row.iter().copied()),
        };
    }
}
