//! The checks before any training: "## Gradient check" and "## Sanity check".

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::markdown::{csv_as_markdown, csv_as_markdown_rows};

/// "## Gradient check": `gradcheck/gradcheck.csv` as a table.
pub(super) fn gradcheck(out: &mut String, results_dir: &Path) {
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
}

/// "## Sanity check": the first and last rows of each CSV file of
/// `sanity/`, and its pictures.
pub(super) fn sanity(out: &mut String, results_dir: &Path) {
    let _ = writeln!(out, "## Sanity check\n");
    let _ = writeln!(
        out,
        "Report: 100 images, lambda 0, ~200 epochs reach a near-zero training loss.\n"
    );
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
