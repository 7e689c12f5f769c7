//! The math core every training step runs on: general matrix multiply for
//! `f32` and `f64` on ndarray views, and the fused row operations a two-layer
//! network needs (bias + ReLU, softmax, softmax + cross-entropy, argmax).
//!
//! Data model: samples are rows. A mini-batch `X` is `n_samples x n_features`,
//! row-major, so per-sample operations (softmax, argmax) walk contiguous rows.
//! Transposes are free: pass `a.t()` and the kernels read the strides.
//!
//! [`gemm`] is our own BLIS-style implementation (see the `gemm` and `kernel`
//! modules): B is packed into `NR`-wide panels, A is read in place when one
//! of its strides is 1 (packed when many B panels reuse it, or when it has no
//! unit stride), and register-blocked micro-kernels compute `MR x NR` tiles:
//! AVX-512F (10 x 32 for f32) or AVX2 + FMA (6 x 16) chosen at run time with
//! `is_x86_feature_detected!`, and a portable fallback. Edge panels that fit
//! one vector run a one-vector tile; on AVX-512 f32, a thin product whose A
//! rows and B columns are contiguous along a long `k` computes its last
//! `n % 16` (at most 2) columns as dot products instead of a padded vector.
//! Small products (the second layer's) take a direct path without cache
//! blocking; [`gemm_blocked_with_kernel`] forces the blocked driver.
//! `TENSOR_KERNEL=avx512|avx2|portable` overrides the choice for a whole
//! process; [`gemm_with_kernel`] forces one per call (tests run every path
//! that way).
//!
//! Parallelism comes from the caller's rayon pool: a matmul large enough to pay
//! for it is split across `rayon::current_num_threads()` threads by output
//! blocks only (never by the reduction dimension), so every output element is
//! computed by the same sequence of operations whatever the thread count, and
//! results are bit-identical for 1 or N threads. Results do differ (in the
//! last bits) between kernels. [`pool::pool_builder`] builds pools whose
//! workers keep a core each, so a split product really runs on two cores;
//! [`with_spinning_partners`] keeps them awake through a run of training
//! steps, whose splits then skip rayon's wake-up.
//!
//! Everything here is allocation-free in steady state: callers pass output
//! buffers, and the GEMM packing buffers are per-thread and reused.
//! `unsafe` lives only in the micro-kernels and packers (`kernel` module), the
//! few call sites in `gemm` that hand them raw pointers, and the hand-over of
//! a half-product to a spinning partner (`partners`), each with a
//! `// SAFETY:` comment.

#[cfg(feature = "bench")]
pub mod bench;
mod gemm;
mod kernel;
mod ops;
pub mod partners;
pub mod pool;
pub mod reference;

use ndarray::{ArrayView2, ArrayViewMut2, LinalgScalar};

pub use gemm::with_small_products_split;
pub use kernel::{available_kernels, measure_fma_peak, Kernel, KernelError, ALL_KERNELS};
pub use ops::{
    add_bias, add_bias_relu, argmax_rows, column_sums, relu_backward, softmax_cross_entropy,
    softmax_rows, LossSum,
};
pub use partners::with_spinning_partners;

/// The element types the kernels support: `f32` for training, `f64` for
/// gradient checks and references. Sealed (the hidden `GemmScalar` bound
/// carries the per-type kernel dispatch).
pub trait Element:
    LinalgScalar
    + num_traits::Float
    + Send
    + Sync
    + std::fmt::Debug
    + std::iter::Sum
    + 'static
    + gemm::GemmScalar
{
}
impl Element for f32 {}
impl Element for f64 {}

/// `C = alpha * A * B + beta * C` for any strides (pass `a.t()` for a
/// transpose). When `beta` is zero, `C` is not read (NaN in it is ignored).
/// Uses [`Kernel::detect`]'s kernel and the current rayon pool's threads.
///
/// **Panics** if the shapes do not agree: `A` is `m x k`, `B` is `k x n`, `C` is `m x n`.
#[track_caller]
pub fn gemm<T: Element>(
    alpha: T,
    a: &ArrayView2<'_, T>,
    b: &ArrayView2<'_, T>,
    beta: T,
    c: &mut ArrayViewMut2<'_, T>,
) {
    let (m, k, n) = check_shapes(a, b, c);
    let n_threads = gemm::threads_for(m, k, n);
    T::dispatch(
        Kernel::detect(),
        alpha,
        a,
        b,
        beta,
        c,
        gemm::Run {
            n_threads,
            direct: true,
        },
    );
}

/// [`gemm`] with a chosen micro-kernel: how tests and benchmarks exercise
/// every path. Returns an error (and leaves `C` untouched) if this CPU cannot
/// run `kernel`.
///
/// **Panics** if the shapes do not agree (as [`gemm`]).
#[track_caller]
pub fn gemm_with_kernel<T: Element>(
    kernel: Kernel,
    alpha: T,
    a: &ArrayView2<'_, T>,
    b: &ArrayView2<'_, T>,
    beta: T,
    c: &mut ArrayViewMut2<'_, T>,
) -> Result<(), KernelError> {
    checked_dispatch(kernel, alpha, a, b, beta, c, Threads::BySize, true)
}

/// [`gemm_with_kernel`] without the direct small-product path: every
/// product goes through the blocked driver (packing, cache blocks, thread
/// split). Products at least 1e8 flops are the same either way; small ones
/// (the second layer's) take a direct path under [`gemm`] and
/// [`gemm_with_kernel`], and benchmarks time this function to compare.
/// Results may differ from [`gemm_with_kernel`]'s in the last bits.
///
/// **Panics** if the shapes do not agree (as [`gemm`]).
#[track_caller]
pub fn gemm_blocked_with_kernel<T: Element>(
    kernel: Kernel,
    alpha: T,
    a: &ArrayView2<'_, T>,
    b: &ArrayView2<'_, T>,
    beta: T,
    c: &mut ArrayViewMut2<'_, T>,
) -> Result<(), KernelError> {
    checked_dispatch(kernel, alpha, a, b, beta, c, Threads::BySize, false)
}

/// [`gemm_with_kernel`] split across all the current rayon pool's threads
/// whatever the product's size ([`gemm`] keeps small products on one
/// thread): lets tests check on small shapes that every loop order gives the
/// same bits for any thread count.
///
/// **Panics** if the shapes do not agree (as [`gemm`]).
#[track_caller]
pub fn gemm_with_kernel_on_all_threads<T: Element>(
    kernel: Kernel,
    alpha: T,
    a: &ArrayView2<'_, T>,
    b: &ArrayView2<'_, T>,
    beta: T,
    c: &mut ArrayViewMut2<'_, T>,
) -> Result<(), KernelError> {
    checked_dispatch(kernel, alpha, a, b, beta, c, Threads::All, true)
}

/// How many threads a forced-kernel product may use.
enum Threads {
    /// As [`gemm`]: the pool's threads for products of at least 1e8 flops, else one.
    BySize,
    /// Every thread of the current pool, whatever the size.
    All,
}

/// The body of the `gemm_*with_kernel*` entry points: check the shapes and
/// the kernel, then run the product with `direct` (the small-product path)
/// allowed or not.
#[allow(clippy::too_many_arguments)]
#[track_caller]
fn checked_dispatch<T: Element>(
    kernel: Kernel,
    alpha: T,
    a: &ArrayView2<'_, T>,
    b: &ArrayView2<'_, T>,
    beta: T,
    c: &mut ArrayViewMut2<'_, T>,
    threads: Threads,
    direct: bool,
) -> Result<(), KernelError> {
    let (m, k, n) = check_shapes(a, b, c);
    let kernel = kernel.check()?;
    let n_threads = match threads {
        Threads::BySize => gemm::threads_for(m, k, n),
        Threads::All => rayon::current_num_threads(),
    };
    T::dispatch(
        kernel,
        alpha,
        a,
        b,
        beta,
        c,
        gemm::Run { n_threads, direct },
    );
    Ok(())
}

/// The shape rule of [`gemm`] as a value: `Ok((m, k, n))` or a message.
pub fn gemm_shapes(
    a: (usize, usize),
    b: (usize, usize),
    c: (usize, usize),
) -> Result<(usize, usize, usize), String> {
    let (m, k) = a;
    let (kb, n) = b;
    if k != kb || c != (m, n) {
        return Err(format!(
            "gemm shape mismatch: A is {m}x{k}, B is {kb}x{n}, C is {}x{} \
             (need A m x k, B k x n, C m x n)",
            c.0, c.1
        ));
    }
    Ok((m, k, n))
}

#[track_caller]
fn check_shapes<T>(
    a: &ArrayView2<'_, T>,
    b: &ArrayView2<'_, T>,
    c: &ArrayViewMut2<'_, T>,
) -> (usize, usize, usize) {
    match gemm_shapes(a.dim(), b.dim(), c.dim()) {
        Ok(mkn) => mkn,
        Err(msg) => shape_panic(&msg),
    }
}

#[cold]
#[inline(never)]
#[track_caller]
fn shape_panic(msg: &str) -> ! {
    panic!("{msg}")
}
