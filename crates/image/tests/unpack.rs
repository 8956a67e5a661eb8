//! Layer unpacking: normal layers in every compression, whiteouts, and a corpus of hostile
//! layers that must be refused without writing anything anywhere.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use coracle_image::unpack::{unpack, Compression, Summary, UnpackError, UnpackOptions};
use tar::{EntryType, Header};

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn skip_unless_root(test: &str) -> bool {
    if is_root() {
        return false;
    }
    println!("skipping {test}: needs root (mknod, chown)");
    true
}

/// A tarball built entry by entry, with raw names the tar crate's path setters would refuse.
struct Layer {
    builder: tar::Builder<Vec<u8>>,
}

impl Layer {
    fn new() -> Self {
        Layer {
            builder: tar::Builder::new(Vec::new()),
        }
    }

    fn header(name: &[u8], kind: EntryType, mode: u32, size: u64, link: &[u8]) -> Header {
        let mut h = Header::new_ustar();
        let old = h.as_old_mut();
        assert!(name.len() <= old.name.len() && link.len() <= old.linkname.len());
        old.name[..name.len()].copy_from_slice(name);
        old.linkname[..link.len()].copy_from_slice(link);
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(1_600_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h
    }

    fn push(&mut self, mut h: Header, data: &[u8]) -> &mut Self {
        h.set_cksum();
        self.builder.append(&h, data).unwrap();
        self
    }

    fn file(&mut self, name: &str, mode: u32, data: &[u8]) -> &mut Self {
        let h = Self::header(
            name.as_bytes(),
            EntryType::Regular,
            mode,
            data.len() as u64,
            b"",
        );
        self.push(h, data)
    }

    fn file_owned(&mut self, name: &str, uid: u64, gid: u64, data: &[u8]) -> &mut Self {
        let mut h = Self::header(
            name.as_bytes(),
            EntryType::Regular,
            0o640,
            data.len() as u64,
            b"",
        );
        h.set_uid(uid);
        h.set_gid(gid);
        self.push(h, data)
    }

    fn dir(&mut self, name: &str, mode: u32) -> &mut Self {
        let h = Self::header(name.as_bytes(), EntryType::Directory, mode, 0, b"");
        self.push(h, b"")
    }

    fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        let h = Self::header(
            name.as_bytes(),
            EntryType::Symlink,
            0o777,
            0,
            target.as_bytes(),
        );
        self.push(h, b"")
    }

    fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        let h = Self::header(
            name.as_bytes(),
            EntryType::Link,
            0o644,
            0,
            target.as_bytes(),
        );
        self.push(h, b"")
    }

    fn device(&mut self, name: &str, kind: EntryType, major: u32, minor: u32) -> &mut Self {
        let mut h = Self::header(name.as_bytes(), kind, 0o620, 0, b"");
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        self.push(h, b"")
    }

    /// A PAX extended header applying to the next entry.
    fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        let mut body = Vec::new();
        for (key, value) in records {
            let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
            let mut len = rest + 1;
            while len != rest + len.to_string().len() {
                len = rest + len.to_string().len();
            }
            write!(body, "{len} {key}=").unwrap();
            body.extend_from_slice(value);
            body.push(b'\n');
        }
        let h = Self::header(
            b"PaxHeaders/x",
            EntryType::XHeader,
            0o644,
            body.len() as u64,
            b"",
        );
        self.push(h, &body)
    }

    fn tar(&mut self) -> Vec<u8> {
        self.builder.finish().unwrap();
        self.builder.get_ref().clone()
    }

    fn gzip(&mut self) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&self.tar()).unwrap();
        enc.finish().unwrap()
    }
}

/// `<tmp>/layer` (the destination), `<tmp>/outside` (must stay empty) and `<tmp>/victim` (holds
/// a file that must survive).
struct Site {
    tmp: tempfile::TempDir,
}

impl Site {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        for d in ["layer", "outside", "victim"] {
            fs::create_dir(tmp.path().join(d)).unwrap();
        }
        fs::write(tmp.path().join("victim/secret"), b"secret").unwrap();
        Site { tmp }
    }
    fn dest(&self) -> PathBuf {
        self.tmp.path().join("layer")
    }
    fn outside(&self) -> PathBuf {
        self.tmp.path().join("outside")
    }
    fn victim(&self) -> PathBuf {
        self.tmp.path().join("victim")
    }
    fn unpack(&self, data: &[u8]) -> Result<Summary, UnpackError> {
        unpack(data, &self.dest(), &UnpackOptions::default())
    }
    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
    /// Nothing in dest, nothing new outside it.
    fn assert_untouched(&self, case: &str) {
        assert!(
            Self::names(&self.dest()).is_empty(),
            "{case}: dest not emptied"
        );
        assert!(
            Self::names(&self.outside()).is_empty(),
            "{case}: wrote outside"
        );
        assert_eq!(
            Self::names(&self.victim()),
            ["secret"],
            "{case}: victim dir changed"
        );
        assert_eq!(
            fs::read(self.victim().join("secret")).unwrap(),
            b"secret",
            "{case}"
        );
        assert_eq!(
            Self::names(self.tmp.path()),
            ["layer", "outside", "victim"],
            "{case}: wrote beside dest"
        );
    }
}

fn normal_layer() -> Layer {
    let mut l = Layer::new();
    l.dir("etc/", 0o755)
        .file("etc/hosts", 0o644, b"127.0.0.1 localhost\n")
        .dir("bin", 0o711)
        .file("bin/tool", 0o4755, b"#!/bin/sh\necho hi\n")
        .symlink("bin/sh", "/bin/busybox")
        .hardlink("bin/tool2", "bin/tool")
        .pax(&[("SCHILY.xattr.user.test", b"hello")])
        .file("./tagged", 0o600, b"x")
        .file("/abs/leading-slash", 0o644, b"stripped")
        .dir("ro", 0o555)
        .file("ro/inside", 0o444, b"ro");
    l
}

fn check_normal(dest: &Path, summary: &Summary) {
    assert_eq!(
        fs::read(dest.join("etc/hosts")).unwrap(),
        b"127.0.0.1 localhost\n"
    );
    let tool = fs::symlink_metadata(dest.join("bin/tool")).unwrap();
    assert_eq!(tool.permissions().mode() & 0o7777, 0o4755);
    assert_eq!(tool.mtime(), 1_600_000_000);
    assert_eq!(tool.nlink(), 2);
    let tool2 = fs::symlink_metadata(dest.join("bin/tool2")).unwrap();
    assert_eq!(tool2.ino(), tool.ino());
    assert_eq!(
        fs::read_link(dest.join("bin/sh")).unwrap(),
        Path::new("/bin/busybox")
    );
    let sh = fs::symlink_metadata(dest.join("bin/sh")).unwrap();
    assert!(sh.file_type().is_symlink());
    assert_eq!(sh.mtime(), 1_600_000_000);
    let bin = fs::metadata(dest.join("bin")).unwrap();
    assert_eq!(bin.permissions().mode() & 0o7777, 0o711);
    assert_eq!(
        bin.mtime(),
        1_600_000_000,
        "directory mtime kept after its children"
    );
    let ro = fs::metadata(dest.join("ro")).unwrap();
    assert_eq!(ro.permissions().mode() & 0o7777, 0o555);
    assert_eq!(fs::read(dest.join("ro/inside")).unwrap(), b"ro");
    assert_eq!(fs::read(dest.join("tagged")).unwrap(), b"x");
    assert_eq!(
        fs::read(dest.join("abs/leading-slash")).unwrap(),
        b"stripped"
    );
    assert_eq!(summary.entries, 10);
    assert_eq!(summary.bytes, 20 + 18 + 1 + 8 + 2);
    assert_eq!(summary.whiteouts, 0);
    assert_eq!(summary.xattrs_skipped, 0);
    let tagged = xattr::get(dest.join("tagged"), "user.test").unwrap();
    assert_eq!(tagged.as_deref(), Some(&b"hello"[..]), "user.test xattr");
}

#[test]
fn compression_is_detected_from_magic_bytes() {
    assert_eq!(Compression::detect(&[0x1f, 0x8b, 8, 0]), Compression::Gzip);
    assert_eq!(
        Compression::detect(&[0x28, 0xb5, 0x2f, 0xfd]),
        Compression::Zstd
    );
    assert_eq!(Compression::detect(b"etc/"), Compression::None);
    assert_eq!(Compression::detect(b""), Compression::None);
}

#[test]
fn plain_tar_unpacks() {
    let site = Site::new();
    let summary = site.unpack(&normal_layer().tar()).unwrap();
    check_normal(&site.dest(), &summary);
}

#[test]
fn gzip_unpacks() {
    let site = Site::new();
    let summary = site.unpack(&normal_layer().gzip()).unwrap();
    check_normal(&site.dest(), &summary);
}

#[test]
fn diff_id_is_the_sha256_of_the_uncompressed_tar_whatever_the_compression() {
    let tar = normal_layer().tar();
    let expected = coracle_image::content::Digest::of_bytes(&tar);
    for (what, data) in [("plain", tar.clone()), ("gzip", normal_layer().gzip())] {
        let site = Site::new();
        let summary = site.unpack(&data).unwrap();
        assert_eq!(summary.diff_id.as_ref(), Some(&expected), "{what} layer");
    }
}

#[test]
fn zstd_unpacks() {
    let site = Site::new();
    let tar = normal_layer().tar();
    let zst =
        ruzstd::encoding::compress_to_vec(&tar[..], ruzstd::encoding::CompressionLevel::Fastest);
    assert_eq!(Compression::detect(&zst), Compression::Zstd);
    let summary = site.unpack(&zst).unwrap();
    check_normal(&site.dest(), &summary);
}

#[test]
fn later_entries_replace_earlier_ones() {
    let site = Site::new();
    let mut l = Layer::new();
    l.file("a", 0o644, b"one")
        .file("a", 0o644, b"two")
        .dir("d", 0o755)
        .file("d/x", 0o644, b"x")
        .file("d", 0o644, b"now a file")
        .symlink("s", "/etc")
        .dir("s", 0o755)
        .file("s/inside", 0o644, b"in");
    site.unpack(&l.tar()).unwrap();
    let dest = site.dest();
    assert_eq!(fs::read(dest.join("a")).unwrap(), b"two");
    assert_eq!(fs::read(dest.join("d")).unwrap(), b"now a file");
    assert!(fs::symlink_metadata(dest.join("s")).unwrap().is_dir());
    assert_eq!(fs::read(dest.join("s/inside")).unwrap(), b"in");
}

#[test]
fn owners_and_devices_as_root() {
    if skip_unless_root("owners_and_devices_as_root") {
        return;
    }
    let site = Site::new();
    let mut l = Layer::new();
    l.file_owned("owned", 1234, 5678, b"o")
        .device("dev/null", EntryType::Char, 1, 3)
        .device("dev/loop9", EntryType::Block, 7, 9)
        .device("fifo", EntryType::Fifo, 0, 0)
        .pax(&[("uid", b"3000000"), ("gid", b"3000001")])
        .file("big-ids", 0o644, b"b");
    site.unpack(&l.tar()).unwrap();
    let dest = site.dest();
    let owned = fs::metadata(dest.join("owned")).unwrap();
    assert_eq!((owned.uid(), owned.gid()), (1234, 5678));
    assert_eq!(owned.permissions().mode() & 0o7777, 0o640);
    let null = fs::symlink_metadata(dest.join("dev/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), nix::sys::stat::makedev(1, 3));
    let lp = fs::symlink_metadata(dest.join("dev/loop9")).unwrap();
    assert!(lp.file_type().is_block_device());
    assert_eq!(lp.rdev(), nix::sys::stat::makedev(7, 9));
    assert!(fs::symlink_metadata(dest.join("fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    let big = fs::metadata(dest.join("big-ids")).unwrap();
    assert_eq!((big.uid(), big.gid()), (3_000_000, 3_000_001));
}

#[test]
fn whiteouts_become_overlay_whiteouts() {
    if skip_unless_root("whiteouts_become_overlay_whiteouts") {
        return;
    }
    let site = Site::new();
    let mut l = Layer::new();
    l.dir("etc", 0o755)
        .file("etc/.wh.gone", 0o644, b"")
        .file(".wh.top", 0o644, b"")
        .dir("opaque", 0o755)
        .file("opaque/.wh..wh..opq", 0o644, b"")
        .file("opaque/kept", 0o644, b"k")
        .file("x/.wh..wh.plnk", 0o644, b"");
    let summary = site.unpack(&l.gzip()).unwrap();
    let dest = site.dest();
    for p in ["etc/gone", "top"] {
        let m = fs::symlink_metadata(dest.join(p)).unwrap();
        assert!(m.file_type().is_char_device(), "{p}");
        assert_eq!(m.rdev(), 0, "{p}");
    }
    assert!(!dest.join("etc/.wh.gone").exists());
    assert!(!dest.join(".wh.top").exists());
    assert!(!dest.join("opaque/.wh..wh..opq").exists());
    assert!(!dest.join("x/.wh..wh.plnk").exists());
    assert_eq!(fs::read(dest.join("opaque/kept")).unwrap(), b"k");
    assert_eq!(summary.whiteouts, 3);
    assert_eq!(summary.xattrs_skipped, 0);
    let opaque = xattr::get(dest.join("opaque"), "trusted.overlay.opaque").unwrap();
    assert_eq!(opaque.as_deref(), Some(&b"y"[..]), "opaque marker");
}

/// Each case: entries (a harmless one first, so cleanup is exercised) and the entry that must
/// be named in the error.
fn hostile_corpus(site: &Site) -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let outside = site.outside().display().to_string();
    let victim = site.victim().display().to_string();
    let mut cases = Vec::new();
    let mut l = Layer::new();
    l.file("ok", 0o644, b"ok").file("../escape", 0o644, b"x");
    cases.push(("dotdot", l.tar(), "../escape"));

    let mut l = Layer::new();
    l.file("ok", 0o644, b"ok")
        .file("a/../../escape", 0o644, b"x");
    cases.push(("nested dotdot", l.gzip(), "a/../../escape"));

    let mut l = Layer::new();
    l.symlink("evil", &outside).file("evil/file", 0o644, b"x");
    cases.push(("absolute symlink", l.tar(), "evil/file"));

    let mut l = Layer::new();
    l.symlink("evil", "../..").file("evil/file", 0o644, b"x");
    cases.push(("relative symlink", l.tar(), "evil/file"));

    let mut l = Layer::new();
    l.symlink("evil", &outside).dir("evil/sub", 0o755);
    cases.push(("directory through symlink", l.tar(), "evil/sub"));

    let mut l = Layer::new();
    l.dir("d", 0o755)
        .symlink("d/evil", "../../outside")
        .symlink("d/evil/link", "/etc/shadow");
    cases.push(("symlink through symlink", l.tar(), "d/evil/link"));

    let mut l = Layer::new();
    l.file("ok", 0o644, b"ok")
        .hardlink("passwd", "../../etc/passwd");
    cases.push(("hard link dotdot", l.tar(), "passwd"));

    let mut l = Layer::new();
    l.symlink("evil", &victim).hardlink("stolen", "evil/secret");
    cases.push(("hard link through symlink", l.tar(), "stolen"));

    let mut l = Layer::new();
    l.file("ok", 0o644, b"ok")
        .hardlink("abs", &format!("{victim}/secret"));
    cases.push(("hard link absolute", l.tar(), "abs"));

    let mut l = Layer::new();
    l.file("ok", 0o644, b"ok").file(".wh...", 0o644, b"");
    cases.push(("whiteout of ..", l.tar(), ".wh..."));

    let mut l = Layer::new();
    l.file("ok", 0o644, b"ok").file("a/../../.wh.x", 0o644, b"");
    cases.push(("whiteout with dotdot", l.tar(), "a/../../.wh.x"));

    let mut l = Layer::new();
    l.symlink("evil", &victim)
        .file("evil/.wh.secret", 0o644, b"");
    cases.push(("whiteout through symlink", l.tar(), "evil/.wh.secret"));

    let mut l = Layer::new();
    l.symlink("evil", &victim)
        .file("evil/.wh..wh..opq", 0o644, b"");
    cases.push((
        "opaque marker through symlink",
        l.tar(),
        "evil/.wh..wh..opq",
    ));
    cases
}

#[test]
fn hostile_layers_are_refused_and_cleaned_up() {
    let site = Site::new();
    for (case, data, entry) in hostile_corpus(&site) {
        let err = site.unpack(&data).expect_err(case);
        println!("{case}: {err}");
        assert!(
            matches!(err, UnpackError::Refused { .. }),
            "{case}: unexpected error kind {err:?}"
        );
        assert_eq!(err.entry(), Some(entry), "{case}: {err}");
        assert!(err.to_string().contains(entry), "{case}: {err}");
        site.assert_untouched(case);
    }
}

#[test]
fn truncated_gzip_fails_cleanly() {
    let site = Site::new();
    let mut l = Layer::new();
    l.file("a", 0o644, &vec![7u8; 100_000])
        .file("b", 0o644, &vec![9u8; 100_000]);
    let gz = l.gzip();
    let err = site.unpack(&gz[..gz.len() / 2]).expect_err("truncated");
    assert!(matches!(err, UnpackError::Stream(_)), "{err:?}");
    site.assert_untouched("truncated");
}

#[test]
fn corrupt_gzip_checksum_fails_cleanly() {
    let site = Site::new();
    let mut l = Layer::new();
    l.file("a", 0o644, b"hello world");
    let mut gz = l.gzip();
    let n = gz.len();
    gz[n - 8] ^= 0xff; // the CRC32 in the trailer
    let err = site.unpack(&gz).expect_err("bad crc");
    assert!(matches!(err, UnpackError::Stream(_)), "{err:?}");
    site.assert_untouched("bad crc");
}

#[test]
fn garbage_fails_cleanly() {
    let site = Site::new();
    let mut data = vec![0x1f, 0x8b];
    data.extend_from_slice(&[0x55; 300]);
    assert!(site.unpack(&data).is_err());
    site.assert_untouched("garbage gzip");
    let mut zst = vec![0x28, 0xb5, 0x2f, 0xfd];
    zst.extend_from_slice(&[0xff; 64]);
    assert!(site.unpack(&zst).is_err());
    site.assert_untouched("garbage zstd");
}
