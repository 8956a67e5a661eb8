//! A thin synchronous rtnetlink layer: links, addresses and routes over one
//! NETLINK_ROUTE socket, with typed methods and errors that name the operation,
//! the object and the errno. No `ip` commands, no async runtime.
//!
//! Protocol, as used here: every request carries a fresh sequence number and
//! NLM_F_REQUEST. Changes and single GETs also carry NLM_F_ACK, so the kernel
//! always ends its answer with an NLMSG_ERROR whose code is 0 (ack) or -errno.
//! Dumps (NLM_F_DUMP) end with NLMSG_DONE instead; a dump interrupted by a
//! concurrent change (NLM_F_DUMP_INTR) is retried. Replies whose sequence number
//! is not the current request's (left over from an earlier, failed request) are
//! skipped.
//!
//! A netlink socket acts on the network namespace it was created in, for its
//! whole life, whatever namespace the thread that uses it is in later. So
//! [`Netlink::in_netns`] creates the socket while the calling thread is inside
//! the target namespace, and the handle can then be used from anywhere.
//!
//! Message building and parsing live in [`build`] (pure, unit-tested); this file
//! only sends, receives and maps errors.

mod build;

use std::cell::Cell;
use std::fmt;
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP,
    NLM_F_DUMP_INTR, NLM_F_EXCL, NLM_F_REQUEST,
};
use netlink_packet_route::address::AddressMessage;
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use netlink_packet_route::route::RouteMessage;
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use nix::errno::Errno;
use nix::sched::CloneFlags;

pub use build::VethPeer;

/// Largest datagram the kernel sends us (dumps are cut at 32 KiB).
const RECV_BUF: usize = 64 * 1024;
/// How long to wait for the kernel's answer before reporting an error.
const RECV_TIMEOUT_SECS: i64 = 10;
/// How many times an interrupted dump is retried before giving up.
const DUMP_RETRIES: usize = 5;

/// An Ethernet address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// A link, by kernel index or by name (the kernel resolves names itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkId<'a> {
    Index(u32),
    Name(&'a str),
}

impl From<u32> for LinkId<'_> {
    fn from(i: u32) -> Self {
        LinkId::Index(i)
    }
}

impl<'a> From<&'a str> for LinkId<'a> {
    fn from(n: &'a str) -> Self {
        LinkId::Name(n)
    }
}

impl<'a> From<&'a String> for LinkId<'a> {
    fn from(n: &'a String) -> Self {
        LinkId::Name(n)
    }
}

impl fmt::Display for LinkId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkId::Index(i) => write!(f, "link #{i}"),
            LinkId::Name(n) => f.write_str(n),
        }
    }
}

/// What the kernel says about a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub mtu: u32,
    pub mac: Option<MacAddr>,
    /// The administrative up flag (IFF_UP), not the carrier.
    pub up: bool,
    /// Index of the bridge (or bond) this link is enslaved to.
    pub master: Option<u32>,
    /// "bridge", "veth", ...; `None` for links without a kind (lo, physical).
    pub kind: Option<String>,
}

/// An address on a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Address {
    pub index: u32,
    /// The address with its prefix length (172.17.0.2/16).
    pub net: IpNet,
}

/// A route of the main table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// 0.0.0.0/0 or ::/0 for a default route.
    pub destination: IpNet,
    pub gateway: Option<IpAddr>,
    /// Output link index.
    pub oif: Option<u32>,
}

impl Route {
    /// The default route via `gateway` (IPv4 or IPv6).
    pub fn default_via(gateway: IpAddr) -> Route {
        let destination = match gateway {
            IpAddr::V4(_) => IpNet::new(Ipv4Addr::UNSPECIFIED.into(), 0),
            IpAddr::V6(_) => IpNet::new(std::net::Ipv6Addr::UNSPECIFIED.into(), 0),
        }
        .expect("prefix 0 is valid");
        Route {
            destination,
            gateway: Some(gateway),
            oif: None,
        }
    }

    pub fn is_default(&self) -> bool {
        self.destination.prefix_len() == 0
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_default() {
            f.write_str("default")?;
        } else {
            write!(f, "{}", self.destination)?;
        }
        if let Some(gw) = self.gateway {
            write!(f, " via {gw}")?;
        }
        if let Some(oif) = self.oif {
            write!(f, " dev #{oif}")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// The kernel refused a request.
    #[error("{op} {target}: {errno:?} ({})", errno.desc())]
    Kernel {
        op: &'static str,
        target: String,
        errno: Errno,
    },
    /// Sending or receiving on the socket failed.
    #[error("{op} {target}: netlink socket: {source}")]
    Socket {
        op: &'static str,
        target: String,
        source: std::io::Error,
    },
    /// The kernel's answer could not be decoded.
    #[error("{op} {target}: undecodable netlink reply: {reason}")]
    Decode {
        op: &'static str,
        target: String,
        reason: String,
    },
    /// Entering or leaving a network namespace to open a socket there failed.
    #[error("open netlink socket in netns {path}: {op}: {errno:?} ({})", errno.desc())]
    Netns {
        path: PathBuf,
        op: &'static str,
        errno: Errno,
    },
}

impl NetlinkError {
    /// The errno behind this error, if there is one.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            NetlinkError::Kernel { errno, .. } | NetlinkError::Netns { errno, .. } => Some(*errno),
            NetlinkError::Socket { source, .. } => source.raw_os_error().map(Errno::from_raw),
            NetlinkError::Decode { .. } => None,
        }
    }

    /// True if the object was not there (ENODEV for links, EADDRNOTAVAIL for
    /// addresses, ESRCH for routes): what idempotent deletes ignore.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.errno(),
            Some(Errno::ENODEV | Errno::EADDRNOTAVAIL | Errno::ESRCH | Errno::ENOENT)
        )
    }

    pub fn is_exists(&self) -> bool {
        self.errno() == Some(Errno::EEXIST)
    }
}

pub type Result<T, E = NetlinkError> = std::result::Result<T, E>;

/// A NETLINK_ROUTE socket bound to one network namespace.
///
/// Not `Sync`: one request at a time per handle (sequence numbers are a `Cell`).
/// Open one handle per namespace you work in; they are cheap (one socket).
#[derive(Debug)]
pub struct Netlink {
    socket: Socket,
    seq: Cell<u32>,
    /// The namespace the socket acts on, kept open so code that needs to act in
    /// the same namespace by other means (sysctls) can enter it.
    netns: OwnedFd,
}

impl Netlink {
    /// A handle on the calling thread's current network namespace.
    pub fn new() -> Result<Netlink> {
        let netns = open_ns(Path::new("/proc/thread-self/ns/net"))?;
        let socket = open_socket()?;
        Ok(Netlink {
            socket,
            seq: Cell::new(1),
            netns,
        })
    }

    /// A handle on the network namespace at `path` (a pinned netns file or
    /// `/proc/<pid>/ns/net`).
    pub fn in_netns(path: &Path) -> Result<Netlink> {
        let ns = open_ns(path)?;
        Self::in_netns_fd(ns.as_fd(), path)
    }

    /// A handle on the network namespace `ns` refers to; `path` is only used in
    /// error messages.
    pub fn in_netns_fd(ns: BorrowedFd<'_>, path: &Path) -> Result<Netlink> {
        let netns_err = |op| {
            move |errno| NetlinkError::Netns {
                path: path.to_path_buf(),
                op,
                errno,
            }
        };
        let ns = ns
            .try_clone_to_owned()
            .map_err(|e| netns_err("dup")(io_errno(&e)))?;
        let home = open_ns(Path::new("/proc/thread-self/ns/net"))?;
        // A netlink socket belongs to the namespace it is created in. setns with
        // CLONE_NEWNET moves only the calling thread (the rest of the process
        // stays where it is), so: enter the target, create the socket, go back.
        nix::sched::setns(&ns, CloneFlags::CLONE_NEWNET).map_err(netns_err("setns"))?;
        let socket = open_socket();
        if let Err(errno) = nix::sched::setns(&home, CloneFlags::CLONE_NEWNET) {
            // We hold an fd on our own namespace, so this cannot fail short of
            // losing CAP_SYS_ADMIN between two calls. Carrying on would run
            // every later network call of this thread in the wrong namespace.
            panic!(
                "netns {}: cannot setns back to the thread's own network namespace: {errno}",
                path.display()
            );
        }
        Ok(Netlink {
            socket: socket?,
            seq: Cell::new(1),
            netns: ns,
        })
    }

    /// The network namespace this handle acts on.
    pub fn netns(&self) -> BorrowedFd<'_> {
        self.netns.as_fd()
    }

    // ---- links ----

    /// The link `id`; ENODEV if there is none.
    pub fn link<'a>(&self, id: impl Into<LinkId<'a>>) -> Result<Link> {
        let id = id.into();
        let msgs = self.request(
            "get link",
            &id,
            RouteNetlinkMessage::GetLink(build::link_msg(id)),
            // The link comes first, then the ack that ends the answer.
            NLM_F_ACK,
        )?;
        msgs.iter()
            .find_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(build::parse_link(l)),
                _ => None,
            })
            .ok_or_else(|| NetlinkError::Decode {
                op: "get link",
                target: id.to_string(),
                reason: "no link in the reply".into(),
            })
    }

    /// The link `id`, or `None` if there is none.
    pub fn find_link<'a>(&self, id: impl Into<LinkId<'a>>) -> Result<Option<Link>> {
        match self.link(id) {
            Ok(l) => Ok(Some(l)),
            Err(e) if e.errno() == Some(Errno::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every link of the namespace.
    pub fn links(&self) -> Result<Vec<Link>> {
        let msgs = self.dump(
            "list links",
            &"",
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
        )?;
        Ok(msgs
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(build::parse_link(l)),
                _ => None,
            })
            .collect())
    }

    /// Create a bridge (down). EEXIST if a link of that name exists.
    pub fn create_bridge(&self, name: &str, mtu: Option<u32>, mac: Option<MacAddr>) -> Result<()> {
        let msg = build::new_bridge(name, mtu, mac);
        self.change(
            "create bridge",
            &name,
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )
    }

    /// Create a veth pair `name` <-> `peer.name`, the peer created directly in
    /// `peer.netns` when given, in one request. Both ends start down.
    pub fn create_veth(&self, name: &str, mtu: Option<u32>, peer: &VethPeer<'_>) -> Result<()> {
        let msg = build::new_veth(name, mtu, peer);
        self.change(
            "create veth",
            &format_args!("{name}/{}", peer.name),
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )
    }

    pub fn set_up<'a>(&self, id: impl Into<LinkId<'a>>) -> Result<()> {
        let id = id.into();
        self.set_link("set up", id, build::set_up(id, true))
    }

    pub fn set_down<'a>(&self, id: impl Into<LinkId<'a>>) -> Result<()> {
        let id = id.into();
        self.set_link("set down", id, build::set_up(id, false))
    }

    /// Bring the loopback link up (a new namespace starts with it down).
    pub fn set_lo_up(&self) -> Result<()> {
        self.set_up("lo")
    }

    pub fn set_mtu<'a>(&self, id: impl Into<LinkId<'a>>, mtu: u32) -> Result<()> {
        let id = id.into();
        let mut msg = build::link_msg(id);
        msg.attributes.push(LinkAttribute::Mtu(mtu));
        self.set_link("set mtu", id, msg)
    }

    pub fn set_mac<'a>(&self, id: impl Into<LinkId<'a>>, mac: MacAddr) -> Result<()> {
        let id = id.into();
        let mut msg = build::link_msg(id);
        msg.attributes.push(LinkAttribute::Address(mac.0.to_vec()));
        self.set_link("set mac", id, msg)
    }

    /// Enslave `id` to the bridge with index `master`.
    pub fn set_master<'a>(&self, id: impl Into<LinkId<'a>>, master: u32) -> Result<()> {
        let id = id.into();
        let mut msg = build::link_msg(id);
        msg.attributes.push(LinkAttribute::Controller(master));
        self.set_link("set master", id, msg)
    }

    /// Hairpin mode on the bridge port `id`: the bridge may send a frame back out
    /// of the port it came in on. With br_netfilter, a container reaching its own
    /// published port is DNATed to itself while being bridged, so the reply path
    /// leaves through the same port; without hairpin the bridge drops it.
    pub fn set_hairpin<'a>(&self, id: impl Into<LinkId<'a>>, on: bool) -> Result<()> {
        use netlink_packet_route::link::{InfoBridgePort, InfoPortData, InfoPortKind, LinkInfo};
        let id = id.into();
        let mut msg = build::link_msg(id);
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::PortKind(InfoPortKind::Bridge),
            LinkInfo::PortData(InfoPortData::BridgePort(vec![InfoBridgePort::HairpinMode(
                on,
            )])),
        ]));
        self.set_link("set hairpin", id, msg)
    }

    /// Release `id` from its bridge.
    pub fn set_nomaster<'a>(&self, id: impl Into<LinkId<'a>>) -> Result<()> {
        let id = id.into();
        let mut msg = build::link_msg(id);
        msg.attributes.push(LinkAttribute::Controller(0));
        self.set_link("set nomaster", id, msg)
    }

    /// Rename the link with index `index` (the link must be down).
    pub fn rename(&self, index: u32, new_name: &str) -> Result<()> {
        let id = LinkId::Index(index);
        let mut msg = build::link_msg(id);
        msg.attributes.push(LinkAttribute::IfName(new_name.into()));
        self.request(
            "rename",
            &format_args!("{id} to {new_name}"),
            RouteNetlinkMessage::SetLink(msg),
            NLM_F_ACK,
        )
        .map(drop)
    }

    /// Move `id` into the network namespace `ns` (it arrives down, keeps its name).
    pub fn move_to_netns<'a>(&self, id: impl Into<LinkId<'a>>, ns: BorrowedFd<'_>) -> Result<()> {
        use std::os::fd::AsRawFd;
        let id = id.into();
        let mut msg = build::link_msg(id);
        msg.attributes.push(LinkAttribute::NetNsFd(ns.as_raw_fd()));
        self.set_link("move to netns", id, msg)
    }

    /// Delete a link. Deleting one end of a veth pair deletes both ends.
    pub fn delete_link<'a>(&self, id: impl Into<LinkId<'a>>) -> Result<()> {
        let id = id.into();
        self.change(
            "delete link",
            &id,
            RouteNetlinkMessage::DelLink(build::link_msg(id)),
            0,
        )
    }

    // ---- addresses ----

    fn index_of(&self, id: LinkId<'_>) -> Result<u32> {
        match id {
            LinkId::Index(i) => Ok(i),
            LinkId::Name(_) => self.link(id).map(|l| l.index),
        }
    }

    /// Add `net` (address and prefix length) to link `id`.
    pub fn add_address<'a>(&self, id: impl Into<LinkId<'a>>, net: IpNet) -> Result<()> {
        let id = id.into();
        let index = self.index_of(id)?;
        self.change(
            "add address",
            &format_args!("{net} on {id}"),
            RouteNetlinkMessage::NewAddress(build::address(index, net)),
            NLM_F_CREATE | NLM_F_EXCL,
        )
    }

    pub fn del_address<'a>(&self, id: impl Into<LinkId<'a>>, net: IpNet) -> Result<()> {
        let id = id.into();
        let index = self.index_of(id)?;
        self.change(
            "delete address",
            &format_args!("{net} on {id}"),
            RouteNetlinkMessage::DelAddress(build::address(index, net)),
            0,
        )
    }

    /// The addresses (IPv4 and IPv6) of link `id`, or of every link.
    pub fn addresses<'a>(&self, id: Option<LinkId<'a>>) -> Result<Vec<Address>> {
        let index = id.map(|id| self.index_of(id)).transpose()?;
        let msgs = self.dump(
            "list addresses",
            &id.map(|i| i.to_string()).unwrap_or_default(),
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
        )?;
        Ok(msgs
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) => build::parse_address(a),
                _ => None,
            })
            .filter(|a| index.is_none_or(|i| a.index == i))
            .collect())
    }

    // ---- routes ----

    pub fn add_route(&self, route: &Route) -> Result<()> {
        self.change(
            "add route",
            route,
            RouteNetlinkMessage::NewRoute(build::route(route)),
            NLM_F_CREATE | NLM_F_EXCL,
        )
    }

    pub fn del_route(&self, route: &Route) -> Result<()> {
        self.change(
            "delete route",
            route,
            RouteNetlinkMessage::DelRoute(build::route(route)),
            0,
        )
    }

    pub fn add_default_route(&self, gateway: IpAddr) -> Result<()> {
        self.add_route(&Route::default_via(gateway))
    }

    pub fn del_default_route(&self, gateway: IpAddr) -> Result<()> {
        self.del_route(&Route::default_via(gateway))
    }

    /// The unicast routes of the main table, IPv4 and IPv6.
    pub fn routes(&self) -> Result<Vec<Route>> {
        let msgs = self.dump(
            "list routes",
            &"",
            RouteNetlinkMessage::GetRoute(RouteMessage::default()),
        )?;
        Ok(msgs
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewRoute(r) => build::parse_route(r),
                _ => None,
            })
            .collect())
    }

    // ---- the wire ----

    fn set_link(&self, op: &'static str, id: LinkId<'_>, msg: LinkMessage) -> Result<()> {
        self.change(op, &id, RouteNetlinkMessage::SetLink(msg), 0)
    }

    /// A request answered by an ack only.
    fn change(
        &self,
        op: &'static str,
        target: &dyn fmt::Display,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<()> {
        self.request(op, target, msg, flags | NLM_F_ACK).map(drop)
    }

    /// A dump, retried while the kernel flags it as interrupted by a change.
    fn dump(
        &self,
        op: &'static str,
        target: &dyn fmt::Display,
        msg: RouteNetlinkMessage,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        let mut attempt = 0;
        loop {
            match self.request(op, target, msg.clone(), NLM_F_DUMP) {
                Err(e) if e.errno() == Some(Errno::EINTR) && attempt < DUMP_RETRIES => attempt += 1,
                r => return r,
            }
        }
    }

    /// Send one request and collect the messages of its answer, up to the ack
    /// (NLM_F_ACK requests) or NLMSG_DONE (dumps). An interrupted dump is
    /// reported as EINTR.
    fn request(
        &self,
        op: &'static str,
        target: &dyn fmt::Display,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        let seq = self.seq.get().wrapping_add(1);
        self.seq.set(seq);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        packet.finalize();
        let mut out = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut out);

        tracing::debug!(op, target = %target, seq, "netlink request");
        let sock_err = |source| NetlinkError::Socket {
            op,
            target: target.to_string(),
            source,
        };
        self.socket.send(&out, 0).map_err(sock_err)?;

        let mut replies = Vec::new();
        let mut interrupted = false;
        let mut buf: Vec<u8> = Vec::with_capacity(RECV_BUF);
        loop {
            buf.clear();
            let n = self.socket.recv(&mut buf, 0).map_err(sock_err)?;
            let n = n.min(buf.len());
            let mut off = 0;
            while off + 16 <= n {
                let len =
                    u32::from_ne_bytes(buf[off..off + 4].try_into().expect("4 bytes")) as usize;
                if len < 16 || off + len > n {
                    return Err(NetlinkError::Decode {
                        op,
                        target: target.to_string(),
                        reason: format!("message length {len} at offset {off} of {n} bytes"),
                    });
                }
                let parsed =
                    NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[off..off + len])
                        .map_err(|e| NetlinkError::Decode {
                            op,
                            target: target.to_string(),
                            reason: e.to_string(),
                        })?;
                off += (len + 3) & !3;
                if parsed.header.sequence_number != seq {
                    continue;
                }
                if parsed.header.flags & NLM_F_DUMP_INTR != 0 {
                    interrupted = true;
                }
                match parsed.payload {
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => {
                                tracing::debug!(op, target = %target, seq, "netlink ack");
                                Ok(replies)
                            }
                            Some(code) => {
                                let errno = Errno::from_raw(-code.get());
                                tracing::debug!(op, target = %target, seq, %errno, "netlink error");
                                Err(NetlinkError::Kernel {
                                    op,
                                    target: target.to_string(),
                                    errno,
                                })
                            }
                        };
                    }
                    NetlinkPayload::Done(d) => {
                        let errno = if d.code < 0 {
                            Some(Errno::from_raw(-d.code))
                        } else if interrupted {
                            Some(Errno::EINTR)
                        } else {
                            None
                        };
                        return match errno {
                            None => Ok(replies),
                            Some(errno) => Err(NetlinkError::Kernel {
                                op,
                                target: target.to_string(),
                                errno,
                            }),
                        };
                    }
                    NetlinkPayload::InnerMessage(m) => replies.push(m),
                    _ => {}
                }
            }
        }
    }
}

fn io_errno(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

fn open_ns(path: &Path) -> Result<OwnedFd> {
    File::open(path)
        .map(OwnedFd::from)
        .map_err(|e| NetlinkError::Netns {
            path: path.to_path_buf(),
            op: "open",
            errno: io_errno(&e),
        })
}

fn open_socket() -> Result<Socket> {
    let err = |source| NetlinkError::Socket {
        op: "open",
        target: "NETLINK_ROUTE".into(),
        source,
    };
    let mut socket = Socket::new(NETLINK_ROUTE).map_err(err)?;
    socket.bind_auto().map_err(err)?;
    socket.connect(&SocketAddr::new(0, 0)).map_err(err)?;
    // The kernel answers every request at once; a reply that never comes (a
    // bug on either side) becomes an error instead of a hang.
    nix::sys::socket::setsockopt(
        &socket,
        nix::sys::socket::sockopt::ReceiveTimeout,
        &nix::sys::time::TimeVal::new(RECV_TIMEOUT_SECS, 0),
    )
    .map_err(|e| err(e.into()))?;
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_error_names_operation_object_and_errno() {
        let e = NetlinkError::Kernel {
            op: "create veth",
            target: "vethab12cd3/eth0".into(),
            errno: Errno::EEXIST,
        };
        assert_eq!(
            e.to_string(),
            "create veth vethab12cd3/eth0: EEXIST (File exists)"
        );
        assert!(e.is_exists());
    }

    #[test]
    fn mac_displays_lowercase_colon_separated() {
        assert_eq!(
            MacAddr([0x02, 0x42, 0xac, 0x11, 0, 2]).to_string(),
            "02:42:ac:11:00:02"
        );
    }
}
