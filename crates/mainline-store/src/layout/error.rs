//! What can go wrong in an image layout, with the path and digest involved and what to do.

use crate::{ErrorKind, StoreError};
use mainline_core::Digest;
use std::io;
use std::path::PathBuf;

/// A layout failure. The cause of an I/O failure is part of the message (not a `source`), so
/// it prints once.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error(
        "{path} is not an OCI image layout (no oci-layout file); pick an empty or new directory"
    )]
    NotALayout { path: PathBuf },
    #[error("there is no OCI image layout at {path} (no oci-layout file); check the path — this command only reads, so it creates none")]
    NoLayout { path: PathBuf },
    #[error("{path} is not a directory; pick an empty or new directory for the OCI image layout")]
    NotADirectory { path: PathBuf },
    #[error("{path} declares OCI image layout version {found:?}, but mainline reads version 1.0.0; pick an empty or new directory")]
    Version { path: PathBuf, found: String },
    #[error(
        "{path} is not a valid {what} ({error}); restore it, or pick an empty or new directory"
    )]
    Malformed {
        path: PathBuf,
        what: &'static str,
        error: String,
    },
    #[error("cannot {action} {path}: {error}; check that the path exists and is writable")]
    Io {
        action: &'static str,
        path: PathBuf,
        error: io::Error,
    },
    #[error("blob {digest} is not in the layout {layout}; push it first")]
    BlobMissing { layout: PathBuf, digest: Digest },
    #[error("the manifest for tag {tag} names blob {digest}, which is not in the layout {layout}; push the blob first (a registry refuses such a manifest too, with MANIFEST_BLOB_UNKNOWN)")]
    ManifestBlobMissing {
        layout: PathBuf,
        tag: String,
        digest: Digest,
    },
    #[error("the file {path} has {actual_size} bytes with digest {actual}, not the announced {size} bytes with digest {digest}; it changed after it was built: build it again")]
    SourceMismatch {
        path: PathBuf,
        digest: Digest,
        size: u64,
        actual: Digest,
        actual_size: u64,
    },
    #[error("blob {digest} in the layout {layout} holds content with digest {actual}: the layout is corrupted; delete {path} and push the artifact again")]
    Corrupt {
        layout: PathBuf,
        path: PathBuf,
        digest: Digest,
        actual: Digest,
    },
    #[error("index.json of {layout} names {digest:?} for {name:?}, which is not a sha256 digest; re-tag it with mainline")]
    ForeignDigest {
        layout: PathBuf,
        name: String,
        digest: String,
    },
}

impl LayoutError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, error: io::Error) -> Self {
        LayoutError::Io {
            action,
            path: path.into(),
            error,
        }
    }

    /// The class of failure, for exit codes and retries.
    pub fn kind(&self) -> ErrorKind {
        match self {
            LayoutError::NotALayout { .. }
            | LayoutError::NoLayout { .. }
            | LayoutError::NotADirectory { .. }
            | LayoutError::Version { .. }
            | LayoutError::BlobMissing { .. }
            | LayoutError::ManifestBlobMissing { .. } => ErrorKind::InvalidInput,
            LayoutError::SourceMismatch { .. }
            | LayoutError::Corrupt { .. }
            | LayoutError::ForeignDigest { .. }
            | LayoutError::Malformed { .. } => ErrorKind::Integrity,
            LayoutError::Io { .. } => ErrorKind::Internal,
        }
    }
}

impl From<LayoutError> for StoreError {
    fn from(e: LayoutError) -> StoreError {
        StoreError::new(e.kind(), e.to_string())
    }
}
