//! Per-feature z-scoring: statistics from the training split only, applied to
//! every split.
//!
//! The statistics are exact: per-feature sums of `x` and `x^2` over `u8`
//! pixels are integers (partial sums in `u32` per chunk of rows, then `u64`),
//! so the parallel reduction is order-independent and the mean and variance
//! come from one rounding each in `f64`. Normalised values are computed in
//! `f64` and rounded once to `T`; each output row depends only on its input
//! row, so the result is bit-identical for any thread count. [`Normaliser`]
//! is the same map applied while data are read, one row or one batch of
//! rows at a time (same bits either way).

use ndarray::Array2;
use rayon::prelude::*;
use tensor::Element;

use crate::IMAGE_BYTES;

/// Rows per parallel chunk of the statistics pass (`u32` sums of squares stay
/// exact: 4096 * 255^2 < 2^32).
const STATS_CHUNK: usize = 4096;
/// Rows per parallel chunk of the normalisation pass.
const NORM_CHUNK: usize = 256;
/// Rows filled together by [`Normaliser::rows_f32`]: 16 rows of 12 KiB of
/// `f32` stay in the 512 KiB L2 cache while their features are filled chunk
/// by chunk (measured on Zen 3: 8 to 32 rows are equally fast; 64 and more,
/// or whole 1000-row blocks, are slower).
const ROW_GROUP: usize = 16;
/// Features per chunk of [`Normaliser::rows_f32`]: 512 shifts and scales
/// (8 KiB) stay in the 32 KiB L1 cache across the rows of a group, where
/// all 3072 (48 KiB) do not.
const FEATURE_CHUNK: usize = 512;

/// Mean and standard deviation of each of the 3072 features, in `[0, 1]`
/// pixel units (pixel / 255), over the training split.
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureStats {
    /// Mean of each feature.
    pub mean: Vec<f64>,
    /// Population standard deviation (divided by n) of each feature.
    pub std: Vec<f64>,
    /// Number of images the statistics were computed over.
    pub n: usize,
}

impl FeatureStats {
    /// Exact statistics of `rows` (each `IMAGE_BYTES` long). With no row the
    /// mean is 0 and the std 1 (normalisation is then the plain `[0, 1]` scaling).
    pub fn from_rows(rows: &[&[u8]]) -> Self {
        let zero = || (vec![0u64; IMAGE_BYTES], vec![0u64; IMAGE_BYTES]);
        let (s1, s2) = rows
            .par_chunks(STATS_CHUNK)
            .map(|chunk| {
                let mut a1 = vec![0u32; IMAGE_BYTES];
                let mut a2 = vec![0u32; IMAGE_BYTES];
                for row in chunk {
                    let row = &row[..IMAGE_BYTES];
                    for ((x, a), b) in row.iter().zip(&mut a1).zip(&mut a2) {
                        let x = u32::from(*x);
                        *a += x;
                        *b += x * x;
                    }
                }
                (
                    a1.into_iter().map(u64::from).collect::<Vec<_>>(),
                    a2.into_iter().map(u64::from).collect::<Vec<_>>(),
                )
            })
            .reduce(zero, |(mut s1, mut s2), (p1, p2)| {
                s1.iter_mut().zip(&p1).for_each(|(s, p)| *s += p);
                s2.iter_mut().zip(&p2).for_each(|(s, p)| *s += p);
                (s1, s2)
            });
        let n = rows.len();
        if n == 0 {
            return Self {
                mean: vec![0.0; IMAGE_BYTES],
                std: vec![1.0; IMAGE_BYTES],
                n,
            };
        }
        let nn = n as u128;
        let mean = s1.iter().map(|&s| s as f64 / (n as f64 * 255.0)).collect();
        let std = s1
            .iter()
            .zip(&s2)
            .map(|(&s1, &s2)| {
                // n^2 * var (raw units) = n * sum x^2 - (sum x)^2, exact in integers.
                let num = nn * u128::from(s2) - u128::from(s1) * u128::from(s1);
                (num as f64).sqrt() / (n as f64 * 255.0)
            })
            .collect();
        Self { mean, std, n }
    }

    /// `(pixel / 255 - mean) / std` for each row, as an `n x 3072` matrix.
    /// A feature with std 0 is only centred (divided by 1).
    pub fn normalise<T: Element>(&self, rows: &[&[u8]]) -> Array2<T> {
        let normaliser = Normaliser::new(self);
        let mut out = Array2::<T>::zeros((rows.len(), IMAGE_BYTES));
        let flat = out
            .as_slice_mut()
            .expect("a fresh array is contiguous in standard order");
        flat.par_chunks_mut(NORM_CHUNK * IMAGE_BYTES)
            .zip(rows.par_chunks(NORM_CHUNK))
            .for_each(|(dst, src)| {
                for (d, s) in dst.chunks_exact_mut(IMAGE_BYTES).zip(src) {
                    normalise_row(&s[..IMAGE_BYTES], &normaliser.shift, &normaliser.scale, d);
                }
            });
        out
    }
}

/// The z-scoring of [`FeatureStats::normalise`] as a per-feature affine map
/// on raw bytes, `(x - shift[j]) * scale[j]` in `f64` rounded once, applied
/// one row at a time: what training and evaluation use to read `u8` images
/// as features while a batch or block is gathered, with no normalised copy
/// of the data set in memory. Same operations, same values, bit for bit.
#[derive(Clone, Debug, PartialEq)]
pub struct Normaliser {
    /// `255 * mean` per feature (raw pixel units).
    shift: Vec<f64>,
    /// `1 / (255 * std)` per feature (`1 / 255` where the std is 0).
    scale: Vec<f64>,
}

impl Normaliser {
    /// The map that z-scores with `stats`.
    pub fn new(stats: &FeatureStats) -> Self {
        // In raw units: (x - 255 mean) * (1 / (255 std)).
        let shift = stats.mean.iter().map(|m| m * 255.0).collect();
        let scale = stats
            .std
            .iter()
            .map(|&s| {
                if s > 0.0 {
                    1.0 / (s * 255.0)
                } else {
                    1.0 / 255.0
                }
            })
            .collect();
        Self { shift, scale }
    }

    /// Features per row.
    pub fn len(&self) -> usize {
        self.shift.len()
    }

    /// True when the map has no feature.
    pub fn is_empty(&self) -> bool {
        self.shift.is_empty()
    }

    /// Normalise one row of raw bytes into `dst` (any float type, the
    /// portable loop).
    ///
    /// **Panics** if `src` or `dst` is shorter than [`Normaliser::len`].
    pub fn row<T: Element>(&self, src: &[u8], dst: &mut [T]) {
        let n = self.len();
        normalise_row(&src[..n], &self.shift, &self.scale, &mut dst[..n]);
    }

    /// [`Normaliser::row`] into `f32`, vectorised with AVX-512F or AVX2 when
    /// the CPU has it (the same IEEE operations lane by lane, so the same
    /// bits).
    ///
    /// **Panics** if `src` or `dst` is shorter than [`Normaliser::len`].
    pub fn row_f32(&self, src: &[u8], dst: &mut [f32]) {
        let n = self.len();
        let (src, dst) = (&src[..n], &mut dst[..n]);
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F, checked on the line above.
            unsafe { normalise_row_avx512(src, &self.shift, &self.scale, dst) };
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked on the line above.
            unsafe { normalise_row_avx2(src, &self.shift, &self.scale, dst) };
            return;
        }
        normalise_row(src, &self.shift, &self.scale, dst);
    }

    /// [`Normaliser::row_f32`] of every row of `srcs`, written one after the
    /// other into `dst`: what a mini-batch or an evaluation block is filled
    /// with. Each value is computed by the same operations, so the rows are
    /// the same bits; only the order of the work differs. Rows go by groups
    /// of 16, and within a group feature chunk by feature chunk (512 at a
    /// time, so the chunk's shift and scale are read from L1 16 times), the
    /// next chunk of each row's bytes prefetched while this one is computed.
    ///
    /// **Panics** if `dst` is not `srcs.len() *` [`Normaliser::len`] long or
    /// a source row is shorter than [`Normaliser::len`].
    pub fn rows_f32(&self, srcs: &[&[u8]], dst: &mut [f32]) {
        let n = self.len();
        assert_eq!(
            dst.len(),
            srcs.len() * n,
            "{} rows of {n} features need {} values, the buffer holds {}",
            srcs.len(),
            srcs.len() * n,
            dst.len()
        );
        if n == 0 {
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F, checked on the line above.
            unsafe { normalise_rows_avx512(srcs, &self.shift, &self.scale, dst) };
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked on the line above.
            unsafe { normalise_rows_avx2(srcs, &self.shift, &self.scale, dst) };
            return;
        }
        for (srcs, dst) in srcs.chunks(ROW_GROUP).zip(dst.chunks_mut(ROW_GROUP * n)) {
            for lo in (0..n).step_by(FEATURE_CHUNK) {
                let hi = (lo + FEATURE_CHUNK).min(n);
                for (src, row) in srcs.iter().zip(dst.chunks_exact_mut(n)) {
                    let (shift, scale) = (&self.shift[lo..hi], &self.scale[lo..hi]);
                    normalise_row(&src[lo..hi], shift, scale, &mut row[lo..hi]);
                }
            }
        }
    }
}

/// [`Normaliser::rows_f32`] with AVX2: [`normalise_rows_by`] with
/// [`normalise_row_avx2`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn normalise_rows_avx2(srcs: &[&[u8]], shift: &[f64], scale: &[f64], dst: &mut [f32]) {
    // The row kernel needs AVX2, which this function carries.
    normalise_rows_by(srcs, shift, scale, dst, |s, m, k, d| {
        normalise_row_avx2(s, m, k, d)
    });
}

/// [`Normaliser::rows_f32`] with AVX-512F: [`normalise_rows_by`] with
/// [`normalise_row_avx512`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn normalise_rows_avx512(srcs: &[&[u8]], shift: &[f64], scale: &[f64], dst: &mut [f32]) {
    // The row kernel needs AVX-512F, which this function carries.
    normalise_rows_by(srcs, shift, scale, dst, |s, m, k, d| {
        normalise_row_avx512(s, m, k, d)
    });
}

/// The row groups and feature chunks of the portable loop of
/// [`Normaliser::rows_f32`], each piece by `row_fn`, with the bytes of the
/// next chunk (or of the next group's first chunk) prefetched.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn normalise_rows_by(
    srcs: &[&[u8]],
    shift: &[f64],
    scale: &[f64],
    dst: &mut [f32],
    row_fn: impl Fn(&[u8], &[f64], &[f64], &mut [f32]),
) {
    let n = shift.len();
    let first = ..FEATURE_CHUNK.min(n);
    for src in srcs.iter().take(ROW_GROUP) {
        prefetch(&src[first]);
    }
    for (g, (group, dst)) in srcs
        .chunks(ROW_GROUP)
        .zip(dst.chunks_mut(ROW_GROUP * n))
        .enumerate()
    {
        let next_group = srcs.iter().skip((g + 1) * ROW_GROUP).take(ROW_GROUP);
        for lo in (0..n).step_by(FEATURE_CHUNK) {
            let hi = (lo + FEATURE_CHUNK).min(n);
            let next = hi..(hi + FEATURE_CHUNK).min(n);
            if next.is_empty() {
                // The last chunk of this group: fetch the next group's first.
                for src in next_group.clone() {
                    prefetch(&src[first]);
                }
            }
            for (src, row) in group.iter().zip(dst.chunks_exact_mut(n)) {
                prefetch(&src[next.clone()]);
                let (shift, scale) = (&shift[lo..hi], &scale[lo..hi]);
                row_fn(&src[lo..hi], shift, scale, &mut row[lo..hi]);
            }
        }
    }
}

/// Hint the CPU to bring the cache lines of `bytes` into L1 ahead of use:
/// a hint only, it changes no value and never faults.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn prefetch(bytes: &[u8]) {
    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
    for offset in (0..bytes.len()).step_by(64) {
        // SAFETY: the address is inside `bytes`; a prefetch reads nothing
        // into a register and cannot fault.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(bytes.as_ptr().add(offset).cast()) };
    }
}

/// [`normalise_row_avx2`] compiled for AVX-512F (8 `f64` lanes). On a Zen
/// 4 (example `normalise_timing`, 450 batches of 100 rows, four alternating
/// runs): rows in cache 29-36 -> 24-27 ms, random rows of 60000 (mostly
/// from memory, as in training) 39-49 -> 37-41 ms. Still no FMA (Rust
/// never contracts), so the same bits.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn normalise_row_avx512(src: &[u8], shift: &[f64], scale: &[f64], dst: &mut [f32]) {
    for (((d, &x), &m), &s) in dst.iter_mut().zip(src).zip(shift).zip(scale) {
        *d = ((f64::from(x) - m) * s) as f32;
    }
}

/// [`normalise_row`] compiled for AVX2 (4 `f64` lanes): the compiler
/// vectorises the same loop; there is no FMA (never enabled, and Rust does
/// not contract `(x - m) * s`), so every value rounds as in the portable loop.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn normalise_row_avx2(src: &[u8], shift: &[f64], scale: &[f64], dst: &mut [f32]) {
    for (((d, &x), &m), &s) in dst.iter_mut().zip(src).zip(shift).zip(scale) {
        *d = ((f64::from(x) - m) * s) as f32;
    }
}

/// One row: `dst[j] = (src[j] - shift[j]) * scale[j]`, in f64, rounded once to `T`.
#[inline(always)]
fn normalise_row<T: Element>(src: &[u8], shift: &[f64], scale: &[f64], dst: &mut [T]) {
    for (((d, &x), &m), &s) in dst.iter_mut().zip(src).zip(shift).zip(scale) {
        let z = (f64::from(x) - m) * s;
        // f64 -> f32/f64 never fails (NumCast between floats saturates).
        *d = <T as num_traits::NumCast>::from(z).unwrap_or_else(T::nan);
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    /// A `rows_f32` body: source rows, shift, scale, output.
    type RowsFn = fn(&[&[u8]], &[f64], &[f64], &mut [f32]);

    /// Each SIMD path this CPU can run, not only the one `rows_f32`
    /// dispatches to, gives the portable loop's bits for every byte value
    /// at every feature, over row groups and feature chunks.
    #[test]
    fn every_simd_path_gives_the_portable_bits() {
        let n = IMAGE_BYTES;
        let shift: Vec<f64> = (0..n).map(|j| 255.0 * (j as f64 * 0.618).fract()).collect();
        let scale: Vec<f64> = (0..n)
            .map(|j| 1.0 / (255.0 * (0.01 + (j as f64 * 0.37).fract())))
            .collect();
        let rows: Vec<Vec<u8>> = (0..256)
            .map(|r| (0..n).map(|j| ((j + r) % 256) as u8).collect())
            .collect();
        // All 256 byte values at every feature, and a ragged last group.
        let srcs: Vec<&[u8]> = rows
            .iter()
            .cycle()
            .take(256 + 5)
            .map(Vec::as_slice)
            .collect();
        let mut want = vec![0f32; srcs.len() * n];
        for (src, dst) in srcs.iter().zip(want.chunks_exact_mut(n)) {
            normalise_row(src, &shift, &scale, dst);
        }
        let mut paths: Vec<(&str, RowsFn)> = Vec::new();
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked above.
            paths.push(("avx2", |s, m, k, d| unsafe {
                normalise_rows_avx2(s, m, k, d)
            }));
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F, checked above.
            paths.push(("avx512", |s, m, k, d| unsafe {
                normalise_rows_avx512(s, m, k, d)
            }));
        }
        for (name, rows_fn) in paths {
            let mut got = vec![f32::NAN; srcs.len() * n];
            rows_fn(&srcs, &shift, &scale, &mut got);
            let same = got
                .iter()
                .zip(&want)
                .all(|(g, w)| g.to_bits() == w.to_bits());
            assert!(same, "{name} differs from the portable loop");
        }
    }
}
