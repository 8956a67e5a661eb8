//! Credentials in Docker's `config.json` (`{"auths": {"host:port": {"auth": base64("user:pass")}}}`),
//! and `login` / `logout`, which check and keep them there.
//!
//! The file is rewritten through a temporary file in the same directory and renamed into
//! place, with mode 0600 (its directory is created 0700); keys other than our entry in
//! `auths` are kept as they were.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Map, Value};

use super::client::Client;
use super::error::RegistryError;
use crate::reference::DEFAULT_DOMAIN;

/// The key Docker uses for Docker Hub in `auths`.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// A user name and password (or token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
pub fn default_config_path() -> PathBuf {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return PathBuf::from(dir).join("config.json");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".docker").join("config.json")
}

/// The `auths` keys that may hold a registry's entry (Docker Hub has its historic URL).
fn keys_for(registry: &str) -> Vec<String> {
    let mut keys = vec![registry.to_owned()];
    if registry == DEFAULT_DOMAIN || registry == "index.docker.io" {
        keys.insert(0, DOCKER_HUB_KEY.to_owned());
    }
    for scheme in ["https://", "http://"] {
        keys.push(format!("{scheme}{registry}"));
    }
    keys
}

fn read_config(path: &Path) -> Result<Option<Map<String, Value>>, RegistryError> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(RegistryError::CredentialsIo {
                op: "read",
                path: path.to_owned(),
                source,
            })
        }
    };
    if text.trim().is_empty() {
        return Ok(Some(Map::new()));
    }
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(map)) => Ok(Some(map)),
        Ok(_) => Err(RegistryError::CredentialsInvalid {
            path: path.to_owned(),
            reason: "not a JSON object".into(),
        }),
        Err(e) => Err(RegistryError::CredentialsInvalid {
            path: path.to_owned(),
            reason: format!("invalid JSON: {e}"),
        }),
    }
}

/// The credentials stored for `registry` (`host[:port]`), if any. A missing file means none.
pub fn load_credentials(path: &Path, registry: &str) -> Result<Option<Credentials>, RegistryError> {
    let Some(config) = read_config(path)? else {
        return Ok(None);
    };
    let Some(auths) = config.get("auths").and_then(Value::as_object) else {
        return Ok(None);
    };
    let Some(entry) = keys_for(registry).iter().find_map(|k| auths.get(k)) else {
        return Ok(None);
    };
    let invalid = |reason: String| RegistryError::CredentialsInvalid {
        path: path.to_owned(),
        reason: format!("entry for {registry}: {reason}"),
    };
    if let Some(auth) = entry
        .get("auth")
        .and_then(Value::as_str)
        .filter(|a| !a.is_empty())
    {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|e| invalid(format!("\"auth\" is not base64: {e}")))?;
        let raw = String::from_utf8(raw).map_err(|_| invalid("\"auth\" is not UTF-8".into()))?;
        let (user, pass) = raw
            .split_once(':')
            .ok_or_else(|| invalid("\"auth\" is not \"user:password\"".into()))?;
        return Ok(Some(Credentials {
            username: user.to_owned(),
            password: pass.to_owned(),
        }));
    }
    match (
        entry.get("username").and_then(Value::as_str),
        entry.get("password").and_then(Value::as_str),
    ) {
        (Some(u), Some(p)) => Ok(Some(Credentials {
            username: u.to_owned(),
            password: p.to_owned(),
        })),
        _ => Ok(None),
    }
}

/// Writes `config` to `path` atomically with mode 0600, creating the parent 0700.
fn write_config(path: &Path, config: &Map<String, Value>) -> Result<(), RegistryError> {
    let io_err = |op: &'static str, p: &Path| {
        let p = p.to_owned();
        move |source| RegistryError::CredentialsIo {
            op,
            path: p,
            source,
        }
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(io_err("create directory", &dir))?;
    let mut text = serde_json::to_string_pretty(&Value::Object(config.clone()))
        .expect("a JSON map serializes");
    text.push('\n');
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("config.json"),
        std::process::id()
    ));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io_err("create", &tmp))?;
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(io_err("write", &tmp))?;
        fs::rename(&tmp, path).map_err(io_err("rename into", path))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Stores credentials for `registry` in the config file (no check against the registry).
pub fn store_credentials(
    path: &Path,
    registry: &str,
    creds: &Credentials,
) -> Result<(), RegistryError> {
    let mut config = read_config(path)?.unwrap_or_default();
    let auths = config
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    if !auths.is_object() {
        *auths = Value::Object(Map::new());
    }
    let auths = auths.as_object_mut().expect("just made an object");
    let key = if registry == DEFAULT_DOMAIN {
        DOCKER_HUB_KEY
    } else {
        registry
    };
    let raw = format!("{}:{}", creds.username, creds.password);
    let mut entry = Map::new();
    entry.insert(
        "auth".into(),
        Value::String(base64::engine::general_purpose::STANDARD.encode(raw)),
    );
    auths.insert(key.to_owned(), Value::Object(entry));
    write_config(path, &config)
}

/// Checks `user`/`password` against `registry`'s `/v2/` (following its Basic or Bearer
/// challenge), then stores them in `config_path`. Plain HTTP is used for loopback
/// registries only. Refused credentials give [`RegistryError::LoginRefused`] and leave
/// the file untouched.
pub fn login(
    registry: &str,
    user: &str,
    password: &str,
    config_path: &Path,
) -> Result<(), RegistryError> {
    let creds = Credentials {
        username: user.to_owned(),
        password: password.to_owned(),
    };
    let client = Client::new(registry, &[], Some(creds.clone()));
    match client.check_login() {
        Ok(()) => {}
        Err(RegistryError::Unauthorized { .. }) => {
            return Err(RegistryError::LoginRefused {
                registry: registry.to_owned(),
                status: 401,
            })
        }
        Err(e) => return Err(e),
    }
    store_credentials(config_path, registry, &creds)
}

/// Removes `registry`'s entry from `config_path`. Returns whether there was one (Docker
/// prints "Not logged in to ..." otherwise, and succeeds).
pub fn logout(registry: &str, config_path: &Path) -> Result<bool, RegistryError> {
    let Some(mut config) = read_config(config_path)? else {
        return Ok(false);
    };
    let Some(auths) = config.get_mut("auths").and_then(Value::as_object_mut) else {
        return Ok(false);
    };
    let mut removed = false;
    for key in keys_for(registry) {
        removed |= auths.remove(&key).is_some();
    }
    if removed {
        write_config(config_path, &config)?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn store_load_and_remove_keep_other_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("config.json");
        assert_eq!(load_credentials(&path, "r:5000").unwrap(), None);
        let creds = Credentials {
            username: "u".into(),
            password: "p:w".into(),
        };
        store_credentials(&path, "r:5000", &creds).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        assert_eq!(
            load_credentials(&path, "r:5000").unwrap(),
            Some(creds.clone())
        );

        let mut v: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        v["credsStore"] = "none".into();
        v["auths"]["other:1"] = serde_json::json!({"auth": "eDp5"});
        fs::write(&path, v.to_string()).unwrap();
        store_credentials(&path, "r:5000", &creds).unwrap();
        let v: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(v["credsStore"], "none");
        assert_eq!(
            load_credentials(&path, "other:1")
                .unwrap()
                .unwrap()
                .username,
            "x"
        );

        assert!(logout("r:5000", &path).unwrap());
        assert!(!logout("r:5000", &path).unwrap());
        assert_eq!(load_credentials(&path, "r:5000").unwrap(), None);
        assert!(load_credentials(&path, "other:1").unwrap().is_some());
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn docker_hub_uses_its_historic_key_and_bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let creds = Credentials {
            username: "a".into(),
            password: "b".into(),
        };
        store_credentials(&path, "docker.io", &creds).unwrap();
        assert!(fs::read_to_string(&path).unwrap().contains(DOCKER_HUB_KEY));
        assert_eq!(load_credentials(&path, "docker.io").unwrap(), Some(creds));

        fs::write(&path, r#"{"auths":{"h":{"auth":"!!"}}}"#).unwrap();
        let err = load_credentials(&path, "h").unwrap_err().to_string();
        assert!(
            err.contains("config.json") && err.contains("base64"),
            "{err}"
        );
        fs::write(&path, "[").unwrap();
        assert!(load_credentials(&path, "h").is_err());
    }
}
