//! One entry of the spec's `mounts`: bind/rbind, cgroup, sysfs and every other file
//! system type, with the target resolved inside the rootfs ([`super::resolve`]).

use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};

use coracle_cgroups::Layout;
use nix::errno::Errno;
use nix::mount::MsFlags;
use nix::sys::statvfs::FsFlags;
use oci_spec::runtime::Mount;

use super::options::{parse_options, MountOptions};
use super::resolve::{self, Create, Resolved};
use super::RootfsError;
use crate::sys::{Syscall, SyscallError};

const WHAT: &str = "mount destination";

/// Refuse entries that cannot be applied, before anything is mounted.
pub(super) fn validate(m: &Mount) -> Result<(), RootfsError> {
    let destination = m.destination();
    let invalid = |reason: &str| RootfsError::InvalidMount {
        destination: destination.clone(),
        reason: reason.to_string(),
    };
    if destination.as_os_str().is_empty() {
        return Err(invalid("empty destination"));
    }
    if destination
        .components()
        .any(|c| c == std::path::Component::ParentDir)
    {
        return Err(invalid("'..' is not allowed in a mount destination"));
    }
    if m.uid_mappings().is_some() || m.gid_mappings().is_some() {
        return Err(invalid(
            "ID-mapped mounts (uidMappings/gidMappings) are not supported",
        ));
    }
    let opts = parse_options(m.options().as_deref().unwrap_or_default());
    let typ = m.typ().as_deref().unwrap_or_default();
    if opts.is_bind() || typ == "bind" {
        if m.source().is_none() {
            return Err(invalid("a bind mount needs a source"));
        }
    } else if typ.is_empty() {
        return Err(invalid("no type and no bind/rbind option"));
    }
    Ok(())
}

/// The flags of the mount holding `fd`, as mount(2) flags. In a user namespace the
/// kernel locks nosuid/nodev/noexec/ro and the atime flags of mounts inherited from
/// the host; a remount that drops them fails with EPERM, so remounts carry them over.
pub(super) fn mount_flags_of(stat: &nix::sys::statvfs::Statvfs) -> MsFlags {
    let f = stat.flags();
    let map = [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ];
    map.iter()
        .filter(|(s, _)| f.contains(*s))
        .fold(MsFlags::empty(), |acc, (_, m)| acc | *m)
}

const ATIME_FLAGS: MsFlags = MsFlags::MS_NOATIME
    .union(MsFlags::MS_NODIRATIME)
    .union(MsFlags::MS_RELATIME)
    .union(MsFlags::MS_STRICTATIME);

/// `flags` plus the locked flags of the existing mount (its atime mode replaces the
/// requested one, since that is locked as a whole).
fn with_locked_flags(flags: MsFlags, existing: MsFlags) -> MsFlags {
    let locked = existing & !MsFlags::MS_RDONLY;
    let keep_ro = existing & MsFlags::MS_RDONLY;
    (flags & !ATIME_FLAGS) | locked | keep_ro
}

/// Re-open a resolved path: after a mount onto it, the old fd still names the
/// directory beneath; remounts and propagation changes need the new mount.
fn reopen(rootfd: RawFd, r: &Resolved, destination: &Path) -> Result<Resolved, RootfsError> {
    resolve::resolve_in_root(rootfd, &r.path, Create::Nothing)
        .map_err(RootfsError::resolve(WHAT, destination))
}

/// The second call a bind mount needs for its flags (the first ignores them). If the
/// kernel refuses because flags of the source mount are locked (user namespace),
/// retry once with those flags kept.
fn remount_bind(
    sys: &dyn Syscall,
    target: &Resolved,
    flags: MsFlags,
    destination: &Path,
) -> Result<(), RootfsError> {
    let base = MsFlags::MS_REMOUNT | MsFlags::MS_BIND;
    let path = target.proc_path();
    match sys.mount(None, &path, None, base | flags, None) {
        Ok(()) => Ok(()),
        Err(first) if first.errno == Errno::EPERM => {
            let stat = nix::sys::statvfs::fstatvfs(&target.fd)
                .map_err(|e| SyscallError::new("fstatvfs", &target.path, e))
                .map_err(RootfsError::mount(destination))?;
            let retry = with_locked_flags(flags, mount_flags_of(&stat));
            if retry == flags {
                return Err(RootfsError::mount(destination)(first));
            }
            tracing::debug!(
                ?destination,
                ?retry,
                "remount refused, retrying with the mount's locked flags"
            );
            sys.mount(None, &path, None, base | retry, None)
                .map_err(|fallback| RootfsError::MountFallback {
                    destination: destination.into(),
                    first,
                    fallback,
                })
        }
        Err(e) => Err(RootfsError::mount(destination)(e)),
    }
}

/// Propagation options, each its own call: the kernel takes a propagation change
/// only alone (any other flag in the same call makes it a different operation).
fn apply_propagation(
    sys: &dyn Syscall,
    target: &Resolved,
    opts: &MountOptions,
    destination: &Path,
) -> Result<(), RootfsError> {
    for p in &opts.propagation {
        sys.mount(None, &target.proc_path(), None, *p, None)
            .map_err(RootfsError::mount(destination))?;
    }
    Ok(())
}

/// Mount one spec entry inside the rootfs open at `rootfd`.
pub(super) fn mount_entry(
    sys: &dyn Syscall,
    rootfd: RawFd,
    m: &Mount,
    cgroups: Option<&Layout>,
) -> Result<(), RootfsError> {
    validate(m)?;
    let destination = m.destination().as_path();
    let opts = parse_options(m.options().as_deref().unwrap_or_default());
    let typ = m.typ().as_deref().unwrap_or_default();
    tracing::debug!(?destination, typ, ?opts, "mount entry");
    if opts.is_bind() || typ == "bind" {
        let source = m.source().as_deref().unwrap_or(Path::new(""));
        return bind_mount(sys, rootfd, source, destination, &opts);
    }
    match typ {
        "cgroup" => cgroup_mount(sys, rootfd, destination, &opts, cgroups),
        "sysfs" => fs_mount_or_bind(sys, rootfd, m, &opts, Path::new("/sys")),
        _ => {
            let target = resolve::resolve_in_root(rootfd, destination, Create::Dir)
                .map_err(RootfsError::resolve(WHAT, destination))?;
            fs_mount(sys, &target, m, &opts).map_err(RootfsError::mount(destination))?;
            if !opts.propagation.is_empty() {
                apply_propagation(
                    sys,
                    &reopen(rootfd, &target, destination)?,
                    &opts,
                    destination,
                )?;
            }
            Ok(())
        }
    }
}

fn fs_mount(
    sys: &dyn Syscall,
    target: &Resolved,
    m: &Mount,
    opts: &MountOptions,
) -> Result<(), SyscallError> {
    let typ = m.typ().as_deref().unwrap_or_default();
    let source = m.source().clone().unwrap_or_else(|| PathBuf::from(typ));
    sys.mount(
        Some(&source),
        &target.proc_path(),
        Some(typ),
        opts.flags,
        opts.data(),
    )
}

/// A file system mount that may be refused in a user namespace (sysfs without its
/// own network namespace): fall back to a recursive bind of the host's `host_path`.
fn fs_mount_or_bind(
    sys: &dyn Syscall,
    rootfd: RawFd,
    m: &Mount,
    opts: &MountOptions,
    host_path: &Path,
) -> Result<(), RootfsError> {
    let destination = m.destination().as_path();
    let target = resolve::resolve_in_root(rootfd, destination, Create::Dir)
        .map_err(RootfsError::resolve(WHAT, destination))?;
    match fs_mount(sys, &target, m, opts) {
        Ok(()) => {}
        Err(first) if first.errno == Errno::EPERM => {
            tracing::debug!(?destination, %first, "mount refused; binding the host's {}", host_path.display());
            bind_fallback(
                sys,
                rootfd,
                &target,
                host_path,
                opts.flags,
                destination,
                first,
            )?;
        }
        Err(e) => return Err(RootfsError::mount(destination)(e)),
    }
    if !opts.propagation.is_empty() {
        apply_propagation(
            sys,
            &reopen(rootfd, &target, destination)?,
            opts,
            destination,
        )?;
    }
    Ok(())
}

/// Recursive bind of `host_path` onto `target` plus the remount for `flags`, after
/// the direct mount failed with `first` (kept in the error if this fails too).
fn bind_fallback(
    sys: &dyn Syscall,
    rootfd: RawFd,
    target: &Resolved,
    host_path: &Path,
    flags: MsFlags,
    destination: &Path,
    first: SyscallError,
) -> Result<(), RootfsError> {
    let bind = MsFlags::MS_BIND | MsFlags::MS_REC;
    if let Err(fallback) = sys.mount(Some(host_path), &target.proc_path(), None, bind, None) {
        return Err(RootfsError::MountFallback {
            destination: destination.into(),
            first,
            fallback,
        });
    }
    let flags = flags & !(MsFlags::MS_BIND | MsFlags::MS_REC);
    if !flags.is_empty() {
        remount_bind(
            sys,
            &reopen(rootfd, target, destination)?,
            flags,
            destination,
        )?;
    }
    Ok(())
}

fn bind_mount(
    sys: &dyn Syscall,
    rootfd: RawFd,
    source: &Path,
    destination: &Path,
    opts: &MountOptions,
) -> Result<(), RootfsError> {
    // The source is the host's (or the bundle's, when relative): the runtime's
    // caller chose it, the image did not, so it is taken as given.
    let meta = std::fs::metadata(source).map_err(|e| {
        let errno = Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
        RootfsError::mount(destination)(SyscallError::new("stat", source, errno))
    })?;
    let create = if meta.is_dir() {
        Create::Dir
    } else {
        Create::File
    };
    let target = resolve::resolve_in_root(rootfd, destination, create)
        .map_err(RootfsError::resolve(WHAT, destination))?;
    let flags = MsFlags::MS_BIND | (opts.flags & MsFlags::MS_REC);
    sys.mount(Some(source), &target.proc_path(), None, flags, None)
        .map_err(RootfsError::mount(destination))?;
    let remount = opts.remount_flags();
    if remount.is_empty() && opts.propagation.is_empty() {
        return Ok(());
    }
    let mounted = reopen(rootfd, &target, destination)?;
    if !remount.is_empty() {
        remount_bind(sys, &mounted, remount, destination)?;
    }
    apply_propagation(sys, &mounted, opts, destination)
}

/// `type: cgroup`: the host's layout decides what is mounted.
fn cgroup_mount(
    sys: &dyn Syscall,
    rootfd: RawFd,
    destination: &Path,
    opts: &MountOptions,
    cgroups: Option<&Layout>,
) -> Result<(), RootfsError> {
    let target = resolve::resolve_in_root(rootfd, destination, Create::Dir)
        .map_err(RootfsError::resolve(WHAT, destination))?;
    match cgroups {
        Some(Layout::V1 { hierarchies }) => {
            cgroup_v1(sys, rootfd, &target, destination, opts, hierarchies)?
        }
        Some(Layout::V2 { root }) => {
            let cg2 = Path::new("cgroup2");
            let res = sys.mount(
                Some(cg2),
                &target.proc_path(),
                Some("cgroup2"),
                opts.flags,
                opts.data(),
            );
            match res {
                Ok(()) => {}
                // EPERM: a user namespace without its own cgroup namespace; EBUSY:
                // cgroup2 not mountable here. The host's hierarchy is bound instead.
                Err(first) if matches!(first.errno, Errno::EPERM | Errno::EBUSY) => {
                    bind_fallback(sys, rootfd, &target, root, opts.flags, destination, first)?
                }
                Err(e) => return Err(RootfsError::mount(destination)(e)),
            }
        }
        None => {
            // Unknown layout: show the host's cgroup tree as it is.
            let bind = MsFlags::MS_BIND | MsFlags::MS_REC;
            let host = Path::new("/sys/fs/cgroup");
            sys.mount(Some(host), &target.proc_path(), None, bind, None)
                .map_err(RootfsError::mount(destination))?;
            let flags = opts.remount_flags();
            if !flags.is_empty() {
                remount_bind(
                    sys,
                    &reopen(rootfd, &target, destination)?,
                    flags,
                    destination,
                )?;
            }
        }
    }
    if !opts.propagation.is_empty() {
        apply_propagation(
            sys,
            &reopen(rootfd, &target, destination)?,
            opts,
            destination,
        )?;
    }
    Ok(())
}

/// cgroup v1: a tmpfs at the destination, one `cgroup` mount per host hierarchy in
/// it (named like the host's directory), symlinks for co-mounted controllers
/// (`cpu -> cpu,cpuacct`), and the tmpfs made read-only last if asked (the
/// directories and symlinks must be created first).
fn cgroup_v1(
    sys: &dyn Syscall,
    rootfd: RawFd,
    target: &Resolved,
    destination: &Path,
    opts: &MountOptions,
    hierarchies: &[coracle_cgroups::Hierarchy],
) -> Result<(), RootfsError> {
    let ro = opts.flags.contains(MsFlags::MS_RDONLY);
    let tmpfs_flags = (opts.flags & !MsFlags::MS_RDONLY)
        | MsFlags::MS_NOSUID
        | MsFlags::MS_NODEV
        | MsFlags::MS_NOEXEC;
    sys.mount(
        Some(Path::new("tmpfs")),
        &target.proc_path(),
        Some("tmpfs"),
        tmpfs_flags,
        Some("mode=755"),
    )
    .map_err(RootfsError::mount(destination))?;
    let tmpfs = reopen(rootfd, target, destination)?;
    let sub_flags = opts.flags | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    for h in hierarchies {
        let Some(name) = h.mount_point.file_name() else {
            continue;
        };
        let sub_dest = destination.join(name);
        let sub = resolve::resolve_in_root(rootfd, &sub_dest, Create::Dir)
            .map_err(RootfsError::resolve(WHAT, &sub_dest))?;
        let res = if h.unified {
            sys.mount(
                Some(Path::new("cgroup2")),
                &sub.proc_path(),
                Some("cgroup2"),
                sub_flags,
                None,
            )
        } else {
            let data = h.controllers.join(",");
            sys.mount(
                Some(Path::new("cgroup")),
                &sub.proc_path(),
                Some("cgroup"),
                sub_flags,
                Some(&data),
            )
        };
        if let Err(first) = res {
            // E.g. EPERM in a user namespace: show the host's hierarchy instead.
            tracing::debug!(?sub_dest, %first, "cgroup mount refused; binding the host hierarchy");
            bind_fallback(
                sys,
                rootfd,
                &sub,
                &h.mount_point,
                sub_flags,
                &sub_dest,
                first,
            )?;
        }
        let name_str = name.to_string_lossy();
        if name_str.contains(',') {
            for part in name_str.split(',').filter(|p| !p.is_empty()) {
                symlink_in(sys, tmpfs.fd.as_raw_fd(), Path::new(name), Path::new(part))
                    .map_err(RootfsError::mount(&destination.join(part)))?;
            }
        }
    }
    if ro {
        remount_bind(sys, &tmpfs, tmpfs_flags | MsFlags::MS_RDONLY, destination)?;
    }
    Ok(())
}

/// `name -> target` in the directory `dirfd`, unless `name` already exists.
pub(super) fn symlink_in(
    sys: &dyn Syscall,
    dirfd: RawFd,
    target: &Path,
    name: &Path,
) -> Result<(), SyscallError> {
    let link = resolve::proc_fd_path(dirfd).join(name);
    match resolve::entry_exists(dirfd, name) {
        Ok(true) => return Ok(()),
        Ok(false) => {}
        Err(e) => return Err(SyscallError::new("fstatat", &link, e)),
    }
    match sys.symlink(target, &link) {
        Err(e) if e.errno == Errno::EEXIST => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locked_flags_are_kept_and_atime_replaced() {
        let requested = MsFlags::MS_RDONLY | MsFlags::MS_STRICTATIME;
        let existing = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_RELATIME;
        assert_eq!(
            with_locked_flags(requested, existing),
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_RELATIME
        );
        assert_eq!(
            with_locked_flags(MsFlags::empty(), MsFlags::MS_RDONLY),
            MsFlags::MS_RDONLY
        );
    }

    #[test]
    fn validate_refuses_bad_entries() {
        use oci_spec::runtime::MountBuilder;
        let bind_no_source = MountBuilder::default()
            .destination("/x")
            .options(vec!["bind".to_string()])
            .build()
            .unwrap();
        let err = validate(&bind_no_source).unwrap_err();
        assert!(
            err.to_string().contains("/x") && err.to_string().contains("source"),
            "{err}"
        );
        let no_type = MountBuilder::default()
            .destination("/y")
            .source("/tmp")
            .build()
            .unwrap();
        assert!(validate(&no_type)
            .unwrap_err()
            .to_string()
            .contains("no type"));
        let dotdot = MountBuilder::default()
            .destination("/a/../b")
            .typ("tmpfs")
            .build()
            .unwrap();
        assert!(validate(&dotdot).unwrap_err().to_string().contains("'..'"));
    }
}
