//! Saving images in Docker ≥ 25's combined archive form: an OCI image layout (`oci-layout`,
//! `index.json`, `blobs/sha256/…`) plus a `manifest.json` whose paths point into `blobs/`.
//! `docker load` reads `manifest.json`; OCI tools (skopeo's `oci-archive:`) read the layout.
//! Headers are deterministic: mtime 0, uid/gid 0, mode 0644 for files and 0755 for directories.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Read, Write};

use oci_spec::image::{Descriptor, ImageIndexBuilder, ImageManifest, MediaType};
use serde_json::json;

use super::detect::{DOCKER_MANIFEST, OCI_INDEX, OCI_LAYOUT};
use super::docker::DockerManifestEntry;
use super::error::ArchiveError;
use super::{oci_digest, ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, MAX_JSON_SIZE};
use crate::content::{ContentStore, Digest};
use crate::reference::Reference;

/// One image to save.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaveItem {
    /// The image's name, e.g. `docker.io/library/busybox:latest`; written as the `RepoTag`
    /// `busybox:latest` and the annotations of `index.json`. `None` saves the image untagged.
    pub name: Option<String>,
    /// Its manifest (OCI or Docker schema 2), in the store.
    pub manifest_digest: Digest,
}

fn blob_path(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm(), d.hex())
}

fn read_manifest(
    store: &ContentStore,
    digest: &Digest,
) -> Result<(Vec<u8>, ImageManifest), ArchiveError> {
    let mut bytes = Vec::new();
    store
        .open_blob(digest)?
        .take(MAX_JSON_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ArchiveError::StoredDocument {
            what: "manifest",
            digest: digest.clone(),
            reason: e.to_string(),
        })?;
    let invalid = |reason: String| ArchiveError::StoredDocument {
        what: "manifest",
        digest: digest.clone(),
        reason,
    };
    if bytes.len() as u64 > MAX_JSON_SIZE {
        return Err(invalid(format!("larger than {MAX_JSON_SIZE} bytes")));
    }
    let manifest = serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
    Ok((bytes, manifest))
}

fn stored_digest(
    desc: &Descriptor,
    manifest: &Digest,
    field: &str,
) -> Result<Digest, ArchiveError> {
    Digest::parse(desc.digest().as_ref()).map_err(|e| ArchiveError::StoredDocument {
        what: "manifest",
        digest: manifest.clone(),
        reason: format!("{field}: {e}"),
    })
}

fn header(size: u64, dir: bool) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(if dir {
        tar::EntryType::Directory
    } else {
        tar::EntryType::Regular
    });
    h.set_mode(if dir { 0o755 } else { 0o644 });
    h.set_size(size);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

/// Puts the annotations of an index's descriptors (a HashMap in oci-spec) in sorted order, so
/// that the same images always give the same bytes (whether or not serde_json preserves order).
fn sort_annotations(mut index: serde_json::Value) -> serde_json::Value {
    if let Some(manifests) = index
        .get_mut("manifests")
        .and_then(serde_json::Value::as_array_mut)
    {
        for m in manifests {
            if let Some(serde_json::Value::Object(a)) = m.get_mut("annotations") {
                let sorted: BTreeMap<String, serde_json::Value> =
                    std::mem::take(a).into_iter().collect();
                a.extend(sorted);
            }
        }
    }
    index
}

/// Writes `items` as one archive to `out`.
pub fn save(store: &ContentStore, items: &[SaveItem], out: impl Write) -> Result<(), ArchiveError> {
    let mut blobs: Vec<Digest> = Vec::new();
    let mut seen: BTreeSet<Digest> = BTreeSet::new();
    let mut index_entries = Vec::new();
    let mut docker_entries = Vec::new();
    for item in items {
        let (bytes, manifest) = read_manifest(store, &item.manifest_digest)?;
        let md = &item.manifest_digest;
        let config = stored_digest(manifest.config(), md, "config.digest")?;
        let mut layers = Vec::new();
        for (j, l) in manifest.layers().iter().enumerate() {
            layers.push(stored_digest(l, md, &format!("layers[{j}].digest"))?);
        }
        for d in layers.iter().chain([&config, md]) {
            // Fails with the digest named when a blob is missing.
            store.size(d)?;
            if seen.insert(d.clone()) {
                blobs.push(d.clone());
            }
        }
        let mut annotations = HashMap::new();
        let mut repo_tags = Vec::new();
        if let Some(name) = &item.name {
            let r: Reference = name.parse()?;
            annotations.insert(ANNOTATION_IMAGE_NAME.to_owned(), r.to_string());
            if let Some(tag) = &r.tag {
                annotations.insert(ANNOTATION_REF_NAME.to_owned(), tag.clone());
                repo_tags.push(format!("{}:{tag}", r.familiar_name()));
            }
        }
        let media_type = manifest
            .media_type()
            .clone()
            .unwrap_or(MediaType::ImageManifest);
        let mut desc = Descriptor::new(media_type, bytes.len() as u64, oci_digest(md));
        if !annotations.is_empty() {
            desc.set_annotations(Some(annotations));
        }
        index_entries.push(desc);
        docker_entries.push(DockerManifestEntry {
            config: blob_path(&config),
            repo_tags: Some(repo_tags),
            layers: layers.iter().map(blob_path).collect(),
        });
    }

    let build = |what, reason: String| ArchiveError::Build { what, reason };
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(index_entries)
        .build()
        .map_err(|e| build("image index", e.to_string()))?;
    let index = serde_json::to_value(&index)
        .map(sort_annotations)
        .and_then(|v| serde_json::to_vec(&v))
        .map_err(|e| build("image index", e.to_string()))?;
    let docker =
        serde_json::to_vec(&docker_entries).map_err(|e| build("docker manifest", e.to_string()))?;
    let layout = serde_json::to_vec(&json!({ "imageLayoutVersion": "1.0.0" }))
        .map_err(|e| build("layout marker", e.to_string()))?;

    let mut tar = tar::Builder::new(out);
    let write_err = |entry: &str| {
        let entry = entry.to_owned();
        move |source| ArchiveError::Write { entry, source }
    };
    for dir in ["blobs/", "blobs/sha256/"] {
        let mut h = header(0, true);
        tar.append_data(&mut h, dir, std::io::empty())
            .map_err(write_err(dir))?;
    }
    for d in &blobs {
        let path = blob_path(d);
        let file = store.open_blob(d)?;
        let size = store.size(d)?;
        let mut h = header(size, false);
        tar.append_data(&mut h, &path, file.take(size))
            .map_err(write_err(&path))?;
    }
    for (path, data) in [
        (OCI_INDEX, &index),
        (DOCKER_MANIFEST, &docker),
        (OCI_LAYOUT, &layout),
    ] {
        let mut h = header(data.len() as u64, false);
        tar.append_data(&mut h, path, data.as_slice())
            .map_err(write_err(path))?;
    }
    tar.into_inner()
        .and_then(|mut w| w.flush())
        .map_err(write_err("the end of the archive"))?;
    Ok(())
}
