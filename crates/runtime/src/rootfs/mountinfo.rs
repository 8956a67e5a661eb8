//! Reading /proc/self/mountinfo: which mount holds a path.

use std::path::{Path, PathBuf};

/// Undo mountinfo's octal escapes (`\040` for a space, `\011`, `\012`, `\134`).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                let v = d.iter().fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
                out.push(u8::try_from(v).unwrap_or(b'?'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mount point (field 5) of the mount holding `path`: the longest mount point
/// that is `path` or one of its ancestors. `path` should have no symlinks.
pub(super) fn mount_point_of(mountinfo: &str, path: &Path) -> Option<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|mp| PathBuf::from(unescape(mp)))
        .filter(|mp| path.starts_with(mp))
        .max_by_key(|mp| mp.components().count())
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
31 22 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
40 22 0:40 / /tmp rw shared:5 - tmpfs tmpfs rw
41 40 0:41 / /tmp/my\\040dir rw - tmpfs tmpfs rw
";

    #[test]
    fn longest_prefix_wins() {
        assert_eq!(
            mount_point_of(INFO, Path::new("/tmp/x/rootfs")),
            Some("/tmp".into())
        );
        assert_eq!(
            mount_point_of(INFO, Path::new("/var/lib/c/rootfs")),
            Some("/".into())
        );
        assert_eq!(
            mount_point_of(INFO, Path::new("/tmp/my dir/rootfs")),
            Some("/tmp/my dir".into())
        );
        // Component-wise, not string prefix.
        assert_eq!(mount_point_of(INFO, Path::new("/tmpfoo")), Some("/".into()));
        assert_eq!(mount_point_of("", Path::new("/x")), None);
    }

    #[test]
    fn unescape_octal() {
        assert_eq!(unescape("a\\040b\\134c"), "a b\\c");
        assert_eq!(unescape("trailing\\04"), "trailing\\04");
    }
}
