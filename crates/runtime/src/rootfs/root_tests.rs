//! Real runs of prepare + pivot + finish, each in a child process (this test binary
//! re-executed) with a mount namespace of its own, so no mount reaches the host and
//! all of them end with the child.
//!
//! A re-exec rather than fork(): the test harness is multi-threaded, and a forked
//! copy of it may only call async-signal-safe functions.

use std::fs;
use std::path::Path;
use std::process::Command;

use coracle_cgroups::{Hierarchy, Layout};
use nix::mount::MsFlags;
use oci_spec::runtime::{LinuxBuilder, MountBuilder, RootBuilder, SpecBuilder};

use super::*;

const CHILD_ENV: &str = "CORACLE_ROOTFS_TEST_CHILD";
/// The child's last words when every check passed.
const CHILD_OK: &str = "rootfs child: all checks passed";
/// Exit code of the child when it cannot isolate itself (then the test is skipped).
const CHILD_SKIP: i32 = 77;

/// In the re-executed child: run the checks and exit with their result.
fn child_main_if_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let code = match root_child(Path::new(&dir)) {
        Ok(()) => {
            eprintln!("{CHILD_OK}");
            0
        }
        Err(ChildError::Skip(why)) => {
            eprintln!("skip: {why}");
            CHILD_SKIP
        }
        Err(ChildError::Fail(why)) => {
            eprintln!("FAILED: {why}");
            1
        }
    };
    std::process::exit(code);
}

/// Build a rootfs (busybox in it when the host has one) and a host directory to
/// bind, run `test` of this binary as the child under `wrapper` (a command prefix,
/// e.g. `unshare -Ur`), and check what it reported.
fn run_child(test: &str, wrapper: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    for d in ["bin", "proc", "dev", "sys", "etc", "tmp"] {
        fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    if Path::new("/bin/busybox").exists() {
        fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    }
    let data = dir.path().join("data");
    fs::create_dir_all(&data).unwrap();
    fs::write(data.join("hello"), "hi").unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut cmd = match wrapper.split_first() {
        Some((prog, args)) => {
            let mut c = Command::new(prog);
            c.args(args).arg(&exe);
            c
        }
        None => Command::new(&exe),
    };
    let out = match cmd
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &rootfs)
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            eprintln!("skipping {test}: cannot run {wrapper:?}: {e}");
            return;
        }
    };
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.code() == Some(CHILD_SKIP) || log.starts_with("unshare: ") {
        eprintln!("skipping {test}: {log}");
        return;
    }
    assert!(
        out.status.success() && log.contains(CHILD_OK),
        "child failed ({:?}):\n{log}",
        out.status
    );
    // Nothing of the child's mounts is visible here.
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mountinfo.contains(rootfs.to_str().unwrap()),
        "a mount leaked:\n{mountinfo}"
    );
}

#[test]
fn root_prepare_pivot_finish() {
    child_main_if_child();
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipping root_prepare_pivot_finish: needs root (euid != 0)");
        return;
    }
    run_child("rootfs::root_tests::root_prepare_pivot_finish", &[]);
}

/// The same as root of a user namespace (new user, pid and ipc namespaces, but the
/// host's network namespace): exercises the fallbacks (sysfs and cgroup v1 as
/// binds, devices bound from the host, remounts keeping locked flags). Needs
/// util-linux's `unshare` and user namespaces; skipped when either is missing.
#[test]
fn root_prepare_pivot_finish_in_user_namespace() {
    child_main_if_child();
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipping root_prepare_pivot_finish_in_user_namespace: needs root (euid != 0)");
        return;
    }
    run_child(
        "rootfs::root_tests::root_prepare_pivot_finish_in_user_namespace",
        &[
            "unshare",
            "--user",
            "--map-root-user",
            "--pid",
            "--fork",
            "--ipc",
            "--mount-proc",
        ],
    );
}

enum ChildError {
    Skip(String),
    Fail(String),
}

fn fail(what: &str) -> impl FnOnce(std::io::Error) -> ChildError + '_ {
    move |e| ChildError::Fail(format!("{what}: {e}"))
}

fn expect_erofs(r: std::io::Result<()>, what: &str) -> Result<(), ChildError> {
    match r {
        Err(e) if e.raw_os_error() == Some(libc::EROFS) => Ok(()),
        other => Err(ChildError::Fail(format!(
            "{what}: expected EROFS, got {other:?}"
        ))),
    }
}

fn host_v1_layout() -> Option<Layout> {
    let hs: Vec<Hierarchy> = ["cpu", "memory"]
        .iter()
        .map(|c| Path::new("/sys/fs/cgroup").join(c))
        .filter(|p| p.join("tasks").exists())
        .map(|p| Hierarchy {
            controllers: vec![p.file_name().unwrap().to_string_lossy().into_owned()],
            mount_point: p,
            unified: false,
        })
        .collect();
    (!hs.is_empty()).then_some(Layout::V1 { hierarchies: hs })
}

/// Not the initial user namespace (uid_map is not the identity over all ids).
fn in_user_namespace() -> bool {
    let map = fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    map.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"]
}

fn root_child(rootfs: &Path) -> Result<(), ChildError> {
    use std::os::unix::fs::FileTypeExt;

    use nix::sched::{unshare, CloneFlags};

    // Isolation first: a mount namespace of our own, with nothing propagating back
    // to the host.
    unshare(CloneFlags::CLONE_NEWNS)
        .map_err(|e| ChildError::Skip(format!("unshare(CLONE_NEWNS): {e}")))?;
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| ChildError::Skip(format!("making / private: {e}")))?;

    let data = rootfs.parent().unwrap().join("data");
    let mut mounts = oci_spec::runtime::get_default_mounts();
    let opts = ["rbind", "ro", "nosuid"].map(String::from).to_vec();
    let data_mount = MountBuilder::default()
        .destination("/data")
        .typ("bind")
        .source(data)
        .options(opts)
        .build()
        .map_err(|e| ChildError::Fail(e.to_string()))?;
    mounts.push(data_mount);
    if in_user_namespace() {
        // As runc's rootless specs do: gid 5 (tty) is not mapped in a user namespace
        // that maps only root, and devpts refuses an unmapped gid with EINVAL.
        for m in &mut mounts {
            let opts = m.options().clone().unwrap_or_default();
            m.set_options(Some(
                opts.into_iter()
                    .filter(|o| !o.starts_with("gid="))
                    .collect(),
            ));
        }
    }
    let layout = host_v1_layout();
    if layout.is_none() {
        mounts.retain(|m| m.typ().as_deref() != Some("cgroup"));
    }
    let linux = LinuxBuilder::default()
        .build()
        .map_err(|e| ChildError::Fail(e.to_string()))?;
    let mut masked = linux.masked_paths().clone().unwrap_or_default();
    masked.push("/proc/timer_list".into());
    let mut linux = linux;
    linux.set_masked_paths(Some(masked));
    if !in_user_namespace() {
        // The non-default shared propagation in one of the two runs: pivot_root
        // then needs the rootfs' parent mount made private. (Not in the user
        // namespace run: its fallbacks bind host paths, which mounts made in the
        // shared rootfs would shadow by propagation; that is why rslave is the
        // default.)
        linux.set_rootfs_propagation(Some("rshared".into()));
    }
    let root = RootBuilder::default()
        .path(rootfs)
        .readonly(true)
        .build()
        .map_err(|e| ChildError::Fail(e.to_string()))?;
    let spec = SpecBuilder::default()
        .mounts(mounts)
        .linux(linux)
        .root(root)
        .build()
        .map_err(|e| ChildError::Fail(e.to_string()))?;

    let sys = crate::sys::LinuxSyscall;
    let step = |what: &'static str| move |e: RootfsError| ChildError::Fail(format!("{what}: {e}"));
    prepare(&sys, &spec, rootfs, layout.as_ref()).map_err(step("prepare"))?;
    setup_console_in(&sys, rootfs, Path::new("/dev/null")).map_err(step("console"))?;
    pivot(&sys, rootfs, false).map_err(step("pivot"))?;
    finish(&sys, &spec).map_err(step("finish"))?;

    let status = fs::read_to_string("/proc/self/status").map_err(fail("/proc/self/status"))?;
    if !status.contains("Pid:") {
        return Err(ChildError::Fail("/proc/self/status has no Pid line".into()));
    }
    let null = fs::metadata("/dev/null").map_err(fail("/dev/null"))?;
    if !null.file_type().is_char_device() {
        return Err(ChildError::Fail("/dev/null is not a char device".into()));
    }
    let console = fs::metadata("/dev/console").map_err(fail("/dev/console"))?;
    if !console.file_type().is_char_device() {
        return Err(ChildError::Fail("/dev/console is not a char device".into()));
    }
    for masked in ["/proc/kcore", "/proc/timer_list"] {
        if Path::new(masked).exists() {
            let content = fs::read(masked).map_err(fail(masked))?;
            if !content.is_empty() {
                return Err(ChildError::Fail(format!("{masked} is not masked")));
            }
        }
    }
    if Path::new("/proc/acpi").exists()
        && fs::read_dir("/proc/acpi")
            .map_err(fail("/proc/acpi"))?
            .next()
            .is_some()
    {
        return Err(ChildError::Fail("/proc/acpi is not masked".into()));
    }
    let target = fs::read_link("/dev/fd").map_err(fail("/dev/fd"))?;
    if target != Path::new("/proc/self/fd") {
        return Err(ChildError::Fail(format!("/dev/fd -> {}", target.display())));
    }
    expect_erofs(fs::write("/newfile", "x"), "write to the read-only root")?;
    expect_erofs(
        fs::write("/proc/sys/kernel/hostname", "x"),
        "write to read-only /proc/sys",
    )?;
    expect_erofs(fs::write("/data/new", "x"), "write to the ro bind /data")?;
    let hello = fs::read_to_string("/data/hello").map_err(fail("/data/hello"))?;
    if hello != "hi" {
        return Err(ChildError::Fail(format!("/data/hello: {hello:?}")));
    }
    fs::write("/dev/shm/ok", "x")
        .map_err(fail("a tmpfs below the read-only root stays writable"))?;
    if layout.is_some() {
        // /sys is the container's sysfs now; its cgroup tree is ours.
        if !Path::new("/sys/fs/cgroup/memory/tasks").exists() {
            return Err(ChildError::Fail(
                "cgroup v1 memory hierarchy not mounted".into(),
            ));
        }
    }
    if Path::new("/bin/busybox").exists() {
        let st = std::process::Command::new("/bin/busybox")
            .args(["sh", "-c", "test -c /dev/zero && ls /proc/self >/dev/null"])
            .status()
            .map_err(fail("running /bin/busybox"))?;
        if !st.success() {
            return Err(ChildError::Fail(format!("busybox in the new root: {st}")));
        }
    }
    Ok(())
}
