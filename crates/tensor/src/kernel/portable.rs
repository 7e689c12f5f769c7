//! The portable micro-kernel: plain Rust, any target, any `LinalgScalar`.

use ndarray::LinalgScalar;

use super::{ALayout, MicroKernel, Tile};

/// Rows of the portable tile.
const MR: usize = 4;
/// Columns of the portable tile.
const NR: usize = 8;

/// Scalar kernels with a 4 x 8 tile; the compiler vectorises the inner row.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Portable;

impl<T: LinalgScalar + PartialEq> MicroKernel<T> for Portable {
    const MR: usize = MR;
    const NR: usize = NR;

    unsafe fn tile(self, layout: ALayout, t: &Tile<T>) {
        let mut acc = [[T::zero(); NR]; MR];
        let last = t.m_eff - 1;
        for p in 0..t.k {
            // SAFETY: the caller guarantees `k` readable rows of NR contiguous
            // B elements at stride `rsb`.
            let b: [T; NR] = unsafe { *(t.b.offset(p as isize * t.rsb) as *const [T; NR]) };
            for (r, acc_row) in acc.iter_mut().enumerate() {
                let offset = match layout {
                    ALayout::Rows => r.min(last) as isize * t.rsa + p as isize,
                    ALayout::Cols => r as isize + p as isize * t.csa,
                };
                // SAFETY: in bounds by the A part of the `tile` contract.
                let a = unsafe { *t.a.offset(offset) };
                for (c, &b) in acc_row.iter_mut().zip(b.iter()) {
                    *c = *c + a * b;
                }
            }
        }
        let beta_is_zero = t.beta == T::zero();
        for (r, acc_row) in acc.iter().enumerate().take(t.m_eff) {
            for (j, &x) in acc_row.iter().enumerate().take(t.n_eff) {
                // SAFETY: `(r, j)` is inside the `m_eff x n_eff` C tile.
                unsafe {
                    let c = t.c.offset(r as isize * t.rsc + j as isize * t.csc);
                    *c = if beta_is_zero {
                        t.alpha * x
                    } else {
                        t.alpha * x + t.beta * *c
                    };
                }
            }
        }
    }
}
