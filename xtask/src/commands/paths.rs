//! Default locations, resolved against the workspace root so commands work
//! from any directory of the checkout.

use std::path::PathBuf;

/// The workspace root (the folder holding the top `Cargo.toml`).
pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// The data dir: `--data-dir` if given, else `$CIFAR10_DIR`, else `<root>/data`.
pub fn data_dir(flag: Option<PathBuf>) -> PathBuf {
    flag.or_else(|| std::env::var_os("CIFAR10_DIR").map(PathBuf::from))
        .unwrap_or_else(|| project_root().join("data"))
}

/// The results dir: `--results-dir` if given, else `<root>/results`.
#[allow(dead_code)] // for the experiment commands (issue 5), not all merged yet
pub fn results_dir(flag: Option<PathBuf>) -> PathBuf {
    flag.unwrap_or_else(|| project_root().join("results"))
}
