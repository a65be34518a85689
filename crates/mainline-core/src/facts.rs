//! The facts a decision is made from: plain values an executor gathered beforehand (mainline
//! tip, channel head, in-flight groups, pin, per-commit facts, ancestry answers) plus `now`.
//!
//! Invariants: a fact the executor could not read is [`Known::Unknown`], never a guess; an
//! ancestry question that was not gathered answers Unknown ("not gathered"), never false;
//! expiry is judged only against `Facts::now` (in flight / active while `now < expires_at`).
//! Must never: perform I/O or read a clock to fill a gap.

use crate::ids::{CommitId, Digest};
use crate::known::{Known, MissingFact};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What the operator configured for this channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Policy {
    /// The channel may only name digests with evidence (signature or attestation).
    pub require_signature: bool,
    /// The channel may name an artifact whose deploy tree holds no file. Off by default: Flux
    /// with `prune: true` would delete everything the channel deployed before.
    #[serde(default)]
    pub allow_empty: bool,
}

/// What the channel tag names right now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ChannelHead {
    /// The tag does not exist yet (first deploy).
    Absent,
    /// The tag names `digest`; `commit` is read from the artifact's revision annotation
    /// (Unknown when the annotation is missing or unparseable).
    Names {
        digest: Digest,
        commit: Known<CommitId>,
    },
    /// The tag names a manifest that was read and records no mainline revision (no or an
    /// unparseable `org.opencontainers.image.revision`): something mainline did not make.
    /// Unlike an unreadable channel this is a known fact, so `--force-restore` may act on it.
    Foreign { digest: Digest, why: String },
}

/// An in-flight merge group as the queue source reports it (a GitHub merge group, or a lease
/// where the host has no queue API).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// The group's identity, e.g. `pr-42` or a lease id.
    pub id: String,
    /// The group's head commit (the speculative merge commit).
    pub head: CommitId,
    /// The pull requests in the group.
    pub prs: Vec<u64>,
    /// Leases only: the group is in flight only while `now < expires_at`.
    pub expires_at: Option<Timestamp>,
}

impl Group {
    /// In flight at `now`: reported by the queue source and, for a lease, not yet expired.
    pub fn is_in_flight(&self, now: Timestamp) -> bool {
        self.expires_at.is_none_or(|at| now < at)
    }
}

/// What is known about one commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitFacts {
    /// Git tree id of the deploy path at this commit; `None` if the path is absent there.
    pub deploy_tree: Known<Option<String>>,
    /// Digest of the immutable artifact tag `sha-<commit>`; `None` if not pushed yet.
    pub artifact: Known<Option<Digest>>,
    /// Whether evidence exists for that artifact digest (consulted only when the policy
    /// requires signatures).
    pub signed: Known<bool>,
    /// When `signed` is false: what the evidence check found, in words an operator can act on
    /// (e.g. "the signature … does not verify with the configured key(s) …"). Carried into
    /// the refusal's message and the journal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence_problem: Option<String>,
    /// Whether the deploy tree holds no file at all (absent, or only empty folders and
    /// submodules): an artifact of it would make Flux prune everything.
    pub empty_tree: Known<bool>,
}

/// Whether a pin is a plain operator pin or a rollback to an earlier mainline commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PinKind {
    Pin,
    Rollback,
}

/// An operator's instruction that the channel names `digest` regardless of mainline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    pub digest: Digest,
    /// The commit the pinned artifact was built from, when known. A pin without a commit
    /// keeps an artifact mainline did not make (e.g. a hand-moved channel).
    pub commit: Option<CommitId>,
    pub reason: String,
    pub actor: String,
    /// Active while `None` or `now < expires_at`. An absolute wall-clock instant, judged by
    /// each runner's own `now`: runners whose clocks differ by d disagree about it for at most
    /// d. Unlike a lock lease it is no fence (either side of it every write keeps S1–S5; only
    /// *when* the channel resumes following mainline shifts), and a locally observed duration
    /// would never run out for fresh CI runners, so it stays absolute (README, "Pin expiry").
    pub expires_at: Option<Timestamp>,
    pub kind: PinKind,
}

impl Pin {
    /// Active at `now`: no expiry, or not reached yet.
    pub fn is_active(&self, now: Timestamp) -> bool {
        self.expires_at.is_none_or(|at| now < at)
    }
}

/// Everything one decision may consult. Built by an executor, consumed by [`crate::decide`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    pub now: Timestamp,
    /// The channel tag's name, for messages (e.g. `latest`).
    pub channel_name: String,
    pub policy: Policy,
    /// M: the tip of the protected branch.
    pub mainline: Known<CommitId>,
    pub channel: Known<ChannelHead>,
    /// The queue's in-flight groups (leases included; expired ones are filtered by `now`).
    pub groups: Known<Vec<Group>>,
    pub pin: Option<Pin>,
    /// Facts for every commit in [`crate::commits_of_interest`].
    pub commits: BTreeMap<CommitId, CommitFacts>,
    /// The channel names a Flux artifact that another tool made — `flux push artifact`
    /// writes an image config where mainline writes `{}` — so its digest can never be
    /// mainline's artifact of the commit its revision records. Such a channel is judged by that
    /// commit (CONVERGED, BEHIND, DIVERGED, ...) instead of as foreign (UNKNOWN): teams that
    /// adopt mainline start from a `latest` their pipeline pushed with flux. A manifest shaped
    /// like mainline's that is not mainline's artifact of its commit stays foreign.
    #[serde(default)]
    pub channel_made_elsewhere: bool,
    /// `ancestry[(a, d)]`: is `a` equal to or an ancestor of `d`. Serialised as a list, since
    /// JSON object keys cannot be pairs.
    #[serde(with = "ancestry_serde")]
    pub ancestry: Ancestry,
}

/// Ancestry answers: `(a, d)` maps to whether `a` is equal to or an ancestor of `d`.
pub type Ancestry = BTreeMap<(CommitId, CommitId), Known<bool>>;

impl Facts {
    /// Is `a` equal to or an ancestor of `d`? Equal ids answer true without a lookup; a pair
    /// that was not gathered answers Unknown ("not gathered"), never false.
    pub fn is_ancestor(&self, a: &CommitId, d: &CommitId) -> Known<bool> {
        if a == d {
            return Known::Known(true);
        }
        match self.ancestry.get(&(a.clone(), d.clone())) {
            Some(answer) => answer.clone(),
            None => Known::unknown("not gathered"),
        }
    }

    /// [`Facts::is_ancestor`] as a `Result` naming the pair when unknown.
    pub fn ancestor(&self, a: &CommitId, d: &CommitId) -> Result<bool, MissingFact> {
        self.is_ancestor(a, d)
            .or_missing(|reason| MissingFact::Ancestry {
                ancestor: a.clone(),
                descendant: d.clone(),
                reason,
            })
    }

    /// M, or why it is unknown.
    pub fn mainline_tip(&self) -> Result<&CommitId, MissingFact> {
        self.mainline.known().ok_or_else(|| MissingFact::Mainline {
            reason: unknown_reason(&self.mainline),
        })
    }

    /// The channel head, or why it is unknown.
    pub fn channel_head(&self) -> Result<&ChannelHead, MissingFact> {
        self.channel.known().ok_or_else(|| MissingFact::Channel {
            channel: self.channel_name.clone(),
            reason: unknown_reason(&self.channel),
        })
    }

    /// The groups in flight at `now` (expired leases left out), or why they are unknown.
    pub fn in_flight_groups(&self) -> Result<Vec<&Group>, MissingFact> {
        let groups = self.groups.known().ok_or_else(|| MissingFact::Groups {
            reason: unknown_reason(&self.groups),
        })?;
        Ok(groups.iter().filter(|g| g.is_in_flight(self.now)).collect())
    }

    /// The reported groups whose head is `commit`, in flight or not.
    pub fn groups_headed_by(&self, commit: &CommitId) -> Vec<&Group> {
        self.groups
            .known()
            .map(|gs| gs.iter().filter(|g| &g.head == commit).collect())
            .unwrap_or_default()
    }

    /// The pin if it is active at `now`.
    pub fn active_pin(&self) -> Option<&Pin> {
        self.pin.as_ref().filter(|p| p.is_active(self.now))
    }

    /// The pin if one is recorded but expired at `now`.
    pub fn expired_pin(&self) -> Option<&Pin> {
        self.pin.as_ref().filter(|p| !p.is_active(self.now))
    }

    /// The gathered facts of `commit`.
    pub fn commit_facts(&self, commit: &CommitId) -> Result<&CommitFacts, MissingFact> {
        self.commits
            .get(commit)
            .ok_or_else(|| MissingFact::CommitNotGathered {
                commit: commit.clone(),
            })
    }

    /// The deploy tree id of `commit` (`None`: the deploy path is absent there).
    pub fn deploy_tree(&self, commit: &CommitId) -> Result<Option<&str>, MissingFact> {
        match &self.commit_facts(commit)?.deploy_tree {
            Known::Known(tree) => Ok(tree.as_deref()),
            Known::Unknown { reason } => Err(MissingFact::DeployTree {
                commit: commit.clone(),
                reason: reason.clone(),
            }),
        }
    }

    /// Whether the deploy tree of `commit` holds no file.
    pub fn empty_tree(&self, commit: &CommitId) -> Result<bool, MissingFact> {
        match &self.commit_facts(commit)?.empty_tree {
            Known::Known(empty) => Ok(*empty),
            Known::Unknown { reason } => Err(MissingFact::DeployTree {
                commit: commit.clone(),
                reason: reason.clone(),
            }),
        }
    }

    /// The digest of `sha-<commit>` (`None`: not pushed yet).
    pub fn artifact(&self, commit: &CommitId) -> Result<Option<&Digest>, MissingFact> {
        match &self.commit_facts(commit)?.artifact {
            Known::Known(digest) => Ok(digest.as_ref()),
            Known::Unknown { reason } => Err(MissingFact::Artifact {
                commit: commit.clone(),
                reason: reason.clone(),
            }),
        }
    }

    /// Whether evidence exists for `digest`, the artifact of `commit`.
    /// What the evidence check found when `commit`'s artifact is not signed.
    pub fn evidence_problem(&self, commit: &CommitId) -> Option<&str> {
        self.commits
            .get(commit)
            .and_then(|c| c.evidence_problem.as_deref())
    }

    pub fn signed(&self, commit: &CommitId, digest: &Digest) -> Result<bool, MissingFact> {
        match &self.commit_facts(commit)?.signed {
            Known::Known(signed) => Ok(*signed),
            Known::Unknown { reason } => Err(MissingFact::Evidence {
                commit: commit.clone(),
                digest: digest.clone(),
                reason: reason.clone(),
            }),
        }
    }
}

fn unknown_reason<T>(k: &Known<T>) -> String {
    match k {
        Known::Known(_) => String::new(),
        Known::Unknown { reason } => reason.clone(),
    }
}

/// The ancestry map as a JSON-friendly list of `{ancestor, descendant, answer}`.
mod ancestry_serde {
    use super::{Ancestry, CommitId, Known};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Entry {
        ancestor: CommitId,
        descendant: CommitId,
        answer: Known<bool>,
    }

    pub fn serialize<S: Serializer>(map: &Ancestry, s: S) -> Result<S::Ok, S::Error> {
        let entries: Vec<Entry> = map
            .iter()
            .map(|((a, d), answer)| Entry {
                ancestor: a.clone(),
                descendant: d.clone(),
                answer: answer.clone(),
            })
            .collect();
        entries.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Ancestry, D::Error> {
        let entries = Vec::<Entry>::deserialize(d)?;
        Ok(entries
            .into_iter()
            .map(|e| ((e.ancestor, e.descendant), e.answer))
            .collect())
    }
}
