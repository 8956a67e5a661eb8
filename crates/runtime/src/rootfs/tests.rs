//! Tests of the whole sequence: recorded calls (no root) and one real run as root in
//! a child process with its own mount namespace.

use std::cell::RefCell;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Component, Path, PathBuf};

use coracle_cgroups::{Hierarchy, Layout};
use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::{Mode, SFlag};
use oci_spec::runtime::{LinuxBuilder, Mount, MountBuilder, RootBuilder, Spec, SpecBuilder};

use super::*;
use crate::sys::{Call, RecordingSyscall, SysResult};

type Matcher = Box<dyn Fn(&Call) -> bool>;

/// A [`RecordingSyscall`] that records `/proc/self/fd/N[/name]` targets as the
/// in-rootfs path they name (`/dev/pts`), fails the calls that match a rule, and
/// makes the file-system side effects later steps look at (mknod makes an empty
/// file, symlink a symlink), so the real openat2/fchmodat calls keep working.
struct FakeSys {
    rec: RecordingSyscall,
    rootfs: PathBuf,
    fail: RefCell<Vec<(Matcher, Errno)>>,
}

impl FakeSys {
    fn new(rootfs: &Path) -> FakeSys {
        FakeSys {
            rec: RecordingSyscall::default(),
            rootfs: rootfs.to_path_buf(),
            fail: RefCell::default(),
        }
    }
    fn fail_when(&self, m: impl Fn(&Call) -> bool + 'static, errno: Errno) {
        self.fail.borrow_mut().push((Box::new(m), errno));
    }
    fn show(&self, p: &Path) -> PathBuf {
        let comps: Vec<Component> = p.components().collect();
        let is_fd = comps.len() >= 5 && p.starts_with("/proc/self/fd");
        if !is_fd {
            return p.to_path_buf();
        }
        let fd_link: PathBuf = comps[..5].iter().collect();
        let rest: PathBuf = comps[5..].iter().collect();
        let real = fs::read_link(&fd_link).expect("fd link").join(rest);
        match real.strip_prefix(&self.rootfs) {
            Ok(rel) => Path::new("/").join(rel),
            Err(_) => real,
        }
    }
    fn check(&self, result: SysResult, name: &'static str, path: &Path) -> SysResult {
        result?;
        let calls = self.rec.calls();
        let last = calls.last().expect("recorded");
        match self.fail.borrow().iter().find(|(m, _)| m(last)) {
            Some((_, errno)) => Err(SyscallError::new(name, path, *errno)),
            None => Ok(()),
        }
    }
    fn calls(&self) -> Vec<Call> {
        self.rec.calls()
    }
    fn mounts(&self) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| matches!(c, Call::Mount { .. }))
            .collect()
    }
}

impl Syscall for FakeSys {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> SysResult {
        let source = source.map(|s| self.show(s));
        let r = self
            .rec
            .mount(source.as_deref(), &self.show(target), fstype, flags, data);
        self.check(r, "mount", target)
    }
    fn umount2(&self, target: &Path, flags: MntFlags) -> SysResult {
        self.check(self.rec.umount2(target, flags), "umount2", target)
    }
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> SysResult {
        self.check(
            self.rec.pivot_root(new_root, put_old),
            "pivot_root",
            new_root,
        )
    }
    fn chroot(&self, path: &Path) -> SysResult {
        self.check(self.rec.chroot(path), "chroot", path)
    }
    fn chdir(&self, path: &Path) -> SysResult {
        self.check(self.rec.chdir(path), "chdir", path)
    }
    fn mknod(&self, path: &Path, kind: SFlag, perm: Mode, dev: u64) -> SysResult {
        self.check(
            self.rec.mknod(&self.show(path), kind, perm, dev),
            "mknod",
            path,
        )?;
        fs::File::create(path)
            .map(drop)
            .map_err(|_| SyscallError::new("mknod", path, Errno::EIO))
    }
    fn chown(&self, path: &Path, uid: Option<u32>, gid: Option<u32>) -> SysResult {
        self.check(self.rec.chown(&self.show(path), uid, gid), "chown", path)
    }
    fn symlink(&self, target: &Path, link: &Path) -> SysResult {
        self.check(self.rec.symlink(target, &self.show(link)), "symlink", link)?;
        symlink(target, link).map_err(|_| SyscallError::new("symlink", link, Errno::EIO))
    }
    fn sethostname(&self, name: &str) -> SysResult {
        self.rec.sethostname(name)
    }
    fn setdomainname(&self, name: &str) -> SysResult {
        self.rec.setdomainname(name)
    }
}

fn opts(o: &[&str]) -> Vec<String> {
    o.iter().map(|s| s.to_string()).collect()
}

fn fs_mount(dest: &str, typ: &str, o: &[&str]) -> Mount {
    MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(typ)
        .options(opts(o))
        .build()
        .unwrap()
}

fn bind(src: &Path, dest: &str, o: &[&str]) -> Mount {
    MountBuilder::default()
        .destination(dest)
        .typ("bind")
        .source(src)
        .options(opts(o))
        .build()
        .unwrap()
}

fn spec_with(mounts: Vec<Mount>) -> Spec {
    let linux = LinuxBuilder::default()
        .masked_paths(vec![])
        .readonly_paths(vec![])
        .build()
        .unwrap();
    SpecBuilder::default()
        .mounts(mounts)
        .linux(linux)
        .build()
        .unwrap()
}

fn mount_call(
    source: Option<&str>,
    target: &str,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Call {
    Call::Mount {
        source: source.map(PathBuf::from),
        target: PathBuf::from(target),
        fstype: fstype.map(str::to_string),
        flags,
        data: data.map(str::to_string),
    }
}

/// A scratch rootfs and a host directory to bind from.
struct Fixture {
    _dir: tempfile::TempDir,
    rootfs: PathBuf,
    src: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    let src = dir.path().join("src");
    fs::create_dir_all(&rootfs).unwrap();
    fs::create_dir_all(&src).unwrap();
    Fixture {
        rootfs,
        src,
        _dir: dir,
    }
}

fn minimal_mounts(src: &Path) -> Vec<Mount> {
    vec![
        fs_mount("/proc", "proc", &[]),
        fs_mount(
            "/dev",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        fs_mount(
            "/dev/pts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        bind(src, "/data", &["rbind", "ro", "rprivate"]),
    ]
}

#[test]
fn minimal_spec_call_sequence() {
    let f = fixture();
    let sys = FakeSys::new(&f.rootfs);
    prepare(&sys, &spec_with(minimal_mounts(&f.src)), &f.rootfs, None).unwrap();
    let root = f.rootfs.to_str().unwrap();
    let src = f.src.to_str().unwrap();
    let bind_rec = MsFlags::MS_BIND | MsFlags::MS_REC;
    let expected_mounts = vec![
        mount_call(None, "/", None, MsFlags::MS_SLAVE | MsFlags::MS_REC, None),
        mount_call(Some(root), root, None, bind_rec, None),
        mount_call(Some("proc"), "/proc", Some("proc"), MsFlags::empty(), None),
        mount_call(
            Some("tmpfs"),
            "/dev",
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
            Some("mode=755,size=65536k"),
        ),
        mount_call(
            Some("devpts"),
            "/dev/pts",
            Some("devpts"),
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
        ),
        // The bind itself, then its flags as a remount (the first call ignores
        // them), then the propagation change alone.
        mount_call(Some(src), "/data", None, bind_rec, None),
        mount_call(
            None,
            "/data",
            None,
            MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY,
            None,
        ),
        mount_call(
            None,
            "/data",
            None,
            MsFlags::MS_PRIVATE | MsFlags::MS_REC,
            None,
        ),
    ];
    assert_eq!(sys.mounts(), expected_mounts);

    // Devices come after every mount, then the symlinks.
    let calls = sys.calls();
    let first_dev = calls
        .iter()
        .position(|c| matches!(c, Call::Mknod { .. }))
        .unwrap();
    assert_eq!(first_dev, expected_mounts.len());
    let nodes: Vec<(PathBuf, u64)> = calls
        .iter()
        .filter_map(|c| match c {
            Call::Mknod {
                path,
                kind,
                perm,
                dev,
            } => {
                assert_eq!((*kind, perm.bits()), (SFlag::S_IFCHR, 0o666));
                Some((path.clone(), *dev))
            }
            _ => None,
        })
        .collect();
    let mk = nix::sys::stat::makedev;
    assert_eq!(
        nodes,
        vec![
            ("/dev/null".into(), mk(1, 3)),
            ("/dev/zero".into(), mk(1, 5)),
            ("/dev/full".into(), mk(1, 7)),
            ("/dev/random".into(), mk(1, 8)),
            ("/dev/urandom".into(), mk(1, 9)),
            ("/dev/tty".into(), mk(5, 0)),
        ]
    );
    let links: Vec<(PathBuf, PathBuf)> = calls
        .iter()
        .filter_map(|c| match c {
            Call::Symlink { target, link } => Some((link.clone(), target.clone())),
            _ => None,
        })
        .collect();
    let mut expected_links: Vec<(PathBuf, PathBuf)> = vec![
        ("/dev/fd".into(), "/proc/self/fd".into()),
        ("/dev/stdin".into(), "/proc/self/fd/0".into()),
        ("/dev/stdout".into(), "/proc/self/fd/1".into()),
        ("/dev/stderr".into(), "/proc/self/fd/2".into()),
        ("/dev/ptmx".into(), "pts/ptmx".into()),
    ];
    if Path::new("/proc/kcore").exists() {
        expected_links.push(("/dev/core".into(), "/proc/kcore".into()));
    }
    assert_eq!(links, expected_links);
    // mknod's mode is fixed up past the umask.
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(f.rootfs.join("dev/null"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o666);

    // A second run skips what exists.
    let again = FakeSys::new(&f.rootfs);
    prepare(&again, &spec_with(vec![]), &f.rootfs, None).unwrap();
    assert!(again
        .calls()
        .iter()
        .all(|c| !matches!(c, Call::Mknod { .. } | Call::Symlink { .. })));
}

#[test]
fn bind_of_a_file_creates_a_file_and_plain_bind_has_no_remount() {
    let f = fixture();
    let file = f.src.join("resolv.conf");
    fs::write(&file, "nameserver 127.0.0.1\n").unwrap();
    let sys = FakeSys::new(&f.rootfs);
    prepare(
        &sys,
        &spec_with(vec![bind(&file, "/etc/resolv.conf", &["bind"])]),
        &f.rootfs,
        None,
    )
    .unwrap();
    assert!(f.rootfs.join("etc/resolv.conf").is_file());
    let mounts = sys.mounts();
    assert_eq!(mounts.len(), 3, "{mounts:#?}");
    assert_eq!(
        mounts[2],
        mount_call(
            Some(file.to_str().unwrap()),
            "/etc/resolv.conf",
            None,
            MsFlags::MS_BIND,
            None
        )
    );
}

#[test]
fn propagation_option_is_a_separate_call() {
    let f = fixture();
    let sys = FakeSys::new(&f.rootfs);
    let m = fs_mount("/run", "tmpfs", &["nosuid", "rshared", "mode=755"]);
    prepare(&sys, &spec_with(vec![m]), &f.rootfs, None).unwrap();
    let mounts = sys.mounts();
    assert_eq!(
        mounts[2..],
        [
            mount_call(
                Some("tmpfs"),
                "/run",
                Some("tmpfs"),
                MsFlags::MS_NOSUID,
                Some("mode=755")
            ),
            mount_call(
                None,
                "/run",
                None,
                MsFlags::MS_SHARED | MsFlags::MS_REC,
                None
            ),
        ]
    );
}

#[test]
fn rootfs_propagation_is_applied_and_checked_first() {
    let f = fixture();
    let mut spec = spec_with(vec![]);
    spec.linux_mut()
        .as_mut()
        .unwrap()
        .set_rootfs_propagation(Some("private".into()));
    let sys = FakeSys::new(&f.rootfs);
    prepare(&sys, &spec, &f.rootfs, None).unwrap();
    assert_eq!(
        sys.mounts()[0],
        mount_call(None, "/", None, MsFlags::MS_PRIVATE, None)
    );

    // Shared: the mount holding the rootfs is made private before the self-bind,
    // or pivot_root would refuse it.
    spec.linux_mut()
        .as_mut()
        .unwrap()
        .set_rootfs_propagation(Some("rshared".into()));
    let sys = FakeSys::new(&f.rootfs);
    prepare(&sys, &spec, &f.rootfs, None).unwrap();
    let mounts = sys.mounts();
    assert_eq!(
        mounts[0],
        mount_call(None, "/", None, MsFlags::MS_SHARED | MsFlags::MS_REC, None)
    );
    let Call::Mount { target, flags, .. } = &mounts[1] else {
        panic!("{mounts:?}")
    };
    assert_eq!(*flags, MsFlags::MS_PRIVATE);
    assert!(f.rootfs.starts_with(target), "{target:?}");

    // Bad input is refused before anything is mounted.
    spec.linux_mut()
        .as_mut()
        .unwrap()
        .set_rootfs_propagation(Some("sideways".into()));
    let sys = FakeSys::new(&f.rootfs);
    let err = prepare(&sys, &spec, &f.rootfs, None).unwrap_err();
    assert!(err.to_string().contains("sideways"), "{err}");
    assert!(sys.calls().is_empty());
}

#[test]
fn mount_over_an_escaping_symlink_is_refused() {
    let f = fixture();
    fs::create_dir_all(f.rootfs.join("etc")).unwrap();
    symlink("../../../../tmp", f.rootfs.join("etc/evil")).unwrap();
    let sys = FakeSys::new(&f.rootfs);
    let spec = spec_with(vec![fs_mount("/etc/evil/x", "tmpfs", &[])]);
    let err = prepare(&sys, &spec, &f.rootfs, None).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("/etc/evil/x"), "names the destination: {msg}");
    assert!(
        msg.contains("symlink /etc/evil -> ../../../../tmp"),
        "names the symlink: {msg}"
    );
    assert!(matches!(err, RootfsError::Resolve { .. }));
    // Only the root propagation and the rootfs self-bind happened.
    assert_eq!(sys.mounts().len(), 2);
}

#[test]
fn absolute_symlink_target_stays_in_the_rootfs() {
    let f = fixture();
    fs::create_dir_all(f.rootfs.join("var")).unwrap();
    symlink("/run", f.rootfs.join("var/run")).unwrap();
    let sys = FakeSys::new(&f.rootfs);
    prepare(
        &sys,
        &spec_with(vec![fs_mount("/var/run/lock", "tmpfs", &[])]),
        &f.rootfs,
        None,
    )
    .unwrap();
    assert_eq!(
        sys.mounts()[2],
        mount_call(
            Some("tmpfs"),
            "/run/lock",
            Some("tmpfs"),
            MsFlags::empty(),
            None
        )
    );
    assert!(f.rootfs.join("run/lock").is_dir());
}

#[test]
fn dotdot_destination_is_refused_before_any_mount() {
    let f = fixture();
    let sys = FakeSys::new(&f.rootfs);
    let err = prepare(
        &sys,
        &spec_with(vec![fs_mount("/a/../../x", "tmpfs", &[])]),
        &f.rootfs,
        None,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("/a/../../x") && err.to_string().contains("'..'"),
        "{err}"
    );
    assert!(sys.calls().is_empty());
}

#[test]
fn injected_mount_error_names_the_destination() {
    let f = fixture();
    let sys = FakeSys::new(&f.rootfs);
    sys.fail_when(
        |c| matches!(c, Call::Mount { target, .. } if target == Path::new("/dev/pts")),
        Errno::EACCES,
    );
    let err = prepare(&sys, &spec_with(minimal_mounts(&f.src)), &f.rootfs, None).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(&err, RootfsError::Mount { destination, source }
        if destination == Path::new("/dev/pts") && source.errno == Errno::EACCES),
        "{err:?}"
    );
    assert!(
        msg.contains("mount /dev/pts") && msg.contains("EACCES"),
        "{msg}"
    );
    // Nothing after the failure was attempted.
    assert_eq!(sys.mounts().len(), 5);

    // A failing remount of a bind names its destination too.
    let sys = FakeSys::new(&f.rootfs);
    sys.fail_when(
        |c| matches!(c, Call::Mount { flags, .. } if flags.contains(MsFlags::MS_REMOUNT)),
        Errno::EINVAL,
    );
    let err = prepare(&sys, &spec_with(minimal_mounts(&f.src)), &f.rootfs, None).unwrap_err();
    assert!(err.to_string().contains("mount /data"), "{err}");
}

#[test]
fn sysfs_refused_falls_back_to_rbind_of_sys() {
    let f = fixture();
    let sys = FakeSys::new(&f.rootfs);
    sys.fail_when(
        |c| matches!(c, Call::Mount { fstype: Some(t), .. } if t == "sysfs"),
        Errno::EPERM,
    );
    let spec = spec_with(vec![fs_mount(
        "/sys",
        "sysfs",
        &["nosuid", "noexec", "nodev", "ro"],
    )]);
    prepare(&sys, &spec, &f.rootfs, None).unwrap();
    let ro = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV | MsFlags::MS_RDONLY;
    assert_eq!(
        sys.mounts()[2..],
        [
            mount_call(Some("sysfs"), "/sys", Some("sysfs"), ro, None),
            mount_call(
                Some("/sys"),
                "/sys",
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None
            ),
            mount_call(
                None,
                "/sys",
                None,
                MsFlags::MS_REMOUNT | MsFlags::MS_BIND | ro,
                None
            ),
        ]
    );
    // If the fallback fails as well, both errors are reported.
    let sys = FakeSys::new(&f.rootfs);
    sys.fail_when(
        |c| matches!(c, Call::Mount { target, .. } if target == Path::new("/sys")),
        Errno::EPERM,
    );
    let err = prepare(&sys, &spec, &f.rootfs, None).unwrap_err();
    assert!(matches!(err, RootfsError::MountFallback { .. }), "{err:?}");
    assert!(err.to_string().contains("fallback"), "{err}");
}

#[test]
fn mknod_refused_binds_the_host_device() {
    let f = fixture();
    let sys = FakeSys::new(&f.rootfs);
    sys.fail_when(|c| matches!(c, Call::Mknod { .. }), Errno::EPERM);
    prepare(
        &sys,
        &spec_with(vec![fs_mount("/dev", "tmpfs", &[])]),
        &f.rootfs,
        None,
    )
    .unwrap();
    let binds: Vec<Call> = sys.mounts().into_iter().skip(3).collect();
    assert_eq!(binds.len(), 6);
    assert_eq!(
        binds[0],
        mount_call(Some("/dev/null"), "/dev/null", None, MsFlags::MS_BIND, None)
    );
    assert!(
        f.rootfs.join("dev/null").is_file(),
        "an empty file to bind onto"
    );
}

#[test]
fn spec_devices_with_owner_and_no_devices_under_a_bind_mounted_dev() {
    use oci_spec::runtime::{LinuxDeviceBuilder, LinuxDeviceType};
    let f = fixture();
    let fuse = LinuxDeviceBuilder::default()
        .path("/dev/fuse")
        .typ(LinuxDeviceType::C)
        .major(10)
        .minor(229)
        .file_mode(0o600u32)
        .uid(1000u32)
        .gid(1000u32)
        .build()
        .unwrap();
    let mut spec = spec_with(vec![fs_mount("/dev", "tmpfs", &[])]);
    spec.linux_mut()
        .as_mut()
        .unwrap()
        .set_devices(Some(vec![fuse]));
    let sys = FakeSys::new(&f.rootfs);
    prepare(&sys, &spec, &f.rootfs, None).unwrap();
    let calls = sys.calls();
    let i = calls
        .iter()
        .position(|c| matches!(c, Call::Mknod { path, .. } if path == Path::new("/dev/fuse")))
        .expect("fuse created");
    assert_eq!(
        calls[i + 1],
        Call::Chown {
            path: "/dev/fuse".into(),
            uid: Some(1000),
            gid: Some(1000)
        }
    );

    let f = fixture();
    let dev_src = f.src.clone();
    let sys = FakeSys::new(&f.rootfs);
    prepare(
        &sys,
        &spec_with(vec![bind(&dev_src, "/dev", &["rbind"])]),
        &f.rootfs,
        None,
    )
    .unwrap();
    assert!(sys
        .calls()
        .iter()
        .all(|c| !matches!(c, Call::Mknod { .. } | Call::Symlink { .. })));
}

fn v1_layout() -> Layout {
    let h = |mp: &str, c: &[&str], unified: bool| Hierarchy {
        mount_point: PathBuf::from(mp),
        controllers: c.iter().map(|s| s.to_string()).collect(),
        unified,
    };
    Layout::V1 {
        hierarchies: vec![
            h("/sys/fs/cgroup/cpu,cpuacct", &["cpu", "cpuacct"], false),
            h("/sys/fs/cgroup/memory", &["memory"], false),
            h("/sys/fs/cgroup/unified", &[], true),
        ],
    }
}

#[test]
fn cgroup_v1_tmpfs_hierarchies_symlinks_and_ro_last() {
    let f = fixture();
    let sys = FakeSys::new(&f.rootfs);
    let spec = spec_with(vec![fs_mount(
        "/sys/fs/cgroup",
        "cgroup",
        &["nosuid", "noexec", "nodev", "relatime", "ro"],
    )]);
    prepare(&sys, &spec, &f.rootfs, Some(&v1_layout())).unwrap();
    let base = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV | MsFlags::MS_RELATIME;
    let ro = base | MsFlags::MS_RDONLY;
    let calls: Vec<Call> = sys
        .calls()
        .into_iter()
        .skip(2)
        .take_while(|c| !matches!(c, Call::Mknod { .. }))
        .collect();
    assert_eq!(
        calls,
        vec![
            mount_call(
                Some("tmpfs"),
                "/sys/fs/cgroup",
                Some("tmpfs"),
                base,
                Some("mode=755")
            ),
            mount_call(
                Some("cgroup"),
                "/sys/fs/cgroup/cpu,cpuacct",
                Some("cgroup"),
                ro,
                Some("cpu,cpuacct")
            ),
            Call::Symlink {
                target: "cpu,cpuacct".into(),
                link: "/sys/fs/cgroup/cpu".into()
            },
            Call::Symlink {
                target: "cpu,cpuacct".into(),
                link: "/sys/fs/cgroup/cpuacct".into()
            },
            mount_call(
                Some("cgroup"),
                "/sys/fs/cgroup/memory",
                Some("cgroup"),
                ro,
                Some("memory")
            ),
            mount_call(
                Some("cgroup2"),
                "/sys/fs/cgroup/unified",
                Some("cgroup2"),
                ro,
                None
            ),
            mount_call(
                None,
                "/sys/fs/cgroup",
                None,
                MsFlags::MS_REMOUNT | MsFlags::MS_BIND | ro,
                None
            ),
        ]
    );
}

#[test]
fn cgroup_v1_refused_binds_the_host_hierarchy() {
    let f = fixture();
    let sys = FakeSys::new(&f.rootfs);
    sys.fail_when(
        |c| matches!(c, Call::Mount { fstype: Some(t), .. } if t == "cgroup"),
        Errno::EPERM,
    );
    let spec = spec_with(vec![fs_mount("/sys/fs/cgroup", "cgroup", &[])]);
    prepare(&sys, &spec, &f.rootfs, Some(&v1_layout())).unwrap();
    let mounts = sys.mounts();
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV;
    assert!(mounts.contains(&mount_call(
        Some("/sys/fs/cgroup/memory"),
        "/sys/fs/cgroup/memory",
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None
    )));
    assert!(mounts.contains(&mount_call(
        None,
        "/sys/fs/cgroup/memory",
        None,
        MsFlags::MS_REMOUNT | MsFlags::MS_BIND | flags,
        None
    )));
}

#[test]
fn cgroup_v2_mounts_cgroup2() {
    let f = fixture();
    let sys = FakeSys::new(&f.rootfs);
    let spec = spec_with(vec![fs_mount(
        "/sys/fs/cgroup",
        "cgroup",
        &["nosuid", "ro"],
    )]);
    let layout = Layout::V2 {
        root: "/sys/fs/cgroup".into(),
    };
    prepare(&sys, &spec, &f.rootfs, Some(&layout)).unwrap();
    assert_eq!(
        sys.mounts()[2],
        mount_call(
            Some("cgroup2"),
            "/sys/fs/cgroup",
            Some("cgroup2"),
            MsFlags::MS_NOSUID | MsFlags::MS_RDONLY,
            None
        )
    );
}

#[test]
fn pivot_sequences() {
    let sys = RecordingSyscall::default();
    pivot(&sys, Path::new("/bundle/rootfs"), false).unwrap();
    assert_eq!(
        sys.calls(),
        vec![
            Call::Chdir("/bundle/rootfs".into()),
            Call::PivotRoot {
                new_root: ".".into(),
                put_old: ".".into()
            },
            // The old root is made a slave before it is detached, so the unmount
            // cannot propagate to the host.
            mount_call(None, ".", None, MsFlags::MS_SLAVE | MsFlags::MS_REC, None),
            Call::Umount2 {
                target: ".".into(),
                flags: MntFlags::MNT_DETACH
            },
            Call::Chdir("/".into()),
        ]
    );
    let sys = RecordingSyscall::default();
    pivot(&sys, Path::new("/bundle/rootfs"), true).unwrap();
    assert_eq!(
        sys.calls(),
        vec![
            Call::Chdir("/bundle/rootfs".into()),
            mount_call(Some("."), "/", None, MsFlags::MS_MOVE, None),
            Call::Chroot(".".into()),
            Call::Chdir("/".into()),
        ]
    );
    let sys = RecordingSyscall::failing("pivot_root", Errno::EINVAL);
    let err = pivot(&sys, Path::new("/bundle/rootfs"), false).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("/bundle/rootfs") && msg.contains("pivot_root") && msg.contains("EINVAL"),
        "{msg}"
    );
}

#[test]
fn finish_masks_readonly_paths_then_readonly_root() {
    let f = fixture();
    let root = &f.rootfs;
    fs::create_dir_all(root.join("dev")).unwrap();
    fs::write(root.join("dev/null"), "").unwrap();
    fs::create_dir_all(root.join("proc/acpi")).unwrap();
    fs::create_dir_all(root.join("proc/sys")).unwrap();
    fs::write(root.join("proc/kcore"), "secret").unwrap();
    let linux = LinuxBuilder::default()
        .masked_paths(opts(&["/proc/kcore", "/proc/acpi", "/proc/missing"]))
        .readonly_paths(opts(&["/proc/sys", "/proc/absent"]))
        .build()
        .unwrap();
    let root_ro = RootBuilder::default()
        .path("rootfs")
        .readonly(true)
        .build()
        .unwrap();
    let spec = SpecBuilder::default()
        .linux(linux)
        .root(root_ro)
        .mounts(vec![])
        .build()
        .unwrap();
    let sys = RecordingSyscall::default();
    masked::finish_in(&sys, &spec, root).unwrap();
    let calls = sys.calls();
    let p = |s: &str| root.join(s);
    assert_eq!(calls.len(), 5, "{calls:#?}");
    assert_eq!(
        calls[..3],
        [
            Call::Mount {
                source: Some(p("dev/null")),
                target: p("proc/kcore"),
                fstype: None,
                flags: MsFlags::MS_BIND,
                data: None
            },
            Call::Mount {
                source: Some("tmpfs".into()),
                target: p("proc/acpi"),
                fstype: Some("tmpfs".into()),
                flags: MsFlags::MS_RDONLY,
                data: None
            },
            Call::Mount {
                source: Some(p("proc/sys")),
                target: p("proc/sys"),
                fstype: None,
                flags: MsFlags::MS_BIND | MsFlags::MS_REC,
                data: None
            },
        ]
    );
    let remount = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    let Call::Mount {
        target,
        flags,
        source: None,
        ..
    } = &calls[3]
    else {
        panic!("{:?}", calls[3])
    };
    assert!(
        target == &p("proc/sys") && flags.contains(remount),
        "{:?}",
        calls[3]
    );
    // The read-only root is the very last call.
    let Call::Mount {
        target,
        flags,
        source: None,
        ..
    } = &calls[4]
    else {
        panic!("{:?}", calls[4])
    };
    assert!(target == root && flags.contains(remount), "{:?}", calls[4]);

    // Errors name the path; ".." is refused.
    let sys = RecordingSyscall::failing("mount", Errno::EPERM);
    let err = masked::finish_in(&sys, &spec, root).unwrap_err();
    assert!(
        err.to_string().contains("masked path /proc/kcore") && err.to_string().contains("EPERM"),
        "{err}"
    );
    let linux = LinuxBuilder::default()
        .masked_paths(opts(&["/proc/../etc"]))
        .build()
        .unwrap();
    let spec = SpecBuilder::default().linux(linux).build().unwrap();
    assert!(masked::finish_in(&RecordingSyscall::default(), &spec, root).is_err());
}

#[test]
fn console_needs_a_char_device() {
    let f = fixture();
    fs::create_dir_all(f.rootfs.join("dev/pts")).unwrap();
    fs::write(f.rootfs.join("dev/pts/0"), "").unwrap();
    let sys = RecordingSyscall::default();
    let err = setup_console_in(&sys, &f.rootfs, Path::new("/dev/pts/0")).unwrap_err();
    assert!(err.to_string().contains("not a character device"), "{err}");
    let err = setup_console_in(&sys, &f.rootfs, Path::new("/dev/pts/9")).unwrap_err();
    assert!(err.to_string().contains("/dev/pts/9"), "{err}");
    assert!(sys.calls().is_empty());
    assert!(!f.rootfs.join("dev/console").exists());
}
