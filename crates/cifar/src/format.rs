//! The CIFAR-10 binary format: records of one label byte (0..9) followed by
//! 3072 pixel bytes (1024 red, 1024 green, 1024 blue, each 32x32 row-major),
//! read strictly, and the data dir layout (`cifar-10-batches-bin/` with five
//! training batches, a test batch and `batches.meta.txt`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use rayon::prelude::*;

use crate::checksum::{sha256_bytes, DataDigest, FileDigest};
use crate::stamp::Stamp;
use crate::{
    Cifar10, CifarError, RawImages, BATCHES_DIR, DATA_FILES, IMAGE_BYTES, N_CLASSES,
    RECORDS_PER_FILE, RECORD_BYTES,
};

/// How strictly [`load_dir_with`] checks the batch files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LoadOptions {
    /// Records each batch file must hold: `Some(10000)` for the standard
    /// files (the default); `None` accepts any positive number (small
    /// generated files in tests).
    pub records_per_file: Option<usize>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            records_per_file: Some(RECORDS_PER_FILE),
        }
    }
}

/// The directory that holds the batch files for a data dir `dir`: `dir`
/// itself when it is named `cifar-10-batches-bin` or already holds one of the
/// data files, else `dir/cifar-10-batches-bin`.
pub fn batches_dir(dir: &Path) -> PathBuf {
    let is_batches = dir.file_name().is_some_and(|n| n == BATCHES_DIR)
        || DATA_FILES.iter().any(|f| dir.join(f).is_file());
    if is_batches {
        dir.to_path_buf()
    } else {
        dir.join(BATCHES_DIR)
    }
}

/// The data dir a user would pass to `--data-dir` for the batches dir `batches`.
fn user_data_dir(dir: &Path, batches: &Path) -> PathBuf {
    if batches == dir && dir.file_name().is_some_and(|n| n == BATCHES_DIR) {
        dir.parent().map(Path::to_path_buf).unwrap_or_default()
    } else {
        dir.to_path_buf()
    }
}

/// The command that gets the data of the data dir `dir` again, replacing
/// what is there: `cargo xtask fetch-data --data-dir DIR --force`.
pub fn repair_command(dir: &Path) -> String {
    let data_dir = user_data_dir(dir, &batches_dir(dir));
    format!(
        "cargo xtask fetch-data --data-dir {} --force",
        data_dir.display()
    )
}

/// What is wrong with `path` as a data file, if anything: `None` for a
/// regular file (or a link to one), else what it is ("missing", "a FIFO
/// (named pipe)", "a character device", ...). Never opens the file, so a
/// FIFO cannot block the caller.
pub fn data_file_problem(path: &Path) -> Option<&'static str> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(_) if std::fs::symlink_metadata(path).is_ok() => return Some("a broken symbolic link"),
        Err(_) => return Some("missing"),
    };
    let kind = meta.file_type();
    if kind.is_file() {
        return None;
    }
    if kind.is_dir() {
        return Some("a directory");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return Some("a FIFO (named pipe)");
        }
        if kind.is_char_device() {
            return Some("a character device");
        }
        if kind.is_block_device() {
            return Some("a block device");
        }
        if kind.is_socket() {
            return Some("a socket");
        }
    }
    Some("not a regular file")
}

/// Check that the data dir `dir` holds every data file as a regular file;
/// returns the batches dir. The error names each missing or odd file and
/// the `cargo xtask fetch-data` command that fixes it.
pub fn check_data_files(dir: &Path) -> Result<PathBuf, CifarError> {
    let batches = batches_dir(dir);
    let data_dir = user_data_dir(dir, &batches);
    let command = format!("cargo xtask fetch-data --data-dir {}", data_dir.display());
    if !batches.is_dir() {
        return Err(CifarError::MissingData {
            dir: data_dir.clone(),
            message: format!(
                "no CIFAR-10 data in {} (no {} there): run `{command}` to download it, or \
                 `{command} --from PATH` to use a local cifar-10-binary.tar.gz (or an extracted \
                 {BATCHES_DIR}/); if the data is elsewhere, pass --data-dir DIR or set CIFAR10_DIR",
                data_dir.display(),
                batches.display()
            ),
        });
    }
    let problems: Vec<(&str, &str)> = DATA_FILES
        .iter()
        .filter_map(|&f| data_file_problem(&batches.join(f)).map(|p| (f, p)))
        .collect();
    let fix = format!(
        "run `{command} --force` to fetch it again (add `--from PATH` to use a local \
         cifar-10-binary.tar.gz)"
    );
    if let Some(&(name, what)) = problems.iter().find(|(_, p)| *p != "missing") {
        return Err(CifarError::Invalid {
            path: batches.join(name),
            message: format!("{what}, not a regular file (so not CIFAR-10 data); {fix}"),
        });
    }
    if !problems.is_empty() {
        let names: Vec<&str> = problems.iter().map(|(f, _)| *f).collect();
        return Err(CifarError::MissingData {
            dir: data_dir,
            message: format!(
                "incomplete CIFAR-10 data in {}: missing {}; {fix}",
                batches.display(),
                names.join(", ")
            ),
        });
    }
    Ok(batches)
}

/// Load and validate `dir/cifar-10-batches-bin/` (or `dir` itself if it holds the batch files).
///
/// Standard files must hold exactly 10000 records each. When the data is
/// missing, the error names the exact `cargo xtask fetch-data` command to
/// run. The bytes read are hashed and checked against the `fetch-data`
/// stamp, if any (see [`load_dir_digest`]).
pub fn load_dir(dir: &Path) -> Result<Cifar10, CifarError> {
    load_dir_with(dir, &LoadOptions::default())
}

/// [`load_dir`] with explicit checks (e.g. small generated files in tests).
/// The files are read in parallel.
pub fn load_dir_with(dir: &Path, options: &LoadOptions) -> Result<Cifar10, CifarError> {
    Ok(load_dir_digest(dir, options)?.0)
}

/// [`load_dir_with`], and the fingerprint of the bytes actually read (each
/// file is hashed from the buffer it was read into: no second read, so no
/// window in which the file could change between hashing and loading).
///
/// When `fetch-data`'s stamp is there, every file must have the size and
/// sha256 it records: a changed pixel or label, or one batch file replaced
/// by another, is an error naming the file and the command that repairs the
/// data (`cargo xtask fetch-data --data-dir DIR --force`), never data
/// trained on under the stamp's fingerprint.
pub fn load_dir_digest(
    dir: &Path,
    options: &LoadOptions,
) -> Result<(Cifar10, DataDigest), CifarError> {
    let batches = check_data_files(dir)?;
    // Read in parallel, but report the first bad file in file order, so the
    // message does not depend on which thread failed first.
    let mut read = DATA_FILES
        .par_iter()
        .map(|&name| {
            let path = batches.join(name);
            let bytes = std::fs::read(&path).map_err(|source| CifarError::Io {
                path: path.clone(),
                source,
            })?;
            let digest = FileDigest {
                name: name.to_string(),
                bytes: bytes.len() as u64,
                sha256: sha256_bytes(&bytes),
            };
            Ok((path, bytes, digest))
        })
        .collect::<Vec<_>>()
        .into_iter()
        .collect::<Result<Vec<_>, CifarError>>()?;
    let digest = DataDigest::from_files(read.iter().map(|(_, _, d)| d.clone()).collect())
        .expect("exactly the data files were read");
    check_stamp(&batches, &digest, &repair_command(dir))?;
    let (meta_path, meta_bytes, _) = read.pop().expect("the meta file was read");
    let mut raws = read
        .into_par_iter()
        .map(|(path, bytes, _)| parse_batch(bytes, &path, options.records_per_file))
        .collect::<Vec<_>>()
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    let test = raws.pop().expect("six batch files were read");
    let class_names = parse_class_names(meta_bytes, &meta_path)?;
    Ok((
        Cifar10 {
            train_batches: raws,
            test,
            class_names,
        },
        digest,
    ))
}

/// Error unless the files of `digest` match `fetch-data`'s stamp in
/// `batches` (no stamp: nothing to compare, fine). `repair` is the command
/// that fixes the data.
pub(crate) fn check_stamp(
    batches: &Path,
    digest: &DataDigest,
    repair: &str,
) -> Result<(), CifarError> {
    let stamp = match Stamp::read(batches) {
        Ok(Some(stamp)) => stamp,
        Ok(None) => return Ok(()),
        Err(e) => {
            return Err(CifarError::Invalid {
                path: Stamp::path(batches),
                message: format!(
                    "cannot check the data against its fetch-data stamp ({e}); run `{repair}` \
                     to get the data again"
                ),
            })
        }
    };
    for got in &digest.files {
        let want = stamp.files.iter().find(|f| f.name == got.name);
        if want == Some(got) {
            continue;
        }
        let said = want.map_or_else(
            || "does not list it".to_string(),
            |w| format!("says {} bytes, sha256 {}", w.bytes, w.sha256),
        );
        return Err(CifarError::Invalid {
            path: batches.join(&got.name),
            message: format!(
                "{} bytes, sha256 {}, but the fetch-data stamp {said}: the file changed after \
                 it was verified; run `{repair}` to get the data again",
                got.bytes, got.sha256
            ),
        });
    }
    Ok(())
}

/// [`load_dir`], but one copy per data dir per process: later calls with the
/// same dir return the same `Arc` (no per-run copies of the 150 MB).
pub fn load_shared(dir: &Path) -> Result<Arc<Cifar10>, CifarError> {
    load_shared_with(dir, &LoadOptions::default())
}

/// [`load_shared`] with explicit checks (see [`load_dir_with`]).
pub fn load_shared_with(dir: &Path, options: &LoadOptions) -> Result<Arc<Cifar10>, CifarError> {
    Ok(load_shared_digest(dir, options)?.0)
}

/// [`load_shared_with`], and the fingerprint of the bytes that were read
/// (see [`load_dir_digest`]).
pub fn load_shared_digest(
    dir: &Path,
    options: &LoadOptions,
) -> Result<(Arc<Cifar10>, DataDigest), CifarError> {
    type Cache = Mutex<HashMap<(PathBuf, LoadOptions), (Arc<Cifar10>, DataDigest)>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let batches = batches_dir(dir);
    let key = (std::fs::canonicalize(&batches).unwrap_or(batches), *options);
    let cache = CACHE.get_or_init(Default::default);
    // Hold the lock while loading so that concurrent callers load only once.
    let mut map = cache.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((data, digest)) = map.get(&key) {
        return Ok((Arc::clone(data), digest.clone()));
    }
    let (data, digest) = load_dir_digest(dir, options)?;
    let data = Arc::new(data);
    map.insert(key, (Arc::clone(&data), digest.clone()));
    Ok((data, digest))
}

/// Read and validate one batch file. `expected_records`: `Some(n)` requires
/// exactly `n` records (10000 for the standard files); `None` accepts any
/// positive whole number of records.
pub fn read_batch_file(
    path: &Path,
    expected_records: Option<usize>,
) -> Result<RawImages, CifarError> {
    let bytes = std::fs::read(path).map_err(|source| CifarError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_batch(bytes, path, expected_records)
}

/// Read several batch files (in parallel) into one set of images, in the
/// order given; each file is validated as by [`read_batch_file`].
pub fn read_batch_files<P: AsRef<Path> + Sync>(
    paths: &[P],
    expected_records: Option<usize>,
) -> Result<RawImages, CifarError> {
    let parts = paths
        .par_iter()
        .map(|p| read_batch_file(p.as_ref(), expected_records))
        .collect::<Vec<_>>()
        .into_iter()
        // The first bad file in the order given, whichever thread failed first.
        .collect::<Result<Vec<_>, _>>()?;
    let n: usize = parts.iter().map(RawImages::len).sum();
    let mut all = RawImages {
        pixels: Vec::with_capacity(n * IMAGE_BYTES),
        labels: Vec::with_capacity(n),
    };
    for part in parts {
        all.pixels.extend_from_slice(&part.pixels);
        all.labels.extend_from_slice(&part.labels);
    }
    Ok(all)
}

/// Validate the bytes of a batch file (`path` is only used in errors) and
/// split them into labels and pixels, reusing the buffer (no second copy).
pub fn parse_batch(
    mut bytes: Vec<u8>,
    path: &Path,
    expected_records: Option<usize>,
) -> Result<RawImages, CifarError> {
    let invalid = |message: String| CifarError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let len = bytes.len();
    if len == 0 {
        return Err(invalid(
            "empty file (expected records of 3073 bytes: a label byte and 3072 pixel bytes)".into(),
        ));
    }
    let n = len / RECORD_BYTES;
    let rest = len % RECORD_BYTES;
    if rest != 0 {
        return Err(invalid(format!(
            "{len} bytes is not a whole number of {RECORD_BYTES}-byte records ({n} records and \
             {rest} bytes over): the file is truncated or not a CIFAR-10 binary batch"
        )));
    }
    if let Some(expected) = expected_records {
        if n != expected {
            return Err(invalid(format!(
                "{n} records ({len} bytes), expected {expected} records ({} bytes): the file is \
                 truncated or not a standard CIFAR-10 batch",
                expected * RECORD_BYTES
            )));
        }
    }
    let mut labels = Vec::with_capacity(n);
    for (i, record) in bytes.chunks_exact(RECORD_BYTES).enumerate() {
        let label = record[0];
        if usize::from(label) >= N_CLASSES {
            return Err(invalid(format!(
                "record {i} of {n} (0-based, byte offset {}): label {label} is out of range 0..{}",
                i * RECORD_BYTES,
                N_CLASSES - 1
            )));
        }
        labels.push(label);
    }
    // Compact in place: image i moves from i*3073+1 to i*3072 (always leftwards,
    // so a forward pass never overwrites bytes not yet moved).
    for i in 0..n {
        let src = i * RECORD_BYTES + 1;
        bytes.copy_within(src..src + IMAGE_BYTES, i * IMAGE_BYTES);
    }
    bytes.truncate(n * IMAGE_BYTES);
    bytes.shrink_to_fit();
    Ok(RawImages {
        pixels: bytes,
        labels,
    })
}

/// Read `batches.meta.txt`: exactly 10 non-empty, distinct class names, one
/// per line in label order (blank lines and surrounding spaces are ignored).
pub fn read_class_names(path: &Path) -> Result<Vec<String>, CifarError> {
    let bytes = std::fs::read(path).map_err(|source| CifarError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_class_names(bytes, path)
}

/// [`read_class_names`] on bytes already read (`path` names them in errors).
fn parse_class_names(bytes: Vec<u8>, path: &Path) -> Result<Vec<String>, CifarError> {
    let invalid = |message: String| CifarError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let text = String::from_utf8(bytes).map_err(|e| {
        invalid(format!(
            "not UTF-8 text ({e}); expected one class name per line"
        ))
    })?;
    let names: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    if names.len() != N_CLASSES {
        return Err(invalid(format!(
            "expected {N_CLASSES} class names (one per line), found {}",
            names.len()
        )));
    }
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            return Err(invalid(format!("class name {name:?} appears twice")));
        }
    }
    Ok(names)
}
