//! Experiments: typed TOML configs, single runs with their result folders,
//! resumable parallel searches, CSV tables, learning-curve pictures and the report.
//!
//! The pieces, in the order a command uses them:
//! - [`config`]: the TOML files of `experiments/` as typed, validated structs;
//! - [`data`]: the data set loaded and normalised once per process, shared
//!   read-only by every run, with its fingerprint and the git revision;
//! - [`run`]: one training run and its folder (`config.toml`, `curves.csv`,
//!   `summary.csv`, `weights.safetensors`, `curves.svg`, `curves.png`);
//! - [`space`]: the settings a search tries (`[space]`: any training
//!   setting with a distribution), drawn into points up front;
//! - [`search`]: a plan of trials (points x seeds) drawn up front, run in
//!   parallel, resumable, summarised in a sorted `table.csv`;
//! - [`prune`] and [`rungs`]: optional early stopping of hopeless trials
//!   (the rule, and its work in a search folder), deterministic whatever `--jobs`;
//! - [`ensemble`]: what trained networks (one, or several averaged) say about a labelled set;
//! - [`stats`]: mean ± std over seeds and the t-tests that tell a winner from seed noise;
//! - [`inference`]: trained weights put to use (`evaluate`, `predict`);
//! - [`checks`]: the gradient and sanity checks, with their configs;
//! - [`lr_range`]: the learning-rate range test and its suggested eta_min / eta_max;
//! - [`worker`] and [`claim`]: the loop that runs a search's trials, shared
//!   by local `--jobs N` runs and by workers in other processes or on other
//!   machines (hand-started or a Slurm array), who split the trials through
//!   claim files with renewed leases; [`slurm`]: the batch scripts that
//!   run such workers as a Slurm job array, and the collect job after them;
//! - [`plot`]: SVG and PNG pictures made from the CSV files;
//! - [`report`]: `REPORT.md`, every result beside the original report's number;
//! - [`reproduce`]: every stage of the report in order ([`records::stages`]), then the report;
//! - [`records`]: the result files' names and row types, below every other module;
//! - [`bench_train`]: the epoch against its matmul work (`cargo xtask bench train`);
//! - [`commands`]: the entry points `cargo xtask train`, `coarse-search`, ... call.
//!
//! Every file a command writes is written atomically (temporary file, then
//! rename, see [`io`]), so an interrupted command never leaves a half-written
//! result behind.

pub mod bench_train;
pub mod beyond;
pub mod checks;
pub mod claim;
pub mod commands;
pub mod config;
pub mod data;
pub mod ensemble;
pub mod inference;
pub mod invalid;
pub mod io;
pub mod lr_range;
pub mod plot;
pub mod progress;
pub mod prune;
pub mod records;
pub mod report;
pub mod reproduce;
pub mod run;
pub mod rungs;
pub mod search;
pub mod slurm;
pub mod space;
pub mod stats;
#[cfg(test)]
mod tidy;
pub mod worker;

use std::path::PathBuf;

/// Everything that can go wrong in an experiment; each variant names the file
/// or key involved and, where there is one, the fix.
#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    /// A config file could not be parsed or holds a bad value.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A CSV or TOML result file is malformed.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A result an experiment depends on is not there yet.
    #[error("{path} is missing: {hint}")]
    Missing {
        /// The file that should exist.
        path: PathBuf,
        /// How to make it.
        hint: String,
    },
    /// The data files could not be read (missing, truncated, corrupt, or not
    /// what their fetch-data stamp says).
    #[error("{error}{}", data_hint(dir, error))]
    DataLoad {
        /// The data dir, as given (`--data-dir`).
        dir: PathBuf,
        /// What is wrong, naming the file.
        error: cifar::CifarError,
    },
    /// The data could not be split as asked (e.g. a bad split spec).
    #[error(transparent)]
    Data(#[from] cifar::CifarError),
    /// Training failed (divergence or a bad training config).
    #[error(transparent)]
    Train(#[from] mlp::train::TrainError),
    /// Saving or loading weights failed.
    #[error(transparent)]
    Weights(#[from] mlp::weights::WeightsError),
    /// Existing results were made by a different plan or config.
    #[error("{path}: {message}")]
    Conflict {
        /// The file that disagrees.
        path: PathBuf,
        /// What differs and how to proceed.
        message: String,
    },
    /// A single run diverged (its summary is written, in state `diverged`).
    #[error("{name}: {message}")]
    Diverged {
        /// The run.
        name: String,
        /// The divergence, naming the step and eta.
        message: String,
    },
    /// A search's results were asked for before all its trials finished.
    #[error(
        "{dir}: {n_unfinished} of {n_trials} trials are not finished: {list}\n(run \
         `cargo xtask worker {dir}` to finish them, or re-run the search)"
    )]
    Unfinished {
        /// The search folder.
        dir: PathBuf,
        /// Trials without a summary.
        n_unfinished: usize,
        /// Trials in the plan.
        n_trials: usize,
        /// The first unfinished trials, with lambda and seed.
        list: String,
    },
    /// A thread pool could not be built.
    #[error("cannot start worker threads: {0}")]
    Threads(String),
    /// Some trials of a search failed (not diverged: failed); the others are recorded.
    #[error("{n_failed} of {n_trials} trials failed; the first failure: {first}")]
    TrialsFailed {
        /// Failed trials.
        n_failed: usize,
        /// Trials in the plan.
        n_trials: usize,
        /// The first error seen.
        first: Box<ExperimentError>,
    },
}

/// The repair hint after a data error: the `fetch-data` command, with the
/// `--data-dir` and `--force` that would actually replace the bad data
/// (none when the error already names the command).
fn data_hint(dir: &std::path::Path, error: &cifar::CifarError) -> String {
    if error.to_string().contains("cargo xtask fetch-data") {
        return String::new();
    }
    format!(
        "\n(get the data again with `{}` (add `--from PATH` to use a local \
         cifar-10-binary.tar.gz), or point --data-dir at good data)",
        cifar::repair_command(dir)
    )
}

/// The error and its causes on one line, `a: b: c`, each cause once: a cause
/// whose text its parent already shows (e.g. `{path}: {source}` messages that
/// also expose the OS error as their source) is not repeated.
pub fn error_text(error: &anyhow::Error) -> String {
    let mut text = String::new();
    let mut shown = String::new();
    for cause in error.chain() {
        let part = cause.to_string();
        if shown.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
        shown = part;
    }
    text
}

/// Shorthand for results of this crate.
pub type Result<T, E = ExperimentError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cause_is_printed_once() {
        let os = std::io::Error::from(std::io::ErrorKind::NotFound);
        let os_text = os.to_string();
        let inner = ExperimentError::Io {
            path: "results/x/summary.csv".into(),
            source: os,
        };
        let error = anyhow::Error::new(inner).context("reading the search");
        let text = error_text(&error);
        assert_eq!(text.matches(&os_text).count(), 1, "{text}");
        assert!(
            text.starts_with("reading the search: results/x/summary.csv: "),
            "{text}"
        );
        // Distinct causes are all kept.
        let error = anyhow::anyhow!("inner").context("middle").context("outer");
        assert_eq!(error_text(&error), "outer: middle: inner");
    }
}
