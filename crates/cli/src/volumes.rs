//! `coracle volume create|ls|inspect|rm|prune`: Docker's flags, output shapes and exit codes,
//! over the engine store's volumes.

use std::collections::BTreeMap;
use std::io::{self, Write};

use anyhow::Result;
use clap::{Args, Subcommand};
use coracle_engine::engine::Engine;
use coracle_engine::store::{NewVolume, StoreError, Volume};
use serde_json::{json, Value};

use crate::containers::open_engine;
use crate::format::{self, table};
use crate::networks::{confirm, daemon_error};
use crate::Context;

/// The label Docker (≥ 23) puts on anonymous volumes; `volume prune` without `-a` takes only
/// those.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

#[derive(Subcommand, Debug)]
pub enum VolumeCommand {
    /// Create a volume.
    Create(CreateArgs),
    /// List volumes.
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more volumes.
    Inspect(InspectArgs),
    /// Remove one or more volumes.
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Remove unused local volumes.
    Prune(PruneArgs),
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Specify volume driver name (only "local").
    #[arg(short, long, default_value = "local")]
    driver: String,
    /// Set metadata for a volume (key=value).
    #[arg(short, long = "label")]
    label: Vec<String>,
    /// Set driver specific options (key=value).
    #[arg(short, long = "opt")]
    opt: Vec<String>,
    /// Specify volume name (also accepted as the argument).
    #[arg(long = "name")]
    name_flag: Option<String>,
    name: Option<String>,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Only display volume names.
    #[arg(short, long)]
    quiet: bool,
    /// Format output: "table", "json" or a Go template.
    #[arg(long)]
    format: Option<String>,
    /// Filter output (dangling=true|false, name=, driver=, label=).
    #[arg(short, long)]
    filter: Vec<String>,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format output using a Go template ("json" for the default).
    #[arg(short, long)]
    format: Option<String>,
    #[arg(required = true)]
    volumes: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Do not error if the volume does not exist.
    #[arg(short, long)]
    force: bool,
    #[arg(required = true)]
    volumes: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones.
    #[arg(short, long)]
    all: bool,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    force: bool,
}

pub fn volume_command(ctx: &Context, cmd: VolumeCommand) -> Result<u8> {
    match cmd {
        VolumeCommand::Create(a) => create(ctx, &a),
        VolumeCommand::Ls(a) => ls(ctx, &a),
        VolumeCommand::Inspect(a) => inspect(ctx, &a),
        VolumeCommand::Rm(a) => rm(ctx, &a),
        VolumeCommand::Prune(a) => prune(ctx, &a),
    }
}

fn key_values(raw: &[String]) -> BTreeMap<String, String> {
    raw.iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (kv.clone(), String::new()),
        })
        .collect()
}

pub fn create(ctx: &Context, args: &CreateArgs) -> Result<u8> {
    let name = match (&args.name_flag, &args.name) {
        (Some(a), Some(b)) if a != b => {
            eprintln!(
                "Conflicting options: either specify --name or provide positional arg, not both"
            );
            return Ok(1);
        }
        (a, b) => a.clone().or_else(|| b.clone()),
    };
    let engine = open_engine(ctx)?;
    let mut labels = key_values(&args.label);
    if name.is_none() {
        labels.insert(ANONYMOUS_LABEL.to_string(), String::new());
    }
    let new = NewVolume {
        name,
        driver: Some(args.driver.clone()),
        labels,
        options: key_values(&args.opt),
    };
    match engine.store().create_volume(new) {
        Ok(v) => {
            println!("{}", v.name);
            Ok(0)
        }
        Err(e) => daemon_error(e),
    }
}

/// Anonymous: labelled so, or (made by `run -v /path` without the label) a 64-hex name.
pub fn is_anonymous(v: &Volume) -> bool {
    v.labels.contains_key(ANONYMOUS_LABEL)
        || (v.name.len() == 64 && v.name.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn labels_text(v: &Volume) -> String {
    v.labels
        .iter()
        .map(|(k, val)| format!("{k}={val}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn filter_ok(engine: &Engine, v: &Volume, filters: &[(String, String)]) -> Result<bool> {
    for (k, val) in filters {
        let ok = match k.as_str() {
            "dangling" => {
                let unused = engine
                    .store()
                    .volume_users(&v.name)
                    .map_err(|e| anyhow::anyhow!("{e}"))?
                    .is_empty();
                unused == matches!(val.as_str(), "true" | "1")
            }
            "name" => v.name.contains(val.as_str()),
            "driver" => v.driver == *val,
            "label" => match val.split_once('=') {
                Some((lk, lv)) => v.labels.get(lk).is_some_and(|x| x == lv),
                None => v.labels.contains_key(val.as_str()),
            },
            other => anyhow::bail!("invalid filter '{other}'"),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

pub fn ls(ctx: &Context, args: &LsArgs) -> Result<u8> {
    let filters: Vec<(String, String)> = args
        .filter
        .iter()
        .map(|f| {
            f.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| anyhow::anyhow!("bad format of filter (expected name=value)"))
        })
        .collect::<Result<_>>()?;
    let engine = open_engine(ctx)?;
    let mut vols = Vec::new();
    for v in engine
        .store()
        .list_volumes()
        .map_err(|e| anyhow::anyhow!("{e}"))?
    {
        if filter_ok(&engine, &v, &filters)? {
            vols.push(v);
        }
    }
    let mut out = io::stdout().lock();
    if args.quiet {
        for v in &vols {
            writeln!(out, "{}", v.name)?;
        }
        return Ok(0);
    }
    match args.format.as_deref() {
        None | Some("table") => {
            let mut rows = vec![vec!["DRIVER".to_string(), "VOLUME NAME".to_string()]];
            rows.extend(vols.iter().map(|v| vec![v.driver.clone(), v.name.clone()]));
            write!(out, "{}", table(&rows))?;
        }
        Some(fmt) => {
            let rows: Vec<Value> = vols
                .iter()
                .map(|v| {
                    json!({
                        "Availability": "N/A",
                        "Driver": v.driver,
                        "Group": "N/A",
                        "Labels": labels_text(v),
                        "Links": "N/A",
                        "Mountpoint": v.mountpoint,
                        "Name": v.name,
                        "Scope": "local",
                        "Size": "N/A",
                        "Status": "N/A",
                    })
                })
                .collect();
            write!(
                out,
                "{}",
                format::render_rows(fmt, &format::VOLUME_COLUMNS, &rows)?
            )?;
        }
    }
    Ok(0)
}

/// Docker's `volume inspect` object.
pub fn inspect_json(v: &Volume) -> Value {
    let map_or_null = |m: &BTreeMap<String, String>| {
        if m.is_empty() {
            Value::Null
        } else {
            json!(m)
        }
    };
    json!({
        "CreatedAt": format::rfc3339_utc(Engine::epoch(Some(v.created))),
        "Driver": v.driver,
        "Labels": map_or_null(&v.labels),
        "Mountpoint": v.mountpoint,
        "Name": v.name,
        "Options": map_or_null(&v.options),
        "Scope": "local",
    })
}

pub fn inspect(ctx: &Context, args: &InspectArgs) -> Result<u8> {
    let engine = open_engine(ctx)?;
    let mut found = Vec::new();
    let mut code = 0;
    for name in &args.volumes {
        match engine.store().get_volume(name) {
            Ok(v) => found.push(inspect_json(&v)),
            Err(StoreError::NoSuchVolume(_)) => {
                eprintln!("Error response from daemon: get {name}: no such volume");
                code = 1;
            }
            Err(e) => {
                eprintln!("Error response from daemon: {e}");
                code = 1;
            }
        }
    }
    crate::format::print_inspect(&found, args.format.as_deref())?;
    Ok(code)
}

pub fn rm(ctx: &Context, args: &RmArgs) -> Result<u8> {
    let engine = open_engine(ctx)?;
    let mut code = 0;
    for name in &args.volumes {
        match engine.store().remove_volume(name) {
            Ok(()) => println!("{name}"),
            Err(StoreError::NoSuchVolume(_)) if args.force => {}
            Err(StoreError::NoSuchVolume(_)) => {
                eprintln!("Error response from daemon: get {name}: no such volume");
                code = 1;
            }
            Err(e) => {
                eprintln!("Error response from daemon: {e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

/// Removes unused volumes (anonymous ones only unless `all`); returns names and bytes freed.
pub(crate) fn prune_volumes(engine: &Engine, all: bool) -> Result<(Vec<String>, u64)> {
    let store = engine.store();
    let mut removed = Vec::new();
    let mut reclaimed = 0;
    for name in store.unused_volumes().map_err(|e| anyhow::anyhow!("{e}"))? {
        let Ok(v) = store.get_volume(&name) else {
            continue;
        };
        if !all && !is_anonymous(&v) {
            continue;
        }
        let size = crate::system::dir_size(&v.mountpoint);
        match store.remove_volume(&name) {
            Ok(()) => {
                reclaimed += size;
                removed.push(name);
            }
            Err(e) => tracing::warn!(volume = %name, error = %e, "not pruned"),
        }
    }
    Ok((removed, reclaimed))
}

pub fn prune(ctx: &Context, args: &PruneArgs) -> Result<u8> {
    let warning = if args.all {
        "WARNING! This will remove all local volumes not used by at least one container."
    } else {
        "WARNING! This will remove anonymous local volumes not used by at least one container."
    };
    if !args.force && !confirm(warning) {
        return Ok(0);
    }
    let engine = open_engine(ctx)?;
    let (removed, reclaimed) = prune_volumes(&engine, args.all)?;
    let mut out = io::stdout().lock();
    format::write_deleted(&mut out, "Deleted Volumes:", "", &removed)?;
    format::write_reclaimed(&mut out, reclaimed)?;
    Ok(0)
}
