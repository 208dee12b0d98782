//! How a worker process tells the sweep that started it how far its run got: a line
//! `@progress <run> <step> <steps>` on standard output whenever the step changed, at most
//! four times a second, and `@completed-elsewhere` when another process completed its run.
//! The parent draws the bars; workers draw none.

use std::io::Write;
use std::time::Duration;

use indicatif::ProgressBar;

const PREFIX: &str = "@progress";
/// Said by a worker whose run another process completed (before it started, or while it
/// waited for the run's lock).
pub const ELSEWHERE: &str = "@completed-elsewhere";

/// One progress report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub run: String,
    pub step: u64,
    pub steps: u64,
}

impl Report {
    pub fn line(&self) -> String {
        format!("{PREFIX} {} {} {}", self.run, self.step, self.steps)
    }

    /// The report a line carries, or `None` for any other line.
    pub fn parse(line: &str) -> Option<Report> {
        let mut words = line.strip_prefix(PREFIX)?.split_whitespace();
        let run = words.next()?.to_string();
        let step = words.next()?.parse().ok()?;
        let steps = words.next()?.parse().ok()?;
        words.next().is_none().then_some(Report { run, step, steps })
    }
}

/// A hidden bar whose position is reported as lines until it is finished.
pub fn reporting_bar(steps: u64, run: &str) -> ProgressBar {
    let bar = ProgressBar::hidden();
    bar.set_length(steps);
    let watched = bar.clone();
    let run = run.to_string();
    std::thread::spawn(move || {
        let mut last = None;
        while !watched.is_finished() {
            let step = watched.position();
            if last != Some(step) {
                last = Some(step);
                let report = Report { run: run.clone(), step, steps };
                // A parent that went away is not our concern: training goes on.
                let _ = writeln!(std::io::stdout().lock(), "{}", report.line());
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    });
    bar
}

/// In a worker: stops training (as Ctrl-C would, with a checkpoint) once the sweep that
/// started it is gone, seen as a change of parent process. Not `PR_SET_PDEATHSIG`: it fires
/// once per thread of the dying parent, and a second signal kills a run without checkpoint.
pub fn watch_parent() {
    // SAFETY: getppid has no preconditions and cannot fail.
    let parent = unsafe { libc::getppid() };
    std::thread::spawn(move || {
        // SAFETY: as above.
        while unsafe { libc::getppid() } == parent {
            std::thread::sleep(Duration::from_millis(250));
        }
        tracing::warn!("the sweep that started this worker is gone; stopping after this step");
        crate::interrupt::parent_gone();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_survive_the_round_trip_and_other_lines_are_not_reports() {
        let report = Report { run: "0123abcd".into(), step: 40, steps: 150 };
        assert_eq!(Report::parse(&report.line()), Some(report));
        assert_eq!(Report::parse("sweep quickstart: 6 configs"), None);
        assert_eq!(Report::parse("@progress abc 1"), None);
        assert_eq!(Report::parse("@progress abc 1 2 3"), None);
        assert_eq!(Report::parse("@progress abc x 2"), None);
    }
}
