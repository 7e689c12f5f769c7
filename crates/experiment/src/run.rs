//! One training run and its folder:
//! `config.toml` (the resolved config: every value, the seed, the data
//! fingerprint, the git revision), `curves.csv`, `weights.safetensors` (with
//! the config in its metadata), `curves.svg`, `curves.png` and, last, `summary.csv`, whose
//! presence marks the run as finished. Every file is written atomically.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use crate::data::{Split, Splits};
use mlp::schedule::ScheduleSpec;
use mlp::train::{Observer, TrainError};
use mlp::Evaluation;

use crate::config::RunConfig;
pub use crate::records::run::{files, CurveRow, RunState, RunSummary};
use crate::{io, plot, ExperimentError, Result};

/// Update steps a schedule runs for.
pub fn n_steps(schedule: &ScheduleSpec) -> u64 {
    schedule.n_steps()
}

/// Train as `config` says on `splits` and write the run folder `dir` (all but
/// `summary.csv`, which [`write_summary`] writes once the caller has recorded
/// what it needs). Runs on the caller's rayon pool.
///
/// The run is built in a hidden staging folder beside `dir` and swapped in
/// once its files are written ([`staging`]): a run stopped at any moment
/// (Ctrl-C, kill -9, an error) leaves `dir` as it was, so a folder never
/// mixes the files of two runs.
///
/// A divergence is not an error here: it gives a summary in state
/// [`RunState::Diverged`] whose message names the step and eta.
pub fn execute(
    splits: &Splits,
    config: &RunConfig,
    dir: &Path,
    observer: &mut dyn Observer,
) -> Result<RunSummary> {
    let stage = staging::begin(dir)?;
    match execute_in(splits, config, &stage, observer) {
        Ok(summary) => {
            staging::swap_in(&stage, dir)?;
            Ok(summary)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&stage);
            Err(e)
        }
    }
}

/// [`execute`] writing straight into `dir` (its staging folder).
fn execute_in(
    splits: &Splits,
    config: &RunConfig,
    dir: &Path,
    observer: &mut dyn Observer,
) -> Result<RunSummary> {
    io::write_toml(&dir.join(files::CONFIG), config)?;

    let t = &config.train;
    let mut summary = RunSummary::empty(
        &config.name,
        RunState::Done,
        t.lambda,
        t.seed,
        n_steps(&t.settings.schedule),
    );
    let start = Instant::now();
    let valid = t.validate().map_err(TrainError::from)?;
    let trained = match mlp::train::train(
        crate::data::as_data(&splits.train),
        crate::data::as_data(&splits.validation),
        &valid,
        observer,
    ) {
        Ok(trained) => trained,
        Err(err @ TrainError::Diverged { .. }) => {
            summary.state = RunState::Diverged;
            summary.message = err.to_string();
            summary.wall_seconds = start.elapsed().as_secs_f64();
            return Ok(summary);
        }
        Err(TrainError::Stopped { step, curve }) => {
            // Pruned: the curve so far and the numbers of its last point
            // (the caller says why in the message); no weights.
            summary.state = RunState::Pruned;
            summary.message = format!("stopped at step {step}");
            if let Some(last) = curve.last() {
                summary.set_final(&last.train, &last.validation);
            }
            summary.wall_seconds = start.elapsed().as_secs_f64();
            let rows: Vec<CurveRow> = curve.iter().map(CurveRow::from).collect();
            io::write_csv(&dir.join(files::CURVES), &rows)?;
            return Ok(summary);
        }
        Err(err) => return Err(err.into()),
    };
    match trained.curve.last() {
        Some(last) if last.step == summary.n_steps => {
            summary.set_final(&last.train, &last.validation)
        }
        _ => {
            let train = evaluate(&trained.model, &splits.train, t.lambda);
            let validation = evaluate(&trained.model, &splits.validation, t.lambda);
            summary.set_final(&train, &validation);
        }
    }
    if config.evaluate_test {
        summary.set_test(&evaluate(&trained.model, &splits.test, t.lambda));
    }
    summary.wall_seconds = start.elapsed().as_secs_f64();

    let rows: Vec<CurveRow> = trained.curve.iter().map(CurveRow::from).collect();
    let curves_path = dir.join(files::CURVES);
    io::write_csv(&curves_path, &rows)?;
    let mut metadata = BTreeMap::new();
    metadata.insert("name".to_string(), config.name.clone());
    metadata.insert(
        "config".to_string(),
        toml::to_string_pretty(config).map_err(|e| ExperimentError::Format {
            path: dir.join(files::WEIGHTS),
            message: e.to_string(),
        })?,
    );
    // Everything needed to use the weights on raw pixels: the input
    // statistics as tensors (`input_mean`, `input_std`), how to apply them,
    // and the config above (how the network was trained).
    metadata.insert(
        "input".to_string(),
        "features = (pixel / 255 - input_mean) / input_std (input_std 0: only centred), \
         3072 per image in CIFAR-10 binary order (1024 red, 1024 green, 1024 blue, row-major)"
            .to_string(),
    );
    mlp::weights::save(
        &dir.join(files::WEIGHTS),
        &trained.model,
        Some(&input_stats(&splits.stats)),
        &metadata,
    )?;
    plot::curves_svg(
        &rows,
        Some(&t.settings.schedule),
        &config.name,
        &dir.join(files::CURVES_SVG),
    )?;
    plot::curves_png(
        &rows,
        Some(&t.settings.schedule),
        &config.name,
        &dir.join(files::CURVES_PNG),
    )?;
    Ok(summary)
}

fn evaluate(model: &mlp::Mlp<f32>, data: &Split, lambda: f64) -> Evaluation {
    model.evaluate_features(&mlp::Features::Rows(data), data.labels(), lambda)
}

/// Building a run folder aside and swapping it in: `.NAME.staging-PID-THREAD`
/// beside `NAME` while the run writes its files, then `NAME` is moved to
/// `.NAME.old-PID-THREAD`, the staging folder renamed to `NAME`, and the old
/// one deleted. Folders of processes that are gone (killed) are removed the
/// next time a run of the same name starts.
pub mod staging {
    use std::path::{Path, PathBuf};

    use crate::{io, ExperimentError, Result};

    /// A fresh, empty staging folder for the run folder `dir` (its parent is
    /// created; dead runs' leftovers of the same name are removed).
    pub fn begin(dir: &Path) -> Result<PathBuf> {
        let (parent, name) = split(dir)?;
        io::create_dir(&parent)?;
        remove_dead(&parent, &name);
        let stage = parent.join(format!(".{name}.staging-{}", owner()));
        if stage.exists() {
            std::fs::remove_dir_all(&stage).map_err(io::io_err(&stage))?;
        }
        io::create_dir(&stage)?;
        Ok(stage)
    }

    /// Replace the run folder `dir` (if any) by the finished staging folder `stage`.
    pub fn swap_in(stage: &Path, dir: &Path) -> Result<()> {
        let (parent, name) = split(dir)?;
        let old = parent.join(format!(".{name}.old-{}", owner()));
        let had_old = dir.exists();
        if had_old {
            std::fs::rename(dir, &old).map_err(io::io_err(dir))?;
        }
        std::fs::rename(stage, dir).map_err(io::io_err(stage))?;
        if had_old {
            std::fs::remove_dir_all(&old).map_err(io::io_err(&old))?;
        }
        Ok(())
    }

    /// `PID-THREAD` of the caller (runs of one process may build side by side).
    fn owner() -> String {
        let thread =
            format!("{:?}", std::thread::current().id()).replace(|c: char| !c.is_ascii_digit(), "");
        format!("{}-{thread}", std::process::id())
    }

    fn split(dir: &Path) -> Result<(PathBuf, String)> {
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned());
        match (dir.parent(), name) {
            (Some(parent), Some(name)) => Ok((parent.to_path_buf(), name)),
            _ => Err(ExperimentError::Format {
                path: dir.to_path_buf(),
                message: "not usable as a run folder (no parent or no name)".into(),
            }),
        }
    }

    /// Remove `.NAME.staging-PID-*` and `.NAME.old-PID-*` in `parent` whose
    /// process is gone (only where `/proc` tells; elsewhere nothing is removed).
    fn remove_dead(parent: &Path, name: &str) {
        if !Path::new("/proc/self").exists() {
            return;
        }
        let Ok(entries) = std::fs::read_dir(parent) else {
            return;
        };
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            let Some(rest) = file_name.to_str().and_then(|n| n.strip_prefix('.')) else {
                continue;
            };
            let Some(rest) = rest.strip_prefix(name).and_then(|r| {
                r.strip_prefix(".staging-")
                    .or_else(|| r.strip_prefix(".old-"))
            }) else {
                continue;
            };
            let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
                continue;
            };
            if !Path::new("/proc").join(pid.to_string()).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// Write `summary.csv` into the run folder `dir`: the mark of a finished run.
pub fn write_summary(dir: &Path, summary: &RunSummary) -> Result<()> {
    io::write_csv(&dir.join(files::SUMMARY), std::slice::from_ref(summary))
}

/// The provenance recorded in the run folder `dir`'s `config.toml`, if any.
pub fn read_provenance(dir: &Path) -> Option<crate::config::Provenance> {
    let text = std::fs::read_to_string(dir.join(files::CONFIG)).ok()?;
    toml::from_str::<RunConfig>(&text).ok()?.provenance
}

/// Read the summary of the run folder `dir`: `Ok(None)` when the run is not finished.
pub fn read_summary(dir: &Path) -> Result<Option<RunSummary>> {
    let path = dir.join(files::SUMMARY);
    if !path.is_file() {
        return Ok(None);
    }
    let mut rows: Vec<RunSummary> = io::read_csv(&path)?;
    match rows.len() {
        1 => Ok(rows.pop()),
        n => Err(ExperimentError::Format {
            path,
            message: format!("expected one row, found {n}"),
        }),
    }
}

/// The statistics the run's inputs were z-scored with, in the form the
/// weights file stores ([`mlp::weights::InputStats`]).
pub fn input_stats(stats: &cifar::FeatureStats) -> mlp::weights::InputStats {
    mlp::weights::InputStats {
        mean: stats.mean.clone(),
        std: stats.std.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_round_trips_with_empty_numbers_and_state() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_summary(dir.path()).unwrap(), None);
        let mut s = RunSummary::empty("x", RunState::Diverged, 0.07, 5, 3600);
        s.message = "training diverged at step 12 (eta 1e-1), cost NaN".into();
        s.wall_seconds = 1.25;
        write_summary(dir.path(), &s).unwrap();
        assert_eq!(read_summary(dir.path()).unwrap(), Some(s.clone()));
        s.state = RunState::Done;
        s.set_test(&Evaluation {
            cost: 1.5,
            loss: 1.4,
            accuracy: 0.5,
        });
        write_summary(dir.path(), &s).unwrap();
        assert_eq!(read_summary(dir.path()).unwrap(), Some(s));
    }

    #[test]
    fn steps_of_a_schedule() {
        let tri = ScheduleSpec::Triangular {
            eta_min: 1e-5,
            eta_max: 0.1,
            n_s: 900,
            n_cycles: 2,
        };
        assert_eq!(n_steps(&tri), 3600);
        let c = ScheduleSpec::Constant {
            eta: 0.01,
            n_steps: 7,
        };
        assert_eq!(n_steps(&c), 7);
    }
}
