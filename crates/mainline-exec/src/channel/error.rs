//! Why a channel run failed, as values. The executor and its ports only ever build these;
//! the front ends (the CLI, the guard's HTTP surface, the simulator's CI glue) turn one into
//! an exit-code kind and a hint in one place, `crate::error`.
//!
//! A failed channel write keeps what happened after it: the write's own error, what the
//! channel named when read back after the fence, and whether the lock held — so the message
//! says whether the target may still land, and the journal records the same words.
//!
//! Must never: carry a credential (the git remote is always the redacted `git_display`), or
//! turn a failure into a bare string that loses its class.

use super::journal::JournalError;
use super::lock::LockError;
use super::ports::{BuildError, LockBackendError, RepoError};
use crate::artifact::ArtifactError;
use crate::error::chain_message;
use mainline_core::Digest;
use mainline_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The registry failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A tag write or manifest lookup failed (see [`ArtifactError`]).
    #[error(transparent)]
    Artifact(Box<ArtifactError>),
    /// The git remote failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// A missing artifact could not be built and pushed.
    #[error(transparent)]
    Build(Box<BuildError>),
    /// The git lock could not be taken or was lost; `remote` and `lock_ref` say where it is.
    #[error("{}", chain_message(.source.as_ref()))]
    Lock {
        source: Box<LockError>,
        remote: String,
        lock_ref: String,
    },
    /// The configured lock backend (a Kubernetes Lease) failed.
    #[error(transparent)]
    LockBackend(#[from] LockBackendError),
    /// The journal could not be written (a locked write stops before it moves anything).
    #[error("{}", chain_message(.0.as_ref()))]
    Journal(Box<JournalError>),
    /// The decision core planned a move with no target (a bug).
    #[error("the plan names neither a digest nor a commit (a bug in the decision core)")]
    PlanWithoutTarget,
    /// `--lock kubernetes` without the channel's Kubernetes settings.
    #[error(
        "--lock kubernetes needs the channel's Kubernetes settings ([kubernetes] in mainline.toml)"
    )]
    NoKubernetesSettings,
    /// The run reached its bound of writes: another writer keeps moving the channel.
    #[error("{channel} kept changing under this run ({moves} writes); another writer is active")]
    KeptChanging { channel: String, moves: usize },
    /// The pin ref moved between this run's read and its write.
    #[error("{refname} on {remote} changed while this run was deciding")]
    PinChanged { refname: String, remote: String },
    /// Another writer's digest was read back right after this run's write.
    #[error("{channel}: another writer moved the channel to {seen} at the same moment")]
    Overtaken { channel: String, seen: Digest },
    /// The lock was lost while holding it for a write attempt that may still land.
    #[error("the channel lock was lost while fencing a write that may still land: {reason}")]
    FenceLost { reason: String },
    /// The write was read back, then the lock was lost before the run could record it.
    #[error("{}", chain_message(.lost.as_ref()))]
    LostAfterWrite {
        lost: Box<ExecError>,
        written: Digest,
    },
    /// The write failed, and the channel was read back after the fence.
    #[error("{} (after {attempts} attempt(s)); the channel names {} when read back after the fence, not {target}", chain_message(.write.as_ref()), named(.seen.as_ref()))]
    WriteFailed {
        write: Box<ExecError>,
        attempts: u32,
        seen: Option<Digest>,
        target: Digest,
    },
    /// The write failed and the lock was lost while fencing it.
    #[error("{}; {}; the channel names {} now, and an attempt of this run to write {target} may still land", chain_message(.write.as_ref()), chain_message(.lost.as_ref()), named(.seen.as_ref()))]
    WriteLockLost {
        write: Box<ExecError>,
        lost: Box<ExecError>,
        seen: Option<Digest>,
        target: Digest,
    },
    /// The write failed and the channel could not be read afterwards.
    #[error("{}; the channel could not be read afterwards ({read}), so whether {target} landed is unknown", chain_message(.write.as_ref()))]
    WriteUnknown {
        write: Box<ExecError>,
        read: StoreError,
        target: Digest,
    },
}

impl From<ArtifactError> for ExecError {
    fn from(e: ArtifactError) -> ExecError {
        ExecError::Artifact(Box::new(e))
    }
}

impl From<BuildError> for ExecError {
    fn from(e: BuildError) -> ExecError {
        ExecError::Build(Box::new(e))
    }
}

impl From<JournalError> for ExecError {
    fn from(e: JournalError) -> ExecError {
        ExecError::Journal(Box::new(e))
    }
}

impl ExecError {
    /// The whole account on one line (causes included), for the journal and warnings.
    pub fn message(&self) -> String {
        chain_message(self)
    }
}

fn named(d: Option<&Digest>) -> String {
    d.map_or_else(|| "no tag".to_owned(), |d| d.to_string())
}
