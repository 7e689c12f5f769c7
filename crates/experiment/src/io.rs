//! Atomic file writes (temporary file in the same directory, then rename) and
//! CSV helpers, so that a killed process never leaves a half-written result:
//! [`fileio`] with this crate's error type.

use std::fs;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{ExperimentError, Result};

/// Wrap an `std::io::Error` with the path it concerns.
pub fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ExperimentError + '_ {
    move |source| ExperimentError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Create `dir` and its parents.
pub fn create_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(io_err(dir))
}

/// Write `bytes` to `path` atomically (temp file beside it, synced, then
/// renamed), creating parent folders: [`fileio::write_atomic`].
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    fileio::write_atomic(path, bytes).map_err(io_err(path))
}

/// Serialise `rows` as CSV (with a header) and write them atomically to `path`.
pub fn write_csv<T: Serialize>(path: &Path, rows: &[T]) -> Result<()> {
    fileio::write_csv(path, rows).map_err(file_err)
}

/// Read every row of the CSV file `path` (with a header).
pub fn read_csv<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    fileio::read_csv(path).map_err(file_err)
}

/// The same error, as this crate's.
fn file_err(e: fileio::FileError) -> ExperimentError {
    match e {
        fileio::FileError::Io { path, source } => ExperimentError::Io { path, source },
        fileio::FileError::Format { path, message } => ExperimentError::Format { path, message },
    }
}

/// Serialise `value` as TOML and write it atomically to `path`.
pub fn write_toml<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = toml::to_string_pretty(value).map_err(|e| ExperimentError::Format {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    write_atomic(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Row {
        name: String,
        value: f64,
        maybe: Option<f64>,
    }

    #[test]
    fn csv_round_trip_keeps_every_bit_and_empty_options() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/rows.csv");
        let rows = vec![
            Row {
                name: "a,b".into(),
                value: 0.1 + 0.2,
                maybe: None,
            },
            Row {
                name: "c".into(),
                value: 1e-300,
                maybe: Some(-0.007257),
            },
        ];
        write_csv(&path, &rows).unwrap();
        let back: Vec<Row> = read_csv(&path).unwrap();
        assert_eq!(back, rows);
        // No temporary file is left behind.
        let n_files = fs::read_dir(path.parent().unwrap()).unwrap().count();
        assert_eq!(n_files, 1);
    }

    #[test]
    fn malformed_csv_names_the_file_and_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.csv");
        fs::write(&path, "name,value,maybe\na,1.0,\nb,oops,\n").unwrap();
        let err = read_csv::<Row>(&path).unwrap_err().to_string();
        assert!(err.contains("bad.csv") && err.contains("row 2"), "{err}");
    }
}
