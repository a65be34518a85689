//! mainline under simulation: the real executor (with its git-ref lock, and without) against
//! the same failing registry, git remote, merge queue and runners as the baselines.
//!
//! `mainline` must show zero violations of S1–S5 and L1, never lose a merged change, and — with
//! no faults injected — keep prod's exposure to unmerged code and its lag behind main within
//! the bound T (the schedule interval plus a run's allowance). G included: the gap the
//! simulator found (a restore dropping live groups a failed candidate contained) is fixed in the
//! decision core (`tests/sim_clauses.rs`, `a_failed_group_that_contained_live_groups_keeps_their_gates`).

/// Violations of every clause, G included.
fn safety(m: &mainline::sim::runner::StrategySummary) -> u64 {
    m.by_invariant.values().sum()
}

use mainline::sim::monitor::Invariant;
use mainline::sim::runner::simulate;
use mainline::sim::scenario::{Params, SimConfig};
use mainline::sim::{history_seed, run_history, Strategy};

/// T as the checkers use it: the 5-minute schedule plus 3 minutes for jitter and the run.
const T_BOUND_MINUTES: f64 = 8.0;

fn histories() -> u64 {
    std::env::var("MAINLINE_SIM_TEST_HISTORIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600)
}

#[test]
fn mainline_keeps_the_invariant_with_faults() {
    let n = histories();
    let s = simulate(11, n, &[Strategy::Mainline], &SimConfig::default(), 2).expect("runs");
    let m = &s.strategies[0];
    assert_eq!(m.histories, n);
    assert_eq!(
        safety(m),
        0,
        "{:?} first at history {:?}",
        m.by_invariant,
        m.first_violation
    );
    assert_eq!(m.merged_never_deployed, 0);
    assert!(
        m.executor_runs > n * 20,
        "the executor really ran: {}",
        m.executor_runs
    );
    assert!(m.faults > n, "faults were injected: {}", m.faults);
}

#[test]
fn mainline_exposure_is_bounded_by_the_reconcile_interval_without_faults() {
    let cfg = SimConfig {
        faults: false,
        ..SimConfig::default()
    };
    let n = histories();
    let s = simulate(12, n, &[Strategy::Mainline], &cfg, 2).expect("runs");
    let m = &s.strategies[0];
    assert_eq!(safety(m), 0, "{:?}", m.by_invariant);
    assert!(
        m.unmerged.max <= T_BOUND_MINUTES,
        "longest unmerged exposure {} min",
        m.unmerged.max
    );
    assert!(
        m.behind.max <= T_BOUND_MINUTES,
        "longest lag {} min",
        m.behind.max
    );
    assert!(m.unmerged.max > 0.0, "groups did fail after deploying");
}

#[test]
fn mainline_unlocked_converges_but_loses_updates() {
    let n = histories() / 2;
    let s = simulate(
        13,
        n,
        &[Strategy::MainlineUnlocked],
        &SimConfig::default(),
        2,
    )
    .expect("runs");
    let m = &s.strategies[0];
    // Unlocked mode gives up S5 (DESIGN.md): the lock's worth, shown.
    assert!(m.by_invariant[&Invariant::S5] > 0, "{:?}", m.by_invariant);
    assert_eq!(m.by_invariant[&Invariant::S1], 0, "{:?}", m.by_invariant);
    assert_eq!(m.merged_never_deployed, 0);
}

/// Found during development (then seed 1, history 77): a promote decided while main was A
/// wrote A's artifact ~1 s after B merged, over a channel that contained B. The checker first
/// called it an S2 violation; it is a race with the merge (B landed after the decision), the
/// executor's re-decision promotes B in the same run, and L1 bounds it. Most such races were a
/// restore of main dropping a live group that then merged; since a DIVERGED restore keeps the
/// live groups (issue 12), none of seed 1's first 10,000 histories races any more. So this
/// holds every raced history to the claim (clean, re-decided at once) and, races or not, holds
/// the scanned histories to S2 = 0; the count it found is printed.
#[test]
fn promote_decided_just_before_a_merge_is_a_race_not_a_regression() {
    let mut races = 0;
    for i in 0..2_000u64 {
        let o = run_history(
            history_seed(1, i),
            Strategy::Mainline,
            &SimConfig::default(),
        );
        assert!(
            o.violations.iter().all(|v| v.invariant != Invariant::S2),
            "history {i}: {:?}",
            o.violations
        );
        if o.s2_races == 0 {
            continue;
        }
        races += o.s2_races;
        assert!(o.violations.is_empty(), "history {i}: {:?}", o.violations);
        assert!(
            o.max_behind_ms < 5 * 60_000,
            "history {i}: re-decided at once, yet behind {} ms",
            o.max_behind_ms
        );
    }
    eprintln!("S2 races in seed 1's first 2,000 histories: {races}");
}

/// Found during development: the seeded first artifact was tagged `latest` before its
/// signature existed, so every history with the evidence policy began with an S1.
#[test]
fn histories_with_the_evidence_policy_start_signed() {
    let cfg = SimConfig::default();
    let with_policy: Vec<u64> = (0..80)
        .filter(|&i| Params::draw(history_seed(5, i), &cfg).require_signature)
        .collect();
    assert!(with_policy.len() >= 5, "the policy is drawn often enough");
    for i in with_policy {
        let o = run_history(history_seed(5, i), Strategy::Mainline, &cfg);
        let s1: Vec<_> = o
            .violations
            .iter()
            .filter(|v| v.invariant == Invariant::S1)
            .collect();
        assert!(s1.is_empty(), "history {i}: {s1:?}");
    }
}

/// Found during development (then seed 1, history 324), and kept as a documented limit rather
/// than hidden: with the evidence policy on, a direct push landed and the push workflow that
/// packs and signs main's artifact died on a registry timeout. From then on every reconcile
/// refused to restore (evidence_missing: S1 forbids naming an unsigned digest) and prod stayed
/// on the ejected group for many minutes, until a later merge brought a signed artifact. The
/// checker does not count that time against S3's bound (no heal was allowed); it reports it as
/// `evidence_gap_ms`. Which history shows it shifts with the fault model, so search for one.
#[test]
fn restore_waits_for_the_signature_of_mains_artifact() {
    let found = (0..3_000u64).find_map(|i| {
        let o = run_history(
            history_seed(1, i),
            Strategy::Mainline,
            &SimConfig::default(),
        );
        (o.max_unmerged_ms > 20 * 60_000 && o.evidence_gap_ms > 20 * 60_000).then_some((i, o))
    });
    let (i, o) = found.expect("some history waits long for main's signature");
    assert!(o.violations.is_empty(), "history {i}: {:?}", o.violations);
}

/// Found by the 1,000,000-history run (issue 12): in seed 1's history 580671 `ci#17` sends the
/// channel PUT, the network holds it, the runner is killed 30 s later, and the PUT lands 67 s
/// after it was sent. With a lock record that declared one TTL, `ci#18` took the lock once that
/// TTL had passed and deployed group 18; the held PUT then moved the channel back to group 17
/// (S5 and G). The write hold (`channel/fence.rs`: a record declaring two TTLs before a
/// registry write) keeps every taker out until after such a landing. The history must still
/// stage the scene (held write, kill, late landing), or this test proves nothing: since a
/// deploy answers "a newer group holds" under the lock, 580671 runs another course, and
/// history 958 stages it — `ci#15`'s PUT held, the runner killed 55 s later, the PUT landing
/// 83 s after it was sent while `webhook#57` and `ci#16` go for the lock.
#[test]
fn a_killed_writers_held_put_lands_before_anyone_takes_the_lock() {
    replays_clean(
        1,
        958,
        &[
            "ci#15: its channel write is held by the network",
            "ci#15: killed during",
            "ci#15: its channel write sent at 3774 s, held by the network, lands now",
        ],
    );
}

/// Seed `seed`'s history `index` under mainline, logged: every line of `scene` is still in its log
/// (or the replay proves nothing), and it breaks no clause.
fn replays_clean(seed: u64, index: u64, scene: &[&str]) {
    let cfg = SimConfig {
        log: true,
        ..SimConfig::default()
    };
    let o = run_history(history_seed(seed, index), Strategy::Mainline, &cfg);
    for what in scene {
        assert!(
            o.log.iter().any(|l| l.contains(what)),
            "history {index} no longer stages {what:?}:\n{}",
            o.log.join("\n")
        );
    }
    assert!(
        o.violations.is_empty(),
        "{:?}\n{}",
        o.violations,
        o.log.join("\n")
    );
}

/// Found by the final 1,000,000-history run: in seed 1's history 367343 an operator pin expires,
/// `ci#46-heal` (its clock behind) still sees it and re-applies the pinned artifact over group
/// 45's candidate, and the network holds that write 83 s, past the pin-skew window. The write
/// lands under the heal's own lock; it is a pin's write decided in the skew window — a
/// `pin_skew_writes` write, judged by when it was decided (README, "Pin expiry is the one
/// absolute time"), not a lost update. The checker judged S5 and G by the landing time; now it
/// follows the documented rule. The history must still stage the scene.
#[test]
fn a_pin_skew_write_the_network_held_is_judged_by_when_it_was_decided() {
    replays_clean(
        1,
        367_343,
        &[
            "ci#46-heal: its channel write is held by the network",
            "held by the network, lands now",
            "ci#46-heal moved the channel just after the pin's expiry",
        ],
    );
}

/// Found by a 100,000-history run of seed 7: group 14's deploy step found the channel on an
/// ended group's candidate that contains a newer live group containing 14, and answered "a
/// newer group holds the channel" — deployed, as far as the gate goes — without the lock. But
/// `cron#65` held the lock with a restore to main in flight (decided before group 14's
/// artifact existed), which the network held 84 s and landed after that answer: the channel
/// left group 14's candidate during its checks (G). That answer is now given under the lock:
/// the deploy waits for the restore to land and deploys group 14's candidate over it.
#[test]
fn a_newer_group_holds_answer_is_given_under_the_lock() {
    replays_clean(
        7,
        57_253,
        &[
            "cron#65: its channel write is held by the network",
            "cron#65: its channel write sent at 5128 s, held by the network, lands now",
            "ci#14: CONVERGED -> CANDIDATE (1 moves)",
        ],
    );
}
