//! One module per xtask command; each exposes `Args` (clap) and `run`.

pub mod bench;
pub mod bench_kernels;
pub mod bench_train;
pub mod coarse_search;
pub mod collect;
pub mod evaluate;
pub mod fetch_data;
pub mod final_train;
pub mod fine_search;
pub mod gradcheck;
pub mod lr_range_test;
pub mod paths;
pub mod plot;
pub mod predict;
pub mod reproduce;
pub mod sanity;
pub mod slurm;
pub mod train;
pub mod worker;
