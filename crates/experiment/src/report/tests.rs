//! The report from fake result folders, and the seed-noise verdicts.

use std::path::Path;

use super::noise::noise_rows;
use super::*;
use crate::records::run::RunState;
use crate::records::search::{lambda_stats, sort_table, Trial};

fn summary(name: &str, test: f64) -> RunSummary {
    let mut s = RunSummary::empty(name, RunState::Done, 0.01, 1, 1000);
    s.train_accuracy = Some(0.6);
    s.validation_accuracy = Some(0.45);
    s.test_accuracy = Some(test);
    s
}

fn table(dir: &Path, name: &str, rows: &[(f64, Option<f64>, Option<f64>)]) {
    let mut table: Vec<TableRow> = rows
        .iter()
        .enumerate()
        .map(|(i, &(lambda, val, test))| {
            let trial = Trial {
                trial: i,
                point: i,
                lambda,
                seed: 10 + i as u64,
                settings: String::new(),
            };
            let mut s = RunSummary::empty("t", RunState::Done, lambda, trial.seed, 10);
            if val.is_none() {
                s.state = RunState::Diverged;
            }
            s.validation_accuracy = val;
            s.test_accuracy = test;
            TableRow::new(&trial, &s)
        })
        .collect();
    sort_table(&mut table);
    let folder = dir.join(name);
    io::write_csv(&folder.join(search::files::TABLE), &table).unwrap();
    io::write_csv(&folder.join(search::files::LAMBDAS), &lambda_stats(&table)).unwrap();
}

fn row(trial: usize, lambda: f64, seed: u64, val: f64) -> TableRow {
    let t = Trial {
        trial,
        point: 0,
        lambda,
        seed,
        settings: String::new(),
    };
    let mut s = RunSummary::empty("t", RunState::Done, lambda, seed, 10);
    s.validation_accuracy = Some(val);
    TableRow::new(&t, &s)
}

#[test]
fn noise_verdicts_use_the_seed_spread_or_a_paired_test() {
    // One seed per lambda: margins 0.004 (runner-up) and 0.030 (neighbour
    // below) against a seed std of 0.005: 0.004 / 0.00707 = 0.57 (noise),
    // 0.030 / 0.00707 = 4.2 (signal).
    let rows = [
        row(0, 1e-3, 1, 0.520),
        row(1, 1e-2, 2, 0.524),
        row(2, 1e-1, 3, 0.494),
    ];
    let lines = noise_rows(&rows, Some(0.005));
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[0].contains("runner-up") && lines[0].contains("0.001000"));
    assert!(lines[0].contains("= 0.57") && lines[0].ends_with("within seed noise"));
    assert!(lines[1].contains("lower neighbour") && lines[1].ends_with("within seed noise"));
    assert!(lines[2].contains("higher neighbour") && lines[2].contains("= 4.24"));
    assert!(lines[2].ends_with("beyond seed noise"), "{}", lines[2]);
    // Three shared seeds per lambda: the paired test decides. A steady
    // +0.002 under ±0.01 of seed luck is signal when paired.
    let mut rows = Vec::new();
    for (i, (luck, seed)) in [(0.0, 1), (0.02, 2), (-0.01, 3)].iter().enumerate() {
        rows.push(row(
            2 * i,
            1e-3,
            *seed,
            0.5 + luck + 0.002 + 0.0001 * i as f64,
        ));
        rows.push(row(2 * i + 1, 1e-2, *seed, 0.5 + luck));
    }
    let lines = noise_rows(&rows, None);
    assert!(lines[0].contains("paired t over 3 seeds"), "{lines:?}");
    assert!(lines[0].ends_with("beyond seed noise"), "{lines:?}");
}

#[test]
fn report_from_fake_results_has_every_number_difference_and_target() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run::write_summary(&d.join("clr-1cycle"), &summary("clr-1cycle", 0.4612)).unwrap();
    run::write_summary(&d.join("clr-3cycles"), &summary("clr-3cycles", 0.4731)).unwrap();
    table(
        d,
        "coarse-search",
        &[
            (0.0072, Some(0.5102), None),
            (0.07, None, None),
            (0.0004, Some(0.47), None),
        ],
    );
    table(
        d,
        "fine-search",
        &[(0.0065, Some(0.5170), None), (0.007, Some(0.5150), None)],
    );
    table(
        d,
        "final-train",
        &[
            (0.0065, Some(0.52), Some(0.515)),
            (0.0065, Some(0.52), Some(0.519)),
            (0.0065, Some(0.52), Some(0.523)),
        ],
    );
    std::fs::write(
        d.join("coarse-search").join(search::files::ACCURACY_SVG),
        "<svg/>",
    )
    .unwrap();
    std::fs::create_dir_all(d.join("gradcheck")).unwrap();
    std::fs::write(
        d.join("gradcheck/gradcheck.csv"),
        "scenario,parameter,max_rel_error\na,W1,3.1e-9\n",
    )
    .unwrap();
    let stages = [
        ("clr-1cycle", 3.0),
        ("coarse-search", 30.0),
        ("gradcheck", 20.0),
    ];
    let stages: Vec<StageTime> = stages
        .iter()
        .map(|&(stage, seconds)| StageTime {
            stage: stage.into(),
            seconds,
            status: "ok".into(),
        })
        .collect();
    io::write_csv(&d.join(STAGE_TIMES), &stages).unwrap();

    let text = std::fs::read_to_string(write_report(d).unwrap()).unwrap();
    for needle in [
        // clr-1cycle: ours, the report's, the difference.
        "| 0.46 | 0.4612 | +0.0012 |",
        "| 0.47 | 0.4731 | +0.0031 |",
        // Coarse best against 0.5000 with its target; the diverged trial is a row.
        "0.5102 (n = 1, lambda 0.007200) | +0.0102 | >= 0.505 met",
        "diverged",
        // Fine best 0.5170 vs 0.5162.
        "0.5170 (n = 1, lambda 0.006500) | +0.0008",
        // Final: mean ± sample std over 3 seeds, against 0.5063 and the 0.515 target.
        "0.5190 ± 0.0040 (n = 3, lambda 0.006500) | +0.0127 | >= 0.515 met",
        // Stage times: training stages sum to 33 s, all stages to 53 s.
        "**33.0**",
        "**53.0**",
        "| a | W1 | 3.1e-9 |",
        "![coarse-search](coarse-search/accuracy-vs-lambda.svg)",
        "(picture clr-1cycle/curves.svg missing)",
        "(not run: no `sanity/` folder)",
        "coarse best lambda 0.007200 lies outside this grid (0.006500 .. 0.007000)",
    ] {
        assert!(text.contains(needle), "REPORT.md lacks {needle:?}:\n{text}");
    }
}

#[test]
fn summary_quotes_the_best_mean_over_seeds_not_the_luckiest_trial() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // lambda 0.001 has the best single trial (0.60) but the worse mean (0.50).
    let mut rows = vec![
        row(0, 0.001, 1, 0.60),
        row(1, 0.001, 2, 0.40),
        row(2, 0.002, 1, 0.55),
        row(3, 0.002, 2, 0.53),
    ];
    sort_table(&mut rows);
    io::write_csv(&d.join("coarse-search").join(search::files::TABLE), &rows).unwrap();
    let text = std::fs::read_to_string(write_report(d).unwrap()).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("| coarse search (table 1)"))
        .unwrap_or_else(|| panic!("no coarse-search summary row:\n{text}"));
    assert!(
        line.contains("| 0.5400 ± 0.0141 (n = 2, lambda 0.002000) | +0.0400 | >= 0.505 met |"),
        "{line}"
    );
}

#[test]
fn report_of_an_empty_folder_says_not_run() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(write_report(dir.path()).unwrap()).unwrap();
    assert!(text.contains("| - | - | >= 0.505 not run |"), "{text}");
    assert!(text.matches("(not run)").count() >= 5, "{text}");
}

#[test]
fn every_stage_has_a_report_section() {
    let dir = tempfile::tempdir().unwrap();
    let results = Results::read(dir.path());
    for stage in &STAGES {
        let mut out = String::new();
        assert!(
            stage_section(&mut out, &results, stage),
            "stage {} has no section in REPORT.md",
            stage.name
        );
    }
}
