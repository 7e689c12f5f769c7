//! The two-layer network `d -> m -> K` (ReLU hidden layer, softmax output),
//! its cost and analytic gradients, the numerical gradient check, learning-rate
//! schedules and the mini-batch training loop.
//!
//! SKELETON: the signatures below are the contract other crates build on
//! (issue 4 implements them); bodies marked `todo!` are not done.

pub mod schedule;
pub mod train;
pub mod weights;

use ndarray::{Array1, Array2, ArrayView2};
use tensor::Element;

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
    pub fn init(n_input: usize, n_hidden: usize, n_classes: usize, seed: u64) -> Self {
        let _ = (n_input, n_hidden, n_classes, seed);
        todo!("issue 4")
    }

    /// Cost, loss and accuracy on `images` (one sample per row), evaluated in
    /// large blocks with the caller's rayon pool.
    pub fn evaluate(&self, images: &ArrayView2<'_, T>, labels: &[u8], lambda: f64) -> Evaluation {
        let _ = (images, labels, lambda);
        todo!("issue 4")
    }
}
