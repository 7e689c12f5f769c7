//! `cargo xtask bench train`: flags, then [`experiment::bench_train`].

/// Command-line flags.
#[derive(clap::Args)]
pub struct Args {
    /// Training images in the epoch (synthetic; timing does not depend on them).
    #[arg(long, default_value_t = 45_000)]
    n_images: usize,
    /// Mini-batch size.
    #[arg(long, default_value_t = 100)]
    batch_size: usize,
    /// Hidden units; repeat the flag for several widths.
    #[arg(long = "n-hidden", default_values_t = [50, 1024])]
    widths: Vec<usize>,
    /// Rayon threads; repeat the flag for several counts.
    #[arg(long, default_values_t = [1, 2])]
    threads: Vec<usize>,
    /// Epochs to time; the best is reported.
    #[arg(long, default_value_t = 2)]
    repeats: usize,
    /// Also time an epoch with flip + translation by this many pixels.
    #[arg(long)]
    augment_translate: Option<usize>,
}

/// Run the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    let settings = experiment::bench_train::Settings {
        n_images: args.n_images,
        batch_size: args.batch_size,
        widths: args.widths,
        threads: args.threads,
        repeats: args.repeats,
        augment_translate: args.augment_translate,
    };
    let rows = experiment::bench_train::run(&settings)?;
    print!("{}", experiment::bench_train::report(&settings, &rows));
    Ok(())
}
