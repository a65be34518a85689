//! Each baseline strategy (the workflows in `docs/simulate-baselines/`) fails the scenario it
//! is known for in real incidents — found on the
//! simulator's own histories (the first of a fixed seed's histories that shows it), and the
//! very same history run with `mainline` keeps the invariant.

use mainline::sim::monitor::{Invariant, Violation};
use mainline::sim::queue::End;
use mainline::sim::scenario::SimConfig;
use mainline::sim::{history_seed, run_history, HistoryOutcome, Strategy};

const SEED: u64 = 2024;
const SCAN: u64 = 400;

/// The first history of `SEED` where `strategy` shows a violation matching `pred`.
fn first(
    strategy: Strategy,
    pred: impl Fn(&Violation) -> bool,
) -> (u64, HistoryOutcome, Violation) {
    let cfg = SimConfig::default();
    for i in 0..SCAN {
        let o = run_history(history_seed(SEED, i), strategy, &cfg);
        if let Some(v) = o.violations.iter().find(|v| pred(v)).cloned() {
            return (i, o, v);
        }
    }
    panic!("{strategy:?} never showed the scenario in {SCAN} histories of seed {SEED}");
}

/// The same history under mainline (with its lock) breaks nothing, G included.
fn mainline_keeps_it(index: u64) {
    let o = run_history(
        history_seed(SEED, index),
        Strategy::Mainline,
        &SimConfig::default(),
    );
    assert!(
        o.violations.is_empty() && o.merged_never_deployed == 0,
        "mainline on history {index}: {:?}",
        o.violations
    );
}

fn ended(v: &Violation, ends: &[End]) -> bool {
    matches!(v.cause.group, Some((_, Some(e))) if ends.contains(&e))
}

fn is_heal(v: &Violation) -> bool {
    v.cause.writer.ends_with("-heal")
}

#[test]
fn deploy_no_heal_leaves_prod_on_ejected_code() {
    let (i, _, v) = first(Strategy::DeployNoHeal, |v| {
        v.invariant == Invariant::S3
            && ended(v, &[End::Failed])
            && v.cause.writer.starts_with("ci#")
    });
    assert!(v.detail.contains("named unmerged code"), "{v:?}");
    mainline_keeps_it(i);
}

#[test]
fn evicted_group_deploys_after_eviction() {
    let (i, _, v) = first(Strategy::DeployNoHeal, |v| {
        v.invariant == Invariant::S4 && ended(v, &[End::TimedOut])
    });
    assert!(v.detail.contains("timed out in the queue"), "{v:?}");
    mainline_keeps_it(i);
}

#[test]
fn heal_on_failure_skips_cancelled_runs() {
    let (i, _, _) = first(Strategy::HealOnFailure, |v| {
        v.invariant == Invariant::S3 && ended(v, &[End::Cancelled, End::RunnerLost])
    });
    mainline_keeps_it(i);
}

#[test]
fn heal_on_failure_overwrites_a_newer_group() {
    let (i, o, v) = first(Strategy::HealOnFailure, |v| {
        matches!(v.invariant, Invariant::L1 | Invariant::S2 | Invariant::S5)
            && is_heal(v)
            && v.cause.overwrote_live_group
    });
    assert!(o.max_behind_ms > 0, "prod was behind main: {v:?}");
    mainline_keeps_it(i);
}

#[test]
fn locked_heal_still_writes_a_stale_main() {
    let (i, _, v) = first(Strategy::HealOnFailureOrCancel, |v| {
        matches!(v.invariant, Invariant::L1 | Invariant::S2 | Invariant::S5)
            && is_heal(v)
            && v.cause.wrote_behind_main
    });
    assert!(v.cause.wrote_behind_main, "{v:?}");
    mainline_keeps_it(i);
}

/// The heal is a separate `if: failure() || cancelled()` job, so it survives a dead runner
/// and a plain cancel — but a force-cancel skips it (and the group's failed run that the heal
/// does run writes a stale main: above).
#[test]
fn heal_on_failure_or_cancel_skips_force_cancel() {
    let (i, _, _) = first(Strategy::HealOnFailureOrCancel, |v| {
        v.invariant == Invariant::S3 && ended(v, &[End::Cancelled])
    });
    mainline_keeps_it(i);
}

/// The hourly "restore stranded prod" cron knows nothing of the queue: it re-tags main over a
/// live candidate.
#[test]
fn heal_plus_cron_restores_over_a_live_candidate() {
    let (i, _, v) = first(Strategy::HealPlusCron, |v| {
        v.invariant == Invariant::S5 && v.cause.writer.starts_with("restore-cron")
    });
    assert!(v.cause.overwrote_live_group, "{v:?}");
    mainline_keeps_it(i);
}

#[test]
fn promote_after_merge_has_no_premerge_gate() {
    let cfg = SimConfig::default();
    let merged_ungated: u32 = (0..20)
        .map(|i| run_history(history_seed(SEED, i), Strategy::PromoteAfterMerge, &cfg))
        .map(|o| o.merged_without_deploy)
        .sum();
    assert!(
        merged_ungated > 20,
        "groups merged with no pre-merge deploy: {merged_ungated}"
    );
    let gated: u32 = (0..20)
        .map(|i| run_history(history_seed(SEED, i), Strategy::Mainline, &cfg))
        .map(|o| o.merged_without_deploy)
        .sum();
    // mainline deploys every group before it merges, and keeps it there until its checks end.
    assert!(
        gated == 0,
        "mainline {gated} vs promote-after-merge {merged_ungated}"
    );
}

#[test]
fn promote_after_merge_runs_finish_out_of_order() {
    let (i, _, v) = first(Strategy::PromoteAfterMerge, |v| {
        matches!(v.invariant, Invariant::L1 | Invariant::S2)
            && v.cause.writer.starts_with("push#")
            && v.cause.wrote_behind_main
    });
    assert!(!is_heal(&v));
    mainline_keeps_it(i);
}

/// Fair baselines (issue 12): every strategy signs before its deploy step, so no candidate
/// deploy of a baseline names an unsigned digest. (A baseline's heal, which rebuilds main's
/// artifact without signing it, still can: that is its own glue's doing.)
#[test]
fn baselines_sign_candidates_before_deploying() {
    let cfg = SimConfig::default();
    for strategy in [Strategy::DeployNoHeal, Strategy::HealOnFailureOrCancel] {
        for i in 0..60 {
            let o = run_history(history_seed(SEED, i), strategy, &cfg);
            let unsigned: Vec<_> = o
                .violations
                .iter()
                .filter(|v| v.invariant == Invariant::S1 && !is_heal(v))
                .filter(|v| v.cause.writer.starts_with("ci#"))
                .collect();
            assert!(
                unsigned.is_empty(),
                "{strategy:?} history {i}: {unsigned:?}"
            );
        }
    }
}
