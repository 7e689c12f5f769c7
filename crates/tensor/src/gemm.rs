//! The BLIS-style blocked GEMM driver: cache blocking, packing, threading.
//!
//! Loops, outermost first (names as in the BLIS papers):
//! 1. `jc`: columns of C in blocks of `NC` (the packed B block stays in L2);
//! 2. `pc`: the reduction in blocks of `KC` (the first block applies `beta`,
//!    later blocks accumulate with `beta = 1`);
//!    pack the `KC x NC` block of B into `NR`-wide panels (row-major B panels
//!    that are full are read in place instead);
//! 3. threads: the block's tiles are split into contiguous ranges of `MR` rows
//!    or `NR` columns, one per thread; every thread sees the same tile grid;
//! 4. `ic`: rows in blocks of `MC` (A is read in place when one of its strides
//!    is 1, otherwise packed per block);
//! 5. `jr` / `ir`: `NR` / `MR` micro-panels, one micro-kernel call per tile.
//!
//! Every C element is produced by the same micro-kernel arithmetic over the
//! same `KC` blocks in the same order, whatever the thread count, so results
//! are bit-identical for 1 or N threads.

use std::cell::Cell;

use ndarray::{s, ArrayView2, ArrayViewMut2, Axis};

use crate::kernel::{portable::Portable, ALayout, Kernel, MicroKernel, Tile};
use crate::Element;

/// Below this many flops (`2 m n k`) a product runs on the calling thread only.
const PARALLEL_MIN_FLOPS: f64 = 4.0e6;
/// Below this many packed B elements, B is packed on the calling thread only.
const PARALLEL_PACK_MIN: usize = 32 * 1024;
/// Longest reduction block.
const KC_MAX: usize = 3072;
/// Bytes of packed B per block (kept in L2).
const B_BLOCK_BYTES: usize = 1 << 20;
/// Bytes of the A rows one `ic` block spans (kept in L2).
const A_BLOCK_BYTES: usize = 256 << 10;

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
        n_threads: usize,
    );

    /// Takes this thread's scratch vector for `slot` (leaving an empty one).
    #[doc(hidden)]
    fn take_scratch(slot: Slot) -> Vec<Self>;

    /// Gives a scratch vector back to this thread's `slot`.
    #[doc(hidden)]
    fn put_scratch(slot: Slot, buf: Vec<Self>);
}

/// Which per-thread scratch buffer.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub enum Slot {
    /// Packed B (held by the thread that runs `gemm`).
    B,
    /// Packed A (held by each worker).
    A,
}

macro_rules! impl_gemm_scalar {
    ($t:ty) => {
        impl GemmScalar for $t {
            fn dispatch(
                kernel: Kernel,
                alpha: $t,
                a: &ArrayView2<'_, $t>,
                b: &ArrayView2<'_, $t>,
                beta: $t,
                c: &mut ArrayViewMut2<'_, $t>,
                n_threads: usize,
            ) {
                match kernel {
                    #[cfg(target_arch = "x86_64")]
                    Kernel::Avx512 => {
                        gemm_driver(crate::kernel::x86::Avx512, alpha, a, b, beta, c, n_threads)
                    }
                    #[cfg(target_arch = "x86_64")]
                    Kernel::Avx2 => {
                        gemm_driver(crate::kernel::x86::Avx2, alpha, a, b, beta, c, n_threads)
                    }
                    _ => gemm_driver(Portable, alpha, a, b, beta, c, n_threads),
                }
            }

            fn take_scratch(slot: Slot) -> Vec<$t> {
                thread_local! {
                    static SCRATCH: [Cell<Vec<$t>>; 2] = const { [Cell::new(Vec::new()), Cell::new(Vec::new())] };
                }
                SCRATCH.with(|s| s[slot as usize].take())
            }

            fn put_scratch(slot: Slot, buf: Vec<$t>) {
                thread_local! {
                    static SCRATCH: [Cell<Vec<$t>>; 2] = const { [Cell::new(Vec::new()), Cell::new(Vec::new())] };
                }
                SCRATCH.with(|s| s[slot as usize].set(buf));
            }
        }
    };
}

impl_gemm_scalar!(f32);
impl_gemm_scalar!(f64);

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
struct Blocking {
    kc: usize,
    nc: usize,
    mc: usize,
}

/// Temporary tuning knobs (read once from `TENSOR_TUNE_<NAME>`).
pub(crate) fn tune(name: &str, default: usize) -> usize {
    use std::collections::HashMap;
    use std::sync::OnceLock;
    static KNOBS: OnceLock<HashMap<String, usize>> = OnceLock::new();
    let knobs = KNOBS.get_or_init(|| {
        std::env::vars()
            .filter_map(|(k, v)| {
                Some((k.strip_prefix("TENSOR_TUNE_")?.to_string(), v.parse().ok()?))
            })
            .collect()
    });
    knobs.get(name).copied().unwrap_or(default)
}

fn blocking<T>(m: usize, n: usize, k: usize, mr: usize, nr: usize) -> Blocking {
    let size = std::mem::size_of::<T>();
    let kc = k.clamp(1, tune("KC", KC_MAX));
    let nc = (tune("BBYTES", B_BLOCK_BYTES) / (kc * size) / nr).max(1) * nr;
    let nc = nc.min(n.div_ceil(nr) * nr);
    let mc = (tune("ABYTES", A_BLOCK_BYTES) / (kc * size) / mr).max(1) * mr;
    let mc = mc.min(m.div_ceil(mr) * mr);
    Blocking { kc, nc, mc }
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
    n_threads: usize,
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
    let (mr, nr) = (K::MR, K::NR);
    let blk = blocking::<T>(m, n, k, mr, nr);
    let flops = 2.0 * m as f64 * n as f64 * k as f64;
    let n_threads = if flops < PARALLEL_MIN_FLOPS {
        1
    } else {
        n_threads.max(1)
    };

    for jc in (0..n).step_by(blk.nc) {
        let nb = blk.nc.min(n - jc);
        let n_panels = nb.div_ceil(nr);
        for pc in (0..k).step_by(blk.kc) {
            let kb = blk.kc.min(k - pc);
            let beta_block = if pc == 0 { beta } else { T::one() };
            let a_blk = a.slice(s![.., pc..pc + kb]);
            let b_blk = b.slice(s![pc..pc + kb, jc..jc + nb]);
            let c_blk = c.slice_mut(s![.., jc..jc + nb]);
            let b_direct = b_blk.strides()[1] == 1 && tune("DIRECTB", 1) == 1;
            with_scratch(Slot::B, n_panels * kb * nr, |packed: &mut [T]| {
                pack_b_panels(&b_blk, packed, 0, kb, nr, b_direct, n_threads);
                let packed: &[T] = packed;
                let job = Job {
                    kernel,
                    alpha,
                    beta: beta_block,
                    mc: blk.mc,
                };
                let b_panels = BPanels {
                    b: b_blk.view(),
                    packed,
                    direct: b_direct,
                    kb,
                    nr,
                };
                job.run_parallel(a_blk, b_panels, c_blk, n_threads);
            });
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

/// Packs the `NR`-wide panels of `b` (starting at panel `first`) into
/// `packed`, zero-padding the last one. Full panels of a row-major `b` are
/// skipped when `direct` (the kernel reads them in place).
fn pack_b_panels<T: Element>(
    b: &ArrayView2<'_, T>,
    packed: &mut [T],
    first: usize,
    kb: usize,
    nr: usize,
    direct: bool,
    n_threads: usize,
) {
    let n_panels = packed.len() / (kb * nr);
    if n_threads > 1 && n_panels > 1 && packed.len() >= PARALLEL_PACK_MIN {
        let half = n_panels / 2;
        let (lo, hi) = packed.split_at_mut(half * kb * nr);
        rayon::join(
            || pack_b_panels(b, lo, first, kb, nr, direct, n_threads / 2),
            || {
                pack_b_panels(
                    b,
                    hi,
                    first + half,
                    kb,
                    nr,
                    direct,
                    n_threads - n_threads / 2,
                )
            },
        );
        return;
    }
    let n = b.ncols();
    for (q, panel) in packed.chunks_exact_mut(kb * nr).enumerate() {
        let j0 = (first + q) * nr;
        let width = nr.min(n - j0);
        if direct && width == nr {
            continue;
        }
        let src = b.slice(s![.., j0..j0 + width]);
        if width < nr || src.strides()[1] != 1 {
            panel.fill(T::zero());
        }
        if src.strides()[1] == 1 {
            for (dst, row) in panel.chunks_exact_mut(nr).zip(src.rows()) {
                if let Some(row) = row.as_slice() {
                    dst[..width].copy_from_slice(row);
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
}

/// The B operand of one block: panel `q` is either read in place (full panel
/// of a row-major B) or from `packed`.
#[derive(Clone, Copy)]
struct BPanels<'a, T> {
    b: ArrayView2<'a, T>,
    packed: &'a [T],
    direct: bool,
    kb: usize,
    nr: usize,
}

impl<'a, T: Element> BPanels<'a, T> {
    /// Panel `q`: pointer to its `(0, 0)` element and its row stride.
    fn panel(&self, q: usize) -> (*const T, isize) {
        let j0 = q * self.nr;
        if self.direct && j0 + self.nr <= self.b.ncols() {
            (self.b.as_ptr().wrapping_add(j0), self.b.strides()[0])
        } else {
            (
                self.packed[q * self.kb * self.nr..].as_ptr(),
                self.nr as isize,
            )
        }
    }

    /// The panels from `q0` on (a column range starting on a panel boundary).
    fn starting_at(&self, q0: usize) -> BPanels<'a, T> {
        let j0 = (q0 * self.nr).min(self.b.ncols());
        BPanels {
            b: self.b.slice_move(s![.., j0..]),
            packed: &self.packed[(q0 * self.kb * self.nr).min(self.packed.len())..],
            ..*self
        }
    }
}

/// One block's worth of micro-kernel calls.
#[derive(Clone, Copy)]
struct Job<K, T> {
    kernel: K,
    alpha: T,
    beta: T,
    mc: usize,
}

impl<T: Element, K: MicroKernel<T>> Job<K, T> {
    /// Splits the block's tile grid into `n_threads` contiguous ranges of
    /// whole `MR`-row or `NR`-column panels (whichever has more) and runs them.
    fn run_parallel(
        &self,
        a: ArrayView2<'_, T>,
        b: BPanels<'_, T>,
        c: ArrayViewMut2<'_, T>,
        n_threads: usize,
    ) {
        let m_panels = c.nrows().div_ceil(K::MR);
        let n_panels = c.ncols().div_ceil(K::NR);
        if n_threads <= 1 || (m_panels <= 1 && n_panels <= 1) {
            self.run(a, b, c);
            return;
        }
        let left = n_threads / 2;
        if m_panels >= n_panels {
            let split = m_panels * left / n_threads;
            let split = split.max(1) * K::MR;
            let (a_lo, a_hi) = a.split_at(Axis(0), split);
            let (c_lo, c_hi) = c.split_at(Axis(0), split);
            rayon::join(
                || self.run_parallel(a_lo, b, c_lo, left),
                || self.run_parallel(a_hi, b, c_hi, n_threads - left),
            );
        } else {
            let split = (n_panels * left / n_threads).max(1);
            let (c_lo, c_hi) = c.split_at(Axis(1), split * K::NR);
            rayon::join(
                || self.run_parallel(a, b, c_lo, left),
                || self.run_parallel(a, b.starting_at(split), c_hi, n_threads - left),
            );
        }
    }

    /// The `ic`, `jr`, `ir` loops on one thread.
    fn run(&self, a: ArrayView2<'_, T>, b: BPanels<'_, T>, mut c: ArrayViewMut2<'_, T>) {
        let (m, kb) = a.dim();
        let n = c.ncols();
        let (mr, nr) = (K::MR, K::NR);
        let [rsa, csa] = [a.strides()[0], a.strides()[1]];
        let [rsc, csc] = [c.strides()[0], c.strides()[1]];
        let c_ptr = c.as_mut_ptr();
        // A is read in place when one of its strides is 1; otherwise (and
        // for a ragged last block of a column-contiguous A, whose padding
        // rows the kernel would read) each `ic` block is packed.
        let in_place = if tune("PACKA", 0) == 1 {
            None
        } else if csa == 1 || kb == 1 {
            Some(ALayout::Rows)
        } else if rsa == 1 {
            Some(ALayout::Cols)
        } else {
            None
        };
        for ic in (0..m).step_by(self.mc) {
            let mb = self.mc.min(m - ic);
            let a_rows = a.slice(s![ic..ic + mb, ..]);
            let needs_pack = match in_place {
                Some(ALayout::Rows) => false,
                Some(ALayout::Cols) => mb % mr != 0,
                None => true,
            };
            let pack_len = if needs_pack {
                mb.div_ceil(mr) * mr * kb
            } else {
                0
            };
            with_scratch(Slot::A, pack_len, |a_packed: &mut [T]| {
                if needs_pack {
                    pack_a(&a_rows, a_packed, mr);
                }
                for q in 0..n.div_ceil(nr) {
                    let (b_ptr, rsb) = b.panel(q);
                    let j0 = q * nr;
                    let n_eff = nr.min(n - j0);
                    for i0 in (0..mb).step_by(mr) {
                        let m_eff = mr.min(mb - i0);
                        let (a_ptr, layout, rsa, csa) = match (needs_pack, in_place) {
                            (true, _) | (false, None) => {
                                (a_packed[i0 * kb..].as_ptr(), ALayout::Cols, 1, mr as isize)
                            }
                            (false, Some(ALayout::Rows)) => (
                                a_rows.as_ptr().wrapping_offset(i0 as isize * rsa),
                                ALayout::Rows,
                                rsa,
                                1,
                            ),
                            (false, Some(ALayout::Cols)) => {
                                (a_rows.as_ptr().wrapping_add(i0), ALayout::Cols, 1, csa)
                            }
                        };
                        let tile = Tile {
                            k: kb,
                            a: a_ptr,
                            rsa,
                            csa,
                            b: b_ptr,
                            rsb,
                            c: c_ptr.wrapping_offset((ic + i0) as isize * rsc + j0 as isize * csc),
                            rsc,
                            csc,
                            m_eff,
                            n_eff,
                            alpha: self.alpha,
                            beta: self.beta,
                        };
                        // SAFETY: the tile lies inside C (i0 + m_eff <= mb,
                        // j0 + n_eff <= n); A rows ic + i0 .. + m_eff and B
                        // panel q cover kb steps (packed panels are padded to
                        // MR / NR); the kernel was checked available by
                        // `gemm_with_kernel`; C is a unique borrow so it
                        // aliases neither A nor B.
                        unsafe { self.kernel.tile(layout, &tile) };
                    }
                }
            });
        }
    }
}

/// Packs rows of `a` into `MR`-row panels, k-major (`rsa = 1, csa = MR`),
/// zero-padding the last panel.
fn pack_a<T: Element>(a: &ArrayView2<'_, T>, packed: &mut [T], mr: usize) {
    let kb = a.ncols();
    for (panel, rows) in packed
        .chunks_exact_mut(mr * kb)
        .zip(a.axis_chunks_iter(Axis(0), mr))
    {
        if rows.nrows() < mr {
            panel.fill(T::zero());
        }
        for (r, row) in rows.rows().into_iter().enumerate() {
            for (dst, &x) in panel[r..].iter_mut().step_by(mr).zip(row.iter()) {
                *dst = x;
            }
        }
    }
}
