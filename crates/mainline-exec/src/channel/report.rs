//! The report every channel command prints (JSON keys are a public contract); `render.rs` draws
//! it as text, `finish.rs` adds the lock holder and the Flux consumers' view and prints it.

use crate::channel::exec::{AppliedMove, LockMode, Report};
use crate::channel::ChannelConfig;
use crate::error::{exit, Kind};
use mainline_core::{
    ChannelHead, CommitId, Digest, Group, Known, Pin, Plan, Refusal, Timestamp, Verdict,
};
use serde::Serialize;

/// The JSON (and text) report of every channel command. Keys are a public contract.
#[derive(Debug, Serialize)]
pub struct ChannelReport {
    pub channel: String,
    /// The verdict on the facts as first read: the one the decision was made on.
    pub verdict: Verdict,
    pub explanation: String,
    /// What the channel named when `verdict` was decided (before any move of this run): also a
    /// digest mainline did not make. `null` only when the tag is absent or could not be read
    /// (see `channel_note`). What it names after the run is in `after`.
    pub channel_digest: Option<Digest>,
    pub channel_commit: Option<CommitId>,
    /// Why the channel has no commit: its manifest records no mainline revision (a foreign
    /// digest), or the tag could not be read. Absent for a channel mainline made, or no tag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel_note: Option<String>,
    pub mainline_commit: Option<CommitId>,
    /// The plan decided on the first facts (what reconcile would do, for status).
    pub plan: Plan,
    pub moves: Vec<AppliedMove>,
    /// The same as `after.verdict` and `after.explanation` (kept for scripts that read them).
    pub final_verdict: Verdict,
    pub final_explanation: String,
    /// The channel after this run: its verdict and what it names (equal to the top-level
    /// values when nothing moved).
    pub after: After,
    pub refusal: Option<Refusal>,
    pub groups: Vec<Group>,
    pub pin: Option<Pin>,
    /// `pin`/`rollback`: the operator pin this one replaced (whose, and why), when there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaced_pin: Option<Pin>,
    /// `none`, or `git` with the holder when `status` looked.
    pub lock: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_holder: Option<crate::channel::lock::LockRecord>,
    /// Journal entries this run could not append (a later locked run settles them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub journal_warnings: Vec<String>,
    /// What nudging the Flux consumers after a move gave (best effort).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<String>,
    /// What each Flux consumer has applied versus what the channel names (`status`, `--wait`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub applied: Vec<AppliedReport>,
    /// With `--wait`: whether every consumer applied the channel's digest in time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait: Option<WaitReport>,
}

/// The channel after a run: before (top level) → action (`moves`) → after.
#[derive(Debug, Clone, Serialize)]
pub struct After {
    pub verdict: Verdict,
    pub channel_digest: Option<Digest>,
    pub channel_commit: Option<CommitId>,
}

/// One consumer's applied state: APPLIED, PENDING, STUCK or UNREACHABLE.
#[derive(Debug, Serialize)]
pub struct AppliedReport {
    pub consumer: String,
    pub state: String,
    pub detail: String,
    /// The Flux API versions the objects were read at, as the cluster serves them
    /// (`source.toolkit.fluxcd.io/v1`, or `…/v1beta2` before Flux 2.6; then each
    /// Kustomization's); empty when nothing could be read.
    pub api_versions: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct WaitReport {
    pub applied: bool,
    pub elapsed_ms: u128,
    pub polls: u32,
}

impl ChannelReport {
    pub fn new(config: &ChannelConfig, report: &Report) -> ChannelReport {
        let facts = report.facts.as_ref();
        let (channel_digest, channel_commit, channel_note) = match facts.map(|f| &f.channel) {
            Some(Known::Known(ChannelHead::Names { digest, commit })) => {
                (Some(digest.clone()), commit.known().cloned(), None)
            }
            Some(Known::Known(ChannelHead::Foreign { digest, why })) => (
                Some(digest.clone()),
                None,
                Some(format!("not made by mainline: {why}")),
            ),
            Some(Known::Unknown { reason }) => (None, None, Some(format!("unreadable: {reason}"))),
            Some(Known::Known(ChannelHead::Absent)) | None => (None, None, None),
        };
        let after = After {
            verdict: report.final_decision.verdict,
            channel_digest: channel_digest.clone(),
            channel_commit: channel_commit.clone(),
        };
        // `facts` are the final decision's; before the first move the channel named what
        // that move started from.
        let (channel_digest, channel_commit, channel_note) = match report.moves.first() {
            Some(m) => (m.from_digest.clone(), m.from_commit.clone(), None),
            None => (channel_digest, channel_commit, channel_note),
        };
        ChannelReport {
            channel: config.channel_display(),
            verdict: report.decision.verdict,
            explanation: report.decision.explanation.clone(),
            channel_digest,
            channel_commit,
            channel_note,
            mainline_commit: facts.and_then(|f| f.mainline.known().cloned()),
            plan: report.decision.plan.clone(),
            moves: report.moves.clone(),
            final_verdict: report.final_decision.verdict,
            final_explanation: report.final_decision.explanation.clone(),
            after,
            refusal: report.refusal.clone(),
            groups: facts
                .and_then(|f| f.groups.known())
                .map(|gs| {
                    gs.iter()
                        .filter(|g| g.is_in_flight(facts.map_or(Timestamp(0), |f| f.now)))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default(),
            pin: facts.and_then(|f| f.active_pin().cloned()),
            replaced_pin: report.replaced_pin.clone(),
            lock: match config.lock {
                LockMode::None => {
                    "none: unlocked (every run still re-decides from fresh facts and converges)"
                        .into()
                }
                LockMode::Git { .. } => format!("git: {}", config.key.lock_ref()),
                LockMode::Kubernetes { .. } => "kubernetes: a Lease per channel".into(),
            },
            lock_holder: None,
            journal_warnings: report.journal_warnings.clone(),
            triggers: report.triggers.clone(),
            applied: Vec::new(),
            wait: None,
        }
    }

    /// The exit code: refusal 5, UNKNOWN 4, BEHIND/DIVERGED left standing 3, else 0. A
    /// refusal because a fact could not be read (e.g. evidence, after retries) is UNKNOWN, 4:
    /// nothing forbids the move, it just cannot be checked now.
    pub fn exit_code(&self) -> u8 {
        if let Some(r) = &self.refusal {
            return if r.reason == mainline_core::RefuseReason::FactsUnknown {
                exit::UNKNOWN
            } else {
                Kind::Refused.exit_code()
            };
        }
        verdict_exit(self.final_verdict)
    }
}

pub fn verdict_exit(v: Verdict) -> u8 {
    match v {
        Verdict::Converged | Verdict::Candidate | Verdict::Pinned => exit::OK,
        Verdict::Behind | Verdict::Diverged => exit::NEEDS_ACTION,
        Verdict::Unknown => exit::UNKNOWN,
    }
}
