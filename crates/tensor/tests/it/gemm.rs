//! GEMM vs `tensor::reference::gemm` on every kernel this CPU has.
//!
//! Tolerance: the classic forward bound for a dot product of length k,
//! `|got - want| <= (k + 2) * u * (|alpha| * sum_p |a_ip b_pj| + |beta c_ij|)`
//! with `u` the unit roundoff of the element type (plus a tiny absolute term
//! for underflow); any indexing or packing bug breaks it by orders of magnitude.

use ndarray::{s, Array2, ArrayView2, ArrayViewMut2, ShapeBuilder};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tensor::{
    available_kernels, gemm, gemm_blocked_with_kernel, gemm_with_kernel,
    gemm_with_kernel_on_all_threads, reference, Element, Kernel, ALL_KERNELS,
};

/// How an operand is laid out in memory.
#[derive(Clone, Copy, Debug)]
enum Layout {
    /// Row-major contiguous.
    Row,
    /// Column-major (the transposed view of a row-major array).
    Col,
    /// Every other row and column of a larger row-major array (no unit stride).
    Strided,
    /// Column-major but every other column (row stride 1, column stride 2 * rows).
    ColGap,
    /// Row-major with the row order reversed (negative row stride).
    RowRev,
    /// Column-major with both axes reversed (negative strides, no unit stride).
    BothRev,
}

const LAYOUTS: [Layout; 6] = [
    Layout::Row,
    Layout::Col,
    Layout::Strided,
    Layout::ColGap,
    Layout::RowRev,
    Layout::BothRev,
];

/// Storage that owns an operand's backing memory and hands out the view.
struct Operand<T> {
    store: Array2<T>,
    layout: Layout,
    rows: usize,
    cols: usize,
}

impl<T: Element> Operand<T> {
    fn new(rows: usize, cols: usize, layout: Layout, fill: impl FnMut() -> T) -> Self {
        let mut fill = fill;
        let store = match layout {
            Layout::Row | Layout::RowRev => Array2::from_shape_simple_fn((rows, cols), &mut fill),
            Layout::BothRev => Array2::from_shape_simple_fn((rows, cols).f(), &mut fill),
            Layout::Col => Array2::from_shape_simple_fn((rows, cols).f(), &mut fill),
            Layout::Strided => Array2::from_shape_simple_fn((2 * rows, 2 * cols + 1), &mut fill),
            Layout::ColGap => Array2::from_shape_simple_fn((rows, 2 * cols).f(), &mut fill),
        };
        Operand {
            store,
            layout,
            rows,
            cols,
        }
    }

    fn view(&self) -> ArrayView2<'_, T> {
        match self.layout {
            Layout::Row | Layout::Col => self.store.view(),
            Layout::Strided => self.store.slice(s![..;2, 1..;2]),
            Layout::ColGap => self.store.slice(s![.., ..;2]),
            Layout::RowRev => self.store.slice(s![..;-1, ..]),
            Layout::BothRev => self.store.slice(s![..;-1, ..;-1]),
        }
    }

    fn view_mut(&mut self) -> ArrayViewMut2<'_, T> {
        match self.layout {
            Layout::Row | Layout::Col => self.store.view_mut(),
            Layout::Strided => self.store.slice_mut(s![..;2, 1..;2]),
            Layout::ColGap => self.store.slice_mut(s![.., ..;2]),
            Layout::RowRev => self.store.slice_mut(s![..;-1, ..]),
            Layout::BothRev => self.store.slice_mut(s![..;-1, ..;-1]),
        }
    }

    fn dim(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }
}

fn unit_roundoff<T: Element>() -> f64 {
    T::epsilon().to_f64().unwrap() / 2.0
}

/// One GEMM case; returns a description of the first failure.
#[allow(clippy::too_many_arguments)]
fn run_case<T: Element>(
    kernel: Kernel,
    shape: (usize, usize, usize),
    layouts: (Layout, Layout, Layout),
    alpha: f64,
    beta: f64,
    seed: u64,
) -> Result<(), String> {
    run_case_on::<T>(Path::Auto, kernel, shape, layouts, alpha, beta, seed)
}

/// Which entry point a case calls.
#[derive(Clone, Copy, Debug)]
enum Path {
    /// `gemm_with_kernel` (small products take the direct path).
    Auto,
    /// `gemm_blocked_with_kernel` (always the blocked driver).
    Blocked,
}

fn run_case_on<T: Element>(
    path: Path,
    kernel: Kernel,
    (m, k, n): (usize, usize, usize),
    layouts: (Layout, Layout, Layout),
    alpha: f64,
    beta: f64,
    seed: u64,
) -> Result<(), String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut uniform = || T::from(rng.random_range(-1.0..1.0f64)).unwrap();
    let a = Operand::new(m, k, layouts.0, &mut uniform);
    let b = Operand::new(k, n, layouts.1, &mut uniform);
    // C's backing store (including the gaps of strided layouts) starts as
    // NaN; when beta != 0 the visible part is then overwritten with values.
    let mut c = Operand::new(m, n, layouts.2, T::nan);
    if beta != 0.0 {
        c.view_mut().mapv_inplace(|_| uniform());
    }
    let c_before = c.view().to_owned();
    let store_before = c.store.clone();
    let want = reference::gemm(alpha, &a.view(), &b.view(), beta, &c_before.view());
    let scale = reference::gemm_abs(&a.view(), &b.view());

    let entry = match path {
        Path::Auto => gemm_with_kernel::<T>,
        Path::Blocked => gemm_blocked_with_kernel::<T>,
    };
    entry(
        kernel,
        T::from(alpha).unwrap(),
        &a.view(),
        &b.view(),
        T::from(beta).unwrap(),
        &mut c.view_mut(),
    )
    .map_err(|e| e.to_string())?;

    let u = unit_roundoff::<T>();
    let got = c.view();
    for ((i, j), &w) in want.indexed_iter() {
        let g = got[[i, j]].to_f64().unwrap();
        let old = if beta == 0.0 {
            0.0
        } else {
            c_before[[i, j]].to_f64().unwrap().abs()
        };
        let tol = (k as f64 + 2.0) * u * (alpha.abs() * scale[[i, j]] + beta.abs() * old) + 1e-30;
        let within = (g - w).abs() <= tol;
        if !within {
            return Err(format!(
                "{kernel:?} {path:?} {}: m={m} k={k} n={n} layouts={layouts:?} alpha={alpha} beta={beta}: \
                 C[{i},{j}] = {g}, want {w} (tol {tol:e})",
                std::any::type_name::<T>()
            ));
        }
    }
    // Nothing outside the C view was written.
    let c_view_dim = c.dim();
    let mut touched = c.store.clone();
    match layouts.2 {
        Layout::Row | Layout::Col | Layout::RowRev | Layout::BothRev => {}
        Layout::Strided => touched.slice_mut(s![..;2, 1..;2]).fill(T::nan()),
        Layout::ColGap => touched.slice_mut(s![.., ..;2]).fill(T::nan()),
    }
    let mut before = store_before;
    match layouts.2 {
        Layout::Row | Layout::Col | Layout::RowRev | Layout::BothRev => {}
        Layout::Strided => before.slice_mut(s![..;2, 1..;2]).fill(T::nan()),
        Layout::ColGap => before.slice_mut(s![.., ..;2]).fill(T::nan()),
    }
    if matches!(layouts.2, Layout::Strided | Layout::ColGap) {
        let same = touched
            .iter()
            .zip(before.iter())
            .all(|(x, y)| x.to_bits_eq(*y));
        if !same {
            return Err(format!(
                "wrote outside the {c_view_dim:?} C view ({layouts:?})"
            ));
        }
    }
    Ok(())
}

/// Bitwise equality that treats NaN == NaN (for the untouched-padding check).
trait BitsEq {
    fn to_bits_eq(self, other: Self) -> bool;
}
impl<T: Element> BitsEq for T {
    fn to_bits_eq(self, other: Self) -> bool {
        (self.is_nan() && other.is_nan()) || self == other
    }
}

/// Runs `f` for each kernel, printing a note for the ones this CPU lacks.
fn for_each_kernel(mut f: impl FnMut(Kernel) -> Result<(), String>) -> Result<(), String> {
    for kernel in ALL_KERNELS {
        if kernel.is_available() {
            f(kernel)?;
        } else {
            println!("skipping {}: not supported by this CPU", kernel.name());
        }
    }
    Ok(())
}

fn sizes() -> impl Strategy<Value = usize> {
    prop_oneof![
        3 => prop::sample::select(vec![1usize, 7, 15, 17, 33, 100]),
        2 => 1usize..=40,
    ]
}

fn layouts() -> impl Strategy<Value = Layout> {
    prop::sample::select(LAYOUTS.to_vec())
}

fn scalars() -> impl Strategy<Value = (f64, f64)> {
    (
        prop::sample::select(vec![1.0, -0.5, 2.5]),
        prop::sample::select(vec![0.0, 1.0, -1.5]),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn gemm_matches_reference_on_random_shapes(
        m in sizes(), k in sizes(), n in sizes(),
        la in layouts(), lb in layouts(), lc in layouts(),
        (alpha, beta) in scalars(),
        seed in any::<u64>(),
    ) {
        let r = for_each_kernel(|kernel| {
            run_case::<f32>(kernel, (m, k, n), (la, lb, lc), alpha, beta, seed)?;
            run_case::<f64>(kernel, (m, k, n), (la, lb, lc), alpha, beta, seed)
        });
        prop_assert!(r.is_ok(), "{}", r.unwrap_err());
    }

    #[test]
    fn gemm_matches_reference_with_long_dimension(
        which in 0usize..3,
        small in prop::sample::select(vec![1usize, 7, 17, 33]),
        other in prop::sample::select(vec![1usize, 10, 15]),
        la in layouts(), lb in layouts(),
        (alpha, beta) in scalars(),
        seed in any::<u64>(),
    ) {
        let shape = match which {
            0 => (3072, small, other),
            1 => (small, 3072, other),
            _ => (small, other, 3072),
        };
        let r = for_each_kernel(|kernel| {
            run_case::<f32>(kernel, shape, (la, lb, Layout::Row), alpha, beta, seed)?;
            run_case::<f64>(kernel, shape, (la, lb, Layout::Col), alpha, beta, seed)
        });
        prop_assert!(r.is_ok(), "{}", r.unwrap_err());
    }
}

#[test]
fn training_shapes_match_reference_on_every_kernel() {
    // (m, k, n) and layouts as the MLP uses them: forward X W1^T, weight
    // gradient G^T X, second layer H W2^T and its two gradients.
    let cases = [
        ((100, 3072, 50), (Layout::Row, Layout::Col, Layout::Row)),
        ((50, 100, 3072), (Layout::Col, Layout::Row, Layout::Row)),
        ((100, 50, 10), (Layout::Row, Layout::Col, Layout::Row)),
        ((10, 100, 50), (Layout::Col, Layout::Row, Layout::Row)),
        ((100, 10, 50), (Layout::Row, Layout::Row, Layout::Row)),
        ((1000, 3072, 50), (Layout::Row, Layout::Col, Layout::Row)),
    ];
    for (shape, layouts) in cases {
        for_each_kernel(|kernel| {
            run_case::<f32>(kernel, shape, layouts, 1.0, 0.0, 7)?;
            run_case::<f64>(kernel, shape, layouts, 1.0, 0.0, 7)?;
            run_case::<f32>(kernel, shape, layouts, -0.5, 1.0, 8)
        })
        .unwrap();
    }
}

#[test]
fn every_edge_panel_width_matches_reference_on_every_kernel() {
    // Every width of the last column panel (n = 1..=48 covers 1..NR for
    // all tiles): a last panel whose valid columns fit one vector runs the
    // narrow tile, a wider one the full tile. Row-major and strided C, A
    // in place by rows and by columns.
    for n in 1..=48 {
        for layouts in [
            (Layout::Row, Layout::Col, Layout::Row),
            (Layout::Col, Layout::Row, Layout::Strided),
        ] {
            for_each_kernel(|kernel| {
                run_case::<f32>(kernel, (23, 37, n), layouts, 1.0, 0.0, n as u64)?;
                run_case::<f64>(kernel, (23, 37, n), layouts, -0.5, 1.0, n as u64)
            })
            .unwrap();
        }
    }
}

#[test]
fn dot_product_tail_columns_match_reference_on_every_kernel() {
    // Thin products with a row-major A and a column-contiguous B over a long
    // k: the AVX-512 f32 kernel computes the columns past the last full
    // vector (n % 16 of them, when at most 2) as dot products. Ragged row
    // tiles (m), a k that is not a multiple of the vector, every tail width
    // and its neighbours, row-major and strided C, beta zero and not.
    for (m, k) in [(1, 256), (7, 300), (13, 1001), (100, 3072)] {
        for n in [17, 18, 19, 33, 34, 49, 50, 51, 66, 82, 98] {
            for layouts in [
                (Layout::Row, Layout::Col, Layout::Row),
                (Layout::RowRev, Layout::Col, Layout::Strided),
            ] {
                for_each_kernel(|kernel| {
                    run_case::<f32>(kernel, (m, k, n), layouts, 1.0, 0.0, n as u64)?;
                    run_case::<f32>(kernel, (m, k, n), layouts, 2.5, -1.5, n as u64)
                })
                .unwrap();
            }
        }
    }
}

#[test]
fn beta_zero_ignores_nan_in_c_and_alpha_zero_scales_c() {
    for_each_kernel(|kernel| {
        let a = Array2::from_elem((5, 4), f32::NAN);
        let b = Array2::from_elem((4, 3), 1.0f32);
        let mut c = Array2::from_elem((5, 3), 2.0f32);
        // alpha = 0: A (even NaN) is not referenced; C = beta * C.
        gemm_with_kernel(kernel, 0.0, &a.view(), &b.view(), 0.5, &mut c.view_mut())
            .map_err(|e| e.to_string())?;
        assert!(c.iter().all(|&x| x == 1.0), "{kernel:?}: {c:?}");
        // k = 0: C = beta * C, with beta = 0 overwriting NaN.
        let a0 = Array2::<f32>::zeros((5, 0));
        let b0 = Array2::<f32>::zeros((0, 3));
        c.fill(f32::NAN);
        gemm_with_kernel(kernel, 1.0, &a0.view(), &b0.view(), 0.0, &mut c.view_mut())
            .map_err(|e| e.to_string())?;
        assert!(c.iter().all(|&x| x == 0.0), "{kernel:?}: {c:?}");
        Ok(())
    })
    .unwrap();
}

#[test]
fn nan_in_a_or_b_reaches_c() {
    for_each_kernel(|kernel| {
        let mut a = Array2::from_elem((23, 40), 1.0f32);
        a[[11, 17]] = f32::NAN;
        let b = Array2::from_elem((40, 37), 0.5f32);
        let mut c = Array2::zeros((23, 37));
        gemm_with_kernel(kernel, 1.0, &a.view(), &b.view(), 0.0, &mut c.view_mut())
            .map_err(|e| e.to_string())?;
        for ((i, _), &x) in c.indexed_iter() {
            assert_eq!(x.is_nan(), i == 11, "{kernel:?}");
        }
        Ok(())
    })
    .unwrap();
}

fn random_matrix(rows: usize, cols: usize, seed: u64) -> Array2<f32> {
    random_matrix_of(rows, cols, seed)
}

fn random_matrix_of<T: Element>(rows: usize, cols: usize, seed: u64) -> Array2<T> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_simple_fn((rows, cols), || {
        T::from(rng.random_range(-1.0..1.0f64)).unwrap()
    })
}

fn with_threads<R: Send>(n: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .unwrap()
        .install(f)
}

/// 1 vs 2, 3, 4 threads on every kernel: identical bits.
fn check_thread_identity<T: Element>(cases: &[(usize, usize, usize, bool, bool)]) {
    for &(m, k, n, ta, tb) in cases {
        let a_store = if ta {
            random_matrix_of::<T>(k, m, 1)
        } else {
            random_matrix_of::<T>(m, k, 1)
        };
        let b_store = if tb {
            random_matrix_of::<T>(n, k, 2)
        } else {
            random_matrix_of::<T>(k, n, 2)
        };
        let a = if ta { a_store.t() } else { a_store.view() };
        let b = if tb { b_store.t() } else { b_store.view() };
        let c0 = random_matrix_of::<T>(m, n, 3);
        let alpha = T::from(0.75).unwrap();
        let beta = T::from(-1.25).unwrap();
        for_each_kernel(|kernel| {
            let run = |threads: usize| {
                with_threads(threads, || {
                    let mut c = c0.clone();
                    gemm_with_kernel_on_all_threads(kernel, alpha, &a, &b, beta, &mut c.view_mut())
                        .unwrap();
                    c
                })
            };
            let one = run(1);
            for threads in [2, 3, 4] {
                let many = run(threads);
                let same = one.iter().zip(many.iter()).all(|(x, y)| x == y);
                assert!(
                    same,
                    "{kernel:?} m={m} k={k} n={n}: 1 vs {threads} threads differ"
                );
            }
            Ok(())
        })
        .unwrap();
    }
}

/// A transposed B whose columns lie a multiple of 4 KiB apart (W1 with
/// 3072 inputs: the packers read it in another order) gives the same bits
/// as the same values stored with padded rows, and matches the reference.
#[test]
fn a_4k_aliased_transposed_b_gives_the_bits_of_a_padded_one() {
    let (m, k, n) = (37, 3072 + 5, 70);
    let a = random_matrix(m, k, 7);
    let w = random_matrix(n, 3072 + 5, 8);
    for (k, pad) in [(3072, 0), (3072, 16), (1024, 0), (1029, 3)] {
        let aliased = w.slice(s![.., ..k]).to_owned();
        let mut padded_store = Array2::<f32>::zeros((n, k + pad + 16));
        padded_store.slice_mut(s![.., ..k]).assign(&aliased);
        let padded = padded_store.slice(s![.., ..k]);
        let a = a.slice(s![.., ..k]);
        for_each_kernel(|kernel| {
            let mut c1 = Array2::<f32>::zeros((m, n));
            let mut c2 = Array2::<f32>::zeros((m, n));
            gemm_with_kernel(kernel, 1.0, &a, &aliased.t(), 0.0, &mut c1.view_mut()).unwrap();
            gemm_with_kernel(kernel, 1.0, &a, &padded.t(), 0.0, &mut c2.view_mut()).unwrap();
            assert!(
                c1.iter()
                    .zip(c2.iter())
                    .all(|(x, y)| x.to_bits() == y.to_bits()),
                "{kernel:?} k={k}: aliased and padded B differ"
            );
            // The classic bound |error| <= k u sum |a_i b_i| (u = eps / 2).
            let want = a.mapv(f64::from).dot(&aliased.t().mapv(f64::from));
            let magnitude = a
                .mapv(|x| f64::from(x.abs()))
                .dot(&aliased.t().mapv(|x| f64::from(x.abs())));
            let u = f64::from(f32::EPSILON) / 2.0;
            for ((x, y), s) in c1.iter().zip(want.iter()).zip(magnitude.iter()) {
                assert!(
                    (f64::from(*x) - y).abs() <= k as f64 * u * s,
                    "{kernel:?} k={k}"
                );
            }
            Ok(())
        })
        .unwrap();
    }
}

#[test]
fn results_are_bit_identical_for_any_thread_count() {
    // Split across all threads whatever their size (`gemm` itself keeps
    // products this small on one thread), covering every loop order: the
    // forward mini-batch (thin C, thread-local B), the weight gradient
    // (column split), evaluation-like streaming (thin C, many rows), a
    // shared-B square-ish product, and several KC blocks with both operands
    // transposed.
    let cases = [
        (100, 3072, 50, false, true),
        (300, 3072, 50, false, true),
        (50, 100, 3072, true, false),
        (257, 129, 263, false, false),
        (64, 4000, 48, true, true),
        // Dot-product tail columns (n % 16 in 1..=2, long k): split by rows,
        // and by columns (a single row panel).
        (37, 300, 50, false, true),
        (7, 1000, 34, false, true),
        // Several KC, MC and NC blocks of the AVX2 blocking (shared packed
        // B slices, 2 column slices).
        (230, 900, 1400, false, false),
    ];
    check_thread_identity::<f32>(&cases);
    check_thread_identity::<f64>(&cases[..3]);
}

#[test]
fn default_gemm_uses_an_available_kernel() {
    let chosen = Kernel::detect();
    assert!(chosen.is_available());
    assert!(available_kernels().contains(&chosen));
    assert!(available_kernels().contains(&Kernel::Portable));
    let a = random_matrix(9, 13, 4);
    let b = random_matrix(13, 11, 5);
    let mut c = Array2::from_elem((9, 11), f32::NAN);
    gemm(1.0, &a.view(), &b.view(), 0.0, &mut c.view_mut());
    let want = reference::gemm(1.0, &a.view(), &b.view(), 0.0, &c.view());
    for (g, w) in c.iter().zip(want.iter()) {
        assert!((f64::from(*g) - w).abs() < 1e-5);
    }
}

#[test]
fn kernel_names_parse_and_bad_input_is_an_error() {
    for kernel in ALL_KERNELS {
        assert_eq!(Kernel::from_name(kernel.name()), Ok(kernel));
    }
    assert_eq!(Kernel::from_name(" AVX2 "), Ok(Kernel::Avx2));
    let err = Kernel::from_name("sse9").unwrap_err().to_string();
    assert!(err.contains("sse9") && err.contains("portable"), "{err}");
}

#[test]
fn shape_rule_reports_mismatches() {
    assert_eq!(tensor::gemm_shapes((2, 3), (3, 4), (2, 4)), Ok((2, 3, 4)));
    let err = tensor::gemm_shapes((2, 3), (4, 4), (2, 4)).unwrap_err();
    assert!(
        err.contains("A is 2x3") && err.contains("B is 4x4"),
        "{err}"
    );
    assert!(tensor::gemm_shapes((2, 3), (3, 4), (4, 2)).is_err());
}

#[test]
fn wide_network_shapes_match_reference_on_every_kernel() {
    // The products of a 1024-unit hidden layer (forward X W1^T, weight
    // gradient G^T X, the second layer and its gradients), and an odd-sized
    // wide product in every A / B layout: the packers' SIMD blocks and
    // scalar tails (k % 8, rows % MR, last panel width), shared packed B
    // slices with several KC and NC blocks.
    let cases = [
        ((100, 3072, 1024), (Layout::Row, Layout::Col, Layout::Row)),
        ((1024, 100, 700), (Layout::Col, Layout::Row, Layout::Row)),
        ((100, 10, 1024), (Layout::Row, Layout::Row, Layout::Row)),
        ((100, 1024, 10), (Layout::Row, Layout::Col, Layout::Row)),
        ((10, 100, 1024), (Layout::Col, Layout::Row, Layout::Row)),
    ];
    for (shape, layouts) in cases {
        for_each_kernel(|kernel| run_case::<f32>(kernel, shape, layouts, 1.0, 0.0, 11)).unwrap();
    }
    // Every level of the AVX2 (Zen 3) blocking at once, with a nonzero beta
    // (the weight update): 3 KC blocks (384, 384, 132), 3 MC blocks (102
    // rows), 2 NC slices (1360 columns), ragged edges everywhere; the C
    // prefetches of the next tile point past the last row and column.
    for_each_kernel(|kernel| {
        let layouts = (Layout::Row, Layout::Col, Layout::Row);
        run_case::<f32>(kernel, (230, 900, 1400), layouts, -0.5, 0.999, 14)
    })
    .unwrap();
    for la in LAYOUTS {
        for lb in LAYOUTS {
            for_each_kernel(|kernel| {
                run_case::<f32>(kernel, (131, 301, 259), (la, lb, Layout::Row), 1.0, 0.0, 12)?;
                run_case::<f64>(
                    kernel,
                    (131, 301, 259),
                    (la, lb, Layout::Col),
                    -0.5,
                    1.0,
                    13,
                )
            })
            .unwrap();
        }
    }
}

#[test]
fn small_products_match_reference_on_both_paths() {
    // The direct small-product path (no blocking, B packed once, A in place
    // or one packed MR panel at a time) and the blocked driver it replaces,
    // on the second layer's shapes and their wide-network friends, every
    // A / B layout, row-major and strided C (NaN-filled when beta = 0).
    let shapes = [
        (100, 50, 10),
        (10, 100, 50),
        (100, 10, 50),
        (1000, 50, 10),
        (100, 10, 1024),
        (7, 128, 33),
        (13, 1, 5),
        (1, 3, 1),
    ];
    for (idx, shape) in shapes.into_iter().enumerate() {
        for la in LAYOUTS {
            for lb in LAYOUTS {
                for path in [Path::Auto, Path::Blocked] {
                    let seed = idx as u64;
                    for_each_kernel(|kernel| {
                        let f32_case = (la, lb, Layout::Row);
                        let f64_case = (la, lb, Layout::Strided);
                        run_case_on::<f32>(path, kernel, shape, f32_case, 1.0, 0.0, seed)?;
                        run_case_on::<f64>(path, kernel, shape, f64_case, -0.5, 1.0, seed)?;
                        run_case_on::<f32>(path, kernel, shape, f64_case, 2.5, 0.0, seed)
                    })
                    .unwrap();
                }
            }
        }
    }
}

#[test]
fn small_products_are_bit_identical_for_any_thread_count() {
    // The direct path ignores the thread budget; the choice depends on the
    // shape only, so forcing a split changes nothing.
    let cases = [
        (100, 50, 10, false, true),
        (10, 100, 50, true, false),
        (100, 10, 50, false, false),
        (100, 10, 1024, false, false),
    ];
    check_thread_identity::<f32>(&cases);
    check_thread_identity::<f64>(&cases);
}

/// A row-major A that the blocked driver packs (wide C: many B panels reuse
/// it) gives, for every row count of a micro-panel and reduction lengths
/// around the packers' 8- and 16-step blocks, the bits of the same values
/// in column-major order (read in place or packed by another loop), and
/// matches the reference.
#[test]
fn a_packed_row_major_a_gives_the_bits_of_a_column_major_one() {
    let n = 300;
    for m in (1..=12).chain([23]) {
        for k in [7, 15, 16, 17, 40] {
            let a = random_matrix(m, k, 11);
            let a_cols = {
                let mut t = Array2::<f32>::zeros((m, k).f());
                t.assign(&a);
                t
            };
            let b = random_matrix(k, n, 12);
            for_each_kernel(|kernel| {
                let mut c1 = Array2::<f32>::zeros((m, n));
                let mut c2 = Array2::<f32>::zeros((m, n));
                gemm_blocked_with_kernel(
                    kernel,
                    1.0,
                    &a.view(),
                    &b.view(),
                    0.0,
                    &mut c1.view_mut(),
                )
                .unwrap();
                gemm_blocked_with_kernel(
                    kernel,
                    1.0,
                    &a_cols.view(),
                    &b.view(),
                    0.0,
                    &mut c2.view_mut(),
                )
                .unwrap();
                if c1
                    .iter()
                    .zip(c2.iter())
                    .any(|(x, y)| x.to_bits() != y.to_bits())
                {
                    return Err(format!(
                        "{kernel:?} m={m} k={k}: row- and column-major A differ"
                    ));
                }
                // The classic bound |error| <= k u sum |a_i b_i| (u = eps / 2).
                let want = a.mapv(f64::from).dot(&b.mapv(f64::from));
                let magnitude = a
                    .mapv(|x| f64::from(x.abs()))
                    .dot(&b.mapv(|x| f64::from(x.abs())));
                let u = f64::from(f32::EPSILON) / 2.0;
                for ((x, y), s) in c1.iter().zip(want.iter()).zip(magnitude.iter()) {
                    if (f64::from(*x) - y).abs() > k as f64 * u * s {
                        return Err(format!("{kernel:?} m={m} k={k}: {x} vs {y}"));
                    }
                }
                Ok(())
            })
            .unwrap();
        }
    }
}
