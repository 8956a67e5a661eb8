//! Loading `docker save` archives: `manifest.json` names each image's config and layer files.
//! Each image gets a synthesised OCI manifest, after its layers have been checked against the
//! config's `rootfs.diff_ids`.

use oci_spec::image::{Descriptor, ImageManifest, ImageManifestBuilder, MediaType};
use serde::{Deserialize, Serialize};

use super::detect::{layer_media_type, DOCKER_MANIFEST};
use super::error::ArchiveError;
use super::stage::{put, Staging};
use super::{oci_digest, LoadedImage};
use crate::content::{ContentStore, Digest};

/// One image of `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DockerManifestEntry {
    pub config: String,
    #[serde(default)]
    pub repo_tags: Option<Vec<String>>,
    pub layers: Vec<String>,
}

/// The part of an image config this module reads.
#[derive(Deserialize)]
struct ConfigRootFs {
    rootfs: RootFsIds,
}

#[derive(Deserialize)]
struct RootFsIds {
    #[serde(default)]
    diff_ids: Vec<String>,
}

/// The `rootfs.diff_ids` of an image config.
pub(crate) fn diff_ids(config: &[u8], entry: &str) -> Result<Vec<Digest>, ArchiveError> {
    let invalid = |reason: String| ArchiveError::Invalid {
        entry: entry.to_owned(),
        what: "image config",
        reason,
    };
    let parsed: ConfigRootFs =
        serde_json::from_slice(config).map_err(|e| invalid(e.to_string()))?;
    parsed
        .rootfs
        .diff_ids
        .iter()
        .enumerate()
        .map(|(i, d)| Digest::parse(d).map_err(|e| invalid(format!("rootfs.diff_ids[{i}]: {e}"))))
        .collect()
}

/// Serialises and stores an OCI manifest for `config` and `layers`; returns its digest.
pub(crate) fn put_manifest(
    store: &ContentStore,
    config: &Digest,
    config_size: u64,
    layers: &[Descriptor],
) -> Result<Digest, ArchiveError> {
    let build = |reason: String| ArchiveError::Build {
        what: "image manifest",
        reason,
    };
    let manifest: ImageManifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(Descriptor::new(
            MediaType::ImageConfig,
            config_size,
            oci_digest(config),
        ))
        .layers(layers.to_vec())
        .build()
        .map_err(|e| build(e.to_string()))?;
    let bytes = serde_json::to_vec(&manifest).map_err(|e| build(e.to_string()))?;
    put(store, &bytes)
}

struct Planned {
    names: Vec<String>,
    config: Vec<u8>,
    layer_paths: Vec<String>,
    layers: Vec<Descriptor>,
}

/// Loads every image `manifest.json` lists.
pub(crate) fn load(staging: &mut Staging<'_>) -> Result<Vec<LoadedImage>, ArchiveError> {
    let bytes = staging.read_small(DOCKER_MANIFEST, "the archive")?;
    let entries: Vec<DockerManifestEntry> =
        serde_json::from_slice(&bytes).map_err(|e| ArchiveError::Invalid {
            entry: DOCKER_MANIFEST.into(),
            what: "docker manifest",
            reason: e.to_string(),
        })?;
    if entries.is_empty() {
        return Err(ArchiveError::Empty {
            entry: DOCKER_MANIFEST.into(),
        });
    }

    // Check everything before committing anything.
    let mut planned = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let by = format!("{DOCKER_MANIFEST}[{i}]");
        let config = staging.read_small(&entry.config, &format!("{by}.Config"))?;
        let ids = diff_ids(&config, &entry.config)?;
        if ids.len() != entry.layers.len() {
            return Err(ArchiveError::LayerCount {
                config: entry.config.clone(),
                layers: entry.layers.len(),
                diff_ids: ids.len(),
            });
        }
        let mut layers = Vec::with_capacity(ids.len());
        for (j, (path, expected)) in entry.layers.iter().zip(ids).enumerate() {
            let by = format!("{by}.Layers[{j}]");
            let file = staging.file(path, &by)?;
            let (compression, size, digest) = (file.compression, file.size, file.digest.clone());
            let actual = staging.diff_id(path, &by)?;
            if actual != expected {
                return Err(ArchiveError::DiffIdMismatch {
                    entry: path.clone(),
                    index: j,
                    expected,
                    actual,
                });
            }
            layers.push(Descriptor::new(
                layer_media_type(compression),
                size,
                oci_digest(&digest),
            ));
        }
        planned.push(Planned {
            names: entry.repo_tags.clone().unwrap_or_default(),
            config,
            layer_paths: entry.layers.clone(),
            layers,
        });
    }

    let store = staging.store();
    let mut loaded = Vec::with_capacity(planned.len());
    for (i, p) in planned.into_iter().enumerate() {
        let config_digest = put(store, &p.config)?;
        for (j, path) in p.layer_paths.iter().enumerate() {
            staging.commit(path, &format!("{DOCKER_MANIFEST}[{i}].Layers[{j}]"))?;
        }
        let manifest_digest =
            put_manifest(store, &config_digest, p.config.len() as u64, &p.layers)?;
        loaded.push(LoadedImage {
            names: p.names,
            manifest_digest,
            config_digest,
            layers: p.layers,
        });
    }
    Ok(loaded)
}
