//! Fused ops (placeholder).
