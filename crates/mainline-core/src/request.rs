//! What a caller asks the core to decide, and which commits the executor must gather facts for
//! before asking.
//!
//! Invariant: [`commits_of_interest`] covers every commit the decision may look up, so with
//! facts for that set (and ancestry for all ordered pairs of it) no answer is "not gathered".
//! Must never: carry unvalidated identifiers; a request names commits and digests by type.

use crate::facts::{Group, Pin};
use crate::ids::CommitId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// A request to the decision function. Every entry point (CI step, webhook, schedule, daemon,
/// operator) maps to one of these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum Request {
    /// Decide and report only; the plan is advisory.
    Status,
    /// Bring the channel back to the invariant.
    Reconcile {
        /// The operator asked to restore mainline's artifact over a hand-moved channel.
        force_restore: bool,
    },
    /// Deploy the candidate of an in-flight merge group.
    DeployCandidate { group_id: String, head: CommitId },
    /// Promote after `commit` landed (a push to mainline).
    Promote { commit: CommitId },
    /// Operator pin or rollback.
    Pin { pin: Pin },
    /// Remove the operator pin.
    Unpin,
}

impl Request {
    /// The commits this request names itself.
    fn commits(&self) -> Vec<&CommitId> {
        match self {
            Request::Status | Request::Reconcile { .. } | Request::Unpin => Vec::new(),
            Request::DeployCandidate { head, .. } => vec![head],
            Request::Promote { commit } => vec![commit],
            Request::Pin { pin } => pin.commit.iter().collect(),
        }
    }
}

/// The commits whose [`crate::CommitFacts`] the executor must gather for `request`: mainline's
/// tip, the channel's commit, every reported group head, the request's own commits and the
/// pin's commit. The ancestry answers needed are all ordered pairs of this set
/// ([`ancestry_pairs`]).
pub fn commits_of_interest(
    mainline: Option<&CommitId>,
    channel_commit: Option<&CommitId>,
    groups: &[Group],
    request: &Request,
    pin: Option<&Pin>,
) -> BTreeSet<CommitId> {
    mainline
        .into_iter()
        .chain(channel_commit)
        .chain(groups.iter().map(|g| &g.head))
        .chain(request.commits())
        .chain(pin.and_then(|p| p.commit.as_ref()))
        .cloned()
        .collect()
}

/// Every ordered pair `(a, d)` of distinct commits in `commits`: the ancestry questions the
/// executor answers (`is a an ancestor of d`). Equal pairs need no answer.
pub fn ancestry_pairs(commits: &BTreeSet<CommitId>) -> Vec<(CommitId, CommitId)> {
    commits
        .iter()
        .flat_map(|a| {
            commits
                .iter()
                .filter(move |d| *d != a)
                .map(move |d| (a.clone(), d.clone()))
        })
        .collect()
}
