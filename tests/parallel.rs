//! `dcgan sweep --jobs N` through the real binary: runs in worker processes train what an
//! in-process sweep trains, bit for bit; Ctrl-C stops every worker with a checkpoint; a
//! worker killed from outside costs only its own run; a sweep that dies takes its workers
//! down cleanly.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dcgan_harness::store::manifest::Status;

use common::{
    assert_identical, bundled_data, manifest, run_dirs, stderr, stdout, tiny_sweep, write_file,
};

/// A sweep of `seeds` x {none, skip} tiny configs with a checkpoint every 10 steps.
fn sweep_text(name: &str, steps: u64, seeds: &str) -> String {
    let axes = format!("  grid: {{ balance.strategy: [none, skip] }}\n  seeds: {seeds}\n");
    tiny_sweep(name, steps, &bundled_data().display().to_string(), &axes)
}

fn dcgan(cwd: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dcgan"));
    cmd.current_dir(cwd).env("RUST_LOG", "info").env_remove("DCGAN_KILL_AT");
    cmd
}

fn sweep(cwd: &Path, file: &Path, runs: &str, jobs: &str) -> std::process::Output {
    let args = ["sweep", file.to_str().unwrap(), "--runs-dir", runs, "--jobs", jobs];
    dcgan(cwd).args(args).output().unwrap()
}

fn spawn_sweep(cwd: &Path, file: &Path, runs: &str, jobs: &str) -> Child {
    let args = ["sweep", file.to_str().unwrap(), "--runs-dir", runs, "--jobs", jobs];
    let mut cmd = dcgan(cwd);
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.spawn().unwrap()
}

/// Waits (up to a minute) until `ready` holds.
fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < Duration::from_secs(60), "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn has_checkpoint(run: &Path) -> bool {
    std::fs::read_dir(run.join("checkpoints/resume")).is_ok_and(|mut entries| {
        entries.any(|e| e.is_ok_and(|e| !e.file_name().to_string_lossy().starts_with('.')))
    })
}

/// Waits until `runs` holds two run directories, each with a resume checkpoint: both
/// workers of a `--jobs 2` sweep are well into training.
fn wait_for_two_checkpointed_runs(runs: &Path) {
    wait_until("two runs with a checkpoint", || {
        let dirs = run_dirs(runs);
        dirs.len() == 2 && dirs.iter().all(|d| has_checkpoint(d))
    });
}

fn signal(pid: u32, signal: libc::c_int) {
    // SAFETY: kill only sends a signal to a process this test started.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, signal) }, 0);
}

fn pid_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only asks whether the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

#[test]
fn two_jobs_train_what_one_job_trains_bit_for_bit() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write_file(tmp.path(), "pair.yaml", &sweep_text("pair", 12, "[0, 1]"));
    let one = sweep(tmp.path(), &file, "one", "1");
    assert!(one.status.success(), "{}", stderr(&one));
    let two = sweep(tmp.path(), &file, "two", "2");
    let log = stderr(&two);
    assert!(two.status.success(), "{log}");
    assert!(stdout(&two).contains("4 trained, 0 cached, 0 failed"), "{}", stdout(&two));
    assert!(log.contains("2 at a time, 1 CPU thread each"), "{log}");
    // Decoded once, by the sweep; the workers map the cache file.
    assert_eq!(log.matches("decoded").count(), 1, "{log}");
    let cache = tmp.path().join("two/.cache/decoded");
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 1, "one cache file in {cache:?}");
    let (a, b) = (run_dirs(&tmp.path().join("one")), run_dirs(&tmp.path().join("two")));
    assert_eq!(a.len(), 4);
    for (reference, parallel) in a.iter().zip(&b) {
        assert_eq!(reference.file_name(), parallel.file_name());
        assert_identical(reference, parallel, &parallel.display().to_string());
        let short = parallel.file_name().unwrap().to_string_lossy();
        let worker_log = tmp.path().join(format!("two/.sweeps/pair/logs/{short}.log"));
        let text = std::fs::read_to_string(&worker_log).unwrap();
        assert!(text.contains("completed"), "{worker_log:?}: {text}");
    }
    // Everything is done now: a second sweep starts no worker.
    let again = sweep(tmp.path(), &file, "two", "2");
    assert!(stdout(&again).contains("0 trained, 4 cached"), "{}", stdout(&again));
    assert!(!stderr(&again).contains("started"), "{}", stderr(&again));
}

#[test]
fn ctrl_c_stops_every_worker_at_a_checkpoint_and_the_next_sweep_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write_file(tmp.path(), "long.yaml", &sweep_text("long", 200, "[0]"));
    let reference = sweep(tmp.path(), &file, "reference", "1");
    assert!(reference.status.success(), "{}", stderr(&reference));

    let child = spawn_sweep(tmp.path(), &file, "runs", "2");
    let runs = tmp.path().join("runs");
    wait_for_two_checkpointed_runs(&runs);
    signal(child.id(), libc::SIGINT);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(stderr(&out).contains("stopping 2 running worker(s)"), "{}", stderr(&out));
    for run in run_dirs(&runs) {
        let m = manifest(&run);
        assert_eq!(m.status, Status::Interrupted, "{run:?}");
        assert!(m.steps_done > 0 && m.steps_done < 200, "{m:?}");
    }

    let out = sweep(tmp.path(), &file, "runs", "2");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).matches("resume").count() == 2, "{}", stdout(&out));
    for (reference, resumed) in run_dirs(&tmp.path().join("reference")).iter().zip(run_dirs(&runs))
    {
        assert_identical(reference, &resumed, "resumed after Ctrl-C");
        assert_eq!(manifest(&resumed).resumes.len(), 1);
    }
}

/// The pid of the worker for the first run that the sweep's log says it started.
fn first_worker_pid(child: &mut Child) -> (i32, BufReader<std::process::ChildStderr>) {
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(err.read_line(&mut line).unwrap() > 0, "the sweep ended before a worker started");
        if let Some(at) = line.find("pid=") {
            let digits: String = line[at + 4..].chars().take_while(char::is_ascii_digit).collect();
            return (digits.parse().unwrap(), err);
        }
    }
}

#[test]
fn a_worker_killed_from_outside_costs_only_its_own_run() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write_file(tmp.path(), "four.yaml", &sweep_text("four", 40, "[0, 1]"));
    let mut child = spawn_sweep(tmp.path(), &file, "runs", "2");
    let (pid, mut err) = first_worker_pid(&mut child);
    let runs = tmp.path().join("runs");
    wait_until("a checkpoint", || run_dirs(&runs).iter().any(|d| has_checkpoint(d)));
    // SAFETY: the worker is a child of the sweep this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{rest}");
    assert!(stdout(&out).contains("3 trained, 0 cached, 1 failed"), "{}", stdout(&out));
    assert!(rest.contains("was killed by signal 9"), "{rest}");
    let states: Vec<Status> = run_dirs(&runs).iter().map(|d| manifest(d).status).collect();
    assert_eq!(states.iter().filter(|s| **s == Status::Completed).count(), 3, "{states:?}");
    // The next sweep resumes the killed run and completes it.
    let out = sweep(tmp.path(), &file, "runs", "2");
    assert!(stdout(&out).contains("1 trained, 3 cached, 0 failed"), "{}", stdout(&out));
}

#[test]
fn workers_of_a_sweep_that_dies_checkpoint_and_stop() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write_file(tmp.path(), "orphans.yaml", &sweep_text("orphans", 2000, "[0]"));
    let mut child = spawn_sweep(tmp.path(), &file, "runs", "2");
    let (worker, _err) = first_worker_pid(&mut child);
    let runs = tmp.path().join("runs");
    wait_for_two_checkpointed_runs(&runs);
    child.kill().unwrap();
    child.wait().unwrap();
    wait_until("the workers to stop", || !pid_alive(worker));
    wait_until("both runs interrupted", || {
        run_dirs(&runs).iter().all(|d| manifest(d).status == Status::Interrupted)
    });
}

#[test]
fn bad_parallel_options_are_refused_before_anything_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write_file(tmp.path(), "pair.yaml", &sweep_text("pair", 4, "[0]"));
    let path = file.to_str().unwrap();
    let slurm = ["--executor", "slurm", "--dry-run"];
    let injected = ["--executor", "slurm", "--dry-run", "--sbatch-arg=--comment=x\ntouch /tmp/x"];
    let cases: [(&[&str], &str); 9] = [
        (&["--jobs", "0"], "--jobs must be at least 1"),
        (&["--jobs", "2", "--threads", "0"], "--threads must be at least 1"),
        (&["--devices", "0,1"], "must train on `tch-cuda`"),
        (&["--jobs", "2", "--executor", "slurm"], "--jobs and --devices are for --executor local"),
        (&["--jobs", "two"], "invalid value 'two'"),
        (&["--wait"], "--wait is an option of --executor slurm"),
        (&["--time", "1:00"], "--time is an option of --executor slurm"),
        (&[&slurm[..], &["--array-parallelism", "0"]].concat(), "--array-parallelism must be at"),
        (&injected, "holds a control character"),
    ];
    for (args, expected) in cases {
        let out = dcgan(tmp.path())
            .args(["sweep", path, "--runs-dir", "runs"])
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr(&out).contains(expected), "{args:?}: {}", stderr(&out));
        assert!(run_dirs(&tmp.path().join("runs")).is_empty(), "{args:?} trained something");
    }
    let out =
        dcgan(tmp.path()).args(["run", "--hash", "abc123", "--runs-dir", "runs"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no recorded sweep"), "{}", stderr(&out));
}

/// A recorded config whose dataset is gone where the worker runs: the run is marked failed
/// with the reason, for `status` and `--wait` to show.
#[test]
fn a_worker_that_cannot_read_its_dataset_marks_its_run_failed() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    for entry in std::fs::read_dir(bundled_data()).unwrap() {
        let path: PathBuf = entry.unwrap().path();
        std::fs::copy(&path, data.join(path.file_name().unwrap())).unwrap();
    }
    let text = sweep_text("moved", 4, "[0]").replace(&bundled_data().display().to_string(), "data");
    let file = write_file(tmp.path(), "moved.yaml", &text);
    // --dry-run of the Slurm executor records nothing; a Slurm-less record comes from --jobs
    // on a sweep with nothing to do, so record it by running it, then remove the runs.
    let out = sweep(tmp.path(), &file, "runs", "2");
    assert!(out.status.success(), "{}", stderr(&out));
    let hash = manifest(&run_dirs(&tmp.path().join("runs"))[0]).hash;
    for run in run_dirs(&tmp.path().join("runs")) {
        std::fs::remove_dir_all(run).unwrap();
    }
    std::fs::remove_dir_all(&data).unwrap();
    let out = dcgan(tmp.path())
        .args(["run", "--hash", &hash[..12], "--runs-dir", "runs"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let run = tmp.path().join("runs").join(&hash[..16]);
    let m = manifest(&run);
    assert_eq!(m.status, Status::Failed);
    let failure = m.failure.unwrap();
    assert!(failure.contains("not found") && failure.contains("data"), "{failure}");
}

/// Two `--jobs 2` sweeps on one runs folder: the second starts on the configs nobody trains,
/// every config is trained once, and each sweep counts the other's runs as theirs.
#[test]
fn two_parallel_sweeps_share_the_work() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write_file(tmp.path(), "shared.yaml", &sweep_text("shared", 150, "[0, 1]"));
    let first = spawn_sweep(tmp.path(), &file, "runs", "2");
    let runs = tmp.path().join("runs");
    wait_for_two_checkpointed_runs(&runs);
    let second = sweep(tmp.path(), &file, "runs", "2");
    let first = first.wait_with_output().unwrap();
    let mut trained = 0;
    for out in [&first, &second] {
        assert!(out.status.success(), "{}", stderr(out));
        let summary = stdout(out);
        let line = summary.lines().last().unwrap();
        trained += line
            .split(" trained")
            .next()
            .unwrap()
            .rsplit(' ')
            .next()
            .unwrap()
            .parse::<usize>()
            .unwrap();
        assert!(line.contains("2 completed by another process"), "{summary}");
    }
    assert_eq!(trained, 4, "each config trained exactly once");
    for run in run_dirs(&runs) {
        assert_eq!(manifest(&run).status, Status::Completed);
        assert!(manifest(&run).resumes.is_empty(), "{run:?} was resumed, not trained once");
    }
}
