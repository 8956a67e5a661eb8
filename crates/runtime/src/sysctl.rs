//! `linux.sysctl`: written under /proc/sys of the container.
//!
//! Two steps, both of which check every key before anything is written:
//! - [`validate`] (at spec load) refuses sysctls that the container's namespaces do
//!   not isolate: writing them would change the host for every other process.
//! - [`apply`] (in the container's init, with /proc mounted) writes each value to
//!   `<proc_sys>/<key with '.' replaced by '/'>`. `proc_sys` is a parameter so tests
//!   write into a tempdir fixture instead of the real /proc/sys.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxNamespaceType;

#[derive(Debug, thiserror::Error)]
pub enum SysctlError {
    #[error("sysctl {key:?}: invalid key: {reason}")]
    InvalidKey { key: String, reason: &'static str },
    #[error("sysctl {key:?}: value contains a NUL byte")]
    InvalidValue { key: String },
    #[error(
        "sysctl {key:?}: needs the container to have its own {namespace} namespace \
         (without one it would change the host's setting)"
    )]
    NotNamespaced {
        key: String,
        namespace: &'static str,
    },
    #[error("sysctl {key:?}: set the container's {field} with the spec's `{field}` field instead")]
    UseSpecField { key: String, field: &'static str },
    #[error(
        "sysctl {key:?}: not isolated by any namespace, so a container may not set it \
         (allowed: net.* with a network namespace; kernel.shm*, kernel.msg*, kernel.sem, \
         fs.mqueue.* with an ipc namespace)"
    )]
    NotAllowed { key: String },
    #[error("sysctl {key:?}: write {path}: {source}")]
    Write {
        key: String,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The namespace that isolates a sysctl, or why it may not be set at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Namespace(LinuxNamespaceType, &'static str),
    SpecField(&'static str),
    Host,
}

fn scope(key: &str) -> Scope {
    if key.starts_with("net.") {
        return Scope::Namespace(LinuxNamespaceType::Network, "network");
    }
    // System V IPC and POSIX message queues are per ipc namespace.
    if key.starts_with("kernel.shm")
        || key.starts_with("kernel.msg")
        || key == "kernel.sem"
        || key.starts_with("fs.mqueue.")
    {
        return Scope::Namespace(LinuxNamespaceType::Ipc, "ipc");
    }
    match key {
        "kernel.hostname" => Scope::SpecField("hostname"),
        "kernel.domainname" => Scope::SpecField("domainname"),
        _ => Scope::Host,
    }
}

/// Check the key's syntax: dot-separated non-empty components, no `/` (which would
/// let a key walk the directory tree of /proc/sys) and no NUL.
fn check_key(key: &str) -> Result<(), SysctlError> {
    let bad = |reason| {
        Err(SysctlError::InvalidKey {
            key: key.to_owned(),
            reason,
        })
    };
    if key.is_empty() {
        return bad("empty");
    }
    if key.contains('/') {
        return bad("contains '/' (write keys with '.' separators)");
    }
    if key.contains('\0') {
        return bad("contains a NUL byte");
    }
    if key.split('.').any(str::is_empty) {
        return bad("empty component (leading, trailing or doubled '.')");
    }
    Ok(())
}

/// Refuse sysctls that the container's namespaces do not isolate, and malformed keys.
/// Keys are checked in sorted order so the error is the same on every run.
pub fn validate(
    sysctl: &HashMap<String, String>,
    namespaces: &[LinuxNamespaceType],
) -> Result<(), SysctlError> {
    let mut keys: Vec<&String> = sysctl.keys().collect();
    keys.sort();
    for key in keys {
        check_key(key)?;
        match scope(key) {
            Scope::Namespace(ns, _) if namespaces.contains(&ns) => {}
            Scope::Namespace(_, namespace) => {
                return Err(SysctlError::NotNamespaced {
                    key: key.clone(),
                    namespace,
                });
            }
            Scope::SpecField(field) => {
                return Err(SysctlError::UseSpecField {
                    key: key.clone(),
                    field,
                });
            }
            Scope::Host => return Err(SysctlError::NotAllowed { key: key.clone() }),
        }
    }
    Ok(())
}

/// The file under `proc_sys` that holds `key` (which must have passed [`check_key`]).
pub fn path_of(proc_sys: &Path, key: &str) -> PathBuf {
    proc_sys.join(key.replace('.', "/"))
}

/// Validate every key first, then write each under `proc_sys` (normally `/proc/sys`).
/// Files are opened for writing without creating them: an unknown sysctl fails with
/// ENOENT naming the key.
pub fn apply(proc_sys: &Path, sysctl: &HashMap<String, String>) -> Result<(), SysctlError> {
    let mut entries: Vec<(&String, &String)> = sysctl.iter().collect();
    entries.sort();
    for (key, value) in &entries {
        check_key(key)?;
        if value.contains('\0') {
            return Err(SysctlError::InvalidValue {
                key: (*key).clone(),
            });
        }
    }
    for (key, value) in entries {
        let path = path_of(proc_sys, key);
        tracing::debug!(key = %key, value = %value, path = %path.display(), "writing sysctl");
        let written = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|mut file| file.write_all(value.as_bytes()));
        if let Err(source) = written {
            return Err(SysctlError::Write {
                key: key.clone(),
                path,
                source,
            });
        }
        tracing::debug!(key = %key, "sysctl written");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn validate_accepts_namespaced_sysctls() {
        let sysctl = map(&[
            ("net.ipv4.ip_forward", "1"),
            ("kernel.shmmax", "1000"),
            ("kernel.msgmax", "1000"),
            ("kernel.sem", "250 32000 32 128"),
            ("fs.mqueue.msg_max", "10"),
        ]);
        let ns = [LinuxNamespaceType::Network, LinuxNamespaceType::Ipc];
        validate(&sysctl, &ns).unwrap();
    }

    #[test]
    fn validate_refuses_net_without_network_namespace() {
        let sysctl = map(&[("net.ipv4.ip_forward", "1")]);
        let err = validate(&sysctl, &[LinuxNamespaceType::Ipc]).unwrap_err();
        assert!(matches!(
            err,
            SysctlError::NotNamespaced {
                namespace: "network",
                ..
            }
        ));
        assert!(err.to_string().contains("net.ipv4.ip_forward"), "{err}");
    }

    #[test]
    fn validate_refuses_ipc_sysctls_without_ipc_namespace() {
        for key in [
            "kernel.shmall",
            "kernel.msgmnb",
            "kernel.sem",
            "fs.mqueue.queues_max",
        ] {
            let err = validate(&map(&[(key, "1")]), &[LinuxNamespaceType::Network]).unwrap_err();
            assert!(
                matches!(
                    err,
                    SysctlError::NotNamespaced {
                        namespace: "ipc",
                        ..
                    }
                ),
                "{key}"
            );
            assert!(err.to_string().contains(key), "{err}");
        }
    }

    #[test]
    fn validate_points_hostname_to_spec_field() {
        let all = [LinuxNamespaceType::Uts, LinuxNamespaceType::Network];
        let err = validate(&map(&[("kernel.hostname", "x")]), &all).unwrap_err();
        assert!(err.to_string().contains("`hostname`"), "{err}");
        let err = validate(&map(&[("kernel.domainname", "x")]), &all).unwrap_err();
        assert!(err.to_string().contains("`domainname`"), "{err}");
    }

    #[test]
    fn validate_refuses_host_wide_sysctls() {
        let all = [
            LinuxNamespaceType::Network,
            LinuxNamespaceType::Ipc,
            LinuxNamespaceType::Uts,
        ];
        for key in ["vm.overcommit_memory", "kernel.panic", "kernel.semx"] {
            let err = validate(&map(&[(key, "1")]), &all).unwrap_err();
            assert!(
                matches!(err, SysctlError::NotAllowed { .. }),
                "{key}: {err}"
            );
            assert!(err.to_string().contains(key), "{err}");
        }
    }

    #[test]
    fn malformed_keys_are_refused() {
        let ns = [LinuxNamespaceType::Network];
        for key in [
            "",
            "net",
            "net..ipv4",
            ".net.ipv4",
            "net.ipv4.",
            "net/ipv4/ip_forward",
        ] {
            let err = validate(&map(&[(key, "1")]), &ns);
            if key == "net" {
                // Syntactically fine, but not a net.* key.
                assert!(matches!(err, Err(SysctlError::NotAllowed { .. })));
                continue;
            }
            assert!(
                matches!(err, Err(SysctlError::InvalidKey { .. })),
                "{key:?}: {err:?}"
            );
        }
        let err = apply(Path::new("/nonexistent"), &map(&[("net...", "1")])).unwrap_err();
        assert!(err.to_string().contains("\"net...\""), "{err}");
    }

    fn fixture(keys: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for key in keys {
            let path = path_of(dir.path(), key);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, "").unwrap();
        }
        dir
    }

    #[test]
    fn apply_writes_under_proc_sys() {
        let dir = fixture(&["net.ipv4.ip_forward", "kernel.shmmax"]);
        apply(
            dir.path(),
            &map(&[("net.ipv4.ip_forward", "1"), ("kernel.shmmax", "4096")]),
        )
        .unwrap();
        let read = |rel: &str| std::fs::read_to_string(dir.path().join(rel)).unwrap();
        assert_eq!(read("net/ipv4/ip_forward"), "1");
        assert_eq!(read("kernel/shmmax"), "4096");
    }

    #[test]
    fn apply_validates_everything_before_writing() {
        let dir = fixture(&["net.ipv4.ip_forward"]);
        let sysctl = map(&[("net.ipv4.ip_forward", "1"), ("../../etc/passwd", "x")]);
        let err = apply(dir.path(), &sysctl).unwrap_err();
        assert!(matches!(err, SysctlError::InvalidKey { .. }), "{err}");
        let written = std::fs::read_to_string(dir.path().join("net/ipv4/ip_forward")).unwrap();
        assert_eq!(written, "", "nothing may be written when a key is invalid");
    }

    #[test]
    fn apply_names_key_and_path_of_unknown_sysctl() {
        let dir = fixture(&[]);
        let err = apply(dir.path(), &map(&[("net.core.nope", "1")])).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("net.core.nope") && msg.contains("net/core/nope"),
            "{msg}"
        );
        assert!(matches!(err, SysctlError::Write { ref source, .. }
            if source.kind() == std::io::ErrorKind::NotFound));
    }
}
