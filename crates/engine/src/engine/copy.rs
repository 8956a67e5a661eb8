//! `cp`: files between a container's root file system and the host.
//!
//! A running container can change its own files while we copy, so nothing inside the
//! container is reached through a host path. The starting point is opened with
//! `openat2(RESOLVE_IN_ROOT)` on the root file system (symlinks resolve as the container sees
//! them and cannot climb out); below it every entry is opened by name relative to its
//! directory's fd with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS` and `O_NOFOLLOW`, so a symlink
//! swapped in half-way is refused instead of followed. Symlinks are copied as symlinks.
//! Host paths are the user's own and are used as given.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io;
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use coracle_image::snapshot;
use coracle_runtime::sys::raw::{
    openat2, RESOLVE_BENEATH, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS,
};
use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::sys::stat::{fstatat, Mode, SFlag};

use super::start::is_mounted;
use super::{Engine, EngineError, Result};

const BENEATH: u64 = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;

fn cp_err(what: &str, path: &Path, e: impl std::fmt::Display) -> EngineError {
    EngineError::Invalid(format!("cp: {what} {}: {e}", path.display()))
}

fn open_beneath(
    dir: RawFd,
    name: &Path,
    flags: i32,
    mode: u32,
) -> std::result::Result<OwnedFd, Errno> {
    openat2(dir, name, flags | libc::O_NOFOLLOW, mode, BENEATH)
}

impl Engine {
    /// Runs `f` with an fd of the container's root file system, mounting the snapshot for the
    /// duration when the container is not running.
    fn with_rootfs<T>(&self, reference: &str, f: impl FnOnce(&OwnedFd) -> Result<T>) -> Result<T> {
        let rec = self.container(reference)?;
        let spec = self.snapshot_spec(&rec)?;
        let mounted_here = !is_mounted(&spec.merged);
        if mounted_here {
            snapshot::mount(&spec, &spec.merged)?;
        }
        let result = (|| {
            let root = openat2(
                libc::AT_FDCWD,
                &spec.merged,
                libc::O_PATH | libc::O_DIRECTORY,
                0,
                0,
            )
            .map_err(|e| cp_err("open the root file system", &spec.merged, e))?;
            f(&root)
        })();
        if mounted_here {
            let _ = nix::mount::umount2(&spec.merged, nix::mount::MntFlags::MNT_DETACH);
        }
        result
    }

    /// `coracle cp CONTAINER:SRC DEST`.
    pub fn copy_from(&self, reference: &str, src: &Path, dest: &Path) -> Result<()> {
        self.with_rootfs(reference, |root| {
            // Copied from its parent directory's fd by name, so a symlink as the last
            // component is copied as a symlink, as docker cp does.
            let parent = open_parent_of(root, src)?;
            let leaf = src
                .file_name()
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("."));
            let target = match fs::symlink_metadata(dest) {
                Ok(m) if m.is_dir() && src.file_name().is_some() => dest.join(&leaf),
                _ => dest.to_path_buf(),
            };
            match fstatat(
                Some(parent.as_raw_fd()),
                &leaf,
                AtFlags::AT_SYMLINK_NOFOLLOW,
            ) {
                Ok(_) => {}
                Err(Errno::ENOENT) => {
                    return Err(EngineError::Invalid(format!(
                        "Could not find the file {} in container {reference}",
                        src.display()
                    )))
                }
                Err(e) => return Err(cp_err("stat", src, e)),
            }
            copy_out(parent.as_raw_fd(), &leaf, &target)
        })
    }

    /// `coracle cp SRC CONTAINER:DEST`.
    pub fn copy_to(&self, reference: &str, src: &Path, dest: &Path) -> Result<()> {
        let meta = fs::symlink_metadata(src).map_err(|e| cp_err("stat", src, e))?;
        self.with_rootfs(reference, |root| {
            // DEST an existing directory: copy into it; otherwise DEST's parent must exist and
            // DEST names the copy.
            let resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
            let (dir, name) = match openat2(
                root.as_raw_fd(),
                dest,
                libc::O_RDONLY | libc::O_DIRECTORY,
                0,
                resolve,
            ) {
                Ok(dir) => {
                    let name = src
                        .file_name()
                        .map(PathBuf::from)
                        .ok_or_else(|| cp_err("copy", src, "no file name"))?;
                    (dir, name)
                }
                Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => {
                    let parent = dest.parent().unwrap_or(Path::new("/"));
                    let dir = openat2(
                        root.as_raw_fd(),
                        parent,
                        libc::O_RDONLY | libc::O_DIRECTORY,
                        0,
                        resolve,
                    )
                    .map_err(|e| cp_err("open the destination directory", parent, e))?;
                    let name = dest
                        .file_name()
                        .map(PathBuf::from)
                        .ok_or_else(|| cp_err("copy to", dest, "no file name"))?;
                    (dir, name)
                }
                Err(e) => return Err(cp_err("open", dest, e)),
            };
            copy_in(src, &meta, dir.as_raw_fd(), &name)
        })
    }
}

/// The directory holding `path` inside the root, opened with RESOLVE_IN_ROOT.
fn open_parent_of(root: &OwnedFd, path: &Path) -> Result<OwnedFd> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("/"));
    openat2(
        root.as_raw_fd(),
        parent,
        libc::O_RDONLY | libc::O_DIRECTORY,
        0,
        RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    )
    .map_err(|e| cp_err("open", parent, e))
}

/// Copies entry `name` of the container directory `dir` to the host path `dest`.
fn copy_out(dir: RawFd, name: &Path, dest: &Path) -> Result<()> {
    let st = fstatat(Some(dir), name, AtFlags::AT_SYMLINK_NOFOLLOW)
        .map_err(|e| cp_err("stat", name, e))?;
    let mode = st.st_mode & 0o7777;
    match SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) {
        SFlag::S_IFDIR => {
            let fd = open_beneath(dir, name, libc::O_RDONLY | libc::O_DIRECTORY, 0)
                .map_err(|e| cp_err("open", name, e))?;
            match fs::DirBuilder::new().mode(mode).create(dest) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dest.is_dir() => {}
                Err(e) => return Err(cp_err("create", dest, e)),
            }
            // Dir takes ownership of the fd (and closes it when dropped).
            let mut entries =
                nix::dir::Dir::from_fd(fd.into_raw_fd()).map_err(|e| cp_err("list", name, e))?;
            let mut names = Vec::new();
            for entry in entries.iter() {
                let entry = entry.map_err(|e| cp_err("list", name, e))?;
                let n = entry.file_name().to_bytes();
                if n != b"." && n != b".." {
                    names.push(PathBuf::from(OsStr::from_bytes(n)));
                }
            }
            let dfd = entries.as_raw_fd();
            for n in names {
                copy_out(dfd, &n, &dest.join(&n))?;
            }
            Ok(())
        }
        SFlag::S_IFREG => {
            let fd =
                open_beneath(dir, name, libc::O_RDONLY, 0).map_err(|e| cp_err("open", name, e))?;
            let mut from = File::from(fd);
            let mut to = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(mode)
                .open(dest)
                .map_err(|e| cp_err("create", dest, e))?;
            io::copy(&mut from, &mut to).map_err(|e| cp_err("write", dest, e))?;
            to.set_permissions(fs::Permissions::from_mode(mode))
                .map_err(|e| cp_err("chmod", dest, e))?;
            Ok(())
        }
        SFlag::S_IFLNK => {
            let target =
                nix::fcntl::readlinkat(Some(dir), name).map_err(|e| cp_err("readlink", name, e))?;
            let _ = fs::remove_file(dest);
            symlink(&target, dest).map_err(|e| cp_err("symlink", dest, e))
        }
        _ => Err(cp_err(
            "copy",
            name,
            "not a regular file, directory or symlink",
        )),
    }
}

/// Copies the host path `src` to entry `name` of the container directory `dir`.
fn copy_in(src: &Path, meta: &fs::Metadata, dir: RawFd, name: &Path) -> Result<()> {
    let mode = meta.permissions().mode() & 0o7777;
    let ft = meta.file_type();
    if ft.is_dir() {
        match nix::sys::stat::mkdirat(Some(dir), name, Mode::from_bits_truncate(mode)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(cp_err("mkdir", name, e)),
        }
        let sub = open_beneath(dir, name, libc::O_RDONLY | libc::O_DIRECTORY, 0)
            .map_err(|e| cp_err("open", name, e))?;
        for entry in fs::read_dir(src).map_err(|e| cp_err("list", src, e))? {
            let entry = entry.map_err(|e| cp_err("list", src, e))?;
            let m =
                fs::symlink_metadata(entry.path()).map_err(|e| cp_err("stat", &entry.path(), e))?;
            copy_in(
                &entry.path(),
                &m,
                sub.as_raw_fd(),
                Path::new(&entry.file_name()),
            )?;
        }
        Ok(())
    } else if ft.is_file() {
        // O_NOFOLLOW: an existing symlink at the destination is refused (ELOOP), not followed.
        let fd = open_beneath(
            dir,
            name,
            libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC,
            mode,
        )
        .map_err(|e| cp_err("create", name, e))?;
        let mut to = File::from(fd);
        let mut from = File::open(src).map_err(|e| cp_err("open", src, e))?;
        io::copy(&mut from, &mut to).map_err(|e| cp_err("write", name, e))?;
        to.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|e| cp_err("chmod", name, e))?;
        Ok(())
    } else if ft.is_symlink() {
        let target = fs::read_link(src).map_err(|e| cp_err("readlink", src, e))?;
        match nix::unistd::symlinkat(&target, Some(dir), name) {
            Ok(()) => Ok(()),
            Err(e) => Err(cp_err("symlink", name, e)),
        }
    } else {
        Err(cp_err(
            "copy",
            src,
            "not a regular file, directory or symlink",
        ))
    }
}
