//! `coracle network`, `volume`, `version`, `info`, `system` and `stats`, driven through the
//! binary as a user drives them. Each test gets its own throwaway host (a network and mount
//! namespace held by a `sleep` we start and kill by PID), roots, bridge, subnets and cgroup
//! parent; every container it made is removed at the end.

mod common;

use std::fs;
use std::path::Path;

use common::{require_root, Host};
use serde_json::Value;

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

#[test]
fn networks_create_list_inspect_resolve_names_and_refuse_removal_in_use() {
    if !require_root() {
        return;
    }
    let h = Host::new("nv");
    // The predefined three, as Docker lists them.
    let ls = h.ok(&["network", "ls"]);
    let rows = lines(&ls);
    assert_eq!(
        rows[0].split_whitespace().collect::<Vec<_>>(),
        ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    );
    for (name, driver) in [("bridge", "bridge"), ("host", "host"), ("none", "null")] {
        assert!(
            rows.iter().any(|r| {
                let f: Vec<&str> = r.split_whitespace().collect();
                f.len() == 4 && f[1] == name && f[2] == driver && f[3] == "local"
            }),
            "{ls}"
        );
    }

    let subnet = h.net_subnet(0);
    let id = h.ok(&["network", "create", "--subnet", &subnet, "appnet"]);
    let id = id.trim();
    assert_eq!(id.len(), 64, "{id}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    h.fails(&["network", "create", "appnet"], 1);

    let quiet = h.ok(&["network", "ls", "-q"]);
    assert!(quiet.lines().any(|l| l == &id[..12]), "{quiet}");
    assert_eq!(quiet.lines().count(), 4, "{quiet}");
    let json_lines = h.ok(&["network", "ls", "--format", "json"]);
    let appnet: Vec<Value> = json_lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &Value| v["Name"] == "appnet")
        .collect();
    assert_eq!(appnet.len(), 1, "{json_lines}");
    assert_eq!(appnet[0]["Driver"], "bridge");
    assert_eq!(appnet[0]["Scope"], "local");

    // Two containers on it reach each other by name and by alias.
    let a = h.ok(&["run", "-d", "--name", "alpha", "--network", "appnet", "box"]);
    let b = h.ok(&[
        "run",
        "-d",
        "--name",
        "beta",
        "--network",
        "appnet",
        "--network-alias",
        "bee",
        "box",
    ]);
    let (a, b) = (a.trim().to_string(), b.trim().to_string());
    h.exec_eventually(&["alpha", "ping", "-c1", "-W2", "beta"]);
    h.exec_eventually(&["alpha", "ping", "-c1", "-W2", "bee"]);
    h.exec_eventually(&["beta", "ping", "-c1", "-W2", "alpha"]);

    let v = h.json(&["network", "inspect", "appnet"]);
    let net = &v[0];
    assert_eq!(net["Name"], "appnet");
    assert_eq!(net["Id"], id);
    assert_eq!(net["Driver"], "bridge");
    assert_eq!(net["Scope"], "local");
    assert_eq!(net["Internal"], false);
    assert_eq!(net["IPAM"]["Config"][0]["Subnet"], subnet.as_str());
    let gw = subnet.replace(".0/24", ".1");
    assert_eq!(net["IPAM"]["Config"][0]["Gateway"], gw.as_str());
    let members = net["Containers"].as_object().unwrap();
    assert_eq!(members.len(), 2, "{net:#}");
    assert_eq!(members[&a]["Name"], "alpha");
    assert_eq!(members[&b]["Name"], "beta");
    let prefix = subnet.trim_end_matches("0/24");
    let addr = members[&a]["IPv4Address"].as_str().unwrap();
    assert!(addr.starts_with(prefix) && addr.ends_with("/24"), "{addr}");
    assert!(!members[&a]["MacAddress"].as_str().unwrap().is_empty());

    // In use: refused with Docker's message; nothing removed.
    let err = h.fails(&["network", "rm", "appnet"], 1);
    assert!(
        err.contains("Error response from daemon:") && err.contains("has active endpoints"),
        "{err}"
    );
    // Predefined ones cannot be removed; unknown ones are not found.
    let err = h.fails(&["network", "rm", "bridge"], 1);
    assert!(err.contains("pre-defined network"), "{err}");
    let err = h.fails(&["network", "rm", "nope"], 1);
    assert!(err.contains("network nope not found"), "{err}");
    let err = h.fails(&["network", "inspect", "nope"], 1);
    assert!(err.contains("network nope not found"), "{err}");
    // An unknown network for run is an engine error.
    h.fails(&["run", "-d", "--network", "nope", "box"], 125);

    h.ok(&["rm", "-f", "alpha", "beta"]);
    assert_eq!(h.ok(&["network", "rm", "appnet"]).trim(), "appnet");
    assert_eq!(h.ok(&["network", "ls", "-q"]).lines().count(), 3);

    // prune removes unused user networks only.
    h.ok(&["network", "create", "--subnet", &h.net_subnet(1), "spare"]);
    let out = h.ok(&["network", "prune", "-f"]);
    assert_eq!(lines(&out), ["Deleted Networks:", "spare"], "{out}");
    assert_eq!(h.ok(&["network", "ls", "-q"]).lines().count(), 3);
}

#[test]
fn connect_and_disconnect_a_running_container() {
    if !require_root() {
        return;
    }
    let h = Host::new("nv");
    let subnet = h.net_subnet(0);
    h.ok(&["network", "create", "--subnet", &subnet, "side"]);
    let c = h.ok(&["run", "-d", "--name", "cc", "box"]);
    let c = c.trim().to_string();
    h.ok(&["run", "-d", "--name", "dd", "--network", "side", "box"]);
    let before = h.ok(&["exec", "cc", "ip", "addr"]);
    assert!(!before.contains("eth1"), "{before}");

    let ip = subnet.replace(".0/24", ".77");
    h.ok(&[
        "network", "connect", "--ip", &ip, "--alias", "cee", "side", "cc",
    ]);
    let after = h.ok(&["exec", "cc", "ip", "addr", "show", "eth1"]);
    assert!(after.contains(&format!("inet {ip}/24")), "{after}");
    // eth0 keeps the default bridge.
    let eth0 = h.ok(&["exec", "cc", "ip", "addr", "show", "eth0"]);
    assert!(
        eth0.contains(&format!("inet {}", h.subnet.trim_end_matches("0/24"))),
        "{eth0}"
    );
    // The other container on `side` reaches it by name and alias.
    h.exec_eventually(&["dd", "ping", "-c1", "-W2", "cee"]);
    h.exec_eventually(&["dd", "ping", "-c1", "-W2", "cc"]);
    // And it, started on the default bridge (host resolvers), now asks side's responder,
    // so it resolves dd by name too.
    let gateway = subnet.replace(".0/24", ".1");
    let resolv = h.ok(&["exec", "cc", "cat", "/etc/resolv.conf"]);
    assert!(
        resolv.contains(&format!("nameserver {gateway}")),
        "{resolv}"
    );
    h.exec_eventually(&["cc", "ping", "-c1", "-W2", "dd"]);
    let v = h.json(&["network", "inspect", "side"]);
    assert_eq!(
        v[0]["Containers"][&c]["IPv4Address"],
        format!("{ip}/24").as_str()
    );
    // The container's record knows the endpoint (inspect shows both networks).
    let insp = h.json(&["inspect", "cc"]);
    let nets = insp[0]["NetworkSettings"]["Networks"].as_object().unwrap();
    assert!(
        nets.contains_key("side") && nets.contains_key("bridge"),
        "{nets:?}"
    );
    // Connecting twice is refused.
    h.fails(&["network", "connect", "side", "cc"], 1);

    h.ok(&["network", "disconnect", "side", "cc"]);
    let gone = h.ok(&["exec", "cc", "ip", "addr"]);
    assert!(!gone.contains("eth1"), "{gone}");
    let resolv = h.ok(&["exec", "cc", "cat", "/etc/resolv.conf"]);
    assert!(
        !resolv.contains(&gateway),
        "back to the host's resolvers: {resolv}"
    );
    let v = h.json(&["network", "inspect", "side"]);
    assert!(v[0]["Containers"].get(&c).is_none(), "{v:#}");
    let err = h.fails(&["network", "disconnect", "side", "cc"], 1);
    assert!(err.contains("is not connected to network side"), "{err}");

    // Connected again, then removed: teardown disconnects it, so the network can go.
    h.ok(&["network", "connect", "side", "cc"]);
    assert!(h.ok(&["exec", "cc", "ip", "addr"]).contains("eth1"));
    h.ok(&["rm", "-f", "cc", "dd"]);
    let v = h.json(&["network", "inspect", "side"]);
    assert_eq!(v[0]["Containers"], serde_json::json!({}), "{v:#}");
    h.ok(&["network", "rm", "side"]);
    // No veth left behind in the throwaway host.
    let links = h.sh("ip -o link show");
    assert!(!links.contains("eth1"), "{links}");
}

#[test]
fn volumes_create_list_inspect_keep_data_and_refuse_removal_in_use() {
    if !require_root() {
        return;
    }
    let h = Host::new("nv");
    assert_eq!(
        h.ok(&["volume", "create", "data", "-l", "team=db"]).trim(),
        "data"
    );
    let ls = h.ok(&["volume", "ls"]);
    let rows = lines(&ls);
    assert_eq!(
        rows[0].split_whitespace().collect::<Vec<_>>(),
        ["DRIVER", "VOLUME", "NAME"]
    );
    assert!(
        rows[1..]
            .iter()
            .any(|r| r.split_whitespace().collect::<Vec<_>>() == ["local", "data"]),
        "{ls}"
    );
    assert_eq!(h.ok(&["volume", "ls", "-q"]).trim(), "data");

    let v = h.json(&["volume", "inspect", "data"]);
    let vol = &v[0];
    assert_eq!(vol["Name"], "data");
    assert_eq!(vol["Driver"], "local");
    assert_eq!(vol["Scope"], "local");
    assert_eq!(vol["Labels"]["team"], "db");
    let mountpoint = vol["Mountpoint"].as_str().unwrap();
    assert!(mountpoint.ends_with("/volumes/data/_data"), "{mountpoint}");
    assert!(vol["CreatedAt"].as_str().unwrap().ends_with('Z'));
    assert!(vol.get("Options").is_some());

    // The data outlives the container that wrote it.
    h.ok(&[
        "run",
        "--rm",
        "-v",
        "data:/data",
        "box",
        "sh",
        "-c",
        "echo kept > /data/f",
    ]);
    let read = h.ok(&["run", "--rm", "-v", "data:/data", "box", "cat", "/data/f"]);
    assert_eq!(read.trim(), "kept");
    assert_eq!(
        fs::read_to_string(Path::new(mountpoint).join("f"))
            .unwrap()
            .trim(),
        "kept"
    );

    // Referenced by a container: refused with Docker's message naming it.
    let user = h.ok(&["run", "-d", "--name", "user", "-v", "data:/data", "box"]);
    let user = user.trim();
    let err = h.fails(&["volume", "rm", "data"], 1);
    assert!(
        err.contains(&format!(
            "Error response from daemon: remove data: volume is in use - [{user}]"
        )),
        "{err}"
    );
    let err = h.fails(&["volume", "rm", "nope"], 1);
    assert!(err.contains("no such volume"), "{err}");
    h.ok(&["volume", "rm", "-f", "nope"]);
    h.ok(&["rm", "-f", "user"]);
    assert_eq!(h.ok(&["volume", "rm", "data"]).trim(), "data");
    assert!(!Path::new(mountpoint).exists());

    // prune takes anonymous volumes only, unless -a.
    let anon = h.ok(&["volume", "create"]);
    let anon = anon.trim();
    assert_eq!(anon.len(), 64);
    h.ok(&["volume", "create", "named"]);
    let out = h.ok(&["volume", "prune", "-f"]);
    assert!(
        out.contains("Deleted Volumes:") && out.contains(anon),
        "{out}"
    );
    assert!(!out.contains("named"), "{out}");
    assert!(out.contains("Total reclaimed space:"), "{out}");
    assert_eq!(h.ok(&["volume", "ls", "-q"]).trim(), "named");
    let out = h.ok(&["volume", "prune", "-a", "-f"]);
    assert!(out.contains("named"), "{out}");
    assert_eq!(h.ok(&["volume", "ls", "-q"]).trim(), "");
}

#[test]
fn version_info_system_df_prune_and_stats() {
    if !require_root() {
        return;
    }
    let h = Host::new("nv");
    let version = h.ok(&["version"]);
    for want in [
        "Client:",
        "Server:",
        " Engine:",
        &format!("Version:           {}", env!("CARGO_PKG_VERSION")),
        "Rust version:",
        "OS/Arch:           linux/",
    ] {
        assert!(version.contains(want), "{want} in:\n{version}");
    }

    h.ok(&["run", "-d", "--name", "up", "box"]);
    let stopped = h.ok(&["create", "--name", "down", "box"]);
    let stopped = stopped.trim();
    let info = h.ok(&["info"]);
    for want in [
        " Containers: 2\n",
        "  Running: 1\n",
        "  Paused: 0\n",
        "  Stopped: 1\n",
        " Images: 1\n",
        " Storage Driver: overlay\n",
        " Cgroup Driver: cgroupfs\n",
        &format!(" Docker Root Dir: {}\n", h.root().display()),
        " CPUs: ",
        " Total Memory: ",
        " Kernel Version: ",
        " Operating System: ",
    ] {
        assert!(info.contains(want), "{want:?} in:\n{info}");
    }
    let cg = if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "2"
    } else {
        "1"
    };
    assert!(info.contains(&format!(" Cgroup Version: {cg}\n")), "{info}");

    h.ok(&["volume", "create", "vol"]);
    let df = h.ok(&["system", "df"]);
    let rows = lines(&df);
    assert_eq!(
        rows[0].split_whitespace().collect::<Vec<_>>(),
        ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    );
    let row = |name: &str| -> Vec<String> {
        let r = rows
            .iter()
            .find(|r| r.starts_with(name))
            .unwrap_or_else(|| panic!("{name} in {df}"));
        r[name.len()..]
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    assert_eq!(row("Images")[..2], ["1", "1"], "{df}");
    assert_eq!(row("Containers")[..2], ["2", "1"], "{df}");
    assert_eq!(row("Local Volumes")[..2], ["1", "0"], "{df}");
    assert!(row("Images")[2].ends_with('B'), "{df}");

    let stats = h.ok(&["stats", "--no-stream"]);
    let rows = lines(&stats);
    assert!(rows[0].starts_with("CONTAINER ID"), "{stats}");
    for col in [
        "NAME",
        "CPU %",
        "MEM USAGE / LIMIT",
        "MEM %",
        "NET I/O",
        "BLOCK I/O",
        "PIDS",
    ] {
        assert!(rows[0].contains(col), "{col} in {stats}");
    }
    assert_eq!(rows.len(), 2, "{stats}");
    assert!(rows[1].contains(" up "), "{stats}");
    let pids = rows[1].split_whitespace().last().unwrap();
    assert!(pids.parse::<u32>().unwrap() >= 1, "{stats}");
    // --format: a template, and json with Docker's field names.
    let line = h.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}}={{.PIDs}}",
        "up",
    ]);
    assert!(line.trim().starts_with("up="), "{line}");
    let row: serde_json::Value = serde_json::from_str(
        h.ok(&["stats", "--no-stream", "--format", "json", "up"])
            .trim(),
    )
    .unwrap();
    for key in [
        "ID", "Name", "CPUPerc", "MemUsage", "MemPerc", "NetIO", "BlockIO", "PIDs",
    ] {
        assert!(row.get(key).is_some(), "{key} in {row}");
    }
    // Streaming (the default): the table is redrawn, screen cleared first, until stopped.
    let mut child = h
        .coracle_cmd(&["stats", "up"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2800));
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.matches("\x1b[2J\x1b[H").count() >= 2, "{text:?}");
    assert!(text.matches("CONTAINER ID").count() >= 2, "{text:?}");

    let out = h.ok(&["system", "prune", "-f"]);
    assert!(out.contains("Deleted Containers:"), "{out}");
    assert!(out.contains(stopped), "{out}");
    assert!(out.contains("Total reclaimed space:"), "{out}");
    let ps = h.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(ps.trim(), "up", "{ps}");
}
