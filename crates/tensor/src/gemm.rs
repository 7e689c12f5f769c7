//! The BLIS-style blocked GEMM driver: cache blocking, packing, threading.
//!
//! Loops, outermost first (names as in the BLIS papers): `jc` (columns of C
//! in blocks of `NC`), `pc` (the reduction in blocks of `KC`; the first block
//! applies `beta`, later ones accumulate with `beta = 1`), `ic` (rows in
//! blocks of `MC`), `jr` / `ir` (`NR` / `MR` micro-panels, one micro-kernel
//! call per tile). Which operand is packed where depends on the shape:
//!
//! - thin C (at most `FEW_PANELS` panels, e.g. the 50 hidden units): all B
//!   micro-panels of a `KC` slice stay in L1 and each A micro-panel visits
//!   them all (`ir` outside `jr`);
//! - few rows (`m <= MC`, a mini-batch): each thread packs the B panels it
//!   needs right before use (no shared buffer, no synchronisation);
//! - otherwise B is packed once and shared: one `KC x NC` slice at a time
//!   (`jc, pc, ic`), or for thin C all of `k` at once with `pc` inside `ic`.
//!
//! When A's rows and B's columns are contiguous along a long `k` (the
//! forward `X * W1^T`) and C is thin, the last `n % LANES` columns (at most
//! `DOT.1` of them) are not padded to a whole vector: the kernel's
//! dot-product tiles compute them per `ic` block, right after that block's
//! tiles (see `dot_tail`).
//!
//! Small products (under 1e8 flops with `k <= 128` and a small B, like the
//! second layer's `100x50 * 50x10`) skip all of this: see `direct`.
//!
//! Threads split the tile grid into contiguous ranges of whole `MR`-row or
//! `NR`-column panels. Every C element is produced by the same micro-kernel
//! arithmetic over the same `KC` blocks in the same order whatever the
//! thread count and whichever of the loop orders above runs, so results are
//! bit-identical for 1 or N threads.

use std::cell::Cell;

use ndarray::{s, ArrayView2, ArrayViewMut2, Axis};

mod direct;

use crate::kernel::{portable::Portable, ALayout, Ahead, DotTile, Kernel, MicroKernel, Tile};
use crate::Element;

/// Below this many flops (`2 m n k`) a product runs on the calling thread
/// only. The training step's products (about 3e7 flops each) lose time on two
/// threads here (waking the second pool thread costs more than it saves:
/// `cargo xtask bench train --threads 2` went from 0.37 s to 0.33 s per epoch
/// when they stopped splitting), while evaluation (3e9) and 1024^3 (2e9)
/// gain about 1.8x.
const PARALLEL_MIN_FLOPS: f64 = 1.0e8;

/// The split threshold inside [`with_small_products_split`]: the training
/// step's products (`100x3072x50`, 3e7 flops) split too.
const DEDICATED_MIN_FLOPS: f64 = 1.0e7;

thread_local! {
    /// The split threshold of products called from this thread.
    static MIN_SPLIT_FLOPS: std::cell::Cell<f64> = const { std::cell::Cell::new(PARALLEL_MIN_FLOPS) };
}

/// Runs `f` with the products it calls on this thread split over the
/// current rayon pool from 1e7 flops on instead of 1e8: for a pool that
/// runs one training alone (`cargo xtask train`), whose threads are
/// otherwise idle during the training step. With pinned workers a 2-thread
/// epoch of the report's network went from 0.38 s to 0.31-0.34 s on a Zen 4.
/// Not for a pool shared by concurrent trials: there the other thread is
/// busy, and a half-product waits for it (`final-train` took 20.2 s instead
/// of 18.1 s). Results do not change: which thread computes a block never
/// changes its arithmetic. Inside it, [`crate::with_spinning_partners`]
/// also keeps the pool's other workers awake for those splits.
pub fn with_small_products_split<R>(f: impl FnOnce() -> R) -> R {
    /// Restores the previous threshold, also when `f` panics.
    struct Restore(f64);
    impl Drop for Restore {
        fn drop(&mut self) {
            MIN_SPLIT_FLOPS.with(|t| t.set(self.0));
        }
    }
    let _restore = Restore(MIN_SPLIT_FLOPS.with(|t| t.replace(DEDICATED_MIN_FLOPS)));
    f()
}

/// Whether this thread is inside [`with_small_products_split`].
pub(crate) fn splits_small_products() -> bool {
    MIN_SPLIT_FLOPS.with(|t| t.get()) == DEDICATED_MIN_FLOPS
}

/// The threads a product of `m x k` by `k x n` uses in the current rayon
/// pool: one below [`PARALLEL_MIN_FLOPS`] (or 1e7 inside
/// [`with_small_products_split`]), else the pool's size.
pub(crate) fn threads_for(m: usize, k: usize, n: usize) -> usize {
    let flops = 2.0 * m as f64 * n as f64 * k as f64;
    if flops < MIN_SPLIT_FLOPS.with(|t| t.get()) {
        1
    } else {
        rayon::current_num_threads()
    }
}
/// Below this many packed B elements, B is packed on the calling thread only.
const PARALLEL_PACK_MIN: usize = 32 * 1024;
/// A column block with at most this many `NR` panels is "thin": see `blocking`.
const FEW_PANELS: usize = 3;
/// Bytes of all B micro-panels of a thin block's `KC` slice (kept in L1).
const KC_FEW_BYTES: usize = 32 << 10;
/// Above this many rows a thin product streams A past B in long `KC` runs.
const FEW_LOCAL_ROWS: usize = 128;
/// Bytes of a thin block's `KC` slice of B when streaming many rows (L2).
const KC_FEW_STREAM_BYTES: usize = 256 << 10;
/// Reduction rows per block of the transposing B packer.
const PACK_ROWS: usize = 64;
/// Pack A when a column block has at least this many `NR` panels.
const PACK_A_MIN_PANELS: usize = 8;

/// The element-type hooks behind [`Element`]: per-type kernel dispatch and
/// per-thread scratch buffers. Sealed: only `f32` and `f64` implement it.
pub trait GemmScalar: Sized {
    /// Runs the driver with `kernel`'s micro-kernel for this element type.
    #[doc(hidden)]
    fn dispatch(
        kernel: Kernel,
        alpha: Self,
        a: &ArrayView2<'_, Self>,
        b: &ArrayView2<'_, Self>,
        beta: Self,
        c: &mut ArrayViewMut2<'_, Self>,
        run: Run,
    );

    /// Takes this thread's scratch vector for `slot` (leaving an empty one).
    #[doc(hidden)]
    fn take_scratch(slot: Slot) -> Vec<Self>;

    /// Gives a scratch vector back to this thread's `slot`.
    #[doc(hidden)]
    fn put_scratch(slot: Slot, buf: Vec<Self>);
}

/// How one call may run.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub struct Run {
    /// Threads of the current rayon pool the product may use.
    pub n_threads: usize,
    /// Whether a small product may take the direct path (see `direct`);
    /// `false` forces the blocked driver (benchmarks compare the two).
    pub direct: bool,
}

/// Which per-thread scratch buffer.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub enum Slot {
    /// Packed B (held by the thread that runs `gemm`).
    B,
    /// Packed A (held by each worker).
    A,
    /// B micro-panels a worker packs for itself.
    Panels,
}

macro_rules! impl_gemm_scalar {
    ($t:ty, $scratch:ident, $avx512:ident) => {
        thread_local! {
            /// This thread's scratch buffers, one per [`Slot`].
            static $scratch: [Cell<Vec<$t>>; 3] =
                const { [Cell::new(Vec::new()), Cell::new(Vec::new()), Cell::new(Vec::new())] };
        }

        impl GemmScalar for $t {
            fn dispatch(
                kernel: Kernel,
                alpha: $t,
                a: &ArrayView2<'_, $t>,
                b: &ArrayView2<'_, $t>,
                beta: $t,
                c: &mut ArrayViewMut2<'_, $t>,
                run: Run,
            ) {
                match kernel {
                    #[cfg(target_arch = "x86_64")]
                    Kernel::Avx512 => $avx512(alpha, a, b, beta, c, run),
                    #[cfg(target_arch = "x86_64")]
                    Kernel::Avx2 => {
                        gemm_driver(crate::kernel::x86::Avx2, alpha, a, b, beta, c, run)
                    }
                    _ => gemm_driver(Portable, alpha, a, b, beta, c, run),
                }
            }

            fn take_scratch(slot: Slot) -> Vec<$t> {
                $scratch.with(|s| s[slot as usize].take())
            }

            fn put_scratch(slot: Slot, buf: Vec<$t>) {
                $scratch.with(|s| s[slot as usize].set(buf));
            }
        }
    };
}

impl_gemm_scalar!(f32, SCRATCH_F32, avx512_f32);
impl_gemm_scalar!(f64, SCRATCH_F64, avx512_f64);

/// The AVX-512 driver for f32: the 8 x 48 tiles of
/// [`Avx512Thin`](crate::kernel::x86::Avx512Thin) for a thin product they
/// suit (see [`thin_tiles_suit`]), else the 10 x 32 tiles. Both give the
/// same bits.
#[cfg(target_arch = "x86_64")]
fn avx512_f32(
    alpha: f32,
    a: &ArrayView2<'_, f32>,
    b: &ArrayView2<'_, f32>,
    beta: f32,
    c: &mut ArrayViewMut2<'_, f32>,
    run: Run,
) {
    use crate::kernel::x86::{Avx512, Avx512Thin};
    if thin_tiles_suit::<Avx512, Avx512Thin>(a, b, run) {
        // Not direct: `Avx512` would not have taken it (checked).
        let run = Run {
            direct: false,
            ..run
        };
        gemm_driver(Avx512Thin, alpha, a, b, beta, c, run)
    } else {
        gemm_driver(Avx512, alpha, a, b, beta, c, run)
    }
}

/// The AVX-512 driver for f64 (10 x 16 tiles).
#[cfg(target_arch = "x86_64")]
fn avx512_f64(
    alpha: f64,
    a: &ArrayView2<'_, f64>,
    b: &ArrayView2<'_, f64>,
    beta: f64,
    c: &mut ArrayViewMut2<'_, f64>,
    run: Run,
) {
    gemm_driver(crate::kernel::x86::Avx512, alpha, a, b, beta, c, run)
}

/// Whether `thin`'s tiles can stand in for `wide`'s on this product: `wide`
/// would run it on the blocked path (not the direct one) and the columns
/// left after the dot-product tail fill one `thin` panel but more than one
/// `wide` panel (with the same lanes and tail, `thin` then runs the same
/// arithmetic in fewer, fuller tiles).
#[cfg(target_arch = "x86_64")]
fn thin_tiles_suit<K: MicroKernel<f32>, Thin: MicroKernel<f32>>(
    a: &ArrayView2<'_, f32>,
    b: &ArrayView2<'_, f32>,
    run: Run,
) -> bool {
    let (m, k) = a.dim();
    let n = b.ncols();
    if run.direct && direct::eligible::<f32, K>(m, k, n) {
        return false;
    }
    let main = n - dot_tail::<f32, K>(a, b);
    // The same lanes and tail, and the same thin `KC` (see `blocking`).
    let same_arithmetic = (Thin::LANES, Thin::DOT, Thin::KC_NR) == (K::LANES, K::DOT, K::KC_NR);
    same_arithmetic && K::NR < main && main <= Thin::NR
}

/// Runs `f` on a 64-byte aligned scratch slice of `len` elements, reusing this
/// thread's buffer (no allocation once it is large enough). Re-entrant: a
/// nested call on the same thread just gets a fresh buffer.
fn with_scratch<T: Element, R>(slot: Slot, len: usize, f: impl FnOnce(&mut [T]) -> R) -> R {
    let pad = 64 / std::mem::size_of::<T>();
    let mut buf = T::take_scratch(slot);
    if buf.len() < len + pad {
        buf.clear();
        buf.resize(len + pad, T::zero());
    }
    let offset = buf.as_ptr().align_offset(64);
    let offset = if offset <= pad { offset } else { 0 };
    let result = f(&mut buf[offset..offset + len]);
    T::put_scratch(slot, buf);
    result
}

/// Cache-blocking sizes for one call (independent of the thread count).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Blocking {
    pub(crate) kc: usize,
    nc: usize,
    pub(crate) mc: usize,
    /// Loop `ir` outside `jr` (few B panels).
    a_outer: bool,
}

/// The blocking `K` uses on an `m x k` by `k x n` product (also the shape
/// of `kernel::alone`'s tile benchmark).
pub(crate) fn blocking<T, K: MicroKernel<T>>(m: usize, n: usize, k: usize) -> Blocking {
    let size = std::mem::size_of::<T>();
    let (mr, nr) = (K::MR, K::NR);
    let (kc_bytes, a_block_bytes, b_block_bytes) =
        (K::KC_BYTES, K::A_BLOCK_BYTES, K::B_BLOCK_BYTES);
    // Few B panels (thin C, like the hidden layer's 50 columns): all of a
    // KC block's B micro-panels stay in L1 and each A micro-panel meets them
    // all while it is hot. Otherwise one `KC x NR` micro-panel of B stays in
    // L1 while it meets every A micro-panel of an `ic` block.
    let n_panels = n.div_ceil(nr);
    let few = n_panels <= FEW_PANELS;
    // The bytes of a thin B's KC row (see `MicroKernel::KC_NR`).
    let few_row_bytes = n.div_ceil(K::KC_NR) * K::KC_NR * size;
    let kc = if few && m <= FEW_LOCAL_ROWS {
        KC_FEW_BYTES / few_row_bytes
    } else if few {
        // Many rows streaming past a thin B (evaluation): long KC blocks,
        // so each row of A is read in long runs and C is revisited rarely.
        KC_FEW_STREAM_BYTES / few_row_bytes
    } else {
        kc_bytes / (nr * size)
    };
    let kc = kc.max(32);
    let kc = if k <= kc + kc / 2 { k } else { kc };
    // A `KC x NC` slice of packed B stays in L2.
    let nc = if few {
        n_panels * nr
    } else {
        let nc = (b_block_bytes / (kc * size) / nr).max(1) * nr;
        nc.min(n_panels * nr)
    };
    // The `MC x KC` block of A stays in L2.
    let mc = (a_block_bytes / (kc * size) / mr).max(1) * mr;
    let mc = mc.min(m.div_ceil(mr) * mr);
    Blocking {
        kc,
        nc,
        mc,
        a_outer: few,
    }
}

/// `C = alpha * A * B + beta * C` with micro-kernel `K` on up to `n_threads` threads.
///
/// Shapes are checked by the caller.
fn gemm_driver<T: Element, K: MicroKernel<T>>(
    kernel: K,
    alpha: T,
    a: &ArrayView2<'_, T>,
    b: &ArrayView2<'_, T>,
    beta: T,
    c: &mut ArrayViewMut2<'_, T>,
    run: Run,
) {
    let (m, k) = a.dim();
    let n = b.ncols();
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 || alpha == T::zero() {
        scale(c, beta);
        return;
    }
    if run.direct && direct::eligible::<T, K>(m, k, n) {
        direct::gemm_direct(kernel, alpha, a, b, beta, c);
        return;
    }
    let n_threads = run.n_threads;
    let nr = K::NR;
    // A thin C whose last few columns would cost a whole padded vector pass
    // leaves them to dot-product tiles (see `dot_tail`).
    let mut tail = dot_tail::<T, K>(a, b);
    let mut blk = blocking::<T, K>(m, n - tail, k);
    if tail > 0 && !blk.a_outer {
        tail = 0;
        blk = blocking::<T, K>(m, n, k);
    }
    let (b, b_tail) = b.view().split_at(Axis(1), n - tail);
    let (mut c, c_tail) = c.view_mut().split_at(Axis(1), n - tail);
    let mut tail = (tail > 0).then_some(DotTail {
        b: b_tail,
        c: c_tail,
    });
    let n = n - b_tail.ncols();
    let n_threads = n_threads.max(1);
    // Packing A costs one pass over it per column block; it pays when the
    // packed panels then meet several B panels, or when A has no unit stride.
    let pack_a = blk.nc.min(n).div_ceil(nr) >= PACK_A_MIN_PANELS;

    // When each thread meets every B micro-panel only once (a single `ic`
    // block), the thread packs B itself right before use (hot in L1, no
    // shared buffer, no synchronisation); otherwise B is packed once up front
    // and shared.
    let b_local = m <= blk.mc;

    // Large problems with a shared B: pack one `KC x NC` slice of B at a
    // time and run all threads over it (BLIS order `jc, pc, ic`); the
    // packed slice stays in L2. (Same `KC` blocks in the same order as the
    // other paths, so the arithmetic per element is unchanged.)
    let pc_outer = !b_local && !blk.a_outer;
    let job = Job {
        kernel,
        alpha,
        beta,
        blk,
        pack_a,
    };
    for jc in (0..n).step_by(blk.nc) {
        let nb = blk.nc.min(n - jc);
        let n_panels = nb.div_ceil(nr);
        let b_blk = b.slice(s![.., jc..jc + nb]);
        let mut c_blk = c.slice_mut(s![.., jc..jc + nb]);
        if pc_outer {
            for pc in (0..k).step_by(blk.kc) {
                let kb = blk.kc.min(k - pc);
                let b_slice = b_blk.slice(s![pc..pc + kb, ..]);
                with_scratch(Slot::B, n_panels * kb * nr, |packed: &mut [T]| {
                    pack_b_panels(kernel, &b_slice, packed, 0, nr, n_threads);
                    let job = Job {
                        beta: if pc == 0 { beta } else { T::one() },
                        ..job
                    };
                    let b_panels = BPanels {
                        b: b_slice.view(),
                        packed,
                        local: false,
                        nr,
                    };
                    job.run_parallel(
                        a.slice(s![.., pc..pc + kb]),
                        b_panels,
                        c_blk.view_mut(),
                        None,
                        n_threads,
                    );
                });
            }
        } else {
            let pack_len = if b_local { 0 } else { n_panels * k * nr };
            with_scratch(Slot::B, pack_len, |packed: &mut [T]| {
                pack_b_panels(kernel, &b_blk, packed, 0, nr, n_threads);
                let b_panels = BPanels {
                    b: b_blk.view(),
                    packed,
                    local: b_local,
                    nr,
                };
                job.run_parallel(a.view(), b_panels, c_blk, tail.take(), n_threads);
            });
        }
    }
}

/// Shortest reduction for the dot-product tail (long dot products amortise
/// each output's horizontal sum).
const DOT_MIN_K: usize = 256;

/// How many trailing columns of C the kernel's dot-product tiles compute
/// (0 for none): the `n % LANES` columns past the last full vector, when
/// there are at most `DOT.1` of them, the product is at least a vector wide,
/// and A's rows and B's columns are contiguous along a long `k` (the
/// forward `X * W1^T`: 50 = 3 vectors + 2 columns, the 2 as dot products
/// instead of a 16-lane pass of which 14 lanes are padding). Depends only on
/// shapes and strides, never on the thread count; the caller drops the tail
/// unless the rest of C is thin (single column block, `ir` outside `jr`).
fn dot_tail<T: Element, K: MicroKernel<T>>(a: &ArrayView2<'_, T>, b: &ArrayView2<'_, T>) -> usize {
    let (_, dc) = K::DOT;
    let (k, n) = b.dim();
    let tail = n % K::LANES;
    let eligible = dc > 0
        && tail <= dc
        && n > K::LANES
        && k >= DOT_MIN_K
        && a.strides()[1] == 1
        && b.strides()[0] == 1;
    if eligible {
        tail
    } else {
        0
    }
}

/// The trailing columns of B and C that dot-product tiles compute.
struct DotTail<'a, T> {
    b: ArrayView2<'a, T>,
    c: ArrayViewMut2<'a, T>,
}

impl<'a, T: Element> DotTail<'a, T> {
    /// Splits C's tail rows at `row` (B's columns are shared).
    fn split_rows(self, row: usize) -> (DotTail<'a, T>, DotTail<'a, T>) {
        let (lo, hi) = self.c.split_at(Axis(0), row);
        (DotTail { b: self.b, c: lo }, DotTail { b: self.b, c: hi })
    }

    /// `C_tail[rows] = alpha * A[rows] * B_tail + beta * C_tail[rows]` over
    /// the full `k`, one dot-product tile per `DOT.0` rows.
    fn run_rows<K: MicroKernel<T>>(
        &mut self,
        kernel: K,
        (alpha, beta): (T, T),
        a: &ArrayView2<'_, T>,
        rows: std::ops::Range<usize>,
    ) {
        let (dr, dc) = K::DOT;
        let k = a.ncols();
        let n = self.b.ncols();
        let rsa = a.strides()[0];
        let csb = self.b.strides()[1];
        let [rsc, csc] = [self.c.strides()[0], self.c.strides()[1]];
        let c_ptr = self.c.as_mut_ptr();
        for i0 in rows.clone().step_by(dr) {
            for j0 in (0..n).step_by(dc) {
                let tile = DotTile {
                    k,
                    a: a.as_ptr().wrapping_offset(i0 as isize * rsa),
                    rsa,
                    b: self.b.as_ptr().wrapping_offset(j0 as isize * csb),
                    csb,
                    c: c_ptr.wrapping_offset(i0 as isize * rsc + j0 as isize * csc),
                    rsc,
                    csc,
                    m_eff: dr.min(rows.end - i0),
                    n_eff: dc.min(n - j0),
                    alpha,
                    beta,
                };
                // SAFETY: `dot_tail` checked that the kernel has dot tiles
                // and that A's rows and B's columns have unit stride along
                // k; rows i0..i0 + m_eff (< rows.end <= A's rows, which
                // match C's) and columns j0..j0 + n_eff of B exist with k
                // elements each; the C tile is inside this unique borrow of
                // C, aliasing neither operand; the kernel was checked
                // available by `gemm_with_kernel`.
                unsafe { kernel.dot_tile(&tile) };
            }
        }
    }
}

/// `C = beta * C`, never reading C when `beta == 0`.
fn scale<T: Element>(c: &mut ArrayViewMut2<'_, T>, beta: T) {
    if beta == T::zero() {
        c.fill(T::zero());
    } else if beta != T::one() {
        c.map_inplace(|x| *x = *x * beta);
    }
}

/// Packs the `NR`-wide column panels of `b` (starting at panel `first`) into
/// `packed`: panel `q` is `k x NR` row-major at `q * k * NR`, the last one
/// zero-padded. Splits the panels across up to `n_threads` threads when the
/// buffer is large.
fn pack_b_panels<T: Element, K: MicroKernel<T>>(
    kernel: K,
    b: &ArrayView2<'_, T>,
    packed: &mut [T],
    first: usize,
    nr: usize,
    n_threads: usize,
) {
    let k = b.nrows();
    let n_panels = packed.len() / (k * nr);
    if n_threads > 1 && n_panels > 1 && packed.len() >= PARALLEL_PACK_MIN {
        let half = n_panels / 2;
        let (lo, hi) = packed.split_at_mut(half * k * nr);
        let left = n_threads / 2;
        crate::partners::join(
            || pack_b_panels(kernel, b, lo, first, nr, left),
            || pack_b_panels(kernel, b, hi, first + half, nr, n_threads - left),
        );
        return;
    }
    let n = b.ncols();
    for (q, panel) in packed.chunks_exact_mut(k * nr).enumerate() {
        let j0 = (first + q) * nr;
        let width = nr.min(n - j0);
        pack_b_panel(kernel, &b.slice(s![.., j0..j0 + width]), panel, nr);
    }
}

/// Packs `src` (`kb x width`, `width <= NR`) into `panel` as `kb` rows of
/// `NR` (row-major, zero-padded).
fn pack_b_panel<T: Element, K: MicroKernel<T>>(
    kernel: K,
    src: &ArrayView2<'_, T>,
    panel: &mut [T],
    nr: usize,
) {
    let (kb, width) = src.dim();
    let panel = &mut panel[..kb * nr];
    if src.strides()[1] == 1 {
        // SAFETY: src is a kb x width view with unit column stride and row
        // stride rsb, so `src + p * rsb + j` is in bounds for p < kb,
        // j < width; the panel holds kb * nr elements; the kernel was
        // checked available.
        if unsafe { kernel.pack_b_rows(src.as_ptr(), src.strides()[0], kb, width, panel) } {
            return;
        }
    }
    if src.strides()[0] == 1 && width > 1 {
        // SAFETY: src is a kb x width view with unit row stride and column
        // stride csb, so `src + p + j * csb` is in bounds for p < kb,
        // j < width; the panel holds kb * nr elements; the kernel was
        // checked available.
        if unsafe { kernel.pack_b_transposed(src.as_ptr(), src.strides()[1], kb, width, panel) } {
            return;
        }
    }
    if width < nr {
        panel.fill(T::zero());
    }
    if src.strides()[1] == 1 || width == 1 {
        for (dst, row) in panel.chunks_exact_mut(nr).zip(src.rows()) {
            match row.as_slice() {
                Some(row) => dst[..width].copy_from_slice(row),
                None => {
                    for (d, &x) in dst.iter_mut().zip(row.iter()) {
                        *d = x;
                    }
                }
            }
        }
    } else if src.strides()[0] == 1 && width <= 64 {
        // Transposed operand: each column is contiguous. Transpose in
        // blocks of PACK_ROWS reduction rows so the panel rows being
        // written stay in L1.
        let cols: [&[T]; 64] = std::array::from_fn(|j| {
            if j < width {
                src.column(j).to_slice().unwrap_or_default()
            } else {
                &[]
            }
        });
        let cols = &cols[..width.min(64)];
        for (rows, p0) in panel
            .chunks_mut(PACK_ROWS * nr)
            .zip((0..kb).step_by(PACK_ROWS))
        {
            for (p, dst) in (p0..).zip(rows.chunks_exact_mut(nr)) {
                for (d, col) in dst.iter_mut().zip(cols) {
                    *d = col[p];
                }
            }
        }
    } else {
        for (j, col) in src.columns().into_iter().enumerate() {
            for (dst, &x) in panel[j..].iter_mut().step_by(nr).zip(col.iter()) {
                *dst = x;
            }
        }
    }
}

/// The B operand of one column block: panel `q` is either in the shared
/// `packed` buffer (`k x NR` row-major at `q * k * NR`) or, when `local`,
/// packed by the thread that uses it right before use.
#[derive(Clone, Copy)]
struct BPanels<'a, T> {
    b: ArrayView2<'a, T>,
    packed: &'a [T],
    local: bool,
    nr: usize,
}

impl<'a, T: Element> BPanels<'a, T> {
    /// Panel `q`'s rows from `p0` and their stride, when the tile that
    /// reads it first can pack it as it goes (`fill`: the kernel can): a
    /// local, full-width panel of a B with unit column stride.
    fn in_place(&self, q: usize, p0: usize, fill: bool) -> Option<(*const T, isize)> {
        let [rsb, csb] = [self.b.strides()[0], self.b.strides()[1]];
        let full = (q + 1) * self.nr <= self.b.ncols();
        (fill && self.local && csb == 1 && full).then(|| {
            let origin = p0 as isize * rsb + (q * self.nr) as isize;
            (self.b.as_ptr().wrapping_offset(origin), rsb)
        })
    }

    /// Micro-panels `q0..q1` for reduction rows `p0..p0 + kb`, each `kb x NR`
    /// row-major, consecutive; packed into `scratch` first when local.
    fn micro_panels<'s, K: MicroKernel<T>>(
        &self,
        kernel: K,
        (q0, q1): (usize, usize),
        (p0, kb): (usize, usize),
        scratch: &'s mut [T],
    ) -> MicroPanels<'s, T>
    where
        'a: 's,
    {
        let nr = self.nr;
        if self.local {
            let n = self.b.ncols();
            let [rsb, csb] = [self.b.strides()[0], self.b.strides()[1]];
            for (q, panel) in (q0..q1).zip(scratch.chunks_exact_mut(kb * nr)) {
                let j0 = q * nr;
                let width = nr.min(n - j0);
                // Fast path for a row-major B: SIMD row copies straight from
                // the operand, no view slicing per panel.
                if csb == 1 {
                    let src = self
                        .b
                        .as_ptr()
                        .wrapping_offset(p0 as isize * rsb + j0 as isize);
                    // SAFETY: rows p0..p0 + kb and columns j0..j0 + width
                    // are inside `b` (row stride rsb, unit column stride);
                    // the panel holds kb * nr elements; the kernel was
                    // checked available.
                    if unsafe { kernel.pack_b_rows(src, rsb, kb, width, panel) } {
                        continue;
                    }
                }
                let src = self.b.slice(s![p0..p0 + kb, j0..j0 + width]);
                pack_b_panel(kernel, &src, panel, nr);
            }
            MicroPanels {
                data: scratch,
                first: q0,
                stride: kb * nr,
            }
        } else {
            let k = self.b.nrows();
            MicroPanels {
                data: &self.packed[p0 * nr..],
                first: 0,
                stride: k * nr,
            }
        }
    }

    /// Where panels `q0..q1`'s reduction rows `p0..p0 + kb` come from in
    /// the operand, as lines to prefetch before they are packed (only for a
    /// local B, with unit stride along either axis).
    fn source(&self, (q0, q1): (usize, usize), p0: usize, kb: usize) -> Ahead<T> {
        let n = self.b.ncols();
        let j0 = q0 * self.nr;
        if !self.local || j0 >= n || kb == 0 {
            return Ahead::NONE;
        }
        let width = (q1 * self.nr).min(n) - j0;
        block_lines(&self.b, p0..p0 + kb, j0..j0 + width)
    }

    /// The panels from `q0` on (a column range starting on a panel boundary).
    fn starting_at(&self, q0: usize) -> BPanels<'a, T> {
        let j0 = (q0 * self.nr).min(self.b.ncols());
        let start = (q0 * self.b.nrows() * self.nr).min(self.packed.len());
        BPanels {
            b: self.b.slice_move(s![.., j0..]),
            packed: &self.packed[start..],
            ..*self
        }
    }
}

/// Packed B micro-panels: panel `q` starts at `(q - first) * stride`.
struct MicroPanels<'s, T> {
    data: &'s [T],
    first: usize,
    stride: usize,
}

impl<T> MicroPanels<'_, T> {
    fn get(&self, q: usize) -> &[T] {
        &self.data[(q - self.first) * self.stride..]
    }
}

/// Where a tile reads its `kb x NR` B micro-panel: rows `rsb` apart from
/// `b`, copied to `fill` as they are read when that is not null (see
/// `Tile::fill`).
#[derive(Clone, Copy)]
struct PanelRef<T> {
    b: *const T,
    rsb: isize,
    fill: *mut T,
}

impl<T> PanelRef<T> {
    /// A packed panel (`NR` apart), at least `kb x nr` long.
    fn packed(panel: &[T], kb: usize, nr: usize) -> PanelRef<T> {
        assert!(panel.len() >= kb * nr, "a packed B panel holds kb x NR");
        PanelRef {
            b: panel.as_ptr(),
            rsb: nr as isize,
            fill: std::ptr::null_mut(),
        }
    }

    /// The first tile reads `source` (rows `rsb` apart) and packs it into
    /// `scratch`, which the tiles after it read.
    fn fill(
        (source, rsb): (*const T, isize),
        scratch: &mut [T],
        kb: usize,
        nr: usize,
    ) -> (PanelRef<T>, PanelRef<T>) {
        assert!(scratch.len() >= kb * nr, "the fill scratch holds kb x NR");
        let fill = scratch.as_mut_ptr();
        let first = PanelRef {
            b: source,
            rsb,
            fill,
        };
        let rest = PanelRef {
            b: fill.cast_const(),
            rsb: nr as isize,
            fill: std::ptr::null_mut(),
        };
        (first, rest)
    }
}

/// One column block's worth of micro-kernel calls.
#[derive(Clone, Copy)]
struct Job<K, T> {
    kernel: K,
    alpha: T,
    beta: T,
    blk: Blocking,
    pack_a: bool,
}

impl<T: Element, K: MicroKernel<T>> Job<K, T> {
    /// Splits the block's tile grid into `n_threads` contiguous ranges of
    /// whole `MR`-row or `NR`-column panels (whichever has more) and runs them.
    fn run_parallel(
        &self,
        a: ArrayView2<'_, T>,
        b: BPanels<'_, T>,
        c: ArrayViewMut2<'_, T>,
        tail: Option<DotTail<'_, T>>,
        n_threads: usize,
    ) {
        let m_panels = c.nrows().div_ceil(K::MR);
        let n_panels = c.ncols().div_ceil(K::NR);
        if n_threads <= 1 || (m_panels <= 1 && n_panels <= 1) {
            self.run(a, b, c, tail);
            return;
        }
        let left = n_threads / 2;
        if m_panels >= n_panels {
            let split = (m_panels * left / n_threads).max(1) * K::MR;
            let (a_lo, a_hi) = a.split_at(Axis(0), split);
            let (c_lo, c_hi) = c.split_at(Axis(0), split);
            let (t_lo, t_hi) = match tail.map(|t| t.split_rows(split)) {
                Some((lo, hi)) => (Some(lo), Some(hi)),
                None => (None, None),
            };
            crate::partners::join(
                || self.run_parallel(a_lo, b, c_lo, t_lo, left),
                || self.run_parallel(a_hi, b, c_hi, t_hi, n_threads - left),
            );
        } else {
            // The dot tail (C's last columns) goes with the right half.
            let split = (n_panels * left / n_threads).max(1);
            let (c_lo, c_hi) = c.split_at(Axis(1), split * K::NR);
            crate::partners::join(
                || self.run_parallel(a, b, c_lo, None, left),
                || self.run_parallel(a, b.starting_at(split), c_hi, tail, n_threads - left),
            );
        }
    }

    /// The `ic`, `pc`, `jr`, `ir` loops on one thread.
    /// With a dot `tail` (only on the thin path, where `a` spans all of
    /// `k`), each `ic` block's tail columns follow its `pc` loop, while its
    /// rows of A are still in L2.
    fn run(
        &self,
        a: ArrayView2<'_, T>,
        b: BPanels<'_, T>,
        mut c: ArrayViewMut2<'_, T>,
        mut tail: Option<DotTail<'_, T>>,
    ) {
        let (m, k) = a.dim();
        let n = c.ncols();
        let (mr, nr) = (K::MR, K::NR);
        let Blocking {
            kc, mc, a_outer, ..
        } = self.blk;
        let mc = balanced_block(m, mc, mr);
        let [rsa, csa] = [a.strides()[0], a.strides()[1]];
        let [rsc, csc] = [c.strides()[0], c.strides()[1]];
        let c_ptr = c.as_mut_ptr();
        let n_panels = n.div_ceil(nr);
        // A is read in place when one of its strides is 1 (and packing does
        // not pay); otherwise, and for a ragged last block of a
        // column-contiguous A (whose padding rows the kernel would read),
        // each `MC x KC` block is packed.
        let in_place = if self.pack_a {
            None
        } else if csa == 1 || k == 1 {
            Some(ALayout::Rows)
        } else if rsa == 1 {
            Some(ALayout::Cols)
        } else {
            None
        };
        // Local B: all (few) panels of a KC block, or one panel at a time.
        let local_panels = if a_outer { n_panels } else { 1 };
        let b_scratch_len = if b.local {
            local_panels * kc.min(k) * nr
        } else {
            0
        };
        with_scratch(Slot::Panels, b_scratch_len, |b_scratch: &mut [T]| {
            for ic in (0..m).step_by(mc) {
                let mb = mc.min(m - ic);
                let needs_pack = match in_place {
                    Some(ALayout::Rows) => false,
                    Some(ALayout::Cols) => mb % mr != 0,
                    None => true,
                };
                let pack_len = if needs_pack {
                    mb.div_ceil(mr) * mr * kc.min(k)
                } else {
                    0
                };
                with_scratch(Slot::A, pack_len, |a_packed: &mut [T]| {
                    for pc in (0..k).step_by(kc) {
                        let kb = kc.min(k - pc);
                        let beta = if pc == 0 { self.beta } else { T::one() };
                        let a_blk = a.slice(s![ic..ic + mb, pc..pc + kb]);
                        if needs_pack {
                            pack_a(
                                self.kernel,
                                &a_blk,
                                &mut a_packed[..mb.div_ceil(mr) * mr * kb],
                                mr,
                            );
                        }
                        let a_panel = |i0: usize| match (needs_pack, in_place) {
                            (true, _) | (false, None) => {
                                (a_packed[i0 * kb..].as_ptr(), ALayout::Cols, 1, mr as isize)
                            }
                            (false, Some(ALayout::Rows)) => (
                                a_blk.as_ptr().wrapping_offset(i0 as isize * rsa),
                                ALayout::Rows,
                                rsa,
                                1,
                            ),
                            (false, Some(ALayout::Cols)) => {
                                (a_blk.as_ptr().wrapping_add(i0), ALayout::Cols, 1, csa)
                            }
                        };
                        let c_at = |i0: usize, q: usize| {
                            c_ptr
                                .wrapping_offset((ic + i0) as isize * rsc + (q * nr) as isize * csc)
                        };
                        let tile = |i0: usize,
                                    q: usize,
                                    b_panel: PanelRef<T>,
                                    next: Option<(usize, usize)>,
                                    ahead: [Ahead<T>; 2]| {
                            let (a_ptr, layout, rsa, csa) = a_panel(i0);
                            let j0 = q * nr;
                            let c_next =
                                next.map_or(std::ptr::null(), |(i, q)| c_at(i, q).cast_const());
                            let tile = Tile {
                                k: kb,
                                a: a_ptr,
                                rsa,
                                csa,
                                b: b_panel.b,
                                rsb: b_panel.rsb,
                                c: c_ptr
                                    .wrapping_offset((ic + i0) as isize * rsc + j0 as isize * csc),
                                rsc,
                                csc,
                                c_next,
                                ahead,
                                fill: b_panel.fill,
                                m_eff: mr.min(mb - i0),
                                n_eff: nr.min(n - j0),
                                alpha: self.alpha,
                                beta,
                            };
                            // SAFETY: the tile lies inside C (i0 < mb, j0 < n,
                            // m_eff / n_eff clipped); A rows ic + i0 .. + m_eff
                            // cover kb steps from pc in place, or the packed
                            // panel is padded to MR rows; the B micro-panel
                            // holds kb rows of NR (padded), or is a full-width
                            // panel of B read in place while `fill` (kb * NR
                            // scratch elements) receives it (see `PanelRef`);
                            // the kernel was checked available by
                            // `gemm_with_kernel`; C is a unique borrow, so it
                            // aliases neither A nor B, nor the scratch.
                            unsafe { self.kernel.tile(layout, &tile) };
                        };
                        if a_outer {
                            let panels =
                                b.micro_panels(self.kernel, (0, n_panels), (pc, kb), b_scratch);
                            for i0 in (0..mb).step_by(mr) {
                                for q in 0..n_panels {
                                    let next = if q + 1 < n_panels {
                                        Some((i0, q + 1))
                                    } else {
                                        (i0 + mr < mb).then_some((i0 + mr, 0))
                                    };
                                    // No prefetch ahead: a thin B's next KC
                                    // block is small and usually in L2 (the
                                    // thin forward measured no better with it).
                                    let panel = PanelRef::packed(panels.get(q), kb, nr);
                                    tile(i0, q, panel, next, [Ahead::NONE; 2]);
                                }
                            }
                        } else {
                            let tiles = mb.div_ceil(mr);
                            // The next `ic` block of A (packed after this one).
                            let next_rows = ic + mb..(ic + mb + mc).min(m);
                            let a_next = block_lines(&a, next_rows, pc..pc + kb);

                            for q in 0..n_panels {
                                // The first tile reads B in place and packs
                                // it as it goes for the others (see
                                // `Tile::fill`), or all read a panel packed
                                // up front.
                                let (first, rest) = match b.in_place(q, pc, K::FILL) {
                                    Some(source) => PanelRef::fill(source, b_scratch, kb, nr),
                                    None => {
                                        let panels = b.micro_panels(
                                            self.kernel,
                                            (q, q + 1),
                                            (pc, kb),
                                            b_scratch,
                                        );
                                        let panel = PanelRef::packed(panels.get(q), kb, nr);
                                        (panel, panel)
                                    }
                                };
                                // The panel packed next: the next one of this
                                // KC block, else the first of the next block.
                                let ahead = if q + 1 < n_panels {
                                    b.source((q + 1, q + 2), pc, kb)
                                } else {
                                    b.source((0, 1), pc + kb, kc.min(k - pc - kb))
                                };
                                for (t, i0) in (0..mb).step_by(mr).enumerate() {
                                    let next = if i0 + mr < mb {
                                        Some((i0 + mr, q))
                                    } else {
                                        (q + 1 < n_panels).then_some((0, q + 1))
                                    };
                                    let panel = if t == 0 { first } else { rest };
                                    if b.local || !K::AHEAD {
                                        let ahead = [ahead.part(t, tiles), Ahead::NONE];
                                        tile(i0, q, panel, next, ahead);
                                    } else {
                                        // B is packed already: prefetch the
                                        // next tile's C instead, spread over
                                        // this tile (not in one burst at its
                                        // start: its rows alias in L1), and
                                        // this tile's share of the next A
                                        // block, which is packed next.
                                        let c_next = next.map_or(Ahead::NONE, |(i, q)| {
                                            let dims = [mr.min(mb - i), nr.min(n - q * nr)];
                                            lines_at(c_at(i, q).cast_const(), dims, [rsc, csc])
                                        });
                                        let a_next = a_next.part(q * tiles + t, n_panels * tiles);
                                        tile(i0, q, panel, None, [c_next, a_next]);
                                    }
                                }
                            }
                        }
                    }
                });
                if let Some(tail) = tail.as_mut() {
                    tail.run_rows(self.kernel, (self.alpha, self.beta), &a, ic..ic + mb);
                }
            }
        });
    }
}

/// The lines of block `rows x cols` of `x` as a region to prefetch ahead
/// (see [`lines_at`]).
fn block_lines<T>(
    x: &ArrayView2<'_, T>,
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
) -> Ahead<T> {
    let [rs, cs] = [x.strides()[0], x.strides()[1]];
    let origin = x
        .as_ptr()
        .wrapping_offset(rows.start as isize * rs + cols.start as isize * cs);
    lines_at(origin, [rows.len(), cols.len()], [rs, cs])
}

/// The lines of a `rows x cols` block at `origin` (strides `[rs, cs]`) as a
/// region to prefetch ahead: one run per row when rows are contiguous,
/// else one per column when columns are; none for an empty block or one
/// with neither unit stride. Computed from raw parts, so it also serves C,
/// which the tiles are writing through a raw pointer.
fn lines_at<T>(origin: *const T, [rows, cols]: [usize; 2], [rs, cs]: [isize; 2]) -> Ahead<T> {
    // Runs of `len` contiguous elements; one extra line for a run that
    // does not start on a line boundary.
    let lines = |len: usize| (len * std::mem::size_of::<T>()).div_ceil(64) + 1;
    let (runs, stride, len) = match (cs, rs) {
        _ if rows == 0 || cols == 0 => return Ahead::NONE,
        (1, _) => (rows, rs, cols),
        (_, 1) => (cols, cs, rows),
        _ => return Ahead::NONE,
    };
    Ahead {
        base: origin,
        rows: runs,
        stride,
        lines: lines(len),
    }
}

/// The largest block of at most `max` rows (a multiple of `mr`) that cuts
/// `m` rows into as few blocks as `max` does, as evenly as it can: 1024 rows
/// as 10 x 96 + 64 rather than 10 x 102 + 4, whose 4-row block would pass
/// over all of B for a third of a tile's work. Blocks only regroup the same
/// tiles, so the result does not depend on them.
fn balanced_block(m: usize, max: usize, mr: usize) -> usize {
    let n_blocks = m.div_ceil(max.max(1));
    m.div_ceil(n_blocks.max(1)).div_ceil(mr) * mr
}

/// Packs rows of `a` into `MR`-row panels, k-major (`rsa = 1, csa = MR`),
/// zero-padding the last panel.
fn pack_a<T: Element, K: MicroKernel<T>>(
    kernel: K,
    a: &ArrayView2<'_, T>,
    packed: &mut [T],
    mr: usize,
) {
    let kb = a.ncols();
    for (panel, rows) in packed
        .chunks_exact_mut(mr * kb)
        .zip(a.axis_chunks_iter(Axis(0), mr))
    {
        if rows.strides()[1] == 1 && rows.nrows() > 1 {
            // SAFETY: `rows` is an r x kb view (r <= MR) with unit column
            // stride and row stride rsa, so `src + r * rsa + p` is in bounds
            // for r < rows, p < kb; the panel holds MR * kb elements; the
            // kernel was checked available.
            let done = unsafe {
                kernel.pack_a_rows(rows.as_ptr(), rows.strides()[0], kb, rows.nrows(), panel)
            };
            if done {
                continue;
            }
        }
        if rows.nrows() < mr {
            panel.fill(T::zero());
        }
        let col_slices = rows.nrows() == K::MR && mr == K::MR && rows.strides()[0] == 1;
        if col_slices {
            // Column-contiguous A (the wide weight gradient's `G1^T`): each
            // k step is MR contiguous values, copied as one fixed-size
            // block (`K::MR` is a constant here, so no `memcpy` call).
            for (dst, col) in panel.chunks_exact_mut(K::MR).zip(rows.columns()) {
                if let Some(src) = col.to_slice() {
                    dst.copy_from_slice(&src[..K::MR]);
                } else {
                    dst.iter_mut().zip(col.iter()).for_each(|(d, &x)| *d = x);
                }
            }
        } else {
            for (r, row) in rows.rows().into_iter().enumerate() {
                match row.as_slice() {
                    Some(src) => {
                        for (dst, &x) in panel[r..].chunks_mut(mr).zip(src) {
                            dst[0] = x;
                        }
                    }
                    None => {
                        for (dst, &x) in panel[r..].iter_mut().step_by(mr).zip(row.iter()) {
                            *dst = x;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{balanced_block, threads_for, with_small_products_split, BPanels};
    use crate::kernel::Ahead;
    use ndarray::{s, Array2};

    /// Whether the byte address of `x` falls in one of `ahead`'s lines.
    fn prefetched(ahead: &Ahead<f32>, x: *const f32) -> bool {
        let line = |p: *const f32| p as usize / 64;
        (0..ahead.rows).any(|r| {
            let run = ahead.base.wrapping_offset(r as isize * ahead.stride);
            (line(run)..line(run) + ahead.lines).contains(&line(x))
        })
    }

    /// The lines a local B panel's tiles prefetch ahead cover every element
    /// the packer then reads, for `W1^T` (the wide forward's transposed
    /// view) and a row-major B, split over any number of tiles; a B with
    /// no unit stride, or a shared (already packed) one, prefetches nothing.
    /// With a shared B, the lines of the next C tile cover all of it.
    #[test]
    fn prefetch_ahead_covers_what_is_read_next() {
        let w1 = Array2::<f32>::zeros((70, 300));
        let row_major = Array2::<f32>::zeros((300, 70));
        let nr = 32;
        for (name, b) in [("W1^T", w1.t()), ("row-major", row_major.view())] {
            let panels = BPanels {
                b,
                packed: &[],
                local: true,
                nr,
            };
            for (q, p0, kb) in [(0, 0, 300), (1, 17, 100), (2, 256, 44)] {
                let ahead = panels.source((q, q + 1), p0, kb);
                let width = nr.min(70 - q * nr);
                for parts in [1, 3, 10] {
                    let split: Vec<_> = (0..parts).map(|i| ahead.part(i, parts)).collect();
                    assert_eq!(split.iter().map(|a| a.rows).sum::<usize>(), ahead.rows);
                    for p in p0..p0 + kb {
                        for j in q * nr..q * nr + width {
                            let x: *const f32 = &b[[p, j]];
                            assert!(
                                split.iter().any(|a| prefetched(a, x)),
                                "{name}: panel {q}, rows {p0}+{kb}, {parts} tiles: B[{p}, {j}] missed"
                            );
                        }
                    }
                }
                // No more than one spare line per run.
                let needed = if name == "W1^T" { kb } else { width } * 4;
                assert!(ahead.lines <= needed.div_ceil(64) + 1, "{name}: {ahead:?}");
            }
        }
        // The next C tile, prefetched while B is shared: every element of
        // it, at any offset of a row-major or column-major C.
        let c_store = Array2::<f32>::zeros((77, 77));
        for c in [c_store.view(), c_store.t()] {
            for (i0, j0) in [(0, 0), (10, 32), (30, 45)] {
                let width = nr.min(77 - j0);
                let origin: *const f32 = &c[[i0, j0]];
                let strides = [c.strides()[0], c.strides()[1]];
                let tile = super::lines_at(origin, [10, width], strides);
                for i in i0..i0 + 10 {
                    for j in j0..j0 + width {
                        assert!(prefetched(&tile, &c[[i, j]]), "C[{i}, {j}] missed");
                    }
                }
            }
        }
        let strided = row_major.slice(s![..;2, ..;2]);
        let shared = BPanels {
            b: strided,
            packed: &[],
            local: true,
            nr,
        };
        assert_eq!(shared.source((0, 1), 0, 10).rows, 0);
        let shared = BPanels {
            local: false,
            b: row_major.view(),
            ..shared
        };
        assert_eq!(shared.source((0, 1), 0, 10).rows, 0);
    }

    /// The training step's product splits only inside the scope, on the
    /// thread that set it, and the threshold comes back after a panic.
    #[test]
    fn small_products_split_only_inside_the_scope() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        pool.install(|| {
            let step = (100, 3072, 50);
            let threads = || threads_for(step.0, step.1, step.2);
            assert_eq!(threads(), 1);
            assert_eq!(with_small_products_split(threads), 2);
            // Below 1e7 flops (the layer-2 products) nothing splits.
            assert_eq!(with_small_products_split(|| threads_for(100, 50, 10)), 1);
            // Another thread keeps its own threshold.
            let other = with_small_products_split(|| {
                std::thread::scope(|s| s.spawn(|| pool.install(threads)).join().unwrap())
            });
            assert_eq!(other, 1);
            let panicked = std::panic::catch_unwind(|| {
                with_small_products_split(|| panic!("inside the scope"))
            });
            assert!(panicked.is_err());
            assert_eq!(threads(), 1);
        });
    }

    /// The 8 x 48 tiles give the bits of the 10 x 32 ones on every thin
    /// product they take: `k` split or whole, beta zero or not, A read in
    /// place by rows or columns or packed, B transposed or row-major, edge
    /// row groups, 1 or 2 threads. (Fails if the thin kernel split `k`
    /// elsewhere: with `KC_NR` = 48 the `k` = 3072 products differ.)
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn thin_tiles_give_the_bits_of_the_wide_ones() {
        use super::{gemm_driver, thin_tiles_suit, Run};
        use crate::kernel::x86::{Avx512, Avx512Thin};
        use ndarray::ShapeBuilder;
        if !crate::Kernel::Avx512.is_available() {
            eprintln!("skipped: this CPU has no AVX-512F");
            return;
        }
        let value = |i: usize| ((i * 7919) % 1013) as f32 / 1013.0 - 0.5;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let run = |n_threads| Run {
            n_threads,
            direct: false,
        };
        let mut covered = std::collections::BTreeSet::new();
        for (m, k, n) in [
            (100, 3072, 50),
            (7, 3072, 40),
            (333, 700, 48),
            (31, 256, 33),
        ] {
            let a_row = Array2::from_shape_fn((m, k), |(i, p)| value(i * k + p));
            let a_col = Array2::from_shape_fn((m, k).f(), |(i, p)| value(i * k + p));
            let a_wide = Array2::from_shape_fn((m, 2 * k), |(i, p)| value(i * k + p));
            let w = Array2::from_shape_fn((n, k), |(j, p)| value(j * 31 + p * 3));
            let b_row = w.t().as_standard_layout().to_owned();
            let c0 = Array2::from_shape_fn((m, n), |(i, j)| value(i + j * 5));
            let a_views = [a_row.view(), a_col.view(), a_wide.slice(s![.., ..;2])];
            let pairs = a_views
                .iter()
                .enumerate()
                .flat_map(|(i, a)| [((i, 0), a, w.t()), ((i, 1), a, b_row.view())]);
            for (layouts, a, b) in pairs {
                // n = 50 leaves 48 columns only with the dot tail (row A, W1^T).
                if !thin_tiles_suit::<Avx512, Avx512Thin>(a, &b, run(1)) {
                    continue;
                }
                covered.insert(layouts);
                for (alpha, beta) in [(1.0, 0.0), (0.7, 0.999)] {
                    for threads in [1, 2] {
                        let (mut wide, mut thin) = (c0.clone(), c0.clone());
                        pool.install(|| {
                            let r = run(threads);
                            gemm_driver(Avx512, alpha, a, &b, beta, &mut wide.view_mut(), r);
                            gemm_driver(Avx512Thin, alpha, a, &b, beta, &mut thin.view_mut(), r);
                        });
                        let same = wide
                            .iter()
                            .zip(&thin)
                            .all(|(x, y)| x.to_bits() == y.to_bits());
                        assert!(
                            same,
                            "{m}x{k}x{n}, A {:?}, B {:?}, beta {beta}, {threads} threads",
                            a.strides(),
                            b.strides()
                        );
                    }
                }
            }
        }
        assert_eq!(covered.len(), 6, "every A and B layout ran: {covered:?}");
        // Only C of 33 to 48 columns past the dot tail, on the blocked path.
        let a = Array2::<f32>::zeros((100, 3072));
        for (n, suits) in [
            (32, false),
            (34, false),
            (35, true),
            (50, true),
            (51, false),
            (64, false),
        ] {
            let w = Array2::<f32>::zeros((n, 3072));
            assert_eq!(
                thin_tiles_suit::<Avx512, Avx512Thin>(&a.view(), &w.t(), run(1)),
                suits,
                "n {n}"
            );
        }
        let (a, b) = (
            Array2::<f32>::zeros((10, 50)),
            Array2::<f32>::zeros((50, 40)),
        );
        let direct = Run {
            n_threads: 1,
            direct: true,
        };
        assert!(!thin_tiles_suit::<Avx512, Avx512Thin>(
            &a.view(),
            &b.view(),
            direct
        ));
    }

    /// A row-major B that the first tile of each panel reads in place and
    /// packs for the others (`Tile::fill`) gives the bits of the same B
    /// packed up front (a column-major copy, which the transposing packer
    /// takes): a few or many rows (a first tile shorter than `MR`), `k`
    /// split into `KC` blocks, a ragged last panel, beta zero or not, f32
    /// and f64, every SIMD kernel, 1 and 2 threads.
    #[test]
    fn panels_packed_by_their_first_tile_give_the_bits_of_packed_ones() {
        use ndarray::ShapeBuilder;
        fn check<T: crate::Element>(kernel: crate::Kernel) {
            let value = |i: usize| T::from(((i * 7919) % 1013) as f64 / 1013.0 - 0.5).unwrap();
            let pools = [1, 2].map(|n| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .build()
                    .unwrap()
            });
            let shapes = [
                (50, 100, 3072),
                (3, 700, 100),
                (23, 300, 77),
                (100, 700, 1000),
            ];
            for (m, k, n) in shapes {
                let a = Array2::from_shape_fn((k, m), |(p, i)| value(i * k + p));
                let b_row = Array2::from_shape_fn((k, n), |(p, j)| value(p * 31 + j * 3));
                let b_col = Array2::from_shape_fn((k, n).f(), |(p, j)| value(p * 31 + j * 3));
                let c0 = Array2::from_shape_fn((m, n), |(i, j)| value(i + j * 5));
                for beta in [T::zero(), T::from(0.999).unwrap()] {
                    for pool in &pools {
                        let run = |b: &Array2<T>| {
                            let mut c = c0.clone();
                            pool.install(|| {
                                let (a, b) = (a.t(), b.view());
                                crate::gemm_blocked_with_kernel(
                                    kernel,
                                    T::one(),
                                    &a,
                                    &b,
                                    beta,
                                    &mut c.view_mut(),
                                )
                            })
                            .unwrap();
                            c
                        };
                        let (filled, packed) = (run(&b_row), run(&b_col));
                        let same = filled.iter().zip(&packed).all(|(x, y)| {
                            x.to_f64().unwrap().to_bits() == y.to_f64().unwrap().to_bits()
                        });
                        assert!(
                            same,
                            "{kernel:?} {m}x{k}x{n} beta {beta:?}, {} threads",
                            pool.current_num_threads()
                        );
                    }
                }
            }
        }
        for kernel in crate::available_kernels() {
            if kernel != crate::Kernel::Portable {
                check::<f32>(kernel);
                check::<f64>(kernel);
            }
        }
    }

    /// Balanced blocks are whole `MR` panels, no bigger than the cache
    /// budget, as few as the budget needs, and never leave a sliver.
    #[test]
    fn balanced_blocks_keep_the_count_and_even_out_the_last_one() {
        assert_eq!(balanced_block(1024, 102, 6), 96);
        assert_eq!(balanced_block(100, 102, 6), 102);
        for mr in [4, 6, 10] {
            for max in (mr..200).step_by(mr) {
                for m in 1..700 {
                    let mc = balanced_block(m, max, mr);
                    assert_eq!(mc % mr, 0, "m {m} max {max}");
                    assert!(mc <= max, "m {m} max {max}: {mc}");
                    assert_eq!(m.div_ceil(mc), m.div_ceil(max), "m {m} max {max}");
                    let last = m - (m.div_ceil(mc) - 1) * mc;
                    let plain_last = m - (m.div_ceil(max) - 1) * max;
                    assert!(last >= plain_last.min(mc), "m {m} max {max}");
                }
            }
        }
    }
}
