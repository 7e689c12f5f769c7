//! Steady-state calls allocate nothing: GEMM (packing buffers are
//! per-thread and reused) and the fused ops, counted with a counting global
//! allocator. A separate test binary, because the allocator is global.
//! Only allocations of the thread doing the steps count: other threads (the
//! test harness, a previous pool's threads winding down) may allocate at any
//! time and made this test flaky.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use ndarray::{Array1, Array2};
use tensor::Element;

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Whether this thread's allocations are counted.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: forwards every call to the system allocator, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // `try_with`: no counting while this thread's locals are torn down.
        if COUNTING.try_with(Cell::get).unwrap_or(false) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds `GlobalAlloc::dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by 20 training-like steps after one warm-up step, on a
/// single-thread pool.
fn allocations<T: Element>(m: usize, k: usize, n: usize) -> usize {
    let x = Array2::<T>::from_elem((m, k), T::one());
    let w = Array2::<T>::from_elem((n, k), T::one());
    let bias = Array1::<T>::zeros(n);
    let mut hidden = Array2::<T>::zeros((m, n));
    let mut grad = Array2::<T>::zeros((m, n));
    let mut dw = Array2::<T>::zeros((n, k));
    let mut sums = Array1::<T>::zeros(n);
    let mut idx = vec![0usize; m];
    let labels = vec![0u8; m];
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    pool.install(|| {
        let mut step = || {
            tensor::gemm(
                T::one(),
                &x.view(),
                &w.t(),
                T::zero(),
                &mut hidden.view_mut(),
            );
            tensor::add_bias_relu(&mut hidden.view_mut(), &bias.view());
            tensor::softmax_cross_entropy(&hidden.view(), &labels, &mut grad.view_mut());
            tensor::relu_backward(&mut grad.view_mut(), &hidden.view());
            tensor::column_sums(&grad.view(), &mut sums.view_mut());
            tensor::gemm(T::one(), &grad.t(), &x.view(), T::one(), &mut dw.view_mut());
            tensor::softmax_rows(&mut hidden.view_mut());
            tensor::argmax_rows(&hidden.view(), &mut idx);
        };
        step();
        let before = ALLOCS.load(Ordering::Relaxed);
        COUNTING.with(|c| c.set(true));
        for _ in 0..20 {
            step();
        }
        COUNTING.with(|c| c.set(false));
        ALLOCS.load(Ordering::Relaxed) - before
    })
}

#[test]
fn steady_state_calls_do_not_allocate() {
    for (m, k, n) in [
        (100, 3072, 50),
        (100, 50, 10),
        (37, 300, 200),
        (300, 64, 10),
    ] {
        assert_eq!(allocations::<f32>(m, k, n), 0, "f32 {m}x{k}x{n}");
        assert_eq!(allocations::<f64>(m, k, n), 0, "f64 {m}x{k}x{n}");
    }
}
