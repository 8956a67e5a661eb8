//! Published ports: Docker's `-p` syntax parsed into [`PortMapping`]s, and the
//! conflict check between mappings.
//!
//! Accepted forms (each optionally followed by `/tcp` or `/udp`, TCP by default):
//!
//! | spec | host ip | host ports | container ports |
//! |---|---|---|---|
//! | `80` | any | chosen by the engine | 80 |
//! | `8080:80` | any | 8080 | 80 |
//! | `127.0.0.1:8080:80` | 127.0.0.1 | 8080 | 80 |
//! | `127.0.0.1::80` | 127.0.0.1 | chosen by the engine | 80 |
//! | `8080-8081:80-81` | any | 8080–8081 | 80–81 |
//! | `[::1]:8080:80` | ::1 | 8080 | 80 |
//!
//! A host port "chosen by the engine" is stored as `0` in both host port fields
//! ([`PortMapping::host_port_chosen`] is false); the engine picks a free port (or
//! range) and calls [`PortMapping::with_host_port`] before the mapping reaches the
//! firewall. A port written as `0` is refused: it is never what the user meant.
//!
//! Choosing that port (`-P`, `-p 80`): [`pick_host_port`] walks the host's
//! ephemeral range ([`ephemeral_range`], like Docker) from a starting point and
//! takes the first port (range) that no published mapping claims and that the host
//! does not use ([`host_port_free`], a trial bind). [`publish_all`] turns a list of
//! exposed ports (`--expose 80 --expose 53/udp`) into such mappings.
//!
//! Everything here is pure except [`ephemeral_range`] and [`host_port_free`].

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    /// The name nftables and Docker use: `tcp` or `udp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `-p` spec: a range of host ports forwarded one-to-one to a range of
/// container ports of the same length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortMapping {
    /// The host address the ports are published on; `None` means every address.
    pub host_ip: Option<IpAddr>,
    /// First host port; 0 (with `host_port_end` 0) while the engine has not chosen one.
    pub host_port_start: u16,
    /// Last host port (inclusive).
    pub host_port_end: u16,
    pub container_port_start: u16,
    /// Last container port (inclusive).
    pub container_port_end: u16,
    pub protocol: Protocol,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// The spec could not be parsed; `reason` says which part is wrong.
    #[error("invalid port spec {spec:?}: {reason}")]
    Invalid { spec: String, reason: String },
    /// Two mappings publish the same host port for the same protocol on addresses
    /// that overlap.
    #[error("port {port}/{protocol} on {host} is published twice: by {first} and by {second}")]
    Conflict {
        port: u16,
        protocol: Protocol,
        /// The narrower of the two host addresses (`0.0.0.0` or a specific address).
        host: String,
        first: String,
        second: String,
    },
}

impl PortMapping {
    /// Whether the host port (range) is known; false for `80` and `127.0.0.1::80`.
    pub fn host_port_chosen(&self) -> bool {
        self.host_port_start != 0
    }

    /// Number of ports in the mapping.
    pub fn len(&self) -> u32 {
        u32::from(self.container_port_end) - u32::from(self.container_port_start) + 1
    }

    /// Always false: a mapping has at least one port (kept for clippy's `len` rule).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The same mapping with its host range starting at `port` (the engine's choice
    /// for a spec that left the host port open). `None` if the range would pass 65535
    /// or `port` is 0.
    pub fn with_host_port(&self, port: u16) -> Option<PortMapping> {
        if port == 0 {
            return None;
        }
        let end = u32::from(port) + self.len() - 1;
        let end = u16::try_from(end).ok()?;
        Some(PortMapping {
            host_port_start: port,
            host_port_end: end,
            ..*self
        })
    }

    /// The container port a host port maps to, if `host_port` is in the host range.
    pub fn container_port_for(&self, host_port: u16) -> Option<u16> {
        if !self.host_port_chosen()
            || host_port < self.host_port_start
            || host_port > self.host_port_end
        {
            return None;
        }
        Some(self.container_port_start + (host_port - self.host_port_start))
    }

    /// Whether the two mappings would claim one host socket: same protocol, host port
    /// ranges that intersect, and host addresses that overlap (every-address overlaps
    /// everything; `0.0.0.0` overlaps every IPv4 address and `::` every IPv6 address).
    /// A mapping whose host port is not chosen yet conflicts with nothing.
    pub fn conflicts_with(&self, other: &PortMapping) -> bool {
        self.protocol == other.protocol
            && self.host_port_chosen()
            && other.host_port_chosen()
            && self.host_port_start <= other.host_port_end
            && other.host_port_start <= self.host_port_end
            && ips_overlap(self.host_ip, other.host_ip)
    }
}

fn ips_overlap(a: Option<IpAddr>, b: Option<IpAddr>) -> bool {
    match (a, b) {
        (None, _) | (_, None) => true,
        (Some(a), Some(b)) => {
            a == b || (a.is_ipv4() == b.is_ipv4() && (a.is_unspecified() || b.is_unspecified()))
        }
    }
}

/// The first conflict among `mappings` (in order), as an error naming both specs.
/// Use it with the mappings already published plus the new ones.
pub fn check_conflicts(mappings: &[PortMapping]) -> Result<(), PortError> {
    for (i, a) in mappings.iter().enumerate() {
        for b in &mappings[i + 1..] {
            if a.conflicts_with(b) {
                let port = a.host_port_start.max(b.host_port_start);
                let host = match (a.host_ip, b.host_ip) {
                    (Some(ip), _) if !ip.is_unspecified() => ip.to_string(),
                    (_, Some(ip)) => ip.to_string(),
                    _ => "every address".to_string(),
                };
                return Err(PortError::Conflict {
                    port,
                    protocol: a.protocol,
                    host,
                    first: a.to_string(),
                    second: b.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// Every pair `(i, j)`, `i < j`, of conflicting mappings.
pub fn find_conflicts(mappings: &[PortMapping]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for (i, a) in mappings.iter().enumerate() {
        for (j, b) in mappings.iter().enumerate().skip(i + 1) {
            if a.conflicts_with(b) {
                out.push((i, j));
            }
        }
    }
    out
}

/// Parses one `-p` spec (see the module documentation for the forms).
pub fn parse_port_spec(spec: &str) -> Result<PortMapping, PortError> {
    let fail = |reason: String| PortError::Invalid {
        spec: spec.to_string(),
        reason,
    };
    if spec.is_empty() {
        return Err(fail("the spec is empty".to_string()));
    }
    let (rest, protocol) = match spec.rsplit_once('/') {
        Some((rest, "tcp")) => (rest, Protocol::Tcp),
        Some((rest, "udp")) => (rest, Protocol::Udp),
        Some((_, other)) => {
            return Err(fail(format!(
                "protocol {other:?} is not supported (use tcp or udp)"
            )))
        }
        None => (spec, Protocol::Tcp),
    };

    // Split off a host IP: `[v6]:…` or `a.b.c.d:…` (the part before the second-last ':').
    let (host_ip, rest) = if let Some(after) = rest.strip_prefix('[') {
        let (ip, after) = after
            .split_once(']')
            .ok_or_else(|| fail("missing ']' after the IPv6 host address".to_string()))?;
        let ip: IpAddr = ip
            .parse()
            .map_err(|_| fail(format!("host address {ip:?} is not an IP address")))?;
        let after = after
            .strip_prefix(':')
            .ok_or_else(|| fail("expected ':' after the bracketed host address".to_string()))?;
        if !after.contains(':') {
            return Err(fail(
                "a host address needs host and container ports (ip:hostport:port or ip::port)"
                    .to_string(),
            ));
        }
        (Some(ip), after)
    } else {
        let parts: Vec<&str> = rest.split(':').collect();
        match parts.len() {
            1 | 2 => (None, rest),
            3 => {
                let ip = parts[0];
                let ip: IpAddr = ip.parse().map_err(|_| {
                    if ip.is_empty() {
                        fail("the host address before the first ':' is empty".to_string())
                    } else {
                        fail(format!("host address {ip:?} is not an IP address"))
                    }
                })?;
                (Some(ip), &rest[parts[0].len() + 1..])
            }
            _ => return Err(fail(
                "too many ':' (an IPv6 host address must be written in brackets: [::1]:8080:80)"
                    .to_string(),
            )),
        }
    };

    let (host, container) = match rest.split_once(':') {
        Some((h, c)) => (Some(h), c),
        None => (None, rest),
    };
    let (container_port_start, container_port_end) = parse_range(container, "container", &fail)?;
    let (host_port_start, host_port_end) = match host {
        None | Some("") => (0, 0),
        Some(h) => parse_range(h, "host", &fail)?,
    };
    if host_port_start != 0
        && host_port_end - host_port_start != container_port_end - container_port_start
    {
        return Err(fail(format!(
            "host port range {host_port_start}-{host_port_end} ({} ports) and container port \
             range {container_port_start}-{container_port_end} ({} ports) differ in length",
            host_port_end - host_port_start + 1,
            container_port_end - container_port_start + 1
        )));
    }
    let mapping = PortMapping {
        host_ip,
        host_port_start,
        host_port_end,
        container_port_start,
        container_port_end,
        protocol,
    };
    if !mapping.host_port_chosen() && host_ip.is_none() && host.is_some() {
        // `:80` is not a Docker form.
        return Err(fail("the host port before ':' is empty".to_string()));
    }
    Ok(mapping)
}

/// `N` or `N-M`, each 1..=65535, N <= M.
fn parse_range(
    text: &str,
    what: &str,
    fail: &dyn Fn(String) -> PortError,
) -> Result<(u16, u16), PortError> {
    let (a, b) = match text.split_once('-') {
        Some((a, b)) => (a, Some(b)),
        None => (text, None),
    };
    let start = parse_port(a, what, fail)?;
    let end = match b {
        Some(b) => parse_port(b, what, fail)?,
        None => start,
    };
    if end < start {
        return Err(fail(format!(
            "{what} port range {text:?} ends before it starts"
        )));
    }
    Ok((start, end))
}

fn parse_port(
    text: &str,
    what: &str,
    fail: &dyn Fn(String) -> PortError,
) -> Result<u16, PortError> {
    if text.is_empty() {
        return Err(fail(format!("{what} port is empty")));
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(fail(format!("{what} port {text:?} is not a number")));
    }
    match text.parse::<u32>() {
        Ok(0) => Err(fail(format!("{what} port 0 is not a valid port"))),
        Ok(p) if p <= 65535 => Ok(p as u16),
        _ => Err(fail(format!(
            "{what} port {text} is out of range (1-65535)"
        ))),
    }
}

/// The range Docker takes ports for `-P` from when the host does not say:
/// the kernel's default `ip_local_port_range` start and Docker's fallback end.
pub const DEFAULT_EPHEMERAL_RANGE: (u16, u16) = (49153, 60999);

/// The host's ephemeral port range, from `ip_local_port_range` (two numbers, e.g.
/// `32768\t60999`) of the calling network namespace; [`DEFAULT_EPHEMERAL_RANGE`]
/// when the file cannot be read or makes no sense.
pub fn ephemeral_range(proc_sys: &std::path::Path) -> (u16, u16) {
    let path = proc_sys.join("net/ipv4/ip_local_port_range");
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| parse_port_range_sysctl(&t))
        .unwrap_or(DEFAULT_EPHEMERAL_RANGE)
}

/// `"32768\t60999\n"` -> (32768, 60999); None unless 1 <= first <= last <= 65535.
pub fn parse_port_range_sysctl(text: &str) -> Option<(u16, u16)> {
    let mut it = text.split_whitespace().map(|w| w.parse::<u16>().ok());
    let (a, b) = (it.next()??, it.next()??);
    (a >= 1 && a <= b && it.next().is_none()).then_some((a, b))
}

/// Whether the host could bind every port of `mapping`'s host range (which must be
/// chosen) for its protocol on its host address (every address when unset): a
/// trial bind of each port, released at once. A port some process listens on, or
/// (UDP) has bound, is not free. Only IPv4 and IPv6 sockets of the calling
/// namespace are seen.
pub fn host_port_free(mapping: &PortMapping) -> bool {
    use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
    let ip = mapping.host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    (mapping.host_port_start..=mapping.host_port_end).all(|port| {
        let addr = SocketAddr::new(ip, port);
        match mapping.protocol {
            Protocol::Tcp => TcpListener::bind(addr).is_ok(),
            Protocol::Udp => UdpSocket::bind(addr).is_ok(),
        }
    })
}

/// Chooses the host port (range) of a mapping whose host port is not chosen yet.
///
/// Candidates are the starts `s` in `range` (inclusive) such that the whole host
/// range `s..s+len` fits in `range`, tried in order from `from` (wrapping around
/// once), so successive choices move on through the range as Docker's do instead
/// of reusing a port just released. A candidate is taken when it conflicts with
/// none of `published` (every mapping Coracle has, and those chosen earlier in the
/// same request) and `is_free` says the host does not use it. At most one pass over
/// the range. Returns the mapping with its host port set, or None when no port is
/// left (or the mapping already has one).
pub fn pick_host_port(
    mapping: &PortMapping,
    range: (u16, u16),
    from: u16,
    published: &[PortMapping],
    is_free: &mut dyn FnMut(&PortMapping) -> bool,
) -> Option<PortMapping> {
    if mapping.host_port_chosen() || range.0 == 0 || range.1 < range.0 {
        return None;
    }
    let first = u32::from(range.0);
    let last_start = u32::from(range.1).checked_sub(mapping.len() - 1)?;
    if last_start < first {
        return None;
    }
    let count = last_start - first + 1;
    // A hint outside the candidates (the range changed, or the last choice was at
    // its end) starts over at the beginning.
    let from = Some(u32::from(from))
        .filter(|f| (first..=last_start).contains(f))
        .unwrap_or(first);
    for i in 0..count {
        let start = first + (from - first + i) % count;
        let candidate = mapping.with_host_port(u16::try_from(start).ok()?)?;
        if published.iter().any(|p| p.conflicts_with(&candidate)) {
            continue;
        }
        if is_free(&candidate) {
            return Some(candidate);
        }
    }
    None
}

/// `-P`: every exposed port (`80`, `53/udp`, `8000-8002`) published on a host port
/// the engine chooses (on every address).
pub fn publish_all(exposed: &[String]) -> Result<Vec<PortMapping>, PortError> {
    exposed
        .iter()
        .map(|e| {
            let m = parse_port_spec(e)?;
            if m.host_ip.is_some() || m.host_port_chosen() {
                return Err(PortError::Invalid {
                    spec: e.clone(),
                    reason: "an exposed port is a container port (range) with an optional \
                             protocol, like 80 or 53/udp"
                        .to_string(),
                });
            }
            Ok(m)
        })
        .collect()
}

impl FromStr for PortMapping {
    type Err = PortError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_port_spec(s)
    }
}

/// Docker's spelling, parseable again by [`parse_port_spec`].
impl fmt::Display for PortMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host_ip {
            Some(IpAddr::V6(ip)) => write!(f, "[{ip}]:")?,
            Some(ip) => write!(f, "{ip}:")?,
            None => {}
        }
        if self.host_port_chosen() {
            write_range(f, self.host_port_start, self.host_port_end)?;
            f.write_str(":")?;
        } else if self.host_ip.is_some() {
            f.write_str(":")?;
        }
        write_range(f, self.container_port_start, self.container_port_end)?;
        write!(f, "/{}", self.protocol)
    }
}

fn write_range(f: &mut fmt::Formatter<'_>, a: u16, b: u16) -> fmt::Result {
    if a == b {
        write!(f, "{a}")
    } else {
        write!(f, "{a}-{b}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PortMapping {
        parse_port_spec(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn err(s: &str) -> String {
        parse_port_spec(s).unwrap_err().to_string()
    }

    #[test]
    fn forms() {
        let m = p("80");
        assert_eq!(
            (m.host_ip, m.host_port_start, m.host_port_end),
            (None, 0, 0)
        );
        assert_eq!((m.container_port_start, m.container_port_end), (80, 80));
        assert_eq!(m.protocol, Protocol::Tcp);
        assert!(!m.host_port_chosen());

        let m = p("8080:80");
        assert_eq!(
            (m.host_ip, m.host_port_start, m.container_port_start),
            (None, 8080, 80)
        );

        let m = p("127.0.0.1:8080:80");
        assert_eq!(m.host_ip, Some("127.0.0.1".parse().unwrap()));
        assert_eq!((m.host_port_start, m.host_port_end), (8080, 8080));

        let m = p("127.0.0.1::80");
        assert_eq!(m.host_ip, Some("127.0.0.1".parse().unwrap()));
        assert!(!m.host_port_chosen());

        let m = p("8080-8081:80-81");
        assert_eq!((m.host_port_start, m.host_port_end), (8080, 8081));
        assert_eq!((m.container_port_start, m.container_port_end), (80, 81));
        assert_eq!(m.container_port_for(8081), Some(81));
        assert_eq!(m.container_port_for(8082), None);

        assert_eq!(p("53/udp").protocol, Protocol::Udp);
        assert_eq!(p("5353:53/udp").host_port_start, 5353);
        assert_eq!(p("80/tcp").protocol, Protocol::Tcp);

        let m = p("[::1]:8080:80");
        assert_eq!(m.host_ip, Some("::1".parse().unwrap()));
        assert_eq!(m.host_port_start, 8080);
        let m = p("[::]::80/udp");
        assert_eq!(m.host_ip, Some("::".parse().unwrap()));
        assert!(!m.host_port_chosen());
        assert_eq!(p("65535:1").host_port_start, 65535);
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "80/tcp",
            "8080:80/tcp",
            "127.0.0.1:8080:80/tcp",
            "127.0.0.1::80/udp",
            "8080-8081:80-81/tcp",
            "[::1]:8080:80/udp",
            "[::]::80-82/tcp",
        ] {
            assert_eq!(p(s).to_string(), s);
        }
    }

    #[test]
    fn errors_name_the_spec_and_the_part() {
        assert_eq!(
            err("80:abc"),
            "invalid port spec \"80:abc\": container port \"abc\" is not a number"
        );
        assert_eq!(
            err("x:80"),
            "invalid port spec \"x:80\": host port \"x\" is not a number"
        );
        assert!(
            err("8080-8082:80-81").contains("differ in length"),
            "{}",
            err("8080-8082:80-81")
        );
        assert!(err("8080-8081:80").contains("differ in length"));
        assert!(err("0:80").contains("host port 0 is not a valid port"));
        assert!(err("80:0").contains("container port 0"));
        assert!(err("70000:80").contains("host port 70000 is out of range"));
        assert!(err("99999999999999999999:80").contains("out of range"));
        assert!(err("81-80:81-80").contains("ends before it starts"));
        assert!(err("80/sctp").contains("protocol \"sctp\""));
        assert!(err("1.2.3:80:80").contains("host address \"1.2.3\" is not an IP address"));
        assert!(err("::1:80:80").contains("brackets"));
        assert!(err("[::1:80:80").contains("missing ']'"));
        assert!(err("[::1]:80").contains("needs host and container ports"));
        assert!(err("").contains("empty"));
        assert!(err(":80").contains("host port before ':' is empty"));
        assert!(err("80:").contains("container port is empty"));
        assert!(err("-1:80").contains("host port is empty"));
        assert!(err("+80:80").contains("not a number"));
    }

    #[test]
    fn with_host_port() {
        let m = p("127.0.0.1::80-82");
        let c = m.with_host_port(30000).unwrap();
        assert_eq!((c.host_port_start, c.host_port_end), (30000, 30002));
        assert_eq!(m.with_host_port(65534), None);
        assert_eq!(m.with_host_port(0), None);
    }

    #[test]
    fn port_range_sysctl() {
        assert_eq!(
            parse_port_range_sysctl("32768\t60999\n"),
            Some((32768, 60999))
        );
        assert_eq!(parse_port_range_sysctl("1024 1024"), Some((1024, 1024)));
        assert_eq!(parse_port_range_sysctl("60999 32768"), None);
        assert_eq!(parse_port_range_sysctl("0 10"), None);
        assert_eq!(parse_port_range_sysctl("10"), None);
        assert_eq!(parse_port_range_sysctl("1 2 3"), None);
        assert_eq!(parse_port_range_sysctl("x 2"), None);
        let missing = std::path::Path::new("/nonexistent-proc-sys");
        assert_eq!(ephemeral_range(missing), DEFAULT_EPHEMERAL_RANGE);
    }

    #[test]
    fn picking_a_host_port() {
        let any = &mut |_: &PortMapping| true;
        let m = p("80");
        let c = pick_host_port(&m, (40000, 40009), 40000, &[], any).unwrap();
        assert_eq!((c.host_port_start, c.host_port_end), (40000, 40000));
        assert_eq!(c.container_port_start, 80);
        // Published ones (whatever their container port) are skipped.
        let taken = [p("40000:81"), p("127.0.0.1:40001:82")];
        let c = pick_host_port(&m, (40000, 40009), 40000, &taken, any).unwrap();
        assert_eq!(c.host_port_start, 40002);
        // A UDP mapping on 40000 does not take the TCP port.
        let c = pick_host_port(&m, (40000, 40009), 40000, &[p("40000:80/udp")], any).unwrap();
        assert_eq!(c.host_port_start, 40000);
        // Ports the host uses are skipped; the walk starts at `from` and wraps.
        let busy = &mut |c: &PortMapping| c.host_port_start != 40008;
        let c = pick_host_port(&m, (40000, 40009), 40008, &[], busy).unwrap();
        assert_eq!(c.host_port_start, 40009);
        let c = pick_host_port(&m, (40000, 40009), 40009, &[p("40009:1")], any).unwrap();
        assert_eq!(c.host_port_start, 40000);
        let c = pick_host_port(&m, (40000, 40009), 40010, &[], any).unwrap();
        assert_eq!(
            c.host_port_start, 40000,
            "a hint past the range starts over"
        );
        // A range needs room for all of it, with nothing in it taken.
        let r = p("127.0.0.1::80-82");
        let c = pick_host_port(&r, (40000, 40005), 40000, &[p("40001:1")], any).unwrap();
        assert_eq!((c.host_port_start, c.host_port_end), (40002, 40004));
        assert_eq!(c.host_ip, r.host_ip);
        assert_eq!(pick_host_port(&r, (40000, 40001), 40000, &[], any), None);
        // Full: every port published, or every port busy; each tried once at most.
        let full: Vec<_> = (40000..=40003).map(|h| p(&format!("{h}:1"))).collect();
        assert_eq!(pick_host_port(&m, (40000, 40003), 40000, &full, any), None);
        let mut tries = 0;
        let never = &mut |_: &PortMapping| {
            tries += 1;
            false
        };
        assert_eq!(pick_host_port(&m, (40000, 40003), 40002, &[], never), None);
        assert_eq!(tries, 4);
        // Already chosen: nothing to pick.
        assert_eq!(
            pick_host_port(&p("8080:80"), (40000, 40003), 0, &[], any),
            None
        );
    }

    #[test]
    fn publish_all_exposed_ports() {
        let v = publish_all(&["80".into(), "53/udp".into(), "8000-8001".into()]).unwrap();
        assert_eq!(v.len(), 3);
        assert!(v
            .iter()
            .all(|m| !m.host_port_chosen() && m.host_ip.is_none()));
        assert_eq!(v[1].protocol, Protocol::Udp);
        let e = publish_all(&["8080:80".into()]).unwrap_err().to_string();
        assert!(
            e.contains("\"8080:80\": an exposed port is a container port"),
            "{e}"
        );
        assert!(publish_all(&["x".into()]).is_err());
    }

    #[test]
    fn host_port_free_sees_a_listener() {
        // Loopback of the calling namespace only; the port comes from the kernel.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let on_lo = p(&format!("127.0.0.1:{port}:80"));
        let on_all = p(&format!("{port}:80"));
        assert!(!host_port_free(&on_lo));
        assert!(!host_port_free(&on_all), "every address includes 127.0.0.1");
        drop(l);
        assert!(host_port_free(&on_lo));
    }

    #[test]
    fn conflicts() {
        let all = p("8080:80");
        let lo = p("127.0.0.1:8080:81");
        let other = p("10.0.0.1:8080:80");
        let wild4 = p("0.0.0.0:8080:80");
        let v6 = p("[::1]:8080:80");
        let udp = p("8080:80/udp");
        let range = p("8070-8080:70-80");
        let apart = p("8081-8090:81-90");
        assert!(all.conflicts_with(&lo));
        assert!(lo.conflicts_with(&wild4));
        assert!(!lo.conflicts_with(&other));
        assert!(all.conflicts_with(&v6));
        assert!(!wild4.conflicts_with(&v6));
        assert!(!all.conflicts_with(&udp));
        assert!(range.conflicts_with(&all));
        assert!(!apart.conflicts_with(&all));
        assert!(
            !p("80").conflicts_with(&p("80")),
            "unchosen host ports never conflict"
        );
        assert!(lo.conflicts_with(&lo));

        assert_eq!(check_conflicts(&[lo, other, udp, apart]), Ok(()));
        let e = check_conflicts(&[lo, other, wild4]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "port 8080/tcp on 127.0.0.1 is published twice: by 127.0.0.1:8080:81/tcp and by \
             0.0.0.0:8080:80/tcp"
        );
        assert_eq!(find_conflicts(&[all, lo, other, udp]), vec![(0, 1), (0, 2)]);
    }
}
