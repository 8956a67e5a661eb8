//! A small blocking client for one registry: the base URL (HTTPS, or plain HTTP for
//! loopback and insecure registries), the `Authorization` header we earned from the last
//! challenge, and requests that answer a 401 by following its challenge once.

use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;

use tracing::debug;

use super::auth::{self, Challenge};
use super::credentials::Credentials;
use super::error::RegistryError;
use crate::reference::DEFAULT_DOMAIN;

/// Largest manifest or token answer we read (the distribution spec suggests 4 MiB).
pub(crate) const MAX_MANIFEST: u64 = 4 * 1024 * 1024;

const USER_AGENT: &str = concat!("coracle/", env!("CARGO_PKG_VERSION"));

pub(crate) struct Client {
    agent: ureq::Agent,
    /// As written in the reference (`127.0.0.1:5000`, `docker.io`); named in errors.
    registry: String,
    /// `http://127.0.0.1:5000` or `https://registry-1.docker.io`.
    base: String,
    creds: Option<Credentials>,
    authorization: Mutex<Option<String>>,
}

/// Whether `registry` (`host[:port]`) is on the loopback interface.
pub(crate) fn is_loopback(registry: &str) -> bool {
    let host = match registry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => registry.split(':').next().unwrap_or(""),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Client {
    pub(crate) fn new(registry: &str, insecure: &[String], creds: Option<Credentials>) -> Self {
        let plain = is_loopback(registry) || insecure.iter().any(|r| r == registry);
        let host = if registry == DEFAULT_DOMAIN || registry == "index.docker.io" {
            "registry-1.docker.io"
        } else {
            registry
        };
        let scheme = if plain { "http" } else { "https" };
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(15))
            .timeout_read(Duration::from_secs(60))
            .user_agent(USER_AGENT)
            .build();
        Client {
            agent,
            registry: registry.to_owned(),
            base: format!("{scheme}://{host}"),
            creds,
            authorization: Mutex::new(None),
        }
    }

    pub(crate) fn registry(&self) -> &str {
        &self.registry
    }

    fn transport(&self, what: &str, e: impl std::fmt::Display) -> RegistryError {
        RegistryError::Transport {
            registry: self.registry.clone(),
            what: what.to_owned(),
            message: e.to_string(),
        }
    }

    fn unauthorized(&self, repository: Option<&str>) -> RegistryError {
        RegistryError::Unauthorized {
            registry: self.registry.clone(),
            repository: repository.unwrap_or("").to_owned(),
            had_credentials: self.creds.is_some(),
        }
    }

    fn send(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        authorization: Option<&str>,
        what: &str,
    ) -> Result<ureq::Response, RegistryError> {
        let mut req = self.agent.get(url);
        for (k, v) in headers {
            req = req.set(k, v);
        }
        if let Some(a) = authorization {
            req = req.set("Authorization", a);
        }
        match req.call() {
            Ok(r) => Ok(r),
            Err(ureq::Error::Status(_, r)) => Ok(r),
            Err(ureq::Error::Transport(t)) => Err(self.transport(what, t)),
        }
    }

    /// GET `path` (below the base URL). A 401 is answered once by following the
    /// challenge (scope `repository:<repo>:pull` when `repository` is given); any other
    /// status comes back to the caller, which knows what it means.
    pub(crate) fn get(
        &self,
        path: &str,
        repository: Option<&str>,
        headers: &[(&str, &str)],
        what: &str,
    ) -> Result<ureq::Response, RegistryError> {
        let url = format!("{}{}", self.base, path);
        let current = self.authorization.lock().expect("auth lock").clone();
        let resp = self.send(&url, headers, current.as_deref(), what)?;
        if resp.status() != 401 {
            return Ok(resp);
        }
        let challenge = resp
            .header("WWW-Authenticate")
            .and_then(auth::parse_challenge);
        debug!(registry = %self.registry, ?challenge, "registry asked for authentication");
        let Some(challenge) = challenge else {
            return Err(self.unauthorized(repository));
        };
        let scope = repository.map(|r| format!("repository:{r}:pull"));
        let header = self.authenticate(&challenge, scope.as_deref(), repository)?;
        *self.authorization.lock().expect("auth lock") = Some(header.clone());
        let resp = self.send(&url, headers, Some(&header), what)?;
        if resp.status() == 401 {
            return Err(self.unauthorized(repository));
        }
        Ok(resp)
    }

    /// The `Authorization` value that answers `challenge`.
    fn authenticate(
        &self,
        challenge: &Challenge,
        scope: Option<&str>,
        repository: Option<&str>,
    ) -> Result<String, RegistryError> {
        match challenge {
            Challenge::Basic => match &self.creds {
                Some(c) => Ok(auth::basic_header(c)),
                None => Err(self.unauthorized(repository)),
            },
            Challenge::Bearer {
                realm,
                service,
                scope: challenge_scope,
            } => {
                let scope = scope.or(challenge_scope.as_deref());
                let url = auth::token_url(realm, service.as_deref(), scope);
                let basic = self.creds.as_ref().map(auth::basic_header);
                let token_err = |message: String| RegistryError::Token {
                    registry: self.registry.clone(),
                    realm: realm.clone(),
                    message,
                };
                let resp = match self.send(&url, &[], basic.as_deref(), "get a token") {
                    Ok(r) => r,
                    Err(e) => return Err(token_err(e.to_string())),
                };
                match resp.status() {
                    200 => {}
                    401 | 403 => return Err(self.unauthorized(repository)),
                    s => {
                        return Err(token_err(format!(
                            "HTTP {s}: {}",
                            error_message(&read_text(resp))
                        )))
                    }
                }
                let body = read_text(resp);
                let token = auth::token_from_response(&body)
                    .ok_or_else(|| token_err("the answer holds no token".into()))?;
                Ok(format!("Bearer {token}"))
            }
        }
    }

    /// `GET /v2/` with the credentials; Ok when the registry (or its token service)
    /// accepts them.
    pub(crate) fn check_login(&self) -> Result<(), RegistryError> {
        let url = format!("{}/v2/", self.base);
        let resp = self.send(&url, &[], None, "check credentials")?;
        let status = resp.status();
        if status == 401 {
            let challenge = resp
                .header("WWW-Authenticate")
                .and_then(auth::parse_challenge)
                .ok_or_else(|| self.unauthorized(None))?;
            // A token service that accepts the credentials has checked them; for Basic
            // the registry itself must accept them.
            let header = self.authenticate(&challenge, None, None)?;
            let resp = self.send(&url, &[], Some(&header), "check credentials")?;
            return match resp.status() {
                200..=299 => Ok(()),
                401 => Err(self.unauthorized(None)),
                s => Err(self.status_error("check credentials", s, resp)),
            };
        }
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(self.status_error("check credentials", status, resp))
        }
    }

    pub(crate) fn status_error(
        &self,
        what: &str,
        status: u16,
        resp: ureq::Response,
    ) -> RegistryError {
        RegistryError::Status {
            registry: self.registry.clone(),
            what: what.to_owned(),
            status,
            message: error_message(&read_text(resp)),
        }
    }
}

/// Up to 64 KiB of a response body as text (error bodies, token answers).
pub(crate) fn read_text(resp: ureq::Response) -> String {
    let mut buf = Vec::new();
    let _ = resp.into_reader().take(64 * 1024).read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// The codes of a distribution error body (`{"errors":[{"code":..,"message":..}]}`).
pub(crate) fn error_codes(body: &str) -> Vec<String> {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("errors").and_then(|e| e.as_array()).cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e.get("code").and_then(|c| c.as_str()).map(str::to_owned))
        .collect()
}

/// A one-line message from an error body: `code: message` pairs, else the text itself.
pub(crate) fn error_message(body: &str) -> String {
    let parsed: Option<Vec<String>> = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("errors").and_then(|e| e.as_array()).cloned())
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("");
                    let msg = e.get("message").and_then(|c| c.as_str()).unwrap_or("");
                    format!("{}: {msg}", code.to_ascii_lowercase().replace('_', " "))
                })
                .collect()
        });
    match parsed {
        Some(p) if !p.is_empty() => p.join("; "),
        _ => {
            let t = body.trim();
            let short: String = t.chars().take(200).collect();
            if short.is_empty() {
                "(empty answer)".into()
            } else {
                short
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_follow_loopback_and_insecure_lists() {
        let base = |r: &str, insecure: &[&str]| {
            let insecure: Vec<String> = insecure.iter().map(|s| s.to_string()).collect();
            Client::new(r, &insecure, None).base
        };
        assert_eq!(base("127.0.0.1:5000", &[]), "http://127.0.0.1:5000");
        assert_eq!(base("localhost:5000", &[]), "http://localhost:5000");
        assert_eq!(base("[::1]:5000", &[]), "http://[::1]:5000");
        assert_eq!(base("reg.example:5000", &[]), "https://reg.example:5000");
        assert_eq!(
            base("reg.example:5000", &["reg.example:5000"]),
            "http://reg.example:5000"
        );
        assert_eq!(
            base("reg.example", &["reg.example:5000"]),
            "https://reg.example"
        );
        assert_eq!(base("docker.io", &[]), "https://registry-1.docker.io");
    }

    #[test]
    fn error_bodies_become_messages() {
        let body =
            r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#;
        assert_eq!(error_codes(body), vec!["MANIFEST_UNKNOWN".to_owned()]);
        assert_eq!(error_message(body), "manifest unknown: manifest unknown");
        assert_eq!(error_message("oops\n"), "oops");
        assert_eq!(error_message(""), "(empty answer)");
    }
}
