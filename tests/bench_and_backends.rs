//! `dcgan bench` through the real binary, and backend choice in sweeps: names that are not
//! compiled in, or GPUs that are not there, stop a sweep before anything is trained.

mod common;

use std::collections::HashMap;

use dcgan_harness::bench::step_flops;
use dcgan_harness::config::ModelConfig;

use common::{dcgan, run_dirs, stderr, stdout, tiny_base, write_file};

/// The `key=value` fields of a `bench ...` line.
fn fields(line: &str) -> HashMap<String, String> {
    line.split_whitespace()
        .skip(1)
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or_else(|| panic!("not key=value: {kv}"));
            (k.to_string(), v.to_string())
        })
        .collect()
}

#[test]
fn bench_prints_one_line_with_times_and_the_flop_rate() {
    let tmp = tempfile::tempdir().unwrap();
    let out =
        dcgan(tmp.path(), &["bench", "--width", "2", "--steps", "3", "--warmup", "1", "--phases"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    let line = printed.lines().find(|l| l.starts_with("bench ")).expect(&printed);
    let f = fields(line);
    assert_eq!(f["backend"], "flex");
    assert_eq!(f["width"], "2");
    assert_eq!(f["steps"], "3");
    let num = |k: &str| f[k].parse::<f64>().unwrap_or_else(|_| panic!("{k} in {line}"));
    assert!(num("min_ms") > 0.0);
    assert!(num("min_ms") <= num("p25_ms") && num("p25_ms") <= num("median_ms"));
    assert!(num("median_ms") <= num("p75_ms") && num("p75_ms") <= num("max_ms"));
    let model = ModelConfig { width: 2, ..ModelConfig::default() };
    let gflop =
        step_flops(&model, dcgan_harness::data::Shape { side: 64, channels: 1 }, 64, 64) / 1e9;
    assert!((num("gflop_per_step") - gflop).abs() < 1e-3, "{line}");
    let rate = gflop / (num("median_ms") / 1e3);
    assert!((num("gflops") - rate).abs() <= 0.05 + 0.01 * rate, "{line}");
    // --phases: one line per phase of the step, before the result.
    for phase in ["G forward", "D backward", "G Adam"] {
        assert!(printed.contains(&format!("phase {phase}")), "{printed}");
    }
}

#[test]
fn bench_refuses_bad_arguments_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let out = dcgan(tmp.path(), &["bench", "--backend", "cuda9"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unknown backend `cuda9`"), "{}", stderr(&out));
    let out = dcgan(tmp.path(), &["bench", "--steps", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--steps"), "{}", stderr(&out));
}

#[test]
fn a_gpu_backend_without_a_gpu_stops_the_sweep_before_any_run() {
    let tmp = tempfile::tempdir().unwrap();
    let text = format!(
        "name: gpu\nbase:\n{}",
        tiny_base(2).replace("steps: 2", "steps: 2, backend: tch-cuda:7")
    );
    let file = write_file(tmp.path(), "gpu.yaml", &text);
    let out = dcgan(tmp.path(), &["sweep", file.to_str().unwrap(), "--runs-dir", "runs"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    // Without the `tch` feature the binary says how to get it; with it, that no GPU 7 exists.
    let expected = if cfg!(feature = "tch") { "needs CUDA GPU 7" } else { "--features tch" };
    assert!(err.contains(expected) && err.contains("tch-cuda:7"), "{err}");
    assert!(run_dirs(&tmp.path().join("runs")).is_empty());
}

/// The same config on two backends is two runs: the backend is part of the hash.
#[cfg(feature = "tch")]
#[test]
fn tch_cpu_trains_a_config_of_its_own() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write_file(tmp.path(), "one.yaml", &format!("name: one\nbase:\n{}", tiny_base(3)));
    let file = file.to_str().unwrap();
    for backend in ["flex", "tch-cpu"] {
        let out = dcgan(tmp.path(), &["run", file, "--runs-dir", "runs", "--backend", backend]);
        assert!(out.status.success(), "{backend}: {}", stderr(&out));
    }
    let runs = run_dirs(&tmp.path().join("runs"));
    assert_eq!(runs.len(), 2, "one run per backend");
    let backends: Vec<String> = runs
        .iter()
        .map(|r| {
            let text = std::fs::read_to_string(r.join("config.yaml")).unwrap();
            let line = text.lines().find(|l| l.trim_start().starts_with("backend:")).unwrap();
            line.split(':').nth(1).unwrap().trim().to_string()
        })
        .collect();
    assert!(backends.contains(&"flex".into()) && backends.contains(&"tch-cpu".into()));
}
