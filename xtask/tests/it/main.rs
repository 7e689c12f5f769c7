//! End-to-end tests of the xtask binary as users run it: separate worker
//! processes sharing one search folder (no Slurm here; the real-Slurm test is
//! `scripts/slurm-test.sh`). Data: a generated set in the standard layout,
//! written once into Cargo's test temp dir.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const XTASK: &str = env!("CARGO_BIN_EXE_xtask");

/// A generated data set in the CIFAR-10 layout (10000 images per file, as
/// `--data-dir` requires), written once per build.
fn data_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("synthetic-cifar");
        let done = dir.join("complete");
        if !done.is_file() {
            cifar::Cifar10::synthetic(10_000, 10_000, 5)
                .write_dir(&dir)
                .unwrap();
            std::fs::write(&done, b"").unwrap();
        }
        dir
    })
}

/// A search of `n` lambdas whose trials train `n_s` steps (about 1 s per
/// 200 steps on one core here).
fn write_config(dir: &Path, name: &str, n: usize, n_s: u64) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let text = format!(
        r#"name = "{name}"
seed = 3
seeds_per_lambda = 1
evaluate_test = false

[data]
kind = "batches"
train = [1]
validation = [2]

[train]
n_hidden = 20
batch_size = 50
records_per_cycle = 1

[train.schedule]
kind = "triangular"
eta_min = 1e-5
eta_max = 0.05
n_s = {n_s}
n_cycles = 1

[lambdas]
kind = "log_uniform"
n = {n}
log10_min = -5.0
log10_max = -1.0
"#
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn xtask(args: &[&str]) -> Command {
    let mut cmd = Command::new(XTASK);
    cmd.args(args).env_remove("CIFAR_CLR_LEASE_SECONDS");
    cmd
}

fn succeed(mut cmd: Command) -> String {
    let out = cmd.output().unwrap();
    assert_ok(&out);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The table without its timing column (the last, `wall_seconds`).
fn untimed_table(search_dir: &Path) -> Vec<String> {
    std::fs::read_to_string(search_dir.join("table.csv"))
        .unwrap()
        .lines()
        .map(|l| l.rsplit_once(',').unwrap().0.to_string())
        .collect()
}

/// Run the search locally with `--jobs 1` (the reference) into `results`.
fn local_run(config: &Path, results: &Path, jobs: &str) {
    succeed(xtask(&[
        "coarse-search",
        "--config",
        s(config),
        "--data-dir",
        s(data_dir()),
        "--results-dir",
        s(results),
        "--jobs",
        jobs,
    ]));
}

/// Prepare the search folder (config and plan) without submitting anything.
fn prepare(config: &Path, results: &Path) {
    let out = succeed(xtask(&[
        "slurm",
        s(config),
        "--dry-run",
        "--data-dir",
        s(data_dir()),
        "--results-dir",
        s(results),
    ]));
    assert!(out.contains("dry run, nothing submitted"), "{out}");
}

fn spawn_worker(search_dir: &Path, lease_seconds: &str) -> Child {
    xtask(&[
        "worker",
        s(search_dir),
        "--data-dir",
        s(data_dir()),
        "--jobs",
        "1",
        "--lease-seconds",
        lease_seconds,
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap()
}

/// `ran N trial(s)` from a worker's last line.
fn n_ran(stdout: &str) -> usize {
    let tail = stdout.split(" ran ").last().unwrap();
    tail.split_whitespace().next().unwrap().parse().unwrap()
}

fn claim_files(search_dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(search_dir.join("runs"))
        .map(|entries| {
            entries
                .map(|e| e.unwrap().path())
                .filter(|p| p.to_string_lossy().contains(".claim."))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn two_hand_started_workers_split_the_trials_and_give_the_local_table() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), "split", 6, 200);
    local_run(&config, &tmp.path().join("local"), "1");
    let results = tmp.path().join("workers");
    prepare(&config, &results);
    let dir = results.join("split");
    // Before any worker: collect names the unfinished trials.
    let early = xtask(&["collect", s(&dir)]).output().unwrap();
    assert!(!early.status.success());
    let err = String::from_utf8_lossy(&early.stderr);
    assert!(
        err.contains("6 of 6 trials are not finished") && err.contains("trial-05"),
        "{err}"
    );

    let start = Instant::now();
    let workers = [spawn_worker(&dir, "10"), spawn_worker(&dir, "10")];
    let outs: Vec<Output> = workers
        .into_iter()
        .map(|w| w.wait_with_output().unwrap())
        .collect();
    let wall = start.elapsed();
    let ran: Vec<usize> = outs
        .iter()
        .map(|o| {
            assert_ok(o);
            n_ran(&String::from_utf8_lossy(&o.stdout))
        })
        .collect();
    println!(
        "two hand-started workers: {} + {} trials in {:.1} s",
        ran[0],
        ran[1],
        wall.as_secs_f64()
    );
    assert_eq!(ran[0] + ran[1], 6, "each trial runs once");
    assert!(ran[0] >= 1 && ran[1] >= 1, "both workers trained: {ran:?}");
    assert!(claim_files(&dir).is_empty());

    succeed(xtask(&["collect", s(&dir)]));
    assert_eq!(
        untimed_table(&dir),
        untimed_table(&tmp.path().join("local/split"))
    );
}

#[test]
fn a_worker_killed_mid_trial_has_its_trial_taken_over_after_the_lease() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), "killed", 2, 1500);
    local_run(&config, &tmp.path().join("local"), "2");
    let results = tmp.path().join("workers");
    prepare(&config, &results);
    let dir = results.join("killed");

    // The first worker claims a trial; kill -9 it in the middle of training.
    let mut victim = spawn_worker(&dir, "2");
    let deadline = Instant::now() + Duration::from_secs(60);
    let claim = loop {
        if let Some(c) = claim_files(&dir).pop() {
            break c;
        }
        assert!(Instant::now() < deadline, "no claim within 60 s");
        std::thread::sleep(Duration::from_millis(50));
    };
    // A short pause puts the kill inside training; the trials are long enough
    // (1500 steps per half cycle) that even a fast CPU is still training then.
    std::thread::sleep(Duration::from_millis(100));
    victim.kill().unwrap(); // SIGKILL
    victim.wait().unwrap();
    let killed_at = Instant::now();
    let trial = claim.file_name().unwrap().to_string_lossy();
    let trial = trial.split(".claim.").next().unwrap().to_string();
    assert!(
        !dir.join("runs").join(&trial).join("summary.csv").exists(),
        "{trial} finished before the kill; make the trials slower"
    );

    // A second worker waits for the lease to expire, takes the trial over and finishes the search.
    let out = spawn_worker(&dir, "2").wait_with_output().unwrap();
    assert_ok(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let took_over = stdout
        .lines()
        .find(|l| l.contains("taking over the claim"))
        .unwrap_or_else(|| panic!("no take-over in:\n{stdout}"));
    assert!(
        took_over.contains(&format!("pid {}", victim.id())),
        "{took_over}"
    );
    println!(
        "{took_over}\nkilled worker's trial taken over, search finished {:.1} s after the kill",
        killed_at.elapsed().as_secs_f64()
    );
    assert_eq!(n_ran(&stdout), 2);
    assert!(claim_files(&dir).is_empty());

    succeed(xtask(&["collect", s(&dir)]));
    assert_eq!(
        untimed_table(&dir),
        untimed_table(&tmp.path().join("local/killed"))
    );
}

#[test]
fn ctrl_c_or_sigterm_frees_the_claimed_trial_at_once() {
    // SIGINT is Ctrl-C; SIGTERM is what `scancel` or a cluster ending a job sends.
    for signal in ["INT", "TERM"] {
        let tmp = tempfile::tempdir().unwrap();
        let config = write_config(tmp.path(), "interrupted", 1, 600);
        let results = tmp.path().join("workers");
        prepare(&config, &results);
        let dir = results.join("interrupted");
        let worker = spawn_worker(&dir, "600");
        // Wait for a written claim (the worker is then training).
        let deadline = Instant::now() + Duration::from_secs(60);
        while !claim_files(&dir)
            .iter()
            .any(|c| std::fs::read_to_string(c).is_ok_and(|t| t.contains("\"pid\"")))
        {
            assert!(
                Instant::now() < deadline,
                "SIG{signal}: no claim within 60 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &worker.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let out = worker.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(130), "SIG{signal}");
        // No 600-second wait for the next worker: the claim is gone.
        assert!(
            claim_files(&dir).is_empty(),
            "SIG{signal}: claim left behind"
        );
        assert!(!dir.join("runs/trial-00/summary.csv").exists());
    }
}

/// What `cargo xtask ARGS` prints on stderr when it refuses them (a clap
/// usage error: exit code 2).
fn refused(args: &[&str]) -> String {
    let out = xtask(args).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{args:?} was not refused");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bad_jobs_seed_and_lambda_are_refused_naming_the_flag() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let max = 4 * cores;
    for bad in ["0", "100000", "-1", "two"] {
        let m = refused(&["train", "x.toml", &format!("--jobs={bad}")]);
        assert!(m.contains("--jobs must be a whole number from 1 to"), "{m}");
        assert!(m.contains(&max.to_string()), "{m}");
    }
    refused(&["coarse-search", "--jobs", &(max + 1).to_string()]);
    for bad in ["9223372036854775808", "-3"] {
        let m = refused(&["train", "x.toml", &format!("--seed={bad}")]);
        assert!(m.contains("--seed must be a whole number"), "{m}");
        assert!(!m.contains("train.seed"), "{m}");
    }
    for bad in ["-0.1", "nan", "inf", "x"] {
        let m = refused(&["final-train", &format!("--lambda={bad}")]);
        assert!(m.contains("--lambda must be a finite number >= 0"), "{m}");
    }
}
