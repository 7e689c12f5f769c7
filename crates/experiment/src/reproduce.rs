//! `cargo xtask reproduce`: every stage of [`STAGES`] in order (data check,
//! gradcheck, sanity, clr-1cycle, clr-3cycles, coarse search, fine search,
//! final training, the learning-rate range test), each timed into
//! `stage-times.csv`; then `<results-dir>/REPORT.md` with every table and
//! picture beside the original report's numbers and the wall time per stage.
//! The data are loaded once and shared by every stage.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::commands::{self, Options};
use crate::records::stages::{training_stages, Stage, StageTime, Work, STAGES, STAGE_TIMES};
use crate::{io, lr_range, report};

/// Run every stage of [`STAGES`] with `opts`, the training stages from their
/// configs `<experiments>/<name>.toml`, then write the report; returns its
/// path. With `fresh`, the training stages' earlier results are deleted
/// first, so every stage trains (and is timed) from scratch; without it,
/// finished search trials are reused.
///
/// `checks` runs the stages this crate does not run itself (the data check,
/// gradcheck and sanity) and returns a note for the status.
///
/// A failed data stage stops everything (nothing can run without data); any
/// other failed stage is noted, the next one runs (a later stage that needs
/// its result fails with a message naming it), and the error at the end lists
/// the failed stages.
pub fn run(
    experiments: &Path,
    opts: &Options<'_>,
    fresh: bool,
    mut checks: impl FnMut(&Stage) -> anyhow::Result<String>,
) -> anyhow::Result<PathBuf> {
    io::create_dir(&opts.results_dir)?;
    if fresh {
        for name in training_stages() {
            let dir = opts.results_dir.join(name);
            if dir.exists() {
                std::fs::remove_dir_all(&dir)
                    .map_err(|e| anyhow::anyhow!("cannot remove {}: {e}", dir.display()))?;
            }
        }
    }
    let mut clock = Clock {
        times: Vec::new(),
        path: opts.results_dir.join(STAGE_TIMES),
    };
    let start = Instant::now();
    let mut failed = Vec::new();
    for stage in &STAGES {
        let result = clock.time(stage.name, || match stage.work {
            Work::Data | Work::Gradcheck | Work::Sanity => checks(stage),
            Work::Train => {
                commands::train(&config(experiments, stage.name), opts)?;
                Ok(String::new())
            }
            Work::Search => search(experiments, stage.name, opts),
            Work::LrRangeTest { config: name } => {
                lr_range::command(&config(experiments, name), &Default::default(), opts)?;
                Ok(String::new())
            }
        });
        if let Err(e) = result {
            // Without data nothing else can run: stop here with the fix in the message.
            if stage.work == Work::Data {
                return Err(e);
            }
            eprintln!("{} failed: {}", stage.name, crate::error_text(&e));
            failed.push(stage.name);
        }
    }
    let report_path = report::write_report(&opts.results_dir)?;
    println!(
        "report: {} (all stages {:.1} s)",
        report_path.display(),
        start.elapsed().as_secs_f64()
    );
    anyhow::ensure!(
        failed.is_empty(),
        "stage(s) failed: {} (see above and {})",
        failed.join(", "),
        report_path.display()
    );
    Ok(report_path)
}

/// The config of the stage `name`.
fn config(experiments: &Path, name: &str) -> PathBuf {
    experiments.join(format!("{name}.toml"))
}

/// Run one search stage; the note says how many trials were reused.
fn search(experiments: &Path, name: &str, opts: &Options<'_>) -> anyhow::Result<String> {
    let config = commands::load_search(&config(experiments, name), opts.seed, None)?;
    let outcome = commands::search(&config, opts)?;
    let n_reused = outcome.rows.len() - outcome.n_ran;
    Ok(if n_reused > 0 {
        format!(
            "{n_reused} of {} trials reused from an earlier run; --fresh retrains all",
            outcome.rows.len()
        )
    } else {
        String::new()
    })
}

/// Times each stage; `stage-times.csv` is rewritten after every stage.
struct Clock {
    times: Vec<StageTime>,
    path: PathBuf,
}

impl Clock {
    /// Run and time one stage; `f` returns a note for the status (e.g. how
    /// many trials were reused).
    fn time(
        &mut self,
        stage: &str,
        f: impl FnOnce() -> anyhow::Result<String>,
    ) -> anyhow::Result<()> {
        println!("== {stage}");
        let start = Instant::now();
        let result = f();
        let seconds = start.elapsed().as_secs_f64();
        let status = match &result {
            Ok(note) if note.is_empty() => "ok".to_string(),
            Ok(note) => format!("ok ({note})"),
            Err(e) => format!("failed: {}", crate::error_text(e).replace(['\n', '|'], " ")),
        };
        println!("== {stage}: {status} ({seconds:.1} s)");
        self.times.push(StageTime {
            stage: stage.to_string(),
            seconds,
            status,
        });
        io::write_csv(&self.path, &self.times)?;
        result.map(|_| ())
    }
}
