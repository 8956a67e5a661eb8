//! `--security-opt`: no-new-privileges and the seccomp choice.

use super::{err, ParseError};

/// How `seccomp=` chose the filter.
#[derive(Debug, Clone, PartialEq)]
pub enum SeccompChoice {
    /// Coracle's default profile.
    Default,
    Unconfined,
    /// A profile (Docker's format or OCI `LinuxSeccomp` JSON), as text.
    Profile(String),
}

/// What `HostConfig.SecurityOpt` asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct SecurityOptions {
    pub no_new_privileges: bool,
    pub seccomp: SeccompChoice,
}

/// `--security-opt` as the CLI takes it: `seccomp=<file>` is read and its JSON inlined
/// (`seccomp=<json>`), as Docker's CLI sends it to the daemon; the rest is checked and kept.
pub fn parse_security_opt_flag(value: &str) -> Result<String, ParseError> {
    let flag = "--security-opt";
    if let Some(path) = value
        .strip_prefix("seccomp=")
        .or_else(|| value.strip_prefix("seccomp:"))
    {
        if path == "unconfined" {
            return Ok("seccomp=unconfined".into());
        }
        let text = std::fs::read_to_string(path).map_err(|e| {
            err(
                flag,
                format!("opening seccomp profile ({path}) failed: {e}"),
            )
        })?;
        let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            err(
                flag,
                format!("compacting json for seccomp profile ({path}) failed: {e}"),
            )
        })?;
        return Ok(format!("seccomp={json}"));
    }
    security_options(&[value.to_string()])?;
    Ok(value.to_string())
}

/// `HostConfig.SecurityOpt` entries: `no-new-privileges[:|=true|false]`,
/// `seccomp=unconfined|<profile JSON>`; `apparmor=` and `label=` are accepted and ignored
/// (no LSM support yet).
pub fn security_options(opts: &[String]) -> Result<SecurityOptions, ParseError> {
    let flag = "--security-opt";
    let mut out = SecurityOptions {
        no_new_privileges: false,
        seccomp: SeccompChoice::Default,
    };
    for opt in opts {
        if opt == "no-new-privileges" {
            out.no_new_privileges = true;
            continue;
        }
        let Some((key, value)) = opt.split_once('=').or_else(|| opt.split_once(':')) else {
            return Err(err(flag, format!("invalid --security-opt: {opt:?}")));
        };
        match key {
            "no-new-privileges" => {
                out.no_new_privileges = match value {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => {
                        return Err(err(
                            flag,
                            format!("invalid --security-opt 2: {opt:?}"),
                        ))
                    }
                }
            }
            "seccomp" if value == "unconfined" => out.seccomp = SeccompChoice::Unconfined,
            "seccomp" if value.trim_start().starts_with('{') => {
                out.seccomp = SeccompChoice::Profile(value.to_string())
            }
            "seccomp" => {
                return Err(err(
                    flag,
                    format!("invalid --security-opt: seccomp expects 'unconfined' or a profile, got {value:?}"),
                ))
            }
            "apparmor" | "label" => {}
            _ => return Err(err(flag, format!("invalid --security-opt 2: {opt:?}"))),
        }
    }
    Ok(out)
}
