//! The products the benchmark times: those of the report's network (50
//! hidden units), of a wide one (1024), and 1024^3, with the operand
//! layouts and `beta` training really uses.

/// One benchmarked product `C(m x n) = op(A) op(B) + beta C`.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Name in the table.
    pub name: &'static str,
    /// Rows of C.
    pub m: usize,
    /// Reduction length.
    pub k: usize,
    /// Columns of C.
    pub n: usize,
    /// A is stored `k x m` row-major and passed as `a.t()`.
    pub a_transposed: bool,
    /// B is stored `n x k` row-major and passed as `b.t()`.
    pub b_transposed: bool,
    /// Scale of the old C: weight gradients accumulate into the weights
    /// (`W = -s dW + (1 - 2 eta lambda) W` in `mlp::grad`), the rest overwrite.
    pub beta: f64,
}

/// `beta` of the weight-gradient products (a typical weight decay factor).
const DECAY: f64 = 0.999;

const fn shape(name: &'static str, m: usize, k: usize, n: usize, ta: bool, tb: bool) -> Shape {
    Shape {
        name,
        m,
        k,
        n,
        a_transposed: ta,
        b_transposed: tb,
        beta: 0.0,
    }
}

const fn wgrad(name: &'static str, m: usize, k: usize, n: usize) -> Shape {
    Shape {
        beta: DECAY,
        ..shape(name, m, k, n, true, false)
    }
}

/// Every benchmarked product, in table order.
pub const SHAPES: [Shape; 15] = [
    shape("forward X*W1^T", 100, 3072, 50, false, true),
    wgrad("wgrad G^T*X", 50, 100, 3072),
    shape("eval X*W1^T", 10000, 3072, 50, false, true),
    shape("layer2 H*W2^T", 100, 50, 10, false, true),
    wgrad("layer2 wgrad G2^T*H", 10, 100, 50),
    shape("layer2 dgrad G2*W2", 100, 10, 50, false, false),
    shape("eval layer2 H*W2^T", 10000, 50, 10, false, true),
    // The products of a wide network (1024 hidden units, "Beyond the report").
    shape("wide forward", 100, 3072, 1024, false, true),
    wgrad("wide wgrad", 1024, 100, 3072),
    shape("wide hgrad G2*W2", 100, 10, 1024, false, false),
    shape("wide layer2 H*W2^T", 100, 1024, 10, false, true),
    wgrad("wide l2 wgrad G2^T*H", 10, 100, 1024),
    shape("wide eval X*W1^T", 10000, 3072, 1024, false, true),
    shape("wide eval l2 H*W2^T", 10000, 1024, 10, false, true),
    shape("square 1024^3", 1024, 1024, 1024, false, false),
];
