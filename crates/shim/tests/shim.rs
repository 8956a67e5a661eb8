//! coracle-shim with real containers.
//!
//! Isolation, per test: its own bundle (scripts/mkbundle.sh), `--runtime-root`,
//! `--state-dir` and log in a temp dir, container id `shim-<test>-<pid>` and cgroup
//! `/coracle-test/<id>`; the shim runs in a throwaway host network and mount namespace
//! (`unshare --net --mount --propagation private`). The [`Case`] guard kills only the
//! processes the test started (the shim, the container's init, by pid), deletes the
//! runtime state and checks that the cgroup is gone.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(20);

fn skip_unless_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        false
    } else {
        eprintln!("skipped: needs root");
        true
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn pid_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
    }
}

fn ppid_of(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let (_, rest) = stat.rsplit_once(')').unwrap();
    rest.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + DEADLINE;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct Case {
    id: String,
    dir: tempfile::TempDir,
    bundle: PathBuf,
    root: PathBuf,
    state: PathBuf,
    log: PathBuf,
    cgroup: String,
    shim_pid: Option<i32>,
    init_pid: Option<i32>,
}

impl Case {
    /// A bundle running `args`; `tweak` edits config.json.
    fn new(name: &str, args: &[&str], tweak: impl FnOnce(&mut Value)) -> Case {
        let dir = tempfile::tempdir().unwrap();
        let id = format!("shim-{name}-{}", std::process::id());
        let bundle = dir.path().join("bundle");
        let out = Command::new(repo_root().join("scripts/mkbundle.sh"))
            .arg(&bundle)
            .arg("--")
            .args(args)
            .output()
            .expect("run mkbundle.sh");
        assert!(
            out.status.success(),
            "mkbundle: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let cfg_path = bundle.join("config.json");
        let mut cfg: Value = serde_json::from_slice(&std::fs::read(&cfg_path).unwrap()).unwrap();
        let cgroup = format!("/coracle-test/{id}");
        cfg["linux"]["cgroupsPath"] = Value::from(cgroup.clone());
        tweak(&mut cfg);
        std::fs::write(&cfg_path, serde_json::to_vec_pretty(&cfg).unwrap()).unwrap();
        Case {
            root: dir.path().join("root"),
            state: dir.path().join("state"),
            log: dir.path().join("ct.log"),
            id,
            dir,
            bundle,
            cgroup,
            shim_pid: None,
            init_pid: None,
        }
    }

    /// Start the shim; returns the ready pipe's read end once the engine-side child
    /// (unshare, then the shim before its fork) has exited.
    fn spawn(&mut self, extra: &[&str]) -> OwnedFd {
        // Not close-on-exec: the shim gets it as --ready-fd.
        let (r, w) = nix::unistd::pipe().unwrap();
        let status = Command::new("unshare")
            .args(["--net", "--mount", "--propagation", "private", "--"])
            .arg(env!("CARGO_BIN_EXE_coracle-shim"))
            .arg("--id")
            .arg(&self.id)
            .arg("--bundle")
            .arg(&self.bundle)
            .arg("--runtime-root")
            .arg(&self.root)
            .arg("--state-dir")
            .arg(&self.state)
            .arg("--log-path")
            .arg(&self.log)
            .args(extra)
            .arg("--ready-fd")
            .arg(w.as_raw_fd().to_string())
            .status()
            .expect("spawn the shim");
        drop(w);
        assert!(
            status.success(),
            "the shim's first process failed: {status}"
        );
        if let Ok(p) = std::fs::read_to_string(self.state.join("shim.pid")) {
            self.shim_pid = p.trim().parse().ok();
        }
        r
    }

    fn ready(&mut self, r: OwnedFd) -> Value {
        let mut line = String::new();
        BufReader::new(std::fs::File::from(r))
            .read_line(&mut line)
            .unwrap();
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        if let Some(pid) = v["pid"].as_i64() {
            self.init_pid = Some(pid as i32);
        }
        if self.shim_pid.is_none() {
            if let Ok(p) = std::fs::read_to_string(self.state.join("shim.pid")) {
                self.shim_pid = p.trim().parse().ok();
            }
        }
        v
    }

    fn start(&mut self, extra: &[&str]) -> i32 {
        let r = self.spawn(extra);
        let v = self.ready(r);
        v["pid"].as_i64().unwrap_or_else(|| panic!("ready: {v}")) as i32
    }

    fn status(&self) -> Value {
        let text = std::fs::read_to_string(self.state.join("status.json")).unwrap();
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("status.json {text:?}: {e}"))
    }

    fn wait_shim_gone(&self) {
        let pid = self.shim_pid.expect("shim pid known");
        wait_until("the shim to exit", || pid_gone(pid));
    }

    fn ctl(&self, req: &str) -> Value {
        let mut s = UnixStream::connect(self.state.join("ctl.sock")).unwrap();
        writeln!(s, "{req}").unwrap();
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap()
    }

    fn log_entries(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("log line {l:?}: {e}")))
            .collect()
    }

    fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        if let Ok(d) = std::fs::read_dir("/sys/fs/cgroup") {
            for e in d.flatten() {
                let p = e.path().join(self.cgroup.trim_start_matches('/'));
                if p.exists() {
                    out.push(p);
                }
            }
        }
        if Path::new("/sys/fs/cgroup")
            .join(self.cgroup.trim_start_matches('/'))
            .exists()
        {
            out.push(Path::new("/sys/fs/cgroup").join(self.cgroup.trim_start_matches('/')));
        }
        out
    }

    fn assert_clean(&self) {
        assert!(!self.root.join(&self.id).exists(), "runtime state left");
        assert!(
            self.cgroup_dirs().is_empty(),
            "cgroup left: {:?}",
            self.cgroup_dirs()
        );
        for f in ["attach.sock", "ctl.sock", "shim.pid"] {
            assert!(!self.state.join(f).exists(), "{f} left");
        }
    }
}

impl Drop for Case {
    fn drop(&mut self) {
        // Only what this test started, by pid.
        for pid in [self.shim_pid, self.init_pid].into_iter().flatten() {
            if !pid_gone(pid) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        if self.root.join(&self.id).exists() {
            let _ = coracle_runtime::container::delete(&self.root, &self.id, true);
        }
        if !std::thread::panicking() {
            assert!(
                self.cgroup_dirs().is_empty(),
                "cgroup left: {:?}",
                self.cgroup_dirs()
            );
        }
        let _ = &self.dir;
    }
}

#[test]
fn ready_reports_pid_and_init_runs_under_the_shim() {
    if skip_unless_root() {
        return;
    }
    let mut c = Case::new("ready", &["sleep", "100"], |_| {});
    let pid = c.start(&[]);
    let shim = c.shim_pid.unwrap();
    assert_eq!(ppid_of(pid), shim, "init's parent must be the shim");
    assert_ne!(
        ppid_of(shim),
        std::process::id() as i32,
        "the shim must be detached"
    );
    let st = c.status();
    assert_eq!(st["state"], "running", "{st}");
    assert_eq!(st["pid"], pid, "{st}");

    assert_eq!(c.ctl(r#"{"kill":9}"#), serde_json::json!({"ok": true}));
    c.wait_shim_gone();
    let st = c.status();
    assert_eq!(st["state"], "exited", "{st}");
    assert_eq!(st["exit_code"], 137, "{st}");
    assert!(st["finished_at"].is_string(), "{st}");
    assert!(pid_gone(pid));
    c.assert_clean();
}

#[test]
fn output_is_logged_with_stream_names_and_exit_codes_recorded() {
    if skip_unless_root() {
        return;
    }
    let mut c = Case::new(
        "log",
        &["sh", "-c", "echo out; echo err >&2; exit 3"],
        |_| {},
    );
    c.start(&[]);
    c.wait_shim_gone();
    assert_eq!(c.status()["exit_code"], 3);
    let entries = c.log_entries();
    let find = |s: &str| entries.iter().find(|e| e["log"] == s).cloned();
    let out = find("out\n").unwrap_or_else(|| panic!("{entries:?}"));
    assert_eq!(out["stream"], "stdout");
    assert_eq!(find("err\n").unwrap()["stream"], "stderr");
    assert!(out["time"].as_str().unwrap().ends_with('Z'));
    c.assert_clean();

    let mut ok = Case::new("exit0", &["true"], |_| {});
    ok.start(&[]);
    ok.wait_shim_gone();
    let st = ok.status();
    assert_eq!(st["exit_code"], 0, "{st}");
    assert_eq!(st["state"], "exited", "{st}");
    ok.assert_clean();
}

/// Read multiplexed frames until EOF: (stream, payload) pairs.
fn read_frames(s: &mut UnixStream) -> Vec<(u8, Vec<u8>)> {
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let mut frames = Vec::new();
    let mut rest = &all[..];
    while rest.len() >= 8 {
        let len = u32::from_be_bytes(rest[4..8].try_into().unwrap()) as usize;
        assert_eq!(&rest[1..4], &[0, 0, 0]);
        frames.push((rest[0], rest[8..8 + len].to_vec()));
        rest = &rest[8 + len..];
    }
    assert!(rest.is_empty(), "trailing bytes {rest:?}");
    frames
}

#[test]
fn attach_gets_multiplexed_output_and_stdin_reaches_cat() {
    if skip_unless_root() {
        return;
    }
    let mut c = Case::new(
        "attach",
        &["sh", "-c", "echo hello; cat; echo bye >&2"],
        |_| {},
    );
    let ready = c.spawn(&["--stdin"]);
    // Connected before the container runs: no output is missed.
    let mut s = UnixStream::connect(c.state.join("attach.sock")).unwrap();
    s.write_all(b"{\"stdin\":true,\"stdout\":true,\"stderr\":true}\n")
        .unwrap();
    let v = c.ready(ready);
    assert!(v["pid"].is_i64(), "{v}");
    s.write_all(b"ping\n").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let frames = read_frames(&mut s);
    let stream = |n: u8| -> String {
        frames
            .iter()
            .filter(|f| f.0 == n)
            .map(|f| String::from_utf8_lossy(&f.1).into_owned())
            .collect()
    };
    assert_eq!(stream(1), "hello\nping\n", "{frames:?}");
    assert_eq!(stream(2), "bye\n", "{frames:?}");
    c.wait_shim_gone();
    assert_eq!(c.status()["exit_code"], 0);
    c.assert_clean();
}

#[test]
fn tty_output_is_raw_and_resize_applies() {
    if skip_unless_root() {
        return;
    }
    let mut c = Case::new("tty", &["sh", "-c", "sleep 1; stty size"], |cfg| {
        cfg["process"]["terminal"] = Value::from(true);
    });
    let ready = c.spawn(&["--tty"]);
    let mut s = UnixStream::connect(c.state.join("attach.sock")).unwrap();
    s.write_all(b"{\"stdout\":true}\n").unwrap();
    c.ready(ready);
    assert_eq!(
        c.ctl(r#"{"resize":{"height":31,"width":97}}"#),
        serde_json::json!({"ok": true})
    );
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out);
    assert_eq!(text, "31 97\r\n", "raw pty output expected");
    c.wait_shim_gone();
    assert!(c
        .log_entries()
        .iter()
        .any(|e| e["log"] == "31 97\r\n" && e["stream"] == "stdout"));
    c.assert_clean();
}

#[test]
fn on_failure_restarts_twice_then_stays_exited() {
    if skip_unless_root() {
        return;
    }
    let mut c = Case::new("restart", &["sh", "-c", "echo run; exit 1"], |_| {});
    c.start(&["--restart", "on-failure:2"]);
    c.wait_shim_gone();
    let st = c.status();
    assert_eq!(st["state"], "exited", "{st}");
    assert_eq!(st["restart_count"], 2, "{st}");
    assert_eq!(st["exit_code"], 1, "{st}");
    let runs = c
        .log_entries()
        .iter()
        .filter(|e| e["log"] == "run\n")
        .count();
    assert_eq!(runs, 3);
    c.assert_clean();
}

#[test]
fn exec_failures_are_reported_and_leave_nothing() {
    if skip_unless_root() {
        return;
    }
    for (name, cmd, code) in [
        ("notfound", "no-such-command", 127),
        ("noperm", "/etc/passwd", 126),
    ] {
        let mut c = Case::new(name, &[cmd], |_| {});
        let r = c.spawn(&[]);
        let v = c.ready(r);
        let err = v["error"].as_str().unwrap_or_else(|| panic!("{v}"));
        assert!(err.contains(cmd), "{v}");
        assert_eq!(v["exit_code"], code, "{v}");
        if let Some(pid) = c.shim_pid {
            wait_until("the shim to exit", || pid_gone(pid));
        }
        assert!(!c.state.join("status.json").exists());
        c.assert_clean();
    }
}

#[test]
fn sigkill_of_the_shim_leaves_status_and_a_findable_container() {
    if skip_unless_root() {
        return;
    }
    let mut c = Case::new("sigkill", &["sleep", "100"], |_| {});
    let pid = c.start(&[]);
    let shim = c.shim_pid.unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(shim),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_until("the shim to die", || pid_gone(shim));
    let st = c.status();
    assert_eq!(st["state"], "running", "{st}");
    assert_eq!(st["pid"], pid, "{st}");
    assert!(!pid_gone(pid), "the container must survive its shim");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_until("the container to die", || pid_gone(pid));
    coracle_runtime::container::delete(&c.root, &c.id, true).unwrap();
    assert!(c.cgroup_dirs().is_empty());
}

#[test]
fn log_rotates_at_max_size() {
    if skip_unless_root() {
        return;
    }
    let mut c = Case::new(
        "rotate",
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 200 ]; do i=$((i+1)); echo line $i; done",
        ],
        |_| {},
    );
    c.start(&["--log-max-size", "1k", "--log-max-files", "3"]);
    c.wait_shim_gone();
    let name = |n: &str| PathBuf::from(format!("{}{n}", c.log.display()));
    for f in ["", ".1", ".2"] {
        let len = std::fs::metadata(name(f)).unwrap().len();
        assert!(len > 0 && len < 1024 + 200, "{f}: {len}");
    }
    assert!(!name(".3").exists());
    let last = c.log_entries().pop().unwrap();
    assert_eq!(last["log"], "line 200\n");
    c.assert_clean();
}

#[test]
fn unless_stopped_restarts_until_the_engine_marks_a_stop() {
    if skip_unless_root() {
        return;
    }
    let mut c = Case::new("unless", &["sleep", "100"], |_| {});
    let first = c.start(&["--restart", "unless-stopped"]);
    assert_eq!(c.ctl(r#"{"kill":9}"#), serde_json::json!({"ok": true}));
    wait_until("a restart", || {
        let st = c.status();
        st["state"] == "running" && st["restart_count"] == 1
    });
    let second = c.status()["pid"].as_i64().unwrap() as i32;
    assert_ne!(second, first);
    c.init_pid = Some(second);
    assert_eq!(ppid_of(second), c.shim_pid.unwrap());
    std::fs::write(c.state.join("stopped"), "").unwrap();
    assert_eq!(c.ctl(r#"{"kill":9}"#), serde_json::json!({"ok": true}));
    c.wait_shim_gone();
    let st = c.status();
    assert_eq!(st["state"], "exited", "{st}");
    assert_eq!(st["restart_count"], 1, "{st}");
    assert_eq!(st["exit_code"], 137, "{st}");
    c.assert_clean();
}

#[test]
fn the_exit_command_runs_after_the_final_exit_unless_the_engine_removes_the_container() {
    if skip_unless_root() {
        return;
    }
    // First without `removing`: the command runs (and shows how soon it does), then with
    // it: `rm -f` tears the container down itself, so no command may race it.
    for removing in [false, true] {
        let name = if removing { "exitrm" } else { "exitcmd" };
        let mut c = Case::new(name, &["sleep", "100"], |_| {});
        let ran = c.dir.path().join("exit-command-ran");
        let script = format!("echo ran > {}", ran.display());
        c.start(&[
            "--exit-command",
            "/bin/sh",
            "--exit-command-arg",
            "-c",
            "--exit-command-arg",
            &script,
        ]);
        if removing {
            std::fs::write(c.state.join("removing"), "").unwrap();
        }
        assert_eq!(c.ctl(r#"{"kill":9}"#), serde_json::json!({"ok": true}));
        c.wait_shim_gone();
        c.assert_clean();
        if removing {
            std::thread::sleep(Duration::from_millis(500));
            assert!(!ran.exists(), "the exit command ran while removing");
        } else {
            wait_until("the exit command", || ran.exists());
        }
    }
}
