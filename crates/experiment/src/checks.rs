//! The checks before any training, as stages with TOML configs like the
//! other experiments (`experiments/checks/*.toml`): the gradient check
//! ([`gradcheck`]) and the sanity check ([`sanity`]).

pub mod gradcheck;
pub mod sanity;
