//! A split kept as the raw bytes it was loaded as: which images (by
//! reference into the shared [`Cifar10`]), their labels and the
//! [`Normaliser`] of the training statistics. Training and evaluation
//! normalise rows as they gather a batch or a block, so a process holds the
//! `u8` pixels once (about 184 MB for all 60000 images) instead of an `f32`
//! copy of every split (4x that).

use std::sync::Arc;

use crate::{Cifar10, CifarError, FeatureStats, Normaliser, RawImages, SplitSpec};

/// One split (training, validation or test) as references to raw images.
#[derive(Clone, Debug)]
pub struct ImageSet {
    data: Arc<Cifar10>,
    /// `(source, row)` per image: source `b < 5` is training batch `b`, the
    /// one past the last training batch is the test batch.
    rows: Vec<(u32, u32)>,
    labels: Vec<u8>,
    normaliser: Arc<Normaliser>,
}

impl ImageSet {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the split has no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// One label 0..9 per image.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// The 3072 raw bytes of image `i`.
    ///
    /// **Panics** if `i >= self.len()`.
    pub fn pixels(&self, i: usize) -> &[u8] {
        let (source, row) = self.rows[i];
        self.source(source).image(row as usize)
    }

    /// Image `i` z-scored with the training statistics into `dst` (3072
    /// values): bit for bit the row [`Cifar10::splits`] would hold.
    ///
    /// **Panics** if `i >= self.len()` or `dst` is too short.
    pub fn normalise_into(&self, i: usize, dst: &mut [f32]) {
        self.normaliser.row_f32(self.pixels(i), dst);
    }

    /// Images `indices` (any order, repeats allowed) z-scored into `dst`,
    /// one row of 3072 after the other: the rows
    /// [`ImageSet::normalise_into`] writes, bit for bit, filled by
    /// [`Normaliser::rows_f32`] (cheaper per row for a batch or a block).
    ///
    /// **Panics** if an index is out of range or `dst` is not
    /// `indices.len() * 3072` long.
    pub fn normalise_rows_into(&self, indices: &[usize], dst: &mut [f32]) {
        let srcs: Vec<&[u8]> = indices.iter().map(|&i| self.pixels(i)).collect();
        self.normaliser.rows_f32(&srcs, dst);
    }

    /// The map from raw bytes to features this split is read with.
    pub fn normaliser(&self) -> &Normaliser {
        &self.normaliser
    }

    fn source(&self, source: u32) -> &RawImages {
        let batches = &self.data.train_batches;
        match batches.get(source as usize) {
            Some(batch) => batch,
            None => &self.data.test,
        }
    }
}

/// Training, validation and test as raw images, all read with the
/// training split's statistics.
#[derive(Clone, Debug)]
pub struct ImageSplits {
    /// Training set.
    pub train: ImageSet,
    /// Validation set.
    pub validation: ImageSet,
    /// Test set.
    pub test: ImageSet,
    /// The training split's statistics (saved with trained weights).
    pub stats: FeatureStats,
}

impl Cifar10 {
    /// The splits of `spec` without a normalised copy: the same images,
    /// labels and statistics as [`Cifar10::splits`], each row normalised
    /// when it is read ([`ImageSet::normalise_into`]).
    pub fn image_splits(self: &Arc<Self>, spec: &SplitSpec) -> Result<ImageSplits, CifarError> {
        let idx = self.split_indices(spec)?;
        let stats = self.feature_stats(&idx.train);
        let normaliser = Arc::new(Normaliser::new(&stats));
        let offsets = self.batch_offsets();
        let set = |rows: Vec<(u32, u32)>| ImageSet {
            labels: rows
                .iter()
                .map(|&(source, row)| {
                    let batch = self.train_batches.get(source as usize);
                    batch.unwrap_or(&self.test).labels[row as usize]
                })
                .collect(),
            rows,
            data: self.clone(),
            normaliser: normaliser.clone(),
        };
        let train_rows = |indices: &[usize]| -> Vec<(u32, u32)> {
            indices
                .iter()
                .map(|&g| {
                    // Index of the batch holding g: the last offset <= g.
                    let b = offsets.partition_point(|&o| o <= g) - 1;
                    (b as u32, (g - offsets[b]) as u32)
                })
                .collect()
        };
        let test_source = self.train_batches.len() as u32;
        Ok(ImageSplits {
            train: set(train_rows(&idx.train)),
            validation: set(train_rows(&idx.validation)),
            test: set((0..self.test.len() as u32)
                .map(|r| (test_source, r))
                .collect()),
            stats,
        })
    }
}
