//! The netlink layer against the real kernel, each test in throwaway network
//! namespaces (see netlink_support).

mod netlink_support;

use std::os::fd::AsFd;

use coracle_network::netlink::{MacAddr, Netlink, Route, VethPeer};
use netlink_support::{need_root, Ns};

#[test]
fn links_in_a_throwaway_namespace() {
    if !need_root("links_in_a_throwaway_namespace") {
        return;
    }
    let host = Ns::new();
    let other = Ns::new();
    let nl = Netlink::in_netns(host.path()).unwrap();

    nl.set_lo_up().unwrap();
    assert!(nl.link("lo").unwrap().up);

    nl.create_bridge("br-test", Some(1400), Some(MacAddr([0x02, 0, 0, 0, 0, 1])))
        .unwrap();
    let br = nl.link("br-test").unwrap();
    assert_eq!(br.kind.as_deref(), Some("bridge"));
    assert_eq!(br.mtu, 1400);
    assert_eq!(br.mac, Some(MacAddr([0x02, 0, 0, 0, 0, 1])));
    assert!(!br.up);

    // A second bridge of the same name: EEXIST, naming the operation and link.
    let err = nl.create_bridge("br-test", None, None).unwrap_err();
    assert!(err.is_exists());
    assert_eq!(
        err.to_string(),
        "create bridge br-test: EEXIST (File exists)"
    );

    // A veth pair with both ends here, then every link setter on it.
    let peer = VethPeer {
        name: "vpeer",
        netns: None,
        mac: None,
    };
    nl.create_veth("vhost", Some(1400), &peer).unwrap();
    nl.set_mtu("vhost", 1300).unwrap();
    let mac = MacAddr([0x02, 0x42, 1, 2, 3, 4]);
    nl.set_mac("vhost", mac).unwrap();
    nl.set_master("vhost", br.index).unwrap();
    nl.set_up("vhost").unwrap();
    let v = nl.link("vhost").unwrap();
    assert_eq!(
        (v.mtu, v.mac, v.master, v.up),
        (1300, Some(mac), Some(br.index), true)
    );
    assert_eq!(v.kind.as_deref(), Some("veth"));
    nl.set_nomaster("vhost").unwrap();
    nl.set_down("vhost").unwrap();
    let v = nl.link(v.index).unwrap();
    assert_eq!((v.master, v.up), (None, false));

    // Rename by index, then move the peer to the other namespace.
    nl.rename(v.index, "vrenamed").unwrap();
    assert!(nl.find_link("vhost").unwrap().is_none());
    assert_eq!(nl.link("vrenamed").unwrap().index, v.index);
    let other_ns = std::fs::File::open(other.path()).unwrap();
    nl.move_to_netns("vpeer", other_ns.as_fd()).unwrap();
    assert!(nl.find_link("vpeer").unwrap().is_none());
    let onl = Netlink::in_netns(other.path()).unwrap();
    assert!(onl.find_link("vpeer").unwrap().is_some());

    // The handle's socket stays in its namespace: our own thread is back home.
    let home = Netlink::new().unwrap();
    assert!(home.find_link("br-test").unwrap().is_none());

    let names: Vec<String> = nl.links().unwrap().into_iter().map(|l| l.name).collect();
    assert!(names.contains(&"br-test".to_string()) && names.contains(&"vrenamed".to_string()));

    // Deleting one end removes both; deleting again is ENODEV (not found).
    nl.delete_link("vrenamed").unwrap();
    assert!(onl.find_link("vpeer").unwrap().is_none());
    let err = nl.delete_link("vrenamed").unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert_eq!(
        err.to_string(),
        "delete link vrenamed: ENODEV (No such device)"
    );
    nl.delete_link("br-test").unwrap();
}

#[test]
fn veth_peer_is_created_directly_in_the_target_namespace() {
    if !need_root("veth_peer_is_created_directly_in_the_target_namespace") {
        return;
    }
    let host = Ns::new();
    let container = Ns::new();
    let nl = Netlink::in_netns(host.path()).unwrap();
    let cns = std::fs::File::open(container.path()).unwrap();
    let mac = MacAddr([0x02, 0x42, 10, 0, 0, 2]);
    let peer = VethPeer {
        name: "eth0",
        netns: Some(cns.as_fd()),
        mac: Some(mac),
    };
    nl.create_veth("vethtest001", None, &peer).unwrap();
    assert!(nl.find_link("eth0").unwrap().is_none());
    let cnl = Netlink::in_netns(container.path()).unwrap();
    let eth0 = cnl.link("eth0").unwrap();
    assert_eq!(eth0.mac, Some(mac));
    // The same request again: the host name is taken.
    let err = nl.create_veth("vethtest001", None, &peer).unwrap_err();
    assert_eq!(
        err.to_string(),
        "create veth vethtest001/eth0: EEXIST (File exists)"
    );
    nl.delete_link("vethtest001").unwrap();
    assert!(cnl.find_link("eth0").unwrap().is_none());
}

#[test]
fn addresses_and_routes_v4_and_v6() {
    if !need_root("addresses_and_routes_v4_and_v6") {
        return;
    }
    let host = Ns::new();
    let nl = Netlink::in_netns(host.path()).unwrap();
    let peer = VethPeer {
        name: "vb",
        netns: None,
        mac: None,
    };
    nl.create_veth("va", None, &peer).unwrap();
    nl.set_up("va").unwrap();
    nl.set_up("vb").unwrap();
    let va = nl.link("va").unwrap();

    let v4 = "10.88.0.2/24".parse().unwrap();
    let v6 = "fd00:88::2/64".parse().unwrap();
    nl.add_address("va", v4).unwrap();
    nl.add_address(va.index, v6).unwrap();
    let err = nl.add_address("va", v4).unwrap_err();
    assert_eq!(
        err.to_string(),
        "add address 10.88.0.2/24 on va: EEXIST (File exists)"
    );
    let addrs: Vec<_> = nl
        .addresses(Some("va".into()))
        .unwrap()
        .into_iter()
        .map(|a| a.net)
        .collect();
    assert!(addrs.contains(&v4) && addrs.contains(&v6), "{addrs:?}");
    assert!(nl
        .addresses(Some("vb".into()))
        .unwrap()
        .iter()
        .all(|a| a.net != v4));

    // Default routes via a gateway on the link's subnet, both families.
    nl.add_default_route("10.88.0.1".parse().unwrap()).unwrap();
    nl.add_default_route("fd00:88::1".parse().unwrap()).unwrap();
    let other = Route {
        destination: "10.99.0.0/16".parse().unwrap(),
        gateway: None,
        oif: Some(va.index),
    };
    nl.add_route(&other).unwrap();
    let routes = nl.routes().unwrap();
    let defaults: Vec<_> = routes.iter().filter(|r| r.is_default()).collect();
    assert!(defaults
        .iter()
        .any(|r| r.gateway == Some("10.88.0.1".parse().unwrap()) && r.oif == Some(va.index)));
    assert!(defaults
        .iter()
        .any(|r| r.gateway == Some("fd00:88::1".parse().unwrap())));
    assert!(routes.contains(&other), "{routes:?}");

    nl.del_route(&other).unwrap();
    nl.del_default_route("10.88.0.1".parse().unwrap()).unwrap();
    nl.del_default_route("fd00:88::1".parse().unwrap()).unwrap();
    let err = nl
        .del_default_route("10.88.0.1".parse().unwrap())
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(nl.routes().unwrap().iter().all(|r| !r.is_default()));

    nl.del_address("va", v4).unwrap();
    nl.del_address("va", v6).unwrap();
    assert!(nl.del_address("va", v4).unwrap_err().is_not_found());
    assert!(nl
        .addresses(Some("va".into()))
        .unwrap()
        .iter()
        .all(|a| a.net != v4 && a.net != v6));
    nl.delete_link("va").unwrap();
}

#[test]
fn opening_a_missing_netns_names_the_path() {
    let err = Netlink::in_netns(std::path::Path::new("/nonexistent/netns")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "open netlink socket in netns /nonexistent/netns: open: ENOENT (No such file or directory)"
    );
}
