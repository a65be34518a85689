//! A channel that `flux push artifact` wrote (as teams have before they adopt mainline) gets a
//! real verdict from the commit its revision records, not UNKNOWN: its digest differs from
//! mainline's artifact of that commit only because Flux writes another config blob.

mod common;

use common::*;
use mainline_core::{decide, Action, ChannelHead, Known, Plan, RefuseReason, Request, Verdict};

const RECONCILE: Request = Request::Reconcile {
    force_restore: false,
};

/// Facts with the channel naming a Flux-pushed artifact (digest `foreign(9)`) of commit `i`.
fn flux_pushed(i: usize) -> mainline_core::Facts {
    let mut facts = facts_with_channel(ChannelHead::Names {
        digest: foreign(9),
        commit: Known::Known(c(i)),
    });
    facts.channel_made_elsewhere = true;
    facts
}

#[test]
fn flux_pushed_latest_is_judged_by_its_revision() {
    let d = decide(&flux_pushed(MAIN), &RECONCILE);
    assert_eq!((d.verdict, d.plan), (Verdict::Converged, Plan::Hold));
    assert!(
        d.explanation.contains("flux push artifact"),
        "says why a foreign digest is trusted: {}",
        d.explanation
    );

    let d = decide(&flux_pushed(ROOT), &RECONCILE);
    assert_eq!(d.verdict, Verdict::Behind);
    let mv = d.plan.as_move().expect("promote");
    assert_eq!(mv.action, Action::Promote);
    assert_eq!(mv.to_commit, Some(c(MAIN)));

    let d = decide(&flux_pushed(STALE), &RECONCILE);
    assert_eq!(d.verdict, Verdict::Diverged);
    let mv = d.plan.as_move().expect("restore");
    assert_eq!(mv.action, Action::Restore);
    assert_eq!(mv.to_digest, Some(art(MAIN)));
}

#[test]
fn the_same_digest_not_known_to_be_flux_made_stays_foreign() {
    let mut facts = flux_pushed(MAIN);
    facts.channel_made_elsewhere = false;
    let d = decide(&facts, &RECONCILE);
    assert_eq!((d.verdict, d.plan), (Verdict::Unknown, Plan::Hold));
}

#[test]
fn a_candidate_deploy_may_replace_a_flux_pushed_latest() {
    let d = decide(
        &flux_pushed(MAIN),
        &Request::DeployCandidate {
            group_id: "pr-7".to_owned(),
            head: c(PR7),
        },
    );
    assert_ne!(
        d.plan.as_refusal().map(|r| r.reason),
        Some(RefuseReason::ChannelForeign),
        "{d:?}"
    );
    assert_eq!(
        d.plan.as_move().map(|m| m.to_commit.clone()),
        Some(Some(c(PR7)))
    );
}
