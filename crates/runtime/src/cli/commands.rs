//! One function per subcommand; all errors go up as anyhow with context.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use coracle_runtime::container::{self, Container, CreateOptions, ExecOptions};
use coracle_runtime::oci_spec::runtime::{
    Capability, LinuxCapabilities, Process, ProcessBuilder, Spec, UserBuilder,
};
use coracle_runtime::process::wait::wait_forwarding;
use coracle_runtime::state;

use super::{Cli, Command, CreateArgs};

#[derive(clap::Args, Debug)]
pub struct ExecArgs {
    /// A process.json to run instead of COMMAND.
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    /// Allocate a pseudo-terminal.
    #[arg(short, long)]
    pub tty: bool,
    /// Do not wait for the process.
    #[arg(short, long)]
    pub detach: bool,
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Working directory inside the container.
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// Extra environment variables (KEY=VALUE).
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// uid[:gid]
    #[arg(short, long)]
    pub user: Option<String>,
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// Add a capability to the process.
    #[arg(short, long = "cap")]
    pub cap: Vec<String>,
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    #[arg(long = "apparmor")]
    pub apparmor: Option<String>,
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    pub id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

pub fn run(cli: &Cli) -> Result<i32> {
    let root = cli.root.as_path();
    match &cli.command {
        Command::Create(args) => {
            let console = console_socket(args.console_socket.as_deref())?;
            container::create(create_options(root, args, console))?;
            Ok(0)
        }
        Command::Start { id } => {
            container::start(root, id)?;
            Ok(0)
        }
        Command::Run {
            create,
            detach,
            keep,
        } => run_container(root, create, *detach, *keep),
        Command::State { id } => {
            let c = Container::load(root, id)?;
            println!("{}", serde_json::to_string_pretty(&c.state.public_json())?);
            Ok(0)
        }
        Command::Kill { id, signal, all } => {
            let sig = container::parse_signal(signal.as_deref().unwrap_or("TERM"))
                .map_err(|e| anyhow!(e))?;
            container::kill(root, id, sig, *all)?;
            Ok(0)
        }
        Command::Delete { force, id } => {
            container::delete(root, id, *force)?;
            Ok(0)
        }
        Command::Exec(args) => exec(root, args),
        Command::Spec { bundle, rootless } => write_spec(bundle, *rootless),
        Command::Features => {
            println!("{}", serde_json::to_string_pretty(&features())?);
            Ok(0)
        }
        Command::Ps {
            format,
            id,
            ps_args,
        } => ps(root, id, format, ps_args),
        Command::Pause { id } => {
            container::pause(root, id)?;
            Ok(0)
        }
        Command::Resume { id } => {
            container::resume(root, id)?;
            Ok(0)
        }
        Command::List { format, quiet } => list(root, format, *quiet),
    }
}

fn create_options<'a>(
    root: &'a Path,
    args: &'a CreateArgs,
    console: Option<OwnedFd>,
) -> CreateOptions<'a> {
    CreateOptions {
        root,
        id: &args.id,
        bundle: &args.bundle,
        console,
        pid_file: args.pid_file.as_deref(),
        preserve_fds: args.preserve_fds,
        no_pivot: args.no_pivot,
    }
}

fn console_socket(path: Option<&Path>) -> Result<Option<OwnedFd>> {
    match path {
        None => Ok(None),
        Some(p) => {
            let s = UnixStream::connect(p)
                .with_context(|| format!("connect --console-socket {}", p.display()))?;
            Ok(Some(OwnedFd::from(s)))
        }
    }
}

/// For a foreground terminal without --console-socket: a socket pair whose one end
/// receives the pty master that init sends, so we can proxy it.
fn own_console() -> Result<(OwnedFd, UnixStream)> {
    let (ours, theirs) = UnixStream::pair().context("socketpair for the console")?;
    Ok((OwnedFd::from(theirs), ours))
}

fn wants_terminal(bundle: &Path) -> bool {
    Spec::load(bundle.join("config.json"))
        .ok()
        .and_then(|s| s.process().as_ref().and_then(|p| p.terminal()))
        .unwrap_or(false)
}

fn run_container(root: &Path, args: &CreateArgs, detach: bool, keep: bool) -> Result<i32> {
    let terminal = wants_terminal(&args.bundle);
    let mut proxy: Option<UnixStream> = None;
    let console = match (&args.console_socket, terminal, detach) {
        (Some(p), _, _) => console_socket(Some(p))?,
        (None, true, true) => {
            bail!("cannot allocate a terminal for a detached container without --console-socket")
        }
        (None, true, false) => {
            let (theirs, ours) = own_console()?;
            proxy = Some(ours);
            Some(theirs)
        }
        (None, false, _) => None,
    };
    let c = container::create(create_options(root, args, console))?;
    let master = match &proxy {
        Some(sock) => Some(coracle_runtime::tty::recv_master(
            std::os::fd::AsFd::as_fd(sock),
        )?),
        None => None,
    };
    if let Err(e) = container::start(root, &args.id) {
        let _ = container::delete(root, &args.id, true);
        return Err(e.into());
    }
    if detach {
        return Ok(0);
    }
    let pid = nix::unistd::Pid::from_raw(c.state.pid.unwrap_or(0));
    let code = wait_forwarding(pid, master).map_err(|e| anyhow!(e))?;
    if !keep {
        container::delete(root, &args.id, true)?;
    }
    Ok(code)
}

fn exec(root: &Path, args: &ExecArgs) -> Result<i32> {
    let c = Container::load(root, &args.id)?;
    let process = exec_process(&c, args)?;
    let terminal = process.terminal().unwrap_or(false);
    let mut proxy = None;
    let console = match (&args.console_socket, terminal, args.detach) {
        (Some(p), _, _) => console_socket(Some(p))?,
        (None, true, true) => {
            bail!("cannot allocate a terminal for a detached process without --console-socket")
        }
        (None, true, false) => {
            let (theirs, ours) = own_console()?;
            proxy = Some(ours);
            Some(theirs)
        }
        (None, false, _) => None,
    };
    let pid = container::exec(ExecOptions {
        root,
        id: &args.id,
        process: &process,
        console,
        pid_file: args.pid_file.as_deref(),
        preserve_fds: args.preserve_fds,
    })?;
    if args.detach {
        return Ok(0);
    }
    let master = match &proxy {
        Some(sock) => Some(coracle_runtime::tty::recv_master(
            std::os::fd::AsFd::as_fd(sock),
        )?),
        None => None,
    };
    wait_forwarding(pid, master).map_err(|e| anyhow!(e))
}

/// The process for `exec`: --process JSON, or the container's process with the
/// command and flags applied (as runc does).
fn exec_process(c: &Container, args: &ExecArgs) -> Result<Process> {
    if let Some(path) = &args.process {
        let text =
            std::fs::read(path).with_context(|| format!("read --process {}", path.display()))?;
        let p: Process = serde_json::from_slice(&text)
            .with_context(|| format!("{}: invalid process JSON", path.display()))?;
        if p.args().as_ref().is_none_or(|a| a.is_empty()) {
            bail!("{}: process.args is empty", path.display());
        }
        return Ok(p);
    }
    if args.command.is_empty() {
        bail!("exec: a COMMAND or --process is required");
    }
    let base = c
        .state
        .config
        .as_ref()
        .and_then(|s| s.process().clone())
        .ok_or_else(|| anyhow!("container {} has no process in its config", c.id()))?;
    let mut env = base.env().clone().unwrap_or_default();
    for kv in &args.env {
        if !kv.contains('=') {
            bail!("--env {kv:?}: expected KEY=VALUE");
        }
        let key = kv.split('=').next().unwrap_or_default();
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(kv.clone());
    }
    let mut user = base.user().clone();
    if let Some(u) = &args.user {
        let (uid, gid) = match u.split_once(':') {
            Some((a, b)) => (a.parse::<u32>(), b.parse::<u32>()),
            None => (u.parse::<u32>(), Ok(0)),
        };
        let (Ok(uid), Ok(gid)) = (uid, gid) else {
            bail!("--user {u:?}: expected UID[:GID] (numbers)")
        };
        user = UserBuilder::default().uid(uid).gid(gid).build()?;
    }
    if !args.additional_gids.is_empty() {
        user.set_additional_gids(Some(args.additional_gids.clone()));
    }
    let mut caps: LinuxCapabilities = base.capabilities().clone().unwrap_or_default();
    for name in &args.cap {
        let cap: Capability = name
            .to_ascii_uppercase()
            .parse()
            .map_err(|_| anyhow!("--cap {name:?}: unknown capability"))?;
        let add = |s: &Option<coracle_runtime::oci_spec::runtime::Capabilities>| {
            let mut s = s.clone().unwrap_or_default();
            s.insert(cap);
            Some(s)
        };
        caps.set_bounding(add(caps.bounding()));
        caps.set_effective(add(caps.effective()));
        caps.set_permitted(add(caps.permitted()));
    }
    let mut b = ProcessBuilder::default()
        .args(args.command.clone())
        .env(env)
        .cwd(args.cwd.clone().unwrap_or_else(|| base.cwd().clone()))
        .user(user)
        .terminal(args.tty)
        .capabilities(caps)
        .no_new_privileges(args.no_new_privs || base.no_new_privileges().unwrap_or(false));
    if let Some(r) = base.rlimits() {
        b = b.rlimits(r.clone());
    }
    if let Some(a) = args
        .apparmor
        .clone()
        .or_else(|| base.apparmor_profile().clone())
    {
        b = b.apparmor_profile(a);
    }
    if let Some(l) = args
        .process_label
        .clone()
        .or_else(|| base.selinux_label().clone())
    {
        b = b.selinux_label(l);
    }
    Ok(b.build()?)
}

fn write_spec(bundle: &Path, rootless: bool) -> Result<i32> {
    let path = bundle.join("config.json");
    if path.exists() {
        bail!("{} already exists; remove it first", path.display());
    }
    let mut spec = if rootless {
        Spec::rootless(
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        )
    } else {
        Spec::default()
    };
    // oci-spec's default leaves the version to the caller.
    spec.set_version("1.2.0".to_string());
    let text = serde_json::to_string_pretty(&spec)?;
    std::fs::write(&path, text + "\n").with_context(|| format!("write {}", path.display()))?;
    Ok(0)
}

fn features() -> serde_json::Value {
    let layout = coracle_runtime::cgroups::Layout::detect().ok();
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.2.0",
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": [
            "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec",
            "mand", "noatime", "nodev", "nodiratime", "noexec", "nomand", "norelatime",
            "nostrictatime", "nosuid", "private", "rbind", "relatime", "remount", "ro",
            "rprivate", "rshared", "rslave", "runbindable", "rw", "shared", "slave",
            "strictatime", "suid", "sync", "unbindable"
        ],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
            "capabilities": known_capabilities(),
            "cgroup": {
                "v1": true,
                "v2": true,
                "systemd": false,
                "systemdUser": false,
                "rdma": false
            },
            "seccomp": {
                "enabled": true,
                "actions": [
                    "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                    "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"
                ],
                "operators": [
                    "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                    "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"
                ],
                "archs": ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
            },
            "apparmor": { "enabled": false },
            "selinux": { "enabled": false },
            "intelRdt": { "enabled": false },
            "mountExtensions": { "idmap": { "enabled": false } }
        },
        "annotations": {
            "org.opencontainers.runc.checkpoint.enabled": "false",
            "io.coracle.cgroup.layout": match layout {
                Some(coracle_runtime::cgroups::Layout::V1 { .. }) => "v1",
                Some(coracle_runtime::cgroups::Layout::V2 { .. }) => "v2",
                None => "none",
            }
        }
    })
}

fn ps(root: &Path, id: &str, format: &str, ps_args: &[String]) -> Result<i32> {
    let c = Container::load(root, id)?;
    let pids = c.pids()?;
    match format {
        "json" => {
            println!("{}", serde_json::to_string(&pids)?);
            Ok(0)
        }
        "table" => {
            let args: Vec<String> = if ps_args.is_empty() {
                vec!["-ef".into()]
            } else {
                ps_args.to_vec()
            };
            let out = std::process::Command::new("ps")
                .args(&args)
                .output()
                .context("run ps")?;
            if !out.status.success() {
                bail!(
                    "ps {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            let text = String::from_utf8_lossy(&out.stdout);
            let mut lines = text.lines();
            let header = lines.next().unwrap_or_default();
            let col = header
                .split_whitespace()
                .position(|h| h == "PID")
                .ok_or_else(|| anyhow!("ps output has no PID column"))?;
            println!("{header}");
            for line in lines {
                let pid = line
                    .split_whitespace()
                    .nth(col)
                    .and_then(|p| p.parse::<i32>().ok());
                if pid.is_some_and(|p| pids.contains(&p)) {
                    println!("{line}");
                }
            }
            Ok(0)
        }
        other => bail!("--format {other:?}: expected table or json"),
    }
}

fn list(root: &Path, format: &str, quiet: bool) -> Result<i32> {
    let all = state::list(root)?;
    if quiet {
        for c in &all {
            println!("{}", c.id);
        }
        return Ok(0);
    }
    match format {
        "json" => {
            let v: Vec<_> = all.iter().map(|c| c.public_json()).collect();
            println!("{}", serde_json::to_string(&v)?);
        }
        "table" => {
            println!(
                "{:<20} {:<8} {:<10} {:<40} {:<32} OWNER",
                "ID", "PID", "STATUS", "BUNDLE", "CREATED"
            );
            for c in &all {
                let pid = if c.status == state::Status::Stopped {
                    0
                } else {
                    c.pid.unwrap_or(0)
                };
                println!(
                    "{:<20} {:<8} {:<10} {:<40} {:<32} {}",
                    c.id,
                    pid,
                    c.status,
                    c.bundle.display(),
                    c.created,
                    c.owner
                );
            }
        }
        other => bail!("--format {other:?}: expected table or json"),
    }
    Ok(0)
}

/// Every capability this kernel and the caps crate know, by name.
fn known_capabilities() -> Vec<String> {
    let mut names: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
    names.sort();
    names
}
