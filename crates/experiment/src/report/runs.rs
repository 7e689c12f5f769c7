//! The single-run stages ("## clr-1cycle (the report's figure 2)", ...):
//! final numbers per split and the learning curves.

use std::fmt::Write as _;
use std::path::Path;

use super::markdown::{diff, fmt4, picture};
use super::Results;
use crate::records::run::{self, RunSummary};

/// The section of the single-run stage `name`, which redoes the report's
/// `figure` (whose test accuracy was about `theirs`).
pub(super) fn section(out: &mut String, results: &Results, name: &str, figure: &str, theirs: f64) {
    let _ = writeln!(out, "## {name} (the report's {figure})\n");
    match results.run(name) {
        Some(s) => numbers(out, s, theirs),
        None => {
            let _ = writeln!(out, "(not run)\n");
        }
    }
    picture(
        out,
        results.dir,
        &Path::new(name).join(run::files::CURVES_SVG),
        name,
    );
}

/// The final numbers of one run and its test accuracy against the report's.
fn numbers(out: &mut String, s: &RunSummary, theirs: f64) {
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
