//! `cargo xtask bench train`: the time of one training epoch (no evaluation)
//! against the time of its matmul work alone, the same gemm calls on the same
//! shapes timed in isolation. The ratio says how much the rest of the step
//! (gather, bias + ReLU, softmax, column sums, bias updates) costs.

use std::time::Instant;

use anyhow::Context;
use ndarray::{s, Array2};
use rand::{Rng, SeedableRng};

/// Command-line flags.
#[derive(clap::Args)]
pub struct Args {
    /// Training images in the epoch (synthetic values; timing does not depend on them).
    #[arg(long, default_value_t = 45_000)]
    n_images: usize,
    /// Mini-batch size.
    #[arg(long, default_value_t = 100)]
    batch_size: usize,
    /// Hidden units.
    #[arg(long, default_value_t = 50)]
    n_hidden: usize,
    /// Rayon threads (1 = how training runs inside a parallel search).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Epochs to time; the best is reported.
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Seed of the synthetic data and the network.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Also time the epoch with augmentation (flip + translation by this
    /// many pixels) and report its cost against the plain epoch.
    #[arg(long)]
    augment_translate: Option<usize>,
}

/// Run the command.
pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.batch_size > 0 && args.batch_size <= args.n_images,
        "--batch-size must be between 1 and --n-images"
    );
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build()
        .context("cannot build the rayon pool")?;
    pool.install(|| bench(&args))
}

fn bench(args: &Args) -> anyhow::Result<()> {
    let d = cifar::IMAGE_BYTES;
    let k = cifar::N_CLASSES;
    println!(
        "one epoch: {} images, batch {}, d {d}, m {}, f32, {} thread(s), best of {}",
        args.n_images, args.batch_size, args.n_hidden, args.threads, args.repeats
    );
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(args.seed);
    let data = cifar::Dataset {
        images: Array2::from_shape_simple_fn((args.n_images, d), || rng.random_range(-2.0f32..2.0)),
        labels: (0..args.n_images)
            .map(|_| rng.random_range(0..k as u8))
            .collect(),
    };
    let n_steps = args.n_images.div_ceil(args.batch_size);
    let (lambda, eta) = (0.01, 0.01);

    // The epoch, exactly as `mlp::train::train` runs its updates.
    let time_epoch = |augment: mlp::data::Augment| -> anyhow::Result<f64> {
        let settings = mlp::train::TrainSettings {
            n_hidden: args.n_hidden,
            batch_size: args.batch_size,
            schedule: mlp::schedule::ScheduleSpec::Constant {
                eta,
                n_steps: n_steps as u64,
            },
            records_per_cycle: 1,
            optimizer: mlp::optim::OptimizerSpec::Sgd,
            dropout: 0.0,
            label_smoothing: 0.0,
            augment,
        };
        let config = settings.with(lambda, args.seed).validate()?;
        let mut best = f64::INFINITY;
        for _ in 0..args.repeats.max(1) {
            let model = mlp::Mlp::<f32>::init(d, args.n_hidden, k, args.seed);
            let mut trainer = mlp::train::Trainer::with_model(
                experiment::data::matrix_data(&data),
                model,
                &config,
            )?;
            let start = Instant::now();
            for _ in 0..n_steps {
                trainer.step(eta)?;
            }
            best = best.min(start.elapsed().as_secs_f64());
        }
        Ok(best)
    };
    let epoch_secs = time_epoch(mlp::data::Augment::NONE)?;
    let augmented_secs = match args.augment_translate {
        Some(translate) => Some(time_epoch(mlp::data::Augment {
            flip: true,
            translate,
        })?),
        None => None,
    };

    // Its matmul work alone: the five gemm calls of a step on one batch.
    let model = mlp::Mlp::<f32>::init(d, args.n_hidden, k, args.seed);
    let (mut w1, w2) = (model.w1.clone(), model.w2.clone());
    let mut w2_upd = w2.clone();
    let x = data.images.slice(s![..args.batch_size, ..]).to_owned();
    let n = args.batch_size;
    let mut hidden = Array2::<f32>::zeros((n, args.n_hidden));
    let mut logits = Array2::<f32>::zeros((n, k));
    let grad_logits = Array2::<f32>::from_elem((n, k), 0.01);
    let mut grad_hidden = Array2::<f32>::zeros((n, args.n_hidden));
    let (alpha, beta) = (-(eta / n as f64) as f32, (1.0 - 2.0 * eta * lambda) as f32);
    let mut gemm_secs = f64::INFINITY;
    for _ in 0..args.repeats.max(1) {
        let start = Instant::now();
        for _ in 0..n_steps {
            tensor::gemm(1.0, &x.view(), &w1.t(), 0.0, &mut hidden.view_mut());
            tensor::gemm(1.0, &hidden.view(), &w2.t(), 0.0, &mut logits.view_mut());
            tensor::gemm(
                1.0,
                &grad_logits.view(),
                &w2.view(),
                0.0,
                &mut grad_hidden.view_mut(),
            );
            tensor::gemm(
                alpha,
                &grad_logits.t(),
                &hidden.view(),
                beta,
                &mut w2_upd.view_mut(),
            );
            tensor::gemm(alpha, &grad_hidden.t(), &x.view(), beta, &mut w1.view_mut());
        }
        gemm_secs = gemm_secs.min(start.elapsed().as_secs_f64());
    }
    std::hint::black_box((&w1, &w2_upd, &logits));

    // For scale: one evaluation of the whole set (what a curve point costs per split).
    let mut eval_secs = f64::INFINITY;
    for _ in 0..args.repeats.max(1) {
        let start = Instant::now();
        std::hint::black_box(model.evaluate(&data.images.view(), &data.labels, lambda));
        eval_secs = eval_secs.min(start.elapsed().as_secs_f64());
    }

    let flops = n_steps as f64
        * 2.0
        * n as f64
        * (2.0 * d as f64 * args.n_hidden as f64 + 3.0 * args.n_hidden as f64 * k as f64);
    println!(
        "epoch ({n_steps} updates):  {:8.3} s  ({:.1} GFLOP/s of matmul work)",
        epoch_secs,
        flops / epoch_secs / 1e9
    );
    println!(
        "matmul work alone:       {:8.3} s  ({:.1} GFLOP/s)",
        gemm_secs,
        flops / gemm_secs / 1e9
    );
    println!(
        "ratio epoch / matmul:    {:8.3}   (target <= 1.5)",
        epoch_secs / gemm_secs
    );
    if let (Some(secs), Some(translate)) = (augmented_secs, args.augment_translate) {
        println!(
            "epoch with flip + translate {translate}: {secs:8.3} s  (ratio to plain {:.3}, target <= 1.2)",
            secs / epoch_secs
        );
    }
    println!(
        "(for scale) evaluating all {} images once: {:.3} s",
        args.n_images, eval_secs
    );
    Ok(())
}
