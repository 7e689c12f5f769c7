//! A stable fingerprint of a data dir, for "the data's checksum" in saved
//! configs.
//!
//! The fingerprint is the sha256 of the `sha256sum`-style listing of the seven
//! data files in [`DATA_FILES`] order, i.e. what
//! `cd cifar-10-batches-bin && sha256sum data_batch_1.bin data_batch_2.bin
//! data_batch_3.bin data_batch_4.bin data_batch_5.bin test_batch.bin
//! batches.meta.txt | sha256sum` prints. It identifies the contents (not the
//! archive they came from), so a dir extracted by hand and one written by
//! `cargo xtask fetch-data` from the same archive agree.

use std::io::Read;
use std::path::Path;

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::format::{check_stamp, repair_command};
use crate::{batches_dir, CifarError, DATA_FILES};

/// Size and sha256 of one data file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileDigest {
    /// File name inside `cifar-10-batches-bin/` (e.g. `data_batch_1.bin`).
    pub name: String,
    /// Size in bytes.
    pub bytes: u64,
    /// sha256, lower-case hex.
    pub sha256: String,
}

/// The digests of the seven data files and their combined fingerprint.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DataDigest {
    /// One entry per file of [`DATA_FILES`], in that order.
    pub files: Vec<FileDigest>,
    /// sha256 of the `sha256sum` listing of `files` (see the module docs).
    pub data_sha256: String,
}

impl DataDigest {
    /// Combine per-file digests (any order; exactly the files of
    /// [`DATA_FILES`]) into the data fingerprint. `None` if a file is missing
    /// or unexpected.
    pub fn from_files(mut files: Vec<FileDigest>) -> Option<Self> {
        if files.len() != DATA_FILES.len() {
            return None;
        }
        let rank = |f: &FileDigest| DATA_FILES.iter().position(|&n| n == f.name);
        if files.iter().any(|f| rank(f).is_none()) {
            return None;
        }
        files.sort_by_key(|f| rank(f));
        files.dedup_by(|a, b| a.name == b.name);
        if files.len() != DATA_FILES.len() {
            return None;
        }
        let mut h = Sha256::new();
        for f in &files {
            h.update(format!("{}  {}\n", f.sha256, f.name).as_bytes());
        }
        Some(Self {
            files,
            data_sha256: hex(&h.finalize()),
        })
    }
}

/// Lower-case hex of a digest.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// sha256 (lower-case hex) of bytes already in memory.
pub(crate) fn sha256_bytes(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Size and sha256 of the file at `path`, streamed.
pub(crate) fn sha256_file(path: &Path) -> Result<(u64, String), CifarError> {
    let io = |source| CifarError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        total += n as u64;
    }
    Ok((total, hex(&h.finalize())))
}

/// Hash the seven data files of the data dir `dir` (both cores) and combine
/// them. Reads about 180 MB for the real data; see [`data_checksum`] for the
/// cheap version.
pub fn compute_data_checksum(dir: &Path) -> Result<DataDigest, CifarError> {
    let batches = batches_dir(dir);
    let files = DATA_FILES
        .par_iter()
        .map(|&name| {
            let (bytes, sha256) = sha256_file(&batches.join(name))?;
            Ok(FileDigest {
                name: name.to_string(),
                bytes,
                sha256,
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        // The first failure in file order, whichever thread saw one first.
        .collect::<Result<Vec<_>, CifarError>>()?;
    Ok(DataDigest::from_files(files).expect("exactly the data files were hashed"))
}

/// The data fingerprint (64 hex digits) of the data dir `dir`: the files
/// are hashed ([`compute_data_checksum`], about 0.1 s for the real data) and,
/// when `fetch-data`'s stamp is there, must match it (else an error naming
/// the file and `cargo xtask fetch-data --data-dir DIR --force`). Commands
/// that load the data take the fingerprint of the bytes they read instead
/// ([`crate::load_dir_digest`]).
pub fn data_checksum(dir: &Path) -> Result<String, CifarError> {
    let digest = compute_data_checksum(dir)?;
    check_stamp(&batches_dir(dir), &digest, &repair_command(dir))?;
    Ok(digest.data_sha256)
}
