//! `cp`, `inspect`, `port`, `top`.

use super::*;

#[derive(Args, Debug)]
pub struct CpArgs {
    /// CONTAINER:SRC_PATH or a local path.
    src: String,
    /// CONTAINER:DEST_PATH or a local path.
    dest: String,
}

/// `CONTAINER:PATH`, as docker splits it: a local path is one that starts with `/` or `.`,
/// or has no `:`.
fn container_path(arg: &str) -> Option<(&str, &str)> {
    if arg.starts_with('/') || arg.starts_with('.') {
        return None;
    }
    arg.split_once(':').filter(|(c, _)| !c.is_empty())
}

pub fn cp(ctx: &Context, args: &CpArgs) -> Result<u8> {
    let engine = open_engine(ctx)?;
    let absolute = |p: &str| {
        let p = if p.is_empty() { "/" } else { p };
        std::path::PathBuf::from(if p.starts_with('/') {
            p.to_string()
        } else {
            format!("/{p}")
        })
    };
    match (container_path(&args.src), container_path(&args.dest)) {
        (Some((c, p)), None) => engine
            .copy_from(c, &absolute(p), std::path::Path::new(&args.dest))
            .map_err(|e| Exit(1, e.to_string()))?,
        (None, Some((c, p))) => engine
            .copy_to(c, std::path::Path::new(&args.src), &absolute(p))
            .map_err(|e| Exit(1, e.to_string()))?,
        (Some(_), Some(_)) => {
            return Err(Exit(1, "copying between containers is not supported".into()).into())
        }
        (None, None) => {
            return Err(Exit(1, "must specify at least one container source".into()).into())
        }
    }
    Ok(0)
}

// --- inspect / port / top ------------------------------------------------------------------

fn rfc3339(t: Option<SystemTime>) -> String {
    match t {
        Some(t) => format::rfc3339_nano_utc(t),
        None => "0001-01-01T00:00:00Z".into(),
    }
}

/// Docker's container inspect object.
pub fn inspect_json(engine: &Engine, rec: &ContainerRecord) -> Result<Value> {
    let cfg = engine.container_config(rec).map_err(engine_error)?;
    let args = coracle_engine::spec::defaults::command(&cfg);
    let dir = engine.container_dir(&rec.id);
    let mut networks = serde_json::Map::new();
    let mut ports = serde_json::Map::new();
    for port in cfg.config.exposed_ports.keys() {
        ports.insert(port.clone(), Value::Null);
    }
    let (mut ip, mut gw, mut mac, mut prefix) = (String::new(), String::new(), String::new(), 0u64);
    for ep in endpoints(rec) {
        let net = ep["network"].as_str().unwrap_or_default().to_string();
        let e_ip = ep["ip"].as_str().unwrap_or_default().to_string();
        let e_gw = ep["gateway"].as_str().unwrap_or_default().to_string();
        let e_mac = ep["mac"].as_str().unwrap_or_default().to_string();
        let e_prefix = ep["prefix"].as_u64().unwrap_or(0);
        if ip.is_empty() {
            (ip, gw, mac, prefix) = (e_ip.clone(), e_gw.clone(), e_mac.clone(), e_prefix);
        }
        networks.insert(
            net.clone(),
            json!({
                "Aliases": ep["names"],
                "NetworkID": net,
                "EndpointID": ep["host_interface"],
                "Gateway": e_gw, "IPAddress": e_ip, "IPPrefixLen": e_prefix, "MacAddress": e_mac,
            }),
        );
        for p in ep["ports"].as_array().cloned().unwrap_or_default() {
            let key = format!(
                "{}/{}",
                p["container_port_start"].as_u64().unwrap_or(0),
                p["protocol"].as_str().unwrap_or("tcp").to_ascii_lowercase()
            );
            let binding = json!({
                "HostIp": p.get("host_ip").and_then(Value::as_str).unwrap_or("0.0.0.0"),
                "HostPort": p["host_port_start"].as_u64().unwrap_or(0).to_string(),
            });
            match ports.get_mut(&key) {
                Some(Value::Array(a)) => a.push(binding),
                _ => {
                    ports.insert(key, json!([binding]));
                }
            }
        }
    }
    let mounts: Vec<Value> = engine
        .store()
        .volume_refs(&rec.id)
        .unwrap_or_default()
        .iter()
        .map(|r| {
            let src = engine.store().get_volume(&r.volume).map(|v| v.mountpoint.display().to_string()).unwrap_or_default();
            json!({"Type": "volume", "Name": r.volume, "Source": src, "Destination": r.destination, "Driver": "local", "RW": true})
        })
        .chain(cfg.host_config.binds.iter().filter_map(|b| {
            let v = parse::parse_volume(b).ok()?;
            (v.kind == coracle_engine::spec::config::MountType::Bind).then(|| {
                json!({"Type": "bind", "Source": v.source, "Destination": v.target, "RW": !v.read_only})
            })
        }))
        .collect();
    let status = engine.shim_status(&rec.id);
    Ok(json!({
        "Id": rec.id,
        "Created": rfc3339(Some(rec.created)),
        "Path": args.first().cloned().unwrap_or_default(),
        "Args": args.iter().skip(1).collect::<Vec<_>>(),
        "State": {
            "Status": rec.state.as_str(),
            "Running": matches!(rec.state, State::Running | State::Paused | State::Restarting),
            "Paused": rec.state == State::Paused,
            "Restarting": rec.state == State::Restarting,
            "OOMKilled": status.as_ref().is_some_and(|s| s.oom_killed),
            "Dead": rec.state == State::Dead,
            "Pid": rec.pid,
            "ExitCode": rec.exit_code,
            "Error": rec.error,
            "StartedAt": rfc3339(rec.started_at),
            "FinishedAt": rfc3339(rec.finished_at),
        },
        "Image": rec.image_id,
        "ResolvConfPath": dir.join("resolv.conf"),
        "HostnamePath": dir.join("hostname"),
        "HostsPath": dir.join("hosts"),
        "LogPath": engine.log_path(&rec.id),
        "Name": format!("/{}", rec.name),
        "RestartCount": rec.restart_count,
        "Driver": "overlay",
        "Platform": "linux",
        "HostConfig": serde_json::to_value(&cfg.host_config)?,
        "Config": serde_json::to_value(&cfg.config)?,
        "Mounts": mounts,
        "NetworkSettings": {
            "SandboxKey": rec.extra.get("netns").cloned().unwrap_or(Value::Null),
            "Ports": ports,
            "IPAddress": ip, "Gateway": gw, "MacAddress": mac, "IPPrefixLen": prefix,
            "Networks": networks,
        },
    }))
}

#[derive(Args, Debug)]
pub struct PortArgs {
    container: String,
    /// PRIVATE_PORT[/PROTO]
    port: Option<String>,
}

pub fn port(ctx: &Context, args: &PortArgs) -> Result<u8> {
    let engine = open_engine(ctx)?;
    let rec = engine.container(&args.container).map_err(engine_error)?;
    let inspect = inspect_json(&engine, &rec)?;
    let ports = inspect["NetworkSettings"]["Ports"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let want = args.port.as_ref().map(|p| {
        if p.contains('/') {
            p.clone()
        } else {
            format!("{p}/tcp")
        }
    });
    let mut found = false;
    for (key, bindings) in &ports {
        if want.as_ref().is_some_and(|w| w != key) {
            continue;
        }
        for b in bindings.as_array().cloned().unwrap_or_default() {
            found = true;
            let line = format!(
                "{}:{}",
                b["HostIp"].as_str().unwrap_or(""),
                b["HostPort"].as_str().unwrap_or("")
            );
            if want.is_some() {
                println!("{line}");
            } else {
                println!("{key} -> {line}");
            }
        }
    }
    if let (Some(w), false) = (&want, found) {
        return Err(Exit(
            1,
            format!("No public port '{w}' published for {}", args.container),
        )
        .into());
    }
    Ok(0)
}

#[derive(Args, Debug)]
pub struct TopArgs {
    container: String,
}

pub fn top(ctx: &Context, args: &TopArgs) -> Result<u8> {
    let engine = open_engine(ctx)?;
    let rec = engine.container(&args.container).map_err(engine_error)?;
    if rec.state != State::Running && rec.state != State::Paused {
        return Err(Exit(1, format!("Container {} is not running", rec.id)).into());
    }
    let container = coracle_runtime::container::Container::load(&engine.runtime_root(), &rec.id)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let pids = container.pids().map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut rows = vec![["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
        .map(String::from)
        .to_vec()];
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let ppid = stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.split(' ').nth(1))
            .unwrap_or("?")
            .to_string();
        let uid = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("Uid:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .map(String::from)
            })
            .unwrap_or_default();
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| {
                c.split(|b| *b == 0)
                    .filter(|a| !a.is_empty())
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        rows.push(vec![
            uid,
            pid.to_string(),
            ppid,
            "0".into(),
            "-".into(),
            "?".into(),
            "-".into(),
            cmd,
        ]);
    }
    print!("{}", table(&rows));
    Ok(0)
}

/// `coracle inspect`: containers first, then images, as docker does.
pub fn inspect_any(
    ctx: &Context,
    names: &[String],
    format: Option<&str>,
    kind: Option<&str>,
) -> Result<u8> {
    let engine = open_engine(ctx)?;
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for name in names {
        let container = if kind == Some("image") {
            None
        } else {
            engine.container(name).ok()
        };
        if let Some(rec) = container {
            found.push(inspect_json(&engine, &rec)?);
            continue;
        }
        if kind == Some("container") {
            missing.push(name.clone());
            continue;
        }
        match engine.images().resolve(name) {
            Ok(image) => found.push(crate::images::inspect_json(engine.images(), &image)?),
            Err(_) => missing.push(name.clone()),
        }
    }
    crate::format::print_inspect(&found, format)?;
    for name in &missing {
        eprintln!("Error: No such object: {name}");
    }
    Ok(if missing.is_empty() { 0 } else { 1 })
}
