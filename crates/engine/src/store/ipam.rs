//! The network crate's [`IpamStore`] on the engine database.
//!
//! Tables: `ipam_networks` (one row per network: its subnet and the cursor of
//! sequential allocation, both as text) and `ipam_allocations` (one row per held
//! address, primary key `(network, address)`, so one address can never be
//! recorded twice). [`IpamStore::update`] is one `BEGIN IMMEDIATE` transaction:
//! read the network's rows, run the allocation rules, write the rows back,
//! commit. Two processes allocating at once are serialized by SQLite's write
//! lock, and the second reads what the first committed.
//!
//! Database errors come back as [`IpamError::Io`] (the database file as the
//! path), the error type the trait has for a backend that failed.

use std::io;
use std::net::Ipv4Addr;

use coracle_network::ipam::{Allocation, IpamError, IpamStore, NetworkAllocations};
use coracle_network::subnet::{parse_subnet, Ipv4Net};
use rusqlite::{params, OptionalExtension, Transaction};

use super::{Store, StoreError};

impl Store {
    fn ipam_err(&self, network: &str, op: &'static str) -> impl Fn(StoreError) -> IpamError {
        let network = network.to_string();
        let path = self.path().to_path_buf();
        move |e| IpamError::Io {
            network: network.clone(),
            op,
            path: path.clone(),
            source: io::Error::other(e.to_string()),
        }
    }
}

fn db_err(network: &str, what: &str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    StoreError::db(format!("IPAM of network {network}: {what}"))
}

fn corrupt(network: &str, what: String) -> StoreError {
    StoreError::Corrupt {
        what: format!("IPAM record of network {network}"),
        detail: what,
    }
}

fn load_in(tx: &rusqlite::Connection, network: &str) -> Result<NetworkAllocations, StoreError> {
    let row: Option<(Option<String>, Option<String>)> = tx
        .query_row(
            "SELECT subnet, last FROM ipam_networks WHERE network = ?1",
            [network],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(db_err(network, "read network"))?;
    let Some((subnet, last)) = row else {
        return Ok(NetworkAllocations::default());
    };
    let subnet = subnet
        .map(|s| parse_subnet(&s).map_err(|e| corrupt(network, format!("subnet {s:?}: {e}"))))
        .transpose()?;
    let last = last.map(|s| parse_addr(network, &s)).transpose()?;
    let mut stmt = tx
        .prepare("SELECT address, owner FROM ipam_allocations WHERE network = ?1")
        .map_err(db_err(network, "read allocations"))?;
    let rows = stmt
        .query_map([network], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })
        .map_err(db_err(network, "read allocations"))?;
    let mut allocations = Vec::new();
    for row in rows {
        let (address, owner) = row.map_err(db_err(network, "read allocations"))?;
        allocations.push(Allocation {
            address: parse_addr(network, &address)?,
            owner,
        });
    }
    // Text order is not address order ("172.17.0.10" < "172.17.0.9").
    allocations.sort_by_key(|a| a.address);
    Ok(NetworkAllocations {
        subnet,
        last,
        allocations,
    })
}

fn parse_addr(network: &str, s: &str) -> Result<Ipv4Addr, StoreError> {
    s.parse()
        .map_err(|e| corrupt(network, format!("address {s:?}: {e}")))
}

fn save_in(
    tx: &Transaction<'_>,
    network: &str,
    old: &NetworkAllocations,
    new: &NetworkAllocations,
) -> Result<(), StoreError> {
    let text = |n: Option<Ipv4Net>| n.map(|n| n.to_string());
    tx.execute(
        "INSERT INTO ipam_networks (network, subnet, last) VALUES (?1, ?2, ?3) \
         ON CONFLICT (network) DO UPDATE SET subnet = excluded.subnet, last = excluded.last",
        params![network, text(new.subnet), new.last.map(|a| a.to_string())],
    )
    .map_err(db_err(network, "write network"))?;
    // Only the difference is written: an allocation touches one row.
    for gone in old
        .allocations
        .iter()
        .filter(|a| !new.allocations.contains(a))
    {
        tx.execute(
            "DELETE FROM ipam_allocations WHERE network = ?1 AND address = ?2",
            params![network, gone.address.to_string()],
        )
        .map_err(db_err(network, "delete allocation"))?;
    }
    for added in new
        .allocations
        .iter()
        .filter(|a| !old.allocations.contains(a))
    {
        tx.execute(
            "INSERT INTO ipam_allocations (network, address, owner) VALUES (?1, ?2, ?3) \
             ON CONFLICT (network, address) DO UPDATE SET owner = excluded.owner",
            params![network, added.address.to_string(), added.owner],
        )
        .map_err(db_err(network, "insert allocation"))?;
    }
    Ok(())
}

impl IpamStore for Store {
    fn update(
        &self,
        network: &str,
        f: &mut dyn FnMut(&mut NetworkAllocations) -> Result<(), IpamError>,
    ) -> Result<(), IpamError> {
        let wrap = self.ipam_err(network, "update allocations in");
        self.write(&format!("IPAM update of network {network}"), |tx| {
            let old = load_in(tx, network).map_err(&wrap)?;
            let mut state = old.clone();
            f(&mut state)?;
            if state != old {
                save_in(tx, network, &old, &state).map_err(&wrap)?;
            }
            Ok::<(), Wrapped>(())
        })
        .map_err(|w| match w {
            Wrapped::Ipam(e) => e,
            Wrapped::Store(e) => wrap(e),
        })
    }

    fn load(&self, network: &str) -> Result<NetworkAllocations, IpamError> {
        self.read(&format!("IPAM load of network {network}"), |tx| {
            load_in(tx, network)
        })
        .map_err(self.ipam_err(network, "load allocations from"))
    }

    fn remove_network(&self, network: &str) -> Result<(), IpamError> {
        self.write(&format!("IPAM removal of network {network}"), |tx| {
            tx.execute("DELETE FROM ipam_networks WHERE network = ?1", [network])
                .map_err(db_err(network, "delete network"))?;
            Ok(())
        })
        .map_err(self.ipam_err(network, "remove allocations from"))
    }
}

/// The error of [`Store::write`] in an IPAM update: the rules' own error, or the
/// database's.
enum Wrapped {
    Ipam(IpamError),
    Store(StoreError),
}

impl From<IpamError> for Wrapped {
    fn from(e: IpamError) -> Self {
        Wrapped::Ipam(e)
    }
}

impl From<StoreError> for Wrapped {
    fn from(e: StoreError) -> Self {
        Wrapped::Store(e)
    }
}

#[cfg(test)]
mod tests {
    use coracle_network::subnet::Subnet;

    use super::*;

    #[test]
    fn sequential_static_release_and_removal() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let subnet = Subnet::parse("10.5.0.0/24").unwrap();
        let a = s.allocate_next("net1", &subnet, "c1").unwrap();
        let b = s.allocate_next("net1", &subnet, "c2").unwrap();
        assert_eq!(a, Ipv4Addr::new(10, 5, 0, 2));
        assert_eq!(b, Ipv4Addr::new(10, 5, 0, 3));
        // The same owner again gets the same address.
        assert_eq!(s.allocate_next("net1", &subnet, "c1").unwrap(), a);
        let st = Ipv4Addr::new(10, 5, 0, 10);
        s.allocate_static("net1", &subnet, "c3", st).unwrap();
        let err = s.allocate_static("net1", &subnet, "c4", st).unwrap_err();
        assert!(matches!(err, IpamError::InUse { .. }), "{err}");
        assert_eq!(s.release("net1", "c2").unwrap(), vec![b]);
        assert!(s.release("net1", "c2").unwrap().is_empty());
        // The cursor survives: the next address is after the last one handed out.
        assert_eq!(
            s.allocate_next("net1", &subnet, "c5").unwrap(),
            Ipv4Addr::new(10, 5, 0, 4)
        );
        // `Store::list` lists containers; the trait's `list` needs its path.
        let owners: Vec<String> = IpamStore::list(&s, "net1")
            .unwrap()
            .into_iter()
            .map(|a| a.owner)
            .collect();
        assert_eq!(owners, ["c1", "c5", "c3"]);
        s.remove_network("net1").unwrap();
        s.remove_network("net1").unwrap();
        assert_eq!(s.load("net1").unwrap(), NetworkAllocations::default());
    }

    #[test]
    fn failed_rule_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let subnet = Subnet::parse("10.6.0.0/30").unwrap();
        s.allocate_next("tiny", &subnet, "c1").unwrap();
        let before = s.load("tiny").unwrap();
        let err = s.allocate_next("tiny", &subnet, "c2").unwrap_err();
        assert!(matches!(err, IpamError::SubnetFull { .. }), "{err}");
        assert_eq!(s.load("tiny").unwrap(), before);
    }
}
