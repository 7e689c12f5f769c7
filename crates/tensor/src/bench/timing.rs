//! Sampling: median GFLOP/s by wall time and by CPU time, taken round robin
//! over the contenders, and the FMA peak measured the same way.

use super::clock::Stopwatch;
use super::Rate;
use crate::kernel::alone::{TileBench, TileData};
use crate::kernel::{flops_per_round, fma_rounds};
use crate::Kernel;

/// One timed contender: `run(reps)` performs `reps` products on `threads`
/// threads.
pub(super) struct Contender<'a> {
    /// Threads the contender computes on (its CPU-time rate is per thread
    /// times this, i.e. what it would reach with those cores to itself).
    pub threads: usize,
    /// Runs the product `reps` times.
    pub run: &'a mut dyn FnMut(usize),
}

impl<'a> Contender<'a> {
    /// A contender on `threads` threads.
    pub(super) fn new(threads: usize, run: &'a mut dyn FnMut(usize)) -> Contender<'a> {
        Contender { threads, run }
    }
}

/// Median rates of each contender over `samples` samples of at least
/// `sample_secs` each, taken round robin (sample 1 of every contender, then
/// sample 2, ...) so a burst of load from other processes hits all alike.
pub(super) fn round_robin(
    flops: f64,
    samples: usize,
    sample_secs: f64,
    contenders: &mut [Contender<'_>],
) -> Vec<Rate> {
    // Warm up and calibrate how many calls make one sample, on batches
    // long enough that a sleeping pool thread's wake-up does not count.
    let reps: Vec<usize> = contenders
        .iter_mut()
        .map(|c| {
            (c.run)(1);
            let mut batch = 1;
            loop {
                let sw = Stopwatch::start();
                (c.run)(batch);
                let (elapsed, _) = sw.elapsed();
                if elapsed >= sample_secs / 4.0 || batch >= 1 << 20 {
                    let once = (elapsed / batch as f64).max(1e-9);
                    break ((sample_secs / once).ceil() as usize).clamp(1, 1 << 22);
                }
                batch *= 4;
            }
        })
        .collect();
    let mut wall = vec![Vec::with_capacity(samples); contenders.len()];
    let mut cpu = wall.clone();
    for _ in 0..samples {
        for (i, c) in contenders.iter_mut().enumerate() {
            // Let the previous contender's idle pool threads stop spinning,
            // so they steal neither this one's cores nor its CPU time.
            std::thread::sleep(std::time::Duration::from_millis(3));
            let sw = Stopwatch::start();
            (c.run)(reps[i]);
            let (w, t) = sw.elapsed();
            let work = flops * reps[i] as f64 / 1e9;
            wall[i].push(work / w);
            cpu[i].push(work / t * c.threads as f64);
        }
    }
    wall.into_iter()
        .zip(cpu)
        .map(|(w, c)| Rate {
            wall: median(w),
            cpu: median(c),
        })
        .collect()
}

/// The middle value (NaN-safe ordering).
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The FMA peak of `threads` threads running `kernel`'s register-only loop
/// at once: the best of 3 runs of at least `min_secs`, by wall time and by
/// CPU time (flops per CPU-second times `threads`).
pub(super) fn fma_peak(kernel: Kernel, is_f64: bool, threads: usize, min_secs: f64) -> Rate {
    let per_round = flops_per_round(kernel, is_f64);
    let run = |iters: u64| {
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(move || std::hint::black_box(fma_rounds(kernel, is_f64, iters)));
            }
        });
        per_round * iters as f64 * threads as f64 / 1e9
    };
    run(100_000);
    best_of_three(1_000_000, threads, min_secs, run)
}

/// The best of three 1-thread rates of `bench`'s f32 tiles on `data`, each
/// run at least `min_secs` long (whole sweeps, so each run covers all of C
/// evenly), measured like [`fma_peak`].
pub(super) fn tile_alone(bench: &mut TileBench, data: TileData, min_secs: f64) -> Rate {
    let unit = bench.tiles_per_sweep();
    let mut run = |calls: u64| {
        bench.run(data, calls as usize);
        bench.flops_per_tile() * calls as f64 / 1e9
    };
    run(unit as u64);
    best_of_three(unit as u64, 1, min_secs, run)
}

/// The best wall and CPU rates of three runs of `run(units)` (which does
/// that many units of work on `threads` threads and returns the GFLOP done)
/// lasting at least `min_secs` each, doubling `units` from `start` until a
/// run is long enough. The CPU rate is per thread times `threads`.
fn best_of_three(
    start: u64,
    threads: usize,
    min_secs: f64,
    mut run: impl FnMut(u64) -> f64,
) -> Rate {
    let mut units = start;
    let mut best = Rate {
        wall: 0.0,
        cpu: 0.0,
    };
    let mut runs = 0;
    while runs < 3 {
        let sw = Stopwatch::start();
        let work = run(std::hint::black_box(units));
        let (w, t) = sw.elapsed();
        if w < min_secs {
            units = units.saturating_mul(2);
            continue;
        }
        best.wall = best.wall.max(work / w);
        best.cpu = best.cpu.max(work / t * threads as f64);
        runs += 1;
    }
    best
}
