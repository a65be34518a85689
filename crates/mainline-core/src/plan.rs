//! The output of a decision: a verdict about the channel, a plan of plain values for the
//! executor, and a one-line explanation for humans.
//!
//! The serde names here are a public contract (CLI JSON output, journal records): verdicts
//! serialise as `"CONVERGED"`, `"CANDIDATE"`, ...; actions and refusal reasons as stable
//! snake_case. Renaming a variant is a breaking change.
//! Invariant: a [`Move`] always names something the executor can write: an existing digest, or
//! a commit to pack first (`to_digest: None` implies `to_commit: Some`).
//! Must never: describe how to talk to a registry; the executor owns that.

use crate::ids::{CommitId, Digest};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The state of the channel with respect to the invariant (DESIGN.md "Verdicts").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    /// The channel's commit is on mainline and deploys mainline's tree.
    Converged,
    /// The channel names the head of an in-flight group that descends from mainline.
    Candidate,
    /// The channel's commit is on mainline but mainline's deploy tree changed since.
    Behind,
    /// The channel's commit is neither on mainline nor a live candidate.
    Diverged,
    /// An operator pin is active.
    Pinned,
    /// A fact could not be read, or the channel names something mainline did not make.
    Unknown,
}

impl Verdict {
    /// The serialised name, e.g. `CONVERGED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Converged => "CONVERGED",
            Verdict::Candidate => "CANDIDATE",
            Verdict::Behind => "BEHIND",
            Verdict::Diverged => "DIVERGED",
            Verdict::Pinned => "PINNED",
            Verdict::Unknown => "UNKNOWN",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the channel moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Forward to mainline's artifact (BEHIND, or first deploy).
    Promote,
    /// Back to mainline's artifact from something that is not on it (DIVERGED, or a
    /// hand-moved channel with `--force-restore`).
    Restore,
    /// Forward to an in-flight group's head.
    DeployCandidate,
    /// To the operator's pinned or rolled-back digest.
    ApplyPin,
}

/// A channel write the executor performs: name `to_digest` (or the artifact it packs from
/// `to_commit` when `to_digest` is `None`), read back, re-decide.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Move {
    /// The commit the target artifact was built from. `None` only for [`Action::ApplyPin`] of
    /// a pin that names no commit (an artifact mainline did not make).
    pub to_commit: Option<CommitId>,
    /// The existing artifact to name; `None`: pack `to_commit` from git and push it first.
    pub to_digest: Option<Digest>,
    pub action: Action,
    /// One line: why this move (also recorded in the journal).
    pub reason: String,
}

/// Why a request was refused. Stable snake_case names: part of the CLI contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefuseReason {
    /// The group (by id and head) is not in flight, or its lease expired.
    GroupNotInFlight,
    /// The group's head does not descend from mainline's tip.
    GroupBehindMainline,
    /// The channel holds a newer in-flight group that descends from this one.
    NewerGroupHolds,
    /// The commit has not landed on mainline.
    NotOnMainline,
    /// The evidence policy is not met by the target digest.
    EvidenceMissing,
    /// A fact the request needs could not be read.
    FactsUnknown,
    /// An operator pin is active; deploys and promotions wait for `mainline unpin`.
    PinActive,
    /// The move would take the channel behind a commit that landed on mainline.
    WouldMoveBackwards,
    /// The pin's digest is not a known artifact (of its commit, when one is given).
    ArtifactMissing,
    /// The channel names something mainline did not make; only `--force-restore` or a pin
    /// may overwrite it.
    ChannelForeign,
    /// The requested pin has already expired.
    PinExpired,
    /// The target's deploy tree holds no file: Flux with `prune: true` would delete
    /// everything. Only `--allow-empty` lets the channel name it.
    EmptyTree,
    /// The deploy path does not exist at mainline's tip (a mistyped `--path`): invalid input,
    /// nothing is decided and nothing is written.
    DeployPathMissing,
}

impl RefuseReason {
    /// The serialised name, e.g. `pin_active`.
    pub fn as_str(self) -> &'static str {
        match self {
            RefuseReason::GroupNotInFlight => "group_not_in_flight",
            RefuseReason::GroupBehindMainline => "group_behind_mainline",
            RefuseReason::NewerGroupHolds => "newer_group_holds",
            RefuseReason::NotOnMainline => "not_on_mainline",
            RefuseReason::EvidenceMissing => "evidence_missing",
            RefuseReason::FactsUnknown => "facts_unknown",
            RefuseReason::PinActive => "pin_active",
            RefuseReason::WouldMoveBackwards => "would_move_backwards",
            RefuseReason::ArtifactMissing => "artifact_missing",
            RefuseReason::ChannelForeign => "channel_foreign",
            RefuseReason::PinExpired => "pin_expired",
            RefuseReason::EmptyTree => "empty_tree",
            RefuseReason::DeployPathMissing => "deploy_path_missing",
        }
    }
}

impl fmt::Display for RefuseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused request: nothing is written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub reason: RefuseReason,
    /// One line naming the channel and commits, saying what to do now.
    pub message: String,
}

/// What the executor does next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "plan", rename_all = "snake_case")]
pub enum Plan {
    /// Leave the channel as it is.
    Hold,
    /// Write the channel.
    Move(Move),
    /// Write nothing; report why.
    Refuse(Refusal),
    /// Unpin: remove the pin record, then run a fresh `Reconcile` (which decides on facts
    /// without the pin). The channel itself is not written by this plan.
    ClearPin,
}

impl Plan {
    /// The move, if this plan writes the channel.
    pub fn as_move(&self) -> Option<&Move> {
        match self {
            Plan::Move(m) => Some(m),
            _ => None,
        }
    }

    /// The refusal, if this plan refuses.
    pub fn as_refusal(&self) -> Option<&Refusal> {
        match self {
            Plan::Refuse(r) => Some(r),
            _ => None,
        }
    }
}

/// The complete answer to one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// The channel's verdict on the facts as given (before any move).
    pub verdict: Verdict,
    pub plan: Plan,
    /// One line naming the channel and the commits involved (short ids).
    pub explanation: String,
}
