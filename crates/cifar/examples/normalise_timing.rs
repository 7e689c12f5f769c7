//! Timing of the batch normalisation (`Normaliser::rows_f32`): 450
//! mini-batches of 100 rows (one epoch of the report's training), drawn at
//! random from 60000 synthetic `u8` images (rows mostly in memory) and from
//! 100 (rows in cache); best of 7 repetitions each.
//!
//! `cargo run -p cifar --release --example normalise_timing`

use std::time::Instant;

use cifar::{FeatureStats, Normaliser, IMAGE_BYTES};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn main() {
    let images = 60_000;
    let pixels: Vec<u8> = (0..images * IMAGE_BYTES)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    let rows: Vec<&[u8]> = pixels.chunks_exact(IMAGE_BYTES).collect();
    let normaliser = Normaliser::new(&FeatureStats::from_rows(&rows[..1000]));
    let mut batch = vec![0f32; 100 * IMAGE_BYTES];
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for (name, pool) in [
        ("random rows of 60000", images),
        ("random rows of 100", 100),
    ] {
        let best = (0..7)
            .map(|_| {
                let start = Instant::now();
                for _ in 0..450 {
                    let srcs: Vec<&[u8]> =
                        (0..100).map(|_| rows[rng.random_range(0..pool)]).collect();
                    normaliser.rows_f32(&srcs, &mut batch);
                }
                start.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min);
        println!("{name}: {:.1} ms per 450 batches of 100", best * 1e3);
    }
}
