//! Container commands: run, create, start, stop, kill, restart, rm, ps, logs, exec, wait,
//! pause, unpause, rename, port, top — Docker's flags, output and exit codes.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::{bail, Context as _, Result};
use clap::Args;
use coracle_engine::engine::{CreateRequest, Engine, EngineConfig, EngineError, LogOptions};
use coracle_engine::spec::config::{ContainerConfig, EndpointIpamConfig, EndpointSettings};
use coracle_engine::spec::parse;
use coracle_engine::store::{ContainerRecord, State};
use coracle_network::bridge::BridgeConfig;
use nix::sys::signal::Signal;
use serde_json::{json, Value};

use crate::format::{self, table};
use crate::Context;

/// An error with the exit status `coracle` should end with.
#[derive(Debug)]
pub struct Exit(pub u8, pub String);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.1)
    }
}

impl std::error::Error for Exit {}

fn engine_error(e: EngineError) -> anyhow::Error {
    Exit(e.exit_code(), e.to_string()).into()
}

pub fn open_engine(ctx: &Context) -> Result<Engine> {
    let mut cfg = EngineConfig::new(&ctx.root, &ctx.run_root);
    let subnet = coracle_network::subnet::parse_subnet(&ctx.subnet)
        .map_err(|e| anyhow::anyhow!("--default-subnet: {e}"))?;
    let sub = coracle_network::subnet::Subnet::new(subnet)
        .map_err(|e| anyhow::anyhow!("--default-subnet: {e}"))?;
    cfg.bridge = BridgeConfig {
        name: ctx.bridge.clone(),
        subnet,
        gateway: sub.gateway(),
        mtu: 1500,
    };
    cfg.cli_global_args = vec![
        "--root".into(),
        ctx.root.display().to_string(),
        "--run-root".into(),
        ctx.run_root.display().to_string(),
        "--bridge".into(),
        ctx.bridge.clone(),
        "--default-subnet".into(),
        ctx.subnet.clone(),
        "--cgroup-parent".into(),
        ctx.cgroup_parent.clone(),
    ];
    cfg.cgroup_parent = ctx.cgroup_parent.clone();
    Engine::open(cfg).map_err(engine_error)
}

// --- create / run ------------------------------------------------------------------------

#[derive(Args, Debug, Clone)]
pub struct CreateFlags {
    /// Print help (`-h` is --hostname, as in docker).
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    /// Assign a name to the container.
    #[arg(long)]
    name: Option<String>,
    /// Set environment variables.
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    /// Read in a file of environment variables.
    #[arg(long = "env-file")]
    env_file: Vec<PathBuf>,
    /// Working directory inside the container.
    #[arg(short = 'w', long = "workdir")]
    workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>]).
    #[arg(short = 'u', long)]
    user: Option<String>,
    /// Container host name.
    #[arg(short = 'h', long)]
    hostname: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image.
    #[arg(long)]
    entrypoint: Option<String>,
    /// Publish a container's port(s) to the host.
    #[arg(short = 'p', long = "publish")]
    publish: Vec<String>,
    /// Publish all exposed ports to random ports.
    #[arg(short = 'P', long = "publish-all")]
    publish_all: bool,
    /// Connect a container to a network (bridge, host, none, container:<name|id>, or a name).
    #[arg(long, default_value = "bridge")]
    network: String,
    /// Add network-scoped aliases for the container.
    #[arg(long = "network-alias")]
    network_alias: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104).
    #[arg(long)]
    ip: Option<String>,
    /// Set custom DNS servers.
    #[arg(long)]
    dns: Vec<String>,
    /// Set custom DNS search domains.
    #[arg(long = "dns-search")]
    dns_search: Vec<String>,
    /// Set DNS options.
    #[arg(long = "dns-option")]
    dns_option: Vec<String>,
    /// Expose a port or a range of ports.
    #[arg(long)]
    expose: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip).
    #[arg(long = "add-host")]
    add_host: Vec<String>,
    /// Bind mount a volume.
    #[arg(short = 'v', long = "volume")]
    volume: Vec<String>,
    /// Attach a filesystem mount to the container.
    #[arg(long)]
    mount: Vec<String>,
    /// Mount a tmpfs directory.
    #[arg(long)]
    tmpfs: Vec<String>,
    /// Mount the container's root filesystem as read only.
    #[arg(long = "read-only")]
    read_only: bool,
    /// Memory limit.
    #[arg(short = 'm', long)]
    memory: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap.
    #[arg(long = "memory-swap")]
    memory_swap: Option<String>,
    /// Memory soft limit.
    #[arg(long = "memory-reservation")]
    memory_reservation: Option<String>,
    /// Number of CPUs.
    #[arg(long)]
    cpus: Option<String>,
    /// CPU shares (relative weight).
    #[arg(short = 'c', long = "cpu-shares")]
    cpu_shares: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1).
    #[arg(long = "cpuset-cpus")]
    cpuset_cpus: Option<String>,
    /// Tune container pids limit (set -1 for unlimited).
    #[arg(long = "pids-limit")]
    pids_limit: Option<i64>,
    /// Add Linux capabilities.
    #[arg(long = "cap-add")]
    cap_add: Vec<String>,
    /// Drop Linux capabilities.
    #[arg(long = "cap-drop")]
    cap_drop: Vec<String>,
    /// Give extended privileges to this container.
    #[arg(long)]
    privileged: bool,
    /// Security Options.
    #[arg(long = "security-opt")]
    security_opt: Vec<String>,
    /// Run an init inside the container that forwards signals and reaps processes.
    #[arg(long)]
    init: bool,
    /// Restart policy to apply when a container exits.
    #[arg(long, default_value = "no")]
    restart: String,
    /// Set meta data on a container.
    #[arg(short = 'l', long = "label")]
    label: Vec<String>,
    /// Signal to stop the container.
    #[arg(long = "stop-signal")]
    stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container.
    #[arg(long = "stop-timeout")]
    stop_timeout: Option<i64>,
    /// Ulimit options.
    #[arg(long)]
    ulimit: Vec<String>,
    /// Sysctl options.
    #[arg(long)]
    sysctl: Vec<String>,
    /// Add a host device to the container.
    #[arg(long)]
    device: Vec<String>,
    /// Size of /dev/shm.
    #[arg(long = "shm-size")]
    shm_size: Option<String>,
    /// Add additional groups to join.
    #[arg(long = "group-add")]
    group_add: Vec<String>,
    /// Tune host's OOM preferences (-1000 to 1000).
    #[arg(long = "oom-score-adj")]
    oom_score_adj: Option<i64>,
    /// Keep STDIN open even if not attached.
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short = 't', long)]
    tty: bool,
    /// Automatically remove the container when it exits.
    #[arg(long)]
    rm: bool,
    /// Pull image before running ("always", "missing", "never").
    #[arg(long, default_value = "missing", value_parser = ["always", "missing", "never"])]
    pull: String,
    /// The image, then the command and its arguments. One argument, so that everything
    /// after the image belongs to the command even when it starts with '-' (`box -c ...`
    /// is `sh -c`, not --cpu-shares), as in docker: flags come before the image.
    #[arg(
        value_name = "IMAGE [COMMAND] [ARG...]",
        required = true,
        num_args = 1..,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    image_and_command: Vec<String>,
}

impl CreateFlags {
    fn image(&self) -> &str {
        &self.image_and_command[0]
    }

    fn command(&self) -> &[String] {
        &self.image_and_command[1..]
    }
}

fn bad(e: impl std::fmt::Display) -> anyhow::Error {
    Exit(125, e.to_string()).into()
}

/// The flags as the configuration the engine (and the Docker API) uses.
fn container_config(f: &CreateFlags) -> Result<ContainerConfig> {
    let mut cfg = ContainerConfig::default();
    let c = &mut cfg.config;
    let lookup = |k: &str| std::env::var(k).ok();
    for path in &f.env_file {
        c.env
            .extend(parse::parse_env_file(path, lookup).map_err(bad)?);
    }
    for e in &f.env {
        c.env.push(parse::parse_env(e, lookup).map_err(bad)?);
    }
    c.working_dir = f.workdir.clone().unwrap_or_default();
    c.user = f.user.clone().unwrap_or_default();
    c.hostname = f.hostname.clone().unwrap_or_default();
    if let Some(ep) = &f.entrypoint {
        c.entrypoint = Some(vec![ep.clone()]);
    }
    if !f.command().is_empty() {
        c.cmd = Some(f.command().to_vec());
    }
    c.tty = f.tty;
    c.open_stdin = f.interactive;
    c.attach_stdin = f.interactive;
    c.labels = f
        .label
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l.clone(), String::new()),
        })
        .collect();
    if let Some(s) = &f.stop_signal {
        parse::parse_signal(s).map_err(bad)?;
        c.stop_signal = Some(s.clone());
    }
    c.stop_timeout = f.stop_timeout;

    let h = &mut cfg.host_config;
    for p in &f.publish {
        parse::add_publish(&mut h.port_bindings, &mut cfg.config.exposed_ports, p).map_err(bad)?;
    }
    h.publish_all_ports = f.publish_all;
    h.network_mode = f.network.clone();
    h.dns = f.dns.clone();
    h.dns_search = f.dns_search.clone();
    h.dns_options = f.dns_option.clone();
    for e in &f.expose {
        for port in parse::parse_expose(e).map_err(bad)? {
            cfg.config.exposed_ports.insert(port, Default::default());
        }
    }
    for a in &f.add_host {
        h.extra_hosts.push(parse::parse_add_host(a).map_err(bad)?);
    }
    for v in &f.volume {
        parse::parse_volume(v).map_err(bad)?;
        h.binds.push(v.clone());
    }
    for m in &f.mount {
        h.mounts.push(parse::parse_mount(m).map_err(bad)?);
    }
    for t in &f.tmpfs {
        let (target, opts) = parse::parse_tmpfs(t).map_err(bad)?;
        h.tmpfs.insert(target, opts);
    }
    h.readonly_rootfs = f.read_only;
    if let Some(m) = &f.memory {
        h.memory = parse::parse_size(m).map_err(bad)?;
    }
    if let Some(m) = &f.memory_swap {
        h.memory_swap = parse::parse_memory_swap(m).map_err(bad)?;
    }
    if let Some(m) = &f.memory_reservation {
        h.memory_reservation = parse::parse_size(m).map_err(bad)?;
    }
    if let Some(c) = &f.cpus {
        h.nano_cpus = parse::parse_cpus(c).map_err(bad)?;
    }
    h.cpu_shares = f.cpu_shares.unwrap_or(0);
    h.cpuset_cpus = f.cpuset_cpus.clone().unwrap_or_default();
    h.pids_limit = f.pids_limit;
    h.cap_add = f.cap_add.clone();
    h.cap_drop = f.cap_drop.clone();
    h.privileged = f.privileged;
    for s in &f.security_opt {
        h.security_opt
            .push(parse::parse_security_opt_flag(s).map_err(bad)?);
    }
    parse::security_options(&h.security_opt).map_err(bad)?;
    h.init = f.init.then_some(true);
    h.restart_policy = parse::parse_restart(&f.restart).map_err(bad)?;
    if f.rm && !matches!(h.restart_policy.name.as_str(), "" | "no") {
        return Err(bad("Conflicting options: --restart and --rm"));
    }
    h.auto_remove = f.rm;
    for u in &f.ulimit {
        h.ulimits.push(parse::parse_ulimit(u).map_err(bad)?);
    }
    for s in &f.sysctl {
        let (k, v) = parse::parse_sysctl(s).map_err(bad)?;
        h.sysctls.insert(k, v);
    }
    for d in &f.device {
        h.devices.push(parse::parse_device(d).map_err(bad)?);
    }
    if let Some(s) = &f.shm_size {
        h.shm_size = parse::parse_size(s).map_err(bad)?;
    }
    h.group_add = f.group_add.clone();
    h.oom_score_adj = f.oom_score_adj.unwrap_or(0);

    let network = match f.network.as_str() {
        "" | "default" => "bridge".to_string(),
        n => n.to_string(),
    };
    if f.ip.is_some() || !f.network_alias.is_empty() {
        if matches!(network.as_str(), "host" | "none") || network.starts_with("container:") {
            return Err(bad(format!(
                "--ip and --network-alias need a bridge network, not {network}"
            )));
        }
        let settings = EndpointSettings {
            ipam_config: f.ip.as_ref().map(|ip| EndpointIpamConfig {
                ipv4_address: ip.clone(),
                ..Default::default()
            }),
            aliases: f.network_alias.clone(),
        };
        cfg.networking_config
            .endpoints_config
            .insert(network, settings);
    }
    Ok(cfg)
}

/// Creates the container, pulling the image first when it is missing (as docker does).
fn create_from_flags(ctx: &Context, engine: &Engine, f: &CreateFlags) -> Result<ContainerRecord> {
    // The image is the first argument that is not a known flag; one that looks like a flag
    // was a flag this command does not have.
    if f.image().starts_with('-') {
        return Err(Exit(
            125,
            format!("unknown flag: {}\nSee 'coracle run --help'.", f.image()),
        )
        .into());
    }
    let config = container_config(f)?;
    let missing = engine.images().resolve(f.image()).is_err();
    if missing || f.pull == "always" {
        if f.pull == "never" {
            return Err(Exit(125, format!("No such image: {}", f.image())).into());
        }
        let reference = f
            .image()
            .parse::<coracle_image::reference::Reference>()
            .map_err(|e| Exit(125, e.to_string()))?;
        if missing {
            eprintln!("Unable to find image '{}' locally", reference.familiar());
        }
        crate::pull::pull(ctx, engine.images(), f.image(), &reference, None, false)
            .map_err(|e| Exit(125, format!("{e:#}")))?;
    }
    engine
        .create(CreateRequest {
            name: f.name.clone(),
            image: f.image().to_string(),
            config,
        })
        .map_err(engine_error)
}

pub fn create(ctx: &Context, f: &CreateFlags) -> Result<u8> {
    let engine = open_engine(ctx)?;
    let rec = create_from_flags(ctx, &engine, f)?;
    println!("{}", rec.id);
    Ok(0)
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Run container in background and print container ID.
    #[arg(short = 'd', long)]
    detach: bool,
    #[command(flatten)]
    flags: CreateFlags,
}

pub fn run(ctx: &Context, args: &RunArgs) -> Result<u8> {
    let engine = open_engine(ctx)?;
    let rec = create_from_flags(ctx, &engine, &args.flags)?;
    if !args.detach && args.flags.rm {
        // This process removes the container after reading its exit code. While it lives,
        // the shim does not start its call-back (which would tear the same container down
        // at the same moment); if it dies first, the call-back removes the container.
        let mut extra = rec.extra.clone();
        let me = std::process::id() as i32;
        extra["removed_by_client"] = json!({
            "pid": me,
            "start": coracle_runtime::state::process_start_time(me),
        });
        engine
            .store()
            .update_record(
                &rec.id,
                coracle_engine::store::RecordUpdate {
                    extra: Some(extra),
                    ..Default::default()
                },
            )
            .map_err(|e| engine_error(e.into()))?;
    }
    let started = engine.start(&rec.id);
    let rec = match started {
        Ok(o) => o.record,
        Err(e) => {
            let code = e.exit_code();
            if args.flags.rm {
                let _ = engine.remove(&rec.id, true, true);
            }
            return Err(Exit(code, e.to_string()).into());
        }
    };
    if args.detach {
        println!("{}", rec.id);
        return Ok(0);
    }
    let code = attach_and_wait(&engine, &rec, args.flags.interactive, args.flags.tty)?;
    if args.flags.rm {
        engine.remove(&rec.id, true, true).map_err(engine_error)?;
    }
    Ok(code)
}

/// Streams the container's output (from its log, so nothing written before we looked is
/// lost) and, with `-i`, our stdin to it; returns its exit code.
fn attach_and_wait(engine: &Engine, rec: &ContainerRecord, stdin: bool, tty: bool) -> Result<u8> {
    let _raw = if tty { RawTerminal::enter() } else { None };
    if tty {
        resize_from_terminal(engine, &rec.id);
    }
    if stdin {
        let sock = engine.shim_dir(&rec.id).join("attach.sock");
        if let Ok(mut stream) = UnixStream::connect(&sock) {
            let hello = b"{\"stdin\":true,\"stdout\":false,\"stderr\":false}\n";
            if stream.write_all(hello).is_ok() {
                std::thread::spawn(move || {
                    let mut buf = [0u8; 8192];
                    let mut input = io::stdin().lock();
                    loop {
                        match input.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if stream.write_all(&buf[..n]).is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    let _ = stream.shutdown(std::net::Shutdown::Write);
                });
            }
        }
    }
    let log = engine.log_path(&rec.id);
    let id = rec.id.clone();
    let mut finished: Option<ContainerRecord> = None;
    let mut out = io::stdout();
    let mut err = io::stderr();
    // The exit of the container's process ends a pause at once: the time to notice it is
    // part of every short run.
    let opts = LogOptions {
        poll: Some(std::time::Duration::from_millis(5)),
        wake_on_exit_of: (rec.pid > 0).then_some(rec.pid),
        ..Default::default()
    };
    coracle_engine::engine::follow_log(
        &log,
        &opts,
        |line| {
            if line.stream == "stderr" {
                err.write_all(line.log.as_bytes())?;
                err.flush()
            } else {
                out.write_all(line.log.as_bytes())?;
                out.flush()
            }
        },
        || {
            // Cheap check first (the shim's status file); the database only once it says exited.
            let running = engine.shim_status(&id).is_some_and(|s| s.state != "exited");
            if running && engine.shim_running(&id) {
                return false;
            }
            match engine.container(&id) {
                Ok(r) if r.state.is_active() => false,
                Ok(r) => {
                    finished = Some(r);
                    true
                }
                Err(_) => true,
            }
        },
    )?;
    let code = finished.map_or(0, |r| r.exit_code);
    Ok(u8::try_from(code.clamp(0, 255)).unwrap_or(255))
}

fn resize_from_terminal(engine: &Engine, id: &str) {
    let Some(ws) = coracle_runtime::sys::raw::winsize(0) else {
        return;
    };
    let sock = engine.shim_dir(id).join("ctl.sock");
    if let Ok(mut s) = UnixStream::connect(sock) {
        let _ = writeln!(s, "{}", json!({"resize": {"height": ws.0, "width": ws.1}}));
        let mut reply = String::new();
        let _ = s.read_to_string(&mut reply);
    }
}

/// Puts the controlling terminal into raw mode while alive.
struct RawTerminal {
    saved: nix::sys::termios::Termios,
}

impl RawTerminal {
    fn enter() -> Option<RawTerminal> {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let stdin = io::stdin();
        let saved = tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(&stdin, SetArg::TCSANOW, &raw).ok()?;
        Some(RawTerminal { saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = nix::sys::termios::tcsetattr(
            io::stdin(),
            nix::sys::termios::SetArg::TCSANOW,
            &self.saved,
        );
    }
}

// --- start / stop / kill / restart / rm / pause / unpause / wait / rename ------------------

#[derive(Args, Debug)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals.
    #[arg(short = 'a', long)]
    attach: bool,
    /// Attach container's STDIN.
    #[arg(short = 'i', long)]
    interactive: bool,
    #[arg(required = true)]
    containers: Vec<String>,
}

/// Runs `op` for each argument, printing the argument on success and `Error response …` on
/// failure, as docker does; the exit status is 1 if any failed.
fn each(
    names: &[String],
    mut op: impl FnMut(&str) -> std::result::Result<(), EngineError>,
) -> Result<u8> {
    let mut code = 0;
    for name in names {
        match op(name) {
            Ok(()) => println!("{name}"),
            Err(e) => {
                eprintln!("Error response from daemon: {e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

pub fn start(ctx: &Context, args: &StartArgs) -> Result<u8> {
    let engine = open_engine(ctx)?;
    if args.attach || args.interactive {
        if args.containers.len() != 1 {
            bail!("you cannot start and attach multiple containers at once");
        }
        let rec = engine
            .start(&args.containers[0])
            .map_err(engine_error)?
            .record;
        let cfg = engine.container_config(&rec).map_err(engine_error)?;
        return attach_and_wait(&engine, &rec, args.interactive, cfg.config.tty);
    }
    each(&args.containers, |n| engine.start(n).map(|_| ()))
}

#[derive(Args, Debug)]
pub struct StopArgs {
    /// Seconds to wait before killing the container.
    #[arg(short = 't', long = "time", alias = "timeout")]
    time: Option<u64>,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn stop(ctx: &Context, args: &StopArgs) -> Result<u8> {
    let engine = open_engine(ctx)?;
    each(&args.containers, |n| engine.stop(n, args.time).map(|_| ()))
}

pub fn restart(ctx: &Context, args: &StopArgs) -> Result<u8> {
    let engine = open_engine(ctx)?;
    each(&args.containers, |n| {
        engine.stop(n, args.time)?;
        engine.start(n).map(|_| ())
    })
}

#[derive(Args, Debug)]
pub struct KillArgs {
    /// Signal to send to the container.
    #[arg(short = 's', long, default_value = "KILL")]
    signal: String,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn kill(ctx: &Context, args: &KillArgs) -> Result<u8> {
    let n = parse::parse_signal(&args.signal).map_err(bad)?;
    let signal =
        Signal::try_from(n).map_err(|_| bad(format!("invalid signal: {}", args.signal)))?;
    let engine = open_engine(ctx)?;
    each(&args.containers, |c| engine.kill(c, signal).map(|_| ()))
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL).
    #[arg(short, long)]
    force: bool,
    /// Remove anonymous volumes associated with the container.
    #[arg(short, long)]
    volumes: bool,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn rm(ctx: &Context, args: &RmArgs) -> Result<u8> {
    let engine = open_engine(ctx)?;
    each(&args.containers, |c| {
        engine.remove(c, args.force, args.volumes)
    })
}

#[derive(Args, Debug)]
pub struct NamesArgs {
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn pause(ctx: &Context, args: &NamesArgs) -> Result<u8> {
    let engine = open_engine(ctx)?;
    each(&args.containers, |c| engine.pause(c).map(|_| ()))
}

pub fn unpause(ctx: &Context, args: &NamesArgs) -> Result<u8> {
    let engine = open_engine(ctx)?;
    each(&args.containers, |c| engine.unpause(c).map(|_| ()))
}

pub fn wait(ctx: &Context, args: &NamesArgs) -> Result<u8> {
    let engine = open_engine(ctx)?;
    let mut code = 0;
    for name in &args.containers {
        match engine
            .container(name)
            .and_then(|r| engine.wait_exit(&r.id, None))
        {
            Ok(r) => println!("{}", r.exit_code),
            Err(e) => {
                eprintln!("Error response from daemon: {e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

#[derive(Args, Debug)]
pub struct RenameArgs {
    container: String,
    new_name: String,
}

pub fn rename(ctx: &Context, args: &RenameArgs) -> Result<u8> {
    let engine = open_engine(ctx)?;
    let rec = engine.container(&args.container).map_err(engine_error)?;
    // Outside run/create docker's CLI exits 1 for what the daemon refuses.
    engine
        .store()
        .rename(&rec.id, &args.new_name)
        .map_err(|e| Exit(1, e.to_string()))?;
    Ok(0)
}

/// The shim's call-back when a container's process ended for good: teardown, and removal
/// for `--rm` (unless the attached client removes it).
pub fn container_cleanup(ctx: &Context, id: &str) -> Result<u8> {
    let engine = open_engine(ctx)?;
    let rec = match engine.store().get(id) {
        Ok(r) => r,
        Err(_) => return Ok(0),
    };
    engine.cleanup(&rec.id).map_err(engine_error)?;
    let cfg = engine.container_config(&rec).map_err(engine_error)?;
    // The foreground `run --rm` that said it removes the container, if it still runs.
    let by_client = rec.extra.get("removed_by_client").is_some_and(|c| {
        let pid = c["pid"].as_i64().and_then(|p| i32::try_from(p).ok());
        pid.is_some_and(|p| {
            coracle_runtime::state::process_start_time(p).is_some()
                && coracle_runtime::state::process_start_time(p) == c["start"].as_u64()
        })
    });
    if cfg.host_config.auto_remove && !by_client {
        engine.remove(&rec.id, true, true).map_err(engine_error)?;
    }
    Ok(0)
}

// --- ps ------------------------------------------------------------------------------------

#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show all containers (default shows just running).
    #[arg(short, long)]
    all: bool,
    /// Only display container IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Don't truncate output.
    #[arg(long)]
    no_trunc: bool,
    /// Filter output based on conditions provided (status=, name=, id=, label=, ancestor=).
    #[arg(short, long)]
    filter: Vec<String>,
    /// `table`, `json`, or a Go template.
    #[arg(long)]
    format: Option<String>,
    /// Show the latest created container.
    #[arg(short = 'l', long)]
    latest: bool,
}

fn status_text(rec: &ContainerRecord) -> String {
    let since =
        |t: Option<SystemTime>| format::human_duration(now().saturating_sub(Engine::epoch(t)));
    match rec.state {
        State::Created => "Created".into(),
        State::Running => format!("Up {}", since(rec.started_at)),
        State::Paused => format!("Up {} (Paused)", since(rec.started_at)),
        State::Restarting => format!(
            "Restarting ({}) {} ago",
            rec.exit_code,
            since(rec.finished_at)
        ),
        State::Exited => format!("Exited ({}) {} ago", rec.exit_code, since(rec.finished_at)),
        State::Removing => "Removal In Progress".into(),
        State::Dead => "Dead".into(),
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn endpoints(rec: &ContainerRecord) -> Vec<Value> {
    rec.extra
        .get("endpoints")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// `0.0.0.0:8080->80/tcp, …` as docker ps shows published ports.
fn ports_text(rec: &ContainerRecord) -> String {
    let mut out = Vec::new();
    if !matches!(
        rec.state,
        State::Running | State::Paused | State::Restarting
    ) {
        return String::new();
    }
    for ep in endpoints(rec) {
        for p in ep
            .get("ports")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
        {
            out.push(port_line(&p));
        }
    }
    out.join(", ")
}

fn port_line(p: &Value) -> String {
    let ip = p
        .get("host_ip")
        .and_then(Value::as_str)
        .unwrap_or("0.0.0.0");
    let range = |a: &str, b: &str| {
        let (s, e) = (p[a].as_u64().unwrap_or(0), p[b].as_u64().unwrap_or(0));
        if s == e || e == 0 {
            s.to_string()
        } else {
            format!("{s}-{e}")
        }
    };
    let proto = p
        .get("protocol")
        .and_then(Value::as_str)
        .unwrap_or("tcp")
        .to_ascii_lowercase();
    format!(
        "{ip}:{}->{}/{proto}",
        range("host_port_start", "host_port_end"),
        range("container_port_start", "container_port_end")
    )
}

fn command_text(rec: &ContainerRecord) -> String {
    let cfg: Option<ContainerConfig> = serde_json::from_value(rec.config.clone()).ok();
    let args = cfg
        .map(|c| coracle_engine::spec::defaults::command(&c))
        .unwrap_or_default();
    args.join(" ")
}

fn ps_json(rec: &ContainerRecord, no_trunc: bool) -> Value {
    let command = command_text(rec);
    let shown_command = if no_trunc || command.chars().count() <= 20 {
        format!("\"{command}\"")
    } else {
        format!("\"{}…\"", command.chars().take(19).collect::<String>())
    };
    let cfg: Option<ContainerConfig> = serde_json::from_value(rec.config.clone()).ok();
    let labels = cfg
        .map(|c| {
            c.config
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let created = Engine::epoch(Some(rec.created));
    json!({
        "Command": shown_command,
        "CreatedAt": format::go_time_utc(created),
        "ID": if no_trunc { rec.id.clone() } else { rec.short_id().to_string() },
        "Image": rec.image,
        "Labels": labels,
        "LocalVolumes": "0",
        "Mounts": "",
        "Names": rec.name,
        "Networks": rec.extra.get("network_mode").and_then(Value::as_str).unwrap_or(""),
        "Ports": ports_text(rec),
        "RunningFor": format::ago(created),
        "Size": "0B",
        "State": rec.state.as_str(),
        "Status": status_text(rec),
    })
}

fn ps_filter(rec: &ContainerRecord, filters: &[(String, String)]) -> bool {
    filters.iter().all(|(k, v)| match k.as_str() {
        "status" => rec.state.as_str() == v,
        "name" => rec.name.contains(v.trim_start_matches('/')),
        "id" => rec.id.starts_with(v),
        "ancestor" => rec.image == *v || rec.image_id.contains(v),
        "label" => {
            let cfg: Option<ContainerConfig> = serde_json::from_value(rec.config.clone()).ok();
            let labels = cfg.map(|c| c.config.labels).unwrap_or_default();
            match v.split_once('=') {
                Some((lk, lv)) => labels.get(lk).is_some_and(|x| x == lv),
                None => labels.contains_key(v),
            }
        }
        _ => true,
    })
}

pub fn ps(ctx: &Context, args: &PsArgs) -> Result<u8> {
    let mut filters = Vec::new();
    for f in &args.filter {
        let (k, v) = f
            .split_once('=')
            .with_context(|| format!("bad format of filter (expected name=value): {f}"))?;
        if !matches!(k, "status" | "name" | "id" | "label" | "ancestor") {
            bail!("invalid filter '{k}'");
        }
        filters.push((k.to_string(), v.to_string()));
    }
    let engine = open_engine(ctx)?;
    let all = args.all || filters.iter().any(|(k, _)| k == "status");
    let mut recs: Vec<ContainerRecord> = engine
        .list(all)
        .map_err(engine_error)?
        .into_iter()
        .filter(|r| ps_filter(r, &filters))
        .collect();
    recs.sort_by_key(|r| std::cmp::Reverse(r.created));
    if args.latest {
        recs.truncate(1);
    }
    let mut out = io::stdout().lock();
    if args.quiet {
        for r in &recs {
            writeln!(
                out,
                "{}",
                if args.no_trunc {
                    r.id.as_str()
                } else {
                    r.short_id()
                }
            )?;
        }
        return Ok(0);
    }
    match args.format.as_deref() {
        Some(t) if t != "table" => {
            let rows: Vec<Value> = recs.iter().map(|r| ps_json(r, args.no_trunc)).collect();
            write!(
                out,
                "{}",
                format::render_rows(t, &format::PS_COLUMNS, &rows)?
            )?;
        }
        _ => {
            let mut rows = vec![[
                "CONTAINER ID",
                "IMAGE",
                "COMMAND",
                "CREATED",
                "STATUS",
                "PORTS",
                "NAMES",
            ]
            .map(String::from)
            .to_vec()];
            for r in &recs {
                let j = ps_json(r, args.no_trunc);
                let s = |k: &str| j[k].as_str().unwrap_or_default().to_string();
                rows.push(vec![
                    s("ID"),
                    s("Image"),
                    s("Command"),
                    s("RunningFor"),
                    s("Status"),
                    s("Ports"),
                    s("Names"),
                ]);
            }
            write!(out, "{}", table(&rows))?;
        }
    }
    Ok(0)
}

// --- logs ------------------------------------------------------------------------------------

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Follow log output.
    #[arg(short, long)]
    follow: bool,
    /// Number of lines to show from the end of the logs ("all" for everything).
    #[arg(short = 'n', long, default_value = "all")]
    tail: String,
    /// Show logs since a timestamp (RFC 3339) or relative (e.g. 42m).
    #[arg(long)]
    since: Option<String>,
    /// Show timestamps.
    #[arg(short, long)]
    timestamps: bool,
    container: String,
}

/// `--since`: RFC 3339, a Unix time, or a duration back from now (`10s`, `5m`, `2h`).
fn since_time(value: &str) -> Result<String> {
    if value.contains('T') {
        return Ok(value.to_string());
    }
    let (num, unit) = value.split_at(
        value
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(value.len()),
    );
    let n: u64 = num
        .parse()
        .map_err(|_| bad(format!("invalid value for \"since\": {value}")))?;
    let secs = match unit {
        "" => return Ok(format::rfc3339_utc(n)),
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(bad(format!("invalid value for \"since\": {value}"))),
    };
    Ok(format::rfc3339_utc(now().saturating_sub(secs)))
}

pub fn logs(ctx: &Context, args: &LogsArgs) -> Result<u8> {
    let engine = open_engine(ctx)?;
    let rec = engine.container(&args.container).map_err(engine_error)?;
    let opts = LogOptions {
        tail: if args.tail == "all" {
            None
        } else {
            Some(
                args.tail
                    .parse()
                    .map_err(|_| bad(format!("invalid --tail {:?}", args.tail)))?,
            )
        },
        since: args.since.as_deref().map(since_time).transpose()?,
        poll: None,
        wake_on_exit_of: None,
    };
    let mut out = io::stdout();
    let mut err = io::stderr();
    let stamp = args.timestamps;
    let emit = |line: &coracle_engine::engine::LogLine| -> io::Result<()> {
        let text = if stamp {
            format!("{} {}", line.time, line.log)
        } else {
            line.log.clone()
        };
        if line.stream == "stderr" {
            err.write_all(text.as_bytes())?;
            err.flush()
        } else {
            out.write_all(text.as_bytes())?;
            out.flush()
        }
    };
    let log = engine.log_path(&rec.id);
    if args.follow {
        let id = rec.id.clone();
        coracle_engine::engine::follow_log(&log, &opts, emit, || {
            engine
                .container(&id)
                .map(|r| !r.state.is_active())
                .unwrap_or(true)
        })?;
    } else {
        let mut emit = emit;
        for line in coracle_engine::engine::read_log(&log, &opts)? {
            emit(&line)?;
        }
    }
    Ok(0)
}

// --- exec ------------------------------------------------------------------------------------

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Detached mode: run command in the background.
    #[arg(short, long)]
    detach: bool,
    /// Keep STDIN open even if not attached.
    #[arg(short, long)]
    interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    tty: bool,
    /// Set environment variables.
    #[arg(short, long)]
    env: Vec<String>,
    /// Username or UID (format: <uid>[:<gid>]).
    #[arg(short, long)]
    user: Option<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    workdir: Option<String>,
    /// Extended privileges for the command.
    #[arg(long)]
    privileged: bool,
    container: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    command: Vec<String>,
}

fn runtime_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("coracle-runtime")))
        .unwrap_or_else(|| PathBuf::from("coracle-runtime"))
}

pub fn exec(ctx: &Context, args: &ExecArgs) -> Result<u8> {
    let engine = open_engine(ctx)?;
    let rec = engine.container(&args.container).map_err(engine_error)?;
    match rec.state {
        State::Running => {}
        State::Paused => {
            return Err(Exit(
                1,
                format!(
                    "Container {} is paused, unpause the container before exec",
                    rec.id
                ),
            )
            .into())
        }
        _ => return Err(Exit(1, format!("Container {} is not running", rec.id)).into()),
    }
    let mut cmd = std::process::Command::new(runtime_binary());
    cmd.arg("--root").arg(engine.runtime_root()).arg("exec");
    if args.tty {
        cmd.arg("-t");
    }
    if args.detach {
        cmd.arg("-d");
    }
    for e in &args.env {
        let lookup = |k: &str| std::env::var(k).ok();
        cmd.arg("--env")
            .arg(parse::parse_env(e, lookup).map_err(bad)?);
    }
    if let Some(w) = &args.workdir {
        cmd.arg("--cwd").arg(w);
    }
    if let Some(u) = &args.user {
        cmd.arg("--user").arg(resolve_exec_user(&engine, &rec, u)?);
    }
    if args.privileged {
        for cap in coracle_engine::spec::caps::CapSet::all().names() {
            cmd.arg("--cap").arg(cap);
        }
    }
    // Detached, the process gets no stdio of ours (as with docker, its output is dropped):
    // the runtime reports its own errors through --log, which is read once it returns.
    // Sharing a pipe with the process instead would keep this command waiting for the
    // process's end of file.
    let detached_log = args.detach.then(|| {
        ctx.run_root.join(format!(
            "exec-{}-{}.log",
            rec.short_id(),
            std::process::id()
        ))
    });
    if let Some(log) = &detached_log {
        cmd.arg("--log").arg(log);
    }
    cmd.arg(&rec.id).args(&args.command);
    if !args.interactive && !args.tty {
        cmd.stdin(std::process::Stdio::null());
    }
    let out = if let Some(log) = &detached_log {
        let status = cmd
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()?;
        // Log lines read "<time> ERROR <message>": keep the messages.
        let stderr = std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .map(|l| l.split_once(" ERROR ").map_or(l, |(_, m)| m))
            .map(|l| format!("coracle-runtime: {l}\n"))
            .collect::<String>()
            .into_bytes();
        let _ = std::fs::remove_file(log);
        std::process::Output {
            status,
            stdout: Vec::new(),
            stderr,
        }
    } else {
        cmd.stderr(std::process::Stdio::piped())
            .spawn()?
            .wait_with_output()?
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && !stderr.trim().is_empty() {
        let lower = stderr.to_ascii_lowercase();
        if lower.contains("not found") || lower.contains("no such file") {
            return Err(Exit(127, format!("OCI runtime exec failed: {}", stderr.trim())).into());
        }
        if lower.contains("permission denied") {
            return Err(Exit(126, format!("OCI runtime exec failed: {}", stderr.trim())).into());
        }
        eprint!("{stderr}");
    }
    Ok(u8::try_from(out.status.code().unwrap_or(1).clamp(0, 255)).unwrap_or(1))
}

/// `-u name[:group]` resolved against the container's /etc/passwd and /etc/group.
fn resolve_exec_user(engine: &Engine, rec: &ContainerRecord, user: &str) -> Result<String> {
    let (u, g) = user.split_once(':').unwrap_or((user, ""));
    if u.chars().all(|c| c.is_ascii_digit())
        && (g.is_empty() || g.chars().all(|c| c.is_ascii_digit()))
    {
        return Ok(if g.is_empty() {
            format!("{u}:0")
        } else {
            user.to_string()
        });
    }
    let rootfs = engine.images().snapshotter().dir(&rec.id)?.join("merged");
    let passwd =
        coracle_engine::spec::user::read_in_root(&rootfs, "/etc/passwd")?.unwrap_or_default();
    let entry = coracle_engine::spec::user::parse_passwd(&passwd)
        .into_iter()
        .find(|e| e.name == u)
        .ok_or_else(|| {
            Exit(
                126,
                format!("unable to find user {u}: no matching entries in passwd file"),
            )
        })?;
    let gid = if g.is_empty() {
        entry.gid
    } else if let Ok(n) = g.parse() {
        n
    } else {
        let group =
            coracle_engine::spec::user::read_in_root(&rootfs, "/etc/group")?.unwrap_or_default();
        coracle_engine::spec::user::parse_group(&group)
            .into_iter()
            .find(|e| e.name == g)
            .map(|e| e.gid)
            .ok_or_else(|| Exit(126, format!("unable to find group {g}")))?
    };
    Ok(format!("{}:{gid}", entry.uid))
}

// --- attach ----------------------------------------------------------------------------------

#[derive(Args, Debug)]
pub struct AttachArgs {
    /// Do not attach STDIN.
    #[arg(long = "no-stdin")]
    no_stdin: bool,
    container: String,
}

/// `docker attach`: the shim's attach socket, live output from now on (multiplexed frames
/// without a tty, raw bytes with one), our stdin to the container when it was started with
/// `-i`; returns the container's exit code once it ends.
pub fn attach(ctx: &Context, args: &AttachArgs) -> Result<u8> {
    let engine = open_engine(ctx)?;
    let rec = engine.container(&args.container).map_err(engine_error)?;
    if rec.state != State::Running {
        return Err(Exit(
            1,
            "You cannot attach to a stopped container, start it first".into(),
        )
        .into());
    }
    let cfg = engine.container_config(&rec).map_err(engine_error)?;
    let stdin = cfg.config.open_stdin && !args.no_stdin;
    let sock = engine.shim_dir(&rec.id).join("attach.sock");
    let mut stream =
        UnixStream::connect(&sock).with_context(|| format!("connect {}", sock.display()))?;
    writeln!(
        stream,
        "{}",
        json!({"stdin": stdin, "stdout": true, "stderr": true})
    )?;
    let _raw = if cfg.config.tty {
        RawTerminal::enter()
    } else {
        None
    };
    if stdin {
        let mut writer = stream.try_clone()?;
        std::thread::spawn(move || {
            let _ = io::copy(&mut io::stdin().lock(), &mut writer);
            let _ = writer.shutdown(std::net::Shutdown::Write);
        });
    }
    if cfg.config.tty {
        io::copy(&mut stream, &mut io::stdout().lock())?;
    } else {
        demux(&mut stream)?;
    }
    let rec = engine
        .wait_exit(&rec.id, Some(std::time::Duration::from_secs(10)))
        .map_err(engine_error)?;
    Ok(u8::try_from(rec.exit_code.clamp(0, 255)).unwrap_or(255))
}

/// Docker's stream framing: [stream, 0, 0, 0, big-endian u32 length] then the payload.
fn demux(stream: &mut impl Read) -> io::Result<()> {
    let mut header = [0u8; 8];
    loop {
        match stream.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let mut payload = vec![0u8; len];
        stream.read_exact(&mut payload)?;
        if header[0] == 2 {
            let mut err = io::stderr().lock();
            err.write_all(&payload)?;
            err.flush()?;
        } else {
            let mut out = io::stdout().lock();
            out.write_all(&payload)?;
            out.flush()?;
        }
    }
}

// --- cp ----------------------------------------------------------------------------------

#[derive(Args, Debug)]
pub struct CpArgs {
    /// CONTAINER:SRC_PATH or a local path.
    src: String,
    /// CONTAINER:DEST_PATH or a local path.
    dest: String,
}

/// `CONTAINER:PATH`, as docker splits it: a local path is one that starts with `/` or `.`,
/// or has no `:`.
fn container_path(arg: &str) -> Option<(&str, &str)> {
    if arg.starts_with('/') || arg.starts_with('.') {
        return None;
    }
    arg.split_once(':').filter(|(c, _)| !c.is_empty())
}

pub fn cp(ctx: &Context, args: &CpArgs) -> Result<u8> {
    let engine = open_engine(ctx)?;
    let absolute = |p: &str| {
        let p = if p.is_empty() { "/" } else { p };
        std::path::PathBuf::from(if p.starts_with('/') {
            p.to_string()
        } else {
            format!("/{p}")
        })
    };
    match (container_path(&args.src), container_path(&args.dest)) {
        (Some((c, p)), None) => engine
            .copy_from(c, &absolute(p), std::path::Path::new(&args.dest))
            .map_err(|e| Exit(1, e.to_string()))?,
        (None, Some((c, p))) => engine
            .copy_to(c, std::path::Path::new(&args.src), &absolute(p))
            .map_err(|e| Exit(1, e.to_string()))?,
        (Some(_), Some(_)) => {
            return Err(Exit(1, "copying between containers is not supported".into()).into())
        }
        (None, None) => {
            return Err(Exit(1, "must specify at least one container source".into()).into())
        }
    }
    Ok(0)
}

// --- inspect / port / top ------------------------------------------------------------------

fn rfc3339(t: Option<SystemTime>) -> String {
    match t {
        Some(t) => format::rfc3339_nano_utc(t),
        None => "0001-01-01T00:00:00Z".into(),
    }
}

/// Docker's container inspect object.
pub fn inspect_json(engine: &Engine, rec: &ContainerRecord) -> Result<Value> {
    let cfg = engine.container_config(rec).map_err(engine_error)?;
    let args = coracle_engine::spec::defaults::command(&cfg);
    let dir = engine.container_dir(&rec.id);
    let mut networks = serde_json::Map::new();
    let mut ports = serde_json::Map::new();
    for port in cfg.config.exposed_ports.keys() {
        ports.insert(port.clone(), Value::Null);
    }
    let (mut ip, mut gw, mut mac, mut prefix) = (String::new(), String::new(), String::new(), 0u64);
    for ep in endpoints(rec) {
        let net = ep["network"].as_str().unwrap_or_default().to_string();
        let e_ip = ep["ip"].as_str().unwrap_or_default().to_string();
        let e_gw = ep["gateway"].as_str().unwrap_or_default().to_string();
        let e_mac = ep["mac"].as_str().unwrap_or_default().to_string();
        let e_prefix = ep["prefix"].as_u64().unwrap_or(0);
        if ip.is_empty() {
            (ip, gw, mac, prefix) = (e_ip.clone(), e_gw.clone(), e_mac.clone(), e_prefix);
        }
        networks.insert(
            net.clone(),
            json!({
                "Aliases": ep["names"],
                "NetworkID": net,
                "EndpointID": ep["host_interface"],
                "Gateway": e_gw, "IPAddress": e_ip, "IPPrefixLen": e_prefix, "MacAddress": e_mac,
            }),
        );
        for p in ep["ports"].as_array().cloned().unwrap_or_default() {
            let key = format!(
                "{}/{}",
                p["container_port_start"].as_u64().unwrap_or(0),
                p["protocol"].as_str().unwrap_or("tcp").to_ascii_lowercase()
            );
            let binding = json!({
                "HostIp": p.get("host_ip").and_then(Value::as_str).unwrap_or("0.0.0.0"),
                "HostPort": p["host_port_start"].as_u64().unwrap_or(0).to_string(),
            });
            match ports.get_mut(&key) {
                Some(Value::Array(a)) => a.push(binding),
                _ => {
                    ports.insert(key, json!([binding]));
                }
            }
        }
    }
    let mounts: Vec<Value> = engine
        .store()
        .volume_refs(&rec.id)
        .unwrap_or_default()
        .iter()
        .map(|r| {
            let src = engine.store().get_volume(&r.volume).map(|v| v.mountpoint.display().to_string()).unwrap_or_default();
            json!({"Type": "volume", "Name": r.volume, "Source": src, "Destination": r.destination, "Driver": "local", "RW": true})
        })
        .chain(cfg.host_config.binds.iter().filter_map(|b| {
            let v = parse::parse_volume(b).ok()?;
            (v.kind == coracle_engine::spec::config::MountType::Bind).then(|| {
                json!({"Type": "bind", "Source": v.source, "Destination": v.target, "RW": !v.read_only})
            })
        }))
        .collect();
    let status = engine.shim_status(&rec.id);
    Ok(json!({
        "Id": rec.id,
        "Created": rfc3339(Some(rec.created)),
        "Path": args.first().cloned().unwrap_or_default(),
        "Args": args.iter().skip(1).collect::<Vec<_>>(),
        "State": {
            "Status": rec.state.as_str(),
            "Running": matches!(rec.state, State::Running | State::Paused | State::Restarting),
            "Paused": rec.state == State::Paused,
            "Restarting": rec.state == State::Restarting,
            "OOMKilled": status.as_ref().is_some_and(|s| s.oom_killed),
            "Dead": rec.state == State::Dead,
            "Pid": rec.pid,
            "ExitCode": rec.exit_code,
            "Error": rec.error,
            "StartedAt": rfc3339(rec.started_at),
            "FinishedAt": rfc3339(rec.finished_at),
        },
        "Image": rec.image_id,
        "ResolvConfPath": dir.join("resolv.conf"),
        "HostnamePath": dir.join("hostname"),
        "HostsPath": dir.join("hosts"),
        "LogPath": engine.log_path(&rec.id),
        "Name": format!("/{}", rec.name),
        "RestartCount": rec.restart_count,
        "Driver": "overlay",
        "Platform": "linux",
        "HostConfig": serde_json::to_value(&cfg.host_config)?,
        "Config": serde_json::to_value(&cfg.config)?,
        "Mounts": mounts,
        "NetworkSettings": {
            "SandboxKey": rec.extra.get("netns").cloned().unwrap_or(Value::Null),
            "Ports": ports,
            "IPAddress": ip, "Gateway": gw, "MacAddress": mac, "IPPrefixLen": prefix,
            "Networks": networks,
        },
    }))
}

#[derive(Args, Debug)]
pub struct PortArgs {
    container: String,
    /// PRIVATE_PORT[/PROTO]
    port: Option<String>,
}

pub fn port(ctx: &Context, args: &PortArgs) -> Result<u8> {
    let engine = open_engine(ctx)?;
    let rec = engine.container(&args.container).map_err(engine_error)?;
    let inspect = inspect_json(&engine, &rec)?;
    let ports = inspect["NetworkSettings"]["Ports"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let want = args.port.as_ref().map(|p| {
        if p.contains('/') {
            p.clone()
        } else {
            format!("{p}/tcp")
        }
    });
    let mut found = false;
    for (key, bindings) in &ports {
        if want.as_ref().is_some_and(|w| w != key) {
            continue;
        }
        for b in bindings.as_array().cloned().unwrap_or_default() {
            found = true;
            let line = format!(
                "{}:{}",
                b["HostIp"].as_str().unwrap_or(""),
                b["HostPort"].as_str().unwrap_or("")
            );
            if want.is_some() {
                println!("{line}");
            } else {
                println!("{key} -> {line}");
            }
        }
    }
    if let (Some(w), false) = (&want, found) {
        return Err(Exit(
            1,
            format!("No public port '{w}' published for {}", args.container),
        )
        .into());
    }
    Ok(0)
}

#[derive(Args, Debug)]
pub struct TopArgs {
    container: String,
}

pub fn top(ctx: &Context, args: &TopArgs) -> Result<u8> {
    let engine = open_engine(ctx)?;
    let rec = engine.container(&args.container).map_err(engine_error)?;
    if rec.state != State::Running && rec.state != State::Paused {
        return Err(Exit(1, format!("Container {} is not running", rec.id)).into());
    }
    let container = coracle_runtime::container::Container::load(&engine.runtime_root(), &rec.id)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let pids = container.pids().map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut rows = vec![["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
        .map(String::from)
        .to_vec()];
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let ppid = stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.split(' ').nth(1))
            .unwrap_or("?")
            .to_string();
        let uid = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("Uid:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .map(String::from)
            })
            .unwrap_or_default();
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| {
                c.split(|b| *b == 0)
                    .filter(|a| !a.is_empty())
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        rows.push(vec![
            uid,
            pid.to_string(),
            ppid,
            "0".into(),
            "-".into(),
            "?".into(),
            "-".into(),
            cmd,
        ]);
    }
    print!("{}", table(&rows));
    Ok(0)
}

/// `coracle inspect`: containers first, then images, as docker does.
pub fn inspect_any(
    ctx: &Context,
    names: &[String],
    format: Option<&str>,
    kind: Option<&str>,
) -> Result<u8> {
    let engine = open_engine(ctx)?;
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for name in names {
        let container = if kind == Some("image") {
            None
        } else {
            engine.container(name).ok()
        };
        if let Some(rec) = container {
            found.push(inspect_json(&engine, &rec)?);
            continue;
        }
        if kind == Some("container") {
            missing.push(name.clone());
            continue;
        }
        match engine.images().resolve(name) {
            Ok(image) => found.push(crate::images::inspect_json(engine.images(), &image)?),
            Err(_) => missing.push(name.clone()),
        }
    }
    crate::format::print_inspect(&found, format)?;
    for name in &missing {
        eprintln!("Error: No such object: {name}");
    }
    Ok(if missing.is_empty() { 0 } else { 1 })
}
