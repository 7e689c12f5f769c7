//! "## Learning-rate range test on the report's setting": the suggestion
//! of the range test beside the report's eta_min and eta_max.

use std::fmt::Write as _;
use std::path::Path;

use super::markdown::picture;
use crate::io;
use crate::records::lr_range;

/// "## Learning-rate range test": the suggestion of `cargo xtask
/// lr-range-test` on the report's setting (the run config `config`) beside the report's eta_min / eta_max.
pub(super) fn section(out: &mut String, results_dir: &Path, config: &str) {
    let _ = writeln!(
        out,
        "## Learning-rate range test on the report's setting (Smith 2017, section 3.3)\n"
    );
    let folder = lr_range::folder(Path::new(""), config);
    let suggestion: Option<lr_range::Suggestion> =
        io::read_csv(&results_dir.join(&folder).join(lr_range::files::SUGGESTION))
            .ok()
            .and_then(|rows: Vec<lr_range::Suggestion>| rows.into_iter().next());
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
                &folder.join(lr_range::files::SVG),
                "lr range test",
            );
        }
        None => {
            let _ = writeln!(
                out,
                "(not run: `cargo xtask lr-range-test experiments/{config}.toml`)\n"
            );
        }
    }
}
