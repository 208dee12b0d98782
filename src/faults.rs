//! Crash points for the crash tests: `DCGAN_KILL_AT=<point>:<n>` makes the process kill
//! itself with SIGKILL the n-th time it reaches `<point>`, so a test can stop training at an
//! exact moment (inside a step, halfway through a checkpoint, halfway through writing a
//! Parquet file) and check that resuming loses nothing. Unset, each point is one relaxed
//! load of an already-parsed setting.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The environment variable that arms a crash point.
pub const KILL_AT: &str = "DCGAN_KILL_AT";

static ARMED: OnceLock<Option<(String, u64)>> = OnceLock::new();
static REACHED: AtomicU64 = AtomicU64::new(0);

fn armed() -> Option<&'static (String, u64)> {
    ARMED
        .get_or_init(|| {
            let value = std::env::var(KILL_AT).ok()?;
            let (point, n) = value.rsplit_once(':')?;
            Some((point.to_string(), n.parse().ok()?))
        })
        .as_ref()
}

/// Whether this visit of `point` is the one to die at.
pub fn due(point: &str) -> bool {
    match armed() {
        Some((name, n)) if name == point => REACHED.fetch_add(1, Ordering::SeqCst) + 1 == *n,
        _ => false,
    }
}

/// Dies at once, as `kill -9` would do it.
pub fn die() -> ! {
    // SAFETY: sending a signal to this very process.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    unreachable!("SIGKILL cannot be caught")
}

/// Kills the process here when `point` is armed for this visit.
pub fn point(point: &str) {
    if due(point) {
        die();
    }
}
