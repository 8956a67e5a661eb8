//! The DNS responder as a real process, on loopback only: names, aliases, short
//! ids, PTR, forwarding to an upstream (a fake one run by the test, also on
//! loopback), internal networks, live updates, and exiting when no network is left.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use coracle_network::dns::records::{self, Entry, NetworkRecords};
use coracle_network::dns::wire::{self, Rdata};
use coracle_network::dns::{ensure_running, running_pid};

const BIN: &str = env!("CARGO_BIN_EXE_coracle-dns");

/// A free UDP port on `addr` (bound, then released: tests use distinct addresses,
/// so a collision would only make a test retry-fail, never cross talk).
fn free_port(addr: &str) -> u16 {
    UdpSocket::bind(format!("{addr}:0"))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The responder process; killed by its pid if the test ends early.
struct Responder {
    pid: i32,
    _dir: tempfile::TempDir,
    config: PathBuf,
    run: PathBuf,
    port: u16,
}

impl Responder {
    fn start(networks: &[NetworkRecords], port: u16) -> Responder {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config");
        let run = dir.path().join("run");
        for n in networks {
            records::write(&config, n).unwrap();
        }
        let pid = ensure_running(Path::new(BIN), &config, &run, port).unwrap();
        Responder {
            pid,
            _dir: dir,
            config,
            run,
            port,
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if self.pid == 0 {
            return; // already reaped: the pid may belong to someone else by now
        }
        // Only our own child, by pid.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid),
            nix::sys::signal::SIGKILL,
        );
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(self.pid), None);
    }
}

/// Ask `server` about `name`; retries (bounded) while the responder starts.
fn ask(server: SocketAddr, name: &str, qtype: u16) -> (u8, Vec<Rdata>) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut id = 1u16;
    while Instant::now() < deadline {
        id += 1;
        sock.send_to(&wire::build_query(id, name, qtype), server)
            .unwrap();
        let mut buf = [0u8; 1500];
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            assert_eq!(u16::from_be_bytes([buf[0], buf[1]]), id, "reply id");
            return wire::parse_reply(&buf[..n]).unwrap();
        }
    }
    panic!("no answer from {server} for {name}");
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn network(
    name: &str,
    listen: &str,
    internal: bool,
    upstream: Option<SocketAddr>,
) -> NetworkRecords {
    NetworkRecords {
        network: name.into(),
        listen: vec![ip(listen)],
        internal,
        upstreams: upstream.into_iter().collect(),
        entries: vec![Entry {
            names: vec!["web".into(), "3f2a9c1d7e4b".into(), "api".into()],
            ips: vec![ip("10.89.0.2")],
        }],
    }
}

/// A fake upstream resolver on `addr`: answers every A query with 192.0.2.77 and
/// counts the queries it got. Stops after `limit` queries or 20 s.
fn fake_upstream(addr: &str, limit: usize) -> (SocketAddr, Arc<AtomicUsize>) {
    let sock = UdpSocket::bind(format!("{addr}:0")).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let local = sock.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&count);
    std::thread::spawn(move || {
        let end = Instant::now() + Duration::from_secs(20);
        let mut buf = [0u8; 1500];
        while Instant::now() < end && c.load(Ordering::SeqCst) < limit {
            let Ok((n, peer)) = sock.recv_from(&mut buf) else {
                continue;
            };
            c.fetch_add(1, Ordering::SeqCst);
            if let Ok(q) = wire::parse_query(&buf[..n]) {
                let r = wire::build_reply(&buf[..n], &q, 0, &[Rdata::Ip(ip("192.0.2.77"))]);
                let _ = sock.send_to(&r, peer);
            }
        }
    });
    (local, count)
}

#[test]
fn names_aliases_short_ids_and_reverse_lookups() {
    let port = free_port("127.0.0.31");
    let r = Responder::start(&[network("backend", "127.0.0.31", false, None)], port);
    let server: SocketAddr = format!("127.0.0.31:{}", r.port).parse().unwrap();
    for name in ["web", "WEB", "3f2a9c1d7e4b", "api"] {
        assert_eq!(
            ask(server, name, wire::TYPE_A),
            (0, vec![Rdata::Ip(ip("10.89.0.2"))]),
            "{name}"
        );
    }
    // The name exists but has no IPv6 address: NOERROR, no records.
    assert_eq!(ask(server, "web", wire::TYPE_AAAA), (0, vec![]));
    assert_eq!(
        ask(server, "2.0.89.10.in-addr.arpa", wire::TYPE_PTR),
        (0, vec![Rdata::Ptr("web".into())])
    );
    // No upstream configured: not ours means NXDOMAIN.
    assert_eq!(ask(server, "db", wire::TYPE_A).0, wire::RCODE_NXDOMAIN);
    // Starting again finds the running responder.
    assert_eq!(
        ensure_running(Path::new(BIN), &r.config, &r.run, r.port).unwrap(),
        r.pid
    );
    assert_eq!(running_pid(&r.run, &r.config), Some(r.pid));
}

#[test]
fn other_names_are_forwarded_but_not_from_internal_networks() {
    let (upstream, count) = fake_upstream("127.0.0.33", 10);
    let port = free_port("127.0.0.32");
    let r = Responder::start(
        &[
            network("public", "127.0.0.32", false, Some(upstream)),
            network("sealed", "127.0.0.34", true, Some(upstream)),
        ],
        port,
    );
    let public: SocketAddr = format!("127.0.0.32:{}", r.port).parse().unwrap();
    let sealed: SocketAddr = format!("127.0.0.34:{}", r.port).parse().unwrap();
    assert_eq!(
        ask(public, "example.test", wire::TYPE_A),
        (0, vec![Rdata::Ip(ip("192.0.2.77"))])
    );
    let forwarded = count.load(Ordering::SeqCst);
    assert!(forwarded >= 1);
    // Container names still resolve on the internal network; nothing goes out.
    assert_eq!(
        ask(sealed, "web", wire::TYPE_A),
        (0, vec![Rdata::Ip(ip("10.89.0.2"))])
    );
    assert_eq!(
        ask(sealed, "example.test", wire::TYPE_A).0,
        wire::RCODE_NXDOMAIN
    );
    assert_eq!(
        count.load(Ordering::SeqCst),
        forwarded,
        "the internal network forwarded"
    );
}

#[test]
fn records_update_live_and_the_responder_exits_when_unneeded() {
    let port = free_port("127.0.0.35");
    let mut net = network("live", "127.0.0.35", false, None);
    let mut r = Responder::start(std::slice::from_ref(&net), port);
    let server: SocketAddr = format!("127.0.0.35:{}", r.port).parse().unwrap();
    assert_eq!(ask(server, "db", wire::TYPE_A).0, wire::RCODE_NXDOMAIN);
    net.entries.push(Entry {
        names: vec!["db".into()],
        ips: vec![ip("10.89.0.3")],
    });
    records::write(&r.config, &net).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while ask(server, "db", wire::TYPE_A).0 != 0 {
        assert!(Instant::now() < deadline, "new record never served");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        ask(server, "db", wire::TYPE_A).1,
        vec![Rdata::Ip(ip("10.89.0.3"))]
    );
    // No network left: the responder exits by itself.
    records::remove(&r.config, "live").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match nix::sys::wait::waitpid(
            nix::unistd::Pid::from_raw(r.pid),
            Some(nix::sys::wait::WaitPidFlag::WNOHANG),
        ) {
            Ok(nix::sys::wait::WaitStatus::Exited(_, code)) => {
                r.pid = 0;
                assert_eq!(code, 0);
                break;
            }
            _ => assert!(Instant::now() < deadline, "responder still running"),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(running_pid(&r.run, &r.config), None);
}
