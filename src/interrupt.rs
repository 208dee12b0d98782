//! Ctrl-C and SIGTERM: finish the current step, write a checkpoint, stop.
//!
//! The handler only sets a flag; the trainer looks at it after every step and the sweep
//! before every run. The first signal also puts the default action back, so a second Ctrl-C
//! stops the process at once for a user who cannot wait for the step to end. SIGTERM is
//! what Slurm sends before it kills a job, so a preempted run keeps its work too.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);
static SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(signal: libc::c_int) {
    REQUESTED.store(true, Ordering::SeqCst);
    SIGNAL.store(signal, Ordering::SeqCst);
    // SAFETY: signal() is async-signal-safe; it restores the default action.
    unsafe {
        libc::signal(signal, libc::SIG_DFL);
    }
}

/// Routes SIGINT and SIGTERM to the stop flag. Call once, before training starts.
pub fn install() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to atomics and calls signal(), both signal-safe.
        unsafe {
            libc::signal(signal, handler);
        }
    }
}

/// Stands for "the parent went away" where a signal number is kept.
const PARENT_GONE: i32 = -1;

/// Asks for a stop as a signal would, because the sweep that started this worker is gone.
pub fn parent_gone() {
    SIGNAL.store(PARENT_GONE, Ordering::SeqCst);
    REQUESTED.store(true, Ordering::SeqCst);
}

/// Whether a stop was asked for.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// The signal that asked for the stop (SIGINT when it was not a signal), to pass on.
pub fn signal() -> libc::c_int {
    match SIGNAL.load(Ordering::SeqCst) {
        libc::SIGTERM => libc::SIGTERM,
        _ => libc::SIGINT,
    }
}

/// The signal that asked for the stop, by name, for logs.
pub fn signal_name() -> &'static str {
    match SIGNAL.load(Ordering::SeqCst) {
        libc::SIGINT => "SIGINT (Ctrl-C)",
        libc::SIGTERM => "SIGTERM",
        PARENT_GONE => "the end of the sweep that started this worker",
        _ => "a signal",
    }
}
