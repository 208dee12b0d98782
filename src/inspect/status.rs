//! `dcgan status FILE`: how far each config of a sweep got, read from its run directory,
//! with what Slurm's queue says about it where squeue is there.

use std::collections::HashMap;

use crate::runner::PlannedRun;
use crate::slurm::queue::QueuedTask;
use crate::store::manifest::{Manifest, Status};
use crate::store::{RunState, RunsDir, lock};

/// The status table and a closing count, as lines.
pub fn render(
    sweep: &str,
    planned: &[PlannedRun],
    runs: &RunsDir,
    queued: &HashMap<String, QueuedTask>,
) -> Vec<String> {
    let mut counts: Vec<(&'static str, usize)> = Vec::new();
    let mut lines =
        vec![format!("{:<16}  {:<11}  {:>11}  {:<26}  config", "run", "status", "steps", "slurm")];
    for run in planned {
        let (word, steps, detail) = describe(run, runs);
        match counts.iter_mut().find(|(w, _)| *w == word) {
            Some((_, n)) => *n += 1,
            None => counts.push((word, 1)),
        }
        let slurm = queued
            .get(&run.hash)
            .map_or("-".to_string(), |t| format!("{}_{} {} {}", t.job, t.index, t.state, t.reason));
        let mut line = format!(
            "{:<16}  {word:<11}  {steps:>11}  {slurm:<26}  {}",
            run.short(),
            run.point.label()
        );
        if let Some(detail) = detail {
            line.push_str(&format!("\n{:<16}  {detail}", ""));
        }
        lines.push(line);
    }
    let parts: Vec<String> = counts.iter().map(|(w, n)| format!("{n} {w}")).collect();
    lines.push(format!("sweep {sweep}: {} configs: {}", planned.len(), parts.join(", ")));
    lines
}

/// A run's status word, its steps (done/planned) and, for failures, why.
fn describe(run: &PlannedRun, runs: &RunsDir) -> (&'static str, String, Option<String>) {
    let planned = run.point.config.train.steps;
    let steps = |m: &Manifest| format!("{}/{}", m.steps_done, m.steps_planned);
    match runs.state(&run.hash) {
        RunState::Missing => ("not started", format!("0/{planned}"), None),
        RunState::Completed(m) => ("completed", steps(&m), None),
        RunState::Failed(m) => ("failed", steps(&m), m.failure.clone()),
        RunState::Damaged(reason) => ("damaged", "-".to_string(), Some(reason)),
        RunState::Unfinished(m) => {
            let word = if lock::holder(runs.root(), run.short()).is_some() {
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
