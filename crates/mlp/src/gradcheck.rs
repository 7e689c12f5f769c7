//! Numerical gradient check (centred finite differences in f64).
