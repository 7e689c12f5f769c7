//! Default locations, resolved against the workspace root so commands work
//! from any directory of the checkout.

use std::ffi::OsString;
use std::path::PathBuf;

/// The environment variable naming the data dir when `--data-dir` is not given.
pub const DATA_DIR_ENV: &str = "CIFAR10_DIR";

/// The workspace root (the folder holding the top `Cargo.toml`).
pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// The data dir: `--data-dir` if given, else `$CIFAR10_DIR` (when set and
/// not empty), else `<root>/data`.
pub fn data_dir(flag: Option<PathBuf>) -> PathBuf {
    data_dir_from(flag, std::env::var_os(DATA_DIR_ENV))
}

/// [`data_dir`] with the environment value passed in (testable).
fn data_dir_from(flag: Option<PathBuf>, env: Option<OsString>) -> PathBuf {
    flag.or_else(|| env.filter(|v| !v.is_empty()).map(PathBuf::from))
        .unwrap_or_else(|| project_root().join("data"))
}

/// The results dir: `--results-dir` if given, else `<root>/results`.
pub fn results_dir(flag: Option<PathBuf>) -> PathBuf {
    flag.unwrap_or_else(|| project_root().join("results"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_dir_prefers_the_flag_then_the_environment() {
        let flag = Some(PathBuf::from("/x"));
        let env = Some(OsString::from("/y"));
        assert_eq!(
            data_dir_from(flag.clone(), env.clone()),
            PathBuf::from("/x")
        );
        assert_eq!(data_dir_from(None, env), PathBuf::from("/y"));
        let default = project_root().join("data");
        assert_eq!(data_dir_from(None, None), default);
        assert_eq!(data_dir_from(None, Some(OsString::new())), default);
        assert!(project_root().join("Cargo.toml").is_file());
    }
}
