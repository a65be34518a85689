//! The channel lock (issue 4; DESIGN.md "Concurrency"): a compare-and-swap on
//! `refs/mainline/lock/<key>` of a real bare git remote, driven through `GitLock` and the
//! executor with a controllable clock (expiry without sleeping), and through the CLI for what
//! `status` shows and what `--lock none` does.
//!
//! What each test guards: a holder that stops renewing is taken over only at its expiry, never
//! a millisecond before; a renewing holder keeps the lock past its original TTL; of several
//! simultaneous acquirers exactly one wins; a holder whose lock was taken over fails `renew`
//! with `Lost` — and an executor run in that position stops before it writes the channel and
//! leaves its intent for the holder to settle; the short path (lock + intent in one push,
//! outcome + release in another) ends right when the answer to either push is lost, whether
//! the push landed or not; release frees the lock; `status` names the holder, and says
//! `unlocked` with `--lock none`, which keeps working while the lock is held.

mod support;

use mainline::adapters::git::{GitBuilder, GitRepo};
use mainline::channel::cache::FactCache;
use mainline::channel::exec::{Executor, LockMode};
use mainline::channel::journal::{EntryKind, Journal};
use mainline::channel::lock::{GitLock, Held, LockError};
use mainline::channel::ports::{Cas, Clock, RefUpdate, Repo, RepoError, RepoWrapper};
use mainline::channel::ChannelConfig;
use mainline::error::{CliError, Kind};
use mainline_core::{CommitId, Request, Tag, Timestamp};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::Barrier;
use support::machine::{
    assert_chain_and_no_lock, behind, journal_records, layout_channel, machine, reconcile_locked,
    tag_digest, Behind,
};
use support::queue::{app, first_deploy, Channel, Queue};

/// 2024-05-01T12:00:00Z.
const T0: i64 = 1_714_564_800_000;

/// A clock the test moves; `sleep` advances it instead of waiting.
struct ManualClock(AtomicI64);

impl ManualClock {
    fn at(ms: i64) -> ManualClock {
        ManualClock(AtomicI64::new(ms))
    }
    fn set(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }
    fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
    fn sleep(&self, millis: u64) {
        self.advance(millis as i64);
    }
}

fn lock<'a>(
    repo: &'a dyn Repo,
    clock: &'a dyn Clock,
    config: &ChannelConfig,
    holder: &str,
    ttl_ms: i64,
    wait_ms: u64,
) -> GitLock<'a> {
    let mut l = GitLock::new(repo, clock, &config.key, "main", holder);
    l.ttl_ms = ttl_ms;
    l.wait_ms = wait_ms;
    l
}

/// Two machines, `a` and `b` (each with its own cache), on one fresh remote and channel.
struct Pair {
    _tmp: tempfile::TempDir,
    q: Queue,
    config: ChannelConfig,
    repo_a: GitRepo,
    repo_b: GitRepo,
}

fn pair() -> Pair {
    let tmp = tempfile::tempdir().expect("tempdir");
    let q = Queue::new(tmp.path());
    let channel = layout_channel(tmp.path());
    let (config, repo_a) = machine(&q, &channel, "a");
    let (_, repo_b) = machine(&q, &channel, "b");
    Pair {
        _tmp: tmp,
        q,
        config,
        repo_a,
        repo_b,
    }
}

fn holder_now(l: &GitLock<'_>) -> Option<Held> {
    l.current().expect("read the lock")
}

#[test]
fn a_holder_that_stops_renewing_is_taken_over_one_observed_ttl_later_never_before() {
    let Pair {
        _tmp,
        q,
        config,
        repo_a,
        repo_b,
    } = pair();
    let clock = ManualClock::at(T0);
    const TTL: i64 = 10_000;

    let a = lock(&repo_a, &clock, &config, "holder-a", TTL, 0);
    let held = a.acquire().expect("a free lock is acquired");
    assert_eq!(held.record.expires_at, Timestamp(T0 + TTL));
    assert_eq!(held.record.ttl_ms, Some(TTL), "the record declares its TTL");
    assert_eq!(
        q.remote_ref(&config.key.lock_ref()).as_deref(),
        Some(held.commit.as_str()),
        "the lock is a ref on the remote, pointing at the holder's record"
    );

    // B first looks at T0 and then watches: the takeover comes one TTL after B's first look.
    let b = lock(&repo_b, &clock, &config, "holder-b", TTL, 0);
    let mut refused = 0;
    for offset in [0, 1, TTL / 2, TTL - 1] {
        clock.set(T0 + offset);
        match b.acquire() {
            Err(LockError::Busy {
                holder,
                unchanged_ms,
                ttl_ms,
                ..
            }) => {
                assert_eq!(holder, "holder-a");
                assert_eq!(unchanged_ms, offset, "B measures from its own first look");
                assert_eq!(ttl_ms, TTL);
                refused += 1;
            }
            other => panic!("at +{offset} ms (before one observed TTL) B got {other:?}"),
        }
        assert_eq!(
            holder_now(&b).map(|h| h.commit),
            Some(held.commit.clone()),
            "a refused acquire leaves the holder's record in place"
        );
    }
    // A's own reckoning ends before anyone may take over: it keeps a margin back.
    assert!(
        a.remaining_ms(&held) <= 0,
        "at +TTL-1 A no longer counts on its lease ({} ms left)",
        a.remaining_ms(&held)
    );

    clock.set(T0 + TTL);
    let taken = b
        .acquire()
        .expect("a record unchanged for one TTL is taken over");
    assert_eq!(taken.record.holder, "holder-b");
    assert_eq!(
        holder_now(&a).map(|h| h.record.holder).as_deref(),
        Some("holder-b")
    );

    // The old holder finds out at its next renew, and its release does not free B's lock.
    let mut old = held.clone();
    match a.renew(&mut old) {
        Err(LockError::Lost { .. }) => {}
        other => panic!("renew after a takeover must fail Lost, got {other:?}"),
    }
    a.release(held).expect("releasing a lost lock is a no-op");
    assert_eq!(holder_now(&a).map(|h| h.commit), Some(taken.commit.clone()));
    eprintln!(
        "LOCK takeover: {refused} acquires refused before one observed TTL (+0, +1, +TTL/2, +TTL-1 ms), taken over at +TTL; old holder's renew: Lost"
    );

    // A waiting acquirer that arrives now (polling, the clock advancing by its pauses) watches
    // B's record for one TTL from its first look — no less, and within one pause more.
    let c = lock(&repo_a, &clock, &config, "holder-c", TTL, 120_000);
    let start = clock.now().millis();
    let got = c
        .acquire()
        .expect("a waiter takes over after one observed TTL");
    let waited = got.record.acquired_at.millis() - start;
    assert!(waited >= TTL, "taken after {waited} ms of watching");
    assert!(waited - TTL <= 1_000, "{waited}");
    eprintln!("LOCK waiter: watched B's record {waited} ms (TTL {TTL} ms), then took over");
}

/// Regression test (issue 10, item 10): a lock record is judged by the taker's own clock, never
/// by the times written in it. A holder whose clock runs hours ahead (its `expires_at` far in
/// the future) cannot freeze the channel past one TTL; one whose clock runs behind (its
/// `expires_at` long past) is not taken over before one TTL of watching; a declared TTL above
/// the cap counts as the cap.
#[test]
fn lock_expiry_ignores_the_holders_clock_and_caps_its_ttl() {
    let Pair {
        _tmp,
        config,
        repo_a,
        repo_b,
        ..
    } = pair();
    const TTL: i64 = 10_000;
    let mut seen = Vec::new();
    for (name, skew, declared) in [
        ("ahead-by-10h", 36_000_000i64, TTL),
        ("behind-by-10m", -600_000, TTL),
        ("ttl-of-a-year", 0, 365 * 86_400_000),
    ] {
        let holder_clock = ManualClock::at(T0 + skew);
        let taker_clock = ManualClock::at(T0);
        let a = lock(&repo_a, &holder_clock, &config, name, declared, 0);
        let held = a.acquire().expect("acquire");
        let effective = declared.min(mainline::channel::lock::MAX_DECLARED_TTL_MS);
        let b = lock(&repo_b, &taker_clock, &config, "taker", TTL, 0);
        assert!(
            matches!(b.acquire(), Err(LockError::Busy { .. })),
            "{name}: not taken at the taker's first look"
        );
        taker_clock.advance(effective - 1);
        assert!(
            matches!(b.acquire(), Err(LockError::Busy { .. })),
            "{name}: not taken 1 ms before one (capped) TTL of watching"
        );
        taker_clock.advance(1);
        let got = b
            .acquire()
            .unwrap_or_else(|e| panic!("{name}: taken after one (capped) TTL: {e}"));
        seen.push(format!(
            "{name}: taken over after {effective} ms of watching"
        ));
        b.release(got).expect("release");
        drop(held);
    }
    eprintln!("LOCK clocks: {}", seen.join("; "));
}

/// The write hold (`channel/fence.rs`): a holder about to write the registry declares two TTLs,
/// and a taker — judging by the record alone, as it must when the holder was killed — waits
/// out both before it takes over; the holder's own budget for an attempt leaves one TTL of
/// that hold for a late landing. A plain hold leaves no budget at all.
#[test]
fn a_write_hold_keeps_takers_out_for_two_ttls_and_leaves_one_for_a_late_landing() {
    let Pair {
        _tmp,
        config,
        repo_a,
        repo_b,
        ..
    } = pair();
    let clock = ManualClock::at(T0);
    const TTL: i64 = 10_000;
    let a = lock(&repo_a, &clock, &config, "writer", TTL, 0);
    let b = lock(&repo_b, &clock, &config, "taker", TTL, 0);
    let mut held = a.acquire().expect("acquire");
    assert!(
        a.write_budget_ms(&held) < 0,
        "a plain hold leaves no write budget: {}",
        a.write_budget_ms(&held)
    );
    a.renew_for_write(&mut held).expect("renew for a write");
    assert_eq!(
        held.record.ttl_ms,
        Some(2 * TTL),
        "the record declares two TTLs"
    );
    let budget = a.write_budget_ms(&held);
    assert!(
        (TTL / 2..TTL).contains(&budget),
        "an attempt may run for under one TTL (margin kept), at least half: {budget}"
    );
    // The writer is killed here: it never renews or releases again.
    assert!(matches!(b.acquire(), Err(LockError::Busy { .. })));
    clock.advance(budget + TTL);
    assert!(
        matches!(b.acquire(), Err(LockError::Busy { .. })),
        "not taken while an attempt admitted at the write hold could still land"
    );
    clock.advance(2 * TTL - (budget + TTL) - 1);
    assert!(
        matches!(b.acquire(), Err(LockError::Busy { .. })),
        "not taken 1 ms before two TTLs of watching"
    );
    clock.advance(1);
    let got = b.acquire().expect("taken after two TTLs of watching");
    b.release(got).expect("release");
}

/// A remote whose ref listing fails (as a 503 after retries would) on every other call once
/// armed.
struct FlakyListing<'a> {
    inner: &'a dyn Repo,
    armed: AtomicBool,
    views: AtomicUsize,
    failed: AtomicUsize,
}

impl RepoWrapper for FlakyListing<'_> {
    fn inner(&self) -> &dyn Repo {
        self.inner
    }
    fn view(&self, branch: &str) -> Result<mainline::channel::ports::RemoteView, RepoError> {
        let n = self.views.fetch_add(1, Ordering::SeqCst);
        if self.armed.load(Ordering::SeqCst) && n % 2 == 1 {
            self.failed.fetch_add(1, Ordering::SeqCst);
            return Err(RepoError::Unavailable(
                "sim: the git remote answered 503 after retries".into(),
            ));
        }
        self.inner.view(branch)
    }
}

/// Found by the simulator (`simulate --seed 1 --history 420209`): waiting out a dead holder's
/// write hold takes many polls, and an acquirer that gave up on the first failed one let a
/// flaky remote starve every writer in turn (52 minutes behind main). A read that fails while
/// the acquirer already watches a holder is read again; the watch keeps its start, so the
/// takeover still comes exactly one declared TTL after the first look, never before. A run
/// whose very first read fails still fails at once.
#[test]
fn a_failed_read_while_waiting_for_a_holder_does_not_end_the_wait() {
    let Pair {
        _tmp,
        config,
        repo_a,
        repo_b,
        ..
    } = pair();
    let clock = ManualClock::at(T0);
    const TTL: i64 = 10_000;
    let flaky = FlakyListing {
        inner: &repo_b,
        armed: AtomicBool::new(false),
        views: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
    };
    let a = lock(&repo_a, &clock, &config, "dead-writer", TTL, 0);
    let mut held = a.acquire().expect("acquire");
    a.renew_for_write(&mut held).expect("a write hold");
    // The writer dies here. The taker's first look succeeds; from then on every other read
    // fails.
    let b = lock(&flaky, &clock, &config, "taker", TTL, 3 * TTL as u64);
    let first_look = clock.now().millis();
    flaky.views.store(0, Ordering::SeqCst);
    flaky.armed.store(true, Ordering::SeqCst);
    let got = b.acquire().expect("taken over despite the failed reads");
    let waited = clock.now().millis() - first_look;
    assert!(
        flaky.failed.load(Ordering::SeqCst) >= 5,
        "reads failed during the wait: {}",
        flaky.failed.load(Ordering::SeqCst)
    );
    assert!(
        (2 * TTL..2 * TTL + 1_500).contains(&waited),
        "taken over one declared TTL (two TTLs) after the first look: {waited} ms"
    );
    b.release(got).expect("release");

    // A fresh run whose first read fails reports it at once.
    let c = lock(&flaky, &clock, &config, "fresh", TTL, 3 * TTL as u64);
    flaky.views.store(1, Ordering::SeqCst);
    let before = clock.now().millis();
    assert!(matches!(c.acquire(), Err(LockError::Repo { .. })));
    assert_eq!(
        clock.now().millis(),
        before,
        "no wait on an unreadable remote"
    );
}

/// How a take of the lock goes unanswered, once armed.
#[derive(Clone, Copy, PartialEq, Debug)]
enum NoAnswer {
    /// The first push lands and its answer is lost; later ones are answered.
    Landed,
    /// The push does not land (a 503 after retries), this many times, then pushes go through.
    NotLanded(usize),
}

/// A remote whose single-ref compare-and-swaps (how `acquire` takes the lock) get no answer.
struct UnansweredTake<'a> {
    inner: &'a dyn Repo,
    mode: NoAnswer,
    unanswered: AtomicUsize,
}

impl RepoWrapper for UnansweredTake<'_> {
    fn inner(&self) -> &dyn Repo {
        self.inner
    }
    fn cas_ref(
        &self,
        refname: &str,
        expected: Option<&CommitId>,
        new: Option<&CommitId>,
    ) -> Result<Cas, RepoError> {
        let lost = || RepoError::Unavailable("the git remote answered 503 after retries".into());
        match self.mode {
            NoAnswer::Landed if self.unanswered.load(Ordering::SeqCst) == 0 => {
                self.unanswered.fetch_add(1, Ordering::SeqCst);
                self.inner.cas_ref(refname, expected, new)?;
                Err(lost())
            }
            NoAnswer::NotLanded(n) if self.unanswered.load(Ordering::SeqCst) < n => {
                self.unanswered.fetch_add(1, Ordering::SeqCst);
                Err(lost())
            }
            _ => self.inner.cas_ref(refname, expected, new),
        }
    }
}

/// Taking a dead holder's lock over and getting no answer does not end the run: the remote
/// says whether the take landed. Landed: the taker holds the lock (the ref names its record),
/// at once. Not landed: it looks again and takes it on a later try. Never landing: it gives up
/// with the push's error when `--lock-wait` is spent — not before, and not never.
#[test]
fn an_unanswered_take_is_settled_by_reading_the_lock_again() {
    let Pair {
        _tmp,
        config,
        repo_a,
        repo_b,
        ..
    } = pair();
    let clock = ManualClock::at(T0);
    const TTL: i64 = 10_000;
    const WAIT: u64 = 3 * TTL as u64;
    for mode in [
        NoAnswer::Landed,
        NoAnswer::NotLanded(3),
        NoAnswer::NotLanded(usize::MAX),
    ] {
        // A holder that dies: its record is one TTL old before the taker first looks.
        let a = lock(&repo_a, &clock, &config, "dead-writer", TTL, 0);
        let dead = a.acquire().expect("acquire");
        clock.advance(TTL);
        let remote = UnansweredTake {
            inner: &repo_b,
            mode,
            unanswered: AtomicUsize::new(0),
        };
        let b = lock(&remote, &clock, &config, "taker", TTL, WAIT);
        let first_look = clock.now().millis();
        let got = b.acquire();
        let waited = clock.now().millis() - first_look;
        let unanswered = remote.unanswered.load(Ordering::SeqCst);
        let listed = b.current().expect("read the lock").map(|h| h.commit);
        match (mode, got) {
            (NoAnswer::Landed, Ok(held)) => {
                assert_eq!(unanswered, 1, "{mode:?}");
                assert_eq!(
                    listed.as_ref(),
                    Some(&held.commit),
                    "{mode:?}: the taker's record"
                );
                assert!(
                    (TTL..TTL + 1_500).contains(&waited),
                    "{mode:?}: taken one TTL after the first look, as if answered: {waited} ms"
                );
                b.release(held).expect("release");
            }
            (NoAnswer::NotLanded(3), Ok(held)) => {
                assert_eq!(unanswered, 3, "{mode:?}");
                assert_eq!(
                    listed.as_ref(),
                    Some(&held.commit),
                    "{mode:?}: the taker's record"
                );
                b.release(held).expect("release");
            }
            (NoAnswer::NotLanded(_), Err(LockError::Repo { .. })) => {
                assert!(unanswered > 3, "{mode:?}: tried {unanswered} times");
                assert!(
                    (WAIT as i64 - TTL..WAIT as i64 + 1_000).contains(&waited),
                    "{mode:?}: gave up after {waited} ms, not when the wait of {WAIT} ms was spent"
                );
                assert_eq!(listed, Some(dead.commit.clone()), "nothing was taken");
                clock.advance(TTL);
                let c = lock(&repo_b, &clock, &config, "next", TTL, WAIT);
                c.release(c.acquire().expect("the next writer takes it"))
                    .expect("release");
            }
            (mode, got) => panic!("{mode:?}: {:?}", got.map(|h| h.commit)),
        }
    }
}

#[test]
fn a_renewing_holder_keeps_the_lock_past_its_original_ttl() {
    let Pair {
        _tmp,
        config,
        repo_a,
        repo_b,
        ..
    } = pair();
    let clock = ManualClock::at(T0);
    const TTL: i64 = 10_000;
    let a = lock(&repo_a, &clock, &config, "renewer", TTL, 0);
    let b = lock(&repo_b, &clock, &config, "contender", TTL, 0);
    let mut held = a.acquire().expect("acquire");
    let mut renewals = 0;
    for _ in 0..5 {
        clock.advance(TTL * 8 / 10);
        a.renew(&mut held).expect("a live holder renews");
        renewals += 1;
        assert!(
            matches!(b.acquire(), Err(LockError::Busy { .. })),
            "a renewed lock is not taken over"
        );
    }
    let now = clock.now().millis();
    assert!(
        now > T0 + 3 * TTL,
        "the test ran well past the original TTL"
    );
    assert_eq!(
        held.record.acquired_at,
        Timestamp(T0),
        "renewal keeps acquired_at"
    );
    assert_eq!(held.record.expires_at, Timestamp(now + TTL));
    assert_eq!(holder_now(&b).map(|h| h.commit), Some(held.commit.clone()));

    // Renewal stops: the lock expires one TTL after the last renewal.
    clock.advance(TTL - 1);
    assert!(matches!(b.acquire(), Err(LockError::Busy { .. })));
    clock.advance(1);
    b.acquire().expect("taken over once renewals stop");
    eprintln!(
        "LOCK renewal: {renewals} renewals carried the lock to +{} ms (TTL {TTL} ms); taken over exactly one TTL after the last",
        now - T0
    );
}

#[test]
fn of_simultaneous_acquirers_exactly_one_wins() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let q = Queue::new(tmp.path());
    let channel = layout_channel(tmp.path());
    let clock = ManualClock::at(T0);
    const N: usize = 8;
    let machines: Vec<(ChannelConfig, GitRepo)> = (0..N)
        .map(|i| machine(&q, &channel, &format!("m{i}")))
        .collect();
    let barrier = Barrier::new(N);
    let results: Vec<Result<Held, LockError>> = std::thread::scope(|s| {
        let hs: Vec<_> = machines
            .iter()
            .enumerate()
            .map(|(i, (config, repo))| {
                let (barrier, clock) = (&barrier, &clock);
                s.spawn(move || {
                    let l = lock(repo, clock, config, &format!("writer-{i}"), 60_000, 0);
                    barrier.wait();
                    l.acquire()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    let winners: Vec<&Held> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    let busy = results
        .iter()
        .filter(|r| matches!(r, Err(LockError::Busy { .. })))
        .count();
    eprintln!(
        "LOCK race: {N} acquirers at once, {} won, {busy} found it busy",
        winners.len()
    );
    assert_eq!(winners.len(), 1, "exactly one acquirer wins: {results:?}");
    assert_eq!(busy, N - 1, "{results:?}");
    let (config, repo) = &machines[0];
    let l = lock(repo, &clock, config, "reader", 60_000, 0);
    assert_eq!(
        holder_now(&l).map(|h| h.commit),
        Some(winners[0].commit.clone())
    );
}

#[test]
fn release_frees_the_lock_for_the_next_writer_at_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let q = Queue::new(tmp.path());
    let channel = layout_channel(tmp.path());
    let (config, repo) = machine(&q, &channel, "a");
    let clock = ManualClock::at(T0);
    let a = lock(&repo, &clock, &config, "a", 60_000, 0);
    let b = lock(&repo, &clock, &config, "b", 60_000, 0);
    let held = a.acquire().expect("acquire");
    assert!(matches!(b.acquire(), Err(LockError::Busy { .. })));
    a.release(held).expect("release");
    assert!(holder_now(&a).is_none(), "released: no lock record");
    assert_eq!(q.refs_under("refs/mainline/lock/"), Vec::<String>::new());
    let held = b.acquire().expect("free again, no waiting");
    assert_eq!(held.record.holder, "b");
}

/// A `Repo` that lets a thief take the lock over right after the executor acquired it, as if
/// the run had stalled past its TTL (the clock jumps) and another writer came along.
struct StallAfterAcquire<'a> {
    inner: GitRepo,
    lock_ref: String,
    clock: &'a ManualClock,
    thief: GitRepo,
    config: ChannelConfig,
    ttl_ms: i64,
    armed: AtomicBool,
    stolen: AtomicBool,
    cas_calls: AtomicUsize,
}

impl StallAfterAcquire<'_> {
    /// After the run's lock was created: the run stalls past its TTL; another writer watches
    /// the lock for one TTL (its pauses advance the shared clock) and takes it over.
    fn stall_if_armed(&self, acquired: bool) {
        if acquired && self.armed.swap(false, Ordering::SeqCst) {
            let thief = lock(
                &self.thief,
                self.clock,
                &self.config,
                "thief",
                600_000,
                2 * self.ttl_ms as u64,
            );
            thief
                .acquire()
                .expect("the thief takes over the expired lock");
            self.stolen.store(true, Ordering::SeqCst);
        }
    }
}

impl RepoWrapper for StallAfterAcquire<'_> {
    fn inner(&self) -> &dyn Repo {
        &self.inner
    }
    fn cas_ref(
        &self,
        refname: &str,
        expected: Option<&CommitId>,
        new: Option<&CommitId>,
    ) -> Result<Cas, RepoError> {
        self.cas_calls.fetch_add(1, Ordering::SeqCst);
        let out = self.inner.cas_ref(refname, expected, new)?;
        let created = refname == self.lock_ref && expected.is_none() && new.is_some();
        self.stall_if_armed(created && out == Cas::Updated);
        Ok(out)
    }
    // The short path (lock and intent in one push) takes the lock here.
    fn cas_refs(&self, updates: &[RefUpdate]) -> Result<Cas, RepoError> {
        self.cas_calls.fetch_add(1, Ordering::SeqCst);
        let out = self.inner.cas_refs(updates)?;
        let created = updates
            .iter()
            .any(|u| u.refname == self.lock_ref && u.expected.is_none() && u.new.is_some());
        self.stall_if_armed(created && out == Cas::Updated);
        Ok(out)
    }
}

#[test]
fn a_run_whose_lock_was_taken_over_stops_before_writing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut q = Queue::new(tmp.path());
    let channel = layout_channel(tmp.path());
    let store = channel.trim_end_matches(":latest").to_owned();
    let ch = Channel::new(&store, &q, "cli");
    let before = first_deploy(&ch, &q);
    let m1 = q.push_main(&[("k8s/app.yaml", &app(5))], "main changes the deploy tree");

    let (config, inner) = machine(&q, &channel, "executor");
    let (_, thief) = machine(&q, &channel, "thief");
    let clock = ManualClock::at(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("time")
            .as_millis() as i64,
    );
    const TTL: i64 = 30_000;
    let repo = StallAfterAcquire {
        inner: inner.clone(),
        lock_ref: config.key.lock_ref(),
        clock: &clock,
        thief,
        config: config.clone(),
        ttl_ms: TTL,
        armed: AtomicBool::new(true),
        stolen: AtomicBool::new(false),
        cas_calls: AtomicUsize::new(0),
    };
    let store = mainline_store::open(&config.store, &Default::default()).expect("open the layout");
    let builder = GitBuilder::new(&inner, &config);
    let cache = FactCache::load(None, config.store.to_string());
    let journal_before = Journal::new(&inner, &clock, &config.key, "main")
        .records()
        .expect("journal")
        .len();
    // The same run, waiting for the lock up to `wait_ms` (by the manual clock).
    let executor = |wait_ms: u64| {
        Executor::new(
            &config,
            store.as_ref(),
            &repo,
            &builder,
            &clock,
            &cache,
            "stalled-run".into(),
        )
        .with_lock(LockMode::Git {
            ttl_ms: TTL,
            wait_ms,
        })
        .with_journal(true)
    };
    let exec = executor(0);

    // The executor's typed error, as the CLI renders it (kind = exit code).
    let err = CliError::from(
        exec.run(Request::Reconcile {
            force_restore: false,
        })
        .expect_err("a run that lost its lock must fail"),
    );
    assert!(
        repo.stolen.load(Ordering::SeqCst),
        "the takeover happened mid-run"
    );
    assert_eq!(err.kind, Kind::Conflict, "{err:?}");
    assert!(err.message.contains("lost"), "{}", err.message);
    let tag = |t: &str| t.parse::<Tag>().expect("tag");
    assert_eq!(
        store
            .resolve(&tag("latest"))
            .expect("resolve")
            .map(|d| d.to_string()),
        Some(before.clone()),
        "the channel was not written"
    );
    // The run packed main's artifact before it took the lock (packing never holds the lock,
    // issue 15), and took the lock and journaled its intent in one push; after the takeover it
    // recorded nothing more: settling its intent is the holder's (the next locked run's) job.
    assert!(
        store
            .resolve(&tag(&format!("sha-{m1}")))
            .expect("resolve")
            .is_some(),
        "main's artifact was packed before the lock was taken"
    );
    let records = Journal::new(&inner, &clock, &config.key, "main")
        .records()
        .expect("journal");
    let ours: Vec<_> = records[journal_before..]
        .iter()
        .filter(|r| r.entry.actor == "stalled-run")
        .map(|r| r.entry.kind)
        .collect();
    assert_eq!(
        ours,
        vec![EntryKind::Intent],
        "only the intent taken with the lock; no outcome recorded after the lock was lost: {:?}",
        records
            .iter()
            .map(|r| (&r.entry.kind, &r.entry.actor))
            .collect::<Vec<_>>()
    );
    let holder = lock(&inner, &clock, &config, "reader", TTL, 0);
    assert_eq!(
        holder_now(&holder).map(|h| h.record.holder).as_deref(),
        Some("thief"),
        "the loser did not release the thief's lock"
    );
    eprintln!(
        "LOCK lost mid-run: executor stopped with {:?} ({}); channel unchanged, intent left for the holder",
        err.kind, err.message
    );

    // Control: the same run with its lock intact (it waits out the thief's hold) writes.
    let exec = executor(1_200_000);
    let report = exec
        .run(Request::Reconcile {
            force_restore: false,
        })
        .expect("with the lock kept, the run writes");
    assert_eq!(report.moves.len(), 1, "{report:?}");
    assert_ne!(
        store
            .resolve(&tag("latest"))
            .expect("resolve")
            .map(|d| d.to_string()),
        Some(before)
    );
}

#[test]
fn status_names_the_holder_and_lock_none_runs_unlocked() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut q = Queue::new(tmp.path());
    let channel = layout_channel(tmp.path());
    let store = channel.trim_end_matches(":latest").to_owned();
    let ch = Channel::new(&store, &q, "cli");
    first_deploy(&ch, &q);
    assert!(
        q.refs_under("refs/mainline/lock/").is_empty(),
        "a finished writing run released its lock"
    );

    let s = ch.status(0);
    let lock_text = s["lock"].as_str().expect("lock");
    assert!(lock_text.starts_with("git: refs/mainline/lock/"), "{s}");
    assert!(lock_text.ends_with("(free)"), "{s}");

    // Someone holds the lock (a CI run, through the library with the real clock).
    let (config, repo) = machine(&q, &channel, "holder");
    let sys = mainline::channel::ports::SystemClock;
    let l = lock(&repo, &sys, &config, "ci-run-42@runner-7", 60_000, 0);
    let held = l.acquire().expect("acquire");
    let s = ch.status(0);
    assert_eq!(s["lock_holder"]["holder"], "ci-run-42@runner-7", "{s}");
    assert_eq!(
        s["lock_holder"]["expires_at"].as_i64(),
        Some(held.record.expires_at.millis())
    );
    assert!(
        s["lock"]
            .as_str()
            .is_some_and(|t| t.contains("held by ci-run-42@runner-7")),
        "{s}"
    );

    // A reconcile with nothing to write does not need the lock: it returns at once.
    let t = std::time::Instant::now();
    let r = ch.expect(&["reconcile"], 0);
    assert!(r["moves"].as_array().is_some_and(Vec::is_empty));
    assert!(
        t.elapsed().as_secs() < 10,
        "a read-only reconcile waited on the lock"
    );

    // Unlocked: status says so, and a writing run does not wait on the held lock.
    q.push_main(&[("k8s/app.yaml", &app(9))], "a change to deploy");
    let unlocked = ch.with(&["--lock", "none"]);
    let s = unlocked.status(3);
    assert!(
        s["lock"]
            .as_str()
            .is_some_and(|t| t.starts_with("none: unlocked")),
        "{s}"
    );
    assert!(s.get("lock_holder").is_none(), "{s}");
    let t = std::time::Instant::now();
    let r = unlocked.expect(&["reconcile"], 0);
    assert_eq!(r["moves"].as_array().map(Vec::len), Some(1), "{r}");
    assert!(t.elapsed().as_secs() < 10, "--lock none waited on the lock");
    assert_eq!(
        holder_now(&l).map(|h| h.commit),
        Some(held.commit.clone()),
        "an unlocked run leaves the lock alone"
    );

    // Released: free again. An expired hold is shown as such.
    l.release(held).expect("release");
    let s = ch.status(0);
    assert!(
        s["lock"].as_str().is_some_and(|t| t.ends_with("(free)")),
        "{s}"
    );
    let short = lock(&repo, &sys, &config, "crashed-run", 1, 0);
    short.acquire().expect("acquire");
    std::thread::sleep(std::time::Duration::from_millis(5));
    let s = ch.status(0);
    assert!(
        s["lock"]
            .as_str()
            .is_some_and(|t| t.contains("stale: crashed-run's record claims expiry")),
        "{s}"
    );
    eprintln!("LOCK status: held/free/expired holders shown; --lock none said unlocked and wrote while the lock was held");
}

/// A contender's view of the remote in which the holder renews (or releases) right between
/// the contender's `ls-remote` and its read of the record it listed — the ordinary timing of a
/// live holder, made deterministic.
struct HolderMovesBetweenReads<'a> {
    inner: GitRepo,
    lock_ref: String,
    holder: GitLock<'a>,
    held: std::sync::Mutex<Option<Held>>,
    release: bool,
    fired: AtomicBool,
}

impl RepoWrapper for HolderMovesBetweenReads<'_> {
    fn inner(&self) -> &dyn Repo {
        &self.inner
    }
    fn read_record(&self, refname: &str, commit: &CommitId) -> Result<String, RepoError> {
        if refname == self.lock_ref && !self.fired.swap(true, Ordering::SeqCst) {
            let mut held = self.held.lock().expect("held");
            let h = held.take().expect("the holder's lock");
            if self.release {
                self.holder.release(h).expect("the holder releases");
            } else {
                let mut h = h;
                self.holder.renew(&mut h).expect("the holder renews");
                *held = Some(h);
            }
        }
        self.inner.read_record(refname, commit)
    }
}

/// Regression test. A writer that finds the lock held must wait (Busy, or take it when free) — not fail because
/// the holder renewed or released between its two reads of the lock.
#[test]
fn an_acquirer_is_not_broken_by_the_holder_renewing_or_releasing_between_its_reads() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let q = Queue::new(tmp.path());
    let channel = layout_channel(tmp.path());
    let clock = ManualClock::at(T0);
    let mut outcomes = Vec::new();
    for (i, release) in [false, true].into_iter().enumerate() {
        let (config, holder_repo) = machine(&q, &channel, &format!("holder-{i}"));
        let (_, contender_repo) = machine(&q, &channel, &format!("contender-{i}"));
        let holder = lock(&holder_repo, &clock, &config, "holder", 60_000, 0);
        let held = holder.acquire().expect("the holder takes the lock");
        let repo = HolderMovesBetweenReads {
            inner: contender_repo,
            lock_ref: config.key.lock_ref(),
            holder: lock(&holder_repo, &clock, &config, "holder", 60_000, 0),
            held: std::sync::Mutex::new(Some(held)),
            release,
            fired: AtomicBool::new(false),
        };
        let contender = lock(&repo, &clock, &config, "contender", 60_000, 0);
        let got = contender.acquire();
        eprintln!(
            "LOCK read race (holder {} between ls-remote and record read): contender got {got:?}",
            if release { "released" } else { "renewed" }
        );
        // Regression: a lock record has no parents, so the record listed by ls-remote is
        // unreachable once the holder renewed or released; `current` used to fail with
        // "commit <sha> is not on the git remote" (exit 6 for 1-3 of 40 locked runs in
        // concurrency.rs). Fixed in d7ab406 (`current` re-lists).
        let ok = match (&got, release) {
            (Err(LockError::Busy { holder, .. }), false) => holder == "holder",
            (Ok(h), true) => h.record.holder == "contender",
            _ => false,
        };
        outcomes.push((release, ok, format!("{got:?}")));
        if let Ok(h) = got {
            contender.release(h).expect("release");
        } else if let Some(h) = repo.held.lock().expect("held").take() {
            repo.holder.release(h).expect("release");
        }
    }
    assert!(
        outcomes.iter().all(|(_, ok, _)| *ok),
        "renewed → Busy, released → acquired; got {outcomes:?}"
    );
}

/// A remote whose answer to the next lock swap is lost: the swap lands (`lands`) or not, and
/// the caller hears only "unavailable".
struct LostSwapAnswer {
    inner: GitRepo,
    lock_ref: String,
    lands: bool,
    armed: AtomicBool,
}

impl RepoWrapper for LostSwapAnswer {
    fn inner(&self) -> &dyn Repo {
        &self.inner
    }
    fn cas_ref(
        &self,
        refname: &str,
        expected: Option<&CommitId>,
        new: Option<&CommitId>,
    ) -> Result<Cas, RepoError> {
        if refname == self.lock_ref && self.armed.swap(false, Ordering::SeqCst) {
            if self.lands {
                self.inner.cas_ref(refname, expected, new)?;
            }
            return Err(RepoError::Unavailable("the answer was lost".into()));
        }
        self.inner.cas_ref(refname, expected, new)
    }
}

/// Regression test (found by the simulator's lost-answer faults): a renewal whose answer is
/// lost is judged by what the remote holds. It landed → renewed; it did not → still held, the
/// hold counting from the last sure renewal; never reported as a lost lock.
#[test]
fn a_renewal_whose_answer_is_lost_is_judged_by_the_remote() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let q = Queue::new(tmp.path());
    let channel = layout_channel(tmp.path());
    let clock = ManualClock::at(T0);
    for lands in [true, false] {
        let (config, inner) = machine(&q, &channel, &format!("m-{lands}"));
        let repo = LostSwapAnswer {
            inner,
            lock_ref: config.key.lock_ref(),
            lands,
            armed: AtomicBool::new(false),
        };
        let l = lock(&repo, &clock, &config, "renewer", 10_000, 0);
        let mut held = l.acquire().expect("acquire");
        let before = held.clone();
        clock.advance(6_000);
        repo.armed.store(true, Ordering::SeqCst);
        let renewed = l.renew(&mut held);
        let on_remote = holder_now(&l).map(|h| h.commit);
        if lands {
            assert!(renewed.is_ok(), "landed: {renewed:?}");
            assert_ne!(held.commit, before.commit);
            assert!(l.remaining_ms(&held) > l.remaining_ms(&before));
        } else {
            assert!(
                matches!(renewed, Err(LockError::Repo { .. })),
                "not landed: {renewed:?}"
            );
            assert_eq!(held.commit, before.commit, "the hold is unchanged");
        }
        assert_eq!(on_remote, Some(held.commit.clone()), "lands={lands}");
        l.release(held).expect("release");
    }
}

/// A remote that loses the answer to its `nth` multi-ref push (1: the short path's lock +
/// intent, 2: its outcome + release); the push lands (`lands`) or not.
struct LostMultiAnswer {
    inner: GitRepo,
    nth: usize,
    lands: bool,
    calls: AtomicUsize,
}

impl RepoWrapper for LostMultiAnswer {
    fn inner(&self) -> &dyn Repo {
        &self.inner
    }
    fn cas_refs(&self, updates: &[RefUpdate]) -> Result<Cas, RepoError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) + 1 == self.nth {
            if self.lands {
                self.inner.cas_refs(updates)?;
            }
            return Err(RepoError::Unavailable("the answer was lost".into()));
        }
        self.inner.cas_refs(updates)
    }
}

/// Broken on purpose, each push's lost answer: the run still moves the channel once, records
/// exactly one intent and one `moved` that settles it (never twice, never `abandoned`), the
/// chain verifies, and no lock is left behind.
#[test]
fn the_short_path_ends_right_when_an_answer_to_its_pushes_is_lost() {
    for (nth, lands) in [(1, true), (1, false), (2, true), (2, false)] {
        let Behind {
            tmp: _tmp,
            queue: q,
            channel,
            before,
        } = behind();
        let (config, inner) = machine(&q, &channel, "runner");
        let repo = LostMultiAnswer {
            inner: inner.clone(),
            nth,
            lands,
            calls: AtomicUsize::new(0),
        };
        let journal_before = journal_records(&inner, &config).len();
        let report = reconcile_locked(&config, &repo, &inner, "lossy-run", false)
            .unwrap_or_else(|e| panic!("push {nth} lost (landed: {lands}): {e:?}"));
        let case = format!("push {nth} lost its answer (landed: {lands})");
        assert_eq!(report.moves.len(), 1, "{case}: {report:?}");
        assert!(
            repo.calls.load(Ordering::SeqCst) >= nth,
            "{case}: the short path was taken"
        );
        let now = tag_digest(&config, "latest");
        assert_ne!(now, Some(before.clone()), "{case}: the channel moved");
        let records = journal_records(&inner, &config);
        let ours: Vec<_> = records[journal_before..]
            .iter()
            .map(|r| (r.entry.kind, r.entry.seq, r.entry.intent))
            .collect();
        let intent_seq = records[journal_before].entry.seq;
        assert_eq!(
            ours,
            vec![
                (EntryKind::Intent, intent_seq, None),
                (EntryKind::Moved, intent_seq + 1, Some(intent_seq))
            ],
            "{case}: one intent, settled once"
        );
        assert_chain_and_no_lock(&q, &records, &case);
    }
}
