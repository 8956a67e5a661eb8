//! Reading a tar stream once: every entry is checked, and each regular file is hashed and kept
//! (in memory when small, else in an ingest of the content store) until the caller knows which
//! entries it needs. Dropping a [`Staging`] removes every ingest it did not commit.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest as _, Sha256};
use tar::EntryType;
use tracing::{debug, warn};

use super::detect::{decompress, digest_of};
use super::error::ArchiveError;
use super::MAX_JSON_SIZE;
use crate::content::{ContentStore, Digest, Writer};
use crate::unpack::Compression;

/// Entries up to this size are kept in memory rather than in an ingest.
const MEMORY_ENTRY: u64 = MAX_JSON_SIZE;
/// At most this much of an archive is kept in memory; further entries go to ingests.
const MEMORY_TOTAL: u64 = 128 * 1024 * 1024;
/// Symbolic links followed, at most, to resolve one path.
const MAX_LINKS: usize = 16;
const BUF_SIZE: usize = 64 * 1024;

/// A unique ingest ref for one entry of one load.
pub(crate) fn ingest_ref(kind: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{kind}-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Stores `data` as a blob, like [`ContentStore::put`] but through an ingest ref of its own, so
/// that two loads storing the same blob at once do not collide on the ref (`put` keys its
/// ingest by the digest, and the second writer would get [`ContentError::Locked`]).
///
/// [`ContentError::Locked`]: crate::content::ContentError::Locked
pub(crate) fn put(store: &ContentStore, data: &[u8]) -> Result<Digest, ArchiveError> {
    let digest = Digest::of_bytes(data);
    if store.exists(&digest) {
        return Ok(digest);
    }
    let ingest = ingest_ref("put");
    let mut w = store.writer(&ingest, Some(&digest), Some(data.len() as u64))?;
    if let Err(e) = w.write_all(data) {
        drop(w);
        if let Err(ae) = store.abort(&ingest) {
            warn!(ingest, error = %ae, "could not remove an archive ingest");
        }
        return Err(e.into());
    }
    Ok(w.commit()?)
}

/// What the uncompressed content of a staged file hashes to.
#[derive(Debug, Clone)]
pub(crate) enum DiffId {
    Known(Digest),
    /// zstd: computed on demand by a second read.
    Later,
    /// Looked compressed but could not be decompressed.
    Invalid(String),
}

#[derive(Debug)]
enum Data {
    Memory(Vec<u8>),
    Ingest {
        ingest_ref: String,
        /// `None` once committed.
        writer: Option<Box<Writer>>,
    },
}

/// A regular file of the archive, hashed.
#[derive(Debug)]
pub(crate) struct StagedFile {
    pub digest: Digest,
    pub size: u64,
    pub compression: Compression,
    diff_id: DiffId,
    data: Data,
}

#[derive(Debug)]
enum Node {
    File(StagedFile),
    Dir,
    /// Target as written (relative to the link's directory).
    Symlink(String),
    /// Target as a normalised archive path.
    Hardlink(String),
}

/// The entries of one tar stream.
pub(crate) struct Staging<'s> {
    store: &'s ContentStore,
    nodes: BTreeMap<String, Node>,
}

impl Drop for Staging<'_> {
    fn drop(&mut self) {
        for node in self.nodes.values_mut() {
            if let Node::File(StagedFile {
                data: Data::Ingest { ingest_ref, writer },
                ..
            }) = node
            {
                if writer.take().is_some() {
                    if let Err(e) = self.store.abort(ingest_ref) {
                        warn!(ingest_ref, error = %e, "could not remove an archive ingest");
                    }
                }
            }
        }
    }
}

/// Normalises an entry path: `./` and empty components dropped; absolute paths, `..` and
/// non-UTF-8 names refused. `None` for the archive root itself.
pub(crate) fn normalize(raw: &[u8]) -> Result<Option<String>, ArchiveError> {
    let shown = String::from_utf8_lossy(raw).into_owned();
    let refuse = |reason: &str| ArchiveError::UnsafeEntry {
        entry: shown.clone(),
        reason: reason.to_owned(),
    };
    let s = std::str::from_utf8(raw).map_err(|_| refuse("the path is not UTF-8"))?;
    if s.starts_with('/') {
        return Err(refuse("absolute path"));
    }
    if s.contains('\0') {
        return Err(refuse("NUL byte in the path"));
    }
    let mut parts = Vec::new();
    for part in s.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(refuse("'..' in the path")),
            p => parts.push(p),
        }
    }
    Ok((!parts.is_empty()).then(|| parts.join("/")))
}

/// Joins a relative symlink target to the link's directory, lexically; `None` if it leaves the
/// archive.
fn join_link(link: &str, target: &str) -> Option<String> {
    if target.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = link.split('/').collect();
    parts.pop();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// Hashes everything written to it; the sha256 of uncompressed content.
struct HashSink(Sha256);

impl Write for HashSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Computes the uncompressed digest of a stream as its bytes go by.
enum DiffHasher {
    Plain,
    Gzip(Box<flate2::write::MultiGzDecoder<HashSink>>, Option<String>),
    Zstd,
}

impl DiffHasher {
    fn new(compression: Compression) -> Self {
        match compression {
            Compression::None => DiffHasher::Plain,
            Compression::Gzip => DiffHasher::Gzip(
                Box::new(flate2::write::MultiGzDecoder::new(HashSink(Sha256::new()))),
                None,
            ),
            Compression::Zstd => DiffHasher::Zstd,
        }
    }

    fn update(&mut self, buf: &[u8]) {
        if let DiffHasher::Gzip(dec, err @ None) = self {
            if let Err(e) = dec.write_all(buf) {
                *err = Some(e.to_string());
            }
        }
    }

    fn finish(self, raw: &Digest) -> DiffId {
        match self {
            DiffHasher::Plain => DiffId::Known(raw.clone()),
            DiffHasher::Zstd => DiffId::Later,
            DiffHasher::Gzip(_, Some(e)) => DiffId::Invalid(e),
            DiffHasher::Gzip(dec, None) => match dec.finish() {
                Ok(sink) => DiffId::Known(digest_of(sink.0)),
                Err(e) => DiffId::Invalid(e.to_string()),
            },
        }
    }
}

impl<'s> Staging<'s> {
    /// Reads the whole tar stream (gzip or zstd compression detected from its first bytes).
    pub fn read(store: &'s ContentStore, input: impl Read) -> Result<Self, ArchiveError> {
        let mut staging = Staging {
            store,
            nodes: BTreeMap::new(),
        };
        let stream = decompress(input).map_err(|source| ArchiveError::Stream {
            after: "at the start".into(),
            source,
        })?;
        let mut archive = tar::Archive::new(stream);
        let mut last = String::from("at the start");
        let entries = archive.entries().map_err(|source| ArchiveError::Stream {
            after: last.clone(),
            source,
        })?;
        let mut in_memory = 0u64;
        for entry in entries {
            let mut entry = entry.map_err(|source| ArchiveError::Stream {
                after: last.clone(),
                source,
            })?;
            let raw = entry.path_bytes().into_owned();
            last = format!("after entry {:?}", String::from_utf8_lossy(&raw));
            let kind = entry.header().entry_type();
            if matches!(kind, EntryType::XGlobalHeader) {
                continue;
            }
            let Some(path) = normalize(&raw)? else {
                if kind.is_dir() {
                    continue;
                }
                return Err(ArchiveError::UnsafeEntry {
                    entry: String::from_utf8_lossy(&raw).into_owned(),
                    reason: "an entry other than a directory names the archive root".into(),
                });
            };
            let node = match kind {
                EntryType::Regular | EntryType::Continuous => {
                    let size = entry.size();
                    let keep = size <= MEMORY_ENTRY && in_memory + size <= MEMORY_TOTAL;
                    if keep {
                        in_memory += size;
                    }
                    Node::File(staging.stage_file(&path, &mut entry, keep)?)
                }
                EntryType::Directory => Node::Dir,
                EntryType::Symlink => {
                    let target = entry
                        .link_name_bytes()
                        .map(|t| String::from_utf8_lossy(&t).into_owned())
                        .unwrap_or_default();
                    Node::Symlink(target)
                }
                EntryType::Link => {
                    let target = entry.link_name_bytes().unwrap_or_default().into_owned();
                    match normalize(&target)? {
                        Some(t) => Node::Hardlink(t),
                        None => {
                            return Err(ArchiveError::UnsafeEntry {
                                entry: path,
                                reason: "hard link to the archive root".into(),
                            })
                        }
                    }
                }
                other => {
                    return Err(ArchiveError::UnsafeEntry {
                        entry: path,
                        reason: format!(
                            "entry type {other:?}: an image archive holds only files, directories and links"
                        ),
                    })
                }
            };
            match staging.nodes.get(&path) {
                Some(Node::Dir) if matches!(node, Node::Dir) => {}
                Some(_) => {
                    if let Node::File(f) = node {
                        staging.discard(f);
                    }
                    return Err(ArchiveError::UnsafeEntry {
                        entry: path,
                        reason: "the archive holds this path twice".into(),
                    });
                }
                None => {
                    staging.nodes.insert(path, node);
                }
            }
        }
        debug!(entries = staging.nodes.len(), "archive read");
        Ok(staging)
    }

    fn discard(&self, file: StagedFile) {
        if let Data::Ingest { ingest_ref, writer } = file.data {
            drop(writer);
            if let Err(e) = self.store.abort(&ingest_ref) {
                warn!(ingest_ref, error = %e, "could not remove an archive ingest");
            }
        }
    }

    fn stage_file(
        &self,
        path: &str,
        entry: &mut impl Read,
        in_memory: bool,
    ) -> Result<StagedFile, ArchiveError> {
        let entry_err = |source| ArchiveError::Entry {
            entry: path.to_owned(),
            source,
        };
        let mut data = if in_memory {
            Data::Memory(Vec::new())
        } else {
            let ingest_ref = ingest_ref("archive");
            let writer = self.store.writer(&ingest_ref, None, None)?;
            Data::Ingest {
                ingest_ref,
                writer: Some(Box::new(writer)),
            }
        };
        let result = (|| {
            // The first bytes decide the compression; a decompressing reader above may hand
            // them over in pieces, so gather them first (detect() needs 4).
            let mut head = [0u8; 4];
            let mut got = 0;
            while got < head.len() {
                match entry.read(&mut head[got..]) {
                    Ok(0) => break,
                    Ok(n) => got += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(entry_err(e)),
                }
            }
            let compression = Compression::detect(&head[..got]);
            let mut diff = DiffHasher::new(compression);
            let mut hasher = Sha256::new();
            let mut size = 0u64;
            let mut buf = vec![0u8; BUF_SIZE];
            buf[..got].copy_from_slice(&head[..got]);
            let mut n = got;
            loop {
                if n > 0 {
                    let chunk = &buf[..n];
                    diff.update(chunk);
                    hasher.update(chunk);
                    size += n as u64;
                    match &mut data {
                        Data::Memory(v) => v.extend_from_slice(chunk),
                        Data::Ingest { writer, .. } => {
                            if let Some(w) = writer.as_mut() {
                                Writer::write_all(w, chunk)?;
                            }
                        }
                    }
                }
                n = match entry.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
                    Err(e) => return Err(entry_err(e)),
                };
            }
            let digest = digest_of(hasher);
            let diff_id = diff.finish(&digest);
            Ok((digest, size, diff_id, compression))
        })();
        match result {
            Ok((digest, size, diff_id, compression)) => Ok(StagedFile {
                diff_id,
                digest,
                size,
                compression,
                data,
            }),
            Err(e) => {
                if let Data::Ingest { ingest_ref, writer } = data {
                    drop(writer);
                    if let Err(ae) = self.store.abort(&ingest_ref) {
                        warn!(ingest_ref, error = %ae, "could not remove an archive ingest");
                    }
                }
                Err(e)
            }
        }
    }

    /// Whether the archive has an entry (of any kind) at `path`.
    pub fn has(&self, path: &str) -> bool {
        self.nodes.contains_key(path)
    }

    /// Number of entries read.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// The store the staged files go to.
    pub fn store(&self) -> &'s ContentStore {
        self.store
    }

    /// Follows links to the regular file that `path` names.
    pub fn resolve(&self, path: &str, referenced_by: &str) -> Result<String, ArchiveError> {
        let missing = |entry: &str, reason| ArchiveError::Missing {
            entry: entry.to_owned(),
            referenced_by: referenced_by.to_owned(),
            reason,
        };
        let mut current = match normalize(path.as_bytes()) {
            Ok(Some(p)) => p,
            _ => return Err(missing(path, "not a valid path inside the archive")),
        };
        for _ in 0..MAX_LINKS {
            match self.nodes.get(&current) {
                None => return Err(missing(&current, "no such entry in the archive")),
                Some(Node::File(_)) => return Ok(current),
                Some(Node::Dir) => return Err(missing(&current, "a directory, not a file")),
                Some(Node::Hardlink(t)) => current = t.clone(),
                Some(Node::Symlink(t)) => {
                    current = join_link(&current, t).ok_or_else(|| {
                        missing(&current, "a symbolic link that leaves the archive")
                    })?;
                }
            }
        }
        Err(missing(path, "too many levels of links"))
    }

    /// The staged regular file that `path` names (links followed).
    pub fn file(&self, path: &str, referenced_by: &str) -> Result<&StagedFile, ArchiveError> {
        let resolved = self.resolve(path, referenced_by)?;
        match self.nodes.get(&resolved) {
            Some(Node::File(f)) => Ok(f),
            _ => unreachable!("resolve returns regular files only"),
        }
    }

    /// The content of a small file (a JSON document).
    pub fn read_small(&self, path: &str, referenced_by: &str) -> Result<Vec<u8>, ArchiveError> {
        let resolved = self.resolve(path, referenced_by)?;
        match self.nodes.get(&resolved) {
            Some(Node::File(StagedFile {
                data: Data::Memory(v),
                ..
            })) => Ok(v.clone()),
            _ => Err(ArchiveError::Invalid {
                entry: resolved,
                what: "document",
                reason: format!(
                    "too large: documents are read up to {MAX_JSON_SIZE} bytes, and up to \
                     {MEMORY_TOTAL} bytes of small entries per archive"
                ),
            }),
        }
    }

    /// The sha256 of the uncompressed content of the file at `path` (a layer).
    pub fn diff_id(&self, path: &str, referenced_by: &str) -> Result<Digest, ArchiveError> {
        let resolved = self.resolve(path, referenced_by)?;
        let Some(Node::File(f)) = self.nodes.get(&resolved) else {
            unreachable!("resolve returns regular files only");
        };
        let bad = |reason: String| ArchiveError::Decompress {
            entry: resolved.clone(),
            reason,
        };
        match &f.diff_id {
            DiffId::Known(d) => Ok(d.clone()),
            DiffId::Invalid(e) => Err(bad(e.clone())),
            DiffId::Later => {
                let reader: Box<dyn Read> = match &f.data {
                    Data::Memory(v) => Box::new(io::Cursor::new(v.clone())),
                    Data::Ingest { ingest_ref, .. } => {
                        // The ingest layout is documented in `content`: ingest/<ref>/data.
                        let p = self
                            .store
                            .root()
                            .join("ingest")
                            .join(ingest_ref)
                            .join("data");
                        Box::new(std::fs::File::open(&p).map_err(|e| bad(e.to_string()))?)
                    }
                };
                let mut dec = decompress(reader).map_err(|e| bad(e.to_string()))?;
                let mut sink = HashSink(Sha256::new());
                io::copy(&mut dec, &mut sink).map_err(|e| bad(e.to_string()))?;
                Ok(digest_of(sink.0))
            }
        }
    }

    /// Moves the file at `path` into the store (idempotent); returns its digest.
    pub fn commit(&mut self, path: &str, referenced_by: &str) -> Result<Digest, ArchiveError> {
        let resolved = self.resolve(path, referenced_by)?;
        let store = self.store;
        let Some(Node::File(f)) = self.nodes.get_mut(&resolved) else {
            unreachable!("resolve returns regular files only");
        };
        match &mut f.data {
            Data::Memory(v) => {
                put(store, v)?;
            }
            Data::Ingest { writer, .. } => {
                if let Some(w) = writer.take() {
                    (*w).commit()?;
                }
            }
        }
        Ok(f.digest.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_paths_are_normalised_or_refused() {
        let ok = |raw: &str| normalize(raw.as_bytes()).unwrap();
        assert_eq!(ok("manifest.json").as_deref(), Some("manifest.json"));
        assert_eq!(
            ok("./blobs//sha256/./ab").as_deref(),
            Some("blobs/sha256/ab")
        );
        assert_eq!(ok("./"), None);
        assert_eq!(ok("."), None);
        for bad in ["/etc/passwd", "../x", "a/../b", "a/..", "x\0y"] {
            let err = normalize(bad.as_bytes()).unwrap_err();
            assert!(
                matches!(err, ArchiveError::UnsafeEntry { .. }),
                "{bad:?}: {err}"
            );
        }
        assert!(normalize(b"\xff\xfe").is_err());
    }

    #[test]
    fn links_resolve_inside_the_archive_only() {
        assert_eq!(
            join_link("id/layer.tar", "../abc.tar").as_deref(),
            Some("abc.tar")
        );
        assert_eq!(join_link("a/b/c", "./d").as_deref(), Some("a/b/d"));
        assert_eq!(join_link("top", "other").as_deref(), Some("other"));
        assert_eq!(join_link("id/layer.tar", "../../etc/passwd"), None);
        assert_eq!(join_link("x", "/etc/passwd"), None);
    }
}
