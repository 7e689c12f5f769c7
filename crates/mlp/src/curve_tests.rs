//! Tests of `curve_train_rows`: the learning-curve points before the last
//! evaluate the first N training rows, the last one all of them, and the
//! training itself never changes.

use ndarray::s;

use crate::data::tests::Copied;
use crate::data::Augment;
use crate::data::{Data, Features};
use crate::optim::OptimizerSpec;
use crate::schedule::ScheduleSpec;
use crate::tests::{clustered, Set};
use crate::train::{self, CurveTrainRows, Silent, TrainConfig, TrainSettings, Trained, Trainer};

/// 2300 training rows (three evaluation blocks), 600 validation rows.
fn sets() -> (Set, Set) {
    let all = clustered(2900, 64, 1.0, 41);
    let split = |r: std::ops::Range<usize>| Set {
        images: all.images.slice(s![r.clone(), ..]).to_owned(),
        labels: all.labels[r].to_vec(),
    };
    (split(0..2300), split(2300..2900))
}

/// Momentum, dropout and augmentation: every random stream in use, so a
/// stray draw by an evaluation would show in the weights.
fn config(rows: CurveTrainRows) -> TrainConfig {
    TrainConfig {
        lambda: 0.003,
        seed: 5,
        settings: TrainSettings {
            n_hidden: 16,
            batch_size: 32,
            schedule: ScheduleSpec::Triangular {
                eta_min: 1e-4,
                eta_max: 0.05,
                n_s: 60,
                n_cycles: 2,
            },
            records_per_cycle: 3,
            curve_train_rows: rows,
            optimizer: OptimizerSpec::Momentum {
                mu: 0.9,
                nesterov: false,
            },
            dropout: 0.2,
            label_smoothing: 0.05,
            augment: Augment {
                flip: true,
                translate: 1,
            },
        },
    }
}

/// Train on `train_set` as a matrix, or as a row source when `rows_source`.
fn go(train_set: &Set, val_set: &Set, config: &TrainConfig, rows_source: bool) -> Trained {
    let valid = config.validate().unwrap();
    let source = Copied(train_set.images.clone());
    let mut data = train_set.data();
    if rows_source {
        data.features = Features::Rows(&source);
    }
    train::train(data, val_set.data(), &valid, &mut Silent).unwrap()
}

#[test]
fn all_and_n_at_least_the_split_give_the_same_curve_and_weights() {
    let (train_set, val_set) = sets();
    let all = go(&train_set, &val_set, &config(CurveTrainRows::All), false);
    assert!(all.curve.iter().all(|p| p.train_rows == 2300));
    for n in [2300, 2301, u64::from(u32::MAX)] {
        let other = go(
            &train_set,
            &val_set,
            &config(CurveTrainRows::First(n)),
            false,
        );
        assert_eq!(other.curve, all.curve, "N = {n}");
        assert_eq!(other.model, all.model, "N = {n}");
    }
    // The same bits when the rows come from a source.
    let source = go(&train_set, &val_set, &config(CurveTrainRows::All), true);
    assert_eq!(source.curve, all.curve);
    // And what the loop did before the setting existed: every point the
    // whole training and validation splits, evaluated on the model of its step.
    let steps: Vec<u64> = all.curve.iter().map(|p| p.step).collect();
    let models = models_at(&train_set, &config(CurveTrainRows::All), &steps);
    for (p, model) in all.curve.iter().zip(&models) {
        let lambda = config(CurveTrainRows::All).lambda;
        let train = model.evaluate(&train_set.images.view(), &train_set.labels, lambda);
        let validation = model.evaluate(&val_set.images.view(), &val_set.labels, lambda);
        assert_eq!(
            (p.train, p.validation),
            (train, validation),
            "step {}",
            p.step
        );
    }
}

/// The model after each of `steps`, by driving a [`Trainer`] as `train` does.
fn models_at(train_set: &Set, config: &TrainConfig, steps: &[u64]) -> Vec<crate::Mlp<f32>> {
    let valid = config.validate().unwrap();
    let schedule = config.settings.schedule.build();
    let mut trainer = Trainer::new(train_set.data(), &valid).unwrap();
    steps
        .iter()
        .map(|&step| {
            while trainer.steps_done() < step {
                trainer.step(schedule.eta(trainer.steps_done())).unwrap();
            }
            trainer.model().clone()
        })
        .collect()
}

#[test]
fn intermediate_points_evaluate_the_first_n_rows_and_the_last_all() {
    let (train_set, val_set) = sets();
    let all = go(&train_set, &val_set, &config(CurveTrainRows::All), false);
    // 1500 rows: one full evaluation block and a part of the second.
    let n = 1500;
    let head = Set {
        images: train_set.images.slice(s![..n, ..]).to_owned(),
        labels: train_set.labels[..n].to_vec(),
    };
    let steps: Vec<u64> = all.curve.iter().map(|p| p.step).collect();
    assert_eq!(steps.len(), 7, "{steps:?}");
    let models = models_at(&train_set, &config(CurveTrainRows::All), &steps);
    assert_eq!(models.last(), Some(&all.model));
    for rows_source in [false, true] {
        let cfg = config(CurveTrainRows::First(n as u64));
        let sub = go(&train_set, &val_set, &cfg, rows_source);
        // Training is untouched: the same weights, the same validation points.
        assert_eq!(sub.model, all.model);
        let (last, rest) = sub.curve.split_last().unwrap();
        assert_eq!(
            last,
            all.curve.last().unwrap(),
            "the last point sees all rows"
        );
        assert_eq!(last.train_rows, 2300);
        for ((p, q), model) in rest.iter().zip(&all.curve).zip(&models) {
            assert_eq!((p.step, p.eta, p.validation), (q.step, q.eta, q.validation));
            assert_eq!(p.train_rows, n);
            // Exactly the evaluation of a fresh matrix of the first n rows.
            let want = model.evaluate_features(
                &Features::Matrix(head.images.view()),
                &head.labels,
                cfg.lambda,
            );
            assert_eq!(p.train, want, "step {}", p.step);
        }
        // Not the whole split's numbers (else the test would prove nothing).
        assert_ne!(rest[3].train, all.curve[3].train);
    }
}

#[test]
fn a_stopped_run_ends_on_a_point_of_the_first_rows() {
    /// Stops after the third recorded point.
    struct StopAfter(usize);
    impl train::Observer for StopAfter {
        fn on_record(&mut self, _: &train::CurvePoint, _: u64) {
            self.0 += 1;
        }
        fn stop(&mut self) -> bool {
            self.0 >= 3
        }
    }
    let (train_set, val_set) = sets();
    let valid = config(CurveTrainRows::First(500)).validate().unwrap();
    let data: Data<'_> = train_set.data();
    match train::train(data, val_set.data(), &valid, &mut StopAfter(0)) {
        Err(train::TrainError::Stopped { curve, .. }) => {
            assert_eq!(curve.len(), 3);
            assert!(curve.iter().all(|p| p.train_rows == 500));
        }
        other => panic!("expected a stop, got {:?}", other.map(|t| t.curve.len())),
    }
}

#[test]
fn zero_rows_are_refused_naming_the_field() {
    let e = config(CurveTrainRows::First(0)).validate().unwrap_err();
    assert_eq!(e.field, "curve_train_rows");
    assert!(e.message.contains("\"all\""), "{}", e.message);
    let e = config(CurveTrainRows::First(u64::MAX))
        .validate()
        .unwrap_err();
    assert_eq!(e.field, "curve_train_rows");
    assert!(config(CurveTrainRows::First(1)).validate().is_ok());
}

#[test]
fn the_setting_reads_all_or_an_integer_and_writes_it_back() {
    // The TOML form is tested with the configs (crates/experiment).
    #[derive(serde::Deserialize, serde::Serialize)]
    struct T {
        rows: CurveTrainRows,
    }
    let read = |text: &str| serde_json::from_str::<T>(text).map(|t| t.rows);
    assert_eq!(read(r#"{"rows": "all"}"#).unwrap(), CurveTrainRows::All);
    assert_eq!(
        read(r#"{"rows": 5000}"#).unwrap(),
        CurveTrainRows::First(5000)
    );
    // 0 parses; `validate` refuses it naming the field (above).
    assert_eq!(read(r#"{"rows": 0}"#).unwrap(), CurveTrainRows::First(0));
    for bad in ["-3", r#""some""#, "1.5", "true"] {
        let e = read(&format!(r#"{{"rows": {bad}}}"#))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("\"all\" or a positive number of training rows"),
            "{bad}: {e}"
        );
    }
    for rows in [CurveTrainRows::All, CurveTrainRows::First(7)] {
        let text = serde_json::to_string(&T { rows }).unwrap();
        assert_eq!(read(&text).unwrap(), rows, "{text}");
    }
    assert_eq!(CurveTrainRows::First(10).rows(7), 7);
    assert_eq!(CurveTrainRows::First(3).rows(7), 3);
    assert_eq!(CurveTrainRows::All.rows(7), 7);
}
