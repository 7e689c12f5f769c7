//! AVX-512 and AVX2 + FMA micro-kernels for x86_64.
//!
//! One macro writes the SIMD body once per vector type; the bodies are
//! `#[inline(always)]` and only called from the `#[target_feature]` wrappers
//! below, which is where the wide instructions are actually emitted.

use std::arch::x86_64::*;

use super::{ALayout, MicroKernel, Tile};

/// Defines `$name::<MR, NV, ROWS>`: an `MR x (NV * lanes)` register tile.
macro_rules! simd_body {
    ($name:ident, $t:ty, $lanes:expr, $zero:ident, $set1:ident, $load:ident, $store:ident,
     $fmadd:ident, $mul:ident) => {
        /// The SIMD micro-kernel body for one vector type (see [`MicroKernel::tile`]).
        ///
        /// # Safety
        /// The contract of [`MicroKernel::tile`], and it must be inlined into a
        /// function compiled with the matching target features.
        #[inline(always)]
        unsafe fn $name<const MR: usize, const NV: usize, const ROWS: bool>(t: &Tile<$t>) {
            let mut acc = [[$zero(); NV]; MR];
            // Row pointers for the `Rows` layout; rows past `m_eff` repeat the
            // last valid row so no read leaves A.
            let mut rows = [t.a; MR];
            if ROWS {
                let last = t.m_eff - 1;
                for (r, row) in rows.iter_mut().enumerate() {
                    *row = t.a.offset(r.min(last) as isize * t.rsa);
                }
            }
            let mut bp = t.b;
            let mut ap = t.a;
            for p in 0..t.k {
                let mut bv = [$zero(); NV];
                for (v, x) in bv.iter_mut().enumerate() {
                    *x = $load(bp.add(v * $lanes));
                }
                for r in 0..MR {
                    let x = if ROWS { *rows[r].add(p) } else { *ap.add(r) };
                    let av = $set1(x);
                    for v in 0..NV {
                        acc[r][v] = $fmadd(av, bv[v], acc[r][v]);
                    }
                }
                bp = bp.offset(t.rsb);
                if !ROWS {
                    ap = ap.offset(t.csa);
                }
            }

            let alpha = $set1(t.alpha);
            let beta_is_zero = t.beta == 0.0;
            let beta = $set1(t.beta);
            if t.csc == 1 && t.m_eff == MR && t.n_eff == NV * $lanes {
                for (r, acc_row) in acc.iter().enumerate() {
                    let c_row = t.c.offset(r as isize * t.rsc);
                    for (v, &x) in acc_row.iter().enumerate() {
                        let cp = c_row.add(v * $lanes);
                        let mut y = $mul(x, alpha);
                        if !beta_is_zero {
                            y = $fmadd($load(cp), beta, y);
                        }
                        $store(cp, y);
                    }
                }
            } else {
                // Edge or strided C: the same vector arithmetic through a
                // stack buffer, so every element gets identical rounding.
                let mut buf = [[[0.0 as $t; $lanes]; NV]; MR];
                let c_at = |r: usize, j: usize| t.c.offset(r as isize * t.rsc + j as isize * t.csc);
                if !beta_is_zero {
                    for (r, row) in buf.iter_mut().enumerate().take(t.m_eff) {
                        for (j, x) in row.iter_mut().flatten().enumerate().take(t.n_eff) {
                            *x = *c_at(r, j);
                        }
                    }
                }
                for (acc_row, buf_row) in acc.iter().zip(buf.iter_mut()) {
                    for (&x, lane) in acc_row.iter().zip(buf_row.iter_mut()) {
                        let mut y = $mul(x, alpha);
                        if !beta_is_zero {
                            y = $fmadd($load(lane.as_ptr()), beta, y);
                        }
                        $store(lane.as_mut_ptr(), y);
                    }
                }
                for (r, row) in buf.iter().enumerate().take(t.m_eff) {
                    for (j, &x) in row.iter().flatten().enumerate().take(t.n_eff) {
                        *c_at(r, j) = x;
                    }
                }
            }
        }
    };
}

simd_body!(
    body_512_f32,
    f32,
    16,
    _mm512_setzero_ps,
    _mm512_set1_ps,
    _mm512_loadu_ps,
    _mm512_storeu_ps,
    _mm512_fmadd_ps,
    _mm512_mul_ps
);
simd_body!(
    body_512_f64,
    f64,
    8,
    _mm512_setzero_pd,
    _mm512_set1_pd,
    _mm512_loadu_pd,
    _mm512_storeu_pd,
    _mm512_fmadd_pd,
    _mm512_mul_pd
);
simd_body!(
    body_256_f32,
    f32,
    8,
    _mm256_setzero_ps,
    _mm256_set1_ps,
    _mm256_loadu_ps,
    _mm256_storeu_ps,
    _mm256_fmadd_ps,
    _mm256_mul_ps
);
simd_body!(
    body_256_f64,
    f64,
    4,
    _mm256_setzero_pd,
    _mm256_set1_pd,
    _mm256_loadu_pd,
    _mm256_storeu_pd,
    _mm256_fmadd_pd,
    _mm256_mul_pd
);

/// AVX-512F kernels: 10 x 32 tiles for f32, 10 x 16 for f64 (20 accumulators).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx512;

/// AVX2 + FMA kernels: 6 x 16 tiles for f32, 6 x 8 for f64 (12 accumulators).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx2;

/// Defines the `#[target_feature]` wrappers and the `MicroKernel` impl.
macro_rules! wrappers {
    ($kernel:ident, $t:ty, $features:literal, $body:ident, $mr:literal, $nv:literal, $lanes:literal,
     $rows:ident, $cols:ident) => {
        #[target_feature(enable = $features)]
        unsafe fn $rows(t: &Tile<$t>) {
            // SAFETY: forwarded contract of `MicroKernel::tile`; this function
            // carries the target features the body needs.
            unsafe { $body::<$mr, $nv, true>(t) }
        }

        #[target_feature(enable = $features)]
        unsafe fn $cols(t: &Tile<$t>) {
            // SAFETY: as above.
            unsafe { $body::<$mr, $nv, false>(t) }
        }

        impl MicroKernel<$t> for $kernel {
            const MR: usize = $mr;
            const NR: usize = $nv * $lanes;

            #[inline]
            unsafe fn tile(self, layout: ALayout, t: &Tile<$t>) {
                // SAFETY: the caller upholds the `tile` contract, including
                // that the CPU has the features (checked by `Kernel::check`).
                unsafe {
                    match layout {
                        ALayout::Rows => $rows(t),
                        ALayout::Cols => $cols(t),
                    }
                }
            }
        }
    };
}

wrappers!(
    Avx512,
    f32,
    "avx512f",
    body_512_f32,
    10,
    2,
    16,
    avx512_f32_rows,
    avx512_f32_cols
);
wrappers!(
    Avx512,
    f64,
    "avx512f",
    body_512_f64,
    10,
    2,
    8,
    avx512_f64_rows,
    avx512_f64_cols
);
wrappers!(
    Avx2,
    f32,
    "avx2,fma",
    body_256_f32,
    6,
    2,
    8,
    avx2_f32_rows,
    avx2_f32_cols
);
wrappers!(
    Avx2,
    f64,
    "avx2,fma",
    body_256_f64,
    6,
    2,
    4,
    avx2_f64_rows,
    avx2_f64_cols
);

/// Defines `$name(iters) -> checksum`: `iters` rounds of 16 independent
/// register-only FMAs on full vectors (the machine's FMA throughput).
macro_rules! fma_loop {
    ($name:ident, $t:ty, $features:literal, $set1:ident, $fmadd:ident, $add:ident, $store:ident,
     $lanes:literal) => {
        #[target_feature(enable = $features)]
        pub(crate) fn $name(iters: u64) -> $t {
            let mut acc = [$set1(1.0); 16];
            let x = $set1(0.999_999);
            let y = $set1(1e-7);
            for _ in 0..iters {
                for r in acc.iter_mut() {
                    *r = $fmadd(*r, x, y);
                }
            }
            let mut sum = $set1(0.0);
            for r in acc {
                sum = $add(sum, r);
            }
            let mut out = [0.0 as $t; $lanes];
            // SAFETY: `out` holds exactly one vector.
            unsafe { $store(out.as_mut_ptr(), sum) };
            out.iter().sum()
        }
    };
}

fma_loop!(
    fma_512_f32,
    f32,
    "avx512f",
    _mm512_set1_ps,
    _mm512_fmadd_ps,
    _mm512_add_ps,
    _mm512_storeu_ps,
    16
);
fma_loop!(
    fma_512_f64,
    f64,
    "avx512f",
    _mm512_set1_pd,
    _mm512_fmadd_pd,
    _mm512_add_pd,
    _mm512_storeu_pd,
    8
);
fma_loop!(
    fma_256_f32,
    f32,
    "avx2,fma",
    _mm256_set1_ps,
    _mm256_fmadd_ps,
    _mm256_add_ps,
    _mm256_storeu_ps,
    8
);
fma_loop!(
    fma_256_f64,
    f64,
    "avx2,fma",
    _mm256_set1_pd,
    _mm256_fmadd_pd,
    _mm256_add_pd,
    _mm256_storeu_pd,
    4
);
