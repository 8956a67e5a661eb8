//! FileStore: persistence across re-opening, the on-disk layout, bad input and
//! concurrent threads (separate processes are in `ipam_processes.rs`).

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::sync::{Arc, Barrier};

use coracle_network::ipam::{FileStore, IpamError, IpamStore};
use coracle_network::subnet::Subnet;

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

#[test]
fn allocations_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let subnet = Subnet::parse("172.30.0.0/16").unwrap();
    let first = {
        let store = FileStore::open(dir.path()).unwrap();
        let a = store.allocate_next("web", &subnet, "c1").unwrap();
        store
            .allocate_static("web", &subnet, "c2", ip("172.30.9.9"))
            .unwrap();
        a
    }; // store dropped: nothing is kept open

    let store = FileStore::open(dir.path()).unwrap();
    let list = store.list("web").unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].address, first);
    assert_eq!(list[0].owner, "c1");
    assert_eq!(list[1].address, ip("172.30.9.9"));
    // Same answer for the same owner; the next owner gets a different address,
    // continuing after the last one handed out.
    assert_eq!(store.allocate_next("web", &subnet, "c1").unwrap(), first);
    let next = store.allocate_next("web", &subnet, "c3").unwrap();
    assert_ne!(next, first);
    assert_eq!(next, ip("172.30.0.3"));
    let e = store
        .allocate_static("web", &subnet, "c4", ip("172.30.9.9"))
        .unwrap_err();
    assert!(matches!(e, IpamError::InUse { .. }), "{e}");

    // A release is durable too.
    assert_eq!(store.release("web", "c1").unwrap(), [first]);
    let store = FileStore::open(dir.path()).unwrap();
    assert_eq!(store.list("web").unwrap().len(), 2);
    assert!(store.load("web").unwrap().holder(first).is_none());
}

#[test]
fn one_json_file_per_network_and_no_temp_left() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path().join("nested/ipam")).unwrap();
    let a = Subnet::parse("10.1.0.0/24").unwrap();
    let b = Subnet::parse("10.2.0.0/24").unwrap();
    store.allocate_next("net-a", &a, "c1").unwrap();
    store.allocate_next("net_b.2", &b, "c1").unwrap();
    let mut names: Vec<String> = std::fs::read_dir(store.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["lock", "net-a.json", "net_b.2.json"]);
    let text = std::fs::read_to_string(store.dir().join("net-a.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["allocations"][0]["address"], "10.1.0.2");
    assert_eq!(v["subnet"], "10.1.0.0/24");

    // Networks are independent: the same owner and addresses in each.
    assert_eq!(store.list("net-a").unwrap()[0].owner, "c1");
    store.remove_network("net-a").unwrap();
    store.remove_network("net-a").unwrap(); // idempotent
    assert!(store.list("net-a").unwrap().is_empty());
    assert_eq!(store.list("net_b.2").unwrap().len(), 1);
}

#[test]
fn bad_network_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    let s = Subnet::parse("10.1.0.0/24").unwrap();
    for bad in [
        "",
        "../escape",
        "a/b",
        ".hidden",
        "-x",
        "sp ace",
        &"x".repeat(129),
    ] {
        let e = store.allocate_next(bad, &s, "c1").unwrap_err();
        assert!(matches!(e, IpamError::InvalidName { .. }), "{bad:?}: {e}");
        assert!(store.list(bad).is_err());
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn corrupt_record_is_reported_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    let path = dir.path().join("broken.json");
    std::fs::write(&path, b"{not json").unwrap();
    let s = Subnet::parse("10.1.0.0/24").unwrap();
    let e = store.allocate_next("broken", &s, "c1").unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, IpamError::Corrupt { .. }), "{msg}");
    assert!(
        msg.starts_with("network broken: allocation record "),
        "{msg}"
    );
    assert!(msg.contains("broken.json"), "{msg}");
    assert_eq!(std::fs::read(&path).unwrap(), b"{not json");
}

#[test]
fn failed_operation_leaves_record_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    let s = Subnet::parse("10.3.0.0/30").unwrap();
    store.allocate_next("tiny", &s, "c1").unwrap();
    let path = dir.path().join("tiny.json");
    let before = std::fs::read(&path).unwrap();
    let e = store.allocate_next("tiny", &s, "c2").unwrap_err();
    assert_eq!(
        e.to_string(),
        "network tiny: no free address for c2: subnet 10.3.0.0/30 is full"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn threads_with_their_own_store_handles_never_collide() {
    let dir = tempfile::tempdir().unwrap();
    let s = Subnet::parse("10.4.0.0/24").unwrap();
    let barrier = Arc::new(Barrier::new(16));
    let handles: Vec<_> = (0..16)
        .map(|i| {
            let path = dir.path().to_path_buf();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let store = FileStore::open(path).unwrap();
                barrier.wait();
                (0..4)
                    .map(|j| store.allocate_next("t", &s, &format!("t{i}-{j}")).unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let all: Vec<Ipv4Addr> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let distinct: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), 64);
    assert_eq!(distinct.len(), 64);
    assert!(all.iter().all(|a| s.is_assignable(*a)));
}
