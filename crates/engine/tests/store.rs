//! The engine store through its public API: names, resolution, the lifecycle
//! table on real records, concurrent writers (threads and processes), IPAM
//! allocation across processes, crashes mid-transaction, and migrations.
//!
//! Tests that need other processes re-run this test binary with
//! `CORACLE_STORE_CHILD=<role>` set: the `child` test then plays that role and
//! every other test is filtered out by name.

use std::collections::{BTreeSet, HashSet};
use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use coracle_engine::store::{
    ids, NewContainer, State, StateChange, Store, StoreError, Transition, MIGRATIONS,
};
use coracle_network::ipam::IpamStore;
use coracle_network::subnet::Subnet;
use serde_json::json;

const CHILD_ENV: &str = "CORACLE_STORE_CHILD";
const ROOT_ENV: &str = "CORACLE_STORE_ROOT";

fn new(name: Option<&str>) -> NewContainer {
    NewContainer {
        name: name.map(str::to_string),
        image: "busybox:latest".into(),
        image_id: "sha256:0123".into(),
        config: json!({"Cmd": ["httpd", "-f"], "Env": ["A=1"]}),
        ..Default::default()
    }
}

fn id_with_prefix(prefix: &str) -> String {
    format!("{prefix}{}", "0".repeat(64 - prefix.len()))
}

/// Runs the `child` test of this binary in a new process as `role`, on `root`.
fn child_command(role: &str, root: &Path) -> Command {
    let exe = std::env::current_exe().expect("test binary path");
    let mut cmd = Command::new(exe);
    cmd.args([
        "--exact",
        "child",
        "--nocapture",
        "--test-threads=1",
        "--quiet",
    ])
    .env(CHILD_ENV, role)
    .env(ROOT_ENV, root)
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    cmd
}

/// Lines a child printed with `tag`, without the tag.
fn tagged(stdout: &[u8], tag: &str) -> Vec<String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| l.strip_prefix(tag).map(str::to_string))
        .collect()
}

/// The roles a child process plays (does nothing in a normal test run).
#[test]
fn child() {
    let Ok(role) = std::env::var(CHILD_ENV) else {
        return;
    };
    let root = std::env::var(ROOT_ENV).expect("child needs its root");
    let store = Store::open(&root).expect("child opens the store");
    match role.as_str() {
        // What `coracle run -d` does to the store: create, start.
        "run" => {
            let rec = store.create_container(new(None)).expect("create");
            let pid = i32::try_from(std::process::id()).unwrap_or(1);
            store
                .update_state(
                    &rec.id,
                    Transition::Start,
                    StateChange {
                        pid: Some(pid),
                        ..Default::default()
                    },
                )
                .expect("start");
            println!("ID {}", rec.id);
        }
        "ipam" => {
            let subnet = Subnet::parse("10.88.0.0/16").expect("subnet");
            for i in 0..5 {
                let owner = format!("proc{}-{i}", std::process::id());
                let addr = store
                    .allocate_next("shared", &subnet, &owner)
                    .expect("allocate");
                println!("ADDR {addr}");
            }
        }
        // Commits containers one by one until killed.
        "commit-loop" => loop {
            let rec = store.create_container(new(None)).expect("create");
            store
                .update_state(&rec.id, Transition::Start, StateChange::default())
                .expect("start");
            println!("ID {}", rec.id);
        },
        // Opens a write transaction, writes half a change, and waits to be killed.
        "hold-transaction" => {
            drop(store);
            let conn = rusqlite::Connection::open(Path::new(&root).join("engine.db"))
                .expect("raw connection");
            conn.execute_batch(&format!(
                "BEGIN IMMEDIATE;
                 INSERT INTO containers (id, name, image, image_id, created, config, state)
                 VALUES ('{}', 'half', 'busybox', 'sha256:0', 0, '{{}}', 'created');",
                id_with_prefix("dead")
            ))
            .expect("half a transaction");
            println!("READY");
            thread::sleep(Duration::from_secs(120));
        }
        other => panic!("unknown child role {other}"),
    }
}

#[test]
fn name_conflicts_and_renames() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let web = s.create_container(new(Some("web"))).unwrap();
    let err = s.create_container(new(Some("/web"))).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "Conflict. The container name \"/web\" is already in use by container \"{}\". \
             You have to remove (or rename) that container to be able to reuse that name.",
            web.id
        )
    );
    let err = s.create_container(new(Some("w"))).unwrap_err();
    assert!(matches!(err, StoreError::InvalidName { .. }), "{err}");

    let db = s.create_container(new(Some("db"))).unwrap();
    let err = s.rename(&db.id, "web").unwrap_err();
    assert!(
        matches!(err, StoreError::NameConflict { ref id, .. } if *id == web.id),
        "{err}"
    );
    let err = s.rename(&db.id, "db").unwrap_err();
    assert!(matches!(err, StoreError::SameName { .. }), "{err}");
    let err = s.rename(&db.id, "bad name").unwrap_err();
    assert!(matches!(err, StoreError::InvalidName { .. }), "{err}");
    assert_eq!(s.rename(&db.id, "/database").unwrap().name, "database");

    // A removed container's name is free again.
    s.remove(&web.id).unwrap();
    let again = s.create_container(new(Some("web"))).unwrap();
    assert_ne!(again.id, web.id);
    assert_eq!(s.resolve("web").unwrap().id, again.id);
}

#[test]
fn resolution_follows_dockers_order() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let mk = |id: &str, name: &str| {
        let mut n = new(Some(name));
        n.id = Some(id.to_string());
        s.create_container(n).unwrap()
    };
    let a = mk(&id_with_prefix("abc1"), "alpha");
    let b = mk(&id_with_prefix("abc2"), "beta");
    // A container named like an ambiguous prefix, and one named like a's id.
    let named_abc = mk(&id_with_prefix("ffff"), "abc");
    let named_like_a = mk(&id_with_prefix("eeee"), &a.id);

    // Exact id beats a name equal to it.
    assert_eq!(s.resolve(&a.id).unwrap().id, a.id);
    assert_ne!(named_like_a.id, a.id);
    // Exact name, with or without '/'.
    assert_eq!(s.resolve("beta").unwrap().id, b.id);
    assert_eq!(s.resolve("/beta").unwrap().id, b.id);
    // A name beats an (ambiguous) prefix.
    assert_eq!(s.resolve("abc").unwrap().id, named_abc.id);
    // Unique prefixes.
    assert_eq!(s.resolve("abc1").unwrap().id, a.id);
    assert_eq!(s.resolve("abc2").unwrap().id, b.id);
    assert_eq!(s.resolve("e").unwrap().id, named_like_a.id);
    // Ambiguous prefix: an error naming the prefix and the matches.
    let err = s.resolve("ab").unwrap_err();
    match &err {
        StoreError::AmbiguousPrefix { prefix, ids } => {
            assert_eq!(prefix, "ab");
            assert_eq!(
                ids,
                &vec![a.short_id().to_string(), b.short_id().to_string()]
            );
        }
        other => panic!("expected an ambiguous prefix, got {other}"),
    }
    assert!(err.to_string().contains("\"ab\""), "{err}");
    // Not found, including things that are no prefix at all.
    for missing in ["0000", "nosuch", "", "ABC1", "abc%", "abc_"] {
        let err = s.resolve(missing).unwrap_err();
        assert_eq!(err.to_string(), format!("No such container: {missing}"));
    }
    assert_eq!(
        s.get("abc1").unwrap_err().to_string(),
        "No such container: abc1"
    );
}

/// Drives a fresh container into `state` along a valid path.
fn container_in(s: &Store, state: State) -> String {
    use Transition::*;
    let path: &[Transition] = match state {
        State::Created => &[],
        State::Running => &[Start],
        State::Paused => &[Start, Pause],
        State::Restarting => &[Start, Restart],
        State::Exited => &[Start, Exit],
        State::Removing => &[Remove],
        State::Dead => &[Remove, Die],
    };
    let id = s.create_container(new(None)).unwrap().id;
    for t in path {
        s.update_state(&id, *t, StateChange::default()).unwrap();
    }
    assert_eq!(s.get(&id).unwrap().state, state);
    id
}

#[test]
fn lifecycle_table_on_records() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    for from in State::ALL {
        for t in Transition::ALL {
            let id = container_in(&s, from);
            let before = s.get(&id).unwrap();
            match (
                t.apply(from),
                s.update_state(&id, t, StateChange::default()),
            ) {
                (Some(to), Ok(rec)) => assert_eq!(rec.state, to, "{t:?} from {from}"),
                (
                    None,
                    Err(StoreError::InvalidTransition {
                        from: f,
                        transition,
                        ..
                    }),
                ) => {
                    assert_eq!((f, transition), (from, t));
                    assert_eq!(
                        s.get(&id).unwrap(),
                        before,
                        "refused {t:?} changed the record"
                    );
                }
                (want, got) => panic!("{t:?} from {from}: want {want:?}, got {got:?}"),
            }
        }
    }
    let id = container_in(&s, State::Exited);
    let err = s
        .update_state(&id, Transition::Pause, StateChange::default())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot pause container {}: it is exited",
            ids::short_id(&id)
        )
    );
    let err = s
        .update_state("nosuch", Transition::Start, StateChange::default())
        .unwrap_err();
    assert_eq!(err.to_string(), "No such container: nosuch");
}

#[test]
fn remove_refuses_active_containers_and_list_filters_them() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let running = container_in(&s, State::Running);
    let paused = container_in(&s, State::Paused);
    let exited = container_in(&s, State::Exited);
    let created = container_in(&s, State::Created);

    let active: BTreeSet<String> = s.list(false).unwrap().into_iter().map(|r| r.id).collect();
    assert_eq!(active, BTreeSet::from([running.clone(), paused.clone()]));
    let all = s.list(true).unwrap();
    assert_eq!(all.len(), 4);
    assert!(
        all.windows(2).all(|w| w[0].created >= w[1].created),
        "newest first"
    );

    let err = s.remove(&running).unwrap_err();
    assert!(
        err.to_string().contains("it is running") && err.to_string().contains("force"),
        "{err}"
    );
    // Forced removal: move it to removing, then remove.
    s.update_state(&running, Transition::Remove, StateChange::default())
        .unwrap();
    s.remove(&running).unwrap();
    s.remove(&exited).unwrap();
    s.remove(&created).unwrap();
    assert!(matches!(
        s.remove(&created),
        Err(StoreError::NoSuchContainer(_))
    ));
    assert_eq!(s.list(true).unwrap().len(), 1);
}

#[test]
fn concurrent_writers_in_threads() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let n = 20;
    let barrier = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let root = root.clone();
            let barrier = barrier.clone();
            thread::spawn(move || {
                // Everyone opens (and migrates) the fresh database at once.
                barrier.wait();
                let s = Store::open(&root).unwrap();
                let rec = s.create_container(new(Some(&format!("c{i}")))).unwrap();
                for t in [Transition::Start, Transition::Pause, Transition::Unpause] {
                    s.update_state(&rec.id, t, StateChange::default()).unwrap();
                }
                s.update_state(
                    &rec.id,
                    Transition::Exit,
                    StateChange {
                        exit_code: Some(i as i32),
                        ..Default::default()
                    },
                )
                .unwrap();
                rec.id
            })
        })
        .collect();
    let ids: HashSet<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(ids.len(), n);
    let s = Store::open(&root).unwrap();
    assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as i64);
    let all = s.list(true).unwrap();
    assert_eq!(all.len(), n);
    assert!(all.iter().all(|r| r.state == State::Exited));
    s.check_integrity().unwrap();
}

/// Many connections opening a new database at once race to switch it to WAL
/// and to migrate it; none may fail.
#[test]
fn new_database_opened_by_many_at_once() {
    for _round in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let barrier = Arc::new(Barrier::new(8));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let root = root.clone();
                let barrier = barrier.clone();
                thread::spawn(move || {
                    barrier.wait();
                    Store::open(&root).map(|s| s.schema_version())
                })
            })
            .collect();
        for h in handles {
            let version = h.join().unwrap().unwrap().unwrap();
            assert_eq!(version, MIGRATIONS.len() as i64);
        }
    }
}

#[test]
fn concurrent_runs_in_processes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let children: Vec<_> = (0..20)
        .map(|_| child_command("run", &root).spawn().unwrap())
        .collect();
    // Every child is waited for before anything is asserted: the tempdir must
    // outlive them.
    let outputs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let mut ids = HashSet::new();
    for out in outputs {
        assert!(
            out.status.success(),
            "a `run` process failed: {:?}",
            out.status
        );
        ids.extend(tagged(&out.stdout, "ID "));
    }
    assert_eq!(ids.len(), 20);
    let s = Store::open(&root).unwrap();
    let all = s.list(false).unwrap();
    assert_eq!(all.len(), 20);
    let names: HashSet<&str> = all.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names.len(), 20, "generated names are unique");
    assert!(all.iter().all(|r| r.state == State::Running && r.pid > 0));
    s.check_integrity().unwrap();
}

#[test]
fn ipam_allocations_from_threads_are_distinct() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    Store::open(&root).unwrap();
    let barrier = Arc::new(Barrier::new(50));
    let handles: Vec<_> = (0..50)
        .map(|i| {
            let root = root.clone();
            let barrier = barrier.clone();
            thread::spawn(move || {
                let s = Store::open(&root).unwrap();
                let subnet = Subnet::parse("172.30.0.0/24").unwrap();
                barrier.wait();
                s.allocate_next("bridge", &subnet, &format!("c{i}"))
                    .unwrap()
            })
        })
        .collect();
    let addrs: HashSet<Ipv4Addr> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(addrs.len(), 50);
    let s = Store::open(&root).unwrap();
    assert_eq!(IpamStore::list(&s, "bridge").unwrap().len(), 50);
    // Sequential allocation handed out exactly the first 50 host addresses.
    let expected: HashSet<Ipv4Addr> = (2..52).map(|i| Ipv4Addr::new(172, 30, 0, i)).collect();
    assert_eq!(addrs, expected);
}

#[test]
fn ipam_allocations_from_processes_are_distinct() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let children: Vec<_> = (0..10)
        .map(|_| child_command("ipam", &root).spawn().unwrap())
        .collect();
    // Every child is waited for before anything is asserted: the tempdir must
    // outlive them.
    let outputs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let mut addrs = Vec::new();
    for out in outputs {
        assert!(out.status.success(), "an allocating process failed");
        addrs.extend(tagged(&out.stdout, "ADDR "));
    }
    assert_eq!(addrs.len(), 50);
    let distinct: HashSet<&String> = addrs.iter().collect();
    assert_eq!(distinct.len(), 50, "{addrs:?}");
    let s = Store::open(&root).unwrap();
    assert_eq!(s.load("shared").unwrap().allocations.len(), 50);
}

#[test]
fn killed_mid_transaction_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let s = Store::open(&root).unwrap();
    let kept = s.create_container(new(Some("kept"))).unwrap();
    drop(s);

    let mut child = child_command("hold-transaction", &root).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = lines.any(|l| l.map(|l| l == "READY").unwrap_or(false));
    assert!(ready, "the child never opened its transaction");
    assert!(root.join("engine.db-wal").exists(), "WAL mode");
    child.kill().unwrap();
    child.wait().unwrap();

    let s = Store::open(&root).unwrap();
    s.check_integrity().unwrap();
    assert!(matches!(
        s.resolve("half"),
        Err(StoreError::NoSuchContainer(_))
    ));
    assert_eq!(s.resolve("kept").unwrap().id, kept.id);
    // The dead process's lock is gone: writing works at once.
    let w = s.create_container(new(Some("half"))).unwrap();
    assert_eq!(s.resolve("half").unwrap().id, w.id);
}

#[test]
fn killed_between_commits_loses_nothing_committed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let mut child = child_command("commit-loop", &root).spawn().unwrap();
    let reader = BufReader::new(child.stdout.take().unwrap());
    let mut seen = Vec::new();
    for line in reader.lines() {
        let line = line.unwrap();
        if let Some(id) = line.strip_prefix("ID ") {
            seen.push(id.to_string());
            if seen.len() == 30 {
                break;
            }
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(seen.len(), 30);

    let s = Store::open(&root).unwrap();
    s.check_integrity().unwrap();
    let all = s.list(true).unwrap();
    for id in &seen {
        let rec = s.get(id).unwrap();
        assert_eq!(rec.state, State::Running);
    }
    // It may have committed more before the kill, but every record is whole:
    // created then started, or only created (killed between the two).
    assert!(all.len() >= 30);
    assert!(all
        .iter()
        .all(|r| matches!(r.state, State::Running | State::Created)));
}

#[test]
fn migrations_apply_to_an_existing_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("engine.db");
    // A database as the first schema version left it, with a container in it.
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL;").unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY NOT NULL, \
             applied_at INTEGER NOT NULL);",
        )
        .unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (1, 0)",
            [],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO containers (id, name, image, image_id, created, config, state) \
             VALUES (?1, 'old', 'busybox', 'sha256:1', 1, '{\"Cmd\":[\"sh\"]}', 'exited')",
            [id_with_prefix("0ld")],
        )
        .unwrap();
    }
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as i64);
    let old = s.resolve("old").unwrap();
    assert_eq!(old.state, State::Exited);
    assert_eq!(old.config, json!({"Cmd": ["sh"]}));
    assert_eq!(old.extra, json!({}));
    drop(s);
    // The later migrations' objects exist, and a second open applies nothing.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let index: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'containers_by_created'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(index, 1);
    drop(conn);
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as i64);
    s.check_integrity().unwrap();
}
