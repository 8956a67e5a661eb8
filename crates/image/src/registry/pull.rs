//! `fetch_image`: resolve a reference, then store the top-level manifest or index, the
//! platform's manifest, the config and every layer, each verified before its commit.
//!
//! Layers are fetched by up to `max_concurrent_downloads` threads. Each download writes
//! into the content store's ingest `sha256-<hex>`; after a transient failure (network,
//! 5xx, 429) it waits (exponential backoff) and resumes from [`Writer::offset`] with a
//! `Range` request, or restarts when the server answers with the whole blob.
//!
//! [`Writer::offset`]: crate::content::Writer::offset

use std::collections::HashSet;
use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use tracing::{debug, info, warn};

use super::client::{error_codes, read_text, Client, MAX_MANIFEST};
use super::credentials::load_credentials;
use super::error::RegistryError;
use super::platform::Platform;
use super::progress::{PullEvent, PullObserver};
use crate::content::{ContentError, ContentStore, Digest};
use crate::reference::Reference;

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// What we accept, most wanted first. Schema 1 is listed so that a registry holding only
/// that answers with it and we can say why we refuse it, rather than a bare 404.
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json, \
    application/vnd.docker.distribution.manifest.v1+prettyjws;q=0.1, \
    application/vnd.docker.distribution.manifest.v1+json;q=0.1";

/// Progress events per layer: one every this many bytes (plus the last).
const PROGRESS_STEP: u64 = 256 * 1024;

/// How a pull reaches registries and what it selects.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// `host[:port]` of registries reached over plain HTTP. Loopback registries
    /// (127.0.0.0/8, localhost, ::1) always are, as Docker does.
    pub insecure_registries: Vec<String>,
    /// Docker-format `config.json` to take credentials from (none: anonymous).
    pub credentials_file: Option<PathBuf>,
    /// The platform picked from an index (default: the host's).
    pub platform: Platform,
    /// Layers downloaded at once (default 3, like dockerd).
    pub max_concurrent_downloads: usize,
    /// Further attempts per blob after a transient error (default 5, like dockerd).
    pub retries: u32,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            insecure_registries: Vec::new(),
            credentials_file: None,
            platform: Platform::default(),
            max_concurrent_downloads: 3,
            retries: 5,
        }
    }
}

/// What a pull stored.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub reference: Reference,
    /// Digest of the top-level manifest or index (docker's RepoDigest).
    pub repo_digest: Digest,
    /// Digest of the platform's image manifest (equal to `repo_digest` without an index).
    pub manifest_digest: Digest,
    pub manifest: ImageManifest,
    pub config_digest: Digest,
    pub layers: Vec<Descriptor>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Index,
    Manifest,
}

/// Per-pull context shared by the download threads.
struct Puller<'a> {
    client: Client,
    store: &'a ContentStore,
    repository: String,
    events: &'a dyn PullObserver,
    retries: u32,
    /// Set when one layer failed: the others stop (their partial ingests stay for a
    /// later resume).
    cancel: AtomicBool,
}

/// Pulls `reference` into `store` (see the module docs). Blocks until every blob is
/// committed or one failed; events go to `events` meanwhile.
pub fn fetch_image(
    store: &ContentStore,
    reference: &Reference,
    opts: &PullOptions,
    events: &dyn PullObserver,
) -> Result<Fetched, RegistryError> {
    let wanted = reference
        .digest
        .clone()
        .or_else(|| reference.tag.clone())
        .unwrap_or_else(|| crate::reference::DEFAULT_TAG.to_owned());
    // Docker names the repository without its registry here ("Pulling from library/busybox").
    events.event(PullEvent::Resolving {
        name: reference.path.clone(),
        tag: wanted.clone(),
    });
    let creds = match &opts.credentials_file {
        Some(path) => load_credentials(path, &reference.domain)?,
        None => None,
    };
    let puller = Puller {
        client: Client::new(&reference.domain, &opts.insecure_registries, creds),
        store,
        repository: reference.path.clone(),
        events,
        retries: opts.retries,
        cancel: AtomicBool::new(false),
    };
    let ref_str = reference.to_string();

    // The top-level manifest or index.
    let expected = match &reference.digest {
        Some(d) => Some(parse_digest(&ref_str, d)?),
        None => None,
    };
    let (bytes, kind, repo_digest) = puller.manifest(&ref_str, &wanted, expected.as_ref())?;
    store.put(&bytes)?;

    let (manifest_bytes, manifest_digest) = match kind {
        Kind::Manifest => (bytes, repo_digest.clone()),
        Kind::Index => {
            let index: ImageIndex =
                serde_json::from_slice(&bytes).map_err(|e| RegistryError::InvalidManifest {
                    reference: ref_str.clone(),
                    digest: repo_digest.to_string(),
                    reason: e.to_string(),
                })?;
            let desc = opts.platform.select(index.manifests()).ok_or_else(|| {
                RegistryError::NoMatchingPlatform {
                    reference: ref_str.clone(),
                    platform: opts.platform.to_string(),
                    available: Platform::describe_all(index.manifests()),
                }
            })?;
            let digest = parse_digest(&ref_str, desc.digest().as_ref())?;
            let child_ref = format!("{}@{digest}", reference.name());
            debug!(%digest, platform = %opts.platform, "selected platform manifest");
            let (child, child_kind, _) =
                puller.manifest(&child_ref, &digest.to_string(), Some(&digest))?;
            if child_kind != Kind::Manifest {
                return Err(RegistryError::InvalidManifest {
                    reference: child_ref,
                    digest: digest.to_string(),
                    reason: "an index entry for a platform is itself an index".into(),
                });
            }
            store.put(&child)?;
            (child, digest)
        }
    };
    let manifest: ImageManifest =
        serde_json::from_slice(&manifest_bytes).map_err(|e| RegistryError::InvalidManifest {
            reference: ref_str.clone(),
            digest: manifest_digest.to_string(),
            reason: e.to_string(),
        })?;

    // The config: small, fetched first and without layer events.
    let config_digest = parse_digest(&ref_str, manifest.config().digest().as_ref())?;
    let mut downloaded = false;
    if !store.exists(&config_digest) {
        puller.blob(&config_digest, manifest.config().size(), false)?;
        downloaded = true;
    }

    // The layers, each once even if the manifest lists it twice.
    let mut todo: Vec<(Digest, u64)> = Vec::new();
    let mut seen = HashSet::new();
    for layer in manifest.layers() {
        let digest = parse_digest(&ref_str, layer.digest().as_ref())?;
        if !seen.insert(digest.clone()) {
            continue;
        }
        if store.exists(&digest) {
            events.event(PullEvent::LayerAlreadyExists { digest });
        } else {
            events.event(PullEvent::LayerWaiting {
                digest: digest.clone(),
                size: layer.size(),
            });
            todo.push((digest, layer.size()));
        }
    }
    downloaded |= !todo.is_empty();
    puller.blobs_parallel(&todo, opts.max_concurrent_downloads.max(1))?;

    info!(reference = %ref_str, %repo_digest, %manifest_digest, "pulled");
    events.event(PullEvent::Done {
        reference: reference.familiar(),
        repo_digest: repo_digest.clone(),
        downloaded,
    });
    Ok(Fetched {
        reference: reference.clone(),
        repo_digest,
        manifest_digest,
        layers: manifest.layers().clone(),
        config_digest,
        manifest,
    })
}

fn parse_digest(reference: &str, d: &str) -> Result<Digest, RegistryError> {
    Digest::parse(d).map_err(|_| RegistryError::UnsupportedDigest {
        reference: reference.to_owned(),
        digest: d.to_owned(),
    })
}

/// Index or manifest, from the Content-Type, else the body's `mediaType`, else its shape.
/// Schema 1 is refused here.
fn classify(reference: &str, content_type: &str, body: &[u8]) -> Result<Kind, RegistryError> {
    let value: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let field = |k: &str| value.as_ref().and_then(|v| v.get(k));
    let schema1 = |media_type: &str| RegistryError::Schema1 {
        reference: reference.to_owned(),
        media_type: media_type.to_owned(),
    };
    if field("schemaVersion").and_then(|v| v.as_u64()) == Some(1) {
        return Err(schema1(if content_type.is_empty() {
            DOCKER_SCHEMA1
        } else {
            content_type
        }));
    }
    let body_type = field("mediaType").and_then(|v| v.as_str()).unwrap_or("");
    let media_type = match content_type {
        "" | "application/json" | "text/plain" | "application/octet-stream" => body_type,
        t => t,
    };
    match media_type {
        OCI_INDEX | DOCKER_LIST => Ok(Kind::Index),
        OCI_MANIFEST | DOCKER_MANIFEST => Ok(Kind::Manifest),
        DOCKER_SCHEMA1 | DOCKER_SCHEMA1_SIGNED => Err(schema1(media_type)),
        "" if field("manifests").is_some() => Ok(Kind::Index),
        "" if field("config").is_some() && field("layers").is_some() => Ok(Kind::Manifest),
        other => Err(RegistryError::UnsupportedMediaType {
            reference: reference.to_owned(),
            media_type: other.to_owned(),
        }),
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((200u64 << attempt.min(5)).min(5_000))
}

impl Puller<'_> {
    /// GETs the manifest `tag_or_digest`, checks its digest (against `expected` and the
    /// registry's `Docker-Content-Digest`) and returns its bytes, kind and digest.
    fn manifest(
        &self,
        reference: &str,
        tag_or_digest: &str,
        expected: Option<&Digest>,
    ) -> Result<(Vec<u8>, Kind, Digest), RegistryError> {
        let mut attempt = 0;
        loop {
            match self.manifest_once(reference, tag_or_digest, expected) {
                Err(e) if e.is_transient() && attempt < self.retries => {
                    debug!(reference, error = %e, "manifest fetch failed; retrying");
                    std::thread::sleep(backoff(attempt));
                    attempt += 1;
                }
                r => return r,
            }
        }
    }

    fn manifest_once(
        &self,
        reference: &str,
        tag_or_digest: &str,
        expected: Option<&Digest>,
    ) -> Result<(Vec<u8>, Kind, Digest), RegistryError> {
        let path = format!("/v2/{}/manifests/{tag_or_digest}", self.repository);
        let resp = self.client.get(
            &path,
            Some(&self.repository),
            &[("Accept", ACCEPT)],
            "fetch a manifest",
        )?;
        match resp.status() {
            200 => {}
            404 => {
                let codes = error_codes(&read_text(resp));
                // Registries often answer MANIFEST_UNKNOWN for a repository they do not
                // have at all; its tag list tells the two apart.
                return Err(
                    if codes.iter().any(|c| c == "NAME_UNKNOWN") || self.repo_unknown() {
                        RegistryError::RepositoryUnknown {
                            registry: self.client.registry().to_owned(),
                            repository: self.repository.clone(),
                        }
                    } else {
                        RegistryError::ManifestUnknown {
                            reference: reference.to_owned(),
                        }
                    },
                );
            }
            s => return Err(self.client.status_error("fetch a manifest", s, resp)),
        }
        let content_type = resp
            .header("Content-Type")
            .map(|t| t.split(';').next().unwrap_or("").trim().to_owned())
            .unwrap_or_default();
        let header_digest = resp.header("Docker-Content-Digest").map(str::to_owned);
        let mut body = Vec::new();
        resp.into_reader()
            .take(MAX_MANIFEST + 1)
            .read_to_end(&mut body)
            .map_err(|e| RegistryError::Transport {
                registry: self.client.registry().to_owned(),
                what: format!("read the manifest of {reference}"),
                message: e.to_string(),
            })?;
        if body.len() as u64 > MAX_MANIFEST {
            return Err(RegistryError::InvalidManifest {
                reference: reference.to_owned(),
                digest: tag_or_digest.to_owned(),
                reason: format!("larger than {MAX_MANIFEST} bytes"),
            });
        }
        let actual = Digest::of_bytes(&body);
        let mismatch = |expected: String| RegistryError::ManifestDigestMismatch {
            reference: reference.to_owned(),
            expected,
            actual: actual.clone(),
        };
        if let Some(e) = expected {
            if *e != actual {
                return Err(mismatch(e.to_string()));
            }
        }
        if let Some(h) = header_digest.filter(|h| h.starts_with("sha256:")) {
            if h != actual.to_string() {
                return Err(mismatch(h));
            }
        }
        let kind = classify(reference, &content_type, &body)?;
        Ok((body, kind, actual))
    }

    /// Whether the registry says the repository does not exist (`NAME_UNKNOWN` for its
    /// tag list); any other answer, or none, counts as "exists".
    fn repo_unknown(&self) -> bool {
        let path = format!("/v2/{}/tags/list?n=1", self.repository);
        match self
            .client
            .get(&path, Some(&self.repository), &[], "list tags")
        {
            Ok(resp) if resp.status() == 404 => error_codes(&read_text(resp))
                .iter()
                .any(|c| c == "NAME_UNKNOWN"),
            _ => false,
        }
    }

    /// Downloads the listed blobs on up to `workers` threads; the first error stops the
    /// others from starting new blobs and is returned.
    fn blobs_parallel(&self, todo: &[(Digest, u64)], workers: usize) -> Result<(), RegistryError> {
        let next = AtomicUsize::new(0);
        let first_err: Mutex<Option<RegistryError>> = Mutex::new(None);
        let work = || {
            while !self.cancel.load(Ordering::SeqCst) {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some((digest, size)) = todo.get(i) else {
                    return;
                };
                if let Err(e) = self.blob(digest, *size, true) {
                    // The cause goes in before the others are told to stop, so that a
                    // `Cancelled` of theirs never takes its place.
                    first_err.lock().expect("error slot").get_or_insert(e);
                    self.cancel.store(true, Ordering::SeqCst);
                }
            }
        };
        std::thread::scope(|s| -> Result<(), RegistryError> {
            for n in 1..workers.min(todo.len()) {
                std::thread::Builder::new()
                    .name(format!("coracle-pull-{n}"))
                    .spawn_scoped(s, work)
                    .map_err(RegistryError::Thread)?;
            }
            // This thread is one of the workers.
            work();
            Ok(())
        })?;
        match first_err.into_inner().expect("error slot") {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Downloads one blob into the store, retrying and resuming on transient errors.
    fn blob(&self, digest: &Digest, size: u64, layer: bool) -> Result<(), RegistryError> {
        let mut attempt = 0;
        loop {
            match self.blob_attempt(digest, size, layer) {
                Ok(()) => return Ok(()),
                // Another writer (another pull of this blob) holds the ingest: wait for
                // it to finish or give up; this costs no retry.
                Err(RegistryError::Content(c))
                    if matches!(*c, ContentError::Locked { .. })
                        && !self.cancel.load(Ordering::SeqCst) =>
                {
                    debug!(%digest, "ingest held by another writer; waiting");
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e)
                    if attempt < self.retries
                        && e.is_transient()
                        && !self.cancel.load(Ordering::SeqCst) =>
                {
                    attempt += 1;
                    debug!(%digest, attempt, error = %e, "blob download failed; retrying");
                    if layer {
                        self.events.event(PullEvent::LayerRetrying {
                            digest: digest.clone(),
                            attempt,
                            error: e.to_string(),
                        });
                    }
                    std::thread::sleep(backoff(attempt - 1));
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn blob_attempt(&self, digest: &Digest, size: u64, layer: bool) -> Result<(), RegistryError> {
        if self.store.exists(digest) {
            return self.complete(digest, layer);
        }
        let ingest = format!("sha256-{}", digest.hex());
        let mut writer = self.store.writer(&ingest, Some(digest), Some(size))?;
        let mut resumed = writer.offset() > 0;
        if writer.offset() > size {
            debug!(%digest, offset = writer.offset(), "partial ingest longer than the blob; restarting");
            drop(writer);
            self.store.abort(&ingest)?;
            writer = self.store.writer(&ingest, Some(digest), Some(size))?;
            resumed = false;
        }
        if writer.offset() < size {
            let offset = writer.offset();
            let path = format!("/v2/{}/blobs/{digest}", self.repository);
            let range = format!("bytes={offset}-");
            let mut headers = vec![];
            if offset > 0 {
                headers.push(("Range", range.as_str()));
            }
            let resp = self
                .client
                .get(&path, Some(&self.repository), &headers, "fetch a blob")?;
            let status = resp.status();
            let partial_ok = status == 206
                && resp
                    .header("Content-Range")
                    .is_some_and(|r| r.starts_with(&format!("bytes {offset}-")));
            match status {
                200 | 206 => {}
                404 => {
                    return Err(RegistryError::BlobUnknown {
                        registry: self.client.registry().to_owned(),
                        repository: self.repository.clone(),
                        digest: digest.to_string(),
                    })
                }
                416 if offset > 0 => {
                    // Our partial is not a prefix the server can continue: start over.
                    drop(writer);
                    self.store.abort(&ingest)?;
                    return Err(restart_error(self, digest));
                }
                s => return Err(self.client.status_error("fetch a blob", s, resp)),
            }
            if offset > 0 && status == 206 && !partial_ok {
                // A range, but not the one we asked for: start over without one.
                drop(writer);
                self.store.abort(&ingest)?;
                return Err(restart_error(self, digest));
            }
            if offset > 0 && status == 200 {
                debug!(%digest, offset, "server ignored the Range request; restarting the blob");
                drop(writer);
                self.store.abort(&ingest)?;
                writer = self.store.writer(&ingest, Some(digest), Some(size))?;
                resumed = false;
            } else if offset > 0 {
                debug!(%digest, offset, "resuming blob download");
            }
            let mut reader = resp.into_reader().take(size - writer.offset());
            let mut buf = vec![0u8; 64 * 1024];
            let mut last_report = u64::MAX;
            loop {
                let done = writer.offset();
                if layer && (last_report == u64::MAX || done - last_report >= PROGRESS_STEP) {
                    last_report = done;
                    self.events.event(PullEvent::LayerDownloading {
                        digest: digest.clone(),
                        done,
                        total: size,
                    });
                }
                if layer && self.cancel.load(Ordering::SeqCst) {
                    return Err(RegistryError::Cancelled {
                        digest: digest.clone(),
                    });
                }
                let n = match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        return Err(RegistryError::Transport {
                            registry: self.client.registry().to_owned(),
                            what: format!("read blob {digest}"),
                            message: e.to_string(),
                        })
                    }
                };
                writer.write_all(&buf[..n])?;
            }
            if writer.offset() < size {
                return Err(RegistryError::Transport {
                    registry: self.client.registry().to_owned(),
                    what: format!("read blob {digest}"),
                    message: format!(
                        "the connection ended after {} of {size} bytes",
                        writer.offset()
                    ),
                });
            }
            if layer && last_report != size {
                self.events.event(PullEvent::LayerDownloading {
                    digest: digest.clone(),
                    done: size,
                    total: size,
                });
            }
        }
        if layer {
            self.events.event(PullEvent::LayerVerifying {
                digest: digest.clone(),
            });
        }
        match writer.commit() {
            Ok(_) => self.complete(digest, layer),
            // A resumed partial may have been bad (written by someone else, or changed):
            // the commit removed it, so one fresh attempt is worth it.
            Err(e @ ContentError::DigestMismatch { .. }) if resumed => {
                warn!(%digest, error = %e, "resumed blob failed verification; downloading it again");
                Err(restart_error(self, digest))
            }
            Err(source) => Err(RegistryError::BlobVerification {
                registry: self.client.registry().to_owned(),
                repository: self.repository.clone(),
                digest: digest.clone(),
                source: Box::new(source),
            }),
        }
    }

    fn complete(&self, digest: &Digest, layer: bool) -> Result<(), RegistryError> {
        if layer {
            self.events.event(PullEvent::LayerComplete {
                digest: digest.clone(),
            });
        }
        Ok(())
    }
}

/// A transient error that makes `blob` try again from a clean ingest.
fn restart_error(p: &Puller<'_>, digest: &Digest) -> RegistryError {
    RegistryError::Transport {
        registry: p.client.registry().to_owned(),
        what: format!("resume blob {digest}"),
        message: "the partial download could not be continued; starting over".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_manifests_and_refuses_schema1() {
        let m = br#"{"schemaVersion":2,"config":{},"layers":[]}"#;
        assert_eq!(classify("r", OCI_MANIFEST, m).unwrap(), Kind::Manifest);
        assert_eq!(classify("r", "", m).unwrap(), Kind::Manifest);
        let i = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[]}"#;
        assert_eq!(classify("r", "application/json", i).unwrap(), Kind::Index);
        let s1 = br#"{"schemaVersion":1,"name":"x","fsLayers":[]}"#;
        let err = classify("h/x:1", DOCKER_SCHEMA1_SIGNED, s1).unwrap_err();
        assert!(err.to_string().contains("schema 1"), "{err}");
        assert!(classify("r", "application/vnd.foo", m)
            .unwrap_err()
            .to_string()
            .contains("unsupported manifest media type"));
    }
}
