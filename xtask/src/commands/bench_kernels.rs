//! `cargo xtask bench kernels`: matmul GFLOP/s on the shapes training uses.
//!
//! For each shape and element type it times our `tensor::gemm` on a 1-thread
//! and a 2-thread rayon pool, `matrixmultiply` (through ndarray's
//! `general_mat_mul`, which calls `matrixmultiply::{s,d}gemm` with the views'
//! strides; forced to one thread with `MATMUL_NUM_THREADS=1`) and ndarray's
//! allocating `dot` (also matrixmultiply underneath), on products below
//! 1e8 flops also ours without the direct small-product path (the blocked
//! driver, `gemm_blocked_with_kernel`), and relates the numbers
//! to this machine's FMA peak measured with a register-only loop. Each
//! figure is the median of `--samples` timed samples (taken round robin over
//! the contenders, so bursts of load hit all alike), each sample long enough
//! (`--sample-ms`) to swamp timer noise. Prints a table and writes
//! `<results>/bench/kernels.csv` atomically.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use ndarray::{Array2, ArrayView2, LinalgScalar};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tensor::{Element, Kernel};

use super::paths;

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
    #[arg(long)]
    pub kernel: Option<String>,
    /// Only shapes whose name contains this text (e.g. `forward`).
    #[arg(long)]
    pub only: Option<String>,
}

/// One benchmarked product: `C(m x n) = op(A) op(B)` with the training layout.
struct Shape {
    name: &'static str,
    m: usize,
    k: usize,
    n: usize,
    /// A is stored `k x m` row-major and passed as `a.t()`.
    a_transposed: bool,
    /// B is stored `n x k` row-major and passed as `b.t()`.
    b_transposed: bool,
}

const SHAPES: [Shape; 15] = [
    Shape {
        name: "forward X*W1^T",
        m: 100,
        k: 3072,
        n: 50,
        a_transposed: false,
        b_transposed: true,
    },
    Shape {
        name: "wgrad G^T*X",
        m: 50,
        k: 100,
        n: 3072,
        a_transposed: true,
        b_transposed: false,
    },
    Shape {
        name: "eval X*W1^T",
        m: 10000,
        k: 3072,
        n: 50,
        a_transposed: false,
        b_transposed: true,
    },
    Shape {
        name: "layer2 H*W2^T",
        m: 100,
        k: 50,
        n: 10,
        a_transposed: false,
        b_transposed: true,
    },
    Shape {
        name: "layer2 wgrad G2^T*H",
        m: 10,
        k: 100,
        n: 50,
        a_transposed: true,
        b_transposed: false,
    },
    Shape {
        name: "layer2 dgrad G2*W2",
        m: 100,
        k: 10,
        n: 50,
        a_transposed: false,
        b_transposed: false,
    },
    Shape {
        name: "eval layer2 H*W2^T",
        m: 10000,
        k: 50,
        n: 10,
        a_transposed: false,
        b_transposed: true,
    },
    // The products of a wide network (1024 hidden units, "Beyond the report").
    Shape {
        name: "wide forward",
        m: 100,
        k: 3072,
        n: 1024,
        a_transposed: false,
        b_transposed: true,
    },
    Shape {
        name: "wide wgrad",
        m: 1024,
        k: 100,
        n: 3072,
        a_transposed: true,
        b_transposed: false,
    },
    Shape {
        name: "wide hgrad G2*W2",
        m: 100,
        k: 10,
        n: 1024,
        a_transposed: false,
        b_transposed: false,
    },
    Shape {
        name: "wide layer2 H*W2^T",
        m: 100,
        k: 1024,
        n: 10,
        a_transposed: false,
        b_transposed: true,
    },
    Shape {
        name: "wide l2 wgrad G2^T*H",
        m: 10,
        k: 100,
        n: 1024,
        a_transposed: true,
        b_transposed: false,
    },
    Shape {
        name: "wide eval X*W1^T",
        m: 10000,
        k: 3072,
        n: 1024,
        a_transposed: false,
        b_transposed: true,
    },
    Shape {
        name: "wide eval l2 H*W2^T",
        m: 10000,
        k: 1024,
        n: 10,
        a_transposed: false,
        b_transposed: true,
    },
    Shape {
        name: "square 1024^3",
        m: 1024,
        k: 1024,
        n: 1024,
        a_transposed: false,
        b_transposed: false,
    },
];

/// Products above this many flops (seconds per call) are timed with at
/// most [`BIG_SAMPLES`] samples.
const BIG_FLOPS: f64 = 1e10;
/// Sample cap for products above [`BIG_FLOPS`].
const BIG_SAMPLES: usize = 7;
/// Below this many flops ours may take the direct small-product path, and
/// the blocked driver is timed too (`blk1t`).
const SMALL_FLOPS: f64 = 1e8;

/// One table row.
struct Row {
    shape: &'static str,
    m: usize,
    k: usize,
    n: usize,
    dtype: &'static str,
    ours_1t: f64,
    ours_2t: f64,
    matrixmultiply: f64,
    ndarray_dot: f64,
    /// Ours on 1 thread without the direct small-product path (NaN above
    /// [`SMALL_FLOPS`], where the paths are the same).
    blocked_1t: f64,
    peak_1t: f64,
    peak_2t: f64,
    /// 256-bit (AVX2 + FMA) single-thread peak, the yardstick the issue quotes.
    peak_256_1t: f64,
}

/// Run the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.samples >= 1, "--samples must be at least 1");
    // matrixmultiply's `threading` feature otherwise uses every core; the
    // comparison is single-threaded. Must happen before its first use.
    std::env::set_var("MATMUL_NUM_THREADS", "1");
    let kernel = match &args.kernel {
        Some(name) => Kernel::from_name(name)
            .and_then(Kernel::check)
            .with_context(|| format!("--kernel {name}"))?,
        None => Kernel::detect(),
    };
    let out_path = paths::results_dir(args.results_dir.clone())
        .join("bench")
        .join("kernels.csv");
    let pool1 = pool(1)?;
    let pool2 = pool(2)?;

    eprintln!("measuring FMA peak ({} vectors) ...", kernel.name());
    let peaks = [false, true].map(|is_f64| {
        let one = tensor::measure_fma_peak(kernel, is_f64, 0.3).unwrap_or(f64::NAN);
        let two = peak_on_threads(kernel, is_f64, 2);
        (one, two)
    });
    let peaks_256 = [false, true]
        .map(|is_f64| tensor::measure_fma_peak(Kernel::Avx2, is_f64, 0.3).unwrap_or(f64::NAN));

    let shapes: Vec<&Shape> = SHAPES
        .iter()
        .filter(|s| args.only.as_deref().is_none_or(|o| s.name.contains(o)))
        .collect();
    let progress = Progress::new((shapes.len() * 2) as u64);
    let mut rows = Vec::new();
    for shape in shapes {
        for is_f64 in [false, true] {
            progress.start(&format!(
                "{} {}",
                shape.name,
                if is_f64 { "f64" } else { "f32" }
            ));
            let (peak_1t, peak_2t) = peaks[usize::from(is_f64)];
            let timing = Timing {
                samples: args.samples,
                sample_secs: args.sample_ms as f64 / 1e3,
                kernel,
                pool1: &pool1,
                pool2: &pool2,
            };
            let mut row = if is_f64 {
                timing.bench::<f64>(shape, "f64", (peak_1t, peak_2t))?
            } else {
                timing.bench::<f32>(shape, "f32", (peak_1t, peak_2t))?
            };
            row.peak_256_1t = peaks_256[usize::from(is_f64)];
            progress.done(&format_row(&row));
            rows.push(row);
        }
    }
    progress.finish();

    println!(
        "kernel: {}; measured FMA peak ({} vectors) f32: {:.1} GFLOP/s on 1 thread, {:.1} on 2; \
         f64: {:.1} / {:.1}; 256-bit (AVX2) peak on 1 thread: f32 {:.1}, f64 {:.1}",
        kernel.name(),
        kernel.name(),
        peaks[0].0,
        peaks[0].1,
        peaks[1].0,
        peaks[1].1,
        peaks_256[0],
        peaks_256[1],
    );
    println!(
        "GFLOP/s (median of {} samples, at most {BIG_SAMPLES} above {BIG_FLOPS:e} flops); mm = matrixmultiply (1 thread), dot = ndarray dot, \
         blk1t = ours without the direct small-product path (below {SMALL_FLOPS:e} flops); \
         pk1t / pk2t = ours vs the measured peak of the kernel's vectors, pk256 = ours (1 thread) \
         vs the 256-bit peak",
        args.samples
    );
    println!("{}", header());
    for row in &rows {
        println!("{}", format_row(row));
    }
    write_csv(&out_path, &rows, kernel)?;
    println!("wrote {}", out_path.display());
    Ok(())
}

fn pool(n: usize) -> anyhow::Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .with_context(|| format!("building a {n}-thread pool"))
}

/// FMA peak of `n` threads running the register loop at the same time.
fn peak_on_threads(kernel: Kernel, is_f64: bool, n: usize) -> f64 {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|_| s.spawn(move || tensor::measure_fma_peak(kernel, is_f64, 0.3)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().ok().and_then(Result::ok).unwrap_or(f64::NAN))
            .sum()
    })
}

/// How to time one product.
struct Timing<'a> {
    samples: usize,
    sample_secs: f64,
    kernel: Kernel,
    pool1: &'a rayon::ThreadPool,
    pool2: &'a rayon::ThreadPool,
}

impl Timing<'_> {
    fn bench<T: Element>(
        &self,
        shape: &Shape,
        dtype: &'static str,
        (peak_1t, peak_2t): (f64, f64),
    ) -> anyhow::Result<Row> {
        let (m, k, n) = (shape.m, shape.k, shape.n);
        let mut rng = ChaCha8Rng::seed_from_u64(0x5eed);
        let mut random = |r: usize, c: usize| -> Array2<T> {
            Array2::from_shape_simple_fn((r, c), || {
                T::from(rng.random_range(-1.0..1.0f64)).unwrap()
            })
        };
        let a_store = if shape.a_transposed {
            random(k, m)
        } else {
            random(m, k)
        };
        let b_store = if shape.b_transposed {
            random(n, k)
        } else {
            random(k, n)
        };
        let a = if shape.a_transposed {
            a_store.t()
        } else {
            a_store.view()
        };
        let b = if shape.b_transposed {
            b_store.t()
        } else {
            b_store.view()
        };
        let mut c = Array2::<T>::zeros((m, n));
        let flops = 2.0 * m as f64 * n as f64 * k as f64;

        // Ours must agree with matrixmultiply before we time anything.
        let mut c_mm = Array2::<T>::zeros((m, n));
        ndarray::linalg::general_mat_mul(T::one(), &a, &b, T::zero(), &mut c_mm);
        tensor::gemm_with_kernel(self.kernel, T::one(), &a, &b, T::zero(), &mut c.view_mut())?;
        check_close(&c.view(), &c_mm.view(), k).with_context(|| {
            format!("{} {dtype}: ours disagrees with matrixmultiply", shape.name)
        })?;

        let kernel = self.kernel;
        let mut c_1t = c.clone();
        let mut c_2t = c;
        // The four contenders, each one sample = `reps` calls. Ours runs
        // inside its pool for the whole sample (no pool wake-up per call).
        let ours = |pool: &rayon::ThreadPool, c: &mut Array2<T>, reps: usize| {
            pool.install(|| {
                for _ in 0..reps {
                    tensor::gemm_with_kernel(
                        kernel,
                        T::one(),
                        &a,
                        &b,
                        T::zero(),
                        &mut c.view_mut(),
                    )
                    .expect("kernel checked above");
                }
            })
        };
        let mut c_blocked = c_1t.clone();
        let mut ours_1t = |reps: usize| ours(self.pool1, &mut c_1t, reps);
        // The blocked driver without the direct small-product path (the
        // same as ours above 1e8 flops, where it is not timed).
        let small = flops < SMALL_FLOPS;
        let mut blocked_1t = |reps: usize| {
            self.pool1.install(|| {
                for _ in 0..reps {
                    tensor::gemm_blocked_with_kernel(
                        kernel,
                        T::one(),
                        &a,
                        &b,
                        T::zero(),
                        &mut c_blocked.view_mut(),
                    )
                    .expect("kernel checked above");
                }
            })
        };
        let mut skip = |_: usize| {};
        let mut ours_2t = |reps: usize| ours(self.pool2, &mut c_2t, reps);
        let mut mm = |reps: usize| {
            for _ in 0..reps {
                ndarray::linalg::general_mat_mul(T::one(), &a, &b, T::zero(), &mut c_mm);
            }
        };
        let mut dot = |reps: usize| {
            for _ in 0..reps {
                std::hint::black_box(a.dot(&b));
            }
        };
        let blocked: &mut dyn FnMut(usize) = if small { &mut blocked_1t } else { &mut skip };
        let mut contenders: [&mut dyn FnMut(usize); 5] =
            [&mut ours_1t, &mut ours_2t, &mut mm, &mut dot, blocked];
        // Products of seconds (the wide evaluation) get fewer samples.
        let samples = if flops > BIG_FLOPS {
            self.samples.min(BIG_SAMPLES)
        } else {
            self.samples
        };
        let [ours_1t, ours_2t, matrixmultiply, ndarray_dot, blocked_1t] =
            self.gflops_round_robin(flops, samples, &mut contenders);
        let blocked_1t = if small { blocked_1t } else { f64::NAN };
        Ok(Row {
            shape: shape.name,
            m,
            k,
            n,
            dtype,
            ours_1t,
            ours_2t,
            matrixmultiply,
            ndarray_dot,
            blocked_1t,
            peak_1t,
            peak_2t,
            peak_256_1t: f64::NAN,
        })
    }

    /// Median GFLOP/s of each contender over `samples` samples of at least
    /// `sample_secs` each, taken round robin (sample 1 of every contender,
    /// then sample 2, ...) so a burst of load from other processes hits all
    /// of them alike and the median discards it.
    fn gflops_round_robin(
        &self,
        flops: f64,
        samples: usize,
        contenders: &mut [&mut dyn FnMut(usize); 5],
    ) -> [f64; 5] {
        // Warm up and calibrate how many calls make one sample, on batches
        // long enough that a sleeping pool thread's wake-up does not count.
        let reps = contenders.each_mut().map(|f| {
            f(1);
            let mut batch = 1;
            loop {
                let start = Instant::now();
                f(batch);
                let elapsed = start.elapsed().as_secs_f64();
                if elapsed >= self.sample_secs / 4.0 || batch >= 1 << 20 {
                    let once = (elapsed / batch as f64).max(1e-9);
                    break ((self.sample_secs / once).ceil() as usize).clamp(1, 1 << 22);
                }
                batch *= 4;
            }
        });
        let mut rates = [(); 5].map(|_| Vec::with_capacity(samples));
        for _ in 0..samples {
            for ((f, &reps), rates) in contenders.iter_mut().zip(&reps).zip(rates.iter_mut()) {
                // Let the previous contender's idle pool threads stop
                // spinning, so they do not steal this one's cores.
                std::thread::sleep(std::time::Duration::from_millis(3));
                let start = Instant::now();
                f(reps);
                rates.push(flops * reps as f64 / start.elapsed().as_secs_f64() / 1e9);
            }
        }
        rates.map(|mut r| {
            r.sort_by(f64::total_cmp);
            r[r.len() / 2]
        })
    }
}

/// Relative agreement of two products (tolerance grows with the reduction length).
fn check_close<T: Element + LinalgScalar>(
    got: &ArrayView2<'_, T>,
    want: &ArrayView2<'_, T>,
    k: usize,
) -> anyhow::Result<()> {
    let eps = T::epsilon().to_f64().unwrap_or(1e-7);
    let tol = eps * (k as f64).sqrt() * 16.0 + eps;
    for ((ij, &g), &w) in got.indexed_iter().zip(want.iter()) {
        let (g, w) = (
            g.to_f64().unwrap_or(f64::NAN),
            w.to_f64().unwrap_or(f64::NAN),
        );
        let err = (g - w).abs() / w.abs().max(1.0);
        anyhow::ensure!(
            err <= tol,
            "element {ij:?}: {g} vs {w} (relative error {err:e} > {tol:e})"
        );
    }
    Ok(())
}

fn header() -> String {
    format!(
        "{:<21} {:>5} {:>5} {:>5} {:<4} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7} {:>6} {:>6} {:>6} {:>6}",
        "shape",
        "m",
        "k",
        "n",
        "type",
        "ours1t",
        "ours2t",
        "mm",
        "dot",
        "blk1t",
        "ours/mm",
        "2t/1t",
        "pk1t",
        "pk2t",
        "pk256"
    )
}

fn format_row(r: &Row) -> String {
    format!(
        "{:<21} {:>5} {:>5} {:>5} {:<4} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>7.2} {:>6.2} {:>5.0}% {:>5.0}% {:>5.0}%",
        r.shape,
        r.m,
        r.k,
        r.n,
        r.dtype,
        r.ours_1t,
        r.ours_2t,
        r.matrixmultiply,
        r.ndarray_dot,
        r.blocked_1t,
        r.ours_1t / r.matrixmultiply,
        r.ours_2t / r.ours_1t,
        100.0 * r.ours_1t / r.peak_1t,
        100.0 * r.ours_2t / r.peak_2t,
        100.0 * r.ours_1t / r.peak_256_1t
    )
}

/// Writes the CSV next to its final place, then renames it over (atomic).
fn write_csv(path: &Path, rows: &[Row], kernel: Kernel) -> anyhow::Result<()> {
    let dir = path.parent().context("CSV path has no parent")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "shape",
        "m",
        "k",
        "n",
        "dtype",
        "kernel",
        "ours_1t_gflops",
        "ours_2t_gflops",
        "matrixmultiply_gflops",
        "ndarray_dot_gflops",
        "ours_blocked_1t_gflops",
        "ratio_ours_1t_over_matrixmultiply",
        "speedup_2t_over_1t",
        "fma_peak_1t_gflops",
        "fma_peak_2t_gflops",
        "fraction_of_peak_1t",
        "fraction_of_peak_2t",
        "fma_peak_256bit_1t_gflops",
        "fraction_of_256bit_peak_1t",
    ])?;
    for r in rows {
        w.write_record([
            r.shape.to_string(),
            r.m.to_string(),
            r.k.to_string(),
            r.n.to_string(),
            r.dtype.to_string(),
            kernel.name().to_string(),
            format!("{:.2}", r.ours_1t),
            format!("{:.2}", r.ours_2t),
            format!("{:.2}", r.matrixmultiply),
            format!("{:.2}", r.ndarray_dot),
            format!("{:.2}", r.blocked_1t),
            format!("{:.3}", r.ours_1t / r.matrixmultiply),
            format!("{:.3}", r.ours_2t / r.ours_1t),
            format!("{:.2}", r.peak_1t),
            format!("{:.2}", r.peak_2t),
            format!("{:.3}", r.ours_1t / r.peak_1t),
            format!("{:.3}", r.ours_2t / r.peak_2t),
            format!("{:.2}", r.peak_256_1t),
            format!("{:.3}", r.ours_1t / r.peak_256_1t),
        ])?;
    }
    let bytes = w.into_inner().context("rendering the CSV")?;
    mlp::weights::write_atomic(path, &bytes)?;
    Ok(())
}

/// A progress bar on a terminal, plain lines otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    fn new(len: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(len);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        Progress { bar }
    }

    fn start(&self, what: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(what.to_string()),
            None => eprintln!("timing {what} ..."),
        }
    }

    fn done(&self, line: &str) {
        match &self.bar {
            Some(bar) => {
                bar.println(line);
                bar.inc(1);
            }
            None => eprintln!("{line}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
