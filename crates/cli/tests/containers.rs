//! Containers end to end, driven through the `coracle` binary as a user drives it, each test in
//! its own throwaway host (network and mount namespace held by a `sleep` we start and kill by
//! PID) with its own roots, bridge, subnet and cgroup parent. What is checked is what the seed
//! article shows: PID 1, the hostname, `eth0` and its default route, the veth on the bridge,
//! PPID 0 for an exec'd process, the shim above the container's PID 1.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{require_root, Host};

#[test]
fn the_seed_scenario_pid1_hostname_eth0_route_veth_published_port_and_the_shim_tree() {
    if !require_root() {
        return;
    }
    let h = Host::new("c");
    let id = h
        .ok(&[
            "run",
            "-d",
            "--name",
            "web",
            "-p",
            "8080:80",
            "box",
            "sh",
            "-c",
            "mkdir -p /www && echo seed-page > /www/index.html && exec httpd -f -p 80 -h /www",
        ])
        .trim()
        .to_string();
    assert_eq!(id.len(), 64, "run -d prints the full id: {id}");
    let short = &id[..12];

    // PID 1 is the container's process; an exec'd process has PPID 0.
    let ps = h.ok(&["exec", "web", "ps", "-o", "pid,ppid,comm"]);
    let rows: Vec<Vec<&str>> = ps
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(rows.iter().any(|r| r[0] == "1" && r[2] == "httpd"), "{ps}");
    assert!(
        rows.iter().any(|r| r[1] == "0" && r[2] == "ps"),
        "exec'd ps has PPID 0: {ps}"
    );
    // The hostname is the short id.
    assert_eq!(h.ok(&["exec", "web", "hostname"]).trim(), short);
    // eth0 has the first free address of the subnet and a default route via the gateway.
    let inspect = h.inspect("web");
    let ip = inspect["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        ip.starts_with(h.subnet.rsplit_once('.').unwrap().0),
        "{ip} in {}",
        h.subnet
    );
    let addr = h.ok(&["exec", "web", "ip", "-4", "addr", "show", "eth0"]);
    assert!(addr.contains(&format!("inet {ip}/24")), "{addr}");
    let route = h.ok(&["exec", "web", "ip", "route"]);
    assert!(
        route.contains(&format!("default via {}", h.gateway)),
        "{route}"
    );
    assert_eq!(inspect["NetworkSettings"]["Gateway"], h.gateway);
    assert!(inspect["NetworkSettings"]["MacAddress"]
        .as_str()
        .unwrap()
        .starts_with("02:42:"));
    // On the host: the bridge and a veth enslaved to it.
    let links = h.sh(&format!("ip -o link show master {}", h.bridge));
    assert!(links.contains(": veth"), "{links}");
    // The published port answers from the host, on loopback and on the bridge address.
    for addr in ["127.0.0.1", h.gateway.as_str()] {
        let page = h.sh(&format!(
            "busybox timeout 5 busybox wget -qO- http://{addr}:8080/"
        ));
        assert_eq!(page, "seed-page\n", "via {addr}");
    }
    let port = h.ok(&["port", "web"]);
    assert_eq!(port.trim(), "80/tcp -> 0.0.0.0:8080");
    // The process tree: the container's PID 1 is a child of its own coracle-shim.
    let pid = inspect["State"]["Pid"].as_i64().unwrap();
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let ppid: i32 = stat
        .rsplit_once(") ")
        .unwrap()
        .1
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let parent = fs::read(format!("/proc/{ppid}/cmdline")).unwrap();
    assert!(
        String::from_utf8_lossy(&parent).contains("coracle-shim"),
        "parent of PID 1: {:?}",
        String::from_utf8_lossy(&parent)
    );
    assert_eq!(
        fs::read_to_string(format!("/proc/{ppid}/comm")).unwrap(),
        "coracle-shim\n"
    );
    // The shim runs from a read-only mount of its binary (CVE-2019-5736).
    let exe = nix::sys::statvfs::statvfs(format!("/proc/{ppid}/exe").as_str()).unwrap();
    assert!(
        exe.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY),
        "the shim's executable is writable: {:?}",
        exe.flags()
    );

    let ps = h.ok(&["ps"]);
    assert!(ps.starts_with("CONTAINER ID   IMAGE"), "{ps}");
    assert!(
        ps.contains(short)
            && ps.contains("Up ")
            && ps.contains("0.0.0.0:8080->80/tcp")
            && ps.contains(" web"),
        "{ps}"
    );

    // rm -f removes the container, its veth, netns pin, mount and cgroup.
    assert_eq!(h.ok(&["rm", "-f", "web"]).trim(), "web");
    // Nothing of it still runs: not its shim, nor an exit command racing rm's teardown.
    let left = h.coracle_processes();
    assert!(left.is_empty(), "still running after rm -f: {left:?}");
    assert_eq!(h.ok(&["ps", "-aq"]), "");
    let links = h.sh(&format!("ip -o link show master {} || true", h.bridge));
    assert!(!links.contains("veth"), "veth left: {links}");
    let mounts = h.sh("cat /proc/self/mountinfo");
    assert!(!mounts.contains(&id), "mounts left: {mounts}");
    assert!(!Path::new(&format!("/sys/fs/cgroup/memory{}/{id}", h.cgroup_parent)).exists());
}

#[test]
fn a_foreground_run_streams_output_returns_the_exit_code_and_rm_removes_it() {
    if !require_root() {
        return;
    }
    let h = Host::new("c");
    let out = h.coracle(&[
        "run",
        "--rm",
        "box",
        "sh",
        "-c",
        "echo to-out; echo to-err >&2; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "to-out\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("to-err\n"));
    assert_eq!(h.ok(&["ps", "-aq"]), "", "--rm left the container");

    // Not found: 127; not executable: 126; both leave a created container behind (as docker).
    let err = h.fails(&["run", "--name", "nf", "box", "no-such-command"], 127);
    assert!(err.contains("no-such-command"), "{err}");
    let err = h.fails(&["run", "--rm", "box", "/etc/passwd"], 126);
    assert!(!err.is_empty());
    h.ok(&["rm", "-f", "nf"]);

    // Logs survive the container's end (and its shim's).
    h.ok(&[
        "run",
        "--name",
        "talker",
        "box",
        "sh",
        "-c",
        "echo one; echo two >&2",
    ]);
    let out = h.coracle(&["logs", "talker"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "one\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "two\n");
    assert_eq!(h.ok(&["logs", "--tail", "1", "talker"]), "");
    // A foreground `run --rm` whose client dies: the shim's call-back removes the
    // container when it exits (the client no longer can).
    let mut client = h
        .coracle_cmd(&["run", "--rm", "--name", "orphaned", "box", "sleep", "2"])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = h.coracle(&["inspect", "-f", "{{.State.Status}}", "orphaned"]);
        if String::from_utf8_lossy(&out.stdout).trim() == "running" {
            break;
        }
        assert!(Instant::now() < deadline, "orphaned never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
    client.kill().unwrap();
    let _ = client.wait();
    let deadline = Instant::now() + Duration::from_secs(20);
    while h
        .ok(&["ps", "-a", "--format", "{{.Names}}"])
        .contains("orphaned")
    {
        assert!(
            Instant::now() < deadline,
            "orphaned --rm container never removed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let inspect = h.inspect("talker");
    assert_eq!(inspect["State"]["Status"], "exited");
    assert_eq!(inspect["State"]["ExitCode"], 0);
    assert_eq!(h.ok(&["wait", "talker"]).trim(), "0");
}

#[test]
fn attach_streams_live_output_and_stdin() {
    if !require_root() {
        return;
    }
    let h = Host::new("c");
    h.ok(&[
        "run",
        "-d",
        "-i",
        "--name",
        "echoer",
        "box",
        "sh",
        "-c",
        "while read l; do echo got:$l; echo err:$l >&2; done",
    ]);
    let mut child = h
        .coracle_cmd(&["attach", "echoer"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"one\ntwo\n").unwrap();
    } // EOF on stdin ends the loop, and the container.
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "got:one\ngot:two\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err:one\nerr:two\n");
    assert_eq!(out.status.code(), Some(0));
    let err = h.fails(&["attach", "echoer"], 1);
    assert!(
        err.contains("cannot attach to a stopped container"),
        "{err}"
    );
}

#[test]
fn cp_copies_both_ways_and_never_leaves_the_container_root() {
    if !require_root() {
        return;
    }
    let h = Host::new("c");
    h.ok(&["run", "-d", "--name", "box1", "box", "sh", "-c",
        "mkdir -p /data/sub && echo inner > /data/sub/f && ln -s /etc/hostname /data/link && ln -s / /escape && echo in-the-container > /etc/marker && exec sleep 600"]);
    let out = h.dir.path().join("out");
    fs::create_dir(&out).unwrap();
    // Container -> host: a directory, with its symlink copied as a symlink.
    h.ok(&["cp", "box1:/data", out.to_str().unwrap()]);
    assert_eq!(
        fs::read_to_string(out.join("data/sub/f")).unwrap(),
        "inner\n"
    );
    assert_eq!(
        fs::read_link(out.join("data/link")).unwrap(),
        Path::new("/etc/hostname")
    );
    // A symlink that points at the container's / resolves inside the container, not to the
    // host's /: /escape/etc/marker exists only in the container.
    h.ok(&[
        "cp",
        "box1:/escape/etc/marker",
        out.join("marker").to_str().unwrap(),
    ]);
    assert_eq!(
        fs::read_to_string(out.join("marker")).unwrap(),
        "in-the-container\n"
    );
    // Host -> container: a file and a directory.
    let src = h.dir.path().join("in");
    fs::create_dir_all(src.join("deep")).unwrap();
    fs::write(src.join("deep/x"), "from the host").unwrap();
    h.ok(&["cp", src.to_str().unwrap(), "box1:/data/"]);
    assert_eq!(
        h.ok(&["exec", "box1", "cat", "/data/in/deep/x"]),
        "from the host"
    );
    // Writing through a symlink the container planted is refused, and the host file behind
    // it is untouched.
    fs::write(out.join("victim"), "safe").unwrap();
    h.ok(&[
        "exec",
        "box1",
        "ln",
        "-s",
        out.join("victim").to_str().unwrap(),
        "/data/trap",
    ]);
    let file = h.dir.path().join("payload");
    fs::write(&file, "evil").unwrap();
    let err = h.fails(&["cp", file.to_str().unwrap(), "box1:/data/trap"], 1);
    assert!(err.contains("trap"), "{err}");
    assert_eq!(fs::read_to_string(out.join("victim")).unwrap(), "safe");
    // A stopped container's files can be copied too.
    h.ok(&["stop", "-t", "1", "box1"]);
    h.ok(&[
        "cp",
        "box1:/data/sub/f",
        out.join("after-stop").to_str().unwrap(),
    ]);
    assert_eq!(
        fs::read_to_string(out.join("after-stop")).unwrap(),
        "inner\n"
    );
    let err = h.fails(&["cp", "box1:/nope", out.to_str().unwrap()], 1);
    assert!(
        err.contains("Could not find the file /nope in container box1"),
        "{err}"
    );
}

#[test]
fn network_modes_host_none_and_container() {
    if !require_root() {
        return;
    }
    let h = Host::new("c");
    // none: only lo.
    let links = h.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "box",
        "ip",
        "-o",
        "link",
    ]);
    assert_eq!(links.lines().count(), 1, "{links}");
    assert!(links.contains("lo:"));
    // host: the throwaway host's own interfaces (its lo, and the bridge once one exists).
    h.ok(&["run", "-d", "--name", "first", "box"]);
    let links = h.ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        "box",
        "ip",
        "-o",
        "link",
    ]);
    assert!(links.contains(&h.bridge), "{links}");
    // container:<name>: the same eth0 as the other container.
    let theirs = h.ok(&["exec", "first", "ip", "-4", "-o", "addr", "show", "eth0"]);
    let ours = h.ok(&[
        "run",
        "--rm",
        "--network",
        "container:first",
        "box",
        "ip",
        "-4",
        "-o",
        "addr",
        "show",
        "eth0",
    ]);
    let addr = |s: &str| s.split_whitespace().nth(3).map(String::from);
    assert_eq!(addr(&ours), addr(&theirs));
    let err = h.fails(
        &[
            "run",
            "--rm",
            "--network",
            "container:nobody",
            "box",
            "true",
        ],
        125,
    );
    assert!(err.contains("nobody"), "{err}");
}

#[test]
fn limits_are_enforced_inside() {
    if !require_root() {
        return;
    }
    let h = Host::new("c");
    let id = h
        .ok(&[
            "run",
            "-d",
            "--memory",
            "64m",
            "--pids-limit",
            "20",
            "--cpus",
            "0.5",
            "box",
        ])
        .trim()
        .to_string();
    let cg = |ctrl: &str, file: &str| {
        fs::read_to_string(format!(
            "/sys/fs/cgroup/{ctrl}{}/{id}/{file}",
            h.cgroup_parent
        ))
        .unwrap_or_else(|e| panic!("{ctrl}/{file}: {e}"))
    };
    assert_eq!(
        cg("memory", "memory.limit_in_bytes").trim(),
        (64 * 1024 * 1024).to_string()
    );
    assert_eq!(cg("pids", "pids.max").trim(), "20");
    assert_eq!(cg("cpu", "cpu.cfs_quota_us").trim(), "50000");
    // Docker's default capabilities: no CAP_SYS_ADMIN, so mounting is refused.
    let out = h.coracle(&["exec", &id, "mount", "-t", "tmpfs", "x", "/mnt"]);
    assert_ne!(out.status.code(), Some(0));
    let status = h.ok(&[
        "exec",
        &id,
        "grep",
        "-E",
        "^(CapEff|Seccomp|NoNewPrivs):",
        "/proc/self/status",
    ]);
    assert!(status.contains("CapEff:\t00000000a80425fb"), "{status}");
    assert!(status.contains("Seccomp:\t2"), "{status}");
    // The pids limit bites: 30 background sleeps cannot all start.
    let out = h.coracle(&[
        "exec",
        &id,
        "sh",
        "-c",
        "for i in $(seq 30); do sleep 30 & done 2>&1; wait",
    ]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("can't fork") || text.contains("Resource temporarily unavailable"),
        "{text}"
    );
}

#[test]
fn restart_on_failure_fires_then_gives_up() {
    if !require_root() {
        return;
    }
    let h = Host::new("c");
    h.ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "box",
        "sh",
        "-c",
        "echo run; exit 1",
    ]);
    let v = h.wait_for("flaky", "two restarts and a final exit", |v| {
        v["State"]["Status"] == "exited" && v["RestartCount"] == 2
    });
    assert_eq!(v["State"]["ExitCode"], 1);
    let out = h.coracle(&["logs", "flaky"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "run\nrun\nrun\n");
}

#[test]
fn init_is_pid_1_forwards_signals_reaps_orphans_and_passes_the_exit_code() {
    if !require_root() {
        return;
    }
    let h = Host::new("c");
    let ps = h.ok(&["run", "--rm", "--init", "box", "ps", "-o", "pid,ppid,comm"]);
    let rows: Vec<Vec<&str>> = ps
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(
        rows.iter().any(|r| r[..] == ["1", "0", "coracle-init"]),
        "{ps}"
    );
    assert!(
        rows.iter().any(|r| r[1] == "1" && r[2] == "ps"),
        "the command is init's child: {ps}"
    );

    // The command's exit code, and exec failures as docker reports them with --init.
    let out = h.coracle(&["run", "--rm", "--init", "box", "sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3));
    let err = h.fails(&["run", "--rm", "--init", "box", "no-such-command"], 127);
    assert!(
        err.contains("\"no-such-command\": executable file not found"),
        "{err}"
    );

    // A process that is PID 1 without a handler ignores SIGTERM, so `stop` would end in
    // SIGKILL (137); under init the TERM is forwarded and `sleep` dies of it (143).
    h.ok(&[
        "run", "-d", "--init", "--name", "sleeper", "box", "sleep", "1000",
    ]);
    h.ok(&["stop", "-t", "60", "sleeper"]);
    let v = h.inspect("sleeper");
    assert_eq!(v["State"]["ExitCode"], 143, "{v:#}");
    assert_eq!(v["HostConfig"]["Init"], true);

    // An orphan is re-parented to init and reaped when it exits; with `sleep` as PID 1 it
    // would stay a zombie for ever.
    h.ok(&[
        "run",
        "-d",
        "--init",
        "--name",
        "reaper",
        "box",
        "sh",
        "-c",
        "sh -c 'usleep 100000 &'; exec sleep 1000",
    ]);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let ps = h.ok(&["exec", "reaper", "ps", "-o", "stat,comm"]);
        if !ps.contains("usleep") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the orphan was never reaped: {ps}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    h.ok(&["rm", "-f", "reaper"]);
}

#[test]
fn a_killed_shim_leaves_the_container_recorded_and_rm_f_cleans_it() {
    if !require_root() {
        return;
    }
    let h = Host::new("c");
    let id = h.ok(&["run", "-d", "box"]).trim().to_string();
    let shim_pid: i32 = fs::read_to_string(
        h.dir
            .path()
            .join("run/shims")
            .join(&id[..12])
            .join("shim.pid"),
    )
    .unwrap()
    .trim()
    .parse()
    .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(shim_pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while fs::metadata(format!("/proc/{shim_pid}")).is_ok() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let v = h.inspect(&id);
    assert_eq!(v["State"]["Status"], "dead", "{v:#}");
    let ps = h.ok(&["ps", "-a"]);
    assert!(ps.contains("Dead"), "{ps}");
    h.ok(&["rm", "-f", &id]);
    assert_eq!(h.ok(&["ps", "-aq"]), "");
    assert!(
        !Path::new(&format!("/sys/fs/cgroup/pids{}/{id}", h.cgroup_parent)).exists(),
        "cgroup left"
    );
}

#[test]
fn twenty_concurrent_runs_get_twenty_addresses() {
    if !require_root() {
        return;
    }
    let h = Host::new("c");
    let children: Vec<Child> = (0..20)
        .map(|i| {
            h.coracle_cmd(&["run", "-d", "--name", &format!("c{i}"), "box"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut ips: Vec<String> = (0..20)
        .map(|i| {
            h.inspect(&format!("c{i}"))["NetworkSettings"]["IPAddress"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 20, "{ips:?}");
    assert_eq!(h.ok(&["ps", "-q"]).lines().count(), 20);
}

#[test]
fn bad_input_gets_the_right_code_and_leaves_nothing() {
    if !require_root() {
        return;
    }
    let h = Host::new("c");
    let err = h.fails(&["run", "--pull", "never", "nosuchimage"], 125);
    assert!(err.contains("No such image: nosuchimage"), "{err}");
    let err = h.fails(&["run", "-p", "99999:80", "box", "true"], 125);
    assert!(err.contains("99999"), "{err}");
    let err = h.fails(&["run", "--pull", "sometimes", "box", "true"], 125);
    assert!(err.contains("sometimes"), "{err}");
    let err = h.fails(&["run", "--memory", "lots", "box", "true"], 125);
    assert!(err.contains("invalid size"), "{err}");
    let err = h.fails(&["run", "--network", "nonet", "box", "true"], 125);
    assert!(err.contains("nonet"), "{err}");
    // An address in use is found only while the shim is already creating the container
    // (the endpoint is connected meanwhile): the shim is called off and deletes what it
    // made; the container stays created, as with Docker.
    let subnet = h.net_subnet(0);
    let ip = subnet.replace(".0/24", ".9");
    h.ok(&["network", "create", "--subnet", &subnet, "side"]);
    h.ok(&[
        "run",
        "-d",
        "--name",
        "first",
        "--network",
        "side",
        "--ip",
        &ip,
        "box",
        "sleep",
        "60",
    ]);
    let err = h.fails(
        &[
            "run",
            "--name",
            "second",
            "--network",
            "side",
            "--ip",
            &ip,
            "box",
            "true",
        ],
        125,
    );
    assert!(err.contains("is in use"), "{err}");
    assert_eq!(h.inspect("second")["State"]["Status"], "created");
    h.ok(&["rm", "-f", "first"]);
    h.ok(&["rm", "second"]);
    h.ok(&["network", "rm", "side"]);
    let shims = h.root().parent().unwrap().join("run/shims");
    let live: Vec<_> = fs::read_dir(&shims)
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().join("shim.pid").exists())
                .collect()
        })
        .unwrap_or_default();
    assert!(live.is_empty(), "a shim is left: {live:?}");
    let runtime = h.root().parent().unwrap().join("run/runtime");
    let states: Vec<_> = fs::read_dir(&runtime)
        .map(|d| {
            d.flatten()
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    assert!(states.is_empty(), "runtime state is left: {states:?}");
    h.ok(&["create", "--name", "taken", "box"]);
    let err = h.fails(&["run", "--name", "taken", "box", "true"], 125);
    assert!(err.contains("is already in use"), "{err}");
    let err = h.fails(&["rm", "nobody"], 1);
    assert!(err.contains("No such container: nobody"), "{err}");
    let err = h.fails(&["exec", "taken", "true"], 1);
    assert!(err.contains("is not running"), "{err}");
    // Only the created container remains, and no veth was made for the failures.
    let all = h.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(all.trim(), "taken");
    let links = h.sh("ip -o link");
    assert!(!links.contains("veth"), "{links}");
}
