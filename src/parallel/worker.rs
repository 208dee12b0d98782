//! One worker process: started, watched (its progress lines drive a bar, its log lines are
//! passed on and kept in a file), stopped on Ctrl-C, and judged by its run directory.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use anyhow::Context;
use indicatif::ProgressBar;

use super::progress::{ELSEWHERE, Report};
use crate::runner::{PlannedRun, SweepSummary};
use crate::store::manifest::Status;
use crate::store::{RunState, RunsDir};

/// What every worker of a sweep is started with.
pub struct Launch {
    pub exe: PathBuf,
    pub runs_dir: PathBuf,
    pub threads: usize,
    pub log_flags: Vec<String>,
    /// Folder of the workers' log files, one per run.
    pub logs: PathBuf,
}

pub struct Worker<'a> {
    run: &'a PlannedRun,
    pub slot: usize,
    child: Child,
    bar: ProgressBar,
    readers: Vec<JoinHandle<()>>,
    log: PathBuf,
    /// Set when the worker says another process completed its run.
    elsewhere: Arc<AtomicBool>,
    exit: Option<ExitStatus>,
    stopped: bool,
}

impl<'a> Worker<'a> {
    /// Starts `dcgan run --hash` for a config, on a CUDA device if one is given.
    pub fn start(
        launch: &Launch,
        run: &'a PlannedRun,
        slot: usize,
        device: Option<usize>,
    ) -> anyhow::Result<Self> {
        let mut command = Command::new(&launch.exe);
        command
            .args(["run", "--worker", "--hash", &run.hash, "--runs-dir"])
            .arg(&launch.runs_dir)
            .args(["--threads", &launch.threads.to_string()])
            .args(&launch.log_flags)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group: a terminal's Ctrl-C reaches the sweep, which passes it on
            // once, rather than every worker twice.
            .process_group(0);
        if let Some(device) = device {
            command.env("CUDA_VISIBLE_DEVICES", device.to_string());
        }
        let mut child =
            command.spawn().with_context(|| format!("cannot start {}", launch.exe.display()))?;
        let bar = crate::terminal::add(new_bar(run));
        let log = launch.logs.join(format!("{}.log", run.short()));
        let file = OpenOptions::new().create(true).append(true).open(&log);
        let file = Arc::new(Mutex::new(file.with_context(|| format!("{}", log.display()))?));
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let elsewhere = Arc::new(AtomicBool::new(false));
        let readers = vec![
            follow_progress(stdout, bar.clone(), elsewhere.clone(), file.clone()),
            follow_logs(stderr, file),
        ];
        let short = run.short();
        tracing::info!(run = short, pid = child.id(), device, "started: {}", run.point.label());
        Ok(Worker { run, slot, child, bar, readers, log, elsewhere, exit: None, stopped: false })
    }

    /// Notes whether the worker has exited, without waiting.
    pub fn poll_exit(&mut self) {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().unwrap_or(None);
        }
    }

    /// Whether the worker was seen to exit (by [`Worker::poll_exit`]).
    pub fn exited(&self) -> bool {
        self.exit.is_some()
    }

    /// Asks the worker to checkpoint and stop, with the signal this process got (once: a
    /// second would kill it).
    pub fn stop(&mut self) {
        if self.stopped || self.exit.is_some() {
            return;
        }
        self.stopped = true;
        let pid = libc::pid_t::try_from(self.child.id()).expect("pids fit in pid_t");
        // SAFETY: kill only sends a signal; the pid is our own child, not yet reaped.
        unsafe {
            libc::kill(pid, crate::interrupt::signal());
        }
    }

    /// Counts the worker's run by what its directory says, not by its exit code alone: a
    /// worker that was killed leaves an unfinished run whatever it would have returned.
    pub fn conclude(self, runs: &RunsDir, summary: &mut SweepSummary) {
        for reader in self.readers {
            let _ = reader.join();
        }
        crate::terminal::remove(&self.bar);
        let short = self.run.short();
        let exit = self.exit.map_or("unknown".to_string(), describe);
        match runs.state(&self.run.hash) {
            RunState::Completed(_) if self.elsewhere.load(Ordering::Relaxed) => {
                summary.elsewhere += 1;
            }
            RunState::Completed(_) => summary.trained += 1,
            RunState::Unfinished(m) if m.status == Status::Interrupted && self.stopped => {
                summary.interrupted = true;
            }
            RunState::Failed(m) => {
                summary.failed += 1;
                let reason = m.failure.unwrap_or_default();
                tracing::error!(run = short, "failed: {reason} (log: {})", self.log.display());
            }
            state => {
                summary.failed += 1;
                tracing::error!(
                    run = short,
                    "the worker {exit} and left the run {}; log: {}",
                    state.describe(),
                    self.log.display()
                );
            }
        }
    }
}

fn new_bar(run: &PlannedRun) -> ProgressBar {
    ProgressBar::new(run.point.config.train.steps)
        .with_prefix(run.short().to_string())
        .with_style(crate::runner::progress_style())
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        _ => "ended".to_string(),
    }
}

/// Moves the bar on `@progress` lines; keeps the worker's other output in its log file.
fn follow_progress(
    out: impl std::io::Read + Send + 'static,
    bar: ProgressBar,
    elsewhere: Arc<AtomicBool>,
    log: Arc<Mutex<File>>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(report) = Report::parse(&line) {
                bar.set_length(report.steps);
                bar.set_position(report.step);
            } else if line == ELSEWHERE {
                elsewhere.store(true, Ordering::Relaxed);
            } else {
                append(&log, &line);
            }
        }
    })
}

/// Passes the worker's log lines on (above the bars) and keeps them in its log file.
fn follow_logs(err: impl std::io::Read + Send + 'static, log: Arc<Mutex<File>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            append(&log, &line);
            crate::terminal::print_line(&line);
        }
    })
}

fn append(log: &Mutex<File>, line: &str) {
    if let Ok(mut file) = log.lock() {
        let _ = writeln!(file, "{line}");
    }
}
