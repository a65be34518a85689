//! One test per verdict row of DESIGN.md, on the fixture history (see `common`).

mod common;

use common::*;
use mainline_core::{decide, Action, ChannelHead, Decision, Known, Move, Plan, Request, Verdict};

const RECONCILE: Request = Request::Reconcile {
    force_restore: false,
};

fn moved(d: &Decision) -> &Move {
    d.plan
        .as_move()
        .unwrap_or_else(|| panic!("expected a move, got {d:?}"))
}

#[test]
fn channel_on_mainline_tip_is_converged_and_holds() {
    let d = decide(&facts_with_channel(at(MAIN)), &RECONCILE);
    assert_eq!(d.verdict, Verdict::Converged);
    assert_eq!(d.plan, Plan::Hold);
    assert!(
        d.explanation.contains("channel latest"),
        "{}",
        d.explanation
    );
    assert!(d.explanation.contains(c(MAIN).short()), "{}", d.explanation);
}

#[test]
fn mainline_advancing_without_deploy_changes_stays_converged() {
    // Scenario 9: QUIET does not touch the deploy tree.
    let facts = Model::fixture().facts(QUIET, at(ROOT), vec![], None);
    let d = decide(&facts, &RECONCILE);
    assert_eq!(d.verdict, Verdict::Converged);
    assert_eq!(d.plan, Plan::Hold);
    assert!(d.explanation.contains(c(ROOT).short()), "{}", d.explanation);
    assert!(
        d.explanation.contains(c(QUIET).short()),
        "{}",
        d.explanation
    );
}

#[test]
fn live_candidate_descending_from_mainline_holds() {
    let d = decide(&facts_with_channel(at(PR7)), &RECONCILE);
    assert_eq!(d.verdict, Verdict::Candidate);
    assert_eq!(d.plan, Plan::Hold);
    assert!(d.explanation.contains("pr-7"), "{}", d.explanation);
    assert!(d.explanation.contains(c(PR7).short()), "{}", d.explanation);
}

#[test]
fn ancestor_with_a_changed_tree_is_behind_and_promotes_mainline() {
    let d = decide(&facts_with_channel(at(QUIET)), &RECONCILE);
    assert_eq!(d.verdict, Verdict::Behind);
    let mv = moved(&d);
    assert_eq!(mv.action, Action::Promote);
    assert_eq!(mv.to_commit, Some(c(MAIN)));
    assert_eq!(mv.to_digest, Some(art(MAIN)));
    assert!(
        d.explanation.contains(c(QUIET).short()),
        "{}",
        d.explanation
    );
    assert!(d.explanation.contains(c(MAIN).short()), "{}", d.explanation);
}

#[test]
fn failed_group_still_on_the_channel_is_diverged_and_restored() {
    // Scenario 1: the channel names STALE, whose group is no longer reported.
    let d = decide(&facts_with_channel(at(STALE)), &RECONCILE);
    assert_eq!(d.verdict, Verdict::Diverged);
    let mv = moved(&d);
    assert_eq!(mv.action, Action::Restore);
    assert_eq!(mv.to_commit, Some(c(MAIN)));
    assert_eq!(mv.to_digest, Some(art(MAIN)));
    assert!(
        d.explanation.contains("not on mainline"),
        "{}",
        d.explanation
    );
    assert_eq!(d.explanation, mv.reason);
}

#[test]
fn in_flight_group_that_no_longer_descends_from_mainline_is_diverged() {
    let facts = Model::fixture().facts(MAIN, at(STALE), vec![group("pr-5", STALE, &[5])], None);
    let d = decide(&facts, &RECONCILE);
    assert_eq!(d.verdict, Verdict::Diverged);
    assert_eq!(moved(&d).action, Action::Restore);
    assert!(
        d.explanation.contains("does not descend"),
        "{}",
        d.explanation
    );
}

#[test]
fn expired_lease_is_diverged_and_a_live_lease_is_a_candidate() {
    let expired = Model::fixture().facts(MAIN, at(PR7), vec![lease("lease-1", PR7, NOW)], None);
    let d = decide(&expired, &RECONCILE);
    assert_eq!(d.verdict, Verdict::Diverged, "now == expires_at is expired");
    assert_eq!(moved(&d).to_commit, Some(c(MAIN)));
    assert!(d.explanation.contains("lease expired"), "{}", d.explanation);

    let live = Model::fixture().facts(MAIN, at(PR7), vec![lease("lease-1", PR7, NOW + 1)], None);
    let d = decide(&live, &RECONCILE);
    assert_eq!(d.verdict, Verdict::Candidate);
    assert_eq!(d.plan, Plan::Hold);
}

#[test]
fn absent_channel_is_behind_and_promotes_mainline_first_deploy() {
    let d = decide(&facts_with_channel(ChannelHead::Absent), &RECONCILE);
    assert_eq!(d.verdict, Verdict::Behind);
    let mv = moved(&d);
    assert_eq!(mv.action, Action::Promote);
    assert_eq!(mv.to_digest, Some(art(MAIN)));
    assert!(d.explanation.contains("first deploy"), "{}", d.explanation);
}

#[test]
fn missing_mainline_artifact_is_packed_from_git() {
    let mut facts = facts_with_channel(at(STALE));
    commit_mut(&mut facts, MAIN).artifact = Known::Known(None);
    let mv = moved(&decide(&facts, &RECONCILE)).clone();
    assert_eq!(mv.to_commit, Some(c(MAIN)));
    assert_eq!(mv.to_digest, None);
}

#[test]
fn hand_moved_channel_is_unknown_with_a_hint_and_holds() {
    // Scenario 10: a digest that is not the artifact of the commit it claims.
    let facts = facts_with_channel(ChannelHead::Names {
        digest: foreign(1),
        commit: Known::Known(c(QUIET)),
    });
    let d = decide(&facts, &RECONCILE);
    assert_eq!(d.verdict, Verdict::Unknown);
    assert_eq!(d.plan, Plan::Hold);
    assert!(
        d.explanation.contains("--force-restore"),
        "{}",
        d.explanation
    );
    assert!(d.explanation.contains("mainline pin"), "{}", d.explanation);
    assert!(
        d.explanation.contains(foreign(1).short()),
        "{}",
        d.explanation
    );
}

#[test]
fn channel_claiming_a_commit_that_has_no_artifact_is_foreign() {
    let mut facts = facts_with_channel(at(STALE));
    commit_mut(&mut facts, STALE).artifact = Known::Known(None);
    let d = decide(&facts, &RECONCILE);
    assert_eq!(d.verdict, Verdict::Unknown);
    assert_eq!(d.plan, Plan::Hold);
    assert!(d.explanation.contains("no artifact"), "{}", d.explanation);
}

#[test]
fn force_restore_restores_a_hand_moved_channel_to_mainline() {
    let facts = facts_with_channel(ChannelHead::Names {
        digest: foreign(1),
        commit: Known::Known(c(PR7)),
    });
    let d = decide(
        &facts,
        &Request::Reconcile {
            force_restore: true,
        },
    );
    assert_eq!(d.verdict, Verdict::Unknown);
    let mv = moved(&d);
    assert_eq!(mv.action, Action::Restore);
    assert_eq!(mv.to_commit, Some(c(MAIN)));
    assert_eq!(mv.to_digest, Some(art(MAIN)));
    assert!(
        d.explanation.contains("--force-restore"),
        "{}",
        d.explanation
    );
}

#[test]
fn force_restore_does_not_override_a_live_candidate() {
    let facts = facts_with_channel(at(PR7));
    let d = decide(
        &facts,
        &Request::Reconcile {
            force_restore: true,
        },
    );
    assert_eq!(d.verdict, Verdict::Candidate);
    assert_eq!(d.plan, Plan::Hold);
}

#[test]
fn late_heal_keeps_a_newer_candidate_which_then_converges_when_it_lands() {
    // Scenario 3: pr-7 failed (no longer reported), pr-8 deployed; the late heal keeps pr-8.
    let facts = Model::fixture().facts(MAIN, at(PR8), vec![group("pr-8", PR8, &[8])], None);
    let d = decide(&facts, &RECONCILE);
    assert_eq!(d.verdict, Verdict::Candidate);
    assert_eq!(d.plan, Plan::Hold);
    // pr-8 merges: mainline is PR8 now, nothing left in flight.
    let landed = Model::fixture().facts(PR8, at(PR8), vec![], None);
    let d = decide(&landed, &RECONCILE);
    assert_eq!(d.verdict, Verdict::Converged);
    assert_eq!(d.plan, Plan::Hold);
}

#[test]
fn heal_then_merge_promotes_on_the_next_reconcile() {
    // Scenario 4: the heal put MAIN on the channel, then PR7 landed (mainline is PR7).
    let facts = Model::fixture().facts(PR7, at(MAIN), vec![], None);
    let d = decide(&facts, &RECONCILE);
    assert_eq!(d.verdict, Verdict::Behind);
    assert_eq!(moved(&d).to_commit, Some(c(PR7)));
}

#[test]
fn status_reports_the_plan_a_reconcile_would_carry_out() {
    for channel in [at(MAIN), at(QUIET), at(STALE), at(PR7), ChannelHead::Absent] {
        let facts = facts_with_channel(channel);
        assert_eq!(decide(&facts, &Request::Status), decide(&facts, &RECONCILE));
    }
}

#[test]
fn explanations_are_one_line() {
    for channel in [at(MAIN), at(QUIET), at(STALE), at(PR7), ChannelHead::Absent] {
        let mut facts = facts_with_channel(channel);
        facts.channel_name = "la\ntest".to_owned();
        let d = decide(&facts, &RECONCILE);
        assert!(!d.explanation.contains('\n'), "{}", d.explanation);
        if let Some(mv) = d.plan.as_move() {
            assert!(!mv.reason.contains('\n'), "{}", mv.reason);
        }
    }
}

#[test]
fn a_channel_recording_no_revision_is_unknown_until_the_operator_restores_it() {
    // Scenario 10: something mainline did not make, with no revision annotation at all.
    let facts = facts_with_channel(ChannelHead::Foreign {
        digest: foreign(2),
        why: "no org.opencontainers.image.revision".into(),
    });
    let d = decide(&facts, &RECONCILE);
    assert_eq!(d.verdict, Verdict::Unknown);
    assert_eq!(d.plan, Plan::Hold);
    assert!(
        d.explanation.contains("--force-restore"),
        "{}",
        d.explanation
    );
    let d = decide(
        &facts,
        &Request::Reconcile {
            force_restore: true,
        },
    );
    let mv = moved(&d);
    assert_eq!(mv.action, Action::Restore);
    assert_eq!(mv.to_digest, Some(art(MAIN)));
    let d = decide(
        &facts,
        &Request::DeployCandidate {
            group_id: "pr-7".into(),
            head: c(PR7),
        },
    );
    let r = d
        .plan
        .as_refusal()
        .expect("a candidate never overwrites a foreign channel");
    assert_eq!(r.reason, mainline_core::RefuseReason::ChannelForeign);
}
