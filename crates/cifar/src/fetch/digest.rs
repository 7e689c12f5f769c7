//! Checksums computed while bytes stream through: a reader/writer adapter
//! that feeds sha256 and md5 (and counts bytes) on the way.

use std::io::{self, Read, Write};

use md5::Md5;
use sha2::{Digest, Sha256};

/// Size, sha256 and md5 of a byte stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Digests {
    /// Bytes seen.
    pub size: u64,
    /// sha256, lower-case hex.
    pub sha256: String,
    /// md5, lower-case hex.
    pub md5: String,
}

/// Running sha256 + md5 + byte count.
#[derive(Clone, Default)]
pub struct Hasher {
    sha256: Sha256,
    md5: Md5,
    size: u64,
}

impl Hasher {
    /// Feed bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.sha256.update(bytes);
        self.md5.update(bytes);
        self.size += bytes.len() as u64;
    }

    /// Bytes fed so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The digests of everything fed.
    pub fn finish(self) -> Digests {
        Digests {
            size: self.size,
            sha256: hex(&self.sha256.finalize()),
            md5: hex(&self.md5.finalize()),
        }
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(2 * bytes.len()), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// A reader that hashes what is read through it and reports progress.
pub struct HashingReader<R, F: FnMut(u64)> {
    inner: R,
    hasher: Hasher,
    on_read: F,
}

impl<R: Read, F: FnMut(u64)> HashingReader<R, F> {
    /// Wrap `inner`; `on_read(n)` is called after each read of `n > 0` bytes.
    pub fn new(inner: R, on_read: F) -> Self {
        Self {
            inner,
            hasher: Hasher::default(),
            on_read,
        }
    }

    /// Read the rest of the stream (so the digests cover all of it) and
    /// return the digests.
    pub fn finish(mut self) -> io::Result<Digests> {
        io::copy(&mut self, &mut io::sink())?;
        Ok(self.hasher.finish())
    }
}

impl<R: Read, F: FnMut(u64)> Read for HashingReader<R, F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        super::check_interrupted()?;
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.hasher.update(&buf[..n]);
            (self.on_read)(n as u64);
        }
        Ok(n)
    }
}

/// A writer that computes the size and sha256 of what is written through it
/// (the extracted files need no md5).
pub struct HashingWriter<W> {
    inner: W,
    sha256: Sha256,
    size: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wrap `inner`.
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            sha256: Sha256::new(),
            size: 0,
        }
    }

    /// Size and sha256 (hex) of what was written, and the inner writer.
    pub fn finish(self) -> (u64, String, W) {
        (self.size, hex(&self.sha256.finalize()), self.inner)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        super::check_interrupted()?;
        let n = self.inner.write(buf)?;
        self.sha256.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
