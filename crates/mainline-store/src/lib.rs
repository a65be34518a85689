//! Where artifacts live. One narrow trait, [`Store`], speaks only mainline's own types
//! (`Digest`, `Tag`, bytes, files); two adapters implement it:
//!
//! - [`layout`]: an OCI image-layout directory (`oci-layout:PATH`), the embedded default that
//!   needs no server and that `skopeo inspect oci:PATH:TAG` reads;
//! - [`registry`]: an OCI distribution registry (`oci://HOST[:PORT]/REPO`).
//!
//! The trait is synchronous on purpose: the decision executor, the git adapter (gix) and the
//! deterministic simulator are all synchronous, and a blocking trait keeps every caller
//! straight-line code. The registry adapter owns a small tokio runtime and blocks on it.
//!
//! Must never: print or log a credential; report success for a write it did not make;
//! accept bytes whose digest differs from the one asked for.

pub mod layout;
pub mod location;
mod media;
pub mod registry;

use mainline_core::{Digest, Tag};
use std::io::Write;
use std::path::Path;

pub use location::{Location, LocationError, Reference, ReferenceTarget};

/// The manifest media type mainline writes (and the only one it moves channels to).
pub const OCI_MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// A manifest as stored: the exact bytes, their digest, and the media type the store reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredManifest {
    pub digest: Digest,
    pub media_type: String,
    pub bytes: Vec<u8>,
}

/// What class of failure a store error is; drives exit codes, retries and hints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The user gave something malformed (bad location, not a layout directory).
    InvalidInput,
    /// The store refused our credentials (401/403).
    Unauthorized,
    /// The store could not be reached or answered 5xx/429 after retries; retrying later may work.
    Unavailable,
    /// The store returned bytes whose digest is not the one asked for, or read-back differs.
    Integrity,
    /// Anything else (a bug, or a local I/O error).
    Internal,
    /// A fenced write was not attempted: its fence (the channel lock) could not cover the
    /// attempt's whole bounded duration. Earlier attempts of the same write may still land.
    Fenced,
}

/// A store failure. The message names the store location (never credentials) and says what to
/// do; `kind` classifies it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StoreError {
    pub kind: ErrorKind,
    pub message: String,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StoreError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> StoreError {
        StoreError {
            kind,
            message: message.into(),
            source: None,
        }
    }
}

/// The calls mainline makes against a place that holds artifacts. Every method is one logical
/// operation; implementations retry transient failures themselves and report the rest.
pub trait Store: Send + Sync {
    /// Where this store is, printable (never contains credentials).
    fn location(&self) -> &Location;

    /// Does the store hold this blob? (Registry: `HEAD /v2/<name>/blobs/<digest>`.)
    fn blob_exists(&self, digest: &Digest) -> Result<bool, StoreError>;

    /// Upload the blob in the file at `path` (exactly `size` bytes with digest `digest`),
    /// streaming it: memory use must not grow with `size`. `progress` is called with the number
    /// of bytes sent so far. The store verifies the digest; a mismatch is an Integrity error.
    fn push_blob(
        &self,
        digest: &Digest,
        size: u64,
        path: &Path,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), StoreError>;

    /// Stream the blob into `out`, verifying its digest; returns the byte count.
    /// A missing blob is an error (InvalidInput with a message naming it).
    fn fetch_blob(&self, digest: &Digest, out: &mut dyn Write) -> Result<u64, StoreError>;

    /// The digest a tag names now, or `None` if there is no such tag.
    /// (Registry: one `HEAD /v2/<name>/manifests/<tag>`.)
    fn resolve(&self, tag: &Tag) -> Result<Option<Digest>, StoreError>;

    /// The exact manifest bytes a tag or digest names, or `None` when absent.
    /// Bytes fetched by digest are verified against it.
    fn fetch_manifest(
        &self,
        target: &ReferenceTarget,
    ) -> Result<Option<StoredManifest>, StoreError>;

    /// Store `bytes` as a manifest and point `tag` at it. Returns the digest of `bytes`
    /// (checked against what the store reports, when it reports one).
    fn put_manifest(&self, tag: &Tag, media_type: &str, bytes: &[u8])
        -> Result<Digest, StoreError>;

    /// All tags in the repository (used for evidence lookups and listings).
    fn list_tags(&self) -> Result<Vec<Tag>, StoreError>;

    /// [`Store::put_manifest`] under a fence: `fence.admit()` is asked right before every
    /// attempt (the first and each retry) and bounds that attempt's duration; when it refuses,
    /// no further attempt starts and the error is [`ErrorKind::Fenced`]. This is how a channel
    /// write never starts unless the writer's lock covers the attempt's whole duration
    /// (DESIGN.md, "Fencing").
    ///
    /// The default admits once and writes: right for stores whose write is one local,
    /// short operation (an image layout). Stores that retry over a network override it.
    fn put_manifest_fenced(
        &self,
        tag: &Tag,
        media_type: &str,
        bytes: &[u8],
        fence: &dyn WriteFence,
    ) -> Result<Digest, StoreError> {
        fence
            .admit()
            .map_err(|reason| StoreError::new(ErrorKind::Fenced, reason.to_string()))?;
        self.put_manifest(tag, media_type, bytes)
    }
}

/// Why a fence refused an attempt (a sentence naming the lock and what to do).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FenceRefused(pub String);

/// Admits the attempts of a fenced write (see [`Store::put_manifest_fenced`]).
pub trait WriteFence {
    /// Called right before each attempt: the longest the attempt may take (the store cuts it
    /// off then), or why no attempt may start now.
    fn admit(&self) -> Result<std::time::Duration, FenceRefused>;

    /// Called when an attempt ended without a definite answer (cut off by its time limit, a
    /// reset connection, a 5xx): the request may still be applied later by the store. The
    /// writer must fence that late landing too (see `exec` in the CLI crate).
    fn note_uncertain(&self) {}
}

/// A fence that admits every attempt with no bound of its own (unlocked writes).
pub struct NoFence;

impl WriteFence for NoFence {
    fn admit(&self) -> Result<std::time::Duration, FenceRefused> {
        Ok(std::time::Duration::MAX)
    }
}

/// Open the store at `location`. `options` apply to registries only (explicit credentials,
/// else docker's config; TLS verified unless a host is named in `insecure_tls_hosts`); a
/// layout is created if the path is new or an empty directory.
pub fn open(
    location: &Location,
    options: &registry::RegistryOptions,
) -> Result<Box<dyn Store>, StoreError> {
    match location {
        Location::Layout { .. } => Ok(Box::new(layout::LayoutStore::open(location.clone())?)),
        Location::Registry { .. } => Ok(Box::new(registry::RegistryStore::new(
            location.clone(),
            options.clone(),
        )?)),
    }
}
