//! CIFAR-10 binary data: a strict reader, the standard splits, per-feature
//! normalisation fitted on the training split only, and seeded mini-batching.
//!
//! Raw pixels stay `u8` (150 MB for all 60000 images) and are loaded once per
//! process; normalised `f32`/`f64` matrices are made on demand by [`Cifar10::splits`].
//!
//! SKELETON: the signatures below are the contract other crates build on
//! (issue 2 implements them); bodies marked `todo!` are not done.

use std::path::{Path, PathBuf};

use ndarray::{Array2, ArrayView2};
use tensor::Element;

/// Bytes of one image: 1024 red, 1024 green, 1024 blue, each 32x32 row-major.
pub const IMAGE_BYTES: usize = 3072;
/// Bytes of one record: a label byte then the image.
pub const RECORD_BYTES: usize = 1 + IMAGE_BYTES;
/// Records in each standard batch file.
pub const RECORDS_PER_FILE: usize = 10_000;
/// Number of classes.
pub const N_CLASSES: usize = 10;
/// The sub-directory of a data dir that holds the batch files.
pub const BATCHES_DIR: &str = "cifar-10-batches-bin";
/// Names of the training batch files, in order.
pub const TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
/// Name of the test batch file.
pub const TEST_FILE: &str = "test_batch.bin";

/// Everything that can go wrong reading CIFAR-10; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum CifarError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Anything else: the message says what is wrong and where.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong (record index, expected vs found).
        message: String,
    },
}

/// Raw images and labels from one or more batch files.
#[derive(Clone, Debug, Default)]
pub struct RawImages {
    /// `n * IMAGE_BYTES` bytes, record after record, in file plane order (R, G, B).
    pub pixels: Vec<u8>,
    /// One label 0..9 per image.
    pub labels: Vec<u8>,
}

/// The whole data set as raw bytes, loaded once and shared read-only.
#[derive(Clone, Debug)]
pub struct Cifar10 {
    /// The five training batch files, in order.
    pub train_batches: Vec<RawImages>,
    /// The test batch.
    pub test: RawImages,
    /// Class names from `batches.meta.txt`.
    pub class_names: Vec<String>,
}

/// How to split the data into training, validation and test.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SplitSpec {
    /// Whole batch files: e.g. train `[1]`, validation `[2]` (1-based file numbers); test is `test_batch`.
    Batches {
        /// Training batch numbers (1..=5).
        train: Vec<usize>,
        /// Validation batch numbers (1..=5).
        validation: Vec<usize>,
    },
    /// All five training batches, minus `n_validation` images drawn at random with `seed` for validation.
    HoldOut {
        /// Validation images taken out of the 50000.
        n_validation: usize,
        /// Seed of the draw.
        seed: u64,
    },
}

/// A normalised split: one sample per row.
#[derive(Clone, Debug)]
pub struct Dataset<T> {
    /// `n x 3072`, z-scored with the training split's statistics.
    pub images: Array2<T>,
    /// One label 0..9 per row.
    pub labels: Vec<u8>,
}

/// Training, validation and test sets, normalised with the training statistics.
#[derive(Clone, Debug)]
pub struct Splits<T> {
    /// Training set.
    pub train: Dataset<T>,
    /// Validation set.
    pub validation: Dataset<T>,
    /// Test set.
    pub test: Dataset<T>,
}

/// Load and validate `dir/cifar-10-batches-bin/` (or `dir` itself if it holds the batch files).
pub fn load_dir(dir: &Path) -> Result<Cifar10, CifarError> {
    let _ = dir;
    todo!("issue 2")
}

impl Cifar10 {
    /// Build the normalised splits described by `spec`.
    pub fn splits<T: Element>(&self, spec: &SplitSpec) -> Result<Splits<T>, CifarError> {
        let _ = spec;
        todo!("issue 2")
    }
}

/// Copy the rows `indices` of `images` into `out` (a preallocated mini-batch buffer).
///
/// **Panics** if `out` has not `indices.len()` rows of the same width.
#[track_caller]
pub fn gather_rows<T: Element>(images: &ArrayView2<'_, T>, indices: &[usize], out: &mut Array2<T>) {
    assert_eq!(
        out.dim(),
        (indices.len(), images.ncols()),
        "mini-batch buffer shape"
    );
    for (mut dst, &idx) in out.rows_mut().into_iter().zip(indices) {
        dst.assign(&images.row(idx));
    }
}

/// A seeded, reshuffled order of `0..n` cut into mini-batches of `batch_size`
/// (the last one shorter when `batch_size` does not divide `n`). Only the
/// index order is shuffled: the data itself is never copied per epoch.
#[derive(Clone, Debug)]
pub struct MiniBatches {
    order: Vec<usize>,
    batch_size: usize,
}

impl MiniBatches {
    /// The identity order of `0..n`; call [`MiniBatches::shuffle`] before each epoch.
    ///
    /// **Panics** if `batch_size == 0`.
    pub fn new(n: usize, batch_size: usize) -> Self {
        assert!(batch_size > 0, "batch_size must be positive");
        Self {
            order: (0..n).collect(),
            batch_size,
        }
    }

    /// Reshuffle the order (Fisher-Yates) with `rng`.
    pub fn shuffle<R: rand::Rng>(&mut self, rng: &mut R) {
        use rand::seq::SliceRandom;
        self.order.shuffle(rng);
    }

    /// Number of mini-batches per epoch.
    pub fn n_batches(&self) -> usize {
        self.order.len().div_ceil(self.batch_size)
    }

    /// The mini-batches of the current order, as index slices.
    pub fn iter(&self) -> std::slice::Chunks<'_, usize> {
        self.order.chunks(self.batch_size)
    }
}
