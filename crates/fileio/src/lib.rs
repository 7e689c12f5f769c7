//! Atomic file writes and CSV tables, the one writer of the workspace's
//! files (the data stamp and pictures in `cifar`, weights in `mlp`, every
//! result in `experiment`). A crate of its own below all the others, as
//! `cifar` and `mlp` both write files and neither depends on the other.
//!
//! Atomic: the bytes go to a temporary file beside the target, are synced,
//! then renamed over it, so a reader (or a process killed mid-write) sees the
//! old file or the new one, never a partial one.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

/// What went wrong, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Reading, writing or creating a folder failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error (naming the folder when it could not be created).
        source: std::io::Error,
    },
    /// A CSV row could not be read or written.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong (`row N: ...` when reading).
        message: String,
    },
}

/// Write `bytes` to `path` atomically, creating missing parent folders. The
/// temporary file `.NAME.PID.THREAD.tmp` is unique per process and thread
/// (parallel runs may write side by side), removed on failure, and its
/// `.tmp` ending is git-ignored. The error is the OS error (naming the
/// folder when it could not be created); callers add `path` in their own
/// error type.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Some(file_name) = path.file_name() else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a file path",
        ));
    };
    let file_name = file_name.to_string_lossy();
    std::fs::create_dir_all(&dir).map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot create {}: {e}", dir.display()))
    })?;
    let thread = format!("{:?}", std::thread::current().id()).replace(['(', ')'], "");
    let tmp = dir.join(format!(".{file_name}.{}.{thread}.tmp", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// `rows` as CSV bytes with a header (the field names of `T`).
pub fn csv_bytes<T: Serialize>(rows: &[T]) -> Result<Vec<u8>, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows {
        writer.serialize(row)?;
    }
    writer.into_inner().map_err(|e| e.into_error().into())
}

/// Serialise `rows` as CSV (with a header) and write them atomically to `path`.
pub fn write_csv<T: Serialize>(path: &Path, rows: &[T]) -> Result<(), FileError> {
    let bytes = csv_bytes(rows).map_err(|e| FileError::Format {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    write_atomic(path, &bytes).map_err(|source| FileError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Read every row of the CSV file `path` (with a header); a bad row is an
/// error naming its number (1 = the first row after the header).
pub fn read_csv<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>, FileError> {
    let bytes = std::fs::read(path).map_err(|source| FileError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    reader
        .deserialize()
        .enumerate()
        .map(|(row_idx, row)| {
            row.map_err(|e| FileError::Format {
                path: path.to_path_buf(),
                message: format!("row {}: {e}", row_idx + 1),
            })
        })
        .collect()
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
    fn replaces_the_file_creates_folders_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/file.txt");
        write_atomic(&path, b"old").unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["file.txt"]);
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_and_no_temporary_one() {
        let dir = tempfile::tempdir().unwrap();
        // A folder in the way: the rename onto it fails.
        let path = dir.path().join("taken");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("inside"), b"kept").unwrap();
        assert!(write_atomic(&path, b"new").is_err());
        assert_eq!(std::fs::read(path.join("inside")).unwrap(), b"kept");
        let n_entries = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(n_entries, 1, "the temporary file is removed");
        // No file name at all.
        let err = write_atomic(Path::new("/"), b"x").unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
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
        let n_files = std::fs::read_dir(path.parent().unwrap()).unwrap().count();
        assert_eq!(n_files, 1, "no temporary file is left behind");
    }

    #[test]
    fn malformed_csv_names_the_file_and_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.csv");
        std::fs::write(&path, "name,value,maybe\na,1.0,\nb,oops,\n").unwrap();
        let err = read_csv::<Row>(&path).unwrap_err().to_string();
        assert!(err.contains("bad.csv") && err.contains("row 2"), "{err}");
    }
}
