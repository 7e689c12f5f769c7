//! Tuning helper: best-of-15 GFLOP/s of ours vs matrixmultiply on one shape.
//!
//! `cargo run -p tensor --release --example tune -- M K N TA TB [threads]`
//! (TA / TB = 1: pass that operand as a transposed view). Environment:
//! `F64=1` for f64; `BETA=x` accumulates into C (`C = AB + x C`, as the
//! weight gradients do with 0.999; default 0); `BLOCKED=1` times ours without the direct small-product
//! path (`gemm_blocked_with_kernel`); `SPLIT=1` times ours inside
//! `with_small_products_split` (as the training step runs it: products
//! above 1e7 flops use every thread); `FIXED=calls` runs exactly that many products of ours
//! (or of matrixmultiply with `MM=1`) and prints their flops, for
//! `perf stat -e task-clock` (CPU time is robust on a busy machine);
//! `PAD=p` / `CPAD=p` give B / C rows p elements longer than they are wide;
//! `PEAK=seconds` (no other arguments needed) prints the wall-clock 1-thread
//! f32 FMA peak only. Prints the best wall-clock GFLOP/s and the median
//! GFLOP/s by CPU time (coarse: see `cpu_seconds`) of ours and matrixmultiply.

use ndarray::Array2;
use std::time::Instant;
use tensor::Element;

/// CPU seconds of all this process's threads (Linux `schedstat`, ns). The
/// kernel updates a running thread's figure only at scheduler ticks, so a
/// 50 ms sample can be off by several percent; `cargo xtask bench kernels`
/// uses the exact process CPU clock.
fn cpu_seconds() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return f64::NAN;
    };
    dir.filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .sum::<f64>()
        * 1e-9
}

/// `(best wall GFLOP/s, median CPU-time GFLOP/s x threads)` over 15 samples.
fn best(flops: f64, threads: usize, mut f: impl FnMut()) -> (f64, f64) {
    f();
    let once = {
        let t = Instant::now();
        f();
        t.elapsed().as_secs_f64()
    };
    let reps = ((0.05 / once).ceil() as usize).max(1);
    let (mut wall, mut cpu): (Vec<f64>, Vec<f64>) = (0..15)
        .map(|_| {
            let c = cpu_seconds();
            let t = Instant::now();
            for _ in 0..reps {
                f();
            }
            let work = flops * reps as f64 / 1e9;
            let w = t.elapsed().as_secs_f64();
            (work / w, work / (cpu_seconds() - c) * threads as f64)
        })
        .unzip();
    wall.sort_by(f64::total_cmp);
    cpu.sort_by(f64::total_cmp);
    (wall[14], cpu[7])
}

/// The environment variable `name` parsed as a `V`, if set and valid.
fn env<V: std::str::FromStr>(name: &str) -> Option<V> {
    std::env::var(name).ok()?.parse().ok()
}

fn run<T: Element>(args: &[usize]) {
    let (m, k, n, ta, tb) = (args[0], args[1], args[2], args[3] == 1, args[4] == 1);
    let threads = args.get(5).copied().unwrap_or(1);
    let pool = tensor::pool::pool_builder(threads).build().unwrap();
    let fill = |r, c| {
        Array2::from_shape_fn((r, c), |(i, j)| {
            T::from(((i * 7 + j * 13) % 17) as f64 / 17.0 - 0.5).unwrap()
        })
    };
    let a_s = if ta { fill(k, m) } else { fill(m, k) };
    // `PAD=p`: B's rows are p elements longer than its columns (a view of a
    // wider array), e.g. to time a transposed W1 whose rows do not alias in L1.
    let pad = env::<usize>("PAD").unwrap_or(0);
    let padded = |r, c| fill(r, c + pad).slice_move(ndarray::s![.., ..c]);
    let b_s = if tb { padded(n, k) } else { padded(k, n) };
    let av = if ta { a_s.t() } else { a_s.view() };
    let bv = if tb { b_s.t() } else { b_s.view() };
    // `CPAD=p`: C's rows are p elements longer than its columns.
    let cpad = env::<usize>("CPAD").unwrap_or(0);
    let mut c = Array2::<T>::zeros((m, n + cpad)).slice_move(ndarray::s![.., ..n]);
    let flops = 2.0 * (m * n * k) as f64;
    let blocked = std::env::var("BLOCKED").is_ok();
    let beta = env::<f64>("BETA").map_or(T::zero(), |b| T::from(b).unwrap());
    let split = std::env::var("SPLIT").is_ok();
    let ours = |c: &mut Array2<T>| {
        if split {
            tensor::with_small_products_split(|| {
                tensor::gemm(T::one(), &av, &bv, beta, &mut c.view_mut())
            });
        } else if blocked {
            let kernel = tensor::Kernel::detect();
            tensor::gemm_blocked_with_kernel(kernel, T::one(), &av, &bv, beta, &mut c.view_mut())
                .expect("detected kernel");
        } else {
            tensor::gemm(T::one(), &av, &bv, beta, &mut c.view_mut());
        }
    };
    if let Some(calls) = env::<usize>("FIXED") {
        let use_mm = std::env::var("MM").is_ok();
        pool.install(|| {
            for _ in 0..calls {
                if use_mm {
                    ndarray::linalg::general_mat_mul(T::one(), &av, &bv, beta, &mut c);
                } else {
                    ours(&mut c);
                }
            }
        });
        println!("{}", flops * calls as f64);
        return;
    }
    let ours = pool.install(|| best(flops, threads, || ours(&mut c)));
    let mm = best(flops, 1, || {
        ndarray::linalg::general_mat_mul(T::one(), &av, &bv, beta, &mut c)
    });
    let is_f64 = std::mem::size_of::<T>() == 8;
    let peak = tensor::measure_fma_peak(tensor::Kernel::detect(), is_f64, 0.2).unwrap_or(f64::NAN);
    println!(
        "{m}x{k}x{n} wall: ours {:.1} mm {:.1} (1-thread peak {peak:.1}); CPU time: ours {:.1} mm {:.1} ratio {:.2}",
        ours.0, mm.0, ours.1, mm.1, ours.1 / mm.1
    );
}

fn main() {
    std::env::set_var("MATMUL_NUM_THREADS", "1");
    if let Ok(secs) = std::env::var("PEAK").map(|v| v.parse::<f64>().unwrap_or(2.0)) {
        // Just the 1-thread FMA peak (f32, detected kernel's vectors), for
        // `perf stat`: divide by the CPU utilisation it reports.
        let peak = tensor::measure_fma_peak(tensor::Kernel::detect(), false, secs).unwrap();
        println!("{peak:.1}");
        return;
    }
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|x| x.parse().expect("numbers: M K N TA TB [threads]"))
        .collect();
    assert!(args.len() >= 5, "usage: tune M K N TA TB [threads]");
    if std::env::var("F64").is_ok() {
        run::<f64>(&args);
    } else {
        run::<f32>(&args);
    }
}
