//! Crash, stop and resume, through the real binary: a run killed with SIGKILL at exact
//! moments (inside a step, halfway through a checkpoint, halfway through a Parquet file) or
//! at an arbitrary one, or stopped by Ctrl-C, and then resumed, ends bit-identical to a run
//! that was never stopped. Two sweeps on one runs dir train each config once.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use dcgan_harness::store::manifest::Status;

use common::{assert_identical, bundled_data, manifest, run_dirs, stderr, stdout, write_file};

/// A tiny config with a checkpoint every `every` steps.
fn config_text(name: &str, steps: u64, every: u64, axes: &str) -> String {
    format!(
        "name: {name}\nbase:\n  \
         data: {{ split: test, path: {data}, limit: 256 }}\n  \
         model: {{ width: 2, z_dim: 8 }}\n  \
         train: {{ steps: {steps}, batch_size: 16, extra_z: 16 }}\n  \
         balance: {{ strategy: lr-adjust }}\n  \
         logging: {{ sample_every: 4 }}\n  \
         eval: {{ enabled: false }}\n  \
         checkpoint: {{ every: {every} }}\n{axes}",
        data = bundled_data().display()
    )
}

fn command(cwd: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dcgan"));
    cmd.args(args).current_dir(cwd).env("RUST_LOG", "info").env_remove("DCGAN_KILL_AT");
    cmd
}

fn run(cwd: &Path, file: &Path, runs: &str, kill_at: Option<&str>) -> Output {
    let mut cmd = command(cwd, &["run", file.to_str().unwrap(), "--runs-dir", runs]);
    if let Some(point) = kill_at {
        cmd.env("DCGAN_KILL_AT", point);
    }
    cmd.output().unwrap()
}

fn killed(out: &Output) -> bool {
    out.status.signal() == Some(9)
}

#[test]
fn sigkill_at_any_moment_then_resume_ends_bit_identical() {
    let tmp = tempfile::tempdir().unwrap();
    // 12 steps, checkpoints after steps 3, 6 and 9; Parquet writes: one per checkpoint, then
    // the final metrics.parquet (the 4th).
    let file = write_file(tmp.path(), "tiny.yaml", &config_text("tiny", 12, 3, ""));
    let out = run(tmp.path(), &file, "reference", None);
    assert!(out.status.success(), "{}", stderr(&out));
    let reference = run_dirs(&tmp.path().join("reference")).remove(0);

    let scenarios: [(&str, &[&str]); 6] = [
        ("inside step 5", &["step:5"]),
        ("inside step 2, before any checkpoint", &["step:2"]),
        ("halfway through the first checkpoint", &["checkpoint:1"]),
        ("halfway through the 2nd checkpoint's Parquet", &["parquet:2"]),
        ("halfway through the final metrics.parquet", &["parquet:4"]),
        (
            "three times: step 8, then a checkpoint, then a step",
            &["step:8", "checkpoint:1", "step:4"],
        ),
    ];
    for (i, (what, kills)) in scenarios.iter().enumerate() {
        let runs = format!("killed-{i}");
        for point in kills.iter() {
            let out = run(tmp.path(), &file, &runs, Some(point));
            assert!(killed(&out), "{what}: {point} did not kill: {}", stderr(&out));
            let dir = run_dirs(&tmp.path().join(&runs)).remove(0);
            assert_ne!(manifest(&dir).status, Status::Completed, "{what}");
        }
        let out = run(tmp.path(), &file, &runs, None);
        assert!(out.status.success(), "{what}: {}", stderr(&out));
        assert!(stdout(&out).contains("resume"), "{what}: {}", stdout(&out));
        let resumed = run_dirs(&tmp.path().join(&runs)).remove(0);
        assert_identical(&reference, &resumed, what);
        assert_eq!(manifest(&resumed).resumes.len(), kills.len(), "{what}");
    }
}

/// Waits until `path` exists (or fails the test after a minute).
fn wait_for(path: &Path, child: &mut Child) {
    let start = Instant::now();
    while !path.exists() {
        assert!(child.try_wait().unwrap().is_none(), "the run ended before {path:?}");
        assert!(start.elapsed() < Duration::from_secs(60), "{path:?} never appeared");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn spawn(cwd: &Path, args: &[&str]) -> Child {
    command(cwd, args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
}

fn resume_dir(runs: &Path) -> PathBuf {
    let short = run_dirs(runs).remove(0);
    short.join("checkpoints/resume")
}

#[test]
fn a_kill_from_outside_and_a_ctrl_c_lose_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write_file(tmp.path(), "long.yaml", &config_text("long", 120, 20, ""));
    let file_arg = file.to_str().unwrap();
    let out = run(tmp.path(), &file, "reference", None);
    assert!(out.status.success(), "{}", stderr(&out));
    let reference = run_dirs(&tmp.path().join("reference")).remove(0);

    // kill -9 from outside, at whatever moment the first checkpoint has just appeared.
    let mut child = spawn(tmp.path(), &["run", file_arg, "--runs-dir", "outside"]);
    let runs = tmp.path().join("outside");
    while run_dirs(&runs).is_empty() {
        std::thread::sleep(Duration::from_millis(5));
    }
    wait_for(&resume_dir(&runs).join("step_000020"), &mut child);
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(9));
    let out = run(tmp.path(), &file, "outside", None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_identical(&reference, &run_dirs(&runs).remove(0), "kill -9 from outside");

    // Ctrl-C: the step finishes, a checkpoint is written, the manifest says interrupted.
    let mut child = spawn(tmp.path(), &["run", file_arg, "--runs-dir", "ctrl-c"]);
    let runs = tmp.path().join("ctrl-c");
    while run_dirs(&runs).is_empty() {
        std::thread::sleep(Duration::from_millis(5));
    }
    wait_for(&resume_dir(&runs).join("step_000020"), &mut child);
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(stderr(&out).contains("stopped by SIGINT"), "{}", stderr(&out));
    let dir = run_dirs(&runs).remove(0);
    let m = manifest(&dir);
    assert_eq!(m.status, Status::Interrupted);
    assert!(m.steps_done >= 20 && m.steps_done < 120, "{m:?}");
    let last = resume_dir(&runs).join(format!("step_{:06}", m.steps_done));
    assert!(last.join("state.json").is_file(), "a checkpoint of the last step: {last:?}");
    let short = dir.file_name().unwrap().to_str().unwrap();
    let args = ["report", "--runs", short, "--runs-dir", "ctrl-c", "--out", "rep"];
    let out = command(tmp.path(), &args).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let md = std::fs::read_to_string(tmp.path().join("rep/report.md")).unwrap();
    let line = format!("is unfinished: interrupted at step {} of 120", m.steps_done);
    assert!(md.contains(&line) && md.contains("1 unfinished"), "{md}");
    let out = run(tmp.path(), &file, "ctrl-c", None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_identical(&reference, &dir, "Ctrl-C");
}

#[test]
fn two_sweeps_on_one_runs_dir_train_every_config_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let axes = "axes:\n  seeds: [0, 1, 2, 3, 4, 5]\n";
    let file = write_file(tmp.path(), "pair.yaml", &config_text("pair", 40, 10, axes));
    let args = ["sweep", file.to_str().unwrap(), "--runs-dir", "runs"];
    let (a, b) = (spawn(tmp.path(), &args), spawn(tmp.path(), &args));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success() && b.status.success(), "{}\n{}", stderr(&a), stderr(&b));
    let dirs = run_dirs(&tmp.path().join("runs"));
    assert_eq!(dirs.len(), 6);
    let logs = format!("{}{}", stderr(&a), stderr(&b));
    for dir in &dirs {
        let short = dir.file_name().unwrap().to_string_lossy().into_owned();
        let trained = logs.lines().filter(|l| l.contains(": training ") && l.contains(&short));
        assert_eq!(trained.count(), 1, "{short} trained once:\n{logs}");
        let m = manifest(dir);
        assert_eq!(m.status, Status::Completed);
        assert!(m.resumes.is_empty(), "{short} was never taken over: {m:?}");
    }
    let summaries = format!("{}{}", stdout(&a), stdout(&b));
    assert!(summaries.contains("completed by another process"), "{summaries}");
}

#[test]
fn a_lock_left_by_a_dead_process_is_taken_over_and_logged() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write_file(tmp.path(), "one.yaml", &config_text("one", 6, 3, ""));
    let out =
        command(tmp.path(), &["sweep", file.to_str().unwrap(), "--dry-run"]).output().unwrap();
    let short = stdout(&out).lines().nth(1).unwrap().split_whitespace().next().unwrap().to_string();
    let locks = tmp.path().join("runs/.locks");
    std::fs::create_dir_all(&locks).unwrap();
    let note = "pid 4194000 on gone-host since 2026-01-01T00:00:00Z\n";
    std::fs::write(locks.join(format!("{short}.lock")), note).unwrap();
    let out = run(tmp.path(), &file, "runs", None);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("took over the run's lock from pid 4194000 on gone-host"), "{err}");
    let lock = std::fs::read_to_string(locks.join(format!("{short}.lock"))).unwrap();
    assert!(lock.is_empty(), "released cleanly: {lock:?}");
}
