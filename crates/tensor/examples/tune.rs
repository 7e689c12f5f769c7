//! Tuning helper: best-of-N GFLOP/s of ours vs matrixmultiply on one shape.
//! `cargo run -p tensor --release --example tune -- M K N TA TB [threads]`

use ndarray::Array2;
use std::time::Instant;

fn best(flops: f64, mut f: impl FnMut()) -> f64 {
    f();
    let once = {
        let t = Instant::now();
        f();
        t.elapsed().as_secs_f64()
    };
    let reps = ((0.02 / once).ceil() as usize).max(1);
    (0..15)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..reps {
                f();
            }
            flops * reps as f64 / t.elapsed().as_secs_f64() / 1e9
        })
        .fold(0.0, f64::max)
}

fn main() {
    std::env::set_var("MATMUL_NUM_THREADS", "1");
    let a: Vec<usize> = std::env::args()
        .skip(1)
        .map(|x| x.parse().unwrap())
        .collect();
    let (m, k, n, ta, tb) = (a[0], a[1], a[2], a[3] == 1, a[4] == 1);
    let threads = a.get(5).copied().unwrap_or(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let fill =
        |r, c| Array2::from_shape_fn((r, c), |(i, j)| ((i * 7 + j * 13) % 17) as f32 / 17.0 - 0.5);
    let a_s = if ta { fill(k, m) } else { fill(m, k) };
    let b_s = if tb { fill(n, k) } else { fill(k, n) };
    let av = if ta { a_s.t() } else { a_s.view() };
    let bv = if tb { b_s.t() } else { b_s.view() };
    let mut c = Array2::<f32>::zeros((m, n));
    let flops = 2.0 * (m * n * k) as f64;
    let ours = pool.install(|| {
        best(flops, || {
            tensor::gemm(1.0, &av, &bv, 0.0, &mut c.view_mut())
        })
    });
    let mm = best(flops, || {
        ndarray::linalg::general_mat_mul(1.0, &av, &bv, 0.0, &mut c)
    });
    println!(
        "{m}x{k}x{n} ours {ours:.1} mm {mm:.1} ratio {:.2}",
        ours / mm
    );
}
