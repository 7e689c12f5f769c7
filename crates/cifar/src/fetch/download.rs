//! The download: HTTPS only (plain `http://` is accepted for loopback IP
//! addresses alone, so tests can serve archives from 127.0.0.1), rustls, the
//! usual proxy variables (`HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`, ... read by
//! ureq), size and checksums verified while the bytes stream into a file.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};

use super::digest::{Digests, Hasher};
use super::progress::{mib, Display, Progress};
use super::{check_interrupted, Expected};

/// What a URL may be fetched with.
#[derive(Debug, PartialEq, Eq)]
pub enum Transport {
    /// `https://`: TLS, proxies from the environment.
    Https,
    /// `http://` to a loopback IP literal (tests): no TLS, no proxy.
    LoopbackHttp,
}

/// The hint every "cannot download" error ends with.
pub fn offline_hint() -> String {
    format!(
        "if this machine cannot reach the host, get {} elsewhere and run \
         `cargo xtask fetch-data --from PATH/cifar-10-binary.tar.gz`",
        super::OFFICIAL_URL
    )
}

/// Check `url` against the policy: `https://` anywhere, `http://` only to a
/// loopback IP literal (127.0.0.0/8, `[::1]`); nothing else.
pub fn check_url(url: &str) -> anyhow::Result<Transport> {
    if url.starts_with("https://") {
        return Ok(Transport::Https);
    }
    if let Some(rest) = url.strip_prefix("http://") {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let host_port = authority.rsplit('@').next().unwrap_or("");
        let host = if let Some(v6) = host_port.strip_prefix('[') {
            v6.split(']').next().unwrap_or("")
        } else {
            host_port.split(':').next().unwrap_or("")
        };
        if host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()) {
            return Ok(Transport::LoopbackHttp);
        }
        bail!(
            "refusing plain http for {url}: the download must use https (plain http is only \
             accepted for a loopback address such as 127.0.0.1, for tests)"
        );
    }
    bail!("unsupported URL {url}: expected https://...")
}

/// Download `url` into `dest` (a new file), checking the size and both
/// checksums against `expected` while streaming. On any error `dest` may be
/// partly written: the caller owns it (it lives in a temp dir).
pub fn download(
    url: &str,
    dest: &Path,
    expected: &Expected,
    display: Display,
) -> anyhow::Result<Digests> {
    let transport = check_url(url)?;
    let mut config = ureq::Agent::config_builder()
        .https_only(transport == Transport::Https)
        .http_status_as_error(false)
        .max_redirects(10)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_per_read(Some(Duration::from_secs(60)));
    if transport == Transport::LoopbackHttp {
        // Tests only: no proxy, and no redirect (it could lead off the loopback).
        config = config.proxy(None).max_redirects(0);
    }
    let agent = ureq::Agent::new_with_config(config.build());
    let response = agent
        .get(url)
        // The archive is already compressed: ask for the bytes as they are.
        .header("Accept-Encoding", "identity")
        .call()
        .map_err(|e| anyhow::anyhow!("cannot reach {url}: {e}; {}", offline_hint()))?;
    let status = response.status();
    if !status.is_success() {
        bail!("{url} answered HTTP {status}; {}", offline_hint());
    }
    let announced = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(n) = announced {
        if n != expected.size {
            bail!(
                "{url} announces {n} bytes, the expected archive has {} bytes: not the \
                 expected file (a wrong URL, or a proxy error page?)",
                expected.size
            );
        }
    }

    let file =
        File::create_new(dest).with_context(|| format!("cannot create {}", dest.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut body = response.into_body().into_reader();
    let mut hasher = Hasher::default();
    let mut progress = Progress::new("downloading", Some(expected.size), display);
    let mut buf = vec![0u8; 256 * 1024];
    let cut_off = |got: u64, why: &dyn std::fmt::Display| {
        anyhow::anyhow!(
            "download of {url} cut off after {} of {} bytes ({}): {why}; nothing was kept. Run \
             the command again to retry; {}",
            got,
            expected.size,
            mib(got),
            offline_hint()
        )
    };
    loop {
        check_interrupted()?;
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(cut_off(hasher.size(), &e)),
        };
        if hasher.size() + n as u64 > expected.size {
            bail!(
                "{url} sends more than the expected {} bytes: not the expected archive",
                expected.size
            );
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])
            .with_context(|| format!("cannot write {}", dest.display()))?;
        progress.inc(n as u64);
    }
    progress.finish();
    if hasher.size() != expected.size {
        return Err(cut_off(hasher.size(), &"the connection ended early"));
    }
    let file = out
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("cannot write {}", dest.display()))?;
    file.sync_all()
        .with_context(|| format!("cannot write {}", dest.display()))?;
    let digests = hasher.finish();
    expected.check(&digests, url)?;
    Ok(digests)
}
