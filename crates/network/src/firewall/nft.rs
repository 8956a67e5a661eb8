//! Applying the rules with the `nft` binary (Debian's nftables package): batches go
//! to `nft -f -` on stdin as one transaction, state is read back with `nft -j`.
//! Everything runs in the caller's network namespace.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;
use tracing::debug;

use super::rules::{self, ForeignForward};
use super::{
    foreign_rule_comment, FirewallDriver, FirewallError, FirewallState, TeardownError,
    DEFAULT_TABLE,
};

/// The `nft` program.
#[derive(Debug, Clone)]
pub struct Nft {
    program: PathBuf,
}

impl Default for Nft {
    fn default() -> Self {
        Nft {
            program: PathBuf::from("nft"),
        }
    }
}

impl Nft {
    pub fn new(program: impl Into<PathBuf>) -> Nft {
        Nft {
            program: program.into(),
        }
    }

    /// Runs `script` as one transaction (`nft -f -`): all of it or nothing.
    pub fn run_script(&self, doing: &str, script: &str) -> Result<(), FirewallError> {
        debug!(doing, lines = script.lines().count(), "nft -f -");
        let mut child = Command::new(&self.program)
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| self.spawn_error(doing, source))?;
        let written = child
            .stdin
            .take()
            .map(|mut stdin| stdin.write_all(script.as_bytes()));
        let out = child
            .wait_with_output()
            .map_err(|source| self.spawn_error(doing, source))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
            let line = error_line(&stderr)
                .and_then(|n| script.lines().nth(n - 1).map(|l| (n, l.trim().to_string())));
            return Err(FirewallError::Nft {
                doing: doing.to_string(),
                status: out.status.to_string(),
                stderr,
                line,
            });
        }
        if let Some(Err(source)) = written {
            return Err(self.spawn_error(doing, source));
        }
        debug!(doing, "nft -f - done");
        Ok(())
    }

    /// `nft -j <args>` parsed; `Ok(None)` when nft says the object does not exist.
    pub fn list_json(&self, args: &[&str]) -> Result<Option<Value>, FirewallError> {
        let doing = format!("nft -j {}", args.join(" "));
        let out = Command::new(&self.program)
            .arg("-j")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| self.spawn_error(&doing, source))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
            if stderr.contains("No such file or directory") {
                return Ok(None);
            }
            return Err(FirewallError::Nft {
                doing,
                status: out.status.to_string(),
                stderr,
                line: None,
            });
        }
        serde_json::from_slice(&out.stdout)
            .map(Some)
            .map_err(|e| FirewallError::NftOutput {
                doing,
                reason: e.to_string(),
            })
    }

    fn spawn_error(&self, doing: &str, source: std::io::Error) -> FirewallError {
        FirewallError::NftSpawn {
            program: self.program.display().to_string(),
            doing: doing.to_string(),
            source,
        }
    }
}

/// The script line number in nft's `/dev/stdin:LINE:COL: Error: …`.
fn error_line(stderr: &str) -> Option<usize> {
    let rest = &stderr[stderr.find("/dev/stdin:")? + "/dev/stdin:".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok().filter(|n| *n > 0)
}

/// The objects of an `nft -j` listing (the entries of its `nftables` array).
fn objects(v: &Value) -> impl Iterator<Item = &Value> {
    v.get("nftables")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// Reads iptables' `ip filter FORWARD`: whether its policy is drop and which rules
/// carry `comment` (from a JSON listing of the chain, `None` when it does not exist).
pub fn parse_foreign_forward(listing: Option<&Value>, comment: &str) -> ForeignForward {
    let mut found = ForeignForward::default();
    let Some(v) = listing else { return found };
    for o in objects(v) {
        if let Some(chain) = o.get("chain") {
            found.policy_drop = chain.get("hook").and_then(Value::as_str) == Some("forward")
                && chain.get("policy").and_then(Value::as_str) == Some("drop");
        }
        if let Some(rule) = o.get("rule") {
            if rule.get("comment").and_then(Value::as_str) == Some(comment) {
                if let Some(h) = rule.get("handle").and_then(Value::as_u64) {
                    found.our_handles.push(h);
                }
            }
        }
    }
    found
}

/// The nftables firewall: one `inet` table, plus accepts in iptables' FORWARD when
/// its policy is drop (see the [module docs](super)).
#[derive(Debug, Clone)]
pub struct NftFirewall {
    nft: Nft,
    table: String,
}

impl Default for NftFirewall {
    fn default() -> Self {
        NftFirewall {
            nft: Nft::default(),
            table: DEFAULT_TABLE.to_string(),
        }
    }
}

impl NftFirewall {
    /// A firewall owning `table inet <table>`.
    pub fn new(nft: Nft, table: &str) -> Result<NftFirewall, FirewallError> {
        rules::validate_table_name(table)?;
        Ok(NftFirewall {
            nft,
            table: table.to_string(),
        })
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// The table as `nft -j list table inet <table>` prints it; `None` if absent.
    pub fn read_table(&self) -> Result<Option<Value>, FirewallError> {
        self.nft.list_json(&["list", "table", "inet", &self.table])
    }

    /// What is in iptables' `ip filter FORWARD` (policy, our rules' handles).
    pub fn read_foreign_forward(&self) -> Result<ForeignForward, FirewallError> {
        let listing = self
            .nft
            .list_json(&["-a", "list", "chain", "ip", "filter", "FORWARD"])?;
        Ok(parse_foreign_forward(
            listing.as_ref(),
            &foreign_rule_comment(&self.table),
        ))
    }

    fn apply_state(&self, state: &FirewallState) -> Result<(), FirewallError> {
        // Validate (inside apply_batch) before reading or touching anything.
        rules::validate(&self.table, state)?;
        let foreign = self.read_foreign_forward()?;
        let batch = rules::apply_batch(&self.table, state, &foreign)?;
        debug!(
            table = %self.table,
            networks = state.networks.len(),
            ports = state.ports.len(),
            forward_policy_drop = foreign.policy_drop,
            "applying firewall"
        );
        self.nft
            .run_script(&format!("applying table inet {}", self.table), &batch)
    }

    fn teardown_all(&self) -> Result<(), TeardownError> {
        let mut errors = Vec::new();
        let doing = format!("deleting table inet {}", self.table);
        match rules::delete_table_batch(&self.table) {
            Ok(batch) => {
                if let Err(e) = self.nft.run_script(&doing, &batch) {
                    errors.push(e);
                }
            }
            Err(e) => errors.push(e),
        }
        match self.read_foreign_forward() {
            Ok(foreign) if !foreign.our_handles.is_empty() => {
                let batch = rules::delete_foreign_batch(&foreign.our_handles);
                if let Err(e) = self.nft.run_script(
                    &format!(
                        "removing coracle:{} accepts from ip filter FORWARD",
                        self.table
                    ),
                    &batch,
                ) {
                    errors.push(e);
                }
            }
            Ok(_) => {}
            Err(e) => errors.push(e),
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(TeardownError {
                table: self.table.clone(),
                errors,
            })
        }
    }
}

impl FirewallDriver for NftFirewall {
    fn apply(&self, state: &FirewallState) -> Result<(), FirewallError> {
        self.apply_state(state)
    }

    fn teardown(&self) -> Result<(), TeardownError> {
        self.teardown_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_line_is_found() {
        let e =
            "/dev/stdin:5:9-12: Error: syntax error, unexpected foo\n\tchain foo {\n\t      ^^^";
        assert_eq!(error_line(e), Some(5));
        assert_eq!(error_line("Error: Could not process rule"), None);
    }

    #[test]
    fn foreign_forward_is_parsed() {
        let v: Value = serde_json::from_str(
            r#"{"nftables": [{"metainfo": {"version": "1.0.6"}},
            {"chain": {"family": "ip", "table": "filter", "name": "FORWARD", "handle": 1,
              "type": "filter", "hook": "forward", "prio": 0, "policy": "drop"}},
            {"rule": {"family": "ip", "table": "filter", "chain": "FORWARD", "handle": 3,
              "comment": "coracle:t1", "expr": []}},
            {"rule": {"family": "ip", "table": "filter", "chain": "FORWARD", "handle": 4,
              "comment": "coracle:other", "expr": []}},
            {"rule": {"family": "ip", "table": "filter", "chain": "FORWARD", "handle": 5,
              "expr": []}}]}"#,
        )
        .unwrap();
        let f = parse_foreign_forward(Some(&v), "coracle:t1");
        assert_eq!(
            f,
            ForeignForward {
                policy_drop: true,
                our_handles: vec![3]
            }
        );
        assert_eq!(parse_foreign_forward(None, "x"), ForeignForward::default());
    }
}
