//! `results/REPORT.md`: every table and picture of a results folder, each
//! next to the original report's number (SPEC.md) and the difference, the
//! targets, and the wall time of each stage. Made from the CSV files only, so
//! it can be regenerated without retraining.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::run::{self, RunState, RunSummary};
use crate::search::{self, LambdaStats, TableRow};
use crate::{io, stats, Result};

/// File name of the report inside the results folder.
pub const REPORT: &str = "REPORT.md";
/// File name of the stage times inside the results folder.
pub const STAGE_TIMES: &str = "stage-times.csv";

/// The original report's numbers (SPEC.md, "Experiments and the report's numbers").
pub mod reference {
    /// clr-1cycle ("figure 2") test accuracy, "about 0.46".
    pub const CLR_1CYCLE_TEST: f64 = 0.46;
    /// clr-3cycles ("figure 3") test accuracy, "about 0.47".
    pub const CLR_3CYCLES_TEST: f64 = 0.47;
    /// Coarse search ("table 1") best validation accuracy.
    pub const COARSE_BEST_VALIDATION: f64 = 0.5000;
    /// The lambda that gave it.
    pub const COARSE_BEST_LAMBDA: f64 = 0.007257;
    /// Coarse search table: (lambda, validation accuracy), best first.
    pub const COARSE_TABLE: [(f64, f64); 10] = [
        (0.007257, 0.5000),
        (0.003833, 0.4954),
        (0.002577, 0.4878),
        (0.001568, 0.4706),
        (0.001512, 0.4672),
        (0.000342, 0.4650),
        (0.000495, 0.4508),
        (0.000563, 0.4470),
        (0.036906, 0.4452),
        (0.071557, 0.4004),
    ];
    /// Fine search ("table 2") best validation accuracy.
    pub const FINE_BEST_VALIDATION: f64 = 0.5162;
    /// The lambda that gave it.
    pub const FINE_BEST_LAMBDA: f64 = 0.0065;
    /// Fine search table: (lambda, validation accuracy), best first.
    pub const FINE_TABLE: [(f64, f64); 6] = [
        (0.0065, 0.5162),
        (0.0060, 0.5150),
        (0.0075, 0.5130),
        (0.0080, 0.5116),
        (0.0070, 0.5104),
        (0.0085, 0.5090),
    ];
    /// Final training ("figure 4") test accuracy.
    pub const FINAL_TEST: f64 = 0.5063;
}

/// Targets of issue 5 for this reimplementation.
pub mod target {
    /// Best validation accuracy of the coarse and of the fine search, at least.
    pub const SEARCH_BEST_VALIDATION: f64 = 0.505;
    /// Mean final test accuracy over seeds, at least.
    pub const FINAL_TEST_MEAN: f64 = 0.515;
    /// Training stages (clr-1cycle through final-train), seconds, at most.
    pub const TRAINING_SECONDS: f64 = 90.0;
    /// The whole `reproduce`, seconds, at most.
    pub const TOTAL_SECONDS: f64 = 180.0;
}

/// The stages whose time counts as "training".
pub const TRAINING_STAGES: [&str; 5] = [
    "clr-1cycle",
    "clr-3cycles",
    "coarse-search",
    "fine-search",
    "final-train",
];

/// One row of `stage-times.csv`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageTime {
    /// Stage name (`data`, `gradcheck`, `sanity`, `clr-1cycle`, ...).
    pub stage: String,
    /// Wall seconds.
    pub seconds: f64,
    /// `ok`, or `failed: <message>`.
    pub status: String,
}

/// Read a CSV file as a markdown table (all columns as written); a long file
/// shows its first `head` and last `tail` rows with a marker between.
fn csv_as_markdown_rows(path: &Path, head: usize, tail: usize) -> Option<String> {
    let mut reader = csv::Reader::from_path(path).ok()?;
    let header: Vec<String> = reader.headers().ok()?.iter().map(str::to_string).collect();
    let records: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>().ok()?;
    let mut out = format!(
        "| {} |\n|{}\n",
        header.join(" | "),
        "---|".repeat(header.len())
    );
    let line =
        |r: &csv::StringRecord| format!("| {} |\n", r.iter().collect::<Vec<_>>().join(" | "));
    if records.len() <= head + tail + 1 {
        records.iter().for_each(|r| out.push_str(&line(r)));
    } else {
        records[..head].iter().for_each(|r| out.push_str(&line(r)));
        let n_skipped = records.len() - head - tail;
        let _ = writeln!(
            out,
            "| ({n_skipped} rows) |{}",
            " |".repeat(header.len() - 1)
        );
        records[records.len() - tail..]
            .iter()
            .for_each(|r| out.push_str(&line(r)));
    }
    Some(out)
}

/// Read a whole CSV file as a markdown table.
fn csv_as_markdown(path: &Path) -> Option<String> {
    csv_as_markdown_rows(path, usize::MAX / 4, 0)
}

fn fmt4(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{v:.4}"))
}

fn diff(ours: Option<f64>, theirs: f64) -> String {
    ours.map_or("-".into(), |v| format!("{:+.4}", v - theirs))
}

fn check(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "met",
        Some(false) => "**NOT met**",
        None => "not run",
    }
}

/// Relative path for markdown links, `/`-separated.
fn rel(path: &Path) -> String {
    path.to_string_lossy().replace('\\', "/")
}

fn read_table(results_dir: &Path, name: &str) -> Option<Vec<TableRow>> {
    io::read_csv(&results_dir.join(name).join(search::files::TABLE)).ok()
}

fn read_lambdas(results_dir: &Path, name: &str) -> Option<Vec<LambdaStats>> {
    io::read_csv(&results_dir.join(name).join(search::files::LAMBDAS)).ok()
}

fn picture(out: &mut String, results_dir: &Path, path: &Path, alt: &str) {
    if results_dir.join(path).is_file() {
        let _ = writeln!(out, "![{alt}]({})\n", rel(path));
    } else {
        let _ = writeln!(out, "(picture {} missing)\n", rel(path));
    }
}

/// Write `<results_dir>/REPORT.md` from the CSV files and pictures there
/// (and `stage-times.csv`, when present). Missing stages are marked "not run".
pub fn write_report(results_dir: &Path) -> Result<PathBuf> {
    let mut out = String::new();
    let stages: Vec<StageTime> = io::read_csv(&results_dir.join(STAGE_TIMES)).unwrap_or_default();
    let clr1 = run::read_summary(&results_dir.join("clr-1cycle"))
        .ok()
        .flatten();
    let clr3 = run::read_summary(&results_dir.join("clr-3cycles"))
        .ok()
        .flatten();
    let coarse = read_table(results_dir, "coarse-search");
    let fine = read_table(results_dir, "fine-search");
    let final_rows = read_table(results_dir, "final-train");
    let final_stats = read_lambdas(results_dir, "final-train");
    let best_val = |rows: &Option<Vec<TableRow>>| {
        rows.as_ref()
            .and_then(|r| r.first())
            .and_then(|r| r.validation_accuracy.map(|a| (a, r.lambda)))
    };
    let coarse_best = best_val(&coarse);
    let fine_best = best_val(&fine);
    let final_best = final_stats.as_ref().and_then(|s| s.first().cloned());
    let final_test = final_best.as_ref().and_then(|s| s.test_accuracy_mean);

    let _ = writeln!(out, "# cifar-clr: reproduction of the report\n");
    let _ = writeln!(
        out,
        "Made by `cargo xtask reproduce` (or `cargo xtask plot` + report) from the CSV files in \
         this folder. \"Report\" is the original report (SPEC.md); the difference is ours minus \
         the report's.\n"
    );
    if let Some(prov) = run::read_provenance(&results_dir.join("clr-1cycle")) {
        let _ = writeln!(
            out,
            "Git revision `{}`, data `{}` ({}).\n",
            prov.git_revision, prov.data_dir, prov.data_fingerprint
        );
    }

    let _ = writeln!(out, "## Summary\n");
    let _ = writeln!(out, "| experiment | report | ours | difference | target |");
    let _ = writeln!(out, "|---|---|---|---|---|");
    let _ = writeln!(
        out,
        "| clr-1cycle (figure 2), test accuracy | {:.2} | {} | {} | |",
        reference::CLR_1CYCLE_TEST,
        fmt4(clr1.as_ref().and_then(|s| s.test_accuracy)),
        diff(
            clr1.as_ref().and_then(|s| s.test_accuracy),
            reference::CLR_1CYCLE_TEST
        )
    );
    let _ = writeln!(
        out,
        "| clr-3cycles (figure 3), test accuracy | {:.2} | {} | {} | |",
        reference::CLR_3CYCLES_TEST,
        fmt4(clr3.as_ref().and_then(|s| s.test_accuracy)),
        diff(
            clr3.as_ref().and_then(|s| s.test_accuracy),
            reference::CLR_3CYCLES_TEST
        )
    );
    for (label, best, theirs, their_lambda) in [
        (
            "coarse search (table 1), best validation accuracy",
            coarse_best,
            reference::COARSE_BEST_VALIDATION,
            reference::COARSE_BEST_LAMBDA,
        ),
        (
            "fine search (table 2), best validation accuracy",
            fine_best,
            reference::FINE_BEST_VALIDATION,
            reference::FINE_BEST_LAMBDA,
        ),
    ] {
        let _ = writeln!(
            out,
            "| {label} | {theirs:.4} (lambda {their_lambda}) | {} | {} | >= {} {} |",
            best.map_or("-".into(), |(a, l)| format!("{a:.4} (lambda {l:.6})")),
            diff(best.map(|b| b.0), theirs),
            target::SEARCH_BEST_VALIDATION,
            check(best.map(|b| b.0 >= target::SEARCH_BEST_VALIDATION))
        );
    }
    let _ = writeln!(
        out,
        "| final training (figure 4), test accuracy, mean ± std over seeds | {:.4} | {} | {} | >= {} {} |",
        reference::FINAL_TEST,
        final_best.as_ref().map_or("-".into(), |s| format!(
            "{} ± {} (n = {}, lambda {:.6})",
            fmt4(s.test_accuracy_mean),
            fmt4(s.test_accuracy_std),
            s.n_done,
            s.lambda
        )),
        diff(final_test, reference::FINAL_TEST),
        target::FINAL_TEST_MEAN,
        check(final_test.map(|t| t >= target::FINAL_TEST_MEAN))
    );
    out.push('\n');

    let _ = writeln!(out, "## Wall time per stage\n");
    if stages.is_empty() {
        let _ = writeln!(
            out,
            "(no `{STAGE_TIMES}`: stage times are recorded by `cargo xtask reproduce`)\n"
        );
    } else {
        let _ = writeln!(out, "| stage | seconds | status |\n|---|---|---|");
        for s in &stages {
            let _ = writeln!(out, "| {} | {:.1} | {} |", s.stage, s.seconds, s.status);
        }
        let training: f64 = stages
            .iter()
            .filter(|s| TRAINING_STAGES.contains(&s.stage.as_str()))
            .map(|s| s.seconds)
            .sum();
        let total: f64 = stages.iter().map(|s| s.seconds).sum();
        // Reused search trials make a time that says nothing about the targets.
        let reused = stages.iter().any(|s| s.status.contains("reused"));
        let verdict = |ok: bool| {
            if reused {
                "not comparable: trials were reused (run with --fresh)"
            } else {
                check(Some(ok))
            }
        };
        let _ = writeln!(
            out,
            "| **training stages** (clr-1cycle .. final-train) | **{training:.1}** | target <= {} s: {} |",
            target::TRAINING_SECONDS,
            verdict(training <= target::TRAINING_SECONDS)
        );
        let _ = writeln!(
            out,
            "| **all stages** | **{total:.1}** | target <= {} s: {} |\n",
            target::TOTAL_SECONDS,
            verdict(total <= target::TOTAL_SECONDS)
        );
    }

    let _ = writeln!(out, "## Gradient check\n");
    let _ = writeln!(
        out,
        "Report: relative errors of 1e-6 .. 1e-7 (max over each parameter). Ours:\n"
    );
    match csv_as_markdown(&results_dir.join("gradcheck").join("gradcheck.csv")) {
        Some(table) => out.push_str(&table),
        None => out.push_str("(not run: no `gradcheck/gradcheck.csv`)\n"),
    }
    out.push('\n');

    let _ = writeln!(out, "## Sanity check\n");
    let _ = writeln!(
        out,
        "Report: 100 images, lambda 0, ~200 epochs reach a near-zero training loss.\n"
    );
    sanity_section(&mut out, results_dir);

    for (name, summary, figure, theirs) in [
        ("clr-1cycle", &clr1, "figure 2", reference::CLR_1CYCLE_TEST),
        (
            "clr-3cycles",
            &clr3,
            "figure 3",
            reference::CLR_3CYCLES_TEST,
        ),
    ] {
        let _ = writeln!(out, "## {name} (the report's {figure})\n");
        match summary {
            Some(s) => run_section(&mut out, s, theirs),
            None => {
                let _ = writeln!(out, "(not run)\n");
            }
        }
        picture(
            &mut out,
            results_dir,
            &Path::new(name).join(run::files::CURVES_SVG),
            name,
        );
    }

    for (name, rows, label, theirs) in [
        (
            "coarse-search",
            &coarse,
            "table 1",
            &reference::COARSE_TABLE[..],
        ),
        ("fine-search", &fine, "table 2", &reference::FINE_TABLE[..]),
    ] {
        let _ = writeln!(out, "## {name} (the report's {label})\n");
        match rows {
            Some(rows) => search_section(&mut out, rows, theirs),
            None => {
                let _ = writeln!(out, "(not run)\n");
            }
        }
        if let (Some(fine_rows), Some((_, coarse_lambda)), "fine-search") =
            (rows, coarse_best, name)
        {
            grid_note(&mut out, fine_rows, coarse_lambda);
        }
        picture(
            &mut out,
            results_dir,
            &Path::new(name).join(search::files::ACCURACY_SVG),
            name,
        );
    }

    let _ = writeln!(out, "## final-train (the report's figure 4)\n");
    match (&final_rows, &final_best) {
        (Some(rows), Some(stats)) => {
            let _ = writeln!(
                out,
                "lambda {:.6}; test accuracy over {} seed(s): mean {} ± {} (sample std); \
                 report {:.4}, difference {}.\n",
                stats.lambda,
                stats.n_done,
                fmt4(stats.test_accuracy_mean),
                fmt4(stats.test_accuracy_std),
                reference::FINAL_TEST,
                diff(stats.test_accuracy_mean, reference::FINAL_TEST)
            );
            let _ = writeln!(
                out,
                "| trial | seed | lambda | state | validation accuracy | test accuracy | test - report | seconds |\n|---|---|---|---|---|---|---|---|"
            );
            let mut rows = rows.clone();
            rows.sort_by_key(|r| r.trial);
            for r in &rows {
                let _ = writeln!(
                    out,
                    "| {} | {} | {:.6} | {} | {} | {} | {} | {:.1} |",
                    r.trial,
                    r.seed,
                    r.lambda,
                    r.state,
                    fmt4(r.validation_accuracy),
                    fmt4(r.test_accuracy),
                    diff(r.test_accuracy, reference::FINAL_TEST),
                    r.wall_seconds
                );
            }
            out.push('\n');
            if let Some(first) = rows.first() {
                picture(
                    &mut out,
                    results_dir,
                    &search::trial_dir(Path::new("final-train"), first.trial)
                        .join(run::files::CURVES_SVG),
                    "final-train",
                );
            }
        }
        _ => {
            let _ = writeln!(out, "(not run)\n");
        }
    }

    noise_section(&mut out, &coarse, &fine, &final_rows);
    lr_range_section(&mut out, results_dir);
    // The ablation of `reproduce --beyond`, when it has run in this folder.
    if let Ok(beyond) = std::fs::read_to_string(results_dir.join(crate::beyond::SECTION)) {
        out.push_str(&beyond);
        out.push('\n');
        picture(&mut out, results_dir, Path::new("ablation.svg"), "ablation");
    }

    let path = results_dir.join(REPORT);
    io::write_atomic(&path, out.as_bytes())?;
    Ok(path)
}

/// A table's finished rows with a validation accuracy, best first.
fn ranked(rows: &[TableRow]) -> Vec<(f64, f64, u64)> {
    let mut done: Vec<(f64, f64, u64)> = rows
        .iter()
        .filter(|r| r.state == RunState::Done)
        .filter_map(|r| r.validation_accuracy.map(|a| (r.lambda, a, r.seed)))
        .collect();
    done.sort_by(|a, b| b.1.total_cmp(&a.1));
    done
}

/// "## Signal or seed noise?": whether each search's best lambda beats the
/// runner-up and its neighbours (next lower and higher lambda) by more than
/// the spread between training seeds. With several seeds per lambda, a paired
/// t-test over the shared seeds; with one, the margin against the seed noise
/// measured by final-train (several seeds at one lambda): two single runs
/// differ by `s * sqrt(2)` on average, and a margin under twice that is noise.
fn noise_section(
    out: &mut String,
    coarse: &Option<Vec<TableRow>>,
    fine: &Option<Vec<TableRow>>,
    final_rows: &Option<Vec<TableRow>>,
) {
    let _ = writeln!(out, "## Signal or seed noise?\n");
    let final_val: Vec<f64> = final_rows
        .iter()
        .flatten()
        .filter(|r| r.state == RunState::Done)
        .filter_map(|r| r.validation_accuracy)
        .collect();
    let (_, seed_std) = stats::mean_std(&final_val);
    match seed_std {
        Some(s) => {
            let _ = writeln!(
                out,
                "Seed noise: final-train's {} seeds at one lambda have a validation accuracy \
                 std of {s:.4} (on its 1000 validation images; on the searches' 5000 the spread \
                 is somewhat smaller, so this is a generous yardstick). A difference between \
                 two single runs has a std of {:.4}; below twice that it is not signal.\n",
                final_val.len(),
                s * std::f64::consts::SQRT_2
            );
        }
        None => {
            let _ = writeln!(
                out,
                "(no final-train with 2 or more seeds: no noise estimate)\n"
            );
        }
    }
    let _ = writeln!(
        out,
        "| search | best lambda | compared with | its lambda | margin | test | verdict |\n|---|---|---|---|---|---|---|"
    );
    for (name, rows) in [("coarse-search", coarse), ("fine-search", fine)] {
        let Some(rows) = rows else { continue };
        for line in noise_rows(rows, seed_std) {
            let _ = writeln!(out, "| {name} | {line} |");
        }
    }
    out.push('\n');
}

/// The comparison rows of one search (see [`noise_section`]).
fn noise_rows(rows: &[TableRow], seed_std: Option<f64>) -> Vec<String> {
    let done = ranked(rows);
    let Some(&(best_lambda, _, _)) = done.first() else {
        return vec!["- | - | - | - | - | no finished trial".to_string()];
    };
    let per_lambda = |lambda: f64| -> Vec<(u64, f64)> {
        let mut v: Vec<(u64, f64)> = done
            .iter()
            .filter(|r| r.0 == lambda)
            .map(|r| (r.2, r.1))
            .collect();
        v.sort_by_key(|r| r.0);
        v
    };
    let mut lambdas: Vec<f64> = done.iter().map(|r| r.0).collect();
    lambdas.sort_by(f64::total_cmp);
    lambdas.dedup();
    let mean = |l: f64| {
        let v = per_lambda(l);
        v.iter().map(|r| r.1).sum::<f64>() / v.len() as f64
    };
    // The best lambda by mean over its seeds, and who it is compared with.
    let best = lambdas
        .iter()
        .copied()
        .max_by(|a, b| mean(*a).total_cmp(&mean(*b)))
        .unwrap_or(best_lambda);
    let runner_up = lambdas
        .iter()
        .copied()
        .filter(|l| *l != best)
        .max_by(|a, b| mean(*a).total_cmp(&mean(*b)));
    let i = lambdas.iter().position(|l| *l == best).unwrap_or(0);
    let mut others: Vec<(&str, f64)> = Vec::new();
    if let Some(r) = runner_up {
        others.push(("runner-up", r));
    }
    if i > 0 {
        others.push(("lower neighbour", lambdas[i - 1]));
    }
    if i + 1 < lambdas.len() {
        others.push(("higher neighbour", lambdas[i + 1]));
    }
    others
        .into_iter()
        .map(|(what, other)| {
            let a = per_lambda(best);
            let b = per_lambda(other);
            let margin = mean(best) - mean(other);
            let shared: Vec<(f64, f64)> = a
                .iter()
                .filter_map(|(seed, x)| b.iter().find(|(s, _)| s == seed).map(|(_, y)| (*x, *y)))
                .collect();
            let (test, verdict) = if shared.len() >= 2 {
                let xs: Vec<f64> = shared.iter().map(|p| p.0).collect();
                let ys: Vec<f64> = shared.iter().map(|p| p.1).collect();
                match stats::paired_t_test(&xs, &ys) {
                    Some(t) => (
                        format!("paired t over {} seeds: p = {:.3}", shared.len(), t.p_value),
                        if t.significant(0.05) {
                            "beyond seed noise"
                        } else {
                            "within seed noise"
                        },
                    ),
                    None => ("paired t: no spread".to_string(), "-"),
                }
            } else {
                match seed_std {
                    Some(s) => {
                        let z = margin / (s * std::f64::consts::SQRT_2);
                        (
                            format!("one seed each: margin / (s sqrt 2) = {z:.2}"),
                            if z >= 2.0 {
                                "beyond seed noise"
                            } else {
                                "within seed noise"
                            },
                        )
                    }
                    None => ("one seed each, no noise estimate".to_string(), "-"),
                }
            };
            format!("{best:.6} | {what} | {other:.6} | {margin:+.4} | {test} | {verdict}")
        })
        .collect()
}

/// "## Learning-rate range test": the suggestion of `cargo xtask
/// lr-range-test` on the report's setting beside the report's eta_min / eta_max.
fn lr_range_section(out: &mut String, results_dir: &Path) {
    let _ = writeln!(
        out,
        "## Learning-rate range test on the report's setting (Smith 2017, section 3.3)\n"
    );
    let folder = crate::lr_range::folder(Path::new(""), "clr-1cycle");
    let suggestion: Option<crate::lr_range::Suggestion> = io::read_csv(
        &results_dir
            .join(&folder)
            .join(crate::lr_range::files::SUGGESTION),
    )
    .ok()
    .and_then(|rows: Vec<crate::lr_range::Suggestion>| rows.into_iter().next());
    match suggestion {
        Some(s) => {
            let _ = writeln!(
                out,
                "| | report | range test |\n|---|---|---|\n| eta_min | 1e-5 | {:.1e} |\n\
                 | eta_max | 1e-1 | {:.1e} (Smith's eta_max / 4: {:.1e}) |\n\n\
                 Peak validation accuracy during the test {:.4}{}. Rule: {}.\n",
                s.eta_min,
                s.eta_max,
                s.eta_max_quarter,
                s.peak_validation_accuracy,
                if s.stopped_early {
                    "; the test stopped early, when the loss exploded"
                } else {
                    ""
                },
                s.rule
            );
            picture(
                out,
                results_dir,
                &folder.join(crate::lr_range::files::SVG),
                "lr range test",
            );
        }
        None => {
            let _ = writeln!(
                out,
                "(not run: `cargo xtask lr-range-test experiments/clr-1cycle.toml`)\n"
            );
        }
    }
}

/// Say where the fine grid lies relative to the coarse best, when it does not
/// bracket it (a linear step near zero cannot).
fn grid_note(out: &mut String, fine_rows: &[TableRow], coarse_lambda: f64) {
    let lo = fine_rows
        .iter()
        .map(|r| r.lambda)
        .fold(f64::INFINITY, f64::min);
    let hi = fine_rows
        .iter()
        .map(|r| r.lambda)
        .fold(f64::NEG_INFINITY, f64::max);
    if coarse_lambda < lo || coarse_lambda > hi {
        let _ = writeln!(
            out,
            "Note: the coarse best lambda {coarse_lambda:.6} lies outside this grid \
             ({lo:.6} .. {hi:.6}): the grid's multiples of its step stay positive, so near \
             zero it cannot centre on the coarse best.\n"
        );
    }
}

fn run_section(out: &mut String, s: &RunSummary, theirs: f64) {
    let _ = writeln!(
        out,
        "| split | accuracy | cost | loss |\n|---|---|---|---|\n\
         | train | {} | {} | {} |\n| validation | {} | {} | {} |\n| test | {} | {} | {} |\n",
        fmt4(s.train_accuracy),
        fmt4(s.train_cost),
        fmt4(s.train_loss),
        fmt4(s.validation_accuracy),
        fmt4(s.validation_cost),
        fmt4(s.validation_loss),
        fmt4(s.test_accuracy),
        fmt4(s.test_cost),
        fmt4(s.test_loss)
    );
    let _ = writeln!(
        out,
        "Test accuracy {} against the report's about {theirs:.2} (difference {}); lambda {}, \
         seed {}, {} steps, {:.1} s.\n",
        fmt4(s.test_accuracy),
        diff(s.test_accuracy, theirs),
        s.lambda,
        s.seed,
        s.n_steps,
        s.wall_seconds
    );
}

fn search_section(out: &mut String, rows: &[TableRow], theirs: &[(f64, f64)]) {
    let _ = writeln!(
        out,
        "Ours (best first) beside the report's table (best first, same rank):\n"
    );
    let _ = writeln!(
        out,
        "| rank | lambda | validation accuracy | train accuracy | state | seconds | report's lambda | report's validation accuracy |\n|---|---|---|---|---|---|---|---|"
    );
    for i in 0..rows.len().max(theirs.len()) {
        let ours = rows.get(i).map_or("| | | | | |".to_string(), |r| {
            format!(
                "| {:.6} | {} | {} | {} | {:.1} |",
                r.lambda,
                fmt4(r.validation_accuracy),
                fmt4(r.train_accuracy),
                r.state,
                r.wall_seconds
            )
        });
        let report = theirs
            .get(i)
            .map_or(" | |".to_string(), |(l, a)| format!(" {l} | {a:.4} |"));
        let _ = writeln!(out, "| {} {ours}{report}", i + 1);
    }
    out.push('\n');
    if let (Some(best), Some(their_best)) = (rows.first(), theirs.first()) {
        if best.state == RunState::Done {
            let _ = writeln!(
                out,
                "Best: ours {} at lambda {:.6}, report {:.4} at lambda {}: difference {}.\n",
                fmt4(best.validation_accuracy),
                best.lambda,
                their_best.1,
                their_best.0,
                diff(best.validation_accuracy, their_best.1)
            );
        }
    }
}

fn sanity_section(out: &mut String, results_dir: &Path) {
    let dir = results_dir.join("sanity");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        out.push_str("(not run: no `sanity/` folder)\n\n");
        return;
    };
    let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    for path in files {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let name = name.unwrap_or_default();
        if name.ends_with(".csv") {
            if let Some(table) = csv_as_markdown_rows(&path, 2, 2) {
                let _ = writeln!(out, "`sanity/{name}` (first and last rows):\n\n{table}");
            }
        } else if name.ends_with(".svg") {
            let _ = writeln!(out, "![sanity](sanity/{name})\n");
        }
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::{lambda_stats, sort_table, Trial};

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
            "0.5102 (lambda 0.007200) | +0.0102 | >= 0.505 met",
            "diverged",
            // Fine best 0.5170 vs 0.5162.
            "0.5170 (lambda 0.006500) | +0.0008",
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
    fn report_of_an_empty_folder_says_not_run() {
        let dir = tempfile::tempdir().unwrap();
        let text = std::fs::read_to_string(write_report(dir.path()).unwrap()).unwrap();
        assert!(text.contains("| - | - | >= 0.505 not run |"), "{text}");
        assert!(text.matches("(not run)").count() >= 5, "{text}");
    }
}
