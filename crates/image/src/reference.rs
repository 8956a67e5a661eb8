//! Image references as Docker parses them.
//!
//! `name[:tag][@digest]`, where `name` is `[domain/]path`:
//! - the first component is a registry domain if it contains `.` or `:`, or is
//!   `localhost`; otherwise the domain is `docker.io`;
//! - on `docker.io`, a one-component path is an official image under `library/`;
//! - path components are lowercase alphanumerics joined by `.`, `_`, `__` or `-`s;
//! - a tag is `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`; without tag and digest the tag is
//!   `latest`; a digest is `algorithm:hex` (sha256 needs 64 hex digits).
//!
//! So `nginx` is `docker.io/library/nginx:latest`, and
//! `localhost:5000/team/app@sha256:…` keeps its domain, path and digest.

use std::fmt;
use std::str::FromStr;

pub const DEFAULT_DOMAIN: &str = "docker.io";
pub const DEFAULT_TAG: &str = "latest";
const OFFICIAL_PREFIX: &str = "library/";
const MAX_NAME: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid reference {reference:?}: {reason}")]
pub struct ReferenceError {
    pub reference: String,
    pub reason: String,
}

/// A fully qualified reference: domain and path always set, the tag defaulted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    pub domain: String,
    pub path: String,
    /// `latest` when the reference had neither a tag nor a digest.
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl Reference {
    /// `domain/path`, e.g. `docker.io/library/nginx`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The short form Docker shows (`nginx`, `user/app`, `localhost:5000/app`).
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            self.path
                .strip_prefix(OFFICIAL_PREFIX)
                .unwrap_or(&self.path)
                .to_string()
        } else {
            self.name()
        }
    }

    /// The whole reference in the short form Docker prints (`busybox:latest`,
    /// `localhost:5000/app:v1`, `nginx@sha256:…`).
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        if let Some(tag) = &self.tag {
            s.push(':');
            s.push_str(tag);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }

    /// Whether the registry is on this machine's loopback (plain HTTP is allowed for
    /// it without marking it insecure, as Docker allows).
    pub fn is_loopback_registry(&self) -> bool {
        let host = match self.domain.strip_prefix('[') {
            Some(rest) => rest.split(']').next().unwrap_or(""),
            None => self.domain.split(':').next().unwrap_or(""),
        };
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Reference, ReferenceError> {
        let bad = |reason: String| ReferenceError {
            reference: s.to_string(),
            reason,
        };
        if s.is_empty() {
            return Err(bad("empty reference".into()));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                check_digest(d).map_err(bad)?;
                (r, Some(d.to_string()))
            }
            None => (s, None),
        };
        // A ':' after the last '/' starts the tag (one before it is a port).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].find(':') {
            Some(i) => {
                let t = &rest[last_slash + i + 1..];
                check_tag(t).map_err(bad)?;
                (&rest[..last_slash + i], Some(t.to_string()))
            }
            None => (rest, None),
        };
        if name.is_empty() {
            return Err(bad("no repository name".into()));
        }
        if name.len() > MAX_NAME {
            return Err(bad(format!(
                "repository name longer than {MAX_NAME} characters"
            )));
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, remainder))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                check_domain(first).map_err(bad)?;
                let domain = if first == "index.docker.io" {
                    DEFAULT_DOMAIN
                } else {
                    first
                };
                (domain.to_string(), remainder.to_string())
            }
            _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
        };
        for component in path.split('/') {
            check_component(component).map_err(bad)?;
        }
        let path = if domain == DEFAULT_DOMAIN && !path.contains('/') {
            format!("{OFFICIAL_PREFIX}{path}")
        } else {
            path
        };
        let tag = match (tag, &digest) {
            (None, None) => Some(DEFAULT_TAG.to_string()),
            (t, _) => t,
        };
        Ok(Reference {
            domain,
            path,
            tag,
            digest,
        })
    }
}

fn check_component(c: &str) -> Result<(), String> {
    if c.is_empty() {
        return Err("empty path component (a '//' or a trailing '/')".into());
    }
    if c.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!("repository name must be lowercase ({c:?})"));
    }
    // Alphanumeric runs joined by one '.', one or two '_', or any number of '-'.
    let bytes = c.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return Err(format!(
            "path component {c:?} must start and end with a letter or digit"
        ));
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !ok {
            return Err(format!("invalid separator {sep:?} in path component {c:?}"));
        }
    }
    Ok(())
}

fn check_domain(d: &str) -> Result<(), String> {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or(format!("unclosed '[' in domain {d:?}"))?;
        h.parse::<std::net::Ipv6Addr>()
            .map_err(|_| format!("invalid IPv6 address in domain {d:?}"))?;
        (None, after.strip_prefix(':'))
    } else {
        match d.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(d), None),
        }
    };
    if let Some(h) = host {
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if !h.split('.').all(label_ok) {
            return Err(format!("invalid registry host {h:?}"));
        }
    }
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.parse::<u16>().is_err() {
            return Err(format!("invalid registry port {p:?}"));
        }
    }
    Ok(())
}

fn check_tag(t: &str) -> Result<(), String> {
    let ok = !t.is_empty()
        && t.len() <= 128
        && (t.as_bytes()[0].is_ascii_alphanumeric() || t.starts_with('_'))
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid tag {t:?} (letters, digits, '_', '.', '-'; at most 128)"
        ))
    }
}

fn check_digest(d: &str) -> Result<(), String> {
    let (algo, hex) = d
        .split_once(':')
        .ok_or(format!("invalid digest {d:?}: no algorithm"))?;
    let algo_ok = !algo.is_empty()
        && algo.as_bytes()[0].is_ascii_alphabetic()
        && algo
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_+.".contains(&b));
    if !algo_ok {
        return Err(format!("invalid digest algorithm {algo:?}"));
    }
    let want = match algo {
        "sha256" => Some(64),
        "sha512" => Some(128),
        _ => None,
    };
    let hex_ok = hex
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        && match want {
            Some(n) => hex.len() == n,
            None => hex.len() >= 32,
        };
    if !hex_ok {
        return Err(format!(
            "invalid digest {d:?}: {algo} needs {} lowercase hex digits",
            want.unwrap_or(32)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn full(s: &str) -> String {
        s.parse::<Reference>().unwrap().to_string()
    }

    #[test]
    fn normalizes_like_docker() {
        assert_eq!(full("nginx"), "docker.io/library/nginx:latest");
        assert_eq!(
            full("nginx:1.25-alpine"),
            "docker.io/library/nginx:1.25-alpine"
        );
        assert_eq!(full("user/app"), "docker.io/user/app:latest");
        assert_eq!(
            full("index.docker.io/library/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(full("localhost/app"), "localhost/app:latest");
        assert_eq!(
            full("localhost:5000/ns/name:tag"),
            "localhost:5000/ns/name:tag"
        );
        assert_eq!(full("ghcr.io/org/tool:v1"), "ghcr.io/org/tool:v1");
        assert_eq!(full("[::1]:5000/app"), "[::1]:5000/app:latest");
        assert_eq!(
            full(&format!("busybox@{D}")),
            format!("docker.io/library/busybox@{D}")
        );
        assert_eq!(
            full(&format!("busybox:1.36@{D}")),
            format!("docker.io/library/busybox:1.36@{D}")
        );
        assert_eq!(
            full("user/a.b_c__d-e--f"),
            "docker.io/user/a.b_c__d-e--f:latest"
        );
        assert_eq!(full("reg-1.example/x"), "reg-1.example/x:latest");
        assert_eq!(full("my_app-1.2"), "docker.io/library/my_app-1.2:latest");
    }

    #[test]
    fn familiar_names_and_loopback_registries() {
        let r: Reference = "nginx".parse().unwrap();
        assert_eq!(
            (r.familiar_name().as_str(), r.name().as_str()),
            ("nginx", "docker.io/library/nginx")
        );
        assert_eq!(
            "user/app".parse::<Reference>().unwrap().familiar_name(),
            "user/app"
        );
        for (s, lo) in [
            ("localhost:5000/a", true),
            ("127.0.0.1:5000/a", true),
            ("[::1]:5000/a", true),
            ("example.com/a", false),
            ("nginx", false),
        ] {
            assert_eq!(
                s.parse::<Reference>().unwrap().is_loopback_registry(),
                lo,
                "{s}"
            );
        }
    }

    #[test]
    fn invalid_references_are_refused_with_the_reason() {
        let err = |s: &str| s.parse::<Reference>().unwrap_err().to_string();
        assert!(err("").contains("empty"));
        assert!(err("Nginx").contains("lowercase"));
        assert!(err("nginx:").contains("invalid tag"));
        assert!(err("nginx:-bad").contains("invalid tag"));
        assert!(err("nginx@sha256:abc").contains("64 lowercase hex"));
        assert!(err("nginx@nodigest").contains("no algorithm"));
        assert!(err("a//b").contains("empty path component"));
        assert!(err("user/app/").contains("empty path component"));
        assert!(err("-app").contains("start and end"));
        assert!(err("a..b").contains("invalid separator"));
        assert!(err("host:99999/app").contains("invalid registry port"));
        assert!(err("ex ample.com/app").contains("invalid registry host"));
        // '_' is fine in a path, not in a registry host.
        assert!(err("a.b_c/x").contains("invalid registry host"));
        assert!(err(&"a".repeat(256)).contains("longer than 255"));
        let e = "Nginx".parse::<Reference>().unwrap_err();
        assert_eq!(e.reference, "Nginx");
    }
}
