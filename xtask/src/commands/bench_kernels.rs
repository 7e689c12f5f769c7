//! `bench_kernels` (not implemented yet).

/// Command-line flags.
#[derive(clap::Args)]
pub struct Args {}

/// Run the command.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`bench_kernels` is not implemented yet")
}
