//! Properties of `decide` over random commit DAGs (merges included), random mainline tips,
//! in-flight groups and leases, channels (absent, mainline-made, hand-moved), deploy trees,
//! pins, requests and unknown facts. Ancestry comes from graph search in `common::Model`.

mod common;

use common::*;
use mainline_core::{
    apply, decide, Action, ChannelHead, Decision, Facts, Group, Known, Move, Pin, PinKind, Plan,
    RefuseReason, Request, Timestamp, Verdict,
};
use proptest::prelude::*;
use proptest::sample::Index;

/// One generated world: the model (the oracle) plus the facts and request built from it.
#[derive(Debug, Clone)]
struct Case {
    model: Model,
    /// `anc[a][d]` by graph search.
    anc: Vec<Vec<bool>>,
    mainline: usize,
    /// The commit the channel claims, if any.
    channel_commit: Option<usize>,
    facts: Facts,
    /// The same facts with one fact made unknown (or identical when none was).
    injected: Facts,
    request: Request,
}

impl Case {
    fn anc(&self, a: usize, d: usize) -> bool {
        self.anc[a][d]
    }
    fn index_of(&self, commit: &mainline_core::CommitId) -> usize {
        (0..self.model.len())
            .find(|&i| &c(i) == commit)
            .expect("a commit of the model")
    }
}

fn model() -> impl Strategy<Value = Model> {
    (1usize..=30)
        .prop_flat_map(|n| {
            let commit = (
                prop::bool::weighted(0.6),  // first parent is the previous commit
                any::<Index>(),             // else this one
                prop::bool::weighted(0.25), // a merge
                any::<Index>(),             // its second parent
                0u8..5,                     // deploy tree from a small pool (4 = path absent)
                prop::bool::weighted(0.85), // artifact pushed
                prop::bool::weighted(0.8),  // signed
            );
            prop::collection::vec(commit, n)
        })
        .prop_map(|commits| {
            let mut m = Model {
                parents: Vec::new(),
                trees: Vec::new(),
                artifacts: Vec::new(),
                signed: Vec::new(),
            };
            for (i, (linear, p1, merge, p2, tree, pushed, signed)) in
                commits.into_iter().enumerate()
            {
                let mut parents = Vec::new();
                if i > 0 {
                    parents.push(if linear { i - 1 } else { p1.index(i) });
                    let second = p2.index(i);
                    if merge && !parents.contains(&second) {
                        parents.push(second);
                    }
                }
                m.parents.push(parents);
                m.trees.push((tree < 4).then(|| format!("tree-{tree}")));
                m.artifacts.push(pushed.then(|| art(i)));
                m.signed.push(signed);
            }
            m
        })
}

type Raw = (
    (Index, u8, Index),            // mainline, channel kind, channel commit
    Vec<(Index, u8, bool)>,        // groups: head, lease kind, head descends from M
    Option<(Index, bool, u8, u8)>, // pin: commit, rollback, expiry kind, digest kind
    bool,                          // require_signature
    (u8, Index, Index, bool),      // request kind, commit, group, flag
    Option<(u8, Index, Index)>,    // unknown injection: kind, a, b
);

fn raw() -> impl Strategy<Value = Raw> {
    (
        (any::<Index>(), 0u8..10, any::<Index>()),
        prop::collection::vec((any::<Index>(), 0u8..3, prop::bool::weighted(0.7)), 0..4),
        prop::option::weighted(0.2, (any::<Index>(), any::<bool>(), 0u8..3, 0u8..6)),
        prop::bool::weighted(0.3),
        (0u8..10, any::<Index>(), any::<Index>(), any::<bool>()),
        prop::option::weighted(0.4, (0u8..10, any::<Index>(), any::<Index>())),
    )
}

fn build(model: Model, raw: Raw) -> Case {
    let n = model.len();
    let ((mi, channel_kind, ci), group_raw, pin_raw, require_signature, req_raw, inject) = raw;
    let mainline = mi.index(n);
    let anc = model.ancestry();
    // Queue-like heads: mostly commits that descend from M.
    let above_m: Vec<usize> = (0..n).filter(|&i| anc[mainline][i]).collect();
    // Each queued head descends from the previous one when it can, like a merge queue.
    let mut groups: Vec<Group> = Vec::new();
    for (j, (head, lease, queued)) in group_raw.iter().enumerate() {
        let base = groups.last().map_or(mainline, |g: &Group| {
            (0..n)
                .find(|&i| c(i) == g.head)
                .expect("heads are model commits")
        });
        let after: Vec<usize> = (0..n).filter(|&i| anc[base][i] && i != base).collect();
        let h = match (*queued, after.is_empty()) {
            (true, false) => after[head.index(after.len())],
            (true, true) => above_m[head.index(above_m.len())],
            (false, _) => head.index(n),
        };
        groups.push(Group {
            id: format!("g{j}"),
            head: c(h),
            prs: vec![j as u64],
            expires_at: match lease {
                0 => None,
                1 => Some(Timestamp(NOW + 1000)),
                _ => Some(Timestamp(NOW - 1000)),
            },
        });
    }
    let below_m: Vec<usize> = (0..n).filter(|&i| anc[i][mainline]).collect();
    let k = match channel_kind {
        // A group's head, or a commit on mainline, or any commit.
        5..=7 if !groups.is_empty() => {
            let g = &groups[ci.index(groups.len())];
            (0..n)
                .find(|&i| c(i) == g.head)
                .expect("heads are model commits")
        }
        8 | 9 => below_m[ci.index(below_m.len())],
        _ => ci.index(n),
    };
    let (channel, channel_commit) = match channel_kind {
        0 => (ChannelHead::Absent, None),
        1 => (
            ChannelHead::Names {
                digest: foreign(k),
                commit: Known::Known(c(k)),
            },
            Some(k),
        ),
        2 => (
            ChannelHead::Names {
                digest: foreign(k),
                commit: Known::unknown("no revision annotation"),
            },
            None,
        ),
        // Mostly: mainline made it (the digest of k's own artifact, when pushed).
        _ => (
            ChannelHead::Names {
                digest: model.artifacts[k].clone().unwrap_or_else(|| foreign(k)),
                commit: Known::Known(c(k)),
            },
            Some(k),
        ),
    };
    let pin = pin_raw.map(|(pc, rollback, expiry, digest_kind)| {
        let p = pc.index(n);
        // 0: no commit (keep a digest); 1: a digest that is not p's artifact; else p's.
        let own = model.artifacts[p].clone().unwrap_or_else(|| foreign(p));
        Pin {
            digest: if digest_kind == 1 { foreign(p) } else { own },
            commit: (digest_kind != 0).then(|| c(p)),
            reason: "test".to_owned(),
            actor: "prop".to_owned(),
            expires_at: match expiry {
                0 => None,
                1 => Some(Timestamp(NOW + 1000)),
                _ => Some(Timestamp(NOW)),
            },
            kind: if rollback {
                PinKind::Rollback
            } else {
                PinKind::Pin
            },
        }
    });
    let (kind, rc, rg, flag) = req_raw;
    let request = match kind {
        0 => Request::Status,
        1 | 2 => Request::Reconcile {
            force_restore: flag,
        },
        3..=6 => match groups.get(rg.index(groups.len().max(1))) {
            // Usually a reported group, sometimes a random (stale or unknown) one.
            Some(g) if kind < 6 || flag => Request::DeployCandidate {
                group_id: g.id.clone(),
                head: g.head.clone(),
            },
            _ => Request::DeployCandidate {
                group_id: format!("g{}", rg.index(4)),
                head: c(rc.index(n)),
            },
        },
        7 => Request::Promote {
            commit: c(rc.index(n)),
        },
        _ => match &pin {
            Some(p) if flag => Request::Pin { pin: p.clone() },
            _ => Request::Unpin,
        },
    };
    let mut facts = model.facts(mainline, channel, groups, pin);
    facts.policy.require_signature = require_signature;
    let mut injected = facts.clone();
    if let Some((what, a, b)) = inject {
        let (a, b) = (c(a.index(n)), c(b.index(n)));
        match what {
            0 => injected.mainline = Known::unknown("injected"),
            1 => injected.channel = Known::unknown("injected"),
            2 => injected.groups = Known::unknown("injected"),
            3 => {
                if let Known::Known(ChannelHead::Names { commit, .. }) = &mut injected.channel {
                    *commit = Known::unknown("injected");
                }
            }
            4 => {
                injected.commits.remove(&a);
            }
            5 => {
                injected.commits.get_mut(&a).expect("gathered").deploy_tree =
                    Known::unknown("injected")
            }
            6 => {
                injected.commits.get_mut(&a).expect("gathered").artifact =
                    Known::unknown("injected")
            }
            7 => {
                injected.commits.get_mut(&a).expect("gathered").signed = Known::unknown("injected")
            }
            8 => {
                injected.ancestry.insert((a, b), Known::unknown("injected"));
            }
            _ => {
                injected.ancestry.remove(&(a, b));
            }
        }
    }
    Case {
        model,
        anc,
        mainline,
        channel_commit,
        facts,
        injected,
        request,
    }
}

fn case() -> impl Strategy<Value = Case> {
    (model(), raw()).prop_map(|(m, r)| build(m, r))
}

fn is_reconcile(r: &Request) -> bool {
    matches!(
        r,
        Request::Status | Request::Reconcile { .. } | Request::Promote { .. }
    )
}

/// The model's answer to "which live groups did the channel's commit X contain?": the heads of
/// in-flight groups strictly between mainline's tip and X, newest first when they form a chain
/// (empty when there are none or they fork). A DIVERGED reconcile restores the first of them
/// whose artifact may be named.
fn live_chain_inside(case: &Case, facts: &Facts) -> Vec<usize> {
    let (Some(x), Some(groups)) = (case.channel_commit, facts.groups.known()) else {
        return Vec::new();
    };
    let m = case.mainline;
    let heads: Vec<usize> = groups
        .iter()
        .filter(|g| g.expires_at.is_none_or(|t| Timestamp(NOW) < t))
        .map(|g| case.index_of(&g.head))
        .filter(|&h| h != x && h != m && case.anc(m, h) && case.anc(h, x))
        .collect();
    let contains = |h: usize| heads.iter().filter(|&&o| case.anc(o, h)).count();
    let mut ranked: Vec<(usize, usize)> = heads.iter().map(|&h| (contains(h), h)).collect();
    ranked.sort_by_key(|&(contains, _)| std::cmp::Reverse(contains));
    let chain: Vec<usize> = ranked.into_iter().map(|(_, h)| h).collect();
    match chain.windows(2).all(|p| case.anc(p[1], p[0])) {
        true => chain,
        false => Vec::new(),
    }
}

/// Whether commit `h`'s artifact may not be named for a known reason (empty deploy tree, or no
/// signed artifact under the evidence policy): the only case where a live group is passed over.
fn unnameable(case: &Case, facts: &Facts, h: usize) -> bool {
    let empty = !facts.policy.allow_empty && case.model.trees[h].is_none();
    let unsigned = facts.policy.require_signature
        && (case.model.artifacts[h].is_none() || !case.model.signed[h]);
    empty || unsigned
}

/// Property (1): a reconcile (or status, or promote) only ever targets mainline's artifact, the
/// active pin, or — DIVERGED on a commit that contained live groups — exactly the newest of them
/// (and mainline's artifact then only when that group's artifact cannot be named).
fn reconcile_targets(case: &Case, facts: &Facts, d: &Decision) -> Result<(), TestCaseError> {
    let Some(mv) = d.plan.as_move() else {
        return Ok(());
    };
    if !is_reconcile(&case.request) {
        return Ok(());
    }
    match facts.active_pin() {
        Some(pin) => {
            prop_assert_eq!(mv.action, Action::ApplyPin);
            prop_assert_eq!(mv.to_digest.as_ref(), Some(&pin.digest));
        }
        None => {
            prop_assert!(
                matches!(mv.action, Action::Promote | Action::Restore),
                "{:?}",
                mv
            );
            let chain = match d.verdict {
                Verdict::Diverged => live_chain_inside(case, facts),
                _ => Vec::new(),
            };
            // The first live group (newest first) whose artifact may be named, if any.
            match chain.iter().copied().find(|&h| !unnameable(case, facts, h)) {
                Some(h) => {
                    prop_assert_eq!(mv.action, Action::Restore);
                    prop_assert_eq!(mv.to_commit.clone(), Some(c(h)), "{}", mv.reason);
                    prop_assert_eq!(&mv.to_digest, &case.model.artifacts[h]);
                    prop_assert!(mv.reason.contains("newest live group"), "{}", mv.reason);
                }
                None => {
                    prop_assert_eq!(
                        mv.to_commit.clone(),
                        Some(c(case.mainline)),
                        "{}",
                        mv.reason
                    );
                    prop_assert_eq!(&mv.to_digest, &case.model.artifacts[case.mainline]);
                }
            }
        }
    }
    Ok(())
}

/// Property (2): a candidate move only for an in-flight group descending from M, with no newer
/// in-flight group (descending from its head) on the channel.
fn candidate_guard(case: &Case, facts: &Facts, d: &Decision) -> Result<(), TestCaseError> {
    let Request::DeployCandidate { group_id, head } = &case.request else {
        return Ok(());
    };
    let Some(mv) = d.plan.as_move() else {
        return Ok(());
    };
    prop_assert_eq!(mv.action, Action::DeployCandidate);
    prop_assert_eq!(mv.to_commit.as_ref(), Some(head));
    let groups = facts.groups.known().expect("moved, so groups were known");
    let live = |g: &&Group| g.expires_at.is_none_or(|t| Timestamp(NOW) < t);
    prop_assert!(groups
        .iter()
        .filter(live)
        .any(|g| &g.id == group_id && &g.head == head));
    let h = case.index_of(head);
    prop_assert!(case.anc(case.mainline, h), "head does not descend from M");
    if let Some(x) = case.channel_commit {
        let newer = groups
            .iter()
            .filter(live)
            .any(|g| g.head == c(x) && !(&g.id == group_id && &g.head == head));
        prop_assert!(
            !(newer && x != h && case.anc(h, x)),
            "a newer group held the channel"
        );
    }
    Ok(())
}

fn same_target(a: &Move, b: &Move) -> bool {
    a.to_commit == b.to_commit && a.to_digest == b.to_digest
}

/// Property (3): deciding is deterministic, and after applying a move a reconcile holds (or
/// only re-applies the same target).
fn idempotent(case: &Case, facts: &Facts, d: &Decision) -> Result<(), TestCaseError> {
    prop_assert_eq!(&decide(facts, &case.request), d);
    let Some(mv) = d.plan.as_move() else {
        return Ok(());
    };
    let mut after = apply(facts, mv);
    if let Request::Pin { pin } = &case.request {
        after.pin = Some(pin.clone()); // the executor records the pin with the move
    }
    let again = decide(
        &after,
        &Request::Reconcile {
            force_restore: false,
        },
    );
    match again.plan.as_move() {
        None => prop_assert_eq!(&again.plan, &Plan::Hold, "{}", again.explanation),
        Some(next) => prop_assert!(same_target(mv, next), "{:?} then {:?}", mv, next),
    }
    Ok(())
}

/// Property (5): under the signature policy no move names an unsigned or unknown-evidence
/// digest, nor one that still has to be packed.
fn evidence(facts: &Facts, d: &Decision) -> Result<(), TestCaseError> {
    let Some(mv) = d.plan.as_move() else {
        return Ok(());
    };
    if !facts.policy.require_signature {
        return Ok(());
    }
    let digest = mv.to_digest.clone();
    prop_assert!(digest.is_some(), "a packed artifact is unsigned");
    let signed_owner = |f: &mainline_core::CommitFacts| {
        f.artifact == Known::Known(digest.clone()) && f.signed == Known::Known(true)
    };
    match &mv.to_commit {
        Some(tc)
            if facts
                .commits
                .get(tc)
                .is_some_and(|f| f.artifact == Known::Known(digest.clone())) =>
        {
            prop_assert!(signed_owner(&facts.commits[tc]), "{:?}", mv)
        }
        _ => prop_assert!(facts.commits.values().any(signed_owner), "{:?}", mv),
    }
    Ok(())
}

/// Property (6), S2: without a pin, when X is on mainline, no move leaves X's history.
fn never_backwards(case: &Case, facts: &Facts, d: &Decision) -> Result<(), TestCaseError> {
    let Some(mv) = d.plan.as_move() else {
        return Ok(());
    };
    let Some(x) = case.channel_commit else {
        return Ok(());
    };
    if facts.pin.is_some() || mv.action == Action::ApplyPin || !case.anc(x, case.mainline) {
        return Ok(());
    }
    let to = case.index_of(mv.to_commit.as_ref().expect("non-pin moves name a commit"));
    prop_assert!(
        case.anc(x, to),
        "moved from {} to {}, behind a landed merge",
        x,
        to
    );
    Ok(())
}

/// Verdicts agree with the oracle where they claim something about the DAG.
fn verdict_oracle(case: &Case, facts: &Facts, d: &Decision) -> Result<(), TestCaseError> {
    if facts.active_pin().is_some() {
        prop_assert!(matches!(d.verdict, Verdict::Pinned | Verdict::Unknown));
        return Ok(());
    }
    let m = case.mainline;
    match (d.verdict, case.channel_commit) {
        (Verdict::Converged, Some(x)) => {
            prop_assert!(case.anc(x, m));
            prop_assert_eq!(&case.model.trees[x], &case.model.trees[m]);
        }
        (Verdict::Candidate, Some(x)) => prop_assert!(case.anc(m, x) && !case.anc(x, m)),
        (Verdict::Diverged, Some(x)) => prop_assert!(!case.anc(x, m)),
        (Verdict::Behind, Some(x)) => {
            prop_assert!(case.anc(x, m) && case.model.trees[x] != case.model.trees[m])
        }
        (Verdict::Behind, None) => {
            prop_assert_eq!(facts.channel.known(), Some(&ChannelHead::Absent))
        }
        (Verdict::Unknown, _) => {
            // Only an operator override or a request that does not need the channel's
            // classification may move from UNKNOWN.
            let may_move = matches!(
                case.request,
                Request::Reconcile {
                    force_restore: true
                } | Request::DeployCandidate { .. }
                    | Request::Pin { .. }
            );
            prop_assert!(d.plan.as_move().is_none() || may_move, "{:?}", d);
        }
        (v, None) => prop_assert!(false, "{} without a channel commit", v),
        (Verdict::Pinned, _) => prop_assert!(false, "PINNED without an active pin"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1024,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn decisions_on_known_facts_keep_the_invariant(case in case()) {
        let facts = &case.facts;
        let d = decide(facts, &case.request);
        reconcile_targets(&case, facts, &d)?;
        candidate_guard(&case, facts, &d)?;
        idempotent(&case, facts, &d)?;
        evidence(facts, &d)?;
        never_backwards(&case, facts, &d)?;
        verdict_oracle(&case, facts, &d)?;
    }

    /// Property (4): an unknown fact only makes a decision more cautious: the plan is either
    /// the one the known facts give or not a move. And the invariant checks still hold.
    #[test]
    fn unknown_facts_never_produce_a_move(case in case()) {
        let clean = decide(&case.facts, &case.request);
        let d = decide(&case.injected, &case.request);
        // A deploy path missing at mainline's tip is an input error found before anything else
        // is decided; with mainline's tip unknown it cannot be seen, and an active pin (which
        // needs only the channel) is re-applied as the operator asked. Not a bolder move on
        // unknown facts: the pin's digest is the operator's, whatever mainline is.
        let hidden_input_error = clean.plan.as_refusal().map(|r| r.reason)
            == Some(RefuseReason::DeployPathMissing)
            && (case.injected.mainline.is_unknown() || tip_tree_unknown(&case.injected))
            && d.plan.as_move().is_some_and(|m| m.action == mainline_core::Action::ApplyPin);
        if let Some(mv) = d.plan.as_move().filter(|_| !hidden_input_error) {
            // The same write (its one-line reason may describe the unknown fact).
            let target = |m: &Move| (m.to_commit.clone(), m.to_digest.clone(), m.action);
            prop_assert_eq!(Some(target(mv)), clean.plan.as_move().map(target), "{}", d.explanation);
        }
        // Facts every reconcile needs (a pinned reconcile needs only the channel).
        let f = &case.injected;
        let needed_unknown = if f.active_pin().is_some() {
            f.channel.is_unknown()
        } else {
            f.mainline.is_unknown() || f.channel.is_unknown() || f.groups.is_unknown()
        };
        // A deploy path absent at a known mainline tip is invalid input, refused before any
        // other fact is consulted.
        let path_missing = f.mainline.known().is_some_and(|m| {
            f.commits.get(m).is_some_and(|c| c.deploy_tree == Known::Known(None))
        });
        if needed_unknown && matches!(case.request, Request::Status | Request::Reconcile { .. }) {
            if path_missing {
                prop_assert_eq!(
                    d.plan.as_refusal().map(|r| r.reason),
                    Some(RefuseReason::DeployPathMissing)
                );
            } else {
                prop_assert_eq!(&d.plan, &Plan::Hold);
            }
            prop_assert_eq!(d.verdict, Verdict::Unknown);
        }
        reconcile_targets(&case, &case.injected, &d)?;
        candidate_guard(&case, &case.injected, &d)?;
        evidence(&case.injected, &d)?;
        never_backwards(&case, &case.injected, &d)?;
        prop_assert_eq!(&decide(&case.injected, &case.request), &d);
    }
}

/// Whether mainline's tip is known but its deploy tree is not (so a missing deploy path cannot
/// be seen).
fn tip_tree_unknown(f: &Facts) -> bool {
    f.mainline
        .known()
        .is_some_and(|m| f.deploy_tree(m).is_err())
}

/// The generator is not vacuous: a fixed-seed sample reaches every verdict, every move action
/// and every refusal reason random consistent facts can produce (`would_move_backwards` needs
/// inconsistent ancestry and is covered in `refusals.rs`).
#[test]
fn generator_reaches_every_verdict_action_and_refusal() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    use std::collections::BTreeMap;

    let mut runner = TestRunner::deterministic();
    let strategy = case();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..2000 {
        let case = strategy.new_tree(&mut runner).expect("a case").current();
        for facts in [&case.facts, &case.injected] {
            let d = decide(facts, &case.request);
            *seen.entry(d.verdict.to_string()).or_default() += 1;
            let key = match &d.plan {
                Plan::Hold => "hold".to_owned(),
                Plan::ClearPin => "clear_pin".to_owned(),
                Plan::Move(m)
                    if m.action == Action::Restore
                        && m.to_commit.as_ref() != facts.mainline.known() =>
                {
                    "restore_live_group".to_owned()
                }
                Plan::Move(m) => format!("{:?}", m.action),
                Plan::Refuse(r) => r.reason.to_string(),
            };
            *seen.entry(key).or_default() += 1;
        }
    }
    eprintln!("{seen:?}");
    let want = [
        "CONVERGED",
        "CANDIDATE",
        "BEHIND",
        "DIVERGED",
        "PINNED",
        "UNKNOWN",
        "hold",
        "clear_pin",
        "Promote",
        "Restore",
        "restore_live_group",
        "DeployCandidate",
        "ApplyPin",
        "group_not_in_flight",
        "group_behind_mainline",
        "newer_group_holds",
        "not_on_mainline",
        "evidence_missing",
        "facts_unknown",
        "pin_active",
        "artifact_missing",
        "channel_foreign",
        "pin_expired",
    ];
    for key in want {
        assert!(
            seen.get(key).is_some_and(|&n| n >= 3),
            "{key} reached too rarely: {seen:?}"
        );
    }
}
