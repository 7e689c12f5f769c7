//! Numerical gradient check: centred finite differences of the cost in f64,
//! computed for EVERY parameter, without cancellation, and compared with the
//! analytic gradients.
//!
//! **Incremental.** Perturbing `W1[j, i]` moves only hidden unit `j`'s
//! pre-activation (by `+-h x[n, i]` for sample `n`); perturbing `b1[j]` moves
//! it by `+-h`; `W2[k, j]` and `b2[k]` move only logit `k`. So the perturbed
//! cost is never recomputed: each sample's loss change is derived from the
//! unperturbed forward pass ([`BaseState`]) and the one quantity that moves.
//!
//! **Cancellation-free.** `J(theta + h) - J(theta - h)` taken as a difference
//! of two costs near 2.3 keeps only ~11 significant digits of a gradient
//! entry of size 1e-6 at `h = 1e-5`. Instead the difference is summed from
//! per-sample loss differences, each computed directly:
//!
//! ```text
//! l(s) = LSE(s) - s_y,   p = softmax(s) at theta
//! LSE(s + u+) - LSE(s + u-) = log1p(sum_k p_k expm1(u+_k)) - log1p(sum_k p_k expm1(u-_k))
//! ```
//!
//! and, when the change is symmetric (`u- = -u+ = -u`, i.e. no ReLU kink),
//! by the exact identity
//!
//! ```text
//! LSE(s + u) - LSE(s - u) = 2 atanh(O / (1 + E)),
//! O = sum_k p_k sinh(u_k),   E = sum_k p_k (cosh(u_k) - 1) = sum_k p_k 2 sinh(u_k/2)^2
//! ```
//!
//! which has no subtraction of nearly equal numbers at all. The L2 term's
//! difference is `lambda ((w+h)^2 - (w-h)^2) = 4 lambda w h`, exactly.
//!
//! **Kinks.** When a sample's hidden pre-activation `a` and `a +- delta`
//! straddle zero (the ReLU switches inside the stencil) the centred difference
//! is not an estimate of the derivative. Such entries are detected exactly
//! (the sign tests are exact in floating point), counted per entry, and
//! reported apart by [`compare`]; their difference is still computed (with
//! the asymmetric formula) but never enters the main error figures.

use std::time::Instant;

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};
use rayon::prelude::*;

use crate::{Gradients, Mlp};

/// The finite-difference step the report used.
pub const DEFAULT_H: f64 = 1e-5;

/// `eps` in the relative error `|g_a - g_n| / max(eps, |g_a| + |g_n|)`.
pub const REL_ERROR_EPS: f64 = 1e-6;

/// Above this `|u|` the polynomial `sinh`/`cosh - 1` of the fast path are not
/// used (their truncation error is below 1e-21 relative up to here).
const FAST_LIMIT: f64 = 1e-2;

/// One scalar parameter of the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    /// `W1[hidden, input]`.
    W1 {
        /// Hidden unit (row).
        hidden: usize,
        /// Input dimension (column).
        input: usize,
    },
    /// `b1[hidden]`.
    B1 {
        /// Hidden unit.
        hidden: usize,
    },
    /// `W2[class, hidden]`.
    W2 {
        /// Output class (row).
        class: usize,
        /// Hidden unit (column).
        hidden: usize,
    },
    /// `b2[class]`.
    B2 {
        /// Output class.
        class: usize,
    },
}

impl Entry {
    /// The parameter's value in `model`.
    pub fn get(self, model: &Mlp<f64>) -> f64 {
        match self {
            Entry::W1 { hidden, input } => model.w1[[hidden, input]],
            Entry::B1 { hidden } => model.b1[hidden],
            Entry::W2 { class, hidden } => model.w2[[class, hidden]],
            Entry::B2 { class } => model.b2[class],
        }
    }

    /// A mutable reference to the parameter in `model`.
    pub fn get_mut(self, model: &mut Mlp<f64>) -> &mut f64 {
        match self {
            Entry::W1 { hidden, input } => &mut model.w1[[hidden, input]],
            Entry::B1 { hidden } => &mut model.b1[hidden],
            Entry::W2 { class, hidden } => &mut model.w2[[class, hidden]],
            Entry::B2 { class } => &mut model.b2[class],
        }
    }

    fn is_weight(self) -> bool {
        matches!(self, Entry::W1 { .. } | Entry::W2 { .. })
    }
}

/// The unperturbed forward pass every perturbation starts from.
#[derive(Clone, Debug)]
pub struct BaseState<'a> {
    images: ArrayView2<'a, f64>,
    labels: &'a [u8],
    /// Hidden pre-activations `X W1^T + b1` (`n x m`).
    pre: Array2<f64>,
    /// Hidden activations `relu(pre)` (`n x m`).
    hidden: Array2<f64>,
    /// Softmax probabilities (`n x K`).
    probs: Array2<f64>,
    /// `max_i |x[n, i]|` per sample.
    x_absmax: Vec<f64>,
}

impl<'a> BaseState<'a> {
    /// Run the forward pass of `model` on `images` (f64, the tensor kernels).
    ///
    /// **Panics** if the shapes or labels do not fit the model.
    #[track_caller]
    pub fn new(model: &Mlp<f64>, images: ArrayView2<'a, f64>, labels: &'a [u8]) -> Self {
        let n = images.nrows();
        assert_eq!(labels.len(), n, "one label per image");
        assert!(
            labels.iter().all(|&y| usize::from(y) < model.n_classes()),
            "labels must be below n_classes"
        );
        let mut pre = Array2::zeros((n, model.n_hidden()));
        tensor::gemm(1.0, &images, &model.w1.t(), 0.0, &mut pre.view_mut());
        tensor::add_bias(&mut pre.view_mut(), &model.b1.view());
        let hidden = pre.mapv(|a| if a > 0.0 { a } else { 0.0 });
        let mut probs = Array2::zeros((n, model.n_classes()));
        tensor::gemm(
            1.0,
            &hidden.view(),
            &model.w2.t(),
            0.0,
            &mut probs.view_mut(),
        );
        tensor::add_bias(&mut probs.view_mut(), &model.b2.view());
        tensor::softmax_rows(&mut probs.view_mut());
        let x_absmax = images
            .rows()
            .into_iter()
            .map(|r| r.iter().fold(0.0f64, |m, v| m.max(v.abs())))
            .collect();
        Self {
            images,
            labels,
            pre,
            hidden,
            probs,
            x_absmax,
        }
    }

    /// Number of samples.
    pub fn n_samples(&self) -> usize {
        self.images.nrows()
    }
}

/// `J(theta + h e) - J(theta - h e)` for one entry `e`, and how many samples
/// cross a ReLU kink inside the stencil.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CostDifference {
    /// The cost difference (not divided by `2h`).
    pub delta: f64,
    /// Samples whose hidden unit switches on or off within `+-h`.
    pub n_kinks: usize,
}

/// `relu(a + t) - relu(a)`, without rounding where the unit stays on.
#[inline]
fn relu_change(a: f64, t: f64) -> f64 {
    let b = a + t;
    match (a > 0.0, b > 0.0) {
        (true, true) => t,
        (false, false) => 0.0,
        (true, false) => -a,
        (false, true) => b,
    }
}

/// True when `a - t` and `a + t` lie on different sides of the ReLU's switch
/// (exact: the sign of a rounded sum is the sign of the exact sum).
#[inline]
fn is_kink(a: f64, t: f64) -> bool {
    (a + t > 0.0) != (a - t > 0.0)
}

/// `LSE(s + up w) - LSE(s + down w) - (up - down) w[y]`: one sample's loss
/// change when its hidden unit (whose outgoing weights are `w`) changes by
/// `up` on the plus side and `down` on the minus side. `p` = softmax(s).
fn hidden_loss_change(p: ArrayView1<'_, f64>, w: &[f64], y: usize, up: f64, down: f64) -> f64 {
    if up == 0.0 && down == 0.0 {
        0.0
    } else if down == -up {
        symmetric_loss_change(p, w, y, up)
    } else {
        let (mut e_up, mut e_down) = (0.0, 0.0);
        for (&pk, &wk) in p.iter().zip(w) {
            e_up += pk * (up * wk).exp_m1();
            e_down += pk * (down * wk).exp_m1();
        }
        e_up.ln_1p() - e_down.ln_1p() - (up - down) * w[y]
    }
}

/// `LSE(s + t w) - LSE(s - t w) - 2 t w[y]` by the `atanh` identity, with the
/// library `sinh`.
fn symmetric_loss_change(p: ArrayView1<'_, f64>, w: &[f64], y: usize, t: f64) -> f64 {
    let (mut odd, mut even) = (0.0, 0.0);
    for (&pk, &wk) in p.iter().zip(w) {
        let u = t * wk;
        odd += pk * u.sinh();
        let half = (0.5 * u).sinh();
        even += pk * 2.0 * half * half;
    }
    2.0 * (odd / (1.0 + even)).atanh() - 2.0 * t * w[y]
}

/// `sinh(u)` for `|u| <= FAST_LIMIT` (Taylor to `u^7`; truncation < 1e-21 relative).
#[inline(always)]
fn sinh_small(u: f64) -> f64 {
    let u2 = u * u;
    u * (1.0 + u2 * (1.0 / 6.0 + u2 * (1.0 / 120.0 + u2 * (1.0 / 5040.0))))
}

/// `cosh(u) - 1` for `|u| <= FAST_LIMIT` (Taylor to `u^8`).
#[inline(always)]
fn cosh_m1_small(u: f64) -> f64 {
    let u2 = u * u;
    u2 * (0.5 + u2 * (1.0 / 24.0 + u2 * (1.0 / 720.0 + u2 * (1.0 / 40320.0))))
}

/// `atanh(z)` for `|z| <= 2 FAST_LIMIT` (Taylor to `z^9`).
#[inline(always)]
fn atanh_small(z: f64) -> f64 {
    let z2 = z * z;
    z * (1.0 + z2 * (1.0 / 3.0 + z2 * (1.0 / 5.0 + z2 * (1.0 / 7.0 + z2 * (1.0 / 9.0)))))
}

/// The incremental, cancellation-free `J(theta + h e) - J(theta - h e)`.
///
/// **Panics** if `entry` is out of range.
pub fn cost_difference(
    model: &Mlp<f64>,
    base: &BaseState<'_>,
    lambda: f64,
    entry: Entry,
    h: f64,
) -> CostDifference {
    let n = base.n_samples();
    let mut sum = 0.0;
    let mut n_kinks = 0;
    match entry {
        Entry::W1 { hidden: j, .. } | Entry::B1 { hidden: j } => {
            let w: Vec<f64> = model.w2.column(j).to_vec();
            for s in 0..n {
                let t = match entry {
                    Entry::W1 { input, .. } => h * base.images[[s, input]],
                    _ => h,
                };
                let a = base.pre[[s, j]];
                n_kinks += usize::from(is_kink(a, t));
                sum += hidden_loss_change(
                    base.probs.row(s),
                    &w,
                    usize::from(base.labels[s]),
                    relu_change(a, t),
                    relu_change(a, -t),
                );
            }
        }
        Entry::W2 { class, hidden: j } => {
            for s in 0..n {
                sum += logit_loss_change(base, s, class, h * base.hidden[[s, j]]);
            }
        }
        Entry::B2 { class } => {
            for s in 0..n {
                sum += logit_loss_change(base, s, class, h);
            }
        }
    }
    let l2 = if entry.is_weight() {
        4.0 * lambda * entry.get(model) * h
    } else {
        0.0
    };
    CostDifference {
        delta: sum / n as f64 + l2,
        n_kinks,
    }
}

/// Sample `s`'s loss change when logit `class` moves by `+-u`.
fn logit_loss_change(base: &BaseState<'_>, s: usize, class: usize, u: f64) -> f64 {
    if u == 0.0 {
        return 0.0;
    }
    let p = base.probs[[s, class]];
    let half = (0.5 * u).sinh();
    let change = 2.0 * (p * u.sinh() / (1.0 + p * 2.0 * half * half)).atanh();
    if usize::from(base.labels[s]) == class {
        change - 2.0 * u
    } else {
        change
    }
}

/// The plain `J(theta + h e) - J(theta - h e)`: two full cost evaluations
/// and one subtraction (what the cancellation-free version improves on).
pub fn plain_cost_difference(
    model: &Mlp<f64>,
    images: &ArrayView2<'_, f64>,
    labels: &[u8],
    lambda: f64,
    entry: Entry,
    h: f64,
) -> f64 {
    let mut perturbed = model.clone();
    let theta = entry.get(model);
    *entry.get_mut(&mut perturbed) = theta + h;
    let plus = perturbed.cost(images, labels, lambda);
    *entry.get_mut(&mut perturbed) = theta - h;
    let minus = perturbed.cost(images, labels, lambda);
    plus - minus
}

/// Plain centred differences `(J(theta + h e) - J(theta - h e)) / 2h` for
/// every entry, each cost evaluated in full: the textbook method, kept to
/// show what the incremental, cancellation-free one gains. Costs two full
/// forward passes per entry, so only for small inputs. Rows of `W1` run in
/// parallel on the caller's rayon pool (each on its own copy of the model).
pub fn plain_numerical_gradients(
    model: &Mlp<f64>,
    images: &ArrayView2<'_, f64>,
    labels: &[u8],
    lambda: f64,
    h: f64,
) -> Gradients<f64> {
    let (m, d, k) = (model.n_hidden(), model.n_input(), model.n_classes());
    let diff = |perturbed: &mut Mlp<f64>, entry: Entry| {
        let theta = entry.get(perturbed);
        *entry.get_mut(perturbed) = theta + h;
        let plus = perturbed.cost(images, labels, lambda);
        *entry.get_mut(perturbed) = theta - h;
        let minus = perturbed.cost(images, labels, lambda);
        *entry.get_mut(perturbed) = theta;
        (plus - minus) / (2.0 * h)
    };
    let rows: Vec<(Vec<f64>, f64, Vec<f64>)> = (0..m)
        .into_par_iter()
        .map(|j| {
            let mut p = model.clone();
            let w1: Vec<f64> = (0..d)
                .map(|i| {
                    diff(
                        &mut p,
                        Entry::W1 {
                            hidden: j,
                            input: i,
                        },
                    )
                })
                .collect();
            let b1 = diff(&mut p, Entry::B1 { hidden: j });
            let w2: Vec<f64> = (0..k)
                .map(|c| {
                    diff(
                        &mut p,
                        Entry::W2 {
                            class: c,
                            hidden: j,
                        },
                    )
                })
                .collect();
            (w1, b1, w2)
        })
        .collect();
    let mut grads = model.clone();
    for (j, (w1, b1, w2)) in rows.into_iter().enumerate() {
        grads.w1.row_mut(j).assign(&Array1::from_vec(w1));
        grads.b1[j] = b1;
        grads.w2.column_mut(j).assign(&Array1::from_vec(w2));
    }
    let mut p = model.clone();
    for c in 0..k {
        grads.b2[c] = diff(&mut p, Entry::B2 { class: c });
    }
    grads
}

/// Numerical gradients of every parameter and, per entry, the number of
/// samples crossing a ReLU kink within the stencil (always 0 for `W2`, `b2`).
#[derive(Clone, Debug)]
pub struct Numerical {
    /// Centred-difference gradients.
    pub grads: Gradients<f64>,
    /// Kink counts, shaped like the parameters.
    pub kinks: Mlp<u32>,
    /// Wall time spent on each parameter's differences (W1, b1, W2, b2), in
    /// seconds; the shared forward pass counts towards W1.
    pub seconds: [f64; 4],
}

/// Centred differences `(J(theta + h e) - J(theta - h e)) / 2h` for every
/// entry of every parameter, incremental and cancellation-free (module
/// docs). Hidden units run in parallel on the caller's rayon pool; each
/// entry's sum runs over samples in order, so the result does not depend on
/// the thread count.
///
/// **Panics** if the shapes or labels do not fit the model.
pub fn numerical_gradients(
    model: &Mlp<f64>,
    images: &ArrayView2<'_, f64>,
    labels: &[u8],
    lambda: f64,
    h: f64,
) -> Numerical {
    let mut clock = Instant::now();
    let mut seconds = [0.0; 4];
    let mut lap = |slot: usize| {
        seconds[slot] = clock.elapsed().as_secs_f64();
        clock = Instant::now();
    };
    let base = BaseState::new(model, images.view(), labels);
    let (m, d, k) = (model.n_hidden(), model.n_input(), model.n_classes());
    let n = base.n_samples() as f64;
    let scale = 1.0 / (2.0 * h * n);

    let w1_rows: Vec<(Vec<f64>, Vec<u32>)> = (0..m)
        .into_par_iter()
        .map(|j| w1_row_sums(model, &base, j, h))
        .collect();
    let mut grads = model.clone();
    let mut kinks = Mlp {
        w1: Array2::<u32>::zeros((m, d)),
        b1: Array1::<u32>::zeros(m),
        w2: Array2::<u32>::zeros((k, m)),
        b2: Array1::<u32>::zeros(k),
    };
    for (j, (sums, row_kinks)) in w1_rows.into_iter().enumerate() {
        for i in 0..d {
            grads.w1[[j, i]] = sums[i] * scale + 2.0 * lambda * model.w1[[j, i]];
            kinks.w1[[j, i]] = row_kinks[i];
        }
    }
    lap(0);
    let to_grad = |diff: CostDifference| diff.delta / (2.0 * h);
    let b1: Vec<CostDifference> = (0..m)
        .into_par_iter()
        .map(|j| cost_difference(model, &base, lambda, Entry::B1 { hidden: j }, h))
        .collect();
    for (j, diff) in b1.into_iter().enumerate() {
        grads.b1[j] = to_grad(diff);
        kinks.b1[j] = diff.n_kinks as u32;
    }
    lap(1);
    let w2: Vec<f64> = (0..k * m)
        .into_par_iter()
        .map(|idx| {
            let entry = Entry::W2 {
                class: idx / m,
                hidden: idx % m,
            };
            to_grad(cost_difference(model, &base, lambda, entry, h))
        })
        .collect();
    grads.w2 = Array2::from_shape_vec((k, m), w2).expect("k * m values");
    lap(2);
    for c in 0..k {
        grads.b2[c] = to_grad(cost_difference(
            model,
            &base,
            lambda,
            Entry::B2 { class: c },
            h,
        ));
    }
    lap(3);
    Numerical {
        grads,
        kinks,
        seconds,
    }
}

/// For hidden unit `j`: `sum_n (l_n(W1[j, i] + h) - l_n(W1[j, i] - h))` for
/// every input `i`, and the kink count per `i`. Samples whose unit stays on
/// for every `i` take a branch-free, vectorisable path with the polynomial
/// `sinh`/`cosh - 1`/`atanh` (exact to rounding for `|u| <= FAST_LIMIT`);
/// samples whose unit stays off contribute exactly zero; the rest go entry
/// by entry through the general formulas.
fn w1_row_sums(model: &Mlp<f64>, base: &BaseState<'_>, j: usize, h: f64) -> (Vec<f64>, Vec<u32>) {
    let d = model.n_input();
    let w: Vec<f64> = model.w2.column(j).to_vec();
    let w_absmax = w.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let mut sums = vec![0.0; d];
    let mut kinks = vec![0u32; d];
    let (mut t, mut odd, mut even) = (vec![0.0; d], vec![0.0; d], vec![0.0; d]);
    for s in 0..base.n_samples() {
        let a = base.pre[[s, j]];
        let t_max = h * base.x_absmax[s];
        if a <= -t_max {
            continue;
        }
        let x = base.images.row(s);
        let p = base.probs.row(s);
        let y = usize::from(base.labels[s]);
        if a > t_max && t_max * w_absmax <= FAST_LIMIT {
            for (ti, &xi) in t.iter_mut().zip(x.iter()) {
                *ti = h * xi;
            }
            odd.fill(0.0);
            even.fill(0.0);
            for (&pk, &wk) in p.iter().zip(&w) {
                for ((o, e), &ti) in odd.iter_mut().zip(even.iter_mut()).zip(&t) {
                    let u = ti * wk;
                    *o += pk * sinh_small(u);
                    *e += pk * cosh_m1_small(u);
                }
            }
            let wy = w[y];
            for (((acc, &o), &e), &ti) in sums.iter_mut().zip(&odd).zip(&even).zip(&t) {
                *acc += 2.0 * atanh_small(o / (1.0 + e)) - 2.0 * ti * wy;
            }
        } else {
            for (i, &xi) in x.iter().enumerate() {
                let ti = h * xi;
                kinks[i] += u32::from(is_kink(a, ti));
                sums[i] += hidden_loss_change(p, &w, y, relu_change(a, ti), relu_change(a, -ti));
            }
        }
    }
    (sums, kinks)
}

/// The report's elementwise relative error `|g_a - g_n| / max(eps, |g_a| + |g_n|)`.
pub fn relative_error(analytic: f64, numerical: f64) -> f64 {
    (analytic - numerical).abs() / (analytic.abs() + numerical.abs()).max(REL_ERROR_EPS)
}

/// How well one parameter's analytic gradient matches the numerical one.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ParamError {
    /// `W1`, `b1`, `W2` or `b2`.
    pub parameter: &'static str,
    /// Entries compared (all of them).
    pub n_entries: usize,
    /// Entries whose stencil crosses a ReLU kink for some sample.
    pub n_kink_entries: usize,
    /// Max elementwise relative error over the entries without a kink.
    pub max_rel_error: f64,
    /// `||g_a - g_n|| / (||g_a|| + ||g_n||)` over the entries without a kink.
    pub norm_rel_error: f64,
    /// Max elementwise relative error over the kink entries (0 if none).
    pub kink_max_rel_error: f64,
    /// Seconds spent on this parameter's numerical differences.
    pub seconds: f64,
}

/// Compare analytic with numerical gradients, parameter by parameter,
/// keeping kink entries apart.
pub fn compare(analytic: &Gradients<f64>, numerical: &Numerical) -> Vec<ParamError> {
    let one = |name: &'static str,
               ga: &mut dyn Iterator<Item = f64>,
               gn: &mut dyn Iterator<Item = f64>,
               kinks: &mut dyn Iterator<Item = u32>| {
        let mut out = ParamError {
            parameter: name,
            n_entries: 0,
            n_kink_entries: 0,
            max_rel_error: 0.0,
            norm_rel_error: 0.0,
            kink_max_rel_error: 0.0,
            seconds: 0.0,
        };
        let (mut diff2, mut a2, mut n2) = (0.0, 0.0, 0.0);
        for ((a, n), kink) in ga.zip(gn).zip(kinks) {
            out.n_entries += 1;
            let e = relative_error(a, n);
            if kink > 0 {
                out.n_kink_entries += 1;
                out.kink_max_rel_error = out.kink_max_rel_error.max(e);
            } else {
                out.max_rel_error = out.max_rel_error.max(e);
                diff2 += (a - n) * (a - n);
                a2 += a * a;
                n2 += n * n;
            }
        }
        let denom = a2.sqrt() + n2.sqrt();
        out.norm_rel_error = if denom > 0.0 {
            diff2.sqrt() / denom
        } else {
            0.0
        };
        out
    };
    let (a, n, k) = (analytic, &numerical.grads, &numerical.kinks);
    let mut rows = vec![
        one(
            "W1",
            &mut a.w1.iter().copied(),
            &mut n.w1.iter().copied(),
            &mut k.w1.iter().copied(),
        ),
        one(
            "b1",
            &mut a.b1.iter().copied(),
            &mut n.b1.iter().copied(),
            &mut k.b1.iter().copied(),
        ),
        one(
            "W2",
            &mut a.w2.iter().copied(),
            &mut n.w2.iter().copied(),
            &mut k.w2.iter().copied(),
        ),
        one(
            "b2",
            &mut a.b2.iter().copied(),
            &mut n.b2.iter().copied(),
            &mut k.b2.iter().copied(),
        ),
    ];
    for (row, &secs) in rows.iter_mut().zip(&numerical.seconds) {
        row.seconds = secs;
    }
    rows
}

#[cfg(test)]
mod tests;
