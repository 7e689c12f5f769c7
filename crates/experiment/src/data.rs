//! The data, loaded once per process and shared read-only (behind `Arc`) by
//! every run of every stage; its fingerprint; and the git revision, for the
//! provenance each run records.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use cifar::{Cifar10, SplitSpec, Splits};
use sha2::{Digest, Sha256};

use crate::io::io_err;
use crate::{ExperimentError, Result};

/// The CIFAR-10 directory of one process: raw bytes loaded on first use,
/// the normalised splits of the most recent [`SplitSpec`] kept for reuse (the
/// coarse and the fine search share theirs), the fingerprint computed once.
pub struct DataSource {
    dir: PathBuf,
    raw: Mutex<Option<Arc<Cifar10>>>,
    splits: Mutex<Option<(SplitSpec, Arc<Splits<f32>>)>>,
    fingerprint: Mutex<Option<String>>,
}

impl DataSource {
    /// A source reading `dir` (holding `cifar-10-batches-bin/` or the batch files themselves).
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            raw: Mutex::new(None),
            splits: Mutex::new(None),
            fingerprint: Mutex::new(None),
        }
    }

    /// A source over data already in memory (tests, synthetic data); `fingerprint`
    /// stands in for the files' checksum.
    pub fn from_memory(raw: Cifar10, fingerprint: &str) -> Self {
        Self {
            dir: PathBuf::from("<memory>"),
            raw: Mutex::new(Some(Arc::new(raw))),
            splits: Mutex::new(None),
            fingerprint: Mutex::new(Some(fingerprint.to_string())),
        }
    }

    /// The directory given at construction.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The folder that holds the batch files.
    pub fn batches_dir(&self) -> PathBuf {
        let nested = self.dir.join(cifar::BATCHES_DIR);
        if nested.is_dir() {
            nested
        } else {
            self.dir.clone()
        }
    }

    /// Check that every batch file is there, without reading them; the error
    /// names the missing file and `cargo xtask fetch-data`.
    pub fn check_present(&self) -> Result<()> {
        if self.raw.lock().expect("data lock").is_some() {
            return Ok(());
        }
        let dir = self.batches_dir();
        for name in cifar::TRAIN_FILES.iter().chain([&cifar::TEST_FILE]) {
            let path = dir.join(name);
            if !path.is_file() {
                return Err(ExperimentError::Missing {
                    path,
                    hint: format!(
                        "get CIFAR-10 with `cargo xtask fetch-data --data-dir {}` \
                         (or `--from <archive>`), or point --data-dir / $CIFAR10_DIR at it",
                        self.dir.display()
                    ),
                });
            }
        }
        Ok(())
    }

    /// The raw data set, loaded on first use.
    pub fn raw(&self) -> Result<Arc<Cifar10>> {
        let mut guard = self.raw.lock().expect("data lock");
        if let Some(raw) = guard.as_ref() {
            return Ok(raw.clone());
        }
        self.check_present()?;
        let raw = Arc::new(cifar::load_dir(&self.dir)?);
        *guard = Some(raw.clone());
        Ok(raw)
    }

    /// The normalised `f32` splits for `spec`, made once and shared.
    pub fn splits(&self, spec: &SplitSpec) -> Result<Arc<Splits<f32>>> {
        let mut guard = self.splits.lock().expect("splits lock");
        if let Some((cached_spec, splits)) = guard.as_ref() {
            if cached_spec == spec {
                return Ok(splits.clone());
            }
        }
        // Drop the previous splits before making new ones: they are large.
        *guard = None;
        let splits = Arc::new(self.raw()?.splits::<f32>(spec)?);
        *guard = Some((spec.clone(), splits.clone()));
        Ok(splits)
    }

    /// SHA-256 over the six batch files (see [`fingerprint_files`]), computed once.
    pub fn fingerprint(&self) -> Result<String> {
        let mut guard = self.fingerprint.lock().expect("fingerprint lock");
        if let Some(f) = guard.as_ref() {
            return Ok(f.clone());
        }
        let f = fingerprint_files(&self.batches_dir())?;
        *guard = Some(f.clone());
        Ok(f)
    }
}

/// `sha256:` + the SHA-256 of the lines `<file name> <sha256 of the file>`, one
/// per batch file (training batches in order, then the test batch): one short
/// string that changes when any image or label does.
pub fn fingerprint_files(batches_dir: &Path) -> Result<String> {
    let mut outer = Sha256::new();
    for name in cifar::TRAIN_FILES.iter().chain([&cifar::TEST_FILE]) {
        let path = batches_dir.join(name);
        let mut file = std::fs::File::open(&path).map_err(io_err(&path))?;
        let mut inner = Sha256::new();
        std::io::copy(&mut file, &mut inner).map_err(io_err(&path))?;
        outer.update(format!("{name} {}\n", hex(&inner.finalize())));
    }
    Ok(format!("sha256:{}", hex(&outer.finalize())))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `git rev-parse HEAD` in `repo_root`, with `+dirty` appended when tracked
/// files have uncommitted changes; `unknown` when git is not available.
pub fn git_revision(repo_root: &Path) -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(repo_root)
            .args(args)
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    match git(&["rev-parse", "HEAD"]) {
        Some(rev) if !rev.is_empty() => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{rev}+dirty")
            } else {
                rev
            }
        }
        _ => "unknown".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_changes_with_any_file_and_missing_data_names_fetch_data() {
        let dir = tempfile::tempdir().unwrap();
        let source = DataSource::new(dir.path());
        let err = source.check_present().unwrap_err().to_string();
        assert!(
            err.contains("data_batch_1.bin") && err.contains("fetch-data"),
            "{err}"
        );

        for name in cifar::TRAIN_FILES.iter().chain([&cifar::TEST_FILE]) {
            std::fs::write(dir.path().join(name), name.as_bytes()).unwrap();
        }
        source.check_present().unwrap();
        let a = fingerprint_files(dir.path()).unwrap();
        assert!(a.starts_with("sha256:") && a.len() == 7 + 64, "{a}");
        std::fs::write(dir.path().join(cifar::TEST_FILE), b"other").unwrap();
        let b = fingerprint_files(dir.path()).unwrap();
        assert_ne!(a, b);
    }
}
