//! Slurm batch scripts for a search: an array job whose every task runs one
//! worker process on the search folder (see [`crate::worker`]), and a collect
//! job that writes the table once the array has ended well. Pure text here;
//! `cargo xtask slurm` writes the scripts into `<search>/slurm/` and submits
//! them with `sbatch`.
//!
//! The scripts run a copy of the xtask binary saved beside them, not `cargo`:
//! compute nodes often have no Rust toolchain, concurrent `cargo` calls on one
//! shared `target/` would queue on its build lock (or rebuild), and a copy
//! pins the exact program for the whole life of the jobs even if the checkout
//! is rebuilt meanwhile.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

/// What `cargo xtask slurm` was asked for.
#[derive(Clone, Debug, PartialEq)]
pub struct SlurmJob {
    /// The search's name (job names are `<name>-workers`, `<name>-collect`).
    pub name: String,
    /// The search folder (absolute).
    pub search_dir: PathBuf,
    /// The program the jobs run (absolute; the saved xtask binary).
    pub program: PathBuf,
    /// The data dir the workers read (absolute).
    pub data_dir: PathBuf,
    /// Array tasks, i.e. worker processes.
    pub n_workers: usize,
    /// CPUs of each task; each worker runs that many trials at a time.
    pub cpus_per_task: usize,
    /// `--partition`, if any.
    pub partition: Option<String>,
    /// `--time` limit of each task (Slurm's formats, e.g. `1:00:00`), if any.
    pub time: Option<String>,
    /// Lease of the workers' claims in seconds.
    pub lease_seconds: f64,
}

impl SlurmJob {
    /// The folder holding the scripts, the binary copy and the jobs' logs.
    pub fn slurm_dir(&self) -> PathBuf {
        slurm_dir(&self.search_dir)
    }

    /// The array script: one worker per task.
    pub fn workers_script(&self) -> String {
        let log = self.slurm_dir().join("workers-%A_%a.out");
        let mut s = self.header(
            "workers",
            &format!(
                "Workers of the search `{}`: each array task is one worker process that\n\
                 # claims unfinished trials until none is left (a trial whose worker dies\n\
                 # is taken over once its {}-second lease expires).",
                self.name, self.lease_seconds
            ),
        );
        s += &format!("#SBATCH --array=0-{}\n", self.n_workers.max(1) - 1);
        s += &format!("#SBATCH --cpus-per-task={}\n", self.cpus_per_task.max(1));
        s += &format!("#SBATCH --output={}\n", log.display());
        s += "set -euo pipefail\n";
        s += &format!(
            "exec {} worker {} --data-dir {} --jobs \"${{SLURM_CPUS_PER_TASK:-{}}}\" \
             --lease-seconds {}\n",
            sh_quote(&self.program.display().to_string()),
            sh_quote(&self.search_dir.display().to_string()),
            sh_quote(&self.data_dir.display().to_string()),
            self.cpus_per_task.max(1),
            self.lease_seconds
        );
        s
    }

    /// The collect script: submitted with `--dependency=afterok:<array>`.
    pub fn collect_script(&self) -> String {
        let log = self.slurm_dir().join("collect-%j.out");
        let mut s = self.header(
            "collect",
            &format!(
                "Collect of the search `{}`: table, lambdas and pictures from the trial\n\
                 # folders, once every worker has finished.",
                self.name
            ),
        );
        s += "#SBATCH --cpus-per-task=1\n";
        s += &format!("#SBATCH --output={}\n", log.display());
        s += "set -euo pipefail\n";
        s += &format!(
            "exec {} collect {}\n",
            sh_quote(&self.program.display().to_string()),
            sh_quote(&self.search_dir.display().to_string())
        );
        s
    }

    fn header(&self, role: &str, about: &str) -> String {
        let mut s = format!(
            "#!/bin/bash\n# Written by `cargo xtask slurm`.\n# {about}\n#SBATCH --job-name={}-{role}\n\
             #SBATCH --ntasks=1\n",
            self.name
        );
        if let Some(p) = &self.partition {
            s += &format!("#SBATCH --partition={p}\n");
        }
        if let Some(t) = &self.time {
            s += &format!("#SBATCH --time={t}\n");
        }
        s
    }
}

/// `<search_dir>/slurm`.
pub fn slurm_dir(search_dir: &Path) -> PathBuf {
    search_dir.join("slurm")
}

/// The job id in `sbatch --parsable`'s output (`ID` or `ID;cluster`).
pub fn parse_job_id(sbatch_stdout: &str) -> Option<u64> {
    sbatch_stdout
        .trim()
        .split(';')
        .next()
        .and_then(|id| id.trim().parse().ok())
}

/// `text` quoted for a POSIX shell.
pub fn sh_quote(text: &str) -> String {
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c))
    {
        return text.to_string();
    }
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Write the job's folder (a copy of this program, `workers.sbatch`,
/// `collect.sbatch`), then submit the workers' array and the collect job
/// after it (`afterok`, `--kill-on-invalid-dep=yes`) and print how to follow
/// them; with `dry_run`, print the sbatch commands instead of submitting.
/// `n_trials` and `n_left` (unfinished) are for the summary line.
pub fn launch(job: &SlurmJob, n_trials: usize, n_left: usize, dry_run: bool) -> anyhow::Result<()> {
    crate::io::create_dir(&job.slurm_dir())?;
    save_program(&job.program)?;
    let workers_script = job.slurm_dir().join("workers.sbatch");
    let collect_script = job.slurm_dir().join("collect.sbatch");
    crate::io::write_atomic(&workers_script, job.workers_script().as_bytes())?;
    crate::io::write_atomic(&collect_script, job.collect_script().as_bytes())?;
    println!(
        "{}: {} trials, {} unfinished; {} worker(s) x {} CPU(s), lease {} s",
        job.name, n_trials, n_left, job.n_workers, job.cpus_per_task, job.lease_seconds
    );
    println!(
        "wrote {} and {} (they run {}, a copy of this program)",
        workers_script.display(),
        collect_script.display(),
        job.program.display()
    );

    let collect_args = |id: &str| {
        vec![
            format!("--dependency=afterok:{id}"),
            "--kill-on-invalid-dep=yes".to_string(),
        ]
    };
    if dry_run {
        println!("dry run, nothing submitted; to submit:");
        println!(
            "  id=$(sbatch --parsable {}) && sbatch --parsable {} {}",
            sh_quote(&workers_script.display().to_string()),
            collect_args("$id").join(" "),
            sh_quote(&collect_script.display().to_string())
        );
        return Ok(());
    }
    let workers_id = sbatch(&[], &workers_script)?;
    let collect_id = sbatch(&collect_args(&workers_id.to_string()), &collect_script)?;
    println!(
        "submitted workers: job {workers_id} (array 0-{})",
        job.n_workers - 1
    );
    println!("submitted collect: job {collect_id} (afterok:{workers_id})");
    println!("follow with:");
    println!("  squeue -j {workers_id},{collect_id}");
    println!("  scontrol show job {workers_id}");
    println!(
        "  tail -f {}",
        job.slurm_dir()
            .join(format!("workers-{workers_id}_*.out"))
            .display()
    );
    println!(
        "the table: {} (if a worker fails or is cancelled the collect job is cancelled too: \
         run this command again for the unfinished trials, or `cargo xtask collect {}`)",
        job.search_dir.join(crate::search::files::TABLE).display(),
        job.search_dir.display()
    );
    Ok(())
}

/// Copy this program to `dest` atomically (temp file beside it, then rename).
fn save_program(dest: &Path) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    let tmp = dest.with_extension(format!("{}.tmp", std::process::id()));
    std::fs::copy(&exe, &tmp)
        .and_then(|_| std::fs::rename(&tmp, dest))
        .with_context(|| format!("cannot copy {} to {}", exe.display(), dest.display()))
}

/// `sbatch --parsable ARGS SCRIPT`: the job id.
fn sbatch(args: &[String], script: &Path) -> anyhow::Result<u64> {
    let out = Command::new("sbatch")
        .arg("--parsable")
        .args(args)
        .arg(script)
        .output()
        .context(
            "cannot run `sbatch`: is this a Slurm login node? (--dry-run writes the scripts \
             without submitting)",
        )?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        anyhow::bail!(
            "sbatch {} failed ({}): {}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    parse_job_id(&stdout).with_context(|| format!("sbatch printed no job id: {:?}", stdout.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> SlurmJob {
        SlurmJob {
            name: "coarse-search".into(),
            search_dir: PathBuf::from("/shared/results/coarse-search"),
            program: PathBuf::from("/shared/results/coarse-search/slurm/xtask"),
            data_dir: PathBuf::from("/shared/my data"),
            n_workers: 8,
            cpus_per_task: 2,
            partition: Some("cpu".into()),
            time: None,
            lease_seconds: 60.0,
        }
    }

    #[test]
    fn the_array_script_runs_one_worker_per_task_on_the_saved_binary() {
        let s = job().workers_script();
        assert!(s.starts_with("#!/bin/bash\n"), "{s}");
        for line in [
            "#SBATCH --job-name=coarse-search-workers",
            "#SBATCH --array=0-7",
            "#SBATCH --cpus-per-task=2",
            "#SBATCH --partition=cpu",
            "#SBATCH --output=/shared/results/coarse-search/slurm/workers-%A_%a.out",
            "exec /shared/results/coarse-search/slurm/xtask worker \
             /shared/results/coarse-search --data-dir '/shared/my data' --jobs \
             \"${SLURM_CPUS_PER_TASK:-2}\" --lease-seconds 60",
        ] {
            assert!(s.lines().any(|l| l == line), "no `{line}` in\n{s}");
        }
        assert!(!s.contains("--time"), "{s}");
        // Every #SBATCH line comes before the first command (sbatch stops reading there).
        let first_command = s.lines().position(|l| l.starts_with("set ")).unwrap();
        assert!(s
            .lines()
            .skip(first_command)
            .all(|l| !l.starts_with("#SBATCH")));
    }

    #[test]
    fn the_collect_script_collects_the_folder() {
        let mut j = job();
        j.time = Some("0:10:00".into());
        let s = j.collect_script();
        assert!(
            s.contains("#SBATCH --job-name=coarse-search-collect\n"),
            "{s}"
        );
        assert!(s.contains("#SBATCH --time=0:10:00\n"), "{s}");
        assert!(s.ends_with(
            "exec /shared/results/coarse-search/slurm/xtask collect /shared/results/coarse-search\n"
        ));
    }

    #[test]
    fn job_ids_and_quoting() {
        assert_eq!(parse_job_id("1234\n"), Some(1234));
        assert_eq!(parse_job_id("1234;cluster\n"), Some(1234));
        assert_eq!(parse_job_id("sbatch: error"), None);
        assert_eq!(sh_quote("/a/b-c_d.e"), "/a/b-c_d.e");
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
        assert_eq!(sh_quote(""), "''");
    }
}
