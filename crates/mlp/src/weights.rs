//! Trained weights as safetensors (W1, b1, W2, b2) with string metadata
//! (the resolved config), written atomically; non-finite values are refused on load.

use std::collections::BTreeMap;
use std::path::Path;

use crate::Mlp;

/// Errors saving or loading weights; each names the file.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct WeightsError {
    /// The file.
    pub path: std::path::PathBuf,
    /// What went wrong.
    pub message: String,
}

/// Write `model` and `metadata` to `path` atomically (temp file, then rename).
pub fn save(
    path: &Path,
    model: &Mlp<f32>,
    metadata: &BTreeMap<String, String>,
) -> Result<(), WeightsError> {
    let _ = (path, model, metadata);
    todo!("issue 4")
}

/// Read weights and metadata back; refuses missing tensors, wrong shapes and non-finite values.
pub fn load(path: &Path) -> Result<(Mlp<f32>, BTreeMap<String, String>), WeightsError> {
    let _ = path;
    todo!("issue 4")
}
