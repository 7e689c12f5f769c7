//! The CIFAR-10 binary format: records of one label byte (0..9) followed by
//! 3072 pixel bytes (1024 red, 1024 green, 1024 blue, each 32x32 row-major),
//! read strictly, and the data dir layout (`cifar-10-batches-bin/` with five
//! training batches, a test batch and `batches.meta.txt`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use rayon::prelude::*;

use crate::{
    Cifar10, CifarError, RawImages, BATCHES_DIR, DATA_FILES, IMAGE_BYTES, META_FILE, N_CLASSES,
    RECORDS_PER_FILE, RECORD_BYTES, TEST_FILE, TRAIN_FILES,
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

/// Load and validate `dir/cifar-10-batches-bin/` (or `dir` itself if it holds the batch files).
///
/// Standard files must hold exactly 10000 records each. When the data is
/// missing, the error names the exact `cargo xtask fetch-data` command to run.
pub fn load_dir(dir: &Path) -> Result<Cifar10, CifarError> {
    load_dir_with(dir, &LoadOptions::default())
}

/// [`load_dir`] with explicit checks (e.g. small generated files in tests).
/// The six batch files are read in parallel.
pub fn load_dir_with(dir: &Path, options: &LoadOptions) -> Result<Cifar10, CifarError> {
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
    let missing: Vec<&str> = DATA_FILES
        .iter()
        .copied()
        .filter(|f| !batches.join(f).is_file())
        .collect();
    if !missing.is_empty() {
        return Err(CifarError::MissingData {
            dir: data_dir,
            message: format!(
                "incomplete CIFAR-10 data in {}: missing {}; run `{command} --force` to fetch it \
                 again (add `--from PATH` to use a local cifar-10-binary.tar.gz)",
                batches.display(),
                missing.join(", ")
            ),
        });
    }
    let mut files: Vec<&str> = TRAIN_FILES.to_vec();
    files.push(TEST_FILE);
    // Read in parallel, but report the first bad file in file order, so the
    // message does not depend on which thread failed first.
    let mut raws = files
        .par_iter()
        .map(|f| read_batch_file(&batches.join(f), options.records_per_file))
        .collect::<Vec<_>>()
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    let test = raws.pop().expect("six files were read");
    let class_names = read_class_names(&batches.join(META_FILE))?;
    Ok(Cifar10 {
        train_batches: raws,
        test,
        class_names,
    })
}

/// [`load_dir`], but one copy per data dir per process: later calls with the
/// same dir return the same `Arc` (no per-run copies of the 150 MB).
pub fn load_shared(dir: &Path) -> Result<Arc<Cifar10>, CifarError> {
    load_shared_with(dir, &LoadOptions::default())
}

/// [`load_shared`] with explicit checks (see [`load_dir_with`]).
pub fn load_shared_with(dir: &Path, options: &LoadOptions) -> Result<Arc<Cifar10>, CifarError> {
    type Cache = Mutex<HashMap<(PathBuf, LoadOptions), Arc<Cifar10>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let batches = batches_dir(dir);
    let key = (std::fs::canonicalize(&batches).unwrap_or(batches), *options);
    let cache = CACHE.get_or_init(Default::default);
    // Hold the lock while loading so that concurrent callers load only once.
    let mut map = cache.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(data) = map.get(&key) {
        return Ok(Arc::clone(data));
    }
    let data = Arc::new(load_dir_with(dir, options)?);
    map.insert(key, Arc::clone(&data));
    Ok(data)
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
