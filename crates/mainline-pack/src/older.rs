//! Recognising an artifact of the same tree packed by another packing format
//! ([`crate::PACK_FORMAT`]): a format change changes the gzip bytes, and so the digest, but not
//! the tar stream inside, nor the config or the annotations. A push that finds `sha-<commit>`
//! naming such an artifact keeps it (artifact tags are immutable, and signatures name that
//! digest) instead of failing as if the tree had changed.
//!
//! Two artifacts are "the same but for the layer's gzip" when their manifests are equal in
//! everything but the layer's digest and size ([`other_gzip_of`]) and their layers gunzip to
//! the same tar stream ([`TarStreamHasher`], [`tar_stream_digest`]).
//!
//! Must never: call two artifacts the same on a manifest comparison alone (the tar streams
//! must hash equal), or hold a layer in memory (both sides are streamed).

use crate::flux::{parse_manifest, Descriptor};
use flate2::write::MultiGzDecoder;
use mainline_core::Digest;
use sha2::{Digest as _, Sha256};
use std::io::{self, Read, Write};

/// The layer of manifest `theirs`, when `theirs` and `ours` are both single-layer manifests
/// equal in everything but that layer's digest and size (same manifest and layer media
/// types, config and annotations). `None` when they differ in anything else, or either does
/// not parse.
pub fn other_gzip_of(ours: &[u8], theirs: &[u8]) -> Option<Descriptor> {
    let (ours, theirs) = (parse_manifest(ours).ok()?, parse_manifest(theirs).ok()?);
    let same = ours.media_type == theirs.media_type
        && ours.config == theirs.config
        && ours.annotations == theirs.annotations
        && ours.layers.len() == 1
        && theirs.layers.len() == 1
        && ours.layers[0].media_type == theirs.layers[0].media_type;
    same.then(|| theirs.layers[0].clone())
}

/// A writer that gunzips a layer (every member) and hashes the tar stream inside; what a
/// store's blob download is written into. [`Self::finish`] gives the tar stream's sha256.
///
/// A write never fails: bytes that are not gzip are remembered as the error [`Self::finish`]
/// returns, so a download into it fails only for the download's own reasons.
pub struct TarStreamHasher {
    inner: MultiGzDecoder<HashSink>,
    failed: Option<io::Error>,
}

impl TarStreamHasher {
    pub fn new() -> Self {
        TarStreamHasher {
            inner: MultiGzDecoder::new(HashSink(Sha256::new())),
            failed: None,
        }
    }

    /// Ends the gzip stream (an incomplete one is an error) and returns the tar stream's digest.
    pub fn finish(self) -> io::Result<Digest> {
        if let Some(error) = self.failed {
            return Err(error);
        }
        let sink = self.inner.finish()?;
        Ok(Digest::from_sha256(sink.0.finalize().into()))
    }
}

impl Default for TarStreamHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl Write for TarStreamHasher {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.failed.is_none() {
            if let Err(error) = self.inner.write_all(data) {
                self.failed = Some(error);
            }
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The sha256 of the tar stream inside the gzip layer read from `layer`.
pub fn tar_stream_digest(mut layer: impl Read) -> io::Result<Digest> {
    let mut hasher = TarStreamHasher::new();
    io::copy(&mut layer, &mut hasher)?;
    hasher.finish()
}

struct HashSink(Sha256);

impl Write for HashSink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.0.update(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
