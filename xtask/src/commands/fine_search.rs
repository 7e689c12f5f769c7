//! `fine_search` (not implemented yet).

/// Command-line flags.
#[derive(clap::Args)]
pub struct Args {}

/// Run the command.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`fine_search` is not implemented yet")
}
