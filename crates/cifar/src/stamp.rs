//! The stamp `cargo xtask fetch-data` writes into `cifar-10-batches-bin/`
//! once everything there has been verified: where the data came from, the
//! checksums of the source and of every file. Loading the data hashes the
//! bytes it reads and checks them against the stamp (see
//! [`crate::load_dir_digest`]): the stamp is a record to check, never a
//! fingerprint taken on trust.

use std::path::{Path, PathBuf};

use crate::checksum::{DataDigest, FileDigest};
use crate::{compute_data_checksum, CifarError};

/// File name of the stamp inside `cifar-10-batches-bin/`.
pub const STAMP_FILE: &str = "fetch-stamp.json";
/// Version of the stamp layout; a stamp of another version is not trusted.
pub const STAMP_FORMAT: u32 = 1;

/// What `fetch-data` verified, saved as JSON beside the data files.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stamp {
    /// Layout version ([`STAMP_FORMAT`]).
    pub format: u32,
    /// The data fingerprint (see [`crate::data_checksum`]).
    pub data_sha256: String,
    /// Size and sha256 of each data file.
    pub files: Vec<FileDigest>,
    /// Where the data came from: a URL, an archive path or a directory.
    pub source: String,
    /// sha256 of the source archive (none for a directory).
    pub source_sha256: Option<String>,
    /// md5 of the source archive (none for a directory).
    pub source_md5: Option<String>,
    /// True when the source archive is the official one (by sha256).
    pub official: bool,
}

impl Stamp {
    /// A stamp for verified data from `source`.
    pub fn new(
        digest: DataDigest,
        source: String,
        source_sha256: Option<String>,
        source_md5: Option<String>,
        official: bool,
    ) -> Self {
        Self {
            format: STAMP_FORMAT,
            data_sha256: digest.data_sha256,
            files: digest.files,
            source,
            source_sha256,
            source_md5,
            official,
        }
    }

    /// Where the stamp of the batches dir `batches` lives.
    pub fn path(batches: &Path) -> PathBuf {
        batches.join(STAMP_FILE)
    }

    /// The stamp of the batches dir `batches`: `Ok(None)` when there is none,
    /// an error when it cannot be read or parsed.
    pub fn read(batches: &Path) -> Result<Option<Self>, CifarError> {
        let path = Self::path(batches);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(CifarError::Io { path, source }),
        };
        let stamp: Self = serde_json::from_str(&text).map_err(|e| CifarError::Invalid {
            path: path.clone(),
            message: format!("not a valid fetch-data stamp ({e})"),
        })?;
        if stamp.format != STAMP_FORMAT {
            return Err(CifarError::Invalid {
                path,
                message: format!(
                    "stamp format {} (this build reads {STAMP_FORMAT})",
                    stamp.format
                ),
            });
        }
        Ok(Some(stamp))
    }

    /// Write the stamp into `batches` atomically (temp file + rename).
    pub fn write(&self, batches: &Path) -> Result<(), CifarError> {
        let path = Self::path(batches);
        let text = serde_json::to_string_pretty(self).expect("a stamp serialises");
        fileio::write_atomic(&path, (text + "\n").as_bytes())
            .map_err(|source| CifarError::Io { path, source })
    }

    /// Cheap check: every listed file exists with the listed size, the list
    /// is complete and its fingerprint matches. `Err` says what differs.
    pub fn sizes_match(&self, batches: &Path) -> Result<(), String> {
        let recombined = DataDigest::from_files(self.files.clone())
            .ok_or_else(|| "the stamp does not list exactly the seven data files".to_string())?;
        if recombined.data_sha256 != self.data_sha256 {
            return Err("the stamp's fingerprint does not match its file list".into());
        }
        for f in &self.files {
            let path = batches.join(&f.name);
            match std::fs::metadata(&path) {
                Ok(m) if m.len() == f.bytes => {}
                Ok(m) => {
                    return Err(format!(
                        "{} is {} bytes, the stamp says {}",
                        path.display(),
                        m.len(),
                        f.bytes
                    ))
                }
                Err(e) => return Err(format!("{}: {e}", path.display())),
            }
        }
        Ok(())
    }

    /// Full check: re-hash every file and compare with the stamp. `Err` says
    /// which file differs.
    pub fn verify(&self, batches: &Path) -> Result<(), String> {
        self.sizes_match(batches)?;
        let now = compute_data_checksum(batches).map_err(|e| e.to_string())?;
        for (want, got) in self.files.iter().zip(&now.files) {
            if want != got {
                return Err(format!(
                    "{} has sha256 {}, the stamp says {}",
                    batches.join(&got.name).display(),
                    got.sha256,
                    want.sha256
                ));
            }
        }
        Ok(())
    }
}
