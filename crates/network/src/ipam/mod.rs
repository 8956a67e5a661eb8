//! Address allocation for bridge networks.
//!
//! - [`Ipam`]: the pure allocation rules for one network, applied to its
//!   [`NetworkAllocations`]: sequential allocation like Docker's (the next free
//!   address after the last one handed out, wrapping at the end of the subnet),
//!   static `--ip` requests, release. Network, gateway and broadcast addresses are
//!   never handed out.
//! - [`IpamStore`]: where allocations live. A store provides one atomic
//!   read-modify-write of a network's allocations ([`IpamStore::update`]); the
//!   operations the engine calls (`allocate_next`, `allocate_static`, `release`,
//!   `list`) are built on it, so every backend shares the rules.
//! - [`FileStore`]: a store of one JSON file per network, safe between processes.
//!   The engine will back the trait with its database instead.

mod file;

use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tracing::debug;

pub use self::file::FileStore;
use crate::subnet::{Ipv4Net, Reserved, Subnet};

#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    /// Every assignable address of the subnet is taken.
    #[error("network {network}: no free address for {owner}: subnet {subnet} is full")]
    SubnetFull {
        network: String,
        subnet: Ipv4Net,
        owner: String,
    },
    /// A static address outside the network's subnet.
    #[error(
        "network {network}: address {address} requested by {owner} is outside subnet {subnet}"
    )]
    OutsideSubnet {
        network: String,
        subnet: Ipv4Net,
        address: Ipv4Addr,
        owner: String,
    },
    /// A static address that is the network, gateway or broadcast address.
    #[error("network {network}: address {address} requested by {owner} is {reserved} of {subnet}")]
    Reserved {
        network: String,
        subnet: Ipv4Net,
        address: Ipv4Addr,
        owner: String,
        reserved: Reserved,
    },
    /// A static address another owner already holds.
    #[error("network {network}: address {address} requested by {owner} is in use by {holder}")]
    InUse {
        network: String,
        address: Ipv4Addr,
        owner: String,
        holder: String,
    },
    /// A static request from an owner that already holds another address.
    #[error(
        "network {network}: {owner} already holds {held}, so it cannot also take {address} \
         (release it first)"
    )]
    OwnerHoldsOther {
        network: String,
        owner: String,
        held: Ipv4Addr,
        address: Ipv4Addr,
    },
    /// The store holds allocations made for another subnet under this network's
    /// name: the network was recreated without [`IpamStore::remove_network`].
    #[error(
        "network {network}: allocations on record are for subnet {stored}, not {given} \
         (remove the old network's allocations first)"
    )]
    SubnetChanged {
        network: String,
        stored: Ipv4Net,
        given: Ipv4Net,
    },
    /// An empty owner, or a network name a store cannot use.
    #[error("network {network:?}: {reason}")]
    InvalidName { network: String, reason: String },
    #[error("IPAM store {path}: create directory: {source}")]
    OpenStore {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("network {network}: {op} {path}: {source}")]
    Io {
        network: String,
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("network {network}: allocation record {path} is corrupt: {source}")]
    Corrupt {
        network: String,
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// One address held by one owner (a container endpoint).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    pub address: Ipv4Addr,
    pub owner: String,
}

/// Everything a store keeps about one network's addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkAllocations {
    /// The subnet the allocations were made in; `None` before the first one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<Ipv4Net>,
    /// The address the last sequential allocation handed out: the next one
    /// starts searching after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<Ipv4Addr>,
    /// Sorted by address, one entry per address.
    #[serde(default)]
    pub allocations: Vec<Allocation>,
}

impl NetworkAllocations {
    /// Who holds `address`, if anyone.
    pub fn holder(&self, address: Ipv4Addr) -> Option<&str> {
        self.find(address)
            .ok()
            .map(|i| self.allocations[i].owner.as_str())
    }

    /// The addresses `owner` holds, in address order.
    pub fn addresses_of(&self, owner: &str) -> Vec<Ipv4Addr> {
        self.allocations
            .iter()
            .filter(|a| a.owner == owner)
            .map(|a| a.address)
            .collect()
    }

    fn find(&self, address: Ipv4Addr) -> Result<usize, usize> {
        self.allocations
            .binary_search_by_key(&address, |a| a.address)
    }

    fn insert(&mut self, address: Ipv4Addr, owner: &str) {
        if let Err(i) = self.find(address) {
            self.allocations.insert(
                i,
                Allocation {
                    address,
                    owner: owner.to_string(),
                },
            );
        }
    }
}

/// The allocation rules of one network, applied to its allocations.
#[derive(Debug, Clone, Copy)]
pub struct Ipam<'a> {
    network: &'a str,
    subnet: &'a Subnet,
}

impl<'a> Ipam<'a> {
    pub fn new(network: &'a str, subnet: &'a Subnet) -> Self {
        Ipam { network, subnet }
    }

    /// Refuses allocations on record for another subnet; adopts this subnet when
    /// nothing is allocated (then the cursor starts over too).
    fn check_subnet(&self, state: &mut NetworkAllocations) -> Result<(), IpamError> {
        let given = self.subnet.net();
        match state.subnet {
            Some(stored) if stored != given && !state.allocations.is_empty() => {
                Err(IpamError::SubnetChanged {
                    network: self.network.to_string(),
                    stored,
                    given,
                })
            }
            Some(stored) if stored == given => Ok(()),
            _ => {
                state.subnet = Some(given);
                state.last = None;
                Ok(())
            }
        }
    }

    fn check_owner(&self, owner: &str) -> Result<(), IpamError> {
        if owner.is_empty() {
            return Err(IpamError::InvalidName {
                network: self.network.to_string(),
                reason: "an allocation needs a non-empty owner".to_string(),
            });
        }
        Ok(())
    }

    /// Hands `owner` the next free address after the last one handed out,
    /// wrapping at the end of the subnet. If `owner` already holds an address in
    /// this network, that address is returned and nothing changes, so a setup
    /// retried after a crash gets the same address.
    pub fn allocate_next(
        &self,
        state: &mut NetworkAllocations,
        owner: &str,
    ) -> Result<Ipv4Addr, IpamError> {
        self.check_owner(owner)?;
        self.check_subnet(state)?;
        if let Some(held) = state.addresses_of(owner).first() {
            return Ok(*held);
        }
        let start = state.last.unwrap_or(self.subnet.net().network());
        let mut candidate = self.subnet.next_host(start);
        // At most one pass over the assignable addresses.
        for _ in 0..self.subnet.assignable_count() {
            if state.holder(candidate).is_none() {
                state.insert(candidate, owner);
                state.last = Some(candidate);
                return Ok(candidate);
            }
            candidate = self.subnet.next_host(candidate);
        }
        Err(IpamError::SubnetFull {
            network: self.network.to_string(),
            subnet: self.subnet.net(),
            owner: owner.to_string(),
        })
    }

    /// Hands `owner` exactly `address` (`--ip`), which must be inside the subnet,
    /// not reserved and not held by another owner. Asking again for an address the
    /// owner already holds succeeds without change. Does not move the cursor of
    /// sequential allocation.
    pub fn allocate_static(
        &self,
        state: &mut NetworkAllocations,
        owner: &str,
        address: Ipv4Addr,
    ) -> Result<Ipv4Addr, IpamError> {
        self.check_owner(owner)?;
        self.check_subnet(state)?;
        let net = self.subnet.net();
        if !self.subnet.contains(address) {
            return Err(IpamError::OutsideSubnet {
                network: self.network.to_string(),
                subnet: net,
                address,
                owner: owner.to_string(),
            });
        }
        if let Some(reserved) = self.subnet.reserved(address) {
            return Err(IpamError::Reserved {
                network: self.network.to_string(),
                subnet: net,
                address,
                owner: owner.to_string(),
                reserved,
            });
        }
        match state.holder(address) {
            Some(h) if h == owner => return Ok(address),
            Some(h) => {
                return Err(IpamError::InUse {
                    network: self.network.to_string(),
                    address,
                    owner: owner.to_string(),
                    holder: h.to_string(),
                })
            }
            None => {}
        }
        if let Some(held) = state.addresses_of(owner).first() {
            return Err(IpamError::OwnerHoldsOther {
                network: self.network.to_string(),
                owner: owner.to_string(),
                held: *held,
                address,
            });
        }
        state.insert(address, owner);
        Ok(address)
    }
}

/// Releases every address `owner` holds; returns them (empty when it held none).
/// Releasing does not move the cursor, so a released address is handed out again
/// only after the allocation wraps around (as Docker does), or by a static request.
pub fn release(state: &mut NetworkAllocations, owner: &str) -> Vec<Ipv4Addr> {
    let released = state.addresses_of(owner);
    state.allocations.retain(|a| a.owner != owner);
    released
}

/// A record of allocations, per network.
///
/// # Transactions
///
/// [`IpamStore::update`] is the one primitive every write goes through. It must
/// behave as a serializable transaction over one network's record, *across
/// processes*: load the record (an empty one if the network has none), run the
/// closure on it, and, only if the closure returns `Ok`, make the changed record
/// durable before returning `Ok`. Two updates of one network never interleave, so
/// an address read as free by one cannot be taken by another before the first
/// commits. When the closure fails, or `update` returns an error, nothing is
/// changed. A crash at any point leaves either the old or the new record, never a
/// mix. Once `update` has returned `Ok` the change survives a crash or restart.
///
/// The provided methods are the operations the engine uses; each is one
/// transaction, so they inherit these guarantees. Backends should not override
/// them: the allocation rules live in [`Ipam`].
pub trait IpamStore {
    /// Runs `f` on `network`'s record as one transaction (see the trait docs).
    fn update(
        &self,
        network: &str,
        f: &mut dyn FnMut(&mut NetworkAllocations) -> Result<(), IpamError>,
    ) -> Result<(), IpamError>;

    /// The committed record of `network` (empty if it has none). A consistent
    /// snapshot, but it may be stale as soon as it is returned.
    fn load(&self, network: &str) -> Result<NetworkAllocations, IpamError>;

    /// Deletes `network`'s record with all its allocations (network removal).
    /// Removing a network that has no record is not an error.
    fn remove_network(&self, network: &str) -> Result<(), IpamError>;

    /// Atomically allocates the next free address of `network` for `owner`
    /// (see [`Ipam::allocate_next`]).
    fn allocate_next(
        &self,
        network: &str,
        subnet: &Subnet,
        owner: &str,
    ) -> Result<Ipv4Addr, IpamError> {
        let ipam = Ipam::new(network, subnet);
        let mut got = None;
        self.update(network, &mut |state| {
            got = Some(ipam.allocate_next(state, owner)?);
            Ok(())
        })?;
        let address = got.expect("update ran the closure");
        debug!(network, %address, owner, "allocated address");
        Ok(address)
    }

    /// Atomically allocates exactly `address` of `network` for `owner`
    /// (see [`Ipam::allocate_static`]).
    fn allocate_static(
        &self,
        network: &str,
        subnet: &Subnet,
        owner: &str,
        address: Ipv4Addr,
    ) -> Result<Ipv4Addr, IpamError> {
        let ipam = Ipam::new(network, subnet);
        self.update(network, &mut |state| {
            ipam.allocate_static(state, owner, address).map(drop)
        })?;
        debug!(network, %address, owner, "allocated static address");
        Ok(address)
    }

    /// Atomically releases every address `owner` holds in `network` and returns
    /// them; releasing an owner that holds none is not an error (teardown is
    /// idempotent).
    fn release(&self, network: &str, owner: &str) -> Result<Vec<Ipv4Addr>, IpamError> {
        let mut released = Vec::new();
        self.update(network, &mut |state| {
            released = release(state, owner);
            Ok(())
        })?;
        debug!(network, owner, ?released, "released addresses");
        Ok(released)
    }

    /// The allocations of `network`, in address order.
    fn list(&self, network: &str) -> Result<Vec<Allocation>, IpamError> {
        Ok(self.load(network)?.allocations)
    }
}

#[cfg(test)]
mod tests;
