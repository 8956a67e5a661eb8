//! The image configuration blob (OCI image-spec `config.json`, a superset of Docker's), parsed
//! and kept for the engine to apply: Entrypoint, Cmd, Env, WorkingDir, User, ExposedPorts,
//! Volumes, StopSignal, Labels and Docker's Healthcheck.
//!
//! `Entrypoint` and `Cmd` stay `Option`s: Docker treats a missing list and an empty one
//! differently when it combines them with what the user typed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::content::Digest;

/// The whole image configuration blob.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ContainerDefaults>,
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
}

/// `rootfs`: the uncompressed digests of the layers, bottom first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<Digest>,
}

impl Default for RootFs {
    fn default() -> Self {
        RootFs {
            kind: "layers".to_string(),
            diff_ids: Vec::new(),
        }
    }
}

/// One `history` entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

/// An empty JSON object, the value type of Docker's set-like maps (`{"80/tcp": {}}`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// `config`: what a container of this image runs with unless the user says otherwise.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerDefaults {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Empty>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, Empty>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args_escaped: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_build: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
}

/// Docker's `HEALTHCHECK` (durations in nanoseconds, as Docker stores them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Healthcheck {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<i64>,
}

/// Why a configuration blob was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("image config {digest}: not valid JSON for an image configuration: {source}")]
    Parse {
        digest: Digest,
        #[source]
        source: serde_json::Error,
    },
    #[error("image config {digest}: rootfs.type is {kind:?}, expected \"layers\"")]
    RootFsType { digest: Digest, kind: String },
}

impl ImageConfig {
    /// Parses a configuration blob; `digest` only names it in errors.
    pub fn parse(digest: &Digest, data: &[u8]) -> Result<ImageConfig, ConfigError> {
        let config: ImageConfig =
            serde_json::from_slice(data).map_err(|source| ConfigError::Parse {
                digest: digest.clone(),
                source,
            })?;
        if config.rootfs.kind != "layers" {
            return Err(ConfigError::RootFsType {
                digest: digest.clone(),
                kind: config.rootfs.kind,
            });
        }
        Ok(config)
    }

    /// The container defaults, empty when the image has none.
    pub fn defaults(&self) -> ContainerDefaults {
        self.config.clone().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest() -> Digest {
        Digest::of_bytes(b"config")
    }

    #[test]
    fn docker_config_with_healthcheck_and_volumes_parses() {
        let json = br#"{
          "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
          "config": {
            "User": "101", "Env": ["PATH=/bin", "A=b"], "Entrypoint": ["/docker-entrypoint.sh"],
            "Cmd": ["nginx", "-g", "daemon off;"], "WorkingDir": "/srv",
            "ExposedPorts": {"80/tcp": {}}, "Volumes": {"/data": {}},
            "Labels": {"maintainer": "x"}, "StopSignal": "SIGQUIT",
            "Healthcheck": {"Test": ["CMD", "true"], "Interval": 30000000000, "Retries": 3}
          },
          "rootfs": {"type": "layers", "diff_ids": ["sha256:1111111111111111111111111111111111111111111111111111111111111111"]},
          "history": [{"created_by": "ADD file", "empty_layer": false}, {"created_by": "CMD", "empty_layer": true}]
        }"#;
        let config = ImageConfig::parse(&digest(), json).unwrap();
        let d = config.defaults();
        assert_eq!(d.user.as_deref(), Some("101"));
        assert_eq!(d.cmd.unwrap()[0], "nginx");
        assert_eq!(d.stop_signal.as_deref(), Some("SIGQUIT"));
        assert!(d.exposed_ports.unwrap().contains_key("80/tcp"));
        assert!(d.volumes.unwrap().contains_key("/data"));
        assert_eq!(d.healthcheck.unwrap().interval, Some(30_000_000_000));
        assert_eq!(config.rootfs.diff_ids.len(), 1);
        assert!(config.history[1].empty_layer);
    }

    #[test]
    fn missing_and_empty_entrypoint_stay_distinct() {
        let base = r#""rootfs": {"type": "layers", "diff_ids": []}"#;
        let none = format!(r#"{{"config": {{"Cmd": ["sh"]}}, {base}}}"#);
        let empty = format!(r#"{{"config": {{"Entrypoint": [], "Cmd": ["sh"]}}, {base}}}"#);
        let none = ImageConfig::parse(&digest(), none.as_bytes()).unwrap();
        let empty = ImageConfig::parse(&digest(), empty.as_bytes()).unwrap();
        assert_eq!(none.defaults().entrypoint, None);
        assert_eq!(empty.defaults().entrypoint, Some(vec![]));
    }

    #[test]
    fn round_trips_without_inventing_fields() {
        let json = br#"{"architecture":"amd64","os":"linux","config":{"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":[]}}"#;
        let config = ImageConfig::parse(&digest(), json).unwrap();
        assert_eq!(serde_json::to_vec(&config).unwrap(), json.to_vec());
    }

    #[test]
    fn malformed_configs_are_refused_with_the_digest() {
        let err = ImageConfig::parse(&digest(), b"{").unwrap_err();
        assert!(err.to_string().contains(&digest().to_string()), "{err}");
        let err = ImageConfig::parse(&digest(), br#"{"rootfs":{"type":"fs","diff_ids":[]}}"#)
            .unwrap_err();
        assert!(err.to_string().contains("rootfs.type"), "{err}");
        let err = ImageConfig::parse(
            &digest(),
            br#"{"rootfs":{"type":"layers","diff_ids":["md5:x"]}}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("md5"), "{err}");
    }
}
