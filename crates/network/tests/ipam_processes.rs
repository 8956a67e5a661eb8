//! Separate processes allocating from one FileStore at the same time never get one
//! address twice.
//!
//! The parent tests re-run this test executable once per allocation, selecting
//! only the ignored `child_allocate_once` test and passing what to do in
//! environment variables. Every child waits for a start file, so they all hit the
//! store together, allocates one address and prints it on a line of its own.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use coracle_network::ipam::{FileStore, IpamError, IpamStore};
use coracle_network::subnet::Subnet;

const ENV_DIR: &str = "CORACLE_IPAM_CHILD_DIR";
const ENV_SUBNET: &str = "CORACLE_IPAM_CHILD_SUBNET";
const ENV_OWNER: &str = "CORACLE_IPAM_CHILD_OWNER";
const ENV_GO: &str = "CORACLE_IPAM_CHILD_GO";
const NETWORK: &str = "racenet";

/// The child side: does nothing unless the parent set the environment.
#[test]
#[ignore = "run by the multi-process tests as a child process"]
fn child_allocate_once() {
    let (Ok(dir), Ok(subnet), Ok(owner), Ok(go)) = (
        std::env::var(ENV_DIR),
        std::env::var(ENV_SUBNET),
        std::env::var(ENV_OWNER),
        std::env::var(ENV_GO),
    ) else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !Path::new(&go).exists() {
        assert!(Instant::now() < deadline, "start file {go} never appeared");
        std::thread::sleep(Duration::from_millis(2));
    }
    let subnet = Subnet::parse(&subnet).unwrap();
    let store = FileStore::open(dir).unwrap();
    match store.allocate_next(NETWORK, &subnet, &owner) {
        Ok(addr) => println!("IPAM-ADDR {addr}"),
        Err(IpamError::SubnetFull { .. }) => println!("IPAM-FULL"),
        Err(e) => panic!("{e}"),
    }
}

enum Outcome {
    Addr(Ipv4Addr),
    Full,
}

/// Starts `n` children against one store, releases them together and returns
/// what each one got, failing if any takes longer than the deadline.
fn run_children(subnet: &str, n: usize) -> (tempfile::TempDir, Vec<(String, Outcome)>) {
    let root = tempfile::tempdir().unwrap();
    let store_dir = root.path().join("ipam");
    let go = root.path().join("go");
    let exe = std::env::current_exe().unwrap();
    let mut children: Vec<(String, Child)> = (0..n)
        .map(|i| {
            let owner = format!("ctr{i:02}");
            let child = Command::new(&exe)
                .args([
                    "child_allocate_once",
                    "--exact",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(ENV_DIR, &store_dir)
                .env(ENV_SUBNET, subnet)
                .env(ENV_OWNER, &owner)
                .env(ENV_GO, &go)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (owner, child)
        })
        .collect();
    std::fs::write(&go, b"").unwrap();

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut running = 0;
        for (_, c) in children.iter_mut() {
            if c.try_wait().unwrap().is_none() {
                running += 1;
            }
        }
        if running == 0 {
            break;
        }
        if Instant::now() > deadline {
            for (_, c) in children.iter_mut() {
                let _ = c.kill();
                let _ = c.wait();
            }
            panic!("{running} of {n} allocating processes still running after 60 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }

    let outcomes = children
        .into_iter()
        .map(|(owner, c)| {
            let out = c.wait_with_output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "child {owner} failed: {}\n{stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            // libtest prints "test child_allocate_once ... " on the same line.
            let outcome = stdout
                .split_whitespace()
                .skip_while(|w| !w.starts_with("IPAM-"))
                .collect::<Vec<_>>();
            let outcome = match outcome.as_slice() {
                ["IPAM-FULL", ..] => Some(Outcome::Full),
                ["IPAM-ADDR", a, ..] => Some(Outcome::Addr(a.parse().unwrap())),
                _ => None,
            }
            .unwrap_or_else(|| panic!("child {owner} printed no result:\n{stdout}"));
            (owner, outcome)
        })
        .collect();
    (root, outcomes)
}

#[test]
fn fifty_processes_get_fifty_distinct_addresses() {
    let subnet = Subnet::parse("10.200.0.0/26").unwrap(); // 61 assignable
    let (root, outcomes) = run_children("10.200.0.0/26", 50);
    let mut seen = HashSet::new();
    for (owner, outcome) in &outcomes {
        let Outcome::Addr(addr) = outcome else {
            panic!("{owner} found the subnet full");
        };
        assert!(subnet.is_assignable(*addr), "{owner} got {addr}");
        assert!(seen.insert(*addr), "{addr} handed out twice");
    }
    assert_eq!(seen.len(), 50);

    // The record agrees with what the processes were told.
    let store = FileStore::open(root.path().join("ipam")).unwrap();
    let list = store.list(NETWORK).unwrap();
    assert_eq!(list.len(), 50);
    for (owner, outcome) in &outcomes {
        let Outcome::Addr(addr) = outcome else {
            unreachable!()
        };
        assert!(list.iter().any(|a| a.owner == *owner && a.address == *addr));
    }
    // Sequential allocation from an empty record hands out exactly the first 50.
    let expected: HashSet<Ipv4Addr> = subnet.hosts().take(50).collect();
    assert_eq!(seen, expected);
}

#[test]
fn more_processes_than_addresses_fill_the_subnet_exactly() {
    let subnet = Subnet::parse("10.201.0.0/28").unwrap(); // 13 assignable
    let (_root, outcomes) = run_children("10.201.0.0/28", 20);
    let addrs: Vec<Ipv4Addr> = outcomes
        .iter()
        .filter_map(|(_, o)| match o {
            Outcome::Addr(a) => Some(*a),
            Outcome::Full => None,
        })
        .collect();
    let distinct: HashSet<Ipv4Addr> = addrs.iter().copied().collect();
    assert_eq!(addrs.len(), 13, "every assignable address handed out once");
    assert_eq!(distinct, subnet.hosts().collect());
}
