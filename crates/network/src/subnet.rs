//! IPv4 subnets of bridge networks: parsing with clear errors, the gateway, the
//! addresses a container may get, overlap checks and the automatic pool that picks
//! a subnet for a new network the way Docker's default address pools do.
//!
//! Everything here is pure: nothing reads the host. The caller gathers the host's
//! routes (with [`crate::netlink`]) and the subnets of existing networks and passes
//! them in.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

pub use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

/// The longest prefix a bridge network may have: a /30 leaves the network address,
/// the gateway, one container and the broadcast address.
pub const MAX_BRIDGE_PREFIX: u8 = 30;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubnetError {
    /// The text is not `a.b.c.d/len`, or the length is out of range.
    #[error("invalid subnet {input:?}: {reason}")]
    Parse { input: String, reason: String },
    /// Host bits are set: `10.0.0.1/24` was given where `10.0.0.0/24` was meant.
    #[error("invalid subnet {input:?}: host bits are set (the network is {network})")]
    HostBitsSet { input: String, network: IpNet },
    /// The subnet is too small to hold a gateway and at least one container.
    #[error(
        "subnet {subnet} is too small for a bridge network: prefix length {} > {MAX_BRIDGE_PREFIX}",
        subnet.prefix_len()
    )]
    TooSmall { subnet: Ipv4Net },
    /// The gateway is outside the subnet, or is its network or broadcast address.
    #[error("gateway {gateway} is not a host address of subnet {subnet}")]
    BadGateway { subnet: Ipv4Net, gateway: Ipv4Addr },
    /// Every candidate of every pool overlaps an existing network or a host route.
    #[error(
        "no free subnet left in the address pools ({pools}): every candidate overlaps an \
         existing network or a host route; give a subnet explicitly"
    )]
    PoolsExhausted { pools: String },
}

/// Parses `a.b.c.d/len` into a network, refusing a length over 32 and host bits
/// that are set, with a message naming the input and what is wrong with it.
pub fn parse_subnet(input: &str) -> Result<Ipv4Net, SubnetError> {
    let (addr, len) = split_subnet(input, "a.b.c.d/len")?;
    let addr: Ipv4Addr = addr
        .parse()
        .map_err(|_| parse_err(input, format!("{addr:?} is not an IPv4 address")))?;
    let len = parse_prefix_len(input, len, 32)?;
    let net = Ipv4Net::new(addr, len).map_err(|e| parse_err(input, e.to_string()))?;
    if net.trunc() != net {
        return Err(SubnetError::HostBitsSet {
            input: input.to_string(),
            network: net.trunc().into(),
        });
    }
    Ok(net)
}

/// Parses an IPv4 (see [`parse_subnet`]) or IPv6 (`fd00:1::/64`, length at most
/// 128) subnet with the same checks and messages. IPv6 networks are not
/// allocated from yet; this validates `--subnet` and feeds [`overlaps_ip`].
pub fn parse_ip_subnet(input: &str) -> Result<IpNet, SubnetError> {
    if !input.contains(':') {
        return parse_subnet(input).map(IpNet::V4);
    }
    let (addr, len) = split_subnet(input, "an IPv6 address/len")?;
    let addr: Ipv6Addr = addr
        .parse()
        .map_err(|_| parse_err(input, format!("{addr:?} is not an IPv6 address")))?;
    let len = parse_prefix_len(input, len, 128)?;
    let net = Ipv6Net::new(addr, len).map_err(|e| parse_err(input, e.to_string()))?;
    if net.trunc() != net {
        return Err(SubnetError::HostBitsSet {
            input: input.to_string(),
            network: net.trunc().into(),
        });
    }
    Ok(IpNet::V6(net))
}

fn parse_err(input: &str, reason: String) -> SubnetError {
    SubnetError::Parse {
        input: input.to_string(),
        reason,
    }
}

fn split_subnet<'a>(input: &'a str, expected: &str) -> Result<(&'a str, &'a str), SubnetError> {
    input.trim().split_once('/').ok_or_else(|| {
        parse_err(
            input,
            format!("missing prefix length (expected {expected})"),
        )
    })
}

fn parse_prefix_len(input: &str, len: &str, max: u8) -> Result<u8, SubnetError> {
    if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) {
        return Err(parse_err(
            input,
            format!("prefix length {len:?} is not a number"),
        ));
    }
    match len.parse::<u8>() {
        Ok(n) if n <= max => Ok(n),
        // Only digits, so a failed parse means a number too large for u8.
        _ => Err(parse_err(input, format!("prefix length {len} > {max}"))),
    }
}

/// Whether two networks share at least one address.
pub fn overlaps(a: Ipv4Net, b: Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Whether two networks of either family share an address (networks of
/// different families never do).
pub fn overlaps_ip(a: IpNet, b: IpNet) -> bool {
    match (a, b) {
        (IpNet::V4(a), IpNet::V4(b)) => overlaps(a, b),
        (IpNet::V6(a), IpNet::V6(b)) => a.contains(&b.network()) || b.contains(&a.network()),
        _ => false,
    }
}

/// The default gateway of a subnet: its first host address (`172.17.0.1` for
/// `172.17.0.0/16`).
pub fn default_gateway(net: Ipv4Net) -> Result<Ipv4Addr, SubnetError> {
    check_bridge_prefix(net)?;
    Ok(from_u32(to_u32(net.network()) + 1))
}

fn check_bridge_prefix(net: Ipv4Net) -> Result<(), SubnetError> {
    if net.prefix_len() > MAX_BRIDGE_PREFIX {
        return Err(SubnetError::TooSmall { subnet: net });
    }
    Ok(())
}

fn to_u32(a: Ipv4Addr) -> u32 {
    u32::from(a)
}

fn from_u32(a: u32) -> Ipv4Addr {
    Ipv4Addr::from(a)
}

/// Why an address of a subnet cannot be given to a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserved {
    Network,
    Gateway,
    Broadcast,
}

impl fmt::Display for Reserved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reserved::Network => "the network address",
            Reserved::Gateway => "the gateway",
            Reserved::Broadcast => "the broadcast address",
        })
    }
}

/// The subnet of a bridge network together with its gateway (the bridge's own
/// address). Always valid: prefix at most [`MAX_BRIDGE_PREFIX`], no host bits set,
/// gateway a host address inside the subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "SubnetRepr", into = "SubnetRepr")]
pub struct Subnet {
    net: Ipv4Net,
    gateway: Ipv4Addr,
}

#[derive(Serialize, Deserialize)]
struct SubnetRepr {
    subnet: Ipv4Net,
    gateway: Ipv4Addr,
}

impl TryFrom<SubnetRepr> for Subnet {
    type Error = SubnetError;
    fn try_from(r: SubnetRepr) -> Result<Self, Self::Error> {
        Subnet::with_gateway(r.subnet, r.gateway)
    }
}

impl From<Subnet> for SubnetRepr {
    fn from(s: Subnet) -> Self {
        SubnetRepr {
            subnet: s.net,
            gateway: s.gateway,
        }
    }
}

impl Subnet {
    /// A subnet with the default gateway (its first host address).
    pub fn new(net: Ipv4Net) -> Result<Self, SubnetError> {
        if net.trunc() != net {
            return Err(SubnetError::HostBitsSet {
                input: net.to_string(),
                network: net.trunc().into(),
            });
        }
        let gateway = default_gateway(net)?;
        Ok(Subnet { net, gateway })
    }

    /// A subnet with an explicit gateway (`--gateway`), which must be a host
    /// address of the subnet.
    pub fn with_gateway(net: Ipv4Net, gateway: Ipv4Addr) -> Result<Self, SubnetError> {
        let mut s = Subnet::new(net)?;
        if !net.contains(&gateway) || gateway == net.network() || gateway == net.broadcast() {
            return Err(SubnetError::BadGateway {
                subnet: net,
                gateway,
            });
        }
        s.gateway = gateway;
        Ok(s)
    }

    /// Parses `a.b.c.d/len` (see [`parse_subnet`]) with the default gateway.
    pub fn parse(input: &str) -> Result<Self, SubnetError> {
        Subnet::new(parse_subnet(input)?)
    }

    pub fn net(&self) -> Ipv4Net {
        self.net
    }

    pub fn gateway(&self) -> Ipv4Addr {
        self.gateway
    }

    /// The gateway with the subnet's prefix length, as the bridge carries it
    /// (`172.17.0.1/16`).
    pub fn gateway_with_prefix(&self) -> Ipv4Net {
        // The prefix comes from a valid network, so this cannot fail.
        Ipv4Net::new(self.gateway, self.net.prefix_len()).unwrap_or(self.net)
    }

    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        self.net.contains(&addr)
    }

    /// Why `addr` may not be given to a container, if it is reserved.
    pub fn reserved(&self, addr: Ipv4Addr) -> Option<Reserved> {
        if addr == self.net.network() {
            Some(Reserved::Network)
        } else if addr == self.gateway {
            Some(Reserved::Gateway)
        } else if addr == self.net.broadcast() {
            Some(Reserved::Broadcast)
        } else {
            None
        }
    }

    /// Whether `addr` is inside the subnet and not reserved.
    pub fn is_assignable(&self, addr: Ipv4Addr) -> bool {
        self.contains(addr) && self.reserved(addr).is_none()
    }

    /// The first and last host addresses (network and broadcast excluded; the
    /// gateway may lie anywhere between them and is skipped by [`Subnet::hosts`]).
    pub fn host_bounds(&self) -> (Ipv4Addr, Ipv4Addr) {
        (
            from_u32(to_u32(self.net.network()) + 1),
            from_u32(to_u32(self.net.broadcast()) - 1),
        )
    }

    /// How many addresses containers can get: hosts minus the gateway.
    pub fn assignable_count(&self) -> u32 {
        let (first, last) = self.host_bounds();
        to_u32(last) - to_u32(first) // + 1 host, - 1 gateway
    }

    /// The addresses containers can get, in order: network, gateway and broadcast
    /// skipped.
    pub fn hosts(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        let (first, last) = self.host_bounds();
        (to_u32(first)..=to_u32(last))
            .map(from_u32)
            .filter(move |a| *a != self.gateway)
    }

    /// The assignable address that follows `addr` in the subnet, wrapping from
    /// the last host back to the first.
    pub fn next_host(&self, addr: Ipv4Addr) -> Ipv4Addr {
        let (first, last) = self.host_bounds();
        let (first, last) = (to_u32(first), to_u32(last));
        let mut a = to_u32(addr);
        loop {
            a = if a < first || a >= last { first } else { a + 1 };
            if from_u32(a) != self.gateway {
                return from_u32(a);
            }
        }
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (gateway {})", self.net, self.gateway)
    }
}

impl FromStr for Subnet {
    type Err = SubnetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Subnet::parse(s)
    }
}

/// A range of addresses cut into subnets of one size, like an entry of Docker's
/// `default-address-pools` (`{"base": "172.18.0.0/15", "size": 16}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressPool {
    pub base: Ipv4Net,
    pub size: u8,
}

impl AddressPool {
    /// The candidate subnets of this pool, in address order. Empty when `size`
    /// is shorter than the base's prefix or longer than 32.
    pub fn candidates(&self) -> impl Iterator<Item = Ipv4Net> {
        self.base.subnets(self.size).into_iter().flatten()
    }
}

impl fmt::Display for AddressPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} by /{}", self.base, self.size)
    }
}

/// Docker's default pools: 172.17.0.0/16 (the default bridge), then
/// 172.18.0.0/16 … 172.31.0.0/16, then 192.168.0.0/20, 192.168.16.0/20 …
/// 192.168.240.0/20.
pub fn default_pools() -> Vec<AddressPool> {
    let pool = |a, b, len, size| AddressPool {
        base: Ipv4Net::new(Ipv4Addr::new(a, b, 0, 0), len).expect("valid prefix"),
        size,
    };
    vec![
        pool(172, 17, 16, 16),
        pool(172, 18, 15, 16),
        pool(172, 20, 14, 16),
        pool(172, 24, 13, 16),
        pool(192, 168, 16, 20),
    ]
}

/// The first subnet of `pools` that overlaps neither an existing network nor a
/// host route. Default routes (`0.0.0.0/0`) are ignored: they overlap everything
/// and say nothing about which addresses are in use on the host's links.
pub fn pick_from_pools(
    pools: &[AddressPool],
    existing: &[Ipv4Net],
    host_routes: &[Ipv4Net],
) -> Result<Ipv4Net, SubnetError> {
    let taken = existing
        .iter()
        .chain(host_routes.iter().filter(|r| r.prefix_len() > 0));
    let taken: Vec<Ipv4Net> = taken.copied().collect();
    pools
        .iter()
        .flat_map(AddressPool::candidates)
        .find(|c| c.prefix_len() <= MAX_BRIDGE_PREFIX && !taken.iter().any(|t| overlaps(*c, *t)))
        .ok_or_else(|| SubnetError::PoolsExhausted {
            pools: pools
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        parse_subnet(s).unwrap()
    }

    #[test]
    fn parse_valid() {
        assert_eq!(net("172.17.0.0/16").to_string(), "172.17.0.0/16");
        assert_eq!(net(" 10.0.0.0/8 ").to_string(), "10.0.0.0/8");
        assert_eq!(net("0.0.0.0/0").prefix_len(), 0);
        assert_eq!(net("10.1.2.3/32").prefix_len(), 32);
    }

    #[test]
    fn parse_errors_name_input_and_reason() {
        let msg = |s: &str| parse_subnet(s).unwrap_err().to_string();
        assert_eq!(
            msg("10.0.0.0/33"),
            "invalid subnet \"10.0.0.0/33\": prefix length 33 > 32"
        );
        assert_eq!(
            msg("10.0.0.0/99999999999"),
            "invalid subnet \"10.0.0.0/99999999999\": prefix length 99999999999 > 32"
        );
        assert_eq!(
            msg("10.0.0.0"),
            "invalid subnet \"10.0.0.0\": missing prefix length (expected a.b.c.d/len)"
        );
        assert_eq!(
            msg("10.0.0.300/24"),
            "invalid subnet \"10.0.0.300/24\": \"10.0.0.300\" is not an IPv4 address"
        );
        assert_eq!(
            msg("10.0.0.0/-1"),
            "invalid subnet \"10.0.0.0/-1\": prefix length \"-1\" is not a number"
        );
        assert_eq!(
            msg("10.0.0.0/"),
            "invalid subnet \"10.0.0.0/\": prefix length \"\" is not a number"
        );
        assert_eq!(
            msg("10.0.0.1/24"),
            "invalid subnet \"10.0.0.1/24\": host bits are set (the network is 10.0.0.0/24)"
        );
        assert!(msg("fd00::/64").contains("is not an IPv4 address"));
    }

    #[test]
    fn ipv6_parse_and_overlap() {
        let v6 = |s: &str| parse_ip_subnet(s).unwrap();
        assert_eq!(v6("fd00:1::/64").to_string(), "fd00:1::/64");
        assert_eq!(v6("10.0.0.0/8").to_string(), "10.0.0.0/8");
        let msg = |s: &str| parse_ip_subnet(s).unwrap_err().to_string();
        assert_eq!(
            msg("fd00::/129"),
            "invalid subnet \"fd00::/129\": prefix length 129 > 128"
        );
        assert_eq!(
            msg("fd00::1/64"),
            "invalid subnet \"fd00::1/64\": host bits are set (the network is fd00::/64)"
        );
        assert_eq!(
            msg("fd00::zz/64"),
            "invalid subnet \"fd00::zz/64\": \"fd00::zz\" is not an IPv6 address"
        );
        assert_eq!(
            msg("10.0.0.0/33"),
            "invalid subnet \"10.0.0.0/33\": prefix length 33 > 32"
        );
        assert!(overlaps_ip(v6("fd00::/16"), v6("fd00:1::/64")));
        assert!(!overlaps_ip(v6("fd00:1::/64"), v6("fd00:2::/64")));
        assert!(!overlaps_ip(v6("::/0"), v6("0.0.0.0/0")));
    }

    #[test]
    fn gateway_default_and_explicit() {
        let s = Subnet::parse("172.17.0.0/16").unwrap();
        assert_eq!(s.gateway(), Ipv4Addr::new(172, 17, 0, 1));
        assert_eq!(s.gateway_with_prefix().to_string(), "172.17.0.1/16");
        let s = Subnet::with_gateway(net("10.0.0.0/24"), Ipv4Addr::new(10, 0, 0, 254)).unwrap();
        assert_eq!(s.gateway(), Ipv4Addr::new(10, 0, 0, 254));
        for bad in [[10, 0, 0, 0], [10, 0, 0, 255], [10, 0, 1, 1]] {
            let e = Subnet::with_gateway(net("10.0.0.0/24"), Ipv4Addr::from(bad)).unwrap_err();
            assert!(matches!(e, SubnetError::BadGateway { .. }), "{e}");
        }
        let e = Subnet::parse("10.0.0.0/31").unwrap_err();
        assert_eq!(
            e.to_string(),
            "subnet 10.0.0.0/31 is too small for a bridge network: prefix length 31 > 30"
        );
        assert!(Subnet::new(Ipv4Net::new(Ipv4Addr::new(10, 0, 0, 5), 24).unwrap()).is_err());
    }

    #[test]
    fn host_range_skips_network_gateway_broadcast() {
        let s = Subnet::parse("10.0.0.0/29").unwrap();
        let hosts: Vec<String> = s.hosts().map(|a| a.to_string()).collect();
        assert_eq!(
            hosts,
            ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]
        );
        assert_eq!(s.assignable_count(), 5);
        assert_eq!(
            s.reserved(Ipv4Addr::new(10, 0, 0, 0)),
            Some(Reserved::Network)
        );
        assert_eq!(
            s.reserved(Ipv4Addr::new(10, 0, 0, 1)),
            Some(Reserved::Gateway)
        );
        assert_eq!(
            s.reserved(Ipv4Addr::new(10, 0, 0, 7)),
            Some(Reserved::Broadcast)
        );
        assert!(!s.is_assignable(Ipv4Addr::new(10, 0, 0, 8)));

        // A gateway in the middle is skipped too, and next_host wraps around it.
        let s = Subnet::with_gateway(net("10.0.0.0/29"), Ipv4Addr::new(10, 0, 0, 4)).unwrap();
        assert_eq!(s.hosts().count(), 5);
        assert!(s.hosts().all(|a| a != s.gateway()));
        assert_eq!(
            s.next_host(Ipv4Addr::new(10, 0, 0, 3)),
            Ipv4Addr::new(10, 0, 0, 5)
        );
        assert_eq!(
            s.next_host(Ipv4Addr::new(10, 0, 0, 6)),
            Ipv4Addr::new(10, 0, 0, 1)
        );
        assert_eq!(
            s.next_host(Ipv4Addr::new(192, 0, 2, 1)),
            Ipv4Addr::new(10, 0, 0, 1)
        );
    }

    #[test]
    fn slash_30_has_one_container_address() {
        let s = Subnet::parse("192.0.2.4/30").unwrap();
        assert_eq!(s.gateway(), Ipv4Addr::new(192, 0, 2, 5));
        assert_eq!(s.hosts().collect::<Vec<_>>(), [Ipv4Addr::new(192, 0, 2, 6)]);
        assert_eq!(s.assignable_count(), 1);
        let only = Ipv4Addr::new(192, 0, 2, 6);
        assert_eq!(s.next_host(only), only);
    }

    #[test]
    fn overlap() {
        assert!(overlaps(net("10.0.0.0/8"), net("10.1.0.0/16")));
        assert!(overlaps(net("10.1.0.0/16"), net("10.0.0.0/8")));
        assert!(overlaps(net("10.1.0.0/16"), net("10.1.0.0/16")));
        assert!(overlaps(net("10.1.2.3/32"), net("10.1.0.0/16")));
        assert!(!overlaps(net("10.1.0.0/16"), net("10.2.0.0/16")));
        assert!(!overlaps(net("192.168.0.0/20"), net("192.168.16.0/20")));
    }

    #[test]
    fn serde_round_trip_validates() {
        let s = Subnet::with_gateway(net("10.0.0.0/24"), Ipv4Addr::new(10, 0, 0, 9)).unwrap();
        let j = serde_json::to_string(&s).unwrap();
        assert_eq!(j, r#"{"subnet":"10.0.0.0/24","gateway":"10.0.0.9"}"#);
        assert_eq!(serde_json::from_str::<Subnet>(&j).unwrap(), s);
        let bad = r#"{"subnet":"10.0.0.0/24","gateway":"10.0.1.9"}"#;
        assert!(serde_json::from_str::<Subnet>(bad).is_err());
    }

    #[test]
    fn pool_order_like_docker() {
        let pools = default_pools();
        let all: Vec<Ipv4Net> = pools.iter().flat_map(AddressPool::candidates).collect();
        assert_eq!(all.len(), 15 + 16);
        assert_eq!(all[0], net("172.17.0.0/16"));
        assert_eq!(all[1], net("172.18.0.0/16"));
        assert_eq!(all[14], net("172.31.0.0/16"));
        assert_eq!(all[15], net("192.168.0.0/20"));
        assert_eq!(all[16], net("192.168.16.0/20"));
        assert_eq!(all[30], net("192.168.240.0/20"));
    }

    #[test]
    fn pool_skips_existing_and_routes() {
        let pools = default_pools();
        assert_eq!(
            pick_from_pools(&pools, &[], &[]).unwrap(),
            net("172.17.0.0/16")
        );
        let existing = [net("172.17.0.0/16"), net("172.19.0.0/16")];
        // A default route is ignored; a host route inside 172.18/16 blocks it.
        let routes = [net("0.0.0.0/0"), net("172.18.5.0/24")];
        assert_eq!(
            pick_from_pools(&pools, &existing, &routes).unwrap(),
            net("172.20.0.0/16")
        );
        // A wide route (172.16/12) blocks every 172 candidate.
        let routes = [net("172.16.0.0/12"), net("192.168.0.0/24")];
        assert_eq!(
            pick_from_pools(&pools, &[], &routes).unwrap(),
            net("192.168.16.0/20")
        );
    }

    #[test]
    fn pool_exhausted() {
        let pools = default_pools();
        let routes = [net("172.16.0.0/12"), net("192.168.0.0/16")];
        let e = pick_from_pools(&pools, &[], &routes).unwrap_err();
        assert!(matches!(e, SubnetError::PoolsExhausted { .. }));
        assert!(e.to_string().contains("172.17.0.0/16 by /16"), "{e}");
        assert!(e.to_string().contains("192.168.0.0/16 by /20"), "{e}");
    }
}
