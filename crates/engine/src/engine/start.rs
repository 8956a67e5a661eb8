//! `start`: root file system, network, /etc files, bundle, shim — in that order, each undone
//! by `cleanup` if a later one fails.

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use coracle_image::snapshot::{self, mount_options, MountSpec};
use coracle_network::manager::{ConnectRequest, EndpointRecord};
use coracle_network::mode::{create_with_loopback, NetnsPlan, NetworkMode};
use coracle_network::ports::{check_conflicts, parse_port_spec, publish_all, PortMapping};
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use serde_json::{json, Value};
use tracing::{debug, warn};

use super::{io_err, Engine, EngineError, Result};
use crate::spec::{build_spec, ContainerConfig, NetNamespace, ResolvedMount, SpecContext};
use crate::store::{ContainerRecord, State, StateChange, Transition};

/// How long `start` waits for the shim to report the container's pid.
const SHIM_READY_TIMEOUT: Duration = Duration::from_secs(60);

/// What `start` did (the record as it is now).
#[derive(Debug, Clone)]
pub struct StartOutcome {
    pub record: ContainerRecord,
}

/// `-p`/`-P` of a configuration as the network crate's mappings (host port 0 = choose one).
pub(crate) fn port_mappings(cfg: &ContainerConfig) -> Result<Vec<PortMapping>> {
    let mut out = Vec::new();
    let invalid = |e: &dyn std::fmt::Display| EngineError::Invalid(e.to_string());
    for (port, bindings) in &cfg.host_config.port_bindings {
        let one = |host_ip: &str, host_port: &str| {
            let spec = match (host_ip.is_empty(), host_port.is_empty()) {
                (true, true) => port.clone(),
                (true, false) => format!("{host_port}:{port}"),
                (false, true) => format!("{host_ip}::{port}"),
                (false, false) => format!("{host_ip}:{host_port}:{port}"),
            };
            parse_port_spec(&spec).map_err(|e| invalid(&e))
        };
        if bindings.is_empty() {
            out.push(one("", "")?);
        }
        for b in bindings {
            out.push(one(&b.host_ip, &b.host_port)?);
        }
    }
    if cfg.host_config.publish_all_ports {
        let bound: Vec<&String> = cfg.host_config.port_bindings.keys().collect();
        let exposed: Vec<String> = cfg
            .config
            .exposed_ports
            .keys()
            .filter(|p| !bound.contains(p))
            .cloned()
            .collect();
        out.extend(publish_all(&exposed).map_err(|e| invalid(&e))?);
    }
    check_conflicts(&out).map_err(|e| invalid(&e))?;
    Ok(out)
}

/// Whether something is mounted exactly at `path` (from /proc/self/mountinfo).
pub(crate) fn is_mounted(path: &Path) -> bool {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = path.to_string_lossy();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|mp| unescape_mountinfo(mp) == want)
}

fn unescape_mountinfo(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// A shim that is creating a container and waits at its start gate.
struct PendingShim {
    /// The shim's first process (it forks to detach and exits).
    child: std::process::Child,
    /// Where the shim reports (`--ready-fd`).
    ready: OwnedFd,
    /// The go-ahead is written here (`--start-gate-fd`); closing it calls the start off.
    gate: OwnedFd,
}

impl Engine {
    /// The overlay mount of a container's snapshot (made at create).
    pub(crate) fn snapshot_spec(&self, rec: &ContainerRecord) -> Result<MountSpec> {
        let image = self.images.resolve(&rec.image_id)?;
        let dir = self.images.snapshotter().dir(&rec.id)?;
        Ok(MountSpec {
            id: rec.id.clone(),
            fstype: "overlay".into(),
            source: "overlay".into(),
            options: mount_options(image.layers.len()),
            merged: dir.join("merged"),
            cwd: dir,
        })
    }

    /// Starts a created or exited container and returns once its process runs (or failed to).
    pub fn start(&self, reference: &str) -> Result<StartOutcome> {
        let rec = self.container(reference)?;
        match rec.state {
            State::Running | State::Restarting => return Ok(StartOutcome { record: rec }),
            State::Paused => {
                return Err(EngineError::Invalid(format!(
                    "cannot start a paused container {}, try unpause instead",
                    rec.short_id()
                )))
            }
            State::Removing | State::Dead => {
                return Err(EngineError::Invalid(format!(
                    "container {} is marked for removal and cannot be started",
                    rec.short_id()
                )))
            }
            State::Created | State::Exited => {}
        }
        // Held until the process runs or the start failed and was torn down (see
        // lock_container); the state is read again under it.
        let _lock = self.lock_container(&rec.id)?;
        let rec = self.store.get(&rec.id)?;
        if matches!(rec.state, State::Running | State::Restarting) {
            return Ok(StartOutcome { record: rec });
        }
        // The previous run's shim may still be finishing (a `restart`): its last step
        // deletes the runtime state by id, which must not meet the new one.
        self.wait_for_shim_exit(&rec.id);
        // A previous run may have left its teardown unfinished (a crash): finish it first.
        self.cleanup_quiet(&rec);
        match self.start_steps(&rec) {
            Ok(pid) => {
                let record = self.store.update_state(
                    &rec.id,
                    Transition::Start,
                    StateChange {
                        pid: Some(pid),
                        ..Default::default()
                    },
                )?;
                Ok(StartOutcome { record })
            }
            Err(e) => {
                self.cleanup_quiet(&rec);
                let _ = self.store.update_state(
                    &rec.id,
                    Transition::Exit,
                    StateChange {
                        exit_code: Some(i32::from(e.exit_code())),
                        error: Some(e.to_string()),
                        ..Default::default()
                    },
                );
                Err(e)
            }
        }
    }

    fn start_steps(&self, rec: &ContainerRecord) -> Result<i32> {
        prime_cgroup_attach();
        let cfg = self.container_config(rec)?;
        let id = &rec.id;

        // 1. The root file system.
        let snap = self.snapshot_spec(rec)?;
        if !is_mounted(&snap.merged) {
            snapshot::mount(&snap, &snap.merged)?;
        }

        // 2. The network namespace. Its endpoint is connected in step 5, while the shim
        //    creates the container.
        let mode: NetworkMode =
            cfg.host_config.network_mode.parse().map_err(
                |e: coracle_network::mode::ModeError| EngineError::Invalid(e.to_string()),
            )?;
        let plan = mode
            .netns_plan(id, &self.netns_dir(), |other| self.running_netns(other))
            .map_err(|e| EngineError::Invalid(e.to_string()))?;
        let network = match &plan {
            NetnsPlan::New(path) => {
                fs::create_dir_all(self.netns_dir())
                    .map_err(io_err("creating", &self.netns_dir()))?;
                create_with_loopback(path).map_err(EngineError::Network)?;
                NetNamespace::Path(path.clone())
            }
            NetnsPlan::Join(path) => NetNamespace::Path(path.clone()),
            NetnsPlan::Host => NetNamespace::Host,
        };
        // Recorded now, so that teardown finds the namespace whatever fails next.
        self.store.update_record(
            id,
            crate::store::RecordUpdate {
                extra: Some(self.extra_with_network(rec, &mode, &plan, None)),
                ..Default::default()
            },
        )?;

        // 3. /etc/hostname, /etc/hosts, /etc/resolv.conf: created empty, to be bind-mounted
        //    by the shim; written in step 5, once the endpoint's address is known. Written in
        //    place, so the mounts see the content.
        let dir = self.container_dir(id);
        let hostname = if !cfg.config.hostname.is_empty() {
            cfg.config.hostname.clone()
        } else if matches!(plan, NetnsPlan::Host) {
            nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_else(|_| rec.short_id().to_string())
        } else {
            rec.short_id().to_string()
        };
        for name in ["hostname", "hosts", "resolv.conf"] {
            let path = dir.join(name);
            fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(io_err("creating", &path))?;
        }

        // 4. The bundle.
        let mut ctx = SpecContext::new(id, &snap.merged, network);
        ctx.cgroups_path = format!("{}/{id}", self.cfg.cgroup_parent.trim_end_matches('/'));
        ctx.default_hostname = Some(hostname.clone());
        ctx.resolv_conf = Some(dir.join("resolv.conf"));
        ctx.hosts = Some(dir.join("hosts"));
        ctx.hostname_file = Some(dir.join("hostname"));
        ctx.mounts = self.resolve_mounts(rec, &cfg)?;
        if cfg.host_config.init == Some(true) {
            ctx.init_binary = Some(super::init_binary::install(&self.cfg.root)?);
        }
        let spec = build_spec(&cfg, &ctx)?;
        let bundle = self.bundle_dir(id);
        fs::create_dir_all(&bundle).map_err(io_err("creating", &bundle))?;
        let config_path = bundle.join("config.json");
        let text = serde_json::to_vec_pretty(&spec).expect("an OCI spec serializes");
        fs::write(&config_path, text).map_err(io_err("writing", &config_path))?;

        // 5. The shim creates the container (cgroups, namespaces, mounts: the larger part of
        //    a start) while the endpoint is connected and the /etc files are written here.
        //    It starts the container's process only at the go-ahead on its start gate, so
        //    the process never runs without its network; a failure here closes the gate
        //    instead, and the shim deletes what it created.
        let pending = self.spawn_shim(rec, &cfg)?;
        let prepared = (|| -> Result<()> {
            let mut endpoint: Option<EndpointRecord> = None;
            // The network's DNS responder (its gateway), when it runs one: for resolv.conf.
            let mut responder: Option<IpAddr> = None;
            if let (NetnsPlan::New(path), NetworkMode::Bridge(net)) = (&plan, &mode) {
                let (ep, dns) = self.connect(rec, &cfg, net, path)?;
                responder = dns.then_some(IpAddr::V4(ep.gateway));
                // Recorded at once, so that teardown disconnects it.
                self.store.update_record(
                    id,
                    crate::store::RecordUpdate {
                        extra: Some(self.extra_with_network(rec, &mode, &plan, Some(&ep))),
                        ..Default::default()
                    },
                )?;
                endpoint = Some(ep);
            }
            self.write_etc_files(&dir, &cfg, &hostname, endpoint.as_ref(), responder)
        })();
        match prepared {
            Ok(()) => self.await_shim(rec, pending, true),
            Err(e) => {
                // The shim's answer no longer matters, only that it has cleaned up.
                let _ = self.await_shim(rec, pending, false);
                Err(e)
            }
        }
    }

    /// The network namespace of a running container (for `--network container:X`).
    fn running_netns(&self, reference: &str) -> Option<PathBuf> {
        let other = self.container(reference).ok()?;
        if other.state != State::Running {
            return None;
        }
        let path = other.extra.get("netns")?.as_str()?;
        Some(PathBuf::from(path))
    }

    /// The container's endpoint on `network`, and whether that network runs a DNS responder.
    fn connect(
        &self,
        rec: &ContainerRecord,
        cfg: &ContainerConfig,
        network: &str,
        netns: &Path,
    ) -> Result<(EndpointRecord, bool)> {
        let settings = cfg.networking_config.endpoints_config.get(network);
        let ip = settings
            .and_then(|s| s.ipam_config.as_ref())
            .map(|c| c.ipv4_address.as_str())
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<Ipv4Addr>()
                    .map_err(|_| EngineError::Invalid(format!("invalid IPv4 address: {s}")))
            })
            .transpose()?;
        let mut names = vec![rec.name.clone(), rec.short_id().to_string()];
        if let Some(s) = settings {
            names.extend(s.aliases.iter().cloned());
        }
        let req = ConnectRequest {
            network: network.to_string(),
            container: rec.id.clone(),
            netns: netns.to_path_buf(),
            ip,
            names,
            ports: port_mappings(cfg)?,
        };
        // One manager (one lock, one database connection) for the endpoint and the lookup of
        // whether its network runs a DNS responder.
        let mgr = self.network()?;
        let endpoint = mgr
            .connect(&req)
            .map_err(|e| EngineError::Network(e.to_string()))?;
        let dns = mgr.network(network).is_ok_and(|n| n.dns);
        Ok((endpoint, dns))
    }

    fn extra_with_network(
        &self,
        rec: &ContainerRecord,
        mode: &NetworkMode,
        plan: &NetnsPlan,
        endpoint: Option<&EndpointRecord>,
    ) -> Value {
        let mut extra = match &rec.extra {
            Value::Object(m) => m.clone(),
            _ => serde_json::Map::new(),
        };
        let (netns, network_mode) = match (plan, mode) {
            (NetnsPlan::New(p), NetworkMode::Bridge(n)) => (Some(p.clone()), n.clone()),
            (NetnsPlan::New(p), _) => (Some(p.clone()), "none".to_string()),
            (NetnsPlan::Join(p), NetworkMode::Container(c)) => {
                (Some(p.clone()), format!("container:{c}"))
            }
            (NetnsPlan::Join(p), _) => (Some(p.clone()), String::new()),
            (NetnsPlan::Host, _) => (None, "host".to_string()),
        };
        extra.insert("netns".into(), json!(netns));
        extra.insert(
            "owns_netns".into(),
            json!(matches!(plan, NetnsPlan::New(_))),
        );
        extra.insert("network_mode".into(), json!(network_mode));
        extra.insert(
            "endpoints".into(),
            json!(endpoint
                .map(|e| vec![serde_json::to_value(e).expect("endpoint serializes")])
                .unwrap_or_default()),
        );
        Value::Object(extra)
    }

    fn write_etc_files(
        &self,
        dir: &Path,
        cfg: &ContainerConfig,
        hostname: &str,
        endpoint: Option<&EndpointRecord>,
        responder: Option<IpAddr>,
    ) -> Result<()> {
        use coracle_network::dns::files;
        let host_resolv = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let mut dns = Vec::new();
        for d in &cfg.host_config.dns {
            dns.push(
                d.parse::<IpAddr>()
                    .map_err(|_| EngineError::Invalid(format!("invalid --dns address: {d}")))?,
            );
        }
        let mut extra_hosts = Vec::new();
        for h in &cfg.host_config.extra_hosts {
            let (name, ip) = h
                .split_once(':')
                .ok_or_else(|| EngineError::Invalid(format!("invalid --add-host {h:?}")))?;
            // host-gateway: the host as containers reach it, Docker's default for it being
            // the default bridge's own address.
            let ip = if ip == "host-gateway" {
                IpAddr::V4(self.cfg.bridge.gateway)
            } else {
                ip.parse::<IpAddr>().map_err(|_| {
                    EngineError::Invalid(format!("invalid IP address in --add-host {h:?}"))
                })?
            };
            extra_hosts.push((name.to_string(), ip));
        }
        let own: Vec<(IpAddr, Vec<String>)> = endpoint
            .map(|ep| vec![(IpAddr::V4(ep.ip), vec![hostname.to_string()])])
            .unwrap_or_default();
        let writes = [
            ("hostname", files::hostname_file(hostname)),
            ("hosts", files::hosts_file(&own, &extra_hosts)),
            (
                "resolv.conf",
                files::resolv_conf_with(
                    &host_resolv,
                    responder,
                    &dns,
                    &cfg.host_config.dns_search,
                    &cfg.host_config.dns_options,
                ),
            ),
        ];
        for (name, text) in writes {
            let path = dir.join(name);
            fs::write(&path, text).map_err(io_err("writing", &path))?;
        }
        Ok(())
    }

    /// Points the container's /etc/resolv.conf at the DNS responder of the first network it
    /// is connected to that runs one (or back at the host's resolvers when none is left),
    /// after `network connect` or `disconnect`: a container started on the default bridge
    /// and then connected to a user-defined network resolves that network's names, as with
    /// Docker. `--dns` servers, when given, are kept as they are. The file is rewritten in
    /// place: it is bind-mounted into the running container, and a rename would leave the
    /// mount on the old file.
    pub fn sync_resolv_conf(&self, reference: &str) -> Result<()> {
        use coracle_network::dns::files;
        let rec = self.container(reference)?;
        let cfg = self.container_config(&rec)?;
        if !cfg.host_config.dns.is_empty() {
            return Ok(());
        }
        let path = self.container_dir(&rec.id).join("resolv.conf");
        if !path.exists() {
            return Ok(());
        }
        let mgr = self
            .network()
            .map_err(|e| EngineError::Network(e.to_string()))?;
        let responder = rec
            .extra
            .get("endpoints")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|e| serde_json::from_value::<EndpointRecord>(e.clone()).ok())
            .find(|e| mgr.network(&e.network).is_ok_and(|n| n.dns))
            .map(|e| IpAddr::V4(e.gateway));
        drop(mgr);
        let host_resolv = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let text = files::resolv_conf_with(
            &host_resolv,
            responder,
            &[],
            &cfg.host_config.dns_search,
            &cfg.host_config.dns_options,
        );
        fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
            .map_err(io_err("rewriting", &path))
    }

    /// Binds and volumes as host paths. A named volume is created when missing; an anonymous
    /// one gets a random name the first time and is found again by its target afterwards.
    fn resolve_mounts(
        &self,
        rec: &ContainerRecord,
        cfg: &ContainerConfig,
    ) -> Result<Vec<ResolvedMount>> {
        use crate::spec::config::MountType;
        let refs = self.store.volume_refs(&rec.id)?;
        let mut out = Vec::new();
        for m in crate::spec::mounts::mount_requests(cfg)? {
            let source = match m.kind {
                MountType::Bind => {
                    let p = PathBuf::from(&m.source);
                    if !p.exists() {
                        return Err(EngineError::Invalid(format!(
                            "invalid mount config for type \"bind\": bind source path does not exist: {}",
                            m.source
                        )));
                    }
                    p
                }
                MountType::Tmpfs => continue,
                _ => {
                    let existing = refs
                        .iter()
                        .find(|r| r.destination == m.target)
                        .map(|r| r.volume.clone());
                    let name = if m.source.is_empty() {
                        existing
                    } else {
                        Some(m.source.clone())
                    };
                    self.ensure_volume(name, &rec.id, &m.target)?
                }
            };
            out.push(ResolvedMount {
                target: m.target.clone(),
                source,
                read_only: m.read_only,
                propagation: m.bind_options.as_ref().and_then(|b| b.propagation.clone()),
            });
        }
        Ok(out)
    }

    fn ensure_volume(
        &self,
        name: Option<String>,
        container: &str,
        target: &str,
    ) -> Result<PathBuf> {
        let existing = name.as_deref().and_then(|n| self.store.get_volume(n).ok());
        let volume = match existing {
            Some(v) => v,
            None => self.store.create_volume(crate::store::NewVolume {
                name,
                ..Default::default()
            })?,
        };
        fs::create_dir_all(&volume.mountpoint).map_err(io_err("creating", &volume.mountpoint))?;
        if !self
            .store
            .volume_refs(container)?
            .iter()
            .any(|r| r.volume == volume.name && r.destination == target)
        {
            self.store.add_volume_ref(container, &volume.name, target)?;
        }
        Ok(volume.mountpoint.clone())
    }

    fn spawn_shim(&self, rec: &ContainerRecord, cfg: &ContainerConfig) -> Result<PendingShim> {
        let id = &rec.id;
        let shim_dir = self.shim_dir(id);
        fs::create_dir_all(&shim_dir).map_err(io_err("creating", &shim_dir))?;
        for stale in ["status.json", "stopped", "removing", "shim.pid"] {
            let _ = fs::remove_file(shim_dir.join(stale));
        }
        // The write end is inherited by the shim (no CLOEXEC); the read end stays ours.
        let (read_end, write_end): (OwnedFd, OwnedFd) =
            nix::unistd::pipe().map_err(|e| EngineError::Runtime(format!("pipe: {e}")))?;
        fcntl(read_end.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))
            .map_err(|e| EngineError::Runtime(format!("fcntl FD_CLOEXEC: {e}")))?;
        // The start gate: the shim inherits the read end, we keep the write end.
        let (gate_read, gate_write): (OwnedFd, OwnedFd) =
            nix::unistd::pipe().map_err(|e| EngineError::Runtime(format!("pipe: {e}")))?;
        fcntl(
            gate_write.as_raw_fd(),
            FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC),
        )
        .map_err(|e| EngineError::Runtime(format!("fcntl FD_CLOEXEC: {e}")))?;

        // The shim is started from a read-only handle on its binary (a detached read-only
        // bind mount), so it needs no sealed re-exec of its own against CVE-2019-5736: one
        // program load less per start. The handle goes with the spawn; the mount lives as
        // long as the shim runs from it. Should the bind fail, the shim seals itself.
        let sealed = coracle_runtime::sealed_exe::readonly_handle(
            &self.cfg.shim_binary,
            &self.runtime_root(),
        )
        .map_err(|e| debug!(error = %e, "read-only handle on the shim"))
        .ok();
        let mut cmd = match &sealed {
            // The fd is close-on-exec: execve resolves the path before it closes it.
            Some(fd) => Command::new(format!("/proc/self/fd/{}", fd.as_raw_fd())),
            None => Command::new(&self.cfg.shim_binary),
        };
        cmd.arg0(&self.cfg.shim_binary);
        cmd.arg("--id")
            .arg(id)
            .arg("--bundle")
            .arg(self.bundle_dir(id))
            .arg("--runtime-root")
            .arg(self.runtime_root())
            .arg("--state-dir")
            .arg(&shim_dir)
            .arg("--log-path")
            .arg(self.log_path(id))
            .arg("--ready-fd")
            .arg(write_end.as_raw_fd().to_string())
            .arg("--start-gate-fd")
            .arg(gate_read.as_raw_fd().to_string());
        // A foreground `run --rm` that removes the container itself (see the shim's
        // --cleanup-client).
        if let Some(client) = rec.extra.get("removed_by_client") {
            if let (Some(pid), Some(start)) = (client["pid"].as_i64(), client["start"].as_u64()) {
                cmd.arg("--cleanup-client").arg(format!("{pid}:{start}"));
            }
        }
        if cfg.config.tty {
            cmd.arg("--tty");
        }
        if cfg.config.open_stdin {
            cmd.arg("--stdin");
        }
        let policy = &cfg.host_config.restart_policy;
        if !policy.name.is_empty() && policy.name != "no" {
            let arg = if policy.name == "on-failure" && policy.maximum_retry_count > 0 {
                format!("on-failure:{}", policy.maximum_retry_count)
            } else {
                policy.name.clone()
            };
            cmd.arg("--restart").arg(arg);
        }
        cmd.arg("--exit-command").arg(&self.cfg.cli_binary);
        for a in self
            .cfg
            .cli_global_args
            .iter()
            .map(String::as_str)
            .chain(["container-cleanup", id.as_str()])
        {
            cmd.arg("--exit-command-arg").arg(a);
        }
        let stderr = fs::File::create(shim_dir.join("shim.stderr"))
            .map_err(io_err("creating", &shim_dir.join("shim.stderr")))?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        debug!(?cmd, "starting the shim");
        let child = cmd
            .spawn()
            .map_err(io_err("starting", &self.cfg.shim_binary))?;
        drop(sealed);
        drop(write_end);
        drop(gate_read);
        Ok(PendingShim {
            child,
            ready: read_end,
            gate: gate_write,
        })
    }

    /// Opens the shim's start gate (`go`) or closes it (the start is called off), then waits
    /// for its report: the container's pid, or why it could not start.
    fn await_shim(&self, rec: &ContainerRecord, pending: PendingShim, go: bool) -> Result<i32> {
        let PendingShim {
            mut child,
            ready: read_end,
            gate,
        } = pending;
        if go {
            // A failed write means the shim is gone; its report (or its absence) says why.
            let _ = nix::unistd::write(&gate, b"g");
        }
        drop(gate);
        let shim_dir = self.shim_dir(&rec.id);
        let line = read_ready_line(&read_end, SHIM_READY_TIMEOUT);
        // The shim forks to detach; its first process exits right away.
        let _ = child.wait();
        let line = line.map_err(|reason| EngineError::Start {
            id: rec.short_id().to_string(),
            reason: format!(
                "{reason}{}",
                fs::read_to_string(shim_dir.join("shim.stderr"))
                    .map(|s| if s.trim().is_empty() {
                        String::new()
                    } else {
                        format!(": {}", s.trim())
                    })
                    .unwrap_or_default()
            ),
            exit_code: 125,
        })?;
        let v: Value = serde_json::from_str(&line).map_err(|e| EngineError::Start {
            id: rec.short_id().to_string(),
            reason: format!("the shim answered {line:?}: {e}"),
            exit_code: 125,
        })?;
        if let Some(pid) = v.get("pid").and_then(Value::as_i64) {
            return Ok(pid as i32);
        }
        let reason = v
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("the shim reported neither a pid nor an error")
            .to_string();
        let lower = reason.to_ascii_lowercase();
        let reported = v
            .get("exit_code")
            .and_then(Value::as_u64)
            .and_then(|c| u8::try_from(c).ok());
        let exit_code = if let Some(code) = reported {
            code
        } else if lower.contains("not found") || lower.contains("no such file") {
            127
        } else if lower.contains("permission denied") || lower.contains("is a directory") {
            126
        } else {
            125
        };
        warn!(container = %rec.short_id(), %reason, "start failed");
        Err(EngineError::Start {
            id: rec.short_id().to_string(),
            reason,
            exit_code,
        })
    }
}

/// The shim's runtime moves the container's init into its cgroups about 10 ms from here,
/// and that first move waits for an RCU grace period (10-14 ms measured) unless another
/// move came shortly before: begin that wait now, on a thread that is not joined, while
/// the root file system, the network namespace and the bundle are prepared (see
/// `coracle_cgroups::prime_attach`). On failure nothing is lost but the head start.
fn prime_cgroup_attach() {
    let spawned = std::thread::Builder::new()
        .name("cgroup-prime".into())
        .spawn(|| {
            let primed = coracle_cgroups::Layout::detect()
                .and_then(|layout| coracle_cgroups::prime_attach(&layout));
            if let Err(e) = primed {
                debug!(error = %e, "priming the cgroup attach lock");
            }
        });
    if let Err(e) = spawned {
        debug!(error = %e, "starting the cgroup-prime thread");
    }
}

/// Reads one line from the shim's ready pipe, waiting at most `timeout`.
fn read_ready_line(fd: &OwnedFd, timeout: Duration) -> Result<String, String> {
    let mut pfd = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match poll(&mut pfd, PollTimeout::from(ms.min(1000))) {
            Ok(0) if std::time::Instant::now() > deadline => {
                return Err(format!(
                    "the shim did not report within {}s",
                    timeout.as_secs()
                ))
            }
            Ok(0) => continue,
            Ok(_) => break,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(format!("poll on the shim's ready pipe: {e}")),
        }
    }
    let file = fs::File::from(fd.try_clone().map_err(|e| e.to_string())?);
    let mut line = String::new();
    BufReader::new(file)
        .read_line(&mut line)
        .map_err(|e| format!("reading the shim's ready pipe: {e}"))?;
    if line.trim().is_empty() {
        return Err("the shim exited without reporting".to_string());
    }
    Ok(line.trim().to_string())
}
