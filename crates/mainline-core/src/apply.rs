//! The facts after a move: what the world looks like once the channel names the move's target.
//! Used by the idempotence property (decide, apply, decide again: hold) and by the simulator.
//!
//! Invariant: only the channel changes (plus, for a move that packs, the packed artifact of its
//! commit); mainline, groups, pins and ancestry are untouched, because a channel write does not
//! change them. The pin record of a `Request::Pin` is the executor's to store, not a move's.
//! Must never: invent ancestry or evidence (a packed artifact is recorded as unsigned).

use crate::facts::{ChannelHead, CommitFacts, Facts};
use crate::ids::{CommitId, Digest};
use crate::known::Known;
use crate::plan::Move;

/// The digest this crate uses to model the artifact an executor would pack for `commit`
/// (the real one is only known after packing; the executor reads it back).
pub fn packed_stand_in(commit: &CommitId) -> Digest {
    Digest::of(format!("mainline-core packed artifact of {commit}").as_bytes())
}

/// `facts` after the channel names `mv`'s target. A move with `to_digest: None` packs
/// `to_commit` first: its artifact becomes [`packed_stand_in`], unsigned. A move naming neither
/// a digest nor a commit names nothing (no decision produces one); the facts come back as they
/// were.
pub fn apply(facts: &Facts, mv: &Move) -> Facts {
    let mut next = facts.clone();
    let digest = match (&mv.to_digest, &mv.to_commit) {
        (Some(digest), _) => digest.clone(),
        (None, Some(commit)) => {
            let digest = packed_stand_in(commit);
            let entry = next.commits.entry(commit.clone()).or_insert(CommitFacts {
                deploy_tree: Known::unknown("not gathered"),
                artifact: Known::Known(None),
                signed: Known::Known(false),
                empty_tree: Known::unknown("not gathered"),
                evidence_problem: None,
            });
            entry.artifact = Known::Known(Some(digest.clone()));
            entry.signed = Known::Known(false);
            digest
        }
        (None, None) => return next,
    };
    let commit = match &mv.to_commit {
        Some(c) => Known::Known(c.clone()),
        None => Known::unknown("the pinned artifact names no commit"),
    };
    next.channel = Known::Known(ChannelHead::Names { digest, commit });
    // The channel now names an artifact mainline wrote.
    next.channel_made_elsewhere = false;
    next
}
