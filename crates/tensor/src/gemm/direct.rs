//! The direct path for small products (the second layer's `100x50 * 50x10`
//! and its gradients, `k <= DIRECT_MAX_K`): no cache blocking, no reduction
//! blocks, no thread split. All of B is packed once into `NR`-wide panels
//! (a few KiB, with the kernel's SIMD packers), A is read in place when its
//! rows are contiguous (else one `MR`-row panel is packed at a time), and
//! each `MR`-row panel of A meets every B panel while it is in L1, one
//! micro-kernel call per tile over the whole `k`.
//!
//! With the AVX2 kernel, and with the AVX-512 one on a CPU that runs it on
//! 256-bit halves (a Zen 4, where with AVX-512VL's registers they measured
//! up to 1.9x the 10 x 32 tiles), f32 products skip the tiles (see
//! `kernel::small`):
//! products with 9 or 10 columns and row-contiguous A (`H * W2^T`) run a
//! ten-column kernel that reads A in place and wastes no lane; the others
//! put the vector lanes along the rows of C (or of `C^T`, whichever fills
//! them better), read B in place and pack nothing but, when A's columns are
//! not contiguous, one 8-row panel of A at a time. Their per-element
//! arithmetic is the tiles' (same `fma` chain over `p` ascending, same
//! `alpha` and `beta` roundings), so results are the same bit for bit
//! (`direct/tests.rs` checks it against a scalar `mul_add` reference).
//!
//! Whether a product takes this path depends only on its shape (never on
//! the thread count), so results stay bit-identical for any number of
//! threads; they differ in the last bits from the blocked path (no `KC`
//! split of the reduction).

use ndarray::{s, ArrayView2, ArrayViewMut2};

use super::{pack_a, pack_b_panels, with_scratch, Slot};
#[cfg(target_arch = "x86_64")]
use crate::kernel::small::{gemm_small_f32, gemm_small_f32_vl, gemm_ten_f32, Small};
#[cfg(target_arch = "x86_64")]
use crate::kernel::x86::{avx512_on_256_bit_halves, Avx2, Avx512};
use crate::kernel::{ALayout, Ahead, MicroKernel, Tile};
use crate::Element;

#[cfg(all(test, target_arch = "x86_64"))]
mod tests;

/// Longest reduction the direct path takes (one micro-kernel call per tile).
const DIRECT_MAX_K: usize = 128;
/// Most packed B elements (`k x` the padded `n`) the direct path takes; B
/// then stays in L1 / L2 while every row panel of A passes.
const DIRECT_MAX_B: usize = 16 * 1024;
/// Products of at least this many flops use the blocked (threaded) driver.
const DIRECT_MAX_FLOPS: f64 = super::PARALLEL_MIN_FLOPS;

/// Whether an `m x k` by `k x n` product takes the direct path with kernel `K`.
pub(super) fn eligible<T, K: MicroKernel<T>>(m: usize, k: usize, n: usize) -> bool {
    let flops = 2.0 * m as f64 * k as f64 * n as f64;
    k <= DIRECT_MAX_K && k * n.div_ceil(K::NR) * K::NR <= DIRECT_MAX_B && flops < DIRECT_MAX_FLOPS
}

/// `C = alpha * A * B + beta * C` on the calling thread, for shapes
/// [`eligible`] accepts with `k >= 1`, `m, n >= 1` and `alpha != 0`.
pub(super) fn gemm_direct<T: Element, K: MicroKernel<T>>(
    kernel: K,
    alpha: T,
    a: &ArrayView2<'_, T>,
    b: &ArrayView2<'_, T>,
    beta: T,
    c: &mut ArrayViewMut2<'_, T>,
) {
    #[cfg(target_arch = "x86_64")]
    if small_f32::<T, K>(alpha, a, b, beta, c) {
        return;
    }
    gemm_tiles(kernel, alpha, a, b, beta, c);
}

/// [`gemm_direct`] on `K`'s register tiles, never the small kernels (the
/// tests run both, whichever this CPU dispatches to).
pub(super) fn gemm_tiles<T: Element, K: MicroKernel<T>>(
    kernel: K,
    alpha: T,
    a: &ArrayView2<'_, T>,
    b: &ArrayView2<'_, T>,
    beta: T,
    c: &mut ArrayViewMut2<'_, T>,
) {
    let (m, k) = a.dim();
    let n = b.ncols();
    let (mr, nr) = (K::MR, K::NR);
    let n_panels = n.div_ceil(nr);
    let b_len = n_panels * k * nr;
    let rsa = a.strides()[0];
    let a_in_place = a.strides()[1] == 1 || k == 1;
    let a_len = if a_in_place { 0 } else { mr * k };
    let [rsc, csc] = [c.strides()[0], c.strides()[1]];
    let c_ptr = c.as_mut_ptr();
    with_scratch(Slot::Panels, b_len + a_len, |buf: &mut [T]| {
        let (b_packed, a_packed) = buf.split_at_mut(b_len);
        pack_b_panels(kernel, b, b_packed, 0, nr, 1);
        for i0 in (0..m).step_by(mr) {
            let rows = mr.min(m - i0);
            let (a_ptr, layout, t_rsa, t_csa) = if a_in_place {
                let a_ptr = a.as_ptr().wrapping_offset(i0 as isize * rsa);
                (a_ptr, ALayout::Rows, rsa, 1)
            } else {
                pack_a(kernel, &a.slice(s![i0..i0 + rows, ..]), a_packed, mr);
                (a_packed.as_ptr(), ALayout::Cols, 1, mr as isize)
            };
            for (q, b_panel) in b_packed.chunks_exact(k * nr).enumerate() {
                let j0 = q * nr;
                let tile = Tile {
                    k,
                    a: a_ptr,
                    rsa: t_rsa,
                    csa: t_csa,
                    b: b_panel.as_ptr(),
                    rsb: nr as isize,
                    c: c_ptr.wrapping_offset(i0 as isize * rsc + j0 as isize * csc),
                    rsc,
                    csc,
                    c_next: std::ptr::null(),
                    ahead: [Ahead::NONE; 2],
                    fill: std::ptr::null_mut(),
                    m_eff: rows,
                    n_eff: nr.min(n - j0),
                    alpha,
                    beta,
                };
                // SAFETY: the tile lies inside C (i0 < m, j0 < n, m_eff and
                // n_eff clipped); in place, A rows i0 .. i0 + rows have k
                // contiguous elements (or k == 1), else the packed panel
                // holds all MR rows (zero-padded) for k steps; the B panel
                // holds k rows of NR (padded); the kernel was checked
                // available by the caller; C is a unique borrow, so it
                // aliases neither A nor B.
                unsafe { kernel.tile(layout, &tile) };
            }
        }
    });
}

/// Runs the product with the small kernels when `K` is the AVX2 kernel (or
/// the AVX-512 one on 256-bit halves, see [`avx512_on_256_bit_halves`]:
/// then with 32 registers) and `T` is `f32`: the ten-column kernel
/// ([`gemm_ten_f32`]) for 9 or 10
/// columns and A without unit row stride, else the lanes-along-rows kernel
/// in the orientation ([`Small::transposed`] or not) of
/// lower [`Small::cost`], unless its strides would alias in L1
/// ([`Small::strides_fit`]); returns `false` (touching nothing) otherwise.
#[cfg(target_arch = "x86_64")]
fn small_f32<T: Element, K: MicroKernel<T>>(
    alpha: T,
    a: &ArrayView2<'_, T>,
    b: &ArrayView2<'_, T>,
    beta: T,
    c: &mut ArrayViewMut2<'_, T>,
) -> bool {
    use std::any::{Any, TypeId};
    let avx2 = TypeId::of::<K>() == TypeId::of::<Avx2>();
    let half_width_avx512 =
        TypeId::of::<K>() == TypeId::of::<Avx512>() && avx512_on_256_bit_halves();
    if !(avx2 || half_width_avx512) {
        return false;
    }
    let (Some(&alpha), Some(&beta)) = (
        (&alpha as &dyn Any).downcast_ref::<f32>(),
        (&beta as &dyn Any).downcast_ref::<f32>(),
    ) else {
        return false;
    };
    let (m, k) = a.dim();
    let job = Small {
        m,
        n: b.ncols(),
        k,
        a: a.as_ptr().cast(),
        rsa: a.strides()[0],
        csa: a.strides()[1],
        b: b.as_ptr().cast(),
        rsb: b.strides()[0],
        csb: b.strides()[1],
        c: c.as_mut_ptr().cast(),
        rsc: c.strides()[0],
        csc: c.strides()[1],
        alpha,
        beta,
    };
    // Ten classes with row-major A: no transposed A panels (about 1.1x
    // faster than the lanes-along-rows kernel on `H * W2^T`).
    if (9..=10).contains(&job.n) && job.rsa != 1 {
        // SAFETY: as below (the same job).
        if unsafe { gemm_ten_f32(&job) } {
            return true;
        }
    }
    let flipped = job.transposed();
    let job = if flipped.cost() < job.cost() {
        flipped
    } else {
        job
    };
    if !job.strides_fit() {
        return false;
    }
    // SAFETY: `T` is `f32` (the scalars downcast), so the pointers address
    // f32 views: A is m x k, B k x n, C m x n at their strides (the
    // transposed job addresses the same elements); a value of `Avx2`
    // exists only once `Kernel::check` found AVX2 and FMA, one of
    // `Avx512` only with AVX-512F, AVX2 and FMA, and
    // `avx512_on_256_bit_halves` found AVX-512VL too; C is a unique
    // borrow, so it aliases neither A nor B.
    unsafe {
        if half_width_avx512 {
            gemm_small_f32_vl(&job)
        } else {
            gemm_small_f32(&job)
        }
    }
}
