//! The direct path against a scalar reference, bit for bit.
//!
//! The reference spells out the arithmetic every SIMD kernel (AVX2,
//! AVX-512) gives each element of C on the direct path: `acc = 0`, then
//! `acc = a[i, p].mul_add(b[p, j], acc)` for `p` ascending, `y = acc *
//! alpha`, and `y = c.mul_add(beta, y)` when `beta != 0`. Trained networks
//! depend on these bits, so any kernel change that reorders or splits the
//! reduction fails here. (The portable kernel rounds the product and the
//! sum separately and is not covered.)

use ndarray::{s, Array2, ArrayView2, ArrayViewMut2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::kernel::x86::{Avx2, Avx512};
use crate::kernel::MicroKernel;
use crate::{gemm_with_kernel, Element, Kernel};

/// The FMA-based kernels this CPU can run.
fn fma_kernels() -> Vec<Kernel> {
    [Kernel::Avx512, Kernel::Avx2]
        .into_iter()
        .filter(|k| k.is_available())
        .collect()
}

/// The reference arithmetic (see the module docs).
trait Fma: Element {
    /// `self * b + c` with one rounding.
    fn fma(self, b: Self, c: Self) -> Self;
    /// The bit pattern (widened to 64 bits).
    fn bits(self) -> u64;
}
impl Fma for f32 {
    fn fma(self, b: f32, c: f32) -> f32 {
        self.mul_add(b, c)
    }
    fn bits(self) -> u64 {
        u64::from(self.to_bits())
    }
}
impl Fma for f64 {
    fn fma(self, b: f64, c: f64) -> f64 {
        self.mul_add(b, c)
    }
    fn bits(self) -> u64 {
        self.to_bits()
    }
}

fn reference<T: Fma>(
    alpha: T,
    a: &ArrayView2<T>,
    b: &ArrayView2<T>,
    beta: T,
    c: &mut ArrayViewMut2<T>,
) {
    let (m, k) = a.dim();
    let n = b.ncols();
    for i in 0..m {
        for j in 0..n {
            let mut acc = T::zero();
            for p in 0..k {
                acc = a[[i, p]].fma(b[[p, j]], acc);
            }
            let mut y = acc * alpha;
            if beta != T::zero() {
                y = c[[i, j]].fma(beta, y);
            }
            c[[i, j]] = y;
        }
    }
}

/// How an operand sits in memory.
#[derive(Clone, Copy, Debug)]
enum Layout {
    /// Row-major.
    Row,
    /// The transposed view of a row-major array (unit row stride).
    Col,
    /// Every other row and column of a larger array.
    Strided,
    /// Row-major with the rows reversed (negative row stride).
    RowRev,
    /// Column-major with both axes reversed.
    BothRev,
}

const LAYOUTS: [Layout; 5] = [
    Layout::Row,
    Layout::Col,
    Layout::Strided,
    Layout::RowRev,
    Layout::BothRev,
];

/// Backing storage large enough for a `rows x cols` view in `layout`.
fn storage<T: Element>(
    rows: usize,
    cols: usize,
    layout: Layout,
    rng: &mut ChaCha8Rng,
) -> Array2<T> {
    let (r, c) = match layout {
        Layout::Row | Layout::RowRev => (rows, cols),
        Layout::Col | Layout::BothRev => (cols, rows),
        Layout::Strided => (2 * rows, 2 * cols + 1),
    };
    // Mixed magnitudes, so a reordered sum rounds differently.
    Array2::from_shape_simple_fn((r, c), || {
        let x: f64 = rng.random_range(-1.0..1.0);
        T::from(x * 2f64.powi(rng.random_range(-6..6))).unwrap()
    })
}

fn view<T>(store: &Array2<T>, layout: Layout) -> ArrayView2<'_, T> {
    match layout {
        Layout::Row => store.view(),
        Layout::Col => store.t(),
        Layout::Strided => store.slice(s![..;2, ..;2]).slice_move(s![.., ..-1]),
        Layout::RowRev => store.slice(s![..;-1, ..]),
        Layout::BothRev => store.t().slice_move(s![..;-1, ..;-1]),
    }
}

fn view_mut<T>(store: &mut Array2<T>, layout: Layout) -> ArrayViewMut2<'_, T> {
    match layout {
        Layout::Row => store.view_mut(),
        Layout::Col => store.view_mut().reversed_axes(),
        Layout::Strided => store.slice_mut(s![..;2, ..;2]).slice_move(s![.., ..-1]),
        Layout::RowRev => store.slice_mut(s![..;-1, ..]),
        Layout::BothRev => store
            .view_mut()
            .reversed_axes()
            .slice_move(s![..;-1, ..;-1]),
    }
}

/// One product on every FMA kernel, compared bit for bit with the
/// reference; with `beta == 0` C starts as NaN (it must not be read).
fn check<T: Fma>(
    (m, k, n): (usize, usize, usize),
    (la, lb, lc): (Layout, Layout, Layout),
    (alpha, beta): (f64, f64),
    rng: &mut ChaCha8Rng,
) where
    Avx512: MicroKernel<T>,
    Avx2: MicroKernel<T>,
{
    let (alpha, beta) = (T::from(alpha).unwrap(), T::from(beta).unwrap());
    let a_store = storage::<T>(m, k, la, rng);
    let b_store = storage::<T>(k, n, lb, rng);
    let mut c0 = storage::<T>(m, n, lc, rng);
    if beta == T::zero() {
        c0.fill(T::nan());
    }
    let (a, b) = (view(&a_store, la), view(&b_store, lb));
    assert_eq!((a.dim(), b.dim()), ((m, k), (k, n)));
    let mut want = c0.clone();
    reference(alpha, &a, &b, beta, &mut view_mut(&mut want, lc));
    for kernel in fma_kernels() {
        // As dispatched, then on the kernel's own tiles when the product is
        // direct: the CPU picks tiles or small kernels for f32, so both
        // must give the reference's bits.
        for tiles in [false, true] {
            let mut got = c0.clone();
            let mut c = view_mut(&mut got, lc);
            if !tiles {
                gemm_with_kernel(kernel, alpha, &a, &b, beta, &mut c).unwrap();
            } else if !run_tiles(kernel, alpha, &a, &b, beta, &mut c) {
                continue;
            }
            let (got, want) = (view(&got, lc), view(&want, lc));
            for ((i, j), w) in want.indexed_iter() {
                let g = got[[i, j]];
                assert!(
                    g.bits() == w.bits(),
                    "{kernel:?} (tiles only: {tiles}) {}: {m}x{k}x{n} layouts {la:?} {lb:?} \
                     {lc:?}, alpha {alpha:?}, beta {beta:?}: C[{i}, {j}] = {g:?}, reference {w:?}",
                    std::any::type_name::<T>(),
                );
            }
        }
    }
}

/// The direct path on `kernel`'s register tiles (never the small kernels),
/// if the product is direct; `false` (C untouched) if not.
fn run_tiles<T: Element>(
    kernel: Kernel,
    alpha: T,
    a: &ArrayView2<'_, T>,
    b: &ArrayView2<'_, T>,
    beta: T,
    c: &mut ArrayViewMut2<'_, T>,
) -> bool
where
    Avx512: MicroKernel<T>,
    Avx2: MicroKernel<T>,
{
    let (m, k) = a.dim();
    let n = b.ncols();
    if m == 0 || n == 0 || k == 0 || alpha == T::zero() || !kernel.is_available() {
        return false;
    }
    match kernel {
        Kernel::Avx512 if super::eligible::<T, Avx512>(m, k, n) => {
            super::gemm_tiles(Avx512, alpha, a, b, beta, c)
        }
        Kernel::Avx2 if super::eligible::<T, Avx2>(m, k, n) => {
            super::gemm_tiles(Avx2, alpha, a, b, beta, c)
        }
        _ => return false,
    }
    true
}

#[test]
fn layer2_shapes_match_the_fma_reference_bit_for_bit() {
    // (m, k, n), A / B layouts as training passes them, beta.
    let cases = [
        ((100, 50, 10), Layout::Row, Layout::Col, 0.0), // H * W2^T
        ((10, 100, 50), Layout::Col, Layout::Row, 0.999), // G2^T * H
        ((100, 10, 50), Layout::Row, Layout::Row, 0.0), // G2 * W2
        ((10000, 50, 10), Layout::Row, Layout::Col, 0.0), // eval H * W2^T
        ((100, 10, 1024), Layout::Row, Layout::Row, 0.0), // wide G2 * W2
    ];
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    for (shape, la, lb, beta) in cases {
        for lc in [Layout::Row, Layout::Col, Layout::Strided] {
            for alpha in [1.0, -0.75] {
                for beta in [beta, 0.0, -1.25] {
                    check::<f32>(shape, (la, lb, lc), (alpha, beta), &mut rng);
                    check::<f64>(shape, (la, lb, lc), (alpha, beta), &mut rng);
                }
            }
        }
    }
}

#[test]
fn awkward_sizes_and_layouts_match_the_fma_reference_bit_for_bit() {
    // Every n in 1..=33 with every m in 1..=20, and every k in 1..=128,
    // with random layouts of A, B and C, alpha and beta.
    let mut rng = ChaCha8Rng::seed_from_u64(2024);
    let pick = |rng: &mut ChaCha8Rng| LAYOUTS[rng.random_range(0..LAYOUTS.len())];
    let scales = [
        (1.0, 0.0),
        (0.5, 0.0),
        (-2.25, 0.999),
        (1.0, -1.5),
        (3.0, 1.0),
    ];
    let mut cases = Vec::new();
    for n in 1..=33 {
        for m in 1..=20 {
            cases.push((m, rng.random_range(1..=128), n));
        }
    }
    for k in 1..=128 {
        cases.push((rng.random_range(1..=40), k, rng.random_range(1..=40)));
    }
    for (idx, shape) in cases.into_iter().enumerate() {
        let layouts = (pick(&mut rng), pick(&mut rng), pick(&mut rng));
        let scale = scales[idx % scales.len()];
        check::<f32>(shape, layouts, scale, &mut rng);
        if idx % 4 == 0 {
            check::<f64>(shape, layouts, scale, &mut rng);
        }
    }
}
