//! How long one evaluation takes, and how good the default classifier is.
//!
//! `cargo run --example eval_bench [-- DATA_DIR [SPLIT]]` (default: the Debian package's
//! folder and the train split) trains the evaluation classifier with the default settings into
//! a temporary cache (prints its held-out accuracy and training time), then scores N real
//! images against N others, for N = 1,000 and 10,000, twice each, printing the seconds of the
//! real side (classifier features, Gaussian fit) and of the scoring (features, Fréchet
//! distance, KID, precision/recall/density/coverage, class histogram).

use std::path::PathBuf;
use std::time::Instant;

use rand::SeedableRng;
use rand::seq::index::sample;
use rand_chacha::ChaCha8Rng;

use dcgan_harness::backend::Backend;
use dcgan_harness::config::{DataConfig, EvalConfig, Split};
use dcgan_harness::data::{Dataset, DatasetCache};
use dcgan_harness::eval::{Evaluator, classifier};

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("warn,dcgan_harness=info").init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = args.first().map_or("/usr/share/datasets/fashion-mnist", String::as_str);
    let split = if args.get(1).is_some_and(|s| s == "test") { Split::Test } else { Split::Train };
    let cfg = DataConfig { split, path: Some(PathBuf::from(dir)), ..DataConfig::default() };
    let data = DatasetCache::default().dataset(&cfg)?;
    let backend = Backend::parse("flex")?;
    let (device, training) = (backend.device(), backend.training_device());
    let cache = tempfile::tempdir()?;
    let started = Instant::now();
    let eval = EvalConfig::default();
    let (net, made) = classifier::load_or_train(cache.path(), &data, &eval, &device, &training)?;
    println!(
        "classifier split={} trained_images={} held_out_images={} accuracy={:.4} seconds={:.1}",
        split.as_str(),
        made.trained_images,
        made.held_out_images,
        made.held_out_accuracy,
        started.elapsed().as_secs_f64()
    );
    for n in [1000, 10_000] {
        if 2 * n > data.len() {
            println!("eval_bench n={n} skipped: the split has {} images", data.len());
            continue;
        }
        for round in 1..=2 {
            let (real, fake) = two_sets(&data, n, round);
            let started = Instant::now();
            let evaluator = Evaluator::from_images(net.clone(), &real, data.shape(), 7, &device)?;
            let real_s = started.elapsed().as_secs_f64();
            let scores = evaluator.score_images(&fake)?;
            println!(
                "eval_bench n={n} round={round} real_side_s={real_s:.2} score_s={:.2} \
                 frechet={:.3} precision={:.3} recall={:.3}",
                scores.seconds, scores.frechet, scores.precision, scores.recall
            );
        }
    }
    Ok(())
}

/// Two disjoint random sets of `n` real images as `[-1, 1]` pixels.
fn two_sets(data: &Dataset, n: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let chosen = sample(&mut ChaCha8Rng::seed_from_u64(seed), data.len(), 2 * n).into_vec();
    let pixels = |idx: &[usize]| -> Vec<f32> {
        idx.iter()
            .flat_map(|&i| data.image(i).iter().map(|&p| f32::from(p) / 127.5 - 1.0))
            .collect()
    };
    (pixels(&chosen[..n]), pixels(&chosen[n..]))
}
