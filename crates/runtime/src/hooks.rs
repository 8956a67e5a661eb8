//! OCI hooks: run each hook with the container's state JSON on stdin.
//!
//! `path` is the program, `args` its full argv (args[0] included, as in execv), `env`
//! its whole environment. A hook that exits non-zero or outlives its `timeout` fails
//! the operation (except poststart/poststop, whose failures the caller only logs).

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Hook;

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{kind} hook {path}: {reason}")]
    Failed {
        kind: &'static str,
        path: String,
        reason: String,
    },
}

/// Run `hooks` of kind `kind` in order, each with `state` on stdin.
pub fn run(kind: &'static str, hooks: &[Hook], state: &serde_json::Value) -> Result<(), HookError> {
    let state = serde_json::to_vec(state).expect("state serializes");
    for hook in hooks {
        run_one(kind, hook, &state)?;
    }
    Ok(())
}

fn run_one(kind: &'static str, hook: &Hook, state: &[u8]) -> Result<(), HookError> {
    let path = hook.path().display().to_string();
    let fail = |reason: String| HookError::Failed {
        kind,
        path: path.clone(),
        reason,
    };
    tracing::debug!(kind, path, "running hook");
    let mut cmd = Command::new(hook.path());
    if let Some(args) = hook.args() {
        if let Some((argv0, rest)) = args.split_first() {
            cmd.arg0(argv0).args(rest);
        }
    }
    cmd.env_clear();
    for kv in hook.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    let mut child = cmd
        .spawn()
        .map_err(|e| fail(format!("cannot execute: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin closes the pipe: EPIPE is not a failure.
        let _ = stdin.write_all(state);
    }
    let deadline = hook
        .timeout()
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    let mut pause = Duration::from_micros(200);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => return Err(fail(format!("wait: {e}"))),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            // Only our own child, by pid.
            let _ = child.kill();
            let _ = child.wait();
            return Err(fail(format!(
                "timed out after {}s",
                hook.timeout().unwrap_or(0)
            )));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    };
    if !status.success() {
        return Err(fail(format!("exited with {status}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::HookBuilder;

    fn sh(script: &str, timeout: Option<i64>) -> Hook {
        let mut b = HookBuilder::default()
            .path("/bin/sh")
            .args(vec!["sh".to_string(), "-c".to_string(), script.to_string()])
            .env(vec!["GREETING=hi".to_string()]);
        if let Some(t) = timeout {
            b = b.timeout(t);
        }
        b.build().unwrap()
    }

    #[test]
    fn hooks_get_state_on_stdin_and_their_env() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let script = format!("cat > {0}; echo \" $GREETING\" >> {0}", out.display());
        run(
            "prestart",
            &[sh(&script, None)],
            &serde_json::json!({"id": "c1"}),
        )
        .unwrap();
        let text = std::fs::read_to_string(out).unwrap();
        assert!(text.starts_with("{\"id\":\"c1\"}"), "{text}");
        assert!(text.contains(" hi"), "{text}");
    }

    #[test]
    fn failing_hook_names_kind_path_and_status() {
        let e = run(
            "createRuntime",
            &[sh("exit 3", None)],
            &serde_json::json!({}),
        )
        .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("createRuntime hook /bin/sh") && msg.contains('3'),
            "{msg}"
        );
    }

    #[test]
    fn hook_timeout_kills_it() {
        let e = run(
            "poststart",
            &[sh("sleep 5", Some(1))],
            &serde_json::json!({}),
        )
        .unwrap_err();
        assert!(e.to_string().contains("timed out"), "{e}");
    }
}
