//! `coracle network create|ls|inspect|rm|connect|disconnect|prune`: Docker's flags, output
//! shapes and exit codes, over the network manager and the container records.
//!
//! Docker always shows three predefined networks: `bridge` (the default bridge), `host` and
//! `none`. The manager records `bridge` only once a container first uses it, and `host` and
//! `none` are not networks to it at all; until then they are shown with a stable id derived
//! from their name and this root.

use std::collections::BTreeMap;
use std::io::{self, BufRead, Write};
use std::net::Ipv4Addr;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};
use coracle_engine::engine::Engine;
use coracle_engine::store::{ContainerRecord, RecordUpdate, State};
use coracle_network::manager::{ConnectRequest, EndpointRecord, ManagerError, NetworkDef};
use serde_json::{json, Value};

use crate::containers::open_engine;
use crate::format::{self, table};
use crate::Context;

#[derive(Subcommand, Debug)]
pub enum NetworkCommand {
    /// Create a network.
    Create(CreateArgs),
    /// List networks.
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more networks.
    Inspect(InspectArgs),
    /// Remove one or more networks.
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Connect a container to a network.
    Connect(ConnectArgs),
    /// Disconnect a container from a network.
    Disconnect(DisconnectArgs),
    /// Remove all unused networks.
    Prune(PruneArgs),
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Driver to manage the network (only "bridge").
    #[arg(short, long, default_value = "bridge")]
    driver: String,
    /// Subnet in CIDR format (chosen from Docker's pools when not given).
    #[arg(long)]
    subnet: Option<String>,
    /// Restrict external access to the network.
    #[arg(long)]
    internal: bool,
    name: String,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Only display network IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Do not truncate the output.
    #[arg(long)]
    no_trunc: bool,
    /// Format output: "table", "json" or a Go template.
    #[arg(long)]
    format: Option<String>,
    /// Filter output (name=, id=, driver=, type=custom|builtin).
    #[arg(short, long)]
    filter: Vec<String>,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format output using a Go template ("json" for the default).
    #[arg(short, long)]
    format: Option<String>,
    #[arg(required = true)]
    networks: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Do not error if the network does not exist.
    #[arg(short, long)]
    force: bool,
    #[arg(required = true)]
    networks: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ConnectArgs {
    /// IPv4 address.
    #[arg(long)]
    ip: Option<String>,
    /// Add network-scoped alias for the container.
    #[arg(long)]
    alias: Vec<String>,
    network: String,
    container: String,
}

#[derive(Args, Debug)]
pub struct DisconnectArgs {
    /// Force the container to disconnect from a network.
    #[arg(short, long)]
    force: bool,
    network: String,
    container: String,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    force: bool,
}

pub fn network_command(ctx: &Context, cmd: NetworkCommand) -> Result<u8> {
    match cmd {
        NetworkCommand::Create(a) => create(ctx, &a),
        NetworkCommand::Ls(a) => ls(ctx, &a),
        NetworkCommand::Inspect(a) => inspect(ctx, &a),
        NetworkCommand::Rm(a) => rm(ctx, &a),
        NetworkCommand::Connect(a) => connect(ctx, &a),
        NetworkCommand::Disconnect(a) => disconnect(ctx, &a),
        NetworkCommand::Prune(a) => prune(ctx, &a),
    }
}

/// Prints Docker's daemon error line and returns exit status 1.
pub(crate) fn daemon_error(msg: impl std::fmt::Display) -> Result<u8> {
    eprintln!("Error response from daemon: {msg}");
    Ok(1)
}

/// Asks Docker's yes/no question on stderr; true on "y"/"yes".
pub(crate) fn confirm(warning: &str) -> bool {
    eprint!("{warning}\nAre you sure you want to continue? [y/N] ");
    let _ = io::stderr().flush();
    let mut line = String::new();
    let _ = io::stdin().lock().read_line(&mut line);
    matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

const PREDEFINED: [&str; 3] = ["bridge", "host", "none"];

/// A stable 64-hex id for a network the manager does not record (yet).
fn pseudo_id(ctx: &Context, name: &str) -> String {
    let seed = format!("{}\0{name}", ctx.root.display());
    let mut out = String::new();
    for round in 0u64..4 {
        // FNV-1a, one 64-bit word per round.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ round.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        for b in seed.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        out.push_str(&format!("{h:016x}"));
    }
    out
}

/// One network as `ls` and `inspect` show it.
struct Net {
    name: String,
    id: String,
    driver: &'static str,
    def: Option<NetworkDef>,
    endpoints: Vec<EndpointRecord>,
}

impl Net {
    fn builtin(&self) -> bool {
        PREDEFINED.contains(&self.name.as_str())
    }
}

fn manager_error(e: ManagerError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

/// Every network: the predefined three and the manager's, sorted by name.
fn all_networks(ctx: &Context, engine: &Engine) -> Result<Vec<Net>> {
    let mgr = engine.network().map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut out = Vec::new();
    let defs = mgr.networks().map_err(manager_error)?;
    for def in defs {
        let endpoints = mgr.endpoints(&def.name).map_err(manager_error)?;
        out.push(Net {
            name: def.name.clone(),
            id: def.id.clone(),
            driver: "bridge",
            def: Some(def),
            endpoints,
        });
    }
    drop(mgr);
    for (name, driver) in [("bridge", "bridge"), ("host", "host"), ("none", "null")] {
        if !out.iter().any(|n| n.name == name) {
            out.push(Net {
                name: name.to_string(),
                id: pseudo_id(ctx, name),
                driver,
                def: None,
                endpoints: Vec::new(),
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// A network by name, full id or unique id prefix.
fn find<'a>(nets: &'a [Net], reference: &str) -> Option<&'a Net> {
    if let Some(n) = nets
        .iter()
        .find(|n| n.name == reference || n.id == reference)
    {
        return Some(n);
    }
    let matches: Vec<&Net> = nets
        .iter()
        .filter(|n| !reference.is_empty() && n.id.starts_with(reference))
        .collect();
    (matches.len() == 1).then(|| matches[0])
}

fn parse_subnet(s: &str) -> Result<coracle_network::subnet::Ipv4Net, String> {
    coracle_network::subnet::parse_subnet(s).map_err(|e| format!("invalid subnet {s}: {e}"))
}

/// The default bridge's subnet: the manager's record, else `--default-subnet`.
fn default_bridge_subnet(
    ctx: &Context,
    mgr: &coracle_network::manager::Manager,
) -> Option<coracle_network::subnet::Ipv4Net> {
    if let Ok(def) = mgr.network("bridge") {
        return Some(def.subnet);
    }
    parse_subnet(&ctx.subnet).ok()
}

pub fn create(ctx: &Context, args: &CreateArgs) -> Result<u8> {
    use coracle_network::subnet;
    if args.driver != "bridge" {
        return daemon_error(format!(
            "plugin \"{}\" not found (only the \"bridge\" driver is supported)",
            args.driver
        ));
    }
    if PREDEFINED.contains(&args.name.as_str()) {
        return daemon_error(format!("network with name {} already exists", args.name));
    }
    let requested = match args.subnet.as_deref().map(parse_subnet).transpose() {
        Ok(s) => s,
        Err(e) => return daemon_error(e),
    };
    let engine = open_engine(ctx)?;
    let mgr = engine.network().map_err(|e| anyhow::anyhow!("{e}"))?;
    if mgr.network(&args.name).is_ok() {
        return daemon_error(format!("network with name {} already exists", args.name));
    }
    let default = default_bridge_subnet(ctx, &mgr);
    let existing: Vec<subnet::Ipv4Net> = mgr
        .networks()
        .map_err(manager_error)?
        .iter()
        .map(|n| n.subnet)
        .chain(default)
        // Docker's own default bridge range stays free for it, as on a Docker host.
        .chain(parse_subnet("172.17.0.0/16").ok())
        .collect();
    let chosen = match requested {
        Some(s) => {
            if let Some(d) = default.filter(|d| subnet::overlaps(s, *d)) {
                if mgr.network("bridge").is_err() {
                    return daemon_error(format!(
                        "Pool overlaps with other one on this address space (the default bridge, {d})"
                    ));
                }
            }
            s
        }
        // The manager's own pick does not know the default bridge before its first use.
        None => {
            let routes: Vec<subnet::Ipv4Net> = coracle_network::netlink::Netlink::new()
                .and_then(|n| n.routes())
                .map(|rs| {
                    rs.iter()
                        .filter_map(|r| parse_subnet(&r.destination.to_string()).ok())
                        .filter(|n| n.prefix_len() > 0)
                        .collect()
                })
                .unwrap_or_default();
            match subnet::pick_from_pools(&subnet::default_pools(), &existing, &routes) {
                Ok(s) => s,
                Err(e) => return daemon_error(e),
            }
        }
    };
    match mgr.create_network(&args.name, Some(chosen), args.internal) {
        Ok(def) => {
            println!("{}", def.id);
            Ok(0)
        }
        Err(ManagerError::NetworkExists(name)) => {
            daemon_error(format!("network with name {name} already exists"))
        }
        Err(ManagerError::Overlap {
            other,
            other_subnet,
            ..
        }) => daemon_error(format!(
            "Pool overlaps with other one on this address space (network {other}, {other_subnet})"
        )),
        Err(e) => daemon_error(e),
    }
}

fn parse_filters(raw: &[String]) -> Result<Vec<(String, String)>> {
    raw.iter()
        .map(|f| {
            f.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| anyhow::anyhow!("bad format of filter (expected name=value)"))
        })
        .collect()
}

fn matches(n: &Net, filters: &[(String, String)]) -> bool {
    filters.iter().all(|(k, v)| match k.as_str() {
        "name" => n.name.contains(v.as_str()),
        "id" => n.id.starts_with(v.as_str()),
        "driver" => n.driver == v,
        "type" => match v.as_str() {
            "builtin" => n.builtin(),
            "custom" => !n.builtin(),
            _ => false,
        },
        _ => false,
    })
}

fn created(ctx: &Context, n: &Net) -> String {
    let path: PathBuf = ctx
        .root
        .join("network")
        .join("networks")
        .join(format!("{}.json", n.name));
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map(|t| format::rfc3339_utc(Engine::epoch(Some(t))))
        .unwrap_or_else(|_| "0001-01-01T00:00:00Z".to_string())
}

pub fn ls(ctx: &Context, args: &LsArgs) -> Result<u8> {
    let filters = parse_filters(&args.filter)?;
    let engine = open_engine(ctx)?;
    let nets: Vec<Net> = all_networks(ctx, &engine)?
        .into_iter()
        .filter(|n| matches(n, &filters))
        .collect();
    let short = |id: &str| -> String {
        if args.no_trunc {
            id.to_string()
        } else {
            id[..12.min(id.len())].to_string()
        }
    };
    let mut out = io::stdout().lock();
    if args.quiet {
        for n in &nets {
            writeln!(out, "{}", short(&n.id))?;
        }
        return Ok(0);
    }
    match args.format.as_deref() {
        None | Some("table") => {
            let mut rows = vec![vec![
                "NETWORK ID".to_string(),
                "NAME".into(),
                "DRIVER".into(),
                "SCOPE".into(),
            ]];
            for n in &nets {
                rows.push(vec![
                    short(&n.id),
                    n.name.clone(),
                    n.driver.into(),
                    "local".into(),
                ]);
            }
            write!(out, "{}", table(&rows))?;
        }
        Some(fmt) => {
            let rows: Vec<Value> = nets
                .iter()
                .map(|n| {
                    json!({
                        "CreatedAt": created(ctx, n),
                        "Driver": n.driver,
                        "ID": short(&n.id),
                        "IPv4": (n.driver == "bridge").to_string(),
                        "IPv6": "false",
                        "Internal": n.def.as_ref().is_some_and(|d| d.internal).to_string(),
                        "Labels": "",
                        "Name": n.name,
                        "Scope": "local",
                    })
                })
                .collect();
            write!(
                out,
                "{}",
                format::render_rows(fmt, &format::NETWORK_COLUMNS, &rows)?
            )?;
        }
    }
    Ok(0)
}

/// Docker's `network inspect` object.
fn inspect_json(ctx: &Context, n: &Net, containers: &BTreeMap<String, ContainerRecord>) -> Value {
    let mut members = serde_json::Map::new();
    for ep in &n.endpoints {
        let name = containers
            .get(&ep.container)
            .map(|c| c.name.clone())
            .unwrap_or_default();
        members.insert(
            ep.container.clone(),
            json!({
                "Name": name,
                "EndpointID": ep.host_interface,
                "MacAddress": ep.mac,
                "IPv4Address": format!("{}/{}", ep.ip, ep.prefix),
                "IPv6Address": "",
            }),
        );
    }
    // Containers sharing the host's network, or with none, for those two.
    if n.def.is_none() && n.name != "bridge" {
        for c in containers.values() {
            let mode = c.extra.get("network_mode").and_then(Value::as_str);
            if c.state == State::Running && mode == Some(n.name.as_str()) {
                members.insert(
                    c.id.clone(),
                    json!({
                        "Name": c.name, "EndpointID": "", "MacAddress": "",
                        "IPv4Address": "", "IPv6Address": "",
                    }),
                );
            }
        }
    }
    let (config, options) = match (&n.def, n.name.as_str()) {
        (Some(d), _) => (
            json!([{"Subnet": d.subnet.to_string(), "Gateway": d.gateway.to_string()}]),
            json!({
                "com.docker.network.bridge.name": d.bridge,
                "com.docker.network.driver.mtu": d.mtu.to_string(),
            }),
        ),
        (None, "bridge") => {
            let subnet = parse_subnet(&ctx.subnet).ok();
            let gateway = subnet
                .and_then(|s| coracle_network::subnet::Subnet::new(s).ok())
                .map(|s| s.gateway().to_string())
                .unwrap_or_default();
            (
                json!([{"Subnet": ctx.subnet, "Gateway": gateway}]),
                json!({"com.docker.network.bridge.name": ctx.bridge}),
            )
        }
        _ => (json!([]), json!({})),
    };
    json!({
        "Name": n.name,
        "Id": n.id,
        "Created": created(ctx, n),
        "Scope": "local",
        "Driver": n.driver,
        "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Options": null, "Config": config},
        "Internal": n.def.as_ref().is_some_and(|d| d.internal),
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": members,
        "Options": options,
        "Labels": {},
    })
}

fn containers_by_id(engine: &Engine) -> Result<BTreeMap<String, ContainerRecord>> {
    Ok(engine
        .store()
        .list(true)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .into_iter()
        .map(|c| (c.id.clone(), c))
        .collect())
}

pub fn inspect(ctx: &Context, args: &InspectArgs) -> Result<u8> {
    let engine = open_engine(ctx)?;
    let nets = all_networks(ctx, &engine)?;
    let containers = containers_by_id(&engine)?;
    let mut found = Vec::new();
    let mut code = 0;
    for name in &args.networks {
        match find(&nets, name) {
            Some(n) => found.push(inspect_json(ctx, n, &containers)),
            None => {
                eprintln!("Error response from daemon: network {name} not found");
                code = 1;
            }
        }
    }
    crate::format::print_inspect(&found, args.format.as_deref())?;
    Ok(code)
}

pub fn rm(ctx: &Context, args: &RmArgs) -> Result<u8> {
    let engine = open_engine(ctx)?;
    let nets = all_networks(ctx, &engine)?;
    let mut code = 0;
    for name in &args.networks {
        let Some(n) = find(&nets, name) else {
            if !args.force {
                eprintln!("Error response from daemon: network {name} not found");
                code = 1;
            }
            continue;
        };
        if n.builtin() {
            eprintln!(
                "Error response from daemon: {} is a pre-defined network and cannot be removed",
                n.name
            );
            code = 1;
            continue;
        }
        let mgr = engine.network().map_err(|e| anyhow::anyhow!("{e}"))?;
        match mgr.remove_network(&n.name) {
            Ok(()) => println!("{name}"),
            Err(ManagerError::InUse(_)) => {
                eprintln!(
                    "Error response from daemon: error while removing network: network {} id {} has active endpoints",
                    n.name, n.id
                );
                code = 1;
            }
            Err(ManagerError::NoSuchNetwork(_)) if args.force => {}
            Err(e) => {
                eprintln!("Error response from daemon: {e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

/// The container's endpoints as recorded in its `extra["endpoints"]`.
fn recorded_endpoints(rec: &ContainerRecord) -> Vec<Value> {
    rec.extra
        .get("endpoints")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn set_endpoints(engine: &Engine, rec: &ContainerRecord, endpoints: Vec<Value>) -> Result<()> {
    let mut extra = match &rec.extra {
        Value::Object(m) => m.clone(),
        _ => serde_json::Map::new(),
    };
    extra.insert("endpoints".into(), Value::Array(endpoints));
    engine
        .store()
        .update_record(
            &rec.id,
            RecordUpdate {
                extra: Some(Value::Object(extra)),
                ..Default::default()
            },
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}

pub fn connect(ctx: &Context, args: &ConnectArgs) -> Result<u8> {
    let ip = match args.ip.as_deref().map(str::parse::<Ipv4Addr>).transpose() {
        Ok(ip) => ip,
        Err(_) => {
            return daemon_error(format!(
                "invalid IPv4 address: {}",
                args.ip.as_deref().unwrap_or_default()
            ))
        }
    };
    let engine = open_engine(ctx)?;
    let rec = match engine.container(&args.container) {
        Ok(r) => r,
        Err(e) => return daemon_error(e),
    };
    let nets = all_networks(ctx, &engine)?;
    let Some(net) = find(&nets, &args.network) else {
        return daemon_error(format!("network {} not found", args.network));
    };
    let mode = rec
        .extra
        .get("network_mode")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if net.name == "host" || net.name == "none" || mode == "host" {
        return daemon_error(
            "container cannot be disconnected from host network or connected to host network",
        );
    }
    if mode == "none" || mode.starts_with("container:") {
        return daemon_error(format!(
            "container sharing network namespace with another container or host cannot be connected to any other network (network mode {mode})"
        ));
    }
    if rec.state != State::Running {
        return daemon_error(format!(
            "Container {} is not running (coracle connects running containers only)",
            rec.short_id()
        ));
    }
    let Some(netns) = rec.extra.get("netns").and_then(Value::as_str) else {
        return daemon_error(format!(
            "container {} has no network namespace",
            rec.short_id()
        ));
    };
    let mut names = vec![rec.name.clone(), rec.short_id().to_string()];
    names.extend(args.alias.iter().cloned());
    let req = ConnectRequest {
        network: net.name.clone(),
        container: rec.id.clone(),
        netns: PathBuf::from(netns),
        ip,
        names,
        ports: Vec::new(),
    };
    let mgr = engine.network().map_err(|e| anyhow::anyhow!("{e}"))?;
    let ep = match mgr.connect(&req) {
        Ok(ep) => ep,
        Err(ManagerError::AlreadyConnected { .. }) => {
            return daemon_error(format!(
                "endpoint with name {} already exists in network {}",
                rec.name, net.name
            ))
        }
        Err(e) => return daemon_error(e),
    };
    drop(mgr);
    // Record it so teardown disconnects it; re-read the record in case it changed meanwhile.
    let fresh = engine.store().get(&rec.id).unwrap_or(rec);
    let mut endpoints = recorded_endpoints(&fresh);
    endpoints.retain(|e| e.get("network").and_then(Value::as_str) != Some(ep.network.as_str()));
    endpoints.push(serde_json::to_value(&ep)?);
    if let Err(e) = set_endpoints(&engine, &fresh, endpoints) {
        // Undo the connection rather than leave an endpoint teardown would not know of.
        if let Ok(mgr) = engine.network() {
            let _ = mgr.disconnect(&ep.network, &fresh.id);
        }
        return Err(e);
    }
    if let Err(e) = engine.sync_resolv_conf(&fresh.id) {
        eprintln!(
            "warning: container {}: resolv.conf not updated: {e}",
            fresh.short_id()
        );
    }
    Ok(0)
}

pub fn disconnect(ctx: &Context, args: &DisconnectArgs) -> Result<u8> {
    let engine = open_engine(ctx)?;
    let rec = match engine.container(&args.container) {
        Ok(r) => r,
        Err(e) => return daemon_error(e),
    };
    let nets = all_networks(ctx, &engine)?;
    let Some(net) = find(&nets, &args.network) else {
        return daemon_error(format!("network {} not found", args.network));
    };
    if net.name == "host" {
        return daemon_error(
            "container cannot be disconnected from host network or connected to host network",
        );
    }
    let connected = net.endpoints.iter().any(|e| e.container == rec.id);
    if !connected {
        if args.force {
            return Ok(0);
        }
        return daemon_error(format!(
            "container {} is not connected to network {}",
            rec.id, net.name
        ));
    }
    let mgr = engine.network().map_err(|e| anyhow::anyhow!("{e}"))?;
    let result = mgr.disconnect(&net.name, &rec.id);
    drop(mgr);
    let fresh = engine.store().get(&rec.id).unwrap_or(rec);
    let mut endpoints = recorded_endpoints(&fresh);
    endpoints.retain(|e| e.get("network").and_then(Value::as_str) != Some(net.name.as_str()));
    set_endpoints(&engine, &fresh, endpoints)?;
    if let Err(e) = engine.sync_resolv_conf(&fresh.id) {
        eprintln!(
            "warning: container {}: resolv.conf not updated: {e}",
            fresh.short_id()
        );
    }
    match result {
        Ok(()) => Ok(0),
        Err(e) => daemon_error(e),
    }
}

pub fn prune(ctx: &Context, args: &PruneArgs) -> Result<u8> {
    if !args.force
        && !confirm(
            "WARNING! This will remove all custom networks not used by at least one container.",
        )
    {
        return Ok(0);
    }
    let engine = open_engine(ctx)?;
    let removed = prune_networks(ctx, &engine)?;
    if !removed.is_empty() {
        println!("Deleted Networks:");
        for n in &removed {
            println!("{n}");
        }
    }
    Ok(0)
}

/// Removes every user-defined network no container is connected to; returns their names.
pub(crate) fn prune_networks(ctx: &Context, engine: &Engine) -> Result<Vec<String>> {
    let nets = all_networks(ctx, engine)?;
    let mgr = engine.network().map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut removed = Vec::new();
    for n in nets
        .iter()
        .filter(|n| !n.builtin() && n.endpoints.is_empty())
    {
        match mgr.remove_network(&n.name) {
            Ok(()) => removed.push(n.name.clone()),
            Err(e) => tracing::warn!(network = %n.name, error = %e, "not pruned"),
        }
    }
    Ok(removed)
}
