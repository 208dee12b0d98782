//! Sweeps on a real Slurm cluster: a one-node cluster on 127.0.0.1, brought up for this test
//! by `scripts/slurm-local.sh up` and stopped after it by PID. Where Slurm is not installed
//! (`.ci/run` installs it with `scripts/slurm-local.sh install`) or this is not root, the test
//! says so on stderr and returns; `.ci/run` runs it with `--nocapture` so that shows.
//!
//! One test, in steps, because every step needs the one cluster.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use dcgan_harness::store::manifest::Status;

use common::{
    assert_identical, bundled_data, manifest, run_dirs, stderr, stdout, tiny_sweep, write_file,
};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/slurm-local.sh");

/// The cluster, stopped when dropped (also when the test fails).
struct Cluster {
    dir: PathBuf,
}

impl Cluster {
    /// Starts the cluster, or says why it cannot run here.
    fn up() -> Result<Cluster, String> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("slurmd and munged need root, and this test is not root".into());
        }
        let dir = std::env::temp_dir().join(format!("dcgan-slurm-test-{}", std::process::id()));
        let mut up = Command::new("bash");
        let out = up.args([SCRIPT, "up"]).env("DCGAN_SLURM_DIR", &dir).output().expect("bash runs");
        match out.status.code() {
            Some(0) => Ok(Cluster { dir }),
            Some(3) => Err(format!("Slurm is not installed: {}", stderr(&out).trim())),
            _ => panic!("Slurm is installed but did not come up:\n{}", stderr(&out)),
        }
    }

    fn conf(&self) -> PathBuf {
        self.dir.join("slurm.conf")
    }

    fn dcgan(&self, cwd: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dcgan"));
        cmd.args(args).current_dir(cwd).env("SLURM_CONF", self.conf()).env("RUST_LOG", "info");
        cmd
    }

    fn run(&self, cwd: &Path, args: &[&str]) -> Output {
        self.dcgan(cwd, args).output().unwrap()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ =
            Command::new("bash").args([SCRIPT, "down"]).env("DCGAN_SLURM_DIR", &self.dir).status();
    }
}

/// A sweep of `seeds` x {none, lr-adjust} tiny configs with a checkpoint every 10 steps.
fn sweep_text(name: &str, steps: u64, data: &str, seeds: &str) -> String {
    let axes = format!("  grid: {{ balance.strategy: [none, lr-adjust] }}\n  seeds: {seeds}\n");
    tiny_sweep(name, steps, data, &axes)
}

fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < Duration::from_secs(120), "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn slurm_cluster_trains_sweeps_as_job_arrays() {
    let cluster = match Cluster::up() {
        Ok(cluster) => cluster,
        Err(why) => {
            eprintln!("SKIPPED slurm_cluster_trains_sweeps_as_job_arrays: {why}");
            return;
        }
    };
    let tmp = tempfile::tempdir().unwrap();
    let data = bundled_data().display().to_string();
    four_configs_complete_as_a_local_sweep_would(&cluster, tmp.path(), &data);
    a_cancelled_task_resumes_when_submitted_again(&cluster, tmp.path(), &data);
    a_task_that_fails_marks_its_run_and_wait_says_so(&cluster, tmp.path());
}

fn four_configs_complete_as_a_local_sweep_would(cluster: &Cluster, dir: &Path, data: &str) {
    let file = write_file(dir, "four.yaml", &sweep_text("four", 12, data, "[0, 1]"));
    let file = file.to_str().unwrap();
    let dry = cluster
        .run(dir, &["sweep", file, "--executor", "slurm", "--runs-dir", "cluster", "--dry-run"]);
    assert!(dry.status.success(), "{}", stderr(&dry));
    assert!(stdout(&dry).contains("#SBATCH --array=0-3\n"), "{}", stdout(&dry));
    assert!(!dir.join("cluster").exists(), "--dry-run wrote something");

    let local = cluster.run(dir, &["sweep", file, "--runs-dir", "local"]);
    assert!(local.status.success(), "{}", stderr(&local));
    let out = cluster
        .run(dir, &["sweep", file, "--executor", "slurm", "--runs-dir", "cluster", "--wait"]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("submitted job"), "{}", stdout(&out));
    assert!(stdout(&out).contains("4 of 4 run(s) completed"), "{}", stdout(&out));
    let (local, remote) = (run_dirs(&dir.join("local")), run_dirs(&dir.join("cluster")));
    assert_eq!(remote.len(), 4);
    for (a, b) in local.iter().zip(&remote) {
        assert_eq!(a.file_name(), b.file_name());
        assert_identical(a, b, &format!("{} on Slurm", b.display()));
    }
    let again = cluster.run(dir, &["sweep", file, "--executor", "slurm", "--runs-dir", "cluster"]);
    assert!(stdout(&again).contains("nothing to submit"), "{}", stdout(&again));
    let status = cluster.run(dir, &["status", file, "--runs-dir", "cluster"]);
    assert!(stdout(&status).contains("4 configs: 4 completed"), "{}", stdout(&status));
}

fn a_cancelled_task_resumes_when_submitted_again(cluster: &Cluster, dir: &Path, data: &str) {
    let text = sweep_text("long", 300, data, "[0]").replace("[none, lr-adjust]", "[skip]");
    let file = write_file(dir, "long.yaml", &text);
    let file = file.to_str().unwrap();
    let submit = ["sweep", file, "--executor", "slurm", "--runs-dir", "cancel"];
    let out = cluster.run(dir, &submit);
    assert!(out.status.success(), "{}", stderr(&out));
    let run = || run_dirs(&dir.join("cancel")).into_iter().next();
    wait_until("a checkpoint", || run().is_some_and(|r| manifest(&r).steps_done > 0));
    let status = cluster.run(dir, &["status", file, "--runs-dir", "cancel"]);
    assert!(stdout(&status).contains("RUNNING"), "{}", stdout(&status));
    let twice = cluster.run(dir, &submit);
    assert!(stdout(&twice).contains("nothing to submit"), "{}", stdout(&twice));
    let mut cancel = Command::new("scancel");
    cancel.args(["--name", "dcgan-long"]).env("SLURM_CONF", cluster.conf());
    assert!(cancel.status().unwrap().success());
    wait_until("the run interrupted", || manifest(&run().unwrap()).status == Status::Interrupted);

    let out = cluster.run(dir, &[&submit[..], &["--wait"]].concat());
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("resume"), "{}", stdout(&out));
    let resumed = run().unwrap();
    assert_eq!(manifest(&resumed).resumes.len(), 1);
    let local = cluster.run(dir, &["sweep", file, "--runs-dir", "cancel-local"]);
    assert!(local.status.success(), "{}", stderr(&local));
    assert_identical(&run_dirs(&dir.join("cancel-local"))[0], &resumed, "cancelled, resumed");
}

/// The dataset goes away between submission and the task's start (`--begin=now+4`): the task
/// cannot train, marks its run failed with the reason, and `--wait` exits 1 naming it.
fn a_task_that_fails_marks_its_run_and_wait_says_so(cluster: &Cluster, dir: &Path) {
    let copy = dir.join("data-copy");
    std::fs::create_dir(&copy).unwrap();
    for entry in std::fs::read_dir(bundled_data()).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, copy.join(path.file_name().unwrap())).unwrap();
    }
    let text = sweep_text("gone", 12, copy.to_str().unwrap(), "[0]")
        .replace("[none, lr-adjust]", "[none]");
    let file = write_file(dir, "gone.yaml", &text);
    let args = ["sweep", file.to_str().unwrap(), "--executor", "slurm", "--runs-dir", "gone"];
    let mut child = cluster
        .dcgan(dir, &[&args[..], &["--wait", "--sbatch-arg=--begin=now+4"]].concat())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push(line.clone());
        if line.starts_with("submitted job") {
            break;
        }
    }
    std::fs::remove_dir_all(&copy).unwrap();
    seen.extend(lines.map(Result::unwrap));
    let status = child.wait().unwrap();
    let text = seen.join("\n");
    assert_eq!(status.code(), Some(1), "{text}");
    assert!(text.contains("did not complete: the run is failed"), "{text}");
    assert!(text.contains("0 of 1 run(s) completed"), "{text}");
    let failed = manifest(&run_dirs(&dir.join("gone"))[0]);
    assert_eq!(failed.status, Status::Failed);
    assert!(failed.failure.unwrap().contains("not found"));
    // The sweep cannot be planned without its data; status shows the recorded configs.
    let status = cluster.run(dir, &["status", file.to_str().unwrap(), "--runs-dir", "gone"]);
    assert!(status.status.success(), "{}", stderr(&status));
    assert!(stderr(&status).contains("showing the configs recorded in"), "{}", stderr(&status));
    assert!(stdout(&status).contains("1 config: 1 failed"), "{}", stdout(&status));
}
