//! Analytic gradients of the cost and the fused gradient-descent step, on
//! buffers preallocated once per run ([`Workspace`]).
//!
//! Both share one forward + backward pass that leaves `G = P - Y` and
//! `D = (G W2) * [H > 0]` (not yet divided by `n`) in the workspace. From
//! there [`Mlp::gradients_into`] writes `dJ/dtheta`, and [`Mlp::sgd_step`]
//! updates the parameters in place without materialising `dJ/dW`:
//! `W <- W - eta (dW + 2 lambda W)` is one gemm with `alpha = -eta/n` and
//! `beta = 1 - 2 eta lambda` accumulating straight into `W`.

use ndarray::{s, Array1, Array2, ArrayView2, ArrayViewMut1};
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

impl<T: Element> Mlp<T> {
    /// Forward and backward pass over the batch `images`: leaves `H`, `G` and
    /// `D` (undivided by `n`) in the first `n` rows of `ws` and returns the
    /// batch's summed loss and correct count.
    #[track_caller]
    fn backprop(
        &self,
        images: &ArrayView2<'_, T>,
        labels: &[u8],
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
        self.forward_into(images, &mut hidden, &mut logits);
        let sums = tensor::softmax_cross_entropy(&logits.view(), labels, &mut dlogits);
        tensor::gemm(
            T::one(),
            &dlogits.view(),
            &self.w2.view(),
            T::zero(),
            &mut dhidden,
        );
        tensor::relu_backward(&mut dhidden, &hidden.view());
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
        assert_eq!(
            (grads.w1.dim(), grads.w2.dim()),
            (self.w1.dim(), self.w2.dim()),
            "gradient buffers have other shapes than the network"
        );
        let sums = self.backprop(images, labels, ws);
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
        let sums = self.backprop(images, labels, ws);
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
