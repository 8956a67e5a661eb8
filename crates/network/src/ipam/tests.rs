//! The allocation rules, on in-memory records (the file store has its own tests
//! in `tests/ipam_*.rs`).

use std::cell::RefCell;
use std::collections::HashMap;

use super::*;

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn subnet(s: &str) -> Subnet {
    Subnet::parse(s).unwrap()
}

/// A store in memory: the trait's reference behaviour without files.
#[derive(Default)]
struct MemStore(RefCell<HashMap<String, NetworkAllocations>>);

impl IpamStore for MemStore {
    fn update(
        &self,
        network: &str,
        f: &mut dyn FnMut(&mut NetworkAllocations) -> Result<(), IpamError>,
    ) -> Result<(), IpamError> {
        let mut state = self.load(network)?;
        f(&mut state)?;
        self.0.borrow_mut().insert(network.to_string(), state);
        Ok(())
    }
    fn load(&self, network: &str) -> Result<NetworkAllocations, IpamError> {
        Ok(self.0.borrow().get(network).cloned().unwrap_or_default())
    }
    fn remove_network(&self, network: &str) -> Result<(), IpamError> {
        self.0.borrow_mut().remove(network);
        Ok(())
    }
}

#[test]
fn sequential_skips_network_and_gateway() {
    let s = subnet("10.0.0.0/24");
    let ipam = Ipam::new("n", &s);
    let mut st = NetworkAllocations::default();
    assert_eq!(ipam.allocate_next(&mut st, "a").unwrap(), ip("10.0.0.2"));
    assert_eq!(ipam.allocate_next(&mut st, "b").unwrap(), ip("10.0.0.3"));
    assert_eq!(ipam.allocate_next(&mut st, "c").unwrap(), ip("10.0.0.4"));
    assert_eq!(st.subnet, Some(s.net()));
    assert_eq!(st.last, Some(ip("10.0.0.4")));
    assert_eq!(st.holder(ip("10.0.0.3")), Some("b"));
}

#[test]
fn sequential_skips_a_gateway_in_the_middle_and_broadcast() {
    let s = Subnet::with_gateway("10.0.0.0/29".parse().unwrap(), ip("10.0.0.3")).unwrap();
    let ipam = Ipam::new("n", &s);
    let mut st = NetworkAllocations::default();
    let got: Vec<_> = (0..5)
        .map(|i| ipam.allocate_next(&mut st, &format!("o{i}")).unwrap())
        .collect();
    assert_eq!(
        got,
        ["10.0.0.1", "10.0.0.2", "10.0.0.4", "10.0.0.5", "10.0.0.6"].map(ip)
    );
    let e = ipam.allocate_next(&mut st, "o5").unwrap_err();
    assert!(matches!(e, IpamError::SubnetFull { .. }));
}

#[test]
fn next_allocation_continues_after_the_last_and_wraps() {
    let s = subnet("10.0.0.0/29"); // .2 .. .6 assignable
    let ipam = Ipam::new("n", &s);
    let mut st = NetworkAllocations::default();
    for o in ["a", "b", "c", "d", "e"] {
        ipam.allocate_next(&mut st, o).unwrap();
    }
    assert_eq!(st.last, Some(ip("10.0.0.6")));
    // A released address is not reused while fresher ones exist...
    assert_eq!(release(&mut st, "b"), [ip("10.0.0.3")]);
    // ...but here the cursor is at the end, so the next one wraps to it.
    assert_eq!(ipam.allocate_next(&mut st, "f").unwrap(), ip("10.0.0.3"));
    assert_eq!(st.last, Some(ip("10.0.0.3")));

    // After the cursor moved on, the search starts after it, not at the start.
    release(&mut st, "a"); // .2 free
    release(&mut st, "d"); // .5 free
    assert_eq!(ipam.allocate_next(&mut st, "g").unwrap(), ip("10.0.0.5"));
    assert_eq!(ipam.allocate_next(&mut st, "h").unwrap(), ip("10.0.0.2"));
}

#[test]
fn release_does_not_reuse_before_wrap() {
    let s = subnet("10.0.0.0/24");
    let ipam = Ipam::new("n", &s);
    let mut st = NetworkAllocations::default();
    let a = ipam.allocate_next(&mut st, "a").unwrap();
    release(&mut st, "a");
    let b = ipam.allocate_next(&mut st, "b").unwrap();
    assert_ne!(a, b, "a just-released address should rest until wraparound");
    // A static request may take it straight away.
    assert_eq!(ipam.allocate_static(&mut st, "c", a).unwrap(), a);
}

#[test]
fn allocate_next_is_idempotent_per_owner() {
    let s = subnet("10.0.0.0/24");
    let ipam = Ipam::new("n", &s);
    let mut st = NetworkAllocations::default();
    let a = ipam.allocate_next(&mut st, "a").unwrap();
    let snapshot = st.clone();
    assert_eq!(ipam.allocate_next(&mut st, "a").unwrap(), a);
    assert_eq!(st, snapshot);
}

#[test]
fn static_allocation_checks() {
    let s = subnet("10.0.0.0/24");
    let ipam = Ipam::new("br", &s);
    let mut st = NetworkAllocations::default();
    assert_eq!(
        ipam.allocate_static(&mut st, "a", ip("10.0.0.50")).unwrap(),
        ip("10.0.0.50")
    );
    // Static requests do not move the sequential cursor.
    assert_eq!(st.last, None);
    assert_eq!(ipam.allocate_next(&mut st, "b").unwrap(), ip("10.0.0.2"));
    // Same owner, same address: fine and unchanged.
    assert!(ipam.allocate_static(&mut st, "a", ip("10.0.0.50")).is_ok());

    let msg = |e: IpamError| e.to_string();
    let e = ipam
        .allocate_static(&mut st, "c", ip("10.0.0.50"))
        .unwrap_err();
    assert_eq!(
        msg(e),
        "network br: address 10.0.0.50 requested by c is in use by a"
    );
    let e = ipam
        .allocate_static(&mut st, "c", ip("10.0.1.5"))
        .unwrap_err();
    assert_eq!(
        msg(e),
        "network br: address 10.0.1.5 requested by c is outside subnet 10.0.0.0/24"
    );
    for (addr, what) in [
        ("10.0.0.0", "the network address"),
        ("10.0.0.1", "the gateway"),
        ("10.0.0.255", "the broadcast address"),
    ] {
        let e = ipam.allocate_static(&mut st, "c", ip(addr)).unwrap_err();
        assert_eq!(
            msg(e),
            format!("network br: address {addr} requested by c is {what} of 10.0.0.0/24")
        );
    }
    let e = ipam
        .allocate_static(&mut st, "a", ip("10.0.0.60"))
        .unwrap_err();
    assert!(matches!(e, IpamError::OwnerHoldsOther { .. }), "{e}");
    // Sequential allocation steps over the static address.
    st.last = Some(ip("10.0.0.49"));
    assert_eq!(ipam.allocate_next(&mut st, "d").unwrap(), ip("10.0.0.51"));
}

#[test]
fn full_subnet_error_names_network_and_subnet() {
    let s = subnet("10.9.0.0/30");
    let ipam = Ipam::new("tiny", &s);
    let mut st = NetworkAllocations::default();
    // A /30 has exactly one address for a container.
    assert_eq!(ipam.allocate_next(&mut st, "a").unwrap(), ip("10.9.0.2"));
    let e = ipam.allocate_next(&mut st, "b").unwrap_err();
    assert_eq!(
        e.to_string(),
        "network tiny: no free address for b: subnet 10.9.0.0/30 is full"
    );
    // Release makes room again, and the one address comes back.
    release(&mut st, "a");
    assert_eq!(ipam.allocate_next(&mut st, "b").unwrap(), ip("10.9.0.2"));
}

#[test]
fn recreated_network_with_other_subnet() {
    let old = subnet("10.0.0.0/24");
    let new = subnet("10.1.0.0/24");
    let mut st = NetworkAllocations::default();
    Ipam::new("n", &old).allocate_next(&mut st, "a").unwrap();
    let e = Ipam::new("n", &new)
        .allocate_next(&mut st, "b")
        .unwrap_err();
    assert!(matches!(e, IpamError::SubnetChanged { .. }), "{e}");
    // Once empty, the record adopts the new subnet and starts over.
    release(&mut st, "a");
    let got = Ipam::new("n", &new).allocate_next(&mut st, "b").unwrap();
    assert_eq!(got, ip("10.1.0.2"));
}

#[test]
fn empty_owner_refused() {
    let s = subnet("10.0.0.0/24");
    let mut st = NetworkAllocations::default();
    assert!(Ipam::new("n", &s).allocate_next(&mut st, "").is_err());
}

#[test]
fn store_operations_through_the_trait() {
    let store = MemStore::default();
    let s = subnet("172.17.0.0/16");
    let dyn_store: &dyn IpamStore = &store;
    assert_eq!(
        dyn_store.allocate_next("bridge", &s, "c1").unwrap(),
        ip("172.17.0.2")
    );
    assert_eq!(
        dyn_store
            .allocate_static("bridge", &s, "c2", ip("172.17.3.4"))
            .unwrap(),
        ip("172.17.3.4")
    );
    // A failed operation changes nothing.
    let before = store.load("bridge").unwrap();
    assert!(dyn_store
        .allocate_static("bridge", &s, "c3", ip("172.17.3.4"))
        .is_err());
    assert_eq!(store.load("bridge").unwrap(), before);

    let list = dyn_store.list("bridge").unwrap();
    assert_eq!(
        list,
        [
            Allocation {
                address: ip("172.17.0.2"),
                owner: "c1".into()
            },
            Allocation {
                address: ip("172.17.3.4"),
                owner: "c2".into()
            }
        ]
    );
    assert_eq!(
        dyn_store.release("bridge", "c1").unwrap(),
        [ip("172.17.0.2")]
    );
    assert!(dyn_store.release("bridge", "c1").unwrap().is_empty());
    assert!(dyn_store.list("other").unwrap().is_empty());
}

#[test]
fn record_json_shape() {
    let s = subnet("10.0.0.0/24");
    let mut st = NetworkAllocations::default();
    Ipam::new("n", &s).allocate_next(&mut st, "c1").unwrap();
    let j = serde_json::to_value(&st).unwrap();
    assert_eq!(
        j,
        serde_json::json!({
            "subnet": "10.0.0.0/24",
            "last": "10.0.0.2",
            "allocations": [{"address": "10.0.0.2", "owner": "c1"}]
        })
    );
    let empty: NetworkAllocations = serde_json::from_str("{}").unwrap();
    assert_eq!(empty, NetworkAllocations::default());
}
