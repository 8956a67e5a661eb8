//! Stopping, killing, teardown and removal, and bringing recorded states up to date with what
//! the shims report.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use nix::mount::{umount2, MntFlags};
use nix::sys::signal::Signal;
use serde::Deserialize;
use tracing::{debug, warn};

use super::Backoff;
use super::{Engine, EngineError, Result};
use crate::store::{ContainerRecord, State, StateChange, Transition};

/// What the shim writes to `status.json`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ShimStatus {
    pub state: String,
    #[serde(default)]
    pub pid: i32,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub restart_count: u32,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub oom_killed: bool,
}

/// Whether `pid` is alive and is a `coracle-shim` (not a recycled pid).
fn shim_alive(pid: i32) -> bool {
    fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
        c.split(|b| *b == 0)
            .next()
            .is_some_and(|a| a.ends_with(b"coracle-shim"))
    })
}

impl Engine {
    pub fn shim_status(&self, id: &str) -> Option<ShimStatus> {
        let text = fs::read_to_string(self.shim_dir(id).join("status.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    fn shim_pid(&self, id: &str) -> Option<i32> {
        fs::read_to_string(self.shim_dir(id).join("shim.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Whether the container's shim process is alive.
    pub fn shim_running(&self, id: &str) -> bool {
        self.shim_pid(id).is_some_and(shim_alive)
    }

    /// Applies a transition seen in the shim's status. Another process (the shim's call-back,
    /// a concurrent `ps`) may have applied it first: then the record as it is now is the answer.
    fn observe(&self, id: &str, t: Transition, change: StateChange) -> Result<ContainerRecord> {
        match self.store.update_state(id, t, change) {
            Ok(r) => Ok(r),
            Err(crate::store::StoreError::InvalidTransition { .. }) => Ok(self.store.get(id)?),
            Err(e) => Err(e.into()),
        }
    }

    /// Brings an active record up to date: the shim reported an exit or a restart, or the
    /// shim itself is gone (the container is then recorded as dead, never lost).
    pub(crate) fn refresh(&self, rec: ContainerRecord) -> Result<ContainerRecord> {
        if !matches!(
            rec.state,
            State::Running | State::Restarting | State::Paused
        ) {
            return Ok(rec);
        }
        let status = self.shim_status(&rec.id);
        let alive = self.shim_running(&rec.id);
        let mut rec = rec;
        if let Some(s) = &status {
            // Restarts the shim made since we last looked, as Restart + Start pairs, so the
            // record's count matches what happened (one still in progress is left to below).
            let done = s.restart_count - u32::from(s.state == "restarting" && s.restart_count > 0);
            let pid = if s.pid > 0 { s.pid } else { rec.pid };
            let start = StateChange {
                pid: Some(pid),
                ..Default::default()
            };
            // Bounded: a transition another process refused leaves the record as it was.
            for _ in 0..2 * (done.saturating_sub(rec.restart_count) + 1) {
                if rec.restart_count >= done {
                    break;
                }
                rec = match rec.state {
                    // Entering `restarting` counts the restart; leaving it does not.
                    State::Running => {
                        self.observe(&rec.id, Transition::Restart, StateChange::default())?;
                        self.observe(&rec.id, Transition::Start, start.clone())?
                    }
                    State::Restarting => self.observe(&rec.id, Transition::Start, start.clone())?,
                    _ => break,
                };
            }
        }
        let change = match &status {
            Some(s) if s.state == "exited" => Some((
                Transition::Exit,
                StateChange {
                    exit_code: s.exit_code,
                    error: s.error.clone(),
                    ..Default::default()
                },
            )),
            Some(s) if s.state == "restarting" && rec.state == State::Running && alive => {
                Some((Transition::Restart, StateChange::default()))
            }
            Some(s) if s.state == "running" && alive && rec.state == State::Restarting => Some((
                Transition::Start,
                StateChange {
                    pid: Some(s.pid),
                    ..Default::default()
                },
            )),
            _ if !alive => Some((
                Transition::Die,
                StateChange {
                    error: Some(
                        "the container's shim is gone; its process is no longer watched".into(),
                    ),
                    ..Default::default()
                },
            )),
            _ => None,
        };
        match change {
            Some((t, c)) => self.observe(&rec.id, t, c),
            None => Ok(rec),
        }
    }

    /// Sends `signal` to the container's process.
    pub fn kill(&self, reference: &str, signal: Signal) -> Result<ContainerRecord> {
        let rec = self.container(reference)?;
        if !matches!(rec.state, State::Running | State::Paused) {
            return Err(EngineError::NotRunning(rec.short_id().to_string()));
        }
        coracle_runtime::container::kill(&self.runtime_root(), &rec.id, signal, false)
            .map_err(|e| EngineError::Runtime(format!("kill {}: {e}", rec.short_id())))?;
        Ok(rec)
    }

    /// Waits until the container is no longer active (or `timeout` passes). Returns the record.
    pub fn wait_exit(&self, id: &str, timeout: Option<Duration>) -> Result<ContainerRecord> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut pause = Backoff::new(Duration::from_millis(50));
        loop {
            let rec = self.refresh(self.store.get(id)?)?;
            if !matches!(
                rec.state,
                State::Running | State::Restarting | State::Paused
            ) {
                return Ok(rec);
            }
            if deadline.is_some_and(|d| Instant::now() > d) {
                return Ok(rec);
            }
            pause.sleep();
        }
    }

    /// `docker stop`: the stop signal, then SIGKILL after `timeout` seconds (default: the
    /// container's StopTimeout, else 10). A manual stop is never undone by a restart policy.
    pub fn stop(&self, reference: &str, timeout: Option<u64>) -> Result<ContainerRecord> {
        let rec = self.container(reference)?;
        if !matches!(
            rec.state,
            State::Running | State::Paused | State::Restarting
        ) {
            return Ok(rec);
        }
        let cfg = self.container_config(&rec)?;
        // The shim sees this before the exit and does not restart.
        let _ = fs::write(self.shim_dir(&rec.id).join("stopped"), b"");
        let signal = cfg
            .config
            .stop_signal
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| {
                crate::spec::parse::parse_signal(s).map_err(|e| EngineError::Invalid(e.to_string()))
            })
            .transpose()?
            .and_then(|n| Signal::try_from(n).ok())
            .unwrap_or(Signal::SIGTERM);
        let timeout = timeout
            .or(cfg.config.stop_timeout.and_then(|t| u64::try_from(t).ok()))
            .unwrap_or(10);
        if rec.state == State::Paused {
            let _ = coracle_runtime::container::resume(&self.runtime_root(), &rec.id);
        }
        if let Err(e) =
            coracle_runtime::container::kill(&self.runtime_root(), &rec.id, signal, false)
        {
            debug!(container = %rec.short_id(), error = %e, "stop signal not delivered");
        }
        let rec = self.wait_exit(&rec.id, Some(Duration::from_secs(timeout)))?;
        let rec = if rec.state.is_active() {
            let _ = coracle_runtime::container::kill(
                &self.runtime_root(),
                &rec.id,
                Signal::SIGKILL,
                true,
            );
            self.wait_exit(&rec.id, Some(Duration::from_secs(10)))?
        } else {
            rec
        };
        self.cleanup(&rec.id)?;
        Ok(rec)
    }

    /// Teardown after the process ended: the runtime's state and cgroup, the network endpoint
    /// and namespace, the root file system mount. Idempotent; goes on past errors and reports
    /// them all. Records the exit if the record still says running.
    ///
    /// Holds the container's lock ([`Engine::lock_container`]): a shim's call-back that
    /// comes late (after `restart` has started the container again) waits for that start,
    /// then finds the container running and leaves it alone.
    pub fn cleanup(&self, id: &str) -> Result<()> {
        // A lock that cannot be taken does not stop the teardown: it goes on unguarded.
        let _lock = self.lock_container(id).unwrap_or_else(|e| {
            warn!(container = %id, error = %e, "tearing down without the container lock");
            None
        });
        self.cleanup_locked(id)
    }

    /// [`Engine::cleanup`] for a caller that holds the container's lock.
    pub(crate) fn cleanup_locked(&self, id: &str) -> Result<()> {
        let rec = self.store.get(id)?;
        let rec = self.refresh(rec)?;
        let mut errors = Vec::new();
        if rec.state.is_active() && rec.state != State::Restarting && self.shim_running(id) {
            // Still running: nothing to clean up yet.
            return Ok(());
        }
        // The runtime: kills anything left (a shim killed with SIGKILL leaves the process) and
        // removes its cgroup and state. Its state directory (<runtime root>/<id>) exists exactly
        // while there is something to delete; the shim removes it after a normal exit. While
        // the shim still runs (finishing after the container's exit) it is left to the shim:
        // deleting it here would race the shim's reaping (cgroups refuse rmdir until then).
        if self.runtime_root().join(id).exists() && !self.shim_running(id) {
            if let Err(e) = coracle_runtime::container::delete(&self.runtime_root(), id, true) {
                errors.push(format!("runtime delete: {e}"));
            }
        }
        // The network.
        let owns_netns = rec
            .extra
            .get("owns_netns")
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        let netns = rec
            .extra
            .get("netns")
            .and_then(|v| v.as_str())
            .map(std::path::PathBuf::from);
        let endpoints: Vec<String> = rec
            .extra
            .get("endpoints")
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|e| e.get("network").and_then(|n| n.as_str()).map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        // When the namespace goes away right after, the kernel can delete the veth pairs
        // with it, off this path: only if no other container (`--network container:`)
        // is still in it.
        let netns_goes_away = owns_netns
            && netns
                .as_ref()
                .is_some_and(|p| p.exists() && !self.netns_shared(id, &p.to_string_lossy()));
        if !endpoints.is_empty() {
            match self.network() {
                Ok(mgr) => {
                    for net in &endpoints {
                        // A teardown that ran before (the shim's call-back, then `rm`) already
                        // removed the endpoint; only what is still connected is disconnected.
                        let connected = match mgr.endpoints(net) {
                            Ok(eps) => eps.iter().any(|e| e.container == id),
                            Err(e) => {
                                errors.push(format!("network {net}: {e}"));
                                continue;
                            }
                        };
                        if connected {
                            let done = if netns_goes_away {
                                mgr.disconnect_before_netns_removal(net, id)
                            } else {
                                mgr.disconnect(net, id)
                            };
                            if let Err(e) = done {
                                errors.push(format!("network {net}: {e}"));
                            }
                        }
                    }
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        if owns_netns {
            if let Some(path) = &netns {
                if path.exists() {
                    if let Err(e) = coracle_network::netns::remove(path) {
                        errors.push(format!("network namespace {}: {e}", path.display()));
                    }
                }
            }
        }
        // The root file system.
        if let Ok(dir) = self.images.snapshotter().dir(id) {
            if let Err(e) = unmount_all(&dir.join("merged")) {
                errors.push(e);
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(EngineError::Teardown {
                id: rec.short_id().to_string(),
                errors,
            })
        }
    }

    /// Waits (at most 5 s) until the container's shim, if one is alive, has exited: after
    /// the container's exit it still deletes the runtime state and removes its sockets,
    /// which must not happen under a new start or a removal. pidfd_open+poll wakes at the
    /// exit; without it, polling.
    pub(crate) fn wait_for_shim_exit(&self, id: &str) {
        let Some(pid) = self.shim_pid(id).filter(|p| shim_alive(*p)) else {
            return;
        };
        let timeout = Duration::from_secs(5);
        if coracle_runtime::sys::raw::wait_pid_exit(pid, timeout).is_err() {
            let deadline = Instant::now() + timeout;
            let mut pause = Backoff::new(Duration::from_millis(50));
            while shim_alive(pid) && Instant::now() < deadline {
                pause.sleep();
            }
        }
    }

    /// Whether another active container is in the network namespace at `path`.
    fn netns_shared(&self, id: &str, path: &str) -> bool {
        match self.store.list(false) {
            Ok(recs) => recs
                .iter()
                .any(|r| r.id != id && r.extra.get("netns").and_then(|v| v.as_str()) == Some(path)),
            // Unknown: assume shared, which only costs the slower teardown.
            Err(_) => true,
        }
    }

    /// [`Engine::cleanup_locked`], logging what failed (for `start`, which holds the lock).
    pub(crate) fn cleanup_quiet(&self, rec: &ContainerRecord) {
        if let Err(e) = self.cleanup_locked(&rec.id) {
            warn!(container = %rec.short_id(), error = %e, "teardown incomplete");
        }
    }

    /// `docker rm`: refuses an active container unless `force` (then kills it first). Removes
    /// everything the container had, from any state, including half-created ones.
    pub fn remove(&self, reference: &str, force: bool, volumes: bool) -> Result<()> {
        let rec = self.container(reference)?;
        if matches!(
            rec.state,
            State::Running | State::Paused | State::Restarting
        ) {
            if !force {
                return Err(EngineError::RemoveRunning {
                    id: rec.short_id().to_string(),
                    state: rec.state,
                });
            }
            // `stopped`: no restart policy brings it back; `removing`: the shim starts no
            // exit command, whose teardown would race the one below (and outlive `rm`).
            for marker in ["stopped", "removing"] {
                let _ = fs::write(self.shim_dir(&rec.id).join(marker), b"");
            }
            if rec.state == State::Paused {
                let _ = coracle_runtime::container::resume(&self.runtime_root(), &rec.id);
            }
            let _ = coracle_runtime::container::kill(
                &self.runtime_root(),
                &rec.id,
                Signal::SIGKILL,
                true,
            );
            self.wait_exit(&rec.id, Some(Duration::from_secs(10)))?;
        }
        if rec.state != State::Removing && rec.state != State::Dead {
            self.store
                .update_state(&rec.id, Transition::Remove, StateChange::default())?;
        }
        // Teardown runs while the shim finishes its own exit work (it deletes the runtime
        // state: see `cleanup`); then the shim is waited for (bounded), since its directory
        // goes next, and whatever runtime state it left is deleted.
        let mut errors = Vec::new();
        if let Err(e) = self.cleanup(&rec.id) {
            errors.push(e.to_string());
        }
        self.wait_for_shim_exit(&rec.id);
        if self.runtime_root().join(&rec.id).exists() {
            if let Err(e) = coracle_runtime::container::delete(&self.runtime_root(), &rec.id, true)
            {
                errors.push(format!("runtime delete: {e}"));
            }
        }
        if let Err(e) = self.images.snapshotter().remove(&rec.id) {
            errors.push(e.to_string());
        }
        for dir in [self.container_dir(&rec.id), self.shim_dir(&rec.id)] {
            if let Err(e) = fs::remove_dir_all(&dir) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    errors.push(format!("removing {}: {e}", dir.display()));
                }
            }
        }
        let refs = self.store.volume_refs(&rec.id).unwrap_or_default();
        if let Err(e) = self.store.remove(&rec.id) {
            errors.push(e.to_string());
        }
        if volumes {
            // `rm -v`: the container's anonymous volumes (named ones stay, as in Docker).
            let cfg = self.container_config(&rec).ok();
            let named: Vec<String> = cfg
                .as_ref()
                .and_then(|c| crate::spec::mounts::mount_requests(c).ok())
                .map(|ms| {
                    ms.into_iter()
                        .filter(|m| !m.source.is_empty())
                        .map(|m| m.source)
                        .collect()
                })
                .unwrap_or_default();
            for r in refs.iter().filter(|r| !named.contains(&r.volume)) {
                if let Ok(v) = self.store.get_volume(&r.volume) {
                    if self.store.remove_volume(&r.volume).is_ok() {
                        let dir = v.mountpoint.parent().unwrap_or(&v.mountpoint).to_path_buf();
                        let _ = fs::remove_dir_all(dir);
                    }
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(EngineError::Teardown {
                id: rec.short_id().to_string(),
                errors,
            })
        }
    }

    pub fn pause(&self, reference: &str) -> Result<ContainerRecord> {
        let rec = self.container(reference)?;
        if rec.state != State::Running {
            return Err(EngineError::NotRunning(rec.short_id().to_string()));
        }
        coracle_runtime::container::pause(&self.runtime_root(), &rec.id)
            .map_err(|e| EngineError::Runtime(e.to_string()))?;
        Ok(self
            .store
            .update_state(&rec.id, Transition::Pause, StateChange::default())?)
    }

    pub fn unpause(&self, reference: &str) -> Result<ContainerRecord> {
        let rec = self.container(reference)?;
        if rec.state != State::Paused {
            return Err(EngineError::Invalid(format!(
                "Container {} is not paused",
                rec.short_id()
            )));
        }
        coracle_runtime::container::resume(&self.runtime_root(), &rec.id)
            .map_err(|e| EngineError::Runtime(e.to_string()))?;
        Ok(self
            .store
            .update_state(&rec.id, Transition::Unpause, StateChange::default())?)
    }

    /// Seconds since the epoch of a recorded time (0 when unset).
    pub fn epoch(t: Option<SystemTime>) -> u64 {
        t.and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs())
    }
}

/// Peels every mount off `path` (lazily), until nothing is mounted there.
fn unmount_all(path: &Path) -> Result<(), String> {
    for _ in 0..64 {
        match umount2(path, MntFlags::MNT_DETACH) {
            Ok(()) => continue,
            Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => return Ok(()),
            Err(e) => return Err(format!("umount2 {}: {e}", path.display())),
        }
    }
    Err(format!(
        "{}: still mounted after 64 unmounts",
        path.display()
    ))
}
