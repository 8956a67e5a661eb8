//! Loading OCI image layouts, from a tar stream ([`Staging`]) or a directory ([`DirSource`]):
//! `index.json` names manifests (or nested indexes, resolved to this host's platform); every
//! blob is checked against the digest and size of the descriptor that names it.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use oci_spec::image::{Arch, Descriptor, ImageIndex, ImageManifest, MediaType, Os};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use tracing::{debug, warn};

use super::detect::{digest_of, OCI_INDEX, OCI_LAYOUT};
use super::docker::diff_ids;
use super::error::{io_err, ArchiveError};
use super::stage::{ingest_ref, put, Staging};
use super::{LoadedImage, ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, MAX_JSON_SIZE};
use crate::content::{ContentStore, Digest};

const DOCKER_MANIFEST_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const MAX_INDEX_DEPTH: usize = 4;

/// Where the files of a layout come from.
pub(crate) trait Source {
    fn store(&self) -> &ContentStore;
    /// A small file (a JSON document) at a path inside the layout.
    fn read_small(&mut self, path: &str, referenced_by: &str) -> Result<Vec<u8>, ArchiveError>;
    /// Checks what can be checked before anything is committed: that the blob exists and,
    /// where its digest is already known, that it matches.
    fn check_blob(
        &mut self,
        path: &str,
        expected: &Digest,
        size: u64,
        referenced_by: &str,
    ) -> Result<(), ArchiveError>;
    /// Moves the blob into the store through a writer that verifies digest and size.
    fn commit_blob(
        &mut self,
        path: &str,
        expected: &Digest,
        size: u64,
        referenced_by: &str,
    ) -> Result<(), ArchiveError>;
}

impl Source for Staging<'_> {
    fn store(&self) -> &ContentStore {
        Staging::store(self)
    }

    fn read_small(&mut self, path: &str, referenced_by: &str) -> Result<Vec<u8>, ArchiveError> {
        Staging::read_small(self, path, referenced_by)
    }

    fn check_blob(
        &mut self,
        path: &str,
        expected: &Digest,
        size: u64,
        referenced_by: &str,
    ) -> Result<(), ArchiveError> {
        let f = self.file(path, referenced_by)?;
        if &f.digest != expected || f.size != size {
            return Err(ArchiveError::BlobMismatch {
                entry: path.to_owned(),
                referenced_by: referenced_by.to_owned(),
                expected: expected.clone(),
                expected_size: size,
                actual: f.digest.clone(),
                actual_size: f.size,
            });
        }
        Ok(())
    }

    fn commit_blob(
        &mut self,
        path: &str,
        expected: &Digest,
        size: u64,
        referenced_by: &str,
    ) -> Result<(), ArchiveError> {
        self.check_blob(path, expected, size, referenced_by)?;
        self.commit(path, referenced_by)?;
        Ok(())
    }
}

/// An OCI layout directory on disk.
pub(crate) struct DirSource<'s> {
    store: &'s ContentStore,
    dir: PathBuf,
}

impl<'s> DirSource<'s> {
    pub fn new(store: &'s ContentStore, dir: &Path) -> Self {
        DirSource {
            store,
            dir: dir.to_path_buf(),
        }
    }

    /// Opens a regular file of the layout (symbolic links are not followed).
    fn open(&self, path: &str, referenced_by: &str) -> Result<(File, u64, PathBuf), ArchiveError> {
        let full = self.dir.join(path);
        let meta = match fs::symlink_metadata(&full) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(ArchiveError::Missing {
                    entry: full.display().to_string(),
                    referenced_by: referenced_by.to_owned(),
                    reason: "no such file in the layout",
                })
            }
            Err(e) => return Err(io_err("stat", &full)(e)),
        };
        if !meta.is_file() {
            return Err(ArchiveError::Missing {
                entry: full.display().to_string(),
                referenced_by: referenced_by.to_owned(),
                reason: "not a regular file",
            });
        }
        let file = File::open(&full).map_err(io_err("open", &full))?;
        Ok((file, meta.len(), full))
    }
}

impl Source for DirSource<'_> {
    fn store(&self) -> &ContentStore {
        self.store
    }

    fn read_small(&mut self, path: &str, referenced_by: &str) -> Result<Vec<u8>, ArchiveError> {
        let (file, len, full) = self.open(path, referenced_by)?;
        if len > MAX_JSON_SIZE {
            return Err(ArchiveError::Invalid {
                entry: full.display().to_string(),
                what: "document",
                reason: format!("larger than {MAX_JSON_SIZE} bytes"),
            });
        }
        let mut buf = Vec::with_capacity(len as usize);
        file.take(MAX_JSON_SIZE + 1)
            .read_to_end(&mut buf)
            .map_err(io_err("read", &full))?;
        Ok(buf)
    }

    fn check_blob(
        &mut self,
        path: &str,
        _expected: &Digest,
        _size: u64,
        referenced_by: &str,
    ) -> Result<(), ArchiveError> {
        self.open(path, referenced_by).map(|_| ())
    }

    fn commit_blob(
        &mut self,
        path: &str,
        expected: &Digest,
        size: u64,
        referenced_by: &str,
    ) -> Result<(), ArchiveError> {
        if self.store.exists(expected) {
            debug!(digest = %expected, "blob already in the store");
            return Ok(());
        }
        let (mut file, _, full) = self.open(path, referenced_by)?;
        let ingest = ingest_ref("layout");
        let mut writer = self.store.writer(&ingest, Some(expected), Some(size))?;
        let copied = (|| {
            let mut hasher = Sha256::new();
            let mut total = 0u64;
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match file.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(io_err("read", &full)(e)),
                };
                hasher.update(&buf[..n]);
                total += n as u64;
                writer.write_all(&buf[..n])?;
            }
            Ok((digest_of(hasher), total))
        })();
        let mismatch = match copied {
            Ok((actual, actual_size)) if &actual != expected || actual_size != size => {
                Some(ArchiveError::BlobMismatch {
                    entry: full.display().to_string(),
                    referenced_by: referenced_by.to_owned(),
                    expected: expected.clone(),
                    expected_size: size,
                    actual,
                    actual_size,
                })
            }
            Ok(_) => None,
            Err(e) => Some(e),
        };
        if let Some(e) = mismatch {
            drop(writer);
            if let Err(ae) = self.store.abort(&ingest) {
                warn!(ingest, error = %ae, "could not remove a layout ingest");
            }
            return Err(e);
        }
        writer.commit()?;
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LayoutMarker {
    image_layout_version: String,
}

/// A descriptor's digest as a store digest; `field` names it in errors.
fn descriptor_digest(desc: &Descriptor, entry: &str, field: &str) -> Result<Digest, ArchiveError> {
    Digest::parse(desc.digest().as_ref()).map_err(|e| ArchiveError::Invalid {
        entry: entry.to_owned(),
        what: "descriptor",
        reason: format!("{field}: {e}"),
    })
}

fn blob_path(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm(), d.hex())
}

/// Reads a JSON blob and checks it against its descriptor.
fn read_blob(
    src: &mut impl Source,
    digest: &Digest,
    size: u64,
    referenced_by: &str,
) -> Result<Vec<u8>, ArchiveError> {
    let path = blob_path(digest);
    let bytes = src.read_small(&path, referenced_by)?;
    let actual = Digest::of_bytes(&bytes);
    if &actual != digest || bytes.len() as u64 != size {
        return Err(ArchiveError::BlobMismatch {
            entry: path,
            referenced_by: referenced_by.to_owned(),
            expected: digest.clone(),
            expected_size: size,
            actual,
            actual_size: bytes.len() as u64,
        });
    }
    Ok(bytes)
}

fn is_manifest(mt: &MediaType) -> bool {
    matches!(mt, MediaType::ImageManifest)
        || matches!(mt, MediaType::Other(s) if s == DOCKER_MANIFEST_V2)
}

fn is_index(mt: &MediaType) -> bool {
    matches!(mt, MediaType::ImageIndex)
        || matches!(mt, MediaType::Other(s) if s == DOCKER_MANIFEST_LIST)
}

fn is_host_platform(desc: &Descriptor) -> bool {
    desc.platform()
        .as_ref()
        .is_some_and(|p| p.os() == &Os::Linux && p.architecture() == &Arch::default())
}

/// A manifest found through the index: its digest, size and bytes.
struct FoundManifest {
    digest: Digest,
    bytes: Vec<u8>,
    referenced_by: String,
}

/// Follows `desc` to an image manifest (through nested indexes, picking this host's platform).
/// `None` for descriptors of other kinds of content.
fn find_manifest(
    src: &mut impl Source,
    desc: &Descriptor,
    referenced_by: &str,
    depth: usize,
) -> Result<Option<FoundManifest>, ArchiveError> {
    let mt = desc.media_type();
    if !is_manifest(mt) && !is_index(mt) {
        debug!(media_type = %mt, referenced_by, "skipping a descriptor that is not an image");
        return Ok(None);
    }
    let digest = descriptor_digest(desc, referenced_by, "digest")?;
    let bytes = read_blob(src, &digest, desc.size(), referenced_by)?;
    if is_manifest(mt) {
        return Ok(Some(FoundManifest {
            digest,
            bytes,
            referenced_by: referenced_by.to_owned(),
        }));
    }
    let path = blob_path(&digest);
    if depth >= MAX_INDEX_DEPTH {
        return Err(ArchiveError::Invalid {
            entry: path,
            what: "image index",
            reason: format!("indexes nested more than {MAX_INDEX_DEPTH} deep"),
        });
    }
    let index: ImageIndex = serde_json::from_slice(&bytes).map_err(|e| ArchiveError::Invalid {
        entry: path.clone(),
        what: "image index",
        reason: e.to_string(),
    })?;
    for (i, child) in index.manifests().iter().enumerate() {
        if is_host_platform(child) {
            let by = format!("{path} manifests[{i}]");
            if let Some(found) = find_manifest(src, child, &by, depth + 1)? {
                return Ok(Some(found));
            }
        }
    }
    Err(ArchiveError::NoPlatform {
        entry: path,
        os: Os::Linux.to_string(),
        architecture: Arch::default().to_string(),
    })
}

/// Names an index entry carries: the full image name if there is one, else the ref name.
fn names_of(desc: &Descriptor) -> Vec<String> {
    let Some(a) = desc.annotations() else {
        return Vec::new();
    };
    a.get(ANNOTATION_IMAGE_NAME)
        .or_else(|| a.get(ANNOTATION_REF_NAME))
        .map(|n| vec![n.clone()])
        .unwrap_or_default()
}

struct Planned {
    names: Vec<String>,
    manifest: FoundManifest,
    config: Vec<u8>,
    config_digest: Digest,
    layers: Vec<(Descriptor, Digest)>,
}

/// Loads every image that `index.json` names.
pub(crate) fn load(src: &mut impl Source) -> Result<Vec<LoadedImage>, ArchiveError> {
    let marker = src.read_small(OCI_LAYOUT, "the image layout")?;
    let marker: LayoutMarker =
        serde_json::from_slice(&marker).map_err(|e| ArchiveError::Invalid {
            entry: OCI_LAYOUT.into(),
            what: "layout marker",
            reason: e.to_string(),
        })?;
    if !marker.image_layout_version.starts_with("1.") {
        return Err(ArchiveError::Invalid {
            entry: OCI_LAYOUT.into(),
            what: "layout marker",
            reason: format!(
                "imageLayoutVersion {:?} is not supported (1.x is)",
                marker.image_layout_version
            ),
        });
    }
    let index = src.read_small(OCI_INDEX, "the image layout")?;
    let index: ImageIndex = serde_json::from_slice(&index).map_err(|e| ArchiveError::Invalid {
        entry: OCI_INDEX.into(),
        what: "image index",
        reason: e.to_string(),
    })?;

    // Check everything before committing anything.
    let mut planned = Vec::new();
    for (i, desc) in index.manifests().iter().enumerate() {
        let by = format!("{OCI_INDEX} manifests[{i}]");
        let Some(found) = find_manifest(src, desc, &by, 0)? else {
            continue;
        };
        let manifest_path = blob_path(&found.digest);
        let manifest: ImageManifest =
            serde_json::from_slice(&found.bytes).map_err(|e| ArchiveError::Invalid {
                entry: manifest_path.clone(),
                what: "image manifest",
                reason: e.to_string(),
            })?;
        let config_digest = descriptor_digest(manifest.config(), &manifest_path, "config.digest")?;
        let config = read_blob(
            src,
            &config_digest,
            manifest.config().size(),
            &format!("{manifest_path} config"),
        )?;
        let config_path = blob_path(&config_digest);
        let ids = diff_ids(&config, &config_path)?;
        if ids.len() != manifest.layers().len() {
            return Err(ArchiveError::LayerCount {
                config: config_path,
                layers: manifest.layers().len(),
                diff_ids: ids.len(),
            });
        }
        let mut layers = Vec::with_capacity(ids.len());
        for (j, layer) in manifest.layers().iter().enumerate() {
            let field = format!("layers[{j}].digest");
            let d = descriptor_digest(layer, &manifest_path, &field)?;
            let by = format!("{manifest_path} layers[{j}]");
            src.check_blob(&blob_path(&d), &d, layer.size(), &by)?;
            layers.push((layer.clone(), d));
        }
        planned.push(Planned {
            names: names_of(desc),
            manifest: found,
            config,
            config_digest,
            layers,
        });
    }
    if planned.is_empty() {
        return Err(ArchiveError::Empty {
            entry: OCI_INDEX.into(),
        });
    }

    let mut loaded = Vec::with_capacity(planned.len());
    for p in planned {
        let manifest_path = blob_path(&p.manifest.digest);
        for (j, (layer, d)) in p.layers.iter().enumerate() {
            let by = format!("{manifest_path} layers[{j}]");
            src.commit_blob(&blob_path(d), d, layer.size(), &by)?;
        }
        put(src.store(), &p.config)?;
        put(src.store(), &p.manifest.bytes)?;
        debug!(manifest = %p.manifest.digest, by = p.manifest.referenced_by, "loaded image");
        loaded.push(LoadedImage {
            names: p.names,
            manifest_digest: p.manifest.digest,
            config_digest: p.config_digest,
            layers: p.layers.into_iter().map(|(l, _)| l).collect(),
        });
    }
    Ok(loaded)
}
