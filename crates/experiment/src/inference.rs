//! Using trained weights: `cargo xtask evaluate` (one network or an ensemble
//! on a split, with per-class accuracy and a confusion matrix) and
//! `cargo xtask predict` (the top classes of a picture or a test image).
//!
//! A weights file carries the network, the input statistics it was trained
//! with and the run's config (see [`mlp::weights`]). Before a network is
//! applied to a split, the statistics that split's config gives on the data
//! at hand are recomputed and must equal the stored ones: otherwise the
//! network would see inputs scaled differently from its training (other
//! data, or another split), and the command refuses with a message.

use std::path::{Path, PathBuf};

use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use cifar::{FeatureStats, SplitSpec, CLASS_NAMES, IMAGE_BYTES};
use mlp::Mlp;

use crate::data::DataSource;
use crate::ensemble::{self, Scores};
use crate::{io, plot, ExperimentError, Result};

/// Which images `evaluate` scores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvalSplit {
    /// `test_batch.bin`.
    Test,
    /// The validation rows of the run's split.
    Validation,
    /// The training rows of the run's split.
    Train,
}

impl EvalSplit {
    /// The split's name as the command line and file names spell it.
    pub fn name(self) -> &'static str {
        match self {
            EvalSplit::Test => "test",
            EvalSplit::Validation => "validation",
            EvalSplit::Train => "train",
        }
    }
}

/// The part of a run's config that inference needs (the rest is ignored, so
/// weights of any config version load).
#[derive(Deserialize)]
struct RunIdentity {
    name: String,
    data: SplitSpec,
}

/// One trained network ready to use.
#[derive(Clone, Debug)]
pub struct Network {
    /// The weights file.
    pub path: PathBuf,
    /// The run's name.
    pub name: String,
    /// The split it was trained on (its statistics come from that split's training rows).
    pub split: SplitSpec,
    /// The network.
    pub model: Mlp<f32>,
    /// The input statistics it was trained with.
    pub stats: FeatureStats,
}

fn format_err(path: &Path, message: impl Into<String>) -> ExperimentError {
    ExperimentError::Format {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Loads a weights file written by a run: the network, its input statistics
/// and its config. Refuses (naming the file) a truncated or corrupt file,
/// non-finite values, a network whose input is not 3072 pixels, and files
/// without statistics or config (written by older versions: train again).
pub fn load_network(path: &Path) -> Result<Network> {
    let saved = mlp::weights::load(path)?;
    if saved.model.n_input() != IMAGE_BYTES || saved.model.n_classes() != CLASS_NAMES.len() {
        return Err(format_err(
            path,
            format!(
                "the network maps {} inputs to {} classes; CIFAR-10 needs {IMAGE_BYTES} to {}",
                saved.model.n_input(),
                saved.model.n_classes(),
                CLASS_NAMES.len()
            ),
        ));
    }
    let Some(inputs) = saved.inputs else {
        return Err(format_err(
            path,
            "holds no input statistics (written before they were stored): train the run again",
        ));
    };
    let Some(config) = saved.metadata.get("config") else {
        return Err(format_err(path, "holds no run config in its metadata"));
    };
    let identity: RunIdentity = toml::from_str(config).map_err(|e| {
        format_err(
            path,
            format!("its config metadata is not a run config: {e}"),
        )
    })?;
    Ok(Network {
        path: path.to_path_buf(),
        name: identity.name,
        split: identity.data,
        model: saved.model,
        stats: FeatureStats {
            mean: inputs.mean,
            std: inputs.std,
            n: 0,
        },
    })
}

/// Statistics equal as the network sees them (the image count is not stored).
fn same_stats(a: &FeatureStats, b: &FeatureStats) -> bool {
    a.mean == b.mean && a.std == b.std
}

/// What `evaluate` found.
#[derive(Clone, Debug)]
pub struct Evaluated {
    /// The split scored.
    pub split: EvalSplit,
    /// Images scored.
    pub n_images: usize,
    /// The networks averaged, in order.
    pub networks: Vec<PathBuf>,
    /// Accuracy, loss and confusion matrix of the (averaged) prediction.
    pub scores: Scores,
    /// Each network's own accuracy on the split, in order (an ensemble's
    /// members beside the ensemble).
    pub member_accuracy: Vec<f64>,
    /// Where the CSV files and pictures were written.
    pub out_dir: PathBuf,
}

impl Evaluated {
    /// What `cargo xtask evaluate` prints: accuracy and loss (and each
    /// member's accuracy for an ensemble), per-class accuracy, where the files went.
    pub fn summary(&self) -> String {
        let mut lines: Vec<String> = Vec::new();
        let s = &self.scores;
        lines.push(format!(
            "{} network{} on the {} split ({} images): accuracy {:.4}, loss {:.4}",
            self.networks.len(),
            if self.networks.len() == 1 {
                ""
            } else {
                "s averaged"
            },
            self.split.name(),
            self.n_images,
            s.accuracy,
            s.loss
        ));
        if self.networks.len() > 1 {
            for (path, acc) in self.networks.iter().zip(&self.member_accuracy) {
                lines.push(format!("  alone: {acc:.4}  {}", path.display()));
            }
        }
        let per_class: Vec<String> = cifar::CLASS_NAMES
            .iter()
            .zip(s.per_class_accuracy())
            .map(|(name, acc)| format!("{name} {acc:.3}"))
            .collect();
        lines.push(format!("per class: {}", per_class.join(", ")));
        lines.push(format!(
            "-> {} (per-class.csv, confusion.csv, confusion.svg, confusion.png)",
            self.out_dir.display()
        ));
        lines.iter().map(|l| format!("{l}\n")).collect()
    }
}

/// One row of `per-class.csv`.
#[derive(Serialize, Deserialize)]
struct ClassRow {
    class: String,
    images: u64,
    correct: u64,
    accuracy: f64,
}

/// `cargo xtask evaluate WEIGHTS... --split S`: scores the average of the
/// networks' softmax outputs on split `split` of `data`, and writes
/// `per-class.csv`, `confusion.csv`, `confusion.svg` and `confusion.png` to
/// `out_dir`. Every network must have been trained on the same split as the
/// first (so "validation" means the same rows for all) with the statistics
/// that split gives on this data.
pub fn evaluate(
    weights: &[PathBuf],
    split: EvalSplit,
    data: &DataSource,
    out_dir: &Path,
) -> Result<Evaluated> {
    let Some(first) = weights.first() else {
        return Err(ExperimentError::Missing {
            path: PathBuf::from("WEIGHTS"),
            hint: "name at least one weights.safetensors file".to_string(),
        });
    };
    let networks = weights
        .iter()
        .map(|p| load_network(p))
        .collect::<Result<Vec<_>>>()?;
    let spec = networks[0].split.clone();
    if let Some(other) = networks.iter().find(|n| n.split != spec) {
        return Err(ExperimentError::Conflict {
            path: other.path.clone(),
            message: format!(
                "was trained on the split {:?}, {} on {:?}: evaluate networks of one split together",
                other.split,
                first.display(),
                spec
            ),
        });
    }
    let splits = data.splits(&spec)?;
    for network in &networks {
        if !same_stats(&network.stats, &splits.stats) {
            return Err(ExperimentError::Conflict {
                path: network.path.clone(),
                message: format!(
                    "was trained with other normalisation statistics than the data in {} gives \
                     for its split: the data changed since (compare the run's data fingerprint \
                     with `cargo xtask fetch-data --data-dir {}`), or this is another data dir",
                    data.dir().display(),
                    data.dir().display()
                ),
            });
        }
    }
    let set = match split {
        EvalSplit::Test => &splits.test,
        EvalSplit::Validation => &splits.validation,
        EvalSplit::Train => &splits.train,
    };
    if set.is_empty() {
        return Err(ExperimentError::Data(cifar::CifarError::BadSplit {
            message: format!("the {} split of {:?} has no image", split.name(), spec),
        }));
    }
    let models: Vec<Mlp<f32>> = networks.iter().map(|n| n.model.clone()).collect();
    let images = mlp::Features::Rows(set);
    let probabilities = ensemble::average_probabilities(&models, &images);
    let scores = ensemble::score(&probabilities.view(), set.labels());
    let member_accuracy = if models.len() > 1 {
        models
            .iter()
            .map(|m| m.evaluate_features(&images, set.labels(), 0.0).accuracy)
            .collect()
    } else {
        vec![scores.accuracy]
    };
    write_evaluation(&scores, split, weights.len(), out_dir)?;
    Ok(Evaluated {
        split,
        n_images: set.len(),
        networks: weights.to_vec(),
        scores,
        member_accuracy,
        out_dir: out_dir.to_path_buf(),
    })
}

/// The CSV files and the confusion-matrix picture of an evaluation.
fn write_evaluation(scores: &Scores, split: EvalSplit, n: usize, out_dir: &Path) -> Result<()> {
    let names: Vec<String> = CLASS_NAMES.iter().map(|s| s.to_string()).collect();
    let rows: Vec<ClassRow> = scores
        .confusion
        .rows()
        .into_iter()
        .enumerate()
        .map(|(c, row)| ClassRow {
            class: names[c].clone(),
            images: row.sum(),
            correct: row[c],
            accuracy: row[c] as f64 / row.sum().max(1) as f64,
        })
        .collect();
    io::write_csv(&out_dir.join("per-class.csv"), &rows)?;
    io::write_atomic(
        &out_dir.join("confusion.csv"),
        confusion_csv(&scores.confusion, &names).as_bytes(),
    )?;
    let title = format!(
        "{} split, {} network{}: accuracy {:.4}",
        split.name(),
        n,
        if n == 1 { "" } else { "s averaged" },
        scores.accuracy
    );
    plot::confusion_svg(
        &scores.confusion,
        &names,
        &title,
        &out_dir.join("confusion.svg"),
    )?;
    plot::confusion_png(
        &scores.confusion,
        &names,
        &title,
        &out_dir.join("confusion.png"),
    )
}

/// `true_class,<class 0>,...`: one row per true class, counts per predicted class.
fn confusion_csv(confusion: &Array2<u64>, names: &[String]) -> String {
    let mut out = format!("true_class,{}\n", names.join(","));
    for (c, row) in confusion.rows().into_iter().enumerate() {
        let counts: Vec<String> = row.iter().map(u64::to_string).collect();
        out.push_str(&format!("{},{}\n", names[c], counts.join(",")));
    }
    out
}

/// The classes a network (or ensemble) gives one image, most likely first.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// What was asked about (a file, or `test image N`).
    pub source: String,
    /// Every class index with its (averaged) probability, most likely first.
    pub ranked: Vec<(usize, f64)>,
    /// The true class, when the image comes from the test set.
    pub true_label: Option<u8>,
}

impl Prediction {
    /// The `top` classes as `cargo xtask predict` prints them:
    /// `SOURCE [true: CLASS]: 1. CLASS 0.412  2. ...`
    pub fn describe(&self, top: usize) -> String {
        let name = |c: usize| cifar::CLASS_NAMES[c];
        let truth = self
            .true_label
            .map_or(String::new(), |l| format!(" (true: {})", name(l as usize)));
        let ranked: Vec<String> = self
            .ranked
            .iter()
            .take(top)
            .enumerate()
            .map(|(i, (c, prob))| format!("{}. {} {prob:.3}", i + 1, name(*c)))
            .collect();
        format!("{}{truth}: {}", self.source, ranked.join("  "))
    }
}

/// The averaged probabilities of `networks` for raw images (`n` rows of
/// 3072 bytes), each network normalising them with its own stored statistics.
pub fn probabilities_of_raw(networks: &[Network], raw: &[&[u8]]) -> Array2<f64> {
    let mut sum = Array2::<f64>::zeros((raw.len(), CLASS_NAMES.len()));
    for network in networks {
        let inputs: Array2<f32> = network.stats.normalise(raw);
        sum += &ensemble::average_probabilities(
            std::slice::from_ref(&network.model),
            &inputs.view().into(),
        );
    }
    sum / networks.len() as f64
}

/// Each row of `probabilities` as a ranking, most likely first (ties: lower class first).
fn rank(probabilities: &ArrayView2<'_, f64>) -> Vec<Vec<(usize, f64)>> {
    probabilities
        .rows()
        .into_iter()
        .map(|row| {
            let mut ranked: Vec<(usize, f64)> = row.iter().copied().enumerate().collect();
            ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            ranked
        })
        .collect()
}

/// `cargo xtask predict WEIGHTS... IMAGE...`: each picture (PNG or JPEG,
/// cropped and resized to 32x32 as [`cifar::picture`] says) through the
/// networks.
pub fn predict_pictures(networks: &[Network], pictures: &[PathBuf]) -> Result<Vec<Prediction>> {
    let images = pictures
        .iter()
        .map(|p| {
            cifar::picture::read_picture(p).map_err(|e| ExperimentError::Format {
                path: p.clone(),
                message: e.to_string(),
            })
        })
        .collect::<Result<Vec<Vec<u8>>>>()?;
    let raw: Vec<&[u8]> = images.iter().map(Vec::as_slice).collect();
    let probabilities = probabilities_of_raw(networks, &raw);
    Ok(pictures
        .iter()
        .zip(rank(&probabilities.view()))
        .map(|(p, ranked)| Prediction {
            source: p.display().to_string(),
            ranked,
            true_label: None,
        })
        .collect())
}

/// `cargo xtask predict WEIGHTS... --test-index N`: test image `index`
/// through the networks, with its true label.
pub fn predict_test_image(
    networks: &[Network],
    data: &DataSource,
    index: usize,
) -> Result<Prediction> {
    let raw = data.raw()?;
    if index >= raw.test.len() {
        return Err(ExperimentError::Data(cifar::CifarError::BadSplit {
            message: format!(
                "--test-index {index} is out of range: the test set has {} images (0..={})",
                raw.test.len(),
                raw.test.len().saturating_sub(1)
            ),
        }));
    }
    let probabilities = probabilities_of_raw(networks, &[raw.test.image(index)]);
    Ok(Prediction {
        source: format!("test image {index}"),
        ranked: rank(&probabilities.view()).remove(0),
        true_label: Some(raw.test.labels[index]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confusion_csv_has_a_header_and_one_row_per_class() {
        let names = vec!["a".to_string(), "b".to_string()];
        let csv = confusion_csv(&ndarray::array![[3, 1], [0, 4]], &names);
        assert_eq!(csv, "true_class,a,b\na,3,1\nb,0,4\n");
    }

    #[test]
    fn ranking_is_most_likely_first_with_ties_by_class() {
        let p = ndarray::array![[0.1, 0.4, 0.1, 0.4]];
        let ranked = rank(&p.view());
        let order: Vec<usize> = ranked[0].iter().map(|r| r.0).collect();
        assert_eq!(order, vec![1, 3, 0, 2]);
    }
}
