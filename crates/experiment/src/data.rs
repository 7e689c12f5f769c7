//! The data, loaded once per process and shared read-only (behind `Arc`) by
//! every run of every stage; its fingerprint; and the git revision, for the
//! provenance each run records.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::{ExperimentError, Result};
use cifar::{Cifar10, SplitSpec, Splits};

/// A CIFAR-10 split as the plain data the network trains on: the images as
/// a feature matrix (3 planes of 32 x 32, which augmentation needs), the
/// labels, 10 classes. The model knows nothing of CIFAR; this is the adapter.
pub fn as_data(set: &cifar::Dataset<f32>) -> mlp::Data<'_> {
    mlp::Data {
        features: set.images.view(),
        labels: &set.labels,
        n_classes: cifar::N_CLASSES,
        image: Some(mlp::data::ImageShape {
            channels: 3,
            height: 32,
            width: 32,
        }),
    }
}

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
        cifar::batches_dir(&self.dir)
    }

    /// Check that every batch file is there, without reading them; the error
    /// names the missing file and `cargo xtask fetch-data`.
    pub fn check_present(&self) -> Result<()> {
        if self.is_loaded() {
            return Ok(());
        }
        self.check_files()
    }

    /// Whether the data are in memory already.
    fn is_loaded(&self) -> bool {
        self.raw.lock().expect("data lock").is_some()
    }

    fn check_files(&self) -> Result<()> {
        let dir = self.batches_dir();
        for name in cifar::DATA_FILES {
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
        // Not `check_present`: it takes the lock this function holds.
        self.check_files()?;
        let raw = cifar::load_shared(&self.dir).map_err(ExperimentError::DataLoad)?;
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

    /// The data's fingerprint ([`cifar::data_checksum`]: the sha256 of the
    /// data files' `sha256sum` listing, from `fetch-data`'s stamp when there
    /// is one), computed once.
    pub fn fingerprint(&self) -> Result<String> {
        let mut guard = self.fingerprint.lock().expect("fingerprint lock");
        if let Some(f) = guard.as_ref() {
            return Ok(f.clone());
        }
        let f = format!("sha256:{}", cifar::data_checksum(&self.dir)?);
        *guard = Some(f.clone());
        Ok(f)
    }
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
    fn missing_or_corrupt_data_names_the_file_and_fetch_data() {
        let dir = tempfile::tempdir().unwrap();
        let source = DataSource::new(dir.path());
        let err = source.check_present().unwrap_err().to_string();
        assert!(
            err.contains("data_batch_1.bin") && err.contains("fetch-data"),
            "{err}"
        );
        let err = source.raw().unwrap_err().to_string();
        assert!(err.contains("fetch-data"), "{err}");
        for name in cifar::DATA_FILES {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        source.check_present().unwrap();
        // Present but corrupt: the loader's message, naming a file, and the fix.
        let err = source.raw().unwrap_err();
        assert!(matches!(err, ExperimentError::DataLoad(_)), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("data_batch_1.bin") && text.contains("fetch-data"),
            "{text}"
        );
    }
}
