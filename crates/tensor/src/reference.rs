//! Naive twins of the fast routines, computed in `f64`: the oracles the
//! tests (and the benchmark's sanity check) compare against.

use ndarray::{Array1, Array2, ArrayView2};

use crate::Element;

fn f64_of<T: Element>(x: T) -> f64 {
    x.to_f64().unwrap_or(f64::NAN)
}

/// `alpha * A * B + beta * C` by the textbook triple loop in `f64`
/// (`C` is ignored when `beta == 0`, as in [`crate::gemm`]).
///
/// **Panics** if the shapes do not agree.
pub fn gemm<T: Element>(
    alpha: f64,
    a: &ArrayView2<'_, T>,
    b: &ArrayView2<'_, T>,
    beta: f64,
    c: &ArrayView2<'_, T>,
) -> Array2<f64> {
    let (m, k) = a.dim();
    let n = b.ncols();
    assert_eq!(b.nrows(), k, "inner dimensions differ");
    assert_eq!(c.dim(), (m, n), "C has the wrong shape");
    Array2::from_shape_fn((m, n), |(i, j)| {
        let mut sum = 0.0;
        for p in 0..k {
            sum += f64_of(a[[i, p]]) * f64_of(b[[p, j]]);
        }
        let old = if beta == 0.0 {
            0.0
        } else {
            beta * f64_of(c[[i, j]])
        };
        alpha * sum + old
    })
}

/// `sum_p |A[i, p] * B[p, j]|` per element: the scale a rounding error of
/// the product is measured against.
pub fn gemm_abs<T: Element>(a: &ArrayView2<'_, T>, b: &ArrayView2<'_, T>) -> Array2<f64> {
    let (m, k) = a.dim();
    let n = b.ncols();
    Array2::from_shape_fn((m, n), |(i, j)| {
        (0..k)
            .map(|p| (f64_of(a[[i, p]]) * f64_of(b[[p, j]])).abs())
            .sum()
    })
}

/// Row softmax in `f64`: `exp(z - max) / sum exp(z - max)`.
pub fn softmax_rows<T: Element>(z: &ArrayView2<'_, T>) -> Array2<f64> {
    let mut out = z.mapv(f64_of);
    for mut row in out.rows_mut() {
        let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let max = if row.iter().any(|v| v.is_nan()) {
            f64::NAN
        } else {
            max
        };
        row.mapv_inplace(|v| (v - max).exp());
        let sum: f64 = row.sum();
        row.mapv_inplace(|v| v / sum);
    }
    out
}

/// Softmax + cross-entropy in `f64`: `(sum_i -log p[i, y_i], p - onehot(y))`.
pub fn softmax_cross_entropy<T: Element>(
    logits: &ArrayView2<'_, T>,
    labels: &[u8],
) -> (f64, Array2<f64>) {
    let mut grad = softmax_rows(logits);
    let mut loss = 0.0;
    for (mut row, &y) in grad.rows_mut().into_iter().zip(labels) {
        loss -= row[y as usize].ln();
        row[y as usize] -= 1.0;
    }
    (loss, grad)
}

/// Index of the first maximum of each row; a NaN counts as the maximum
/// (the first NaN wins), as NumPy's `argmax` does.
pub fn argmax_rows<T: Element>(x: &ArrayView2<'_, T>) -> Vec<usize> {
    x.rows()
        .into_iter()
        .map(|row| {
            let mut best = 0;
            for (j, &v) in row.iter().enumerate() {
                if v.is_nan() {
                    return j;
                }
                if v > row[best] {
                    best = j;
                }
            }
            best
        })
        .collect()
}

/// `max(0, Z + bias)` per row, in `f64`.
pub fn add_bias_relu<T: Element>(
    z: &ArrayView2<'_, T>,
    bias: &ndarray::ArrayView1<'_, T>,
) -> Array2<f64> {
    let mut out = z.mapv(f64_of);
    for mut row in out.rows_mut() {
        for (v, &b) in row.iter_mut().zip(bias) {
            let s = *v + f64_of(b);
            *v = if s.is_nan() { s } else { s.max(0.0) };
        }
    }
    out
}

/// Column sums in `f64`.
pub fn column_sums<T: Element>(g: &ArrayView2<'_, T>) -> Array1<f64> {
    g.mapv(f64_of).sum_axis(ndarray::Axis(0))
}
