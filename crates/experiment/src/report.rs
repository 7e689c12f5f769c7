//! `results/REPORT.md`: every table and picture of a results folder, each
//! next to the original report's number (SPEC.md) and the difference, the
//! targets, and the wall time of each stage. Made from the CSV files only, so
//! it can be regenerated without retraining.
//!
//! Written section by section, one function each: the summary and the stage
//! times, then one section per stage of [`STAGES`] (the list `reproduce`
//! runs), then the ablation of `reproduce --beyond` when it has run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::records::run::RunSummary;
use crate::records::search::{self, LambdaStats, TableRow};
use crate::records::stages::{Stage, Work, STAGES};
use crate::{io, run, Result};

mod checks;
mod final_train;
mod lr_range;
mod markdown;
mod noise;
mod numbers;
mod runs;
mod searches;
mod summary;
#[cfg(test)]
mod tests;
mod times;

pub use crate::records::stages::{StageTime, REPORT, STAGE_TIMES};
pub use numbers::{reference, target};

/// Write `<results_dir>/REPORT.md` from the CSV files and pictures there
/// (and `stage-times.csv`, when present). Missing stages are marked "not run".
pub fn write_report(results_dir: &Path) -> Result<PathBuf> {
    let results = Results::read(results_dir);
    let mut out = String::new();
    summary::header(&mut out, &results);
    summary::section(&mut out, &results);
    times::section(&mut out, &results);
    for stage in &STAGES {
        stage_section(&mut out, &results, stage);
    }
    beyond_section(&mut out, results_dir);
    let path = results_dir.join(REPORT);
    io::write_atomic(&path, out.as_bytes())?;
    Ok(path)
}

/// The section of one stage, beside the part of the original report it redoes.
/// `false` for a stage the report has no section for.
fn stage_section(out: &mut String, results: &Results, stage: &Stage) -> bool {
    use numbers::reference::*;
    match (stage.work, stage.name) {
        (Work::Data, _) => {}
        (Work::Gradcheck, _) => checks::gradcheck(out, results.dir),
        (Work::Sanity, _) => checks::sanity(out, results.dir),
        (Work::Train, "clr-1cycle") => {
            runs::section(out, results, stage.name, "figure 2", CLR_1CYCLE_TEST)
        }
        (Work::Train, "clr-3cycles") => {
            runs::section(out, results, stage.name, "figure 3", CLR_3CYCLES_TEST)
        }
        (Work::Search, "coarse-search") => {
            searches::section(out, results, stage.name, "table 1", &COARSE_TABLE, None)
        }
        (Work::Search, "fine-search") => searches::section(
            out,
            results,
            stage.name,
            "table 2",
            &FINE_TABLE,
            Some("coarse-search"),
        ),
        (Work::Search, "final-train") => {
            final_train::section(out, results);
            noise::section(out, results);
        }
        (Work::LrRangeTest { config }, _) => lr_range::section(out, results.dir, config),
        _ => return false,
    }
    true
}

/// The ablation of `reproduce --beyond`, when it has run in this folder.
fn beyond_section(out: &mut String, results_dir: &Path) {
    if let Ok(beyond) = std::fs::read_to_string(results_dir.join(crate::beyond::SECTION)) {
        out.push_str(&beyond);
        out.push('\n');
        markdown::picture(out, results_dir, Path::new("ablation.svg"), "ablation");
    }
}

/// The files of a results folder the sections read, each read once; a file
/// that is missing or unreadable is `None` (its section says "not run").
struct Results<'a> {
    /// The results folder.
    dir: &'a Path,
    /// `stage-times.csv` (empty when absent).
    times: Vec<StageTime>,
    /// The summary of each single-run stage, by stage name.
    runs: BTreeMap<&'static str, RunSummary>,
    /// The table of each search stage, by stage name.
    tables: BTreeMap<&'static str, Vec<TableRow>>,
    /// final-train's per-lambda statistics.
    final_stats: Option<Vec<LambdaStats>>,
}

impl<'a> Results<'a> {
    fn read(dir: &'a Path) -> Self {
        let mut runs = BTreeMap::new();
        let mut tables = BTreeMap::new();
        for stage in &STAGES {
            let folder = dir.join(stage.name);
            match stage.work {
                Work::Train => {
                    if let Ok(Some(s)) = run::read_summary(&folder) {
                        runs.insert(stage.name, s);
                    }
                }
                Work::Search => {
                    if let Ok(rows) = io::read_csv(&folder.join(search::files::TABLE)) {
                        tables.insert(stage.name, rows);
                    }
                }
                _ => {}
            }
        }
        let final_stats = io::read_csv(&dir.join("final-train").join(search::files::LAMBDAS)).ok();
        Self {
            dir,
            times: io::read_csv(&dir.join(STAGE_TIMES)).unwrap_or_default(),
            runs,
            tables,
            final_stats,
        }
    }

    /// The summary of the single-run stage `name`.
    fn run(&self, name: &str) -> Option<&RunSummary> {
        self.runs.get(name)
    }

    /// The table of the search stage `name`, best first.
    fn table(&self, name: &str) -> Option<&[TableRow]> {
        self.tables.get(name).map(Vec::as_slice)
    }

    /// The best point of the search `name`: the highest mean validation
    /// accuracy over its seeds, as the search itself chooses (a fine search
    /// centres on it), not the luckiest single trial.
    fn best(&self, name: &str) -> Option<LambdaStats> {
        self.table(name)
            .and_then(|rows| search::lambda_stats(rows).into_iter().next())
            .filter(|s| s.validation_accuracy_mean.is_some())
    }

    /// final-train's best lambda with its statistics over seeds.
    fn final_best(&self) -> Option<&LambdaStats> {
        self.final_stats.as_ref().and_then(|s| s.first())
    }
}
