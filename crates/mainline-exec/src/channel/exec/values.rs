//! The executor's plain public values: how writers are serialised (`LockMode`) and what one
//! run did (`Report`, `AppliedMove`).
//!
//! Why apart from the loop: these are what callers configure and read (the CLI, the guard, the
//! simulator, `ChannelReport`); the loop that fills them changes far more often than they do.
//! Must never: hold behaviour beyond trivial constructors, or list in `Report::moves` a write
//! that was not read back (the executor fills it only after the read-back).

use super::super::lock::{default_wait_ms, DEFAULT_TTL_MS};
use mainline_core::{Action, CommitId, Decision, Digest, Refusal, Verdict};
use serde::Serialize;

/// How writers are serialised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// No lock: every run still re-decides from fresh facts and converges, but two writers may
    /// interleave (`status` says so).
    None,
    /// The git-ref lock on the source remote.
    Git { ttl_ms: i64, wait_ms: u64 },
    /// A Kubernetes `Lease` per channel; the backend is handed in with `with_lock_backend`.
    Kubernetes { ttl_ms: i64, wait_ms: u64 },
}

impl LockMode {
    pub fn git_default() -> LockMode {
        LockMode::Git {
            ttl_ms: DEFAULT_TTL_MS,
            wait_ms: default_wait_ms(DEFAULT_TTL_MS),
        }
    }
}

/// A channel write that happened (and was read back).
#[derive(Debug, Clone, Serialize)]
pub struct AppliedMove {
    pub action: Action,
    pub verdict: Verdict,
    pub from_digest: Option<Digest>,
    pub from_commit: Option<CommitId>,
    pub to_digest: Digest,
    pub to_commit: Option<CommitId>,
    /// True when the artifact was packed from git and pushed first.
    pub packed: bool,
    pub reason: String,
}

/// What one run did.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The decision on the facts as first read.
    pub decision: Decision,
    /// Every write, in order.
    pub moves: Vec<AppliedMove>,
    /// The decision after the last write (equal to `decision` when nothing moved).
    pub final_decision: Decision,
    /// Set when the request was refused.
    pub refusal: Option<Refusal>,
    /// Journal entries this run could not append (the run itself succeeded; a later locked
    /// run settles them).
    pub journal_warnings: Vec<String>,
    /// What nudging the consumers after each move gave (best effort; never changes the outcome).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<String>,
    /// The facts of the final decision, for `status` and the JSON report.
    #[serde(skip)]
    pub facts: Option<mainline_core::Facts>,
    /// What the final decision's ref listing showed for the git lock ref (`Some(None)`: absent;
    /// `None`: no listing), so `status` names the holder without listing again.
    #[serde(skip)]
    pub lock_listed: Option<Option<CommitId>>,
    /// `pin`/`rollback`: the active pin this run's pin replaced (also said in the journal).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaced_pin: Option<mainline_core::Pin>,
}
