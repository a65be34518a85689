//! Fencing under registry faults (issue 10, items 1 and 4; DESIGN.md scenario 12): a writer's
//! channel PUT is held by a fault proxy in front of the real `docker-registry` and applied
//! *late*, after its writer stopped waiting for it and past the writer's lock TTL, while
//! another writer (another process, another cache) wants to move the channel.
//!
//! What must hold, checked by the independent oracle of `race.rs` (registry HTTP + git CLI) and
//! by a watcher that reads the channel every 20 ms throughout:
//! - the late landing never replaces the newer writer's move (once the newer target is seen,
//!   the channel never names anything older again);
//! - afterwards the invariant holds and `history --verify` audits clean: every intent settled,
//!   and the journal ends on the digest the channel actually names;
//! - a write that never got an answer (blackholed) or whose answers were lost is reported
//!   truthfully (not landed → `abandoned`, exit 6; landed → `moved`, exit 0);
//! - an intent left by a killed writer is settled by the next reconcile even when that
//!   reconcile would move nothing, and `history` marks it UNSETTLED until then.
//!
//! Runs: `MAINLINE_FENCE_RUNS` slow-write runs per variant (default 10, two variants: 20);
//! seed `MAINLINE_FENCE_SEED`. Figures: `-- --nocapture`.

#[path = "support/faultproxy.rs"]
mod faultproxy;
#[path = "support/race.rs"]
mod race;
mod support;

use faultproxy::{Fault, FaultProxy};
use race::{audit, history, invariant, Holds, KillMode, Proc, Registry, Rng};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::queue::{app, first_deploy, Channel, Queue};

/// The lock TTL every writer in these tests uses.
const TTL: Duration = Duration::from_secs(3);
const CHANNEL_PUT: &str = "/manifests/latest";

struct World {
    q: Queue,
    /// Writer A (through the fault proxy, as B).
    a: Channel,
    /// Writer B: another process with another cache, on the same channel.
    b: Channel,
    reg: Registry,
    proxy: FaultProxy,
}

fn world(root: &std::path::Path, name: &str) -> World {
    let (q, _direct, reg) = race::world(root, name);
    let proxy = FaultProxy::start(&reg.host);
    let ttl = format!("{}s", TTL.as_secs());
    // Both writers name the same channel (the registry address is part of the channel's key:
    // its lock and journal); the proxy's rules pick which request misbehaves.
    let store = format!("oci://{}/{}", proxy.addr, reg.repo);
    let a = Channel::new(&store, &q, "cache-a").with(&["--lock-ttl", &ttl]);
    let b = Channel::new(&store, &q, "cache-b").with(&["--lock-ttl", &ttl]);
    World {
        q,
        a,
        b,
        reg,
        proxy,
    }
}

/// What the channel named, from when (ms since the watcher started): one entry per change.
type Seen = Vec<(u128, Option<String>)>;

/// Reads the channel every 20 ms until stopped.
struct Watcher {
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Watcher {
    fn start(reg: &Registry) -> Watcher {
        let reg = Registry {
            host: reg.host.clone(),
            repo: reg.repo.clone(),
        };
        let seen: Arc<Mutex<Seen>> = Arc::default();
        let stop: Arc<AtomicBool> = Arc::default();
        let (s, st) = (seen.clone(), stop.clone());
        let handle = std::thread::spawn(move || {
            let t = Instant::now();
            while !st.load(Ordering::SeqCst) {
                let d = reg.digest("latest");
                let mut v = s.lock().expect("seen");
                if v.last().map(|(_, l)| l) != Some(&d) {
                    v.push((t.elapsed().as_millis(), d));
                }
                drop(v);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Watcher {
            seen,
            stop,
            handle: Some(handle),
        }
    }

    /// Every distinct value the channel took, in order.
    fn finish(mut self) -> Seen {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            h.join().expect("watcher");
        }
        self.seen.lock().expect("seen").clone()
    }
}

/// Once `newer` appeared, did the channel ever name something else? (S5 for the late write.)
fn replaced_after(seen: &Seen, newer: &str) -> Option<String> {
    let first = seen.iter().position(|(_, d)| d.as_deref() == Some(newer))?;
    seen[first..]
        .iter()
        .find(|(_, d)| d.as_deref() != Some(newer))
        .map(|(t, d)| format!("at +{t} ms the channel named {d:?} after {newer}"))
}

fn wait_for(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    assert!(
        race::wait_until(limit, Duration::from_millis(10), &mut f),
        "timed out after {limit:?} waiting for {what}"
    );
}

/// Everything checked at rest after a run: the oracle's invariant, and a clean journal audit
/// that ends where the channel is.
fn check_at_rest(w: &World) -> (race::Seen, Holds, race::Audit) {
    let (seen, holds) = invariant(&w.q, &w.reg, "latest").unwrap_or_else(|e| panic!("{e}"));
    let h = history(&w.b);
    assert_eq!(h.code, 0, "history --verify");
    assert!(h.breaks.is_empty(), "{:?}", h.breaks);
    let a = audit(&h.records, w.reg.digest("latest").as_deref());
    assert!(
        a.anomalies.is_empty(),
        "journal anomalies: {:?}",
        a.anomalies
    );
    assert!(
        a.unsettled.is_empty(),
        "unsettled intents: {:?}",
        a.unsettled
    );
    (seen, holds, a)
}

fn files(n: u32) -> Vec<(&'static str, String)> {
    vec![("k8s/app.yaml", app(n))]
}

fn refs<'a>(f: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    f.iter().map(|(p, c)| (*p, c.as_str())).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// A deploys group 1's candidate; its PUT is held; group 1 fails; B deploys group 3.
    StalledCandidate,
    /// A promotes c3; its PUT is held; c4 lands; B promotes c4 (the "c4 → c3" incident).
    StalledPromote,
}

struct Outcome {
    a_code: i32,
    a_took: Duration,
    b_code: i32,
    changes: usize,
    landed_late: bool,
}

/// What becomes of writer A once its channel PUT is held.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Writer {
    /// A lives on: it gives up on the attempt, holds the lock one TTL (the quarantine), reads.
    Lives,
    /// A's runner is SIGKILLed right after the PUT is held: only the lock record it left
    /// (the write hold) keeps B out until the held PUT lands.
    Killed,
}

fn one_slow_write(
    root: &std::path::Path,
    variant: Variant,
    writer: Writer,
    delay: Duration,
    n: u64,
) -> Outcome {
    let mut w = world(root, &format!("fence{n}"));
    first_deploy(&w.b, &w.q);
    let watcher = Watcher::start(&w.reg);
    return match variant {
        Variant::StalledCandidate => {
            let f1 = files(11);
            let g1 = w.q.enqueue(1, &refs(&f1));
            let a_args: Vec<String> = vec![
                "deploy".into(),
                "--candidate".into(),
                "--group".into(),
                g1.id.clone(),
                "--commit".into(),
                g1.head.clone(),
            ];
            w.proxy.arm("PUT", CHANNEL_PUT, Fault::Delay(delay), 1);
            let mut a = Proc::spawn(&w.a, &as_str(&a_args), &format!("slow-a-{n}"), "a");
            wait_for(Duration::from_secs(60), "A's held channel PUT", || {
                w.proxy.count("manifests/latest -> Delay") == 1
            });
            if writer == Writer::Killed {
                assert!(a.kill(KillMode::Runner), "A was killed mid-write");
            }
            // Group 1 fails while A's write is held; a fresh group 3 is built on main.
            w.q.end(&g1);
            let f3 = files(33);
            let g3 = w.q.enqueue(3, &refs(&f3));
            let newer_head = g3.head.clone();
            let b_args: Vec<String> = vec![
                "deploy".into(),
                "--candidate".into(),
                "--group".into(),
                g3.id.clone(),
                "--commit".into(),
                g3.head.clone(),
            ];
            finish(w, a, watcher, &b_args, &newer_head, n)
        }
        Variant::StalledPromote => {
            let f3 = files(3);
            let c3 = w.q.push_main(&refs(&f3), "c3 lands");
            let a_args: Vec<String> = vec!["promote".into(), "--commit".into(), c3];
            w.proxy.arm("PUT", CHANNEL_PUT, Fault::Delay(delay), 1);
            let mut a = Proc::spawn(&w.a, &as_str(&a_args), &format!("slow-a-{n}"), "a");
            wait_for(Duration::from_secs(60), "A's held channel PUT", || {
                w.proxy.count("manifests/latest -> Delay") == 1
            });
            if writer == Writer::Killed {
                assert!(a.kill(KillMode::Runner), "A was killed mid-write");
            }
            let f4 = files(4);
            let c4 =
                w.q.push_main(&refs(&f4), "c4 lands while c3's write is held");
            let b_args: Vec<String> = vec!["promote".into(), "--commit".into(), c4.clone()];
            finish(w, a, watcher, &b_args, &c4, n)
        }
    };

    fn finish(
        w: World,
        a: Proc,
        watcher: Watcher,
        b_args: &[String],
        newer_head: &str,
        n: u64,
    ) -> Outcome {
        let b =
            w.b.run_env(&as_str(b_args), &[("GITHUB_RUN_ID", &format!("b-{n}"))]);
        let (a_run, a_took) = a.finish();
        assert!(
            w.proxy.drain(Duration::from_secs(30)),
            "the held request was applied"
        );
        // One more look after the late landing had every chance to happen.
        std::thread::sleep(Duration::from_millis(200));
        let seen = watcher.finish();
        let newer = w
            .reg
            .digest(&format!("sha-{newer_head}"))
            .expect("the newer target was packed");
        assert_eq!(
            b.code, 0,
            "B: {}{}\nA ({}): {}{}",
            b.stdout, b.stderr, a_run.code, a_run.stdout, a_run.stderr
        );
        if let Some(v) = replaced_after(&seen, &newer) {
            panic!(
                "run {n}: the stalled write landed over the newer move: {v}\nchannel history: {seen:?}\nproxy: {:?}\nA: {}{}",
                w.proxy.log(),
                a_run.stdout,
                a_run.stderr
            );
        }
        assert_eq!(
            w.reg.digest("latest").as_deref(),
            Some(newer.as_str()),
            "the channel ends on the newer target; seen {seen:?}"
        );
        let (_, _, _audit) = check_at_rest(&w);
        Outcome {
            a_code: a_run.code,
            a_took,
            b_code: b.code,
            changes: seen.len(),
            landed_late: w.proxy.count("applied after") == 1,
        }
    }
}

fn as_str(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Issue 10, item 1, as reported: A's channel PUT stalls past its lock's TTL; meanwhile A's
/// group fails (or main moves on) and B wants the channel. Before fencing, B took the expired
/// lock and moved the channel, then A's stalled write (or its retry) landed over B's move. Now
/// every attempt is bounded by A's lease, and A holds the lock through the late landing, so B
/// moves only after it. Seeded runs per variant (two tests, run in parallel), holds between 1.1
/// and 1.45 TTLs.
fn slow_writes(variant: Variant) {
    let runs = race::count("MAINLINE_FENCE_RUNS", 10);
    let seed = race::seed("MAINLINE_FENCE_SEED", 0xFE7CE) ^ variant as u64;
    let mut rng = Rng::new(seed);
    let mut lines = Vec::new();
    for i in 0..runs {
        let tmp = tempfile::tempdir().expect("tempdir");
        let ttl = TTL.as_millis() as u64;
        // Past the TTL, and within what the fence covers: an attempt's limit is at least half a
        // TTL (less left and the writer renews first), and the quarantine adds one TTL after
        // the cut-off — so a hold under 1.5 TTLs lands under the lock.
        let delay = Duration::from_millis(ttl * 11 / 10 + rng.below(ttl * 35 / 100));
        let n = (variant as u64) * 1000 + i as u64;
        let o = one_slow_write(tmp.path(), variant, Writer::Lives, delay, n);
        lines.push(format!(
            "{variant:?} #{i}: PUT held {delay:?} (TTL {TTL:?}), landed late: {}; A exit {} after {:.1} s, B exit {}; channel took {} values",
            o.landed_late,
            o.a_code,
            o.a_took.as_secs_f64(),
            o.b_code,
            o.changes
        ));
        assert!(o.landed_late, "the held PUT was applied by the registry");
    }
    eprintln!(
        "FENCE seed {seed:#x}: {} slow-write runs, 0 invariant violations\n  {}",
        lines.len(),
        lines.join("\n  ")
    );
}

#[test]
fn a_stalled_candidate_write_never_lands_over_a_newer_groups_deploy() {
    slow_writes(Variant::StalledCandidate);
}

#[test]
fn a_stalled_promote_never_lands_over_a_newer_promote() {
    slow_writes(Variant::StalledPromote);
}

/// The hole the simulator found (`mainline simulate --seed 1 --history 580671`): a writer is
/// killed while its channel PUT is held by the network, so it never renews again and no
/// quarantine runs; the PUT lands 1.5–1.7 TTLs after it was sent, after A's *last renewal*
/// would have expired. B wants the channel meanwhile. With a lock record that declares only
/// one TTL, B takes over one TTL after its first look and moves the channel, and the held PUT
/// then lands over B's move (this test fails that way with the write hold switched off). The
/// write hold A declared before writing (two TTLs) keeps B out until after the landing; B then
/// settles A's intent from what the channel names and deploys its own group. Seeded runs of
/// both variants.
#[test]
fn a_killed_writers_held_put_never_lands_over_a_newer_move() {
    let runs = race::count("MAINLINE_FENCE_RUNS", 10).div_ceil(5);
    let seed = race::seed("MAINLINE_FENCE_SEED", 0xFE7CE) ^ 0x4B1;
    let mut rng = Rng::new(seed);
    let mut lines = Vec::new();
    for i in 0..runs {
        for variant in [Variant::StalledCandidate, Variant::StalledPromote] {
            let tmp = tempfile::tempdir().expect("tempdir");
            let ttl = TTL.as_millis() as u64;
            let delay = Duration::from_millis(ttl * 3 / 2 + rng.below(ttl / 5));
            let n = 5000 + (variant as u64) * 100 + i as u64;
            let o = one_slow_write(tmp.path(), variant, Writer::Killed, delay, n);
            lines.push(format!(
                "{variant:?} killed #{i}: PUT held {delay:?} (TTL {TTL:?}), landed late: {}; A exit {}, B exit {} after A's kill; channel took {} values",
                o.landed_late, o.a_code, o.b_code, o.changes
            ));
            assert!(o.landed_late, "the held PUT was applied by the registry");
        }
    }
    eprintln!(
        "FENCE killed writers, seed {seed:#x}: {} runs, 0 invariant violations\n  {}",
        lines.len(),
        lines.join("\n  ")
    );
}

/// A registry that swallows every channel PUT (no answer, never applied): the writer stops
/// within its attempts' bounds, says the channel still names the old digest, journals the
/// intent as `abandoned`, exits 6, and releases the lock so the next writer goes at once.
#[test]
fn a_blackholed_channel_write_is_reported_not_landed_and_abandoned() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut w = world(tmp.path(), "blackhole");
    let before = first_deploy(&w.b, &w.q);
    let f = files(5);
    let c = w.q.push_main(&refs(&f), "a change lands");
    w.proxy.arm("PUT", CHANNEL_PUT, Fault::Blackhole, 100);
    let t = Instant::now();
    let r = w.a.run(&["promote", "--commit", &c]);
    let took = t.elapsed();
    eprintln!(
        "FENCE blackhole: exit {} after {:.1} s: {}",
        r.code,
        took.as_secs_f64(),
        r.stderr.trim()
    );
    assert_eq!(r.code, 6, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains(&format!("the channel names {before}")),
        "says what the channel names: {}",
        r.stderr
    );
    assert_eq!(w.reg.digest("latest").as_deref(), Some(before.as_str()));
    assert!(
        w.q.refs_under("refs/mainline/lock/").is_empty(),
        "the lock was released"
    );
    let h = history(&w.b);
    let last = h.records.last().expect("records");
    assert_eq!(last["kind"], "abandoned", "{last}");
    assert_eq!(last["after"].as_str(), Some(before.as_str()), "{last}");
    let a = audit(&h.records, Some(&before));
    assert!(a.anomalies.is_empty() && a.unsettled.is_empty(), "{a:?}");
    // Every attempt was admitted within the lease: at most 1 + 3 retries, none after it.
    let attempts = w.proxy.count("manifests/latest -> Blackhole");
    assert!((1..=4).contains(&attempts), "{attempts} attempts");
    w.proxy.disarm();
    let r = w.b.run(&["reconcile"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    check_at_rest(&w);
}

/// Answers lost after the registry applied the PUT: the writer cannot tell from the answers,
/// so it reads the channel after the fence — it names the target — and records the move.
#[test]
fn a_channel_write_whose_answers_are_lost_is_read_back_and_recorded_as_moved() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut w = world(tmp.path(), "lostanswer");
    first_deploy(&w.b, &w.q);
    let f = files(6);
    let c = w.q.push_main(&refs(&f), "a change lands");
    w.proxy.arm("PUT", CHANNEL_PUT, Fault::LoseAnswer, 100);
    let r = w.a.run(&["promote", "--commit", &c]);
    eprintln!("FENCE lost answers: exit {}: {}", r.code, r.stderr.trim());
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let v = r.json();
    let warned = v["journal_warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|w| w.as_str().is_some_and(|s| s.contains("did not confirm")));
    assert!(warned, "the report says the registry never confirmed: {v}");
    let want = w.reg.digest(&format!("sha-{c}")).expect("packed");
    assert_eq!(w.reg.digest("latest").as_deref(), Some(want.as_str()));
    let (seen, holds, a) = check_at_rest(&w);
    assert_eq!(seen.commit, c);
    assert_eq!(holds, Holds::Converged);
    assert!(a.moved >= 2, "{a:?}");
}

/// Issue 10, item 4: a writer killed while its channel PUT hangs leaves an intent. `history`
/// marks it UNSETTLED (and `--at now` does not pair the old digest with the new commit); the
/// next reconcile — which has nothing to move — still takes the lock (waiting out the dead
/// holder's TTL) and settles it.
#[test]
fn a_reconcile_with_nothing_to_move_settles_the_intent_a_killed_writer_left() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut w = world(tmp.path(), "settle");
    let before = first_deploy(&w.b, &w.q);
    let f = files(7);
    let g = w.q.enqueue(7, &refs(&f));
    w.proxy.arm("PUT", CHANNEL_PUT, Fault::Blackhole, 100);
    let mut a = Proc::spawn(
        &w.a,
        &[
            "deploy",
            "--candidate",
            "--group",
            &g.id,
            "--commit",
            &g.head,
        ],
        "killed-a",
        "a",
    );
    wait_for(Duration::from_secs(60), "A's channel PUT", || {
        w.proxy.count("manifests/latest -> Blackhole") >= 1
    });
    assert!(a.kill(KillMode::Runner), "killed mid-write");
    a.finish();
    w.q.end(&g);

    let text = race::run_text(&w.b, &["history", "--at", "now"]);
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(
        text.stdout.contains("UNSETTLED"),
        "history marks the dangling intent: {}",
        text.stdout
    );
    let at = text
        .stdout
        .lines()
        .find(|l| l.starts_with("at "))
        .expect("an `at` line");
    assert!(
        at.contains(&format!("prod ran {before} ({})", w.q.main())) && !at.contains(&g.head),
        "--at pairs the old digest with its own commit, not the intent's target: {at}"
    );
    assert!(
        text.stdout.contains(&format!(
            "unless the unsettled intent #3 landed: then the artifact of {}",
            g.head
        )),
        "{}",
        text.stdout
    );

    let t = Instant::now();
    let r = w.b.run(&["reconcile"]);
    let v: Value = r.json();
    eprintln!(
        "FENCE settle: reconcile with nothing to move took {:.1} s (dead holder's TTL {TTL:?}), exit {}",
        t.elapsed().as_secs_f64(),
        r.code
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(v["moves"].as_array().map(Vec::len), Some(0), "{v}");
    assert!(t.elapsed() >= TTL, "it waited out the dead holder's lock");
    let (seen, holds, audit) = check_at_rest(&w);
    assert_eq!(seen.digest, before);
    assert_eq!(holds, Holds::Converged);
    assert_eq!(audit.abandoned, 1, "{audit:?}");
    let text = race::run_text(&w.b, &["history"]);
    assert!(!text.stdout.contains("UNSETTLED"), "{}", text.stdout);
}

/// `--lock-ttl` outside the bounds the lock honours is invalid input.
#[test]
fn a_lock_ttl_out_of_bounds_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_q, ch, _reg) = race::world(tmp.path(), "ttlbounds");
    for ttl in ["1s", "11m", "100ms"] {
        let r = ch.with(&["--lock-ttl", ttl]).run(&["status"]);
        assert_eq!(r.code, 2, "--lock-ttl {ttl}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains("must be between"), "{}", r.stderr);
    }
}
