//! The nftables firewall with real rules and real traffic.
//!
//! Every test re-runs itself (this test binary, filtered to the one test) under
//! `unshare --net --mount --propagation private`: that child's fresh network
//! namespace is the throwaway "host". Inside it, `unshare --net sleep` helpers stand
//! in for containers and for an "outside" machine, joined by veth pairs; commands run
//! in them through `nsenter`, and the traffic is made by threads that `setns` into
//! them. Nothing touches the real host's network namespace, and everything goes
//! away with the child's namespaces. Without root or `nft`, the tests say why and
//! pass without running.
//!
//! Topology (built by [`Topo::new`]):
//!
//! ```text
//!  A 10.88.0.2 ─┐
//!               ├─ cbr0 10.88.0.1/24 ── host ── vout 192.0.2.1/24 ── O 192.0.2.2
//!  B 10.88.0.3 ─┘                       (no route from O to 10.88.0.0/24)
//! ```

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use coracle_network::firewall::{
    required_sysctls, write_sysctls, FirewallDriver, FirewallState, Network, Nft, NftFirewall,
    PublishedPort,
};
use coracle_network::ports::parse_port_spec;

const CHILD_ENV: &str = "CORACLE_FIREWALL_TEST_CHILD";
const TABLE: &str = "coracle_test";
const WAIT: Duration = Duration::from_secs(2);

/// Runs `body` in a throwaway host network namespace (see the module docs).
fn in_throwaway_host(name: &str, body: fn()) {
    if std::env::var(CHILD_ENV).as_deref() == Ok(name) {
        run(&["ip", "link", "set", "lo", "up"]);
        body();
        return;
    }
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipping {name}: needs root (network namespaces, nftables)");
        return;
    }
    if Command::new("nft").arg("--version").output().is_err() {
        eprintln!("skipping {name}: the nft binary is not installed (apt-get install nftables)");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    // `timeout` bounds the whole child; every wait inside is bounded too.
    let out = Command::new("timeout")
        .args(["-s", "KILL", "120", "unshare", "--net", "--mount"])
        .args(["--propagation", "private", "--"])
        .arg(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, name)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{name} failed in its throwaway namespace ({}):\n{stdout}\n{stderr}",
        out.status
    );
}

macro_rules! netns_test {
    ($name:ident, $body:expr) => {
        #[test]
        fn $name() {
            in_throwaway_host(stringify!($name), $body);
        }
    };
}

/// Runs a command in the current namespace; panics with its output on failure.
fn run(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A network namespace held by an `unshare --net sleep` helper, killed by its pid.
struct Ns {
    child: Child,
}

impl Ns {
    fn new() -> Ns {
        let child = Command::new("unshare")
            .args(["--net", "sleep", "100"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let ns = Ns { child };
        let own = std::fs::read_link("/proc/self/ns/net").unwrap();
        let deadline = Instant::now() + WAIT;
        while std::fs::read_link(ns.path()).ok().as_ref() == Some(&own) || {
            std::fs::read_link(ns.path()).is_err()
        } {
            assert!(Instant::now() < deadline, "helper never unshared");
            std::thread::sleep(Duration::from_millis(5));
        }
        ns.run(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    fn path(&self) -> String {
        format!("/proc/{}/ns/net", self.child.id())
    }

    fn run(&self, args: &[&str]) -> String {
        let net = format!("--net={}", self.path());
        let mut all = vec!["nsenter", net.as_str(), "--"];
        all.extend_from_slice(args);
        run(&all)
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `f` on a thread that joined `ns` (the host namespace when `None`).
fn in_ns<T: Send + 'static>(ns: Option<&Ns>, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = ns.map(Ns::path);
    std::thread::spawn(move || {
        if let Some(p) = path {
            let fd = File::open(&p).unwrap();
            nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        }
        f()
    })
    .join()
    .unwrap()
}

/// A TCP server in `ns` on `port` answering `<tag> peer=<client ip>` to each
/// connection; it lives until the test process exits.
fn tcp_server(ns: &Ns, port: u16, tag: &'static str) {
    let path = ns.path();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let fd = File::open(&path).unwrap();
        nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let l = TcpListener::bind(("0.0.0.0", port)).unwrap();
        tx.send(()).unwrap();
        for mut c in l.incoming().flatten() {
            let peer = c.peer_addr().unwrap().ip();
            let _ = writeln!(c, "{tag} peer={peer}");
        }
    });
    rx.recv_timeout(WAIT).unwrap();
}

/// A UDP server in `ns` on `port` answering each datagram like [`tcp_server`].
fn udp_server(ns: &Ns, port: u16, tag: &'static str) {
    let path = ns.path();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let fd = File::open(&path).unwrap();
        nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let s = UdpSocket::bind(("0.0.0.0", port)).unwrap();
        tx.send(()).unwrap();
        let mut buf = [0u8; 512];
        while let Ok((_, peer)) = s.recv_from(&mut buf) {
            let _ = s.send_to(format!("{tag} peer={}\n", peer.ip()).as_bytes(), peer);
        }
    });
    rx.recv_timeout(WAIT).unwrap();
}

/// Connects from `ns` to `addr` and reads the server's line, within [`WAIT`].
fn tcp_get(ns: Option<&Ns>, addr: &str) -> Result<String, String> {
    let addr: SocketAddr = addr.parse().unwrap();
    in_ns(ns, move || {
        let mut c = TcpStream::connect_timeout(&addr, WAIT).map_err(|e| e.to_string())?;
        c.set_read_timeout(Some(WAIT)).unwrap();
        let mut s = String::new();
        c.read_to_string(&mut s).map_err(|e| e.to_string())?;
        Ok(s.trim().to_string())
    })
}

/// Sends a datagram from `ns` to `addr` and waits [`WAIT`] for the answer.
fn udp_get(ns: Option<&Ns>, addr: &str) -> Result<String, String> {
    let addr: SocketAddr = addr.parse().unwrap();
    in_ns(ns, move || {
        let s = UdpSocket::bind("0.0.0.0:0").unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        s.send_to(b"hi", addr).map_err(|e| e.to_string())?;
        let mut buf = [0u8; 512];
        let (n, _) = s.recv_from(&mut buf).map_err(|e| e.to_string())?;
        Ok(String::from_utf8_lossy(&buf[..n]).trim().to_string())
    })
}

/// Creates a bridge with its gateway address in the host namespace.
fn bridge(name: &str, gateway_cidr: &str) {
    run(&["ip", "link", "add", name, "type", "bridge"]);
    run(&["ip", "addr", "add", gateway_cidr, "dev", name]);
    run(&["ip", "link", "set", name, "up"]);
}

/// A "container": a namespace joined to `bridge` by a veth pair, with `eth0`
/// at `cidr` and a default route via `gateway`.
fn container(bridge: &str, host_end: &str, cidr: &str, gateway: &str) -> Ns {
    let ns = Ns::new();
    run(&[
        "ip", "link", "add", host_end, "type", "veth", "peer", "name", "eth0",
    ]);
    run(&["ip", "link", "set", "eth0", "netns", &ns.pid()]);
    run(&["ip", "link", "set", host_end, "master", bridge, "up"]);
    // With br_netfilter, a container reaching its own published port is DNATed while
    // bridged and sent back out of the port it came in: that needs hairpin mode.
    run(&[
        "ip",
        "link",
        "set",
        host_end,
        "type",
        "bridge_slave",
        "hairpin",
        "on",
    ]);
    ns.run(&["ip", "addr", "add", cidr, "dev", "eth0"]);
    ns.run(&["ip", "link", "set", "eth0", "up"]);
    ns.run(&["ip", "route", "add", "default", "via", gateway]);
    ns
}

struct Topo {
    a: Ns,
    b: Ns,
    outside: Ns,
}

impl Topo {
    fn new() -> Topo {
        bridge("cbr0", "10.88.0.1/24");
        let a = container("cbr0", "vetha", "10.88.0.2/24", "10.88.0.1");
        let b = container("cbr0", "vethb", "10.88.0.3/24", "10.88.0.1");
        let outside = Ns::new();
        run(&[
            "ip", "link", "add", "vout", "type", "veth", "peer", "name", "eth0",
        ]);
        run(&["ip", "link", "set", "eth0", "netns", &outside.pid()]);
        run(&["ip", "addr", "add", "192.0.2.1/24", "dev", "vout"]);
        run(&["ip", "link", "set", "vout", "up"]);
        outside.run(&["ip", "addr", "add", "192.0.2.2/24", "dev", "eth0"]);
        outside.run(&["ip", "link", "set", "eth0", "up"]);
        Topo { a, b, outside }
    }
}

fn network(name: &str, bridge: &str, subnet: &str, internal: bool) -> Network {
    Network {
        name: name.to_string(),
        bridge: bridge.to_string(),
        subnet: subnet.parse().unwrap(),
        internal,
        dns: None,
    }
}

fn published(ip: &str, network: &str, spec: &str) -> PublishedPort {
    PublishedPort {
        container_ip: ip.parse().unwrap(),
        network: network.to_string(),
        mapping: parse_port_spec(spec).unwrap(),
    }
}

fn firewall() -> NftFirewall {
    NftFirewall::new(Nft::default(), TABLE).unwrap()
}

/// Applies `state` with its sysctls, as the engine does.
fn apply(state: &FirewallState) {
    write_sysctls(Path::new("/proc/sys"), &required_sysctls(state)).unwrap();
    firewall().apply(state).unwrap();
}

fn default_net(ports: Vec<PublishedPort>) -> FirewallState {
    FirewallState {
        networks: vec![network("net0", "cbr0", "10.88.0.0/24", false)],
        ports,
    }
}

fn tables() -> String {
    run(&["nft", "list", "tables"])
}

netns_test!(masquerade_hides_containers_behind_the_host, || {
    let t = Topo::new();
    tcp_server(&t.outside, 9000, "outside");
    apply(&default_net(vec![]));
    assert_eq!(
        tcp_get(Some(&t.a), "192.0.2.2:9000").unwrap(),
        "outside peer=192.0.2.1"
    );
    // The outside has no route to the subnet: without the masquerade nothing comes back.
    run(&["nft", "delete", "table", "inet", TABLE]);
    assert!(tcp_get(Some(&t.a), "192.0.2.2:9000").is_err());
});

netns_test!(published_tcp_port_from_host_loopback_and_containers, || {
    let t = Topo::new();
    tcp_server(&t.a, 80, "a");
    apply(&default_net(vec![published(
        "10.88.0.2",
        "net0",
        "8080:80",
    )]));
    // From the host, via its own addresses and 127.0.0.1 (route_localnet + masquerade).
    let via_host = tcp_get(None, "192.0.2.1:8080").unwrap();
    assert_eq!(via_host, "a peer=192.0.2.1");
    assert_eq!(tcp_get(None, "10.88.0.1:8080").unwrap(), "a peer=10.88.0.1");
    assert_eq!(tcp_get(None, "127.0.0.1:8080").unwrap(), "a peer=10.88.0.1");
    // From another host: its source address is kept.
    assert_eq!(
        tcp_get(Some(&t.outside), "192.0.2.1:8080").unwrap(),
        "a peer=192.0.2.2"
    );
    // From container B via the host's address (hairpin), and A reaching itself.
    assert_eq!(
        tcp_get(Some(&t.b), "192.0.2.1:8080").unwrap(),
        "a peer=10.88.0.1"
    );
    assert_eq!(
        tcp_get(Some(&t.a), "10.88.0.1:8080").unwrap(),
        "a peer=10.88.0.1"
    );
    // Containers cannot use route_localnet to reach the host's loopback.
    tcp_server_host(9999);
    assert!(tcp_get(None, "127.0.0.1:9999").is_ok());
    // B sends to 127.0.0.1 through the gateway (a hostile container can: its own
    // loopback is looked up after a route to the host, and it may set route_localnet).
    t.b.run(&[
        "sh",
        "-c",
        "ip route add 127.0.0.1/32 via 10.88.0.1 dev eth0 src 10.88.0.3 table 100 \
        && ip rule add to 127.0.0.1 lookup 100 priority 10 \
        && ip rule del priority 0 && ip rule add lookup local priority 100 \
        && sysctl -qw net.ipv4.conf.eth0.route_localnet=1",
    ]);
    assert!(tcp_get(Some(&t.b), "127.0.0.1:9999").is_err());
});

/// A TCP server in the (throwaway) host namespace itself, on 127.0.0.1.
fn tcp_server_host(port: u16) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let l = TcpListener::bind(("127.0.0.1", port)).unwrap();
        tx.send(()).unwrap();
        for mut c in l.incoming().flatten() {
            let _ = writeln!(c, "host");
        }
    });
    rx.recv_timeout(WAIT).unwrap();
}

netns_test!(port_published_on_loopback_only, || {
    let t = Topo::new();
    tcp_server(&t.a, 80, "a");
    apply(&default_net(vec![published(
        "10.88.0.2",
        "net0",
        "127.0.0.1:8081:80",
    )]));
    assert_eq!(tcp_get(None, "127.0.0.1:8081").unwrap(), "a peer=10.88.0.1");
    assert!(tcp_get(None, "192.0.2.1:8081").is_err());
    assert!(tcp_get(Some(&t.outside), "192.0.2.1:8081").is_err());
    assert!(tcp_get(Some(&t.b), "10.88.0.1:8081").is_err());
});

netns_test!(published_udp_port, || {
    let t = Topo::new();
    udp_server(&t.a, 53, "a");
    apply(&default_net(vec![published(
        "10.88.0.2",
        "net0",
        "5353:53/udp",
    )]));
    assert_eq!(
        udp_get(Some(&t.outside), "192.0.2.1:5353").unwrap(),
        "a peer=192.0.2.2"
    );
    assert_eq!(udp_get(None, "127.0.0.1:5353").unwrap(), "a peer=10.88.0.1");
    assert_eq!(
        udp_get(Some(&t.b), "192.0.2.1:5353").unwrap(),
        "a peer=10.88.0.1"
    );
    // TCP on the same port is not published.
    assert!(tcp_get(Some(&t.outside), "192.0.2.1:5353").is_err());
});

netns_test!(two_bridges_are_isolated, || {
    let t = Topo::new();
    bridge("cbr1", "10.89.0.1/24");
    let c = container("cbr1", "vethc", "10.89.0.2/24", "10.89.0.1");
    tcp_server(&t.a, 80, "a");
    tcp_server(&c, 80, "c");
    run(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    // Plain routing connects them…
    assert!(tcp_get(Some(&t.a), "10.89.0.2:80").is_ok());
    let state = FirewallState {
        networks: vec![
            network("net0", "cbr0", "10.88.0.0/24", false),
            network("net1", "cbr1", "10.89.0.0/24", false),
        ],
        ports: vec![published("10.88.0.2", "net0", "8080:80")],
    };
    apply(&state);
    // …the firewall does not.
    assert!(tcp_get(Some(&t.a), "10.89.0.2:80").is_err());
    assert!(tcp_get(Some(&c), "10.88.0.2:80").is_err());
    // Same bridge still works, and a published port is reachable from the other network.
    assert_eq!(
        tcp_get(Some(&t.b), "10.88.0.2:80").unwrap(),
        "a peer=10.88.0.3"
    );
    // (masqueraded: it leaves its own subnet)
    assert_eq!(
        tcp_get(Some(&c), "192.0.2.1:8080").unwrap(),
        "a peer=10.88.0.1"
    );
});

netns_test!(internal_network_cannot_reach_out, || {
    let t = Topo::new();
    tcp_server(&t.outside, 9000, "outside");
    tcp_server(&t.b, 80, "b");
    // Give the outside a route back, so only the firewall can stop the traffic.
    t.outside
        .run(&["ip", "route", "add", "10.88.0.0/24", "via", "192.0.2.1"]);
    run(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    apply(&default_net(vec![]));
    assert!(tcp_get(Some(&t.a), "192.0.2.2:9000").is_ok());
    let internal = FirewallState {
        networks: vec![network("net0", "cbr0", "10.88.0.0/24", true)],
        ports: vec![],
    };
    apply(&internal);
    assert!(tcp_get(Some(&t.a), "192.0.2.2:9000").is_err());
    assert!(tcp_get(Some(&t.outside), "10.88.0.3:80").is_err());
    assert_eq!(
        tcp_get(Some(&t.a), "10.88.0.3:80").unwrap(),
        "b peer=10.88.0.2"
    );
});

netns_test!(reload_after_flush_restores_reachability, || {
    let t = Topo::new();
    tcp_server(&t.outside, 9000, "outside");
    tcp_server(&t.a, 80, "a");
    let state = default_net(vec![published("10.88.0.2", "net0", "8080:80")]);
    apply(&state);
    assert!(tcp_get(Some(&t.b), "192.0.2.2:9000").is_ok());
    assert!(tcp_get(Some(&t.outside), "192.0.2.1:8080").is_ok());
    run(&["nft", "flush", "ruleset"]);
    assert!(tcp_get(Some(&t.b), "192.0.2.2:9000").is_err());
    assert!(tcp_get(Some(&t.outside), "192.0.2.1:8080").is_err());
    firewall().reload(&state).unwrap();
    assert_eq!(
        tcp_get(Some(&t.b), "192.0.2.2:9000").unwrap(),
        "outside peer=192.0.2.1"
    );
    assert_eq!(
        tcp_get(Some(&t.outside), "192.0.2.1:8080").unwrap(),
        "a peer=192.0.2.2"
    );
});

/// The handles of rules commented `coracle:<TABLE>` in iptables' FORWARD.
fn our_forward_rules() -> usize {
    run(&["nft", "list", "chain", "ip", "filter", "FORWARD"])
        .lines()
        .filter(|l| l.contains(&format!("comment \"coracle:{TABLE}\"")))
        .count()
}

netns_test!(iptables_forward_policy_drop_is_handled, || {
    let t = Topo::new();
    tcp_server(&t.outside, 9000, "outside");
    tcp_server(&t.b, 80, "b");
    run(&["nft", "add", "table", "ip", "filter"]);
    run(&[
        "nft",
        "add chain ip filter FORWARD { type filter hook forward priority 0; policy drop; }",
    ]);
    // Docker's situation: with br_netfilter even traffic inside the bridge is dropped.
    let state = default_net(vec![]);
    write_sysctls(Path::new("/proc/sys"), &required_sysctls(&state)).unwrap();
    assert!(tcp_get(Some(&t.a), "192.0.2.2:9000").is_err());
    firewall().apply(&state).unwrap();
    assert_eq!(our_forward_rules(), 2);
    assert_eq!(
        tcp_get(Some(&t.a), "192.0.2.2:9000").unwrap(),
        "outside peer=192.0.2.1"
    );
    assert!(tcp_get(Some(&t.a), "10.88.0.3:80").is_ok());
    // Applying again replaces the accepts instead of adding more.
    firewall().apply(&state).unwrap();
    assert_eq!(our_forward_rules(), 2);
    firewall().teardown().unwrap();
    assert_eq!(our_forward_rules(), 0);
    assert!(!tables().contains(TABLE));
    assert!(
        tables().contains("table ip filter"),
        "another table was touched"
    );
    assert!(tcp_get(Some(&t.a), "192.0.2.2:9000").is_err());
});

netns_test!(foreign_forward_drop_accepts_the_documented_mark, || {
    let t = Topo::new();
    tcp_server(&t.outside, 9000, "outside");
    run(&["nft", "add", "table", "inet", "hostfw"]);
    run(&[
        "nft",
        "add chain inet hostfw forward { type filter hook forward priority 0; policy drop; }",
    ]);
    apply(&default_net(vec![]));
    assert!(tcp_get(Some(&t.a), "192.0.2.2:9000").is_err());
    run(&[
        "nft",
        "add rule inet hostfw forward meta mark & 0x20000000 == 0x20000000 accept",
    ]);
    assert_eq!(
        tcp_get(Some(&t.a), "192.0.2.2:9000").unwrap(),
        "outside peer=192.0.2.1"
    );
});

netns_test!(teardown_leaves_nothing_and_is_idempotent, || {
    let _t = Topo::new();
    apply(&default_net(vec![published(
        "10.88.0.2",
        "net0",
        "8080:80",
    )]));
    assert!(tables().contains(&format!("table inet {TABLE}")));
    firewall().teardown().unwrap();
    assert_eq!(tables().trim(), "");
    firewall().teardown().unwrap();
    assert_eq!(run(&["nft", "list", "ruleset"]).trim(), "");
});

netns_test!(failed_batch_changes_nothing_and_names_the_line, || {
    let _t = Topo::new();
    let state = default_net(vec![published("10.88.0.2", "net0", "8080:80")]);
    apply(&state);
    let before = run(&["nft", "list", "ruleset"]);
    let bad = format!(
        "add table inet {TABLE}\ndelete table inet {TABLE}\ntable inet {TABLE} {{\n}}\nadd rule inet {TABLE} nosuchchain accept\n"
    );
    let err = Nft::default()
        .run_script("test batch", &bad)
        .unwrap_err()
        .to_string();
    assert!(err.contains("nosuchchain"), "{err}");
    assert!(err.contains("script line 5"), "{err}");
    assert_eq!(run(&["nft", "list", "ruleset"]), before);
    // Invalid state is refused before anything is applied.
    let mut conflicting = state.clone();
    conflicting
        .ports
        .push(published("10.88.0.3", "net0", "0.0.0.0:8080:81"));
    assert!(firewall().apply(&conflicting).is_err());
    assert_eq!(run(&["nft", "list", "ruleset"]), before);
});
