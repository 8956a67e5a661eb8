//! The firewall of bridge networks: one nftables table owned by Coracle.
//!
//! - [`rules`] builds, from a [`FirewallState`] (the networks and the published
//!   ports), the whole table as an nft script. It is pure and unit-tested.
//! - [`nft`] applies it with the `nft` binary as one atomic batch, reads it back,
//!   and tears it down.
//!
//! # The table
//!
//! Everything lives in `table inet coracle` ([`DEFAULT_TABLE`]; tests use their own
//! name). Every change replaces the whole table in one `nft -f -` transaction
//! (`add table; delete table; table … { … }`), so a failed batch changes nothing and
//! the table always matches the state it was built from. `reload` is the same
//! operation: after a `nft flush ruleset` or a firewalld reload, applying the stored
//! state again restores every rule.
//!
//! Chains (names are fixed; rules carry a comment naming their network):
//!
//! | chain | hook, priority | what |
//! |---|---|---|
//! | `guard` | prerouting, raw (-300) | drops packets from a Coracle bridge to or from 127.0.0.0/8 (route_localnet must not expose the host's loopback services to containers) |
//! | `prerouting` | nat prerouting, dstnat | IPv4 to a local address → `published` (other hosts, and containers using the host's address) |
//! | `output` | nat output, -100 (dstnat) | the same for connections made by the host itself (including 127.0.0.1) |
//! | `published` | regular | one DNAT rule per published port (range) |
//! | `postrouting` | nat postrouting, srcnat | masquerade: loopback-originated DNAT, hairpin, and each non-internal subnet leaving its bridge |
//! | `input` | filter input, filter - 10 | from an internal network's bridge to the host itself: only replies to connections the host made and DNS to Coracle's responder on the gateway pass; the rest is dropped (the host's addresses are a way out too) |
//! | `forward` | filter forward, filter - 10 | marks Coracle's traffic with [`FORWARD_MARK`]; drops what leaves or enters an internal network, traffic between different Coracle bridges, and new connections into a bridge that were not DNATed (container addresses are reachable from outside only through published ports) |
//!
//! Behaviour worth knowing:
//!
//! - A client on another host keeps its source address; a container of the same
//!   network reaching a published port through the host's address (hairpin), a
//!   container of another network, and a connection from 127.0.0.1 are masqueraded
//!   (the container sees the gateway address).
//! - With `br_netfilter`, a container reaching its *own* published port is DNATed
//!   while bridged and goes back out of the port it came from: the bridge port needs
//!   hairpin mode (`bridge_slave hairpin on`), which the bridge code must set.
//! - Ports published on 127.0.0.1 (or on every address) need
//!   `net.ipv4.conf.<bridge>.route_localnet=1` ([`required_sysctls`]); the `guard`
//!   chain keeps containers from using it to reach the host's loopback services.
//! - Published ports are IPv4 only (an IPv6 host address is refused).
//!
//! # Coexisting with a forward policy of drop
//!
//! In nftables a drop in any base chain is final, so an accept in Coracle's own table
//! cannot help traffic that another table's forward chain drops. Two cases:
//!
//! - **iptables(-nft)'s `ip filter FORWARD` with policy drop** (Docker leaves it so):
//!   when that chain exists with policy drop at apply time, Coracle inserts at its top
//!   `iifname { <bridges> } accept` and `oifname { <bridges> } accept`, commented
//!   `coracle:<table>`. Coracle's own `forward` chain runs first (priority -10) and has
//!   already dropped what must not pass, so these accepts let through exactly what
//!   Coracle allows. They are replaced in the same batch on every apply and removed on
//!   teardown. If Docker (or anything) sets the policy to drop *after* Coracle applied
//!   its rules, run the reload.
//! - **Any other table with a forward chain that drops** (a host firewall): Coracle
//!   does not edit other tables. Every packet forwarded from or to a Coracle bridge
//!   gets the bit [`FORWARD_MARK`] (`0x20000000`) ORed into its meta mark by Coracle's
//!   `forward` chain, at priority `filter - 10`. Accept it in your chain, which must
//!   have a priority above -10 (the usual `filter`, 0, is):
//!   `meta mark & 0x20000000 == 0x20000000 accept`.

pub mod nft;
pub mod rules;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use self::nft::{Nft, NftFirewall};
pub use self::rules::required_sysctls;
pub use crate::ports::{PortMapping, Protocol};
pub use crate::subnet::Ipv4Net;

/// The table Coracle owns, in the `inet` family.
pub const DEFAULT_TABLE: &str = "coracle";

/// The bit Coracle ORs into the meta mark of every packet it forwards from or to
/// one of its bridges, so other rulesets can accept them (see the module docs).
pub const FORWARD_MARK: u32 = 0x2000_0000;

/// The priority of Coracle's `forward` chain: before the usual `filter` (0).
pub const FORWARD_PRIORITY: i32 = -10;

/// The comment on the rules Coracle adds to chains it does not own.
pub fn foreign_rule_comment(table: &str) -> String {
    format!("coracle:{table}")
}

/// One bridge network as the firewall sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub name: String,
    /// The bridge device on the host.
    pub bridge: String,
    pub subnet: Ipv4Net,
    /// No masquerade and no way out of the bridge, not even to the host.
    pub internal: bool,
    /// Where Coracle's DNS responder answers this network (the gateway and its
    /// port): the one host service an internal network may reach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<SocketAddrV4>,
}

/// A port (range) of a container published on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedPort {
    pub container_ip: Ipv4Addr,
    /// The name of the [`Network`] the container address belongs to.
    pub network: String,
    /// Its host port must be chosen ([`PortMapping::host_port_chosen`]).
    pub mapping: PortMapping,
}

/// Everything the firewall is built from: the state the engine stores, and passes
/// again to rebuild the rules after a reload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirewallState {
    pub networks: Vec<Network>,
    pub ports: Vec<PublishedPort>,
}

/// A sysctl the rules need, by its dotted name (`net.ipv4.ip_forward`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sysctl {
    pub key: String,
    pub value: String,
}

impl Sysctl {
    /// The file under a `/proc/sys`-like root.
    pub fn path(&self, proc_sys: &Path) -> std::path::PathBuf {
        proc_sys.join(self.key.replace('.', "/"))
    }
}

/// Writes each sysctl under `proc_sys` (`/proc/sys` on a host; network sysctls are
/// those of the writer's network namespace). A bridge must exist before its
/// `net.ipv4.conf.<bridge>.*` entries do.
pub fn write_sysctls(proc_sys: &Path, sysctls: &[Sysctl]) -> Result<(), FirewallError> {
    for s in sysctls {
        let path = s.path(proc_sys);
        tracing::debug!(key = %s.key, value = %s.value, "writing sysctl");
        std::fs::write(&path, format!("{}\n", s.value)).map_err(|source| {
            FirewallError::Sysctl {
                key: s.key.clone(),
                path: path.clone(),
                source,
            }
        })?;
    }
    Ok(())
}

/// What a firewall backend does; [`NftFirewall`] is the nftables one.
pub trait FirewallDriver {
    /// Replaces every rule with those built from `state`, atomically.
    fn apply(&self, state: &FirewallState) -> Result<(), FirewallError>;
    /// Rebuilds the rules after they were lost (a flush, a firewalld reload).
    fn reload(&self, state: &FirewallState) -> Result<(), FirewallError> {
        self.apply(state)
    }
    /// Removes everything the driver added; goes on past errors and returns all.
    fn teardown(&self) -> Result<(), TeardownError>;
}

#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    /// A table, network or bridge name that cannot be used in a rule.
    #[error("invalid {what} name {name:?}: {reason}")]
    InvalidName {
        what: &'static str,
        name: String,
        reason: String,
    },
    /// Two networks with one name or one bridge.
    #[error("network {network}: {reason}")]
    DuplicateNetwork { network: String, reason: String },
    /// A published port that cannot be turned into rules.
    #[error("published port {mapping} of {container_ip} on network {network}: {reason}")]
    InvalidPort {
        mapping: PortMapping,
        container_ip: Ipv4Addr,
        network: String,
        reason: String,
    },
    /// Two published ports claim one host port.
    #[error(transparent)]
    PortConflict(#[from] crate::ports::PortError),
    /// `nft` could not be started.
    #[error("cannot run {program:?} ({doing}): {source}")]
    NftSpawn {
        program: String,
        doing: String,
        source: std::io::Error,
    },
    /// `nft` failed; `line` is the script line it complained about, if it named one.
    #[error(
        "nft failed ({doing}, {status}): {stderr}{}",
        line.as_ref().map(|(n, l)| format!(" [script line {n}: {l}]")).unwrap_or_default()
    )]
    Nft {
        doing: String,
        status: String,
        stderr: String,
        line: Option<(usize, String)>,
    },
    /// `nft -j` printed something that is not the JSON expected.
    #[error("cannot read nft's JSON output ({doing}): {reason}")]
    NftOutput { doing: String, reason: String },
    #[error("cannot set sysctl {key} ({path}): {source}")]
    Sysctl {
        key: String,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// Every error of a best-effort teardown, in order.
#[derive(Debug, thiserror::Error)]
#[error("firewall teardown of table {table}: {}", errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
pub struct TeardownError {
    pub table: String,
    pub errors: Vec<FirewallError>,
}
