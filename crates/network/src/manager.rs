//! Networks and endpoints as one system: what `coracle-net` and (later) the
//! engine drive. It composes the pieces in the order the kernel needs:
//! address (IPAM) -> bridge -> veth endpoint -> firewall -> DNS, and undoes them in
//! reverse when a step fails.
//!
//! State lives under a state directory, one JSON file per network and per
//! endpoint, so `reload` can rebuild every rule after `nft flush ruleset`. Every
//! operation holds an exclusive lock on that directory: separate processes may
//! connect containers at the same time (IPAM has its own lock besides).
//!
//! The host is the network namespace the caller runs in.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::bridge::{self, BridgeConfig, Endpoint};
use crate::dns;
use crate::firewall::{self, FirewallDriver, FirewallState, NftFirewall, PublishedPort};
use crate::ipam::{FileStore, IpamStore};
use crate::netlink::Netlink;
use crate::ports::{self, PortMapping};
use crate::subnet::{self, Ipv4Net, Subnet};

/// The default network, like Docker's `bridge`: no DNS between containers.
pub const DEFAULT_NETWORK: &str = "bridge";

#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    #[error("network {0:?} not found")]
    NoSuchNetwork(String),
    #[error("network {0:?} already exists")]
    NetworkExists(String),
    #[error("network {name:?}: subnet {subnet} overlaps network {other:?} ({other_subnet})")]
    Overlap {
        name: String,
        subnet: Ipv4Net,
        other: String,
        other_subnet: Ipv4Net,
    },
    #[error("network {0:?} has connected containers; disconnect them first")]
    InUse(String),
    #[error(
        "no free host port for {mapping} in {start}-{end}: every port there is published or in use"
    )]
    NoFreePort {
        mapping: PortMapping,
        start: u16,
        end: u16,
    },
    /// Setup stopped between two steps (a signal arrived) and was rolled back.
    #[error("connecting {container} to network {network:?} was interrupted ({reason}) after {step}; rolled back")]
    Interrupted {
        container: String,
        network: String,
        step: &'static str,
        reason: String,
    },
    #[error("container {container} is already connected to network {network:?}")]
    AlreadyConnected { container: String, network: String },
    #[error("invalid {what} {value:?}: {reason}")]
    Invalid {
        what: &'static str,
        value: String,
        reason: String,
    },
    #[error(transparent)]
    Subnet(#[from] subnet::SubnetError),
    #[error(transparent)]
    Ipam(#[from] crate::ipam::IpamError),
    #[error(transparent)]
    Ports(#[from] ports::PortError),
    #[error(transparent)]
    Bridge(#[from] bridge::BridgeError),
    #[error(transparent)]
    Netlink(#[from] crate::netlink::NetlinkError),
    #[error(transparent)]
    Firewall(#[from] firewall::FirewallError),
    #[error(transparent)]
    Dns(#[from] dns::DnsError),
    #[error(transparent)]
    DnsRecords(#[from] dns::records::RecordsError),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: corrupt: {source}")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    /// Teardown goes on past errors and reports all of them.
    #[error("{}", .0.join("; "))]
    Several(Vec<String>),
}

type Result<T, E = ManagerError> = std::result::Result<T, E>;

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> ManagerError + 'a {
    move |source| ManagerError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// A network's definition, as stored and as `network inspect` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkDef {
    pub name: String,
    pub id: String,
    pub bridge: String,
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    pub mtu: u32,
    pub internal: bool,
    /// Containers resolve each other by name (user-defined networks).
    pub dns: bool,
}

/// One container on one network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRecord {
    pub network: String,
    pub container: String,
    pub netns: PathBuf,
    pub interface: String,
    pub host_interface: String,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    pub mac: String,
    /// Names DNS answers for: the container name, short id and aliases.
    pub names: Vec<String>,
    pub ports: Vec<PortMapping>,
}

/// Called by [`Manager::connect_with`] and [`Manager::disconnect_with`] after each
/// step, with the step's name (`address`, `endpoint`, `record`, `firewall`, `dns`;
/// for disconnect `endpoint-removed`, `record-removed`, `firewall`). During connect,
/// returning `Some(reason)` stops the setup there and rolls back what was done;
/// disconnect ignores the answer (teardown always runs to the end). `coracle-net`
/// returns the pending SIGINT/SIGTERM (see [`crate::signals`]).
pub type Checkpoint<'a> = &'a dyn Fn(&'static str) -> Option<String>;

/// What disconnecting does with the veth pair.
#[derive(Debug, Clone, Copy)]
enum LinkTeardown {
    /// Delete it now.
    Delete,
    /// Take the host end down and off the bridge; the namespace's removal deletes it.
    Detach,
}

/// What a caller asks for when connecting a container.
#[derive(Debug, Clone, Default)]
pub struct ConnectRequest {
    pub network: String,
    pub container: String,
    pub netns: PathBuf,
    pub ip: Option<Ipv4Addr>,
    pub names: Vec<String>,
    pub ports: Vec<PortMapping>,
}

#[derive(Debug, Clone)]
pub struct ManagerConfig {
    pub state_dir: PathBuf,
    pub run_dir: PathBuf,
    /// The nftables table owned by this manager.
    pub table: String,
    /// The default network's bridge and subnet (`coracle0`, 172.17.0.0/16).
    pub default_bridge: BridgeConfig,
    /// `coracle-dns`; None disables DNS (names are still recorded).
    pub dns_binary: Option<PathBuf>,
    pub dns_port: u16,
    /// Where host ports for `-P` / `-p 80` come from; None: the host's ephemeral
    /// range (`ip_local_port_range`), as Docker does.
    pub host_port_range: Option<(u16, u16)>,
}

pub struct Manager {
    cfg: ManagerConfig,
    /// Address allocations: a flock'd file store by default, the engine's database when the
    /// engine opens the manager ([`Manager::open_with_ipam`]).
    ipam: Box<dyn IpamStore>,
    _lock: File,
}

impl Manager {
    /// Open the state and take the manager lock (held until drop).
    pub fn open(cfg: ManagerConfig) -> Result<Manager> {
        let ipam = FileStore::open(cfg.state_dir.join("ipam"))?;
        Self::open_with_ipam(cfg, Box::new(ipam))
    }

    /// Like [`Manager::open`], with the address allocations kept in `ipam`.
    pub fn open_with_ipam(cfg: ManagerConfig, ipam: Box<dyn IpamStore>) -> Result<Manager> {
        for d in [&cfg.state_dir, &cfg.run_dir] {
            std::fs::create_dir_all(d).map_err(io("mkdir", d))?;
        }
        let lock_path = cfg.state_dir.join("lock");
        let lock = File::create(&lock_path).map_err(io("create", &lock_path))?;
        lock.lock().map_err(io("flock", &lock_path))?;
        Ok(Manager {
            cfg,
            ipam,
            _lock: lock,
        })
    }

    fn networks_dir(&self) -> PathBuf {
        self.cfg.state_dir.join("networks")
    }
    fn endpoints_dir(&self, network: &str) -> PathBuf {
        self.cfg.state_dir.join("endpoints").join(network)
    }
    fn dns_config_dir(&self) -> PathBuf {
        self.cfg.run_dir.join("dns")
    }

    pub fn networks(&self) -> Result<Vec<NetworkDef>> {
        let mut v: Vec<NetworkDef> = read_dir_json(&self.networks_dir())?;
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(v)
    }

    pub fn network(&self, name: &str) -> Result<NetworkDef> {
        let path = self
            .networks_dir()
            .join(format!("{}.json", check_name("network name", name)?));
        match std::fs::read(&path) {
            Ok(b) => {
                serde_json::from_slice(&b).map_err(|source| ManagerError::Corrupt { path, source })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(ManagerError::NoSuchNetwork(name.to_string()))
            }
            Err(e) => Err(io("read", &path)(e)),
        }
    }

    pub fn endpoints(&self, network: &str) -> Result<Vec<EndpointRecord>> {
        read_dir_json(&self.endpoints_dir(network))
    }

    fn all_endpoints(&self) -> Result<Vec<EndpointRecord>> {
        let mut all = Vec::new();
        for n in self.networks()? {
            all.extend(self.endpoints(&n.name)?);
        }
        Ok(all)
    }

    /// Create a user-defined network (`subnet` None: the first free one of the
    /// default pools, avoiding existing networks and the host's routes).
    pub fn create_network(
        &self,
        name: &str,
        subnet: Option<Ipv4Net>,
        internal: bool,
    ) -> Result<NetworkDef> {
        check_name("network name", name)?;
        let dns = name != DEFAULT_NETWORK;
        self.create(name, subnet, None, internal, dns)
    }

    fn create(
        &self,
        name: &str,
        subnet: Option<Ipv4Net>,
        bridge_name: Option<&str>,
        internal: bool,
        dns: bool,
    ) -> Result<NetworkDef> {
        let existing = self.networks()?;
        if existing.iter().any(|n| n.name == name) {
            return Err(ManagerError::NetworkExists(name.to_string()));
        }
        let taken: Vec<Ipv4Net> = existing.iter().map(|n| n.subnet).collect();
        let net = match subnet {
            Some(s) => {
                if let Some(o) = existing.iter().find(|o| subnet::overlaps(o.subnet, s)) {
                    return Err(ManagerError::Overlap {
                        name: name.into(),
                        subnet: s,
                        other: o.name.clone(),
                        other_subnet: o.subnet,
                    });
                }
                s
            }
            None => {
                let routes: Vec<Ipv4Net> = Netlink::new()?
                    .routes()?
                    .into_iter()
                    .filter_map(|r| match r.destination {
                        ipnet::IpNet::V4(n) if n.prefix_len() > 0 => Some(n),
                        _ => None,
                    })
                    .collect();
                subnet::pick_from_pools(&subnet::default_pools(), &taken, &routes)?
            }
        };
        let sub = Subnet::new(net)?;
        let id = random_hex(64);
        let def = NetworkDef {
            name: name.to_string(),
            bridge: bridge_name
                .map(str::to_string)
                .unwrap_or_else(|| format!("cbr-{}", &id[..11])),
            id,
            subnet: net,
            gateway: sub.gateway(),
            mtu: 1500,
            internal,
            dns,
        };
        BridgeConfig {
            name: def.bridge.clone(),
            subnet: net,
            gateway: def.gateway,
            mtu: def.mtu,
        }
        .validate()?;
        let dir = self.networks_dir();
        std::fs::create_dir_all(&dir).map_err(io("mkdir", &dir))?;
        write_json(&dir.join(format!("{name}.json")), &def)?;
        Ok(def)
    }

    /// The network `name`, creating the default one on first use.
    fn network_or_default(&self, name: &str) -> Result<NetworkDef> {
        match self.network(name) {
            Err(ManagerError::NoSuchNetwork(_)) if name == DEFAULT_NETWORK => {
                let b = self.cfg.default_bridge.clone();
                self.create(DEFAULT_NETWORK, Some(b.subnet), Some(&b.name), false, false)
            }
            other => other,
        }
    }

    /// Remove a network: refused while containers are connected.
    pub fn remove_network(&self, name: &str) -> Result<()> {
        let def = self.network(name)?;
        if !self.endpoints(name)?.is_empty() {
            return Err(ManagerError::InUse(name.to_string()));
        }
        let mut errors: Vec<String> = Vec::new();
        let host = Netlink::new()?;
        errors.extend(
            bridge::remove_bridge(&host, &bridge_config(&def))
                .iter()
                .map(|e| e.to_string()),
        );
        if let Err(e) = self.ipam.remove_network(name) {
            errors.push(e.to_string());
        }
        if let Err(e) = dns::records::remove(&self.dns_config_dir(), name) {
            errors.push(e.to_string());
        }
        let path = self.networks_dir().join(format!("{name}.json"));
        if let Err(e) = std::fs::remove_file(&path) {
            errors.push(format!("remove {}: {e}", path.display()));
        }
        let _ = std::fs::remove_dir(self.endpoints_dir(name));
        if let Err(e) = self.sync_firewall() {
            errors.push(e.to_string());
        }
        several(errors)
    }

    /// Connect a container's network namespace to a network. Validates first;
    /// on failure, undoes every step already taken.
    pub fn connect(&self, req: &ConnectRequest) -> Result<EndpointRecord> {
        self.connect_with(req, &|_| None)
    }

    /// [`connect`](Self::connect), asking `checkpoint` after each step whether to
    /// stop (and roll back) there.
    pub fn connect_with(
        &self,
        req: &ConnectRequest,
        checkpoint: Checkpoint,
    ) -> Result<EndpointRecord> {
        check_name("container id", &req.container)?;
        let def = self.network_or_default(&req.network)?;
        if !crate::netns::is_netns(&req.netns) {
            return Err(ManagerError::Invalid {
                what: "network namespace",
                value: req.netns.display().to_string(),
                reason: "not a network namespace (nsfs) file".into(),
            });
        }
        let ep_path = self
            .endpoints_dir(&def.name)
            .join(format!("{}.json", req.container));
        if ep_path.exists() {
            return Err(ManagerError::AlreadyConnected {
                container: req.container.clone(),
                network: def.name.clone(),
            });
        }
        if !req.ports.is_empty() && def.internal {
            return Err(ManagerError::Invalid {
                what: "published ports",
                value: req
                    .ports
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
                reason: format!("network {:?} is internal", def.name),
            });
        }
        let existing = self.all_endpoints()?;
        let mut all_ports: Vec<PortMapping> = existing
            .iter()
            .flat_map(|e| e.ports.iter().copied())
            .collect();
        all_ports.extend(req.ports.iter().copied());
        ports::check_conflicts(&all_ports)?;
        // Validation done but for the host ports left to the engine (`-P`, `-p 80`).
        // The manager lock is held, so no other Coracle process picks at the same time.
        let chosen_ports = self.choose_host_ports(&req.ports, &all_ports)?;
        // The interface name: eth0 on the first network, eth1 on the next, ...
        let taken = existing
            .iter()
            .filter(|e| e.container == req.container)
            .count();
        let sub = Subnet::with_gateway(def.subnet, def.gateway)?;
        let ip = match req.ip {
            Some(ip) => self
                .ipam
                .allocate_static(&def.name, &sub, &req.container, ip)?,
            None => self.ipam.allocate_next(&def.name, &sub, &req.container)?,
        };
        let mut steps = Undo::new(self, &def.name, &req.container);
        let check = |step: &'static str| match checkpoint(step) {
            None => Ok(()),
            Some(reason) => Err(ManagerError::Interrupted {
                container: req.container.clone(),
                network: def.name.clone(),
                step,
                reason,
            }),
        };
        let result = (|| -> Result<EndpointRecord> {
            check("address")?;
            let cfg = bridge_config(&def);
            let host = Netlink::new()?;
            bridge::ensure_bridge(&host, &cfg)?;
            bridge::enable_ip_forward(host.netns())?;
            // The host-side name hashes container *and* network: one container on two
            // networks has two veth pairs.
            let key = format!("{}/{}", req.container, def.name);
            let mut ep = Endpoint::new(&cfg, &req.netns, Some(&key), ip);
            ep.container_ifname = format!("eth{taken}");
            ep.default_route = taken == 0;
            bridge::setup_endpoint(&host, &cfg, &ep)?;
            steps.endpoint = Some(ep.clone());
            check("endpoint")?;
            let record = EndpointRecord {
                network: def.name.clone(),
                container: req.container.clone(),
                netns: req.netns.clone(),
                interface: ep.container_ifname.clone(),
                host_interface: ep.host_ifname.clone(),
                ip,
                prefix: def.subnet.prefix_len(),
                gateway: def.gateway,
                mac: ep.mac.to_string(),
                names: req.names.clone(),
                ports: chosen_ports.clone(),
            };
            let dir = self.endpoints_dir(&def.name);
            std::fs::create_dir_all(&dir).map_err(io("mkdir", &dir))?;
            write_json(&ep_path, &record)?;
            steps.record = Some(ep_path.clone());
            check("record")?;
            self.sync_firewall()?;
            check("firewall")?;
            self.sync_dns(&def)?;
            check("dns")?;
            Ok(record)
        })();
        match result {
            Ok(r) => {
                steps.disarm();
                Ok(r)
            }
            Err(e) => Err(e),
        }
    }

    /// `requested` with every host port that was left open chosen: a free port (range)
    /// of the host's ephemeral range that no Coracle endpoint publishes (`published`
    /// holds them, plus the request's own) and that no socket of the host uses. The
    /// walk resumes after the last port chosen (remembered in the run directory), so
    /// a port just released is not handed out again at once. The chosen ports live
    /// in the endpoint record: disconnect releases them with it.
    fn choose_host_ports(
        &self,
        requested: &[PortMapping],
        published: &[PortMapping],
    ) -> Result<Vec<PortMapping>> {
        if requested.iter().all(PortMapping::host_port_chosen) {
            return Ok(requested.to_vec());
        }
        let range = self
            .cfg
            .host_port_range
            .unwrap_or_else(|| ports::ephemeral_range(Path::new("/proc/sys")));
        let hint_path = self.cfg.run_dir.join("next-host-port");
        let mut next = std::fs::read_to_string(&hint_path)
            .ok()
            .and_then(|t| t.trim().parse::<u16>().ok())
            .unwrap_or(range.0);
        let mut taken = published.to_vec();
        let mut out = Vec::with_capacity(requested.len());
        for m in requested {
            if m.host_port_chosen() {
                out.push(*m);
                continue;
            }
            let c = ports::pick_host_port(m, range, next, &taken, &mut ports::host_port_free)
                .ok_or(ManagerError::NoFreePort {
                    mapping: *m,
                    start: range.0,
                    end: range.1,
                })?;
            next = c.host_port_end.checked_add(1).unwrap_or(range.0);
            taken.push(c);
            out.push(c);
        }
        // Only a hint: losing it just restarts the walk at the range's start.
        let _ = std::fs::write(&hint_path, format!("{next}\n"));
        tracing::debug!(ports = ?out, "host ports chosen");
        Ok(out)
    }

    /// Disconnect a container from a network. Best-effort and idempotent: goes on
    /// past errors and reports all of them.
    pub fn disconnect(&self, network: &str, container: &str) -> Result<()> {
        self.disconnect_with(network, container, &|_| None)
    }

    /// [`disconnect`](Self::disconnect) for a container whose network namespace the caller
    /// removes next, with no process left in it: the veth pair is taken down and off the
    /// bridge but not deleted; the kernel deletes it with the namespace (see
    /// [`bridge::detach_endpoint`]). Everything else (address, rules, DNS) is as for
    /// `disconnect`.
    pub fn disconnect_before_netns_removal(&self, network: &str, container: &str) -> Result<()> {
        self.disconnect_inner(network, container, &|_| None, LinkTeardown::Detach)
    }

    /// [`disconnect`](Self::disconnect), telling `checkpoint` after each step (its
    /// answer is ignored: teardown is never cut short).
    pub fn disconnect_with(
        &self,
        network: &str,
        container: &str,
        checkpoint: Checkpoint,
    ) -> Result<()> {
        self.disconnect_inner(network, container, checkpoint, LinkTeardown::Delete)
    }

    fn disconnect_inner(
        &self,
        network: &str,
        container: &str,
        checkpoint: Checkpoint,
        link: LinkTeardown,
    ) -> Result<()> {
        let def = self.network(network)?;
        let path = self
            .endpoints_dir(network)
            .join(format!("{}.json", check_name("container id", container)?));
        let record: Option<EndpointRecord> = match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).ok(),
            Err(_) => None,
        };
        let mut errors = Vec::new();
        if let Some(r) = &record {
            match Netlink::new() {
                Ok(host) => {
                    let ep = Endpoint {
                        netns_path: r.netns.clone(),
                        container_ifname: r.interface.clone(),
                        host_ifname: r.host_interface.clone(),
                        ip: Ipv4Net::new(r.ip, r.prefix).unwrap_or_else(|_| Ipv4Net::from(r.ip)),
                        gateway: r.gateway,
                        mac: bridge::mac_for_ip(r.ip),
                        default_route: false,
                    };
                    let failed = match link {
                        LinkTeardown::Delete => bridge::teardown_endpoint(&host, &ep),
                        LinkTeardown::Detach => bridge::detach_endpoint(&host, &ep),
                    };
                    errors.extend(failed.iter().map(|e| e.to_string()));
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        let _ = checkpoint("endpoint-removed");
        if let Err(e) = self.ipam.release(network, container) {
            errors.push(e.to_string());
        }
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                errors.push(format!("remove {}: {e}", path.display()))
            }
            _ => {}
        }
        let _ = checkpoint("record-removed");
        if let Err(e) = self.sync_firewall() {
            errors.push(e.to_string());
        }
        let _ = checkpoint("firewall");
        if let Err(e) = self.sync_dns(&def) {
            errors.push(e.to_string());
        }
        several(errors)
    }

    /// Rebuild every firewall rule from the stored state (after `nft flush ruleset`
    /// or a firewalld reload).
    pub fn reload(&self) -> Result<()> {
        self.apply_firewall(true)
    }

    /// The firewall state all networks and endpoints call for.
    pub fn firewall_state(&self) -> Result<FirewallState> {
        let networks = self.networks()?;
        let mut state = FirewallState::default();
        for n in &networks {
            state.networks.push(firewall::Network {
                name: n.name.clone(),
                bridge: n.bridge.clone(),
                subnet: n.subnet,
                internal: n.internal,
                dns: (n.dns && self.cfg.dns_binary.is_some())
                    .then(|| std::net::SocketAddrV4::new(n.gateway, self.cfg.dns_port)),
            });
            for e in self.endpoints(&n.name)? {
                for m in &e.ports {
                    state.ports.push(PublishedPort {
                        container_ip: e.ip,
                        network: n.name.clone(),
                        mapping: *m,
                    });
                }
            }
        }
        Ok(state)
    }

    fn sync_firewall(&self) -> Result<()> {
        self.apply_firewall(false)
    }

    /// Apply the rules the stored state calls for. Unless `force`, nothing is done
    /// when they equal the last applied ones: a container without published ports
    /// changes no rule, and each `nft` run costs milliseconds. The record of what
    /// was applied lives in the run directory, which, like the rules themselves, does
    /// not survive a reboot. After `nft flush ruleset`, `reload` (force) restores them.
    fn apply_firewall(&self, force: bool) -> Result<()> {
        let applied_path = self.cfg.run_dir.join("firewall-applied.json");
        let fw = NftFirewall::new(firewall::nft::Nft::default(), &self.cfg.table)?;
        let state = self.firewall_state()?;
        if state.networks.is_empty() {
            // Nothing of ours left: remove the table and any accepts we added.
            let _ = std::fs::remove_file(&applied_path);
            return fw
                .teardown()
                .map_err(|e| ManagerError::Several(vec![e.to_string()]));
        }
        // Only bridges that exist can have per-bridge sysctls. Asked one by one: a dump of
        // every link costs milliseconds with hundreds of veths on the host.
        let host = Netlink::new()?;
        let mut live = state.clone();
        let mut present = Vec::new();
        for n in &live.networks {
            present.push(host.find_link(n.bridge.as_str())?.is_some());
        }
        let mut exists = present.into_iter();
        live.networks.retain(|_| exists.next().unwrap_or(false));
        live.ports
            .retain(|p| live.networks.iter().any(|n| n.name == p.network));
        let previous: Option<FirewallState> = std::fs::read(&applied_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        if !force && previous.as_ref() == Some(&live) {
            return Ok(());
        }
        firewall::write_sysctls(Path::new("/proc/sys"), &firewall::required_sysctls(&live))?;
        // Forget the old record first: if the apply fails, the next call retries.
        let _ = std::fs::remove_file(&applied_path);
        fw.apply(&live)?;
        write_json(&applied_path, &live)?;
        Ok(())
    }

    /// Write the network's DNS records (or remove them when no container is
    /// left) and make sure the responder runs while some network needs it.
    fn sync_dns(&self, def: &NetworkDef) -> Result<()> {
        if !def.dns {
            return Ok(());
        }
        let dir = self.dns_config_dir();
        let endpoints = self.endpoints(&def.name)?;
        if endpoints.is_empty() {
            dns::records::remove(&dir, &def.name)?;
            return Ok(());
        }
        let upstreams = std::fs::read_to_string("/etc/resolv.conf")
            .map(|t| dns::records::upstreams_from_resolv_conf(&t))
            .unwrap_or_default();
        let records = dns::records::NetworkRecords {
            network: def.name.clone(),
            listen: vec![IpAddr::V4(def.gateway)],
            internal: def.internal,
            upstreams,
            entries: endpoints
                .iter()
                .map(|e| dns::records::Entry {
                    names: e.names.clone(),
                    ips: vec![IpAddr::V4(e.ip)],
                })
                .collect(),
        };
        dns::records::write(&dir, &records)?;
        if let Some(bin) = &self.cfg.dns_binary {
            dns::ensure_running(
                bin,
                &dir,
                &self.cfg.run_dir.join("dns-run"),
                self.cfg.dns_port,
            )?;
        }
        Ok(())
    }
}

/// Rollback of a half-made connect, in reverse order; disarmed on success.
struct Undo<'a> {
    mgr: &'a Manager,
    network: String,
    container: String,
    endpoint: Option<Endpoint>,
    record: Option<PathBuf>,
    armed: bool,
}

impl<'a> Undo<'a> {
    fn new(mgr: &'a Manager, network: &str, container: &str) -> Undo<'a> {
        Undo {
            mgr,
            network: network.into(),
            container: container.into(),
            endpoint: None,
            record: None,
            armed: true,
        }
    }
    fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(path) = &self.record {
            let _ = std::fs::remove_file(path);
        }
        if let (Some(ep), Ok(host)) = (&self.endpoint, Netlink::new()) {
            for e in bridge::teardown_endpoint(&host, ep) {
                tracing::warn!("rollback: {e}");
            }
        }
        if let Err(e) = self.mgr.ipam.release(&self.network, &self.container) {
            tracing::warn!("rollback: {e}");
        }
        if self.record.is_some() {
            if let Err(e) = self.mgr.sync_firewall() {
                tracing::warn!("rollback: {e}");
            }
            // The DNS records may already name the container.
            if let Err(e) = self
                .mgr
                .network(&self.network)
                .and_then(|def| self.mgr.sync_dns(&def))
            {
                tracing::warn!("rollback: {e}");
            }
        }
    }
}

fn bridge_config(def: &NetworkDef) -> BridgeConfig {
    BridgeConfig {
        name: def.bridge.clone(),
        subnet: def.subnet,
        gateway: def.gateway,
        mtu: def.mtu,
    }
}

fn several(errors: Vec<String>) -> Result<()> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ManagerError::Several(errors))
    }
}

/// Names that become file names: letters, digits, `_ . -`, not starting with `.`.
fn check_name<'a>(what: &'static str, name: &'a str) -> Result<&'a str> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(name)
    } else {
        Err(ManagerError::Invalid {
            what,
            value: name.to_string(),
            reason: "use letters, digits, '_', '.', '-' (not starting with '.')".into(),
        })
    }
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(value).expect("serializes"))
        .map_err(io("write", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io("rename", path))
}

fn read_dir_json<T: for<'de> Deserialize<'de>>(dir: &Path) -> Result<Vec<T>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(io("readdir", dir)(e)),
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let path = e.path();
        if path.extension().is_some_and(|x| x == "json") {
            let bytes = std::fs::read(&path).map_err(io("read", &path))?;
            out.push(
                serde_json::from_slice(&bytes)
                    .map_err(|source| ManagerError::Corrupt { path, source })?,
            );
        }
    }
    Ok(out)
}

fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n.div_ceil(2)];
    if let Ok(mut f) = File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut bytes);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()[..n].to_string()
}
