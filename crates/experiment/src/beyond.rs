//! "Beyond the report": the ablation from the report's baseline to the final
//! recipe, one ingredient at a time. Each step is a search config in
//! `experiments/ablation/` (file names sort in step order), run as a
//! resumable search (finished seeds are reused); the summary is
//! `<results-dir>/ablation.csv`, a picture `ablation.svg` and a
//! "Beyond the report" section written to `<results-dir>/BEYOND.md`.

use std::path::{Path, PathBuf};

use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::commands::{self, Options};
use crate::config::{self, SearchConfig};
use crate::{io, ExperimentError, Result};

/// One row of `ablation.csv`: a step of the ablation over its seeds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AblationRow {
    /// The step's config name.
    pub name: String,
    /// Finished seeds.
    pub n_seeds: usize,
    /// Mean validation accuracy.
    pub validation_accuracy_mean: Option<f64>,
    /// Its sample standard deviation.
    pub validation_accuracy_std: Option<f64>,
    /// Mean test accuracy.
    pub test_accuracy_mean: Option<f64>,
    /// Its sample standard deviation.
    pub test_accuracy_std: Option<f64>,
    /// Mean wall time of one seed, in seconds.
    pub wall_seconds_mean: f64,
}

/// The ablation's configs in `dir`, in file-name order.
pub fn configs(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|source| ExperimentError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("toml"))
        .collect();
    paths.sort();
    Ok(paths)
}

/// The ablation's section of REPORT.md, written beside it (REPORT.md
/// includes it when it is there).
pub const SECTION: &str = "BEYOND.md";

/// Run (or resume) every step of the ablation in `dir` and write the CSV,
/// the picture and the report section; returns the rows.
pub fn run(dir: &Path, opts: &Options<'_>) -> Result<Vec<AblationRow>> {
    let mut rows = Vec::new();
    for path in configs(dir)? {
        let config: SearchConfig = config::load(&path)?;
        let outcome = commands::search(&config, opts)?;
        let stats = outcome.lambdas.first();
        let done: Vec<f64> = outcome
            .rows
            .iter()
            .filter(|r| r.validation_accuracy.is_some())
            .map(|r| r.wall_seconds)
            .collect();
        rows.push(AblationRow {
            name: config.name.clone(),
            n_seeds: stats.map_or(0, |s| s.n_done),
            validation_accuracy_mean: stats.and_then(|s| s.validation_accuracy_mean),
            validation_accuracy_std: stats.and_then(|s| s.validation_accuracy_std),
            test_accuracy_mean: stats.and_then(|s| s.test_accuracy_mean),
            test_accuracy_std: stats.and_then(|s| s.test_accuracy_std),
            wall_seconds_mean: done.iter().sum::<f64>() / done.len().max(1) as f64,
        });
        // Rewritten after every step, so an interrupted ablation shows what it has.
        io::write_csv(&opts.results_dir.join("ablation.csv"), &rows)?;
    }
    write_picture(&rows, &opts.results_dir.join("ablation.svg"))?;
    let section = report_section(&rows);
    io::write_atomic(&opts.results_dir.join(SECTION), section.as_bytes())?;
    Ok(rows)
}

/// The "Beyond the report" section: one table row per step.
pub fn report_section(rows: &[AblationRow]) -> String {
    let pm = |m: Option<f64>, s: Option<f64>| match (m, s) {
        (Some(m), Some(s)) => format!("{m:.4} ± {s:.4}"),
        (Some(m), None) => format!("{m:.4}"),
        _ => "-".to_string(),
    };
    let mut out = String::from(
        "## Beyond the report\n\n\
         From the report's baseline to the final recipe, one ingredient at a time \
         (configs in `experiments/ablation/`, mean ± sample std over the seeds; chosen on \
         validation, test evaluated once per seed). Picture: `ablation.svg`.\n\n\
         | step | seeds | validation accuracy | test accuracy | wall time per seed (s) |\n\
         |---|---|---|---|---|\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {:.0} |\n",
            r.name,
            r.n_seeds,
            pm(r.validation_accuracy_mean, r.validation_accuracy_std),
            pm(r.test_accuracy_mean, r.test_accuracy_std),
            r.wall_seconds_mean
        ));
    }
    out
}

/// Test (or, without test numbers, validation) accuracy per step with its
/// spread, as an SVG.
pub fn write_picture(rows: &[AblationRow], path: &Path) -> Result<()> {
    crate::plot::write_svg(path, (900, 500), |root| {
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let acc = |r: &AblationRow| {
            r.test_accuracy_mean
                .map(|m| (m, r.test_accuracy_std.unwrap_or(0.0)))
                .or_else(|| {
                    r.validation_accuracy_mean
                        .map(|m| (m, r.validation_accuracy_std.unwrap_or(0.0)))
                })
        };
        let points: Vec<(usize, f64, f64)> = rows
            .iter()
            .enumerate()
            .filter_map(|(i, r)| acc(r).map(|(m, s)| (i, m, s)))
            .collect();
        let lo = points.iter().map(|p| p.1 - p.2).fold(1.0, f64::min) - 0.01;
        let hi = points.iter().map(|p| p.1 + p.2).fold(0.0, f64::max) + 0.01;
        let (lo, hi) = if lo < hi { (lo, hi) } else { (0.0, 1.0) };
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "ablation: test accuracy per step (mean ± std)",
                ("sans-serif", 22),
            )
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.5f64..(rows.len() as f64 - 0.5), lo..hi)
            .map_err(|e| e.to_string())?;
        let names: Vec<String> = rows.iter().map(|r| r.name.clone()).collect();
        chart
            .configure_mesh()
            .x_labels(rows.len().max(1))
            .x_label_formatter(&|v| {
                let i = v.round();
                if (v - i).abs() < 1e-6 && i >= 0.0 {
                    names.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_desc("accuracy")
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(points.iter().map(|&(i, m, s)| {
                PathElement::new(vec![(i as f64, m - s), (i as f64, m + s)], BLUE)
            }))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(
                points
                    .iter()
                    .map(|&(i, m, _)| Circle::new((i as f64, m), 5, BLUE.filled())),
            )
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_ablation_parses_and_ends_with_the_final_recipe() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments");
        let paths = configs(&root.join("ablation")).unwrap();
        assert_eq!(paths.len(), 5);
        let steps: Vec<SearchConfig> = paths.iter().map(|p| config::load(p).unwrap()).collect();
        for s in &steps {
            assert!(s.seeds_per_point >= 2, "{}", s.name);
            assert!(s.evaluate_test);
        }
        let beyond: SearchConfig = config::load(&root.join("beyond.toml")).unwrap();
        let last = steps.last().unwrap();
        assert_eq!(last.train, beyond.train);
        assert_eq!(last.lambdas, beyond.lambdas);
        assert_eq!(last.data, beyond.data);
    }

    #[test]
    fn report_section_and_picture_from_rows() {
        let rows = vec![
            AblationRow {
                name: "a".into(),
                n_seeds: 2,
                validation_accuracy_mean: Some(0.5),
                validation_accuracy_std: Some(0.01),
                test_accuracy_mean: Some(0.52),
                test_accuracy_std: Some(0.005),
                wall_seconds_mean: 60.0,
            },
            AblationRow {
                name: "b".into(),
                n_seeds: 0,
                validation_accuracy_mean: None,
                validation_accuracy_std: None,
                test_accuracy_mean: None,
                test_accuracy_std: None,
                wall_seconds_mean: 0.0,
            },
        ];
        let text = report_section(&rows);
        assert!(
            text.contains("| a | 2 | 0.5000 ± 0.0100 | 0.5200 ± 0.0050 | 60 |"),
            "{text}"
        );
        assert!(text.contains("| b | 0 | - | - | 0 |"), "{text}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ablation.svg");
        write_picture(&rows, &path).unwrap();
        assert!(std::fs::read_to_string(&path).unwrap().starts_with("<svg"));
    }
}
