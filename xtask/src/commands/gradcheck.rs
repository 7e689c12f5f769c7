//! `cargo xtask gradcheck`: the report's gradient check on batch 1, in f64,
//! for every parameter entry: analytic gradients against centred finite
//! differences (incremental and cancellation-free, see `mlp::gradcheck`),
//! with ReLU-kink entries reported apart. Writes
//! `results/gradcheck/gradcheck.csv` and fails when any max elementwise
//! relative error (kink entries apart) exceeds the limit.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use mlp::gradcheck::{self, ParamError};
use ndarray::{s, ArrayView2};

use super::paths;

/// Which scenarios to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
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

/// Command-line flags. Fields are public and [`Default`] gives the same
/// values as the command line, so other commands (`reproduce`) can build one:
/// `gradcheck::Args { data_dir, results_dir, ..Default::default() }`.
#[derive(Clone, Debug, PartialEq, clap::Args)]
pub struct Args {
    /// Data dir (holding `cifar-10-batches-bin/`); default `$CIFAR10_DIR`, else `data/`.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Results dir; the table goes to `<dir>/gradcheck/gradcheck.csv`.
    #[arg(long)]
    pub results_dir: Option<PathBuf>,
    /// Scenario to run.
    #[arg(long, value_enum, default_value_t = Scenario::All)]
    pub scenario: Scenario,
    /// Seed of the network's initialisation.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Hidden units.
    #[arg(long, default_value_t = DEFAULT_N_HIDDEN)]
    pub n_hidden: usize,
    /// L2 strength.
    #[arg(long, default_value_t = DEFAULT_LAMBDA)]
    pub lambda: f64,
    /// Finite-difference step.
    #[arg(long, default_value_t = gradcheck::DEFAULT_H)]
    pub h: f64,
    /// Fail when a max elementwise relative error (kinks apart) is above this.
    #[arg(long, default_value_t = DEFAULT_LIMIT)]
    pub limit: f64,
    /// Also run the plain method (two full cost evaluations per entry, one
    /// subtraction) on scenarios (a) and (b) and print its errors for
    /// comparison (not written to the CSV; (b) takes about two minutes).
    #[arg(long)]
    pub plain: bool,
}

const DEFAULT_SEED: u64 = 1;
const DEFAULT_N_HIDDEN: usize = 50;
const DEFAULT_LAMBDA: f64 = 0.01;
const DEFAULT_LIMIT: f64 = 1e-6;

impl Default for Args {
    fn default() -> Self {
        Self {
            data_dir: None,
            results_dir: None,
            scenario: Scenario::All,
            seed: DEFAULT_SEED,
            n_hidden: DEFAULT_N_HIDDEN,
            lambda: DEFAULT_LAMBDA,
            h: gradcheck::DEFAULT_H,
            limit: DEFAULT_LIMIT,
            plain: false,
        }
    }
}

/// One row of the table.
struct Row {
    scenario: &'static str,
    error: ParamError,
}

/// Run the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    let data = super::fetch_data::ensure_and_load(&paths::data_dir(args.data_dir.clone()))?;
    run_with(&data, &args)
}

/// [`run`] on data already loaded (tests pass a small generated set).
pub fn run_with(data: &cifar::Cifar10, args: &Args) -> anyhow::Result<()> {
    let out_dir = paths::results_dir(args.results_dir.clone()).join("gradcheck");
    // Batch 1, z-scored with its own statistics (it is the training split here).
    let batch1: Vec<usize> = (0..data.train_batches[0].len()).collect();
    let stats = data.feature_stats(&batch1);
    let batch = data.train_dataset::<f64>(&batch1, &stats);
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
    let path = out_dir.join("gradcheck.csv");
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    mlp::weights::write_atomic(&path, &csv_bytes(&rows)?)?;
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
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn runs_on_a_small_generated_set_and_writes_the_table() {
        let dir = tempfile::tempdir().unwrap();
        let args = Args {
            results_dir: Some(dir.path().to_path_buf()),
            n_hidden: 8,
            ..Args::default()
        };
        run_with(&cifar::Cifar10::synthetic(12, 2, 3), &args).unwrap();
        let table = std::fs::read_to_string(dir.path().join("gradcheck/gradcheck.csv")).unwrap();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], HEADER.join(","));
        // Three scenarios times four parameters.
        assert_eq!(lines.len(), 1 + 12);
        assert!(lines[9].starts_with("c,W1,24576,"), "{}", lines[9]);
        // A limit nobody meets makes the command fail.
        let strict = Args {
            limit: 0.0,
            scenario: Scenario::A,
            ..args
        };
        assert!(run_with(&cifar::Cifar10::synthetic(12, 2, 3), &strict).is_err());
    }

    #[test]
    fn default_matches_the_command_line_defaults() {
        let parsed = Cli::try_parse_from(["x"]).unwrap().args;
        assert_eq!(parsed, Args::default());
    }
}
