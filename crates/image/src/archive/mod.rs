//! Image archives: `docker save` tarballs and OCI image layouts (loaded with auto-detection,
//! saved in a form both understand), and `import` of a root file system tarball.
//!
//! - [`load`] reads a tar stream (plain, gzip or zstd). `manifest.json` at the top makes it a
//!   `docker save` archive (the classic form, or Docker ≥ 25's combined form whose paths point
//!   into `blobs/`); otherwise `oci-layout` plus `index.json` make it an OCI image layout.
//! - [`load_layout_dir`] reads an OCI image layout directory.
//! - [`save`] writes Docker ≥ 25's combined form, which `docker load` and skopeo's
//!   `docker-archive:` and `oci-archive:` transports all read.
//! - [`import`] turns a root file system tarball into a one-layer image.
//!
//! A tar stream can be read only once and in order, and blobs may come before or after the
//! documents that name them. Every regular entry is therefore streamed into its own ingest of the
//! content store (under a unique ref: entry paths are not valid refs, and two loads must not
//! share one) while its sha256 and, if it starts like gzip, the sha256 of its uncompressed
//! content are computed; entries up to 4 MiB are kept in memory instead. Only once the whole
//! archive has been read and every image in it checked (digests, sizes, layer counts, diff_ids)
//! are the blobs committed, and each image's manifest is written last. A failed load removes all
//! of its ingests, so it leaves at most some committed, content-verified blobs behind and never a
//! manifest. An OCI layout directory needs no staging: its documents are checked first, then each
//! layer is copied through a writer that verifies the descriptor's digest and size (a mismatch
//! stops the load before any manifest is written).
//!
//! Docker archives get a synthesised OCI manifest (their own `manifest.json` is not a registry
//! manifest), with each layer's media type from its actual compression; the legacy
//! `repositories` file and per-layer `json`/`VERSION` files are not read.
//!
//! Entry paths are never used as file system paths: they are normalised (a leading `./`
//! dropped), and absolute paths, `..` components, device and FIFO entries and duplicate entries
//! refuse the whole archive. Symbolic and hard links are followed only inside the archive's own
//! entry list.

mod detect;
mod docker;
mod error;
mod import;
mod oci_layout;
mod save;
mod stage;

use std::io::Read;
use std::path::Path;

pub use oci_spec::image::Descriptor;

pub use self::error::ArchiveError;
pub use self::import::{import, ImageChanges, ImportOptions};
pub use self::save::{save, SaveItem};
use crate::content::{ContentStore, Digest};

/// Annotation with a tag (OCI layouts) or, in Docker's archives, the tag of an image name.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Annotation with the full image name, as containerd and Docker ≥ 25 write it.
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";

/// Largest JSON document (manifest, index, config, `manifest.json`) read from an archive.
pub const MAX_JSON_SIZE: u64 = 4 * 1024 * 1024;

/// An image that [`load`], [`load_layout_dir`] or [`import`] put into the content store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedImage {
    /// Names as found in the archive: `RepoTags` of `manifest.json`, or the
    /// `io.containerd.image.name` annotation (else `org.opencontainers.image.ref.name`) of an
    /// OCI layout. May be empty.
    pub names: Vec<String>,
    /// An OCI (or Docker schema 2) image manifest, now in the store.
    pub manifest_digest: Digest,
    /// The image configuration, now in the store.
    pub config_digest: Digest,
    /// The layers, in order, each now in the store.
    pub layers: Vec<Descriptor>,
}

/// Loads every image of a `docker save` archive or OCI layout tarball (auto-detected, possibly
/// gzip- or zstd-compressed) into `store`.
pub fn load(store: &ContentStore, input: impl Read) -> Result<Vec<LoadedImage>, ArchiveError> {
    let mut staging = stage::Staging::read(store, input)?;
    match detect::format(&staging)? {
        detect::Format::Docker => docker::load(&mut staging),
        detect::Format::OciLayout => oci_layout::load(&mut staging),
    }
}

/// Loads every image of the OCI image layout directory `dir` into `store`.
pub fn load_layout_dir(store: &ContentStore, dir: &Path) -> Result<Vec<LoadedImage>, ArchiveError> {
    oci_layout::load(&mut oci_layout::DirSource::new(store, dir))
}

/// Our digest as oci-spec's.
fn oci_digest(d: &Digest) -> oci_spec::image::Digest {
    // A validated sha256 digest is always a valid OCI digest.
    d.to_string()
        .parse()
        .expect("a sha256 digest is a valid OCI digest")
}
