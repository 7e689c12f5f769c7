//! AVX2 packers: in-register transposes that turn a transposed B view or
//! row-contiguous A rows into the micro-kernels' packed layouts, and a plain
//! vector copy for row-major B panels.
//!
//! Packing only moves values (no arithmetic), so these produce exactly the
//! buffers the scalar packers in `gemm` would; the results of a product do
//! not depend on which packer ran.

use std::arch::x86_64::*;

/// `out[q][j] = r[j][q]`: transposes an 8 x 8 block of f32 held as 8 rows
/// (unpack, in-lane shuffle, then 128-bit lane permutes).
///
/// # Safety
/// The CPU supports AVX; inline only into functions compiled with it.
#[inline(always)]
pub(super) unsafe fn transpose_8x8(r: [__m256; 8]) -> [__m256; 8] {
    // SAFETY: register-only AVX operations (caller's contract).
    unsafe {
        let t: [__m256; 8] = std::array::from_fn(|i| {
            let (x, y) = (r[i / 2 * 2], r[i / 2 * 2 + 1]);
            if i % 2 == 0 {
                _mm256_unpacklo_ps(x, y)
            } else {
                _mm256_unpackhi_ps(x, y)
            }
        });
        // s[4h + q], 128-bit half L: rows 4h..4h + 4 at column 4L + q.
        let mut s = [_mm256_setzero_ps(); 8];
        for h in 0..2 {
            let b = 4 * h;
            s[b] = _mm256_shuffle_ps::<0x44>(t[b], t[b + 2]);
            s[b + 1] = _mm256_shuffle_ps::<0xEE>(t[b], t[b + 2]);
            s[b + 2] = _mm256_shuffle_ps::<0x44>(t[b + 1], t[b + 3]);
            s[b + 3] = _mm256_shuffle_ps::<0xEE>(t[b + 1], t[b + 3]);
        }
        let mut o = [_mm256_setzero_ps(); 8];
        for q in 0..4 {
            o[q] = _mm256_permute2f128_ps::<0x20>(s[q], s[4 + q]);
            o[4 + q] = _mm256_permute2f128_ps::<0x31>(s[q], s[4 + q]);
        }
        o
    }
}

/// `out[q][j] = r[j][q]`: transposes a 4 x 4 block of f64 held as 4 rows.
///
/// # Safety
/// The CPU supports AVX; inline only into functions compiled with it.
#[inline(always)]
unsafe fn transpose_4x4(r: [__m256d; 4]) -> [__m256d; 4] {
    // SAFETY: register-only AVX operations (caller's contract).
    unsafe {
        let t0 = _mm256_unpacklo_pd(r[0], r[1]);
        let t1 = _mm256_unpackhi_pd(r[0], r[1]);
        let t2 = _mm256_unpacklo_pd(r[2], r[3]);
        let t3 = _mm256_unpackhi_pd(r[2], r[3]);
        [
            _mm256_permute2f128_pd::<0x20>(t0, t2),
            _mm256_permute2f128_pd::<0x20>(t1, t3),
            _mm256_permute2f128_pd::<0x31>(t0, t2),
            _mm256_permute2f128_pd::<0x31>(t1, t3),
        ]
    }
}

/// Whether columns `csb` elements of `size` bytes apart alias in L1: a
/// multiple of 4 KiB apart (a 3072-wide `W1`: 12 KiB), all of a panel's
/// columns fall in one L1 set, and reading them all at once evicts each
/// line before its second half is used.
pub(super) fn aliases_in_l1(csb: isize, size: usize) -> bool {
    (csb.unsigned_abs() * size).is_multiple_of(4096)
}

/// Reduction rows the f32 transposing packer reads from one group of 8
/// columns of a panel before it turns to the next group: 64 when the
/// columns alias in L1 (2.2x slower packing measured otherwise on Zen 3,
/// `6x3072x256` vs `6x3000x256`), else 8 (all columns per 8 rows). Only
/// the order of the copies changes, never a value.
fn rows_per_group(csb: isize, size: usize) -> usize {
    if aliases_in_l1(csb, size) {
        64
    } else {
        8
    }
}

/// AVX2 transposing packer for f32 panels of `NR` columns, a multiple of
/// 8 (see [`super::MicroKernel::pack_b_transposed`]): 8 x 8 in-register
/// transposes for each group of 8 columns and block of 8 reduction rows,
/// scalar code for the last `k % 8`. The AVX2 kernels' 16-column panels
/// use it, and the AVX-512 kernels' 32-column ones when their columns
/// alias in L1 (see [`aliases_in_l1`]).
///
/// # Safety
/// The contract of [`super::MicroKernel::pack_b_transposed`] for an
/// `NR`-column panel; the CPU supports AVX2.
pub(super) unsafe fn pack_bt_f32_panel<const NR: usize>(
    src: *const f32,
    csb: isize,
    k: usize,
    width: usize,
    dst: &mut [f32],
) -> bool {
    if dst.len() < k * NR || width > NR || width == 0 || !NR.is_multiple_of(8) {
        return false;
    }
    // SAFETY: the caller guarantees the features and that column j < width
    // is readable for k elements; dst's length is checked.
    unsafe { pack_bt_f32_inner::<NR>(src, csb, k, width, dst.as_mut_ptr()) };
    true
}

#[target_feature(enable = "avx2")]
unsafe fn pack_bt_f32_inner<const NR: usize>(
    src: *const f32,
    csb: isize,
    k: usize,
    width: usize,
    dst: *mut f32,
) {
    let k8 = k / 8 * 8;
    let zero = _mm256_setzero_ps();
    let chunk = rows_per_group(csb, std::mem::size_of::<f32>());
    for p0 in (0..k8).step_by(chunk) {
        for group in 0..NR / 8 {
            let cols = width.saturating_sub(8 * group).min(8);
            for p in (p0..k8.min(p0 + chunk)).step_by(8) {
                let mut r = [zero; 8];
                for (j, v) in r.iter_mut().enumerate().take(cols) {
                    // SAFETY: column 8 * group + j < width, rows p..p + 8 <= k.
                    *v = unsafe {
                        _mm256_loadu_ps(src.offset((8 * group + j) as isize * csb).add(p))
                    };
                }
                // SAFETY: this function is compiled with avx2.
                let o = unsafe { transpose_8x8(r) };
                for (q, v) in o.iter().enumerate() {
                    // SAFETY: row p + q < k of dst (k * NR elements), lanes 8 * group ..+8.
                    unsafe { _mm256_storeu_ps(dst.add((p + q) * NR + 8 * group), *v) };
                }
            }
        }
    }
    for p in k8..k {
        for j in 0..NR {
            // SAFETY: j < width reads column j at row p < k; row p of dst
            // is inside its k * NR elements.
            unsafe {
                *dst.add(p * NR + j) = if j < width {
                    *src.offset(j as isize * csb).add(p)
                } else {
                    0.0
                };
            }
        }
    }
}

/// AVX2 transposing packer for f64 panels of 8 columns: 4 x 4 in-register
/// transposes per block of 4 reduction rows.
///
/// # Safety
/// The contract of [`super::MicroKernel::pack_b_transposed`].
pub(super) unsafe fn pack_bt_f64(
    src: *const f64,
    csb: isize,
    k: usize,
    width: usize,
    dst: &mut [f64],
) -> bool {
    if dst.len() < k * 8 || width > 8 || width == 0 {
        return false;
    }
    // SAFETY: as for `pack_bt_f32_panel`.
    unsafe { pack_bt_f64_inner(src, csb, k, width, dst.as_mut_ptr()) };
    true
}

#[target_feature(enable = "avx2")]
unsafe fn pack_bt_f64_inner(src: *const f64, csb: isize, k: usize, width: usize, dst: *mut f64) {
    let k4 = k / 4 * 4;
    let zero = _mm256_setzero_pd();
    for p in (0..k4).step_by(4) {
        for half in 0..2 {
            let cols = width.saturating_sub(4 * half).min(4);
            let mut r = [zero; 4];
            for (j, v) in r.iter_mut().enumerate().take(cols) {
                // SAFETY: column 4 * half + j < width, rows p..p + 4 <= k.
                *v = unsafe { _mm256_loadu_pd(src.offset((4 * half + j) as isize * csb).add(p)) };
            }
            // SAFETY: this function is compiled with avx2.
            let o = unsafe { transpose_4x4(r) };
            for (q, v) in o.iter().enumerate() {
                // SAFETY: row p + q < k of dst (k * 8 elements), lanes 4 * half ..+4.
                unsafe { _mm256_storeu_pd(dst.add((p + q) * 8 + 4 * half), *v) };
            }
        }
    }
    for p in k4..k {
        for j in 0..8 {
            // SAFETY: as in the f32 version.
            unsafe {
                *dst.add(p * 8 + j) = if j < width {
                    *src.offset(j as isize * csb).add(p)
                } else {
                    0.0
                };
            }
        }
    }
}

/// AVX2 A packer for f32 with `MR = 6`: rows contiguous along k, 8 x 8
/// transposes (rows 6 and 7 zero) per block of 8 reduction steps, each
/// step's 6 values stored exactly (a 4-lane and a 2-lane store).
///
/// # Safety
/// The contract of [`super::MicroKernel::pack_a_rows`].
pub(super) unsafe fn pack_a_f32(
    src: *const f32,
    rsa: isize,
    k: usize,
    rows: usize,
    mr: usize,
    dst: &mut [f32],
) -> bool {
    if mr != 6 || rows > mr || rows == 0 || dst.len() < k * mr {
        return false;
    }
    // SAFETY: the caller guarantees the features and that rows r < rows are
    // readable for k elements; dst's length is checked.
    unsafe { pack_a_f32_inner(src, rsa, k, rows, dst.as_mut_ptr()) };
    true
}

#[target_feature(enable = "avx2")]
unsafe fn pack_a_f32_inner(src: *const f32, rsa: isize, k: usize, rows: usize, dst: *mut f32) {
    let k8 = k / 8 * 8;
    let zero = _mm256_setzero_ps();
    for p in (0..k8).step_by(8) {
        let mut r = [zero; 8];
        for (i, v) in r.iter_mut().enumerate().take(rows) {
            // SAFETY: row i < rows, elements p..p + 8 <= k.
            *v = unsafe { _mm256_loadu_ps(src.offset(i as isize * rsa).add(p)) };
        }
        // SAFETY: this function is compiled with avx2.
        let o = unsafe { transpose_8x8(r) };
        for (q, v) in o.iter().enumerate() {
            // SAFETY: elements (p + q) * 6 .. + 6 of dst (k * 6 elements):
            // lanes 0..4, then lanes 4..6 as one 64-bit store.
            unsafe {
                let d = dst.add((p + q) * 6);
                _mm_storeu_ps(d, _mm256_castps256_ps128(*v));
                _mm_store_sd(
                    d.add(4).cast(),
                    _mm_castps_pd(_mm256_extractf128_ps::<1>(*v)),
                );
            }
        }
    }
    for p in k8..k {
        for i in 0..6 {
            // SAFETY: row i < rows at element p < k; dst holds k * 6.
            unsafe {
                *dst.add(p * 6 + i) = if i < rows {
                    *src.offset(i as isize * rsa).add(p)
                } else {
                    0.0
                };
            }
        }
    }
}

/// AVX2 A packer for f64 with `MR = 6`: per block of 4 reduction steps, a
/// 4 x 4 transpose of rows 0..4 and one of rows 4..6 (two zero rows).
///
/// # Safety
/// The contract of [`super::MicroKernel::pack_a_rows`].
pub(super) unsafe fn pack_a_f64(
    src: *const f64,
    rsa: isize,
    k: usize,
    rows: usize,
    mr: usize,
    dst: &mut [f64],
) -> bool {
    if mr != 6 || rows > mr || rows == 0 || dst.len() < k * mr {
        return false;
    }
    // SAFETY: as for `pack_a_f32`.
    unsafe { pack_a_f64_inner(src, rsa, k, rows, dst.as_mut_ptr()) };
    true
}

#[target_feature(enable = "avx2")]
unsafe fn pack_a_f64_inner(src: *const f64, rsa: isize, k: usize, rows: usize, dst: *mut f64) {
    let k4 = k / 4 * 4;
    let zero = _mm256_setzero_pd();
    for p in (0..k4).step_by(4) {
        let mut r = [zero; 8];
        for (i, v) in r.iter_mut().enumerate().take(rows) {
            // SAFETY: row i < rows, elements p..p + 4 <= k.
            *v = unsafe { _mm256_loadu_pd(src.offset(i as isize * rsa).add(p)) };
        }
        // SAFETY: this function is compiled with avx2.
        let (lo, hi) = unsafe {
            (
                transpose_4x4([r[0], r[1], r[2], r[3]]),
                transpose_4x4([r[4], r[5], r[6], r[7]]),
            )
        };
        for q in 0..4 {
            // SAFETY: elements (p + q) * 6 .. + 6 of dst (k * 6 elements).
            unsafe {
                let d = dst.add((p + q) * 6);
                _mm256_storeu_pd(d, lo[q]);
                _mm_storeu_pd(d.add(4), _mm256_castpd256_pd128(hi[q]));
            }
        }
    }
    for p in k4..k {
        for i in 0..6 {
            // SAFETY: as in the f32 version.
            unsafe {
                *dst.add(p * 6 + i) = if i < rows {
                    *src.offset(i as isize * rsa).add(p)
                } else {
                    0.0
                };
            }
        }
    }
}

/// Defines `$name`: an AVX2 copy of a row-major B panel of `NR` = 2 vectors
/// (see [`super::MicroKernel::pack_b_rows`]), masked when `width < NR`.
macro_rules! pack_rows {
    ($name:ident, $inner:ident, $t:ty, $lanes:literal, $load:ident, $load_n:ident,
     $store:ident, $zero:ident) => {
        /// AVX2 row-major B panel copy.
        ///
        /// # Safety
        /// The contract of [`super::MicroKernel::pack_b_rows`].
        pub(super) unsafe fn $name(
            src: *const $t,
            rsb: isize,
            k: usize,
            width: usize,
            nr: usize,
            dst: &mut [$t],
        ) -> bool {
            if nr != 2 * $lanes || width > nr || width == 0 || dst.len() < k * nr {
                return false;
            }
            // SAFETY: the caller guarantees the features and the readable
            // source (lanes >= width are never read); dst's length is checked.
            unsafe { $inner(src, rsb, k, width, dst.as_mut_ptr()) };
            true
        }

        #[target_feature(enable = "avx2")]
        unsafe fn $inner(src: *const $t, rsb: isize, k: usize, width: usize, dst: *mut $t) {
            let lo = width.min($lanes);
            let hi = width.saturating_sub($lanes);
            for p in 0..k {
                // SAFETY: lanes j < width of `src + p * rsb + j` are read
                // (masked loads read nothing past them); row p of dst holds
                // 2 vectors.
                unsafe {
                    let row = src.offset(p as isize * rsb);
                    let a = if lo == $lanes {
                        $load(row)
                    } else {
                        super::x86::$load_n(row, lo)
                    };
                    let b = if hi == $lanes {
                        $load(row.add($lanes))
                    } else if hi > 0 {
                        super::x86::$load_n(row.add($lanes), hi)
                    } else {
                        $zero()
                    };
                    $store(dst.add(p * 2 * $lanes), a);
                    $store(dst.add(p * 2 * $lanes + $lanes), b);
                }
            }
        }
    };
}

pack_rows!(
    pack_rows_f32,
    pack_rows_f32_inner,
    f32,
    8,
    _mm256_loadu_ps,
    load_n_256_f32,
    _mm256_storeu_ps,
    _mm256_setzero_ps
);
pack_rows!(
    pack_rows_f64,
    pack_rows_f64_inner,
    f64,
    4,
    _mm256_loadu_pd,
    load_n_256_f64,
    _mm256_storeu_pd,
    _mm256_setzero_pd
);
