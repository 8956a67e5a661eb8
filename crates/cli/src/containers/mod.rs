//! Container commands: run, create, start, stop, kill, restart, rm, ps, logs, exec, wait,
//! pause, unpause, rename, port, top — Docker's flags, output and exit codes.
//!
//! One file per group of commands; `flags.rs` holds the translation of the flags into the
//! engine's container configuration, apart from the code that creates and runs it.

mod exec;
mod flags;
mod inspect;
mod lifecycle;
mod logs;
mod ps;
mod run;

pub use exec::*;
pub use flags::*;
pub use inspect::*;
pub use lifecycle::*;
pub use logs::*;
pub use ps::*;
pub use run::*;

// The command files share these through `use super::*`.
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::{bail, Context as _, Result};
use clap::Args;
use coracle_engine::engine::{CreateRequest, Engine, EngineConfig, EngineError, LogOptions};
use coracle_engine::spec::config::{ContainerConfig, EndpointIpamConfig, EndpointSettings};
use coracle_engine::spec::parse;
use coracle_engine::store::{ContainerRecord, State};
use coracle_network::bridge::BridgeConfig;
use nix::sys::signal::Signal;
use serde_json::{json, Value};

use crate::format::{self, table};
use crate::Context;

/// An error with the exit status `coracle` should end with.
#[derive(Debug)]
pub struct Exit(pub u8, pub String);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.1)
    }
}

impl std::error::Error for Exit {}

fn engine_error(e: EngineError) -> anyhow::Error {
    Exit(e.exit_code(), e.to_string()).into()
}

pub fn open_engine(ctx: &Context) -> Result<Engine> {
    let mut cfg = EngineConfig::new(&ctx.root, &ctx.run_root);
    let subnet = coracle_network::subnet::parse_subnet(&ctx.subnet)
        .map_err(|e| anyhow::anyhow!("--default-subnet: {e}"))?;
    let sub = coracle_network::subnet::Subnet::new(subnet)
        .map_err(|e| anyhow::anyhow!("--default-subnet: {e}"))?;
    cfg.bridge = BridgeConfig {
        name: ctx.bridge.clone(),
        subnet,
        gateway: sub.gateway(),
        mtu: 1500,
    };
    cfg.cli_global_args = vec![
        "--root".into(),
        ctx.root.display().to_string(),
        "--run-root".into(),
        ctx.run_root.display().to_string(),
        "--bridge".into(),
        ctx.bridge.clone(),
        "--default-subnet".into(),
        ctx.subnet.clone(),
        "--cgroup-parent".into(),
        ctx.cgroup_parent.clone(),
    ];
    cfg.cgroup_parent = ctx.cgroup_parent.clone();
    Engine::open(cfg).map_err(engine_error)
}

fn bad(e: impl std::fmt::Display) -> anyhow::Error {
    Exit(125, e.to_string()).into()
}
