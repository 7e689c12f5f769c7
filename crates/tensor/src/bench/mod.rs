//! The kernel benchmark behind `cargo xtask bench kernels` (cargo feature
//! `bench`): GFLOP/s of [`crate::gemm`] on the products training runs.
//!
//! For each [`Shape`] and element type it times ours on a 1-thread and a
//! 2-thread rayon pool, `matrixmultiply` (through ndarray's
//! `general_mat_mul`, one thread) and ndarray's allocating `dot`, and below
//! 1e8 flops also ours without the direct small-product path (the blocked
//! driver). Every figure is a median over round-robin samples, by wall time
//! and by CPU time (the process's CPU clock, all threads summed): on a
//! machine shared with other jobs the CPU-time figure is what the product
//! reaches on the cores it got, and the FMA peak is measured the same way
//! in the same run, so "% of peak" stays meaningful under load.

mod clock;
mod openblas;
mod shapes;
mod table;
mod timing;

use std::path::PathBuf;

use ndarray::{Array2, ArrayView2};

pub use openblas::OpenBlas;
pub use shapes::{Shape, SHAPES};

use crate::kernel::alone::TileData;
use crate::{Element, Kernel};
use timing::Contender;

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Timed samples per figure (the median is reported).
    pub samples: usize,
    /// Minimum duration of one sample in milliseconds (short products are repeated).
    pub sample_ms: u64,
    /// Kernel for "ours" (`None`: [`Kernel::detect`]'s).
    pub kernel: Option<Kernel>,
    /// Only shapes whose name contains this text.
    pub only: Option<String>,
    /// An OpenBLAS shared library to time beside ours (see [`OpenBlas`]).
    pub openblas: Option<PathBuf>,
}

impl Options {
    /// Options from their four values (see the fields).
    pub fn new(
        samples: usize,
        sample_ms: u64,
        kernel: Option<Kernel>,
        only: Option<String>,
    ) -> Options {
        Options {
            samples,
            sample_ms,
            kernel,
            only,
            openblas: None,
        }
    }

    /// The same options, also timing the OpenBLAS at `path`.
    pub fn with_openblas(self, path: Option<PathBuf>) -> Options {
        Options {
            openblas: path,
            ..self
        }
    }
}

/// The error of a benchmark run (a message naming what failed).
#[derive(Clone, Debug)]
pub struct BenchError(String);

impl std::fmt::Display for BenchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BenchError {}

/// GFLOP/s by wall time and by CPU time (per-thread CPU seconds, so the
/// figure a contender would reach with its cores to itself).
#[derive(Clone, Copy, Debug)]
pub struct Rate {
    /// Flops per wall-clock second, in GFLOP/s.
    pub wall: f64,
    /// Flops per CPU-second times the contender's threads, in GFLOP/s.
    pub cpu: f64,
}

impl Rate {
    const NAN: Rate = Rate {
        wall: f64::NAN,
        cpu: f64::NAN,
    };
}

/// The measured FMA peak of one element type on 1 and 2 threads.
#[derive(Clone, Copy, Debug)]
pub struct Peak {
    /// One thread.
    pub one: Rate,
    /// Two threads at once.
    pub two: Rate,
}

/// The f32 micro-kernel's tiles alone, without packing or the driver
/// (see `kernel::alone`): its own ceiling, next to the peak and the
/// products.
#[derive(Clone, Debug)]
pub struct TileAlone {
    /// The tile and its reduction, e.g. "10x32, k 256".
    pub tile: String,
    /// The same tile on every call (operands in L1 and L2).
    pub repeated: Rate,
    /// Tiles sweeping a packed `MC x KC` A block (L2) and a C of 1024
    /// columns, as inside a product.
    pub sweep: Rate,
}

/// One table row: a shape and element type, every contender's rates.
#[derive(Clone, Debug)]
pub struct Row {
    /// The product.
    pub shape: Shape,
    /// `f32` or `f64`.
    pub dtype: &'static str,
    /// Ours on 1 thread.
    pub ours_1t: Rate,
    /// Ours on a 2-thread pool.
    pub ours_2t: Rate,
    /// matrixmultiply (1 thread).
    pub matrixmultiply: Rate,
    /// ndarray's allocating `dot` (matrixmultiply underneath, 1 thread).
    pub ndarray_dot: Rate,
    /// Ours on 1 thread without the direct small-product path (NaN at and
    /// above [`SMALL_FLOPS`], where the paths are the same).
    pub blocked_1t: Rate,
    /// OpenBLAS on 1 thread (NaN without `--openblas`).
    pub openblas_1t: Rate,
    /// OpenBLAS on 2 of its own threads; by wall time only (its CPU
    /// figure is NaN: OpenBLAS itself decides how many threads a product
    /// gets, so CPU seconds cannot be turned into a per-core rate).
    pub openblas_2t: Rate,
}

/// Everything one run measured.
#[derive(Clone, Debug)]
pub struct Report {
    /// CPU model name.
    pub cpu_model: String,
    /// Load averages (1, 5, 15 min) before and after the run.
    pub load: (String, String),
    /// The kernel timed as "ours".
    pub kernel: Kernel,
    /// The OpenBLAS timed beside ours, if any: its identity and path.
    pub openblas: Option<String>,
    /// Samples per figure.
    pub samples: usize,
    /// FMA peak for f32 and f64.
    pub peaks: [Peak; 2],
    /// The f32 micro-kernel alone on 1 thread (see [`TileAlone`]).
    pub tile_alone: TileAlone,
    /// The table rows.
    pub rows: Vec<Row>,
}

/// Products above this many flops are timed with at most [`BIG_SAMPLES`] samples.
pub const BIG_FLOPS: f64 = 1e10;
/// Sample cap for products above [`BIG_FLOPS`].
pub const BIG_SAMPLES: usize = 7;
/// Below this many flops ours may take the direct small-product path, and
/// the blocked driver is timed too.
pub const SMALL_FLOPS: f64 = 1e8;

/// Runs the benchmark, reporting each finished row to `progress`.
pub fn run(options: &Options, progress: &mut dyn FnMut(&str)) -> Result<Report, BenchError> {
    if options.samples == 0 {
        return Err(BenchError("--samples must be at least 1".into()));
    }
    let kernel = options
        .kernel
        .unwrap_or_else(Kernel::detect)
        .check()
        .map_err(|e| BenchError(e.to_string()))?;
    // matrixmultiply's `threading` feature otherwise uses every core; the
    // comparison is single-threaded. Must happen before its first use.
    std::env::set_var("MATMUL_NUM_THREADS", "1");
    let load_before = clock::load_average();
    let pool = |n: usize| {
        crate::pool::pool_builder(n)
            .build()
            .map_err(|e| BenchError(format!("building a {n}-thread pool: {e}")))
    };
    let pools = [pool(1)?, pool(2)?];
    let openblas = options
        .openblas
        .as_deref()
        .map(OpenBlas::load)
        .transpose()?;
    if let Some(ob) = &openblas {
        progress(&format!(
            "timing {} from {} too",
            ob.identity,
            ob.path.display()
        ));
    }
    progress(&format!(
        "measuring the FMA peak ({} vectors) ...",
        kernel.name()
    ));
    let peaks = [false, true].map(|is_f64| Peak {
        one: timing::fma_peak(kernel, is_f64, 1, 0.2),
        two: timing::fma_peak(kernel, is_f64, 2, 0.2),
    });
    progress("timing the f32 micro-kernel alone ...");
    let mut tiles =
        crate::kernel::alone::TileBench::new(kernel).map_err(|e| BenchError(e.to_string()))?;
    let tile_alone = TileAlone {
        tile: tiles.label(),
        repeated: timing::tile_alone(&mut tiles, TileData::Repeated, 0.2),
        sweep: timing::tile_alone(&mut tiles, TileData::Sweep, 0.2),
    };
    drop(tiles);
    let mut rows = Vec::new();
    let only = options.only.as_deref().unwrap_or("");
    for shape in SHAPES.iter().filter(|s| s.name.contains(only)) {
        for is_f64 in [false, true] {
            let row = if is_f64 {
                bench_shape::<f64>(options, kernel, &pools, openblas.as_ref(), shape, "f64")?
            } else {
                bench_shape::<f32>(options, kernel, &pools, openblas.as_ref(), shape, "f32")?
            };
            progress(&table::format_row(&row, &peaks));
            rows.push(row);
        }
    }
    Ok(Report {
        cpu_model: clock::cpu_model(),
        load: (load_before, clock::load_average()),
        kernel,
        openblas: openblas.map(|ob| format!("{} from {}", ob.identity, ob.path.display())),
        samples: options.samples,
        peaks,
        tile_alone,
        rows,
    })
}

/// A seeded `r x c` matrix of values in [-1, 1) (splitmix64).
fn random<T: Element>(r: usize, c: usize, seed: &mut u64) -> Array2<T> {
    Array2::from_shape_simple_fn((r, c), || {
        *seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        T::from((z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0).unwrap_or_else(T::zero)
    })
}

/// Times every contender on one shape and element type.
fn bench_shape<T: Element>(
    options: &Options,
    kernel: Kernel,
    pools: &[rayon::ThreadPool; 2],
    openblas: Option<&OpenBlas>,
    shape: &Shape,
    dtype: &'static str,
) -> Result<Row, BenchError> {
    let Shape { m, k, n, .. } = *shape;
    let mut seed = 0x5eed;
    let a_store = if shape.a_transposed {
        random::<T>(k, m, &mut seed)
    } else {
        random::<T>(m, k, &mut seed)
    };
    let b_store = if shape.b_transposed {
        random::<T>(n, k, &mut seed)
    } else {
        random::<T>(k, n, &mut seed)
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
    let beta = T::from(shape.beta).unwrap_or_else(T::zero);
    let flops = 2.0 * m as f64 * n as f64 * k as f64;

    // Ours must agree with matrixmultiply before anything is timed.
    let mut c_mm = Array2::<T>::zeros((m, n));
    ndarray::linalg::general_mat_mul(T::one(), &a, &b, T::zero(), &mut c_mm);
    let mut c = Array2::<T>::zeros((m, n));
    crate::gemm_with_kernel(kernel, T::one(), &a, &b, T::zero(), &mut c.view_mut())
        .map_err(|e| BenchError(e.to_string()))?;
    let disagrees = |who: &str, e: String| {
        BenchError(format!(
            "{} {dtype}: {who} disagrees with matrixmultiply: {e}",
            shape.name
        ))
    };
    check_close(&c.view(), &c_mm.view(), k).map_err(|e| disagrees("ours", e))?;
    if let Some(ob) = openblas {
        let mut c_ob = Array2::<T>::zeros((m, n));
        ob.set_threads(1);
        ob.gemm(T::one(), &a, &b, T::zero(), &mut c_ob.view_mut())?;
        check_close(&c_ob.view(), &c_mm.view(), k).map_err(|e| disagrees("OpenBLAS", e))?;
    }

    let ours = |pool: &rayon::ThreadPool, c: &mut Array2<T>, reps: usize, direct: bool| {
        pool.install(|| {
            for _ in 0..reps {
                let mut c = c.view_mut();
                let done = if direct {
                    crate::gemm_with_kernel(kernel, T::one(), &a, &b, beta, &mut c)
                } else {
                    crate::gemm_blocked_with_kernel(kernel, T::one(), &a, &b, beta, &mut c)
                };
                done.expect("kernel checked above");
            }
        })
    };
    let (mut c1, mut c2, mut c3) = (c.clone(), c.clone(), c.clone());
    let (mut c4, mut c5) = (c.clone(), c);
    let mut ours_1t = |reps| ours(&pools[0], &mut c1, reps, true);
    let mut ours_2t = |reps| ours(&pools[1], &mut c2, reps, true);
    let small = flops < SMALL_FLOPS;
    let mut blocked_1t = |reps| ours(&pools[0], &mut c3, reps, false);
    let mut mm = |reps| {
        for _ in 0..reps {
            ndarray::linalg::general_mat_mul(T::one(), &a, &b, beta, &mut c_mm);
        }
    };
    let mut dot = |reps| {
        for _ in 0..reps {
            std::hint::black_box(a.dot(&b));
        }
    };
    let ob = |threads: usize, c: &mut Array2<T>, reps| {
        if let Some(ob) = openblas {
            ob.set_threads(threads);
            for _ in 0..reps {
                ob.gemm(T::one(), &a, &b, beta, &mut c.view_mut())
                    .expect("checked above");
            }
        }
    };
    let mut ob_1t = |reps| ob(1, &mut c4, reps);
    let mut ob_2t = |reps| ob(2, &mut c5, reps);
    // The threads ours really uses in the 2-thread pool (small products stay on one).
    let threads_2t = pools[1].install(|| crate::gemm::threads_for(m, k, n));
    let mut contenders = vec![
        Contender::new(1, &mut ours_1t),
        Contender::new(threads_2t, &mut ours_2t),
        Contender::new(1, &mut mm),
        Contender::new(1, &mut dot),
    ];
    if small {
        contenders.push(Contender::new(1, &mut blocked_1t));
    }
    if openblas.is_some() {
        contenders.push(Contender::new(1, &mut ob_1t));
        contenders.push(Contender::new(2, &mut ob_2t));
    }
    let samples = if flops > BIG_FLOPS {
        options.samples.min(BIG_SAMPLES)
    } else {
        options.samples
    };
    let rates = timing::round_robin(
        flops,
        samples,
        options.sample_ms as f64 / 1e3,
        &mut contenders,
    );
    let mut rest = rates[4..].iter().copied();
    let mut next = |present: bool| present.then(|| rest.next()).flatten().unwrap_or(Rate::NAN);
    let blocked_1t = next(small);
    let openblas_1t = next(openblas.is_some());
    let openblas_2t = Rate {
        cpu: f64::NAN,
        ..next(openblas.is_some())
    };
    Ok(Row {
        shape: *shape,
        dtype,
        ours_1t: rates[0],
        ours_2t: rates[1],
        matrixmultiply: rates[2],
        ndarray_dot: rates[3],
        blocked_1t,
        openblas_1t,
        openblas_2t,
    })
}

/// Relative agreement of two products (tolerance grows with the reduction length).
fn check_close<T: Element>(
    got: &ArrayView2<'_, T>,
    want: &ArrayView2<'_, T>,
    k: usize,
) -> Result<(), String> {
    let eps = T::epsilon().to_f64().unwrap_or(1e-7);
    let tol = eps * (k as f64).sqrt() * 16.0 + eps;
    for ((ij, &g), &w) in got.indexed_iter().zip(want.iter()) {
        let (g, w) = (
            g.to_f64().unwrap_or(f64::NAN),
            w.to_f64().unwrap_or(f64::NAN),
        );
        let err = (g - w).abs() / w.abs().max(1.0);
        if err.is_nan() || err > tol {
            return Err(format!(
                "element {ij:?}: {g} vs {w} (relative error {err:e} > {tol:e})"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_close_accepts_rounding_and_rejects_a_wrong_element() {
        let mut seed = 7;
        let want = random::<f32>(5, 4, &mut seed);
        assert!(want.iter().all(|x| (-1.0..1.0).contains(x)));
        let mut got = want.mapv(|x| x * (1.0 + f32::EPSILON));
        assert!(check_close(&got.view(), &want.view(), 100).is_ok());
        got[[3, 2]] += 1e-3;
        let err = check_close(&got.view(), &want.view(), 100).unwrap_err();
        assert!(err.contains("(3, 2)"), "{err}");
    }

    #[test]
    fn csv_has_a_header_and_one_full_line_per_row() {
        let rate = Rate {
            wall: 1.0,
            cpu: 2.0,
        };
        let peak = Peak {
            one: rate,
            two: rate,
        };
        let row = |dtype| Row {
            shape: SHAPES[1],
            dtype,
            ours_1t: rate,
            ours_2t: rate,
            matrixmultiply: rate,
            ndarray_dot: rate,
            blocked_1t: Rate::NAN,
            openblas_1t: Rate::NAN,
            openblas_2t: Rate::NAN,
        };
        let report = Report {
            cpu_model: "Some CPU, 2 cores".into(),
            load: ("1".into(), "2".into()),
            kernel: Kernel::Portable,
            openblas: None,
            samples: 3,
            peaks: [peak, peak],
            tile_alone: TileAlone {
                tile: "10x32, k 256".into(),
                repeated: rate,
                sweep: Rate {
                    wall: 0.5,
                    cpu: 1.0,
                },
            },
            rows: vec![row("f32"), row("f64")],
        };
        let csv = report.csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 3);
        let fields = lines[0].split(',').count();
        assert!(
            lines.iter().all(|l| l.split(',').count() == fields),
            "{csv}"
        );
        assert!(
            lines[1].starts_with("wgrad G^T*X,50,100,3072,0.999,f32,portable,Some CPU  2 cores,")
        );
        let table = report.table();
        assert!(table.contains("Some CPU, 2 cores") && table.contains("wgrad G^T*X"));
        assert!(lines[1].ends_with(",2.00,1.00"), "tile alone last: {csv}");
        assert!(
            table.contains("micro-kernel alone (10x32, k 256, 1 thread, by CPU time): repeated tile 2.0 GFLOP/s (100% of the peak)"),
            "{table}"
        );
        assert!(!table.contains("ours/ob"), "no OpenBLAS columns without it");

        // With OpenBLAS: its identity in the header and the CSV, its
        // columns in the table, and the CSV still rectangular.
        let ob_rate = Rate {
            wall: 4.0,
            cpu: 8.0,
        };
        let report = Report {
            openblas: Some("OpenBLAS 0.3.31, (core Zen)".into()),
            rows: vec![Row {
                openblas_1t: ob_rate,
                openblas_2t: ob_rate,
                ..row("f32")
            }],
            ..report
        };
        let csv = report.csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0].split(',').count(), fields);
        assert_eq!(lines[1].split(',').count(), fields, "{csv}");
        assert!(lines[1].contains(",OpenBLAS 0.3.31  (core Zen),"), "{csv}");
        let table = report.table();
        assert!(
            table.contains("OpenBLAS: OpenBLAS 0.3.31, (core Zen)"),
            "{table}"
        );
        // ours/ob = 2.0 / 8.0 by CPU time on 1 thread.
        let row = table.lines().last().unwrap();
        assert!(row.contains(" 0.25 "), "{table}");
        assert!(table.lines().any(|l| l.contains("ours/ob")), "{table}");
    }
}
