//! The responder's loop: one UDP socket per listen address, answers from the
//! records of the network that listens there, forwarding for other names.
//!
//! Records are re-read whenever a file in the config directory changes (checked
//! on every wake-up, at least once a second), so adding a container is just
//! rewriting its network's file. With `exit_when_empty`, the process ends once no
//! network has records left: it runs only while some network needs it.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::records::{self, NetworkRecords};
use super::wire::{self, Rdata};

/// How long a forwarded query may wait for its upstream.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);
/// Forwarded queries in flight at once; beyond that the answer is SERVFAIL.
const MAX_IN_FLIGHT: usize = 64;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub config_dir: PathBuf,
    /// 53 normally; tests use a high port on loopback.
    pub port: u16,
    pub exit_when_empty: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Records(#[from] records::RecordsError),
    #[error("dns: poll: {0}")]
    Poll(nix::errno::Errno),
}

/// (file name, mtime, length) of every records file: changes when any file does.
fn fingerprint(dir: &Path) -> Vec<(String, Option<SystemTime>, u64)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            Some((
                e.file_name().to_string_lossy().into_owned(),
                m.modified().ok(),
                m.len(),
            ))
        })
        .collect();
    v.sort();
    v
}

struct Listener {
    socket: Arc<UdpSocket>,
    addr: IpAddr,
}

pub fn serve(cfg: &ServerConfig) -> Result<(), ServerError> {
    let mut networks: Vec<NetworkRecords> = Vec::new();
    let mut listeners: Vec<Listener> = Vec::new();
    let mut seen = None;
    let in_flight = Arc::new(AtomicUsize::new(0));
    loop {
        let fp = fingerprint(&cfg.config_dir);
        if seen.as_ref() != Some(&fp) {
            match records::load_all(&cfg.config_dir) {
                Ok(n) => networks = n,
                // A half-written file from an old writer: keep the last good state.
                Err(e) => tracing::warn!("{e}; keeping the previous records"),
            }
            seen = Some(fp);
            if networks.is_empty() && cfg.exit_when_empty {
                tracing::info!("no network has records left; exiting");
                return Ok(());
            }
            rebind(&mut listeners, &networks, cfg.port);
        }
        let mut fds: Vec<PollFd<'_>> = listeners
            .iter()
            .map(|l| PollFd::new(l.socket.as_fd(), PollFlags::POLLIN))
            .collect();
        match poll(&mut fds, PollTimeout::from(1000u16)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(ServerError::Poll(e)),
        }
        let ready: Vec<usize> = fds
            .iter()
            .enumerate()
            .filter(|(_, f)| f.revents().is_some_and(|r| r.contains(PollFlags::POLLIN)))
            .map(|(i, _)| i)
            .collect();
        drop(fds);
        for i in ready {
            let l = &listeners[i];
            let mut buf = [0u8; 1500];
            let Ok((n, peer)) = l.socket.recv_from(&mut buf) else {
                continue;
            };
            let net = networks.iter().find(|n| n.listen.contains(&l.addr));
            handle(&buf[..n], peer, &l.socket, net, &in_flight);
        }
    }
}

/// Bind sockets for every listen address of `networks` that has none, and drop the
/// sockets of addresses no longer listed. An address that cannot be bound yet (the
/// bridge is not up) is retried at the next reload.
fn rebind(listeners: &mut Vec<Listener>, networks: &[NetworkRecords], port: u16) {
    let wanted: Vec<IpAddr> = networks
        .iter()
        .flat_map(|n| n.listen.iter().copied())
        .collect();
    listeners.retain(|l| wanted.contains(&l.addr));
    for addr in wanted {
        if listeners.iter().any(|l| l.addr == addr) {
            continue;
        }
        match UdpSocket::bind(SocketAddr::new(addr, port)) {
            Ok(s) => listeners.push(Listener {
                socket: Arc::new(s),
                addr,
            }),
            Err(e) => tracing::warn!("dns: bind {addr}:{port}: {e}"),
        }
    }
}

fn handle(
    msg: &[u8],
    peer: SocketAddr,
    socket: &Arc<UdpSocket>,
    net: Option<&NetworkRecords>,
    in_flight: &Arc<AtomicUsize>,
) {
    let reply = |bytes: Option<Vec<u8>>| {
        if let Some(b) = bytes {
            let _ = socket.send_to(&b, peer);
        }
    };
    let q = match wire::parse_query(msg) {
        Ok(q) => q,
        Err(wire::WireError::NotQuery(_)) => return,
        Err(_) => return reply(wire::build_error(msg, wire::RCODE_FORMERR)),
    };
    let Some(net) = net else {
        return reply(Some(wire::build_reply(msg, &q, wire::RCODE_REFUSED, &[])));
    };
    if let Some(answers) = answer_locally(net, &q) {
        return reply(Some(wire::build_reply(
            msg,
            &q,
            wire::RCODE_NOERROR,
            &answers,
        )));
    }
    if net.internal || net.upstreams.is_empty() {
        return reply(Some(wire::build_reply(msg, &q, wire::RCODE_NXDOMAIN, &[])));
    }
    if in_flight.fetch_add(1, Ordering::SeqCst) >= MAX_IN_FLIGHT {
        in_flight.fetch_sub(1, Ordering::SeqCst);
        return reply(Some(wire::build_reply(msg, &q, wire::RCODE_SERVFAIL, &[])));
    }
    let (msg, socket, ups, counter) = (
        msg.to_vec(),
        Arc::clone(socket),
        net.upstreams.clone(),
        Arc::clone(in_flight),
    );
    std::thread::spawn(move || {
        let answer = forward(&msg, &ups)
            .unwrap_or_else(|| wire::build_reply(&msg, &q, wire::RCODE_SERVFAIL, &[]));
        let _ = socket.send_to(&answer, peer);
        counter.fetch_sub(1, Ordering::SeqCst);
    });
}

/// The answer for a container name or address of `net`, or None if it is not ours.
fn answer_locally(net: &NetworkRecords, q: &wire::Query) -> Option<Vec<Rdata>> {
    match q.qtype {
        wire::TYPE_A | wire::TYPE_AAAA => {
            let ips = net.lookup(&q.name);
            if ips.is_empty() {
                return None;
            }
            let want_v4 = q.qtype == wire::TYPE_A;
            // The name exists: answer even with no address of the asked family
            // (NOERROR with no records), so clients do not wait on the upstream.
            Some(
                ips.into_iter()
                    .filter(|ip| ip.is_ipv4() == want_v4)
                    .map(Rdata::Ip)
                    .collect(),
            )
        }
        wire::TYPE_PTR => {
            let ip = wire::reverse_name_to_ip(&q.name)?;
            net.reverse(ip)
                .map(|name| vec![Rdata::Ptr(name.to_string())])
        }
        _ => None,
    }
}

/// Send `msg` to each upstream in turn until one answers; the reply keeps the
/// client's id (we reuse the client's query unchanged).
fn forward(msg: &[u8], upstreams: &[SocketAddr]) -> Option<Vec<u8>> {
    let id = u16::from_be_bytes([*msg.first()?, *msg.get(1)?]);
    for up in upstreams {
        let bind: SocketAddr = if up.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }
            .parse()
            .ok()?;
        let Ok(s) = UdpSocket::bind(bind) else {
            continue;
        };
        if s.set_read_timeout(Some(UPSTREAM_TIMEOUT)).is_err() || s.connect(up).is_err() {
            continue;
        }
        if s.send(msg).is_err() {
            continue;
        }
        let mut buf = vec![0u8; 4096];
        if let Ok(n) = s.recv(&mut buf) {
            buf.truncate(n);
            wire::set_id(&mut buf, id);
            return Some(buf);
        }
        tracing::debug!("dns: upstream {up} did not answer");
    }
    None
}
