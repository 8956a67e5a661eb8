//! coracle-dns: the DNS responder for Coracle's user-defined networks.
//!
//! Usage: coracle-dns --config-dir DIR [--port N] [--keep-running]
//! Serves the networks described in DIR (see coracle_network::dns::records) and
//! exits when DIR holds no network, unless --keep-running.

use std::path::PathBuf;

use coracle_network::dns::server::{serve, ServerConfig};

fn main() {
    // coracle-net starts this responder while it holds SIGINT/SIGTERM off, and the
    // blocked mask is inherited: unblock them, so the responder can be stopped.
    if let Err(e) = coracle_network::signals::unblock() {
        fail(&format!("cannot unblock SIGINT/SIGTERM (sigprocmask: {e})"));
    }
    let mut config_dir: Option<PathBuf> = None;
    let mut port: u16 = 53;
    let mut exit_when_empty = true;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config-dir" => config_dir = args.next().map(PathBuf::from),
            "--port" => match args.next().and_then(|p| p.parse().ok()) {
                Some(p) => port = p,
                None => fail("--port needs a number"),
            },
            "--keep-running" => exit_when_empty = false,
            other => fail(&format!("unknown argument {other:?}")),
        }
    }
    let Some(config_dir) = config_dir else {
        fail("--config-dir DIR is required")
    };
    if let Err(e) = serve(&ServerConfig {
        config_dir,
        port,
        exit_when_empty,
    }) {
        fail(&e.to_string());
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("coracle-dns: {msg}");
    std::process::exit(2)
}
