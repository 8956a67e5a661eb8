//! `/proc/self/mountinfo` parsing: which cgroup hierarchies are mounted where.
//!
//! A mountinfo line (proc(5)):
//! `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`
//! fields: id, parent, major:minor, root, mount point, mount options, optional
//! fields ending with `-`, then fs type, source, super options. For cgroup v1 the
//! super options name the controllers (`rw,cpu,cpuacct`, `rw,name=systemd`).

use std::path::{Path, PathBuf};

use crate::{CgroupError, Hierarchy, Layout, Result};

/// Where distributions mount the cgroup tree.
pub const DEFAULT_ROOT: &str = "/sys/fs/cgroup";

/// v1 controllers the kernel knows; super options not in this list (`rw`,
/// `clone_children`, `release_agent=...`, `noprefix`, `xattr`, ...) are mount
/// options, not controllers. `name=<x>` hierarchies are kept as they are.
const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "blkio",
    "perf_event",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
    "debug",
];

#[derive(Debug, Clone, PartialEq, Eq)]
struct CgroupMount {
    dev: String,
    mount_point: PathBuf,
    unified: bool,
    controllers: Vec<String>,
}

/// Decode the octal escapes mountinfo uses for space, tab, newline and backslash.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            if let Some(oct) = bytes.get(i + 1..i + 4) {
                if oct.iter().all(|b| (b'0'..=b'7').contains(b)) {
                    let v = oct
                        .iter()
                        .fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
                    if let Ok(v) = u8::try_from(v) {
                        out.push(v);
                        i += 4;
                        continue;
                    }
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_line(line: &str) -> Option<CgroupMount> {
    let (left, right) = line.split_once(" - ")?;
    let left: Vec<&str> = left.split_whitespace().collect();
    let right: Vec<&str> = right.split_whitespace().collect();
    if left.len() < 6 || right.is_empty() {
        return None;
    }
    let fstype = right[0];
    let unified = match fstype {
        "cgroup2" => true,
        "cgroup" => false,
        _ => return None,
    };
    let controllers = if unified {
        Vec::new()
    } else {
        right
            .get(2)
            .copied()
            .unwrap_or("")
            .split(',')
            .filter(|o| o.starts_with("name=") || V1_CONTROLLERS.contains(o))
            .map(str::to_string)
            .collect()
    };
    Some(CgroupMount {
        dev: left[2].to_string(),
        mount_point: PathBuf::from(unescape(left[4])),
        unified,
        controllers,
    })
}

/// Parse mountinfo text into a [`Layout`].
///
/// * `/sys/fs/cgroup` itself is cgroup2: pure v2 (`Layout::V2`), whatever else is
///   mounted (a named v1 hierarchy for old containers, say).
/// * Any v1 hierarchy with controllers: `Layout::V1` listing every cgroup and
///   cgroup2 mount (hybrid hosts list their `unified` mount with `unified = true`).
/// * Otherwise a cgroup2 mount elsewhere: v2 rooted there; named-only v1: V1.
///
/// A hierarchy mounted twice (same device) is listed once, preferring the mount
/// under `/sys/fs/cgroup`.
pub fn parse_mountinfo(text: &str) -> Result<Layout> {
    let mut mounts: Vec<CgroupMount> = Vec::new();
    for m in text.lines().filter_map(parse_line) {
        if let Some(prev) = mounts.iter_mut().find(|p| p.dev == m.dev) {
            let under_default = |p: &Path| p.starts_with(DEFAULT_ROOT);
            if !under_default(&prev.mount_point) && under_default(&m.mount_point) {
                *prev = m;
            }
            continue;
        }
        mounts.push(m);
    }
    if let Some(v2) = mounts
        .iter()
        .find(|m| m.unified && m.mount_point == Path::new(DEFAULT_ROOT))
    {
        return Ok(Layout::V2 {
            root: v2.mount_point.clone(),
        });
    }
    let has_v1_controllers = mounts
        .iter()
        .any(|m| !m.unified && m.controllers.iter().any(|c| !c.starts_with("name=")));
    if !has_v1_controllers {
        if let Some(v2) = mounts.iter().find(|m| m.unified) {
            return Ok(Layout::V2 {
                root: v2.mount_point.clone(),
            });
        }
    }
    if mounts.iter().all(|m| m.unified) {
        return Err(CgroupError::NoHierarchy);
    }
    let hierarchies = mounts
        .into_iter()
        .map(|m| Hierarchy {
            mount_point: m.mount_point,
            controllers: m.controllers,
            unified: m.unified,
        })
        .collect();
    Ok(Layout::V1 { hierarchies })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This project's machines (Debian 12 under Firecracker).
    const HYBRID: &str = "\
22 1 254:0 / / rw,relatime - ext4 /dev/vda rw
23 22 0:21 / /sys rw,nosuid,nodev,noexec,relatime - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    /// systemd-style pure v1 with co-mounted controllers and optional fields.
    const PURE_V1: &str = "\
25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
26 25 0:24 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:8 - tmpfs tmpfs ro,mode=755
27 26 0:25 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup rw,xattr,release_agent=/lib/systemd/systemd-cgroups-agent,name=systemd
30 26 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,cpu,cpuacct
31 26 0:29 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,net_cls,net_prio
32 26 0:30 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,memory
33 26 0:31 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,cpuset,clone_children
34 26 0:32 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,pids
35 26 0:33 / /sys/fs/cgroup/freezer rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,freezer
36 26 0:34 / /sys/fs/cgroup/hugetlb rw,nosuid,nodev,noexec,relatime shared:18 - cgroup cgroup rw,hugetlb
37 26 0:35 / /sys/fs/cgroup/devices rw,nosuid,nodev,noexec,relatime shared:19 - cgroup cgroup rw,devices
38 26 0:36 / /sys/fs/cgroup/blkio rw,nosuid,nodev,noexec,relatime shared:20 - cgroup cgroup rw,blkio
39 26 0:37 / /sys/fs/cgroup/perf_event rw,nosuid,nodev,noexec,relatime shared:21 - cgroup cgroup rw,perf_event
90 22 0:32 /docker /mnt/extra\\040memory rw,relatime - cgroup cgroup rw,memory
";

    const PURE_V2: &str = "\
24 30 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
26 24 0:24 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
40 24 0:40 / /sys/fs/cgroup/systemd-old rw,relatime - cgroup cgroup rw,name=systemd
";

    fn h(mp: &str, ctl: &[&str], unified: bool) -> Hierarchy {
        Hierarchy {
            mount_point: mp.into(),
            controllers: ctl.iter().map(|s| s.to_string()).collect(),
            unified,
        }
    }

    #[test]
    fn hybrid_is_v1_with_unified_listed() {
        let layout = parse_mountinfo(HYBRID).unwrap();
        let Layout::V1 { hierarchies } = layout else {
            panic!("{layout:?}")
        };
        assert_eq!(
            hierarchies,
            vec![
                h("/sys/fs/cgroup/cpu", &["cpu"], false),
                h("/sys/fs/cgroup/cpuacct", &["cpuacct"], false),
                h("/sys/fs/cgroup/cpuset", &["cpuset"], false),
                h("/sys/fs/cgroup/memory", &["memory"], false),
                h("/sys/fs/cgroup/devices", &["devices"], false),
                h("/sys/fs/cgroup/freezer", &["freezer"], false),
                h("/sys/fs/cgroup/blkio", &["blkio"], false),
                h("/sys/fs/cgroup/pids", &["pids"], false),
                h("/sys/fs/cgroup/systemd", &["name=systemd"], false),
                h("/sys/fs/cgroup/unified", &[], true),
            ]
        );
    }

    #[test]
    fn pure_v1_comounted_and_deduplicated() {
        let Layout::V1 { hierarchies } = parse_mountinfo(PURE_V1).unwrap() else {
            panic!()
        };
        assert_eq!(hierarchies.len(), 11, "{hierarchies:#?}");
        assert_eq!(
            hierarchies[0],
            h("/sys/fs/cgroup/systemd", &["name=systemd"], false)
        );
        assert_eq!(
            hierarchies[1],
            h("/sys/fs/cgroup/cpu,cpuacct", &["cpu", "cpuacct"], false)
        );
        assert!(hierarchies[1].has_controller("cpuacct"));
        assert_eq!(
            hierarchies[4],
            h("/sys/fs/cgroup/cpuset", &["cpuset"], false)
        );
        // The second mount of the memory hierarchy (same device 0:32) is dropped.
        assert_eq!(
            hierarchies
                .iter()
                .filter(|h| h.has_controller("memory"))
                .count(),
            1
        );
        assert!(hierarchies.iter().all(|h| !h.unified));
    }

    #[test]
    fn pure_v2() {
        assert_eq!(
            parse_mountinfo(PURE_V2).unwrap(),
            Layout::V2 {
                root: "/sys/fs/cgroup".into()
            }
        );
    }

    #[test]
    fn v2_elsewhere_and_nothing() {
        let text = "26 24 0:24 / /run/cg rw - cgroup2 none rw\n";
        assert_eq!(
            parse_mountinfo(text).unwrap(),
            Layout::V2 {
                root: "/run/cg".into()
            }
        );
        let err = parse_mountinfo("22 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n").unwrap_err();
        assert!(matches!(err, CgroupError::NoHierarchy));
        assert!(matches!(
            parse_mountinfo("").unwrap_err(),
            CgroupError::NoHierarchy
        ));
    }

    #[test]
    fn unescapes_mount_points() {
        assert_eq!(unescape("/mnt/a\\040b\\134c"), "/mnt/a b\\c");
        assert_eq!(unescape("/plain"), "/plain");
        assert_eq!(unescape("/trail\\04"), "/trail\\04");
        let m = parse_line("90 22 0:99 / /mnt/x\\040y rw - cgroup cgroup rw,memory").unwrap();
        assert_eq!(m.mount_point, PathBuf::from("/mnt/x y"));
        assert_eq!(m.controllers, vec!["memory".to_string()]);
    }

    #[test]
    fn garbage_lines_are_skipped() {
        for line in ["", "nonsense", "1 2 3 - cgroup", "a b c d e f - ext4 x rw"] {
            assert!(parse_line(line).is_none(), "{line}");
        }
    }
}
