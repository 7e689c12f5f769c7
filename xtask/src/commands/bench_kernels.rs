//! `cargo xtask bench kernels`: flags for `tensor::bench` (the benchmark lives beside the kernels).

use std::path::PathBuf;
use tensor::bench::{self, Options};
use tensor::Kernel;

/// Command-line flags.
#[derive(clap::Args)]
pub struct Args {
    /// Results directory (default `<root>/results`); the CSV goes to `bench/kernels.csv` in it.
    #[arg(long)]
    pub results_dir: Option<PathBuf>,
    /// Timed samples per figure (the median is reported).
    #[arg(long, default_value_t = 21)]
    pub samples: usize,
    /// Minimum duration of one sample in milliseconds (short products are repeated).
    #[arg(long, default_value_t = 15)]
    pub sample_ms: u64,
    /// Kernel for "ours" (`avx512`, `avx2`, `portable`); default: the detected one.
    #[arg(long, value_parser = |s: &str| Kernel::from_name(s).and_then(Kernel::check))]
    pub kernel: Option<Kernel>,
    /// Only shapes whose name contains this text (e.g. `forward`).
    #[arg(long)]
    pub only: Option<String>,
    /// Also time OpenBLAS from this shared library, in the same round
    /// robin: Debian's `/usr/lib/x86_64-linux-gnu/libopenblas.so.0`
    /// (`apt-get install libopenblas0`) or NumPy's
    /// `numpy.libs/libscipy_openblas64_*.so` (`pip install numpy`).
    #[arg(long, value_name = "LIBRARY")]
    pub openblas: Option<PathBuf>,
}

/// Run the command: the table to stdout, the CSV atomically to `<results>/bench/kernels.csv`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let options = Options::new(args.samples, args.sample_ms, args.kernel, args.only)
        .with_openblas(args.openblas);
    let report = bench::run(&options, &mut |line| eprintln!("{line}"))?;
    print!("{}", report.table());
    let path = super::paths::results_dir(args.results_dir).join("bench/kernels.csv");
    mlp::weights::write_atomic(&path, report.csv().as_bytes())?;
    println!("wrote {}", path.display());
    Ok(())
}
