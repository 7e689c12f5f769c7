//! What trained networks say about a labelled set: the class probabilities of
//! one network or the average of several (an ensemble: cycle snapshots, or
//! runs with different seeds), accuracy, loss, per-class accuracy and the
//! confusion matrix.
//!
//! Each network's logits come from the same `f32` forward pass that training
//! evaluates with; the softmax and the average over networks are taken in
//! `f64`, network by network in the order given, per row. So the prediction of
//! a single network is the argmax of its logits (as during training, first
//! index on ties), and the result is bit-identical for any thread count.

use ndarray::{s, Array2, ArrayView2};
use rayon::prelude::*;

use mlp::{Features, Mlp, EVAL_BLOCK_ROWS};

/// Average of the networks' softmax outputs for every row of `images`
/// (`n x K`, `f64`), computed in blocks of [`EVAL_BLOCK_ROWS`] rows on the
/// caller's rayon pool (rows of a source are normalised block by block into
/// a reused buffer, see [`Features::block`]).
///
/// **Panics** if `models` is empty, the networks disagree on their input
/// width or class count, or `images` has the wrong width.
pub fn average_probabilities(models: &[Mlp<f32>], images: &Features<'_, f32>) -> Array2<f64> {
    assert!(!models.is_empty(), "an ensemble needs at least one network");
    let k = models[0].n_classes();
    assert!(
        models.iter().all(|m| m.n_classes() == k),
        "every network of an ensemble must have {k} classes"
    );
    let n = images.nrows();
    let mut out = Array2::<f64>::zeros((n, k));
    let blocks: Vec<(usize, Array2<f64>)> = (0..n.div_ceil(EVAL_BLOCK_ROWS))
        .into_par_iter()
        .map_init(
            || Array2::zeros((0, 0)),
            |buf, b| {
                let lo = b * EVAL_BLOCK_ROWS;
                let hi = (lo + EVAL_BLOCK_ROWS).min(n);
                (lo, block_average(models, &images.block(lo, hi, buf)))
            },
        )
        .collect();
    for (lo, block) in blocks {
        out.slice_mut(s![lo..lo + block.nrows(), ..]).assign(&block);
    }
    out
}

/// [`average_probabilities`] of one block of rows.
fn block_average(models: &[Mlp<f32>], images: &ArrayView2<'_, f32>) -> Array2<f64> {
    let n = images.nrows();
    let k = models[0].n_classes();
    let mut sum = Array2::<f64>::zeros((n, k));
    let mut logits = Array2::<f32>::zeros((n, k));
    for model in models {
        let mut hidden = Array2::<f32>::zeros((n, model.n_hidden()));
        model.forward_into(images, &mut hidden.view_mut(), &mut logits.view_mut());
        for (logit_row, mut sum_row) in logits.rows().into_iter().zip(sum.rows_mut()) {
            let max = logit_row.iter().fold(f64::NEG_INFINITY, |m, &v| {
                if v.is_nan() || m.is_nan() {
                    f64::NAN
                } else {
                    m.max(v as f64)
                }
            });
            let total: f64 = logit_row.iter().map(|&v| (v as f64 - max).exp()).sum();
            for (s, &v) in sum_row.iter_mut().zip(logit_row.iter()) {
                *s += (v as f64 - max).exp() / total;
            }
        }
    }
    sum / models.len() as f64
}

/// Accuracy, loss, per-class accuracy and confusion matrix of predictions.
#[derive(Clone, Debug, PartialEq)]
pub struct Scores {
    /// Fraction of rows whose argmax is the label.
    pub accuracy: f64,
    /// Mean of `-ln p[label]` (infinite if some true class got probability 0).
    pub loss: f64,
    /// `confusion[[true, predicted]]`: how many rows of class `true` were
    /// predicted as `predicted`.
    pub confusion: Array2<u64>,
}

impl Scores {
    /// Accuracy within each true class (`NaN` for a class with no rows).
    pub fn per_class_accuracy(&self) -> Vec<f64> {
        self.confusion
            .rows()
            .into_iter()
            .enumerate()
            .map(|(c, row)| row[c] as f64 / row.sum() as f64)
            .collect()
    }
}

/// Scores of `probabilities` (`n x K`, one row per image) against `labels`.
/// A row holding NaN predicts its first NaN's class and counts as wrong
/// unless that is the label (never hides a broken network).
///
/// **Panics** if `labels.len() != probabilities.nrows()`, there is no row, or
/// a label is not below `K`.
pub fn score(probabilities: &ArrayView2<'_, f64>, labels: &[u8]) -> Scores {
    assert_eq!(labels.len(), probabilities.nrows(), "one label per row");
    assert!(!labels.is_empty(), "no rows to score");
    let k = probabilities.ncols();
    let mut confusion = Array2::<u64>::zeros((k, k));
    let mut loss_sum = 0.0;
    for (row, &label) in probabilities.rows().into_iter().zip(labels) {
        let label = label as usize;
        assert!(label < k, "label {label} is not below {k}");
        let predicted = first_argmax(row.iter().copied());
        confusion[[label, predicted]] += 1;
        loss_sum -= row[label].ln();
    }
    let correct: u64 = (0..k).map(|c| confusion[[c, c]]).sum();
    Scores {
        accuracy: correct as f64 / labels.len() as f64,
        loss: loss_sum / labels.len() as f64,
        confusion,
    }
}

/// Index of the largest value, the first on ties; the first NaN wins.
fn first_argmax(values: impl Iterator<Item = f64>) -> usize {
    let mut best = (0, f64::NEG_INFINITY);
    for (i, v) in values.enumerate() {
        if v.is_nan() {
            return i;
        }
        if v > best.1 {
            best = (i, v);
        }
    }
    best.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array2};

    fn images(n: usize, d: usize, seed: u64) -> Array2<f32> {
        Array2::from_shape_fn((n, d), |(i, j)| {
            (((i * 31 + j * 17 + seed as usize * 7) % 23) as f32 - 11.0) / 7.0
        })
    }

    /// Naive f64 reference: softmax of the f64 logits of each network, averaged.
    fn naive_average(models: &[Mlp<f32>], x: &Array2<f32>) -> Array2<f64> {
        let mut out = Array2::<f64>::zeros((x.nrows(), models[0].n_classes()));
        for m in models {
            for i in 0..x.nrows() {
                let hidden: Vec<f64> = (0..m.n_hidden())
                    .map(|h| {
                        let s: f64 = (0..x.ncols())
                            .map(|j| m.w1[[h, j]] as f64 * x[[i, j]] as f64)
                            .sum();
                        (s + m.b1[h] as f64).max(0.0)
                    })
                    .collect();
                let logits: Vec<f64> = (0..m.n_classes())
                    .map(|c| {
                        hidden
                            .iter()
                            .enumerate()
                            .map(|(h, &v)| m.w2[[c, h]] as f64 * v)
                            .sum::<f64>()
                            + m.b2[c] as f64
                    })
                    .collect();
                let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let total: f64 = logits.iter().map(|l| (l - max).exp()).sum();
                for c in 0..logits.len() {
                    out[[i, c]] += (logits[c] - max).exp() / total / models.len() as f64;
                }
            }
        }
        out
    }

    #[test]
    fn average_matches_a_naive_f64_reference() {
        // 2500 rows: three blocks, the last one partial.
        let x = images(2500, 12, 1);
        let models: Vec<Mlp<f32>> = (0..3).map(|s| Mlp::init(12, 7, 4, s)).collect();
        let ours = average_probabilities(&models, &x.view().into());
        let reference = naive_average(&models, &x);
        let worst = (&ours - &reference)
            .iter()
            .fold(0.0f64, |m, v| m.max(v.abs()));
        // f32 logits against f64 ones: the difference is f32 rounding.
        assert!(worst < 1e-5, "max |ours - naive| = {worst}");
        for row in ours.rows() {
            assert!((row.sum() - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn average_is_the_same_on_one_and_two_threads() {
        let x = images(2100, 9, 2);
        let models: Vec<Mlp<f32>> = (0..2).map(|s| Mlp::init(9, 5, 3, s)).collect();
        let on = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| average_probabilities(&models, &x.view().into()))
        };
        assert_eq!(on(1), on(2));
    }

    #[test]
    fn a_single_network_predicts_like_its_training_evaluation() {
        let x = images(1500, 10, 3);
        let model = Mlp::<f32>::init(10, 6, 5, 4);
        let labels: Vec<u8> = (0..1500).map(|i| (i * 7 % 5) as u8).collect();
        let scores = score(
            &average_probabilities(std::slice::from_ref(&model), &x.view().into()).view(),
            &labels,
        );
        let training = model.evaluate(&x.view(), &labels, 0.0);
        assert_eq!(scores.accuracy, training.accuracy);
        assert!((scores.loss - training.loss).abs() < 1e-5);
    }

    #[test]
    fn scores_count_the_confusion_matrix() {
        let p = array![
            [0.7, 0.2, 0.1], // true 0, predicted 0
            [0.1, 0.6, 0.3], // true 0, predicted 1
            [0.2, 0.2, 0.6], // true 2, predicted 2
            [0.5, 0.5, 0.0], // true 1, tie: predicted 0
        ];
        let s = score(&p.view(), &[0, 0, 2, 1]);
        assert_eq!(s.confusion, array![[1, 1, 0], [1, 0, 0], [0, 0, 1]]);
        assert_eq!(s.accuracy, 0.5);
        let want = -(0.7f64.ln() + 0.1f64.ln() + 0.6f64.ln() + 0.5f64.ln()) / 4.0;
        assert!((s.loss - want).abs() < 1e-15);
        let per_class = s.per_class_accuracy();
        assert_eq!(per_class[0], 0.5);
        assert_eq!(per_class[1], 0.0);
        assert_eq!(per_class[2], 1.0);
    }

    #[test]
    fn nan_rows_are_never_counted_correct_by_accident() {
        let p = array![[0.1, f64::NAN, 0.9]];
        let s = score(&p.view(), &[2]);
        assert_eq!(s.accuracy, 0.0);
        assert_eq!(s.confusion[[2, 1]], 1);
    }
}
