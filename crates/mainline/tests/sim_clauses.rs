//! Each clause the monitor checks is shown to fire, with the right name, on the violation it
//! exists for — and the fenced executor is shown to keep S5 under the fault that broke it
//! before (a channel write held past its writer's lease, DESIGN.md scenario 12).

use mainline::sim::monitor::{Invariant, Violation};
use mainline::sim::scenario::SimConfig;
use mainline::sim::{history_seed, run_history, HistoryOutcome, Strategy};

const SEED: u64 = 77;

/// The first of `scan` histories where `strategy` under `cfg` shows a violation matching `pred`.
fn first(
    strategy: Strategy,
    cfg: &SimConfig,
    scan: u64,
    pred: impl Fn(&Violation) -> bool,
) -> Option<(u64, HistoryOutcome, Violation)> {
    (0..scan).find_map(|i| {
        let o = run_history(history_seed(SEED, i), strategy, cfg);
        let v = o.violations.iter().find(|v| pred(v)).cloned()?;
        Some((i, o, v))
    })
}

/// Every violation: mainline keeps every clause, G included.
fn safety(o: &HistoryOutcome) -> Vec<&Violation> {
    o.violations.iter().collect()
}

fn held_writes(pm: u32, unfenced: bool) -> SimConfig {
    SimConfig {
        stall_writes_pm: Some(pm),
        unfenced_writes: unfenced,
        ..SimConfig::default()
    }
}

/// DEMONSTRATION (the mode exists only for this): with the fence switched off, a channel write
/// held past its writer's lease lands over a newer writer's candidate — the simulator finds the
/// bug the fault proxy found by hand, and names it S5 (or S2 when it drops a landed merge).
#[test]
fn an_unfenced_held_write_is_found_as_a_lost_update() {
    let (i, _, v) = first(Strategy::Mainline, &held_writes(150, true), 300, |v| {
        matches!(v.invariant, Invariant::S5 | Invariant::S2)
    })
    .expect("the unfenced held write breaks the invariant in some history");
    assert!(v.cause.writer.len() > 1, "history {i}: {v:?}");
    // The same histories, fenced: the late landing happens while its writer holds the lock.
    let fenced = run_history(
        history_seed(SEED, i),
        Strategy::Mainline,
        &held_writes(150, false),
    );
    assert!(
        safety(&fenced).is_empty(),
        "history {i} fenced: {:?}",
        fenced.violations
    );
}

#[test]
fn held_writes_with_the_fence_break_nothing() {
    let cfg = held_writes(150, false);
    for i in 0..60 {
        let o = run_history(history_seed(SEED, i), Strategy::Mainline, &cfg);
        assert!(safety(&o).is_empty(), "history {i}: {:?}", o.violations);
    }
}

/// A heal from a failed group overwrites a newer group's live candidate: S5.
#[test]
fn a_heal_over_a_live_candidate_is_s5() {
    let (_, _, v) = first(Strategy::HealOnFailure, &SimConfig::default(), 400, |v| {
        v.invariant == Invariant::S5 && v.cause.writer.ends_with("-heal")
    })
    .expect("some heal overwrites a live candidate");
    assert!(v.cause.overwrote_live_group, "{v:?}");
    assert!(
        v.detail.contains("does not contain it") || v.detail.contains("backwards"),
        "{v:?}"
    );
}

/// An older group's run deploys after a newer group's candidate: backwards along the queue.
#[test]
fn a_backward_deploy_is_s5() {
    let (_, _, v) = first(Strategy::DeployNoHeal, &SimConfig::default(), 400, |v| {
        v.invariant == Invariant::S5 && v.detail.contains("backwards along the queue")
    })
    .expect("some stalled run deploys behind a newer group");
    assert!(v.cause.writer.starts_with("ci#"), "{v:?}");
}

/// A group whose candidate was overwritten while its checks ran, then merged: G.
#[test]
fn a_gate_that_did_not_hold_is_g() {
    let (i, o, v) = first(Strategy::HealOnFailure, &SimConfig::default(), 400, |v| {
        v.invariant == Invariant::G
    })
    .expect("some group merges after its candidate was overwritten");
    assert!(v.detail.contains("before its checks concluded"), "{v:?}");
    assert!(
        o.merged_without_deploy >= 1,
        "history {i}: not counted as gated"
    );
}

/// Unlocked mode gives up S5 (DESIGN.md says so): the simulator shows what the lock buys.
#[test]
fn unlocked_mode_loses_updates_the_lock_prevents() {
    let (i, _, v) = first(
        Strategy::MainlineUnlocked,
        &SimConfig::default(),
        1_500,
        |v| v.invariant == Invariant::S5,
    )
    .expect("unlocked writers overwrite a live candidate in some history");
    let locked = run_history(
        history_seed(SEED, i),
        Strategy::Mainline,
        &SimConfig::default(),
    );
    assert!(
        safety(&locked).is_empty(),
        "history {i} locked: {:?}; unlocked: {v:?}",
        locked.violations
    );
}

/// Found by this checker (issue 12), fixed in the decision core: a group fails whose candidate
/// contained older groups still in flight. The next reconcile sees DIVERGED (the channel names
/// an ended group) and used to restore main, dropping those groups' candidates while their
/// checks ran (G broke in 1,402 of 10,000 histories, seed 1). Now it restores the newest live
/// group the ended one contained: the trace shows a reconcile going from DIVERGED straight to
/// CANDIDATE, and that history — like every other scanned — keeps every clause.
#[test]
fn a_failed_group_that_contained_live_groups_keeps_their_gates() {
    let cfg = SimConfig {
        log: true,
        ..SimConfig::default()
    };
    let mut restored_live = 0;
    for i in 0..200 {
        let o = run_history(history_seed(SEED, i), Strategy::Mainline, &cfg);
        assert!(o.violations.is_empty(), "history {i}: {:?}", o.violations);
        if o.log
            .iter()
            .any(|l| !l.contains(" ci#") && l.contains(": DIVERGED -> CANDIDATE ("))
        {
            restored_live += 1;
        }
    }
    assert!(
        restored_live >= 5,
        "only {restored_live} of 200 histories restored a live group: the case is not exercised"
    );
}

/// Runner death at every step: every third merge-group run is killed on its Nth port call, for
/// every N from the first call to past the quarantine and read-back of a fenced write, with
/// held writes on; mainline keeps every clause, and loses nothing.
#[test]
fn a_runner_killed_at_any_call_breaks_nothing() {
    for k in 1..=40 {
        let cfg = SimConfig {
            kill_every_third_run_at: Some(k),
            stall_writes_pm: Some(100),
            ..SimConfig::default()
        };
        for i in 0..6 {
            let o = run_history(history_seed(SEED, i), Strategy::Mainline, &cfg);
            assert!(
                safety(&o).is_empty(),
                "killed at call {k}, history {i}: {:?}",
                o.violations
            );
            assert_eq!(
                o.merged_never_deployed, 0,
                "killed at call {k}, history {i}"
            );
        }
    }
}

/// A pin is judged as it was when the writer decided, not when its write landed. Found at
/// 45,000 histories (seed 1, history 37035): a runner whose clock ran behind still saw an
/// expired pin, re-applied its target (an ended group's artifact, which an operator pin may
/// name), and the network held that fenced write 64 s, so it landed after the pin's grace. The
/// monitor judged the pin at landing time and called it S4. The executor did what the design
/// says a skewed runner does (DESIGN.md, pins): a pin-skew write, not a violation. Since pins
/// ride in the short path's first push, 37035 runs another course; history 3108 stages the
/// scene now (`ci#22`'s write decided in the skew window, held 84 s, landing after the grace).
#[test]
fn a_pin_reapplied_by_a_skewed_runner_and_held_by_the_network_is_a_pin_skew_write() {
    let cfg = SimConfig {
        log: true,
        ..SimConfig::default()
    };
    let o = run_history(history_seed(1, 3_108), Strategy::Mainline, &cfg);
    let late_pin = o.log.windows(2).any(|w| {
        w[0].contains("held by the network, lands now")
            && w[1].contains("counted as a pin-skew write")
    });
    assert!(
        late_pin,
        "the history no longer has a late-landing pin re-application (the simulator changed): \
         find another with `mainline simulate --strategy mainline --histories 45000` and a \
         monitor that judges pins at landing time"
    );
    assert!(safety(&o).is_empty(), "{:?}", safety(&o));
}
