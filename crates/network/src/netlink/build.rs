//! Pure builders and parsers of rtnetlink messages: no socket, no kernel, so they
//! can be unit-tested without root. [`super::Netlink`] sends what these build.

use std::net::IpAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

use ipnet::IpNet;
use netlink_packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::AddressFamily;

use super::{Address, Link, LinkId, MacAddr, Route};

/// The main routing table, where default and subnet routes live.
const RT_TABLE_MAIN: u32 = 254;

/// A link message addressed to `link`: by index in the header, or by name in
/// IFLA_IFNAME with index 0 (the kernel resolves the name itself, which saves a
/// lookup round trip).
pub(super) fn link_msg(link: LinkId<'_>) -> LinkMessage {
    let mut msg = LinkMessage::default();
    match link {
        LinkId::Index(i) => msg.header.index = i,
        LinkId::Name(n) => msg.attributes.push(LinkAttribute::IfName(n.to_string())),
    }
    msg
}

/// RTM_NEWLINK for a bridge.
pub(super) fn new_bridge(name: &str, mtu: Option<u32>, mac: Option<MacAddr>) -> LinkMessage {
    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::IfName(name.to_string()));
    if let Some(mtu) = mtu {
        msg.attributes.push(LinkAttribute::Mtu(mtu));
    }
    if let Some(mac) = mac {
        msg.attributes.push(LinkAttribute::Address(mac.0.to_vec()));
    }
    msg.attributes
        .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
            InfoKind::Bridge,
        )]));
    msg
}

/// What the peer end of a new veth pair looks like.
#[derive(Debug, Clone, Copy)]
pub struct VethPeer<'a> {
    /// Name of the peer, in its namespace.
    pub name: &'a str,
    /// The namespace to create the peer in (IFLA_NET_NS_FD); `None`: the socket's.
    pub netns: Option<BorrowedFd<'a>>,
    pub mac: Option<MacAddr>,
}

/// RTM_NEWLINK for a veth pair. The peer is a nested link message inside
/// IFLA_INFO_DATA/VETH_INFO_PEER; putting IFLA_NET_NS_FD there creates the peer
/// directly in the target namespace, in the same request.
pub(super) fn new_veth(name: &str, mtu: Option<u32>, peer: &VethPeer<'_>) -> LinkMessage {
    let mut p = LinkMessage::default();
    p.attributes
        .push(LinkAttribute::IfName(peer.name.to_string()));
    if let Some(mtu) = mtu {
        p.attributes.push(LinkAttribute::Mtu(mtu));
    }
    if let Some(mac) = peer.mac {
        p.attributes.push(LinkAttribute::Address(mac.0.to_vec()));
    }
    if let Some(fd) = peer.netns {
        p.attributes.push(LinkAttribute::NetNsFd(fd.as_raw_fd()));
    }
    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::IfName(name.to_string()));
    if let Some(mtu) = mtu {
        msg.attributes.push(LinkAttribute::Mtu(mtu));
    }
    msg.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Veth),
        LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))),
    ]));
    msg
}

/// RTM_SETLINK changing only the up flag.
pub(super) fn set_up(link: LinkId<'_>, up: bool) -> LinkMessage {
    let mut msg = link_msg(link);
    msg.header.change_mask = LinkFlags::Up;
    if up {
        msg.header.flags = LinkFlags::Up;
    }
    msg
}

pub(super) fn parse_link(msg: &LinkMessage) -> Link {
    let mut link = Link {
        index: msg.header.index,
        name: String::new(),
        mtu: 0,
        mac: None,
        up: msg.header.flags.contains(LinkFlags::Up),
        master: None,
        kind: None,
    };
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => link.name = n.clone(),
            LinkAttribute::Mtu(m) => link.mtu = *m,
            LinkAttribute::Address(a) if a.len() == 6 => {
                let mut mac = [0u8; 6];
                mac.copy_from_slice(a);
                link.mac = Some(MacAddr(mac));
            }
            LinkAttribute::Controller(m) => link.master = Some(*m),
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    if let LinkInfo::Kind(k) = info {
                        link.kind = Some(k.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    link
}

fn family(ip: &IpAddr) -> AddressFamily {
    match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

/// RTM_NEWADDR / RTM_DELADDR body for `addr` on link `index`. IPv4 gets the
/// subnet's broadcast address, as `ip addr add ... brd +` would set it.
pub(super) fn address(index: u32, addr: IpNet) -> AddressMessage {
    let mut msg = AddressMessage::default();
    msg.header.family = family(&addr.addr());
    msg.header.prefix_len = addr.prefix_len();
    msg.header.scope = AddressScope::Universe;
    msg.header.index = index;
    msg.attributes.push(AddressAttribute::Local(addr.addr()));
    msg.attributes.push(AddressAttribute::Address(addr.addr()));
    if let IpNet::V4(v4) = addr {
        if v4.prefix_len() < 31 {
            msg.attributes
                .push(AddressAttribute::Broadcast(v4.broadcast()));
        }
    }
    msg
}

pub(super) fn parse_address(msg: &AddressMessage) -> Option<Address> {
    // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer's on
    // point-to-point links and the same as IFA_LOCAL elsewhere (IPv6 only
    // sends IFA_ADDRESS).
    let mut local = None;
    let mut address = None;
    for attr in &msg.attributes {
        match attr {
            AddressAttribute::Local(ip) => local = Some(*ip),
            AddressAttribute::Address(ip) => address = Some(*ip),
            _ => {}
        }
    }
    let ip = local.or(address)?;
    Some(Address {
        index: msg.header.index,
        net: IpNet::new(ip, msg.header.prefix_len).ok()?,
    })
}

/// RTM_NEWROUTE / RTM_DELROUTE body for `route` in the main table.
pub(super) fn route(route: &Route) -> RouteMessage {
    let mut msg = RouteMessage::default();
    let dest = route.destination;
    msg.header.address_family = family(&dest.addr());
    msg.header.destination_prefix_length = dest.prefix_len();
    msg.header.table = RouteHeader::RT_TABLE_MAIN;
    msg.header.protocol = RouteProtocol::Static;
    msg.header.kind = RouteType::Unicast;
    // A route through a gateway reaches beyond the link; one without is on-link.
    msg.header.scope = if route.gateway.is_some() {
        RouteScope::Universe
    } else {
        RouteScope::Link
    };
    msg.attributes.push(RouteAttribute::Table(RT_TABLE_MAIN));
    if dest.prefix_len() > 0 {
        msg.attributes
            .push(RouteAttribute::Destination(RouteAddress::from(
                dest.network(),
            )));
    }
    if let Some(gw) = route.gateway {
        msg.attributes
            .push(RouteAttribute::Gateway(RouteAddress::from(gw)));
    }
    if let Some(oif) = route.oif {
        msg.attributes.push(RouteAttribute::Oif(oif));
    }
    msg
}

fn route_ip(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

/// A route of the main table, or `None` for other tables and kinds (local,
/// broadcast, multicast...).
pub(super) fn parse_route(msg: &RouteMessage) -> Option<Route> {
    if msg.header.kind != RouteType::Unicast {
        return None;
    }
    let mut table = u32::from(msg.header.table);
    let mut dest = None;
    let mut gateway = None;
    let mut oif = None;
    for attr in &msg.attributes {
        match attr {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Destination(a) => dest = route_ip(a),
            RouteAttribute::Gateway(a) => gateway = route_ip(a),
            RouteAttribute::Oif(i) => oif = Some(*i),
            _ => {}
        }
    }
    if table != RT_TABLE_MAIN {
        return None;
    }
    let unspecified = match msg.header.address_family {
        AddressFamily::Inet => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        AddressFamily::Inet6 => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        _ => return None,
    };
    let destination = IpNet::new(
        dest.unwrap_or(unspecified),
        msg.header.destination_prefix_length,
    )
    .ok()?;
    Some(Route {
        destination,
        gateway,
        oif,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::Emitable;
    use netlink_packet_core::Parseable;
    use netlink_packet_route::link::LinkMessageBuffer;

    #[test]
    fn veth_request_carries_peer_and_its_netns_fd() {
        let mac = MacAddr([0x02, 0x42, 172, 17, 0, 2]);
        let file = std::fs::File::open("/proc/self/ns/net").unwrap();
        let fd = std::os::fd::AsFd::as_fd(&file);
        let peer = VethPeer {
            name: "eth0",
            netns: Some(fd),
            mac: Some(mac),
        };
        let msg = new_veth("veth1234567", Some(1400), &peer);
        // Round-trip through bytes, as the kernel would see it.
        let mut buf = vec![0u8; msg.buffer_len()];
        msg.emit(&mut buf);
        let back = LinkMessage::parse(&LinkMessageBuffer::new(&buf)).unwrap();
        let infos = back
            .attributes
            .iter()
            .find_map(|a| match a {
                LinkAttribute::LinkInfo(i) => Some(i),
                _ => None,
            })
            .unwrap();
        assert!(infos.contains(&LinkInfo::Kind(InfoKind::Veth)));
        let peer_msg = infos
            .iter()
            .find_map(|i| match i {
                LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))) => Some(p),
                _ => None,
            })
            .unwrap();
        assert!(peer_msg
            .attributes
            .contains(&LinkAttribute::NetNsFd(fd.as_raw_fd())));
        assert!(peer_msg
            .attributes
            .contains(&LinkAttribute::IfName("eth0".into())));
        assert_eq!(parse_link(peer_msg).mac, Some(mac));
        assert_eq!(parse_link(&back).name, "veth1234567");
        assert_eq!(parse_link(&back).mtu, 1400);
    }

    #[test]
    fn ipv4_address_gets_broadcast_and_parses_back() {
        let net: IpNet = "172.17.0.2/16".parse().unwrap();
        let msg = address(3, net);
        assert!(msg.attributes.contains(&AddressAttribute::Broadcast(
            "172.17.255.255".parse().unwrap()
        )));
        assert_eq!(parse_address(&msg), Some(Address { index: 3, net }));
        let v6: IpNet = "fd00::2/64".parse().unwrap();
        let msg = address(3, v6);
        assert!(!msg
            .attributes
            .iter()
            .any(|a| matches!(a, AddressAttribute::Broadcast(_))));
        assert_eq!(parse_address(&msg).unwrap().net, v6);
    }

    #[test]
    fn default_route_has_no_destination_and_parses_back() {
        let r = Route::default_via("172.17.0.1".parse().unwrap());
        let msg = route(&r);
        assert_eq!(msg.header.destination_prefix_length, 0);
        assert!(!msg
            .attributes
            .iter()
            .any(|a| matches!(a, RouteAttribute::Destination(_))));
        assert_eq!(parse_route(&msg), Some(r));
        let on_link = Route {
            destination: "10.1.0.0/24".parse().unwrap(),
            gateway: None,
            oif: Some(4),
        };
        let msg = route(&on_link);
        assert_eq!(msg.header.scope, RouteScope::Link);
        assert_eq!(parse_route(&msg), Some(on_link));
    }

    #[test]
    fn set_up_by_name_changes_only_the_up_flag() {
        let msg = set_up(LinkId::Name("lo"), true);
        assert_eq!(msg.header.index, 0);
        assert_eq!(msg.header.change_mask, LinkFlags::Up);
        assert_eq!(msg.header.flags, LinkFlags::Up);
        let down = set_up(LinkId::Index(5), false);
        assert_eq!(down.header.index, 5);
        assert!(down.header.flags.is_empty());
    }
}
