//! The report's gradient check on batch 1, in f64, for every parameter
//! entry: analytic gradients against centred finite differences
//! (incremental and cancellation-free, see `mlp::gradcheck`), with
//! ReLU-kink entries reported apart. Its settings are
//! `experiments/checks/gradcheck.toml` ([`GradcheckConfig`]); it writes
//! `<results>/gradcheck/gradcheck.csv` and fails when any max elementwise
//! relative error (kink entries apart) exceeds the limit.

use std::io::IsTerminal;
use std::path::Path;
use std::time::Instant;

use mlp::gradcheck::{self, ParamError};
use ndarray::{s, ArrayView2};
use serde::{Deserialize, Serialize};

use crate::config::{InvalidValue, Validate};
use crate::io;

/// The results sub-folder.
pub const FOLDER: &str = "gradcheck";
/// The table inside it.
pub const CSV: &str = "gradcheck.csv";

/// Which scenarios to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// First 30 dimensions of the first image.
    A,
    /// All dimensions of the first 10 images.
    B,
    /// All dimensions of all 10000 images.
    C,
    /// (a), (b) and (c).
    All,
}

/// `experiments/checks/gradcheck.toml`: every setting of the check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GradcheckConfig {
    /// Scenario to run: `a`, `b`, `c` or `all`.
    pub scenario: Scenario,
    /// Seed of the network's initialisation.
    pub seed: u64,
    /// Hidden units.
    pub n_hidden: usize,
    /// L2 strength.
    pub lambda: f64,
    /// Finite-difference step.
    pub h: f64,
    /// Fail when a max elementwise relative error (kinks apart) is above this.
    pub limit: f64,
    /// Also run the plain method (two full cost evaluations per entry) on
    /// scenarios (a) and (b) and print its errors for comparison (not in the CSV).
    pub plain: bool,
}

impl Validate for GradcheckConfig {
    fn validate(&self) -> Result<(), InvalidValue> {
        let bad = |key: &str, message: String| {
            Err(InvalidValue {
                key: key.to_string(),
                message,
            })
        };
        if self.n_hidden == 0 {
            return bad("n_hidden", "must be at least 1".into());
        }
        if !(self.lambda >= 0.0 && self.lambda.is_finite()) {
            return bad(
                "lambda",
                format!("{} is not a finite number >= 0", self.lambda),
            );
        }
        if !(self.h > 0.0 && self.h < 1.0) {
            return bad("h", format!("{} is not in (0, 1)", self.h));
        }
        if !(self.limit >= 0.0 && self.limit.is_finite()) {
            return bad(
                "limit",
                format!("{} is not a finite number >= 0", self.limit),
            );
        }
        Ok(())
    }
}

/// One row of the table.
struct Row {
    scenario: &'static str,
    error: ParamError,
}

/// Run the check of `config` on `data`'s batch 1 and write
/// `<results_dir>/gradcheck/gradcheck.csv`; an error when a parameter's max
/// elementwise relative error (kink entries apart) is above `config.limit`.
pub fn run(
    data: &cifar::Cifar10,
    config: &GradcheckConfig,
    results_dir: &Path,
) -> anyhow::Result<()> {
    run_on_batch(&data.train_batches[0], config, results_dir)
}

/// [`run`] on batch 1's raw images alone: `reproduce` reads that one file
/// for it before the whole data set is loaded, so the 246 MB f64 copy of
/// the batch and the 184 MB of all images are never in memory together.
pub fn run_on_batch(
    batch1: &cifar::RawImages,
    config: &GradcheckConfig,
    results_dir: &Path,
) -> anyhow::Result<()> {
    let args = config;
    let out_dir = results_dir.join(FOLDER);
    // Batch 1, z-scored with its own statistics (it is the training split
    // here): what `Cifar10::train_dataset` gives for its indices.
    let rows: Vec<&[u8]> = batch1.pixels.chunks_exact(cifar::IMAGE_BYTES).collect();
    let stats = cifar::FeatureStats::from_rows(&rows);
    let batch = cifar::Dataset {
        images: stats.normalise::<f64>(&rows),
        labels: batch1.labels.clone(),
    };
    drop(rows);
    anyhow::ensure!(
        batch.images.nrows() >= 10,
        "batch 1 has only {} images",
        batch.images.nrows()
    );

    // Views of the batch, not copies: scenario (c) is all of it (246 MB in f64).
    let scenarios: Vec<(&'static str, ArrayView2<'_, f64>, usize)> = [
        ("a", Scenario::A, 1usize, 30usize),
        ("b", Scenario::B, 10, cifar::IMAGE_BYTES),
        ("c", Scenario::C, batch.images.nrows(), cifar::IMAGE_BYTES),
    ]
    .into_iter()
    .filter(|(_, s, _, _)| args.scenario == Scenario::All || args.scenario == *s)
    .map(|(name, _, n, d)| (name, batch.images.slice(s![..n, ..d]), n))
    .collect();

    println!(
        "gradient check: m {}, lambda {}, h {:e}, seed {}, f64, {} thread(s)",
        args.n_hidden,
        args.lambda,
        args.h,
        args.seed,
        rayon::current_num_threads()
    );
    let mut rows = Vec::new();
    let mut plain_rows = Vec::new();
    for (name, images, n) in &scenarios {
        let labels = &batch.labels[..*n];
        let d = images.ncols();
        let model = mlp::Mlp::<f64>::init(d, args.n_hidden, cifar::N_CLASSES, args.seed);
        let n_entries = model.w1.len() + model.b1.len() + model.w2.len() + model.b2.len();
        let spinner = progress(&format!(
            "scenario ({name}): {n} image(s) x {d} dims, {n_entries} entries"
        ));
        let start = Instant::now();
        let (analytic, _) = model.gradients(&images.view(), labels, args.lambda);
        let numerical =
            gradcheck::numerical_gradients(&model, &images.view(), labels, args.lambda, args.h);
        let report = gradcheck::compare(&analytic, &numerical);
        spinner.finish_and_clear();
        if args.plain && *name != "c" {
            let start = Instant::now();
            let plain = gradcheck::Numerical {
                grads: gradcheck::plain_numerical_gradients(
                    &model,
                    &images.view(),
                    labels,
                    args.lambda,
                    args.h,
                ),
                kinks: numerical.kinks.clone(),
                seconds: [0.0; 4],
            };
            let secs = start.elapsed().as_secs_f64();
            plain_rows.extend(gradcheck::compare(&analytic, &plain).into_iter().map(
                |mut error| {
                    error.seconds = secs;
                    Row {
                        scenario: name,
                        error,
                    }
                },
            ));
        }
        println!(
            "scenario ({name}): {n} image(s) x {d} dims, {n_entries} entries, {:.2} s",
            start.elapsed().as_secs_f64()
        );
        rows.extend(report.into_iter().map(|error| Row {
            scenario: name,
            error,
        }));
    }

    print_table(&rows);
    if !plain_rows.is_empty() {
        println!("for comparison, the plain J(theta+h) - J(theta-h) (not in the CSV; seconds = whole scenario):");
        print_table(&plain_rows);
    }
    let path = out_dir.join(CSV);
    io::write_atomic(&path, &csv_bytes(&rows)?)?;
    println!("wrote {}", path.display());

    let failed: Vec<String> = rows
        .iter()
        .filter(|r| r.error.max_rel_error > args.limit || r.error.max_rel_error.is_nan())
        .map(|r| {
            format!(
                "({}) {}: {:.2e}",
                r.scenario, r.error.parameter, r.error.max_rel_error
            )
        })
        .collect();
    anyhow::ensure!(
        failed.is_empty(),
        "max elementwise relative error above {:e}: {}",
        args.limit,
        failed.join(", ")
    );
    println!(
        "every parameter below {:e} elementwise (kink entries reported apart)",
        args.limit
    );
    Ok(())
}

/// A spinner on a terminal; a plain line otherwise.
fn progress(message: &str) -> indicatif::ProgressBar {
    if std::io::stdout().is_terminal() {
        let bar = indicatif::ProgressBar::new_spinner().with_message(message.to_string());
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar
    } else {
        println!("{message} ...");
        indicatif::ProgressBar::hidden()
    }
}

/// Columns of `gradcheck.csv`.
const HEADER: [&str; 8] = [
    "scenario",
    "parameter",
    "entries",
    "kink_entries",
    "max_rel_error",
    "norm_rel_error",
    "seconds",
    "kink_max_rel_error",
];

/// The table on stdout.
fn print_table(rows: &[Row]) {
    println!();
    println!(
        "{:<8} {:<9} {:>8} {:>6} {:>13} {:>13} {:>8} {:>13}",
        "scenario",
        "parameter",
        "entries",
        "kinks",
        "max rel err",
        "norm rel err",
        "seconds",
        "kink max err"
    );
    for r in rows {
        let e = &r.error;
        println!(
            "{:<8} {:<9} {:>8} {:>6} {:>13.3e} {:>13.3e} {:>8.3} {:>13.3e}",
            r.scenario,
            e.parameter,
            e.n_entries,
            e.n_kink_entries,
            e.max_rel_error,
            e.norm_rel_error,
            e.seconds,
            e.kink_max_rel_error
        );
    }
    println!();
}

/// The table as CSV, numbers as printed.
fn csv_bytes(rows: &[Row]) -> anyhow::Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(HEADER)?;
    for r in rows {
        let e = &r.error;
        w.write_record([
            r.scenario.to_string(),
            e.parameter.to_string(),
            e.n_entries.to_string(),
            e.n_kink_entries.to_string(),
            format!("{:e}", e.max_rel_error),
            format!("{:e}", e.norm_rel_error),
            format!("{:.3}", e.seconds),
            format!("{:e}", e.kink_max_rel_error),
        ])?;
    }
    Ok(w.into_inner()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> GradcheckConfig {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/checks/gradcheck.toml");
        crate::config::load(&path).unwrap()
    }

    #[test]
    fn runs_on_a_small_generated_set_and_writes_the_table() {
        let dir = tempfile::tempdir().unwrap();
        let args = GradcheckConfig {
            n_hidden: 8,
            ..shipped()
        };
        run(&cifar::Cifar10::synthetic(12, 2, 3), &args, dir.path()).unwrap();
        let table = std::fs::read_to_string(dir.path().join("gradcheck/gradcheck.csv")).unwrap();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], HEADER.join(","));
        // Three scenarios times four parameters.
        assert_eq!(lines.len(), 1 + 12);
        assert!(lines[9].starts_with("c,W1,24576,"), "{}", lines[9]);
        // A limit nobody meets makes the command fail.
        let strict = GradcheckConfig {
            limit: 0.0,
            scenario: Scenario::A,
            ..args
        };
        assert!(run(&cifar::Cifar10::synthetic(12, 2, 3), &strict, dir.path()).is_err());
    }

    #[test]
    fn bad_values_and_unknown_keys_are_refused_naming_the_key() {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments/checks/gradcheck.toml"),
        )
        .unwrap();
        let path = Path::new("gradcheck.toml");
        assert_eq!(
            crate::config::parse::<GradcheckConfig>(&text, path).unwrap(),
            shipped()
        );
        let edits = [
            ("h = 1e-5", "h = 0.0", "h"),
            ("limit = 1e-6", "limit = -1.0", "limit"),
            ("n_hidden = 50", "n_hidden = 0", "n_hidden"),
            ("lambda = 0.01", "lambda = nan", "lambda"),
        ];
        super::super::assert_refused_naming_the_key::<GradcheckConfig>(
            &text, path, &edits, "steps",
        );
    }
}
