//! `cargo xtask reproduce`: every experiment of the report, in order (see
//! [`experiment::reproduce`]), then `<results-dir>/REPORT.md`; or, with
//! `--beyond`, the ablation of "Beyond the report".

use std::path::PathBuf;

use experiment::commands::Options;
use experiment::records::stages::{Stage, Work};
use experiment::report;

use super::{gradcheck, paths, sanity, train};

/// Command-line flags.
#[derive(clap::Args)]
pub struct Args {
    /// Folder of the experiment configs (default: <root>/experiments).
    #[arg(long)]
    pub experiments: Option<PathBuf>,
    /// Delete earlier results of the training stages first, so every stage
    /// trains (and is timed) from scratch; without it finished search trials
    /// are reused.
    #[arg(long)]
    pub fresh: bool,
    /// Run the "beyond the report" ablation instead (experiments/ablation/*.toml,
    /// resumable): ablation.csv, ablation.svg and BEYOND.md in the results folder.
    #[arg(long)]
    pub beyond: bool,
    #[command(flatten)]
    pub common: train::Common,
}

/// Run the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    train::explain_interrupt(train::Work::Reproduce);
    let experiments = args
        .experiments
        .unwrap_or_else(|| paths::project_root().join("experiments"));
    let data = args.common.data_source();
    let opts = args.common.options(&data);
    if args.beyond {
        experiment::io::create_dir(&opts.results_dir)?;
        let rows = experiment::beyond::run(&experiments.join("ablation"), &opts)?;
        print!("{}", experiment::beyond::report_section(&rows));
        let path = report::write_report(&opts.results_dir)?;
        println!(
            "report: {} (with the 'Beyond the report' section)",
            path.display()
        );
        return Ok(());
    }
    experiment::reproduce::run(&experiments, &opts, args.fresh, |stage: &Stage| {
        match stage.work {
            // Fetch the data when there is none at all (as fetch-data does),
            // else stop here with the fix in the message.
            Work::Data => {
                args.common.ensure_data()?;
                data.check_present()?;
                data.raw()?;
                data.fingerprint()?;
            }
            Work::Gradcheck => gradcheck::run(gradcheck_args(&opts))?,
            Work::Sanity => sanity::run(sanity_args(&opts))?,
            other => anyhow::bail!("stage {} ({other:?}) is not a check", stage.name),
        }
        Ok(String::new())
    })?;
    Ok(())
}

/// The gradcheck's flags for this data and results folder (its defaults otherwise).
fn gradcheck_args(opts: &Options<'_>) -> gradcheck::Args {
    gradcheck::Args {
        data_dir: Some(opts.data.dir().to_path_buf()),
        results_dir: Some(opts.results_dir.clone()),
        ..Default::default()
    }
}

/// The sanity check's flags for this data and results folder (its defaults otherwise).
fn sanity_args(opts: &Options<'_>) -> sanity::Args {
    sanity::Args {
        data_dir: Some(opts.data.dir().to_path_buf()),
        results_dir: Some(opts.results_dir.clone()),
        ..Default::default()
    }
}
