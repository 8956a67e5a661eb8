//! Holding off the signals that end a command (SIGINT, SIGTERM, SIGHUP, SIGQUIT)
//! while it changes the host, so a Ctrl-C or a `kill` cannot leave a veth without
//! its record, or an address allocated to nobody.
//!
//! [`Deferred::block`] blocks them for the calling thread (threads started later
//! inherit the mask); a signal sent meanwhile stays pending. The work asks
//! [`Deferred::pending`] between its steps: setup rolls back when one is pending,
//! teardown goes on to the end. Dropping the guard restores the old mask, and a
//! pending signal is then delivered with its usual effect (the process ends as if it
//! had been killed after the work, which the caller sees in the exit status).
//!
//! Block them before any thread exists: a process-directed signal goes to any
//! thread that does not block it. Children inherit the mask through fork and exec
//! (Rust's `Command` keeps it): a short-lived one (`nft`) does not matter, but a
//! long-lived one must call [`unblock`] first thing, as `coracle-dns` does, or it
//! could not be stopped with SIGTERM.
#![allow(unsafe_code)]

use nix::errno::Errno;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};

/// The signals held off: those whose default action ends the process and that a
/// user or a supervisor sends to stop a command.
pub const DEFERRED: [Signal; 4] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

fn deferred_set() -> SigSet {
    let mut set = SigSet::empty();
    for s in DEFERRED {
        set.add(s);
    }
    set
}

/// While alive, [`DEFERRED`] signals are blocked for this thread; dropping it
/// restores the mask it found (delivering any that arrived meanwhile).
#[must_use = "the signals are unblocked when the guard is dropped"]
pub struct Deferred {
    old: SigSet,
}

impl Deferred {
    /// Block [`DEFERRED`] for the calling thread.
    pub fn block() -> Result<Deferred, Errno> {
        let old = deferred_set().thread_swap_mask(SigmaskHow::SIG_BLOCK)?;
        Ok(Deferred { old })
    }

    /// The first of [`DEFERRED`] that arrived and waits, if any.
    pub fn pending(&self) -> Option<Signal> {
        pending()
    }
}

impl Drop for Deferred {
    fn drop(&mut self) {
        let _ = self.old.thread_set_mask();
    }
}

/// Unblock [`DEFERRED`] for the calling thread, whatever the parent left blocked.
pub fn unblock() -> Result<(), Errno> {
    deferred_set().thread_unblock()
}

/// The first of [`DEFERRED`] pending for this thread or the process.
pub fn pending() -> Option<Signal> {
    let mut raw = std::mem::MaybeUninit::<libc::sigset_t>::zeroed();
    // SAFETY: sigpending writes a sigset_t through the pointer, which points to one
    // we own; it was zeroed, so it is initialized whatever the call does.
    let rc = unsafe { libc::sigpending(raw.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: zeroed above and possibly filled by sigpending: a valid sigset_t.
    let set = unsafe { raw.assume_init() };
    DEFERRED.into_iter().find(|s| {
        // SAFETY: `set` is a valid sigset_t and the signal number is a real one.
        unsafe { libc::sigismember(&set, *s as libc::c_int) == 1 }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Runs in its own thread: the mask is per thread, and the test harness runs
    // other tests on other threads, which must not get the signal. tgkill sends it
    // to this thread only.
    #[test]
    fn a_signal_waits_while_deferred() {
        std::thread::spawn(|| {
            let before = SigSet::thread_get_mask().unwrap();
            let guard = Deferred::block().unwrap();
            assert_eq!(guard.pending(), None);
            let tid = nix::unistd::gettid();
            // SAFETY: tgkill with our own pid and tid and a valid signal number.
            let rc = unsafe {
                libc::syscall(libc::SYS_tgkill, libc::getpid(), tid.as_raw(), libc::SIGHUP)
            };
            assert_eq!(rc, 0);
            // Still alive: it waits, and the work can see it.
            assert_eq!(guard.pending(), Some(Signal::SIGHUP));
            // Consume it before unblocking (its default action would end the test
            // process): sigwait takes a pending signal off.
            let mut one = SigSet::empty();
            one.add(Signal::SIGHUP);
            assert_eq!(one.wait().unwrap(), Signal::SIGHUP);
            assert_eq!(pending(), None);
            drop(guard);
            let after = SigSet::thread_get_mask().unwrap();
            for s in DEFERRED {
                assert_eq!(after.contains(s), before.contains(s), "{s} mask restored");
            }
        })
        .join()
        .unwrap();
    }
}
