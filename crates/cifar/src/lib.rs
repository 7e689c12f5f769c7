//! CIFAR-10 binary data: a strict reader, the standard splits, per-feature
//! normalisation fitted on the training split only, and seeded mini-batching.
//!
//! Raw pixels stay `u8` (184 MB for all 60000 images) and are loaded once per
//! process ([`load_dir`], or [`load_shared`] for one copy shared by every run of
//! a process). Training reads them through [`Cifar10::image_splits`]: each row
//! is normalised as it is read, no normalised copy is kept; whole normalised
//! `f32`/`f64` matrices are made on demand by [`Cifar10::splits`] (gradient
//! checks, tests).
//!
//! The pieces, one module each:
//! - `format`: the binary format (label byte + 3072 pixel bytes per record),
//!   strict validation, [`load_dir`];
//! - `split`: which rows go to training / validation ([`SplitSpec`]), with a
//!   portable seeded draw (ChaCha8, own bounded sampling);
//! - `normalise`: exact per-feature statistics ([`FeatureStats`]) and the
//!   z-scoring into `f32`/`f64`, on both cores, bit-identical for any thread count,
//!   and the same map one row or one batch at a time ([`Normaliser`]);
//! - `images`: a split as references to the raw images ([`ImageSet`]);
//! - [`stamp`] and `checksum`: the data dir's fingerprint ([`data_checksum`])
//!   and the stamp `cargo xtask fetch-data` writes beside the files;
//! - [`picture`]: PNG / JPEG files to and from one image's 3072 bytes;
//! - `synthetic`: small generated data sets and a writer of the on-disk
//!   format, for tests here and in other crates.

mod checksum;
#[cfg(feature = "fetch")]
pub mod fetch;
mod format;
mod images;
mod normalise;
pub mod picture;
mod split;
pub mod stamp;
mod synthetic;

use std::path::PathBuf;

use ndarray::{Array2, ArrayView2};
use tensor::Element;

pub use checksum::{compute_data_checksum, data_checksum, DataDigest, FileDigest};
pub use format::{
    batches_dir, check_data_files, data_file_problem, load_dir, load_dir_digest, load_dir_with,
    load_shared, load_shared_digest, load_shared_with, parse_batch, read_batch_file,
    read_batch_files, read_class_names, repair_command, LoadOptions,
};
pub use images::{ImageSet, ImageSplits};
pub use normalise::{FeatureStats, Normaliser};
pub use split::SplitIndices;
pub use synthetic::CLASS_NAMES;

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
/// Name of the class-name file (one name per line, label order).
pub const META_FILE: &str = "batches.meta.txt";
/// Every file a complete data dir must hold, in the order used for checksums.
pub const DATA_FILES: [&str; 7] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
    "test_batch.bin",
    "batches.meta.txt",
];

/// Everything that can go wrong reading CIFAR-10; each names the file (or dir)
/// and what to do.
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
    /// No data (or only part of it) in the data dir; the message names the
    /// exact `cargo xtask fetch-data` command that gets it.
    #[error("{message}")]
    MissingData {
        /// The data dir that was searched.
        dir: PathBuf,
        /// What is missing and which command to run.
        message: String,
    },
    /// A split that cannot be made from the data (bad batch numbers, too many
    /// validation images, ...).
    #[error("invalid split: {message}")]
    BadSplit {
        /// What is wrong.
        message: String,
    },
}

/// Raw images and labels from one or more batch files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawImages {
    /// `n * IMAGE_BYTES` bytes, record after record, in file plane order (R, G, B).
    pub pixels: Vec<u8>,
    /// One label 0..9 per image.
    pub labels: Vec<u8>,
}

impl RawImages {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there is no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The 3072 bytes of image `i` (R plane, G plane, B plane).
    ///
    /// **Panics** if `i >= self.len()`.
    pub fn image(&self, i: usize) -> &[u8] {
        &self.pixels[i * IMAGE_BYTES..(i + 1) * IMAGE_BYTES]
    }

    /// Pixel `(channel, row, col)` of image `i` (channel 0 = red, 1 = green, 2 = blue).
    ///
    /// **Panics** if an index is out of range.
    pub fn pixel(&self, i: usize, channel: usize, row: usize, col: usize) -> u8 {
        assert!(
            channel < 3 && row < 32 && col < 32,
            "pixel index out of range"
        );
        self.image(i)[channel * 1024 + row * 32 + col]
    }

    /// Check the shapes and the labels; `what` names the data in the error.
    fn check(&self, what: &str) -> Result<(), CifarError> {
        let invalid = |message: String| CifarError::Invalid {
            path: PathBuf::from(what),
            message,
        };
        if self.pixels.len() != self.labels.len() * IMAGE_BYTES {
            return Err(invalid(format!(
                "{} pixel bytes for {} labels (expected {} per image)",
                self.pixels.len(),
                self.labels.len(),
                IMAGE_BYTES
            )));
        }
        if let Some((i, &l)) = self
            .labels
            .iter()
            .enumerate()
            .find(|(_, &l)| usize::from(l) >= N_CLASSES)
        {
            return Err(invalid(format!(
                "image {i}: label {l} is out of range 0..{}",
                N_CLASSES - 1
            )));
        }
        Ok(())
    }
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

impl<T: Element> Dataset<T> {
    /// Number of samples (rows).
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the set has no sample.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The labels as an `n x 10` one-hot matrix (for losses that want it).
    pub fn one_hot(&self) -> Array2<T> {
        one_hot(&self.labels)
    }

    /// A new set holding the rows `indices` (in that order), e.g. the first
    /// 100 images for a sanity check.
    ///
    /// **Panics** if an index is out of range.
    pub fn select(&self, indices: &[usize]) -> Dataset<T> {
        let mut images = Array2::zeros((indices.len(), self.images.ncols()));
        gather_rows(&self.images.view(), indices, &mut images);
        Dataset {
            images,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
        }
    }
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
    /// The training split's statistics all three sets were z-scored with
    /// (saved with trained weights, so they can be applied to raw pixels).
    pub stats: FeatureStats,
}

/// Labels as an `n x 10` one-hot matrix: row `i` is 1 at column `labels[i]`, 0 elsewhere.
///
/// **Panics** if a label is not below [`N_CLASSES`].
pub fn one_hot<T: Element>(labels: &[u8]) -> Array2<T> {
    let mut out = Array2::zeros((labels.len(), N_CLASSES));
    for (i, &l) in labels.iter().enumerate() {
        assert!(usize::from(l) < N_CLASSES, "label {l} out of range");
        out[(i, usize::from(l))] = T::one();
    }
    out
}

impl Cifar10 {
    /// Assemble a data set from raw batches (e.g. generated in a test),
    /// checking shapes and labels. `class_names` must hold 10 names.
    pub fn from_parts(
        train_batches: Vec<RawImages>,
        test: RawImages,
        class_names: Vec<String>,
    ) -> Result<Self, CifarError> {
        for (b, batch) in train_batches.iter().enumerate() {
            batch.check(&format!("training batch {}", b + 1))?;
        }
        test.check("test batch")?;
        if class_names.len() != N_CLASSES {
            return Err(CifarError::Invalid {
                path: PathBuf::from("class names"),
                message: format!(
                    "expected {N_CLASSES} class names, got {}",
                    class_names.len()
                ),
            });
        }
        Ok(Self {
            train_batches,
            test,
            class_names,
        })
    }

    /// Number of images over all training batches (50000 for the real data).
    pub fn n_train_images(&self) -> usize {
        self.train_batches.iter().map(RawImages::len).sum()
    }

    /// Training image `g` of the virtual concatenation of the training batches
    /// (batch 1's images first), with its label.
    ///
    /// **Panics** if `g >= self.n_train_images()`.
    pub fn train_image(&self, g: usize) -> (&[u8], u8) {
        let mut g = g;
        for batch in &self.train_batches {
            if g < batch.len() {
                return (batch.image(g), batch.labels[g]);
            }
            g -= batch.len();
        }
        panic!("training image index out of range");
    }

    /// Which training images (indices into the concatenated training batches)
    /// form the training and the validation split of `spec`. Test is always
    /// the whole test batch.
    pub fn split_indices(&self, spec: &SplitSpec) -> Result<SplitIndices, CifarError> {
        split::indices(self, spec)
    }

    /// Per-feature mean/std (in `[0, 1]` pixel units) of the training images
    /// `indices` (as returned in [`SplitIndices::train`]).
    ///
    /// **Panics** if an index is out of range.
    pub fn feature_stats(&self, indices: &[usize]) -> FeatureStats {
        let rows = self.train_rows(indices);
        FeatureStats::from_rows(&rows)
    }

    /// The training images `indices`, z-scored with `stats`.
    ///
    /// **Panics** if an index is out of range.
    pub fn train_dataset<T: Element>(&self, indices: &[usize], stats: &FeatureStats) -> Dataset<T> {
        let rows = self.train_rows(indices);
        Dataset {
            images: stats.normalise(&rows),
            labels: indices.iter().map(|&g| self.train_image(g).1).collect(),
        }
    }

    /// The test batch, z-scored with `stats`.
    pub fn test_dataset<T: Element>(&self, stats: &FeatureStats) -> Dataset<T> {
        let rows: Vec<&[u8]> = self.test.pixels.chunks_exact(IMAGE_BYTES).collect();
        Dataset {
            images: stats.normalise(&rows),
            labels: self.test.labels.clone(),
        }
    }

    /// Build the normalised splits described by `spec`: statistics from the
    /// training split only, applied to all three.
    pub fn splits<T: Element>(&self, spec: &SplitSpec) -> Result<Splits<T>, CifarError> {
        let idx = self.split_indices(spec)?;
        let stats = self.feature_stats(&idx.train);
        Ok(Splits {
            train: self.train_dataset(&idx.train, &stats),
            validation: self.train_dataset(&idx.validation, &stats),
            test: self.test_dataset(&stats),
            stats,
        })
    }

    /// Pixel slices of the training images `indices`.
    fn train_rows(&self, indices: &[usize]) -> Vec<&[u8]> {
        let offsets = self.batch_offsets();
        indices
            .iter()
            .map(|&g| {
                assert!(
                    g < *offsets.last().unwrap_or(&0),
                    "training image index out of range"
                );
                // Index of the batch holding g: the last offset <= g.
                let b = offsets.partition_point(|&o| o <= g) - 1;
                self.train_batches[b].image(g - offsets[b])
            })
            .collect()
    }

    /// Start of each training batch in the concatenation, plus the total at the end.
    fn batch_offsets(&self) -> Vec<usize> {
        let mut offsets = Vec::with_capacity(self.train_batches.len() + 1);
        let mut acc = 0;
        offsets.push(0);
        for b in &self.train_batches {
            acc += b.len();
            offsets.push(acc);
        }
        offsets
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
        let src = images.row(idx);
        // Contiguous rows (the normal case) copy as one memcpy; strided views
        // fall back to an element-wise assign.
        if let (Some(dst), Some(src)) = (dst.as_slice_mut(), src.as_slice()) {
            dst.copy_from_slice(src);
            continue;
        }
        dst.assign(&src);
    }
}

#[cfg(test)]
mod tests;
