//! Which training images go to the training and the validation split.
//!
//! Indices are positions in the concatenation of the training batches (batch
//! 1's images first). The hold-out draw is portable and stable: a ChaCha8
//! stream seeded with `seed_from_u64` (both value-stable by contract of
//! `rand_core`/`rand_chacha`) and our own unbiased bounded sampling (Lemire's
//! multiply-and-reject on `u64`), so the same seed gives the same split on
//! every platform and rand release.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{Cifar10, CifarError, SplitSpec};

/// Training and validation rows of a split, as sorted indices into the
/// concatenated training batches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitIndices {
    /// Rows of the training split, ascending.
    pub train: Vec<usize>,
    /// Rows of the validation split, ascending.
    pub validation: Vec<usize>,
}

/// Resolve `spec` against the batch sizes of `data`.
pub(crate) fn indices(data: &Cifar10, spec: &SplitSpec) -> Result<SplitIndices, CifarError> {
    let bad = |message: String| CifarError::BadSplit { message };
    let n_batches = data.train_batches.len();
    let offsets = data.batch_offsets();
    match spec {
        SplitSpec::Batches { train, validation } => {
            if train.is_empty() {
                return Err(bad("the training split needs at least one batch".into()));
            }
            let mut seen = Vec::new();
            for &b in train.iter().chain(validation) {
                if b == 0 || b > n_batches {
                    return Err(bad(format!(
                        "batch number {b} is out of range 1..={n_batches}"
                    )));
                }
                if seen.contains(&b) {
                    return Err(bad(format!(
                        "batch {b} is listed twice (train {train:?}, validation {validation:?}); \
                         the splits must be disjoint"
                    )));
                }
                seen.push(b);
            }
            let rows = |batches: &[usize]| -> Vec<usize> {
                let mut v: Vec<usize> = batches
                    .iter()
                    .flat_map(|&b| offsets[b - 1]..offsets[b])
                    .collect();
                v.sort_unstable();
                v
            };
            Ok(SplitIndices {
                train: rows(train),
                validation: rows(validation),
            })
        }
        SplitSpec::HoldOut { n_validation, seed } => {
            let n = data.n_train_images();
            if *n_validation >= n {
                return Err(bad(format!(
                    "n_validation = {n_validation} leaves no training image (there are {n})"
                )));
            }
            let mut perm: Vec<usize> = (0..n).collect();
            let mut rng = ChaCha8Rng::seed_from_u64(*seed);
            // Partial Fisher-Yates: the first n_validation slots become a uniform sample.
            for i in 0..*n_validation {
                let j = i + bounded(&mut rng, (n - i) as u64) as usize;
                perm.swap(i, j);
            }
            let mut validation = perm[..*n_validation].to_vec();
            validation.sort_unstable();
            let mut train = perm[*n_validation..].to_vec();
            train.sort_unstable();
            Ok(SplitIndices { train, validation })
        }
    }
}

/// A uniform draw from `0..range` (`range > 0`), unbiased (Lemire 2019).
pub(crate) fn bounded<R: RngCore>(rng: &mut R, range: u64) -> u64 {
    debug_assert!(range > 0);
    let threshold = range.wrapping_neg() % range;
    loop {
        let m = u128::from(rng.next_u64()) * u128::from(range);
        if (m as u64) >= threshold {
            return (m >> 64) as u64;
        }
    }
}
