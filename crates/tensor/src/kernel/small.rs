//! The AVX2 small-product kernels of the direct path (f32). The general
//! one runs its vector lanes along the rows of C, one accumulator per
//! column of C; a ten-column one serves `H * W2^T` (see the end).
//!
//! The second layer's products are thin (`n = 10` columns, `k = 10..100`),
//! so the `6 x 16` micro-tile, whose lanes run along C's columns, wastes six
//! of sixteen lanes there and pays a tile epilogue every 50 steps. Here a
//! panel of 8 rows of C is computed column by column: step `p` loads the 8
//! values `A[i0..i0 + 8, p]` as one vector and multiplies it with the
//! broadcast `B[p, j]` into column `j`'s accumulator, for a block of up to
//! [`MAX_NB`] columns. B is never packed (broadcasts read it in place at
//! any strides); A is read in place when its columns are contiguous, else
//! the panel's `8 x k` values are transposed once into a stack buffer.
//!
//! With AVX-512VL's 32 registers ([`gemm_small_f32_vl`], used on a CPU
//! that runs AVX-512 on 256-bit halves), two in-place panels (16 rows)
//! share each broadcast of B, and a last, partial panel is copied with one
//! masked load a step.
//!
//! The caller may hand in the transposed problem (`C^T = B^T A^T`, see
//! [`Small::transposed`]) to put the lanes along whichever side of C fills
//! them better and has contiguous operands.
//!
//! Products with 9 or 10 columns whose A rows are contiguous (`H * W2^T`,
//! ten classes) take [`gemm_ten_f32`] instead: lanes along C's columns with
//! A read in place, and columns 8 and 9 of four rows sharing one vector,
//! so no lane is wasted and nothing is transposed.
//!
//! Every element of C gets exactly the arithmetic of the micro-kernels:
//! `acc = 0`, then `acc = fma(a[i, p], b[p, j], acc)` for `p` ascending,
//! then `y = acc * alpha` and, when `beta != 0`, `y = fma(c, beta, y)`. The
//! order of the reduction is never changed, so results are bit for bit
//! those of the `6 x 16` tiles.

use std::arch::x86_64::*;

use super::avx2::transpose_8x8;
use super::x86::{load_n_256_f32 as load_n, store_n_256_f32 as store_n};

/// Strides (elements) from which the inner loops would alias in L1: see
/// [`Small::strides_fit`].
const FAR: usize = 512;
/// Lanes of one f32 vector: rows of C per panel.
const LANES: usize = 8;
/// Most columns of C per block (one accumulator each; with the A column
/// and a broadcast this leaves two of the sixteen registers spare; paired
/// panels take 24 accumulators, 2 A columns and a broadcast of 32).
pub(crate) const MAX_NB: usize = 12;
/// Longest reduction the kernel takes (sets the stack buffer of a
/// transposed A panel: `8 x 128` f32, 4 KiB).
pub(crate) const MAX_K: usize = 128;

/// One product `C = alpha * A * B + beta * C` as raw parts, with the vector
/// lanes along C's rows: element `(i, p)` of A is at `a + i * rsa + p * csa`,
/// `(p, j)` of B at `b + p * rsb + j * csb`, `(i, j)` of C at
/// `c + i * rsc + j * csc`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Small {
    /// Rows of C.
    pub m: usize,
    /// Columns of C.
    pub n: usize,
    /// Reduction length.
    pub k: usize,
    /// A origin.
    pub a: *const f32,
    /// A row stride (elements).
    pub rsa: isize,
    /// A column stride (elements).
    pub csa: isize,
    /// B origin.
    pub b: *const f32,
    /// B row stride (elements).
    pub rsb: isize,
    /// B column stride (elements).
    pub csb: isize,
    /// C origin.
    pub c: *mut f32,
    /// C row stride (elements).
    pub rsc: isize,
    /// C column stride (elements).
    pub csc: isize,
    /// Scale of the product.
    pub alpha: f32,
    /// Scale of the old C; when zero, C is never read.
    pub beta: f32,
}

impl Small {
    /// The same product as `C^T = B^T A^T`: lanes along C's columns. Each
    /// element's arithmetic is unchanged (`fma(b, a, acc)` is `fma(a, b,
    /// acc)`: the product is exact before the one rounding).
    pub(crate) fn transposed(&self) -> Small {
        Small {
            m: self.n,
            n: self.m,
            a: self.b,
            rsa: self.csb,
            csa: self.rsb,
            b: self.a,
            rsb: self.csa,
            csb: self.rsa,
            rsc: self.csc,
            csc: self.rsc,
            ..*self
        }
    }

    /// Whether the kernel's inner loops stay clear of 4 KiB aliasing: the
    /// strides it walks step by step (A's columns when read in place, B's
    /// rows, and C across the block) are under [`FAR`] elements. Rows of a
    /// 1024-wide f32 matrix are 4 KiB apart and all fall in one 8-way L1
    /// set, so walking ten of them at once (the wide `G2 * W2`, `k = 10`,
    /// `n = 1024`) misses on every step; the `6 x 16` tiles, which pack B
    /// and store whole rows of C, are faster there.
    pub(crate) fn strides_fit(&self) -> bool {
        let near = |s: isize| s.unsigned_abs() < FAR;
        let a_near = self.rsa != 1 || near(self.csa);
        let c_near = if self.rsc == 1 {
            near(self.csc)
        } else {
            near(self.rsc)
        };
        a_near && near(self.rsb) && c_near
    }

    /// A rough cost in vector multiply-adds (each a half cycle on Zen 3):
    /// the padded multiply-adds, transposing A panels unless A's columns are
    /// contiguous (about three per panel step), and transposing the output
    /// unless C's columns are contiguous (about one per vector of C). The
    /// driver runs the orientation with the lower cost.
    pub(crate) fn cost(&self) -> usize {
        let panels = self.m.div_ceil(LANES);
        let fma = panels * self.n * self.k;
        let pack = if self.rsa == 1 {
            0
        } else {
            3 * panels * self.k
        };
        let out = if self.rsc == 1 { 0 } else { panels * self.n };
        fma + pack + out
    }
}

/// Runs `job` with the AVX2 small kernel. Returns `false` (touching
/// nothing) when `k` is 0 or above [`MAX_K`], or C is empty.
///
/// # Safety
/// The CPU supports AVX2 and FMA; every element the strides address for
/// `i < m`, `j < n`, `p < k` is readable (A, B) or writable and, when
/// `beta != 0`, readable (C); C aliases neither A nor B.
pub(crate) unsafe fn gemm_small_f32(job: &Small) -> bool {
    if job.k == 0 || job.k > MAX_K || job.m == 0 || job.n == 0 {
        return false;
    }
    // SAFETY: forwarded contract; `k` is within the panel buffer.
    unsafe { run(job) };
    true
}

/// [`gemm_small_f32`] with 32 vector registers (AVX-512VL): two in-place
/// 8-row panels share each broadcast of B, so a step costs 2 loads and NB
/// broadcasts for 2 x NB multiply-adds instead of 1 + NB for NB. Same
/// arithmetic per element, so the same bits.
///
/// # Safety
/// As for [`gemm_small_f32`], and the CPU supports AVX-512F and AVX-512VL.
pub(crate) unsafe fn gemm_small_f32_vl(job: &Small) -> bool {
    if job.k == 0 || job.k > MAX_K || job.m == 0 || job.n == 0 {
        return false;
    }
    // SAFETY: forwarded contract; `k` is within the panel buffer.
    unsafe { run_vl(job) };
    true
}

/// The panel loop with 16 registers: one 8-row panel at a time.
///
/// # Safety
/// As for [`gemm_small_f32`], with `1 <= k <= MAX_K`.
#[target_feature(enable = "avx2,fma")]
unsafe fn run(job: &Small) {
    // SAFETY: forwarded contract; this function has the features.
    unsafe { run_body::<false>(job) }
}

/// The panel loop with 32 registers: pairs of in-place panels.
///
/// # Safety
/// As for [`gemm_small_f32_vl`], with `1 <= k <= MAX_K`.
#[target_feature(enable = "avx2,fma,avx512f,avx512vl")]
unsafe fn run_vl(job: &Small) {
    // SAFETY: forwarded contract; this function has the features.
    unsafe { run_body::<true>(job) }
}

/// The panel loop: for each 8-row panel (or, with `PAIRS`, each two
/// consecutive full panels of an A with contiguous columns), its A
/// columns (in place or transposed into `panel`), then every block of
/// columns of C.
///
/// # Safety
/// As for [`gemm_small_f32`] with `1 <= k <= MAX_K`; inlined only into a
/// function with AVX2 and FMA, and with AVX-512VL when `PAIRS` (the
/// paired blocks need more than 16 registers).
#[inline(always)]
unsafe fn run_body<const PAIRS: bool>(job: &Small) {
    // Written by `pack_panel` before any read (no zeroing: 4 KiB a call).
    let mut panel = std::mem::MaybeUninit::<[f32; LANES * MAX_K]>::uninit();
    let panel = panel.as_mut_ptr().cast::<f32>();
    let blocks = job.n.div_ceil(MAX_NB);
    // Balanced blocks (e.g. 50 = 5 x 10, not 4 x 12 + 2): every block
    // keeps enough independent accumulators to hide the FMA latency.
    let (base, extra) = (job.n / blocks, job.n % blocks);
    let mut i0 = 0;
    while i0 < job.m {
        let pair = PAIRS && job.rsa == 1 && i0 + 2 * LANES <= job.m;
        let rows = LANES.min(job.m - i0);
        let a_rows = job.a.wrapping_offset(i0 as isize * job.rsa);
        let (ap, astride) = if job.rsa == 1 && rows == LANES {
            (a_rows, job.csa)
        } else {
            // SAFETY: rows i0 .. i0 + rows of A are readable for k steps
            // (caller's contract); the buffer holds 8 x MAX_K >= 8 x k
            // elements, all of which the packers write before the block
            // reads them; `PAIRS` is only instantiated with AVX-512VL.
            unsafe {
                if PAIRS && job.rsa == 1 {
                    pack_partial_panel_vl(a_rows, job.csa, rows, job.k, panel)
                } else {
                    pack_panel(a_rows, job.rsa, job.csa, rows, job.k, panel)
                }
            };
            (panel.cast_const(), LANES as isize)
        };
        let mut j0 = 0;
        for q in 0..blocks {
            let nb = base + usize::from(q < extra);
            let blk = Block {
                k: job.k,
                a: ap,
                astride,
                b: job.b.wrapping_offset(j0 as isize * job.csb),
                rsb: job.rsb,
                csb: job.csb,
                c: job
                    .c
                    .wrapping_offset(i0 as isize * job.rsc + j0 as isize * job.csc),
                rsc: job.rsc,
                csc: job.csc,
                rows,
                alpha: job.alpha,
                beta: job.beta,
            };
            // SAFETY: the block's A panel holds 8 readable lanes for k steps
            // (in place: rows == 8; else the buffer), and a pair's second
            // panel 8 more at `a + 8` (in place, rsa == 1, rows i0 + 8 ..
            // i0 + 16 <= m); B columns j0 .. j0 + nb and C rows i0 .. i0 +
            // rows (a pair: i0 + 16), columns j0 .. j0 + nb are inside the
            // operands (caller's contract); this function has the features
            // (AVX-512VL for pairs).
            unsafe {
                if pair {
                    block_dispatch::<2>(nb, &blk)
                } else {
                    block_dispatch::<1>(nb, &blk)
                }
            };
            j0 += nb;
        }
        i0 += if pair { 2 * LANES } else { LANES };
    }
}

/// One block of columns of one panel, as raw parts (see [`Small`]); `a`
/// is the panel's first column, 8 contiguous lanes per step at `astride`.
#[derive(Clone, Copy)]
struct Block {
    k: usize,
    a: *const f32,
    astride: isize,
    b: *const f32,
    rsb: isize,
    csb: isize,
    c: *mut f32,
    rsc: isize,
    csc: isize,
    /// Valid rows (lanes) of the panel, `1..=8`; only these are stored.
    rows: usize,
    alpha: f32,
    beta: f32,
}

impl Block {
    /// The block of the `q`-th panel after this one (8 rows down C and A;
    /// A must have contiguous columns, `rsa == 1`, read in place).
    fn panel(&self, q: usize) -> Block {
        Block {
            a: self.a.wrapping_add(q * LANES),
            c: self.c.wrapping_offset((q * LANES) as isize * self.rsc),
            ..*self
        }
    }
}

/// Calls [`block`] with the constant block width `nb` (1..=[`MAX_NB`]):
/// the accumulators only stay in registers when every index is constant.
///
/// # Safety
/// As for [`block`]; `1 <= nb <= MAX_NB`.
#[inline(always)]
unsafe fn block_dispatch<const P: usize>(nb: usize, t: &Block) {
    macro_rules! arms {
        ($($w:literal)*) => {
            match nb {
                // SAFETY (every arm): forwarded contract of `block`.
                $($w => unsafe { block::<$w, P>(t) },)*
                _ => unreachable!("block width {nb} outside 1..={MAX_NB}"),
            }
        };
    }
    arms!(1 2 3 4 5 6 7 8 9 10 11 12)
}

/// Computes and stores one `rows x NB` block of C for each of `P`
/// consecutive panels (`P = 2`: two full ones, see [`Block::panel`]).
///
/// # Safety
/// Inlined only into a function with AVX2 and FMA (and AVX-512VL when
/// `P = 2`); `t.a + q * 8 + p * astride` holds 8 readable f32 for
/// `p < k`, `q < P`; `B[p, j]` for `p < k, j < NB` is readable; the C
/// block (`rows x NB`, or `8 P x NB` when `P > 1`) is writable (readable
/// when `beta != 0`).
#[inline(always)]
unsafe fn block<const NB: usize, const P: usize>(t: &Block) {
    // SAFETY: the reads are those of the contract; register-only otherwise.
    let acc = unsafe {
        if t.csb == 1 {
            reduce_rows::<NB, P>(t)
        } else {
            reduce_cols::<NB, P>(t)
        }
    };
    let panels: [[__m256; NB]; P] = std::array::from_fn(|q| std::array::from_fn(|j| acc[j][q]));
    for (q, panel) in panels.into_iter().enumerate() {
        // SAFETY: panel q's C block of the contract.
        unsafe { store::<NB>(panel, &t.panel(q)) };
    }
}

/// The reduction when B's rows are contiguous (`csb == 1`): the broadcasts
/// of one step sit at constant offsets from one pointer.
///
/// # Safety
/// As for [`block`].
#[inline(always)]
unsafe fn reduce_rows<const NB: usize, const P: usize>(t: &Block) -> [[__m256; P]; NB] {
    // SAFETY: in bounds by the contract of `block`; AVX2 + FMA available.
    unsafe {
        let mut acc = [[_mm256_setzero_ps(); P]; NB];
        let (mut ap, mut bp) = (t.a, t.b);
        for _ in 0..t.k {
            let av: [__m256; P] = std::array::from_fn(|q| _mm256_loadu_ps(ap.add(q * LANES)));
            for (j, acc) in acc.iter_mut().enumerate() {
                let bv = _mm256_set1_ps(*bp.add(j));
                for (acc, a) in acc.iter_mut().zip(av) {
                    *acc = _mm256_fmadd_ps(a, bv, *acc);
                }
            }
            ap = ap.offset(t.astride);
            bp = bp.offset(t.rsb);
        }
        acc
    }
}

/// The reduction for any other B (e.g. the transposed `W2^T`, `rsb == 1`):
/// one pointer per column, all advanced by `rsb`.
///
/// # Safety
/// As for [`block`].
#[inline(always)]
unsafe fn reduce_cols<const NB: usize, const P: usize>(t: &Block) -> [[__m256; P]; NB] {
    // SAFETY: in bounds by the contract of `block`; AVX2 + FMA available.
    unsafe {
        let mut acc = [[_mm256_setzero_ps(); P]; NB];
        let cols: [*const f32; NB] =
            std::array::from_fn(|j| t.b.wrapping_offset(j as isize * t.csb));
        let mut ap = t.a;
        let mut off = 0isize;
        for _ in 0..t.k {
            let av: [__m256; P] = std::array::from_fn(|q| _mm256_loadu_ps(ap.add(q * LANES)));
            for (acc, col) in acc.iter_mut().zip(cols) {
                let bv = _mm256_set1_ps(*col.offset(off));
                for (acc, a) in acc.iter_mut().zip(av) {
                    *acc = _mm256_fmadd_ps(a, bv, *acc);
                }
            }
            ap = ap.offset(t.astride);
            off += t.rsb;
        }
        acc
    }
}

/// `C = alpha * acc + beta * C` for the block's `rows x NB` elements:
/// vector loads and stores down C's columns when they are contiguous
/// (`rsc == 1`), 8 x 8 transposes into C's rows when those are
/// (`csc == 1`), else element by element with the same two roundings.
///
/// # Safety
/// As for [`block`] (the C part).
#[inline(always)]
unsafe fn store<const NB: usize>(acc: [__m256; NB], t: &Block) {
    let alpha = _mm256_set1_ps(t.alpha);
    let beta_is_zero = t.beta == 0.0;
    let beta = _mm256_set1_ps(t.beta);
    // SAFETY (all three branches): only elements (r, j) with r < rows,
    // j < NB of the C block are read (when beta != 0) and written.
    unsafe {
        if t.rsc == 1 && t.rows == LANES {
            // Whole columns: constant-index loops only, so the
            // accumulators never leave their registers.
            for (j, acc) in acc.iter().enumerate() {
                let cp = t.c.offset(j as isize * t.csc);
                let y = _mm256_mul_ps(*acc, alpha);
                if beta_is_zero {
                    _mm256_storeu_ps(cp, y);
                } else {
                    _mm256_storeu_ps(cp, _mm256_fmadd_ps(_mm256_loadu_ps(cp), beta, y));
                }
            }
        } else if t.rsc == 1 {
            for (j, acc) in acc.iter().enumerate() {
                let cp = t.c.offset(j as isize * t.csc);
                let mut y = _mm256_mul_ps(*acc, alpha);
                if !beta_is_zero {
                    y = _mm256_fmadd_ps(load_n(cp, t.rows), beta, y);
                }
                store_n(cp, t.rows, y);
            }
        } else if t.csc == 1 {
            for g in 0..NB.div_ceil(LANES) {
                let cols: [__m256; LANES] = std::array::from_fn(|q| {
                    acc.get(g * LANES + q)
                        .copied()
                        .unwrap_or(_mm256_setzero_ps())
                });
                let rows_v = transpose_8x8(cols);
                let width = (NB - g * LANES).min(LANES);
                for (r, row) in rows_v.iter().enumerate().take(t.rows) {
                    let cp = t.c.offset(r as isize * t.rsc).add(g * LANES);
                    let mut y = _mm256_mul_ps(*row, alpha);
                    if !beta_is_zero {
                        y = _mm256_fmadd_ps(load_n(cp, width), beta, y);
                    }
                    store_n(cp, width, y);
                }
            }
        } else {
            let mut buf = [[0.0f32; LANES]; NB];
            for (dst, acc) in buf.iter_mut().zip(acc.iter()) {
                _mm256_storeu_ps(dst.as_mut_ptr(), *acc);
            }
            for (j, col) in buf.iter().enumerate() {
                for (r, &x) in col.iter().enumerate().take(t.rows) {
                    let cp = t.c.offset(r as isize * t.rsc + j as isize * t.csc);
                    let y = x * t.alpha;
                    *cp = if beta_is_zero {
                        y
                    } else {
                        (*cp).mul_add(t.beta, y)
                    };
                }
            }
        }
    }
}

/// Transposes `rows` rows of A (from `a`, strides `rsa`, `csa`) into the
/// k-major panel `dst[p * 8 + r] = A[r, p]`; lanes `rows..8` repeat the last
/// row (computed, never stored). Row-contiguous A (`csa == 1`) goes through
/// 8 x 8 register transposes.
///
/// # Safety
/// AVX2 available; rows `0..rows` (`1..=8`) of A are readable for `k`
/// steps; `dst` is writable for `8 * k` elements.
#[target_feature(enable = "avx2")]
unsafe fn pack_panel(a: *const f32, rsa: isize, csa: isize, rows: usize, k: usize, dst: *mut f32) {
    debug_assert!((1..=LANES).contains(&rows));
    let row: [*const f32; LANES] =
        std::array::from_fn(|r| a.wrapping_offset(r.min(rows - 1) as isize * rsa));
    let mut p0 = 0;
    if csa == 1 {
        while p0 + LANES <= k {
            // SAFETY: each (clamped) row is readable at p0 .. p0 + 8 <= k;
            // the 8 stores fill dst[p0 * 8 .. (p0 + 8) * 8] within 8 * k.
            unsafe {
                let r = row.map(|rp| _mm256_loadu_ps(rp.add(p0)));
                let cols = transpose_8x8(r);
                for (q, v) in cols.iter().enumerate() {
                    _mm256_storeu_ps(dst.add((p0 + q) * LANES), *v);
                }
            }
            p0 += LANES;
        }
    }
    for p in p0..k {
        for (r, rp) in row.iter().enumerate() {
            // SAFETY: (clamped) row r is readable at step p < k; element
            // p * 8 + r < 8 * k of dst is writable.
            unsafe { *dst.add(p * LANES + r) = *rp.offset(p as isize * csa) };
        }
    }
}

/// Copies the last, partial panel (`rows < 8`) of an A with contiguous
/// columns (`rsa == 1`) into the k-major panel `dst[p * 8 + r] = A[r, p]`
/// with one masked load per step; lanes `rows..8` are zero (computed,
/// never stored). [`pack_panel`] would take 8 scalar copies a step here.
///
/// # Safety
/// AVX-512F and AVX-512VL available; `a + r + p * csa` is readable for
/// `r < rows` (`1..=8`), `p < k`; `dst` is writable for `8 * k` elements.
#[target_feature(enable = "avx2,avx512f,avx512vl")]
unsafe fn pack_partial_panel_vl(a: *const f32, csa: isize, rows: usize, k: usize, dst: *mut f32) {
    debug_assert!((1..=LANES).contains(&rows));
    let mask = ((1u16 << rows) - 1) as u8;
    for p in 0..k {
        // SAFETY: the masked load reads only lanes r < rows of column p
        // (masked-off lanes do not fault); dst[p * 8 .. p * 8 + 8] is
        // inside its 8 * k elements.
        unsafe {
            let v = _mm256_maskz_loadu_ps(mask, a.wrapping_offset(p as isize * csa));
            _mm256_storeu_ps(dst.add(p * LANES), v);
        }
    }
}

/// Widest B the ten-column kernel packs: `k` rows of [`TEN`] values.
const TEN: usize = 10;

/// Runs `job` (with `9 <= n <= 10`) with the ten-column kernel, which reads
/// A in place: lanes run along C's columns for columns `0..8`, one vector
/// per row of C, and columns 8 and 9 of four rows share one vector
/// (`[c(0,8), c(0,9), c(1,8), ..., c(3,9)]`), fed by blends of the four
/// rows' broadcasts. Every lane is used, and no A panel is transposed
/// (`H * W2^T`: `n = 10` classes, A = H row-major). Returns `false`
/// (touching nothing) when `n` is outside `9..=10`, `k` is 0 or above
/// [`MAX_K`], or `m` is 0.
///
/// # Safety
/// As for [`gemm_small_f32`].
pub(crate) unsafe fn gemm_ten_f32(job: &Small) -> bool {
    if !(9..=TEN).contains(&job.n) || job.k == 0 || job.k > MAX_K || job.m == 0 {
        return false;
    }
    // SAFETY: forwarded contract; `n` and `k` fit the packed B buffer.
    unsafe { run_ten(job) };
    true
}

/// The ten-column kernel's panel loop (see [`gemm_ten_f32`]).
#[target_feature(enable = "avx2,fma")]
unsafe fn run_ten(job: &Small) {
    let (k, n) = (job.k, job.n);
    // B as k rows of 10 (column 9 zero when n = 9), written before read;
    // column by column, which reads a transposed B (`W2^T`) contiguously.
    let mut packed = std::mem::MaybeUninit::<[f32; TEN * MAX_K]>::uninit();
    let bp = packed.as_mut_ptr().cast::<f32>();
    for j in 0..TEN {
        let col = job.b.wrapping_offset(j as isize * job.csb);
        for p in 0..k {
            // SAFETY: B[p, j] is readable for p < k, j < n (caller's
            // contract); element p * 10 + j < 10 * MAX_K of the buffer.
            unsafe {
                *bp.add(p * TEN + j) = if j < n {
                    *col.offset(p as isize * job.rsb)
                } else {
                    0.0
                };
            }
        }
    }
    for i0 in (0..job.m).step_by(LANES) {
        let rows = LANES.min(job.m - i0);
        // Rows past `rows` repeat the last one (computed, never stored).
        let row: [*const f32; LANES] = std::array::from_fn(|r| {
            job.a
                .wrapping_offset((i0 + r.min(rows - 1)) as isize * job.rsa)
        });
        // SAFETY: the clamped rows of A are readable for k steps at csa;
        // the packed B holds k rows of 10.
        let (main, pairs) = unsafe { reduce_ten(&row, job.csa, bp, k) };
        let c = job.c.wrapping_offset(i0 as isize * job.rsc);
        // SAFETY: rows i0 .. i0 + rows and columns 0..n of C are inside C.
        unsafe { store_ten(main, pairs, c, job, rows) };
    }
}

/// The ten-column reduction of one 8-row panel: `main[r]` holds columns
/// 0..8 of row `r`, `pairs[h]` columns 8 and 9 of rows `4h .. 4h + 4`.
///
/// # Safety
/// Inlined only into a function with AVX2 and FMA; `row[r] + p * csa` is
/// readable for `p < k`; `b` holds `k` rows of 10.
#[inline(always)]
unsafe fn reduce_ten(
    row: &[*const f32; LANES],
    csa: isize,
    b: *const f32,
    k: usize,
) -> ([__m256; LANES], [__m256; 2]) {
    // SAFETY: reads inside the contract; register-only otherwise.
    unsafe {
        let mut main = [_mm256_setzero_ps(); LANES];
        let mut pairs = [_mm256_setzero_ps(); 2];
        let mut off = 0isize;
        let mut bp = b;
        for _ in 0..k {
            let bm = _mm256_loadu_ps(bp);
            // [b8, b9] in every 64-bit lane.
            let bt = _mm256_castpd_ps(_mm256_set1_pd(bp.add(8).cast::<f64>().read_unaligned()));
            // Four rows at a time, so that at most 15 vectors are live:
            // 10 accumulators, the two B vectors, and three broadcasts or
            // blends.
            for h in 0..2 {
                let t0 = _mm256_set1_ps(*row[4 * h].offset(off));
                let t1 = _mm256_set1_ps(*row[4 * h + 1].offset(off));
                main[4 * h] = _mm256_fmadd_ps(t0, bm, main[4 * h]);
                main[4 * h + 1] = _mm256_fmadd_ps(t1, bm, main[4 * h + 1]);
                // [a0, a0, a1, a1, ...], then rows 2 and 3 in the upper half.
                let lo = _mm256_blend_ps::<0xCC>(t0, t1);
                let t2 = _mm256_set1_ps(*row[4 * h + 2].offset(off));
                let t3 = _mm256_set1_ps(*row[4 * h + 3].offset(off));
                main[4 * h + 2] = _mm256_fmadd_ps(t2, bm, main[4 * h + 2]);
                main[4 * h + 3] = _mm256_fmadd_ps(t3, bm, main[4 * h + 3]);
                let hi = _mm256_blend_ps::<0xCC>(t2, t3);
                let av = _mm256_blend_ps::<0xF0>(lo, hi);
                pairs[h] = _mm256_fmadd_ps(av, bt, pairs[h]);
            }
            off += csa;
            bp = bp.add(TEN);
        }
        (main, pairs)
    }
}

/// `C = alpha * acc + beta * C` for one ten-column panel: columns 0..8 with
/// vectors when C's rows are contiguous (else element by element), columns
/// 8.. element by element; the same two roundings either way.
///
/// # Safety
/// Inlined only into a function with AVX2 and FMA; rows `0..rows` and
/// columns `0..job.n` of C from `c` are writable (readable when
/// `beta != 0`).
#[inline(always)]
unsafe fn store_ten(
    main: [__m256; LANES],
    pairs: [__m256; 2],
    c: *mut f32,
    job: &Small,
    rows: usize,
) {
    let alpha = _mm256_set1_ps(job.alpha);
    let beta_is_zero = job.beta == 0.0;
    let beta = _mm256_set1_ps(job.beta);
    let (rsc, csc) = (job.rsc, job.csc);
    // SAFETY: only elements (r, j), r < rows, j < n, are read and written.
    unsafe {
        let mut y = [[0.0f32; LANES]; LANES];
        for (r, acc) in main.iter().enumerate() {
            let v = _mm256_mul_ps(*acc, alpha);
            if csc == 1 && r < rows {
                let cp = c.offset(r as isize * rsc);
                let v = if beta_is_zero {
                    v
                } else {
                    _mm256_fmadd_ps(_mm256_loadu_ps(cp), beta, v)
                };
                _mm256_storeu_ps(cp, v);
            } else {
                _mm256_storeu_ps(y[r].as_mut_ptr(), v);
            }
        }
        if csc != 1 {
            for (r, y) in y.iter().enumerate().take(rows) {
                for (j, &v) in y.iter().enumerate() {
                    let cp = c.offset(r as isize * rsc + j as isize * csc);
                    *cp = if beta_is_zero {
                        v
                    } else {
                        (*cp).mul_add(job.beta, v)
                    };
                }
            }
        }
        let mut tail = [[0.0f32; LANES]; 2];
        for (dst, acc) in tail.iter_mut().zip(pairs) {
            _mm256_storeu_ps(dst.as_mut_ptr(), _mm256_mul_ps(acc, alpha));
        }
        for r in 0..rows {
            for j in 8..job.n {
                let v = tail[r / 4][2 * (r % 4) + (j - 8)];
                let cp = c.offset(r as isize * rsc + j as isize * csc);
                *cp = if beta_is_zero {
                    v
                } else {
                    (*cp).mul_add(job.beta, v)
                };
            }
        }
    }
}
