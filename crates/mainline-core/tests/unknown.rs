//! Unknown facts, one kind at a time: each yields UNKNOWN/Hold or a `facts_unknown` refusal,
//! never a move, and the explanation carries the executor's reason.

mod common;

use common::*;
use mainline_core::{
    decide, ChannelHead, Facts, Known, PinKind, Plan, RefuseReason, Request, Verdict,
};

const REASON: &str = "registry answered 503";

fn requests() -> Vec<Request> {
    vec![
        Request::Status,
        Request::Reconcile {
            force_restore: false,
        },
        Request::Reconcile {
            force_restore: true,
        },
        Request::DeployCandidate {
            group_id: "pr-8".to_owned(),
            head: c(PR8),
        },
        Request::Promote { commit: c(QUIET) },
    ]
}

fn base(channel: ChannelHead) -> Facts {
    facts_with_channel(channel)
}

/// The channel names STALE, which heads in-flight group pr-5 that does not descend from MAIN.
fn stale_group() -> Facts {
    let mut facts = facts_with_channel(at(STALE));
    if let Known::Known(groups) = &mut facts.groups {
        groups.push(group("pr-5", STALE, &[5]));
    }
    facts
}

/// A named starting point and the mutation that makes one fact unknown.
type Case = (&'static str, Facts, fn(&mut Facts));

/// Each case: a name, the facts to start from, and how to make one fact unknown. In every
/// case a reconcile moves the channel while the fact is known (checked below).
fn cases() -> Vec<Case> {
    vec![
        ("mainline", base(at(QUIET)), |f| {
            f.mainline = Known::unknown(REASON)
        }),
        ("channel", base(at(QUIET)), |f| {
            f.channel = Known::unknown(REASON)
        }),
        ("groups", base(at(QUIET)), |f| {
            f.groups = Known::unknown(REASON)
        }),
        ("channel commit", base(at(QUIET)), |f| {
            f.channel = Known::Known(ChannelHead::Names {
                digest: art(QUIET),
                commit: Known::unknown(REASON),
            })
        }),
        ("channel commit not gathered", base(at(QUIET)), |f| {
            f.commits.remove(&c(QUIET));
        }),
        ("channel artifact", base(at(QUIET)), |f| {
            commit_mut(f, QUIET).artifact = Known::unknown(REASON)
        }),
        ("ancestry channel->mainline", base(at(QUIET)), |f| {
            f.ancestry
                .insert((c(QUIET), c(MAIN)), Known::unknown(REASON));
        }),
        ("ancestry not gathered", base(at(STALE)), |f| {
            f.ancestry.remove(&(c(STALE), c(MAIN)));
        }),
        ("channel deploy tree", base(at(QUIET)), |f| {
            commit_mut(f, QUIET).deploy_tree = Known::unknown(REASON)
        }),
        ("mainline deploy tree", base(at(QUIET)), |f| {
            commit_mut(f, MAIN).deploy_tree = Known::unknown(REASON)
        }),
        ("candidate ancestry mainline->head", stale_group(), |f| {
            f.ancestry
                .insert((c(MAIN), c(STALE)), Known::unknown(REASON));
        }),
    ]
}

#[test]
fn each_unknown_fact_makes_reconcile_unknown_and_hold() {
    for (name, facts, make_unknown) in cases() {
        // With the fact known, the reconcile moves: the fact matters.
        let baseline = decide(
            &facts,
            &Request::Reconcile {
                force_restore: false,
            },
        );
        assert!(baseline.plan.as_move().is_some(), "{name}: {baseline:?}");

        let mut facts = facts;
        make_unknown(&mut facts);
        let d = decide(
            &facts,
            &Request::Reconcile {
                force_restore: false,
            },
        );
        assert_eq!(d.verdict, Verdict::Unknown, "{name}: {}", d.explanation);
        assert_eq!(d.plan, Plan::Hold, "{name}");
        assert!(
            d.explanation.contains(REASON) || d.explanation.contains("not gathered"),
            "{name}: {}",
            d.explanation
        );
        assert!(
            d.explanation.contains("never counted as converged"),
            "{name}: {}",
            d.explanation
        );
    }
}

#[test]
fn an_unknown_fact_never_creates_or_changes_a_move() {
    for (name, known, make_unknown) in cases() {
        let mut facts = known.clone();
        make_unknown(&mut facts);
        let mut stopped = 0;
        for request in requests() {
            let before = decide(&known, &request);
            let d = decide(&facts, &request);
            match &d.plan {
                Plan::Hold | Plan::ClearPin => {}
                Plan::Refuse(r) if before.plan.as_move().is_some() => {
                    assert_eq!(r.reason, RefuseReason::FactsUnknown, "{name} {request:?}")
                }
                Plan::Refuse(_) => {}
                // A request that does not need the fact (a candidate deploy does not read the
                // channel's deploy tree) may still move, but only exactly as it would have.
                Plan::Move(_) => assert_eq!(d.plan, before.plan, "{name} {request:?}"),
            }
            if before.plan.as_move().is_some() && d.plan.as_move().is_none() {
                stopped += 1;
            }
        }
        assert!(stopped > 0, "{name}: the unknown fact stopped no move");
    }
}

#[test]
fn unknown_move_target_facts_refuse_with_the_verdict_kept() {
    let mut facts = facts_with_channel(at(QUIET));
    commit_mut(&mut facts, MAIN).artifact = Known::unknown(REASON);
    let d = decide(
        &facts,
        &Request::Reconcile {
            force_restore: false,
        },
    );
    assert_eq!(d.verdict, Verdict::Behind);
    assert_eq!(
        d.plan.as_refusal().map(|r| r.reason),
        Some(RefuseReason::FactsUnknown)
    );
    assert!(d.explanation.contains(REASON), "{}", d.explanation);

    let mut facts = facts_with_channel(at(MAIN));
    commit_mut(&mut facts, PR7).artifact = Known::unknown(REASON);
    let deploy = Request::DeployCandidate {
        group_id: "pr-7".to_owned(),
        head: c(PR7),
    };
    let d = decide(&facts, &deploy);
    assert_eq!(
        d.plan.as_refusal().map(|r| r.reason),
        Some(RefuseReason::FactsUnknown)
    );
}

#[test]
fn force_restore_never_acts_on_unreadable_facts() {
    let mut facts = facts_with_channel(ChannelHead::Names {
        digest: foreign(1),
        commit: Known::unknown("no revision annotation"),
    });
    let d = decide(
        &facts,
        &Request::Reconcile {
            force_restore: true,
        },
    );
    assert_eq!((d.verdict, d.plan), (Verdict::Unknown, Plan::Hold));
    assert!(
        d.explanation.contains("no revision annotation"),
        "{}",
        d.explanation
    );
    facts.channel = Known::unknown(REASON);
    let d = decide(
        &facts,
        &Request::Reconcile {
            force_restore: true,
        },
    );
    assert_eq!((d.verdict, d.plan), (Verdict::Unknown, Plan::Hold));
}

#[test]
fn pinned_channel_that_cannot_be_read_is_unknown_and_holds() {
    let mut facts = facts_with_channel(at(MAIN));
    facts.pin = Some(pin_to(ROOT, PinKind::Pin, None));
    facts.channel = Known::unknown(REASON);
    let d = decide(
        &facts,
        &Request::Reconcile {
            force_restore: false,
        },
    );
    assert_eq!((d.verdict, d.plan), (Verdict::Unknown, Plan::Hold));
    assert!(d.explanation.contains(REASON), "{}", d.explanation);
}

#[test]
fn pin_requests_on_unknown_facts_refuse() {
    let pin = pin_to(QUIET, PinKind::Rollback, None);
    let mut facts = facts_with_channel(at(MAIN));
    facts.mainline = Known::unknown(REASON);
    let d = decide(&facts, &Request::Pin { pin: pin.clone() });
    assert_eq!(
        d.plan.as_refusal().map(|r| r.reason),
        Some(RefuseReason::FactsUnknown)
    );

    let mut facts = facts_with_channel(at(MAIN));
    commit_mut(&mut facts, QUIET).artifact = Known::unknown(REASON);
    let d = decide(&facts, &Request::Pin { pin });
    assert_eq!(
        d.plan.as_refusal().map(|r| r.reason),
        Some(RefuseReason::FactsUnknown)
    );
}
