//! A bridge network's host side, and one container endpoint on it, the way
//! Docker's default network looks: a bridge (`coracle0`) holding the gateway
//! address, and per container a veth pair whose host end (`veth` + 7 hex) is
//! enslaved to the bridge and whose other end is `eth0` in the container's
//! network namespace, with a MAC derived from its IP (02:42:…), the address, `lo`
//! up and a default route via the gateway.
//!
//! Setup validates everything before touching the kernel and rolls back what it
//! did on failure; teardown is best-effort and returns every error it met.
//!
//! Every function takes the [`Netlink`] handle of the "host" namespace, the one
//! the bridge lives in (the real host for the engine, a throwaway namespace in
//! tests), and acts only there and in the endpoint's namespace.

use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use ipnet::{IpNet, Ipv4Net};

use crate::netlink::{Link, MacAddr, Netlink, NetlinkError, VethPeer};

/// Longest interface name the kernel accepts (IFNAMSIZ - 1).
pub const MAX_IFNAME_LEN: usize = 15;

#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("bridge {bridge}: invalid configuration: {reason}")]
    InvalidBridge { bridge: String, reason: String },
    #[error("bridge {bridge}: a link of that name exists and is not a bridge (kind {kind})")]
    NotABridge { bridge: String, kind: String },
    #[error("bridge {bridge}: does not exist (ensure_bridge creates it)")]
    BridgeMissing { bridge: String },
    #[error("bridge {bridge}: {source}")]
    BridgeNetlink {
        bridge: String,
        source: NetlinkError,
    },
    #[error("endpoint {host_ifname}: invalid: {reason}")]
    InvalidEndpoint { host_ifname: String, reason: String },
    #[error("endpoint {host_ifname}: netns {}: {reason}", path.display())]
    Netns {
        host_ifname: String,
        path: PathBuf,
        reason: String,
    },
    #[error("endpoint {host_ifname}: {source}")]
    EndpointNetlink {
        host_ifname: String,
        source: NetlinkError,
    },
    /// Setup failed, and undoing what it had done failed too: both are reported.
    #[error("endpoint {host_ifname}: {error}; rollback failed too: {rollback}")]
    RollbackFailed {
        host_ifname: String,
        error: Box<BridgeError>,
        rollback: Box<BridgeError>,
    },
    #[error("sysctl {key}={value}: {source}")]
    Sysctl {
        key: String,
        value: String,
        source: std::io::Error,
    },
}

/// A bridge network's host side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeConfig {
    pub name: String,
    pub subnet: Ipv4Net,
    /// The bridge's own address, the containers' default gateway.
    pub gateway: Ipv4Addr,
    pub mtu: u32,
}

impl Default for BridgeConfig {
    /// Docker's default network, under Coracle's name.
    fn default() -> Self {
        BridgeConfig {
            name: "coracle0".into(),
            subnet: Ipv4Net::new(Ipv4Addr::new(172, 17, 0, 0), 16).expect("valid prefix"),
            gateway: Ipv4Addr::new(172, 17, 0, 1),
            mtu: 1500,
        }
    }
}

impl BridgeConfig {
    pub fn validate(&self) -> Result<(), BridgeError> {
        let bad = |reason: String| BridgeError::InvalidBridge {
            bridge: self.name.clone(),
            reason,
        };
        validate_ifname(&self.name).map_err(bad)?;
        if self.subnet.prefix_len() > 30 {
            return Err(bad(format!(
                "subnet {} has no room for a gateway and a container",
                self.subnet
            )));
        }
        if self.subnet.addr() != self.subnet.network() {
            return Err(bad(format!(
                "subnet {} is not a network address (did you mean {}?)",
                self.subnet,
                self.subnet.trunc()
            )));
        }
        if !is_host_address(&self.subnet, self.gateway) {
            return Err(bad(format!(
                "gateway {} is not a host address of subnet {}",
                self.gateway, self.subnet
            )));
        }
        if !(68..=65535).contains(&self.mtu) {
            return Err(bad(format!("mtu {} is outside 68..=65535", self.mtu)));
        }
        Ok(())
    }

    /// The gateway with the subnet's prefix length, as set on the bridge.
    pub fn gateway_net(&self) -> Ipv4Net {
        Ipv4Net::new(self.gateway, self.subnet.prefix_len()).expect("prefix from a valid net")
    }
}

/// `ip` is inside `subnet` and is neither its network nor its broadcast address.
fn is_host_address(subnet: &Ipv4Net, ip: Ipv4Addr) -> bool {
    subnet.contains(&ip) && ip != subnet.network() && ip != subnet.broadcast()
}

/// The kernel's rules for an interface name (dev_valid_name).
pub fn validate_ifname(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty interface name".into());
    }
    if name.len() > MAX_IFNAME_LEN {
        return Err(format!(
            "interface name {name:?} is {} bytes, longer than {MAX_IFNAME_LEN}",
            name.len()
        ));
    }
    if name == "."
        || name == ".."
        || name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        return Err(format!(
            "interface name {name:?} is not allowed by the kernel"
        ));
    }
    Ok(())
}

/// Docker's MAC for a container address: 02:42 (locally administered) followed
/// by the four bytes of the IPv4 address.
pub fn mac_for_ip(ip: Ipv4Addr) -> MacAddr {
    let [a, b, c, d] = ip.octets();
    MacAddr([0x02, 0x42, a, b, c, d])
}

/// The host end's name: `veth` and 7 hex digits, derived from the container id
/// (stable across restarts) or random.
pub fn host_ifname(container_id: Option<&str>) -> String {
    let bits = match container_id {
        // FNV-1a: stable across Rust versions, unlike std's hasher.
        Some(id) => id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        }),
        None => random_u64(),
    };
    format!("veth{:07x}", bits & 0x0fff_ffff)
}

fn random_u64() -> u64 {
    use std::io::Read;
    let mut b = [0u8; 8];
    if File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok()
    {
        return u64::from_ne_bytes(b);
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    t ^ (u64::from(std::process::id()) << 32)
}

/// One container's attachment to a bridge network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The container's network namespace (a pinned netns file, `/proc/<pid>/ns/net`).
    pub netns_path: PathBuf,
    /// Name inside the container, `eth0`.
    pub container_ifname: String,
    /// Name of the host end, `veth` + 7 hex.
    pub host_ifname: String,
    /// The container's address with the subnet's prefix length.
    pub ip: Ipv4Net,
    pub gateway: Ipv4Addr,
    pub mac: MacAddr,
    /// Add the default route via `gateway`. Only one network of a container can
    /// have it (Docker gives it to the first); a second interface gets none.
    pub default_route: bool,
}

impl Endpoint {
    /// The endpoint Docker would make for address `ip` on `cfg`: `eth0`, a host
    /// name from `container_id` (random if none), the MAC derived from `ip`.
    pub fn new(
        cfg: &BridgeConfig,
        netns_path: impl Into<PathBuf>,
        container_id: Option<&str>,
        ip: Ipv4Addr,
    ) -> Endpoint {
        Endpoint {
            netns_path: netns_path.into(),
            container_ifname: "eth0".into(),
            host_ifname: host_ifname(container_id),
            ip: Ipv4Net::new(ip, cfg.subnet.prefix_len()).expect("prefix from a valid net"),
            gateway: cfg.gateway,
            mac: mac_for_ip(ip),
            default_route: true,
        }
    }

    /// Everything that can be checked without changing anything. `host` is
    /// the namespace the bridge lives in, which the endpoint's must not be.
    pub fn validate(&self, cfg: &BridgeConfig, host: &Netlink) -> Result<(), BridgeError> {
        let bad = |reason: String| BridgeError::InvalidEndpoint {
            host_ifname: self.host_ifname.clone(),
            reason,
        };
        validate_ifname(&self.host_ifname).map_err(bad)?;
        validate_ifname(&self.container_ifname).map_err(bad)?;
        if self.host_ifname == cfg.name {
            return Err(bad(format!("host name {} is the bridge's", cfg.name)));
        }
        let ip = self.ip.addr();
        if !cfg.subnet.contains(&ip) {
            return Err(bad(format!(
                "address {ip} is outside subnet {}",
                cfg.subnet
            )));
        }
        if self.ip.prefix_len() != cfg.subnet.prefix_len() {
            return Err(bad(format!(
                "address {} has another prefix length than subnet {}",
                self.ip, cfg.subnet
            )));
        }
        if ip == cfg.subnet.network() || ip == cfg.subnet.broadcast() {
            return Err(bad(format!(
                "address {ip} is the network or broadcast address of {}",
                cfg.subnet
            )));
        }
        if ip == cfg.gateway {
            return Err(bad(format!("address {ip} is the gateway's")));
        }
        if self.gateway != cfg.gateway {
            return Err(bad(format!(
                "gateway {} is not the bridge's ({})",
                self.gateway, cfg.gateway
            )));
        }
        self.check_netns(host)?;
        Ok(())
    }

    fn netns_err(&self, reason: String) -> BridgeError {
        BridgeError::Netns {
            host_ifname: self.host_ifname.clone(),
            path: self.netns_path.clone(),
            reason,
        }
    }

    fn check_netns(&self, host: &Netlink) -> Result<(), BridgeError> {
        let meta =
            std::fs::metadata(&self.netns_path).map_err(|e| self.netns_err(e.to_string()))?;
        if !crate::netns::is_netns(&self.netns_path) {
            return Err(self.netns_err("is not a namespace file (nsfs)".into()));
        }
        let host_meta = File::from(
            host.netns()
                .try_clone_to_owned()
                .map_err(|e| self.netns_err(format!("dup host netns: {e}")))?,
        )
        .metadata()
        .map_err(|e| self.netns_err(format!("stat host netns: {e}")))?;
        if (meta.dev(), meta.ino()) == (host_meta.dev(), host_meta.ino()) {
            return Err(self.netns_err("is the host's own network namespace".into()));
        }
        Ok(())
    }

    fn netlink_err(&self) -> impl Fn(NetlinkError) -> BridgeError + '_ {
        move |source| BridgeError::EndpointNetlink {
            host_ifname: self.host_ifname.clone(),
            source,
        }
    }
}

/// Create the bridge if it is missing, give it the gateway address, bring it up,
/// and enable IPv4 forwarding in its namespace. Idempotent.
pub fn ensure_bridge(host: &Netlink, cfg: &BridgeConfig) -> Result<Link, BridgeError> {
    cfg.validate()?;
    let err = |source| BridgeError::BridgeNetlink {
        bridge: cfg.name.clone(),
        source,
    };
    let link = match host.find_link(&cfg.name).map_err(err)? {
        Some(link) => link,
        None => {
            match host.create_bridge(&cfg.name, Some(cfg.mtu), None) {
                // Another process created it between our look and our create.
                Err(e) if e.is_exists() => {}
                r => r.map_err(err)?,
            }
            host.link(&cfg.name).map_err(err)?
        }
    };
    if link.kind.as_deref() != Some("bridge") {
        return Err(BridgeError::NotABridge {
            bridge: cfg.name.clone(),
            kind: link.kind.unwrap_or_else(|| "none".into()),
        });
    }
    let want = IpNet::V4(cfg.gateway_net());
    let present = host.addresses(Some(link.index.into())).map_err(err)?;
    if !present.iter().any(|a| a.net == want) {
        match host.add_address(link.index, want) {
            Err(e) if e.is_exists() => {}
            r => r.map_err(err)?,
        }
    }
    if !link.up {
        host.set_up(link.index).map_err(err)?;
    }
    enable_ip_forward(host.netns())?;
    Ok(link)
}

/// Attach a container: a veth pair whose peer is created as `eth0` (with its MAC)
/// directly in the container's namespace, the host end enslaved to the bridge
/// and up; inside, the address, `eth0` and `lo` up, the default route.
///
/// Validates everything first; on a later failure deletes the host end (which
/// removes the pair and everything configured on the peer) and reports both
/// errors if that fails too.
pub fn setup_endpoint(
    host: &Netlink,
    cfg: &BridgeConfig,
    ep: &Endpoint,
) -> Result<(), BridgeError> {
    cfg.validate()?;
    ep.validate(cfg, host)?;
    let bridge = match host.find_link(&cfg.name) {
        Ok(Some(l)) if l.kind.as_deref() == Some("bridge") => l,
        Ok(Some(l)) => {
            return Err(BridgeError::NotABridge {
                bridge: cfg.name.clone(),
                kind: l.kind.unwrap_or_else(|| "none".into()),
            })
        }
        Ok(None) => {
            return Err(BridgeError::BridgeMissing {
                bridge: cfg.name.clone(),
            })
        }
        Err(source) => {
            return Err(BridgeError::BridgeNetlink {
                bridge: cfg.name.clone(),
                source,
            })
        }
    };
    let ns = File::open(&ep.netns_path).map_err(|e| ep.netns_err(e.to_string()))?;

    let peer = VethPeer {
        name: &ep.container_ifname,
        netns: Some(ns.as_fd()),
        mac: Some(ep.mac),
    };
    // Nothing exists yet if this fails. An EEXIST is someone else's link, to be kept,
    // unless it is this endpoint's own pair left by `detach_endpoint` (a veth that is down
    // and on no bridge) whose namespace the kernel has not finished destroying: a quick
    // `restart` of the container comes here first. That one is deleted, once.
    match host.create_veth(&ep.host_ifname, Some(cfg.mtu), &peer) {
        Ok(()) => {}
        Err(e) if e.is_exists() && remove_detached_leftover(host, &ep.host_ifname) => {
            host.create_veth(&ep.host_ifname, Some(cfg.mtu), &peer)
                .map_err(ep.netlink_err())?;
        }
        Err(e) => return Err(ep.netlink_err()(e)),
    }

    let configured = configure(host, ns.as_fd(), bridge.index, ep).map_err(ep.netlink_err());
    let Err(error) = configured else {
        return Ok(());
    };
    match host.delete_link(&ep.host_ifname) {
        Ok(()) => Err(error),
        Err(e) if e.is_not_found() => Err(error),
        Err(e) => Err(BridgeError::RollbackFailed {
            host_ifname: ep.host_ifname.clone(),
            error: Box::new(error),
            rollback: Box::new(ep.netlink_err()(e)),
        }),
    }
}

/// Deletes the link `name` if it is a detached veth (down, on no bridge), the state
/// [`detach_endpoint`] leaves; true if it was deleted (or is gone already).
fn remove_detached_leftover(host: &Netlink, name: &str) -> bool {
    match host.find_link(name) {
        Ok(Some(l)) if l.kind.as_deref() == Some("veth") && !l.up && l.master.is_none() => {
            match host.delete_link(l.index) {
                Ok(()) => true,
                Err(e) => e.is_not_found(),
            }
        }
        Ok(None) => true,
        _ => false,
    }
}

/// The steps after the pair exists; any error means: roll back.
fn configure(
    host: &Netlink,
    ns: BorrowedFd<'_>,
    bridge: u32,
    ep: &Endpoint,
) -> Result<(), NetlinkError> {
    host.set_master(&ep.host_ifname, bridge)?;
    // After enslaving: hairpin is a bridge-port setting (see Netlink::set_hairpin).
    host.set_hairpin(&ep.host_ifname, true)?;
    host.set_up(&ep.host_ifname)?;
    let c = Netlink::in_netns_fd(ns, &ep.netns_path)?;
    c.add_address(&ep.container_ifname, IpNet::V4(ep.ip))?;
    c.set_up(&ep.container_ifname)?;
    c.set_lo_up()?;
    if ep.default_route {
        c.add_default_route(ep.gateway.into())?;
    }
    Ok(())
}

/// Take the host end down and off its bridge, leaving the pair for the kernel to delete
/// with the container's network namespace. For a namespace that is about to be destroyed:
/// deleting a link waits for an RCU barrier inside the netlink call (13 to 18 ms measured
/// per `run --rm`), while the kernel's namespace clean-up does the same work in a worker,
/// off the caller's path. Should something still hold the namespace, what is left is a
/// link that is down and on no bridge: it carries no traffic, so its address can be reused.
/// Best-effort: a host end that is already gone is fine. Returns every error met.
pub fn detach_endpoint(host: &Netlink, ep: &Endpoint) -> Vec<BridgeError> {
    let mut errors = Vec::new();
    // Down first, so nothing is forwarded to it while it leaves the bridge.
    let name = ep.host_ifname.as_str();
    for result in [host.set_down(name), host.set_nomaster(name)] {
        match result {
            Ok(()) => {}
            Err(e) if e.is_not_found() => return errors,
            Err(e) => errors.push(ep.netlink_err()(e)),
        }
    }
    errors
}

/// Detach a container. Best-effort: deleting the host end removes the pair (a
/// veth never outlives its peer), with the address and routes on `eth0`; a
/// host end that is already gone is fine. Returns every error met.
pub fn teardown_endpoint(host: &Netlink, ep: &Endpoint) -> Vec<BridgeError> {
    let mut errors = Vec::new();
    match host.delete_link(&ep.host_ifname) {
        Ok(()) => {}
        Err(e) if e.is_not_found() => {}
        Err(e) => errors.push(ep.netlink_err()(e)),
    }
    errors
}

/// Delete the bridge (its ports are released, not deleted). Best-effort and
/// idempotent; a link of that name that is not a bridge is left alone and
/// reported. IPv4 forwarding is left on: other networks may need it.
pub fn remove_bridge(host: &Netlink, cfg: &BridgeConfig) -> Vec<BridgeError> {
    let err = |source| BridgeError::BridgeNetlink {
        bridge: cfg.name.clone(),
        source,
    };
    let mut errors = Vec::new();
    match host.find_link(&cfg.name) {
        Ok(None) => {}
        Ok(Some(l)) if l.kind.as_deref() != Some("bridge") => {
            errors.push(BridgeError::NotABridge {
                bridge: cfg.name.clone(),
                kind: l.kind.unwrap_or_else(|| "none".into()),
            })
        }
        Ok(Some(l)) => match host.delete_link(l.index) {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => errors.push(err(e)),
        },
        Err(e) => errors.push(err(e)),
    }
    errors
}

/// `net.ipv4.ip_forward=1` in the namespace `ns`, so the host routes (and
/// masquerades) containers' traffic beyond the bridge.
pub fn enable_ip_forward(ns: BorrowedFd<'_>) -> Result<(), BridgeError> {
    write_net_sysctl(ns, "ipv4/ip_forward", "1")
}

/// Write `/proc/sys/net/<key>` as seen from inside the network namespace `ns`.
///
/// Files under /proc/sys/net belong to the network namespace of the task that
/// opens them, not to the /proc mount, so the write is done by a short-lived
/// thread that first joins `ns` (setns with CLONE_NEWNET moves only that
/// thread) and then ends: no thread of the caller ever changes namespace. The
/// value is only written when it differs, to spare a needless write.
fn write_net_sysctl(ns: BorrowedFd<'_>, key: &str, value: &str) -> Result<(), BridgeError> {
    let path = Path::new("/proc/sys/net").join(key);
    let err = |source| BridgeError::Sysctl {
        key: format!("net.{}", key.replace('/', ".")),
        value: value.into(),
        source,
    };
    std::thread::scope(|s| {
        s.spawn(|| -> std::io::Result<()> {
            nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(std::io::Error::from)?;
            if std::fs::read_to_string(&path)?.trim() == value {
                return Ok(());
            }
            std::fs::write(&path, value)
        })
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("sysctl thread panicked")))
    })
    .map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_is_dockers() {
        assert_eq!(
            mac_for_ip(Ipv4Addr::new(172, 17, 0, 2)).to_string(),
            "02:42:ac:11:00:02"
        );
    }

    #[test]
    fn host_ifname_is_veth_and_7_hex_stable_per_id() {
        let a = host_ifname(Some("4f1c2d"));
        assert_eq!(a.len(), 11);
        assert!(a.starts_with("veth"));
        assert!(a[4..].chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(a, host_ifname(Some("4f1c2d")));
        assert_ne!(a, host_ifname(Some("4f1c2e")));
        assert_eq!(host_ifname(None).len(), 11);
    }

    #[test]
    fn bridge_config_validation() {
        assert!(BridgeConfig::default().validate().is_ok());
        let with = |f: &dyn Fn(&mut BridgeConfig)| {
            let mut c = BridgeConfig::default();
            f(&mut c);
            c.validate().unwrap_err().to_string()
        };
        assert!(with(&|c| c.name = "a-very-long-bridge".into()).contains("longer than 15"));
        assert!(with(&|c| c.gateway = Ipv4Addr::new(10, 0, 0, 1)).contains("not a host address"));
        assert!(with(&|c| c.gateway = Ipv4Addr::new(172, 17, 0, 0)).contains("not a host address"));
        assert!(with(&|c| c.subnet = "172.17.0.5/16".parse().unwrap()).contains("172.17.0.0/16"));
        assert!(with(&|c| c.mtu = 20).contains("mtu"));
        assert!(with(&|c| c.name = "bad name".into()).contains("not allowed"));
    }

    #[test]
    fn ifname_rules() {
        assert!(validate_ifname("eth0").is_ok());
        assert!(validate_ifname("veth1234567").is_ok());
        assert!(validate_ifname("").is_err());
        assert!(validate_ifname("a/b").is_err());
        assert!(validate_ifname("1234567890123456").is_err());
    }
}
