//! Time loading the real data set and building the 45000/5000 split:
//! `cargo run -p cifar --release --example load_timing -- [DATA_DIR [ROUNDS]]`
//! (default: `$CIFAR10_DIR`, else `data/`; 3 rounds). Each round loads all
//! 60000 images (hashing the bytes read for the data fingerprint and checking
//! them against the fetch-data stamp), then builds the f32 and the f64 splits.

use std::path::PathBuf;
use std::time::Instant;

use cifar::SplitSpec;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("CIFAR10_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("data"));
    let spec = SplitSpec::HoldOut {
        n_validation: 5000,
        seed: 0,
    };
    println!(
        "data dir {}, {} rayon threads",
        dir.display(),
        rayon::current_num_threads()
    );
    let rounds: usize = std::env::args()
        .nth(2)
        .map(|r| r.parse())
        .transpose()?
        .unwrap_or(3);
    for round in 1..=rounds {
        let t0 = Instant::now();
        let data = cifar::load_dir(&dir)?;
        let t1 = Instant::now();
        let s32 = data.splits::<f32>(&spec)?;
        let t2 = Instant::now();
        let s64 = data.splits::<f64>(&spec)?;
        let t3 = Instant::now();
        println!(
            "round {round}: load 60000 images {:.3} s, 45000/5000 split f32 {:.3} s (total {:.3} s), f64 {:.3} s; rows {}/{}/{}",
            (t1 - t0).as_secs_f64(),
            (t2 - t1).as_secs_f64(),
            (t2 - t0).as_secs_f64(),
            (t3 - t2).as_secs_f64(),
            s32.train.len(),
            s32.validation.len(),
            s64.test.len(),
        );
    }
    let t = Instant::now();
    let fp = cifar::compute_data_checksum(&dir)?;
    println!(
        "full data fingerprint {} in {:.3} s",
        fp.data_sha256,
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let fp = cifar::data_checksum(&dir)?;
    println!(
        "data_checksum (hashed, checked against the stamp if any) {fp} in {:.3} s",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
