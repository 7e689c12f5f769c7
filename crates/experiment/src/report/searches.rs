//! The lambda searches ("## coarse-search (the report's table 1)", ...):
//! our table beside the report's and the accuracy-against-lambda picture.

use std::fmt::Write as _;
use std::path::Path;

use super::markdown::{diff, fmt4, picture};
use super::Results;
use crate::records::run::RunState;
use crate::records::search::{self, TableRow};

/// The section of the search stage `name`, which redoes the report's `label`
/// (whose rows, best first, are `theirs`). With `bracket_of`, a note when
/// this search's grid does not bracket that search's best lambda.
pub(super) fn section(
    out: &mut String,
    results: &Results,
    name: &str,
    label: &str,
    theirs: &[(f64, f64)],
    bracket_of: Option<&str>,
) {
    let _ = writeln!(out, "## {name} (the report's {label})\n");
    let rows = results.table(name);
    if let Some(rows) = rows {
        points_table(out, rows);
    }
    match rows {
        Some(rows) => tables(out, rows, theirs),
        None => {
            let _ = writeln!(out, "(not run)\n");
        }
    }
    if let (Some(rows), Some(best)) = (rows, bracket_of.and_then(|b| results.best(b))) {
        grid_note(out, rows, best.lambda);
    }
    picture(
        out,
        results.dir,
        &Path::new(name).join(search::files::ACCURACY_SVG),
        name,
    );
}

/// One row per point (lambda, with its other settings) when some point ran
/// with several seeds: mean ± sample std of the validation accuracy over
/// the finished trials, best mean first (the per-seed trials follow, and
/// stay in the search folder's `table.csv` and `runs/`).
fn points_table(out: &mut String, rows: &[TableRow]) {
    let stats = search::lambda_stats(rows);
    if stats
        .iter()
        .all(|s| s.n_done + s.n_pruned + s.n_diverged < 2)
    {
        return;
    }
    let _ = writeln!(
        out,
        "Per point, over its seeds (every point ran with the same seeds):\n\n| lambda | other settings | validation accuracy, mean ± std | finished | pruned | diverged |\n|---|---|---|---|---|---|"
    );
    for s in &stats {
        let _ = writeln!(
            out,
            "| {:.6} | {} | {} ± {} | {} | {} | {} |",
            s.lambda,
            if s.settings.is_empty() {
                "-"
            } else {
                &s.settings
            },
            fmt4(s.validation_accuracy_mean),
            fmt4(s.validation_accuracy_std),
            s.n_done,
            s.n_pruned,
            s.n_diverged
        );
    }
    out.push('\n');
}

/// Our table beside the report's, rank by rank, and the two best.
fn tables(out: &mut String, rows: &[TableRow], theirs: &[(f64, f64)]) {
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
