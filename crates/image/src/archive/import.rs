//! `import`: a root file system tarball (plain, gzip or zstd) becomes a one-layer image.
//!
//! The layer is stored gzip-compressed, whatever the input was: gzip is the layer format every
//! registry and client accepts (zstd needs newer ones, and ruzstd only decodes), a plain tar
//! wastes space, and recompressing lets one pass over the input do everything — decompress,
//! check that it is a tar archive, hash the uncompressed stream (the diff_id) and compress into
//! an ingest of the content store.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use flate2::write::GzEncoder;
use oci_spec::image::{
    Arch, ConfigBuilder, Descriptor, HistoryBuilder, ImageConfigurationBuilder, MediaType, Os,
    RootFsBuilder,
};
use sha2::{Digest as _, Sha256};
use tracing::{debug, warn};

use super::detect::{decompress, digest_of};
use super::docker::put_manifest;
use super::error::ArchiveError;
use super::stage::{ingest_ref, put};
use super::{oci_digest, LoadedImage};
use crate::content::{ContentStore, Digest, Writer};

/// Settings of the image config that `import` writes (Docker's `--change`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageChanges {
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    /// `KEY=value` entries.
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub labels: HashMap<String, String>,
}

/// How to import.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportOptions {
    pub changes: ImageChanges,
    /// The comment of the image's history entry (Docker's `--message`).
    pub message: Option<String>,
}

/// Passes the uncompressed stream through, hashing it and compressing it into the store.
struct Tee {
    hasher: Sha256,
    out: GzEncoder<Writer>,
}

struct TeeReader<'a, R> {
    inner: R,
    tee: &'a mut Tee,
}

impl<R: Read> Read for TeeReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.tee.hasher.update(&buf[..n]);
        self.tee.out.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// RFC 3339 in UTC, e.g. `2024-05-01T12:00:00Z`.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

/// Stores the layer; returns (layer digest, size, diff_id).
fn store_layer(
    store: &ContentStore,
    ingest: &str,
    input: impl Read,
) -> Result<(Digest, u64, Digest), ArchiveError> {
    let stream = |after: String| move |source| ArchiveError::ImportStream { after, source };
    let writer = store.writer(ingest, None, None)?;
    let mut tee = Tee {
        hasher: Sha256::new(),
        out: GzEncoder::new(writer, flate2::Compression::default()),
    };
    let reader = decompress(input).map_err(stream("at the start".into()))?;
    let mut reader = TeeReader {
        inner: reader,
        tee: &mut tee,
    };
    let mut entries = 0u64;
    {
        let mut archive = tar::Archive::new(&mut reader);
        let mut last = String::from("at the start");
        for entry in archive.entries().map_err(stream(last.clone()))? {
            let entry = entry.map_err(stream(last.clone()))?;
            last = format!(
                "after entry {:?}",
                String::from_utf8_lossy(&entry.path_bytes())
            );
            entries += 1;
        }
    }
    // The end-of-archive blocks and padding belong to the layer too.
    io::copy(&mut reader, &mut io::sink()).map_err(stream("at the end".into()))?;
    if entries == 0 {
        return Err(ArchiveError::ImportEmpty);
    }
    let diff_id = digest_of(tee.hasher);
    let writer = tee
        .out
        .finish()
        .map_err(stream("finishing the compressed layer".into()))?;
    let size = writer.offset();
    let digest = writer.commit()?;
    debug!(%digest, %diff_id, entries, "imported layer");
    Ok((digest, size, diff_id))
}

/// Imports a root file system tarball as a one-layer image for this host's platform.
pub fn import(
    store: &ContentStore,
    rootfs_tar: impl Read,
    opts: &ImportOptions,
) -> Result<LoadedImage, ArchiveError> {
    let ingest = ingest_ref("import");
    let (layer_digest, layer_size, diff_id) = match store_layer(store, &ingest, rootfs_tar) {
        Ok(v) => v,
        Err(e) => {
            if let Err(ae) = store.abort(&ingest) {
                warn!(ingest, error = %ae, "could not remove the import ingest");
            }
            return Err(e);
        }
    };

    let build = |what: &'static str| {
        move |e: oci_spec::OciSpecError| ArchiveError::Build {
            what,
            reason: e.to_string(),
        }
    };
    let created = rfc3339(SystemTime::now());
    let c = &opts.changes;
    let mut config = ConfigBuilder::default();
    if let Some(cmd) = &c.cmd {
        config = config.cmd(cmd.clone());
    }
    if let Some(ep) = &c.entrypoint {
        config = config.entrypoint(ep.clone());
    }
    if !c.env.is_empty() {
        config = config.env(c.env.clone());
    }
    if let Some(wd) = &c.working_dir {
        config = config.working_dir(wd.clone());
    }
    if let Some(user) = &c.user {
        config = config.user(user.clone());
    }
    if !c.labels.is_empty() {
        config = config.labels(c.labels.clone());
    }
    let mut history = HistoryBuilder::default()
        .created(created.clone())
        .created_by("coracle import".to_owned());
    if let Some(m) = &opts.message {
        history = history.comment(m.clone());
    }
    let image_config = ImageConfigurationBuilder::default()
        .created(created)
        .architecture(Arch::default())
        .os(Os::default())
        .config(config.build().map_err(build("image config"))?)
        .rootfs(
            RootFsBuilder::default()
                .typ("layers".to_owned())
                .diff_ids(vec![diff_id.to_string()])
                .build()
                .map_err(build("image config rootfs"))?,
        )
        .history(vec![history.build().map_err(build("image history"))?])
        .build()
        .map_err(build("image config"))?;
    let config_bytes = serde_json::to_vec(&image_config).map_err(|e| ArchiveError::Build {
        what: "image config",
        reason: e.to_string(),
    })?;
    let config_digest = put(store, &config_bytes)?;
    let layers = vec![Descriptor::new(
        MediaType::ImageLayerGzip,
        layer_size,
        oci_digest(&layer_digest),
    )];
    let manifest_digest = put_manifest(store, &config_digest, config_bytes.len() as u64, &layers)?;
    Ok(LoadedImage {
        names: Vec::new(),
        manifest_digest,
        config_digest,
        layers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400 + 3_661);
        assert_eq!(rfc3339(t), "2000-02-29T01:01:01Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_735_689_599);
        assert_eq!(rfc3339(t), "2024-12-31T23:59:59Z");
    }
}
