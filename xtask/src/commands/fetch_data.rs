//! `cargo xtask fetch-data`: the flags, then [`cifar::fetch`] (download or
//! local source, verified, installed atomically).

use std::path::PathBuf;

use cifar::{fetch, RECORDS_PER_FILE};

/// Command-line flags.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Where the data goes: DIR/cifar-10-batches-bin/ (default: $CIFAR10_DIR, else data/ at the
    /// workspace root).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Use a local cifar-10-binary.tar.gz, or an extracted cifar-10-batches-bin/ (or its parent),
    /// instead of downloading. Accepted when its contents validate.
    #[arg(long, value_name = "PATH", conflicts_with = "url")]
    pub from: Option<PathBuf>,
    /// Download from this https URL (a mirror of the official archive; it must have the
    /// official size and checksums).
    #[arg(long, value_name = "URL", default_value = fetch::OFFICIAL_URL)]
    pub url: String,
    /// Fetch again and replace the data even when valid data is already there.
    #[arg(long)]
    pub force: bool,
}

/// Run the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    // Ctrl-C: stop at the next read, let the temp dir be removed, exit
    // non-zero. A second Ctrl-C (e.g. while a read waits for a stalled host)
    // exits at once; the temp dir is then removed by the next run.
    let _ = ctrlc::set_handler(|| {
        if fetch::interrupt() {
            eprintln!("interrupted twice: exiting now");
            std::process::exit(130);
        }
        eprintln!("interrupted: cleaning up (Ctrl-C again to exit at once)");
    });
    let data_dir = fetch::install_dir(&super::paths::data_dir(args.data_dir))?;
    println!("data dir: {}", data_dir.display());
    let request = fetch::Request {
        data_dir,
        source: fetch::source(args.from, args.url, "--from")?,
        force: args.force,
        records_per_file: Some(RECORDS_PER_FILE),
        official_sha256: fetch::OFFICIAL_SHA256.into(),
        display: fetch::Display::Auto,
    };
    let outcome = fetch::fetch(&request)?;
    println!("{}", outcome.describe(&request.data_dir));
    Ok(())
}
