//! Unit tests of the model: initialisation, evaluation and gradients against
//! plain f64 references, the fused update, and training behaviour.

use ndarray::{Array2, ArrayView2};
use rand::{Rng, SeedableRng};

use crate::data::{Augment, Data, ImageShape};
use crate::optim::OptimizerSpec;
use crate::schedule::ScheduleSpec;
use crate::train::{self, Silent, TrainConfig, TrainError, TrainSettings};
use crate::{Mlp, StepOptions, Workspace};

/// Random inputs and labels (f64), reproducible.
pub(crate) fn synthetic(n: usize, d: usize, seed: u64) -> (Array2<f64>, Vec<u8>) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let x = Array2::from_shape_simple_fn((n, d), || rng.random_range(-2.0..2.0));
    let y = (0..n).map(|_| rng.random_range(0..10u8)).collect();
    (x, y)
}

/// An owned data set for tests.
#[derive(Clone, Debug)]
pub(crate) struct Set {
    pub images: Array2<f32>,
    pub labels: Vec<u8>,
}

impl Set {
    /// The first `n` rows (training) and the rest (validation).
    pub fn split_at(&self, n: usize) -> (Set, Set) {
        let part = |rows: std::ops::Range<usize>| Set {
            images: self.images.slice(ndarray::s![rows.clone(), ..]).to_owned(),
            labels: self.labels[rows].to_vec(),
        };
        (part(0..n), part(n..self.labels.len()))
    }

    /// As training data; rows of 64 features read as one 8 x 8 image.
    pub fn data(&self) -> Data<'_> {
        Data {
            features: self.images.view().into(),
            labels: &self.labels,
            n_classes: 10,
            image: (self.images.ncols() == 64).then_some(ImageShape {
                channels: 1,
                height: 8,
                width: 8,
            }),
        }
    }
}

/// A learnable synthetic data set: the label is decided by which of ten
/// random prototypes a noisy sample comes from.
pub(crate) fn clustered(n: usize, d: usize, noise: f32, seed: u64) -> Set {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let protos = Array2::from_shape_simple_fn((10, d), || rng.random_range(-1.0f32..1.0));
    let labels: Vec<u8> = (0..n).map(|_| rng.random_range(0..10u8)).collect();
    let images = Array2::from_shape_fn((n, d), |(i, j)| {
        protos[[labels[i] as usize, j]] + noise * rng.random_range(-1.0f32..1.0)
    });
    Set { images, labels }
}

/// Plain per-sample f64 cost: no kernels, no blocks.
fn reference_cost(
    model: &Mlp<f64>,
    x: &ArrayView2<'_, f64>,
    y: &[u8],
    lambda: f64,
) -> (f64, f64, f64) {
    let (m, k) = (model.n_hidden(), model.n_classes());
    let mut loss = 0.0;
    let mut correct = 0usize;
    for (row, &label) in x.rows().into_iter().zip(y) {
        let h: Vec<f64> = (0..m)
            .map(|j| (model.w1.row(j).dot(&row) + model.b1[j]).max(0.0))
            .collect();
        let s: Vec<f64> = (0..k)
            .map(|c| (0..m).map(|j| model.w2[[c, j]] * h[j]).sum::<f64>() + model.b2[c])
            .collect();
        let max = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lse = max + s.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
        loss += lse - s[label as usize];
        let best = (0..k).fold(0, |b, c| if s[c] > s[b] { c } else { b });
        correct += usize::from(best == label as usize);
    }
    let n = x.nrows() as f64;
    let l2: f64 = model.w1.iter().chain(model.w2.iter()).map(|v| v * v).sum();
    (loss / n + lambda * l2, loss / n, correct as f64 / n)
}

#[test]
fn init_has_the_spec_statistics_and_is_seeded() {
    let a = Mlp::<f64>::init(3072, 50, 10, 42);
    let b = Mlp::<f64>::init(3072, 50, 10, 42);
    let c = Mlp::<f64>::init(3072, 50, 10, 43);
    assert_eq!(a, b);
    assert_ne!(a.w1, c.w1);
    let std = |w: &Array2<f64>| {
        let n = w.len() as f64;
        let mean = w.sum() / n;
        ((w.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>()) / n).sqrt()
    };
    // 153600 draws: the sample std is within 1% of 1/sqrt(3072) = 0.01804.
    let s1 = std(&a.w1);
    assert!((s1 * 3072f64.sqrt() - 1.0).abs() < 0.01, "W1 std {s1}");
    // 500 draws: within 10% of 1/sqrt(50).
    let s2 = std(&a.w2);
    assert!((s2 * 50f64.sqrt() - 1.0).abs() < 0.1, "W2 std {s2}");
    assert!(a.b1.iter().all(|&v| v == 0.0) && a.b2.iter().all(|&v| v == 0.0));
    // f32 and f64 models from one seed hold the same weights up to rounding.
    let f = Mlp::<f32>::init(3072, 50, 10, 42);
    assert_eq!(f.w1, a.w1.mapv(|v| v as f32));
}

#[test]
fn evaluate_matches_a_plain_reference() {
    // 2500 rows: three blocks, the last one short.
    let (x, y) = synthetic(2500, 40, 1);
    let mut model = Mlp::<f64>::init(40, 7, 10, 2);
    model.b1.fill(0.1);
    model.b2[3] = 0.2;
    let e = model.evaluate(&x.view(), &y, 0.03);
    let (cost, loss, acc) = reference_cost(&model, &x.view(), &y, 0.03);
    assert!((e.cost - cost).abs() < 1e-12 * cost, "{} vs {cost}", e.cost);
    assert!((e.loss - loss).abs() < 1e-12 * loss);
    assert_eq!(e.accuracy, acc);
    // f32 agrees to f32 precision.
    let e32 = model
        .cast::<f32>()
        .evaluate(&x.mapv(|v| v as f32).view(), &y, 0.03);
    assert!((e32.cost - cost).abs() < 1e-5 * cost);
}

#[test]
fn gradients_match_centred_differences() {
    let (x, y) = synthetic(6, 9, 3);
    let mut model = Mlp::<f64>::init(9, 5, 10, 4);
    model.b1.fill(0.05);
    let lambda = 0.1;
    let (g, _) = model.gradients(&x.view(), &y, lambda);
    let h = 1e-6;
    let cost = |m: &Mlp<f64>| reference_cost(m, &x.view(), &y, lambda).0;
    let mut worst = 0.0f64;
    let mut check = |get: &dyn Fn(&mut Mlp<f64>) -> &mut f64, ga: f64| {
        let mut p = model.clone();
        *get(&mut p) += h;
        let jp = cost(&p);
        *get(&mut p) -= 2.0 * h;
        let jm = cost(&p);
        let gn = (jp - jm) / (2.0 * h);
        worst = worst.max((ga - gn).abs() / (ga.abs() + gn.abs()).max(1e-6));
    };
    for j in 0..5 {
        for i in 0..9 {
            check(&|m| &mut m.w1[[j, i]], g.w1[[j, i]]);
        }
        check(&|m| &mut m.b1[j], g.b1[j]);
        for c in 0..10 {
            check(&|m| &mut m.w2[[c, j]], g.w2[[c, j]]);
        }
    }
    for c in 0..10 {
        check(&|m| &mut m.b2[c], g.b2[c]);
    }
    assert!(worst < 1e-6, "max relative error {worst}");
}

#[test]
fn fused_step_equals_plain_descent() {
    let (x, y) = synthetic(20, 15, 5);
    let model = Mlp::<f64>::init(15, 6, 10, 6);
    let (lambda, eta) = (0.02, 0.3);
    let (g, sums) = model.gradients(&x.view(), &y, lambda);
    let mut fused = model.clone();
    let mut ws = Workspace::for_model(&model, 32);
    let step_sums = fused.sgd_step(&x.view(), &y, lambda, eta, &mut ws);
    assert_eq!(sums, step_sums);
    let close = |a: &Array2<f64>, b: &Array2<f64>| {
        a.iter()
            .zip(b)
            .all(|(u, v)| (u - v).abs() <= 1e-14 * (1.0 + v.abs()))
    };
    assert!(close(&fused.w1, &(&model.w1 - &(eta * &g.w1))));
    assert!(close(&fused.w2, &(&model.w2 - &(eta * &g.w2))));
    for (u, v) in fused.b1.iter().zip((&model.b1 - &(eta * &g.b1)).iter()) {
        assert!((u - v).abs() < 1e-14);
    }
    for (u, v) in fused.b2.iter().zip((&model.b2 - &(eta * &g.b2)).iter()) {
        assert!((u - v).abs() < 1e-14);
    }
}

fn small_config(schedule: ScheduleSpec, lambda: f64) -> TrainConfig {
    TrainConfig {
        lambda,
        seed: 11,
        settings: TrainSettings {
            n_hidden: 12,
            batch_size: 16,
            schedule,
            records_per_cycle: 4,
            curve_train_rows: train::CurveTrainRows::All,
            optimizer: OptimizerSpec::Sgd,
            dropout: 0.0,
            label_smoothing: 0.0,
            augment: Augment::NONE,
        },
    }
}

/// Train with `config` (validated) on `train_set`, curves on `val_set`.
fn run(
    train_set: &Set,
    val_set: &Set,
    config: &TrainConfig,
    observer: &mut dyn train::Observer,
) -> Result<train::Trained, TrainError> {
    let valid = config.validate()?;
    train::train(train_set.data(), val_set.data(), &valid, observer)
}

/// A dedicated 2-thread pool (as `cargo xtask train` runs one training)
/// splits the report's step products on a spinning partner between the
/// curve points; the run repeats the 1-thread one bit for bit.
#[test]
fn training_with_spinning_partners_is_bit_identical_to_one_thread() {
    // The report's shapes (3072 inputs, 50 hidden, batch 100): 3e7-flop
    // products, which split inside the dedicated scope.
    let all = clustered(700, 3072, 1.0, 5);
    let (train_set, val_set) = all.split_at(550);
    let mut config = small_config(
        ScheduleSpec::Triangular {
            eta_min: 1e-4,
            eta_max: 0.05,
            n_s: 6,
            n_cycles: 1,
        },
        0.005,
    );
    config.settings.n_hidden = 50;
    config.settings.batch_size = 100;
    config.settings.records_per_cycle = 3;
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(|| run(&train_set, &val_set, &config, &mut Silent).unwrap());
    let two = tensor::pool::pool_builder(2).build().unwrap().install(|| {
        tensor::with_small_products_split(|| {
            run(&train_set, &val_set, &config, &mut Silent).unwrap()
        })
    });
    assert_eq!(one.model, two.model);
    assert_eq!(one.curve, two.curve);
    // Every step ran and each point sits where the schedule puts it.
    let steps: Vec<u64> = one.curve.iter().map(|p| p.step).collect();
    assert_eq!(steps, vec![0, 4, 8, 12]);
}

#[test]
fn training_is_bit_identical_for_one_and_two_threads() {
    // 2300 rows: three evaluation blocks and a short last mini-batch.
    let all = clustered(3400, 64, 1.0, 7);
    let (train_set, val_set) = all.split_at(2300);
    let config = small_config(
        ScheduleSpec::Triangular {
            eta_min: 1e-4,
            eta_max: 0.1,
            n_s: 100,
            n_cycles: 2,
        },
        0.005,
    );
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| run(&train_set, &val_set, &config, &mut Silent).unwrap())
    };
    let one = run(1);
    let two = run(2);
    assert_eq!(one.curve, two.curve);
    assert_eq!(one.model, two.model);
    // Step 0, 4 per cycle, and the end: 0, 50, 100, ..., 400.
    let steps: Vec<u64> = one.curve.iter().map(|p| p.step).collect();
    assert_eq!(steps, (0..=8).map(|k| k * 50).collect::<Vec<_>>());
    assert_eq!(one.curve[2].eta, 0.1);
    assert_eq!(one.curve[4].eta, 1e-4);
    assert_eq!(one.curve[6].eta, 0.1);
    assert_eq!(one.curve[8].eta, 1e-4);
    // It learned something.
    let last = one.curve.last().unwrap();
    assert!(last.validation.accuracy > 0.5, "{last:?}");
    assert!(last.train.cost < one.curve[0].train.cost);
}

#[test]
fn training_overfits_a_small_set() {
    let train_set = clustered(100, 50, 3.0, 9);
    let mut config = small_config(
        ScheduleSpec::Constant {
            eta: 0.1,
            n_steps: 2000,
        },
        0.0,
    );
    config.settings.batch_size = 10;
    let out = run(&train_set, &train_set, &config, &mut Silent).unwrap();
    let last = out.curve.last().unwrap();
    assert_eq!(last.step, 2000);
    assert_eq!(last.train.accuracy, 1.0);
    assert!(last.train.loss < 0.01, "{last:?}");
}

#[test]
fn divergence_is_reported_with_step_and_eta() {
    let mut train_set = clustered(200, 30, 1.0, 10);
    train_set.images.mapv_inplace(|v| v * 1e3);
    let config = small_config(
        ScheduleSpec::Constant {
            eta: 1e6,
            n_steps: 500,
        },
        0.0,
    );
    match run(&train_set, &train_set, &config, &mut Silent) {
        Err(TrainError::Diverged { step, eta, value }) => {
            assert!(step < 500);
            assert_eq!(eta, 1e6);
            assert!(!value.is_finite());
        }
        other => panic!(
            "expected divergence, got {:?}",
            other.map(|t| t.curve.len())
        ),
    }
}

#[test]
fn bad_configs_are_refused_naming_the_field() {
    let data = clustered(50, 8, 1.0, 12);
    let mut config = small_config(
        ScheduleSpec::Constant {
            eta: 0.1,
            n_steps: 5,
        },
        0.0,
    );
    config.settings.batch_size = 51;
    let e = run(&data, &data, &config, &mut Silent).unwrap_err();
    assert!(e.to_string().contains("batch_size"), "{e}");
    config.settings.batch_size = 10;
    config.lambda = -1.0;
    let e = config.validate().unwrap_err();
    assert_eq!(e.field, "lambda");
    let e = run(&data, &data, &config, &mut Silent).unwrap_err();
    assert!(e.to_string().contains("lambda"), "{e}");
    config.lambda = 0.0;
    let mut bad = data.clone();
    bad.labels[3] = 10;
    let e = run(&bad, &data, &config, &mut Silent).unwrap_err();
    assert!(e.to_string().contains("label 10 at row 3"), "{e}");
}

#[test]
fn record_steps_cover_start_cycles_and_end() {
    use crate::schedule::Schedule;
    let s = crate::schedule::Triangular {
        eta_min: 1e-5,
        eta_max: 0.1,
        n_s: 500,
        n_cycles: 1,
    };
    let steps = train::record_steps(&s, 10);
    assert_eq!(steps, (0..=10).map(|k| k * 100).collect::<Vec<_>>());
    let s = crate::schedule::Constant {
        eta: 0.1,
        n_steps: 7,
    };
    assert_eq!(s.period(), 7);
    assert_eq!(train::record_steps(&s, 3), vec![0, 2, 4, 7]);
}

#[test]
fn observer_sees_every_step_and_every_record() {
    struct Count {
        steps: Vec<u64>,
        records: usize,
    }
    impl train::Observer for Count {
        fn on_step(&mut self, step: u64, n_steps: u64, _eta: f64) {
            assert_eq!(n_steps, 37);
            self.steps.push(step);
        }
        fn on_record(&mut self, _point: &train::CurvePoint, _n_steps: u64) {
            self.records += 1;
        }
    }
    let data = clustered(90, 8, 1.0, 13);
    let config = small_config(
        ScheduleSpec::Constant {
            eta: 0.01,
            n_steps: 37,
        },
        0.0,
    );
    let mut count = Count {
        steps: Vec::new(),
        records: 0,
    };
    let out = run(&data, &data, &config, &mut count).unwrap();
    assert_eq!(count.steps, (1..=37).collect::<Vec<_>>());
    assert_eq!(count.records, out.curve.len());
    assert_eq!(out.curve.last().unwrap().step, 37);
}

#[test]
fn f32_gradients_agree_with_f64() {
    let (x, y) = synthetic(64, 100, 14);
    let model = Mlp::<f64>::init(100, 20, 10, 15);
    let (g64, _) = model.gradients(&x.view(), &y, 0.01);
    let (g32, _) = model
        .cast::<f32>()
        .gradients(&x.mapv(|v| v as f32).view(), &y, 0.01);
    let g32 = g32.cast::<f64>();
    let rel = |a: &Array2<f64>, b: &Array2<f64>| {
        let diff: f64 = a.iter().zip(b).map(|(u, v)| (u - v) * (u - v)).sum();
        diff.sqrt() / a.iter().map(|u| u * u).sum::<f64>().sqrt()
    };
    assert!(rel(&g64.w1, &g32.w1) < 1e-5, "{}", rel(&g64.w1, &g32.w1));
    assert!(rel(&g64.w2, &g32.w2) < 1e-5);
}

/// Plain per-sample f64 objective with a fixed dropout mask (`n x m`
/// factors) and label smoothing `eps`: what a training step descends.
fn reference_objective(
    model: &Mlp<f64>,
    x: &ArrayView2<'_, f64>,
    y: &[u8],
    lambda: f64,
    mask: Option<&Array2<f64>>,
    eps: f64,
) -> f64 {
    let (m, k) = (model.n_hidden(), model.n_classes());
    let mut loss = 0.0;
    for (i, (row, &label)) in x.rows().into_iter().zip(y).enumerate() {
        let h: Vec<f64> = (0..m)
            .map(|j| {
                let a = (model.w1.row(j).dot(&row) + model.b1[j]).max(0.0);
                a * mask.map_or(1.0, |mk| mk[[i, j]])
            })
            .collect();
        let s: Vec<f64> = (0..k)
            .map(|c| (0..m).map(|j| model.w2[[c, j]] * h[j]).sum::<f64>() + model.b2[c])
            .collect();
        let max = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let lse = max + s.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
        for (c, &sc) in s.iter().enumerate() {
            let q = eps / k as f64 + if c == label as usize { 1.0 - eps } else { 0.0 };
            loss += q * (lse - sc);
        }
    }
    let l2: f64 = model.w1.iter().chain(model.w2.iter()).map(|v| v * v).sum();
    loss / x.nrows() as f64 + lambda * l2
}

/// Analytic gradients with a fixed dropout mask and label smoothing, for
/// several widths, against centred differences of the plain objective.
#[test]
fn dropout_and_label_smoothing_gradients_match_finite_differences() {
    let (x, y) = synthetic(6, 9, 21);
    for (n_hidden, p, eps) in [
        (1, 0.0, 0.1),
        (7, 0.5, 0.0),
        (13, 0.3, 0.2),
        (40, 0.25, 0.1),
    ] {
        let model = Mlp::<f64>::init(9, n_hidden, 10, 22 + n_hidden as u64);
        // Perturb the biases away from zero so every parameter matters.
        let mut model = model;
        model
            .b1
            .iter_mut()
            .enumerate()
            .for_each(|(j, b)| *b = 0.1 * (j as f64 % 3.0 - 0.5));
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(23);
        let mask = Array2::from_shape_simple_fn((6, n_hidden), || {
            if rng.random::<f64>() < p {
                0.0
            } else {
                1.0 / (1.0 - p)
            }
        });
        let options = StepOptions {
            dropout_mask: (p > 0.0).then(|| mask.view()),
            label_smoothing: eps,
        };
        let mask_ref = (p > 0.0).then_some(&mask);
        let lambda = 0.01;
        let mut ws = Workspace::for_model(&model, 6);
        let mut g = model.clone();
        let sums = model.gradients_with(&x.view(), &y, lambda, &options, &mut ws, &mut g);
        // The returned loss is the smoothed one (without L2).
        let l2: f64 = model.w1.iter().chain(model.w2.iter()).map(|v| v * v).sum();
        let objective = reference_objective(&model, &x.view(), &y, lambda, mask_ref, eps);
        assert!((sums.loss_sum / 6.0 + lambda * l2 - objective).abs() < 1e-12);
        let h = 1e-5;
        let mut worst = 0.0f64;
        let mut check = |get: &dyn Fn(&mut Mlp<f64>) -> &mut f64, analytic: f64| {
            let mut plus = model.clone();
            *get(&mut plus) += h;
            let mut minus = model.clone();
            *get(&mut minus) -= h;
            let numerical = (reference_objective(&plus, &x.view(), &y, lambda, mask_ref, eps)
                - reference_objective(&minus, &x.view(), &y, lambda, mask_ref, eps))
                / (2.0 * h);
            // Relative error, floored at 1e-3: below that the centred difference's
            // round-off (~1e-16 * J / h) dominates.
            let rel = (analytic - numerical).abs() / (analytic.abs() + numerical.abs()).max(1e-3);
            worst = worst.max(rel);
        };
        for idx in 0..model.w1.len() {
            let (r, c) = (idx / 9, idx % 9);
            check(&|m: &mut Mlp<f64>| &mut m.w1[[r, c]], g.w1[[r, c]]);
        }
        for j in 0..n_hidden {
            check(&|m: &mut Mlp<f64>| &mut m.b1[j], g.b1[j]);
        }
        for idx in 0..model.w2.len() {
            let (r, c) = (idx / n_hidden, idx % n_hidden);
            check(&|m: &mut Mlp<f64>| &mut m.w2[[r, c]], g.w2[[r, c]]);
        }
        for c in 0..10 {
            check(&|m: &mut Mlp<f64>| &mut m.b2[c], g.b2[c]);
        }
        assert!(
            worst < 1e-6,
            "m {n_hidden} p {p} eps {eps}: worst rel. error {worst:e}"
        );
    }
}

/// The full recipe (momentum, dropout, label smoothing, augmentation):
/// seeded, the same bits for 1 and 2 threads, and it still learns.
#[test]
fn full_recipe_is_deterministic_and_learns() {
    let all = clustered(1500, 64, 1.0, 31);
    let (train_set, val_set) = all.split_at(1200);
    let mut config = small_config(
        ScheduleSpec::OneCycle {
            eta_max: 0.05,
            n_steps: 300,
            pct_start: 0.3,
            div_factor: 25.0,
            final_div_factor: 100.0,
        },
        0.001,
    );
    config.settings.optimizer = OptimizerSpec::Momentum {
        mu: 0.9,
        nesterov: true,
    };
    config.settings.dropout = 0.3;
    config.settings.label_smoothing = 0.1;
    config.settings.augment = Augment {
        flip: true,
        translate: 1,
    };
    let go = |threads: usize, config: &TrainConfig| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| run(&train_set, &val_set, config, &mut Silent).unwrap())
    };
    let one = go(1, &config);
    let two = go(2, &config);
    assert_eq!(one.model, two.model);
    assert_eq!(one.curve, two.curve);
    let last = one.curve.last().unwrap();
    assert!(last.validation.accuracy > 0.5, "{last:?}");
    // Another seed gives another model.
    config.seed += 1;
    assert_ne!(go(1, &config).model, one.model);
    // AdamW too learns, and its runs repeat (without the augmentation,
    // which scrambles these prototypes more than it helps).
    config.settings.augment = Augment::NONE;
    config.settings.optimizer = OptimizerSpec::Adamw {
        beta1: 0.9,
        beta2: 0.999,
        epsilon: 1e-8,
        weight_decay: 0.01,
    };
    config.settings.schedule = ScheduleSpec::Cosine {
        eta_min: 0.0,
        eta_max: 0.01,
        t_0: 100,
        t_mult: 2,
        n_cycles: 2,
    };
    let a = go(1, &config);
    assert_eq!(a.model, go(2, &config).model);
    let last = a.curve.last().unwrap();
    assert!(last.validation.accuracy > 0.5, "{last:?}");
}

/// Dropout masks hold 0 and 1/(1-p) only, in about the right proportion.
#[test]
fn dropout_masks_are_inverted_and_seeded() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let mut mask = Array2::<f32>::zeros((100, 50));
    train::draw_dropout_mask(0.2, &mut rng, &mut mask.view_mut());
    let n_zero = mask.iter().filter(|&&v| v == 0.0).count();
    assert!(mask.iter().all(|&v| v == 0.0 || v == 1.25));
    assert!((900..1100).contains(&n_zero), "{n_zero}");
    let mut again = Array2::<f32>::zeros((100, 50));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    train::draw_dropout_mask(0.2, &mut rng, &mut again.view_mut());
    assert_eq!(mask, again);
}

/// Every count has an upper bound, checked with a message naming the field.
#[test]
fn counts_have_upper_bounds_naming_the_field() {
    let base = small_config(
        ScheduleSpec::Triangular {
            eta_min: 1e-5,
            eta_max: 0.1,
            n_s: 10,
            n_cycles: 1,
        },
        0.0,
    );
    type Edit = Box<dyn Fn(&mut TrainConfig)>;
    let cases: Vec<(&str, Edit)> = vec![
        ("n_hidden", Box::new(|c| c.settings.n_hidden = 1 << 17)),
        ("batch_size", Box::new(|c| c.settings.batch_size = 1 << 21)),
        (
            "records_per_cycle",
            Box::new(|c| c.settings.records_per_cycle = 1 << 40),
        ),
        ("dropout", Box::new(|c| c.settings.dropout = 1.0)),
        (
            "label_smoothing",
            Box::new(|c| c.settings.label_smoothing = -0.1),
        ),
        (
            "augment.translate",
            Box::new(|c| c.settings.augment.translate = 65),
        ),
        ("seed", Box::new(|c| c.seed = u64::MAX)),
        (
            "schedule.n_s",
            Box::new(|c| {
                c.settings.schedule = ScheduleSpec::Triangular {
                    eta_min: 1e-5,
                    eta_max: 0.1,
                    n_s: 1 << 63,
                    n_cycles: 1,
                }
            }),
        ),
        (
            "schedule.n_cycles",
            Box::new(|c| {
                c.settings.schedule = ScheduleSpec::Triangular {
                    eta_min: 1e-5,
                    eta_max: 0.1,
                    n_s: 10,
                    n_cycles: 1001,
                }
            }),
        ),
        (
            "schedule.n_steps",
            Box::new(|c| {
                c.settings.schedule = ScheduleSpec::Constant {
                    eta: 0.1,
                    n_steps: 1 << 40,
                }
            }),
        ),
        (
            "optimizer.mu",
            Box::new(|c| {
                c.settings.optimizer = OptimizerSpec::Momentum {
                    mu: 1.5,
                    nesterov: false,
                }
            }),
        ),
    ];
    assert!(base.validate().is_ok());
    for (field, edit) in cases {
        let mut c = base.clone();
        edit(&mut c);
        let e = c.validate().unwrap_err();
        assert_eq!(e.field, field, "{e}");
    }
}

/// An observer that asks to stop after its second recorded point.
struct StopAfterTwo(usize);

impl crate::train::Observer for StopAfterTwo {
    fn on_record(&mut self, _point: &crate::train::CurvePoint, _n_steps: u64) {
        self.0 += 1;
    }
    fn stop(&mut self) -> bool {
        self.0 >= 2
    }
}

#[test]
fn an_observer_can_stop_training_after_a_recorded_point() {
    let train_set = clustered(200, 30, 1.0, 10);
    let config = small_config(
        ScheduleSpec::Constant {
            eta: 0.01,
            n_steps: 500,
        },
        0.0,
    );
    match run(&train_set, &train_set, &config, &mut StopAfterTwo(0)) {
        Err(TrainError::Stopped { step, curve }) => {
            // Step 0 and the first point after it, then no more updates.
            assert_eq!(curve.len(), 2);
            assert_eq!(curve[1].step, step);
            assert!(step > 0 && step < 500, "{step}");
        }
        other => panic!("expected a stop, got {:?}", other.map(|t| t.curve.len())),
    }
}
