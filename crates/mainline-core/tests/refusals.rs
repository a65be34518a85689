//! Every refusal reason, each on the smallest facts that provoke it, plus the candidate-deploy
//! moves that must go through.

mod common;

use common::*;
use mainline_core::{
    decide, Action, ChannelHead, Decision, Known, PinKind, Plan, RefuseReason, Request, Timestamp,
    Verdict,
};

fn deploy(group_id: &str, head: usize) -> Request {
    Request::DeployCandidate {
        group_id: group_id.to_owned(),
        head: c(head),
    }
}

fn refused(d: &Decision, reason: RefuseReason) {
    let r = d
        .plan
        .as_refusal()
        .unwrap_or_else(|| panic!("expected refusal {reason}, got {d:?}"));
    assert_eq!(r.reason, reason, "{}", r.message);
    assert_eq!(d.explanation, r.message);
    assert!(
        r.message.contains("latest"),
        "names the channel: {}",
        r.message
    );
}

#[test]
fn candidate_deploy_moves_forward_to_an_in_flight_group() {
    let d = decide(&facts_with_channel(at(MAIN)), &deploy("pr-7", PR7));
    assert_eq!(
        d.verdict,
        Verdict::Converged,
        "the channel's current verdict"
    );
    let mv = d.plan.as_move().expect("a move");
    assert_eq!(mv.action, Action::DeployCandidate);
    assert_eq!(mv.to_commit, Some(c(PR7)));
    assert_eq!(mv.to_digest, Some(art(PR7)));
    assert!(d.explanation.contains("pr-7"), "{}", d.explanation);
}

#[test]
fn candidate_deploy_moves_along_the_queue_from_an_older_candidate() {
    let d = decide(&facts_with_channel(at(PR7)), &deploy("pr-8", PR8));
    assert_eq!(d.verdict, Verdict::Candidate);
    assert_eq!(
        d.plan.as_move().map(|m| m.to_commit.clone()),
        Some(Some(c(PR8)))
    );
}

#[test]
fn candidate_deploy_onto_an_absent_channel_moves() {
    let d = decide(
        &facts_with_channel(ChannelHead::Absent),
        &deploy("pr-7", PR7),
    );
    assert_eq!(
        d.plan.as_move().map(|m| m.action),
        Some(Action::DeployCandidate)
    );
}

#[test]
fn candidate_deploy_packs_when_the_candidate_artifact_is_missing() {
    let mut facts = facts_with_channel(at(MAIN));
    commit_mut(&mut facts, PR7).artifact = Known::Known(None);
    let d = decide(&facts, &deploy("pr-7", PR7));
    let mv = d.plan.as_move().expect("a move");
    assert_eq!(
        (mv.to_commit.clone(), mv.to_digest.clone()),
        (Some(c(PR7)), None)
    );
}

#[test]
fn candidate_deploy_of_the_channel_own_head_holds() {
    let d = decide(&facts_with_channel(at(PR7)), &deploy("pr-7", PR7));
    assert_eq!(d.plan, Plan::Hold);
    assert!(d.explanation.contains("already names"), "{}", d.explanation);
}

#[test]
fn group_not_in_flight_when_not_reported_stale_head_or_lease_expired() {
    let facts = facts_with_channel(at(MAIN));
    let d = decide(&facts, &deploy("pr-1", PR9));
    refused(&d, RefuseReason::GroupNotInFlight);
    assert!(
        d.explanation.contains("group pr-1 not found") && d.explanation.contains("never existed"),
        "{}",
        d.explanation
    );

    let d = decide(&facts, &deploy("pr-7", PR9));
    refused(&d, RefuseReason::GroupNotInFlight);
    assert!(
        d.explanation.contains(c(PR7).short()),
        "names the current head: {}",
        d.explanation
    );

    let leased = Model::fixture().facts(MAIN, at(MAIN), vec![lease("l-9", PR9, NOW - 1)], None);
    let d = decide(&leased, &deploy("l-9", PR9));
    refused(&d, RefuseReason::GroupNotInFlight);
    assert!(d.explanation.contains("lease expired"), "{}", d.explanation);
}

#[test]
fn group_behind_mainline_is_refused() {
    let facts = Model::fixture().facts(MAIN, at(MAIN), vec![group("pr-5", STALE, &[5])], None);
    let d = decide(&facts, &deploy("pr-5", STALE));
    refused(&d, RefuseReason::GroupBehindMainline);
    assert!(
        d.explanation.contains(c(STALE).short()),
        "{}",
        d.explanation
    );
    assert!(d.explanation.contains(c(MAIN).short()), "{}", d.explanation);
}

#[test]
fn newer_group_holding_the_channel_refuses_an_older_candidate() {
    let d = decide(&facts_with_channel(at(PR8)), &deploy("pr-7", PR7));
    assert_eq!(d.verdict, Verdict::Candidate);
    refused(&d, RefuseReason::NewerGroupHolds);
    assert!(d.explanation.contains("pr-8"), "{}", d.explanation);
}

#[test]
fn an_unrelated_in_flight_group_does_not_block_a_candidate() {
    let facts = Model::fixture().facts(
        MAIN,
        at(PR9),
        vec![group("pr-7", PR7, &[7]), group("pr-9", PR9, &[9])],
        None,
    );
    let d = decide(&facts, &deploy("pr-7", PR7));
    assert_eq!(
        d.plan.as_move().map(|m| m.to_commit.clone()),
        Some(Some(c(PR7)))
    );
}

#[test]
fn promote_of_a_commit_not_on_mainline_is_refused() {
    let d = decide(
        &facts_with_channel(at(MAIN)),
        &Request::Promote { commit: c(PR7) },
    );
    refused(&d, RefuseReason::NotOnMainline);
}

#[test]
fn promote_of_a_landed_commit_behaves_like_reconcile() {
    for channel in [at(QUIET), at(MAIN), at(PR7), at(STALE)] {
        let facts = facts_with_channel(channel);
        assert_eq!(
            decide(&facts, &Request::Promote { commit: c(QUIET) }),
            decide(
                &facts,
                &Request::Reconcile {
                    force_restore: false
                }
            )
        );
    }
}

#[test]
fn unsigned_target_under_signature_policy_is_evidence_missing() {
    let mut facts = facts_with_channel(at(QUIET));
    facts.policy.require_signature = true;
    commit_mut(&mut facts, MAIN).signed = Known::Known(false);
    let d = decide(
        &facts,
        &Request::Reconcile {
            force_restore: false,
        },
    );
    assert_eq!(d.verdict, Verdict::Behind, "the verdict is unchanged");
    refused(&d, RefuseReason::EvidenceMissing);
    assert!(
        d.explanation.contains(art(MAIN).short()),
        "{}",
        d.explanation
    );

    let d = decide(&facts, &deploy("pr-7", PR7));
    assert!(d.plan.as_move().is_some(), "PR7 itself is signed: {d:?}");
    commit_mut(&mut facts, PR7).signed = Known::Known(false);
    refused(
        &decide(&facts, &deploy("pr-7", PR7)),
        RefuseReason::EvidenceMissing,
    );
}

#[test]
fn packing_under_signature_policy_is_evidence_missing() {
    let mut facts = facts_with_channel(at(STALE));
    facts.policy.require_signature = true;
    commit_mut(&mut facts, MAIN).artifact = Known::Known(None);
    let d = decide(
        &facts,
        &Request::Reconcile {
            force_restore: false,
        },
    );
    assert_eq!(d.verdict, Verdict::Diverged);
    refused(&d, RefuseReason::EvidenceMissing);
    assert!(
        d.explanation.contains("freshly packed"),
        "{}",
        d.explanation
    );
}

#[test]
fn unreadable_evidence_is_facts_unknown_never_a_silent_move() {
    let mut facts = facts_with_channel(at(QUIET));
    facts.policy.require_signature = true;
    commit_mut(&mut facts, MAIN).signed = Known::unknown("registry answered 503");
    let d = decide(
        &facts,
        &Request::Reconcile {
            force_restore: false,
        },
    );
    assert_eq!(d.verdict, Verdict::Behind);
    refused(&d, RefuseReason::FactsUnknown);
    assert!(d.explanation.contains("503"), "{}", d.explanation);
    // Without the policy, evidence is not consulted.
    facts.policy.require_signature = false;
    assert!(decide(
        &facts,
        &Request::Reconcile {
            force_restore: false
        }
    )
    .plan
    .as_move()
    .is_some());
}

#[test]
fn deploy_and_promote_while_pinned_are_refused() {
    let mut facts = facts_with_channel(at(ROOT));
    facts.pin = Some(pin_to(ROOT, PinKind::Pin, None));
    let d = decide(&facts, &deploy("pr-7", PR7));
    assert_eq!(d.verdict, Verdict::Pinned);
    refused(&d, RefuseReason::PinActive);
    assert!(
        d.explanation.contains("mainline unpin"),
        "{}",
        d.explanation
    );
    refused(
        &decide(&facts, &Request::Promote { commit: c(MAIN) }),
        RefuseReason::PinActive,
    );
}

#[test]
fn candidate_that_would_drop_a_landed_commit_is_refused() {
    // Inconsistent ancestry answers (QUIET is on mainline, MAIN descends from it, yet PR7 does
    // not): the core does not trust transitivity, it refuses.
    let mut facts = facts_with_channel(at(QUIET));
    facts
        .ancestry
        .insert((c(QUIET), c(PR7)), Known::Known(false));
    let d = decide(&facts, &deploy("pr-7", PR7));
    refused(&d, RefuseReason::WouldMoveBackwards);
    assert!(
        d.explanation.contains(c(QUIET).short()),
        "{}",
        d.explanation
    );
}

#[test]
fn pin_to_a_digest_that_is_not_its_commit_artifact_is_artifact_missing() {
    let facts = facts_with_channel(at(MAIN));
    let mut pin = pin_to(QUIET, PinKind::Pin, None);
    pin.digest = art(ROOT);
    refused(
        &decide(&facts, &Request::Pin { pin }),
        RefuseReason::ArtifactMissing,
    );

    let mut facts = facts_with_channel(at(MAIN));
    commit_mut(&mut facts, QUIET).artifact = Known::Known(None);
    let pin = pin_to(QUIET, PinKind::Rollback, None);
    let d = decide(&facts, &Request::Pin { pin });
    refused(&d, RefuseReason::ArtifactMissing);
    assert!(d.explanation.contains("never pushed"), "{}", d.explanation);

    let mut pin = pin_to(QUIET, PinKind::Pin, None);
    pin.commit = None;
    pin.digest = foreign(3);
    refused(
        &decide(&facts_with_channel(at(MAIN)), &Request::Pin { pin }),
        RefuseReason::ArtifactMissing,
    );
}

#[test]
fn candidate_deploy_over_a_hand_moved_channel_is_refused() {
    let facts = facts_with_channel(ChannelHead::Names {
        digest: foreign(2),
        commit: Known::Known(c(MAIN)),
    });
    let d = decide(&facts, &deploy("pr-7", PR7));
    assert_eq!(d.verdict, Verdict::Unknown);
    refused(&d, RefuseReason::ChannelForeign);
    assert!(
        d.explanation.contains("--force-restore"),
        "{}",
        d.explanation
    );
}

#[test]
fn pin_that_already_expired_is_refused() {
    let facts = facts_with_channel(at(MAIN));
    let pin = pin_to(QUIET, PinKind::Pin, Some(NOW));
    let d = decide(&facts, &Request::Pin { pin });
    refused(&d, RefuseReason::PinExpired);
    assert!(
        d.explanation.contains(&Timestamp(NOW).to_string()),
        "{}",
        d.explanation
    );
}

#[test]
fn empty_deploy_tree_of_mainline_refuses_the_promotion_unless_allowed() {
    // The channel is behind (QUIET's tree A, mainline's B), but mainline's tree holds no file.
    let mut f = facts_with_channel(at(QUIET));
    commit_mut(&mut f, MAIN).empty_tree = Known::Known(true);
    let d = decide(
        &f,
        &Request::Reconcile {
            force_restore: false,
        },
    );
    assert_eq!(d.verdict, Verdict::Behind);
    let r = d.plan.as_refusal().expect("refused");
    assert_eq!(r.reason, RefuseReason::EmptyTree);
    assert!(r.message.contains("--allow-empty"), "{}", r.message);
    f.policy.allow_empty = true;
    let d = decide(
        &f,
        &Request::Reconcile {
            force_restore: false,
        },
    );
    assert_eq!(
        d.plan.as_move().map(|m| m.to_commit.clone()),
        Some(Some(c(MAIN)))
    );
}

#[test]
fn empty_deploy_tree_of_a_candidate_refuses_the_deploy() {
    let mut f = facts_with_channel(at(MAIN));
    commit_mut(&mut f, PR7).empty_tree = Known::Known(true);
    refused(&decide(&f, &deploy("pr-7", PR7)), RefuseReason::EmptyTree);
}

#[test]
fn deploy_path_missing_at_mainline_refuses_every_request() {
    let mut f = facts_with_channel(at(QUIET));
    commit_mut(&mut f, MAIN).deploy_tree = Known::Known(None);
    for request in [
        Request::Status,
        Request::Reconcile {
            force_restore: true,
        },
        Request::Promote { commit: c(MAIN) },
        deploy("pr-7", PR7),
        Request::Unpin,
    ] {
        let d = decide(&f, &request);
        assert_eq!(d.verdict, Verdict::Unknown, "{request:?}");
        let r = d.plan.as_refusal().expect("refused");
        assert_eq!(r.reason, RefuseReason::DeployPathMissing, "{request:?}");
    }
}
