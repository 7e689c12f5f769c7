//! End-to-end tests of the experiment commands with real training on small
//! generated data (no test needs the real data set).

mod inference;

use std::path::{Path, PathBuf};

use cifar::{Cifar10, SplitSpec};
use experiment::commands::{self, Options};
use experiment::config::{self, LambdaGrid, RunConfig, SearchConfig, TrainTemplate};
use experiment::data::DataSource;
use experiment::run::{self, RunState};
use experiment::search::{self, TableRow};
use experiment::{io, ExperimentError};
use mlp::data::Augment;
use mlp::optim::OptimizerSpec;
use mlp::schedule::ScheduleSpec;
use mlp::train::{TrainConfig, TrainSettings};

fn data() -> DataSource {
    DataSource::from_memory(Cifar10::synthetic(120, 60, 5), "sha256:synthetic")
}

fn options<'a>(data: &'a DataSource, results_dir: &Path, jobs: usize) -> Options<'a> {
    Options {
        data,
        results_dir: results_dir.to_path_buf(),
        repo_root: PathBuf::from(env!("CARGO_MANIFEST_DIR")),
        seed: None,
        jobs,
    }
}

fn schedule(eta_max: f64) -> ScheduleSpec {
    ScheduleSpec::Triangular {
        eta_min: 1e-5,
        eta_max,
        n_s: 6,
        n_cycles: 1,
    }
}

fn search_config(name: &str, lambdas: LambdaGrid, seeds_per_lambda: usize) -> SearchConfig {
    SearchConfig {
        name: name.into(),
        seed: 4,
        seeds_per_point: seeds_per_lambda,
        evaluate_test: seeds_per_lambda > 1,
        data: SplitSpec::HoldOut {
            n_validation: 100,
            seed: 2,
        },
        train: TrainTemplate {
            n_hidden: 6,
            batch_size: 50,
            records_per_cycle: 2,
            curve_train_rows: mlp::train::CurveTrainRows::All,
            schedule: schedule(0.05),
            optimizer: OptimizerSpec::Sgd,
            dropout: 0.0,
            label_smoothing: 0.0,
            augment: Augment::NONE,
        },
        lambdas: Some(lambdas),
        space: None,
        pruning: None,
    }
}

fn without_time(rows: &[TableRow]) -> Vec<TableRow> {
    rows.iter()
        .map(|r| TableRow {
            wall_seconds: 0.0,
            ..r.clone()
        })
        .collect()
}

#[test]
fn coarse_fine_final_chain_is_identical_for_any_jobs_and_resumable() {
    let data = data();
    let coarse = search_config(
        "coarse-search",
        LambdaGrid::LogUniform {
            n: 4,
            log10_min: -5.0,
            log10_max: -1.0,
        },
        1,
    );
    let fine = search_config(
        "fine-search",
        LambdaGrid::AroundBest {
            search: "coarse-search".into(),
            n: 3,
            step: 0.0005,
        },
        1,
    );
    let last = search_config(
        "final-train",
        LambdaGrid::BestOf {
            search: "fine-search".into(),
        },
        2,
    );

    let mut outcomes = Vec::new();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    for (dir, jobs) in dirs.iter().zip([1, 2]) {
        let opts = options(&data, dir.path(), jobs);
        // The fine search needs the coarse table: a clear error before it exists.
        let err = commands::search(&fine, &opts).unwrap_err().to_string();
        assert!(err.contains("cargo xtask coarse-search"), "{err}");
        let c = commands::search(&coarse, &opts).unwrap();
        let f = commands::search(&fine, &opts).unwrap();
        let t = commands::search(&last, &opts).unwrap();
        outcomes.push((c, f, t));
    }
    let (a, b) = (&outcomes[0], &outcomes[1]);
    assert_eq!(without_time(&a.0.rows), without_time(&b.0.rows));
    assert_eq!(without_time(&a.1.rows), without_time(&b.1.rows));
    assert_eq!(without_time(&a.2.rows), without_time(&b.2.rows));

    // The fine grid sits around the coarse best; the final lambda is the fine best.
    let coarse_best = a.0.rows[0].lambda;
    let fine_lambdas: Vec<f64> = a.1.rows.iter().map(|r| r.lambda).collect();
    assert!(fine_lambdas
        .iter()
        .all(|l| (l - coarse_best).abs() <= 0.0015 + 1e-12));
    assert!(a.2.rows.iter().all(|r| r.lambda == a.1.rows[0].lambda));
    // Final: two seeds, test accuracy evaluated, mean and std reported.
    assert_eq!(a.2.rows.len(), 2);
    assert!(a.2.rows.iter().all(|r| r.test_accuracy.is_some()));
    assert_eq!(a.2.lambdas[0].n_done, 2);
    assert!(a.2.lambdas[0].test_accuracy_std.is_some());

    // Each run folder is complete; its weights reload with the config as metadata.
    let root = dirs[0].path();
    let run_dir = search::trial_dir(&root.join("final-train"), 1);
    for file in [
        "config.toml",
        "curves.csv",
        "summary.csv",
        "weights.safetensors",
        "curves.svg",
        "curves.png",
    ] {
        assert!(run_dir.join(file).is_file(), "{file} missing");
    }
    let metadata = mlp::weights::load(&run_dir.join("weights.safetensors"))
        .unwrap()
        .metadata;
    let saved: RunConfig = toml::from_str(&metadata["config"]).unwrap();
    assert_eq!(saved.train.lambda, a.2.rows[0].lambda);
    let prov = saved.provenance.unwrap();
    assert_eq!(prov.data_fingerprint, "sha256:synthetic");
    assert_eq!(prov.search.as_deref(), Some("final-train"));

    // Re-running a finished search trains nothing and gives the same table.
    let opts = options(&data, root, 2);
    let again = commands::search(&coarse, &opts).unwrap();
    assert_eq!(again.n_ran, 0);
    assert_eq!(again.rows, a.0.rows);

    // Remove one finished trial's record (as if killed before writing it):
    // only that trial runs again, and the table is the same.
    let victim = a.0.rows[2].trial;
    std::fs::remove_file(
        search::trial_dir(&root.join("coarse-search"), victim).join("summary.csv"),
    )
    .unwrap();
    let resumed = commands::search(&coarse, &opts).unwrap();
    assert_eq!(resumed.n_ran, 1);
    assert_eq!(without_time(&resumed.rows), without_time(&a.0.rows));

    // A changed config in the same folder is refused rather than mixed in.
    let mut changed = coarse.clone();
    changed.train.n_hidden = 7;
    let err = commands::search(&changed, &opts).unwrap_err();
    assert!(matches!(err, ExperimentError::Conflict { .. }), "{err}");
}

fn run_config(eta_max: f64) -> RunConfig {
    RunConfig {
        name: "tiny".into(),
        evaluate_test: true,
        data: SplitSpec::Batches {
            train: vec![1, 3],
            validation: vec![2],
        },
        train: TrainConfig {
            lambda: 0.01,
            seed: 9,
            settings: TrainSettings {
                n_hidden: 5,
                batch_size: 40,
                schedule: schedule(eta_max),
                records_per_cycle: 3,
                curve_train_rows: mlp::train::CurveTrainRows::All,
                optimizer: OptimizerSpec::Sgd,
                dropout: 0.0,
                label_smoothing: 0.0,
                augment: Augment::NONE,
            },
        },
        provenance: None,
    }
}

#[test]
fn a_single_run_writes_its_folder_and_the_resolved_config_reruns_identically() {
    let data = data();
    let dir = tempfile::tempdir().unwrap();
    let opts = options(&data, dir.path(), 2);
    let summary = commands::train_config(run_config(0.05), &opts).unwrap();
    assert_eq!(summary.state, RunState::Done);
    assert!(summary.test_accuracy.is_some());
    let run_dir = dir.path().join("tiny");
    let curves: Vec<run::CurveRow> = io::read_csv(&run_dir.join("curves.csv")).unwrap();
    // Step 0, 3 points in the cycle (the last is the end).
    assert_eq!(
        curves.iter().map(|c| c.step).collect::<Vec<_>>(),
        vec![0, 4, 8, 12]
    );
    assert_eq!(
        curves.last().unwrap().validation_accuracy,
        summary.validation_accuracy.unwrap()
    );

    // The resolved config is a valid input; re-running it with one thread gives the same numbers.
    let resolved: RunConfig = config::load(&run_dir.join("config.toml")).unwrap();
    assert!(resolved.provenance.is_some());
    let dir2 = tempfile::tempdir().unwrap();
    let again = commands::train_config(resolved, &options(&data, dir2.path(), 1)).unwrap();
    assert_eq!(
        RunSummaryNumbers::of(&again),
        RunSummaryNumbers::of(&summary)
    );
    let weights = |d: &Path| std::fs::read(d.join("tiny/weights.safetensors")).unwrap();
    let m1 = mlp::weights::load(&dir.path().join("tiny/weights.safetensors"))
        .unwrap()
        .model;
    let m2 = mlp::weights::load(&dir2.path().join("tiny/weights.safetensors"))
        .unwrap()
        .model;
    assert_eq!(m1, m2);
    assert!(!weights(dir.path()).is_empty());
    // Byte for byte: a checksum of the results means something.
    assert!(weights(dir.path()) == weights(dir2.path()));
}

/// `curve_train_rows = N`: the curve's train columns before the last point
/// are on N rows (and say so), everything else is the same as with "all".
#[test]
fn a_run_with_curve_train_rows_changes_only_the_intermediate_train_points() {
    let data = data();
    let (dir_all, dir_sub) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let all = commands::train_config(run_config(0.05), &options(&data, dir_all.path(), 2)).unwrap();
    let mut config = run_config(0.05);
    config.train.settings.curve_train_rows = mlp::train::CurveTrainRows::First(100);
    let sub = commands::train_config(config, &options(&data, dir_sub.path(), 1)).unwrap();
    assert_eq!(RunSummaryNumbers::of(&sub), RunSummaryNumbers::of(&all));
    let read = |d: &Path| -> Vec<run::CurveRow> {
        io::read_csv(&d.join("tiny").join(run::files::CURVES)).unwrap()
    };
    let (curves_all, curves_sub) = (read(dir_all.path()), read(dir_sub.path()));
    let rows: Vec<Option<usize>> = curves_sub.iter().map(|c| c.train_rows).collect();
    assert_eq!(rows, [Some(100), Some(100), Some(100), Some(240)]);
    assert!(curves_all.iter().all(|c| c.train_rows == Some(240)));
    assert_eq!(curves_sub.last(), curves_all.last());
    for (a, b) in curves_all.iter().zip(&curves_sub) {
        assert_eq!(
            (a.step, a.validation_cost, a.validation_accuracy),
            (b.step, b.validation_cost, b.validation_accuracy)
        );
    }
    assert_ne!(curves_sub[1].train_cost, curves_all[1].train_cost);
    let model = |d: &Path| {
        mlp::weights::load(&d.join("tiny/weights.safetensors"))
            .unwrap()
            .model
    };
    assert_eq!(model(dir_sub.path()), model(dir_all.path()));
    // The resolved config says what was evaluated.
    let resolved = std::fs::read_to_string(dir_sub.path().join("tiny/config.toml")).unwrap();
    assert!(resolved.contains("curve_train_rows = 100"), "{resolved}");
    let resolved = std::fs::read_to_string(dir_all.path().join("tiny/config.toml")).unwrap();
    assert!(
        resolved.contains("curve_train_rows = \"all\""),
        "{resolved}"
    );
}

/// An observer that stops the run (as a kill would) after `after` steps.
struct KillAt {
    after: u64,
}

impl mlp::train::Observer for KillAt {
    fn on_step(&mut self, step: u64, _n_steps: u64, _eta: f64) {
        assert!(step < self.after, "killed at step {step}");
    }
}

/// Every file of `dir` with its bytes.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).unwrap())
        })
        .collect();
    files.sort();
    files
}

#[test]
fn a_rerun_stopped_half_way_leaves_the_finished_run_as_it_was() {
    let data = data();
    let dir = tempfile::tempdir().unwrap();
    let opts = options(&data, dir.path(), 1);
    commands::train_config(run_config(0.05), &opts).unwrap();
    let run_dir = dir.path().join("tiny");
    let before = snapshot(&run_dir);
    assert_eq!(
        before.len(),
        6,
        "{:?}",
        before.iter().map(|f| &f.0).collect::<Vec<_>>()
    );

    // Rerun with another seed into the same folder, stopped half way.
    let mut config = run_config(0.05);
    config.train.seed = 10;
    let splits = data.splits(&config.data).unwrap();
    let stopped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run::execute(&splits, &config, &run_dir, &mut KillAt { after: 5 })
    }));
    assert!(stopped.is_err(), "the run was not stopped");
    assert_eq!(snapshot(&run_dir), before, "the folder mixes two runs");

    // A dead process's staging folder is removed by the next run of that name.
    let stale = dir.path().join(".tiny.staging-4000000000-1");
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(stale.join("config.toml"), "x").unwrap();
    commands::train_config(config, &opts).unwrap();
    assert!(!stale.exists(), "a dead run's staging folder was left");
    let after = snapshot(&run_dir);
    assert_eq!(after.len(), 6);
    assert_ne!(after, before, "the finished rerun replaced the folder");
    let resolved: RunConfig = config::load(&run_dir.join("config.toml")).unwrap();
    assert_eq!(resolved.train.seed, 10);
}

/// A summary without its wall time.
#[derive(Debug, PartialEq)]
struct RunSummaryNumbers(Vec<Option<f64>>);

impl RunSummaryNumbers {
    fn of(s: &run::RunSummary) -> Self {
        Self(vec![
            s.train_cost,
            s.train_accuracy,
            s.validation_cost,
            s.validation_accuracy,
            s.test_cost,
            s.test_accuracy,
        ])
    }
}

#[test]
fn divergence_is_an_error_naming_the_step_and_a_diverged_summary() {
    let data = data();
    let dir = tempfile::tempdir().unwrap();
    let err = commands::train_config(run_config(1e12), &options(&data, dir.path(), 1)).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ExperimentError::Diverged { .. }), "{text}");
    assert!(text.contains("diverged at step"), "{text}");
    let summary = run::read_summary(&dir.path().join("tiny"))
        .unwrap()
        .unwrap();
    assert_eq!(summary.state, RunState::Diverged);
    assert_eq!(summary.validation_accuracy, None);
}

#[test]
fn a_diverged_trial_is_a_table_row_not_the_end_of_the_search() {
    let data = data();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = search_config(
        "s",
        LambdaGrid::List {
            values: vec![0.001, 0.01],
        },
        1,
    );
    cfg.train.schedule = schedule(1e12);
    let out = commands::search(&cfg, &options(&data, dir.path(), 2)).unwrap();
    assert_eq!(out.rows.len(), 2);
    assert!(out.rows.iter().all(|r| r.state == RunState::Diverged));
    // With nothing finished, a later search cannot take a best lambda from it.
    let err = search::best_lambda(dir.path(), "s")
        .unwrap_err()
        .to_string();
    assert!(err.contains("no finished"), "{err}");
}

#[test]
fn a_trial_with_corrupt_weights_is_trained_again_not_reused() {
    let data = data();
    let dir = tempfile::tempdir().unwrap();
    let cfg = search_config(
        "s",
        LambdaGrid::List {
            values: vec![0.001, 0.01],
        },
        1,
    );
    let first = commands::search(&cfg, &options(&data, dir.path(), 1)).unwrap();
    let weights = dir.path().join("s/runs/trial-00/weights.safetensors");
    let good = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &good[..100]).unwrap();
    let again = commands::search(&cfg, &options(&data, dir.path(), 1)).unwrap();
    assert_eq!(again.n_ran, 1, "only the corrupt trial runs again");
    assert_eq!(std::fs::read(&weights).unwrap(), good);
    assert_eq!(without_time(&again.rows), without_time(&first.rows));
}
