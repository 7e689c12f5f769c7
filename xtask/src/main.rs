//! `cargo xtask COMMAND`: thin commands over the workspace crates. This file
//! only parses the command line and dispatches; each command lives in its own
//! module under `commands/`.

mod commands;

use clap::{Parser, Subcommand};
use commands::*;
use experiment::error_text;

/// cifar-clr: train and study a two-layer network on CIFAR-10 with cyclical learning rates.
#[derive(Parser)]
#[command(name = "xtask", bin_name = "cargo xtask", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Get CIFAR-10 onto disk (download, or --from a local archive/dir), verified.
    FetchData(fetch_data::Args),
    /// Check analytic gradients against centred finite differences (f64).
    Gradcheck(gradcheck::Args),
    /// Overfit 100 images with lambda 0: the training loss must reach ~0.
    Sanity(sanity::Args),
    /// Run one training described by a TOML config.
    Train(train::Args),
    /// Coarse lambda search (report's table 1).
    CoarseSearch(coarse_search::Args),
    /// Fine lambda search around the coarse best (report's table 2).
    FineSearch(fine_search::Args),
    /// Final training with the best lambda over several seeds (report's figure 4).
    FinalTrain(final_train::Args),
    /// Learning-rate range test (Smith 2017): suggests eta_min and eta_max for a run config.
    LrRangeTest(lr_range_test::Args),
    /// Accuracy, per-class accuracy and confusion matrix of trained weights (several: an ensemble).
    Evaluate(evaluate::Args),
    /// Top classes trained weights give a PNG/JPEG picture or a test image.
    Predict(predict::Args),
    /// Redraw the pictures of a results directory from its CSV files.
    Plot(plot::Args),
    /// Everything, from data check to results/REPORT.md.
    Reproduce(reproduce::Args),
    /// Work on a prepared search folder: claim trials until none is left (many may run at once).
    Worker(worker::Args),
    /// Write a search's table and pictures from its trial folders.
    Collect(collect::Args),
    /// Run a search as a Slurm job array of workers plus a collect job.
    Slurm(slurm::Args),
    /// Benchmarks: `kernels` (matmul GFLOP/s) or `train` (epoch time vs matmul time).
    #[command(subcommand)]
    Bench(bench::Bench),
}

/// Runs the command; an error is printed as its chain of causes (no backtrace,
/// even with `RUST_BACKTRACE` set: these are messages for users) with exit code 1.
fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // Work outside a command's own pool (loading, evaluation, gradcheck)
    // runs on the global pool: one worker per core, pinned (see
    // `tensor::pool`). Building it can only fail if it already exists.
    let _ = tensor::pool::pool_builder(experiment::commands::all_cores()).build_global();
    match run(cli.command) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", error_text(&error));
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::FetchData(args) => fetch_data::run(args),
        Command::Gradcheck(args) => gradcheck::run(args),
        Command::Sanity(args) => sanity::run(args),
        Command::Train(args) => train::run(args),
        Command::CoarseSearch(args) => coarse_search::run(args),
        Command::FineSearch(args) => fine_search::run(args),
        Command::FinalTrain(args) => final_train::run(args),
        Command::LrRangeTest(args) => lr_range_test::run(args),
        Command::Evaluate(args) => evaluate::run(args),
        Command::Predict(args) => predict::run(args),
        Command::Plot(args) => plot::run(args),
        Command::Reproduce(args) => reproduce::run(args),
        Command::Worker(args) => worker::run(args),
        Command::Collect(args) => collect::run(args),
        Command::Slurm(args) => slurm::run(args),
        Command::Bench(bench) => bench::run(bench),
    }
}
