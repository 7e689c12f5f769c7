//! Safe extraction of `cifar-10-binary.tar.gz`: only regular files named
//! `cifar-10-batches-bin/<one of the expected names>` are written, each to a
//! path we build ourselves inside the destination (never a path taken from the
//! archive), with a size cap; everything else (other names, `..`, absolute
//! paths, links, devices) is skipped.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read};
use std::path::{Component, Path};

use crate::{FileDigest, BATCHES_DIR, DATA_FILES, RECORD_BYTES};
use anyhow::{bail, Context};
use flate2::read::GzDecoder;

use super::digest::HashingWriter;

/// Other files archives hold that we keep (not needed, not validated).
const OPTIONAL_FILES: [&str; 2] = ["readme.html", "readme.txt"];
/// Size cap of the text files.
const TEXT_CAP: u64 = 1 << 20;
/// Size cap of a batch file when the record count is not fixed (tests).
const BIN_CAP: u64 = 64 << 20;

/// What an extraction produced.
#[derive(Debug)]
pub struct Extracted {
    /// Size and sha256 of each data file written.
    pub files: Vec<FileDigest>,
    /// Entries that were skipped (not expected), for the log.
    pub skipped: Vec<String>,
}

/// The cap on the size of entry `name`.
fn cap(name: &str, records_per_file: Option<usize>) -> u64 {
    if name.ends_with(".bin") {
        records_per_file.map_or(BIN_CAP, |n| (n * RECORD_BYTES) as u64)
    } else {
        TEXT_CAP
    }
}

/// The expected file an entry path names, if any: `cifar-10-batches-bin/NAME`
/// (an optional leading `./` allowed) with NAME a data or optional file.
fn expected_name(path: &Path) -> Option<&'static str> {
    let mut parts = path.components().filter(|c| *c != Component::CurDir);
    let dir = parts.next()?;
    let file = parts.next()?;
    if parts.next().is_some() || dir != Component::Normal(BATCHES_DIR.as_ref()) {
        return None;
    }
    let Component::Normal(file) = file else {
        return None;
    };
    DATA_FILES
        .iter()
        .chain(&OPTIONAL_FILES)
        .copied()
        .find(|&n| file == n)
}

/// True for the entry of the `cifar-10-batches-bin/` directory itself.
fn is_batches_dir(path: &Path) -> bool {
    let parts: Vec<Component> = path
        .components()
        .filter(|c| *c != Component::CurDir)
        .collect();
    parts == [Component::Normal(BATCHES_DIR.as_ref())]
}

/// Extract the expected entries of the `.tar.gz` stream `reader` into `dest`
/// (an existing, empty directory that becomes the batches dir). `what` names
/// the source in errors. Reads the gzip stream to its end, so a truncated
/// archive is detected even after the last needed entry.
pub fn extract<R: Read>(
    reader: R,
    dest: &Path,
    what: &str,
    records_per_file: Option<usize>,
) -> anyhow::Result<Extracted> {
    let mut reader = BufReader::with_capacity(1 << 20, reader);
    let head = reader
        .fill_buf()
        .with_context(|| format!("cannot read {what}"))?;
    if head.len() < 2 || head[..2] != [0x1f, 0x8b] {
        bail!(
            "{what} is not a gzip file (it starts with {:02x?}); expected \
             cifar-10-binary.tar.gz",
            &head[..head.len().min(4)]
        );
    }
    let corrupt = |e: io::Error| {
        if super::is_interrupted() {
            return anyhow::anyhow!("interrupted by Ctrl-C; nothing was kept");
        }
        anyhow::anyhow!(
            "{what} is truncated or corrupt ({e}): a cut-off download or not a .tar.gz; \
             nothing was kept"
        )
    };
    let mut archive = tar::Archive::new(GzDecoder::new(reader));
    let mut files = Vec::new();
    let mut seen = BTreeSet::new();
    let mut skipped = Vec::new();
    for entry in archive.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        let path = entry.path().map_err(corrupt)?.into_owned();
        let kind = entry.header().entry_type();
        let name = match expected_name(&path) {
            Some(name) if kind.is_file() => name,
            _ => {
                if !(kind.is_dir() && is_batches_dir(&path)) {
                    skipped.push(path.display().to_string());
                }
                continue;
            }
        };
        if !seen.insert(name) {
            bail!("{what} holds {BATCHES_DIR}/{name} twice: not a CIFAR-10 archive");
        }
        let size = entry.size();
        let limit = cap(name, records_per_file);
        if size > limit {
            bail!(
                "{what}: {BATCHES_DIR}/{name} is {size} bytes, expected at most {limit}: not a \
                 standard CIFAR-10 batch"
            );
        }
        let target = dest.join(name);
        let file = File::create_new(&target)
            .with_context(|| format!("cannot create {}", target.display()))?;
        let mut out = HashingWriter::new(BufWriter::with_capacity(1 << 20, file));
        io::copy(&mut entry, &mut out).map_err(corrupt)?;
        let (bytes, sha256, out) = out.finish();
        out.into_inner()
            .map_err(|e| e.into_error())
            .and_then(|f| f.sync_all())
            .with_context(|| format!("cannot write {}", target.display()))?;
        if DATA_FILES.contains(&name) {
            files.push(FileDigest {
                name: name.to_string(),
                bytes,
                sha256,
            });
        }
    }
    // The rest of the gzip stream (tar padding): reading it checks the gzip
    // trailer (CRC and length), so a cut-off archive cannot pass.
    let mut gz = archive.into_inner();
    io::copy(&mut gz, &mut io::sink()).map_err(corrupt)?;
    let missing: Vec<String> = DATA_FILES
        .iter()
        .filter(|n| !seen.contains(*n))
        .map(|n| format!("{BATCHES_DIR}/{n}"))
        .collect();
    if !missing.is_empty() {
        bail!(
            "{what} lacks {}: not a complete CIFAR-10 binary archive",
            missing.join(", ")
        );
    }
    Ok(Extracted { files, skipped })
}

/// Copy the data files of an extracted batches dir `src` into `dest`,
/// hashing them on the way.
pub fn copy_dir(
    src: &Path,
    dest: &Path,
    records_per_file: Option<usize>,
) -> anyhow::Result<Vec<FileDigest>> {
    // Say what an odd file is (a FIFO would also block the copy forever).
    for name in DATA_FILES {
        match crate::data_file_problem(&src.join(name)) {
            None | Some("missing") => {}
            Some(what) => bail!(
                "{}: {what}, not a regular file: not a CIFAR-10 data file",
                src.join(name).display()
            ),
        }
    }
    let missing: Vec<&str> = DATA_FILES
        .iter()
        .copied()
        .filter(|n| crate::data_file_problem(&src.join(n)).is_some())
        .collect();
    if !missing.is_empty() {
        bail!(
            "{} lacks {}: not a complete {BATCHES_DIR}/ directory",
            src.display(),
            missing.join(", ")
        );
    }
    let mut files = Vec::new();
    for name in DATA_FILES {
        let from = src.join(name);
        let to = dest.join(name);
        let mut input =
            File::open(&from).with_context(|| format!("cannot read {}", from.display()))?;
        let size = input.metadata()?.len();
        let limit = cap(name, records_per_file);
        if size > limit {
            bail!(
                "{}: {size} bytes, expected at most {limit}: not a standard CIFAR-10 batch",
                from.display()
            );
        }
        let out =
            File::create_new(&to).with_context(|| format!("cannot create {}", to.display()))?;
        let mut out = HashingWriter::new(BufWriter::with_capacity(1 << 20, out));
        io::copy(&mut input, &mut out)
            .with_context(|| format!("cannot copy {}", from.display()))?;
        let (bytes, sha256, out) = out.finish();
        out.into_inner()
            .map_err(|e| e.into_error())
            .and_then(|f| f.sync_all())
            .with_context(|| format!("cannot write {}", to.display()))?;
        files.push(FileDigest {
            name: name.to_string(),
            bytes,
            sha256,
        });
    }
    Ok(files)
}
