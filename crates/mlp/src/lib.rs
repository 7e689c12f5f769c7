//! The two-layer network `d -> m -> K` (ReLU hidden layer, softmax output),
//! its cost and analytic gradients, the numerical gradient check, learning-rate
//! schedules and the mini-batch training loop.
//!
//! Data model (as in `tensor`): samples are rows. A mini-batch `X` is
//! `n x d`; the hidden layer is `H = relu(X W1^T + b1)` (`n x m`), the logits
//! `S = H W2^T + b2` (`n x K`) and `P = softmax(S)` row by row.
//!
//! The cost is `J = (1/n) sum_i -log P[i, y_i] + lambda (||W1||^2 + ||W2||^2)`;
//! "loss" is the same without the L2 term. Its gradients, with
//! `G = P - Y` (one-hot `Y`), are
//!
//! ```text
//! dJ/dW2 = (1/n) G^T H + 2 lambda W2        dJ/db2 = (1/n) colsum(G)
//! D      = (G W2) * [H > 0]
//! dJ/dW1 = (1/n) D^T X + 2 lambda W1        dJ/db1 = (1/n) colsum(D)
//! ```
//!
//! All of it runs on the `tensor` kernels with buffers preallocated once
//! ([`grad::Workspace`]): a training step allocates nothing.

pub mod data;
pub mod grad;
pub mod gradcheck;
pub mod optim;
pub mod schedule;
pub mod train;
pub mod weights;

use ndarray::{Array1, Array2, ArrayView2};
use rand::SeedableRng;
use rand_distr::Distribution;
use rayon::prelude::*;
use tensor::Element;

pub use data::{Data, Features, RowSource};
pub use grad::{Gradients, StepOptions, Workspace};

/// Rows per block when evaluating a whole data set: large enough for the
/// matmul kernels to run at full speed, small enough to keep two cores busy
/// on 10000 rows. Fixed (never derived from the thread count), so results do
/// not depend on it.
pub const EVAL_BLOCK_ROWS: usize = 1000;

/// ChaCha stream used for the weight initialisation (the shuffles use another).
pub(crate) const INIT_STREAM: u64 = 0;

/// Network parameters. Shapes: `w1` is `n_hidden x n_input`, `b1` is
/// `n_hidden`, `w2` is `n_classes x n_hidden`, `b2` is `n_classes`.
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp<T> {
    /// First-layer weights.
    pub w1: Array2<T>,
    /// First-layer biases.
    pub b1: Array1<T>,
    /// Second-layer weights.
    pub w2: Array2<T>,
    /// Second-layer biases.
    pub b2: Array1<T>,
}

/// Cost, loss and accuracy of a model on a set of samples.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Evaluation {
    /// Mean cross-entropy plus `lambda * (||W1||^2 + ||W2||^2)`.
    pub cost: f64,
    /// Mean cross-entropy.
    pub loss: f64,
    /// Fraction of samples whose argmax prediction is the label.
    pub accuracy: f64,
}

impl<T: Element> Mlp<T> {
    /// SPEC.md's initialisation from `seed`: `W1 ~ N(0, 1/sqrt(n_input))`,
    /// `W2 ~ N(0, 1/sqrt(n_hidden))` (standard deviations), biases zero.
    ///
    /// The draws come from a ChaCha8 stream seeded with `seed` (portable
    /// across platforms and `rand` releases), in f64, W1 row-major first, then
    /// W2; they are then rounded to `T`, so an `f32` and an `f64` model from
    /// the same seed hold the same weights up to rounding.
    ///
    /// **Panics** if a dimension is zero.
    pub fn init(n_input: usize, n_hidden: usize, n_classes: usize, seed: u64) -> Self {
        assert!(
            n_input > 0 && n_hidden > 0 && n_classes > 0,
            "network dimensions must be positive (got {n_input} -> {n_hidden} -> {n_classes})"
        );
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(INIT_STREAM);
        let mut draw = |n_rows: usize, n_cols: usize, std_dev: f64| {
            let normal = rand_distr::Normal::new(0.0, std_dev).expect("finite positive std dev");
            Array2::from_shape_simple_fn((n_rows, n_cols), || {
                from_f64::<T>(normal.sample(&mut rng))
            })
        };
        let w1 = draw(n_hidden, n_input, 1.0 / (n_input as f64).sqrt());
        let w2 = draw(n_classes, n_hidden, 1.0 / (n_hidden as f64).sqrt());
        Self {
            w1,
            b1: Array1::zeros(n_hidden),
            w2,
            b2: Array1::zeros(n_classes),
        }
    }

    /// Input dimension `d`.
    pub fn n_input(&self) -> usize {
        self.w1.ncols()
    }

    /// Hidden units `m`.
    pub fn n_hidden(&self) -> usize {
        self.w1.nrows()
    }

    /// Output classes `K`.
    pub fn n_classes(&self) -> usize {
        self.w2.nrows()
    }

    /// The same network with its parameters converted to `U` (e.g. a trained
    /// f32 model as f64 for checks).
    pub fn cast<U: Element>(&self) -> Mlp<U> {
        let conv = |v: &T| from_f64::<U>(to_f64(*v));
        Mlp {
            w1: self.w1.map(conv),
            b1: self.b1.map(conv),
            w2: self.w2.map(conv),
            b2: self.b2.map(conv),
        }
    }

    /// `||W1||^2 + ||W2||^2`, accumulated in f64 in a fixed order.
    pub fn squared_weight_norm(&self) -> f64 {
        let sq = |acc: f64, &v: &T| {
            let v = to_f64(v);
            acc + v * v
        };
        self.w1.iter().fold(0.0, sq) + self.w2.iter().fold(0.0, sq)
    }

    /// True when every parameter is finite.
    pub fn is_finite(&self) -> bool {
        self.w1.iter().all(|v| v.is_finite())
            && self.b1.iter().all(|v| v.is_finite())
            && self.w2.iter().all(|v| v.is_finite())
            && self.b2.iter().all(|v| v.is_finite())
    }

    /// Hidden activations `relu(X W1^T + b1)` into `hidden` (`n x m`) and
    /// logits `H W2^T + b2` into `logits` (`n x K`).
    ///
    /// **Panics** if the shapes do not match the network.
    #[track_caller]
    pub fn forward_into(
        &self,
        images: &ArrayView2<'_, T>,
        hidden: &mut ndarray::ArrayViewMut2<'_, T>,
        logits: &mut ndarray::ArrayViewMut2<'_, T>,
    ) {
        assert_eq!(
            images.ncols(),
            self.n_input(),
            "images have {} columns but the network expects {}",
            images.ncols(),
            self.n_input()
        );
        tensor::gemm(T::one(), images, &self.w1.t(), T::zero(), hidden);
        tensor::add_bias_relu(hidden, &self.b1.view());
        tensor::gemm(T::one(), &hidden.view(), &self.w2.t(), T::zero(), logits);
        tensor::add_bias(logits, &self.b2.view());
    }

    /// Class probabilities `softmax(S)` for every row of `images` (allocates;
    /// a convenience for small inputs and tests).
    pub fn probabilities(&self, images: &ArrayView2<'_, T>) -> Array2<T> {
        let n = images.nrows();
        let mut hidden = Array2::zeros((n, self.n_hidden()));
        let mut logits = Array2::zeros((n, self.n_classes()));
        self.forward_into(images, &mut hidden.view_mut(), &mut logits.view_mut());
        tensor::softmax_rows(&mut logits.view_mut());
        logits
    }

    /// Summed cross-entropy and number of correct predictions over all rows,
    /// computed in blocks of [`EVAL_BLOCK_ROWS`] spread over the caller's
    /// rayon pool and summed in block order (bit-identical for any thread
    /// count).
    ///
    /// **Panics** if `labels.len() != images.nrows()` or a label is not below `K`.
    #[track_caller]
    pub fn loss_sum(&self, images: &ArrayView2<'_, T>, labels: &[u8]) -> tensor::LossSum {
        self.loss_sum_of(&Features::Matrix(images.view()), labels)
    }

    /// [`Mlp::loss_sum`] on any [`Features`]: rows a source writes on request
    /// are filled block by block into a buffer reused from block to block,
    /// so the same blocks reach the same products (same results as on the
    /// matrix of those rows).
    ///
    /// **Panics** if `labels.len() != features.nrows()` or a label is not below `K`.
    #[track_caller]
    pub fn loss_sum_of(&self, features: &Features<'_, T>, labels: &[u8]) -> tensor::LossSum {
        assert_eq!(
            labels.len(),
            features.nrows(),
            "{} labels for {} images",
            labels.len(),
            features.nrows()
        );
        let n = features.nrows();
        let n_blocks = n.div_ceil(EVAL_BLOCK_ROWS);
        let block = |buf: &mut Array2<T>, b: usize| {
            let lo = b * EVAL_BLOCK_ROWS;
            let hi = (lo + EVAL_BLOCK_ROWS).min(n);
            let x = features.block(lo, hi, buf);
            let mut hidden = Array2::zeros((hi - lo, self.n_hidden()));
            let mut logits = Array2::zeros((hi - lo, self.n_classes()));
            self.forward_into(&x, &mut hidden.view_mut(), &mut logits.view_mut());
            // Per-block buffers: a block is large, so allocating them costs
            // nothing next to its matmuls.
            let mut probs = Array2::zeros(logits.dim());
            tensor::softmax_cross_entropy(&logits.view(), &labels[lo..hi], &mut probs.view_mut())
        };
        let empty = || Array2::zeros((0, 0));
        let parts: Vec<tensor::LossSum> = if n_blocks > 1 {
            (0..n_blocks)
                .into_par_iter()
                .map_init(empty, block)
                .collect()
        } else {
            let mut buf = empty();
            (0..n_blocks).map(|b| block(&mut buf, b)).collect()
        };
        parts.iter().fold(
            tensor::LossSum {
                loss_sum: 0.0,
                n_correct: 0,
            },
            |acc, p| tensor::LossSum {
                loss_sum: acc.loss_sum + p.loss_sum,
                n_correct: acc.n_correct + p.n_correct,
            },
        )
    }

    /// Cost, loss and accuracy on `images` (one sample per row), evaluated in
    /// large blocks with the caller's rayon pool.
    ///
    /// **Panics** if `images` is empty, its width is not `n_input`, or the
    /// labels do not match.
    #[track_caller]
    pub fn evaluate(&self, images: &ArrayView2<'_, T>, labels: &[u8], lambda: f64) -> Evaluation {
        self.evaluate_features(&Features::Matrix(images.view()), labels, lambda)
    }

    /// [`Mlp::evaluate`] on any [`Features`] (see [`Mlp::loss_sum_of`]).
    ///
    /// **Panics** as [`Mlp::evaluate`].
    #[track_caller]
    pub fn evaluate_features(
        &self,
        features: &Features<'_, T>,
        labels: &[u8],
        lambda: f64,
    ) -> Evaluation {
        assert!(features.nrows() > 0, "cannot evaluate on an empty set");
        let sums = self.loss_sum_of(features, labels);
        let n = features.nrows() as f64;
        let loss = sums.loss_sum / n;
        Evaluation {
            cost: loss + lambda * self.squared_weight_norm(),
            loss,
            accuracy: sums.n_correct as f64 / n,
        }
    }

    /// The cost `J` on `images` (see [`Mlp::evaluate`]).
    pub fn cost(&self, images: &ArrayView2<'_, T>, labels: &[u8], lambda: f64) -> f64 {
        self.evaluate(images, labels, lambda).cost
    }
}

/// `v` as f64 (exact for f32 and f64).
#[inline]
pub(crate) fn to_f64<T: Element>(v: T) -> f64 {
    v.to_f64().unwrap_or(f64::NAN)
}

/// `v` rounded to `T`.
#[inline]
pub(crate) fn from_f64<T: Element>(v: f64) -> T {
    T::from(v).unwrap_or_else(T::nan)
}

#[cfg(test)]
mod curve_tests;
#[cfg(test)]
mod tests;
