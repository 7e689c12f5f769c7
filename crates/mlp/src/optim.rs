//! Optimizers behind one seam: each turns a mini-batch into an in-place
//! parameter update, with its state (velocities, moments) and a gradient
//! buffer allocated once, so a step allocates nothing.
//!
//! - `sgd`: `theta <- theta - eta dJ/dtheta`, the fused update of
//!   [`Mlp::sgd_step`] (the report's experiments are bit-identical with it).
//! - `momentum`: heavy-ball `v <- mu v - eta g; theta <- theta + v`, or
//!   Nesterov's look-ahead form `v <- mu v - eta g; theta <- theta + mu v - eta g`
//!   (Sutskever et al. 2013), with `g = dJ/dtheta` including the L2 term.
//! - `adamw` (Loshchilov & Hutter): Adam on the gradient of the loss
//!   (plus any L2 term `lambda` asks for), with weight decay applied to the
//!   weights directly: `W <- W - eta wd W - eta m_hat / (sqrt(v_hat) + epsilon)`,
//!   `m_hat = m / (1 - beta1^t)`, `v_hat = v / (1 - beta2^t)`. Biases are not decayed.

use ndarray::{ArrayView2, Zip};
use tensor::{Element, LossSum};

use crate::grad::StepOptions;
use crate::{from_f64, Gradients, Mlp, Workspace};

/// An optimizer as written in a config file (`[train.optimizer]`).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum OptimizerSpec {
    /// Plain gradient descent.
    Sgd,
    /// Heavy-ball or Nesterov momentum.
    Momentum {
        /// Momentum `mu` in [0, 1).
        mu: f64,
        /// Nesterov's look-ahead form.
        nesterov: bool,
    },
    /// Adam with decoupled weight decay.
    Adamw {
        /// First-moment decay in [0, 1).
        beta1: f64,
        /// Second-moment decay in [0, 1).
        beta2: f64,
        /// Added to `sqrt(v_hat)`; positive.
        epsilon: f64,
        /// Decoupled weight decay `wd` >= 0 (scaled by eta).
        weight_decay: f64,
    },
}

/// An optimizer setting out of range: the field and what is wrong.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("optimizer.{field}: {message}")]
pub struct InvalidOptimizer {
    /// The field, e.g. `mu`.
    pub field: &'static str,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl OptimizerSpec {
    /// Check the values; the error names the offending field.
    pub fn validate(&self) -> Result<(), InvalidOptimizer> {
        let unit = |field: &'static str, v: f64| {
            if (0.0..1.0).contains(&v) {
                Ok(())
            } else {
                Err(InvalidOptimizer {
                    field,
                    message: format!("{v} must be in [0, 1)"),
                })
            }
        };
        match *self {
            OptimizerSpec::Sgd => Ok(()),
            OptimizerSpec::Momentum { mu, .. } => unit("mu", mu),
            OptimizerSpec::Adamw {
                beta1,
                beta2,
                epsilon,
                weight_decay,
            } => {
                unit("beta1", beta1)?;
                unit("beta2", beta2)?;
                if !(epsilon.is_finite() && epsilon > 0.0) {
                    return Err(InvalidOptimizer {
                        field: "epsilon",
                        message: format!("{epsilon} must be a positive finite number"),
                    });
                }
                if !(weight_decay.is_finite() && weight_decay >= 0.0) {
                    return Err(InvalidOptimizer {
                        field: "weight_decay",
                        message: format!("{weight_decay} must be a finite number >= 0"),
                    });
                }
                Ok(())
            }
        }
    }
}

/// An optimizer with its state for one model.
#[derive(Clone, Debug)]
pub struct Optimizer<T> {
    spec: OptimizerSpec,
    /// Gradient buffer (unused by `sgd`, whose update is fused).
    grads: Option<Gradients<T>>,
    /// Velocity (momentum) or first moment (AdamW).
    first: Option<Mlp<T>>,
    /// Second moment (AdamW).
    second: Option<Mlp<T>>,
    /// Updates done.
    t: u64,
}

fn zeros_like<T: Element>(model: &Mlp<T>) -> Mlp<T> {
    Mlp {
        w1: ndarray::Array2::zeros(model.w1.dim()),
        b1: ndarray::Array1::zeros(model.b1.dim()),
        w2: ndarray::Array2::zeros(model.w2.dim()),
        b2: ndarray::Array1::zeros(model.b2.dim()),
    }
}

/// Apply `f(param, grad, first, second)` to every parameter entry, W1, b1, W2, b2.
fn for_each<T: Element>(
    model: &mut Mlp<T>,
    grads: &Gradients<T>,
    first: &mut Mlp<T>,
    second: &mut Mlp<T>,
    mut f: impl FnMut(bool, &mut T, T, &mut T, &mut T),
) {
    Zip::from(&mut model.w1)
        .and(&grads.w1)
        .and(&mut first.w1)
        .and(&mut second.w1)
        .for_each(|p, &g, a, b| f(true, p, g, a, b));
    Zip::from(&mut model.b1)
        .and(&grads.b1)
        .and(&mut first.b1)
        .and(&mut second.b1)
        .for_each(|p, &g, a, b| f(false, p, g, a, b));
    Zip::from(&mut model.w2)
        .and(&grads.w2)
        .and(&mut first.w2)
        .and(&mut second.w2)
        .for_each(|p, &g, a, b| f(true, p, g, a, b));
    Zip::from(&mut model.b2)
        .and(&grads.b2)
        .and(&mut first.b2)
        .and(&mut second.b2)
        .for_each(|p, &g, a, b| f(false, p, g, a, b));
}

impl<T: Element> Optimizer<T> {
    /// Fresh state (zero velocities and moments) for `model`.
    pub fn new(spec: OptimizerSpec, model: &Mlp<T>) -> Self {
        let (grads, first, second) = match spec {
            OptimizerSpec::Sgd => (None, None, None),
            // Momentum needs no second buffer, but one keeps `for_each` simple;
            // it is the size of the model, allocated once.
            OptimizerSpec::Momentum { .. } | OptimizerSpec::Adamw { .. } => (
                Some(zeros_like(model)),
                Some(zeros_like(model)),
                Some(zeros_like(model)),
            ),
        };
        Self {
            spec,
            grads,
            first,
            second,
            t: 0,
        }
    }

    /// The spec this optimizer runs.
    pub fn spec(&self) -> &OptimizerSpec {
        &self.spec
    }

    /// One update of `model` on the batch `images` with learning rate `eta`
    /// and L2 strength `lambda`; returns the batch's summed loss before the
    /// update (non-finite means divergence). Allocates nothing.
    ///
    /// **Panics** if the batch is empty or larger than `ws`, or shapes differ.
    #[allow(clippy::too_many_arguments)]
    #[track_caller]
    pub fn step(
        &mut self,
        model: &mut Mlp<T>,
        images: &ArrayView2<'_, T>,
        labels: &[u8],
        lambda: f64,
        eta: f64,
        options: &StepOptions<'_, T>,
        ws: &mut Workspace<T>,
    ) -> LossSum {
        self.t += 1;
        let (grads, first, second) = match (&mut self.grads, &mut self.first, &mut self.second) {
            (Some(g), Some(a), Some(b)) => (g, a, b),
            _ => return model.sgd_step_with(images, labels, lambda, eta, options, ws),
        };
        let sums = model.gradients_with(images, labels, lambda, options, ws, grads);
        let eta_t = from_f64::<T>(eta);
        match self.spec {
            OptimizerSpec::Sgd => unreachable!("sgd has no state"),
            OptimizerSpec::Momentum { mu, nesterov } => {
                let mu = from_f64::<T>(mu);
                for_each(model, grads, first, second, |_, p, g, v, _| {
                    *v = mu * *v - eta_t * g;
                    *p = *p + if nesterov { mu * *v - eta_t * g } else { *v };
                });
            }
            OptimizerSpec::Adamw {
                beta1,
                beta2,
                epsilon,
                weight_decay,
            } => {
                let t = self.t.min(i32::MAX as u64) as i32;
                let c1 = from_f64::<T>(1.0 / (1.0 - beta1.powi(t)));
                let c2 = from_f64::<T>(1.0 / (1.0 - beta2.powi(t)));
                let (b1, b2) = (from_f64::<T>(beta1), from_f64::<T>(beta2));
                let (one, eps) = (T::one(), from_f64::<T>(epsilon));
                let decay = from_f64::<T>(1.0 - eta * weight_decay);
                for_each(model, grads, first, second, |is_weight, p, g, m, v| {
                    *m = b1 * *m + (one - b1) * g;
                    *v = b2 * *v + (one - b2) * g * g;
                    if is_weight {
                        *p = *p * decay;
                    }
                    *p = *p - eta_t * (*m * c1) / ((*v * c2).sqrt() + eps);
                });
            }
        }
        sums
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array2};

    /// A 2 -> 2 -> 2 network and one sample, small enough to follow by hand.
    fn tiny() -> (Mlp<f64>, Array2<f64>, Vec<u8>) {
        let model = Mlp {
            w1: array![[0.5, -0.25], [0.125, 0.75]],
            b1: array![0.1, -0.2],
            w2: array![[1.0, -0.5], [0.25, 0.5]],
            b2: array![0.0, 0.3],
        };
        (model, array![[1.0, 2.0]], vec![1])
    }

    fn grads(model: &Mlp<f64>, x: &Array2<f64>, y: &[u8], lambda: f64) -> Gradients<f64> {
        model.gradients(&x.view(), y, lambda).0
    }

    fn params(m: &Mlp<f64>) -> Vec<f64> {
        m.w1.iter()
            .chain(&m.b1)
            .chain(&m.w2)
            .chain(&m.b2)
            .copied()
            .collect()
    }

    fn close(a: &[f64], b: &[f64]) {
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() < 1e-12, "entry {i}: {x} vs {y}");
        }
    }

    #[test]
    fn sgd_is_the_fused_step() {
        let (model, x, y) = tiny();
        let mut ws = Workspace::for_model(&model, 1);
        let mut a = model.clone();
        let mut opt = Optimizer::new(OptimizerSpec::Sgd, &model);
        opt.step(&mut a, &x.view(), &y, 0.1, 0.5, &StepOptions::NONE, &mut ws);
        let mut b = model.clone();
        b.sgd_step(&x.view(), &y, 0.1, 0.5, &mut ws);
        assert_eq!(a, b);
    }

    #[test]
    fn momentum_matches_two_hand_steps() {
        let (model, x, y) = tiny();
        let (mu, eta, lambda) = (0.9, 0.1, 0.01);
        for nesterov in [false, true] {
            let mut ws = Workspace::for_model(&model, 1);
            let mut m = model.clone();
            let mut opt = Optimizer::new(OptimizerSpec::Momentum { mu, nesterov }, &model);
            // By hand: v1 = -eta g0; then v2 = mu v1 - eta g1.
            let theta0 = params(&model);
            let g0 = params(&grads(&model, &x, &y, lambda));
            let v1: Vec<f64> = g0.iter().map(|g| -eta * g).collect();
            let theta1: Vec<f64> = if nesterov {
                (0..v1.len())
                    .map(|i| theta0[i] + mu * v1[i] - eta * g0[i])
                    .collect()
            } else {
                (0..v1.len()).map(|i| theta0[i] + v1[i]).collect()
            };
            opt.step(
                &mut m,
                &x.view(),
                &y,
                lambda,
                eta,
                &StepOptions::NONE,
                &mut ws,
            );
            close(&params(&m), &theta1);
            let g1 = params(&grads(&m, &x, &y, lambda));
            let v2: Vec<f64> = (0..v1.len()).map(|i| mu * v1[i] - eta * g1[i]).collect();
            let theta2: Vec<f64> = if nesterov {
                (0..v1.len())
                    .map(|i| theta1[i] + mu * v2[i] - eta * g1[i])
                    .collect()
            } else {
                (0..v1.len()).map(|i| theta1[i] + v2[i]).collect()
            };
            opt.step(
                &mut m,
                &x.view(),
                &y,
                lambda,
                eta,
                &StepOptions::NONE,
                &mut ws,
            );
            close(&params(&m), &theta2);
        }
    }

    #[test]
    fn adamw_first_step_moves_each_weight_by_eta_and_decays_weights_only() {
        let (model, x, y) = tiny();
        let (eta, wd) = (0.01, 0.5);
        let spec = OptimizerSpec::Adamw {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            weight_decay: wd,
        };
        let mut ws = Workspace::for_model(&model, 1);
        let mut m = model.clone();
        let mut opt = Optimizer::new(spec, &model);
        opt.step(&mut m, &x.view(), &y, 0.0, eta, &StepOptions::NONE, &mut ws);
        // Step 1: m_hat = g, v_hat = g^2, so the Adam part is eta g / (|g| + eps).
        let g = grads(&model, &x, &y, 0.0);
        let expect = |p: f64, g: f64, decayed: bool| {
            let p = if decayed { p * (1.0 - eta * wd) } else { p };
            p - eta * g / (g.abs() + 1e-8)
        };
        for (i, (&p, &gv)) in model.w1.iter().zip(&g.w1).enumerate() {
            assert!((m.w1.as_slice().unwrap()[i] - expect(p, gv, true)).abs() < 1e-12);
        }
        for (i, (&p, &gv)) in model.b2.iter().zip(&g.b2).enumerate() {
            assert!((m.b2[i] - expect(p, gv, false)).abs() < 1e-12);
        }
        // Step 2 by hand for one weight, W2[0, 1].
        let g1 = grads(&m, &x, &y, 0.0);
        let (g0, g1v) = (g.w2[[0, 1]], g1.w2[[0, 1]]);
        let m2 = 0.9 * (0.1 * g0) + 0.1 * g1v;
        let v2 = 0.999 * (0.001 * g0 * g0) + 0.001 * g1v * g1v;
        let (mh, vh) = (m2 / (1.0 - 0.81), v2 / (1.0 - 0.999f64.powi(2)));
        let p2 = m.w2[[0, 1]] * (1.0 - eta * wd) - eta * mh / (vh.sqrt() + 1e-8);
        opt.step(&mut m, &x.view(), &y, 0.0, eta, &StepOptions::NONE, &mut ws);
        assert!(
            (m.w2[[0, 1]] - p2).abs() < 1e-12,
            "{} vs {p2}",
            m.w2[[0, 1]]
        );
    }

    #[test]
    fn bad_settings_name_the_field() {
        let e = OptimizerSpec::Momentum {
            mu: 1.0,
            nesterov: true,
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.field, "mu");
        let e = OptimizerSpec::Adamw {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 0.0,
            weight_decay: 0.0,
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.field, "epsilon");
    }
}
