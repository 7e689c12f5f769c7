//! Register-blocked GEMM micro-kernels and their run-time selection.
//!
//! Each instruction set is a zero-sized type implementing [`MicroKernel`] for
//! `f32` and `f64`. The SIMD bodies are `#[inline(always)]` generic functions
//! that are only ever inlined into thin `#[target_feature]` wrappers, so the
//! compiler emits AVX-512 / AVX2 code for them while the rest of the crate is
//! built for the baseline target. [`Kernel::detect`] picks the best kernel the
//! CPU supports once per process (overridable with `TENSOR_KERNEL`).
//!
//! A micro-kernel computes one `MR x NR` tile of `C = alpha * A * B + beta * C`
//! from an `MR x k` micro-panel of A and a `k x NR` micro-panel of B, keeping
//! the whole tile in registers for the full `k` loop.

use std::sync::OnceLock;

#[cfg(any(test, feature = "bench"))]
pub(crate) mod alone;
#[cfg(target_arch = "x86_64")]
mod avx2;
pub(crate) mod portable;
#[cfg(target_arch = "x86_64")]
pub(crate) mod small;
#[cfg(target_arch = "x86_64")]
pub(crate) mod x86;

/// Which micro-kernel family runs the matrix multiply.
///
/// [`Kernel::detect`] chooses the fastest one the CPU supports; tests and
/// benchmarks force a specific one through [`crate::gemm_with_kernel`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// 512-bit AVX-512F kernels (x86_64 only).
    Avx512,
    /// 256-bit AVX2 + FMA kernels (x86_64 only).
    Avx2,
    /// Plain Rust kernels for any target (the compiler may auto-vectorise them).
    Portable,
}

/// All kernels, best first.
pub const ALL_KERNELS: [Kernel; 3] = [Kernel::Avx512, Kernel::Avx2, Kernel::Portable];

/// The error of asking for a kernel this CPU cannot run, or naming an unknown one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelError {
    message: String,
}

impl std::fmt::Display for KernelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for KernelError {}

impl Kernel {
    /// The lower-case name used by `TENSOR_KERNEL` and in benchmark tables.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Avx512 => "avx512",
            Kernel::Avx2 => "avx2",
            Kernel::Portable => "portable",
        }
    }

    /// Parses `avx512`, `avx2` or `portable` (case-insensitive).
    pub fn from_name(name: &str) -> Result<Kernel, KernelError> {
        match name.trim().to_ascii_lowercase().as_str() {
            "avx512" => Ok(Kernel::Avx512),
            "avx2" => Ok(Kernel::Avx2),
            "portable" => Ok(Kernel::Portable),
            other => Err(KernelError {
                message: format!(
                    "unknown kernel {other:?}: expected one of avx512, avx2, portable"
                ),
            }),
        }
    }

    /// Whether this CPU can run the kernel (checked at run time).
    pub fn is_available(self) -> bool {
        match self {
            Kernel::Portable => true,
            #[cfg(target_arch = "x86_64")]
            // Every AVX-512 CPU also has AVX2 and FMA; the AVX-512 kernels
            // call AVX2 packers (aliased transposed panels), so say so.
            Kernel::Avx512 => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// `Ok(self)` if the CPU can run it, otherwise an error naming the missing feature.
    pub fn check(self) -> Result<Kernel, KernelError> {
        if self.is_available() {
            Ok(self)
        } else {
            Err(KernelError {
                message: format!(
                    "kernel {} is not supported by this CPU; use one of: {}",
                    self.name(),
                    available_kernels()
                        .iter()
                        .map(|k| k.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
        }
    }

    /// The best kernel this CPU supports, ignoring `TENSOR_KERNEL`.
    pub fn best_available() -> Kernel {
        ALL_KERNELS
            .into_iter()
            .find(|k| k.is_available())
            .unwrap_or(Kernel::Portable)
    }

    /// The kernel [`crate::gemm`] uses: `TENSOR_KERNEL=avx512|avx2|portable` if
    /// set (falling back, with one message on stderr, when the CPU lacks it),
    /// otherwise [`Kernel::best_available`]. Decided once per process.
    pub fn detect() -> Kernel {
        static CHOSEN: OnceLock<Kernel> = OnceLock::new();
        *CHOSEN.get_or_init(|| match std::env::var("TENSOR_KERNEL") {
            Ok(name) if !name.trim().is_empty() => {
                match Kernel::from_name(&name).and_then(Kernel::check) {
                    Ok(k) => k,
                    Err(e) => {
                        let best = Kernel::best_available();
                        eprintln!("TENSOR_KERNEL: {e}; using {}", best.name());
                        best
                    }
                }
            }
            _ => Kernel::best_available(),
        })
    }
}

/// The kernels this CPU can run, best first.
pub fn available_kernels() -> Vec<Kernel> {
    ALL_KERNELS
        .into_iter()
        .filter(|k| k.is_available())
        .collect()
}

/// One micro-kernel call: everything the kernel reads and writes, as raw parts.
///
/// Element `(r, p)` of the A micro-panel is at `a + r * rsa + p * csa`;
/// element `(p, j)` of the B micro-panel is at `b + p * rsb + j` (B rows are
/// contiguous: either packed with `rsb = NR`, or read in place when the
/// operand is row-major); element `(r, j)` of C is at `c + r * rsc + j * csc`.
pub(crate) struct Tile<T> {
    /// Length of the reduction.
    pub k: usize,
    /// A micro-panel origin.
    pub a: *const T,
    /// A row stride (elements).
    pub rsa: isize,
    /// A column stride (elements).
    pub csa: isize,
    /// B micro-panel origin.
    pub b: *const T,
    /// B row stride (elements).
    pub rsb: isize,
    /// C tile origin.
    pub c: *mut T,
    /// C row stride (elements).
    pub rsc: isize,
    /// C column stride (elements).
    pub csc: isize,
    /// Origin of the C tile the caller runs next (same strides), which the
    /// kernel prefetches while it computes this one; null for none. Only
    /// prefetched, never dereferenced, so any address is allowed.
    pub c_next: *const T,
    /// Lines the caller reads after this tile (the source of the B
    /// micro-panel it packs next, or the next C tile and a part of the
    /// next A block's source), which the kernel prefetches into L2 a few at
    /// a time while it computes, the first region first, if
    /// [`MicroKernel::AHEAD`] (see [`Ahead`]); [`Ahead::NONE`] for none.
    pub ahead: [Ahead<T>; 2],
    /// Where to copy each `NR`-element B row the kernel loads, `NR` apart,
    /// or null for nowhere. With `b` and `rsb` pointing at B's source rows,
    /// the first tile of a panel packs it while it computes, for the tiles
    /// after it (only with [`MicroKernel::FILL`], and only for a full-width
    /// panel).
    pub fill: *mut T,
    /// Valid rows of the tile (`1..=MR`); rows beyond are computed but not stored.
    pub m_eff: usize,
    /// Valid columns of the tile (`1..=NR`).
    pub n_eff: usize,
    /// Scale of the product.
    pub alpha: T,
    /// Scale of the old C; when zero, C is never read.
    pub beta: T,
}

/// A region of an operand to prefetch: `rows` runs of `lines` 64-byte
/// cache lines, from `base`, `stride` elements apart. Tiles prefetch what
/// the caller reads after them ([`Tile::ahead`]), spread over their
/// reduction: the next B panel's source when each thread packs its own
/// panels right before use (the wide forward's `W1`, read from L3 or
/// memory: its packer fell from 20-24% to 6-7% of the samples on a Zen 4),
/// else the next C tile (whose ten rows, 12 KiB apart in `dW1`, share one
/// 8-way L1 set, so a burst at the tile's start evicted the current
/// tile's lines) and the next A block. Only prefetched, never
/// dereferenced, so any address is allowed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ahead<T> {
    /// First line of the first run.
    pub base: *const T,
    /// Number of runs.
    pub rows: usize,
    /// Elements from one run to the next.
    pub stride: isize,
    /// Cache lines per run.
    pub lines: usize,
}

impl<T> Ahead<T> {
    /// Nothing to prefetch.
    pub const NONE: Ahead<T> = Ahead {
        base: std::ptr::null(),
        rows: 0,
        stride: 0,
        lines: 0,
    };

    /// Part `i` of `parts` (consecutive runs, as even as can be).
    pub fn part(&self, i: usize, parts: usize) -> Ahead<T> {
        let per = self.rows.div_ceil(parts.max(1));
        let first = (i * per).min(self.rows);
        Ahead {
            base: self.base.wrapping_offset(first as isize * self.stride),
            rows: per.min(self.rows - first),
            ..*self
        }
    }
}

/// One dot-product tile call: `C[i][j] = alpha * sum_p A[i][p] * B[p][j] +
/// beta * C[i][j]` for `i < m_eff`, `j < n_eff`, where every row of A and
/// every column of B is contiguous along the reduction (a row-major A times
/// the transposed view of a row-major B, like the forward `X * W1^T`).
///
/// Row `i` of A is at `a + i * rsa`, column `j` of B at `b + j * csb`,
/// element `(i, j)` of C at `c + i * rsc + j * csc`.
pub(crate) struct DotTile<T> {
    /// Length of the reduction.
    pub k: usize,
    /// First A row.
    pub a: *const T,
    /// A row stride (elements).
    pub rsa: isize,
    /// First B column.
    pub b: *const T,
    /// B column stride (elements).
    pub csb: isize,
    /// C tile origin.
    pub c: *mut T,
    /// C row stride (elements).
    pub rsc: isize,
    /// C column stride (elements).
    pub csc: isize,
    /// Valid rows (`1..=DR`); the kernel reads only these rows of A.
    pub m_eff: usize,
    /// Valid columns (`1..=DC`); the kernel reads only these columns of B.
    pub n_eff: usize,
    /// Scale of the product.
    pub alpha: T,
    /// Scale of the old C; when zero, C is never read.
    pub beta: T,
}

/// How the kernel walks its A micro-panel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ALayout {
    /// `csa == 1`: each of the MR rows is contiguous along k (row-major A read
    /// in place). Rows beyond `m_eff` are read from the last valid row.
    Rows,
    /// `rsa == 1`: the MR values of one k step are contiguous (packed A, or a
    /// transposed row-major operand read in place). All MR rows must be readable.
    Cols,
}

/// A register-blocked micro-kernel for element type `T`.
pub(crate) trait MicroKernel<T>: Copy + Send + Sync + 'static {
    /// Rows of the register tile.
    const MR: usize;
    /// Columns of the register tile (a multiple of the vector width).
    const NR: usize;

    /// Bytes of one `KC x NR` micro-panel of packed B, which stays in L1
    /// while it meets every A micro-panel of an `ic` block (sets `KC`).
    const KC_BYTES: usize = 32 << 10;
    /// Bytes of the `MC x KC` block of A one `ic` block spans (kept in L2;
    /// sets `MC`).
    const A_BLOCK_BYTES: usize = 64 << 10;
    /// Bytes of the shared `KC x NC` slice of packed B (sets `NC`).
    const B_BLOCK_BYTES: usize = 1 << 20;
    /// Whether [`MicroKernel::tile`] prefetches [`Tile::ahead`] (spread
    /// over its reduction). The AVX-512 kernels do (but not the thin one,
    /// whose path passes no region); in the AVX2 ones (16
    /// registers) the extra loop state cost 10-20% on a Zen 4 even with
    /// nothing to prefetch, so they keep only the burst of `c_next`.
    const AHEAD: bool = false;

    /// Whether [`MicroKernel::tile`] honours [`Tile::fill`]. The SIMD
    /// kernels do: a row-major B panel read by few tiles (the report's
    /// weight gradient, 50 rows = 5 tiles per panel) then needs no pass of
    /// its own to pack it, which took 11% of that product on a Zen 4.
    const FILL: bool = false;

    /// Panel width a thin product's `KC` is computed from (see
    /// `gemm::blocking`): `NR`, except for a kernel that stands in for
    /// another on some shapes and must split `k` where that one does, so
    /// that both give the same bits (`x86::Avx512Thin`).
    const KC_NR: usize = Self::NR;

    /// Lanes of one vector: the narrow edge tile is `MR x LANES`.
    const LANES: usize = Self::NR;

    /// Rows and columns of the kernel's dot-product tile (see [`DotTile`]),
    /// or `(0, 0)` when it has none (the driver then never calls
    /// [`MicroKernel::dot_tile`]).
    const DOT: (usize, usize) = (0, 0);

    /// Computes one dot-product tile: each of the `DOT.0 x DOT.1` outputs
    /// accumulates vectors along `k` in its own register and is reduced
    /// horizontally at the end, so no operand is packed and no lane is
    /// padded on the output side.
    ///
    /// # Safety
    /// 1. The CPU supports the kernel's instruction set and `DOT != (0, 0)`.
    /// 2. Rows `0..m_eff` of A (stride `rsa`) and columns `0..n_eff` of B
    ///    (stride `csb`) are readable for `k` contiguous elements each.
    /// 3. The `m_eff x n_eff` C tile is valid for writes (and reads when
    ///    `beta != 0`), and aliases neither A nor B.
    unsafe fn dot_tile(self, t: &DotTile<T>) {
        let _ = t;
        unreachable!("dot_tile called on a kernel without a dot-product tile");
    }

    /// Computes `C[..m_eff, ..n_eff] = alpha * A * B + beta * C` for one tile.
    ///
    /// # Safety
    /// 1. The CPU supports the kernel's instruction set.
    /// 2. For [`ALayout::Rows`]: `csa == 1` and rows `0..m_eff` of A are
    ///    readable for `k` elements. For [`ALayout::Cols`]: `rsa == 1` and all
    ///    `MR` rows are readable for `k` steps.
    /// 3. `k` rows of `NR` contiguous B elements are readable at stride `rsb`.
    /// 4. The `m_eff x n_eff` C tile is valid for writes (and reads when
    ///    `beta != 0`), and aliases neither A nor B.
    /// 5. If `fill` is not null: `FILL` is true, `n_eff == NR`, and `fill`
    ///    is valid for `k * NR` writes and aliases none of A, B and C.
    unsafe fn tile(self, layout: ALayout, t: &Tile<T>);

    /// Packs one panel of a transposed B (columns contiguous) with SIMD, if
    /// this kernel has a routine for it: `dst[p * NR + j] = src[p + j * csb]`
    /// for `p < k`, `j < width`, and zero for `width <= j < NR`. Returns
    /// `false` (writing nothing) when it has none; the caller then packs with
    /// scalar code.
    ///
    /// # Safety
    /// The CPU supports the kernel; `src + p + j * csb` is readable for all
    /// `p < k`, `j < width <= NR`; `dst.len() >= k * NR`.
    unsafe fn pack_b_transposed(
        self,
        src: *const T,
        csb: isize,
        k: usize,
        width: usize,
        dst: &mut [T],
    ) -> bool {
        let _ = (src, csb, k, width, dst);
        false
    }

    /// Copies one panel of a row-major B with SIMD, if this kernel has a
    /// routine for it: `dst[p * NR + j] = src[p * rsb + j]` for `p < k`,
    /// `j < width`, and zero for `width <= j < NR`. Returns `false` (writing
    /// nothing) when it has none.
    ///
    /// # Safety
    /// The CPU supports the kernel; `src + p * rsb + j` is readable for all
    /// `p < k`, `j < width <= NR`; `dst.len() >= k * NR`.
    unsafe fn pack_b_rows(
        self,
        src: *const T,
        rsb: isize,
        k: usize,
        width: usize,
        dst: &mut [T],
    ) -> bool {
        let _ = (src, rsb, k, width, dst);
        false
    }

    /// Packs one A micro-panel from rows that are contiguous along k, with
    /// SIMD, if this kernel has a routine for it: `dst[p * MR + r] =
    /// src[r * rsa + p]` for `p < k`, `r < rows`, zero for `rows <= r < MR`.
    /// Returns `false` (writing nothing) when it has none.
    ///
    /// # Safety
    /// The CPU supports the kernel; `src + r * rsa + p` is readable for all
    /// `r < rows <= MR`, `p < k`; `dst.len() >= k * MR`.
    unsafe fn pack_a_rows(
        self,
        src: *const T,
        rsa: isize,
        k: usize,
        rows: usize,
        dst: &mut [T],
    ) -> bool {
        let _ = (src, rsa, k, rows, dst);
        false
    }
}

/// Flops of one round of [`fma_rounds`]: one FMA (2 flops per lane) per chain.
pub(crate) fn flops_per_round(kernel: Kernel, is_f64: bool) -> f64 {
    let (lanes, chains) = match kernel {
        Kernel::Avx512 => (16, 16),
        Kernel::Avx2 => (8, 12),
        Kernel::Portable => (1, 16),
    };
    let lanes = if is_f64 { lanes / 2 } else { lanes }.max(1);
    chains as f64 * 2.0 * lanes as f64
}

/// `iters` rounds of 12-16 independent register-only multiply-adds with the
/// kernel's widest vectors; returns a checksum so the work is not elided.
pub(crate) fn fma_rounds(kernel: Kernel, is_f64: bool, iters: u64) -> f64 {
    match (kernel, is_f64) {
        // SAFETY (all four arms): `measure_fma_peak` checked that the CPU
        // supports the kernel's features before calling this.
        #[cfg(target_arch = "x86_64")]
        (Kernel::Avx512, false) => f64::from(unsafe { x86::fma_512_f32(iters) }),
        #[cfg(target_arch = "x86_64")]
        (Kernel::Avx512, true) => unsafe { x86::fma_512_f64(iters) },
        #[cfg(target_arch = "x86_64")]
        (Kernel::Avx2, false) => f64::from(unsafe { x86::fma_256_f32(iters) }),
        #[cfg(target_arch = "x86_64")]
        (Kernel::Avx2, true) => unsafe { x86::fma_256_f64(iters) },
        _ => {
            let mut acc = [1.0f64; 16];
            for _ in 0..iters {
                for r in acc.iter_mut() {
                    *r = std::hint::black_box(*r) * 0.999_999 + 1e-7;
                }
            }
            acc.iter().sum()
        }
    }
}

/// Measures this core's multiply-add throughput in GFLOP/s (an FMA counts
/// as 2 flops) with a register-only loop of `kernel`'s vector width, for
/// `f32` (`is_f64 = false`) or `f64`, running for at least `min_seconds` on
/// the calling thread. Benchmarks run it on several threads at once for the
/// multi-core peak.
pub fn measure_fma_peak(
    kernel: Kernel,
    is_f64: bool,
    min_seconds: f64,
) -> Result<f64, KernelError> {
    let kernel = kernel.check()?;
    let per_round = flops_per_round(kernel, is_f64);
    // Warm up (frequency ramp, page-in), then time growing batches.
    std::hint::black_box(fma_rounds(kernel, is_f64, 100_000));
    let mut iters: u64 = 1_000_000;
    loop {
        let start = std::time::Instant::now();
        std::hint::black_box(fma_rounds(kernel, is_f64, std::hint::black_box(iters)));
        let elapsed = start.elapsed().as_secs_f64();
        if elapsed >= min_seconds {
            return Ok(per_round * iters as f64 / elapsed / 1e9);
        }
        iters = iters.saturating_mul(2);
    }
}
