//! Operator pins, rollbacks and unpins: active pins win over mainline and survive reconciles,
//! expired ones are ignored visibly.

mod common;

use common::*;
use mainline_core::{
    apply, decide, Action, ChannelHead, Known, PinKind, Plan, RefuseReason, Request, Verdict,
};

const RECONCILE: Request = Request::Reconcile {
    force_restore: false,
};

#[test]
fn pin_request_moves_to_the_pinned_artifact() {
    let facts = facts_with_channel(at(MAIN));
    let pin = pin_to(QUIET, PinKind::Pin, Some(NOW + 60_000));
    let d = decide(&facts, &Request::Pin { pin });
    assert_eq!(d.verdict, Verdict::Converged, "the verdict before the pin");
    let mv = d.plan.as_move().expect("a move");
    assert_eq!(mv.action, Action::ApplyPin);
    assert_eq!(mv.to_commit, Some(c(QUIET)));
    assert_eq!(mv.to_digest, Some(art(QUIET)));
    assert!(d.explanation.contains("alice"), "{}", d.explanation);
    assert!(d.explanation.contains("incident 42"), "{}", d.explanation);
}

#[test]
fn active_pin_holds_when_the_channel_names_it_even_as_mainline_advances() {
    let pin = pin_to(ROOT, PinKind::Pin, None);
    for mainline in [MAIN, PR7, PR8] {
        let facts = Model::fixture().facts(mainline, at(ROOT), vec![], Some(pin.clone()));
        let d = decide(&facts, &RECONCILE);
        assert_eq!(d.verdict, Verdict::Pinned);
        assert_eq!(d.plan, Plan::Hold);
        assert!(
            d.explanation.contains("mainline unpin"),
            "{}",
            d.explanation
        );
        assert!(d.explanation.contains("alice"), "{}", d.explanation);
    }
}

#[test]
fn active_pin_is_reapplied_when_the_channel_moved_away() {
    let pin = pin_to(ROOT, PinKind::Pin, Some(NOW + 1));
    for channel in [at(MAIN), at(STALE), ChannelHead::Absent] {
        let facts = Model::fixture().facts(MAIN, channel, vec![], Some(pin.clone()));
        let d = decide(
            &facts,
            &Request::Reconcile {
                force_restore: true,
            },
        );
        assert_eq!(d.verdict, Verdict::Pinned);
        let mv = d.plan.as_move().expect("re-apply the pin");
        assert_eq!(mv.action, Action::ApplyPin);
        assert_eq!(mv.to_digest, Some(art(ROOT)));
        // After the move the pin holds.
        let after = decide(&apply(&facts, mv), &RECONCILE);
        assert_eq!(after.plan, Plan::Hold, "{}", after.explanation);
    }
}

#[test]
fn expired_pin_is_ignored_and_said_so() {
    let pin = pin_to(ROOT, PinKind::Pin, Some(NOW));
    let facts = Model::fixture().facts(MAIN, at(ROOT), vec![], Some(pin));
    let d = decide(&facts, &RECONCILE);
    assert_eq!(d.verdict, Verdict::Behind);
    assert_eq!(d.plan.as_move().map(|m| m.action), Some(Action::Promote));
    assert!(d.explanation.contains("expired"), "{}", d.explanation);
    // An expired pin does not block deploys either.
    let d = decide(
        &facts,
        &Request::DeployCandidate {
            group_id: "pr-7".to_owned(),
            head: c(PR7),
        },
    );
    assert_ne!(
        d.plan.as_refusal().map(|r| r.reason),
        Some(RefuseReason::PinActive)
    );
}

#[test]
fn rollback_to_a_mainline_commit_is_applied() {
    let facts = facts_with_channel(at(MAIN));
    let d = decide(
        &facts,
        &Request::Pin {
            pin: pin_to(QUIET, PinKind::Rollback, None),
        },
    );
    let mv = d.plan.as_move().expect("rollback applies");
    assert_eq!(
        (mv.action, mv.to_digest.clone()),
        (Action::ApplyPin, Some(art(QUIET)))
    );
    assert!(d.explanation.contains("rollback"), "{}", d.explanation);
}

#[test]
fn rollback_off_mainline_or_without_a_commit_is_refused() {
    let facts = facts_with_channel(at(MAIN));
    for target in [PR7, STALE] {
        let d = decide(
            &facts,
            &Request::Pin {
                pin: pin_to(target, PinKind::Rollback, None),
            },
        );
        assert_eq!(
            d.plan.as_refusal().map(|r| r.reason),
            Some(RefuseReason::NotOnMainline)
        );
    }
    let mut pin = pin_to(QUIET, PinKind::Rollback, None);
    pin.commit = None;
    let d = decide(&facts, &Request::Pin { pin });
    assert_eq!(
        d.plan.as_refusal().map(|r| r.reason),
        Some(RefuseReason::NotOnMainline)
    );
    // A plain pin may name a commit that is not on mainline.
    let d = decide(
        &facts,
        &Request::Pin {
            pin: pin_to(STALE, PinKind::Pin, None),
        },
    );
    assert!(d.plan.as_move().is_some(), "{d:?}");
}

#[test]
fn commitless_pin_keeps_a_hand_moved_digest() {
    let facts = facts_with_channel(ChannelHead::Names {
        digest: foreign(7),
        commit: Known::unknown("no revision annotation"),
    });
    let mut pin = pin_to(ROOT, PinKind::Pin, None);
    pin.digest = foreign(7);
    pin.commit = None;
    let d = decide(&facts, &Request::Pin { pin: pin.clone() });
    assert_eq!(d.verdict, Verdict::Unknown);
    let mv = d.plan.as_move().expect("keep it");
    assert_eq!(
        (mv.to_commit.clone(), mv.to_digest.clone()),
        (None, Some(foreign(7)))
    );
    // The executor records the pin; reconciles then hold on it.
    let mut pinned = apply(&facts, mv);
    pinned.pin = Some(pin);
    let d = decide(&pinned, &RECONCILE);
    assert_eq!((d.verdict, d.plan), (Verdict::Pinned, Plan::Hold));
}

#[test]
fn pin_under_signature_policy_needs_evidence() {
    let mut facts = facts_with_channel(at(MAIN));
    facts.policy.require_signature = true;
    commit_mut(&mut facts, QUIET).signed = Known::Known(false);
    let d = decide(
        &facts,
        &Request::Pin {
            pin: pin_to(QUIET, PinKind::Pin, None),
        },
    );
    assert_eq!(
        d.plan.as_refusal().map(|r| r.reason),
        Some(RefuseReason::EvidenceMissing)
    );
    // An active pin is not re-applied to an unsigned digest either.
    facts.pin = Some(pin_to(QUIET, PinKind::Pin, None));
    let d = decide(&facts, &RECONCILE);
    assert_eq!(d.verdict, Verdict::Pinned);
    assert_eq!(
        d.plan.as_refusal().map(|r| r.reason),
        Some(RefuseReason::EvidenceMissing)
    );
}

#[test]
fn unpin_clears_a_recorded_pin_and_holds_without_one() {
    let mut facts = facts_with_channel(at(ROOT));
    facts.pin = Some(pin_to(ROOT, PinKind::Pin, None));
    let d = decide(&facts, &Request::Unpin);
    assert_eq!(
        (d.verdict, d.plan.clone()),
        (Verdict::Pinned, Plan::ClearPin)
    );
    assert!(
        d.explanation.contains("reconcile follows"),
        "{}",
        d.explanation
    );
    // The reconcile that follows, on facts without the pin, promotes mainline.
    facts.pin = None;
    let d = decide(&facts, &RECONCILE);
    assert_eq!(
        d.plan.as_move().map(|m| m.to_commit.clone()),
        Some(Some(c(MAIN)))
    );
    let d = decide(&facts, &Request::Unpin);
    assert_eq!(d.plan, Plan::Hold);
    assert!(d.explanation.contains("no pin"), "{}", d.explanation);
}

#[test]
fn pin_text_cannot_break_the_one_line_explanation() {
    let mut pin = pin_to(ROOT, PinKind::Pin, None);
    pin.reason = "line one\nFORGED: channel converged\r".to_owned();
    let facts = Model::fixture().facts(MAIN, at(ROOT), vec![], Some(pin.clone()));
    let d = decide(&facts, &RECONCILE);
    assert!(!d.explanation.contains(['\n', '\r']), "{}", d.explanation);
    let d = decide(&facts_with_channel(at(MAIN)), &Request::Pin { pin });
    let mv = d.plan.as_move().expect("a move");
    assert!(!mv.reason.contains(['\n', '\r']), "{}", mv.reason);
}
