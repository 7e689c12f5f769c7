//! Markdown pieces the sections share: CSV files as tables, numbers with
//! their difference to the report's and a target's verdict, picture links.

use std::fmt::Write as _;
use std::path::Path;

use crate::Result;

/// Read a CSV file as a markdown table (all columns as written); a long file
/// shows its first `head` and last `tail` rows with a marker between.
pub(super) fn csv_as_markdown_rows(path: &Path, head: usize, tail: usize) -> Option<String> {
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
pub(super) fn csv_as_markdown(path: &Path) -> Option<String> {
    csv_as_markdown_rows(path, usize::MAX / 4, 0)
}

/// `x` with 4 decimals, `-` when absent.
pub(super) fn fmt4(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{v:.4}"))
}

/// Ours minus theirs, signed, 4 decimals; `-` when ours is absent.
pub(super) fn diff(ours: Option<f64>, theirs: f64) -> String {
    ours.map_or("-".into(), |v| format!("{:+.4}", v - theirs))
}

/// A target's verdict: met, not met, or not run (no number).
pub(super) fn check(ok: Option<bool>) -> &'static str {
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

/// A markdown picture link to `path` (relative to the results folder), or
/// a note that the picture is missing.
pub(super) fn picture(out: &mut String, results_dir: &Path, path: &Path, alt: &str) {
    if results_dir.join(path).is_file() {
        let _ = writeln!(out, "![{alt}]({})\n", rel(path));
    } else {
        let _ = writeln!(out, "(picture {} missing)\n", rel(path));
    }
}
