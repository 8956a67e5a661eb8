//! Making the prepared rootfs the root: pivot_root, or MS_MOVE + chroot.

use std::path::Path;

use nix::mount::{MntFlags, MsFlags};

use super::RootfsError;
use crate::sys::Syscall;

pub(super) fn pivot(sys: &dyn Syscall, rootfs: &Path, no_pivot: bool) -> Result<(), RootfsError> {
    let err = |source| RootfsError::Pivot {
        rootfs: rootfs.to_path_buf(),
        source,
    };
    let dot = Path::new(".");
    sys.chdir(rootfs).map_err(err)?;
    if no_pivot {
        // A ramfs/initramfs root cannot be pivoted away from: move the rootfs mount
        // over "/" and chroot into it. (The old root stays reachable to a process
        // that can escape a chroot; this is why it is only an option.)
        sys.mount(Some(dot), Path::new("/"), None, MsFlags::MS_MOVE, None)
            .map_err(err)?;
        sys.chroot(dot).map_err(err)?;
    } else {
        // pivot_root(".", "."): the new root is the current directory (the rootfs
        // bind mount made in `prepare`), and the old root is stacked on top of it,
        // at the same place. No directory for the old root is needed in the image.
        sys.pivot_root(dot, dot).map_err(err)?;
        // "." now names the old root (the top of the stack). Before it is detached,
        // make it a slave, recursively: if it (or anything under it) is shared with
        // the host, the unmount below would propagate to the host's peer mounts and
        // unmount the host's own file systems. As a slave it no longer sends events.
        sys.mount(None, dot, None, MsFlags::MS_SLAVE | MsFlags::MS_REC, None)
            .map_err(err)?;
        // Lazily, because processes of the runtime may still hold parts of it.
        sys.umount2(dot, MntFlags::MNT_DETACH).map_err(err)?;
    }
    sys.chdir(Path::new("/")).map_err(err)
}
