//! AVX-512 and AVX2 + FMA micro-kernels for x86_64.
//!
//! One macro writes the SIMD body once per vector type; the bodies are
//! `#[inline(always)]` and only called from the `#[target_feature]` wrappers
//! below, which is where the wide instructions are actually emitted.

use std::arch::x86_64::*;

use super::{avx2, ALayout, Ahead, DotTile, MicroKernel, Tile};

/// Software prefetch distance for packed A (elements ahead).
const PF_A: usize = 160;
/// Whether the micro-kernel prefetches its C tile before the reduction.
const C_PREFETCH: bool = true;
/// Reduction steps per trip of the micro-kernel loop.
const UNROLL: usize = 4;

/// Defines `$name::<MR, NV, ROWS, AHEAD, FILL>`: an `MR x (NV * lanes)`
/// register tile; `AHEAD`: whether it prefetches [`Tile::ahead`] (see
/// [`MicroKernel::AHEAD`]); `FILL`: whether it copies the B rows it loads
/// to [`Tile::fill`].
macro_rules! simd_body {
    ($name:ident, $t:ty, $lanes:expr, $zero:ident, $set1:ident, $load:ident, $store:ident,
     $fmadd:ident, $mul:ident, $load_n:ident, $store_n:ident) => {
        /// The SIMD micro-kernel body for one vector type (see [`MicroKernel::tile`]).
        ///
        /// # Safety
        /// The contract of [`MicroKernel::tile`], and it must be inlined into a
        /// function compiled with the matching target features.
        #[inline(always)]
        unsafe fn $name<
            const MR: usize,
            const NV: usize,
            const ROWS: bool,
            const AHEAD: bool,
            const FILL: bool,
        >(
            t: &Tile<$t>,
        ) {
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
            // Prefetch the C tile: its lines arrive (from L2, L3 or memory)
            // while the reduction runs, instead of stalling the update at
            // the end. (A prefetch never faults; rows past `m_eff` are
            // skipped anyway.)
            // The next tile's C is prefetched too, so its lines have a
            // whole tile's reduction to arrive.
            if C_PREFETCH {
                let last = (NV * $lanes - 1) as isize * t.csc;
                for r in 0..t.m_eff.min(MR) {
                    let row = t.c.wrapping_offset(r as isize * t.rsc);
                    _mm_prefetch::<_MM_HINT_T0>(row as *const i8);
                    _mm_prefetch::<_MM_HINT_T0>(row.wrapping_offset(last) as *const i8);
                }
                if !t.c_next.is_null() {
                    for r in 0..MR {
                        let row = t.c_next.wrapping_offset(r as isize * t.rsc);
                        _mm_prefetch::<_MM_HINT_T0>(row as *const i8);
                        _mm_prefetch::<_MM_HINT_T0>(row.wrapping_offset(last) as *const i8);
                    }
                }
            }
            let mut bp = t.b;
            let mut ap = t.a;
            let mut fp = t.fill;
            // One reduction step: a row of B times a column of A into the tile.
            macro_rules! step {
                ($p:expr) => {{
                    let p = $p;
                    let mut bv = [$zero(); NV];
                    for (v, x) in bv.iter_mut().enumerate() {
                        *x = $load(bp.add(v * $lanes));
                    }
                    if FILL {
                        for (v, x) in bv.iter().enumerate() {
                            $store(fp.add(v * $lanes), *x);
                        }
                        fp = fp.add(NV * $lanes);
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
                        if PF_A > 0 {
                            _mm_prefetch::<_MM_HINT_T0>(ap.wrapping_add(PF_A) as *const i8);
                        }
                        ap = ap.offset(t.csa);
                    }
                }};
            }
            // Unrolled by UNROLL to thin out the loop overhead; each trip
            // also prefetches its share of `t.ahead`'s lines into L2
            // (`pf_per_trip`: the lines spread evenly over the tile), the
            // first region's, then the second's.
            let [mut ahead, mut then] = if AHEAD { t.ahead } else { [Ahead::NONE; 2] };
            let mut pf_left = ahead.rows * ahead.lines + then.rows * then.lines;
            let pf_per_trip = pf_left.div_ceil((t.k / UNROLL).max(1));
            let mut pf_line = 0;
            let mut p = 0;
            while p + UNROLL <= t.k {
                for u in 0..UNROLL {
                    step!(p + u);
                }
                for _ in 0..pf_per_trip.min(pf_left) {
                    if ahead.rows == 0 {
                        (ahead, then) = (then, Ahead::NONE);
                    }
                    let run = ahead.base as *const i8;
                    _mm_prefetch::<_MM_HINT_T1>(run.wrapping_add(pf_line * 64));
                    pf_line += 1;
                    if pf_line == ahead.lines {
                        pf_line = 0;
                        ahead.base = ahead.base.wrapping_offset(ahead.stride);
                        ahead.rows -= 1;
                    }
                    pf_left -= 1;
                }
                p += UNROLL;
            }
            while p < t.k {
                step!(p);
                p += 1;
            }

            let alpha = $set1(t.alpha);
            let beta_is_zero = t.beta == 0.0;
            let beta = $set1(t.beta);
            // Only constant-index loops touch `acc` (they unroll fully): any
            // data-dependent index would make LLVM keep the accumulators in
            // memory and store all of them after every reduction step. Edge
            // and strided tiles go through a stack copy instead.
            if t.csc == 1 && t.m_eff == MR && t.n_eff == NV * $lanes {
                for r in 0..MR {
                    let c_row = t.c.offset(r as isize * t.rsc);
                    for v in 0..NV {
                        let cp = c_row.add(v * $lanes);
                        let mut y = $mul(acc[r][v], alpha);
                        if !beta_is_zero {
                            y = $fmadd($load(cp), beta, y);
                        }
                        $store(cp, y);
                    }
                }
                return;
            }
            let mut buf = [[[0.0 as $t; $lanes]; NV]; MR];
            for r in 0..MR {
                for v in 0..NV {
                    $store(buf[r][v].as_mut_ptr(), acc[r][v]);
                }
            }
            if t.csc == 1 {
                // Edge tile of a row-contiguous C: the same arithmetic with
                // partial (masked) loads and stores.
                for (r, buf_row) in buf.iter().enumerate().take(t.m_eff) {
                    let c_row = t.c.offset(r as isize * t.rsc);
                    for (v, lane) in buf_row.iter().enumerate() {
                        let lanes = t.n_eff.saturating_sub(v * $lanes).min($lanes);
                        if lanes == 0 {
                            break;
                        }
                        let cp = c_row.add(v * $lanes);
                        let mut y = $mul($load(lane.as_ptr()), alpha);
                        if !beta_is_zero {
                            y = $fmadd($load_n(cp, lanes), beta, y);
                        }
                        $store_n(cp, lanes, y);
                    }
                }
            } else {
                // Strided C: the same vector arithmetic through the stack
                // buffer, so every element gets identical rounding.
                let mut old = [[[0.0 as $t; $lanes]; NV]; MR];
                let c_at = |r: usize, j: usize| t.c.offset(r as isize * t.rsc + j as isize * t.csc);
                if !beta_is_zero {
                    for (r, row) in old.iter_mut().enumerate().take(t.m_eff) {
                        for (j, x) in row.iter_mut().flatten().enumerate().take(t.n_eff) {
                            *x = *c_at(r, j);
                        }
                    }
                }
                for (buf_row, old_row) in buf.iter_mut().zip(old.iter()) {
                    for (lane, old_lane) in buf_row.iter_mut().zip(old_row.iter()) {
                        let mut y = $mul($load(lane.as_ptr()), alpha);
                        if !beta_is_zero {
                            y = $fmadd($load(old_lane.as_ptr()), beta, y);
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

/// Loads the first `n` (1..=16) lanes, zeroing the rest, reading nothing beyond.
#[inline(always)]
unsafe fn load_n_512_f32(p: *const f32, n: usize) -> __m512 {
    _mm512_maskz_loadu_ps(lane_mask(n), p)
}

/// Stores the first `n` (1..=16) lanes, writing nothing beyond.
#[inline(always)]
unsafe fn store_n_512_f32(p: *mut f32, n: usize, v: __m512) {
    _mm512_mask_storeu_ps(p, lane_mask(n), v)
}

/// Loads the first `n` (1..=8) lanes, zeroing the rest, reading nothing beyond.
#[inline(always)]
unsafe fn load_n_512_f64(p: *const f64, n: usize) -> __m512d {
    _mm512_maskz_loadu_pd(lane_mask(n) as u8, p)
}

/// Stores the first `n` (1..=8) lanes, writing nothing beyond.
#[inline(always)]
unsafe fn store_n_512_f64(p: *mut f64, n: usize, v: __m512d) {
    _mm512_mask_storeu_pd(p, lane_mask(n) as u8, v)
}

/// AVX2 lane mask of the first `n` of 8 32-bit lanes.
#[inline(always)]
unsafe fn mask_256_32(n: usize) -> __m256i {
    _mm256_cmpgt_epi32(
        _mm256_set1_epi32(n as i32),
        _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
    )
}

/// AVX2 lane mask of the first `n` of 4 64-bit lanes.
#[inline(always)]
unsafe fn mask_256_64(n: usize) -> __m256i {
    _mm256_cmpgt_epi64(_mm256_set1_epi64x(n as i64), _mm256_setr_epi64x(0, 1, 2, 3))
}

/// Loads the first `n` (1..=8) lanes, zeroing the rest, reading nothing
/// beyond (a plain load for all 8).
#[inline(always)]
pub(super) unsafe fn load_n_256_f32(p: *const f32, n: usize) -> __m256 {
    if n >= 8 {
        return _mm256_loadu_ps(p);
    }
    _mm256_maskload_ps(p, mask_256_32(n))
}

/// Stores the first `n` (1..=8) lanes, writing nothing beyond: a plain
/// store for all 8, else 4-, 2- and 1-lane pieces (`vmaskmovps` stores are
/// microcoded and slow on AMD Zen, and a stack copy of `n` elements becomes
/// a `memcpy` call; edge tiles of thin products, like the second layer's
/// 10 columns, make many).
#[inline(always)]
pub(super) unsafe fn store_n_256_f32(p: *mut f32, n: usize, v: __m256) {
    if n >= 8 {
        _mm256_storeu_ps(p, v);
        return;
    }
    let (mut p, mut n) = (p, n);
    let mut part = _mm256_castps256_ps128(v);
    if n >= 4 {
        _mm_storeu_ps(p, part);
        part = _mm256_extractf128_ps::<1>(v);
        (p, n) = (p.add(4), n - 4);
    }
    if n >= 2 {
        _mm_store_sd(p.cast(), _mm_castps_pd(part));
        part = _mm_movehl_ps(part, part);
        (p, n) = (p.add(2), n - 2);
    }
    if n >= 1 {
        _mm_store_ss(p, part);
    }
}

/// Loads the first `n` (1..=4) lanes, zeroing the rest, reading nothing beyond.
#[inline(always)]
pub(super) unsafe fn load_n_256_f64(p: *const f64, n: usize) -> __m256d {
    _mm256_maskload_pd(p, mask_256_64(n))
}

/// Stores the first `n` (1..=4) lanes, writing nothing beyond (see
/// `store_n_256_f32`).
#[inline(always)]
unsafe fn store_n_256_f64(p: *mut f64, n: usize, v: __m256d) {
    if n >= 4 {
        _mm256_storeu_pd(p, v);
        return;
    }
    let (mut p, mut n) = (p, n);
    let mut part = _mm256_castpd256_pd128(v);
    if n >= 2 {
        _mm_storeu_pd(p, part);
        part = _mm256_extractf128_pd::<1>(v);
        (p, n) = (p.add(2), n - 2);
    }
    if n >= 1 {
        _mm_store_sd(p, part);
    }
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
    _mm512_mul_ps,
    load_n_512_f32,
    store_n_512_f32
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
    _mm512_mul_pd,
    load_n_512_f64,
    store_n_512_f64
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
    _mm256_mul_ps,
    load_n_256_f32,
    store_n_256_f32
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
    _mm256_mul_pd,
    load_n_256_f64,
    store_n_256_f64
);

/// Cache blocking of the AVX-512 kernels (bytes of the `KC x NR` B
/// micro-panel, the `MC x KC` A block, the `KC x NC` B slice; see
/// [`MicroKernel::KC_BYTES`]), tuned on a Xeon. The A block is 128 KiB
/// (`MC` = 120 f32 rows at `KC` = 256), so a 100-row mini-batch is one
/// block and each thread packs its B micro-panels right before use, as
/// with AVX2: the wide forward went from 63-64% to 66-67% of peak on a
/// Zen 4 (medians of 11 round-robin samples). `MC` only regroups tiles,
/// so results do not depend on it.
const BLOCKING_512: (usize, usize, usize) = (32 << 10, 128 << 10, 1 << 20);

/// Cache blocking of the AVX2 kernels, tuned on Zen 3 (32 KiB L1d, 512 KiB
/// L2, 32 MiB L3): a 208 KiB A block (`MC` = 102 f32 rows at `KC` = 512:
/// a 100-row mini-batch is one block, so each thread packs its B
/// micro-panels right before use instead of writing a shared 2 MiB slice
/// to L3 and reading it back) stays in L2; a 2 MiB B slice (`NC` = 1024
/// f32) lives in L3, so 1024-wide products pack A once. The B micro-panel
/// stays at 32 KiB (`KC` = 512): `KC` sets where the k sum is split, so
/// changing it would change the last bits of every trained network (a
/// 24 KiB panel, `KC` = 384, measured no better beyond the noise of a
/// loaded machine). `MC` and `NC` only regroup the same tiles, so results
/// do not depend on them.
const BLOCKING_256: (usize, usize, usize) = (32 << 10, 208 << 10, 2 << 20);

/// AVX-512F kernels: 10 x 32 tiles for f32, 10 x 16 for f64 (20 accumulators).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx512;

/// The AVX-512F f32 kernel for thin products, 8 x 48 tiles (24
/// accumulators): a C of 33 to 48 columns past the dot-product tail (the
/// report's 50 hidden units: 48 + 2) in one tile per row group, instead of
/// a 10 x 32 tile and a narrow 10 x 16 one. Each broadcast of A then feeds
/// three vectors instead of two (or one, in the narrow tile), and eight row
/// pointers leave registers for the loop. It splits `k` where [`Avx512`]
/// does (`KC_NR` = 32), and each element's arithmetic is the same, so it
/// gives the same bits. On a Zen 4 the thin forward `X * W1^T` (100 x 3072
/// x 50) went from 72 to 83 GFLOP/s and the evaluation's 10000-row one from
/// 72 to 79 (medians of alternating runs). No prefetch ahead (`AHEAD` off):
/// the thin path passes none, and without the loop state the two products
/// ran 3% and 4% faster.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx512Thin;

/// Whether this CPU runs AVX-512 on 256-bit halves: an AMD family 0x19
/// CPU with AVX-512F and VL, i.e. a Zen 4 (Zen 3, the same family, has
/// none). There a 512-bit FMA costs two 256-bit ones, so wide tiles buy no
/// throughput, and f32 products on the direct path run faster on the small
/// kernels (`kernel::small`, with AVX-512VL's 32 registers), which waste
/// fewer lanes and pack less (see `gemm::direct`). Zen 5 and Xeons have
/// full 512-bit FMA units and keep the AVX-512 tiles.
pub(crate) fn avx512_on_256_bit_halves() -> bool {
    static HALVES: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HALVES.get_or_init(|| {
        let vendor = __cpuid(0);
        let amd = [vendor.ebx, vendor.edx, vendor.ecx] == [0x6874_7541, 0x6974_6e65, 0x444d_4163];
        let eax = __cpuid(1).eax;
        let base = (eax >> 8) & 0xf;
        let family = if base == 0xf {
            base + ((eax >> 20) & 0xff)
        } else {
            base
        };
        amd && family == 0x19
            && std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl")
    })
}

/// AVX2 + FMA kernels: 6 x 16 tiles for f32, 6 x 8 for f64 (12 accumulators).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx2;

/// Defines the `#[target_feature]` wrappers and the `MicroKernel` impl.
macro_rules! wrappers {
    ($kernel:ident, $t:ty, $features:literal, $body:ident, $mr:literal, $nv:literal, $lanes:literal,
     $ahead:literal, $rows:ident, $cols:ident, $pack:path, $pack_a:path, $pack_rows:path,
     $dot:expr, $dot_fn:ident, $blocking:expr, $kc_nr:expr) => {
        #[target_feature(enable = $features)]
        unsafe fn $rows(t: &Tile<$t>) {
            // SAFETY: forwarded contract of `MicroKernel::tile`; this function
            // carries the target features the body needs.
            unsafe { $body::<$mr, $nv, true, $ahead, false>(t) }
        }

        #[target_feature(enable = $features)]
        unsafe fn $cols(t: &Tile<$t>) {
            // SAFETY: as above.
            unsafe { $body::<$mr, $nv, false, $ahead, false>(t) }
        }

        impl MicroKernel<$t> for $kernel {
            const MR: usize = $mr;
            const NR: usize = $nv * $lanes;
            const LANES: usize = $lanes;
            const KC_NR: usize = $kc_nr;
            const DOT: (usize, usize) = $dot;
            const AHEAD: bool = $ahead;
            const FILL: bool = true;
            const KC_BYTES: usize = $blocking.0;
            const A_BLOCK_BYTES: usize = $blocking.1;
            const B_BLOCK_BYTES: usize = $blocking.2;

            #[inline]
            unsafe fn dot_tile(self, t: &DotTile<$t>) {
                // SAFETY: forwarded contract of `MicroKernel::dot_tile`.
                unsafe { $dot_fn(t) }
            }

            #[inline]
            unsafe fn pack_b_rows(
                self,
                src: *const $t,
                rsb: isize,
                k: usize,
                width: usize,
                dst: &mut [$t],
            ) -> bool {
                $pack_rows(src, rsb, k, width, $nv * $lanes, dst)
            }

            #[inline]
            unsafe fn pack_a_rows(
                self,
                src: *const $t,
                rsa: isize,
                k: usize,
                rows: usize,
                dst: &mut [$t],
            ) -> bool {
                $pack_a(src, rsa, k, rows, $mr, dst)
            }

            #[inline]
            unsafe fn pack_b_transposed(
                self,
                src: *const $t,
                csb: isize,
                k: usize,
                width: usize,
                dst: &mut [$t],
            ) -> bool {
                $pack(src, csb, k, width, dst)
            }

            #[inline]
            unsafe fn tile(self, layout: ALayout, t: &Tile<$t>) {
                /// The narrow tile (`MR x lanes`) for an edge panel whose
                /// valid columns fit one vector: half the multiply-adds,
                /// and each lane's arithmetic is the same as in the full
                /// tile, so results do not depend on which one ran.
                #[target_feature(enable = $features)]
                unsafe fn narrow_rows(t: &Tile<$t>) {
                    // SAFETY: as for the full tile; the body reads only the
                    // first vector of each B row.
                    unsafe { $body::<$mr, 1, true, $ahead, false>(t) }
                }

                /// [`ALayout::Cols`] version of `narrow_rows`.
                #[target_feature(enable = $features)]
                unsafe fn narrow_cols(t: &Tile<$t>) {
                    // SAFETY: as above.
                    unsafe { $body::<$mr, 1, false, $ahead, false>(t) }
                }

                /// The short tile (`MR / 2` rows) for an edge row group
                /// with at most that many valid rows (100 = 12 x 8 + 4 in
                /// the 8 x 48 tiles): the same per-element arithmetic,
                /// without the multiply-adds of rows that are not stored.
                #[target_feature(enable = $features)]
                unsafe fn short_rows(t: &Tile<$t>) {
                    // SAFETY: as for the full tile; the body reads only the
                    // first `MR / 2` rows, and `m_eff` is at most that.
                    unsafe { $body::<{ $mr / 2 }, $nv, true, $ahead, false>(t) }
                }

                /// [`ALayout::Cols`] version of `short_rows` (a packed A
                /// keeps its `MR`-row layout: `csa` steps over it).
                #[target_feature(enable = $features)]
                unsafe fn short_cols(t: &Tile<$t>) {
                    // SAFETY: as above.
                    unsafe { $body::<{ $mr / 2 }, $nv, false, $ahead, false>(t) }
                }

                /// The full tile that also packs the B rows it loads (see
                /// [`Tile::fill`]).
                #[target_feature(enable = $features)]
                unsafe fn fill_rows(t: &Tile<$t>) {
                    // SAFETY: as for the full tile; `fill` holds `k * NR`
                    // elements (the `tile` contract).
                    unsafe { $body::<$mr, $nv, true, $ahead, true>(t) }
                }

                /// [`ALayout::Cols`] version of `fill_rows`.
                #[target_feature(enable = $features)]
                unsafe fn fill_cols(t: &Tile<$t>) {
                    // SAFETY: as above.
                    unsafe { $body::<$mr, $nv, false, $ahead, true>(t) }
                }

                let narrow = $nv > 1 && t.n_eff <= $lanes;
                let short = $mr >= 8 && t.m_eff <= $mr / 2;
                // SAFETY: the caller upholds the `tile` contract, including
                // that the CPU has the features (checked by `Kernel::check`).
                unsafe {
                    if !t.fill.is_null() {
                        debug_assert_eq!(t.n_eff, $nv * $lanes);
                        return match layout {
                            ALayout::Rows => fill_rows(t),
                            ALayout::Cols => fill_cols(t),
                        };
                    }
                    match (layout, narrow, short) {
                        (ALayout::Rows, true, _) => narrow_rows(t),
                        (ALayout::Cols, true, _) => narrow_cols(t),
                        (ALayout::Rows, false, true) => short_rows(t),
                        (ALayout::Cols, false, true) => short_cols(t),
                        (ALayout::Rows, false, false) => $rows(t),
                        (ALayout::Cols, false, false) => $cols(t),
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
    true,
    avx512_f32_rows,
    avx512_f32_cols,
    pack_bt_512_f32,
    pack_a_512_f32,
    pack_rows_512_f32,
    (DOT_R, DOT_C),
    dot_512_f32,
    BLOCKING_512,
    32
);
wrappers!(
    Avx512,
    f64,
    "avx512f",
    body_512_f64,
    10,
    2,
    8,
    true,
    avx512_f64_rows,
    avx512_f64_cols,
    pack_bt_512_f64,
    pack_a_512_f64,
    pack_rows_512_f64,
    (0, 0),
    no_dot,
    BLOCKING_512,
    16
);
wrappers!(
    Avx512Thin,
    f32,
    "avx512f",
    body_512_f32,
    8,
    3,
    16,
    false,
    thin_f32_rows,
    thin_f32_cols,
    avx2::pack_bt_f32_panel::<48>,
    pack_a_512_f32,
    pack_rows_512_f32,
    (DOT_R, DOT_C),
    dot_512_f32,
    BLOCKING_512,
    32
);
wrappers!(
    Avx2,
    f32,
    "avx2,fma",
    body_256_f32,
    6,
    2,
    8,
    false,
    avx2_f32_rows,
    avx2_f32_cols,
    avx2::pack_bt_f32_panel::<16>,
    avx2::pack_a_f32,
    avx2::pack_rows_f32,
    (0, 0),
    no_dot,
    BLOCKING_256,
    16
);
wrappers!(
    Avx2,
    f64,
    "avx2,fma",
    body_256_f64,
    6,
    2,
    4,
    false,
    avx2_f64_rows,
    avx2_f64_cols,
    avx2::pack_bt_f64,
    avx2::pack_a_f64,
    avx2::pack_rows_f64,
    (0, 0),
    no_dot,
    BLOCKING_256,
    8
);

/// Defines `$name(iters) -> checksum`: `iters` rounds of `$chains`
/// independent register-only FMAs on full vectors (the machine's FMA
/// throughput; enough chains to cover latency x ports, few enough to stay
/// in registers: 16 of 32 zmm, 12 of 16 ymm).
macro_rules! fma_loop {
    ($name:ident, $t:ty, $features:literal, $set1:ident, $fmadd:ident, $add:ident, $store:ident,
     $lanes:literal, $chains:literal) => {
        #[target_feature(enable = $features)]
        pub(crate) fn $name(iters: u64) -> $t {
            let mut acc = [$set1(1.0); $chains];
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
    16,
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
    8,
    16
);
fma_loop!(
    fma_256_f32,
    f32,
    "avx2,fma",
    _mm256_set1_ps,
    _mm256_fmadd_ps,
    _mm256_add_ps,
    _mm256_storeu_ps,
    8,
    12
);
fma_loop!(
    fma_256_f64,
    f64,
    "avx2,fma",
    _mm256_set1_pd,
    _mm256_fmadd_pd,
    _mm256_add_pd,
    _mm256_storeu_pd,
    4,
    12
);

/// Rows of the AVX-512 f32 dot-product tile.
const DOT_R: usize = 6;
/// Columns of the AVX-512 f32 dot-product tile.
const DOT_C: usize = 2;

/// No dot-product tile (the kernel's `DOT` is `(0, 0)`, so this is never called).
///
/// # Safety
/// Never unsafe to call: it only panics.
unsafe fn no_dot<T>(_: &DotTile<T>) {
    unreachable!("no dot-product tile for this kernel");
}

/// The AVX-512 f32 dot-product tile (`DOT_R x DOT_C` accumulators).
///
/// # Safety
/// The contract of [`MicroKernel::dot_tile`].
#[target_feature(enable = "avx512f")]
unsafe fn dot_512_f32(t: &DotTile<f32>) {
    // SAFETY: forwarded contract; this function carries avx512f.
    unsafe { dot_body_512_f32::<DOT_R, DOT_C>(t) }
}

/// `DR x DC` dot products along `k`: one 16-lane accumulator per output,
/// 16 reduction steps per vector (the last masked), reduced at the end in
/// a fixed order, so each output's bits depend only on its row of A and
/// column of B (not on the tile it falls in).
///
/// # Safety
/// The contract of [`MicroKernel::dot_tile`]; inline only into `avx512f`
/// functions.
#[inline(always)]
unsafe fn dot_body_512_f32<const DR: usize, const DC: usize>(t: &DotTile<f32>) {
    // SAFETY: rows past `m_eff` / columns past `n_eff` repeat the last valid
    // one, so every load reads `k` elements of a valid A row or B column
    // (the tail with lanes masked off); C is written only inside the
    // `m_eff x n_eff` tile.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); DC]; DR];
        let rows: [*const f32; DR] =
            std::array::from_fn(|i| t.a.wrapping_offset(i.min(t.m_eff - 1) as isize * t.rsa));
        let cols: [*const f32; DC] =
            std::array::from_fn(|j| t.b.wrapping_offset(j.min(t.n_eff - 1) as isize * t.csb));
        let full = t.k / 16 * 16;
        let mut p = 0;
        while p < full {
            let mut av = [_mm512_setzero_ps(); DR];
            for (v, row) in av.iter_mut().zip(rows.iter()) {
                *v = _mm512_loadu_ps(row.add(p));
            }
            for (j, col) in cols.iter().enumerate() {
                let bv = _mm512_loadu_ps(col.add(p));
                for i in 0..DR {
                    acc[i][j] = _mm512_fmadd_ps(av[i], bv, acc[i][j]);
                }
            }
            p += 16;
        }
        if p < t.k {
            let mask = lane_mask(t.k - p);
            let mut av = [_mm512_setzero_ps(); DR];
            for (v, row) in av.iter_mut().zip(rows.iter()) {
                *v = _mm512_maskz_loadu_ps(mask, row.add(p));
            }
            for (j, col) in cols.iter().enumerate() {
                let bv = _mm512_maskz_loadu_ps(mask, col.add(p));
                for i in 0..DR {
                    acc[i][j] = _mm512_fmadd_ps(av[i], bv, acc[i][j]);
                }
            }
        }
        // Reduce every accumulator first (constant indices keep `acc` in
        // registers through the loop above), then store the valid part.
        let mut sums = [[0.0f32; DC]; DR];
        for i in 0..DR {
            for j in 0..DC {
                sums[i][j] = _mm512_reduce_add_ps(acc[i][j]);
            }
        }
        let beta_is_zero = t.beta == 0.0;
        for (i, row) in sums.iter().enumerate().take(t.m_eff) {
            for (j, &x) in row.iter().enumerate().take(t.n_eff) {
                let cp = t.c.offset(i as isize * t.rsc + j as isize * t.csc);
                let y = t.alpha * x;
                *cp = if beta_is_zero { y } else { y + t.beta * *cp };
            }
        }
    }
}

/// Gather indices `j * csb` for `j` in `0..16`, or `None` if a panel's
/// offsets (up to `31 * csb`) overflow `i32`.
fn gather_index(csb: isize) -> Option<[i32; 16]> {
    let step = i32::try_from(csb).ok()?;
    step.checked_mul(31)?;
    Some(std::array::from_fn(|j| j as i32 * step))
}

/// Lane mask of the first `width` lanes (saturating at 16).
fn lane_mask(width: usize) -> u16 {
    if width >= 16 {
        u16::MAX
    } else {
        ((1u32 << width) - 1) as u16
    }
}

/// AVX-512 transposing packer for f32 panels of 32 columns: two masked
/// 16-lane gathers per reduction row.
///
/// # Safety
/// The contract of [`MicroKernel::pack_b_transposed`].
unsafe fn pack_bt_512_f32(
    src: *const f32,
    csb: isize,
    k: usize,
    width: usize,
    dst: &mut [f32],
) -> bool {
    let Some(idx) = gather_index(csb) else {
        return false;
    };
    if dst.len() < k * 32 || width > 32 {
        return false;
    }
    if avx2::aliases_in_l1(csb, std::mem::size_of::<f32>()) {
        // Sixteen columns in one L1 set overflow its ways (8 on Zen 4);
        // the AVX2 packer reads 8 at a time.
        // SAFETY: forwarded contract; `Kernel::Avx512` is available only
        // with AVX2 too (`Kernel::is_available`).
        return unsafe { avx2::pack_bt_f32_panel::<32>(src, csb, k, width, dst) };
    }
    // SAFETY: the caller guarantees the features and the readable source
    // elements (j < width, enforced by the lane masks); dst's length is checked.
    unsafe { pack_bt_512_f32_inner(src, csb, k, width, dst.as_mut_ptr(), idx) };
    true
}

#[target_feature(enable = "avx512f")]
unsafe fn pack_bt_512_f32_inner(
    src: *const f32,
    csb: isize,
    k: usize,
    width: usize,
    dst: *mut f32,
    idx: [i32; 16],
) {
    // SAFETY: `idx` holds 16 i32 (64 bytes).
    let idx = unsafe { _mm512_loadu_si512(idx.as_ptr().cast()) };
    let lo_mask = lane_mask(width);
    let hi_mask = lane_mask(width.saturating_sub(16));
    let zero = _mm512_setzero_ps();
    let src_hi = src.wrapping_offset(16 * csb);
    // Full blocks of 16 reduction rows: 16 x 16 in-register transposes.
    let k16 = k / 16 * 16;
    for p in (0..k16).step_by(16) {
        for half in 0..2 {
            let cols = width.saturating_sub(16 * half).min(16);
            let mut r = [zero; 16];
            for (j, v) in r.iter_mut().enumerate().take(cols) {
                // SAFETY: column 16 * half + j < width, rows p..p + 16 < k.
                *v = unsafe { _mm512_loadu_ps(src.offset((16 * half + j) as isize * csb).add(p)) };
            }
            // SAFETY: this function is compiled with avx512f.
            let o = unsafe { transpose_16x16(r) };
            for (q, v) in o.iter().enumerate() {
                // SAFETY: row p + q < k of dst (k * 32 elements), lanes 16 * half ..+16.
                unsafe { _mm512_storeu_ps(dst.add((p + q) * 32 + 16 * half), *v) };
            }
        }
    }
    for p in k16..k {
        // SAFETY: masked-off lanes are not read; enabled lanes address
        // `src + p + j * csb` with j < width (caller's contract); row p of
        // dst is inside its k * 32 elements.
        unsafe {
            let lo = _mm512_mask_i32gather_ps::<4>(zero, lo_mask, idx, src.add(p).cast());
            let hi =
                _mm512_mask_i32gather_ps::<4>(zero, hi_mask, idx, src_hi.wrapping_add(p).cast());
            _mm512_storeu_ps(dst.add(p * 32), lo);
            _mm512_storeu_ps(dst.add(p * 32 + 16), hi);
        }
    }
}

/// AVX-512 transposing packer for f64 panels of 16 columns.
///
/// # Safety
/// The contract of [`MicroKernel::pack_b_transposed`].
unsafe fn pack_bt_512_f64(
    src: *const f64,
    csb: isize,
    k: usize,
    width: usize,
    dst: &mut [f64],
) -> bool {
    let Some(idx) = gather_index(csb) else {
        return false;
    };
    if dst.len() < k * 16 || width > 16 {
        return false;
    }
    // SAFETY: as for `pack_bt_512_f32`.
    unsafe { pack_bt_512_f64_inner(src, csb, k, width, dst.as_mut_ptr(), idx) };
    true
}

#[target_feature(enable = "avx512f")]
unsafe fn pack_bt_512_f64_inner(
    src: *const f64,
    csb: isize,
    k: usize,
    width: usize,
    dst: *mut f64,
    idx: [i32; 16],
) {
    // SAFETY: the first 8 of `idx`'s 16 i32 (32 bytes).
    let idx = unsafe { _mm256_loadu_si256(idx.as_ptr().cast()) };
    let lo_mask = lane_mask(width.min(8)) as u8;
    let hi_mask = lane_mask(width.saturating_sub(8).min(8)) as u8;
    let zero = _mm512_setzero_pd();
    let src_hi = src.wrapping_offset(8 * csb);
    for p in 0..k {
        // SAFETY: as in the f32 version.
        unsafe {
            let lo = _mm512_mask_i32gather_pd::<8>(zero, lo_mask, idx, src.add(p).cast());
            let hi =
                _mm512_mask_i32gather_pd::<8>(zero, hi_mask, idx, src_hi.wrapping_add(p).cast());
            _mm512_storeu_pd(dst.add(p * 16), lo);
            _mm512_storeu_pd(dst.add(p * 16 + 8), hi);
        }
    }
}

/// AVX-512 A packer for f32 (`MR <= 16`): for each block of 16 reduction
/// steps, the `rows` rows are loaded as whole vectors, transposed 16 x 16
/// in registers and stored `MR` lanes a step; the last `k % 16` steps take
/// one masked gather each. (A gather a step cost 13% of a
/// 10000x3072x1024 product's time on Zen 5; the transposes read each row
/// as whole cache lines.)
///
/// # Safety
/// The contract of [`MicroKernel::pack_a_rows`].
unsafe fn pack_a_512_f32(
    src: *const f32,
    rsa: isize,
    k: usize,
    rows: usize,
    mr: usize,
    dst: &mut [f32],
) -> bool {
    let Some(idx) = gather_index(rsa) else {
        return false;
    };
    if mr > 16 || rows > mr || dst.len() < k * mr {
        return false;
    }
    // SAFETY: the caller guarantees the features and the readable rows
    // (lanes >= rows are masked off); dst's length is checked.
    unsafe { pack_a_512_f32_inner(src, rsa, k, rows, mr, dst.as_mut_ptr(), idx) };
    true
}

#[target_feature(enable = "avx512f")]
unsafe fn pack_a_512_f32_inner(
    src: *const f32,
    rsa: isize,
    k: usize,
    rows: usize,
    mr: usize,
    dst: *mut f32,
    idx: [i32; 16],
) {
    // SAFETY: `idx` holds 16 i32 (64 bytes).
    let idx = unsafe { _mm512_loadu_si512(idx.as_ptr().cast()) };
    let load = lane_mask(rows);
    let store = lane_mask(mr);
    let zero = _mm512_setzero_ps();
    let k16 = k / 16 * 16;
    for p in (0..k16).step_by(16) {
        let mut r = [zero; 16];
        for (i, v) in r.iter_mut().enumerate().take(rows) {
            // SAFETY: row i < rows, elements p..p + 16 <= k.
            *v = unsafe { _mm512_loadu_ps(src.offset(i as isize * rsa).add(p)) };
        }
        // SAFETY: this function is compiled with avx512f.
        let o = unsafe { transpose_16x16(r) };
        for (q, v) in o.iter().enumerate() {
            // SAFETY: lanes < mr of row p + q < k of dst (k * mr elements);
            // lanes >= rows hold the zero rows' zeros.
            unsafe { _mm512_mask_storeu_ps(dst.add((p + q) * mr), store, *v) };
        }
    }
    for p in k16..k {
        // SAFETY: enabled lanes read `src + r * rsa + p` with r < rows; the
        // store writes lanes < mr of row p of dst (k * mr elements).
        unsafe {
            let v = _mm512_mask_i32gather_ps::<4>(zero, load, idx, src.add(p).cast());
            _mm512_mask_storeu_ps(dst.add(p * mr), store, v);
        }
    }
}

/// AVX-512 A packer for f64 (`MR <= 16`): two masked 8-lane gathers per step.
///
/// # Safety
/// The contract of [`MicroKernel::pack_a_rows`].
unsafe fn pack_a_512_f64(
    src: *const f64,
    rsa: isize,
    k: usize,
    rows: usize,
    mr: usize,
    dst: &mut [f64],
) -> bool {
    let Some(idx) = gather_index(rsa) else {
        return false;
    };
    if mr > 16 || rows > mr || dst.len() < k * mr {
        return false;
    }
    // SAFETY: as for `pack_a_512_f32`.
    unsafe { pack_a_512_f64_inner(src, rsa, k, rows, mr, dst.as_mut_ptr(), idx) };
    true
}

#[target_feature(enable = "avx512f")]
unsafe fn pack_a_512_f64_inner(
    src: *const f64,
    rsa: isize,
    k: usize,
    rows: usize,
    mr: usize,
    dst: *mut f64,
    idx: [i32; 16],
) {
    // SAFETY: the first 8 of `idx`'s 16 i32 (32 bytes).
    let idx = unsafe { _mm256_loadu_si256(idx.as_ptr().cast()) };
    let load_lo = lane_mask(rows.min(8)) as u8;
    let load_hi = lane_mask(rows.saturating_sub(8)) as u8;
    let store_lo = lane_mask(mr.min(8)) as u8;
    let store_hi = lane_mask(mr.saturating_sub(8)) as u8;
    let zero = _mm512_setzero_pd();
    let src_hi = src.wrapping_offset(8 * rsa);
    for p in 0..k {
        // SAFETY: as in the f32 version; the high half starts at row 8.
        unsafe {
            let lo = _mm512_mask_i32gather_pd::<8>(zero, load_lo, idx, src.add(p).cast());
            let hi =
                _mm512_mask_i32gather_pd::<8>(zero, load_hi, idx, src_hi.wrapping_add(p).cast());
            _mm512_mask_storeu_pd(dst.add(p * mr), store_lo, lo);
            _mm512_mask_storeu_pd(dst.add(p * mr + 8), store_hi, hi);
        }
    }
}

/// Transposes a 16 x 16 block held as 16 rows: `out[p][j] = rows[j][p]`
/// (unpack, in-lane shuffle, then two 128-bit lane shuffles).
///
/// # Safety
/// The CPU supports AVX-512F; inline only into `avx512f` functions.
#[inline(always)]
unsafe fn transpose_16x16(r: [__m512; 16]) -> [__m512; 16] {
    // SAFETY: register-only AVX-512F operations (caller's contract).
    unsafe {
        let mut t = [_mm512_setzero_ps(); 16];
        for i in 0..8 {
            t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
            t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
        }
        // u[4i + q], 128-bit lane L: rows 4i..4i+4 at column 4L + q.
        let mut u = [_mm512_setzero_ps(); 16];
        for i in 0..4 {
            u[4 * i] = _mm512_shuffle_ps::<0x44>(t[4 * i], t[4 * i + 2]);
            u[4 * i + 1] = _mm512_shuffle_ps::<0xEE>(t[4 * i], t[4 * i + 2]);
            u[4 * i + 2] = _mm512_shuffle_ps::<0x44>(t[4 * i + 1], t[4 * i + 3]);
            u[4 * i + 3] = _mm512_shuffle_ps::<0xEE>(t[4 * i + 1], t[4 * i + 3]);
        }
        let mut o = [_mm512_setzero_ps(); 16];
        for q in 0..4 {
            let v0 = _mm512_shuffle_f32x4::<0x88>(u[q], u[4 + q]);
            let v1 = _mm512_shuffle_f32x4::<0xDD>(u[q], u[4 + q]);
            let v2 = _mm512_shuffle_f32x4::<0x88>(u[8 + q], u[12 + q]);
            let v3 = _mm512_shuffle_f32x4::<0xDD>(u[8 + q], u[12 + q]);
            o[q] = _mm512_shuffle_f32x4::<0x88>(v0, v2);
            o[8 + q] = _mm512_shuffle_f32x4::<0xDD>(v0, v2);
            o[4 + q] = _mm512_shuffle_f32x4::<0x88>(v1, v3);
            o[12 + q] = _mm512_shuffle_f32x4::<0xDD>(v1, v3);
        }
        o
    }
}

/// Defines `$name`: an AVX-512 copy of a row-major B panel (`NR` = 2
/// vectors), masked for `width < NR`.
macro_rules! pack_rows_512 {
    ($name:ident, $inner:ident, $t:ty, $lanes:literal, $zero:ident, $loadz:ident,
     $store:ident, $mask:ty) => {
        /// AVX-512 row-major B panel copy (see [`MicroKernel::pack_b_rows`]).
        ///
        /// # Safety
        /// The contract of [`MicroKernel::pack_b_rows`].
        unsafe fn $name(
            src: *const $t,
            rsb: isize,
            k: usize,
            width: usize,
            nr: usize,
            dst: &mut [$t],
        ) -> bool {
            if nr != 2 * $lanes || width > nr || dst.len() < k * nr {
                return false;
            }
            // SAFETY: the caller guarantees the features and the readable
            // source (lanes >= width are masked off); dst's length is checked.
            unsafe { $inner(src, rsb, k, width, dst.as_mut_ptr()) };
            true
        }

        #[target_feature(enable = "avx512f")]
        unsafe fn $inner(src: *const $t, rsb: isize, k: usize, width: usize, dst: *mut $t) {
            let lo = lane_mask(width.min($lanes)) as $mask;
            let hi = lane_mask(width.saturating_sub($lanes)) as $mask;
            for p in 0..k {
                // SAFETY: enabled lanes read `src + p * rsb + j`, j < width;
                // row p of dst holds 2 vectors.
                unsafe {
                    let row = src.offset(p as isize * rsb);
                    let a = $loadz(lo, row);
                    let b = $loadz(hi, row.wrapping_add($lanes));
                    $store(dst.add(p * 2 * $lanes), a);
                    $store(dst.add(p * 2 * $lanes + $lanes), b);
                }
            }
        }
    };
}

pack_rows_512!(
    pack_rows_512_f32,
    pack_rows_512_f32_inner,
    f32,
    16,
    _mm512_setzero_ps,
    _mm512_maskz_loadu_ps,
    _mm512_storeu_ps,
    u16
);
pack_rows_512!(
    pack_rows_512_f64,
    pack_rows_512_f64_inner,
    f64,
    8,
    _mm512_setzero_pd,
    _mm512_maskz_loadu_pd,
    _mm512_storeu_pd,
    u8
);
