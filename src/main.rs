//! `dcgan`: the command-line entry point. Parses, sets up logging, dispatches, and turns the
//! outcome into an exit code.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use dcgan_harness::cli::{self, Cli};

fn main() -> ExitCode {
    keep_freed_memory();
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    let outcome = cli::dispatch(cli);
    if dcgan_harness::interrupt::requested() {
        // 128 + SIGINT, as shells report a command stopped by Ctrl-C.
        return ExitCode::from(130);
    }
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            // Not eprintln!: it panics when stderr is closed, and the exit code must survive.
            let _ = writeln!(std::io::stderr(), "error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// A training step allocates and frees the same large activation buffers every time. By
/// default glibc hands freed memory at the top of the heap back to the OS (and serves large
/// blocks by mmap), so each step pays page faults for fresh zeroed pages. Keeping freed memory
/// lets the next step reuse it; the process holds on to about one step's peak, which it needs
/// again anyway. LibTorch allocates through the same malloc, so this serves tch-cpu too.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    if std::env::var_os("DCGAN_NO_MALLOPT").is_some() {
        return;
    }
    // SAFETY: mallopt only changes allocator settings; called before any thread exists.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        // 32 MiB, glibc's largest: blocks up to that size come from the heap, not mmap.
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}

fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    // Our own logs at the chosen level; dependencies only warn unless RUST_LOG says otherwise.
    let default = format!("warn,dcgan_harness={level},dcgan={level}");
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // Colours only for a person watching; log files and pipes get plain text.
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Above the progress bars, not through them.
        .with_writer(|| dcgan_harness::terminal::LogWriter)
        .with_ansi(ansi)
        // A closed stderr (`2>&1 | head`) must not stop training: drop what cannot be written.
        .log_internal_errors(false)
        .init();
}
