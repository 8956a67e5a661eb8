//! Overlay snapshots.
//!
//! The option tests run everywhere. The mount tests need root; each one re-runs this test
//! binary under `unshare --mount --propagation private`, where an `#[ignore]`d inner test does
//! the work, so no mount ever reaches the host's mount namespace. The inner tests refuse to do
//! anything unless the outer test set `INNER_ENV`, so `cargo test -- --ignored` run directly
//! mounts nothing.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use coracle_image::snapshot::{mount, mount_options, MountSpec, SnapshotError, Snapshotter};
use nix::sys::stat::{major, makedev, minor, mknod, Mode, SFlag};

const INNER_ENV: &str = "CORACLE_SNAPSHOT_TEST_INNER";

#[test]
fn options_order_top_layer_first() {
    assert_eq!(
        mount_options(3),
        "lowerdir=l/2:l/1:l/0,upperdir=upper,workdir=work"
    );
    let five = mount_options(5);
    let lower = five
        .strip_prefix("lowerdir=")
        .unwrap()
        .split(',')
        .next()
        .unwrap();
    let order: Vec<&str> = lower.split(':').collect();
    assert_eq!(order, ["l/4", "l/3", "l/2", "l/1", "l/0"]);
}

#[test]
fn options_for_500_layers_fit_in_a_page() {
    let options = mount_options(500);
    assert!(options.len() < 4096, "{} bytes", options.len());
    assert!(options.starts_with("lowerdir=l/499:l/498:"));
    assert!(options.ends_with("l/1:l/0,upperdir=upper,workdir=work"));
    assert_eq!(options.matches("l/").count(), 500);
}

#[test]
fn prepare_lays_out_the_snapshot_without_mounting() {
    let tmp = tempfile::tempdir().unwrap();
    let layers: Vec<PathBuf> = (0..3)
        .map(|i| {
            let p = tmp.path().join(format!("layer{i}"));
            fs::create_dir(&p).unwrap();
            p
        })
        .collect();
    let snaps = Snapshotter::new(tmp.path().join("root"));
    let spec = snaps.prepare("c1", &layers).unwrap();
    let dir = tmp.path().join("root/snapshots/c1");
    assert_eq!(spec.cwd, dir);
    assert_eq!(spec.merged, dir.join("merged"));
    assert_eq!(spec.fstype, "overlay");
    assert_eq!(spec.options, mount_options(3));
    for d in ["upper", "work", "merged", "l"] {
        assert!(dir.join(d).is_dir(), "{d}");
    }
    for (i, layer) in layers.iter().enumerate() {
        let target = fs::read_link(dir.join("l").join(i.to_string())).unwrap();
        assert_eq!(target, fs::canonicalize(layer).unwrap());
    }
    assert!(matches!(
        snaps.prepare("c1", &layers),
        Err(SnapshotError::Exists { .. })
    ));
    // A missing layer fails and leaves nothing behind.
    let err = snaps
        .prepare("c2", &[tmp.path().join("missing")])
        .unwrap_err();
    assert!(err.to_string().contains("c2"), "{err}");
    assert!(!tmp.path().join("root/snapshots/c2").exists());
    // No layers: an empty lower directory.
    let spec = snaps.prepare("c3", &[]).unwrap();
    assert!(spec.options.starts_with("lowerdir=empty,"));
    assert!(spec.cwd.join("empty").is_dir());
    snaps.remove("c1").unwrap();
    snaps.remove("c1").unwrap();
    snaps.remove("c3").unwrap();
    assert!(!dir.exists());
}

#[test]
fn unsafe_ids_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let snaps = Snapshotter::new(tmp.path());
    for id in ["", "..", "../x", "a/b", ".x"] {
        assert!(
            matches!(snaps.prepare(id, &[]), Err(SnapshotError::InvalidId { .. })),
            "{id:?}"
        );
        assert!(snaps.remove(id).is_err(), "{id:?}");
    }
}

/// Run the ignored test `inner` in a private mount namespace; skip when not root.
fn in_private_namespace(inner: &str) {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipping {inner}: needs root (euid != 0) to mount overlayfs");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--"])
        .arg(exe)
        .args([
            "--exact",
            inner,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(INNER_ENV, "1")
        .output()
        .expect("running unshare");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{inner} failed: {}\n{stdout}\n{stderr}",
        out.status
    );
    // Make sure the inner test really ran rather than being filtered out.
    assert!(
        stdout.contains("1 passed"),
        "{inner} did not run:\n{stdout}"
    );
}

fn inner_allowed() -> bool {
    if std::env::var_os(INNER_ENV).is_none() {
        eprintln!("not in a private mount namespace started by the outer test; doing nothing");
        return false;
    }
    true
}

fn is_mounted(path: &Path) -> bool {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let path = path.to_str().unwrap();
    info.lines()
        .any(|l| l.split(' ').nth(4).is_some_and(|mp| mp == path))
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

fn mount_own(spec: &MountSpec) {
    mount(spec, &spec.merged).unwrap();
    assert!(is_mounted(&spec.merged));
}

#[test]
fn three_layers_with_whiteouts() {
    in_private_namespace("inner_three_layers_with_whiteouts");
}

#[test]
#[ignore = "run by three_layers_with_whiteouts in a private mount namespace"]
fn inner_three_layers_with_whiteouts() {
    if !inner_allowed() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let l = |n: &str| tmp.path().join(n);
    // bottom: a, b, dir/x
    fs::create_dir_all(l("bottom/dir")).unwrap();
    fs::write(l("bottom/a"), "a").unwrap();
    fs::write(l("bottom/b"), "b").unwrap();
    fs::write(l("bottom/dir/x"), "x").unwrap();
    // middle: whiteout for b, opaque dir with y
    fs::create_dir_all(l("middle/dir")).unwrap();
    mknod(
        &l("middle/b"),
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o600),
        makedev(0, 0),
    )
    .unwrap();
    xattr::set(l("middle/dir"), "trusted.overlay.opaque", b"y").unwrap();
    fs::write(l("middle/dir/y"), "y").unwrap();
    // top: c
    fs::create_dir_all(l("top")).unwrap();
    fs::write(l("top/c"), "c").unwrap();

    let snaps = Snapshotter::new(l("root"));
    let spec = snaps
        .prepare("three", &[l("bottom"), l("middle"), l("top")])
        .unwrap();
    let cwd_before = std::env::current_dir().unwrap();
    mount_own(&spec);
    assert_eq!(std::env::current_dir().unwrap(), cwd_before);

    let m = &spec.merged;
    assert_eq!(names(m), ["a", "c", "dir"]);
    assert_eq!(names(&m.join("dir")), ["y"]);
    assert_eq!(fs::read_to_string(m.join("a")).unwrap(), "a");
    assert_eq!(fs::read_to_string(m.join("c")).unwrap(), "c");
    assert_eq!(fs::read_to_string(m.join("dir/y")).unwrap(), "y");

    // Writes land in upper, layers stay untouched.
    fs::write(m.join("new"), "new").unwrap();
    fs::write(m.join("a"), "changed").unwrap();
    fs::remove_file(m.join("c")).unwrap();
    let upper = spec.cwd.join("upper");
    assert_eq!(fs::read_to_string(upper.join("new")).unwrap(), "new");
    assert_eq!(fs::read_to_string(upper.join("a")).unwrap(), "changed");
    assert_eq!(fs::read_to_string(l("bottom/a")).unwrap(), "a");
    assert!(l("top/c").exists());
    let wh = fs::symlink_metadata(upper.join("c")).unwrap();
    assert!(wh.file_type().is_char_device());
    assert_eq!((major(wh.rdev()), minor(wh.rdev())), (0, 0));

    snaps.remove("three").unwrap();
    assert!(!is_mounted(m));
    assert!(!spec.cwd.exists());
    // The layers survive removal.
    assert_eq!(names(&l("bottom")), ["a", "b", "dir"]);
}

#[test]
fn three_hundred_layers() {
    in_private_namespace("inner_three_hundred_layers");
}

#[test]
#[ignore = "run by three_hundred_layers in a private mount namespace"]
fn inner_three_hundred_layers() {
    if !inner_allowed() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // Long layer paths: absolute ones could never fit in one page 300 times.
    let base = tmp
        .path()
        .join("a-rather-long-directory-name-for-layers".repeat(2));
    let layers: Vec<PathBuf> = (0..300)
        .map(|i| {
            let p = base.join(format!("sha256-{i:064}"));
            fs::create_dir_all(&p).unwrap();
            fs::write(p.join(format!("f{i}")), i.to_string()).unwrap();
            p
        })
        .collect();
    let absolute: usize = layers.iter().map(|p| p.as_os_str().len() + 1).sum();
    assert!(
        absolute > 4096,
        "test layers paths too short to prove anything"
    );

    let snaps = Snapshotter::new(tmp.path().join("root"));
    let spec = snaps.prepare("many", &layers).unwrap();
    mount_own(&spec);
    let seen = names(&spec.merged);
    assert_eq!(seen.len(), 300);
    for i in 0..300 {
        let f = spec.merged.join(format!("f{i}"));
        assert_eq!(fs::read_to_string(&f).unwrap(), i.to_string(), "{f:?}");
    }
    snaps.remove("many").unwrap();
    assert!(!is_mounted(&spec.merged));
    assert!(!spec.cwd.exists());
}

#[test]
fn remove_unmounts_and_deletes() {
    in_private_namespace("inner_remove_unmounts_and_deletes");
}

#[test]
#[ignore = "run by remove_unmounts_and_deletes in a private mount namespace"]
fn inner_remove_unmounts_and_deletes() {
    if !inner_allowed() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let layer = tmp.path().join("layer");
    fs::create_dir(&layer).unwrap();
    fs::write(layer.join("keep"), "k").unwrap();
    let snaps = Snapshotter::new(tmp.path().join("root"));

    // The overlay on merged with a file written through it, and a tmpfs stacked on top.
    let spec = snaps.prepare("gone", std::slice::from_ref(&layer)).unwrap();
    mount_own(&spec);
    fs::write(spec.merged.join("scratch"), "s").unwrap();
    nix::mount::mount(
        Some("tmpfs"),
        &spec.merged,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .unwrap();
    snaps.remove("gone").unwrap();
    assert!(!is_mounted(&spec.merged));
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !info.contains(spec.cwd.to_str().unwrap()),
        "left a mount:\n{info}"
    );
    assert!(!spec.cwd.exists());
    assert_eq!(names(&layer), ["keep"]);
    // Idempotent, also when never mounted or never created.
    snaps.remove("gone").unwrap();
    snaps.prepare("unmounted", &[]).unwrap();
    snaps.remove("unmounted").unwrap();
    snaps.remove("never").unwrap();
    assert_eq!(
        names(&tmp.path().join("root/snapshots")),
        Vec::<String>::new()
    );

    // A snapshot with no layers mounts too.
    let spec = snaps.prepare("bare", &[]).unwrap();
    mount_own(&spec);
    assert!(names(&spec.merged).is_empty());
    snaps.remove("bare").unwrap();
    assert!(!is_mounted(&spec.merged));
}
