//! Telling the archive formats apart, and stream helpers shared by the loaders.

use std::io::{self, Read};

use sha2::{Digest as _, Sha256};

use super::error::ArchiveError;
use super::stage::Staging;
use crate::content::Digest;
use crate::unpack::Compression;

/// `docker save`'s index of images.
pub(crate) const DOCKER_MANIFEST: &str = "manifest.json";
/// The OCI image layout marker and index.
pub(crate) const OCI_LAYOUT: &str = "oci-layout";
pub(crate) const OCI_INDEX: &str = "index.json";

/// The two archive formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// `docker save` (classic, or Docker ≥ 25's combined form).
    Docker,
    /// An OCI image layout.
    OciLayout,
}

/// `manifest.json` makes a docker archive (even with an OCI layout beside it, as Docker ≥ 25
/// writes); otherwise `oci-layout` and `index.json` make an OCI layout.
pub(crate) fn format(staging: &Staging<'_>) -> Result<Format, ArchiveError> {
    if staging.has(DOCKER_MANIFEST) {
        Ok(Format::Docker)
    } else if staging.has(OCI_LAYOUT) && staging.has(OCI_INDEX) {
        Ok(Format::OciLayout)
    } else {
        Err(ArchiveError::UnknownFormat {
            entries: staging.len(),
        })
    }
}

/// A finished hasher as a digest.
pub(crate) fn digest_of(hasher: Sha256) -> Digest {
    let bytes = hasher.finalize();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Digest::from_hex(&hex).expect("a sha256 is 64 lowercase hex digits")
}

/// Reads the first bytes of a stream and returns them with what they say.
pub(crate) struct Sniffed<R> {
    pub compression: Compression,
    pub reader: io::Chain<io::Cursor<Vec<u8>>, R>,
}

/// Peeks at a stream's magic bytes.
pub(crate) fn sniff<R: Read>(mut reader: R) -> io::Result<Sniffed<R>> {
    let mut magic = [0u8; 4];
    let mut got = 0;
    while got < magic.len() {
        match reader.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let head = magic[..got].to_vec();
    Ok(Sniffed {
        compression: Compression::detect(&head),
        reader: io::Cursor::new(head).chain(reader),
    })
}

/// The stream, decompressed according to its magic bytes.
pub(crate) fn decompress<'a, R: Read + 'a>(reader: R) -> io::Result<Box<dyn Read + 'a>> {
    let s = sniff(reader)?;
    Ok(match s.compression {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(s.reader)),
        Compression::Zstd => Box::new(
            ruzstd::decoding::StreamingDecoder::new(s.reader)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?,
        ),
        Compression::None => Box::new(s.reader),
    })
}

/// The OCI layer media type for a layer compressed this way.
pub(crate) fn layer_media_type(c: Compression) -> oci_spec::image::MediaType {
    use oci_spec::image::MediaType;
    match c {
        Compression::None => MediaType::ImageLayer,
        Compression::Gzip => MediaType::ImageLayerGzip,
        Compression::Zstd => MediaType::ImageLayerZstd,
    }
}
