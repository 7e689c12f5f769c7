//! "## final-train (the report's figure 4)": the best lambda trained over
//! several seeds, every seed's test accuracy against the report's.

use std::fmt::Write as _;
use std::path::Path;

use super::markdown::{diff, fmt4, picture};
use super::numbers::reference;
use super::Results;
use crate::records::run;
use crate::records::search;

/// The final training's mean over seeds, one row per seed, and the first
/// seed's learning curves.
pub(super) fn section(out: &mut String, results: &Results) {
    let _ = writeln!(out, "## final-train (the report's figure 4)\n");
    match (results.table("final-train"), results.final_best()) {
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
            let mut rows = rows.to_vec();
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
                    out,
                    results.dir,
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
}
