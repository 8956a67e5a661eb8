//! A content-addressed blob store, laid out like containerd's:
//!
//! ```text
//! <root>/blobs/sha256/<hex>    committed blobs, read-only (0444), named by their sha256
//! <root>/ingest/<ref>/data     partial writes, resumable, keyed by a caller-chosen `ref`
//! ```
//!
//! A blob only ever appears under `blobs/` through [`Writer::commit`], which checks its size and
//! sha256 against what the caller expected, fsyncs it and renames it into place atomically. A
//! crash at any point therefore leaves either nothing or a complete, verified blob under
//! `blobs/`; leftovers in `ingest/` are resumed by the next writer with the same `ref` (or
//! removed by [`ContentStore::abort`]) and are never listed.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sha2::{Digest as _, Sha256};
use tracing::{debug, warn};

/// The only digest algorithm the store accepts.
pub const ALGORITHM: &str = "sha256";
const HEX_LEN: usize = 64;
const BUF_SIZE: usize = 64 * 1024;

/// Why a string is not a valid `sha256:<hex>` digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error(
        "invalid digest {input:?}: expected \"sha256:<64 hex digits>\", found no algorithm prefix"
    )]
    MissingAlgorithm { input: String },
    #[error(
        "invalid digest {input:?}: unsupported algorithm {algorithm:?} (only sha256 is supported)"
    )]
    UnsupportedAlgorithm { input: String, algorithm: String },
    #[error("invalid digest {input:?}: a sha256 digest has {HEX_LEN} hex digits, found {len}")]
    Length { input: String, len: usize },
    #[error("invalid digest {input:?}: {found:?} is not a lowercase hex digit")]
    NonHex { input: String, found: char },
}

/// A validated `sha256:<64 lowercase hex>` content digest.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest {
    hex: String,
}

impl Digest {
    /// Parses and validates `sha256:<64 lowercase hex digits>`.
    pub fn parse(input: &str) -> Result<Self, DigestError> {
        let Some((algorithm, hex)) = input.split_once(':') else {
            return Err(DigestError::MissingAlgorithm {
                input: input.to_owned(),
            });
        };
        if algorithm != ALGORITHM {
            return Err(DigestError::UnsupportedAlgorithm {
                input: input.to_owned(),
                algorithm: algorithm.to_owned(),
            });
        }
        Self::from_hex_checked(hex, input)
    }

    /// Builds a digest from the bare 64-digit hex part (as used for blob file names).
    pub fn from_hex(hex: &str) -> Result<Self, DigestError> {
        Self::from_hex_checked(hex, hex)
    }

    fn from_hex_checked(hex: &str, input: &str) -> Result<Self, DigestError> {
        if let Some(found) = hex.chars().find(|c| !matches!(c, '0'..='9' | 'a'..='f')) {
            return Err(DigestError::NonHex {
                input: input.to_owned(),
                found,
            });
        }
        if hex.len() != HEX_LEN {
            return Err(DigestError::Length {
                input: input.to_owned(),
                len: hex.len(),
            });
        }
        Ok(Self {
            hex: hex.to_owned(),
        })
    }

    /// The sha256 digest of `data`.
    pub fn of_bytes(data: &[u8]) -> Self {
        Self::from_hasher(Sha256::new_with_prefix(data))
    }

    /// The digest a finished hasher computed.
    pub(crate) fn from_hasher(hasher: Sha256) -> Self {
        let bytes = hasher.finalize();
        let mut hex = String::with_capacity(HEX_LEN);
        for b in bytes.iter() {
            use fmt::Write as _;
            // Writing into a String cannot fail.
            let _ = write!(hex, "{b:02x}");
        }
        Self { hex }
    }

    /// Always `"sha256"`.
    pub fn algorithm(&self) -> &'static str {
        ALGORITHM
    }

    /// The 64 lowercase hex digits.
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{ALGORITHM}:{}", self.hex)
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<&str> for Digest {
    type Error = DigestError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::parse(s)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Errors of the content store.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("content store: cannot {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("content store: invalid ingest ref {ingest_ref:?}: {reason}")]
    InvalidRef {
        ingest_ref: String,
        reason: &'static str,
    },
    #[error("content store: ingest {ingest_ref:?} is being written by another writer")]
    Locked { ingest_ref: String },
    #[error("content store: blob {digest} not found")]
    NotFound { digest: Digest },
    #[error(
        "content store: digest mismatch for ingest {ingest_ref:?}: expected {expected}, got {actual} (partial data removed)"
    )]
    DigestMismatch {
        ingest_ref: String,
        expected: Digest,
        actual: Digest,
    },
    #[error(
        "content store: size mismatch for ingest {ingest_ref:?}: expected {expected} bytes, got {actual} (partial data removed)"
    )]
    SizeMismatch {
        ingest_ref: String,
        expected: u64,
        actual: u64,
    },
    #[error("content store: stored blob {digest} is corrupt: its content hashes to {actual}")]
    Corrupt { digest: Digest, actual: Digest },
    #[error(transparent)]
    Digest(#[from] DigestError),
}

type Result<T, E = ContentError> = std::result::Result<T, E>;

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ContentError + 'a {
    move |source| ContentError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Checks that an ingest ref is a single, safe file name.
fn validate_ref(ingest_ref: &str) -> Result<()> {
    let bad = |reason| {
        Err(ContentError::InvalidRef {
            ingest_ref: ingest_ref.to_owned(),
            reason,
        })
    };
    if ingest_ref.is_empty() {
        return bad("it is empty");
    }
    if ingest_ref.len() > 200 {
        return bad("it is longer than 200 bytes");
    }
    if ingest_ref.starts_with('.') {
        return bad("it starts with '.'");
    }
    if !ingest_ref
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return bad("only ASCII letters, digits, '.', '_' and '-' are allowed");
    }
    Ok(())
}

/// fsyncs a directory so that renames and removals in it are durable.
fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync directory", dir))
}

fn remove_dir_all_if_exists(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err("remove", dir)(e)),
        _ => Ok(()),
    }
}

/// Hashes everything `reader` yields; returns the hasher and the byte count.
fn hash_reader(reader: &mut impl Read, path: &Path) -> Result<(Sha256, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; BUF_SIZE];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err("read", path)(e)),
        };
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((hasher, total))
}

/// A content-addressed blob store rooted at a directory.
#[derive(Debug, Clone)]
pub struct ContentStore {
    root: PathBuf,
}

impl ContentStore {
    /// Opens (creating if needed) a store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let store = Self { root: root.into() };
        for dir in [store.blobs_dir(), store.ingest_root()] {
            fs::create_dir_all(&dir).map_err(io_err("create directory", &dir))?;
        }
        Ok(store)
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs").join(ALGORITHM)
    }

    fn ingest_root(&self) -> PathBuf {
        self.root.join("ingest")
    }

    /// Where a committed blob lives (whether or not it exists).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir().join(digest.hex())
    }

    /// Starts or resumes the ingest `ingest_ref`. If `ingest/<ref>/data` exists, the writer
    /// continues at its end ([`Writer::offset`]), rehashing the data already there. Only one
    /// writer may hold a given ref at a time ([`ContentError::Locked`] otherwise).
    pub fn writer(
        &self,
        ingest_ref: &str,
        expected: Option<&Digest>,
        expected_size: Option<u64>,
    ) -> Result<Writer> {
        validate_ref(ingest_ref)?;
        let dir = self.ingest_root().join(ingest_ref);
        fs::create_dir_all(&dir).map_err(io_err("create directory", &dir))?;
        let data_path = dir.join("data");
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&data_path)
            .map_err(io_err("open", &data_path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(ContentError::Locked {
                    ingest_ref: ingest_ref.to_owned(),
                })
            }
            Err(fs::TryLockError::Error(e)) => return Err(io_err("lock", &data_path)(e)),
        }
        file.seek(SeekFrom::Start(0))
            .map_err(io_err("seek", &data_path))?;
        let (hasher, offset) = hash_reader(&mut file, &data_path)?;
        if offset > 0 {
            debug!(ingest_ref, offset, "resuming ingest");
        }
        Ok(Writer {
            blobs_dir: self.blobs_dir(),
            ingest_dir: dir,
            data_path,
            ingest_ref: ingest_ref.to_owned(),
            file,
            hasher,
            offset,
            expected: expected.cloned(),
            expected_size,
        })
    }

    /// Writes `data` as a blob in one go and returns its digest (idempotent, and safe when
    /// several processes put the same blob at once).
    pub fn put(&self, data: &[u8]) -> Result<Digest> {
        static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let digest = Digest::of_bytes(data);
        if self.exists(&digest) {
            return Ok(digest);
        }
        // The whole blob is in hand, so a private ingest is as good as a shared one and never
        // collides with another writer of the same content.
        let ingest_ref = format!(
            "put-{}-{}-{}",
            &digest.hex()[..16],
            std::process::id(),
            SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        self.abort(&ingest_ref)?;
        let mut w = self.writer(&ingest_ref, Some(&digest), Some(data.len() as u64))?;
        let result = w.write_all(data).and_then(|()| w.commit());
        if result.is_err() {
            let _ = self.abort(&ingest_ref);
        }
        result
    }

    /// Removes the partial ingest `ingest_ref` unless a writer holds it right now (a pull in
    /// progress in another process). Returns whether it was removed.
    pub fn abort_if_idle(&self, ingest_ref: &str) -> Result<bool> {
        validate_ref(ingest_ref)?;
        let data_path = self.ingest_root().join(ingest_ref).join("data");
        match OpenOptions::new().read(true).open(&data_path) {
            Ok(file) => match file.try_lock() {
                Ok(()) => {}
                Err(fs::TryLockError::WouldBlock) => return Ok(false),
                Err(fs::TryLockError::Error(e)) => return Err(io_err("lock", &data_path)(e)),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("open", &data_path)(e)),
        }
        self.abort(ingest_ref)?;
        Ok(true)
    }

    /// Removes the partial ingest `ingest_ref`, if any.
    pub fn abort(&self, ingest_ref: &str) -> Result<()> {
        validate_ref(ingest_ref)?;
        remove_dir_all_if_exists(&self.ingest_root().join(ingest_ref))
    }

    /// Refs of the partial ingests currently present (e.g. left over by a crash).
    pub fn ingests(&self) -> Result<Vec<String>> {
        let root = self.ingest_root();
        let mut refs = Vec::new();
        for entry in fs::read_dir(&root).map_err(io_err("read directory", &root))? {
            let entry = entry.map_err(io_err("read directory", &root))?;
            if let Some(name) = entry.file_name().to_str() {
                if validate_ref(name).is_ok() {
                    refs.push(name.to_owned());
                }
            }
        }
        refs.sort();
        Ok(refs)
    }

    /// Whether a committed blob exists.
    pub fn exists(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Opens a committed blob for reading.
    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let path = self.blob_path(digest);
        File::open(&path).map_err(|e| self.not_found_or(e, digest, "open", &path))
    }

    /// The size of a committed blob in bytes.
    pub fn size(&self, digest: &Digest) -> Result<u64> {
        let path = self.blob_path(digest);
        fs::metadata(&path)
            .map(|m| m.len())
            .map_err(|e| self.not_found_or(e, digest, "stat", &path))
    }

    /// Deletes a committed blob; deleting a missing blob succeeds.
    pub fn delete(&self, digest: &Digest) -> Result<()> {
        let path = self.blob_path(digest);
        match fs::remove_file(&path) {
            Ok(()) => {
                debug!(%digest, "deleted blob");
                sync_dir(&self.blobs_dir())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove", &path)(e)),
        }
    }

    /// All committed blobs, sorted. Anything in `blobs/sha256/` that is not a regular file
    /// named by a valid digest (temporary files, directories) is ignored.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let dir = self.blobs_dir();
        let mut digests = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_err("read directory", &dir))? {
            let entry = entry.map_err(io_err("read directory", &dir))?;
            let Some(digest) = entry
                .file_name()
                .to_str()
                .and_then(|n| Digest::from_hex(n).ok())
            else {
                continue;
            };
            if entry.file_type().is_ok_and(|t| t.is_file()) {
                digests.push(digest);
            }
        }
        digests.sort();
        Ok(digests)
    }

    /// Rehashes a committed blob; [`ContentError::Corrupt`] if its content no longer matches.
    pub fn verify(&self, digest: &Digest) -> Result<()> {
        let path = self.blob_path(digest);
        let mut file = self.open_blob(digest)?;
        let (hasher, _) = hash_reader(&mut file, &path)?;
        let actual = Digest::from_hasher(hasher);
        if &actual != digest {
            warn!(%digest, %actual, "stored blob is corrupt");
            return Err(ContentError::Corrupt {
                digest: digest.clone(),
                actual,
            });
        }
        Ok(())
    }

    fn not_found_or(
        &self,
        e: io::Error,
        digest: &Digest,
        op: &'static str,
        path: &Path,
    ) -> ContentError {
        if e.kind() == io::ErrorKind::NotFound {
            ContentError::NotFound {
                digest: digest.clone(),
            }
        } else {
            io_err(op, path)(e)
        }
    }
}

/// A (possibly resumed) partial write into `ingest/<ref>/data`. Dropping it without
/// [`commit`](Writer::commit) keeps the partial data for a later resume.
#[derive(Debug)]
pub struct Writer {
    blobs_dir: PathBuf,
    ingest_dir: PathBuf,
    data_path: PathBuf,
    ingest_ref: String,
    file: File,
    hasher: Sha256,
    offset: u64,
    expected: Option<Digest>,
    expected_size: Option<u64>,
}

impl Writer {
    /// Bytes written so far, including any resumed from an earlier writer.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The ingest ref this writer holds.
    pub fn ingest_ref(&self) -> &str {
        &self.ingest_ref
    }

    /// Appends `buf` to the partial data.
    pub fn write_all(&mut self, buf: &[u8]) -> Result<()> {
        self.file
            .write_all(buf)
            .map_err(io_err("write", &self.data_path))?;
        self.hasher.update(buf);
        self.offset += buf.len() as u64;
        Ok(())
    }

    /// Verifies the size and sha256, then moves the data into `blobs/sha256/<hex>`.
    /// On a mismatch the partial ingest is removed and an error names both values. If the
    /// blob already exists (another writer won), that is success. Returns the digest.
    pub fn commit(self) -> Result<Digest> {
        let Writer {
            blobs_dir,
            ingest_dir,
            data_path,
            ingest_ref,
            file,
            hasher,
            offset,
            expected,
            expected_size,
        } = self;
        if let Some(expected) = expected_size {
            if expected != offset {
                drop(file);
                remove_dir_all_if_exists(&ingest_dir)?;
                return Err(ContentError::SizeMismatch {
                    ingest_ref,
                    expected,
                    actual: offset,
                });
            }
        }
        let actual = Digest::from_hasher(hasher);
        if let Some(expected) = expected {
            if expected != actual {
                drop(file);
                remove_dir_all_if_exists(&ingest_dir)?;
                return Err(ContentError::DigestMismatch {
                    ingest_ref,
                    expected,
                    actual,
                });
            }
        }
        let target = blobs_dir.join(actual.hex());
        if target.is_file() {
            drop(file);
            debug!(digest = %actual, ingest_ref, "blob already present; dropping ingest");
            remove_dir_all_if_exists(&ingest_dir)?;
            return Ok(actual);
        }
        file.sync_all().map_err(io_err("fsync", &data_path))?;
        fs::set_permissions(&data_path, fs::Permissions::from_mode(0o444))
            .map_err(io_err("chmod", &data_path))?;
        // Replacing a blob that appeared meanwhile is harmless: same name, same content.
        fs::rename(&data_path, &target).map_err(io_err("rename into", &target))?;
        drop(file);
        sync_dir(&blobs_dir)?;
        remove_dir_all_if_exists(&ingest_dir)?;
        debug!(digest = %actual, size = offset, "committed blob");
        Ok(actual)
    }
}

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.offset += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn digest_round_trip() {
        let d = Digest::parse(EMPTY).unwrap();
        assert_eq!(d.to_string(), EMPTY);
        assert_eq!(d, Digest::of_bytes(b""));
        assert_eq!(d.algorithm(), "sha256");
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, format!("\"{EMPTY}\""));
        let back: Digest = serde_json::from_str(&json).unwrap();
        assert_eq!(back, d);
    }

    #[test]
    fn digest_errors_name_the_input() {
        let hex = &EMPTY[7..];
        let cases = [
            (hex.to_owned(), "no algorithm"),
            (format!("sha512:{hex}"), "unsupported algorithm \"sha512\""),
            (format!("sha256:{}", &hex[..63]), "found 63"),
            (format!("sha256:{hex}0"), "found 65"),
            (
                format!("sha256:{}", hex.to_uppercase()),
                "not a lowercase hex",
            ),
            (format!("sha256:{}g", &hex[..63]), "'g'"),
        ];
        for (input, needle) in cases {
            let err = Digest::parse(&input).unwrap_err().to_string();
            assert!(err.contains(&input), "{err}");
            assert!(err.contains(needle), "{err} lacks {needle}");
        }
        assert!(serde_json::from_str::<Digest>("\"sha256:abc\"").is_err());
    }

    #[test]
    fn refs_are_safe_file_names() {
        for good in ["abc", "sha256-0a", "layer_1.partial"] {
            validate_ref(good).unwrap();
        }
        for bad in ["", ".", "..", "a/b", "../x", ".hidden", "a b", "x\0"] {
            assert!(validate_ref(bad).is_err(), "{bad:?} accepted");
        }
    }
}
