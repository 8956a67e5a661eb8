//! coracle-shim: one small process per container. It creates and starts the container
//! with the runtime library, is its parent and subreaper, holds its stdio or pty, writes
//! its log, records its exit status, serves attach/resize/kill on unix sockets and
//! applies the restart policy. Single-threaded, driven by poll(2), no async runtime.
//!
//! # Invocation
//!
//! ```text
//! coracle-shim --id ID --bundle DIR --runtime-root DIR --state-dir DIR
//!     [--log-path FILE] [--log-max-size BYTES] [--log-max-files N] [--tty] [--stdin]
//!     [--restart no|always|unless-stopped|on-failure[:N]]
//!     [--exit-command PATH [--exit-command-arg ARG]...] [--ready-fd N]
//! ```
//!
//! 1. Every inherited fd but `--ready-fd` is closed; unless it was started from a
//!    read-only handle on its binary (the engine does that), the binary re-executes
//!    itself from a copy the container cannot write (the runtime's `sealed_exe`,
//!    CVE-2019-5736).
//! 2. `<state-dir>` is created; `attach.sock` and `ctl.sock` are bound in it (mode 0600).
//! 3. The shim forks: the process the engine spawned exits 0 at once (once it has, the
//!    sockets accept connections: an engine that connects to `attach.sock` before it
//!    reads `--ready-fd` sees the container's output from its first byte). The child
//!    calls setsid, points fds 0-2 at /dev/null, becomes a child subreaper and writes
//!    `<state-dir>/shim.pid`.
//! 4. It creates and starts the container (init is the shim's child), waits until
//!    init has exec'd the user's program, writes `status.json` (running), and reports
//!    ONE line on `--ready-fd`, then closes it:
//!    - `{"pid":N}` — the container's init on the host;
//!    - `{"error":"...","exit_code":127|126|null}` — the container could not start;
//!      `exit_code` is 127 when the command was not found, 126 when it could not be
//!      executed (permission denied, a directory), null for any other failure
//!      (Docker's 125). Then the shim has removed everything it made (runtime state,
//!      cgroup, sockets, shim.pid, status.json) and exits 1.
//!
//! `--log-max-size` takes bytes or k/m/g (1024-based); `--log-max-files` defaults to 1
//! (the log is truncated when full). See [`jsonlog`] for the format and rotation.
//!
//! # stdio
//!
//! Without `--tty` the container's stdout and stderr are pipes to the shim; with
//! `--stdin` its stdin is a pipe from the shim (else /dev/null). With `--tty`, the
//! bundle's `process.terminal` must be true: the runtime's console socket hands the
//! shim the pty master; output is logged as "stdout".
//!
//! # Files in `<state-dir>`
//!
//! - `shim.pid`: the shim's pid (removed when it exits).
//! - `status.json`, replaced atomically (tmp + fsync + rename) on each change:
//!   `{"state":"running"|"restarting"|"exited","pid":N,"started_at":RFC3339Nano,
//!   "finished_at":...|null,"exit_code":N|null,"oom_killed":bool,"restart_count":N,
//!   "error":"..."|null}`. `exit_code` is the last run's (128+signal when killed by a
//!   signal); `pid` is 0 while restarting and after the exit.
//! - `attach.sock`, `ctl.sock`: see [`clients`] for both protocols.
//! - `stopped`: created by the ENGINE before it kills a container on purpose; the shim
//!   then does not restart it (whatever the policy: a manual stop is never undone).
//! - `removing`: created by the ENGINE's `rm -f` before its kill; the shim then does not
//!   start `--exit-command`, since `rm` tears the container down itself.
//!
//! # Restarts
//!
//! `no`; `on-failure[:N]` (non-zero exit, at most N restarts, no limit without N);
//! `always`; `unless-stopped` (both restart after any exit unless `stopped` exists).
//! The delay starts at 100 ms and doubles per restart up to 1 min; it is reset when
//! the run lasted 10 s or more (Docker's). A restart deletes the runtime container
//! and creates and starts it again from the same bundle; status.json goes
//! `restarting` → `running` with `restart_count` incremented. A restart that fails to
//! start ends the shim like a final exit, with `error` set.
//!
//! # The final exit
//!
//! status.json says `exited`; attach clients get the rest of the output, then EOF;
//! the log is closed; the runtime container is deleted (cgroup and state); the
//! sockets and shim.pid are removed; `--exit-command` is started (not waited for, so
//! it may itself talk to the engine about this container, e.g. `coracle rm -f ID`)
//! unless `removing` exists or the `--cleanup-client` still runs, and the shim exits 0.
//!
//! # If the shim is killed (SIGKILL)
//!
//! The container keeps running, re-parented to the shim's parent (init or the
//! nearest subreaper). What remains: status.json (valid JSON: the last state written,
//! normally `running` with the pid), a stale shim.pid and socket files, the runtime's
//! state under `--runtime-root` and the cgroup. The container's stdout/stderr pipes
//! have no reader any more: its next write to them fails (SIGPIPE/EPIPE). The engine
//! detects the dead shim (shim.pid's process gone), and cleans up with the runtime's
//! `delete --force`, which kills what is left in the cgroup.
#![deny(unsafe_code)]

mod args;
mod clients;
mod jsonlog;
mod shim;
mod status;
mod sys;

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};

use args::Args;
use shim::{Shim, StartError};

/// Report the start on `--ready-fd` (one JSON line) and close it.
fn report(ready: Option<OwnedFd>, result: &Result<i32, StartError>) {
    let Some(fd) = ready else { return };
    let line = match result {
        Ok(pid) => serde_json::json!({ "pid": pid }),
        Err(e) => serde_json::json!({ "error": e.message, "exit_code": e.exit_code }),
    };
    let mut f = std::fs::File::from(fd);
    let _ = writeln!(f, "{line}");
}

fn main() {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("coracle-shim: {e}");
            std::process::exit(2);
        }
    };
    sys::close_inherited(&[args.ready_fd, args.start_gate_fd]);
    // Started as /proc/self/fd/N (the engine's read-only handle, see below), the kernel
    // named this process "N"; `ps`, `pgrep -x coracle-shim` and the seed's process tree
    // expect the shim's name.
    let _ = nix::sys::prctl::set_name(c"coracle-shim");
    // Re-exec from a sealed copy before anything enters a container (returns only on
    // failure), unless already started from a read-only handle, as the engine does.
    let sealed = coracle_runtime::sealed_exe::ensure_sealed(&args.runtime_root);
    let ready = match args.ready_fd.map(sys::adopt_fd).transpose() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("coracle-shim: --ready-fd {:?}: {e}", args.ready_fd);
            std::process::exit(2);
        }
    };
    let gate = match args.start_gate_fd.map(sys::adopt_fd).transpose() {
        Ok(g) => g,
        Err(e) => {
            eprintln!(
                "coracle-shim: --start-gate-fd {:?}: {e}",
                args.start_gate_fd
            );
            std::process::exit(2);
        }
    };
    for fd in ready.iter().chain(gate.iter()) {
        let _ = nix::fcntl::fcntl(
            fd.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        );
    }
    let fail = |ready, msg: String| -> ! {
        eprintln!("coracle-shim: {msg}");
        report(ready, &Err(StartError::new(msg)));
        std::process::exit(1);
    };
    if let Err(e) = sealed {
        fail(ready, e);
    }
    if let Err(e) = std::fs::create_dir_all(&args.state_dir) {
        fail(ready, format!("mkdir {}: {e}", args.state_dir.display()));
    }
    let listeners = match shim::bind_sockets(&args.state_dir) {
        Ok(l) => l,
        Err(e) => fail(
            ready,
            format!("bind sockets in {}: {e}", args.state_dir.display()),
        ),
    };
    if let Err(e) = sys::fork_and_leave_parent() {
        shim::remove_sockets(&args.state_dir);
        fail(ready, format!("fork: {e}"));
    }
    // From here on the engine's child has exited; errors go to --ready-fd only.
    let _ = nix::unistd::setsid();
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        for fd in 0..=2 {
            let _ = nix::unistd::dup2(null.as_raw_fd(), fd);
        }
    }
    let state_dir = args.state_dir.clone();
    let cleanup = |ready, e: StartError| -> ! {
        shim::remove_sockets(&state_dir);
        for f in shim::state_files(&state_dir) {
            let _ = std::fs::remove_file(f);
        }
        report(ready, &Err(e));
        std::process::exit(1);
    };
    if let Err(e) = coracle_runtime::sys::raw::set_child_subreaper() {
        cleanup(
            ready,
            StartError::new(format!("prctl(PR_SET_CHILD_SUBREAPER): {e}")),
        );
    }
    let sigchld = match sys::install_signal_handlers() {
        Ok(fd) => fd,
        Err(e) => cleanup(ready, StartError::new(format!("sigaction: {e}"))),
    };
    if let Err(e) = coracle_runtime::container::write_pid_file(
        &state_dir.join("shim.pid"),
        std::process::id() as i32,
    ) {
        cleanup(ready, StartError::new(e.to_string()));
    }
    let mut shim = match Shim::new(args, listeners, sigchld) {
        Ok(s) => s,
        Err(e) => cleanup(ready, e),
    };
    shim.set_start_gate(gate);
    let started = shim.launch();
    if let Err(e) = started {
        cleanup(ready, e);
    }
    report(ready, &started);
    // The shim now idles for the container's lifetime: keep only what it needs resident.
    sys::release_free_memory();
    shim.run();
    shim.finish();
}
