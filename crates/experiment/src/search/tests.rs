//! Tests of plans, tables and the resumable parallel runner, with a fake
//! trial function in place of training.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::run::RunState;

/// A stand-in for training: numbers are a pure function of lambda and seed;
/// lambdas above 0.05 diverge.
fn fake_summary(trial: &Trial) -> RunSummary {
    let mut s = RunSummary::empty("fake", RunState::Done, trial.lambda, trial.seed, 100);
    if trial.lambda > 0.05 {
        s.state = RunState::Diverged;
        s.message = "training diverged at step 7".into();
        return s;
    }
    let x = trial.lambda.log10() + 2.2;
    let acc = 0.5 - 0.01 * x * x + (trial.seed % 97) as f64 * 1e-6;
    s.validation_accuracy = Some(acc);
    s.validation_cost = Some(1.5 + x * x);
    s.train_accuracy = Some(acc + 0.05);
    s.train_cost = Some(1.4);
    // Wall time differs between runs, as it does for real.
    s.wall_seconds = rayon::current_num_threads() as f64 + trial.trial as f64 * 0.01;
    s
}

/// Everything but the wall time (which is allowed to differ between runs).
fn without_time(rows: &[TableRow]) -> Vec<TableRow> {
    rows.iter()
        .map(|r| TableRow {
            wall_seconds: 0.0,
            ..r.clone()
        })
        .collect()
}

fn plan() -> Vec<Trial> {
    let lambdas = resolve_lambdas(
        &LambdaGrid::LogUniform {
            n: 10,
            log10_min: -5.0,
            log10_max: -1.0,
        },
        7,
        Path::new("/nonexistent"),
    )
    .unwrap();
    let mut lambdas = lambdas;
    // Make sure one trial diverges.
    lambdas[3] = 0.09;
    draw_plan(&lambdas, 2, 7)
}

#[test]
fn plan_is_deterministic_and_in_range() {
    let grid = LambdaGrid::LogUniform {
        n: 10,
        log10_min: -5.0,
        log10_max: -1.0,
    };
    let a = resolve_lambdas(&grid, 1, Path::new(".")).unwrap();
    let b = resolve_lambdas(&grid, 1, Path::new(".")).unwrap();
    let c = resolve_lambdas(&grid, 2, Path::new(".")).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert!(a.iter().all(|&l| (1e-5..1e-1).contains(&l)), "{a:?}");
    let p = draw_plan(&a, 3, 1);
    assert_eq!(p, draw_plan(&a, 3, 1));
    assert_eq!(p.len(), 30);
    assert!(p.iter().enumerate().all(|(i, t)| t.trial == i));
    assert_eq!(p[4].lambda, a[1]);
    // Three different seeds, the same three for every lambda.
    let seeds: Vec<u64> = p[..3].iter().map(|t| t.seed).collect();
    assert!(seeds[0] != seeds[1] && seeds[1] != seeds[2] && seeds[0] != seeds[2]);
    for (i, t) in p.iter().enumerate() {
        assert_eq!(t.seed, seeds[i % 3]);
        assert_eq!(t.lambda, a[i / 3]);
    }
}

#[test]
fn fine_grid_around_the_reports_coarse_best_is_the_reports_grid() {
    let got = around(0.007257, 6, 0.0005);
    assert_eq!(got, vec![0.006, 0.0065, 0.007, 0.0075, 0.008, 0.0085]);
    // Near zero the grid stays positive.
    assert!(around(0.0001, 6, 0.0005).iter().all(|&l| l > 0.0));
    let range = resolve_lambdas(
        &LambdaGrid::Range {
            start: 0.006,
            step: 0.0005,
            n: 3,
        },
        0,
        Path::new("."),
    )
    .unwrap();
    assert_eq!(range, vec![0.006, 0.0065, 0.007]);
}

#[test]
fn missing_earlier_search_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let grid = LambdaGrid::AroundBest {
        search: "coarse-search".into(),
        n: 6,
        step: 0.0005,
    };
    let err = resolve_lambdas(&grid, 0, dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("coarse-search/table.csv") && err.contains("cargo xtask coarse-search"),
        "{err}"
    );
}

#[test]
fn table_is_sorted_best_first_with_diverged_last_and_any_jobs_gives_the_same_table() {
    let plan = plan();
    let mut tables = Vec::new();
    for jobs in [1, 3] {
        let dir = tempfile::tempdir().unwrap();
        let out = run_trials("s", dir.path(), &plan, jobs, |t, _| Ok(fake_summary(t))).unwrap();
        assert_eq!(out.n_ran, plan.len());
        let from_disk: Vec<TableRow> = io::read_csv(&dir.path().join(files::TABLE)).unwrap();
        assert_eq!(from_disk, out.rows);
        assert!(dir.path().join(files::ACCURACY_SVG).is_file());
        assert!(dir.path().join(files::ACCURACY_PNG).is_file());
        tables.push(out.rows);
    }
    assert_eq!(without_time(&tables[0]), without_time(&tables[1]));
    // The fake wall time shows each trial ran in the workers' shared pool
    // of `jobs` threads (a worker with nothing left lends its thread to the
    // trials still running), the tables above show it changes no result.
    // (Diverged fakes record no time.)
    let walls = |jobs: usize| -> Vec<f64> {
        let done = tables[usize::from(jobs > 1)].iter();
        done.filter(|r| r.state == RunState::Done)
            .map(|r| r.wall_seconds.floor())
            .collect()
    };
    assert!(walls(1).iter().all(|&w| w == 1.0), "{:?}", walls(1));
    assert!(walls(3).iter().all(|&w| w == 3.0), "{:?}", walls(3));

    let rows = &tables[0];
    assert_eq!(rows.len(), 20);
    assert!(rows.iter().enumerate().all(|(i, r)| r.rank == i + 1));
    let n_diverged = rows
        .iter()
        .filter(|r| r.state == RunState::Diverged)
        .count();
    let n_big = plan.iter().filter(|t| t.lambda > 0.05).count();
    assert!(n_big >= 2);
    assert_eq!(n_diverged, n_big);
    let n_done = rows.len() - n_diverged;
    assert!(rows[n_done..].iter().all(|r| r.state == RunState::Diverged));
    for pair in rows[..n_done].windows(2) {
        assert!(pair[0].validation_accuracy >= pair[1].validation_accuracy);
    }
    // The best lambda read back from the table is the top row's.
    let dir = tempfile::tempdir().unwrap();
    io::write_csv(&dir.path().join("s").join(files::TABLE), rows).unwrap();
    assert_eq!(best_lambda(dir.path(), "s").unwrap(), rows[0].lambda);
}

#[test]
fn interrupted_search_resumes_only_unfinished_trials_and_gives_the_same_table() {
    let plan = plan();
    let reference_dir = tempfile::tempdir().unwrap();
    let reference = run_trials("s", reference_dir.path(), &plan, 2, |t, _| {
        Ok(fake_summary(t))
    })
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    // First attempt: the "process" dies on the 6th trial it starts.
    let started = AtomicUsize::new(0);
    let err = run_trials("s", dir.path(), &plan, 2, |t, run_dir| {
        if started.fetch_add(1, Ordering::SeqCst) == 5 {
            // A half-written run folder, as a kill would leave it.
            io::write_atomic(&run_dir.join("config.toml"), b"partial").unwrap();
            std::fs::write(run_dir.join(".curves.csv.1.tmp"), b"half").unwrap();
            return Err(ExperimentError::Threads("simulated crash".into()));
        }
        Ok(fake_summary(t))
    })
    .unwrap_err();
    assert!(err.to_string().contains("simulated crash"), "{err}");
    assert!(!dir.path().join(files::TABLE).exists());
    let n_recorded = plan
        .iter()
        .filter(|t| {
            run::read_summary(&trial_dir(dir.path(), t.trial))
                .unwrap()
                .is_some()
        })
        .count();
    // Every trial started, except the one that crashed, is recorded; the
    // crash stopped the scheduling of the rest.
    assert_eq!(n_recorded, started.load(Ordering::SeqCst) - 1);
    assert!((5..plan.len() - 1).contains(&n_recorded), "{n_recorded}");

    // Second attempt: only the unfinished trials run.
    let calls = AtomicUsize::new(0);
    let resumed = run_trials("s", dir.path(), &plan, 2, |t, _| {
        calls.fetch_add(1, Ordering::SeqCst);
        Ok(fake_summary(t))
    })
    .unwrap();
    assert_eq!(calls.into_inner(), plan.len() - n_recorded);
    assert_eq!(resumed.n_ran, plan.len() - n_recorded);
    assert_eq!(without_time(&resumed.rows), without_time(&reference.rows));

    // A third run has nothing left to do and writes the same table again.
    let again = run_trials("s", dir.path(), &plan, 2, |_, _| {
        Err(ExperimentError::Threads("must not run".into()))
    })
    .unwrap();
    assert_eq!(again.n_ran, 0);
    assert_eq!(again.rows, resumed.rows);
}

#[test]
fn a_different_plan_in_the_same_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan();
    run_trials("s", dir.path(), &plan[..2], 1, |t, _| Ok(fake_summary(t))).unwrap();
    let other = draw_plan(&[0.001, 0.002], 1, 99);
    let err = run_trials("s", dir.path(), &other, 1, |t, _| Ok(fake_summary(t)))
        .unwrap_err()
        .to_string();
    assert!(err.contains("plan.csv") && err.contains("differs"), "{err}");
}

#[test]
fn mean_and_sample_std_match_a_hand_computation() {
    let (mean, std) = mean_std(&[0.515, 0.519, 0.523]);
    assert!((mean.unwrap() - 0.519).abs() < 1e-12);
    assert!((std.unwrap() - 0.004).abs() < 1e-12);
    assert_eq!(mean_std(&[0.5]), (Some(0.5), None));
    assert_eq!(mean_std(&[]), (None, None));
}

#[test]
fn a_corrupt_or_header_only_table_is_malformed_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan();
    let search_dir = dir.path().join("coarse-search");
    run_trials("coarse-search", &search_dir, &plan, 1, |t, _| {
        Ok(fake_summary(t))
    })
    .unwrap();
    let table = search_dir.join(files::TABLE);
    let good = std::fs::read_to_string(&table).unwrap();
    assert!(best_lambda(dir.path(), "coarse-search").is_ok());
    let header = good.lines().next().unwrap();
    let mut lines: Vec<&str> = good.lines().collect();
    lines[2] = "3,1,oops,0.01,done";
    let corrupt = lines.join("\n");
    for (text, needles) in [
        (
            format!("{header}\n"),
            ["malformed search table", "line 1 (the header)"],
        ),
        (
            String::new(),
            ["malformed search table", "the file is empty"],
        ),
        (corrupt, ["malformed search table", "line 3"]),
    ] {
        std::fs::write(&table, &text).unwrap();
        let err = best_lambda(dir.path(), "coarse-search")
            .unwrap_err()
            .to_string();
        for n in needles {
            assert!(err.contains(n), "{n:?} not in: {err}");
        }
        assert!(
            err.contains("table.csv") && !err.contains("no finished"),
            "{err}"
        );
    }
}

#[test]
fn two_searches_on_one_folder_at_once_run_each_trial_once_and_agree() {
    let plan = plan();
    let dir = tempfile::tempdir().unwrap();
    let calls = AtomicUsize::new(0);
    let trial_fn = |t: &Trial, _: &Path| {
        calls.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(std::time::Duration::from_millis(20));
        Ok(fake_summary(t))
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| run_trials("s", dir.path(), &plan, 2, trial_fn).unwrap());
        let b = s.spawn(|| run_trials("s", dir.path(), &plan, 2, trial_fn).unwrap());
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(calls.into_inner(), plan.len());
    assert_eq!(a.n_ran + b.n_ran, plan.len());
    assert!(a.n_ran > 0 && b.n_ran > 0, "{} {}", a.n_ran, b.n_ran);
    assert_eq!(without_time(&a.rows), without_time(&b.rows));
    // No claim is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join(files::RUNS))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".claim."))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn collect_lists_the_unfinished_trials() {
    let plan = plan();
    let dir = tempfile::tempdir().unwrap();
    save_plan(dir.path(), &plan).unwrap();
    let err = collect("s", dir.path(), &plan).unwrap_err().to_string();
    assert!(
        err.contains("20 of 20 trials are not finished") && err.contains("trial-00"),
        "{err}"
    );
    assert_eq!(read_plan(dir.path()).unwrap(), plan);
}

#[test]
fn trial_folders_from_other_data_are_refused_naming_the_folder_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let plan = draw_plan(&[1e-4, 3e-2, 3e-3], 2, 3);
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/clr-1cycle.toml"),
    )
    .unwrap();
    let mut config: crate::config::RunConfig =
        crate::config::parse(&text, Path::new("x.toml")).unwrap();
    config.provenance = Some(crate::config::Provenance {
        git_revision: "abc".into(),
        data_fingerprint: "f00d".into(),
        data_dir: "/old/data".into(),
        search: Some("s".into()),
        trial: Some(2),
    });
    let run_dir = trial_dir(dir.path(), 2);
    io::create_dir(&run_dir).unwrap();
    io::write_toml(&run_dir.join(run::files::CONFIG), &config).unwrap();
    // The same data: fine; a folder without a config (never started): fine.
    check_data_fingerprint(dir.path(), &plan, "f00d").unwrap();
    let err = check_data_fingerprint(dir.path(), &plan, "beef")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("trial-02")
            && err.contains("f00d")
            && err.contains("beef")
            && err.contains("/old/data")
            && err.contains("--results-dir")
            && err.contains("delete"),
        "{err}"
    );
}
