//! coracle-network: what Docker's bridge networking is, done with netlink and
//! nftables directly.
//!
//! - [`netlink`]: a thin synchronous layer over netlink-packet-route: links (bridge,
//!   veth pair with its peer created in a target namespace), addresses, routes, up,
//!   MTU, MAC, rename, move to a namespace.
//! - [`bridge`]: a bridge network's host side and one container endpoint (veth pair,
//!   `eth0`, address, default route), set up after validating everything and rolled
//!   back on failure; teardown is best-effort and reports every error.
//! - [`netns`]: named network namespaces (pinned by a bind mount), the path the
//!   runtime is given.
//! - [`subnet`] and [`ipam`]: subnets, pools and address allocation behind a store
//!   trait (the engine backs it with its database; a file store ships here).
//! - [`ports`] and [`firewall`]: `-p` port specs, and the nftables rules (masquerade,
//!   published ports, isolation) built as pure data and applied as one atomic batch.
//!
//! - [`dns`]: the DNS responder of user-defined networks (its own process,
//!   `coracle-dns`), and the container's resolv.conf, hosts and hostname files.
//!
//! - [`mode`]: `--network` modes (bridge, a network name, none, host,
//!   container:ID) and the network namespace each one means.
//! - [`signals`]: SIGINT/SIGTERM held off while a command changes the host.
//! - [`manager`]: all of the above as one system (networks, connect/disconnect,
//!   reload), driven by the `coracle-net` command and later by the engine.
//!
//! Nothing here knows about containers beyond a network namespace path.
#![deny(unsafe_code)]

pub mod bridge;
pub mod dns;
pub mod firewall;
pub mod ipam;
pub mod manager;
pub mod mode;
pub mod netlink;
pub mod netns;
pub mod ports;
pub mod signals;
pub mod subnet;
