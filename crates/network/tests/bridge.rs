//! The bridge driver against the real kernel: a throwaway "host" namespace with
//! the bridge, and namespaces standing in for containers (see netlink_support).
//! Traffic only flows between namespaces these tests create.

mod netlink_support;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use coracle_network::bridge::{
    ensure_bridge, remove_bridge, setup_endpoint, teardown_endpoint, BridgeConfig, BridgeError,
    Endpoint,
};
use coracle_network::netlink::{MacAddr, Netlink, Route, VethPeer};
use netlink_support::{need_root, Ns};

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(172, 17, 0, last)
}

/// Names of the links in the namespace of `nl`.
fn link_names(nl: &Netlink) -> Vec<String> {
    let mut names: Vec<String> = nl.links().unwrap().into_iter().map(|l| l.name).collect();
    names.sort();
    names
}

fn host_ip_forward() -> String {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap()
}

#[test]
fn two_containers_on_a_bridge_reach_each_other_and_the_gateway() {
    if !need_root("two_containers_on_a_bridge_reach_each_other_and_the_gateway") {
        return;
    }
    let real_forward = host_ip_forward();
    let host = Ns::new();
    let (a, b) = (Ns::new(), Ns::new());
    let nl = Netlink::in_netns(host.path()).unwrap();
    let cfg = BridgeConfig::default();

    let br = ensure_bridge(&nl, &cfg).unwrap();
    // Idempotent: a second call finds what the first made.
    assert_eq!(ensure_bridge(&nl, &cfg).unwrap().index, br.index);
    let br = nl.link(br.index).unwrap();
    assert!(br.up);
    let gw: ipnet::IpNet = "172.17.0.1/16".parse().unwrap();
    assert_eq!(
        nl.addresses(Some(br.index.into()))
            .unwrap()
            .iter()
            .filter(|x| x.net == gw)
            .count(),
        1
    );
    // ip_forward is on in the throwaway host namespace, and the real host's
    // value is untouched.
    let out = host.busybox(&["cat", "/proc/sys/net/ipv4/ip_forward"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
    assert_eq!(host_ip_forward(), real_forward);

    let ea = Endpoint::new(&cfg, a.path(), Some("container-a"), ip(2));
    let eb = Endpoint::new(&cfg, b.path(), Some("container-b"), ip(3));
    assert_ne!(ea.host_ifname, eb.host_ifname);
    setup_endpoint(&nl, &cfg, &ea).unwrap();
    setup_endpoint(&nl, &cfg, &eb).unwrap();

    // Host side: the veths are enslaved to the bridge and up.
    for ep in [&ea, &eb] {
        let v = nl.link(&ep.host_ifname).unwrap();
        assert_eq!((v.master, v.up, v.mtu), (Some(br.index), true, cfg.mtu));
    }
    // Container side, read back with our own netlink dumps.
    let anl = Netlink::in_netns(a.path()).unwrap();
    let eth0 = anl.link("eth0").unwrap();
    assert!(eth0.up);
    assert_eq!(eth0.mac, Some(MacAddr([0x02, 0x42, 172, 17, 0, 2])));
    assert!(anl.link("lo").unwrap().up);
    let addrs = anl.addresses(Some("eth0".into())).unwrap();
    assert!(addrs
        .iter()
        .any(|x| x.net == "172.17.0.2/16".parse().unwrap()));
    let routes = anl.routes().unwrap();
    let default = Route {
        oif: Some(eth0.index),
        ..Route::default_via(ip(1).into())
    };
    assert!(routes.contains(&default), "{routes:?}");
    assert_eq!(link_names(&anl), ["eth0", "lo"]);

    // Real traffic: A -> B, B -> A, A -> gateway.
    assert!(a.ping("172.17.0.3"));
    assert!(b.ping("172.17.0.2"));
    assert!(a.ping("172.17.0.1"));

    // Teardown removes both ends; a second teardown is fine.
    for ep in [&ea, &eb] {
        assert!(teardown_endpoint(&nl, ep).is_empty());
        assert!(nl.find_link(&ep.host_ifname).unwrap().is_none());
        assert!(teardown_endpoint(&nl, ep).is_empty());
    }
    assert_eq!(link_names(&anl), ["lo"]);
    assert!(anl.routes().unwrap().iter().all(|r| !r.is_default()));
    assert!(!a.ping("172.17.0.3"));

    assert!(remove_bridge(&nl, &cfg).is_empty());
    assert!(remove_bridge(&nl, &cfg).is_empty());
    assert_eq!(link_names(&nl), ["lo"]);
}

/// The host namespace holds nothing but `lo` and the bridge.
fn assert_only_bridge(nl: &Netlink, cfg: &BridgeConfig) {
    let mut want = vec![cfg.name.clone(), "lo".to_string()];
    want.sort();
    assert_eq!(link_names(nl), want);
}

#[test]
fn bad_endpoints_fail_clearly_and_create_nothing() {
    if !need_root("bad_endpoints_fail_clearly_and_create_nothing") {
        return;
    }
    let host = Ns::new();
    let c = Ns::new();
    let nl = Netlink::in_netns(host.path()).unwrap();
    let cfg = BridgeConfig::default();

    // Before the bridge exists.
    let ep = Endpoint::new(&cfg, c.path(), Some("c"), ip(2));
    let err = setup_endpoint(&nl, &cfg, &ep).unwrap_err();
    assert!(matches!(err, BridgeError::BridgeMissing { .. }), "{err}");
    assert_eq!(link_names(&nl), ["lo"]);

    ensure_bridge(&nl, &cfg).unwrap();

    let missing = Endpoint::new(&cfg, "/nonexistent/netns/c1", Some("c"), ip(2));
    let err = setup_endpoint(&nl, &cfg, &missing).unwrap_err().to_string();
    assert!(
        err.contains("netns /nonexistent/netns/c1") && err.contains("No such file"),
        "{err}"
    );

    let not_ns = Endpoint::new(&cfg, "/etc/hostname", Some("c"), ip(2));
    let err = setup_endpoint(&nl, &cfg, &not_ns).unwrap_err().to_string();
    assert!(err.contains("not a namespace file"), "{err}");

    let own = Endpoint::new(&cfg, host.path(), Some("c"), ip(2));
    let err = setup_endpoint(&nl, &cfg, &own).unwrap_err().to_string();
    assert!(err.contains("host's own network namespace"), "{err}");

    let mut outside = Endpoint::new(&cfg, c.path(), Some("c"), ip(2));
    outside.ip = "10.1.2.3/16".parse().unwrap();
    let err = setup_endpoint(&nl, &cfg, &outside).unwrap_err().to_string();
    assert!(
        err.contains("address 10.1.2.3 is outside subnet 172.17.0.0/16"),
        "{err}"
    );

    for (last, what) in [(0, "network or broadcast"), (1, "gateway")] {
        let e = Endpoint::new(&cfg, c.path(), Some("c"), ip(last));
        let err = setup_endpoint(&nl, &cfg, &e).unwrap_err().to_string();
        assert!(err.contains(what), "{err}");
    }
    let bcast = Endpoint::new(&cfg, c.path(), Some("c"), Ipv4Addr::new(172, 17, 255, 255));
    assert!(setup_endpoint(&nl, &cfg, &bcast).is_err());

    let mut long = Endpoint::new(&cfg, c.path(), Some("c"), ip(2));
    long.container_ifname = "a-name-too-long-for-linux".into();
    let err = setup_endpoint(&nl, &cfg, &long).unwrap_err().to_string();
    assert!(err.contains("longer than 15"), "{err}");

    assert_only_bridge(&nl, &cfg);
    let cnl = Netlink::in_netns(c.path()).unwrap();
    assert_eq!(link_names(&cnl), ["lo"]);
    assert!(remove_bridge(&nl, &cfg).is_empty());
}

#[test]
fn a_failure_inside_the_container_rolls_back_the_pair() {
    if !need_root("a_failure_inside_the_container_rolls_back_the_pair") {
        return;
    }
    let host = Ns::new();
    let c = Ns::new();
    let nl = Netlink::in_netns(host.path()).unwrap();
    let cfg = BridgeConfig::default();
    ensure_bridge(&nl, &cfg).unwrap();

    // The container already has a default route (through a link of its own),
    // so adding ours fails after the pair exists.
    let cnl = Netlink::in_netns(c.path()).unwrap();
    let peer = VethPeer {
        name: "x1",
        netns: None,
        mac: None,
    };
    cnl.create_veth("x0", None, &peer).unwrap();
    cnl.set_up("x0").unwrap();
    cnl.add_address("x0", "10.9.0.2/24".parse().unwrap())
        .unwrap();
    cnl.add_default_route("10.9.0.1".parse().unwrap()).unwrap();

    let ep = Endpoint::new(&cfg, c.path(), Some("c"), ip(2));
    let err = setup_endpoint(&nl, &cfg, &ep).unwrap_err().to_string();
    assert!(
        err.contains(&ep.host_ifname) && err.contains("add route default via 172.17.0.1: EEXIST"),
        "{err}"
    );
    // Rolled back: no host veth, no eth0; what was there before is untouched.
    assert_only_bridge(&nl, &cfg);
    assert_eq!(link_names(&cnl), ["lo", "x0", "x1"]);
    assert!(remove_bridge(&nl, &cfg).is_empty());
}

#[test]
fn twenty_endpoints_and_the_time_of_one() {
    if !need_root("twenty_endpoints_and_the_time_of_one") {
        return;
    }
    let host = Ns::new();
    let nl = Netlink::in_netns(host.path()).unwrap();
    let cfg = BridgeConfig::default();
    let br = ensure_bridge(&nl, &cfg).unwrap();

    // Twenty containers at once.
    let containers: Vec<Ns> = (0..20).map(|_| Ns::new()).collect();
    let eps: Vec<Endpoint> = containers
        .iter()
        .enumerate()
        .map(|(i, c)| Endpoint::new(&cfg, c.path(), Some(&format!("c{i}")), ip(10 + i as u8)))
        .collect();
    for ep in &eps {
        setup_endpoint(&nl, &cfg, ep).unwrap();
    }
    let ports = nl
        .links()
        .unwrap()
        .iter()
        .filter(|l| l.master == Some(br.index))
        .count();
    assert_eq!(ports, 20);
    assert!(containers[0].ping("172.17.0.29"));
    for ep in &eps {
        assert!(teardown_endpoint(&nl, ep).is_empty());
    }
    assert_only_bridge(&nl, &cfg);

    // One endpoint set up and torn down twenty times in one namespace.
    let c = &containers[0];
    let mut times: Vec<(Duration, Duration, Duration)> = (0..20)
        .map(|i| {
            let ep = Endpoint::new(&cfg, c.path(), None, ip(2 + i));
            let start = Instant::now();
            setup_endpoint(&nl, &cfg, &ep).unwrap();
            let set_up = start.elapsed();
            let errors = teardown_endpoint(&nl, &ep);
            let total = start.elapsed();
            assert!(errors.is_empty(), "{errors:?}");
            (total, set_up, total - set_up)
        })
        .collect();
    let median = |times: &mut Vec<(Duration, Duration, Duration)>,
                  f: fn(&(Duration, Duration, Duration)) -> Duration| {
        times.sort_by_key(f);
        f(&times[10])
    };
    let total = median(&mut times, |t| t.0);
    let setup = median(&mut times, |t| t.1);
    let teardown = median(&mut times, |t| t.2);
    println!(
        "endpoint setup + teardown: median {total:?} over 20 (setup median {setup:?}, teardown median {teardown:?})"
    );
    assert_only_bridge(&nl, &cfg);
    assert!(remove_bridge(&nl, &cfg).is_empty());
    assert_eq!(link_names(&nl), ["lo"]);
}
