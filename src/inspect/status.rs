//! `dcgan status FILE`: how far each config of a sweep got, read from its run directory,
//! with what Slurm's queue says about it where squeue is there.

use std::collections::HashMap;

use crate::hashing;
use crate::slurm::queue::QueuedTask;
use crate::store::manifest::{Manifest, Status};
use crate::store::{RunState, RunsDir, lock};
use crate::sweep::SweepPoint;

/// The status table and a closing count, as lines.
pub fn render(
    sweep: &str,
    configs: &[(String, SweepPoint)],
    runs: &RunsDir,
    queued: &HashMap<String, QueuedTask>,
) -> Vec<String> {
    let mut counts: Vec<(&'static str, usize)> = Vec::new();
    let mut lines =
        vec![format!("{:<16}  {:<11}  {:>11}  {:<26}  config", "run", "status", "steps", "slurm")];
    for (hash, point) in configs {
        let (word, steps, detail) = describe(hash, point, runs);
        match counts.iter_mut().find(|(w, _)| *w == word) {
            Some((_, n)) => *n += 1,
            None => counts.push((word, 1)),
        }
        let slurm = queued
            .get(hash)
            .map_or("-".to_string(), |t| format!("{}_{} {} {}", t.job, t.index, t.state, t.reason));
        let mut line = format!(
            "{:<16}  {word:<11}  {steps:>11}  {slurm:<26}  {}",
            hashing::short(hash),
            point.label()
        );
        if let Some(detail) = detail {
            line.push_str(&format!("\n{:<16}  {detail}", ""));
        }
        lines.push(line);
    }
    let parts: Vec<String> = counts.iter().map(|(w, n)| format!("{n} {w}")).collect();
    let plural = if configs.len() == 1 { "" } else { "s" };
    lines.push(format!("sweep {sweep}: {} config{plural}: {}", configs.len(), parts.join(", ")));
    lines
}

/// A run's status word, its steps (done/planned) and, for failures, why.
fn describe(
    hash: &str,
    point: &SweepPoint,
    runs: &RunsDir,
) -> (&'static str, String, Option<String>) {
    let planned = point.config.train.steps;
    let steps = |m: &Manifest| format!("{}/{}", m.steps_done, m.steps_planned);
    match runs.state(hash) {
        RunState::Missing => ("not started", format!("0/{planned}"), None),
        RunState::Completed(m) => ("completed", steps(&m), None),
        RunState::Failed(m) => ("failed", steps(&m), m.failure.clone()),
        RunState::Damaged(reason) => ("damaged", "-".to_string(), Some(reason)),
        RunState::Unfinished(m) => {
            let word = if lock::holder(runs.root(), hashing::short(hash)).is_some() {
                "running"
            } else if m.status == Status::Interrupted {
                "interrupted"
            } else {
                "crashed"
            };
            (word, steps(&m), None)
        }
    }
}
