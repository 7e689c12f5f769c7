//! `cargo xtask reproduce`: every experiment of the report, in order: data
//! check, gradcheck, sanity, clr-1cycle, clr-3cycles, coarse search, fine
//! search, final training; then `<results-dir>/REPORT.md` with every table and
//! picture beside the original report's numbers and the wall time per stage.
//! The data are loaded once and shared by every stage.

use std::path::{Path, PathBuf};
use std::time::Instant;

use experiment::commands::{self, Options};
use experiment::report::{self, StageTime};

use super::{gradcheck, paths, sanity, train};

/// Command-line flags.
#[derive(clap::Args)]
pub struct Args {
    /// Folder of the experiment configs (default: <root>/experiments).
    #[arg(long)]
    pub experiments: Option<PathBuf>,
    /// Delete earlier results of the training stages first, so every stage
    /// trains (and is timed) from scratch; without it finished search trials
    /// are reused.
    #[arg(long)]
    pub fresh: bool,
    /// Run the "beyond the report" ablation instead (experiments/ablation/*.toml,
    /// resumable): ablation.csv, ablation.svg and BEYOND.md in the results folder.
    #[arg(long)]
    pub beyond: bool,
    #[command(flatten)]
    pub common: train::Common,
}

/// Times each stage and keeps going after a failed stage (a later stage that
/// needs its result fails with a message naming it); `stage-times.csv` is
/// rewritten after every stage.
struct Stages {
    times: Vec<StageTime>,
    path: PathBuf,
}

impl Stages {
    /// Run and time one stage; `f` returns a note for the status (e.g. how
    /// many trials were reused).
    fn run(
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
        experiment::io::write_csv(&self.path, &self.times)?;
        result.map(|_| ())
    }
}

/// Run the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    train::explain_interrupt(train::Work::Reproduce);
    let experiments = args
        .experiments
        .unwrap_or_else(|| paths::project_root().join("experiments"));
    let data = args.common.data_source();
    let opts = args.common.options(&data);
    experiment::io::create_dir(&opts.results_dir)?;
    if args.beyond {
        let rows = experiment::beyond::run(&experiments.join("ablation"), &opts)?;
        print!("{}", experiment::beyond::report_section(&rows));
        let path = report::write_report(&opts.results_dir)?;
        println!(
            "report: {} (with the 'Beyond the report' section)",
            path.display()
        );
        return Ok(());
    }
    if args.fresh {
        for name in report::TRAINING_STAGES {
            let dir = opts.results_dir.join(name);
            if dir.exists() {
                std::fs::remove_dir_all(&dir)
                    .map_err(|e| anyhow::anyhow!("cannot remove {}: {e}", dir.display()))?;
            }
        }
    }
    let mut stages = Stages {
        times: Vec::new(),
        path: opts.results_dir.join(report::STAGE_TIMES),
    };
    let start = Instant::now();

    // Without data nothing else can run: fetch it when there is none at all
    // (as fetch-data does), else stop here with the fix in the message.
    stages.run("data", || {
        args.common.ensure_data()?;
        data.check_present()?;
        data.raw()?;
        data.fingerprint()?;
        Ok(String::new())
    })?;

    let mut failed = Vec::new();
    let mut note = |stage: &str, result: anyhow::Result<()>| {
        if let Err(e) = result {
            eprintln!("{stage} failed: {}", crate::error_text(&e));
            failed.push(stage.to_string());
        }
    };
    let r = stages.run("gradcheck", || {
        gradcheck::run(gradcheck_args(&opts))?;
        Ok(String::new())
    });
    note("gradcheck", r);
    let r = stages.run("sanity", || {
        sanity::run(sanity_args(&opts))?;
        Ok(String::new())
    });
    note("sanity", r);
    for name in ["clr-1cycle", "clr-3cycles"] {
        let path = experiments.join(format!("{name}.toml"));
        let r = stages.run(name, || {
            commands::train(&path, &opts)?;
            Ok(String::new())
        });
        note(name, r);
    }
    // Smith's range test on the report's setting: does it land near the
    // report's eta_min / eta_max? (REPORT.md shows its suggestion.)
    let r = stages.run("lr-range-test", || {
        let config = experiments.join("clr-1cycle.toml");
        experiment::lr_range::command(&config, &Default::default(), &opts)?;
        Ok(String::new())
    });
    note("lr-range-test", r);
    for name in ["coarse-search", "fine-search", "final-train"] {
        let r = stages.run(name, || search(&experiments, name, &opts));
        note(name, r);
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
    Ok(())
}

/// Run one search stage; the note says how many trials were reused.
fn search(experiments: &Path, name: &str, opts: &Options<'_>) -> anyhow::Result<String> {
    let config = commands::load_search(&experiments.join(format!("{name}.toml")), opts.seed, None)?;
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

/// The gradcheck's flags for this data and results folder (its defaults otherwise).
fn gradcheck_args(opts: &Options<'_>) -> gradcheck::Args {
    gradcheck::Args {
        data_dir: Some(opts.data.dir().to_path_buf()),
        results_dir: Some(opts.results_dir.clone()),
        ..Default::default()
    }
}

/// The sanity check's flags for this data and results folder (its defaults otherwise).
fn sanity_args(opts: &Options<'_>) -> sanity::Args {
    sanity::Args {
        data_dir: Some(opts.data.dir().to_path_buf()),
        results_dir: Some(opts.results_dir.clone()),
        ..Default::default()
    }
}
