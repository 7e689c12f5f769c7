//! Integration tests of the tensor crate: GEMM on every kernel against the
//! naive `f64` reference, and the fused row operations on edge cases.

mod gemm;
mod ops;
