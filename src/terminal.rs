//! The bottom of the terminal: every progress bar of the process, with log lines printed above
//! them rather than through them. Where standard error is not a terminal, there are no bars
//! and log lines go straight out.

use std::io::{self, Write};
use std::sync::OnceLock;

use indicatif::{MultiProgress, ProgressBar};

static BARS: OnceLock<MultiProgress> = OnceLock::new();

fn bars() -> &'static MultiProgress {
    BARS.get_or_init(MultiProgress::new)
}

/// Shows a bar below the log lines, with the others.
pub fn add(bar: ProgressBar) -> ProgressBar {
    bars().add(bar)
}

/// Takes a finished bar off the screen.
pub fn remove(bar: &ProgressBar) {
    bar.finish_and_clear();
    bars().remove(bar);
}

/// Writes a line to standard error above the bars.
pub fn print_line(line: &str) {
    let _ = LogWriter.write_all(format!("{line}\n").as_bytes());
}

/// Standard error for the logger: while bars are drawn, each write lifts them out of the way
/// and draws them again below it. The logger writes each event in one call.
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match BARS.get() {
            Some(bars) => bars.suspend(|| io::stderr().write(buf)),
            None => io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}
