//! coracle-net: Coracle's networks from the command line, one operation per run,
//! JSON on stdout — what tests and benchmarks drive from separate processes, and a
//! way to inspect and repair the host (`reload` after `nft flush ruleset`).
//!
//! The host is the network namespace this command runs in.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use coracle_network::bridge::BridgeConfig;
use coracle_network::manager::{ConnectRequest, Manager, ManagerConfig};
use coracle_network::ports::PortMapping;
use coracle_network::subnet::{self, Ipv4Net};

#[derive(Parser)]
#[command(
    name = "coracle-net",
    version,
    about = "Coracle bridge networks: create, connect, reload"
)]
struct Cli {
    /// Persistent state (network definitions, endpoints, address allocations).
    #[arg(
        long,
        env = "CORACLE_NET_STATE",
        default_value = "/var/lib/coracle/network"
    )]
    state_dir: PathBuf,
    /// Runtime state (DNS records, pid files).
    #[arg(long, env = "CORACLE_NET_RUN", default_value = "/run/coracle/network")]
    run_dir: PathBuf,
    /// The nftables table Coracle owns.
    #[arg(long, env = "CORACLE_NET_TABLE", default_value = "coracle")]
    table: String,
    /// The default network's bridge.
    #[arg(long, env = "CORACLE_NET_BRIDGE", default_value = "coracle0")]
    default_bridge: String,
    /// The default network's subnet.
    #[arg(long, env = "CORACLE_NET_SUBNET", default_value = "172.17.0.0/16")]
    default_subnet: String,
    /// Port of the DNS responder on each gateway address.
    #[arg(long, default_value_t = 53)]
    dns_port: u16,
    /// Do not start the DNS responder (names are still recorded).
    #[arg(long)]
    no_dns: bool,
    /// Host ports for `-P` and `-p PORT` come from this range (FIRST-LAST);
    /// default: the host's ip_local_port_range, as Docker does.
    #[arg(long, env = "CORACLE_NET_HOST_PORT_RANGE", value_parser = parse_port_range)]
    host_port_range: Option<(u16, u16)>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a user-defined network.
    Create {
        name: String,
        #[arg(long)]
        subnet: Option<String>,
        /// No masquerade and no way out.
        #[arg(long)]
        internal: bool,
    },
    /// Remove a network (refused while containers are connected).
    Rm { name: String },
    /// List networks.
    Ls,
    /// A network and its endpoints.
    Inspect { name: String },
    /// Connect a container's network namespace.
    Connect {
        #[arg(long, default_value = "bridge")]
        network: String,
        #[arg(long)]
        container: String,
        #[arg(long)]
        netns: PathBuf,
        #[arg(long)]
        ip: Option<Ipv4Addr>,
        /// A name DNS answers for (container name, short id, alias); repeatable.
        #[arg(long = "name")]
        names: Vec<String>,
        /// -p style: [hostip:]hostport:port[/tcp|udp]; repeatable. Without a host
        /// port (`-p 80`, `-p 127.0.0.1::80`) a free one is chosen and shown in the
        /// output's `ports`.
        #[arg(short = 'p', long = "publish")]
        publish: Vec<String>,
        /// A port the container exposes (`80`, `53/udp`, `8000-8001`); repeatable.
        /// Published only with --publish-all.
        #[arg(long)]
        expose: Vec<String>,
        /// -P: publish every --expose'd port on a free host port.
        #[arg(short = 'P', long)]
        publish_all: bool,
    },
    /// Disconnect a container (best-effort, idempotent).
    Disconnect {
        #[arg(long, default_value = "bridge")]
        network: String,
        #[arg(long)]
        container: String,
    },
    /// Rebuild every firewall rule from the stored state.
    Reload,
    /// Create a named network namespace (a pinned netns file).
    NetnsAdd { path: PathBuf },
    /// Remove a named network namespace.
    NetnsRm { path: PathBuf },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Every command either completes or rolls back: SIGINT, SIGTERM, SIGHUP and
    // SIGQUIT are held off from here (before any thread exists, so none can take
    // them) until the result is out. Connect checks for one after each step and
    // rolls back; teardown (disconnect, rm) and reload run to the end. The signal
    // is then delivered as usual when the guard drops: the process ends by it, and
    // whoever sent it sees that in the exit status.
    let deferred = match coracle_network::signals::Deferred::block() {
        Ok(d) => Some(d),
        Err(e) => {
            eprintln!("coracle-net: warning: cannot block SIGINT/SIGTERM (sigprocmask: {e}); an interrupt may leave a half-made endpoint");
            None
        }
    };
    let code = match run(cli) {
        Ok(out) => {
            if !out.is_null() {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&out).expect("serializes")
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("coracle-net: {e}");
            ExitCode::from(1)
        }
    };
    if let Some(sig) = coracle_network::signals::pending() {
        eprintln!("coracle-net: {sig} arrived while working; the command was finished or rolled back first");
    }
    drop(deferred);
    code
}

/// Between the steps of connect and disconnect: the pending signal, if any (which
/// makes connect roll back). `CORACLE_NET_TEST_PAUSE=STEP:MS` sleeps MS
/// milliseconds after STEP, so tests can send a signal mid-operation.
fn checkpoint(step: &'static str) -> Option<String> {
    if let Ok(spec) = std::env::var("CORACLE_NET_TEST_PAUSE") {
        if let Some((s, ms)) = spec.split_once(':') {
            if s == step {
                let ms: u64 = ms.parse().unwrap_or(0).min(10_000);
                eprintln!("coracle-net: test pause after {step} ({ms} ms)");
                std::thread::sleep(std::time::Duration::from_millis(ms));
            }
        }
    }
    coracle_network::signals::pending().map(|sig| format!("{sig} received"))
}

fn run(cli: Cli) -> Result<serde_json::Value, String> {
    let s = |e: &dyn std::fmt::Display| e.to_string();
    match &cli.command {
        Command::NetnsAdd { path } => {
            coracle_network::netns::create(path).map_err(|e| s(&e))?;
            return Ok(serde_json::Value::Null);
        }
        Command::NetnsRm { path } => {
            coracle_network::netns::remove(path).map_err(|e| s(&e))?;
            return Ok(serde_json::Value::Null);
        }
        _ => {}
    }
    let default_subnet: Ipv4Net = subnet::parse_subnet(&cli.default_subnet).map_err(|e| s(&e))?;
    let sub = subnet::Subnet::new(default_subnet).map_err(|e| s(&e))?;
    let dns_binary = (!cli.no_dns).then(|| {
        std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.join("coracle-dns")))
            .unwrap_or_else(|| PathBuf::from("coracle-dns"))
    });
    let mgr = Manager::open(ManagerConfig {
        state_dir: cli.state_dir.clone(),
        run_dir: cli.run_dir.clone(),
        table: cli.table.clone(),
        default_bridge: BridgeConfig {
            name: cli.default_bridge.clone(),
            subnet: default_subnet,
            gateway: sub.gateway(),
            mtu: 1500,
        },
        dns_binary,
        dns_port: cli.dns_port,
        host_port_range: cli.host_port_range,
    })
    .map_err(|e| s(&e))?;
    match cli.command {
        Command::Create {
            name,
            subnet,
            internal,
        } => {
            let net = match subnet {
                Some(t) => Some(subnet::parse_subnet(&t).map_err(|e| s(&e))?),
                None => None,
            };
            Ok(to_json(
                &mgr.create_network(&name, net, internal)
                    .map_err(|e| s(&e))?,
            ))
        }
        Command::Rm { name } => mgr
            .remove_network(&name)
            .map(|()| serde_json::Value::Null)
            .map_err(|e| s(&e)),
        Command::Ls => Ok(to_json(&mgr.networks().map_err(|e| s(&e))?)),
        Command::Inspect { name } => {
            let def = mgr.network(&name).map_err(|e| s(&e))?;
            let eps = mgr.endpoints(&name).map_err(|e| s(&e))?;
            Ok(serde_json::json!({ "network": def, "endpoints": eps }))
        }
        Command::Connect {
            network,
            container,
            netns,
            ip,
            names,
            publish,
            expose,
            publish_all,
        } => {
            let mut ports: Vec<PortMapping> = publish
                .iter()
                .map(|p| coracle_network::ports::parse_port_spec(p))
                .collect::<Result<_, _>>()
                .map_err(|e| s(&e))?;
            // Checked even without -P: a bad --expose is an error either way.
            let exposed = coracle_network::ports::publish_all(&expose).map_err(|e| s(&e))?;
            if publish_all {
                ports.extend(exposed);
            }
            let req = ConnectRequest {
                network,
                container,
                netns,
                ip,
                names,
                ports,
            };
            Ok(to_json(
                &mgr.connect_with(&req, &checkpoint).map_err(|e| s(&e))?,
            ))
        }
        Command::Disconnect { network, container } => mgr
            .disconnect_with(&network, &container, &checkpoint)
            .map(|()| serde_json::Value::Null)
            .map_err(|e| s(&e)),
        Command::Reload => mgr
            .reload()
            .map(|()| serde_json::Value::Null)
            .map_err(|e| s(&e)),
        Command::NetnsAdd { .. } | Command::NetnsRm { .. } => unreachable!("handled above"),
    }
}

fn parse_port_range(text: &str) -> Result<(u16, u16), String> {
    let (a, b) = text
        .split_once('-')
        .ok_or_else(|| format!("{text:?}: expected FIRST-LAST, like 49153-60999"))?;
    let port = |t: &str| {
        t.parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("{text:?}: {t:?} is not a port (1-65535)"))
    };
    let (a, b) = (port(a)?, port(b)?);
    if b < a {
        return Err(format!("{text:?}: the range ends before it starts"));
    }
    Ok((a, b))
}

fn to_json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).expect("manager types serialize")
}
