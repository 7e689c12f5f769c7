//! `cargo xtask bench kernels|train`: dispatch to the two benchmarks.

use clap::Subcommand;

use super::{bench_kernels, bench_train};

/// Which benchmark to run.
#[derive(Subcommand)]
pub enum Bench {
    /// Matmul GFLOP/s (wall and CPU time) on the training shapes: ours (1 and 2 threads), matrixmultiply, ndarray dot, FMA peak.
    Kernels(bench_kernels::Args),
    /// One training epoch against the time of its matmul work alone.
    Train(bench_train::Args),
}

/// Run the chosen benchmark.
pub fn run(bench: Bench) -> anyhow::Result<()> {
    match bench {
        Bench::Kernels(args) => bench_kernels::run(args),
        Bench::Train(args) => bench_train::run(args),
    }
}
