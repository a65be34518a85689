//! What the remote advertises: the mainline branch, GitHub merge-queue refs and mainline's own
//! refs, parsed from one `git ls-remote`, plus ref-name validation.
//!
//! Merge-queue refs are `refs/heads/gh-readonly-queue/<branch>/pr-<N>-<sha>`; the ref's target
//! is the group's head commit. Invariant: a malformed queue ref is skipped with a warning and
//! never fails the whole read (a stray ref must not block every reconcile). Must never: match
//! refs by suffix the way `ls-remote` patterns do — every name is compared exactly here.

use crate::error::GitError;
use mainline_core::CommitId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The GitHub merge queue's ref namespace.
pub const QUEUE_PREFIX: &str = "refs/heads/gh-readonly-queue/";
/// mainline's own refs on the remote (journal, lock, leases).
pub const MAINLINE_PREFIX: &str = "refs/mainline/";

/// One in-flight merge group, as its queue ref shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueRef {
    /// The full ref name, `refs/heads/gh-readonly-queue/<branch>/pr-<N>-<sha>`.
    pub refname: String,
    /// The target branch of the queue (may contain '/').
    pub branch: String,
    /// The pull request number in the name.
    pub pr: u64,
    /// The group's head commit: the ref's target.
    pub head: CommitId,
}

/// Everything one `ls-remote` said about a branch, its merge queue and mainline's refs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteRefs {
    /// The tip of `refs/heads/<branch>`, if the branch exists.
    pub mainline: Option<CommitId>,
    /// In-flight merge groups of that branch, in ref-name order.
    pub queue: Vec<QueueRef>,
    /// Refs under `refs/mainline/`, by full name.
    pub other: BTreeMap<String, CommitId>,
}

impl RemoteRefs {
    /// Parse `ls-remote` output (`<oid>\t<ref>` lines) for `branch`.
    pub fn parse(branch: &str, ls_remote: &str) -> RemoteRefs {
        let branch_ref = format!("refs/heads/{branch}");
        let queue_prefix = format!("{QUEUE_PREFIX}{branch}/");
        let mut refs = RemoteRefs::default();
        for line in ls_remote.lines().filter(|l| !l.trim().is_empty()) {
            let Some((oid, name)) = line.split_once('\t') else {
                tracing::warn!(line, "skipping an ls-remote line without a tab");
                continue;
            };
            let Ok(commit) = oid.trim().parse::<CommitId>() else {
                tracing::warn!(
                    refname = name,
                    oid,
                    "skipping a ref whose id is not a commit id"
                );
                continue;
            };
            if name == branch_ref {
                refs.mainline = Some(commit);
            } else if let Some(rest) = name.strip_prefix(&queue_prefix) {
                if rest.contains('/') {
                    // A queue of a longer branch name (`<branch>/x`), not ours.
                    tracing::debug!(refname = name, "skipping another branch's queue ref");
                    continue;
                }
                match parse_queue_leaf(rest) {
                    Some(pr) => refs.queue.push(QueueRef {
                        refname: name.to_owned(),
                        branch: branch.to_owned(),
                        pr,
                        head: commit,
                    }),
                    None => tracing::warn!(
                        refname = name,
                        "skipping a merge-queue ref that is not named pr-<number>-<sha>"
                    ),
                }
            } else if name.starts_with(MAINLINE_PREFIX) {
                refs.other.insert(name.to_owned(), commit);
            }
        }
        refs.queue.sort_by(|a, b| a.refname.cmp(&b.refname));
        refs
    }
}

/// `pr-<N>-<sha>` → N, when N is a decimal number and sha is a commit id.
fn parse_queue_leaf(leaf: &str) -> Option<u64> {
    let rest = leaf.strip_prefix("pr-")?;
    let (number, sha) = rest.split_once('-')?;
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    sha.parse::<CommitId>().ok()?;
    number.parse().ok()
}

/// Check that `refname` is a full, valid ref name (`refs/...`), as git would accept it.
pub(crate) fn validate_refname(refname: &str) -> Result<(), GitError> {
    let invalid = |reason| GitError::InvalidRefName {
        refname: refname.to_owned(),
        reason,
    };
    if !refname.starts_with("refs/") {
        return Err(invalid(
            "a ref name must be a full name starting with refs/",
        ));
    }
    gix::validate::reference::name(refname.into())
        .map_err(|_| invalid("it is not a valid git ref name (see git check-ref-format)"))?;
    if refname.contains(['*', '?', '[']) {
        return Err(invalid("a ref name must not contain wildcards"));
    }
    Ok(())
}

/// Check that `branch` names a valid branch (the part after `refs/heads/`).
pub(crate) fn validate_branch(branch: &str) -> Result<(), GitError> {
    let invalid = || GitError::InvalidRefName {
        refname: branch.to_owned(),
        reason: "it is not a valid branch name (e.g. main or release/1.x)",
    };
    // git refuses to create branches starting with '-' (they read as options).
    if branch.starts_with('-') {
        return Err(invalid());
    }
    validate_refname(&format!("refs/heads/{branch}")).map_err(|_| invalid())
}
