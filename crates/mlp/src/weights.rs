//! Trained weights as safetensors (W1, b1, W2, b2) with string metadata
//! (the resolved config), and the input statistics the network was trained
//! with (`input_mean`, `input_std`, f64), so a weights file is all a user
//! needs to apply the network to raw inputs. Written atomically; non-finite
//! values are refused on load.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use ndarray::{Array1, Array2};
use safetensors::{Dtype, SafeTensors};

use crate::Mlp;

/// Tensor names in the file, in order.
pub const TENSOR_NAMES: [&str; 4] = ["W1", "b1", "W2", "b2"];
/// Names of the optional input-statistics tensors.
pub const INPUT_STAT_NAMES: [&str; 2] = ["input_mean", "input_std"];

/// The per-feature statistics the inputs were standardised with during
/// training: a raw input `x` (in the units the statistics use; for images,
/// `pixel / 255`) becomes `(x - mean) / std` (`std` 0: only centred).
/// Stored with the weights so the network can be applied to raw data later.
#[derive(Clone, Debug, PartialEq)]
pub struct InputStats {
    /// Mean of each input feature.
    pub mean: Vec<f64>,
    /// Standard deviation of each input feature.
    pub std: Vec<f64>,
}

/// What a weights file holds.
#[derive(Clone, Debug, PartialEq)]
pub struct Saved {
    /// The network.
    pub model: Mlp<f32>,
    /// The input statistics it was trained with (absent in files written
    /// before they were stored).
    pub inputs: Option<InputStats>,
    /// String metadata (the resolved config, the run's name, ...).
    pub metadata: BTreeMap<String, String>,
}

/// Errors saving or loading weights; each names the file.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct WeightsError {
    /// The file.
    pub path: std::path::PathBuf,
    /// What went wrong.
    pub message: String,
}

fn err(path: &Path, message: impl Into<String>) -> WeightsError {
    WeightsError {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

fn le_bytes(values: impl Iterator<Item = f32>) -> Vec<u8> {
    values.flat_map(f32::to_le_bytes).collect()
}

/// Write `model`, its input statistics and `metadata` to `path` atomically
/// (temp file, then rename).
///
/// Refuses a model with non-finite values (it could not be loaded back) and
/// input statistics that are not one finite value per input feature.
pub fn save(
    path: &Path,
    model: &Mlp<f32>,
    inputs: Option<&InputStats>,
    metadata: &BTreeMap<String, String>,
) -> Result<(), WeightsError> {
    if !model.is_finite() {
        return Err(err(
            path,
            "refusing to save a model with NaN or infinite weights",
        ));
    }
    let buffers = [
        (
            model.w1.shape().to_vec(),
            le_bytes(model.w1.iter().copied()),
        ),
        (
            model.b1.shape().to_vec(),
            le_bytes(model.b1.iter().copied()),
        ),
        (
            model.w2.shape().to_vec(),
            le_bytes(model.w2.iter().copied()),
        ),
        (
            model.b2.shape().to_vec(),
            le_bytes(model.b2.iter().copied()),
        ),
    ];
    let mut views = Vec::with_capacity(6);
    for (name, (shape, bytes)) in TENSOR_NAMES.iter().zip(&buffers) {
        let view = safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), bytes)
            .map_err(|e| err(path, format!("tensor {name}: {e}")))?;
        views.push((*name, view));
    }
    let stat_bytes: Vec<Vec<u8>> = match inputs {
        Some(stats) => {
            check_input_stats(stats, model.n_input()).map_err(|m| err(path, m))?;
            [&stats.mean, &stats.std]
                .iter()
                .map(|v| v.iter().flat_map(|x| x.to_le_bytes()).collect())
                .collect()
        }
        None => Vec::new(),
    };
    for (name, bytes) in INPUT_STAT_NAMES.iter().zip(&stat_bytes) {
        let view = safetensors::tensor::TensorView::new(Dtype::F64, vec![model.n_input()], bytes)
            .map_err(|e| err(path, format!("tensor {name}: {e}")))?;
        views.push((*name, view));
    }
    let meta: HashMap<String, String> = metadata.clone().into_iter().collect();
    let bytes = safetensors::serialize(views, &Some(meta))
        .map_err(|e| err(path, format!("cannot serialise: {e}")))?;
    write_atomic(path, &sorted_header(&bytes).map_err(|m| err(path, m))?)
}

/// The safetensors file `bytes` with its JSON header rewritten with every
/// object's keys sorted. `safetensors::serialize` takes the metadata as a
/// `HashMap`, whose order changes from one map to the next, so two saves of
/// the same model would differ in bytes; with sorted keys (serde_json's map
/// is ordered) they are identical, and a checksum of the results means
/// something. Tensor offsets are relative to the data section, so only the
/// header length (first 8 bytes) and its padding are recomputed.
fn sorted_header(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let bad = || "internal: serialised safetensors header is malformed".to_string();
    let n = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize)
        .ok_or_else(bad)?;
    let header = bytes.get(8..8 + n).ok_or_else(bad)?;
    let value: serde_json::Value = serde_json::from_slice(header).map_err(|_| bad())?;
    let mut json = serde_json::to_string(&value)
        .map_err(|_| bad())?
        .into_bytes();
    // Pad with spaces to 8 bytes, as safetensors does (data stays aligned).
    json.resize(json.len().div_ceil(8) * 8, b' ');
    let mut out = Vec::with_capacity(8 + json.len() + bytes.len() - 8 - n);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&bytes[8 + n..]);
    Ok(out)
}

/// Write `bytes` to `path` atomically ([`fileio::write_atomic`]: a
/// temporary file next to `path`, synced, then renamed over it; readers see
/// the old file or the new one, never a partial one), creating missing parent
/// folders; the error names `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), WeightsError> {
    fileio::write_atomic(path, bytes).map_err(|e| err(path, format!("cannot write: {e}")))
}

/// Input statistics must hold one finite value per input, and a std >= 0.
fn check_input_stats(stats: &InputStats, n_input: usize) -> Result<(), String> {
    for (name, values) in INPUT_STAT_NAMES.iter().zip([&stats.mean, &stats.std]) {
        if values.len() != n_input {
            return Err(format!(
                "{name} has {} values, expected one per input ({n_input})",
                values.len()
            ));
        }
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(format!("{name} holds a non-finite value at index {i}"));
        }
    }
    if let Some(i) = stats.std.iter().position(|v| *v < 0.0) {
        return Err(format!("input_std is negative at index {i}"));
    }
    Ok(())
}

/// Read weights, input statistics and metadata back; refuses a file that
/// is not safetensors (an empty or truncated file included), missing
/// tensors, wrong shapes and non-finite values, naming the file.
pub fn load(path: &Path) -> Result<Saved, WeightsError> {
    let bytes = std::fs::read(path).map_err(|e| err(path, format!("cannot read: {e}")))?;
    let (_, header) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| err(path, format!("not a safetensors file: {e:?}")))?;
    let metadata: BTreeMap<String, String> = header
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| err(path, format!("not a safetensors file: {e:?}")))?;
    let read = |name: &str| -> Result<(Vec<usize>, Vec<f32>), WeightsError> {
        let view = st.tensor(name).map_err(|_| {
            err(
                path,
                format!("tensor {name} is missing (expected W1, b1, W2, b2)"),
            )
        })?;
        if view.dtype() != Dtype::F32 {
            return Err(err(
                path,
                format!("tensor {name} is {:?}, expected F32", view.dtype()),
            ));
        }
        let values: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        if let Some(idx) = values.iter().position(|v| !v.is_finite()) {
            return Err(err(
                path,
                format!(
                    "tensor {name} holds a non-finite value ({}) at flat index {idx}",
                    values[idx]
                ),
            ));
        }
        Ok((view.shape().to_vec(), values))
    };
    let (w1_shape, w1) = read("W1")?;
    let (b1_shape, b1) = read("b1")?;
    let (w2_shape, w2) = read("W2")?;
    let (b2_shape, b2) = read("b2")?;
    let shape_err = |what: String| err(path, format!("inconsistent shapes: {what}"));
    let [n_hidden, n_input] = w1_shape[..] else {
        return Err(shape_err(format!(
            "W1 is {w1_shape:?}, expected [n_hidden, n_input]"
        )));
    };
    let [n_classes, w2_cols] = w2_shape[..] else {
        return Err(shape_err(format!(
            "W2 is {w2_shape:?}, expected [n_classes, n_hidden]"
        )));
    };
    if w2_cols != n_hidden || b1_shape != [n_hidden] || b2_shape != [n_classes] {
        return Err(shape_err(format!(
            "W1 {w1_shape:?}, b1 {b1_shape:?}, W2 {w2_shape:?}, b2 {b2_shape:?}"
        )));
    }
    let model = Mlp {
        w1: Array2::from_shape_vec((n_hidden, n_input), w1)
            .map_err(|e| shape_err(e.to_string()))?,
        b1: Array1::from_vec(b1),
        w2: Array2::from_shape_vec((n_classes, n_hidden), w2)
            .map_err(|e| shape_err(e.to_string()))?,
        b2: Array1::from_vec(b2),
    };
    let inputs = read_input_stats(&st, n_input).map_err(|m| err(path, m))?;
    Ok(Saved {
        model,
        inputs,
        metadata,
    })
}

/// The input statistics of a file: both tensors or neither.
fn read_input_stats(st: &SafeTensors<'_>, n_input: usize) -> Result<Option<InputStats>, String> {
    let read = |name: &str| -> Result<Option<Vec<f64>>, String> {
        let Ok(view) = st.tensor(name) else {
            return Ok(None);
        };
        if view.dtype() != Dtype::F64 || view.shape() != [n_input] {
            return Err(format!(
                "tensor {name} is {:?} {:?}, expected F64 [{n_input}]",
                view.dtype(),
                view.shape()
            ));
        }
        Ok(Some(
            view.data()
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect(),
        ))
    };
    match (read(INPUT_STAT_NAMES[0])?, read(INPUT_STAT_NAMES[1])?) {
        (Some(mean), Some(std)) => {
            let stats = InputStats { mean, std };
            check_input_stats(&stats, n_input)?;
            Ok(Some(stats))
        }
        (None, None) => Ok(None),
        _ => Err("only one of input_mean and input_std is stored".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("config".to_string(), "{\"lambda\":0.01}".to_string()),
            ("seed".to_string(), "7".to_string()),
        ])
    }

    #[test]
    fn save_then_load_round_trips_bit_for_bit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        let mut model = Mlp::<f32>::init(12, 5, 3, 9);
        model.b1[2] = -0.25;
        model.b2[1] = 1.5;
        save(&path, &model, None, &meta()).unwrap();
        let back = load(&path).unwrap();
        assert_eq!(back.model, model);
        assert_eq!(back.metadata, meta());
        assert_eq!(back.inputs, None);
        // With input statistics, they come back bit for bit too.
        let stats = InputStats {
            mean: (0..12).map(|i| i as f64 / 7.0).collect(),
            std: (0..12).map(|i| 0.1 + i as f64 / 3.0).collect(),
        };
        save(&path, &model, Some(&stats), &meta()).unwrap();
        let back = load(&path).unwrap();
        assert_eq!(back.model, model);
        assert_eq!(back.inputs, Some(stats));
        // No temporary file is left behind.
        let n_files = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(n_files, 1);
    }

    #[test]
    fn identical_saves_are_byte_identical_with_sorted_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let model = Mlp::<f32>::init(12, 5, 3, 9);
        // Many keys: a hash map's order would differ from save to save.
        let metadata: BTreeMap<String, String> = (0..16)
            .map(|i| (format!("key{i:02}"), format!("value {i}")))
            .collect();
        let first = dir.path().join("a.safetensors");
        // With input statistics too (more tensors in the header).
        let stats = InputStats {
            mean: vec![0.5; 12],
            std: vec![0.25; 12],
        };
        save(&first, &model, Some(&stats), &metadata).unwrap();
        let bytes = std::fs::read(&first).unwrap();
        for i in 0..4 {
            let path = dir.path().join(format!("b{i}.safetensors"));
            save(&path, &model, Some(&stats), &metadata).unwrap();
            assert!(std::fs::read(&path).unwrap() == bytes, "save {i} differs");
        }
        // The header lists the metadata keys in sorted order, and loads back.
        let text = String::from_utf8_lossy(&bytes);
        let positions: Vec<usize> = metadata.keys().map(|k| text.find(k).unwrap()).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
        let back = load(&first).unwrap();
        assert_eq!(
            (back.model, back.inputs, back.metadata),
            (model, Some(stats), metadata)
        );
    }

    #[test]
    fn non_finite_values_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.safetensors");
        let mut model = Mlp::<f32>::init(4, 3, 2, 1);
        model.w2[[1, 1]] = f32::NAN;
        let e = save(&path, &model, None, &meta()).unwrap_err();
        assert!(e.to_string().contains("bad.safetensors"), "{e}");
        assert!(!path.exists());
        // Write one by hand, bypassing `save`.
        let w1 = le_bytes([1.0f32; 12].into_iter());
        let b1 = le_bytes([0.0f32, f32::INFINITY, 0.0].into_iter());
        let w2 = le_bytes([0.0f32; 6].into_iter());
        let b2 = le_bytes([0.0f32; 2].into_iter());
        let views = vec![
            (
                "W1",
                safetensors::tensor::TensorView::new(Dtype::F32, vec![3, 4], &w1).unwrap(),
            ),
            (
                "b1",
                safetensors::tensor::TensorView::new(Dtype::F32, vec![3], &b1).unwrap(),
            ),
            (
                "W2",
                safetensors::tensor::TensorView::new(Dtype::F32, vec![2, 3], &w2).unwrap(),
            ),
            (
                "b2",
                safetensors::tensor::TensorView::new(Dtype::F32, vec![2], &b2).unwrap(),
            ),
        ];
        std::fs::write(&path, safetensors::serialize(views, &None).unwrap()).unwrap();
        let e = load(&path).unwrap_err();
        assert!(e.to_string().contains("bad.safetensors"), "{e}");
        assert!(e.to_string().contains("b1"), "{e}");
        assert!(e.to_string().contains("non-finite"), "{e}");
    }

    #[test]
    fn missing_tensor_and_wrong_shape_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("partial.safetensors");
        let w1 = le_bytes([1.0f32; 12].into_iter());
        let b1 = le_bytes([0.0f32; 3].into_iter());
        let w2 = le_bytes([0.0f32; 8].into_iter());
        let b2 = le_bytes([0.0f32; 2].into_iter());
        fn view(shape: Vec<usize>, b: &[u8]) -> safetensors::tensor::TensorView<'_> {
            safetensors::tensor::TensorView::new(Dtype::F32, shape, b).unwrap()
        }
        let views = vec![("W1", view(vec![3, 4], &w1)), ("b1", view(vec![3], &b1))];
        std::fs::write(&path, safetensors::serialize(views, &None).unwrap()).unwrap();
        let e = load(&path).unwrap_err();
        assert!(e.to_string().contains("partial.safetensors"), "{e}");
        assert!(e.to_string().contains("W2 is missing"), "{e}");

        // W2 has 4 columns but there are 3 hidden units.
        let views = vec![
            ("W1", view(vec![3, 4], &w1)),
            ("b1", view(vec![3], &b1)),
            ("W2", view(vec![2, 4], &w2)),
            ("b2", view(vec![2], &b2)),
        ];
        std::fs::write(&path, safetensors::serialize(views, &None).unwrap()).unwrap();
        let e = load(&path).unwrap_err();
        assert!(e.to_string().contains("inconsistent shapes"), "{e}");

        let e = load(&dir.path().join("absent.safetensors")).unwrap_err();
        assert!(e.to_string().contains("absent.safetensors"), "{e}");
        std::fs::write(&path, b"garbage").unwrap();
        assert!(load(&path).is_err());
    }

    #[test]
    fn truncated_files_and_bad_input_stats_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        let model = Mlp::<f32>::init(4, 3, 2, 1);
        let good = InputStats {
            mean: vec![0.5; 4],
            std: vec![0.25; 4],
        };
        save(&path, &model, Some(&good), &meta()).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        for cut in [0, 7, 100, bytes.len() - 1] {
            std::fs::write(&path, &bytes[..cut]).unwrap();
            let e = load(&path).unwrap_err().to_string();
            assert!(
                e.contains("w.safetensors") && e.contains("not a safetensors"),
                "{e}"
            );
        }
        let short = InputStats {
            mean: vec![0.5; 3],
            std: vec![0.25; 4],
        };
        let e = save(&path, &model, Some(&short), &meta())
            .unwrap_err()
            .to_string();
        assert!(e.contains("input_mean has 3 values"), "{e}");
        let nan = InputStats {
            mean: vec![0.5; 4],
            std: vec![0.25, f64::NAN, 0.25, 0.25],
        };
        let e = save(&path, &model, Some(&nan), &meta())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("input_std holds a non-finite value at index 1"),
            "{e}"
        );
    }
}
