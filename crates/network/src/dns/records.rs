//! What the DNS responder knows: one JSON file per network in a config directory,
//! written atomically by whoever manages containers (the engine), read by the
//! responder whenever it changes.
//!
//! ```json
//! { "network": "backend", "listen": ["10.89.0.1"], "internal": false,
//!   "upstreams": ["192.0.2.53:53"],
//!   "entries": [ { "names": ["web", "3f2a9c1d7e4b", "api"], "ips": ["10.89.0.2"] } ] }
//! ```
//! `names` holds the container's name, its short id and its aliases on that network.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRecords {
    pub network: String,
    /// Addresses the responder listens on for this network (the bridge's gateway).
    pub listen: Vec<IpAddr>,
    /// No forwarding: an internal network has no way out, for DNS too.
    #[serde(default)]
    pub internal: bool,
    /// Where names that are not containers' go (from the host's resolv.conf by
    /// default).
    #[serde(default)]
    pub upstreams: Vec<SocketAddr>,
    #[serde(default)]
    pub entries: Vec<Entry>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub names: Vec<String>,
    pub ips: Vec<IpAddr>,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    #[error("dns records {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("dns records {path}: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("dns records: invalid network name {0:?}")]
    BadName(String),
}

impl NetworkRecords {
    /// Addresses for `name` (case-insensitive, trailing dot ignored).
    pub fn lookup(&self, name: &str) -> Vec<IpAddr> {
        let name = name.trim_end_matches('.');
        self.entries
            .iter()
            .filter(|e| e.names.iter().any(|n| n.eq_ignore_ascii_case(name)))
            .flat_map(|e| e.ips.iter().copied())
            .collect()
    }

    /// The first name of the container that has `ip`.
    pub fn reverse(&self, ip: IpAddr) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| e.ips.contains(&ip))
            .and_then(|e| e.names.first().map(String::as_str))
    }
}

fn file_for(dir: &Path, network: &str) -> Result<PathBuf, RecordsError> {
    let ok = !network.is_empty()
        && network
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && !network.starts_with('.');
    if !ok {
        return Err(RecordsError::BadName(network.to_string()));
    }
    Ok(dir.join(format!("{network}.json")))
}

/// Write (or replace) one network's records atomically.
pub fn write(dir: &Path, records: &NetworkRecords) -> Result<(), RecordsError> {
    let path = file_for(dir, &records.network)?;
    let io = |source| RecordsError::Io {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec_pretty(records).expect("records serialize");
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)
}

/// Remove a network's records; a missing file is fine.
pub fn remove(dir: &Path, network: &str) -> Result<(), RecordsError> {
    let path = file_for(dir, network)?;
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(RecordsError::Io { path, source: e })
        }
        _ => Ok(()),
    }
}

/// Every network's records in `dir`, sorted by network name.
pub fn load_all(dir: &Path) -> Result<Vec<NetworkRecords>, RecordsError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(source) => {
            return Err(RecordsError::Io {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let text = std::fs::read(&path).map_err(|source| RecordsError::Io {
            path: path.clone(),
            source,
        })?;
        let rec: NetworkRecords =
            serde_json::from_slice(&text).map_err(|source| RecordsError::Parse {
                path: path.clone(),
                source,
            })?;
        out.push(rec);
    }
    out.sort_by(|a, b| a.network.cmp(&b.network));
    Ok(out)
}

/// The nameservers of a resolv.conf text, as upstreams on port 53.
pub fn upstreams_from_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|rest| rest.trim().parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> NetworkRecords {
        NetworkRecords {
            network: "backend".into(),
            listen: vec!["10.89.0.1".parse().unwrap()],
            internal: false,
            upstreams: vec![],
            entries: vec![Entry {
                names: vec!["web".into(), "3f2a9c1d7e4b".into(), "api".into()],
                ips: vec!["10.89.0.2".parse().unwrap()],
            }],
        }
    }

    #[test]
    fn lookup_by_name_short_id_and_alias() {
        let r = sample();
        let ip: IpAddr = "10.89.0.2".parse().unwrap();
        for n in ["web", "WEB.", "3f2a9c1d7e4b", "api"] {
            assert_eq!(r.lookup(n), vec![ip], "{n}");
        }
        assert!(r.lookup("db").is_empty());
        assert_eq!(r.reverse(ip), Some("web"));
    }

    #[test]
    fn write_load_remove() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &sample()).unwrap();
        assert_eq!(load_all(dir.path()).unwrap(), vec![sample()]);
        remove(dir.path(), "backend").unwrap();
        remove(dir.path(), "backend").unwrap();
        assert!(load_all(dir.path()).unwrap().is_empty());
        assert!(write(
            dir.path(),
            &NetworkRecords {
                network: "../x".into(),
                ..sample()
            }
        )
        .is_err());
    }

    #[test]
    fn resolv_conf_nameservers() {
        let text = "# x\nsearch lan\nnameserver 192.0.2.1\nnameserver ::1\nnameserver bogus\n";
        let ups = upstreams_from_resolv_conf(text);
        assert_eq!(
            ups,
            vec!["192.0.2.1:53".parse().unwrap(), "[::1]:53".parse().unwrap()]
        );
    }
}
