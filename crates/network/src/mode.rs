//! `--network` modes, as Docker spells them, and what each means for a
//! container's network namespace:
//!
//! | mode | namespace | interfaces |
//! |---|---|---|
//! | `bridge` (default), `NAME` | a new pinned netns | `lo`, `eth0` on the network's bridge |
//! | `none` | a new pinned netns | `lo` only |
//! | `host` | none: the host's own | the host's |
//! | `container:ID` | the other container's | shared (how a pod works) |

use std::path::{Path, PathBuf};

use crate::manager::DEFAULT_NETWORK;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkMode {
    /// A bridge network: the default `bridge` or a user-defined one by name.
    Bridge(String),
    None,
    Host,
    /// Join the network namespace of another container (by id or name).
    Container(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid network mode {value:?}: {reason}")]
pub struct ModeError {
    pub value: String,
    pub reason: &'static str,
}

impl std::str::FromStr for NetworkMode {
    type Err = ModeError;
    fn from_str(s: &str) -> Result<Self, ModeError> {
        let bad = |reason| ModeError {
            value: s.to_string(),
            reason,
        };
        match s {
            "" | "default" | "bridge" => Ok(NetworkMode::Bridge(DEFAULT_NETWORK.into())),
            "none" => Ok(NetworkMode::None),
            "host" => Ok(NetworkMode::Host),
            _ => match s.strip_prefix("container:") {
                Some("") => Err(bad("container: needs a container id or name")),
                Some(id) => Ok(NetworkMode::Container(id.to_string())),
                None if s.contains(':') => Err(bad(
                    "unknown mode (bridge, none, host, container:ID or a network name)",
                )),
                None => Ok(NetworkMode::Bridge(s.to_string())),
            },
        }
    }
}

/// Where a container's network namespace comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetnsPlan {
    /// Create a new namespace pinned at this path (then connect, or leave with `lo`).
    New(PathBuf),
    /// No network namespace in the spec: share the host's.
    Host,
    /// Join this existing namespace (another container's).
    Join(PathBuf),
}

impl NetworkMode {
    /// The namespace plan for container `id`, with namespaces pinned under
    /// `netns_dir`; `other_netns` resolves a `container:` target to its namespace.
    pub fn netns_plan(
        &self,
        id: &str,
        netns_dir: &Path,
        other_netns: impl FnOnce(&str) -> Option<PathBuf>,
    ) -> Result<NetnsPlan, ModeError> {
        match self {
            NetworkMode::Bridge(_) | NetworkMode::None => Ok(NetnsPlan::New(netns_dir.join(id))),
            NetworkMode::Host => Ok(NetnsPlan::Host),
            NetworkMode::Container(other) => {
                other_netns(other).map(NetnsPlan::Join).ok_or(ModeError {
                    value: format!("container:{other}"),
                    reason: "no such running container",
                })
            }
        }
    }
}

/// A new namespace for `none` (and the start of every bridge endpoint): pinned at
/// `path`, with `lo` up.
pub fn create_with_loopback(path: &Path) -> Result<(), String> {
    crate::netns::create(path).map_err(|e| e.to_string())?;
    let up = crate::netlink::Netlink::in_netns(path).and_then(|nl| nl.set_lo_up());
    if let Err(e) = up {
        let _ = crate::netns::remove(path);
        return Err(e.to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_spellings_parse() {
        let p = |s: &str| s.parse::<NetworkMode>();
        assert_eq!(p("bridge"), Ok(NetworkMode::Bridge("bridge".into())));
        assert_eq!(p(""), Ok(NetworkMode::Bridge("bridge".into())));
        assert_eq!(p("backend"), Ok(NetworkMode::Bridge("backend".into())));
        assert_eq!(p("none"), Ok(NetworkMode::None));
        assert_eq!(p("host"), Ok(NetworkMode::Host));
        assert_eq!(p("container:web"), Ok(NetworkMode::Container("web".into())));
        assert!(p("container:")
            .unwrap_err()
            .to_string()
            .contains("needs a container"));
        assert!(p("macvlan:x").is_err());
    }

    #[test]
    fn plans() {
        let dir = Path::new("/run/coracle/netns");
        let none = NetworkMode::None.netns_plan("c1", dir, |_| None).unwrap();
        assert_eq!(none, NetnsPlan::New(dir.join("c1")));
        assert_eq!(
            NetworkMode::Host.netns_plan("c1", dir, |_| None).unwrap(),
            NetnsPlan::Host
        );
        let join = NetworkMode::Container("web".into())
            .netns_plan("c1", dir, |id| Some(dir.join(id)))
            .unwrap();
        assert_eq!(join, NetnsPlan::Join(dir.join("web")));
        assert!(NetworkMode::Container("gone".into())
            .netns_plan("c1", dir, |_| None)
            .is_err());
    }

    #[test]
    fn none_mode_has_only_loopback_up() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("none");
        create_with_loopback(&path).unwrap();
        let links = crate::netlink::Netlink::in_netns(&path)
            .unwrap()
            .links()
            .unwrap();
        crate::netns::remove(&path).unwrap();
        let names: Vec<&str> = links.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["lo"], "{links:?}");
        assert!(links[0].up, "lo is down: {links:?}");
    }
}
