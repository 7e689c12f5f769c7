//! Analytic gradients of the cost and the fused gradient-descent step, on
//! buffers preallocated once per run ([`Workspace`]).
//!
//! Both share one forward + backward pass that leaves `G = P - Y` and
//! `D = (G W2) * [H > 0]` (not yet divided by `n`) in the workspace. From
//! there [`Mlp::gradients_into`] writes `dJ/dtheta`, and [`Mlp::sgd_step`]
//! updates the parameters in place without materialising `dJ/dW`:
//! `W <- W - eta (dW + 2 lambda W)` is one gemm with `alpha = -eta/n` and
//! `beta = 1 - 2 eta lambda` accumulating straight into `W`.

use ndarray::{s, Array1, Array2, ArrayView2, ArrayViewMut1, ArrayViewMut2, Zip};
use tensor::{Element, LossSum};

use crate::{from_f64, Mlp};

/// Gradients of the cost, stored with the parameters' shapes (`w1` holds
/// `dJ/dW1`, and so on).
pub type Gradients<T> = Mlp<T>;

/// Work buffers for mini-batches of up to `max_rows` samples: hidden
/// activations, logits, `G`, `D` and the bias-gradient vectors. Allocated once;
/// a shorter batch uses the first rows.
#[derive(Clone, Debug)]
pub struct Workspace<T> {
    hidden: Array2<T>,
    logits: Array2<T>,
    dlogits: Array2<T>,
    dhidden: Array2<T>,
    db1: Array1<T>,
    db2: Array1<T>,
}

impl<T: Element> Workspace<T> {
    /// Buffers for batches of up to `max_rows` samples through a network with
    /// `n_hidden` hidden units and `n_classes` outputs.
    pub fn new(max_rows: usize, n_hidden: usize, n_classes: usize) -> Self {
        Self {
            hidden: Array2::zeros((max_rows, n_hidden)),
            logits: Array2::zeros((max_rows, n_classes)),
            dlogits: Array2::zeros((max_rows, n_classes)),
            dhidden: Array2::zeros((max_rows, n_hidden)),
            db1: Array1::zeros(n_hidden),
            db2: Array1::zeros(n_classes),
        }
    }

    /// Buffers sized for `model` and batches of up to `max_rows` samples.
    pub fn for_model(model: &Mlp<T>, max_rows: usize) -> Self {
        Self::new(max_rows, model.n_hidden(), model.n_classes())
    }

    /// The largest batch these buffers hold.
    pub fn max_rows(&self) -> usize {
        self.hidden.nrows()
    }
}

/// What a training step adds to the plain cost: inverted dropout on the
/// hidden layer with a given mask, and label smoothing.
///
/// With a mask `M` (`n x m`, entries `0` or `1 / (1 - p)`), the hidden layer
/// is `H = relu(X W1^T + b1) * M`, so `D = (G W2) * [H > 0] * M`. With label
/// smoothing `eps`, the target is `Q = (1 - eps) Y + eps / K` and the loss
/// `-sum_k Q[i, k] log P[i, k]`, so `G = P - Q`.
#[derive(Clone, Copy, Debug)]
pub struct StepOptions<'a, T> {
    /// The dropout mask of this batch (`None`: no dropout).
    pub dropout_mask: Option<ArrayView2<'a, T>>,
    /// Label smoothing `eps` in [0, 1).
    pub label_smoothing: f64,
}

impl<T: 'static> StepOptions<'_, T> {
    /// The plain cost: no dropout, hard targets.
    pub const NONE: StepOptions<'static, T> = StepOptions {
        dropout_mask: None,
        label_smoothing: 0.0,
    };
}

/// Add `eps (Y - 1/K)` to `G = P - Y` (making it `P - Q`), and return the
/// smoothed summed loss `sum_i [lse_i - (1 - eps) s_{i,y} - eps/K sum_k s_{i,k}]`
/// computed from the logits.
fn smooth_labels<T: Element>(
    logits: &ArrayView2<'_, T>,
    labels: &[u8],
    eps: f64,
    dlogits: &mut ArrayViewMut2<'_, T>,
) -> f64 {
    let k = logits.ncols() as f64;
    let off = from_f64::<T>(eps / k);
    let on = from_f64::<T>(eps);
    let mut loss = 0.0;
    for ((s, mut g), &y) in logits
        .rows()
        .into_iter()
        .zip(dlogits.rows_mut())
        .zip(labels)
    {
        let f = |v: &T| crate::to_f64(*v);
        let max = s.iter().map(f).fold(f64::NEG_INFINITY, f64::max);
        let lse = max + s.iter().map(|v| (f(v) - max).exp()).sum::<f64>().ln();
        let y = usize::from(y);
        loss += lse - (1.0 - eps) * f(&s[y]) - eps / k * s.iter().map(f).sum::<f64>();
        g.mapv_inplace(|v| v - off);
        g[y] = g[y] + on;
    }
    loss
}

impl<T: Element> Mlp<T> {
    /// Forward and backward pass over the batch `images`: leaves `H`, `G` and
    /// `D` (undivided by `n`) in the first `n` rows of `ws` and returns the
    /// batch's summed loss and correct count.
    #[track_caller]
    fn backprop(
        &self,
        images: &ArrayView2<'_, T>,
        labels: &[u8],
        options: &StepOptions<'_, T>,
        ws: &mut Workspace<T>,
    ) -> LossSum {
        let n = images.nrows();
        assert!(n > 0, "empty mini-batch");
        assert!(
            n <= ws.max_rows(),
            "mini-batch of {n} rows but the workspace holds {}",
            ws.max_rows()
        );
        assert_eq!(
            (ws.hidden.ncols(), ws.logits.ncols()),
            (self.n_hidden(), self.n_classes()),
            "workspace was made for another network"
        );
        let mut hidden = ws.hidden.slice_mut(s![..n, ..]);
        let mut logits = ws.logits.slice_mut(s![..n, ..]);
        let mut dlogits = ws.dlogits.slice_mut(s![..n, ..]);
        let mut dhidden = ws.dhidden.slice_mut(s![..n, ..]);
        match options.dropout_mask {
            None => self.forward_into(images, &mut hidden, &mut logits),
            Some(mask) => {
                assert_eq!(mask.dim(), hidden.dim(), "dropout mask shape");
                // H = relu(X W1^T + b1) * M, then S = H W2^T + b2.
                tensor::gemm(T::one(), images, &self.w1.t(), T::zero(), &mut hidden);
                tensor::add_bias_relu(&mut hidden, &self.b1.view());
                Zip::from(&mut hidden)
                    .and(&mask)
                    .for_each(|h, &m| *h = *h * m);
                tensor::gemm(
                    T::one(),
                    &hidden.view(),
                    &self.w2.t(),
                    T::zero(),
                    &mut logits,
                );
                tensor::add_bias(&mut logits, &self.b2.view());
            }
        }
        let mut sums = tensor::softmax_cross_entropy(&logits.view(), labels, &mut dlogits);
        if options.label_smoothing > 0.0 {
            sums.loss_sum = smooth_labels(
                &logits.view(),
                labels,
                options.label_smoothing,
                &mut dlogits,
            );
        }
        tensor::gemm(
            T::one(),
            &dlogits.view(),
            &self.w2.view(),
            T::zero(),
            &mut dhidden,
        );
        tensor::relu_backward(&mut dhidden, &hidden.view());
        if let Some(mask) = options.dropout_mask {
            Zip::from(&mut dhidden)
                .and(&mask)
                .for_each(|d, &m| *d = *d * m);
        }
        sums
    }

    /// Analytic gradients of the cost `J` (mean cross-entropy over the rows
    /// of `images` plus `lambda (||W1||^2 + ||W2||^2)`) into `grads`; returns
    /// the batch's summed loss and correct count.
    ///
    /// **Panics** if the batch is empty or larger than `ws`, or shapes differ.
    #[track_caller]
    pub fn gradients_into(
        &self,
        images: &ArrayView2<'_, T>,
        labels: &[u8],
        lambda: f64,
        ws: &mut Workspace<T>,
        grads: &mut Gradients<T>,
    ) -> LossSum {
        self.gradients_with(images, labels, lambda, &StepOptions::NONE, ws, grads)
    }

    /// [`Mlp::gradients_into`] of the cost with dropout and label smoothing
    /// as `options` say (see [`StepOptions`]).
    ///
    /// **Panics** as [`Mlp::gradients_into`], or if the mask's shape is not `n x m`.
    #[track_caller]
    pub fn gradients_with(
        &self,
        images: &ArrayView2<'_, T>,
        labels: &[u8],
        lambda: f64,
        options: &StepOptions<'_, T>,
        ws: &mut Workspace<T>,
        grads: &mut Gradients<T>,
    ) -> LossSum {
        assert_eq!(
            (grads.w1.dim(), grads.w2.dim()),
            (self.w1.dim(), self.w2.dim()),
            "gradient buffers have other shapes than the network"
        );
        let sums = self.backprop(images, labels, options, ws);
        let n = images.nrows();
        let inv_n = from_f64::<T>(1.0 / n as f64);
        let two_lambda = from_f64::<T>(2.0 * lambda);
        let hidden = ws.hidden.slice(s![..n, ..]);
        let dlogits = ws.dlogits.slice(s![..n, ..]);
        let dhidden = ws.dhidden.slice(s![..n, ..]);
        grads.w2.assign(&self.w2);
        tensor::gemm(
            inv_n,
            &dlogits.t(),
            &hidden,
            two_lambda,
            &mut grads.w2.view_mut(),
        );
        grads.w1.assign(&self.w1);
        tensor::gemm(
            inv_n,
            &dhidden.t(),
            images,
            two_lambda,
            &mut grads.w1.view_mut(),
        );
        tensor::column_sums(&dlogits, &mut grads.b2.view_mut());
        grads.b2.mapv_inplace(|v| v * inv_n);
        tensor::column_sums(&dhidden, &mut grads.b1.view_mut());
        grads.b1.mapv_inplace(|v| v * inv_n);
        sums
    }

    /// Allocating convenience over [`Mlp::gradients_into`].
    pub fn gradients(
        &self,
        images: &ArrayView2<'_, T>,
        labels: &[u8],
        lambda: f64,
    ) -> (Gradients<T>, LossSum) {
        let mut ws = Workspace::for_model(self, images.nrows());
        let mut grads = self.clone();
        let sums = self.gradients_into(images, labels, lambda, &mut ws, &mut grads);
        (grads, sums)
    }

    /// One gradient-descent update on the batch `images`:
    /// `theta <- theta - eta dJ/dtheta`, fused (see the module docs), in
    /// place, without allocating. Returns the batch's summed loss (before the
    /// update) and correct count; a non-finite `loss_sum` means divergence.
    ///
    /// **Panics** if the batch is empty or larger than `ws`, or shapes differ.
    #[track_caller]
    pub fn sgd_step(
        &mut self,
        images: &ArrayView2<'_, T>,
        labels: &[u8],
        lambda: f64,
        eta: f64,
        ws: &mut Workspace<T>,
    ) -> LossSum {
        self.sgd_step_with(images, labels, lambda, eta, &StepOptions::NONE, ws)
    }

    /// [`Mlp::sgd_step`] on the cost with dropout and label smoothing as
    /// `options` say (see [`StepOptions`]).
    #[track_caller]
    pub fn sgd_step_with(
        &mut self,
        images: &ArrayView2<'_, T>,
        labels: &[u8],
        lambda: f64,
        eta: f64,
        options: &StepOptions<'_, T>,
        ws: &mut Workspace<T>,
    ) -> LossSum {
        let sums = self.backprop(images, labels, options, ws);
        let n = images.nrows();
        let scale = from_f64::<T>(eta / n as f64);
        let decay = from_f64::<T>(1.0 - 2.0 * eta * lambda);
        let hidden = ws.hidden.slice(s![..n, ..]);
        let dlogits = ws.dlogits.slice(s![..n, ..]);
        let dhidden = ws.dhidden.slice(s![..n, ..]);
        tensor::gemm(
            -scale,
            &dlogits.t(),
            &hidden,
            decay,
            &mut self.w2.view_mut(),
        );
        tensor::gemm(-scale, &dhidden.t(), images, decay, &mut self.w1.view_mut());
        tensor::column_sums(&dlogits, &mut ws.db2.view_mut());
        axpy(-scale, &ws.db2, &mut self.b2.view_mut());
        tensor::column_sums(&dhidden, &mut ws.db1.view_mut());
        axpy(-scale, &ws.db1, &mut self.b1.view_mut());
        sums
    }
}

/// `y += a x`.
fn axpy<T: Element>(a: T, x: &Array1<T>, y: &mut ArrayViewMut1<'_, T>) {
    y.zip_mut_with(x, |yv, &xv| *yv = *yv + a * xv);
}
