//! Facts that may not have been readable, and the typed error naming a fact the decision
//! needed but did not have.
//!
//! Invariant: an unreadable fact is carried as [`Known::Unknown`] with the reason the executor
//! saw; the core never substitutes a default for it. Every lookup the decision makes returns
//! `Result<_, MissingFact>`, so "unknown" propagates with `?` and ends as an UNKNOWN verdict
//! or a `facts_unknown` refusal.
//! Must never: treat an unknown fact as false, absent or converged.

use crate::ids::{CommitId, Digest};
use serde::{Deserialize, Serialize};

/// A fact as the executor gathered it: either its value or why it could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Known<T> {
    /// The fact was read.
    Known(T),
    /// The fact could not be read (commit not fetchable, registry or API error, ...).
    Unknown { reason: String },
}

impl<T> Known<T> {
    /// An unknown fact with the reason it could not be read.
    pub fn unknown(reason: impl Into<String>) -> Known<T> {
        Known::Unknown {
            reason: reason.into(),
        }
    }

    /// The value, if it was read.
    pub fn known(&self) -> Option<&T> {
        match self {
            Known::Known(v) => Some(v),
            Known::Unknown { .. } => None,
        }
    }

    /// Whether the fact could not be read.
    pub fn is_unknown(&self) -> bool {
        matches!(self, Known::Unknown { .. })
    }

    /// Borrow the value, keeping the unknown reason.
    pub fn as_ref(&self) -> Known<&T> {
        match self {
            Known::Known(v) => Known::Known(v),
            Known::Unknown { reason } => Known::Unknown {
                reason: reason.clone(),
            },
        }
    }

    /// Transform a known value; an unknown stays unknown with its reason.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Known<U> {
        match self {
            Known::Known(v) => Known::Known(f(v)),
            Known::Unknown { reason } => Known::Unknown { reason },
        }
    }

    /// The value, or the [`MissingFact`] that `missing(reason)` builds.
    pub fn or_missing(self, missing: impl FnOnce(String) -> MissingFact) -> Result<T, MissingFact> {
        match self {
            Known::Known(v) => Ok(v),
            Known::Unknown { reason } => Err(missing(reason)),
        }
    }
}

/// A fact the decision needed and did not have. Each variant names the fact and carries the
/// executor's reason, so the explanation says exactly what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MissingFact {
    #[error("the mainline tip could not be read ({reason})")]
    Mainline { reason: String },
    #[error("channel {channel} could not be read ({reason})")]
    Channel { channel: String, reason: String },
    #[error("the merge queue's in-flight groups could not be read ({reason})")]
    Groups { reason: String },
    #[error(
        "channel {channel} names {} but the commit it was built from is unknown ({reason})",
        .digest.short()
    )]
    ChannelCommit {
        channel: String,
        digest: Digest,
        reason: String,
    },
    #[error("facts for commit {} were not gathered", .commit.short())]
    CommitNotGathered { commit: CommitId },
    #[error("the deploy tree of {} could not be read ({reason})", .commit.short())]
    DeployTree { commit: CommitId, reason: String },
    #[error("the artifact of {} could not be read ({reason})", .commit.short())]
    Artifact { commit: CommitId, reason: String },
    #[error(
        "evidence for {} (artifact of {}) could not be read ({reason})",
        .digest.short(), .commit.short()
    )]
    Evidence {
        commit: CommitId,
        digest: Digest,
        reason: String,
    },
    #[error(
        "whether {} is an ancestor of {} is unknown ({reason})",
        .ancestor.short(), .descendant.short()
    )]
    Ancestry {
        ancestor: CommitId,
        descendant: CommitId,
        reason: String,
    },
}
