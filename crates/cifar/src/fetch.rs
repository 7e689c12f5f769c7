//! Getting CIFAR-10 onto disk, verified, atomically (`cargo xtask
//! fetch-data`, and every command that needs the data and finds none).
//! Behind the cargo feature `fetch` (HTTPS, gzip and tar are not needed to
//! read the data).
//!
//! Sources: the official archive over HTTPS (default, or `--url` for a
//! mirror of it), or `--from` a local `.tar.gz` or an extracted
//! `cifar-10-batches-bin/` (or its parent). Whatever the source, the files
//! land in a temp dir inside the data dir, are validated by the `cifar`
//! loader, get a stamp with their checksums, and only then are renamed to
//! `DATA_DIR/cifar-10-batches-bin/`. A failed or interrupted run leaves
//! nothing that later commands would trust.
//!
//! Submodules: `download` (HTTPS, URL policy), `archive` (safe extraction),
//! `digest` (checksums while streaming), `progress` (bar or plain lines).

mod archive;
mod digest;
mod download;
mod progress;
#[cfg(test)]
mod tests;

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::stamp::Stamp;
use crate::{DataDigest, LoadOptions, BATCHES_DIR};
use anyhow::{bail, Context};

pub use digest::Digests;
pub use progress::Display;

/// The official archive (SPEC.md, "The data").
pub const OFFICIAL_URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
/// Size of the official archive in bytes.
pub const OFFICIAL_SIZE: u64 = 170_052_171;
/// md5 of the official archive (published on the CIFAR page).
pub const OFFICIAL_MD5: &str = "c32a1d4ab5d03f1284b67883e8d87530";
/// sha256 of the official archive (as registered by tensorflow-datasets).
pub const OFFICIAL_SHA256: &str =
    "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd";
/// Prefix of the temp dirs we create inside the data dir.
const TEMP_PREFIX: &str = ".fetch-data-";

/// Size and checksums a download must have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    /// Bytes.
    pub size: u64,
    /// md5, lower-case hex.
    pub md5: String,
    /// sha256, lower-case hex.
    pub sha256: String,
}

impl Expected {
    /// The official archive.
    pub fn official() -> Self {
        Self {
            size: OFFICIAL_SIZE,
            md5: OFFICIAL_MD5.into(),
            sha256: OFFICIAL_SHA256.into(),
        }
    }

    /// Error unless `got` matches; `what` names the source.
    pub fn check(&self, got: &Digests, what: &str) -> anyhow::Result<()> {
        if got.size != self.size {
            bail!("{what}: {} bytes, expected {}", got.size, self.size);
        }
        if got.md5 != self.md5 {
            bail!(
                "{what}: md5 {} does not match the expected {}: the download is corrupt or not \
                 the official archive; nothing was kept",
                got.md5,
                self.md5
            );
        }
        if got.sha256 != self.sha256 {
            bail!(
                "{what}: sha256 {} does not match the expected {}: the download is corrupt or \
                 not the official archive; nothing was kept",
                got.sha256,
                self.sha256
            );
        }
        Ok(())
    }
}

/// Where the data comes from.
#[derive(Clone, Debug)]
pub enum Source {
    /// Download `url`, which must match `expected`.
    Download {
        /// https URL (or http to a loopback address, in tests).
        url: String,
        /// Size and checksums.
        expected: Expected,
    },
    /// A local `.tar.gz`.
    Archive(PathBuf),
    /// An extracted `cifar-10-batches-bin/` (or its parent).
    Dir(PathBuf),
}

/// One fetch: everything the command does, with the parts tests vary as parameters.
#[derive(Clone, Debug)]
pub struct Request {
    /// The data dir (the batches go to `data_dir/cifar-10-batches-bin/`).
    pub data_dir: PathBuf,
    /// Where the data comes from.
    pub source: Source,
    /// Replace valid data already there.
    pub force: bool,
    /// Records each batch file must hold (10000 for the real data).
    pub records_per_file: Option<usize>,
    /// sha256 of the official archive (to say whether a `--from` archive is it).
    pub official_sha256: String,
    /// Progress display.
    pub display: Display,
}

/// What [`fetch`] did.
#[derive(Debug)]
pub enum Outcome {
    /// Valid, stamped data was already there: nothing done.
    AlreadyThere(Stamp),
    /// New data was installed (or an extracted dir in place was stamped).
    Installed(Stamp),
}

impl Outcome {
    /// What `cargo xtask fetch-data` says happened in `data_dir`.
    pub fn describe(&self, data_dir: &Path) -> String {
        let batches = data_dir.join(BATCHES_DIR);
        match self {
            Outcome::AlreadyThere(stamp) => format!(
                "CIFAR-10 is already there, nothing to do: {} (from {}, data fingerprint {}); \
                 --force fetches it again",
                batches.display(),
                stamp.source,
                stamp.data_sha256
            ),
            Outcome::Installed(stamp) => format!(
                "CIFAR-10 ready in {} (data fingerprint {})",
                batches.display(),
                stamp.data_sha256
            ),
        }
    }
}

/// The data dir a fetch installs into for the one given, made absolute:
/// loading accepts the batches dir itself as the data dir, and so does
/// fetching (its parent is then the data dir).
pub fn install_dir(dir: &Path) -> io::Result<PathBuf> {
    let dir = std::path::absolute(dir)?;
    Ok(match dir.parent() {
        Some(parent) if dir.file_name().is_some_and(|n| n == BATCHES_DIR) => parent.to_path_buf(),
        _ => dir,
    })
}

/// Set by the Ctrl-C handler; long loops check it and stop cleanly.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Ask a running fetch to stop (from a Ctrl-C handler): its long loops stop
/// at their next read, its temp dir is removed and it returns an error.
/// Returns whether a stop was already asked for (a second Ctrl-C).
pub fn interrupt() -> bool {
    INTERRUPTED.swap(true, Ordering::Relaxed)
}

/// An error if Ctrl-C was pressed. (Not `ErrorKind::Interrupted`: `io::copy`
/// and `write_all` retry those forever.)
pub(crate) fn check_interrupted() -> io::Result<()> {
    if INTERRUPTED.load(Ordering::Relaxed) {
        Err(io::Error::other("interrupted by Ctrl-C"))
    } else {
        Ok(())
    }
}

/// True once Ctrl-C was pressed: any error from then on is reported as the
/// interruption, not as a corrupt archive.
pub(crate) fn is_interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

/// Where a fetch gets the data: `from` (an archive or an extracted dir; the
/// `flag` that gave it is named in the error), else a download of `url`.
pub fn source(from: Option<PathBuf>, url: String, flag: &str) -> anyhow::Result<Source> {
    Ok(match from {
        Some(path) if path.is_dir() => Source::Dir(path),
        Some(path) if path.is_file() => Source::Archive(path),
        Some(path) => bail!(
            "{flag} {}: no such file or directory (expected cifar-10-binary.tar.gz or an \
             extracted {BATCHES_DIR}/)",
            path.display()
        ),
        None => Source::Download {
            url,
            expected: Expected::official(),
        },
    })
}

/// The environment variable naming a local `cifar-10-binary.tar.gz` (or an
/// extracted `cifar-10-batches-bin/`) that commands fetch the data from
/// when it is missing, instead of downloading it (offline machines).
pub const FROM_ENV: &str = "CIFAR10_FROM";

/// [`ensure`] the standard data in `data_dir` (fetched from `$CIFAR10_FROM`
/// or the official URL when none is there), then load it: the start of
/// `gradcheck` and `sanity`. The process's shared copy ([`crate::load_shared`]),
/// so inside one process they use the 184 MB the other stages use instead of
/// loading a second one.
pub fn ensure_and_load(data_dir: &Path) -> anyhow::Result<std::sync::Arc<crate::Cifar10>> {
    ensure(data_dir, None, Some(crate::RECORDS_PER_FILE), Display::Auto)?;
    Ok(crate::load_shared(data_dir)?)
}

/// For the commands that need the data (`train`, the searches, `reproduce`,
/// `gradcheck`, `sanity`): when the data dir holds no CIFAR-10 at all, get it
/// first through [`fetch`] (the same verified, atomic path as `fetch-data`),
/// saying so; from `from` (or `$CIFAR10_FROM`) when given, else by
/// downloading the official archive. Returns whether it fetched. Data that
/// is there, even incomplete or damaged, is never replaced here: the
/// loader's error then says how to repair it.
pub fn ensure(
    data_dir: &Path,
    from: Option<PathBuf>,
    records_per_file: Option<usize>,
    display: Display,
) -> anyhow::Result<bool> {
    if crate::batches_dir(data_dir).exists() {
        return Ok(false);
    }
    let (from, flag) = match from {
        Some(path) => (Some(path), "--data-from".to_string()),
        None => (
            std::env::var_os(FROM_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            format!("${FROM_ENV}"),
        ),
    };
    let data_dir = std::path::absolute(data_dir)?;
    let equivalent = match &from {
        Some(path) => format!(
            "cargo xtask fetch-data --data-dir {} --from {}",
            data_dir.display(),
            path.display()
        ),
        None => format!("cargo xtask fetch-data --data-dir {}", data_dir.display()),
    };
    println!(
        "no CIFAR-10 data in {}: getting it first, as `{equivalent}` does",
        data_dir.display()
    );
    let request = Request {
        data_dir,
        source: source(from, OFFICIAL_URL.to_string(), &flag)?,
        force: false,
        records_per_file,
        official_sha256: OFFICIAL_SHA256.into(),
        display,
    };
    let stamp = match fetch(&request) {
        Ok(Outcome::Installed(stamp) | Outcome::AlreadyThere(stamp)) => stamp,
        Err(e) => {
            return Err(e.context(format!(
                "no CIFAR-10 data in {} and getting it failed (offline? point --data-from or \
                 ${FROM_ENV} at a local cifar-10-binary.tar.gz)",
                request.data_dir.display()
            )))
        }
    };
    println!(
        "CIFAR-10 ready in {} (data fingerprint {})",
        request.data_dir.join(BATCHES_DIR).display(),
        stamp.data_sha256
    );
    Ok(true)
}

/// Do one fetch. On error nothing new is left in the data dir (and the data
/// dir itself is removed again if this call created it and it is empty).
pub fn fetch(req: &Request) -> anyhow::Result<Outcome> {
    let created = !req.data_dir.exists();
    let result = fetch_inner(req);
    if result.is_err() && created {
        // Only succeeds when empty: never removes anything but our own empty dir.
        let _ = std::fs::remove_dir(&req.data_dir);
    }
    result
}

fn fetch_inner(req: &Request) -> anyhow::Result<Outcome> {
    let options = LoadOptions {
        records_per_file: req.records_per_file,
    };
    let target = req.data_dir.join(BATCHES_DIR);
    if let Source::Download { url, .. } = &req.source {
        download::check_url(url)?;
    }
    // Before anything else, even when the data is already there: a run
    // killed with kill -9 could not remove its staging folder (~180 MB).
    remove_stale_temps(&req.data_dir);

    // An extracted dir that already is the target: validate and stamp in place.
    if let Source::Dir(from) = &req.source {
        let from_batches = crate::batches_dir(from);
        if same_dir(&from_batches, &target) {
            return stamp_in_place(req, &target, &options);
        }
    }

    if target.exists() {
        match trusted(&target) {
            Ok(stamp) if !req.force => return Ok(Outcome::AlreadyThere(stamp)),
            Ok(_) => println!("--force: replacing {}", target.display()),
            Err(why) if !req.force => bail!(
                "{} exists but is not verified fetch-data output ({why}); run again with --force \
                 to replace it",
                target.display()
            ),
            Err(why) => println!("--force: replacing {} ({why})", target.display()),
        }
    }

    std::fs::create_dir_all(&req.data_dir)
        .with_context(|| format!("cannot create the data dir {}", req.data_dir.display()))?;
    let temp = tempfile::Builder::new()
        .prefix(&format!("{TEMP_PREFIX}{}-", std::process::id()))
        .tempdir_in(&req.data_dir)
        .with_context(|| format!("cannot create a temp dir in {}", req.data_dir.display()))?;
    let staged = temp.path().join(BATCHES_DIR);
    std::fs::create_dir(&staged)?;

    let (files, source, source_sha256, source_md5, official) = match &req.source {
        Source::Download { url, expected } => {
            println!("downloading {url} ({})", progress::mib(expected.size));
            let archive_path = temp.path().join("cifar-10-binary.tar.gz");
            let digests = download::download(url, &archive_path, expected, req.display)?;
            println!(
                "verified: {} bytes, md5 {}, sha256 {}",
                digests.size, digests.md5, digests.sha256
            );
            let file = File::open(&archive_path)?;
            let extracted = archive::extract(file, &staged, url, req.records_per_file)?;
            for s in &extracted.skipped {
                println!("skipped unexpected archive entry {s}");
            }
            std::fs::remove_file(&archive_path)?;
            let official = digests.sha256 == req.official_sha256;
            (
                extracted.files,
                url.clone(),
                Some(digests.sha256),
                Some(digests.md5),
                official,
            )
        }
        Source::Archive(path) => {
            let shown = path.display().to_string();
            println!("extracting {shown}");
            let file = File::open(path).with_context(|| format!("cannot read {shown}"))?;
            let size = file.metadata()?.len();
            let mut progress = progress::Progress::new("extracting", Some(size), req.display);
            let mut reader = digest::HashingReader::new(file, |n| progress.inc(n));
            let extracted = archive::extract(&mut reader, &staged, &shown, req.records_per_file);
            // Hash to the end even when extraction failed, so the sha256 is
            // always printed and a sidecar mismatch explains a bad archive.
            let digests = reader
                .finish()
                .with_context(|| format!("cannot read {shown}"));
            progress.finish();
            let (digests, extracted) = match (digests, extracted) {
                (Ok(d), extracted) => {
                    println!("sha256 of {shown}: {}", d.sha256);
                    if d.sha256 == req.official_sha256 {
                        println!("this is the official CIFAR-10 archive");
                    } else {
                        println!(
                            "this is not the official archive (official sha256 {}); accepted if \
                             its contents validate",
                            req.official_sha256
                        );
                    }
                    check_sidecar(path, &d)?;
                    (d, extracted?)
                }
                (Err(e), Ok(_)) | (Err(_), Err(e)) => return Err(e),
            };
            for s in &extracted.skipped {
                println!("skipped unexpected archive entry {s}");
            }
            let official = digests.sha256 == req.official_sha256;
            let source = std::path::absolute(path).unwrap_or_else(|_| path.clone());
            (
                extracted.files,
                source.display().to_string(),
                Some(digests.sha256),
                Some(digests.md5),
                official,
            )
        }
        Source::Dir(path) => {
            let from = crate::batches_dir(path);
            if !from.is_dir() {
                bail!(
                    "--from {}: no {BATCHES_DIR}/ there (expected the extracted directory or its \
                     parent)",
                    path.display()
                );
            }
            println!(
                "copying {} (an extracted directory: no archive checksum to compare with the \
                 official one; accepted if its contents validate)",
                from.display()
            );
            let files = archive::copy_dir(&from, &staged, req.records_per_file)?;
            let source = std::path::absolute(&from).unwrap_or(from);
            (files, source.display().to_string(), None, None, false)
        }
    };

    // The contents decide: the same strict loader every command uses. Its
    // errors name the staged copy, which is about to be deleted: name the
    // source instead.
    crate::load_dir_with(&staged, &options).map_err(|e| {
        anyhow::anyhow!(
            "the data is invalid, nothing was kept: {}",
            name_source(e, &staged, &req.source)
        )
    })?;
    let digest = DataDigest::from_files(files).context("internal: incomplete file list")?;
    let stamp = Stamp::new(digest, source, source_sha256, source_md5, official);
    stamp.write(&staged)?;

    // Install: move any old data into the temp dir (removed with it), then
    // rename the staged dir into place.
    if target.exists() {
        std::fs::rename(&target, temp.path().join("old"))
            .with_context(|| format!("cannot move the old {} aside", target.display()))?;
    }
    std::fs::rename(&staged, &target)
        .with_context(|| format!("cannot rename {} to {}", staged.display(), target.display()))?;
    // Make the rename itself durable (best effort: not every platform can
    // sync a directory).
    if let Ok(dir) = File::open(&req.data_dir) {
        let _ = dir.sync_all();
    }
    drop(temp);
    Ok(Outcome::Installed(stamp))
}

/// The loader's error `e` about the staged copy `staged`, told about the
/// file the user has: the same file in the `--from` directory, or the entry
/// of the archive (local or downloaded).
fn name_source(e: crate::CifarError, staged: &Path, source: &Source) -> String {
    let (path, message) = match &e {
        crate::CifarError::Invalid { path, message } => (path, message.clone()),
        crate::CifarError::Io { path, source } => (path, format!("cannot read: {source}")),
        _ => return e.to_string(),
    };
    let Ok(rel) = path.strip_prefix(staged) else {
        return e.to_string();
    };
    let shown = match source {
        Source::Dir(dir) => crate::batches_dir(dir).join(rel).display().to_string(),
        Source::Archive(archive) => {
            format!(
                "{} (entry {BATCHES_DIR}/{})",
                archive.display(),
                rel.display()
            )
        }
        Source::Download { url, .. } => format!("{url} (entry {BATCHES_DIR}/{})", rel.display()),
    };
    format!("{shown}: {message}")
}

/// The stamp of `target` if it matches the files there (full re-hash).
fn trusted(target: &Path) -> Result<Stamp, String> {
    let stamp = Stamp::read(target)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no {}", crate::stamp::STAMP_FILE))?;
    stamp.verify(target)?;
    Ok(stamp)
}

/// Validate an extracted dir that already sits at the target, and stamp it.
fn stamp_in_place(req: &Request, target: &Path, options: &LoadOptions) -> anyhow::Result<Outcome> {
    match trusted(target) {
        Ok(stamp) if !req.force => return Ok(Outcome::AlreadyThere(stamp)),
        Ok(_) => {}
        // A stamp that does not match the files: the loader would refuse
        // them; with --force it is dropped and the files judged afresh.
        Err(why) if Stamp::path(target).exists() => {
            if !req.force {
                bail!(
                    "{} does not match its stamp ({why}); run again with --force to validate \
                     and stamp it afresh",
                    target.display()
                );
            }
            std::fs::remove_file(Stamp::path(target))
                .with_context(|| format!("cannot remove {}", Stamp::path(target).display()))?;
        }
        Err(_) => {}
    }
    println!("validating {} in place", target.display());
    crate::load_dir_with(target, options)
        .map_err(|e| anyhow::anyhow!("the data is invalid: {e}"))?;
    let digest = crate::compute_data_checksum(target)?;
    let source = std::path::absolute(target).unwrap_or_else(|_| target.to_path_buf());
    let stamp = Stamp::new(digest, source.display().to_string(), None, None, false);
    stamp.write(target)?;
    Ok(Outcome::Installed(stamp))
}

/// True when `a` and `b` are the same existing directory.
fn same_dir(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// When `archive.sha256` sits beside the archive (`sha256sum` format), the
/// archive must match it.
fn check_sidecar(archive: &Path, got: &Digests) -> anyhow::Result<()> {
    let mut name = archive.as_os_str().to_owned();
    name.push(".sha256");
    let sidecar = PathBuf::from(name);
    let Ok(text) = std::fs::read_to_string(&sidecar) else {
        return Ok(());
    };
    let want = text
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    if want == got.sha256 {
        println!("sha256 matches {}", sidecar.display());
        Ok(())
    } else {
        bail!(
            "{}: sha256 {} does not match {} ({want}): the archive is corrupt or truncated; \
             nothing was kept",
            archive.display(),
            got.sha256,
            sidecar.display()
        )
    }
}

/// Remove temp dirs of earlier runs that were killed (their process is gone).
fn remove_stale_temps(data_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(data_dir) else {
        return;
    };
    let can_check = Path::new("/proc/self").exists();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(TEMP_PREFIX)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        let alive = !can_check || Path::new("/proc").join(pid.to_string()).exists();
        if !alive && std::fs::remove_dir_all(entry.path()).is_ok() {
            println!(
                "removed {}: the staging folder of an interrupted fetch-data (process {pid} is \
                 gone)",
                entry.path().display()
            );
        }
    }
}
