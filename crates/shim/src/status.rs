//! `<state-dir>/status.json`: what the engine reads about the container.

use std::io::Write;
use std::path::Path;

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Status {
    /// "running", "restarting" or "exited".
    pub state: String,
    /// The container's init on the host (0 while restarting or after exit).
    pub pid: i32,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// The last run's exit code (128 + signal when killed by a signal).
    pub exit_code: Option<i32>,
    pub oom_killed: bool,
    pub restart_count: u32,
    pub error: Option<String>,
}

/// Write `bytes` to `<path>.tmp`, fsync it, rename it over `path`, fsync the
/// directory: a reader (or a crash) sees the old file or the new one, never a torn one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

impl Status {
    pub fn save(&self, state_dir: &Path) -> std::io::Result<()> {
        let mut text = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        text.push(b'\n');
        write_atomic(&state_dir.join("status.json"), &text)
    }
}
