//! Loading and validating a bundle's `config.json`.
//!
//! Everything that can be checked before a process or a cgroup exists is checked
//! here, so bad input fails before anything is made. Errors name the file and the
//! field (`process.args`, `linux.namespaces[2]`, `mounts[4].destination`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A JSON syntax error, or valid JSON that is not a runtime spec (a missing
    /// field, a wrong type, an unknown namespace type).
    #[error("{path}: {}: {source}", if source.is_data() { "invalid configuration" } else { "invalid JSON" })]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}: {field}: {reason}")]
    Invalid {
        path: PathBuf,
        field: String,
        reason: String,
    },
}

/// A loaded, validated bundle.
#[derive(Debug)]
pub struct Bundle {
    /// Absolute path of the bundle directory.
    pub dir: PathBuf,
    pub spec: Spec,
    /// Absolute, canonical path of the root file system.
    pub rootfs: PathBuf,
    /// `linux.seccomp`, compiled while validating: init inherits it across the fork
    /// and loads it, instead of compiling the profile a second time.
    pub seccomp: Option<crate::seccomp::Filter>,
}

impl Bundle {
    /// Load `<dir>/config.json` and validate it for `create`.
    pub fn load(dir: &Path) -> Result<Bundle, SpecError> {
        Bundle::load_with_seccomp_cache(dir, None)
    }

    /// [`Bundle::load`], taking the seccomp program from (and adding it to) the cache in
    /// `seccomp_cache` (see [`crate::seccomp::cache`]).
    pub fn load_with_seccomp_cache(
        dir: &Path,
        seccomp_cache: Option<&Path>,
    ) -> Result<Bundle, SpecError> {
        let dir = std::path::absolute(dir).map_err(|source| SpecError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join("config.json");
        let text = std::fs::read(&path).map_err(|source| SpecError::Read {
            path: path.clone(),
            source,
        })?;
        let spec: Spec = serde_json::from_slice(&text).map_err(|source| SpecError::Parse {
            path: path.clone(),
            source,
        })?;
        let seccomp = check(&spec, &path, seccomp_cache)?;
        let root = spec.root().as_ref().expect("validated").path();
        let rootfs = if root.is_absolute() {
            root.clone()
        } else {
            dir.join(root)
        };
        let rootfs = match std::fs::canonicalize(&rootfs) {
            Ok(p) if p.is_dir() => p,
            Ok(p) => {
                return Err(invalid(
                    &path,
                    "root.path",
                    format!("{} is not a directory", p.display()),
                ))
            }
            Err(e) => {
                return Err(invalid(
                    &path,
                    "root.path",
                    format!("root file system {}: {e}", rootfs.display()),
                ))
            }
        };
        Ok(Bundle {
            dir,
            spec,
            rootfs,
            seccomp,
        })
    }
}

fn invalid(path: &Path, field: impl Into<String>, reason: impl Into<String>) -> SpecError {
    SpecError::Invalid {
        path: path.to_path_buf(),
        field: field.into(),
        reason: reason.into(),
    }
}

/// Checks that need no file system access (the rootfs is checked by [`Bundle::load`]).
pub fn validate(spec: &Spec, path: &Path) -> Result<(), SpecError> {
    check(spec, path, None).map(drop)
}

/// [`validate`], keeping the compiled seccomp filter.
fn check(
    spec: &Spec,
    path: &Path,
    seccomp_cache: Option<&Path>,
) -> Result<Option<crate::seccomp::Filter>, SpecError> {
    let version = spec.version();
    if !version.starts_with("1.") {
        return Err(invalid(
            path,
            "ociVersion",
            format!("unsupported version {version:?} (need 1.x)"),
        ));
    }
    if spec.root().is_none() {
        return Err(invalid(path, "root", "missing"));
    }
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| invalid(path, "process", "missing"))?;
    match process.args() {
        Some(args) if !args.is_empty() && !args[0].is_empty() => {}
        _ => {
            return Err(invalid(
                path,
                "process.args",
                "missing or empty: nothing to run",
            ))
        }
    }
    if !process.cwd().is_absolute() {
        return Err(invalid(
            path,
            "process.cwd",
            format!("{:?} is not absolute", process.cwd()),
        ));
    }
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let d = m.destination();
        if !d.is_absolute() {
            return Err(invalid(
                path,
                format!("mounts[{i}].destination"),
                format!("{d:?} is not absolute"),
            ));
        }
        if d.components().any(|c| c == std::path::Component::ParentDir) {
            return Err(invalid(
                path,
                format!("mounts[{i}].destination"),
                format!("{d:?} contains '..'"),
            ));
        }
    }
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| invalid(path, "linux", "missing"))?;
    let mut seen = HashSet::new();
    let namespaces = linux.namespaces().clone().unwrap_or_default();
    for (i, ns) in namespaces.iter().enumerate() {
        if !seen.insert(ns.typ()) {
            return Err(invalid(
                path,
                format!("linux.namespaces[{i}]"),
                format!(
                    "namespace type {} listed twice",
                    crate::namespaces::proc_name(ns.typ())
                ),
            ));
        }
        if ns.typ() == LinuxNamespaceType::Time {
            return Err(invalid(
                path,
                format!("linux.namespaces[{i}]"),
                "time namespaces are not supported",
            ));
        }
        if let Some(p) = ns.path() {
            if !p.is_absolute() {
                return Err(invalid(
                    path,
                    format!("linux.namespaces[{i}].path"),
                    format!("{p:?} is not absolute"),
                ));
            }
        }
    }
    let has = |t: LinuxNamespaceType| namespaces.iter().any(|ns| ns.typ() == t);
    let maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    let new_userns = namespaces
        .iter()
        .any(|ns| ns.typ() == LinuxNamespaceType::User && ns.path().is_none());
    if maps && !has(LinuxNamespaceType::User) {
        return Err(invalid(
            path,
            "linux.uidMappings",
            "id mappings given without a user namespace",
        ));
    }
    if new_userns && !maps {
        return Err(invalid(
            path,
            "linux.uidMappings",
            "a new user namespace needs uidMappings and gidMappings",
        ));
    }
    if spec.hostname().as_ref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts) {
        return Err(invalid(
            path,
            "hostname",
            "setting a hostname needs a uts namespace",
        ));
    }
    if spec.domainname().as_ref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts) {
        return Err(invalid(
            path,
            "domainname",
            "setting a domainname needs a uts namespace",
        ));
    }
    if let Some(cg) = linux.cgroups_path() {
        if cg
            .components()
            .any(|c| c == std::path::Component::ParentDir)
        {
            return Err(invalid(
                path,
                "linux.cgroupsPath",
                format!("{cg:?} contains '..'"),
            ));
        }
    }
    if let Some(hooks) = spec.hooks() {
        let all = [
            ("prestart", hooks.prestart()),
            ("createRuntime", hooks.create_runtime()),
            ("createContainer", hooks.create_container()),
            ("startContainer", hooks.start_container()),
            ("poststart", hooks.poststart()),
            ("poststop", hooks.poststop()),
        ];
        for (kind, list) in all {
            for (i, h) in list.iter().flatten().enumerate() {
                if !h.path().is_absolute() {
                    return Err(invalid(
                        path,
                        format!("hooks.{kind}[{i}].path"),
                        format!("{:?} is not absolute", h.path()),
                    ));
                }
                if h.timeout().is_some_and(|t| t <= 0) {
                    return Err(invalid(
                        path,
                        format!("hooks.{kind}[{i}].timeout"),
                        "must be positive",
                    ));
                }
            }
        }
    }
    if let Some(sysctl) = linux.sysctl() {
        let types: Vec<_> = namespaces.iter().map(|ns| ns.typ()).collect();
        crate::sysctl::validate(sysctl, &types)
            .map_err(|e| invalid(path, "linux.sysctl", e.to_string()))?;
    }
    // Compiled here, before anything exists, so a malformed profile is refused
    // first; the filter is kept for init.
    linux
        .seccomp()
        .as_ref()
        .map(|profile| match seccomp_cache {
            Some(dir) => crate::seccomp::cache::compile_cached(profile, dir),
            None => crate::seccomp::compile(profile),
        })
        .transpose()
        .map_err(|e| invalid(path, "linux.seccomp", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_json(patch: impl FnOnce(&mut serde_json::Value)) -> Spec {
        let mut v = serde_json::to_value(Spec::default()).unwrap();
        v["ociVersion"] = "1.2.0".into();
        v["process"]["args"] = serde_json::json!(["/bin/true"]);
        patch(&mut v);
        serde_json::from_value(v).unwrap()
    }

    fn err(spec: &Spec) -> String {
        validate(spec, Path::new("config.json"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn default_spec_is_valid() {
        validate(&spec_json(|_| {}), Path::new("config.json")).unwrap();
    }

    #[test]
    fn missing_args_names_the_field() {
        let s = spec_json(|v| v["process"]["args"] = serde_json::json!([]));
        assert!(err(&s).contains("process.args"), "{}", err(&s));
    }

    #[test]
    fn duplicate_namespace_is_refused() {
        let s = spec_json(|v| {
            v["linux"]["namespaces"] = serde_json::json!([{"type": "pid"}, {"type": "pid"}])
        });
        assert!(err(&s).contains("listed twice"), "{}", err(&s));
    }

    #[test]
    fn unknown_namespace_type_fails_to_parse() {
        let mut v = serde_json::to_value(Spec::default()).unwrap();
        v["linux"]["namespaces"] = serde_json::json!([{"type": "bogus"}]);
        let e = serde_json::from_value::<Spec>(v).unwrap_err().to_string();
        assert!(e.contains("bogus"), "{e}");
    }

    #[test]
    fn relative_mount_destination_is_refused() {
        let s = spec_json(|v| {
            v["mounts"] =
                serde_json::json!([{"destination": "proc", "type": "proc", "source": "proc"}])
        });
        assert!(err(&s).contains("mounts[0].destination"), "{}", err(&s));
    }

    #[test]
    fn mappings_without_user_namespace_are_refused() {
        let s = spec_json(|v| {
            v["linux"]["uidMappings"] =
                serde_json::json!([{"containerID": 0, "hostID": 1000, "size": 1}])
        });
        assert!(err(&s).contains("user namespace"), "{}", err(&s));
    }

    #[test]
    fn hostname_without_uts_namespace_is_refused() {
        let s = spec_json(|v| {
            v["hostname"] = "x".into();
            v["linux"]["namespaces"] = serde_json::json!([{"type": "mount"}]);
        });
        assert!(err(&s).contains("uts"), "{}", err(&s));
    }
}
