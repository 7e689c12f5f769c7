//! `cargo xtask slurm SEARCH`: run a search as a Slurm job array. Prepares
//! the search folder (config and plan), saves a copy of this binary and two
//! batch scripts in `<search>/slurm/` (see [`experiment::slurm`]), submits the
//! array of workers and a collect job depending on it (`afterok`, with
//! `--kill-on-invalid-dep=yes` so a failed or cancelled worker cancels the
//! collect instead of leaving it pending for ever), and prints how to follow them.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;
use experiment::commands;
use experiment::slurm::{self, sh_quote, SlurmJob};
use experiment::worker;

use super::{paths, train, worker as worker_cmd};

/// Command-line flags.
#[derive(clap::Args)]
pub struct Args {
    /// A search: `coarse-search`, `fine-search`, `final-train` (the config
    /// experiments/<name>.toml), or the path of a search config.
    pub search: String,
    /// Array tasks, i.e. worker processes.
    #[arg(long, default_value_t = 2)]
    pub array: usize,
    /// Slurm partition (default: the cluster's default partition).
    #[arg(long)]
    pub partition: Option<String>,
    /// Time limit of each task, in Slurm's format (e.g. 1:00:00).
    #[arg(long)]
    pub time: Option<String>,
    /// CPUs per task; each worker trains that many trials at a time.
    #[arg(long, default_value_t = 1)]
    pub cpus_per_task: usize,
    /// Seconds a claim stays valid without renewal (default:
    /// $CIFAR_CLR_LEASE_SECONDS, else 60).
    #[arg(long)]
    pub lease_seconds: Option<f64>,
    /// Write the folder and scripts, print the sbatch commands, submit nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub common: train::Common,
}

/// The config file `search` names.
fn config_path(search: &str) -> PathBuf {
    let path = PathBuf::from(search);
    if path.extension().is_some_and(|e| e == "toml") || path.is_file() {
        path
    } else {
        paths::project_root().join(format!("experiments/{search}.toml"))
    }
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))
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
    slurm::parse_job_id(&stdout)
        .with_context(|| format!("sbatch printed no job id: {:?}", stdout.trim()))
}

/// Run the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.array >= 1, "--array must be at least 1");
    anyhow::ensure!(
        args.cpus_per_task >= 1,
        "--cpus-per-task must be at least 1"
    );
    let lease = worker_cmd::lease(args.lease_seconds)?;
    let config = commands::load_search(&config_path(&args.search), args.common.seed, None)?;
    let data = args.common.data_source();
    data.check_present()?;
    let results_dir = absolute(&paths::results_dir(args.common.results_dir.clone()))?;
    let (dir, plan) = commands::prepare_search(&config, &results_dir)?;
    let n_left = worker::unfinished(&dir, &plan).len();

    let job = SlurmJob {
        name: config.name.clone(),
        search_dir: dir.clone(),
        program: slurm::slurm_dir(&dir).join("xtask"),
        data_dir: absolute(data.dir())?,
        n_workers: args.array,
        cpus_per_task: args.cpus_per_task,
        partition: args.partition,
        time: args.time,
        lease_seconds: lease.0.as_secs_f64(),
    };
    experiment::io::create_dir(&job.slurm_dir())?;
    save_program(&job.program)?;
    let workers_script = job.slurm_dir().join("workers.sbatch");
    let collect_script = job.slurm_dir().join("collect.sbatch");
    experiment::io::write_atomic(&workers_script, job.workers_script().as_bytes())?;
    experiment::io::write_atomic(&collect_script, job.collect_script().as_bytes())?;
    println!(
        "{}: {} trials, {} unfinished; {} worker(s) x {} CPU(s), lease {} s",
        config.name,
        plan.len(),
        n_left,
        job.n_workers,
        job.cpus_per_task,
        job.lease_seconds
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
    if args.dry_run {
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
        dir.join(experiment::search::files::TABLE).display(),
        dir.display()
    );
    Ok(())
}
