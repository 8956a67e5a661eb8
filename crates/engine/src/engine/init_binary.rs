//! The PID 1 of `run --init`: a static executable built from init/coracle-init.rs by
//! build.rs, embedded here, and written once to `<root>/init/coracle-init`, from where the
//! spec bind-mounts it read-only into each container that asks for it.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{io_err, EngineError};

/// The executable, as build.rs compiled it; empty on architectures it does not support.
static INIT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/coracle-init"));

/// `<root>/init/coracle-init`, written (or rewritten, when an older build left different
/// bytes there) atomically: a temporary file in the same directory, fsync, rename. Running
/// containers keep the inode they mounted.
pub(crate) fn install(root: &Path) -> Result<PathBuf, EngineError> {
    if INIT.is_empty() {
        return Err(EngineError::Invalid(format!(
            "--init is not supported on {}",
            std::env::consts::ARCH
        )));
    }
    let dir = root.join("init");
    let path = dir.join("coracle-init");
    if fs::read(&path).is_ok_and(|bytes| bytes == INIT) {
        return Ok(path);
    }
    fs::create_dir_all(&dir).map_err(io_err("creating", &dir))?;
    let tmp = dir.join(format!(".coracle-init.{}", std::process::id()));
    let written = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o555)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(INIT)?;
            // The mode given to open is masked by the umask; make it exact.
            f.set_permissions(fs::Permissions::from_mode(0o555))?;
            f.sync_all()
        })
        .map_err(io_err("writing", &tmp))
        .and_then(|()| fs::rename(&tmp, &path).map_err(io_err("renaming into place", &path)));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written.map(|()| path)
}
