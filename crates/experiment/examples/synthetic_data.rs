//! Write a small generated data set in the CIFAR-10 on-disk layout, for
//! scripts that need a data dir without the real archive (the Slurm test):
//! `cargo run --release -p experiment --example synthetic_data -- DIR [PER_BATCH] [N_TEST] [SEED]`
//! (defaults: the standard 10000 images per file, which `--data-dir` requires, seed 5).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .ok_or("usage: synthetic_data DIR [PER_BATCH] [N_TEST] [SEED]")?;
    let mut number = |default: u64| -> Result<u64, Box<dyn std::error::Error>> {
        Ok(args.next().map_or(Ok(default), |a| a.parse())?)
    };
    let per_batch = number(10_000)? as usize;
    let n_test = number(10_000)? as usize;
    let seed = number(5)?;
    let batches =
        cifar::Cifar10::synthetic(per_batch, n_test, seed).write_dir(std::path::Path::new(&dir))?;
    println!("wrote {}", batches.display());
    Ok(())
}
