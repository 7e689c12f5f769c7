//! `evaluate` and `predict` on weights trained here from small generated data.

use std::path::{Path, PathBuf};

use cifar::Cifar10;
use experiment::commands::{self, Options};
use experiment::config::{self, RunConfig};
use experiment::data::DataSource;
use experiment::inference::{self, EvalSplit};
use experiment::ExperimentError;

/// A tiny run's config: 3 hidden units, 2 epochs of 200 images.
fn run_config(name: &str, seed: u64) -> RunConfig {
    let text = format!(
        r#"
name = "{name}"
evaluate_test = true
[data]
kind = "hold_out"
n_validation = 100
seed = 3
[train]
n_hidden = 5
lambda = 0.001
batch_size = 50
records_per_cycle = 1
seed = {seed}
[train.schedule]
kind = "triangular"
eta_min = 1e-5
eta_max = 0.05
n_s = 4
n_cycles = 1
"#
    );
    config::parse(&text, Path::new("inline.toml")).unwrap()
}

fn train(data: &DataSource, results: &Path, name: &str, seed: u64) -> (PathBuf, f64) {
    let opts = Options {
        data,
        results_dir: results.to_path_buf(),
        repo_root: PathBuf::from(env!("CARGO_MANIFEST_DIR")),
        seed: None,
        jobs: 1,
    };
    let summary = commands::train_config(run_config(name, seed), &opts).unwrap();
    (
        results.join(name).join("weights.safetensors"),
        summary.test_accuracy.unwrap(),
    )
}

#[test]
fn evaluate_reproduces_the_runs_test_accuracy_and_averages_an_ensemble() {
    let data = DataSource::from_memory(Cifar10::synthetic(60, 500, 5), "sha256:synthetic");
    let dir = tempfile::tempdir().unwrap();
    let (a, acc_a) = train(&data, dir.path(), "a", 1);
    let (b, acc_b) = train(&data, dir.path(), "b", 2);

    let out = dir.path().join("eval-a");
    let single =
        inference::evaluate(std::slice::from_ref(&a), EvalSplit::Test, &data, &out).unwrap();
    assert_eq!(single.scores.accuracy, acc_a);
    assert_eq!(single.n_images, 500);
    assert_eq!(single.scores.confusion.sum(), 500);
    for file in [
        "per-class.csv",
        "confusion.csv",
        "confusion.svg",
        "confusion.png",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }

    let both = inference::evaluate(
        &[a.clone(), b.clone()],
        EvalSplit::Test,
        &data,
        &dir.path().join("eval-ab"),
    )
    .unwrap();
    assert_eq!(both.member_accuracy, vec![acc_a, acc_b]);
    // The average of two networks is a different predictor than either.
    assert_eq!(both.scores.confusion.sum(), 500);
}

#[test]
fn a_test_image_as_png_gets_the_same_probabilities_as_from_the_data_set() {
    let data = DataSource::from_memory(Cifar10::synthetic(60, 50, 6), "sha256:synthetic");
    let dir = tempfile::tempdir().unwrap();
    let (weights, _) = train(&data, dir.path(), "p", 1);
    let network = inference::load_network(&weights).unwrap();
    let raw = data.raw().unwrap();
    for index in [0, 17, 49] {
        let png = dir.path().join(format!("test-{index}.png"));
        cifar::picture::write_png(raw.test.image(index), &png).unwrap();
        let from_png = inference::predict_pictures(std::slice::from_ref(&network), &[png]).unwrap();
        let from_set =
            inference::predict_test_image(std::slice::from_ref(&network), &data, index).unwrap();
        assert_eq!(from_png[0].ranked, from_set.ranked, "image {index}");
        assert_eq!(from_set.true_label, Some(raw.test.labels[index]));
        // And the same as the run's own evaluation path: the test split row.
        let splits = data.splits(&network.split).unwrap();
        let row = splits.test.rows(index, index + 1);
        let p = experiment::ensemble::average_probabilities(
            std::slice::from_ref(&network.model),
            &row.view().into(),
        );
        for (class, prob) in &from_set.ranked {
            assert_eq!(p[[0, *class]], *prob);
        }
    }
    let err = inference::predict_test_image(std::slice::from_ref(&network), &data, 50)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("--test-index 50") && err.contains("50 images"),
        "{err}"
    );
}

#[test]
fn corrupt_weights_and_other_data_are_refused_naming_the_file() {
    let data = DataSource::from_memory(Cifar10::synthetic(60, 50, 7), "sha256:synthetic");
    let dir = tempfile::tempdir().unwrap();
    let (weights, _) = train(&data, dir.path(), "c", 1);
    let bytes = std::fs::read(&weights).unwrap();

    let cut = dir.path().join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let err = inference::load_network(&cut).unwrap_err().to_string();
    assert!(err.contains("cut.safetensors"), "{err}");

    let tiny = dir.path().join("tiny.safetensors");
    std::fs::write(&tiny, &bytes[..100]).unwrap();
    assert!(inference::load_network(&tiny).is_err());

    // The same weights against other data: other statistics, refused.
    let other = DataSource::from_memory(Cifar10::synthetic(60, 50, 8), "sha256:other");
    let err = inference::evaluate(&[weights], EvalSplit::Test, &other, &dir.path().join("x"))
        .unwrap_err();
    assert!(matches!(err, ExperimentError::Conflict { .. }), "{err}");
    assert!(
        err.to_string().contains("normalisation statistics"),
        "{err}"
    );

    // A picture that is not one is named.
    let network = inference::load_network(&dir.path().join("c/weights.safetensors")).unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, b"not a picture").unwrap();
    let err = inference::predict_pictures(&[network], &[text])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("notes.txt") && err.contains("not a PNG or JPEG"),
        "{err}"
    );
}

#[test]
fn range_test_rises_eta_stops_on_explosion_and_suggests() {
    use experiment::lr_range::{self, RangeSpec};
    let data = DataSource::from_memory(Cifar10::synthetic(80, 20, 9), "sha256:synthetic");
    let config = run_config("r", 1);
    let splits = data.splits(&config.data).unwrap();
    let spec = RangeSpec {
        eta_start: 1e-5,
        eta_end: 1e4,
        epochs: 20,
        eval_every: 2,
        eval_images: 50,
    };
    let mut seen = Vec::new();
    let outcome = lr_range::run(&config, &splits, &spec, |t, _, eta| seen.push((t, eta))).unwrap();
    // 300 training images, batch 50: 6 updates per epoch.
    assert_eq!(outcome.n_steps, 120);
    // eta 1e4 blows any network up: the test ends before the last update.
    assert!(outcome.stopped_early);
    assert!(outcome.points.len() < 120);
    for (i, p) in outcome.points.iter().enumerate() {
        assert_eq!(p.step, i as u64);
        assert_eq!(p.eta, spec.eta(i as u64, 120));
        assert!(p.loss.is_finite());
        assert_eq!(p.validation_accuracy.is_some(), (i + 1) % 2 == 0);
    }
    assert!(outcome.points.windows(2).all(|w| w[1].eta > w[0].eta));
    let s = lr_range::suggest(&outcome.points, outcome.stopped_early).unwrap();
    assert!(s.eta_min <= s.eta_max, "{s:?}");
    // Same seed, same points.
    let again = lr_range::run(&config, &splits, &spec, |_, _, _| {}).unwrap();
    assert_eq!(again.points, outcome.points);
}
