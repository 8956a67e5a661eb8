//! `coracle pull`, `login` and `logout` against a real registry (Debian's docker-registry on
//! 127.0.0.1, started per test by the image crate's harness), including a pull killed
//! mid-layer and re-run.

#[path = "../../image/tests/common/registry.rs"]
#[allow(dead_code)]
mod registry;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use coracle_image::content::ContentStore;
use registry::{images, Auth, TestRegistry};
use serde_json::Value;

struct Engine {
    dir: tempfile::TempDir,
}

impl Engine {
    fn new() -> Engine {
        Engine {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn docker_config(&self) -> PathBuf {
        self.dir.path().join("docker-config")
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_coracle"));
        c.arg("--root")
            .arg(self.root())
            .args(args)
            .env("DOCKER_CONFIG", self.docker_config())
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "coracle {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn login(&self, host: &str, user: &str, password: &str) -> Output {
        let mut child = self
            .cmd(&["login", "-u", user, "--password-stdin", host])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{password}\n").as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    fn listed(&self) -> Vec<Value> {
        self.ok(&["images", "--format", "json"])
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Bytes sitting in partial ingests.
    fn ingested(&self) -> u64 {
        let dir = self.root().join("image/content/ingest");
        let Ok(entries) = fs::read_dir(dir) else {
            return 0;
        };
        entries
            .filter_map(|e| fs::metadata(e.ok()?.path().join("data")).ok())
            .map(|m| m.len())
            .sum()
    }
}

#[test]
fn pull_prints_docker_progress_lists_the_image_and_repulls_as_up_to_date() {
    let reg = TestRegistry::start(Auth::None);
    reg.push(&images().layout, "small", "team/app", "v1", None);
    let host = reg.host();
    let e = Engine::new();
    let name = format!("{host}/team/app:v1");

    let out = e.ok(&["pull", &name]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "v1: Pulling from team/app", "{out}");
    assert_eq!(out.matches("Pull complete").count(), 3, "{out}");
    assert!(out.contains("\nDigest: sha256:"), "{out}");
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {name}\n")),
        "{out}"
    );
    assert_eq!(*lines.last().unwrap(), name);
    assert!(
        !out.contains('\x1b'),
        "no terminal escapes when stdout is a pipe: {out:?}"
    );

    let listed = e.listed();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["Repository"], format!("{host}/team/app"));
    assert_eq!(listed[0]["Tag"], "v1");
    let digest = out
        .lines()
        .find_map(|l| l.strip_prefix("Digest: "))
        .unwrap();
    assert_eq!(listed[0]["Digest"], digest);
    let inspect: Value = serde_json::from_str(&e.ok(&["image", "inspect", &name])).unwrap();
    assert_eq!(
        inspect[0]["RepoDigests"],
        serde_json::json!([format!("{host}/team/app@{digest}")])
    );
    // Pulled by digest, the same image resolves.
    e.ok(&["image", "inspect", &format!("{host}/team/app@{digest}")]);

    let again = e.ok(&["pull", &name]);
    assert_eq!(again.matches("Already exists").count(), 3, "{again}");
    assert!(
        again.contains(&format!("Status: Image is up to date for {name}")),
        "{again}"
    );

    // Without a tag, Docker's words.
    reg.push(&images().layout, "small", "team/app", "latest", None);
    let out = e.ok(&["pull", "-q", &format!("{host}/team/app")]);
    assert_eq!(out, format!("{host}/team/app:latest\n"));
    let out = e.ok(&["pull", &format!("{host}/team/app")]);
    assert!(
        out.starts_with("Using default tag: latest\nlatest: Pulling from team/app\n"),
        "{out}"
    );
}

#[test]
fn unknown_images_fail_clearly_and_leave_nothing() {
    let reg = TestRegistry::start(Auth::None);
    reg.push(&images().layout, "small", "team/app", "v1", None);
    let host = reg.host();
    let e = Engine::new();
    for (name, words) in [
        (format!("{host}/team/app:nope"), "not found"),
        (format!("{host}/no/such:v1"), "not found"),
    ] {
        let out = e.run(&["pull", &name]);
        assert_eq!(out.status.code(), Some(1), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(words) && err.contains(&name), "{name}: {err}");
    }
    assert!(e.listed().is_empty());
    assert_eq!(e.ingested(), 0);
}

#[test]
fn login_stores_credentials_privately_and_pull_uses_them() {
    let reg = TestRegistry::start(Auth::Basic {
        user: "alice".into(),
        password: "s3cret".into(),
    });
    reg.push(
        &images().layout,
        "small",
        "private/app",
        "v1",
        Some("alice:s3cret"),
    );
    let host = reg.host();
    let e = Engine::new();
    let name = format!("{host}/private/app:v1");

    let out = e.run(&["pull", &name]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unauthorized"),
        "{out:?}"
    );

    let out = e.login(&host, "alice", "wrong");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        !e.docker_config().join("config.json").exists(),
        "refused login stored something"
    );

    let out = e.login(&host, "alice", "s3cret");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Login Succeeded\n");
    let config = e.docker_config().join("config.json");
    assert_eq!(
        fs::metadata(&config).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let json: Value = serde_json::from_str(&fs::read_to_string(&config).unwrap()).unwrap();
    assert!(json["auths"][&host]["auth"].is_string(), "{json}");

    e.ok(&["pull", "-q", &name]);
    assert_eq!(
        e.ok(&["logout", &host]),
        format!("Removing login credentials for {host}\n")
    );
    assert_eq!(
        e.ok(&["logout", &host]),
        format!("Not logged in to {host}\n")
    );
    let json: Value = serde_json::from_str(&fs::read_to_string(&config).unwrap()).unwrap();
    assert!(json["auths"].get(&host).is_none(), "{json}");
}

/// Starts `coracle pull` and SIGKILLs it (by PID) as soon as a layer is partly downloaded.
/// Returns false if the pull finished before that could happen.
fn kill_mid_layer(e: &Engine, name: &str) -> bool {
    let mut child = e
        .cmd(&["pull", "-q", name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if e.ingested() > 64 * 1024 {
            child.kill().unwrap();
            child.wait().unwrap();
            return true;
        }
        if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn a_pull_killed_mid_layer_lists_nothing_and_a_rerun_completes_verified() {
    let reg = TestRegistry::start(Auth::None);
    reg.push(&images().layout, "big", "team/big", "v1", None);
    let name = format!("{}/team/big:v1", reg.host());
    // The pull may outrun the poll on a fast machine; a few fresh attempts make that unlikely.
    let mut caught = None;
    for _ in 0..5 {
        let e = Engine::new();
        if kill_mid_layer(&e, &name) {
            caught = Some(e);
            break;
        }
    }
    let e = caught.expect("never caught the pull mid-layer in 5 attempts");
    assert!(
        e.ingested() > 0,
        "the killed pull left a partial layer to resume"
    );
    assert!(
        e.listed().is_empty(),
        "a half-pulled image is listed: {:?}",
        e.listed()
    );

    let out = e.ok(&["pull", &name]);
    assert!(out.contains("Status: Downloaded newer image"), "{out}");
    let listed = e.listed();
    assert_eq!(listed.len(), 1);
    assert_eq!(e.ingested(), 0, "ingests left after the completed pull");
    let content = ContentStore::open(e.root().join("image/content")).unwrap();
    for digest in content.list().unwrap() {
        content.verify(&digest).unwrap();
    }
    let inspect: Value = serde_json::from_str(&e.ok(&["image", "inspect", &name])).unwrap();
    let lower = inspect[0]["GraphDriver"]["Data"]["LowerDir"]
        .as_str()
        .unwrap()
        .to_string();
    let layers: Vec<&Path> = lower.split(':').map(Path::new).collect();
    assert_eq!(layers.len(), 4);
    assert!(
        layers.iter().any(|l| l.join("bin/busybox").is_file()),
        "{lower}"
    );
}
