//! The image store: image records (name → manifest → config → layers) over the content store,
//! the unpacked layers they share, and the snapshots made from them.
//!
//! ```text
//! <root>/content/             blobs by digest (see `content`)
//! <root>/layers/<diff_id>/    one unpacked layer, named by the sha256 of its uncompressed tar
//! <root>/layers/<diff_id>.json   its size, written before the directory is renamed into place
//! <root>/layers/.tmp-*        layers being unpacked (removed by `gc`)
//! <root>/images.json          every image record; replaced atomically, never edited in place
//! <root>/images.lock          flock(2) held across every read-modify-write of images.json
//! <root>/gc.lock              shared flock held by pulls and loads in progress (leases);
//!                             garbage collection runs only when it can take it exclusively
//! <root>/snapshots/<id>/      container root file systems (see `snapshot`); `image` names the
//!                             image a snapshot was made from, so that image is "in use"
//! ```
//!
//! # Crash safety
//! An image becomes visible in one step: the rename of a new `images.json`. Everything it refers
//! to is made durable before that — blobs are verified and committed by the content store, each
//! layer is unpacked into a temporary directory, checked against its `diff_id` and renamed into
//! place. A crash at any point therefore leaves either the old records or the new ones, each
//! referring only to complete blobs and layers; what a crash strands (temporary layer
//! directories, unreferenced blobs, partial ingests) is invisible to listing and removed by
//! [`ImageStore::gc`].
//!
//! Blobs a pull has committed but not yet recorded look like garbage. A pull or load therefore
//! holds a [`Lease`] from before its first blob until its record is written, and [`ImageStore::gc`]
//! skips collection while any lease is held (the garbage waits for the next run).
//!
//! Layers are keyed by `diff_id`, so an image that shares a layer with another one (same
//! uncompressed content) reuses its directory: each layer is unpacked once.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tracing::debug;

use crate::config::{ConfigError, ImageConfig};
use crate::content::{ContentError, ContentStore, Digest};
use crate::reference::Reference;
use crate::snapshot::{MountSpec, SnapshotError, Snapshotter};
use crate::unpack::{self, UnpackError, UnpackOptions};

const RECORDS: &str = "images.json";
const LOCK: &str = "images.lock";
const GC_LOCK: &str = "gc.lock";
const LAYERS: &str = "layers";
const TMP_PREFIX: &str = ".tmp-";
const SNAPSHOT_IMAGE_FILE: &str = "image";

/// One layer of an image: the blob as distributed and the directory it unpacks to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    /// Digest of the (usually compressed) blob in the content store.
    pub blob: Digest,
    /// sha256 of the uncompressed tar: names the unpacked directory.
    pub diff_id: Digest,
    pub media_type: String,
    /// Size of the blob.
    pub size: u64,
}

/// An image as the store knows it. Its id is the digest of its configuration, as in Docker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    pub id: Digest,
    /// The platform manifest in the content store.
    pub manifest_digest: Digest,
    /// `name@sha256:…` for each repository the image was pulled from (the digest of what the
    /// registry served at the top level: an index or the manifest).
    #[serde(default)]
    pub repo_digests: Vec<String>,
    /// Full references (`docker.io/library/busybox:latest`); empty for a dangling image.
    #[serde(default)]
    pub tags: Vec<String>,
    pub layers: Vec<LayerRecord>,
    /// Bytes of file content in the unpacked layers.
    pub size: u64,
    /// `created` of the image config.
    #[serde(default)]
    pub created: Option<String>,
    /// When this store first recorded the image (seconds since the epoch).
    pub added: u64,
}

impl ImageRecord {
    /// The 12-hex-digit id `docker images` shows.
    pub fn short_id(&self) -> &str {
        &self.id.hex()[..12]
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Records {
    images: BTreeMap<String, ImageRecord>,
}

/// What to record: blobs already verified in the content store.
#[derive(Debug, Clone)]
pub struct NewImage {
    pub manifest_digest: Digest,
    pub config_digest: Digest,
    /// The manifest's layers, bottom first: (blob digest, media type, blob size).
    pub layers: Vec<(Digest, String, u64)>,
    /// A full reference to point at the image (moved from any image that had it).
    pub tag: Option<Reference>,
    /// `name@digest` to remember.
    pub repo_digest: Option<String>,
}

/// What `remove` did, in Docker's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    Untagged(String),
    Deleted(Digest),
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("image records {} are corrupt: {source}", path.display())]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Content(#[from] ContentError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error("layer {blob} (diff_id {diff_id}): {source}")]
    Unpack {
        blob: Digest,
        diff_id: Digest,
        #[source]
        source: UnpackError,
    },
    #[error(
        "layer {blob}: its uncompressed content is {actual}, but the image config says {expected}"
    )]
    DiffIdMismatch {
        blob: Digest,
        expected: Digest,
        actual: Digest,
    },
    #[error(
        "image {config}: the manifest has {layers} layers but the config lists {diff_ids} diff_ids"
    )]
    LayerCount {
        config: Digest,
        layers: usize,
        diff_ids: usize,
    },
    #[error("No such image: {0}")]
    NotFound(String),
    #[error("{input:?} is ambiguous: it is a prefix of {count} image ids")]
    Ambiguous { input: String, count: usize },
    #[error("conflict: unable to remove repository reference {name:?} (must force) - image {id} is being used by {users}")]
    InUse {
        name: String,
        id: String,
        users: String,
    },
    #[error("conflict: unable to delete {id} (must be forced) - image is referenced in multiple repositories")]
    MultipleTags { id: String },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Images, layers and snapshots under one root.
#[derive(Debug, Clone)]
pub struct ImageStore {
    root: PathBuf,
    content: ContentStore,
    snapshots: Snapshotter,
}

impl ImageStore {
    /// Opens (creating when missing) a store under `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<ImageStore> {
        let root = root.into();
        let layers = root.join(LAYERS);
        fs::create_dir_all(&layers).map_err(io_err("creating", &layers))?;
        let content = ContentStore::open(root.join("content"))?;
        let snapshots = Snapshotter::new(&root);
        Ok(ImageStore {
            root,
            content,
            snapshots,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn content(&self) -> &ContentStore {
        &self.content
    }

    pub fn snapshotter(&self) -> &Snapshotter {
        &self.snapshots
    }

    /// The unpacked directory of a layer (whether or not it exists).
    pub fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.root.join(LAYERS).join(diff_id.hex())
    }

    /// Every image, newest first.
    pub fn list(&self) -> Result<Vec<ImageRecord>> {
        let mut images: Vec<_> = self.read()?.images.into_values().collect();
        images.sort_by(|a, b| b.added.cmp(&a.added).then(a.id.cmp(&b.id)));
        Ok(images)
    }

    /// Finds an image as Docker does: by reference (`busybox`, `name:tag`, `name@digest`),
    /// then by full id (`sha256:…`) or a unique id prefix.
    pub fn resolve(&self, input: &str) -> Result<ImageRecord> {
        let records = self.read()?;
        find(&records, input).cloned()
    }

    /// The parsed configuration of an image.
    pub fn config(&self, image: &ImageRecord) -> Result<ImageConfig> {
        let data = self.read_blob(&image.id)?;
        Ok(ImageConfig::parse(&image.id, &data)?)
    }

    /// A blob's bytes (manifests and configs; layers are better streamed with `open_blob`).
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let path = self.content.blob_path(digest);
        fs::read(&path).map_err(io_err("reading blob", &path))
    }

    /// Unpacks the image's missing layers (in parallel, each verified against its `diff_id`)
    /// and then records the image, moving `tag` to it. Idempotent.
    pub fn commit(&self, new: NewImage) -> Result<ImageRecord> {
        let config_data = self.read_blob(&new.config_digest)?;
        let config = ImageConfig::parse(&new.config_digest, &config_data)?;
        let diff_ids = &config.rootfs.diff_ids;
        if diff_ids.len() != new.layers.len() {
            return Err(StoreError::LayerCount {
                config: new.config_digest.clone(),
                layers: new.layers.len(),
                diff_ids: diff_ids.len(),
            });
        }
        let layers: Vec<LayerRecord> = new
            .layers
            .iter()
            .zip(diff_ids)
            .map(|((blob, media_type, size), diff_id)| LayerRecord {
                blob: blob.clone(),
                diff_id: diff_id.clone(),
                media_type: media_type.clone(),
                size: *size,
            })
            .collect();
        self.ensure_layers(&layers)?;
        let size = layers.iter().map(|l| self.layer_size(&l.diff_id)).sum();

        self.update(|records| {
            let key = new.config_digest.to_string();
            let tag = new.tag.as_ref().map(|t| t.to_string());
            if let Some(tag) = &tag {
                for other in records.images.values_mut() {
                    other.tags.retain(|t| t != tag);
                }
            }
            let record = records.images.entry(key).or_insert_with(|| ImageRecord {
                id: new.config_digest.clone(),
                manifest_digest: new.manifest_digest.clone(),
                repo_digests: Vec::new(),
                tags: Vec::new(),
                layers: layers.clone(),
                size,
                created: config.created.clone(),
                added: now(),
            });
            if let Some(tag) = tag {
                record.tags.push(tag);
            }
            if let Some(rd) = &new.repo_digest {
                if !record.repo_digests.contains(rd) {
                    record.repo_digests.push(rd.clone());
                }
            }
            Ok(record.clone())
        })
    }

    /// Points `target` at the image `source` resolves to.
    pub fn tag(&self, source: &str, target: &Reference) -> Result<ImageRecord> {
        let target = target.to_string();
        self.update(|records| {
            let id = find(records, source)?.id.to_string();
            for other in records.images.values_mut() {
                other.tags.retain(|t| *t != target);
            }
            let record = records.images.get_mut(&id).expect("resolved image exists");
            record.tags.push(target.clone());
            Ok(record.clone())
        })
    }

    /// `rmi`: a reference untags (and deletes the image when that was its last name); an id
    /// deletes the image. An image some snapshot uses is refused unless `force`, and even then
    /// only untagged: its data stays until the last snapshot goes. Unreferenced blobs and layers
    /// are removed afterwards.
    pub fn remove(&self, input: &str, force: bool) -> Result<Vec<Removed>> {
        let users = self.snapshot_users()?;
        let removed = self.update(|records| {
            let image = find(records, input)?.clone();
            let key = image.id.to_string();
            let by_id = !image.tags.iter().any(|t| tag_matches(t, input));
            let in_use: Vec<&String> = users
                .iter()
                .filter(|(_, id)| **id == image.id)
                .map(|(snap, _)| snap)
                .collect();
            let mut out = Vec::new();
            if by_id && image.tags.len() > 1 && !force {
                return Err(StoreError::MultipleTags {
                    id: image.short_id().to_string(),
                });
            }
            let untag: Vec<String> = if by_id {
                image.tags.clone()
            } else {
                image
                    .tags
                    .iter()
                    .filter(|t| tag_matches(t, input))
                    .cloned()
                    .collect()
            };
            let last_name = untag.len() == image.tags.len();
            if last_name && !in_use.is_empty() && !force {
                let names: Vec<&str> = in_use.iter().map(|s| s.as_str()).collect();
                return Err(StoreError::InUse {
                    name: input.to_string(),
                    id: image.short_id().to_string(),
                    users: format!("{} snapshot(s): {}", in_use.len(), names.join(", ")),
                });
            }
            let record = records.images.get_mut(&key).expect("resolved image exists");
            record.tags.retain(|t| !untag.contains(t));
            out.extend(untag.iter().map(|t| Removed::Untagged(familiar(t))));
            if last_name && in_use.is_empty() {
                for rd in &record.repo_digests {
                    out.push(Removed::Untagged(familiar(rd)));
                }
                records.images.remove(&key);
                out.push(Removed::Deleted(image.id.clone()));
            }
            Ok(out)
        })?;
        self.gc()?;
        Ok(removed)
    }

    /// `image prune`: removes dangling images (no tags), or with `all` every image no snapshot
    /// uses; then collects garbage. Returns the deleted ids and the bytes reclaimed.
    pub fn prune(&self, all: bool) -> Result<(Vec<Digest>, u64)> {
        let users: BTreeSet<Digest> = self.snapshot_users()?.into_values().collect();
        let deleted = self.update(|records| {
            let doomed: Vec<String> = records
                .images
                .iter()
                .filter(|(_, r)| (all || r.tags.is_empty()) && !users.contains(&r.id))
                .map(|(k, _)| k.clone())
                .collect();
            Ok(doomed
                .into_iter()
                .filter_map(|k| records.images.remove(&k))
                .map(|r| r.id)
                .collect::<Vec<_>>())
        })?;
        let reclaimed = self.gc()?;
        Ok((deleted, reclaimed))
    }

    /// Protects what this process is about to add from garbage collection until the lease is
    /// dropped. Take it before fetching or loading blobs; keep it until [`ImageStore::commit`]
    /// returned.
    pub fn lease(&self) -> Result<Lease> {
        let path = self.root.join(GC_LOCK);
        let file = open_lock_file(&path)?;
        file.lock_shared()
            .map_err(io_err("locking (flock LOCK_SH)", &path))?;
        Ok(Lease { _file: file })
    }

    /// Removes what no image refers to: blobs, unpacked layers, temporary layer directories
    /// and abandoned ingests. Returns the bytes of blobs removed. Does nothing while a pull or
    /// load holds a [`Lease`].
    pub fn gc(&self) -> Result<u64> {
        let gc_path = self.root.join(GC_LOCK);
        let gc_lock = open_lock_file(&gc_path)?;
        match gc_lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                debug!("a pull or load is in progress; garbage collection skipped");
                return Ok(0);
            }
            Err(fs::TryLockError::Error(e)) => return Err(io_err("locking", &gc_path)(e)),
        }
        let _lock = self.lock()?;
        let records = self.read()?;
        let mut keep_blobs = BTreeSet::new();
        let mut keep_layers = BTreeSet::new();
        for image in records.images.values() {
            keep_blobs.insert(image.id.clone());
            keep_blobs.insert(image.manifest_digest.clone());
            for rd in &image.repo_digests {
                if let Some(d) = rd.rsplit_once('@').and_then(|(_, d)| Digest::parse(d).ok()) {
                    keep_blobs.insert(d);
                }
            }
            for layer in &image.layers {
                keep_blobs.insert(layer.blob.clone());
                keep_layers.insert(layer.diff_id.hex().to_string());
            }
        }
        let mut reclaimed = 0;
        for digest in self.content.list()? {
            if !keep_blobs.contains(&digest) {
                reclaimed += self.content.size(&digest).unwrap_or(0);
                self.content.delete(&digest)?;
            }
        }
        for ingest in self.content.ingests()? {
            self.content.abort_if_idle(&ingest)?;
        }
        let dir = self.root.join(LAYERS);
        for entry in fs::read_dir(&dir).map_err(io_err("listing", &dir))? {
            let entry = entry.map_err(io_err("listing", &dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let stem = name.strip_suffix(".json").unwrap_or(&name);
            if keep_layers.contains(stem) {
                continue;
            }
            let path = entry.path();
            debug!(path = %path.display(), "removing unreferenced layer data");
            let result = if entry.file_type().is_ok_and(|t| t.is_dir()) {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            result.map_err(io_err("removing", &path))?;
        }
        Ok(reclaimed)
    }

    /// Makes a snapshot of `image` for a container, remembering which image it came from.
    pub fn create_snapshot(&self, snapshot_id: &str, image: &ImageRecord) -> Result<MountSpec> {
        let layers: Vec<PathBuf> = image
            .layers
            .iter()
            .map(|l| self.layer_dir(&l.diff_id))
            .collect();
        let spec = self.snapshots.prepare(snapshot_id, &layers)?;
        let marker = self.snapshots.dir(snapshot_id)?.join(SNAPSHOT_IMAGE_FILE);
        if let Err(e) = fs::write(&marker, image.id.to_string()) {
            let _ = self.snapshots.remove(snapshot_id);
            return Err(io_err("writing", &marker)(e));
        }
        Ok(spec)
    }

    /// Snapshot id → the image it was made from.
    pub fn snapshot_users(&self) -> Result<BTreeMap<String, Digest>> {
        let dir = self.root.join("snapshots");
        let mut users = BTreeMap::new();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(users),
            Err(e) => return Err(io_err("listing", &dir)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io_err("listing", &dir))?;
            let marker = entry.path().join(SNAPSHOT_IMAGE_FILE);
            if let Ok(text) = fs::read_to_string(&marker) {
                if let Ok(d) = Digest::parse(text.trim()) {
                    users.insert(entry.file_name().to_string_lossy().into_owned(), d);
                }
            }
        }
        Ok(users)
    }

    fn layer_size(&self, diff_id: &Digest) -> u64 {
        let meta = self
            .root
            .join(LAYERS)
            .join(format!("{}.json", diff_id.hex()));
        fs::read(&meta)
            .ok()
            .and_then(|d| serde_json::from_slice::<LayerMeta>(&d).ok())
            .map_or(0, |m| m.size)
    }

    /// Unpacks every layer whose directory is missing, using up to one thread per CPU. The
    /// first error wins; the other threads stop taking new layers.
    fn ensure_layers(&self, layers: &[LayerRecord]) -> Result<()> {
        let mut missing: Vec<&LayerRecord> = Vec::new();
        for layer in layers {
            let present = self.layer_dir(&layer.diff_id).is_dir();
            if !present && !missing.iter().any(|m| m.diff_id == layer.diff_id) {
                missing.push(layer);
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        let threads = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .min(missing.len());
        let next = AtomicUsize::new(0);
        let first_error: Mutex<Option<StoreError>> = Mutex::new(None);
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| loop {
                    if first_error.lock().expect("not poisoned").is_some() {
                        return;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(layer) = missing.get(i) else { return };
                    if let Err(e) = self.unpack_layer(layer) {
                        first_error.lock().expect("not poisoned").get_or_insert(e);
                        return;
                    }
                });
            }
        });
        match first_error.into_inner().expect("not poisoned") {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Unpacks one layer blob into `layers/.tmp-…`, checks its diff_id and renames it into
    /// place. A concurrent unpack of the same layer by another process is harmless: whoever
    /// renames second finds the directory there and discards its copy.
    fn unpack_layer(&self, layer: &LayerRecord) -> Result<()> {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let layers_dir = self.root.join(LAYERS);
        let tmp = layers_dir.join(format!(
            "{TMP_PREFIX}{}-{}-{}",
            layer.diff_id.hex(),
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir(&tmp).map_err(io_err("creating", &tmp))?;
        let result = self.unpack_into(layer, &tmp);
        if result.is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        result
    }

    fn unpack_into(&self, layer: &LayerRecord, tmp: &Path) -> Result<()> {
        let blob = self.content.open_blob(&layer.blob)?;
        let reader = io::BufReader::with_capacity(256 * 1024, blob);
        let summary = unpack::unpack(reader, tmp, &UnpackOptions::default()).map_err(|source| {
            StoreError::Unpack {
                blob: layer.blob.clone(),
                diff_id: layer.diff_id.clone(),
                source,
            }
        })?;
        let actual = summary.diff_id.expect("unpack always computes the diff_id");
        if actual != layer.diff_id {
            return Err(StoreError::DiffIdMismatch {
                blob: layer.blob.clone(),
                expected: layer.diff_id.clone(),
                actual,
            });
        }
        let layers_dir = self.root.join(LAYERS);
        let meta = layers_dir.join(format!("{}.json", layer.diff_id.hex()));
        let meta_bytes = serde_json::to_vec(&LayerMeta {
            size: summary.bytes,
            entries: summary.entries,
        })
        .expect("layer metadata serializes");
        write_durably(&meta, &meta_bytes)?;
        // The directory's contents must be on disk before its name is: a crash after the
        // rename must not leave a complete-looking layer with missing files.
        sync_tree(tmp)?;
        let dest = self.layer_dir(&layer.diff_id);
        match fs::rename(tmp, &dest) {
            Ok(()) => {}
            // ENOTEMPTY/EEXIST: another unpack of the same layer won the race.
            Err(e) if dest.is_dir() => {
                debug!(layer = %layer.diff_id, error = %e, "layer already unpacked by another process");
                let _ = fs::remove_dir_all(tmp);
            }
            Err(e) => return Err(io_err("renaming layer into place", &dest)(e)),
        }
        sync_dir(&layers_dir)
    }

    fn lock(&self) -> Result<File> {
        let path = self.root.join(LOCK);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err("opening", &path))?;
        file.lock()
            .map_err(io_err("locking (flock LOCK_EX)", &path))?;
        Ok(file)
    }

    fn read(&self) -> Result<Records> {
        let path = self.root.join(RECORDS);
        match fs::read(&path) {
            Ok(data) => {
                serde_json::from_slice(&data).map_err(|source| StoreError::Corrupt { path, source })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Records::default()),
            Err(e) => Err(io_err("reading", &path)(e)),
        }
    }

    /// Read-modify-write of the records under the store lock; the new records replace the old
    /// ones atomically, and only when `change` succeeds.
    fn update<T>(&self, change: impl FnOnce(&mut Records) -> Result<T>) -> Result<T> {
        let _lock = self.lock()?;
        let mut records = self.read()?;
        let out = change(&mut records)?;
        let mut data = serde_json::to_vec_pretty(&records).expect("records serialize");
        data.push(b'\n');
        write_durably(&self.root.join(RECORDS), &data)?;
        Ok(out)
    }
}

/// Keeps garbage collection away while held; see [`ImageStore::lease`].
#[derive(Debug)]
pub struct Lease {
    _file: File,
}

fn open_lock_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io_err("opening", path))
}

#[derive(Debug, Serialize, Deserialize)]
struct LayerMeta {
    size: u64,
    entries: u64,
}

fn find<'a>(records: &'a Records, input: &str) -> Result<&'a ImageRecord> {
    let not_found = || StoreError::NotFound(input.to_string());
    if input.is_empty() {
        return Err(not_found());
    }
    if let Ok(reference) = input.parse::<Reference>() {
        let full = reference.to_string();
        if let Some(image) = records
            .images
            .values()
            .find(|r| r.tags.contains(&full) || r.repo_digests.contains(&full))
        {
            return Ok(image);
        }
    }
    let hex = input.strip_prefix("sha256:").unwrap_or(input);
    if !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(not_found());
    }
    let hex = hex.to_ascii_lowercase();
    let matches: Vec<&ImageRecord> = records
        .images
        .values()
        .filter(|r| r.id.hex().starts_with(&hex))
        .collect();
    match matches.len() {
        0 => Err(not_found()),
        1 => Ok(matches[0]),
        count => Err(StoreError::Ambiguous {
            input: input.to_string(),
            count,
        }),
    }
}

/// Whether a stored full reference is what the user typed.
fn tag_matches(stored: &str, input: &str) -> bool {
    input
        .parse::<Reference>()
        .is_ok_and(|r| r.to_string() == stored)
}

/// The short form Docker prints for a stored full reference.
pub fn familiar(full: &str) -> String {
    full.parse::<Reference>()
        .map_or_else(|_| full.to_string(), |r| r.familiar())
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Writes `path` so that after a crash it holds either its old content or all of `data`:
/// a temporary file is written and fsynced, renamed over `path`, and the directory fsynced.
fn write_durably(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut file = File::create(&tmp).map_err(io_err("creating", &tmp))?;
    file.write_all(data).map_err(io_err("writing", &tmp))?;
    file.sync_all().map_err(io_err("fsync", &tmp))?;
    drop(file);
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(io_err("renaming into place", path)(e));
    }
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync", dir))
}

/// Flushes the file system holding `dir` (a freshly unpacked layer) with syncfs(2): one call
/// instead of an fsync per file.
fn sync_tree(dir: &Path) -> Result<()> {
    let handle = File::open(dir).map_err(io_err("opening", dir))?;
    nix::unistd::syncfs(handle.as_raw_fd())
        .map_err(|errno| io_err("syncfs", dir)(io::Error::from(errno)))
}
