//! `create`/`run` flags, and their translation into the engine's container configuration
//! (no engine involved: it reads only the `--env-file` files and the environment).

use super::*;

#[derive(Args, Debug, Clone)]
pub struct CreateFlags {
    /// Print help (`-h` is --hostname, as in docker).
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    /// Assign a name to the container.
    #[arg(long)]
    pub(super) name: Option<String>,
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
    pub(super) interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short = 't', long)]
    pub(super) tty: bool,
    /// Automatically remove the container when it exits.
    #[arg(long)]
    pub(super) rm: bool,
    /// Pull image before running ("always", "missing", "never").
    #[arg(long, default_value = "missing", value_parser = ["always", "missing", "never"])]
    pub(super) pull: String,
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
    pub(super) fn image(&self) -> &str {
        &self.image_and_command[0]
    }

    pub(super) fn command(&self) -> &[String] {
        &self.image_and_command[1..]
    }
}

/// The flags as the configuration the engine (and the Docker API) uses.
pub(super) fn container_config(f: &CreateFlags) -> Result<ContainerConfig> {
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
