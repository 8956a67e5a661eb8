//! Resolving a path (a mount destination, a device node) inside the container's root
//! file system without ever following a symlink out of it.
//!
//! The root file system comes from an image: any of its entries may be a symlink
//! planted to redirect a mount onto the host (`/etc/evil -> ../../../../tmp`, the
//! classic runc escapes). So the path is walked one component at a time, relative to
//! an fd of the root, with `openat2(O_PATH|O_NOFOLLOW, RESOLVE_IN_ROOT|
//! RESOLVE_NO_MAGICLINKS|RESOLVE_NO_SYMLINKS)`: the kernel never follows a symlink for
//! us; we read each one and apply the policy:
//!
//! - an **absolute** symlink is resolved as if the root file system were `/`
//!   (Debian's `/var/run -> /run` is legitimate; a `..` above the root stays at the
//!   root, exactly what `RESOLVE_IN_ROOT` does);
//! - a **relative** symlink whose target, taken lexically from the symlink's own
//!   directory, climbs above the root is **refused**: no image needs that, and
//!   accepting it would only hide an attack;
//! - `..` in the requested path itself is refused.
//!
//! Missing components are created on the way (directories; an empty file for the
//! last one when the mount source is a file) with `mkdirat`/`openat2(O_CREAT)`
//! relative to the already-opened parent. The caller then mounts onto
//! `/proc/self/fd/<fd>` of the returned O_PATH fd ([`Resolved::proc_path`]), so a
//! symlink swapped in after the check cannot redirect the mount.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::sys::stat::{Mode, SFlag};

use crate::sys::raw;
use crate::sys::SyscallError;

/// Linux's own limit on symlinks followed in one lookup.
const MAX_SYMLINKS: usize = 40;

/// The kernel may not follow anything: every symlink is handled here, and a symlink
/// appearing where none was (a race) fails with ELOOP instead of being followed.
const STRICT: u64 = raw::RESOLVE_IN_ROOT | raw::RESOLVE_NO_MAGICLINKS | raw::RESOLVE_NO_SYMLINKS;

/// What to create when the path (or part of it) is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    /// Nothing: a missing component is an ENOENT error.
    Nothing,
    /// Directories all the way (a mount of a directory or a file system).
    Dir,
    /// Directories for the parents, an empty regular file for the last component
    /// (a bind mount of a file, a device node bind).
    File,
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("'..' is not allowed in the path")]
    DotDot,
    #[error(
        "symlink {symlink} -> {target} points outside the root file system (relative \
         symlinks may not climb above the root); refusing to follow it"
    )]
    Escape { symlink: PathBuf, target: PathBuf },
    #[error("too many levels of symlinks at {symlink}")]
    TooManySymlinks { symlink: PathBuf },
    #[error("{0}")]
    Sys(#[from] SyscallError),
}

/// A path opened inside the root: an O_PATH fd and its in-root path (absolute,
/// without symlinks, e.g. `/run/foo` for a requested `/var/run/foo`).
#[derive(Debug)]
pub struct Resolved {
    pub fd: OwnedFd,
    pub path: PathBuf,
}

impl Resolved {
    /// `/proc/self/fd/<fd>`: the path to hand to mount(2) and friends. It names exactly
    /// the inode that was checked, whatever happens to the path afterwards.
    pub fn proc_path(&self) -> PathBuf {
        proc_fd_path(self.fd.as_raw_fd())
    }
}

pub fn proc_fd_path(fd: RawFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{fd}"))
}

/// Open a directory (the root file system) as an O_PATH fd to resolve paths under.
pub fn open_dir(path: &Path) -> Result<OwnedFd, SyscallError> {
    raw::openat2(libc::AT_FDCWD, path, libc::O_PATH | libc::O_DIRECTORY, 0, 0)
        .map_err(|e| SyscallError::new("openat2", path, e))
}

fn in_root_path(parts: &[OsString]) -> PathBuf {
    let mut p = PathBuf::from("/");
    p.extend(parts);
    p
}

/// The relative path handed to openat2 for `parts` ("." for the root itself).
fn rel_path(parts: &[OsString]) -> PathBuf {
    if parts.is_empty() {
        PathBuf::from(".")
    } else {
        parts.iter().collect()
    }
}

fn open_strict(root: RawFd, parts: &[OsString]) -> Result<OwnedFd, SyscallError> {
    raw::openat2(
        root,
        &rel_path(parts),
        libc::O_PATH | libc::O_NOFOLLOW,
        0,
        STRICT,
    )
    .map_err(|e| SyscallError::new("openat2", in_root_path(parts), e))
}

/// Would `target`, read lexically from the directory `dir` (in-root components),
/// climb above the root?
fn climbs_above_root(dir: &[OsString], target: &Path) -> bool {
    let mut depth = dir.len();
    for c in target.components() {
        match c {
            Component::ParentDir => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return true,
            },
            Component::Normal(_) => depth += 1,
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    false
}

/// Create the missing component `name` under the in-root directory `parent`.
fn create_missing(
    root: RawFd,
    parent: &[OsString],
    name: &OsStr,
    file: bool,
) -> Result<(), SyscallError> {
    let parent_fd = open_strict(root, parent)?;
    let mut path = parent.to_vec();
    path.push(name.to_os_string());
    let result = if file {
        // O_EXCL|O_NOFOLLOW: never open (and so never truncate) something that
        // appeared meanwhile, and never follow a symlink planted there.
        let flags = libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_NOFOLLOW;
        raw::openat2(parent_fd.as_raw_fd(), Path::new(name), flags, 0o644, STRICT)
            .map(drop)
            .map_err(|e| ("openat2", e))
    } else {
        nix::sys::stat::mkdirat(
            Some(parent_fd.as_raw_fd()),
            name,
            Mode::from_bits_truncate(0o755),
        )
        .map_err(|e| ("mkdirat", e))
    };
    match result {
        // Created by someone else in between: the next open checks what it is.
        Ok(()) | Err((_, Errno::EEXIST)) => Ok(()),
        Err((syscall, e)) => Err(SyscallError::new(syscall, in_root_path(&path), e)),
    }
}

/// Resolve `path` inside the root open at `root`, creating what is missing as
/// `create` says. See the module documentation for the symlink policy.
pub fn resolve_in_root(root: RawFd, path: &Path, create: Create) -> Result<Resolved, ResolveError> {
    let mut pending: VecDeque<OsString> = VecDeque::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => pending.push_back(n.to_os_string()),
            Component::ParentDir => return Err(ResolveError::DotDot),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    // In-root components resolved so far: each one exists and is not a symlink.
    let mut resolved: Vec<OsString> = Vec::new();
    let mut symlinks = 0usize;
    while let Some(name) = pending.pop_front() {
        if name == ".." {
            // Only symlink targets put ".." here. Relative ones were checked not to
            // climb above the root, so at the root this is an absolute symlink's
            // "/..": it stays at the root, as in RESOLVE_IN_ROOT.
            resolved.pop();
            continue;
        }
        if name == "." {
            continue;
        }
        let mut candidate = resolved.clone();
        candidate.push(name.clone());
        let fd = match open_strict(root, &candidate) {
            Ok(fd) => fd,
            Err(e) if e.errno == Errno::ENOENT && create != Create::Nothing => {
                let file = create == Create::File && pending.is_empty();
                create_missing(root, &resolved, &name, file)?;
                open_strict(root, &candidate)?
            }
            Err(e) => return Err(e.into()),
        };
        let stat = nix::sys::stat::fstat(fd.as_raw_fd())
            .map_err(|e| SyscallError::new("fstat", in_root_path(&candidate), e))?;
        if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT != SFlag::S_IFLNK {
            resolved = candidate;
            continue;
        }
        let link = in_root_path(&candidate);
        symlinks += 1;
        if symlinks > MAX_SYMLINKS {
            return Err(ResolveError::TooManySymlinks { symlink: link });
        }
        let target = nix::fcntl::readlinkat(Some(fd.as_raw_fd()), "")
            .map(PathBuf::from)
            .map_err(|e| SyscallError::new("readlinkat", &link, e))?;
        if target.is_absolute() {
            resolved.clear();
        } else if climbs_above_root(&resolved, &target) {
            return Err(ResolveError::Escape {
                symlink: link,
                target,
            });
        }
        for c in target.components().rev() {
            match c {
                Component::Normal(n) => pending.push_front(n.to_os_string()),
                Component::ParentDir => pending.push_front("..".into()),
                Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            }
        }
    }
    let fd = open_strict(root, &resolved)?;
    Ok(Resolved {
        fd,
        path: in_root_path(&resolved),
    })
}

/// Does `path` exist inside the root (symlinks resolved by the same policy)?
pub fn exists_in_root(root: RawFd, path: &Path) -> Result<bool, ResolveError> {
    match resolve_in_root(root, path, Create::Nothing) {
        Ok(_) => Ok(true),
        Err(ResolveError::Sys(e)) if e.errno == Errno::ENOENT => Ok(false),
        Err(e) => Err(e),
    }
}

/// The file type of an opened O_PATH fd.
pub fn file_type(fd: RawFd) -> Result<SFlag, Errno> {
    let st = nix::sys::stat::fstat(fd)?;
    Ok(SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT)
}

/// Is there an entry `name` (not followed if a symlink) in the directory `dirfd`?
pub fn entry_exists(dirfd: RawFd, name: &Path) -> Result<bool, Errno> {
    match nix::sys::stat::fstatat(Some(dirfd), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(_) => Ok(true),
        Err(Errno::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::symlink;

    use super::*;

    fn root() -> (tempfile::TempDir, PathBuf, OwnedFd) {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        fs::create_dir(&rootfs).unwrap();
        let fd = open_dir(&rootfs).unwrap();
        (dir, rootfs, fd)
    }

    fn real(r: &Resolved) -> PathBuf {
        fs::read_link(r.proc_path()).unwrap()
    }

    #[test]
    fn creates_missing_directories() {
        let (_d, rootfs, fd) = root();
        let r = resolve_in_root(fd.as_raw_fd(), Path::new("/a/b/c"), Create::Dir).unwrap();
        assert_eq!(r.path, Path::new("/a/b/c"));
        assert_eq!(real(&r), rootfs.join("a/b/c"));
        assert!(rootfs.join("a/b/c").is_dir());
    }

    #[test]
    fn creates_an_empty_file_for_file_sources() {
        let (_d, rootfs, fd) = root();
        let r =
            resolve_in_root(fd.as_raw_fd(), Path::new("etc/resolv.conf"), Create::File).unwrap();
        assert_eq!(r.path, Path::new("/etc/resolv.conf"));
        let meta = fs::metadata(rootfs.join("etc/resolv.conf")).unwrap();
        assert!(meta.is_file() && meta.len() == 0);
        assert!(rootfs.join("etc").is_dir());
    }

    #[test]
    fn root_itself() {
        let (_d, rootfs, fd) = root();
        let r = resolve_in_root(fd.as_raw_fd(), Path::new("/"), Create::Nothing).unwrap();
        assert_eq!(r.path, Path::new("/"));
        assert_eq!(real(&r), rootfs);
    }

    #[test]
    fn absolute_symlink_is_resolved_inside_the_root() {
        let (_d, rootfs, fd) = root();
        fs::create_dir_all(rootfs.join("var")).unwrap();
        symlink("/run", rootfs.join("var/run")).unwrap();
        let r = resolve_in_root(fd.as_raw_fd(), Path::new("/var/run/foo"), Create::Dir).unwrap();
        assert_eq!(r.path, Path::new("/run/foo"));
        assert_eq!(real(&r), rootfs.join("run/foo"));
        // "/.." of an absolute target stays at the root, as RESOLVE_IN_ROOT does.
        symlink("/../../../etc", rootfs.join("up")).unwrap();
        let r = resolve_in_root(fd.as_raw_fd(), Path::new("/up/x"), Create::Dir).unwrap();
        assert_eq!(r.path, Path::new("/etc/x"));
        assert_eq!(real(&r), rootfs.join("etc/x"));
    }

    #[test]
    fn relative_symlink_inside_the_root_is_followed() {
        let (_d, rootfs, fd) = root();
        fs::create_dir_all(rootfs.join("usr/lib")).unwrap();
        fs::create_dir_all(rootfs.join("usr/share")).unwrap();
        symlink("usr/lib", rootfs.join("lib")).unwrap();
        symlink("../share", rootfs.join("usr/lib/data")).unwrap();
        let r = resolve_in_root(fd.as_raw_fd(), Path::new("/lib/data/x"), Create::Dir).unwrap();
        assert_eq!(r.path, Path::new("/usr/share/x"));
        assert_eq!(real(&r), rootfs.join("usr/share/x"));
    }

    #[test]
    fn relative_symlink_escaping_the_root_is_refused() {
        let (d, rootfs, fd) = root();
        fs::create_dir_all(rootfs.join("etc")).unwrap();
        symlink("../../../../tmp", rootfs.join("etc/evil")).unwrap();
        let err =
            resolve_in_root(fd.as_raw_fd(), Path::new("/etc/evil/x"), Create::Dir).unwrap_err();
        match &err {
            ResolveError::Escape { symlink, target } => {
                assert_eq!(symlink, Path::new("/etc/evil"));
                assert_eq!(target, Path::new("../../../../tmp"));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.to_string().contains("/etc/evil"), "{err}");
        // Nothing was created next to the rootfs.
        assert!(!d.path().join("x").exists());
        // Just one level above the root is refused too.
        symlink("..", rootfs.join("etc/up")).unwrap();
        let err = resolve_in_root(fd.as_raw_fd(), Path::new("/etc/up/up"), Create::Dir);
        assert!(err.is_ok(), "etc/up -> .. is the root: fine");
        symlink("../..", rootfs.join("etc/up2")).unwrap();
        let err = resolve_in_root(fd.as_raw_fd(), Path::new("/etc/up2"), Create::Dir).unwrap_err();
        assert!(matches!(err, ResolveError::Escape { .. }), "{err:?}");
    }

    #[test]
    fn dotdot_in_the_path_is_refused() {
        let (_d, _rootfs, fd) = root();
        let err =
            resolve_in_root(fd.as_raw_fd(), Path::new("/a/../../etc"), Create::Dir).unwrap_err();
        assert!(matches!(err, ResolveError::DotDot));
    }

    #[test]
    fn symlink_loops_end() {
        let (_d, rootfs, fd) = root();
        symlink("b", rootfs.join("a")).unwrap();
        symlink("a", rootfs.join("b")).unwrap();
        let err = resolve_in_root(fd.as_raw_fd(), Path::new("/a/x"), Create::Dir).unwrap_err();
        assert!(
            matches!(err, ResolveError::TooManySymlinks { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn missing_without_create_and_file_in_the_way() {
        let (_d, rootfs, fd) = root();
        let err = resolve_in_root(fd.as_raw_fd(), Path::new("/nope"), Create::Nothing).unwrap_err();
        assert!(
            matches!(&err, ResolveError::Sys(e) if e.errno == Errno::ENOENT),
            "{err:?}"
        );
        assert!(!exists_in_root(fd.as_raw_fd(), Path::new("/nope")).unwrap());
        fs::write(rootfs.join("file"), b"x").unwrap();
        assert!(exists_in_root(fd.as_raw_fd(), Path::new("/file")).unwrap());
        let err = resolve_in_root(fd.as_raw_fd(), Path::new("/file/sub"), Create::Dir).unwrap_err();
        assert!(
            matches!(&err, ResolveError::Sys(e) if e.errno == Errno::ENOTDIR),
            "{err:?}"
        );
    }

    #[test]
    fn dangling_symlink_target_is_created_inside() {
        let (_d, rootfs, fd) = root();
        symlink("/data/file", rootfs.join("link")).unwrap();
        let r = resolve_in_root(fd.as_raw_fd(), Path::new("/link"), Create::File).unwrap();
        assert_eq!(r.path, Path::new("/data/file"));
        assert!(rootfs.join("data/file").is_file());
    }

    #[test]
    fn lexical_climb_check() {
        let dir: Vec<OsString> = vec!["etc".into()];
        assert!(!climbs_above_root(&dir, Path::new("..")));
        assert!(climbs_above_root(&dir, Path::new("../..")));
        assert!(!climbs_above_root(&dir, Path::new("a/../../b")));
        assert!(climbs_above_root(&dir, Path::new("a/../../../b")));
        assert!(!climbs_above_root(&[], Path::new("./x")));
    }
}
