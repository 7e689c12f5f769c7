//! "## Wall time per stage": `stage-times.csv` as a table, with the sums
//! over the training stages and over all stages against their targets.

use std::fmt::Write as _;

use super::markdown::check;
use super::numbers::target;
use super::{Results, STAGE_TIMES};
use crate::records::stages::training_stages;

/// The stage times and their sums (or a note that there are none).
pub(super) fn section(out: &mut String, results: &Results) {
    let stages = &results.times;
    let _ = writeln!(out, "## Wall time per stage\n");
    if stages.is_empty() {
        let _ = writeln!(
            out,
            "(no `{STAGE_TIMES}`: stage times are recorded by `cargo xtask reproduce`)\n"
        );
        return;
    }
    let _ = writeln!(out, "| stage | seconds | status |\n|---|---|---|");
    for s in stages {
        let _ = writeln!(out, "| {} | {:.1} | {} |", s.stage, s.seconds, s.status);
    }
    let training: f64 = stages
        .iter()
        .filter(|s| training_stages().any(|name| name == s.stage))
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
