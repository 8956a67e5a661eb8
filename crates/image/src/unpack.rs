//! Layer unpacking: a layer tarball (gzip, zstd or plain tar, detected from its first bytes)
//! written into a directory that becomes one overlayfs layer.
//!
//! OCI/Docker whiteouts are turned into overlayfs ones: `dir/.wh.NAME` becomes a character
//! device 0:0 at `dir/NAME`, and `dir/.wh..wh..opq` marks `dir` opaque
//! (`trusted.overlay.opaque=y`).
//!
//! Nothing is ever written outside the destination. Every entry path is split into components;
//! `..` is refused, a leading `/` is dropped (as Docker does), and each parent component is
//! checked with `symlink_metadata` before use, so a path that goes through a symlink (made by this
//! layer) is refused. Hard-link targets get the same checks. The caller hands in an empty
//! directory that only this function writes to while it runs, so those checks cannot be raced.
//! On any error everything inside the destination is removed before the error is returned.
//!
//! Extended attributes (PAX `SCHILY.xattr.*`) and the opaque marker are applied with
//! `lsetxattr`; `security.*` and `trusted.*` ones the kernel refuses to an unprivileged process
//! are skipped with a warning and counted in [`Summary::xattrs_skipped`].
//!
//! The sha256 of the uncompressed stream is computed on the way ([`Summary::diff_id`]), so the
//! caller can check it against the image config's `rootfs.diff_ids` (the layer's identity).

use std::ffi::{OsStr, OsString};
use std::fs::{self, OpenOptions};
use std::io::{self, Read};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::sys::stat::{makedev, mknod, utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use sha2::{Digest as _, Sha256};
use tracing::{debug, warn};

use crate::content::Digest;

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
const PAX_XATTR_PREFIX: &str = "SCHILY.xattr.";

/// How to unpack.
#[derive(Debug, Clone)]
pub struct UnpackOptions {
    /// Give entries the owners recorded in the tarball (needs root). Defaults to whether the
    /// process runs as root.
    pub preserve_owners: bool,
}

impl Default for UnpackOptions {
    fn default() -> Self {
        UnpackOptions {
            preserve_owners: nix::unistd::geteuid().is_root(),
        }
    }
}

/// What an unpack wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Tar entries processed (whiteouts included).
    pub entries: u64,
    /// Bytes of regular-file content written.
    pub bytes: u64,
    /// Whiteouts made: `.wh.NAME` entries and opaque-directory markers.
    pub whiteouts: u64,
    /// Extended attributes (including opaque markers) that could not be applied; see the module
    /// documentation.
    pub xattrs_skipped: u64,
    /// sha256 of the whole uncompressed tar stream, trailing padding included: the layer's
    /// `diff_id`.
    pub diff_id: Option<Digest>,
}

/// Why a layer could not be unpacked. Entry paths are the raw names from the tarball.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// The entry would write outside the destination, or is otherwise malformed.
    #[error("layer entry {entry:?} refused: {reason}")]
    Refused { entry: String, reason: String },
    /// Writing the entry failed.
    #[error("layer entry {entry:?}: {source}")]
    Entry {
        entry: String,
        #[source]
        source: io::Error,
    },
    /// The stream could not be read or decompressed, or is not a valid tar archive.
    #[error("reading the layer stream: {0}")]
    Stream(#[source] io::Error),
    /// The destination directory itself is unusable.
    #[error("layer destination {path}: {source}")]
    Destination {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl UnpackError {
    /// The tar entry the error is about, when there is one.
    pub fn entry(&self) -> Option<&str> {
        match self {
            UnpackError::Refused { entry, .. } | UnpackError::Entry { entry, .. } => Some(entry),
            _ => None,
        }
    }
}

/// The compression of a layer stream, from its magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Zstd,
    None,
}

impl Compression {
    /// Detects the compression from the first bytes of a stream.
    pub fn detect(magic: &[u8]) -> Compression {
        if magic.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// Unpacks a layer stream into `dest`, which must exist and should be empty. On error,
/// everything inside `dest` is removed.
pub fn unpack(
    reader: impl Read,
    dest: &Path,
    opts: &UnpackOptions,
) -> Result<Summary, UnpackError> {
    let meta = fs::symlink_metadata(dest).map_err(|source| UnpackError::Destination {
        path: dest.to_path_buf(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(UnpackError::Destination {
            path: dest.to_path_buf(),
            source: io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
        });
    }
    let result = decompress(reader).and_then(|r| {
        let mut hashed = HashingReader {
            inner: r,
            hasher: Sha256::new(),
        };
        let mut u = Unpacker {
            dest,
            opts,
            summary: Summary::default(),
            dirs: Vec::new(),
        };
        u.run(&mut hashed)?;
        u.summary.diff_id = Some(Digest::from_hasher(hashed.hasher));
        Ok(u.summary)
    });
    if result.is_err() {
        if let Err(e) = clear_dir(dest) {
            warn!(dest = %dest.display(), error = %e, "could not clean up a failed layer unpack");
        }
    }
    result
}

fn decompress<'a>(mut reader: impl Read + 'a) -> Result<Box<dyn Read + 'a>, UnpackError> {
    let mut magic = [0u8; 4];
    let mut got = 0;
    while got < magic.len() {
        match reader.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(UnpackError::Stream(e)),
        }
    }
    let head = magic[..got].to_vec();
    let kind = Compression::detect(&head);
    debug!(?kind, "layer compression");
    let stream = io::Cursor::new(head).chain(reader);
    Ok(match kind {
        Compression::Gzip => Box::new(flate2::read::GzDecoder::new(stream)),
        Compression::Zstd => Box::new(
            ruzstd::decoding::StreamingDecoder::new(stream)
                .map_err(|e| UnpackError::Stream(io::Error::new(io::ErrorKind::InvalidData, e)))?,
        ),
        Compression::None => Box::new(stream),
    })
}

/// Passes bytes through while hashing them.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Removes everything inside `dir` (not `dir` itself). `remove_dir_all` does not follow
/// symlinks.
fn clear_dir(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            fs::remove_dir_all(entry.path())?;
        } else {
            fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

fn display(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).into_owned()
}

fn refused(entry: &str, reason: impl Into<String>) -> UnpackError {
    UnpackError::Refused {
        entry: entry.to_string(),
        reason: reason.into(),
    }
}

/// Splits a tar path into its normal components: a leading `/` and `.` components are dropped,
/// `..` is refused.
fn components<'p>(entry: &str, raw: &'p [u8]) -> Result<Vec<&'p [u8]>, UnpackError> {
    let mut out = Vec::new();
    for c in raw.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err(refused(entry, "path contains a \"..\" component")),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Directory metadata applied once every entry is written (writing children changes a
/// directory's mtime, and a read-only mode would stop them being written).
struct DirMeta {
    path: PathBuf,
    mode: u32,
    mtime: i64,
}

struct Unpacker<'a> {
    dest: &'a Path,
    opts: &'a UnpackOptions,
    summary: Summary,
    dirs: Vec<DirMeta>,
}

/// What the PAX extended header of an entry says beyond what the tar crate already applies.
#[derive(Default)]
struct Pax {
    xattrs: Vec<(OsString, Vec<u8>)>,
    uid: Option<u64>,
    gid: Option<u64>,
    mtime: Option<i64>,
}

impl Unpacker<'_> {
    fn run(&mut self, reader: &mut dyn Read) -> Result<(), UnpackError> {
        let mut archive = tar::Archive::new(reader);
        for entry in archive.entries().map_err(UnpackError::Stream)? {
            let mut entry = entry.map_err(UnpackError::Stream)?;
            self.summary.entries += 1;
            self.entry(&mut entry)?;
        }
        // Read to the end of the stream: the compressed stream's checksum is verified and the
        // diff_id covers the tar's trailing padding, as every other implementation hashes it.
        io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(UnpackError::Stream)?;
        self.finish_dirs()
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), UnpackError> {
        let raw = entry.path_bytes().into_owned();
        let name = display(&raw);
        let comps = components(&name, &raw)?;
        let io_err = |source: io::Error| UnpackError::Entry {
            entry: name.clone(),
            source,
        };
        let kind = entry.header().entry_type();

        let Some((last, parents)) = comps.split_last() else {
            if kind.is_dir() {
                // The layer root itself ("./"): its metadata applies to dest.
                let pax = pax(entry).map_err(UnpackError::Stream)?;
                let path = self.dest.to_path_buf();
                return self.directory_meta(&name, entry.header(), &pax, path);
            }
            return Err(refused(&name, "empty path"));
        };

        if let Some(rest) = last.strip_prefix(WHITEOUT_PREFIX) {
            let parent = self.parent_dir(&name, parents, true)?;
            self.summary.whiteouts += 1;
            if *last == OPAQUE_MARKER {
                return self.set_xattr(&name, &parent, OsStr::new(OPAQUE_XATTR), b"y");
            }
            if rest.starts_with(WHITEOUT_PREFIX) {
                // Other `.wh..wh.` names are aufs bookkeeping, meaningless here.
                debug!(entry = %name, "skipping aufs metadata entry");
                self.summary.whiteouts -= 1;
                return Ok(());
            }
            if matches!(rest, b"" | b"." | b"..") || rest.contains(&b'/') {
                return Err(refused(&name, "whiteout names no valid entry"));
            }
            let target = parent.join(OsStr::from_bytes(rest));
            remove_existing(&target).map_err(io_err)?;
            mknod(&target, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))
                .map_err(|e| io_err(e.into()))?;
            return Ok(());
        }

        let parent = self.parent_dir(&name, parents, true)?;
        let path = parent.join(OsStr::from_bytes(last));
        let pax = pax(entry).map_err(UnpackError::Stream)?;
        let header = entry.header().clone();
        let mode = header.mode().map_err(UnpackError::Stream)? & 0o7777;

        use tar::EntryType as T;
        match kind {
            T::Directory => {
                match fs::symlink_metadata(&path) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => {
                        remove_existing(&path).map_err(io_err)?;
                        mkdir(&path).map_err(io_err)?;
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        mkdir(&path).map_err(io_err)?
                    }
                    Err(e) => return Err(io_err(e)),
                }
                return self.directory_meta(&name, &header, &pax, path);
            }
            T::Regular | T::Continuous => {
                remove_existing(&path).map_err(io_err)?;
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&path)
                    .map_err(io_err)?;
                let n = io::copy(entry, &mut file).map_err(UnpackError::Stream)?;
                self.summary.bytes += n;
            }
            T::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| refused(&name, "symlink without a target"))?;
                remove_existing(&path).map_err(io_err)?;
                std::os::unix::fs::symlink(OsStr::from_bytes(&target), &path).map_err(io_err)?;
            }
            T::Link => {
                let target_raw = entry
                    .link_name_bytes()
                    .ok_or_else(|| refused(&name, "hard link without a target"))?
                    .into_owned();
                let tcomps = components(&name, &target_raw)
                    .map_err(|_| refused(&name, "hard link target contains \"..\""))?;
                let Some((tlast, tparents)) = tcomps.split_last() else {
                    return Err(refused(&name, "hard link to the layer root"));
                };
                let tparent = self
                    .parent_dir(&name, tparents, false)
                    .map_err(|e| match e {
                        UnpackError::Refused { entry, reason } => UnpackError::Refused {
                            entry,
                            reason: format!(
                                "hard link target {:?}: {reason}",
                                display(&target_raw)
                            ),
                        },
                        other => other,
                    })?;
                let target = tparent.join(OsStr::from_bytes(tlast));
                match fs::symlink_metadata(&target) {
                    Ok(m) if m.is_dir() => return Err(refused(&name, "hard link to a directory")),
                    Ok(_) => {}
                    Err(e) => {
                        return Err(refused(
                            &name,
                            format!("hard link target {:?}: {e}", display(&target_raw)),
                        ))
                    }
                }
                if target == path {
                    return Ok(());
                }
                remove_existing(&path).map_err(io_err)?;
                // linkat without AT_SYMLINK_FOLLOW: a symlink target is linked, not followed.
                fs::hard_link(&target, &path).map_err(io_err)?;
                // A hard link shares the target's inode and metadata.
                return Ok(());
            }
            T::Char | T::Block | T::Fifo => {
                let sflag = match kind {
                    T::Char => SFlag::S_IFCHR,
                    T::Block => SFlag::S_IFBLK,
                    _ => SFlag::S_IFIFO,
                };
                let major = header
                    .device_major()
                    .map_err(UnpackError::Stream)?
                    .unwrap_or(0);
                let minor = header
                    .device_minor()
                    .map_err(UnpackError::Stream)?
                    .unwrap_or(0);
                remove_existing(&path).map_err(io_err)?;
                mknod(
                    &path,
                    sflag,
                    Mode::from_bits_truncate(0o600),
                    makedev(major.into(), minor.into()),
                )
                .map_err(|e| io_err(e.into()))?;
            }
            other => {
                return Err(refused(
                    &name,
                    format!("unsupported entry type {:?}", other),
                ))
            }
        }

        let is_symlink = kind == T::Symlink;
        self.owner(&path, &header, &pax).map_err(io_err)?;
        if !is_symlink {
            // After chown, which clears set-id bits.
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).map_err(io_err)?;
        }
        for (key, value) in &pax.xattrs {
            self.set_xattr(&name, &path, key, value)?;
        }
        let mtime = match pax.mtime {
            Some(t) => t,
            None => header.mtime().map_err(UnpackError::Stream)? as i64,
        };
        set_mtime(&path, mtime).map_err(io_err)?;
        Ok(())
    }

    /// Walks `parents` below dest, refusing symlinks and non-directories; missing directories
    /// are created when `create` is set (a tarball need not list every parent).
    fn parent_dir(
        &self,
        name: &str,
        parents: &[&[u8]],
        create: bool,
    ) -> Result<PathBuf, UnpackError> {
        let mut cur = self.dest.to_path_buf();
        for c in parents {
            cur.push(OsStr::from_bytes(c));
            match fs::symlink_metadata(&cur) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(refused(
                        name,
                        format!(
                            "path goes through the symlink {:?}",
                            cur.strip_prefix(self.dest).unwrap_or(&cur).display()
                        ),
                    ))
                }
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(refused(
                        name,
                        format!(
                            "{:?} is not a directory",
                            cur.strip_prefix(self.dest).unwrap_or(&cur).display()
                        ),
                    ))
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                    mkdir(&cur).map_err(|source| UnpackError::Entry {
                        entry: name.to_string(),
                        source,
                    })?
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(refused(
                        name,
                        format!(
                            "directory {:?} does not exist in the layer",
                            cur.strip_prefix(self.dest).unwrap_or(&cur).display()
                        ),
                    ))
                }
                Err(e) => {
                    return Err(UnpackError::Entry {
                        entry: name.to_string(),
                        source: e,
                    })
                }
            }
        }
        Ok(cur)
    }

    fn directory_meta(
        &mut self,
        name: &str,
        header: &tar::Header,
        pax: &Pax,
        path: PathBuf,
    ) -> Result<(), UnpackError> {
        let io_err = |source: io::Error| UnpackError::Entry {
            entry: name.to_string(),
            source,
        };
        self.owner(&path, header, pax).map_err(io_err)?;
        for (key, value) in &pax.xattrs {
            self.set_xattr(name, &path, key, value)?;
        }
        let mode = header.mode().map_err(UnpackError::Stream)? & 0o7777;
        let mtime = match pax.mtime {
            Some(t) => t,
            None => header.mtime().map_err(UnpackError::Stream)? as i64,
        };
        self.dirs.push(DirMeta { path, mode, mtime });
        Ok(())
    }

    fn owner(&self, path: &Path, header: &tar::Header, pax: &Pax) -> io::Result<()> {
        if !self.opts.preserve_owners {
            return Ok(());
        }
        let uid = match pax.uid {
            Some(u) => u,
            None => header.uid()?,
        };
        let gid = match pax.gid {
            Some(g) => g,
            None => header.gid()?,
        };
        let uid = u32::try_from(uid).map_err(|_| invalid("uid out of range"))?;
        let gid = u32::try_from(gid).map_err(|_| invalid("gid out of range"))?;
        std::os::unix::fs::lchown(path, Some(uid), Some(gid))
    }

    /// Applies one extended attribute. See the module documentation: no safe `lsetxattr` is
    /// available to this crate, so the attribute is logged and counted instead.
    fn set_xattr(
        &mut self,
        name: &str,
        path: &Path,
        key: &OsStr,
        value: &[u8],
    ) -> Result<(), UnpackError> {
        if key.is_empty() || key.as_bytes().contains(&0) {
            return Err(refused(name, "invalid extended attribute name"));
        }
        // xattr::set is lsetxattr: a symlink's own attributes, never its target's.
        let Err(e) = xattr::set(path, key, value) else {
            return Ok(());
        };
        // security.* and trusted.* need privileges (or a file system that supports
        // them); a layer is still usable without them, so skip those and say so.
        let privileged =
            key.as_bytes().starts_with(b"security.") || key.as_bytes().starts_with(b"trusted.");
        let denied = matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::ENOTSUP));
        if privileged && denied {
            warn!(
                entry = %name,
                path = %path.display(),
                xattr = %key.to_string_lossy(),
                "extended attribute not applied: {e}"
            );
            self.summary.xattrs_skipped += 1;
            return Ok(());
        }
        Err(UnpackError::Entry {
            entry: name.to_string(),
            source: e,
        })
    }

    fn finish_dirs(&mut self) -> Result<(), UnpackError> {
        for d in self.dirs.iter().rev() {
            let err = |source: io::Error| UnpackError::Entry {
                entry: d.path.display().to_string(),
                source,
            };
            // A later entry may have replaced the directory; never chmod through a symlink.
            match fs::symlink_metadata(&d.path) {
                Ok(m) if m.is_dir() => {}
                _ => continue,
            }
            fs::set_permissions(&d.path, fs::Permissions::from_mode(d.mode)).map_err(err)?;
            set_mtime(&d.path, d.mtime).map_err(err)?;
        }
        Ok(())
    }
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

fn pax<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<Pax> {
    let mut out = Pax::default();
    let Some(exts) = entry.pax_extensions()? else {
        return Ok(out);
    };
    for ext in exts {
        let ext = ext?;
        let key = ext.key_bytes();
        let parse_int = |v: &[u8]| -> io::Result<u64> {
            std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .ok_or_else(|| invalid("bad number in PAX header"))
        };
        if let Some(attr) = key.strip_prefix(PAX_XATTR_PREFIX.as_bytes()) {
            out.xattrs.push((
                OsString::from_vec(attr.to_vec()),
                ext.value_bytes().to_vec(),
            ));
        } else if key == b"uid" {
            out.uid = Some(parse_int(ext.value_bytes())?);
        } else if key == b"gid" {
            out.gid = Some(parse_int(ext.value_bytes())?);
        } else if key == b"mtime" {
            // "seconds[.fraction]": whole seconds are kept.
            let v = ext.value_bytes();
            let secs = v.split(|&b| b == b'.').next().unwrap_or(v);
            let s = std::str::from_utf8(secs).map_err(|_| invalid("bad PAX mtime"))?;
            out.mtime = Some(s.trim().parse().map_err(|_| invalid("bad PAX mtime"))?);
        }
    }
    Ok(out)
}

fn mkdir(path: &Path) -> io::Result<()> {
    fs::DirBuilder::new().mode(0o755).create(path)
}

/// Removes whatever this layer already put at `path` (a later entry replaces an earlier one).
/// `path`'s parents have been checked, and `remove_dir_all` does not follow symlinks.
fn remove_existing(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn set_mtime(path: &Path, mtime: i64) -> io::Result<()> {
    let t = TimeSpec::new(mtime as libc::time_t, 0);
    utimensat(None, path, &t, &t, UtimensatFlags::NoFollowSymlink).map_err(io::Error::from)
}
