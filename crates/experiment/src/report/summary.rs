//! The head of the report: its title, provenance and the summary table of
//! every headline number beside the report's and the targets.

use std::fmt::Write as _;

use super::markdown::{check, diff, fmt4};
use super::numbers::{reference, target};
use super::Results;
use crate::run;

/// The title, what made the report, and the git revision and data of the runs.
pub(super) fn header(out: &mut String, results: &Results) {
    let _ = writeln!(out, "# cifar-clr: reproduction of the report\n");
    let _ = writeln!(
        out,
        "Made by `cargo xtask reproduce` (or `cargo xtask plot` + report) from the CSV files in \
         this folder. \"Report\" is the original report (SPEC.md); the difference is ours minus \
         the report's.\n"
    );
    if let Some(prov) = run::read_provenance(&results.dir.join("clr-1cycle")) {
        let _ = writeln!(
            out,
            "Git revision `{}`, data `{}` ({}).\n",
            prov.git_revision, prov.data_dir, prov.data_fingerprint
        );
    }
}

/// "## Summary": one row per headline number.
pub(super) fn section(out: &mut String, results: &Results) {
    let clr1 = results.run("clr-1cycle");
    let clr3 = results.run("clr-3cycles");
    let final_best = results.final_best();
    let final_test = final_best.and_then(|s| s.test_accuracy_mean);
    let _ = writeln!(out, "## Summary\n");
    let _ = writeln!(out, "| experiment | report | ours | difference | target |");
    let _ = writeln!(out, "|---|---|---|---|---|");
    let _ = writeln!(
        out,
        "| clr-1cycle (figure 2), test accuracy | {:.2} | {} | {} | |",
        reference::CLR_1CYCLE_TEST,
        fmt4(clr1.and_then(|s| s.test_accuracy)),
        diff(
            clr1.and_then(|s| s.test_accuracy),
            reference::CLR_1CYCLE_TEST
        )
    );
    let _ = writeln!(
        out,
        "| clr-3cycles (figure 3), test accuracy | {:.2} | {} | {} | |",
        reference::CLR_3CYCLES_TEST,
        fmt4(clr3.and_then(|s| s.test_accuracy)),
        diff(
            clr3.and_then(|s| s.test_accuracy),
            reference::CLR_3CYCLES_TEST
        )
    );
    for (label, best, theirs, their_lambda) in [
        (
            "coarse search (table 1), best validation accuracy, mean ± std over seeds",
            results.best("coarse-search"),
            reference::COARSE_BEST_VALIDATION,
            reference::COARSE_BEST_LAMBDA,
        ),
        (
            "fine search (table 2), best validation accuracy, mean ± std over seeds",
            results.best("fine-search"),
            reference::FINE_BEST_VALIDATION,
            reference::FINE_BEST_LAMBDA,
        ),
    ] {
        let mean = best.as_ref().and_then(|b| b.validation_accuracy_mean);
        let _ = writeln!(
            out,
            "| {label} | {theirs:.4} (lambda {their_lambda}) | {} | {} | >= {} {} |",
            best.as_ref().map_or("-".into(), |b| format!(
                "{}{} (n = {}, lambda {:.6})",
                fmt4(b.validation_accuracy_mean),
                b.validation_accuracy_std
                    .map_or(String::new(), |s| format!(" ± {s:.4}")),
                b.n_done,
                b.lambda
            )),
            diff(mean, theirs),
            target::SEARCH_BEST_VALIDATION,
            check(mean.map(|m| m >= target::SEARCH_BEST_VALIDATION))
        );
    }
    let _ = writeln!(
        out,
        "| final training (figure 4), test accuracy, mean ± std over seeds | {:.4} | {} | {} | >= {} {} |",
        reference::FINAL_TEST,
        final_best.map_or("-".into(), |s| format!(
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
}
