//! Claims: how any number of workers, in one process or in many on machines
//! sharing a filesystem, split the trials of one search between them.
//!
//! A worker owns a trial while it holds a *lease* on it: a claim file in
//! `runs/`, created exclusively (`create_new`, one atomic "create if absent"
//! that local filesystems and NFSv3+ honour), holding JSON
//! `{host, pid, worker, job, started, renewed}`. The owner rewrites the file
//! (atomically, temp + rename) every third of the lease; a claim whose
//! `renewed` time is more than one lease old belongs to a dead worker
//! (kill -9, a cancelled Slurm task, a lost node) and may be taken over.
//!
//! Take-over needs no rename of someone else's file: claims are numbered
//! generations, `trial-NN.claim.1`, `.2`, ... The current claim is the highest
//! generation present; a worker that finds it expired creates the next
//! generation with `create_new`, and of several workers trying at once exactly
//! one succeeds. An owner only ever writes its own generation, so a slow owner
//! renewing late cannot overwrite the worker that took over; when it notices a
//! higher generation it knows it lost the trial. (Should it still finish,
//! both write the same trial folder: training is deterministic and every file
//! is written atomically, so the result is the same either way.)
//!
//! A trial is finished when its `summary.csv` exists and names the planned
//! lambda and seed (see [`crate::search`]); the finisher then removes every
//! claim file of the trial. Clocks: expiry compares the claim's `renewed`
//! time with the reader's clock, so machines sharing a search need clocks
//! agreeing to well within a lease (NTP gives milliseconds; the default lease
//! is 60 s).

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::io::io_err;
use crate::{io, Result};

/// The environment variable that sets the lease length in seconds (default
/// [`DEFAULT_LEASE`]); `--lease-seconds` on the worker commands overrides it.
pub const LEASE_ENV: &str = "CIFAR_CLR_LEASE_SECONDS";

/// The lease of a claim when nothing else is said: long enough that a busy
/// machine or a slow shared filesystem never misses a renewal, short enough
/// that a dead worker's trial is redone within a minute.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

/// How long a claim stays valid without renewal.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lease(pub Duration);

impl Lease {
    /// `$CIFAR_CLR_LEASE_SECONDS` if set to a positive number, else [`DEFAULT_LEASE`].
    pub fn from_env() -> Self {
        std::env::var(LEASE_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s > 0.0)
            .map_or(Lease(DEFAULT_LEASE), |s| Lease(Duration::from_secs_f64(s)))
    }

    /// How often the owner renews: a third of the lease, so two renewals can
    /// be late before the claim expires.
    pub fn renew_every(self) -> Duration {
        self.0 / 3
    }

    /// How often a worker with nothing to claim looks again (others hold the
    /// remaining trials): a quarter of the lease, at most 2 s.
    pub fn poll_every(self) -> Duration {
        (self.0 / 4).min(Duration::from_secs(2))
    }
}

/// The content of a claim file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClaimInfo {
    /// Host name of the worker.
    pub host: String,
    /// Process id of the worker.
    pub pid: u32,
    /// Worker number inside its process (a local `--jobs N` run has N).
    pub worker: usize,
    /// The Slurm job (`<array job>_<task>` or `<job>`), when run by Slurm.
    #[serde(default)]
    pub job: Option<String>,
    /// Seconds since the Unix epoch when the claim was made.
    pub started: f64,
    /// Seconds since the Unix epoch of the last renewal.
    pub renewed: f64,
}

impl ClaimInfo {
    fn new(worker: usize) -> Self {
        let now = unix_now();
        Self {
            host: host_name(),
            pid: std::process::id(),
            worker,
            job: slurm_job(),
            started: now,
            renewed: now,
        }
    }

    /// `host pid N (job J)`: who holds the claim, for messages.
    pub fn who(&self) -> String {
        let job = self
            .job
            .as_ref()
            .map_or(String::new(), |j| format!(", Slurm job {j}"));
        format!("{} pid {} worker {}{job}", self.host, self.pid, self.worker)
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// This machine's name (`/proc/sys/kernel/hostname`, else `$HOSTNAME`, else `unknown`).
pub fn host_name() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

fn slurm_job() -> Option<String> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match (var("SLURM_ARRAY_JOB_ID"), var("SLURM_ARRAY_TASK_ID")) {
        (Some(job), Some(task)) => Some(format!("{job}_{task}")),
        _ => var("SLURM_JOB_ID"),
    }
}

/// The claim files of `stem` (e.g. `runs/trial-03`) present now, as
/// (generation, path), lowest first.
fn generations(stem: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let dir = stem.parent().unwrap_or(Path::new("."));
    let prefix = format!(
        "{}.claim.",
        stem.file_name().unwrap_or_default().to_string_lossy()
    );
    let mut found = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(io_err(dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(generation) = name
            .strip_prefix(&prefix)
            .and_then(|g| g.parse::<u64>().ok())
        {
            found.push((generation, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

fn claim_path(stem: &Path, generation: u64) -> PathBuf {
    let name = stem.file_name().unwrap_or_default().to_string_lossy();
    stem.with_file_name(format!("{name}.claim.{generation}"))
}

/// When the claim at `path` was last renewed: its `renewed` field, or the
/// file's modification time while its creator is still writing it (or if it
/// is unreadable). `None` when the file is gone.
fn last_renewed(path: &Path) -> Option<(f64, Option<ClaimInfo>)> {
    let meta = fs::metadata(path).ok()?;
    let info = fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<ClaimInfo>(&bytes).ok());
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0.0, |d| d.as_secs_f64());
    Some((info.as_ref().map_or(mtime, |i| i.renewed), info))
}

/// Whether a live worker holds the trial `stem` now: its newest claim was
/// renewed within `lease` (read-only; claims nothing).
pub fn is_held(stem: &Path, lease: Lease) -> Result<bool> {
    Ok(generations(stem)?
        .pop()
        .and_then(|(_, path)| last_renewed(&path))
        .is_some_and(|(renewed, _)| unix_now() - renewed <= lease.0.as_secs_f64()))
}

/// What [`try_claim`] found.
pub enum Attempt {
    /// The trial is ours now.
    Claimed(Claim),
    /// A live worker holds it (its claim, unless still being written or just removed).
    Held(Option<ClaimInfo>),
}

/// Try to claim the trial whose claim files are `<stem>.claim.<generation>`
/// (`stem` is the trial folder's path): create generation 1 if there is no
/// claim, or the next generation if the current one's lease has expired.
/// `worker` numbers the worker inside this process.
pub fn try_claim(stem: &Path, lease: Lease, worker: usize) -> Result<Attempt> {
    let current = generations(stem)?.pop();
    let (next, took_over) = match current {
        None => (1, None),
        Some((generation, path)) => match last_renewed(&path) {
            // Removed since we listed it: the trial just finished (or was
            // released); the caller checks for the summary and tries again.
            None => return Ok(Attempt::Held(None)),
            Some((renewed, info)) => {
                let age = unix_now() - renewed;
                if age <= lease.0.as_secs_f64() {
                    return Ok(Attempt::Held(info));
                }
                (generation + 1, Some((info, age)))
            }
        },
    };
    let path = claim_path(stem, next);
    if let Some(dir) = path.parent() {
        io::create_dir(dir)?;
    }
    let mut file = match OpenOptions::new().write(true).create_new(true).open(&path) {
        Ok(file) => file,
        // Another worker made this generation first: it holds the trial.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Ok(Attempt::Held(last_renewed(&path).and_then(|(_, i)| i)));
        }
        Err(e) => return Err(io_err(&path)(e)),
    };
    // Registered before it is written, so that a Ctrl-C from here on removes it.
    held().push(path.clone());
    let info = ClaimInfo::new(worker);
    let bytes = serde_json::to_vec(&info).expect("claim info serialises");
    file.write_all(&bytes)
        .and_then(|()| file.sync_all())
        .map_err(io_err(&path))?;
    Ok(Attempt::Claimed(Claim {
        stem: stem.to_path_buf(),
        generation: next,
        path,
        info: Arc::new(Mutex::new(info)),
        took_over,
        renewer: None,
    }))
}

/// The claim files this process holds now, for [`release_all`].
static HELD: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Set by [`release_all`]: the process is exiting, renewals must not
/// recreate the claim files it removed.
static RELEASED_ALL: AtomicBool = AtomicBool::new(false);

fn held() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    HELD.lock().unwrap_or_else(|e| e.into_inner())
}

/// Remove the claim files this process holds, so that the trials are free at
/// once rather than after their lease: for an orderly exit on Ctrl-C (the
/// interrupted trials have no summary, so they are redone). A process killed
/// outright cannot do this; its claims expire instead.
pub fn release_all() {
    RELEASED_ALL.store(true, Ordering::SeqCst);
    for path in held().drain(..) {
        let _ = fs::remove_file(path);
    }
}

/// Remove every claim file of the trial `stem` (once it is finished, or
/// released by its owner).
pub fn clear(stem: &Path) -> Result<()> {
    for (_, path) in generations(stem)? {
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_err(&path)(e)),
            _ => {}
        }
    }
    Ok(())
}

/// A claim this worker holds. Dropping it stops the renewals (the file stays
/// until [`Claim::release`] or [`clear`]; a dropped claim then expires).
pub struct Claim {
    stem: PathBuf,
    generation: u64,
    path: PathBuf,
    info: Arc<Mutex<ClaimInfo>>,
    /// The expired claim this one replaced (if readable) and its age in
    /// seconds, when this claim is a take-over.
    pub took_over: Option<(Option<ClaimInfo>, f64)>,
    renewer: Option<(mpsc::Sender<()>, JoinHandle<()>)>,
}

impl Claim {
    /// The generation of this claim (1 for a first claim; higher after take-overs).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether this claim is still the current one (no worker took it over).
    pub fn is_current(&self) -> bool {
        generations(&self.stem)
            .map(|g| g.last().map(|(n, _)| *n) == Some(self.generation))
            .unwrap_or(false)
    }

    /// Renew the lease now: rewrite this generation's file with the time.
    /// Returns whether the claim is still the current one.
    pub fn renew(&self) -> Result<bool> {
        renew(&self.stem, self.generation, &self.path, &self.info)
    }

    /// Start a thread renewing the lease every [`Lease::renew_every`] until
    /// the claim is dropped or released.
    pub fn keep_alive(&mut self, lease: Lease) {
        let (tx, rx) = mpsc::channel::<()>();
        let (stem, generation, path, info) = (
            self.stem.clone(),
            self.generation,
            self.path.clone(),
            Arc::clone(&self.info),
        );
        let handle = std::thread::spawn(move || {
            let mut warned = false;
            while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(lease.renew_every()) {
                match renew(&stem, generation, &path, &info) {
                    Ok(true) => {}
                    Ok(false) if !warned => {
                        warned = true;
                        eprintln!(
                            "warning: {}: the claim was taken over by another worker (this one \
                             missed its renewals); finishing anyway, the trial folder comes out \
                             the same",
                            stem.display()
                        );
                    }
                    Ok(false) => {}
                    Err(e) => eprintln!("warning: cannot renew the claim: {e}"),
                }
            }
        });
        self.renewer = Some((tx, handle));
    }

    fn forget(&self) {
        held().retain(|p| p != &self.path);
    }

    fn stop_renewing(&mut self) {
        if let Some((tx, handle)) = self.renewer.take() {
            drop(tx);
            let _ = handle.join();
        }
    }

    /// Stop renewing and remove every claim file of the trial (it is
    /// finished, or this worker gives it back).
    pub fn release(mut self) -> Result<()> {
        self.stop_renewing();
        self.forget();
        clear(&self.stem)
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.stop_renewing();
        self.forget();
    }
}

fn renew(stem: &Path, generation: u64, path: &Path, info: &Mutex<ClaimInfo>) -> Result<bool> {
    let current = generations(stem)?.last().map(|(n, _)| *n);
    if current != Some(generation) || RELEASED_ALL.load(Ordering::SeqCst) {
        return Ok(false);
    }
    let bytes = {
        let mut info = info.lock().expect("claim lock");
        info.renewed = unix_now();
        serde_json::to_vec(&*info).expect("claim info serialises")
    };
    io::write_atomic(path, &bytes)?;
    if RELEASED_ALL.load(Ordering::SeqCst) {
        // `release_all` ran during the write: undo it.
        let _ = fs::remove_file(path);
        return Ok(false);
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info_of(path: &Path) -> ClaimInfo {
        serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
    }

    #[test]
    fn a_claim_is_exclusive_until_its_lease_expires_then_taken_over_once() {
        let dir = tempfile::tempdir().unwrap();
        let stem = dir.path().join("runs/trial-03");
        let lease = Lease(Duration::from_millis(300));
        let Attempt::Claimed(first) = try_claim(&stem, lease, 0).unwrap() else {
            panic!("the first claim must succeed");
        };
        assert_eq!(first.generation(), 1);
        assert!(first.took_over.is_none());
        let path = dir.path().join("runs/trial-03.claim.1");
        let info = info_of(&path);
        assert_eq!(info.pid, std::process::id());
        assert_eq!(info.started, info.renewed);
        // Held: nobody else gets it.
        assert!(matches!(
            try_claim(&stem, lease, 1).unwrap(),
            Attempt::Held(_)
        ));
        // Renewals keep it alive past the lease.
        std::thread::sleep(Duration::from_millis(200));
        assert!(first.renew().unwrap());
        std::thread::sleep(Duration::from_millis(200));
        assert!(matches!(
            try_claim(&stem, lease, 1).unwrap(),
            Attempt::Held(_)
        ));
        assert!(info_of(&path).renewed > info.renewed);
        // Without renewals it expires; one of several contenders takes it over.
        std::thread::sleep(Duration::from_millis(400));
        let winners: Vec<Claim> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|w| {
                    let stem = &stem;
                    s.spawn(move || try_claim(stem, lease, w + 1).unwrap())
                })
                .collect();
            handles
                .into_iter()
                .filter_map(|h| match h.join().unwrap() {
                    Attempt::Claimed(c) => Some(c),
                    Attempt::Held(_) => None,
                })
                .collect()
        });
        assert_eq!(winners.len(), 1);
        let second = &winners[0];
        assert_eq!(second.generation(), 2);
        let (old, age) = second.took_over.as_ref().unwrap();
        assert_eq!(old.as_ref().unwrap().pid, std::process::id());
        assert!(*age > 0.3, "{age}");
        // The old owner finds out and cannot renew over the new one.
        assert!(!first.is_current());
        assert!(!first.renew().unwrap());
        assert!(second.is_current());
        drop(first);
        // Releasing removes every generation.
        let mut winners = winners;
        winners.pop().unwrap().release().unwrap();
        assert_eq!(fs::read_dir(dir.path().join("runs")).unwrap().count(), 0);
    }

    #[test]
    fn keep_alive_renews_in_the_background() {
        let dir = tempfile::tempdir().unwrap();
        let stem = dir.path().join("trial-00");
        let lease = Lease(Duration::from_millis(150));
        let Attempt::Claimed(mut claim) = try_claim(&stem, lease, 0).unwrap() else {
            panic!("the first claim must succeed");
        };
        claim.keep_alive(lease);
        for _ in 0..6 {
            std::thread::sleep(Duration::from_millis(100));
            assert!(matches!(
                try_claim(&stem, lease, 1).unwrap(),
                Attempt::Held(_)
            ));
        }
        claim.release().unwrap();
        assert!(matches!(
            try_claim(&stem, lease, 1).unwrap(),
            Attempt::Claimed(_)
        ));
    }

    #[test]
    fn a_half_written_claim_counts_from_its_file_time() {
        let dir = tempfile::tempdir().unwrap();
        let stem = dir.path().join("trial-01");
        fs::write(dir.path().join("trial-01.claim.1"), b"").unwrap();
        let lease = Lease(Duration::from_millis(200));
        assert!(matches!(
            try_claim(&stem, lease, 0).unwrap(),
            Attempt::Held(_)
        ));
        std::thread::sleep(Duration::from_millis(300));
        let Attempt::Claimed(c) = try_claim(&stem, lease, 0).unwrap() else {
            panic!("an old empty claim is expired");
        };
        assert_eq!(c.generation(), 2);
    }

    #[test]
    fn lease_from_the_environment_value() {
        let lease = Lease(Duration::from_secs(6));
        assert_eq!(lease.renew_every(), Duration::from_secs(2));
        assert_eq!(lease.poll_every(), Duration::from_millis(1500));
        assert_eq!(Lease(DEFAULT_LEASE).poll_every(), Duration::from_secs(2));
    }
}
