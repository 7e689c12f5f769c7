//! The data, loaded once per process and shared read-only (behind `Arc`) by
//! every run of every stage; its fingerprint; and the git revision, for the
//! provenance each run records.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::{ExperimentError, Result};
use cifar::{Cifar10, FeatureStats, ImageSet, SplitSpec};

/// One split as the network reads it: the raw `u8` images, each row
/// z-scored with the training statistics as it is gathered into a batch or
/// an evaluation block (the same values, bit for bit, as a normalised `f32`
/// copy, which is never made).
#[derive(Clone, Debug)]
pub struct Split(pub ImageSet);

impl std::ops::Deref for Split {
    type Target = ImageSet;
    fn deref(&self) -> &ImageSet {
        &self.0
    }
}

impl mlp::RowSource<f32> for Split {
    fn n_rows(&self) -> usize {
        self.0.len()
    }
    fn n_features(&self) -> usize {
        cifar::IMAGE_BYTES
    }
    fn fill_row(&self, i: usize, dst: &mut [f32]) {
        self.0.normalise_into(i, dst);
    }
    fn fill_rows(&self, indices: &[usize], dst: &mut [f32]) {
        self.0.normalise_rows_into(indices, dst);
    }
}

impl Split {
    /// Rows `lo..hi` as a normalised matrix (allocates; for small subsets).
    ///
    /// **Panics** if the range is out of bounds.
    pub fn rows(&self, lo: usize, hi: usize) -> ndarray::Array2<f32> {
        let mut out = ndarray::Array2::zeros((0, 0));
        let features = mlp::Features::Rows(self);
        let _ = features.block(lo, hi, &mut out);
        out
    }
}

/// Training, validation and test of one [`SplitSpec`], read from the raw bytes.
#[derive(Clone, Debug)]
pub struct Splits {
    /// Training set.
    pub train: Split,
    /// Validation set.
    pub validation: Split,
    /// Test set.
    pub test: Split,
    /// The training split's statistics all three are z-scored with (saved
    /// with trained weights, so they can be applied to raw pixels).
    pub stats: FeatureStats,
}

/// A CIFAR-10 split as the plain data the network trains on: the images as
/// rows of features made on request (3 planes of 32 x 32, which augmentation
/// needs), the labels, 10 classes. The model knows nothing of CIFAR; this is
/// the adapter.
pub fn as_data(set: &Split) -> mlp::Data<'_> {
    mlp::Data {
        features: mlp::Features::Rows(set),
        labels: set.labels(),
        n_classes: cifar::N_CLASSES,
        image: Some(mlp::data::ImageShape {
            channels: 3,
            height: 32,
            width: 32,
        }),
    }
}

/// [`as_data`] for a split normalised in memory (a subset made with
/// [`cifar::Dataset::select`] or [`Cifar10::train_dataset`], e.g. the sanity
/// check's 100 images).
pub fn matrix_data(set: &cifar::Dataset<f32>) -> mlp::Data<'_> {
    mlp::Data {
        features: mlp::Features::Matrix(set.images.view()),
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
/// the splits of the most recent [`SplitSpec`] kept for reuse (the coarse and
/// the fine search share theirs; they refer to the raw bytes, no normalised
/// copy), the fingerprint computed once.
pub struct DataSource {
    dir: PathBuf,
    options: cifar::LoadOptions,
    raw: Mutex<Option<Arc<Cifar10>>>,
    splits: Mutex<Option<(SplitSpec, Arc<Splits>)>>,
    fingerprint: Mutex<Option<String>>,
}

impl DataSource {
    /// A source reading `dir` (holding `cifar-10-batches-bin/` or the batch files themselves).
    pub fn new(dir: &Path) -> Self {
        Self::with_options(dir, cifar::LoadOptions::default())
    }

    /// [`DataSource::new`] with the loader's checks given (e.g. small
    /// generated files in tests).
    pub fn with_options(dir: &Path, options: cifar::LoadOptions) -> Self {
        Self {
            dir: dir.to_path_buf(),
            options,
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
            options: cifar::LoadOptions::default(),
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
        cifar::check_data_files(&self.dir).map_err(|error| self.load_error(error))?;
        Ok(())
    }

    fn load_error(&self, error: cifar::CifarError) -> ExperimentError {
        ExperimentError::DataLoad {
            dir: self.dir.clone(),
            error,
        }
    }

    /// The raw data set, loaded on first use.
    pub fn raw(&self) -> Result<Arc<Cifar10>> {
        let mut guard = self.raw.lock().expect("data lock");
        if let Some(raw) = guard.as_ref() {
            return Ok(raw.clone());
        }
        let (raw, digest) =
            cifar::load_shared_digest(&self.dir, &self.options).map_err(|e| self.load_error(e))?;
        // The fingerprint of the bytes just read (checked against the
        // fetch-data stamp by the loader), never a value taken on trust.
        *self.fingerprint.lock().expect("fingerprint lock") =
            Some(format!("sha256:{}", digest.data_sha256));
        *guard = Some(raw.clone());
        Ok(raw)
    }

    /// The splits for `spec`, made once and shared.
    pub fn splits(&self, spec: &SplitSpec) -> Result<Arc<Splits>> {
        let mut guard = self.splits.lock().expect("splits lock");
        if let Some((cached_spec, splits)) = guard.as_ref() {
            if cached_spec == spec {
                return Ok(splits.clone());
            }
        }
        *guard = None;
        let images = self.raw()?.image_splits(spec)?;
        let splits = Arc::new(Splits {
            train: Split(images.train),
            validation: Split(images.validation),
            test: Split(images.test),
            stats: images.stats,
        });
        *guard = Some((spec.clone(), splits.clone()));
        Ok(splits)
    }

    /// The data's fingerprint: the sha256 of the `sha256sum` listing of the
    /// bytes [`DataSource::raw`] read (loading them if needed), which the
    /// loader checked against `fetch-data`'s stamp.
    pub fn fingerprint(&self) -> Result<String> {
        if let Some(f) = self.fingerprint.lock().expect("fingerprint lock").as_ref() {
            return Ok(f.clone());
        }
        self.raw()?;
        let guard = self.fingerprint.lock().expect("fingerprint lock");
        Ok(guard.clone().expect("loading sets the fingerprint"))
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

    use mlp::train::ValidTrainConfig;

    /// The small network the bit-identity tests train (8 hidden units,
    /// batches of 64, dropout 0.2, `n_steps` at eta 0.01, lambda 0.01):
    /// every random draw and gathered value counts in its weights.
    fn tiny_config(n_steps: u64, augment: mlp::data::Augment, seed: u64) -> ValidTrainConfig {
        let settings = mlp::train::TrainSettings {
            n_hidden: 8,
            batch_size: 64,
            schedule: mlp::schedule::ScheduleSpec::Constant { eta: 0.01, n_steps },
            records_per_cycle: 3,
            curve_train_rows: mlp::train::CurveTrainRows::All,
            optimizer: mlp::optim::OptimizerSpec::Sgd,
            dropout: 0.2,
            label_smoothing: 0.0,
            augment,
        };
        settings.with(0.01, seed).validate().unwrap()
    }

    /// Trains `config` on `train`, recording curves on `validation`.
    fn train_on(
        train: mlp::Data<'_>,
        validation: mlp::Data<'_>,
        config: &ValidTrainConfig,
    ) -> mlp::train::Trained {
        mlp::train::train(train, validation, config, &mut mlp::train::Silent).unwrap()
    }

    #[test]
    fn training_and_evaluation_read_the_bytes_bit_for_bit_like_the_normalised_matrix() {
        // 1450 training and 1100 test images: two evaluation blocks each,
        // the last one short.
        let raw = Cifar10::synthetic(300, 1100, 4);
        let spec = SplitSpec::HoldOut {
            n_validation: 50,
            seed: 2,
        };
        let old = raw.splits::<f32>(&spec).unwrap();
        let source = DataSource::from_memory(raw, "sha256:test");
        let new = source.splits(&spec).unwrap();
        let bits = |a: &ndarray::Array2<f32>| a.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(
            bits(&new.train.rows(0, new.train.len())),
            bits(&old.train.images)
        );
        // Flip + translation and dropout: every draw and every gathered value
        // must be the same for the two paths to end with the same weights.
        let augment = mlp::data::Augment {
            flip: true,
            translate: 3,
        };
        let config = tiny_config(40, augment, 7);
        let ours = train_on(as_data(&new.train), as_data(&new.validation), &config);
        let want = train_on(
            matrix_data(&old.train),
            matrix_data(&old.validation),
            &config,
        );
        assert_eq!(ours.model, want.model);
        assert_eq!(ours.curve, want.curve);
        let model = &ours.model;
        assert_eq!(
            model.evaluate_features(&mlp::Features::Rows(&new.test), new.test.labels(), 0.01),
            model.evaluate(&old.test.images.view(), &old.test.labels, 0.01)
        );
        // The splits are cached and share the raw bytes: no copy per call.
        assert!(Arc::ptr_eq(&new, &source.splits(&spec).unwrap()));
    }

    /// A split read row by row: the default [`mlp::RowSource::fill_rows`].
    struct PerRow<'a>(&'a Split);

    impl mlp::RowSource<f32> for PerRow<'_> {
        fn n_rows(&self) -> usize {
            self.0.len()
        }
        fn n_features(&self) -> usize {
            cifar::IMAGE_BYTES
        }
        fn fill_row(&self, i: usize, dst: &mut [f32]) {
            self.0.normalise_into(i, dst);
        }
    }

    /// [`as_data`] of the split under `rows`, read row by row.
    fn row_by_row<'a>(rows: &'a PerRow<'a>) -> mlp::Data<'a> {
        mlp::Data {
            features: mlp::Features::Rows(rows),
            ..as_data(rows.0)
        }
    }

    #[test]
    fn batch_filling_trains_the_same_weights_as_row_by_row_filling() {
        // 1450 training images: batches of 64 with a last short one of 42,
        // evaluation blocks of 1000 and 450.
        let raw = Cifar10::synthetic(300, 1100, 5);
        let spec = SplitSpec::HoldOut {
            n_validation: 50,
            seed: 3,
        };
        let splits = DataSource::from_memory(raw, "sha256:test")
            .splits(&spec)
            .unwrap();
        let config = tiny_config(50, mlp::data::Augment::NONE, 9);
        let (train_rows, validation_rows) = (PerRow(&splits.train), PerRow(&splits.validation));
        let ours = train_on(as_data(&splits.train), as_data(&splits.validation), &config);
        let want = train_on(
            row_by_row(&train_rows),
            row_by_row(&validation_rows),
            &config,
        );
        let bits = |m: &mlp::Mlp<f32>| {
            let (w, b) = (m.w1.iter().chain(&m.w2), m.b1.iter().chain(&m.b2));
            w.chain(b).map(|v| v.to_bits()).collect::<Vec<_>>()
        };
        assert_eq!(bits(&ours.model), bits(&want.model));
        assert_eq!(ours.curve, want.curve);
        let model = &ours.model;
        let train = &splits.train;
        assert_eq!(
            model.evaluate_features(&mlp::Features::Rows(train), train.labels(), 0.01),
            model.evaluate_features(&mlp::Features::Rows(&train_rows), train.labels(), 0.01)
        );
    }

    #[test]
    fn missing_or_corrupt_data_names_the_file_and_fetch_data() {
        let dir = tempfile::tempdir().unwrap();
        let source = DataSource::new(dir.path());
        let err = source.check_present().unwrap_err().to_string();
        assert!(
            err.contains("no CIFAR-10 data") && err.contains("fetch-data --data-dir"),
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
        assert!(matches!(err, ExperimentError::DataLoad { .. }), "{err}");
        let text = err.to_string();
        // The hint carries the flags that would repair this data dir.
        let repair = format!(
            "`cargo xtask fetch-data --data-dir {} --force`",
            dir.path().display()
        );
        assert!(
            text.contains("data_batch_1.bin") && text.contains(&repair),
            "{text}"
        );
    }

    #[test]
    fn the_fingerprint_is_that_of_the_bytes_read_and_must_match_the_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let data = Cifar10::synthetic(3, 3, 40);
        let batches = data.write_dir(dir.path()).unwrap();
        let digest = cifar::compute_data_checksum(&batches).unwrap();
        cifar::stamp::Stamp::new(digest.clone(), "test".into(), None, None, false)
            .write(&batches)
            .unwrap();
        // Same sizes, one pixel changed: the stamp no longer describes the data.
        let f = batches.join("data_batch_4.bin");
        let mut bytes = std::fs::read(&f).unwrap();
        bytes[77] ^= 0x10;
        std::fs::write(&f, &bytes).unwrap();
        let small = cifar::LoadOptions {
            records_per_file: None,
        };
        let source = DataSource::with_options(dir.path(), small);
        let text = source.fingerprint().unwrap_err().to_string();
        assert!(text.contains("data_batch_4.bin"), "{text}");
        assert_eq!(text.matches("cargo xtask").count(), 1, "one hint: {text}");
        assert!(source.raw().is_err());
        // Without a stamp, the recorded fingerprint is the changed bytes' one.
        std::fs::remove_file(cifar::stamp::Stamp::path(&batches)).unwrap();
        let source = DataSource::with_options(dir.path(), small);
        let now = cifar::compute_data_checksum(&batches).unwrap().data_sha256;
        assert_ne!(now, digest.data_sha256);
        assert_eq!(source.fingerprint().unwrap(), format!("sha256:{now}"));
        assert!(source.is_loaded(), "the fingerprint came from the load");
    }
}
