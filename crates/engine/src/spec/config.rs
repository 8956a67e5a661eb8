//! A container's configuration as Docker's Engine API decodes it (`POST /containers/create`):
//! the `Config` fields at the top level, plus `HostConfig` and `NetworkingConfig`. The CLI
//! fills the same structs from its flags, so both front ends share one type.
//!
//! Decoding follows the API's leniency: every field may be missing, and `null` reads as the
//! field's empty value. `Cmd` and `Entrypoint` accept a string or a list (Docker's
//! `StrSlice`) and stay `Option`s, because a missing list and an empty one mean different
//! things when the image's defaults are applied (see `defaults.rs`).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

pub use coracle_image::config::{Empty, Healthcheck};

/// `null` reads as the type's default (Docker clients send `"Env": null`).
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Docker's `StrSlice`: a JSON string or a list of strings; `null` is `None`.
fn str_slice<'de, D>(d: D) -> Result<Option<Vec<String>>, D::Error>
where
    D: Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => None,
        Some(OneOrMany::One(s)) => Some(vec![s]),
        Some(OneOrMany::Many(v)) => Some(v),
    })
}

/// The body of `POST /containers/create`, and what the CLI builds from `run`/`create` flags.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(flatten)]
    pub config: Config,
    #[serde(default, deserialize_with = "nullable")]
    pub host_config: HostConfig,
    #[serde(default, deserialize_with = "nullable")]
    pub networking_config: NetworkingConfig,
}

/// Docker's `Config`: what the container runs and how it is attached.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Config {
    #[serde(default, deserialize_with = "nullable")]
    pub hostname: String,
    #[serde(default, deserialize_with = "nullable")]
    pub domainname: String,
    /// `user`, `user:group`, `uid` or `uid:gid`; empty = the image's user (else root).
    #[serde(default, deserialize_with = "nullable")]
    pub user: String,
    #[serde(default, deserialize_with = "nullable")]
    pub attach_stdin: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub attach_stdout: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub attach_stderr: bool,
    /// `"80/tcp": {}` entries.
    #[serde(default, deserialize_with = "nullable")]
    pub exposed_ports: BTreeMap<String, Empty>,
    #[serde(default, deserialize_with = "nullable")]
    pub tty: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub open_stdin: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub stdin_once: bool,
    /// `KEY=value`, or a bare `KEY` that removes the image's value.
    #[serde(default, deserialize_with = "nullable")]
    pub env: Vec<String>,
    #[serde(
        default,
        deserialize_with = "str_slice",
        skip_serializing_if = "Option::is_none"
    )]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    #[serde(default, deserialize_with = "nullable")]
    pub image: String,
    /// Anonymous volumes: `"/data": {}`.
    #[serde(default, deserialize_with = "nullable")]
    pub volumes: BTreeMap<String, Empty>,
    #[serde(default, deserialize_with = "nullable")]
    pub working_dir: String,
    /// `Some([""])` is `--entrypoint ""`: no entrypoint and none of the image's.
    #[serde(
        default,
        deserialize_with = "str_slice",
        skip_serializing_if = "Option::is_none"
    )]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub network_disabled: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// Seconds to wait after the stop signal before SIGKILL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
}

/// Docker's `HostConfig`: what the host provides and limits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostConfig {
    /// `-v` specs as typed: `src:dst[:mode]` or `dst`.
    #[serde(default, deserialize_with = "nullable")]
    pub binds: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub mounts: Vec<Mount>,
    /// `"80/tcp": [{"HostIp": "", "HostPort": "8080"}]`.
    #[serde(default, deserialize_with = "nullable")]
    pub port_bindings: BTreeMap<String, Vec<PortBinding>>,
    #[serde(default, deserialize_with = "nullable")]
    pub publish_all_ports: bool,
    /// `bridge` (also empty/`default`), `host`, `none`, `container:ID` or a network name.
    #[serde(default, deserialize_with = "nullable")]
    pub network_mode: String,
    #[serde(default, deserialize_with = "nullable")]
    pub dns: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub dns_search: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub dns_options: Vec<String>,
    /// `name:ip` entries for /etc/hosts.
    #[serde(default, deserialize_with = "nullable")]
    pub extra_hosts: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub restart_policy: RestartPolicy,
    #[serde(default, deserialize_with = "nullable")]
    pub auto_remove: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub privileged: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub readonly_rootfs: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub cap_add: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub cap_drop: Vec<String>,
    /// `no-new-privileges[:true|false]`, `seccomp=unconfined`, `seccomp=<profile JSON>`.
    #[serde(default, deserialize_with = "nullable")]
    pub security_opt: Vec<String>,
    /// Bytes; 0 = unlimited.
    #[serde(default, deserialize_with = "nullable")]
    pub memory: i64,
    /// Memory plus swap, bytes; 0 = twice `memory`, -1 = unlimited swap.
    #[serde(default, deserialize_with = "nullable")]
    pub memory_swap: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub memory_reservation: i64,
    /// CPUs in units of 1e-9 (`--cpus 1.5` = 1_500_000_000).
    #[serde(default, deserialize_with = "nullable")]
    pub nano_cpus: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub cpu_shares: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub cpu_quota: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub cpu_period: i64,
    #[serde(default, deserialize_with = "nullable")]
    pub cpuset_cpus: String,
    /// `None`, 0 or -1 = unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids_limit: Option<i64>,
    #[serde(default, deserialize_with = "nullable")]
    pub ulimits: Vec<Ulimit>,
    #[serde(default, deserialize_with = "nullable")]
    pub sysctls: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "nullable")]
    pub devices: Vec<DeviceMapping>,
    /// Size of /dev/shm in bytes; 0 = 64 MiB.
    #[serde(default, deserialize_with = "nullable")]
    pub shm_size: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    /// Target → tmpfs mount options (`"/run": "size=64m"`).
    #[serde(default, deserialize_with = "nullable")]
    pub tmpfs: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "nullable")]
    pub oom_score_adj: i64,
    /// Extra groups (names or gids) for the container's process.
    #[serde(default, deserialize_with = "nullable")]
    pub group_add: Vec<String>,
}

/// One `HostConfig.Mounts` entry (`--mount`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Mount {
    #[serde(rename = "Type", default)]
    pub kind: MountType,
    /// Host path (bind), volume name (volume; empty = anonymous), unused for tmpfs.
    #[serde(default, deserialize_with = "nullable")]
    pub source: String,
    #[serde(default, deserialize_with = "nullable")]
    pub target: String,
    #[serde(default, deserialize_with = "nullable")]
    pub read_only: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_options: Option<BindOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_options: Option<VolumeOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmpfs_options: Option<TmpfsOptions>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountType {
    Bind,
    #[default]
    Volume,
    Tmpfs,
}

impl MountType {
    pub fn as_str(self) -> &'static str {
        match self {
            MountType::Bind => "bind",
            MountType::Volume => "volume",
            MountType::Tmpfs => "tmpfs",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BindOptions {
    /// `private`, `rprivate`, `shared`, `rshared`, `slave`, `rslave`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagation: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VolumeOptions {
    #[serde(default, deserialize_with = "nullable")]
    pub no_copy: bool,
    #[serde(default, deserialize_with = "nullable")]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TmpfsOptions {
    /// Bytes; 0 = the kernel's default (half of RAM).
    #[serde(default, deserialize_with = "nullable")]
    pub size_bytes: i64,
    /// Permission bits of the tmpfs root; 0 = 1777.
    #[serde(default, deserialize_with = "nullable")]
    pub mode: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PortBinding {
    #[serde(default, deserialize_with = "nullable")]
    pub host_ip: String,
    /// A port, a range `8080-8081`, or empty (the engine chooses).
    #[serde(default, deserialize_with = "nullable")]
    pub host_port: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RestartPolicy {
    /// `""`/`no`, `always`, `unless-stopped`, `on-failure`.
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub maximum_retry_count: i64,
}

/// `--ulimit name=soft[:hard]`; -1 = unlimited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// `--device host[:container][:permissions]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeviceMapping {
    #[serde(default, deserialize_with = "nullable")]
    pub path_on_host: String,
    #[serde(default, deserialize_with = "nullable")]
    pub path_in_container: String,
    /// Some of `r`, `w`, `m`.
    #[serde(default, deserialize_with = "nullable")]
    pub cgroup_permissions: String,
}

/// `NetworkingConfig`: per-network endpoint settings (`--network NAME --ip ADDR`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkingConfig {
    #[serde(default, deserialize_with = "nullable")]
    pub endpoints_config: BTreeMap<String, EndpointSettings>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EndpointSettings {
    #[serde(
        rename = "IPAMConfig",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ipam_config: Option<EndpointIpamConfig>,
    #[serde(default, deserialize_with = "nullable")]
    pub aliases: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointIpamConfig {
    #[serde(rename = "IPv4Address", default, deserialize_with = "nullable")]
    pub ipv4_address: String,
    #[serde(rename = "IPv6Address", default, deserialize_with = "nullable")]
    pub ipv6_address: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_docker_create_body() {
        let body = r#"{
            "Hostname": "", "User": "", "Env": null, "Cmd": ["sh", "-c", "true"],
            "Entrypoint": null, "Image": "busybox", "Labels": {"a": "b"},
            "ExposedPorts": {"80/tcp": {}}, "Tty": true, "OpenStdin": true,
            "Volumes": null, "StopTimeout": 5,
            "HostConfig": {
                "Binds": ["/tmp:/data:ro"], "NetworkMode": "bridge",
                "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]},
                "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3},
                "Memory": 536870912, "NanoCpus": 1500000000, "CapAdd": null,
                "Mounts": [{"Type": "tmpfs", "Target": "/run", "TmpfsOptions": {"SizeBytes": 1024}}],
                "Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 2048}],
                "PidsLimit": null, "Init": true
            },
            "NetworkingConfig": {"EndpointsConfig": {"bridge": {"IPAMConfig": {"IPv4Address": "172.17.0.9"}}}}
        }"#;
        let c: ContainerConfig = serde_json::from_str(body).unwrap();
        assert_eq!(c.config.image, "busybox");
        assert_eq!(c.config.cmd.as_deref().unwrap(), ["sh", "-c", "true"]);
        assert_eq!(c.config.entrypoint, None);
        assert!(c.config.env.is_empty());
        assert_eq!(c.config.stop_timeout, Some(5));
        assert!(c.config.exposed_ports.contains_key("80/tcp"));
        let h = &c.host_config;
        assert_eq!(h.binds, ["/tmp:/data:ro"]);
        assert_eq!(h.port_bindings["80/tcp"][0].host_port, "8080");
        assert_eq!(h.restart_policy.maximum_retry_count, 3);
        assert_eq!(h.memory, 512 << 20);
        assert_eq!(h.nano_cpus, 1_500_000_000);
        assert_eq!(h.mounts[0].kind, MountType::Tmpfs);
        assert_eq!(h.mounts[0].tmpfs_options.as_ref().unwrap().size_bytes, 1024);
        assert_eq!(h.ulimits[0].hard, 2048);
        assert_eq!(h.init, Some(true));
        assert_eq!(
            c.networking_config.endpoints_config["bridge"]
                .ipam_config
                .as_ref()
                .unwrap()
                .ipv4_address,
            "172.17.0.9"
        );
    }

    #[test]
    fn missing_fields_and_string_commands() {
        let c: ContainerConfig = serde_json::from_str(r#"{"Cmd": "echo hi"}"#).unwrap();
        assert_eq!(c.config.cmd, Some(vec!["echo hi".to_string()]));
        assert_eq!(c.host_config, HostConfig::default());
        let c: ContainerConfig = serde_json::from_str(r#"{"HostConfig": null}"#).unwrap();
        assert_eq!(c, ContainerConfig::default());
    }

    #[test]
    fn round_trips() {
        let mut c = ContainerConfig::default();
        c.config.entrypoint = Some(vec![String::new()]);
        c.host_config.pids_limit = Some(10);
        let back: ContainerConfig =
            serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }
}
