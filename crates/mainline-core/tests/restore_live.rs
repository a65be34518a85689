//! DIVERGED on an ended group's candidate that contained older groups still in flight: the
//! reconcile restores the newest of those live groups, not mainline's artifact (G, the gate is
//! real), and falls back to mainline only for a reason it can name.

mod common;

use common::*;
use mainline_core::{
    apply, decide, Action, Decision, Facts, Known, Plan, RefuseReason, Request, Verdict,
};

fn reconcile(facts: &Facts) -> Decision {
    decide(
        facts,
        &Request::Reconcile {
            force_restore: false,
        },
    )
}

/// The fixture with the channel on PR8's candidate after group pr-8 ended; pr-7 (which PR8
/// contains) still in flight.
fn pr8_ended() -> Facts {
    Model::fixture().facts(MAIN, at(PR8), vec![group("pr-7", PR7, &[7])], None)
}

#[test]
fn an_ended_group_that_contained_a_live_one_restores_the_live_one() {
    let facts = pr8_ended();
    let d = reconcile(&facts);
    assert_eq!(d.verdict, Verdict::Diverged);
    let mv = d.plan.as_move().expect("a move");
    assert_eq!(mv.action, Action::Restore);
    assert_eq!(mv.to_commit, Some(c(PR7)));
    assert_eq!(mv.to_digest, Some(art(PR7)));
    assert!(
        mv.reason
            .contains("restore the newest live group pr-7 (PR #7) that c0ffee000004 contained"),
        "{}",
        mv.reason
    );
    // After the write the channel holds pr-7's candidate: CANDIDATE, nothing more to do.
    let after = apply(&facts, mv);
    let again = reconcile(&after);
    assert_eq!(again.verdict, Verdict::Candidate);
    assert_eq!(again.plan, Plan::Hold);
}

#[test]
fn with_no_live_group_inside_it_restores_mainline() {
    // pr-9 is live but PR8 does not contain it.
    let facts = Model::fixture().facts(MAIN, at(PR8), vec![group("pr-9", PR9, &[9])], None);
    let mv = reconcile(&facts).plan.as_move().cloned().expect("a move");
    assert_eq!((mv.action, mv.to_commit), (Action::Restore, Some(c(MAIN))));
    assert!(
        mv.reason.ends_with("restore mainline's artifact"),
        "{}",
        mv.reason
    );
}

/// A queue of three: MAIN <- A <- B <- X; groups a and b live, X's group ended: b is newest.
#[test]
fn the_newest_of_several_live_groups_is_restored() {
    let model = Model {
        parents: vec![vec![], vec![0], vec![1], vec![2], vec![3]],
        trees: (0..5).map(|i| Some(format!("tree-{i}"))).collect(),
        artifacts: (0..5).map(|i| Some(art(i))).collect(),
        signed: vec![true; 5],
    };
    // Listed newest first, to show the order of the queue's answer does not matter.
    let facts = model.facts(
        1,
        at(4),
        vec![group("b", 3, &[3]), group("a", 2, &[2])],
        None,
    );
    let mv = reconcile(&facts).plan.as_move().cloned().expect("a move");
    assert_eq!(mv.to_commit, Some(c(3)), "{}", mv.reason);
}

/// Live heads that fork (X merges both): keeping one would drop the other, so mainline.
#[test]
fn forked_live_groups_fall_back_to_mainline() {
    let model = Model {
        parents: vec![vec![], vec![0], vec![1], vec![1], vec![2, 3]],
        trees: (0..5).map(|i| Some(format!("tree-{i}"))).collect(),
        artifacts: (0..5).map(|i| Some(art(i))).collect(),
        signed: vec![true; 5],
    };
    let facts = model.facts(
        1,
        at(4),
        vec![group("a", 2, &[2]), group("b", 3, &[3])],
        None,
    );
    let mv = reconcile(&facts).plan.as_move().cloned().expect("a move");
    assert_eq!(mv.to_commit, Some(c(1)), "{}", mv.reason);
}

#[test]
fn an_unsigned_live_group_under_the_evidence_policy_falls_back_to_mainline_and_says_why() {
    let mut facts = pr8_ended();
    facts.policy.require_signature = true;
    commit_mut(&mut facts, PR7).signed = Known::Known(false);
    let mv = reconcile(&facts).plan.as_move().cloned().expect("a move");
    assert_eq!(mv.to_commit, Some(c(MAIN)));
    assert_eq!(mv.to_digest, Some(art(MAIN)));
    assert!(
        mv.reason.contains(
            "restore mainline's artifact, since no live group c0ffee000004 contained can be \
             named (pr-7: "
        ) && mv.reason.contains("has no valid evidence"),
        "{}",
        mv.reason
    );
}

/// MAIN <- A <- B <- X with B unsigned under the policy (its run had not signed yet): A is
/// restored, not mainline — B's own run deploys over A later, forward along the queue.
#[test]
fn an_unsigned_newest_group_is_passed_over_for_the_next_older_live_one() {
    let model = Model {
        parents: vec![vec![], vec![0], vec![1], vec![2], vec![3]],
        trees: (0..5).map(|i| Some(format!("tree-{i}"))).collect(),
        artifacts: vec![Some(art(0)), Some(art(1)), Some(art(2)), None, Some(art(4))],
        signed: vec![true, true, true, false, true],
    };
    let mut facts = model.facts(
        1,
        at(4),
        vec![group("a", 2, &[2]), group("b", 3, &[3])],
        None,
    );
    facts.policy.require_signature = true;
    let mv = reconcile(&facts).plan.as_move().cloned().expect("a move");
    assert_eq!(
        (mv.to_commit, mv.to_digest),
        (Some(c(2)), Some(art(2))),
        "{}",
        mv.reason
    );
    assert!(
        mv.reason.contains(
            "restore the newest live group a (PR #2) that c0ffee000004 contained and whose \
             artifact can be named (passed over: b: "
        ),
        "{}",
        mv.reason
    );
}

#[test]
fn an_unpushed_live_group_is_packed_without_the_evidence_policy() {
    let mut facts = pr8_ended();
    commit_mut(&mut facts, PR7).artifact = Known::Known(None);
    let mv = reconcile(&facts).plan.as_move().cloned().expect("a move");
    assert_eq!((mv.to_commit, mv.to_digest), (Some(c(PR7)), None));
}

#[test]
fn unknown_evidence_of_the_live_group_refuses_instead_of_guessing() {
    let mut facts = pr8_ended();
    facts.policy.require_signature = true;
    commit_mut(&mut facts, PR7).signed = Known::unknown("registry 503");
    let d = reconcile(&facts);
    let r = d.plan.as_refusal().expect("refused");
    assert_eq!(r.reason, RefuseReason::FactsUnknown);
    assert!(
        r.message
            .contains("cannot restore the newest live group pr-7"),
        "{}",
        r.message
    );
}

#[test]
fn unknown_ancestry_of_a_live_group_refuses_instead_of_dropping_it() {
    let mut facts = pr8_ended();
    facts
        .ancestry
        .insert((c(PR7), c(PR8)), Known::unknown("git error"));
    let d = reconcile(&facts);
    assert_eq!(d.verdict, Verdict::Diverged);
    let r = d.plan.as_refusal().expect("refused");
    assert_eq!(r.reason, RefuseReason::FactsUnknown);
    assert!(
        r.message.contains("contained a live group"),
        "{}",
        r.message
    );
}

#[test]
fn an_expired_lease_inside_the_ended_group_is_not_live() {
    let facts = Model::fixture().facts(MAIN, at(PR8), vec![lease("lease-7", PR7, NOW - 1)], None);
    let mv = reconcile(&facts).plan.as_move().cloned().expect("a move");
    assert_eq!(mv.to_commit, Some(c(MAIN)));
}

#[test]
fn an_older_group_does_not_deploy_over_an_ended_candidate_that_contains_a_newer_live_one() {
    // main c1 <- pr-2 (c2) <- pr-3 (c3) <- ended pr-4 (c4); the channel names c4.
    let model = Model {
        parents: vec![vec![], vec![0], vec![1], vec![2], vec![3]],
        trees: (0..5).map(|i| Some(format!("tree-{i}"))).collect(),
        artifacts: (0..5).map(|i| Some(art(i))).collect(),
        signed: vec![true; 5],
    };
    let facts = model.facts(
        1,
        at(4),
        vec![group("pr-2", 2, &[2]), group("pr-3", 3, &[3])],
        None,
    );
    let deploy = |g: &str, head: usize| {
        decide(
            &facts,
            &Request::DeployCandidate {
                group_id: g.into(),
                head: c(head),
            },
        )
    };
    // pr-2 moving in would drop pr-3's candidate (contained in c4) during its checks.
    let d = deploy("pr-2", 2);
    let refusal = d.plan.as_refusal().expect("refused");
    assert_eq!(
        refusal.reason,
        RefuseReason::NewerGroupHolds,
        "{}",
        d.explanation
    );
    assert!(refusal.message.contains("pr-3"), "{}", refusal.message);
    // pr-3 itself may deploy (forward along the queue from what the channel should hold).
    assert_eq!(
        deploy("pr-3", 3)
            .plan
            .as_move()
            .map(|m| m.to_commit.clone()),
        Some(Some(c(3)))
    );
    // And a reconcile restores pr-3's candidate, which contains pr-2.
    let mv = reconcile(&facts).plan.as_move().cloned().expect("a move");
    assert_eq!(mv.to_commit, Some(c(3)));
}

/// Found by `unknown_facts_never_produce_a_move`: with mainline's deploy tree unreadable, a
/// missing deploy path (refused `deploy_path_missing` on known facts) cannot be ruled out, so
/// restoring the live group would be a bolder move on less knowledge. Refused instead.
#[test]
fn an_unreadable_mainline_tree_refuses_instead_of_restoring_a_live_group() {
    let mut facts = pr8_ended();
    facts
        .commits
        .get_mut(&c(MAIN))
        .expect("mainline's commit facts")
        .deploy_tree = Known::unknown("git error");
    let d = reconcile(&facts);
    let r = d.plan.as_refusal().expect("refused, not a move");
    assert_eq!(r.reason, RefuseReason::FactsUnknown, "{}", r.message);
    // And with the tree known to be absent, the input error as before.
    facts
        .commits
        .get_mut(&c(MAIN))
        .expect("mainline's commit facts")
        .deploy_tree = Known::Known(None);
    let d = reconcile(&facts);
    assert_eq!(
        d.plan.as_refusal().map(|r| r.reason),
        Some(RefuseReason::DeployPathMissing)
    );
}
