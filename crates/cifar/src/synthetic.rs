//! Small generated data sets in the real format, for tests here and in the
//! other crates (no test needs the real data): random pixels, random labels,
//! and a writer of the on-disk layout.

use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{
    Cifar10, CifarError, RawImages, BATCHES_DIR, IMAGE_BYTES, META_FILE, N_CLASSES, RECORD_BYTES,
    TEST_FILE, TRAIN_FILES,
};

/// The official class names, in label order.
pub const CLASS_NAMES: [&str; N_CLASSES] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

impl RawImages {
    /// `n` images of uniformly random pixels and labels from `rng`.
    pub fn random<R: Rng>(n: usize, rng: &mut R) -> Self {
        let mut pixels = vec![0u8; n * IMAGE_BYTES];
        rng.fill_bytes(&mut pixels);
        let labels = (0..n)
            .map(|_| rng.random_range(0..N_CLASSES as u8))
            .collect();
        Self { pixels, labels }
    }

    /// The bytes of a batch file holding these images (label byte, then the
    /// 3072 pixel bytes, per record).
    pub fn to_file_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len() * RECORD_BYTES);
        for (i, &l) in self.labels.iter().enumerate() {
            out.push(l);
            out.extend_from_slice(self.image(i));
        }
        out
    }
}

impl Cifar10 {
    /// A small random data set: five training batches of `per_batch` images
    /// and a test batch of `n_test`, all drawn from `seed`.
    pub fn synthetic(per_batch: usize, n_test: usize, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let train_batches = (0..TRAIN_FILES.len())
            .map(|_| RawImages::random(per_batch, &mut rng))
            .collect();
        let test = RawImages::random(n_test, &mut rng);
        Self {
            train_batches,
            test,
            class_names: CLASS_NAMES.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Write the data set in the standard layout under `data_dir`
    /// (`data_dir/cifar-10-batches-bin/*.bin` and `batches.meta.txt`) and
    /// return that batches dir. Needs exactly five training batches.
    pub fn write_dir(&self, data_dir: &Path) -> Result<PathBuf, CifarError> {
        if self.train_batches.len() != TRAIN_FILES.len() {
            return Err(CifarError::Invalid {
                path: data_dir.to_path_buf(),
                message: format!(
                    "the on-disk layout needs {} training batches, this data set has {}",
                    TRAIN_FILES.len(),
                    self.train_batches.len()
                ),
            });
        }
        let dir = data_dir.join(BATCHES_DIR);
        let write = |name: &str, bytes: &[u8]| {
            let path = dir.join(name);
            std::fs::write(&path, bytes).map_err(|source| CifarError::Io { path, source })
        };
        std::fs::create_dir_all(&dir).map_err(|source| CifarError::Io {
            path: dir.clone(),
            source,
        })?;
        for (name, batch) in TRAIN_FILES.iter().zip(&self.train_batches) {
            write(name, &batch.to_file_bytes())?;
        }
        write(TEST_FILE, &self.test.to_file_bytes())?;
        let mut meta = self.class_names.join("\n");
        meta.push_str("\n\n");
        write(META_FILE, meta.as_bytes())?;
        Ok(dir)
    }
}
