//! Device nodes (the OCI default set plus `linux.devices`) and the /dev symlinks.

use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::MsFlags;
use nix::sys::stat::{makedev, FchmodatFlags, Mode, SFlag};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Spec};

use super::options::parse_options;
use super::resolve::{self, Create};
use super::RootfsError;
use crate::sys::{Syscall, SyscallError};

/// A device node to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DeviceNode {
    pub path: PathBuf,
    pub kind: SFlag,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

impl DeviceNode {
    fn char(path: &str, major: u64, minor: u64) -> DeviceNode {
        DeviceNode {
            path: path.into(),
            kind: SFlag::S_IFCHR,
            major,
            minor,
            mode: 0o666,
            uid: None,
            gid: None,
        }
    }

    /// A `linux.devices` entry; `fileMode` defaults to 0666.
    pub fn from_spec(d: &LinuxDevice) -> Result<DeviceNode, RootfsError> {
        let path = d.path().clone();
        let invalid =
            |reason: String| RootfsError::Invalid(format!("device {}: {reason}", path.display()));
        if !path.is_absolute() || path.file_name().is_none() {
            return Err(invalid("path must be absolute and name a file".into()));
        }
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(invalid(
                    "type \"a\" is only valid in cgroup device rules".into(),
                ))
            }
        };
        let number = |n: i64, what: &str| {
            u64::try_from(n).map_err(|_| invalid(format!("negative {what} {n}")))
        };
        let (major, minor) = (number(d.major(), "major")?, number(d.minor(), "minor")?);
        let mode = d.file_mode().unwrap_or(0o666);
        if mode & !0o7777 != 0 {
            return Err(invalid(format!(
                "fileMode {mode:#o} has bits other than permissions"
            )));
        }
        Ok(DeviceNode {
            path,
            kind,
            major,
            minor,
            mode,
            uid: d.uid(),
            gid: d.gid(),
        })
    }
}

/// The OCI default devices.
pub(super) fn default_devices() -> Vec<DeviceNode> {
    vec![
        DeviceNode::char("/dev/null", 1, 3),
        DeviceNode::char("/dev/zero", 1, 5),
        DeviceNode::char("/dev/full", 1, 7),
        DeviceNode::char("/dev/random", 1, 8),
        DeviceNode::char("/dev/urandom", 1, 9),
        DeviceNode::char("/dev/tty", 5, 0),
    ]
}

/// Devices are created unless /dev is bind-mounted from somewhere (then it already
/// has what its owner put there, and writing into it would change the host): with a
/// /dev tmpfs they are needed, and without any /dev mount the container would
/// otherwise lack them.
pub(super) fn needs_dev_setup(spec: &Spec) -> bool {
    !spec.mounts().iter().flatten().any(|m| {
        let dev = m
            .destination()
            .components()
            .eq(Path::new("/dev").components());
        let opts = parse_options(m.options().as_deref().unwrap_or_default());
        dev && (opts.is_bind() || m.typ().as_deref() == Some("bind"))
    })
}

/// Create the default devices and `extra` (a spec device at a default path replaces
/// the default). A node that already exists in the rootfs is left as it is.
pub(super) fn create_devices(
    sys: &dyn Syscall,
    rootfd: RawFd,
    extra: &[LinuxDevice],
) -> Result<(), RootfsError> {
    let mut nodes = default_devices();
    for d in extra {
        let node = DeviceNode::from_spec(d)?;
        nodes.retain(|n| n.path != node.path);
        nodes.push(node);
    }
    for node in &nodes {
        create_device(sys, rootfd, node)?;
    }
    Ok(())
}

fn create_device(sys: &dyn Syscall, rootfd: RawFd, node: &DeviceNode) -> Result<(), RootfsError> {
    let (Some(parent), Some(name)) = (node.path.parent(), node.path.file_name()) else {
        return Err(RootfsError::Invalid(format!(
            "device path {} names no file",
            node.path.display()
        )));
    };
    let dir = resolve::resolve_in_root(rootfd, parent, Create::Dir)
        .map_err(RootfsError::resolve("device", &node.path))?;
    let device_err = |source| RootfsError::Device {
        path: node.path.clone(),
        source,
    };
    let path = dir.proc_path().join(name);
    match resolve::entry_exists(dir.fd.as_raw_fd(), Path::new(name)) {
        Ok(true) => {
            tracing::debug!(path = ?node.path, "device exists; skipped");
            return Ok(());
        }
        Ok(false) => {}
        Err(e) => return Err(device_err(SyscallError::new("fstatat", &node.path, e))),
    }
    let perm = Mode::from_bits_truncate(node.mode);
    match sys.mknod(&path, node.kind, perm, makedev(node.major, node.minor)) {
        Ok(()) => {
            // mknod's mode went through the umask: set the one asked for.
            nix::sys::stat::fchmodat(
                Some(dir.fd.as_raw_fd()),
                name,
                perm,
                FchmodatFlags::FollowSymlink,
            )
            .map_err(|e| device_err(SyscallError::new("fchmodat", &node.path, e)))?;
            if node.uid.is_some() || node.gid.is_some() {
                sys.chown(&path, node.uid, node.gid).map_err(device_err)?;
            }
            Ok(())
        }
        // In a user namespace mknod of a device is refused: bind the host's node
        // onto an empty file instead (a FIFO never gets here).
        Err(first) if first.errno == Errno::EPERM => {
            let target = resolve::resolve_in_root(rootfd, &node.path, Create::File)
                .map_err(RootfsError::resolve("device", &node.path))?;
            sys.mount(
                Some(&node.path),
                &target.proc_path(),
                None,
                MsFlags::MS_BIND,
                None,
            )
            .map_err(|fallback| RootfsError::MountFallback {
                destination: node.path.clone(),
                first,
                fallback,
            })
        }
        Err(e) => Err(device_err(e)),
    }
}

/// The /dev symlinks every container expects; `kcore` only when the kernel has
/// /proc/kcore. Existing entries are left alone.
pub(super) fn create_symlinks(
    sys: &dyn Syscall,
    rootfd: RawFd,
    kcore: bool,
) -> Result<(), RootfsError> {
    let dev = Path::new("/dev");
    let dir = resolve::resolve_in_root(rootfd, dev, Create::Dir)
        .map_err(RootfsError::resolve("device", dev))?;
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
        ("pts/ptmx", "ptmx"),
    ];
    if kcore {
        links.push(("/proc/kcore", "core"));
    }
    for (target, name) in links {
        super::mounts::symlink_in(sys, dir.fd.as_raw_fd(), Path::new(target), Path::new(name))
            .map_err(|source| RootfsError::Device {
                path: dev.join(name),
                source,
            })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use oci_spec::runtime::{LinuxDeviceBuilder, MountBuilder, SpecBuilder};

    use super::*;

    #[test]
    fn spec_devices_are_checked() {
        let ok = LinuxDeviceBuilder::default()
            .path("/dev/fuse")
            .typ(LinuxDeviceType::C)
            .major(10)
            .minor(229)
            .uid(0u32)
            .build()
            .unwrap();
        let node = DeviceNode::from_spec(&ok).unwrap();
        assert_eq!(
            (node.kind, node.major, node.minor, node.mode),
            (SFlag::S_IFCHR, 10, 229, 0o666)
        );
        let all = LinuxDeviceBuilder::default()
            .path("/dev/x")
            .typ(LinuxDeviceType::A)
            .build()
            .unwrap();
        assert!(DeviceNode::from_spec(&all).is_err());
        let neg = LinuxDeviceBuilder::default()
            .path("/dev/x")
            .typ(LinuxDeviceType::B)
            .major(-1)
            .build()
            .unwrap();
        let err = DeviceNode::from_spec(&neg).unwrap_err();
        assert!(
            err.to_string().contains("/dev/x") && err.to_string().contains("negative"),
            "{err}"
        );
        let rel = LinuxDeviceBuilder::default()
            .path("dev/x")
            .typ(LinuxDeviceType::P)
            .build()
            .unwrap();
        assert!(DeviceNode::from_spec(&rel).is_err());
    }

    #[test]
    fn dev_setup_skipped_only_for_a_bind_mounted_dev() {
        let tmpfs = MountBuilder::default()
            .destination("/dev")
            .typ("tmpfs")
            .build()
            .unwrap();
        let spec = SpecBuilder::default().mounts(vec![tmpfs]).build().unwrap();
        assert!(needs_dev_setup(&spec));
        let spec = SpecBuilder::default().mounts(vec![]).build().unwrap();
        assert!(needs_dev_setup(&spec));
        let bind = MountBuilder::default()
            .destination("/dev/")
            .source("/dev")
            .options(vec!["rbind".to_string()])
            .build()
            .unwrap();
        let spec = SpecBuilder::default().mounts(vec![bind]).build().unwrap();
        assert!(!needs_dev_setup(&spec));
    }
}
