//! Talking to Slurm through its commands: `sbatch` to submit, `squeue` to see what is queued.
//! Only what squeue shows is trusted for "still queued or running"; whether a run worked is
//! read from its directory, never from Slurm's exit state.

use std::path::Path;
use std::process::Command;

use anyhow::Context;

/// An array task squeue knows about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedTask {
    pub job: String,
    pub index: usize,
    /// PENDING, RUNNING, COMPLETING, ...
    pub state: String,
    /// Why it waits, or the node it runs on.
    pub reason: String,
}

impl QueuedTask {
    /// Whether the task has still to run or is running: not one that is ending (COMPLETING
    /// after a cancel, say), whose run a new submission may take up.
    pub fn will_run(&self) -> bool {
        const LIVE: [&str; 8] = [
            "PENDING",
            "CONFIGURING",
            "RUNNING",
            "SUSPENDED",
            "RESIZING",
            "REQUEUED",
            "REQUEUE_HOLD",
            "REQUEUE_FED",
        ];
        LIVE.contains(&self.state.as_str())
    }
}

/// Submits a script; returns the job id.
pub fn sbatch(script: &Path) -> anyhow::Result<String> {
    let out = Command::new("sbatch")
        .arg("--parsable")
        .arg(script)
        .output()
        .map_err(|e| missing_command("sbatch", e))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(
        out.status.success(),
        "sbatch refused {}: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    // `--parsable` prints `<id>` or `<id>;<cluster>`.
    let id = stdout.trim().split(';').next().unwrap_or_default().to_string();
    anyhow::ensure!(
        !id.is_empty() && id.chars().all(|c| c.is_ascii_digit()),
        "sbatch printed `{}`, not a job id: {}",
        stdout.trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(id)
}

fn missing_command(name: &str, e: std::io::Error) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        anyhow::anyhow!(
            "`{name}` was not found on PATH: submit from a machine with Slurm's client \
             commands (Debian package slurm-client)"
        )
    } else {
        anyhow::anyhow!("cannot run `{name}`: {e}")
    }
}

/// Fails, saying what to do, when sbatch cannot be run here.
pub fn check_sbatch() -> anyhow::Result<()> {
    let out = Command::new("sbatch").arg("--version").output();
    out.map(drop).map_err(|e| missing_command("sbatch", e))
}

/// Whether squeue is here at all (whether it works is for [`tasks`] to say).
pub fn available() -> bool {
    Command::new("squeue").arg("--version").output().is_ok()
}

/// The array tasks of jobs with this name that squeue still lists, one row per task.
pub fn tasks(job_name: &str) -> anyhow::Result<Vec<QueuedTask>> {
    let out = Command::new("squeue")
        .args(["--noheader", "--array", "--name", job_name, "--format=%F|%K|%T|%R"])
        .output()
        .map_err(|e| missing_command("squeue", e))?;
    anyhow::ensure!(
        out.status.success(),
        "squeue failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().filter(|l| !l.trim().is_empty()).map(parse_line).collect()
}

fn parse_line(line: &str) -> anyhow::Result<QueuedTask> {
    let fields: Vec<&str> = line.trim().splitn(4, '|').collect();
    let [job, index, state, reason] = fields[..] else {
        anyhow::bail!("unexpected squeue line `{line}`")
    };
    let index = index.parse().with_context(|| format!("array index in squeue line `{line}`"))?;
    Ok(QueuedTask { job: job.into(), index, state: state.into(), reason: reason.into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squeue_lines_parse_and_odd_ones_are_refused() {
        let task = parse_line("41|3|PENDING|(Resources)").unwrap();
        assert_eq!(task.job, "41");
        assert_eq!(
            (task.index, task.state.as_str(), task.reason.as_str()),
            (3, "PENDING", "(Resources)")
        );
        assert!(parse_line("41|N/A|RUNNING|node1").is_err());
        assert!(task.will_run());
        assert!(!parse_line("41|3|COMPLETING|node1").unwrap().will_run());
        assert!(parse_line("garbage").is_err());
    }
}
