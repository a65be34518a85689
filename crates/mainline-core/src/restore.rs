//! What a DIVERGED reconcile restores. The channel names X, which is not on mainline and heads
//! no live group: usually the candidate of a group that failed, was cancelled or timed out.
//! That candidate may have *contained* older groups that are still in flight (a merge queue
//! builds each group on the one before it). Restoring mainline's artifact M would then drop
//! those live groups' code from prod while their checks still run, so their pre-merge gate
//! (DESIGN.md, G) would not be real. So the restore targets the newest in-flight group whose
//! head descends from M and is an ancestor of X, and falls back to M when there is none.
//!
//! Why this keeps the invariant:
//! - S3: the target heads an in-flight group, so the channel stops naming ejected code just as
//!   a restore of M would; S2: the target descends from M, so nothing landed is dropped;
//! - S5: the write replaces X (no live candidate) with an artifact that contains every live
//!   group X contained: no live candidate is lost;
//! - S1 and the evidence policy: the target passes the same checks as any move
//!   (`commit_target`). A group refused for a known reason (unsigned, or still to be packed,
//!   under `require_signature`; an empty tree) is passed over for the next older live group
//!   (its own run deploys over that one later, forward along the queue), and M is the target
//!   only when none can be named — the reason says which were passed over and why. An unknown
//!   fact (ancestry, artifact, evidence) refuses `facts_unknown` instead of passing over,
//!   because a choice on a guess could drop a candidate the known facts would keep.
//!
//! "Newest first" is the order of the chain the candidates' heads form (each contains the
//! next). A merge queue's groups form one chain; heads that fork fall back to M, since keeping
//! one branch would drop the other anyway.
//!
//! Must never: name a group that is not in flight now, a head that does not descend from M,
//! or decide on an unknown ancestry answer.

use crate::decide::{move_to, refuse};
use crate::explain;
use crate::facts::{Facts, Group};
use crate::ids::CommitId;
use crate::known::MissingFact;
use crate::plan::{Action, Decision, RefuseReason, Verdict};
use crate::target::{commit_target, TargetError};

/// The in-flight groups whose heads descend from `m` (and are not `m`) and are ancestors of
/// `x` (and are not `x`), newest first: `Ok(None)` when their heads fork (no single chain).
pub(crate) fn contained_live<'f>(
    facts: &'f Facts,
    m: &CommitId,
    x: &CommitId,
) -> Result<Option<Vec<&'f Group>>, MissingFact> {
    let mut candidates: Vec<&Group> = Vec::new();
    for g in facts.in_flight_groups()? {
        if &g.head == x || &g.head == m {
            continue;
        }
        // Contained in X first: a head the remote lacks is known not to be X's ancestor.
        if facts.ancestor(&g.head, x)? && facts.ancestor(m, &g.head)? {
            candidates.push(g);
        }
    }
    // In a chain the newest head contains every other one, the next all but one, ...
    let mut ranked: Vec<(usize, &Group)> = Vec::with_capacity(candidates.len());
    for &c in &candidates {
        let mut contains = 0;
        for &o in &candidates {
            if facts.ancestor(&o.head, &c.head)? {
                contains += 1;
            }
        }
        ranked.push((contains, c));
    }
    ranked.sort_by_key(|&(contains, _)| std::cmp::Reverse(contains));
    for pair in ranked.windows(2) {
        if !facts.ancestor(&pair[1].1.head, &pair[0].1.head)? {
            return Ok(None);
        }
    }
    Ok(Some(ranked.into_iter().map(|(_, g)| g).collect()))
}

/// The DIVERGED restore: the newest live group X contained whose artifact may be named, else
/// mainline's artifact. `to_mainline` builds the fallback move (or its refusal) with the given
/// wording.
pub(crate) fn diverged(
    facts: &Facts,
    verdict: Verdict,
    m: &CommitId,
    x: &CommitId,
    line: &str,
    to_mainline: impl FnOnce(&str) -> Decision,
) -> Decision {
    // Mainline's deploy tree must be known before anything is restored: unknown, a missing
    // deploy path (an input error, refused before anything else is decided) cannot be ruled
    // out, and restoring a live group would be a bolder move on less knowledge than the known
    // facts allow (found by the property `unknown_facts_never_produce_a_move`).
    if let Err(missing) = facts.deploy_tree(m) {
        return refuse(
            verdict,
            RefuseReason::FactsUnknown,
            format!("{line}; {missing}"),
        );
    }
    let chain = match contained_live(facts, m, x) {
        Ok(Some(chain)) if !chain.is_empty() => chain,
        Ok(_) => return to_mainline("restore mainline's artifact"),
        Err(missing) => {
            return refuse(
                verdict,
                RefuseReason::FactsUnknown,
                format!(
                    "{line}; cannot tell whether {} contained a live group, so restoring \
                     mainline's artifact could drop its candidate: {missing}",
                    x.short()
                ),
            )
        }
    };
    // Newest first; a group whose artifact may not be named (unsigned under the policy, an
    // empty tree) is passed over for the next older one, which the newer run will deploy over.
    let mut passed_over: Vec<String> = Vec::new();
    for group in chain {
        let what = format!(
            "the newest live group {} that {} contained",
            explain::group(group),
            x.short()
        );
        match commit_target(facts, &group.head) {
            Ok(to_digest) => {
                let skipped = match passed_over.is_empty() {
                    true => String::new(),
                    false => format!(
                        " and whose artifact can be named (passed over: {})",
                        passed_over.join("; ")
                    ),
                };
                return move_to(
                    verdict,
                    Some(group.head.clone()),
                    to_digest,
                    Action::Restore,
                    format!(
                        "{line}: restore {what}{skipped} ({}), not mainline's artifact, so its \
                         candidate stays deployed while its checks run",
                        group.head.short()
                    ),
                );
            }
            Err(TargetError::Missing(missing)) => {
                return refuse(
                    verdict,
                    RefuseReason::FactsUnknown,
                    format!("{line}; cannot restore {what}: {missing}"),
                )
            }
            Err(e) => passed_over.push(format!("{}: {e}", explain::group_id(&group.id))),
        }
    }
    to_mainline(&format!(
        "restore mainline's artifact, since no live group {} contained can be named ({})",
        x.short(),
        passed_over.join("; ")
    ))
}
