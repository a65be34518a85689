//! The public JSON contract (verdict, action and refusal names; plan and facts shapes), the
//! fact helpers executors rely on, `apply`, and timestamps.

mod common;

use common::*;
use mainline_core::{
    ancestry_pairs, apply, commits_of_interest, decide, packed_stand_in, Action, ChannelHead,
    Decision, Facts, Known, Move, PinKind, Plan, Refusal, RefuseReason, Request, Timestamp,
    Verdict,
};
use serde_json::json;

#[test]
fn verdicts_serialise_as_upper_case_names() {
    let all = [
        (Verdict::Converged, "CONVERGED"),
        (Verdict::Candidate, "CANDIDATE"),
        (Verdict::Behind, "BEHIND"),
        (Verdict::Diverged, "DIVERGED"),
        (Verdict::Pinned, "PINNED"),
        (Verdict::Unknown, "UNKNOWN"),
    ];
    for (v, name) in all {
        assert_eq!(serde_json::to_value(v).expect("serialise"), json!(name));
        assert_eq!(v.to_string(), name);
        assert_eq!(
            serde_json::from_value::<Verdict>(json!(name)).expect("parse"),
            v
        );
    }
}

#[test]
fn actions_and_refusal_reasons_have_stable_snake_case_names() {
    let actions = [
        (Action::Promote, "promote"),
        (Action::Restore, "restore"),
        (Action::DeployCandidate, "deploy_candidate"),
        (Action::ApplyPin, "apply_pin"),
    ];
    for (a, name) in actions {
        assert_eq!(serde_json::to_value(a).expect("serialise"), json!(name));
    }
    let reasons = [
        (RefuseReason::GroupNotInFlight, "group_not_in_flight"),
        (RefuseReason::GroupBehindMainline, "group_behind_mainline"),
        (RefuseReason::NewerGroupHolds, "newer_group_holds"),
        (RefuseReason::NotOnMainline, "not_on_mainline"),
        (RefuseReason::EvidenceMissing, "evidence_missing"),
        (RefuseReason::FactsUnknown, "facts_unknown"),
        (RefuseReason::PinActive, "pin_active"),
        (RefuseReason::WouldMoveBackwards, "would_move_backwards"),
        (RefuseReason::ArtifactMissing, "artifact_missing"),
        (RefuseReason::ChannelForeign, "channel_foreign"),
        (RefuseReason::PinExpired, "pin_expired"),
    ];
    for (r, name) in reasons {
        assert_eq!(serde_json::to_value(r).expect("serialise"), json!(name));
        assert_eq!(r.as_str(), name);
    }
}

#[test]
fn plans_serialise_with_a_plan_tag() {
    assert_eq!(
        serde_json::to_value(Plan::Hold).expect("ser"),
        json!({"plan": "hold"})
    );
    assert_eq!(
        serde_json::to_value(Plan::ClearPin).expect("ser"),
        json!({"plan": "clear_pin"})
    );
    let mv = Plan::Move(Move {
        to_commit: Some(c(MAIN)),
        to_digest: None,
        action: Action::Promote,
        reason: "r".to_owned(),
    });
    assert_eq!(
        serde_json::to_value(&mv).expect("ser"),
        json!({"plan": "move", "to_commit": c(MAIN).as_str(), "to_digest": null,
               "action": "promote", "reason": "r"})
    );
    let refuse = Plan::Refuse(Refusal {
        reason: RefuseReason::PinActive,
        message: "m".to_owned(),
    });
    assert_eq!(
        serde_json::to_value(&refuse).expect("ser"),
        json!({"plan": "refuse", "reason": "pin_active", "message": "m"})
    );
}

#[test]
fn facts_and_decisions_round_trip_through_json() {
    let mut facts = facts_with_channel(at(QUIET));
    facts.pin = Some(pin_to(ROOT, PinKind::Rollback, Some(NOW - 1)));
    facts
        .ancestry
        .insert((c(ROOT), c(PR9)), Known::unknown("git fetch failed"));
    let text = serde_json::to_string(&facts).expect("facts serialise");
    let back: Facts = serde_json::from_str(&text).expect("facts parse");
    assert_eq!(back, facts);
    // Replay: the same decision from the parsed facts.
    let request = Request::Reconcile {
        force_restore: false,
    };
    let d = decide(&back, &request);
    assert_eq!(d, decide(&facts, &request));
    let d_back: Decision =
        serde_json::from_str(&serde_json::to_string(&d).expect("ser")).expect("parse");
    assert_eq!(d_back, d);
    let value = serde_json::to_value(&facts).expect("ser");
    assert_eq!(value["mainline"], json!({"known": c(MAIN).as_str()}));
    assert!(value["ancestry"].is_array(), "{}", value["ancestry"]);
}

#[test]
fn requests_serialise_with_a_request_tag() {
    let r = Request::DeployCandidate {
        group_id: "pr-7".to_owned(),
        head: c(PR7),
    };
    let v = serde_json::to_value(&r).expect("ser");
    assert_eq!(
        v,
        json!({"request": "deploy_candidate", "group_id": "pr-7", "head": c(PR7).as_str()})
    );
    assert_eq!(serde_json::from_value::<Request>(v).expect("parse"), r);
}

#[test]
fn is_ancestor_answers_equal_ids_and_never_guesses_missing_pairs() {
    let mut facts = facts_with_channel(at(MAIN));
    facts.ancestry.clear();
    assert_eq!(facts.is_ancestor(&c(PR7), &c(PR7)), Known::Known(true));
    assert_eq!(
        facts.is_ancestor(&c(MAIN), &c(PR7)),
        Known::unknown("not gathered")
    );
    let full = facts_with_channel(at(MAIN));
    assert_eq!(full.is_ancestor(&c(MAIN), &c(PR7)), Known::Known(true));
    assert_eq!(full.is_ancestor(&c(PR7), &c(MAIN)), Known::Known(false));
}

#[test]
fn commits_of_interest_cover_every_commit_a_request_names() {
    let groups = vec![group("pr-7", PR7, &[7]), lease("l", PR9, NOW - 1)];
    let pin = pin_to(ROOT, PinKind::Pin, None);
    let request = Request::DeployCandidate {
        group_id: "pr-8".to_owned(),
        head: c(PR8),
    };
    let set = commits_of_interest(
        Some(&c(MAIN)),
        Some(&c(STALE)),
        &groups,
        &request,
        Some(&pin),
    );
    let want: std::collections::BTreeSet<_> = [MAIN, STALE, PR7, PR9, PR8, ROOT].map(c).into();
    assert_eq!(set, want);
    let pairs = ancestry_pairs(&set);
    assert_eq!(pairs.len(), 6 * 5);
    assert!(pairs.contains(&(c(MAIN), c(PR8))) && pairs.contains(&(c(PR8), c(MAIN))));
    assert!(pairs.iter().all(|(a, d)| a != d));

    let promote = Request::Promote { commit: c(QUIET) };
    let set = commits_of_interest(None, None, &[], &promote, None);
    assert_eq!(set, [QUIET].map(c).into());
}

#[test]
fn apply_names_the_target_and_models_packing_as_unsigned() {
    let facts = facts_with_channel(at(STALE));
    let mv = Move {
        to_commit: Some(c(MAIN)),
        to_digest: None,
        action: Action::Restore,
        reason: String::new(),
    };
    let after = apply(&facts, &mv);
    let packed = packed_stand_in(&c(MAIN));
    assert_eq!(
        after.channel,
        Known::Known(ChannelHead::Names {
            digest: packed.clone(),
            commit: Known::Known(c(MAIN)),
        })
    );
    assert_eq!(after.commits[&c(MAIN)].artifact, Known::Known(Some(packed)));
    assert_eq!(after.commits[&c(MAIN)].signed, Known::Known(false));
    assert_eq!(
        (&after.mainline, &after.groups, &after.ancestry),
        (&facts.mainline, &facts.groups, &facts.ancestry)
    );
    let d = decide(
        &after,
        &Request::Reconcile {
            force_restore: false,
        },
    );
    assert_eq!((d.verdict, d.plan), (Verdict::Converged, Plan::Hold));
}

#[test]
fn timestamps_display_as_rfc3339_utc() {
    assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00.000Z");
    assert_eq!(Timestamp(NOW).to_string(), "2023-11-14T22:13:20.000Z");
    assert_eq!(
        Timestamp(951_782_400_123).to_string(),
        "2000-02-29T00:00:00.123Z"
    );
    assert_eq!(Timestamp(-1).to_string(), "1969-12-31T23:59:59.999Z");
    assert_eq!(Timestamp(NOW).plus_millis(i64::MAX), Timestamp(i64::MAX));
    assert_eq!(
        serde_json::to_value(Timestamp(NOW)).expect("ser"),
        json!(NOW)
    );
}
