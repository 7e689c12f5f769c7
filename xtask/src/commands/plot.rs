//! `cargo xtask plot [RESULTS_DIR]`: redraw every picture of a results folder
//! from its CSV files (no retraining), and with `--report` rewrite its REPORT.md.

use std::path::PathBuf;

use super::paths;

/// Command-line flags.
#[derive(clap::Args)]
pub struct Args {
    /// The results folder (default: <root>/results), or any folder below it.
    pub results_dir: Option<PathBuf>,
    /// Also rewrite REPORT.md in that folder.
    #[arg(long)]
    pub report: bool,
}

/// Run the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    let dir = paths::results_dir(args.results_dir);
    anyhow::ensure!(
        dir.is_dir(),
        "{} is not a folder: give a results folder (written by `cargo xtask train`, a search or \
         `reproduce`)",
        dir.display()
    );
    let written = experiment::plot::redraw(&dir)?;
    for path in &written {
        println!("{}", path.display());
    }
    println!(
        "{} picture(s) redrawn under {}",
        written.len(),
        dir.display()
    );
    if args.report {
        let path = experiment::report::write_report(&dir)?;
        println!("report: {}", path.display());
    }
    Ok(())
}
