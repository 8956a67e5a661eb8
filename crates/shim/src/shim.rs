//! The shim's life: launch the container, the poll loop, exits and restarts.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use coracle_runtime::container::{self, Container, CreateOptions};
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::args::Args;
use crate::clients::{AttachClient, AttachInput, CtlClient, CtlRequest};
use crate::jsonlog::{JsonLog, Lines};
use crate::status::Status;

/// First restart delay; it doubles up to [`BACKOFF_MAX`] and is reset after a run of
/// at least [`BACKOFF_RESET`] (Docker's restart manager).
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
const BACKOFF_RESET: Duration = Duration::from_secs(10);
/// The marker the runtime's init prints on the container's stderr when it fails after
/// `create` returned (e.g. execve failing with EACCES).
const INIT_ERROR: &str = "container init: ";

/// A failure to start the container, as reported on `--ready-fd`.
#[derive(Debug)]
pub struct StartError {
    pub message: String,
    /// 127 (command not found) or 126 (cannot be run) when the command is at fault.
    pub exit_code: Option<i32>,
}

impl StartError {
    pub fn new(message: impl Into<String>) -> StartError {
        let message = message.into();
        StartError {
            exit_code: classify(&message),
            message,
        }
    }
}

/// 127 for "not found", 126 for "cannot execute", as shells and Docker report them.
pub fn classify(msg: &str) -> Option<i32> {
    if !msg.contains("exec \"") {
        return None;
    }
    if msg.contains("not found") || msg.contains("ENOENT") || msg.contains("No such file") {
        Some(127)
    } else if msg.contains("EACCES")
        || msg.contains("ermission denied")
        || msg.contains("is a directory")
        || msg.contains("ENOEXEC")
    {
        Some(126)
    } else {
        None
    }
}

/// The container's stdio as the shim holds it.
enum Stdio {
    /// Without a terminal: the shim keeps both ends of each pipe for the whole life
    /// of the shim, so a restarted container gets the same pipes.
    Pipes {
        out_r: OwnedFd,
        err_r: OwnedFd,
        out_w: OwnedFd,
        err_w: OwnedFd,
        /// The container's end of the stdin pipe (`--stdin`).
        in_r: Option<OwnedFd>,
    },
    /// With a terminal: the pty master of the current run.
    Tty { master: Option<OwnedFd> },
}

pub struct Shim {
    args: Args,
    devnull: OwnedFd,
    sigchld: OwnedFd,
    attach_l: UnixListener,
    ctl_l: UnixListener,
    attach: Vec<AttachClient>,
    ctl: Vec<CtlClient>,
    stdio: Stdio,
    /// The shim's end of the stdin pipe (no terminal, `--stdin`), until closed.
    stdin_w: Option<OwnedFd>,
    stdin_pending: Vec<u8>,
    stdin_eof: bool,
    log: Option<JsonLog>,
    lines: [Lines; 2],
    status: Status,
    pid: Option<Pid>,
    started: Instant,
    /// An exit reaped before the loop started.
    early_exit: Option<i32>,
    restart_at: Option<Instant>,
    backoff: Duration,
    winsize: Option<(u16, u16)>,
    /// The pty reported hang-up (no slave open): stop polling it until the next run.
    master_hup: bool,
    /// `--start-gate-fd`, until the first start has passed it.
    start_gate: Option<OwnedFd>,
}

/// Sockets bound before the shim detaches, so they exist when the engine's child exits.
pub struct Listeners {
    pub attach: UnixListener,
    pub ctl: UnixListener,
}

pub fn bind_sockets(state_dir: &Path) -> std::io::Result<Listeners> {
    let bind = |name: &str| -> std::io::Result<UnixListener> {
        let path = state_dir.join(name);
        let _ = std::fs::remove_file(&path);
        let l = UnixListener::bind(&path)?;
        l.set_nonblocking(true)?;
        Ok(l)
    };
    // Only root (the engine) may attach or control.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let r = (|| {
        Ok(Listeners {
            attach: bind("attach.sock")?,
            ctl: bind("ctl.sock")?,
        })
    })();
    nix::sys::stat::umask(old);
    r
}

fn set_nonblocking(fd: RawFd) {
    let _ = fcntl(fd, FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
}

fn pipe() -> Result<(OwnedFd, OwnedFd), StartError> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| StartError::new(format!("pipe2: {e}")))
}

/// The oom-kill counter of the container's memory cgroup (v1 memory.oom_control or
/// v2 memory.events), if there is one.
fn oom_kills(c: &Container) -> u64 {
    let Some(cg) = c.state.cgroup() else { return 0 };
    let mut total = 0;
    for dir in cg.directories().unwrap_or_default() {
        for file in ["memory.oom_control", "memory.events"] {
            if let Ok(text) = std::fs::read_to_string(dir.join(file)) {
                total += text
                    .lines()
                    .filter_map(|l| l.strip_prefix("oom_kill "))
                    .filter_map(|n| n.trim().parse::<u64>().ok())
                    .sum::<u64>();
            }
        }
    }
    total
}

/// The command name of `pid` from /proc/PID/stat (None once it is gone).
fn comm(pid: Pid) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (start, end) = (stat.find('(')?, stat.rfind(')')?);
    Some(stat[start + 1..end].to_string())
}

fn code_of(status: WaitStatus) -> Option<i32> {
    coracle_runtime::process::wait::exit_code(status)
}

/// Slots of the poll set.
#[derive(Clone, Copy)]
enum Slot {
    Sigchld,
    AttachListener,
    CtlListener,
    Out(u8),
    Master,
    StdinW,
    Attach(usize),
    Ctl(usize),
}

impl Shim {
    pub fn new(args: Args, listeners: Listeners, sigchld: OwnedFd) -> Result<Shim, StartError> {
        let devnull = nix::fcntl::open(
            "/dev/null",
            OFlag::O_RDWR | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map(crate::sys::adopt_fd)
        .map_err(|e| StartError::new(format!("open /dev/null: {e}")))?
        .map_err(|e| StartError::new(format!("open /dev/null: {e}")))?;
        let (stdio, stdin_w) = if args.tty {
            (Stdio::Tty { master: None }, None)
        } else {
            let (out_r, out_w) = pipe()?;
            let (err_r, err_w) = pipe()?;
            set_nonblocking(out_r.as_raw_fd());
            set_nonblocking(err_r.as_raw_fd());
            let (in_r, in_w) = if args.stdin {
                let (r, w) = pipe()?;
                set_nonblocking(w.as_raw_fd());
                (Some(r), Some(w))
            } else {
                (None, None)
            };
            (
                Stdio::Pipes {
                    out_r,
                    err_r,
                    out_w,
                    err_w,
                    in_r,
                },
                in_w,
            )
        };
        let log = args
            .log_path
            .as_deref()
            .map(|p| JsonLog::new(p, args.log_max_size, args.log_max_files));
        Ok(Shim {
            args,
            devnull,
            sigchld,
            attach_l: listeners.attach,
            ctl_l: listeners.ctl,
            attach: Vec::new(),
            ctl: Vec::new(),
            stdio,
            stdin_w,
            stdin_pending: Vec::new(),
            stdin_eof: false,
            log,
            lines: [Lines::default(), Lines::default()],
            status: Status::default(),
            pid: None,
            started: Instant::now(),
            early_exit: None,
            restart_at: None,
            backoff: Duration::ZERO,
            winsize: None,
            master_hup: false,
            start_gate: None,
        })
    }

    fn root(&self) -> &Path {
        &self.args.runtime_root
    }

    /// Create and start the container; returns init's pid once the user's program
    /// runs (or has already exited).
    /// See `--start-gate-fd`: the first launch waits on it between create and start.
    pub fn set_start_gate(&mut self, gate: Option<OwnedFd>) {
        self.start_gate = gate;
    }

    pub fn launch(&mut self) -> Result<i32, StartError> {
        let mut console_ours = None;
        let console = match &self.stdio {
            Stdio::Tty { .. } => {
                let (ours, theirs) = UnixStream::pair()
                    .map_err(|e| StartError::new(format!("socketpair for the console: {e}")))?;
                console_ours = Some(ours);
                Some(OwnedFd::from(theirs))
            }
            Stdio::Pipes {
                out_w, err_w, in_r, ..
            } => {
                // init inherits fds 0-2 from us.
                let stdin = in_r.as_ref().unwrap_or(&self.devnull).as_raw_fd();
                for (from, to) in [(stdin, 0), (out_w.as_raw_fd(), 1), (err_w.as_raw_fd(), 2)] {
                    nix::unistd::dup2(from, to)
                        .map_err(|e| StartError::new(format!("dup2 to fd {to}: {e}")))?;
                }
                None
            }
        };
        let created = container::create(CreateOptions {
            root: &self.args.runtime_root,
            id: &self.args.id,
            bundle: &self.args.bundle,
            console,
            pid_file: None,
            preserve_fds: 0,
            no_pivot: false,
        });
        for fd in 0..=2 {
            let _ = nix::unistd::dup2(self.devnull.as_raw_fd(), fd);
        }
        let c = created.map_err(|e| StartError::new(e.to_string()))?;
        let pid = Pid::from_raw(c.state.pid.unwrap_or(0));
        if let Some(sock) = &console_ours {
            match coracle_runtime::tty::recv_master(sock.as_fd()) {
                Ok(m) => {
                    set_nonblocking(m.as_raw_fd());
                    if let Some((h, w)) = self.winsize {
                        let _ = crate::sys::set_winsize(m.as_raw_fd(), h, w);
                    }
                    self.stdio = Stdio::Tty { master: Some(m) };
                    self.master_hup = false;
                }
                Err(e) => {
                    let _ = container::delete(self.root(), &self.args.id, true);
                    return Err(StartError::new(format!("receive the pty master: {e}")));
                }
            }
        }
        if let Some(gate) = self.start_gate.take() {
            if let Err(reason) = wait_at_gate(gate) {
                let _ = container::delete(self.root(), &self.args.id, true);
                self.reap_all();
                return Err(StartError::new(reason));
            }
        }
        if let Err(e) = container::start(self.root(), &self.args.id) {
            let msg = self.init_error().unwrap_or_else(|| e.to_string());
            let _ = container::delete(self.root(), &self.args.id, true);
            self.reap_all();
            return Err(StartError::new(msg));
        }
        self.started = Instant::now();
        self.early_exit = None;
        // `start` returns when init has read the go-ahead; wait until it has exec'd
        // the user's program (its name changes) or died trying.
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut pause = Duration::from_micros(200);
        loop {
            match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(Errno::EINTR) => {}
                Ok(st) => {
                    if let Some(code) = code_of(st) {
                        if code == 127 {
                            if let Some(msg) = self.init_error() {
                                let _ = container::delete(self.root(), &self.args.id, true);
                                return Err(StartError::new(msg));
                            }
                        }
                        self.early_exit = Some(code);
                        break;
                    }
                }
                Err(_) => break,
            }
            match comm(pid) {
                Some(name) if name.starts_with("coracle:[") => {}
                _ => break,
            }
            if Instant::now() > deadline {
                break;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(10));
        }
        self.pid = Some(pid);
        self.status.state = "running".into();
        self.status.pid = pid.as_raw();
        self.status.started_at = Some(coracle_runtime::state::rfc3339_now());
        self.status.finished_at = None;
        self.status.oom_killed = false;
        self.status.error = None;
        self.save_status();
        Ok(pid.as_raw())
    }

    /// After init died before its program ran: the runtime's message on the
    /// container's stderr (or pty), if it is there. Other output goes to the log.
    fn init_error(&mut self) -> Option<String> {
        let mut buf = [0u8; 4096];
        let (fd, stream) = match &self.stdio {
            Stdio::Pipes { err_r, .. } => (err_r.as_raw_fd(), 2),
            Stdio::Tty { master: Some(m) } => (m.as_raw_fd(), 1),
            Stdio::Tty { master: None } => return None,
        };
        let n = nix::unistd::read(fd, &mut buf).unwrap_or(0);
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        match text.find(INIT_ERROR) {
            Some(at) => Some(
                text[at + INIT_ERROR.len()..]
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
            ),
            None => {
                self.output(stream, &buf[..n]);
                None
            }
        }
    }

    fn save_status(&self) {
        // A failed write leaves the previous (valid) file; nothing better to do.
        let _ = self.status.save(&self.args.state_dir);
    }

    /// Output from the container: to the log and to attached clients.
    fn output(&mut self, stream: u8, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let name = if stream == 2 { "stderr" } else { "stdout" };
        if let Some(log) = &mut self.log {
            let lines = &mut self.lines[usize::from(stream == 2)];
            lines.feed(data, &mut |line| {
                let _ = log.write(name, line);
            });
        }
        let tty = matches!(self.stdio, Stdio::Tty { .. });
        for c in &mut self.attach {
            if c.wants(stream) {
                c.queue(if tty { 0 } else { stream }, data);
            }
        }
    }

    fn flush_lines(&mut self) {
        if let Some(log) = &mut self.log {
            for (i, name) in ["stdout", "stderr"].into_iter().enumerate() {
                self.lines[i].flush(&mut |line| {
                    let _ = log.write(name, line);
                });
            }
        }
    }

    /// Read everything readable now from the container's output.
    fn drain(&mut self) {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let mut got = false;
            let fds: Vec<(RawFd, u8)> = match &self.stdio {
                Stdio::Pipes { out_r, err_r, .. } => {
                    vec![(out_r.as_raw_fd(), 1), (err_r.as_raw_fd(), 2)]
                }
                Stdio::Tty { master: Some(m) } => vec![(m.as_raw_fd(), 1)],
                Stdio::Tty { master: None } => vec![],
            };
            for (fd, stream) in fds {
                if let Ok(n) = nix::unistd::read(fd, &mut buf) {
                    if n > 0 {
                        got = true;
                        self.output(stream, &buf[..n]);
                    }
                }
            }
            if !got {
                break;
            }
        }
    }

    /// Reap every exited child; returns the exit code of init if it was among them.
    fn reap_all(&mut self) -> Option<i32> {
        let mut init_code = None;
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => break,
                Err(Errno::EINTR) => continue,
                Err(_) => break,
                Ok(st) => {
                    if st.pid() == self.pid {
                        if let Some(code) = code_of(st) {
                            init_code = Some(code);
                        }
                    }
                }
            }
        }
        init_code
    }

    fn stopped_by_user(&self) -> bool {
        self.args.state_dir.join("stopped").exists()
    }

    /// init exited with `code`: record it, then restart or finish. Returns true when
    /// the shim is done.
    fn on_exit(&mut self, code: i32) -> bool {
        self.drain();
        self.flush_lines();
        let ran = self.started.elapsed();
        let oom = Container::load(self.root(), &self.args.id)
            .map(|c| oom_kills(&c) > 0)
            .unwrap_or(false);
        self.pid = None;
        if let Stdio::Tty { master } = &mut self.stdio {
            *master = None;
        }
        self.status.pid = 0;
        self.status.exit_code = Some(code);
        self.status.oom_killed = oom;
        self.status.finished_at = Some(coracle_runtime::state::rfc3339_now());
        let restart = !self.stopped_by_user()
            && self
                .args
                .restart
                .wants_restart(code, self.status.restart_count);
        if restart {
            self.backoff = if ran >= BACKOFF_RESET || self.backoff.is_zero() {
                BACKOFF_START
            } else {
                (self.backoff * 2).min(BACKOFF_MAX)
            };
            self.restart_at = Some(Instant::now() + self.backoff);
            self.status.state = "restarting".into();
            if let Err(e) = container::delete(self.root(), &self.args.id, true) {
                self.status.error = Some(e.to_string());
            }
            self.reap_all();
            self.save_status();
            false
        } else {
            self.status.state = "exited".into();
            self.save_status();
            true
        }
    }

    /// The restart delay is over.
    fn restart(&mut self) -> bool {
        self.restart_at = None;
        if self.stopped_by_user() {
            self.status.state = "exited".into();
            self.save_status();
            return true;
        }
        self.status.restart_count += 1;
        match self.launch() {
            Ok(_) => {
                if let Some(code) = self.early_exit.take() {
                    return self.on_exit(code);
                }
                false
            }
            Err(e) => {
                self.status.restart_count -= 1;
                self.status.state = "exited".into();
                self.status.error = Some(e.message);
                self.save_status();
                true
            }
        }
    }

    fn handle_ctl(&mut self, req: CtlRequest) -> Result<(), String> {
        match req {
            CtlRequest::Resize { height, width } => {
                self.winsize = Some((height, width));
                match &self.stdio {
                    Stdio::Tty { master: Some(m) } => {
                        crate::sys::set_winsize(m.as_raw_fd(), height, width)
                            .map_err(|e| format!("ioctl(TIOCSWINSZ): {e}"))
                    }
                    Stdio::Tty { master: None } => Err("the container is not running".into()),
                    Stdio::Pipes { .. } => Err("the container has no terminal".into()),
                }
            }
            CtlRequest::Kill(sig) => {
                let sig = nix::sys::signal::Signal::try_from(sig)
                    .map_err(|_| format!("invalid signal number {sig}"))?;
                match self.pid {
                    // init is our unreaped child: its pid cannot have been reused.
                    Some(pid) => nix::sys::signal::kill(pid, sig)
                        .map_err(|e| format!("kill({pid}, {sig}): {e}")),
                    None => Err("the container is not running".into()),
                }
            }
        }
    }

    /// Write pending stdin to the container.
    fn push_stdin(&mut self) {
        let target = match (&self.stdio, &self.stdin_w) {
            (Stdio::Tty { master: Some(m) }, _) if self.args.stdin => Some(m),
            (Stdio::Pipes { .. }, Some(w)) => Some(w),
            _ => None,
        };
        let Some(fd) = target else {
            self.stdin_pending.clear();
            return;
        };
        while !self.stdin_pending.is_empty() {
            match nix::unistd::write(fd, &self.stdin_pending) {
                Ok(n) => {
                    self.stdin_pending.drain(..n);
                }
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => return,
                Err(_) => {
                    // The container closed its stdin.
                    self.stdin_pending.clear();
                    self.stdin_eof = true;
                }
            }
        }
        if self.stdin_eof && matches!(self.stdio, Stdio::Pipes { .. }) {
            self.stdin_w = None;
        }
    }

    /// Run until the container has finally exited.
    pub fn run(&mut self) {
        if let Some(code) = self.early_exit.take() {
            if self.on_exit(code) {
                return;
            }
        }
        let mut buf = [0u8; 16 * 1024];
        loop {
            let mut slots: Vec<Slot> = vec![Slot::Sigchld, Slot::AttachListener, Slot::CtlListener];
            let mut fds: Vec<PollFd<'_>> = vec![
                PollFd::new(self.sigchld.as_fd(), PollFlags::POLLIN),
                PollFd::new(self.attach_l.as_fd(), PollFlags::POLLIN),
                PollFd::new(self.ctl_l.as_fd(), PollFlags::POLLIN),
            ];
            match &self.stdio {
                Stdio::Pipes { out_r, err_r, .. } => {
                    fds.push(PollFd::new(out_r.as_fd(), PollFlags::POLLIN));
                    slots.push(Slot::Out(1));
                    fds.push(PollFd::new(err_r.as_fd(), PollFlags::POLLIN));
                    slots.push(Slot::Out(2));
                    if let Some(w) = &self.stdin_w {
                        if !self.stdin_pending.is_empty() {
                            fds.push(PollFd::new(w.as_fd(), PollFlags::POLLOUT));
                            slots.push(Slot::StdinW);
                        }
                    }
                }
                Stdio::Tty { master: Some(m) } if !self.master_hup => {
                    let mut ev = PollFlags::POLLIN;
                    if !self.stdin_pending.is_empty() {
                        ev |= PollFlags::POLLOUT;
                    }
                    fds.push(PollFd::new(m.as_fd(), ev));
                    slots.push(Slot::Master);
                }
                Stdio::Tty { .. } => {}
            }
            let stdin_blocked = !self.stdin_pending.is_empty();
            for (i, c) in self.attach.iter().enumerate() {
                let mut ev = PollFlags::empty();
                // While stdin is backed up, stop reading more from attached clients.
                let held = stdin_blocked && c.request.is_some();
                if !c.read_closed && !held {
                    ev |= PollFlags::POLLIN;
                }
                if !c.out.is_empty() {
                    ev |= PollFlags::POLLOUT;
                }
                fds.push(PollFd::new(c.sock.as_fd(), ev));
                slots.push(Slot::Attach(i));
            }
            for (i, c) in self.ctl.iter().enumerate() {
                fds.push(PollFd::new(c.sock.as_fd(), PollFlags::POLLIN));
                slots.push(Slot::Ctl(i));
            }
            let timeout = match self.restart_at {
                None => PollTimeout::NONE,
                Some(at) => {
                    let ms = at.saturating_duration_since(Instant::now()).as_millis();
                    PollTimeout::from(ms.min(60_000) as u16)
                }
            };
            match poll(&mut fds, timeout) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
            let ready: Vec<(Slot, PollFlags)> = fds
                .iter()
                .zip(slots)
                .filter_map(|(f, s)| f.revents().filter(|r| !r.is_empty()).map(|r| (s, r)))
                .collect();
            drop(fds);

            for (slot, rev) in ready {
                match slot {
                    Slot::Sigchld => {
                        while nix::unistd::read(self.sigchld.as_raw_fd(), &mut buf)
                            .is_ok_and(|n| n > 0)
                        {}
                    }
                    Slot::AttachListener => {
                        while let Ok((s, _)) = self.attach_l.accept() {
                            let mut c = AttachClient::new(s);
                            // The request line usually came with the connection.
                            if let AttachInput::Stdin(d) = c.read(&mut buf) {
                                self.stdin_pending.extend_from_slice(d);
                            }
                            self.attach.push(c);
                        }
                    }
                    Slot::CtlListener => {
                        while let Ok((s, _)) = self.ctl_l.accept() {
                            self.ctl.push(CtlClient::new(s));
                        }
                    }
                    Slot::Out(stream) => {
                        let fd = match &self.stdio {
                            Stdio::Pipes { out_r, err_r, .. } => {
                                if stream == 1 {
                                    out_r.as_raw_fd()
                                } else {
                                    err_r.as_raw_fd()
                                }
                            }
                            _ => continue,
                        };
                        if let Ok(n) = nix::unistd::read(fd, &mut buf) {
                            self.output(stream, &buf[..n]);
                        }
                    }
                    Slot::Master => {
                        if rev.contains(PollFlags::POLLOUT) {
                            self.push_stdin();
                        }
                        let fd = match &self.stdio {
                            Stdio::Tty { master: Some(m) } => m.as_raw_fd(),
                            _ => continue,
                        };
                        match nix::unistd::read(fd, &mut buf) {
                            Ok(n) if n > 0 => self.output(1, &buf[..n]),
                            Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
                            // EIO: no slave is open any more; keep the master until
                            // init's exit is handled, but stop polling a hung-up pty.
                            _ => self.master_hup = true,
                        }
                    }
                    Slot::StdinW => self.push_stdin(),
                    Slot::Attach(i) => {
                        if rev.contains(PollFlags::POLLOUT) {
                            self.attach[i].flush();
                        }
                        if rev
                            .intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
                        {
                            match self.attach[i].read(&mut buf) {
                                AttachInput::Stdin(d) => {
                                    if self.args.stdin {
                                        self.stdin_pending.extend_from_slice(d);
                                    }
                                }
                                AttachInput::StdinEof => {
                                    if !self.args.tty && self.args.stdin {
                                        self.stdin_eof = true;
                                    }
                                }
                                AttachInput::Nothing => {}
                            }
                            if rev.contains(PollFlags::POLLHUP) && self.attach[i].read_closed {
                                self.attach[i].dead = true;
                            }
                        }
                    }
                    Slot::Ctl(i) => {
                        let mut ctl = std::mem::take(&mut self.ctl);
                        ctl[i].serve(&mut buf, &mut |req| self.handle_ctl(req));
                        self.ctl = ctl;
                    }
                }
            }
            if !self.stdin_pending.is_empty() || self.stdin_eof {
                self.push_stdin();
            }
            self.attach.retain(|c| !c.dead);
            self.ctl.retain(|c| !c.dead);

            if let Some(code) = self.reap_all() {
                if self.on_exit(code) {
                    return;
                }
            }
            if self.restart_at.is_some_and(|at| Instant::now() >= at) && self.restart() {
                return;
            }
        }
    }

    /// The container has finally exited: clients get EOF, the log is closed, the
    /// runtime's state is deleted, the sockets removed, then the exit command runs.
    pub fn finish(mut self) {
        for c in self.attach.drain(..) {
            c.finish();
        }
        if let Some(log) = &mut self.log {
            log.close();
        }
        if let Err(e) = container::delete(&self.args.runtime_root, &self.args.id, true) {
            self.status.error = Some(e.to_string());
            self.save_status();
        }
        remove_sockets(&self.args.state_dir);
        let _ = std::fs::remove_file(self.args.state_dir.join("shim.pid"));
        run_exit_command(&self.args);
    }
}

/// Blocks until the engine writes the go-ahead byte on the start gate. End of file (the
/// engine closed it, or died) means the start was called off.
fn wait_at_gate(gate: OwnedFd) -> Result<(), String> {
    let mut byte = [0u8; 1];
    loop {
        match nix::unistd::read(gate.as_raw_fd(), &mut byte) {
            Ok(1) => return Ok(()),
            Ok(_) => return Err("the engine called the start off".into()),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(format!("read --start-gate-fd: {e}")),
        }
    }
}

pub fn remove_sockets(state_dir: &Path) {
    for name in ["attach.sock", "ctl.sock"] {
        let _ = std::fs::remove_file(state_dir.join(name));
    }
}

/// Start `--exit-command` (not waited for: it may well talk to this shim's
/// container, e.g. `coracle rm -f ID`), unless someone else tears the container down:
/// the engine's `rm -f` (it created `removing` before the kill), or the `--cleanup-client`,
/// still running. Should that client die right after this check, the container is left
/// exited, not lost: `rm` removes it.
fn run_exit_command(args: &Args) {
    if args.state_dir.join("removing").exists() {
        return;
    }
    if let Some((pid, start)) = args.cleanup_client {
        if coracle_runtime::state::process_start_time(pid) == Some(start) {
            return;
        }
    }
    if let Some(cmd) = &args.exit_command {
        let _ = std::process::Command::new(cmd)
            .args(&args.exit_command_args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
    }
}

pub fn state_files(state_dir: &Path) -> [PathBuf; 2] {
    [state_dir.join("status.json"), state_dir.join("shim.pid")]
}
