//! Why an artifact operation (push, tag write, re-tag) failed, as values: each variant names
//! the store and tag or digest involved; what the user should do about it, and the exit code,
//! are decided once at the edge (`crate::error`).
//!
//! Must never: carry a credential (store locations are already redacted), or fold a store
//! failure into a message string (it stays a [`StoreError`] with its own kind).

use mainline_core::{CommitId, Digest, Tag};
use mainline_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// The store failed (unreachable, refused, or answered bytes that do not match).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Packing the deploy tree failed.
    #[error(transparent)]
    Pack(#[from] mainline_pack::PackError),
    /// A local temp file for an upload could not be made.
    #[error("cannot {action} a temp file: {source}")]
    Scratch {
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// `sha-<commit>` already names other bytes than the ones just packed.
    #[error("{location}:{tag} already names {existing}, not the {packed} just packed; artifact tags are immutable")]
    PackedOther {
        location: String,
        tag: Tag,
        existing: Digest,
        packed: Digest,
    },
    /// `sha-<commit>` already names other bytes than the manifest to tag.
    #[error("{location}:{tag} already names {existing}, not {manifest}; artifact tags are immutable and are never re-pointed")]
    Immutable {
        location: String,
        tag: Tag,
        existing: Digest,
        manifest: Digest,
    },
    /// `sha-<commit>` would name a manifest that records another commit (or none).
    #[error("{location}:{tag} is the immutable artifact tag of commit {commit}, but manifest {manifest} {}", describe(.recorded.as_ref()))]
    NotItsCommit {
        location: String,
        tag: Tag,
        commit: CommitId,
        manifest: Digest,
        recorded: Option<CommitId>,
    },
    /// A source named by `sha-<commit>` holds another commit's manifest: the tag was moved.
    #[error("{location}:{tag} names {manifest}, whose manifest {}, not commit {commit}: the artifact tag was re-pointed; nothing was tagged", describe(.recorded.as_ref()))]
    RePointed {
        location: String,
        tag: Tag,
        commit: CommitId,
        manifest: Digest,
        recorded: Option<CommitId>,
    },
    /// The store answered a write with another digest than the bytes sent.
    #[error("{location}: writing {tag} stored {written}, expected {expected}")]
    StoredOther {
        location: String,
        tag: Tag,
        written: Digest,
        expected: Digest,
    },
    /// The tag, read back right after the write, names something else (or nothing).
    #[error("{location}: read-back of {tag} after writing {expected} gave {}", named(.got.as_ref()))]
    ReadBack {
        location: String,
        tag: Tag,
        expected: Digest,
        got: Option<Digest>,
    },
    #[error("{location}:{tag}: no such tag")]
    NoSuchTag { location: String, tag: Tag },
    #[error("{location}@{digest}: no such manifest")]
    NoSuchManifest { location: String, digest: Digest },
}

impl ArtifactError {
    /// Whether the store read back another digest than the one written: another writer may
    /// have moved the tag at the same moment (not a fault of the bytes).
    pub fn is_read_back_mismatch(&self) -> bool {
        matches!(
            self,
            ArtifactError::ReadBack { .. } | ArtifactError::StoredOther { .. }
        ) || matches!(self, ArtifactError::Store(e) if e.kind == mainline_store::ErrorKind::Integrity)
    }
}

/// What a manifest records as its revision, in words.
pub(crate) fn describe(recorded: Option<&CommitId>) -> String {
    recorded.map_or_else(
        || "records no revision".to_owned(),
        |c| format!("records commit {c}"),
    )
}

/// A digest a tag names, or "no tag".
pub(crate) fn named(d: Option<&Digest>) -> String {
    d.map_or_else(|| "no tag".to_owned(), |d| d.to_string())
}
