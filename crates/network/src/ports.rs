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
//! Everything here is pure.

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
