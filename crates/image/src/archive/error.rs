//! The errors of [`super`]: each names the archive entry, digest or field that was wrong.

use std::io;
use std::path::PathBuf;

use crate::content::{ContentError, Digest};
use crate::reference::ReferenceError;

/// Why an archive could not be loaded or saved, or a tarball imported.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The input is not a (possibly compressed) tar stream, or it ends early.
    #[error("archive: not a readable tar stream ({after}): {source}")]
    Stream {
        /// Where reading stopped: the last entry read, or "at the start".
        after: String,
        #[source]
        source: io::Error,
    },
    /// An entry that could escape the archive or is not allowed in one.
    #[error("archive entry {entry:?} refused: {reason}")]
    UnsafeEntry { entry: String, reason: String },
    /// Reading an entry's content failed.
    #[error("archive entry {entry:?}: {source}")]
    Entry {
        entry: String,
        #[source]
        source: io::Error,
    },
    /// Neither `manifest.json` nor `oci-layout` with `index.json` is in the archive.
    #[error(
        "archive: neither manifest.json (docker save) nor oci-layout with index.json (OCI image layout) at its top; it holds {entries} entries"
    )]
    UnknownFormat { entries: usize },
    /// A document names an entry that the archive does not have (or that is not a file).
    #[error("archive: {referenced_by} refers to {entry:?}: {reason}")]
    Missing {
        entry: String,
        referenced_by: String,
        reason: &'static str,
    },
    /// A document that cannot be parsed, or a field in it with a wrong value.
    #[error("archive entry {entry:?}: invalid {what}: {reason}")]
    Invalid {
        entry: String,
        what: &'static str,
        reason: String,
    },
    /// The number of layers differs from the config's `rootfs.diff_ids`.
    #[error(
        "archive: image with config {config:?} lists {layers} layers, but its rootfs.diff_ids has {diff_ids}"
    )]
    LayerCount {
        config: String,
        layers: usize,
        diff_ids: usize,
    },
    /// A layer's uncompressed content does not hash to its `rootfs.diff_ids` entry.
    #[error(
        "archive: layer {entry:?} does not match the config: rootfs.diff_ids[{index}] is {expected}, but its uncompressed content is {actual}"
    )]
    DiffIdMismatch {
        entry: String,
        index: usize,
        expected: Digest,
        actual: Digest,
    },
    /// A layer could not be decompressed to compute its diff_id.
    #[error("archive: layer {entry:?} cannot be decompressed: {reason}")]
    Decompress { entry: String, reason: String },
    /// A blob whose content does not match the descriptor that names it.
    #[error(
        "archive: blob {entry:?} does not match its descriptor in {referenced_by}: expected {expected} ({expected_size} bytes), found {actual} ({actual_size} bytes)"
    )]
    BlobMismatch {
        entry: String,
        referenced_by: String,
        expected: Digest,
        expected_size: u64,
        actual: Digest,
        actual_size: u64,
    },
    /// An image index without a manifest for this host's platform.
    #[error("archive: index {entry:?} has no image manifest for {os}/{architecture}")]
    NoPlatform {
        entry: String,
        os: String,
        architecture: String,
    },
    /// The archive holds no image.
    #[error("archive: {entry} lists no images")]
    Empty { entry: String },
    /// A file system path (an OCI layout directory) could not be read.
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The content store failed (names the digest or ingest).
    #[error(transparent)]
    Content(#[from] ContentError),
    /// save: an image name that is not a valid reference.
    #[error("save: image name: {0}")]
    Name(#[from] ReferenceError),
    /// save: a stored document (manifest) that cannot be parsed.
    #[error("save: stored {what} {digest} is invalid: {reason}")]
    StoredDocument {
        what: &'static str,
        digest: Digest,
        reason: String,
    },
    /// save: writing the output failed.
    #[error("save: writing {entry:?} to the archive: {source}")]
    Write {
        entry: String,
        #[source]
        source: io::Error,
    },
    /// import: the root file system tarball could not be read.
    #[error("import: the root file system is not a readable tar stream ({after}): {source}")]
    ImportStream {
        after: String,
        #[source]
        source: io::Error,
    },
    /// import: the tarball has no entries.
    #[error("import: the root file system tarball has no entries")]
    ImportEmpty,
    /// Serialising a document we built failed.
    #[error("building the {what}: {reason}")]
    Build { what: &'static str, reason: String },
}

pub(crate) fn io_err<'a>(
    op: &'static str,
    path: &'a std::path::Path,
) -> impl FnOnce(io::Error) -> ArchiveError + 'a {
    move |source| ArchiveError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}
