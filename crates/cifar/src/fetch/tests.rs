//! fetch-data on small generated archives (4 records per batch file) and a
//! tiny HTTP server on 127.0.0.1: no network, no real data.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use crate::stamp::Stamp;
use crate::{Cifar10, LoadOptions, BATCHES_DIR, DATA_FILES, META_FILE, TEST_FILE};
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

use super::*;

const RECORDS: usize = 4;

/// One archive entry: a name (written raw into the header, so `..` and
/// absolute names are possible), a type and the contents.
struct Entry {
    name: String,
    kind: tar::EntryType,
    data: Vec<u8>,
}

fn file(name: &str, data: Vec<u8>) -> Entry {
    Entry {
        name: name.into(),
        kind: tar::EntryType::Regular,
        data,
    }
}

/// The entries of a correct archive of `data`.
fn entries(data: &Cifar10) -> Vec<Entry> {
    let mut v = vec![Entry {
        name: format!("{BATCHES_DIR}/"),
        kind: tar::EntryType::Directory,
        data: vec![],
    }];
    for (i, b) in data.train_batches.iter().enumerate() {
        v.push(file(
            &format!("{BATCHES_DIR}/data_batch_{}.bin", i + 1),
            b.to_file_bytes(),
        ));
    }
    v.push(file(
        &format!("{BATCHES_DIR}/{TEST_FILE}"),
        data.test.to_file_bytes(),
    ));
    let meta = data.class_names.join("\n") + "\n\n";
    v.push(file(
        &format!("{BATCHES_DIR}/{META_FILE}"),
        meta.into_bytes(),
    ));
    v.push(file(
        &format!("{BATCHES_DIR}/readme.txt"),
        b"generated".to_vec(),
    ));
    v
}

/// A .tar.gz of `entries`.
fn tar_gz(entries: &[Entry]) -> Vec<u8> {
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    for e in entries {
        let mut h = tar::Header::new_old();
        let name = e.name.as_bytes();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_entry_type(e.kind);
        h.set_mode(0o644);
        h.set_size(e.data.len() as u64);
        if e.kind == tar::EntryType::Symlink {
            h.set_link_name("/etc/passwd").unwrap();
        }
        h.set_cksum();
        builder.append(&h, e.data.as_slice()).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

fn md5_hex(bytes: &[u8]) -> String {
    use md5::Digest as _;
    format!("{:x}", md5::Md5::digest(bytes))
}

fn request(data_dir: &Path, source: Source) -> Request {
    Request {
        data_dir: data_dir.to_path_buf(),
        source,
        force: false,
        records_per_file: Some(RECORDS),
        official_sha256: "0".repeat(64),
        display: Display::Hidden,
    }
}

/// A scratch dir with `archive.tar.gz` holding `bytes`; the data dir (not
/// created) is `scratch/data`.
fn scratch_with_archive(bytes: &[u8]) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("archive.tar.gz");
    std::fs::write(&archive, bytes).unwrap();
    let data_dir = tmp.path().join("data");
    (tmp, archive, data_dir)
}

/// Names in `dir` (sorted).
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn small() -> LoadOptions {
    LoadOptions {
        records_per_file: Some(RECORDS),
    }
}

/// Fetch from `archive` into a fresh data dir: must fail with a message
/// containing every `needles`, and leave no data dir behind.
fn refused(bytes: &[u8], needles: &[&str]) {
    let (_tmp, archive, data_dir) = scratch_with_archive(bytes);
    let e = fetch(&request(&data_dir, Source::Archive(archive))).unwrap_err();
    let m = format!("{e:#}");
    for n in needles {
        assert!(m.contains(n), "{n:?} not in: {m}");
    }
    assert!(!data_dir.exists(), "the data dir was left behind");
}

#[test]
fn archive_installs_validates_stamps_and_rerun_is_a_no_op() {
    let data = Cifar10::synthetic(RECORDS, RECORDS, 1);
    let bytes = tar_gz(&entries(&data));
    let (_tmp, archive, data_dir) = scratch_with_archive(&bytes);
    let req = request(&data_dir, Source::Archive(archive.clone()));

    let Outcome::Installed(stamp) = fetch(&req).unwrap() else {
        panic!("expected an install")
    };
    assert_eq!(
        listing(&data_dir),
        vec![BATCHES_DIR.to_string()],
        "no temp left"
    );
    let target = data_dir.join(BATCHES_DIR);
    let mut want: Vec<String> = DATA_FILES.iter().map(|s| s.to_string()).collect();
    want.extend(["fetch-stamp.json".to_string(), "readme.txt".to_string()]);
    want.sort();
    assert_eq!(listing(&target), want);
    let back = crate::load_dir_with(&data_dir, &small()).unwrap();
    assert_eq!(back.train_batches, data.train_batches);
    assert_eq!(back.test, data.test);

    assert_eq!(
        stamp.source_sha256.as_deref(),
        Some(sha256_hex(&bytes).as_str())
    );
    assert_eq!(stamp.source_md5.as_deref(), Some(md5_hex(&bytes).as_str()));
    assert!(!stamp.official);
    assert_eq!(Stamp::read(&target).unwrap().as_ref(), Some(&stamp));
    assert_eq!(crate::data_checksum(&data_dir).unwrap(), stamp.data_sha256);
    assert_eq!(
        crate::compute_data_checksum(&data_dir).unwrap().data_sha256,
        stamp.data_sha256
    );

    // Again: nothing to do, nothing touched.
    let before = std::fs::metadata(target.join("data_batch_1.bin"))
        .unwrap()
        .modified()
        .unwrap();
    assert!(matches!(fetch(&req).unwrap(), Outcome::AlreadyThere(s) if s == stamp));
    let after = std::fs::metadata(target.join("data_batch_1.bin"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(before, after);
}

#[test]
fn official_archive_is_recognised_by_sha256() {
    let data = Cifar10::synthetic(RECORDS, RECORDS, 2);
    let bytes = tar_gz(&entries(&data));
    let (_tmp, archive, data_dir) = scratch_with_archive(&bytes);
    let mut req = request(&data_dir, Source::Archive(archive));
    req.official_sha256 = sha256_hex(&bytes);
    let Outcome::Installed(stamp) = fetch(&req).unwrap() else {
        panic!("expected an install")
    };
    assert!(stamp.official);
}

#[test]
fn force_replaces_valid_data() {
    let a = tar_gz(&entries(&Cifar10::synthetic(RECORDS, RECORDS, 3)));
    let other = Cifar10::synthetic(RECORDS, RECORDS, 4);
    let b = tar_gz(&entries(&other));
    let (tmp, archive, data_dir) = scratch_with_archive(&a);
    fetch(&request(&data_dir, Source::Archive(archive))).unwrap();
    let archive_b = tmp.path().join("b.tar.gz");
    std::fs::write(&archive_b, &b).unwrap();
    let mut req = request(&data_dir, Source::Archive(archive_b));
    assert!(matches!(fetch(&req).unwrap(), Outcome::AlreadyThere(_)));
    req.force = true;
    assert!(matches!(fetch(&req).unwrap(), Outcome::Installed(_)));
    assert_eq!(listing(&data_dir), vec![BATCHES_DIR.to_string()]);
    let back = crate::load_dir_with(&data_dir, &small()).unwrap();
    assert_eq!(back.test, other.test);
}

#[test]
fn unverified_existing_data_needs_force() {
    let data = Cifar10::synthetic(RECORDS, RECORDS, 5);
    let (_tmp, archive, data_dir) = scratch_with_archive(&tar_gz(&entries(&data)));
    // Extracted by hand: no stamp.
    Cifar10::synthetic(RECORDS, RECORDS, 6)
        .write_dir(&data_dir)
        .unwrap();
    let mut req = request(&data_dir, Source::Archive(archive));
    let m = format!("{:#}", fetch(&req).unwrap_err());
    assert!(m.contains("is not verified fetch-data output"), "{m}");
    assert!(m.contains("--force"), "{m}");
    // The hand-made data is untouched.
    assert!(data_dir.join(BATCHES_DIR).join(TEST_FILE).is_file());
    req.force = true;
    fetch(&req).unwrap();
    assert_eq!(
        crate::load_dir_with(&data_dir, &small()).unwrap().test,
        data.test
    );

    // A stamped dir whose file was changed afterwards is not trusted either.
    let f = data_dir.join(BATCHES_DIR).join("data_batch_3.bin");
    let mut bytes = std::fs::read(&f).unwrap();
    bytes[7] ^= 0xff;
    std::fs::write(&f, &bytes).unwrap();
    req.force = false;
    let m = format!("{:#}", fetch(&req).unwrap_err());
    assert!(m.contains("data_batch_3.bin has sha256"), "{m}");
}

#[test]
fn truncated_archive_is_refused_and_leaves_nothing() {
    let bytes = tar_gz(&entries(&Cifar10::synthetic(RECORDS, RECORDS, 7)));
    for cut in [bytes.len() / 2, bytes.len() - 3, 20] {
        refused(
            &bytes[..cut],
            &["archive.tar.gz", "is truncated or corrupt"],
        );
    }
}

#[test]
fn non_gzip_input_is_refused() {
    refused(b"<html>404 Not Found</html>", &["is not a gzip file"]);
    refused(b"", &["is not a gzip file"]);
}

#[test]
fn archive_without_the_expected_files_is_refused() {
    let data = Cifar10::synthetic(RECORDS, RECORDS, 8);
    let mut e = entries(&data);
    e.retain(|e| !e.name.ends_with(TEST_FILE) && !e.name.ends_with(META_FILE));
    refused(
        &tar_gz(&e),
        &["lacks cifar-10-batches-bin/test_batch.bin, cifar-10-batches-bin/batches.meta.txt"],
    );
    // Right names in the wrong folder do not count.
    let mut e = entries(&data);
    for x in &mut e {
        x.name = x.name.replace(BATCHES_DIR, "other");
    }
    refused(
        &tar_gz(&e),
        &["lacks cifar-10-batches-bin/data_batch_1.bin"],
    );
}

#[test]
fn batch_file_of_wrong_size_is_refused() {
    let data = Cifar10::synthetic(RECORDS, RECORDS, 9);
    let mut e = entries(&data);
    // Three records instead of four.
    e[2].data.truncate(3 * crate::RECORD_BYTES);
    refused(
        &tar_gz(&e),
        &["data_batch_2.bin", "3 records", "expected 4 records"],
    );
    // Not a whole number of records.
    let mut e = entries(&data);
    e[3].data.truncate(2 * crate::RECORD_BYTES + 10);
    refused(
        &tar_gz(&e),
        &[
            "data_batch_3.bin",
            "not a whole number of 3073-byte records",
        ],
    );
    // The archive is named, never the deleted staging folder.
    let mut e = entries(&data);
    e[2].data.truncate(3 * crate::RECORD_BYTES);
    refused(
        &tar_gz(&e),
        &["archive.tar.gz (entry cifar-10-batches-bin/data_batch_2.bin): 3 records"],
    );
    // Bigger than a batch can be: refused before writing it.
    let mut e = entries(&data);
    e[1].data.extend(vec![0; crate::RECORD_BYTES]);
    refused(
        &tar_gz(&e),
        &["data_batch_1.bin is 15365 bytes, expected at most 12292"],
    );
}

#[test]
fn label_out_of_range_is_refused() {
    let data = Cifar10::synthetic(RECORDS, RECORDS, 10);
    let mut e = entries(&data);
    let test = e.iter_mut().find(|e| e.name.ends_with(TEST_FILE)).unwrap();
    test.data[2 * crate::RECORD_BYTES] = 12;
    refused(
        &tar_gz(&e),
        &[
            "test_batch.bin",
            "record 2 of 4",
            "label 12 is out of range 0..9",
        ],
    );
}

#[test]
fn bad_class_names_are_refused() {
    let data = Cifar10::synthetic(RECORDS, RECORDS, 11);
    let mut e = entries(&data);
    let meta = e.iter_mut().find(|e| e.name.ends_with(META_FILE)).unwrap();
    meta.data = b"cat\ndog\n".to_vec();
    refused(
        &tar_gz(&e),
        &["batches.meta.txt", "expected 10 class names"],
    );
}

#[test]
fn extraction_never_writes_outside_the_target() {
    let data = Cifar10::synthetic(RECORDS, RECORDS, 12);
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("evil");
    let mut e = entries(&data);
    e.push(file("../evil", b"x".to_vec()));
    e.push(file(&format!("{BATCHES_DIR}/../../evil"), b"x".to_vec()));
    e.push(file(&outside.display().to_string(), b"x".to_vec()));
    e.push(file(&format!("{BATCHES_DIR}/extra.bin"), b"x".to_vec()));
    let (_t, archive, data_dir) = scratch_with_archive(&tar_gz(&e));
    fetch(&request(&data_dir, Source::Archive(archive))).unwrap();
    assert!(!outside.exists());
    assert!(!data_dir.join("evil").exists());
    assert!(!data_dir.join(BATCHES_DIR).join("extra.bin").exists());

    // A link where a data file should be is not followed, so the file is missing.
    let mut e = entries(&data);
    e.retain(|e| !e.name.ends_with("data_batch_1.bin"));
    e.push(Entry {
        name: format!("{BATCHES_DIR}/data_batch_1.bin"),
        kind: tar::EntryType::Symlink,
        data: vec![],
    });
    refused(
        &tar_gz(&e),
        &["lacks cifar-10-batches-bin/data_batch_1.bin"],
    );
}

#[test]
fn duplicate_entries_are_refused() {
    let data = Cifar10::synthetic(RECORDS, RECORDS, 13);
    let mut e = entries(&data);
    e.push(file(
        &format!("{BATCHES_DIR}/data_batch_1.bin"),
        data.train_batches[1].to_file_bytes(),
    ));
    refused(
        &tar_gz(&e),
        &["holds cifar-10-batches-bin/data_batch_1.bin twice"],
    );
}

#[test]
fn sidecar_checksum_must_match() {
    let bytes = tar_gz(&entries(&Cifar10::synthetic(RECORDS, RECORDS, 14)));
    let (tmp, archive, data_dir) = scratch_with_archive(&bytes);
    let sidecar = tmp.path().join("archive.tar.gz.sha256");
    std::fs::write(&sidecar, format!("{}  archive.tar.gz\n", "ab".repeat(32))).unwrap();
    let m = format!(
        "{:#}",
        fetch(&request(&data_dir, Source::Archive(archive.clone()))).unwrap_err()
    );
    assert!(
        m.contains("does not match") && m.contains("archive.tar.gz.sha256"),
        "{m}"
    );
    assert!(!data_dir.exists());
    std::fs::write(
        &sidecar,
        format!("{}  archive.tar.gz\n", sha256_hex(&bytes)),
    )
    .unwrap();
    fetch(&request(&data_dir, Source::Archive(archive))).unwrap();
}

#[test]
fn extracted_dir_or_its_parent_is_accepted() {
    let data = Cifar10::synthetic(RECORDS, RECORDS, 15);
    let src = tempfile::tempdir().unwrap();
    let batches = data.write_dir(src.path()).unwrap();
    for from in [src.path().to_path_buf(), batches.clone()] {
        let dst = tempfile::tempdir().unwrap();
        let data_dir = dst.path().join("d");
        let Outcome::Installed(stamp) = fetch(&request(&data_dir, Source::Dir(from))).unwrap()
        else {
            panic!("expected an install")
        };
        assert_eq!(stamp.source_sha256, None);
        assert_eq!(listing(&data_dir), vec![BATCHES_DIR.to_string()]);
        assert_eq!(
            crate::load_dir_with(&data_dir, &small()).unwrap().test,
            data.test
        );
        assert_eq!(
            stamp.data_sha256,
            crate::compute_data_checksum(&batches).unwrap().data_sha256
        );
    }
    // An extracted dir that already is the target: validated and stamped in place.
    let req = request(src.path(), Source::Dir(batches.clone()));
    assert!(matches!(fetch(&req).unwrap(), Outcome::Installed(_)));
    assert!(Stamp::read(&batches).unwrap().is_some());
    assert!(matches!(fetch(&req).unwrap(), Outcome::AlreadyThere(_)));

    // A file too short in the --from dir is named there, not in the
    // (deleted) staging folder.
    let short = tempfile::tempdir().unwrap();
    let short_batches = data.write_dir(short.path()).unwrap();
    let f = short_batches.join("data_batch_2.bin");
    let bytes = std::fs::read(&f).unwrap();
    std::fs::write(&f, &bytes[..bytes.len() - 100]).unwrap();
    let dst = tempfile::tempdir().unwrap();
    let data_dir = dst.path().join("d");
    let m = format!(
        "{:#}",
        fetch(&request(&data_dir, Source::Dir(short.path().into()))).unwrap_err()
    );
    assert!(m.contains(&format!("{}: ", f.display())), "{m}");
    assert!(!m.contains(".fetch-data-"), "{m}");
    assert!(!data_dir.exists());

    // A FIFO in the --from dir is named for what it is (and not opened).
    let fifo = tempfile::tempdir().unwrap();
    let fifo_batches = data.write_dir(fifo.path()).unwrap();
    let f = fifo_batches.join("data_batch_4.bin");
    std::fs::remove_file(&f).unwrap();
    assert!(std::process::Command::new("mkfifo")
        .arg(&f)
        .status()
        .unwrap()
        .success());
    let m = format!(
        "{:#}",
        fetch(&request(&data_dir, Source::Dir(fifo.path().into()))).unwrap_err()
    );
    assert!(m.contains("data_batch_4.bin: a FIFO (named pipe)"), "{m}");

    // An incomplete dir is refused.
    std::fs::remove_file(batches.join("data_batch_5.bin")).unwrap();
    let dst = tempfile::tempdir().unwrap();
    let data_dir = dst.path().join("d");
    let m = format!(
        "{:#}",
        fetch(&request(&data_dir, Source::Dir(src.path().into()))).unwrap_err()
    );
    assert!(m.contains("lacks data_batch_5.bin"), "{m}");
    assert!(!data_dir.exists());
}

#[test]
fn stale_temp_dirs_of_dead_runs_are_removed() {
    let bytes = tar_gz(&entries(&Cifar10::synthetic(RECORDS, RECORDS, 16)));
    let (_tmp, archive, data_dir) = scratch_with_archive(&bytes);
    let stale = data_dir.join(".fetch-data-4000000000-abc");
    std::fs::create_dir_all(stale.join(BATCHES_DIR)).unwrap();
    let other = data_dir.join("notes.txt");
    std::fs::write(&other, "mine").unwrap();
    let req = request(&data_dir, Source::Archive(archive));
    fetch(&req).unwrap();
    assert!(!stale.exists());
    assert!(other.exists(), "only our own temp dirs are removed");

    // Killed (kill -9) after the data was installed once: the next run finds
    // valid data and has nothing to do, but still removes the dead run's folder.
    std::fs::create_dir_all(stale.join(BATCHES_DIR)).unwrap();
    std::fs::write(stale.join(BATCHES_DIR).join("data_batch_1.bin"), b"x").unwrap();
    let alive = data_dir.join(format!(".fetch-data-{}-live", std::process::id()));
    std::fs::create_dir_all(&alive).unwrap();
    assert!(matches!(fetch(&req).unwrap(), Outcome::AlreadyThere(_)));
    assert!(!stale.exists(), "a dead run's staging folder was left");
    assert!(alive.exists(), "a live run's staging folder was removed");
}

#[test]
fn commands_that_need_missing_data_fetch_it_themselves() {
    let data = Cifar10::synthetic(RECORDS, RECORDS, 17);
    let bytes = tar_gz(&entries(&data));
    let (tmp, archive, data_dir) = scratch_with_archive(&bytes);
    let fetched = ensure(
        &data_dir,
        Some(archive.clone()),
        Some(RECORDS),
        Display::Hidden,
    );
    assert!(fetched.unwrap(), "the missing data was not fetched");
    assert_eq!(
        crate::load_dir_with(&data_dir, &small()).unwrap().test,
        data.test
    );
    assert!(Stamp::read(&data_dir.join(BATCHES_DIR)).unwrap().is_some());
    // Present: nothing to do (no source needed).
    let again = ensure(&data_dir, None, Some(RECORDS), Display::Hidden).unwrap();
    assert!(!again);
    // Present but damaged: not replaced behind the user's back.
    std::fs::remove_file(data_dir.join(BATCHES_DIR).join(TEST_FILE)).unwrap();
    assert!(!ensure(&data_dir, Some(archive), Some(RECORDS), Display::Hidden).unwrap());
    assert!(!data_dir.join(BATCHES_DIR).join(TEST_FILE).exists());

    // A failed fetch gives fetch-data's message, leaves nothing, and says
    // how to point the command at a local archive.
    let bad = tmp.path().join("bad.tar.gz");
    std::fs::write(&bad, b"<html>").unwrap();
    let other = tmp.path().join("other");
    let e = ensure(&other, Some(bad), Some(RECORDS), Display::Hidden).unwrap_err();
    let m = format!("{e:#}");
    assert!(m.contains("is not a gzip file"), "{m}");
    assert!(m.contains("--data-from") && m.contains(FROM_ENV), "{m}");
    assert!(!other.exists());
    let e = ensure(
        &other,
        Some(tmp.path().join("absent.tar.gz")),
        None,
        Display::Hidden,
    );
    let m = format!("{:#}", e.unwrap_err());
    assert!(
        m.contains("--data-from") && m.contains("absent.tar.gz"),
        "{m}"
    );
}

// ---- downloads -------------------------------------------------------------

/// Serve one HTTP response per connection (`responses` in order) on
/// 127.0.0.1; returns the base URL.
fn serve(responses: Vec<Vec<u8>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/cifar-10-binary.tar.gz",
        listener.local_addr().unwrap()
    );
    std::thread::spawn(move || {
        for response in responses {
            let Ok((mut stream, _)) = listener.accept() else {
                return;
            };
            // Read the request head before answering.
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                match stream.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            let _ = stream.write_all(&response);
            let _ = stream.flush();
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    });
    url
}

/// A 200 response announcing `announced` bytes and sending `body`.
fn ok(announced: usize, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/x-gzip\r\nContent-Length: \
         {announced}\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

fn expected_of(bytes: &[u8]) -> Expected {
    Expected {
        size: bytes.len() as u64,
        md5: md5_hex(bytes),
        sha256: sha256_hex(bytes),
    }
}

fn download_request(data_dir: &Path, url: String, expected: Expected) -> Request {
    request(data_dir, Source::Download { url, expected })
}

#[test]
fn download_from_a_local_server_installs() {
    let data = Cifar10::synthetic(RECORDS, RECORDS, 20);
    let bytes = tar_gz(&entries(&data));
    let url = serve(vec![ok(bytes.len(), &bytes)]);
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let mut req = download_request(&data_dir, url.clone(), expected_of(&bytes));
    req.official_sha256 = sha256_hex(&bytes);
    let Outcome::Installed(stamp) = fetch(&req).unwrap() else {
        panic!("expected an install")
    };
    assert!(stamp.official);
    assert_eq!(stamp.source, url);
    assert_eq!(listing(&data_dir), vec![BATCHES_DIR.to_string()]);
    assert_eq!(
        crate::load_dir_with(&data_dir, &small()).unwrap().test,
        data.test
    );
    // Second run: no-op, no connection needed (the server is gone).
    assert!(matches!(fetch(&req).unwrap(), Outcome::AlreadyThere(_)));
}

/// A download that must fail with all `needles` and leave no data dir.
fn download_refused(responses: Vec<Vec<u8>>, expected: Expected, needles: &[&str]) {
    let url = serve(responses);
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let e = fetch(&download_request(&data_dir, url, expected)).unwrap_err();
    let m = format!("{e:#}");
    for n in needles {
        assert!(m.contains(n), "{n:?} not in: {m}");
    }
    assert!(!data_dir.exists(), "the data dir was left behind");
}

#[test]
fn download_cut_off_half_way_is_refused() {
    let bytes = tar_gz(&entries(&Cifar10::synthetic(RECORDS, RECORDS, 21)));
    let half = &bytes[..bytes.len() / 2];
    download_refused(
        vec![ok(bytes.len(), half)],
        expected_of(&bytes),
        &["cut off after", "nothing was kept", "--from"],
    );
    // Without a Content-Length the short body is caught by the size check.
    let mut r = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_vec();
    r.extend_from_slice(half);
    download_refused(
        vec![r],
        expected_of(&bytes),
        &["cut off after", "the connection ended early"],
    );
}

#[test]
fn failed_download_leaves_an_existing_data_dir_as_it_was() {
    let bytes = tar_gz(&entries(&Cifar10::synthetic(RECORDS, RECORDS, 24)));
    let url = serve(vec![ok(bytes.len(), &bytes[..bytes.len() / 3])]);
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("notes.txt"), "mine").unwrap();
    let e = fetch(&download_request(tmp.path(), url, expected_of(&bytes))).unwrap_err();
    assert!(format!("{e:#}").contains("cut off"));
    assert_eq!(listing(tmp.path()), vec!["notes.txt".to_string()]);
}

#[test]
fn download_with_wrong_checksum_is_refused() {
    let bytes = tar_gz(&entries(&Cifar10::synthetic(RECORDS, RECORDS, 22)));
    let mut wrong = expected_of(&bytes);
    wrong.sha256 = "0".repeat(64);
    download_refused(
        vec![ok(bytes.len(), &bytes)],
        wrong,
        &[
            "sha256",
            "does not match the expected 0000",
            "nothing was kept",
        ],
    );
    let mut wrong = expected_of(&bytes);
    wrong.md5 = "f".repeat(32);
    download_refused(
        vec![ok(bytes.len(), &bytes)],
        wrong,
        &["md5", "does not match"],
    );
}

#[test]
fn download_of_the_wrong_size_is_refused() {
    let bytes = tar_gz(&entries(&Cifar10::synthetic(RECORDS, RECORDS, 23)));
    let mut exp = expected_of(&bytes);
    exp.size += 1;
    download_refused(vec![ok(bytes.len(), &bytes)], exp, &["announces", "bytes"]);
    // No length announced, more bytes than expected.
    let mut r = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_vec();
    r.extend_from_slice(&bytes);
    let mut exp = expected_of(&bytes);
    exp.size -= 1;
    download_refused(vec![r], exp, &["sends more than the expected"]);
}

#[test]
fn http_error_status_is_refused() {
    let body = b"not here";
    let mut r = format!(
        "HTTP/1.1 404 Not Found\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    download_refused(vec![r], expected_of(b"x"), &["HTTP 404", "--from"]);
}

#[test]
fn loopback_http_does_not_follow_redirects() {
    let r = b"HTTP/1.1 302 Found\r\nLocation: http://example.com/a.tar.gz\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec();
    download_refused(vec![r], expected_of(b"x"), &["HTTP 302"]);
}

#[test]
fn unreachable_url_suggests_from() {
    // A port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let url = format!("http://127.0.0.1:{port}/cifar-10-binary.tar.gz");
    let e = fetch(&download_request(&data_dir, url.clone(), expected_of(b"x"))).unwrap_err();
    let m = format!("{e:#}");
    assert!(m.contains(&format!("cannot reach {url}")), "{m}");
    assert!(m.contains("cargo xtask fetch-data --from"), "{m}");
    assert!(!data_dir.exists());
}

#[test]
fn plain_http_is_refused_except_for_loopback() {
    use download::{check_url, Transport};
    assert_eq!(check_url(OFFICIAL_URL).unwrap(), Transport::Https);
    for url in [
        "http://127.0.0.1:8000/a.tar.gz",
        "http://127.9.9.9/a",
        "http://[::1]:8000/a",
        "http://user@127.0.0.1/a",
    ] {
        assert_eq!(check_url(url).unwrap(), Transport::LoopbackHttp, "{url}");
    }
    for url in [
        "http://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
        "http://localhost/a",
        "http://127.0.0.1.example.com/a",
        "http://127.0.0.1@example.com/a",
        "http://10.0.0.1/a",
    ] {
        let m = check_url(url).unwrap_err().to_string();
        assert!(m.contains("refusing plain http"), "{url}: {m}");
    }
    let m = check_url("ftp://example.com/a").unwrap_err().to_string();
    assert!(m.contains("unsupported URL"), "{m}");
    // And fetch refuses before touching anything.
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let e = fetch(&download_request(
        &data_dir,
        "http://example.com/a.tar.gz".into(),
        expected_of(b"x"),
    ))
    .unwrap_err();
    assert!(e.to_string().contains("refusing plain http"));
    assert!(!data_dir.exists());
}
