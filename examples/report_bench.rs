//! How long `dcgan report` takes on a large sweep: 100 runs of 10,000 steps each.
//!
//! `cargo run --release --example report_bench [-- RUNS STEPS]` writes a sweep of synthetic
//! runs (metrics rows shaped like a GAN's, 8x8 sample grids every 500 steps, as a real run
//! writes them) into a temporary folder, then times the report over it three times and prints
//! each time. Making the runs is not timed.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;

use dcgan_harness::config::RunConfig;
use dcgan_harness::report::{self, ReportInput};
use dcgan_harness::store::manifest::{DatasetInfo, Harness, Manifest, Status};
use dcgan_harness::store::metrics::{self, MetricsRow};
use dcgan_harness::store::{self, RunsDir, samples};
use dcgan_harness::{hashing, sweep};

/// Two strategies x 5 x 5 learning rates x 2 seeds = 100 runs.
const SWEEP: &str = "name: report-bench
base:
  train:
    steps: STEPS
  logging:
    sample_every: 500
axes:
  grid:
    balance.strategy: [skip, lr-adjust]
    train.lr_d: [2.0e-5, 5.0e-5, 1.0e-4, 2.0e-4, 4.0e-4]
    train.lr_g: [5.0e-5, 1.0e-4, 2.0e-4, 4.0e-4, 8.0e-4]
  seeds: [0, 1]
";

fn main() -> anyhow::Result<()> {
    // The report logs how long reading, charts and sample sheets took.
    tracing_subscriber::fmt().with_env_filter("warn,dcgan_harness=info").init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let steps: u64 = args.get(1).map_or(Ok(10_000), |s| s.parse()).context("STEPS")?;
    let limit: usize = args.first().map_or(Ok(100), |s| s.parse()).context("RUNS")?;
    let tmp = tempfile::tempdir()?;
    // DCGAN_REPORT_BENCH_KEEP=1 keeps the runs and the report, for looking at.
    let root = if std::env::var_os("DCGAN_REPORT_BENCH_KEEP").is_some() {
        let kept = tmp.keep();
        println!("keeping {}", kept.display());
        kept
    } else {
        tmp.path().to_path_buf()
    };
    let file = root.join("sweep.yaml");
    std::fs::write(&file, SWEEP.replace("STEPS", &steps.to_string()))?;
    let mut sweep = sweep::load(&file)?;
    sweep.points.truncate(limit);
    let runs_dir = RunsDir::new(root.join("runs"));
    std::fs::create_dir_all(runs_dir.root())?;
    let made = Instant::now();
    for (i, point) in sweep.points.iter().enumerate() {
        fake_run(&runs_dir, &point.config, &point.swept, i as u64)?;
    }
    println!(
        "made {} runs of {steps} steps in {:.1} s",
        sweep.points.len(),
        made.elapsed().as_secs_f64()
    );
    for round in 1..=3 {
        let started = Instant::now();
        let input = ReportInput {
            name: sweep.name.clone(),
            description: None,
            sweep_file: Some(file.clone()),
            runs_dir: runs_dir.root().to_path_buf(),
            runs: report::runs::from_sweep(&sweep, &runs_dir, None)?,
            metric: None,
        };
        let written = report::render(input, &root.join("report"))?;
        println!(
            "report_bench runs={} steps={steps} round={round} files={} seconds={:.2}",
            sweep.points.len(),
            written.files.len(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// A completed run directory with made-up but GAN-shaped numbers.
fn fake_run(
    runs: &RunsDir,
    config: &RunConfig,
    swept: &[(String, String)],
    salt: u64,
) -> anyhow::Result<()> {
    let hash = hashing::run_hash(config, "report-bench");
    let dir = runs.run_dir(&hash);
    for sub in [store::SAMPLES_DIR, store::CHECKPOINTS_DIR] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    std::fs::write(dir.join(store::CONFIG_FILE), serde_yaml::to_string(config)?)?;
    for name in [store::GENERATOR_FILE, store::DISCRIMINATOR_FILE] {
        std::fs::write(dir.join(store::CHECKPOINTS_DIR).join(name), b"not weights")?;
    }
    let steps = config.train.steps;
    let rows: Vec<MetricsRow> = (1..=steps).map(|s| row(s, salt, config)).collect();
    metrics::write(&dir.join(store::METRICS_FILE), &rows)?;
    let every = config.logging.sample_every;
    for step in (every..=steps).step_by(every as usize) {
        grid(&dir, step, salt)?;
    }
    let manifest = manifest(hash, swept, steps, steps as f64 * 0.05);
    std::fs::write(dir.join(store::MANIFEST_FILE), serde_json::to_vec_pretty(&manifest)?)?;
    Ok(())
}

/// A cheap deterministic pseudo-random number in [0, 1).
fn noise(a: u64, b: u64) -> f64 {
    let mut x = a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 29;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

fn row(step: u64, salt: u64, config: &RunConfig) -> MetricsRow {
    let t = step as f64 / config.train.steps as f64;
    let n = |k: u64| noise(step * 8 + k, salt) - 0.5;
    let acc_real = (0.75 + 0.2 * t + 0.3 * n(0)).clamp(0.0, 1.0);
    let acc_fake = (0.6 + 0.3 * t + 0.4 * n(1)).clamp(0.0, 1.0);
    let zone = match acc_real.min(acc_fake) {
        m if m < config.balance.low => "below",
        m if m > config.balance.high => "above",
        _ => "between",
    };
    let g_updated = n(2) > -0.3;
    MetricsRow {
        step,
        epoch: step / 156,
        elapsed_s: step as f64 * 0.05,
        d_loss: 1.4 - 0.6 * t + 0.3 * n(3),
        d_loss_real: 0.7 - 0.3 * t,
        d_loss_fake: 0.7 - 0.3 * t,
        g_loss: g_updated.then(|| 0.7 + 1.5 * t + 0.5 * n(4)),
        d_acc_real: acc_real,
        d_acc_fake: acc_fake,
        lr_d: config.train.lr_d * (1.0 + t * n(5)),
        lr_g: config.train.lr_g * (1.0 - 0.5 * t),
        d_updated: n(6) > -0.4,
        g_updated,
        zone,
    }
}

/// An 8x8 grid of 64x64 smooth blobs that change with the step.
fn grid(dir: &Path, step: u64, salt: u64) -> anyhow::Result<()> {
    let side = 64;
    let mut values = Vec::with_capacity(64 * side * side);
    for tile in 0..64u64 {
        let (cx, cy) = (20.0 + 24.0 * noise(tile, salt), 20.0 + 24.0 * noise(tile + 99, step));
        for p in 0..side * side {
            let (x, y) = ((p % side) as f64, (p / side) as f64);
            let d = ((x - cx).powi(2) + (y - cy).powi(2)).sqrt();
            values.push((1.0 - d / 20.0).clamp(-1.0, 1.0) as f32);
        }
    }
    let path = dir.join(store::SAMPLES_DIR).join(format!("step_{step:06}.png"));
    let shape = dcgan_harness::data::Shape { side, channels: 1 };
    samples::save_grid(&path, &values, 64, shape)?;
    Ok(())
}

fn manifest(hash: String, swept: &[(String, String)], steps: u64, seconds: f64) -> Manifest {
    Manifest {
        hash,
        status: Status::Completed,
        failure: None,
        sweep: "report-bench".to_string(),
        swept: swept.to_vec(),
        started_at: "2026-01-01T00:00:00Z".to_string(),
        finished_at: Some("2026-01-01T01:00:00Z".to_string()),
        duration_s: Some(seconds),
        steps_done: steps,
        steps_planned: steps,
        harness: Harness::current(),
        backend: "flex".to_string(),
        device: "cpu".to_string(),
        dataset: DatasetInfo {
            name: "synthetic".to_string(),
            split: "none".to_string(),
            fingerprint: "report-bench".to_string(),
            count: 0,
            files: Vec::new(),
        },
        host: "bench".to_string(),
        resumes: Vec::new(),
        evaluation: None,
    }
}
