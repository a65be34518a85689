//! The channel lock on a coordination.k8s.io Lease, against the fake API server: create,
//! busy, takeover after expiry, renew, release, and 409 on a stale update handled as a lost
//! race (never applied). Time is a shared ManualClock, so expiry needs no waiting.

mod support;

use mainline_core::Timestamp;
use mainline_kube::api::LEASE;
use mainline_kube::clock::ManualClock;
use mainline_kube::fake::{fixture, FakeKube};
use mainline_kube::lease::{channel_lease_name, rules, LeaseApi, Write};
use mainline_kube::{ChannelLock, Clock, ErrorKind, LeaseLock, LeaseLockConfig, LockError};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::TOKEN;

const T0: Timestamp = Timestamp(1_750_000_000_000);

fn config(holder: &str) -> LeaseLockConfig {
    let mut c = LeaseLockConfig::new("mainline", "mainline-lock-prod", holder);
    c.ttl = Duration::from_secs(60);
    c.wait = Duration::ZERO;
    c
}

fn lock(fake: &FakeKube, clock: &ManualClock, holder: &str) -> LeaseLock {
    LeaseLock::new(fake.client(TOKEN), Arc::new(clock.clone()), config(holder))
        .expect("valid config")
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

#[test]
fn acquire_creates_the_lease_with_the_documented_fields() {
    let fake = FakeKube::start();
    let clock = ManualClock::at(T0);
    let a = lock(&fake, &clock, "ci@run-1");
    let held = a.acquire().expect("free lock");
    assert_eq!(held.holder.holder, a.identity());
    assert!(a.identity().starts_with("ci@run-1/"));
    assert_eq!(held.holder.expires_at, T0.plus_millis(60_000));
    assert_eq!(held.lease, "mainline/mainline-lock-prod");

    let stored = fake
        .object(&LEASE, "mainline", "mainline-lock-prod")
        .expect("created");
    assert_eq!(stored["apiVersion"], json!("coordination.k8s.io/v1"));
    assert_eq!(stored["spec"]["holderIdentity"], json!(a.identity()));
    assert_eq!(stored["spec"]["leaseDurationSeconds"], json!(60));
    assert_eq!(stored["spec"]["leaseTransitions"], json!(0));
    // MicroTime: RFC 3339 with six fractional digits.
    assert_eq!(
        stored["spec"]["renewTime"],
        json!("2025-06-15T15:06:40.000000Z")
    );
    assert_eq!(stored["spec"]["acquireTime"], stored["spec"]["renewTime"]);
    let post = fake
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .expect("created with POST");
    assert_eq!(
        post.path,
        "/apis/coordination.k8s.io/v1/namespaces/mainline/leases"
    );
    assert_eq!(post.content_type.as_deref(), Some("application/json"));
    assert_eq!(post.status, 201);
}

#[test]
fn a_live_holder_makes_others_wait_then_give_up_naming_the_holder() {
    let fake = FakeKube::start();
    let clock = ManualClock::at(T0);
    let a = lock(&fake, &clock, "guard");
    a.acquire().expect("free");
    let mut cfg = config("ci@run-2");
    cfg.wait = Duration::from_secs(10);
    let b = LeaseLock::new(fake.client(TOKEN), Arc::new(clock.clone()), cfg).expect("valid");
    let err = b.acquire().expect_err("held for 60 s");
    let LockError::Busy {
        holder,
        expires_at,
        waited_ms,
        ..
    } = &err
    else {
        panic!("expected Busy, got {err:?}");
    };
    assert_eq!(holder, a.identity());
    assert_eq!(*expires_at, T0.plus_millis(60_000));
    assert!(
        *waited_ms >= 10_000,
        "waited (on the manual clock) {waited_ms} ms"
    );
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.to_string().contains("is held by guard/"), "{err}");
    assert_eq!(
        clock.now(),
        T0.plus_millis(*waited_ms as i64),
        "it slept, it did not spin"
    );
}

#[test]
fn takeover_only_after_watching_the_record_unchanged_for_the_duration() {
    let fake = FakeKube::start();
    let clock = ManualClock::at(T0);
    let a = lock(&fake, &clock, "dead-runner");
    let held_a = a.acquire().expect("free");
    let b = lock(&fake, &clock, "guard");

    // b first sees a's record now; a duration is counted from this look, not from renewTime.
    assert!(matches!(b.acquire(), Err(LockError::Busy { .. })));
    clock.advance(Duration::from_secs(59));
    assert!(matches!(b.acquire(), Err(LockError::Busy { .. })));

    clock.advance(Duration::from_secs(1)); // 60 s watched unchanged
    let held_b = b.acquire().expect("takeover after a duration unchanged");
    assert_eq!(held_b.holder.acquired_at, Some(T0.plus_millis(60_000)));
    let held_b = b.acquire().expect("takeover after expiry");
    assert_eq!(held_b.holder.holder, b.identity());
    assert_eq!(
        held_b.holder.transitions, 1,
        "leaseTransitions counts the change of holder"
    );

    // The dead holder wakes up: its renew is a stale update, a lost race, never applied.
    let mut stale = held_a;
    let err = a.renew(&mut stale).expect_err("lost");
    let LockError::Lost { holder, .. } = &err else {
        panic!("expected Lost, got {err:?}")
    };
    assert_eq!(holder.as_deref(), Some(b.identity()));
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(err.to_string().contains("stop before writing"), "{err}");
    let stored = fake
        .object(&LEASE, "mainline", "mainline-lock-prod")
        .expect("lease");
    assert_eq!(
        stored["spec"]["holderIdentity"],
        json!(b.identity()),
        "b still holds it"
    );
    let conflicts = fake
        .requests()
        .iter()
        .filter(|r| r.method == "PUT" && r.status == 409)
        .count();
    assert_eq!(conflicts, 1, "the stale renew got exactly one 409");
}

#[test]
fn renew_extends_and_keeps_acquire_time() {
    let fake = FakeKube::start();
    let clock = ManualClock::at(T0);
    let a = lock(&fake, &clock, "guard");
    let mut held = a.acquire().expect("free");
    clock.advance(Duration::from_secs(20));
    a.renew(&mut held).expect("renew");
    assert_eq!(held.holder.expires_at, T0.plus_millis(80_000));
    assert_eq!(held.holder.acquired_at, Some(T0));
    assert_eq!(held.holder.renewed_at, Some(T0.plus_millis(20_000)));
    assert_eq!(held.holder.transitions, 0);
    let put = fake
        .requests()
        .into_iter()
        .find(|r| r.method == "PUT")
        .expect("renew is a PUT");
    assert_eq!(
        put.path,
        "/apis/coordination.k8s.io/v1/namespaces/mainline/leases/mainline-lock-prod"
    );
}

/// The write hold on a Lease: `renew_for` declares the longer `leaseDurationSeconds`, and a
/// taker (the holder killed right after) waits out that duration, not the configured TTL.
#[test]
fn renew_for_declares_a_longer_duration_that_takers_wait_out() {
    let fake = FakeKube::start();
    let clock = ManualClock::at(T0);
    let a = lock(&fake, &clock, "writer");
    let mut held = a.acquire().expect("free");
    a.renew_for(&mut held, Duration::from_secs(120))
        .expect("renew for a write");
    let stored = fake
        .object(&LEASE, "mainline", "mainline-lock-prod")
        .expect("lease");
    assert_eq!(stored["spec"]["leaseDurationSeconds"], json!(120));
    assert_eq!(held.holder.expires_at, T0.plus_millis(120_000));
    let b = lock(&fake, &clock, "taker");
    assert!(matches!(b.acquire(), Err(LockError::Busy { .. })));
    clock.advance(Duration::from_secs(119));
    assert!(
        matches!(b.acquire(), Err(LockError::Busy { .. })),
        "not taken after the configured 60 s, nor at 119 s"
    );
    clock.advance(Duration::from_secs(1));
    b.acquire().expect("taken after the declared 120 s");
}

#[test]
fn renew_whose_previous_answer_was_lost_rereads_and_still_holds() {
    // Our earlier renew landed but we kept the older handle (say its answer timed out): the
    // next renew gets 409, re-reads, sees our own identity, and swaps from the fresh read.
    let fake = FakeKube::start();
    let clock = ManualClock::at(T0);
    let a = lock(&fake, &clock, "guard");
    let mut held = a.acquire().expect("free");
    let mut older = held.clone();
    a.renew(&mut held).expect("renew");
    clock.advance(Duration::from_secs(5));
    a.renew(&mut older).expect("still ours");
    assert_eq!(older.holder.renewed_at, Some(T0.plus_millis(5_000)));
}

#[test]
fn release_frees_the_lock_for_the_next_writer_at_once() {
    let fake = FakeKube::start();
    let clock = ManualClock::at(T0);
    let a = lock(&fake, &clock, "ci@run-1");
    let b = lock(&fake, &clock, "ci@run-2");
    let held = a.acquire().expect("free");
    ChannelLock::release(&a, held).expect("release");
    assert_eq!(a.current().expect("read"), None, "no holder after release");
    let held_b = b.acquire().expect("free again, no expiry wait");
    assert_eq!(held_b.holder.transitions, 1);
    let current = b.current().expect("read").expect("held");
    assert_eq!(current.holder, b.identity());
}

#[test]
fn stale_update_gets_409_and_is_never_applied() {
    // Two writers read the same resourceVersion; the second write must lose.
    let fake = FakeKube::start();
    let client = fake.client(TOKEN);
    let api = LeaseApi::new(client, "mainline", "race");
    let d = soon();
    let first = match api
        .create(&rules::claim(None, "a", 30, T0), d)
        .expect("create")
    {
        Write::Done(o) => o,
        Write::LostRace => panic!("nobody else created it"),
    };
    let read_by_x = api.get(d).expect("get").expect("exists");
    let read_by_y = read_by_x.clone();
    assert_eq!(read_by_x, first);
    let x = api
        .update(
            &read_by_x,
            &rules::claim(Some(&read_by_x.record), "x", 30, T0),
            d,
        )
        .expect("x");
    assert!(matches!(x, Write::Done(_)));
    let y = api
        .update(
            &read_by_y,
            &rules::claim(Some(&read_by_y.record), "y", 30, T0),
            d,
        )
        .expect("y");
    assert_eq!(y, Write::LostRace);
    let stored = fake.object(&LEASE, "mainline", "race").expect("lease");
    assert_eq!(
        stored["spec"]["holderIdentity"],
        json!("x"),
        "y's stale write was not applied"
    );
    // A second create is a lost race too (409 AlreadyExists).
    assert_eq!(
        api.create(&rules::claim(None, "z", 30, T0), d)
            .expect("create"),
        Write::LostRace
    );
}

#[test]
fn update_keeps_fields_this_crate_does_not_know() {
    let fake = FakeKube::start();
    let client = fake.client(TOKEN);
    let mut lease = fixture("kube/lease");
    lease["metadata"]["labels"] = json!({"team": "platform"});
    lease["spec"]["strategy"] = json!("OldestEmulationVersion");
    fake.put_object(&LEASE, lease);
    let api = LeaseApi::new(client, "mainline", "mainline-guard-leader");
    let current = api.get(soon()).expect("get").expect("exists");
    assert_eq!(
        current.record.holder(),
        Some("mainline-guard-7c9d8f6b5-x2x9q")
    );
    assert_eq!(current.record.duration_secs, Some(15));
    assert_eq!(current.record.transitions, 3);
    // renewTime 2025-06-14T11:23:30.123456Z, to the millisecond.
    assert_eq!(
        current.record.renew_time,
        Some(Timestamp(1_749_900_210_123))
    );
    api.update(&current, &rules::release(&current.record, T0), soon())
        .expect("release");
    let stored = fake
        .object(&LEASE, "mainline", "mainline-guard-leader")
        .expect("lease");
    assert_eq!(stored["metadata"]["labels"]["team"], json!("platform"));
    assert_eq!(stored["spec"]["strategy"], json!("OldestEmulationVersion"));
    assert!(
        stored["spec"].get("holderIdentity").is_none(),
        "released: no holder"
    );
    assert_eq!(stored["spec"]["leaseDurationSeconds"], json!(1));
    assert_eq!(stored["spec"]["leaseTransitions"], json!(3));
}

#[test]
fn lease_names_are_valid_and_distinct_for_any_channel_key() {
    let keys = [
        "127.0.0.1_5000/acme/app/latest",
        "127.0.0.1-5000/acme/app/latest",
        "ghcr.io/Acme/App/Prod",
        "layout/store/latest",
        "///",
        &"x".repeat(400),
    ];
    let names: Vec<String> = keys.iter().map(|k| channel_lease_name(k)).collect();
    for (k, n) in keys.iter().zip(&names) {
        mainline_kube::ObjectRef::new("mainline", n)
            .unwrap_or_else(|e| panic!("{k:?} -> {n:?}: {e}"));
        assert!(n.starts_with("mainline-lock-"), "{n}");
    }
    assert_eq!(
        names[0].len(),
        "mainline-lock-127-0-0-1-5000-acme-app-latest-".len() + 10
    );
    assert_ne!(names[0], names[1], "keys that sanitise alike stay apart");
    let unique: std::collections::BTreeSet<_> = names.iter().collect();
    assert_eq!(unique.len(), names.len());
}

#[test]
fn an_update_without_resource_version_is_refused_422_as_the_real_server_does() {
    // Leases allow no unconditional update (tests/real_lease.rs checks the real server).
    let fake = FakeKube::start();
    fake.accept_token(TOKEN);
    fake.put_object(&LEASE, fixture("kube/lease"));
    let (ns, name) = ("mainline", "mainline-guard-leader");
    let mut body = fake
        .object(&LEASE, ns, name)
        .expect("the fixture Lease is seeded");
    body["metadata"]
        .as_object_mut()
        .expect("metadata")
        .remove("resourceVersion");
    body["spec"]["holderIdentity"] = json!("last-writer");
    let resp = reqwest::blocking::Client::new()
        .put(format!("{}{}", fake.url(), LEASE.object_path(ns, name)))
        .bearer_auth(TOKEN)
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .expect("the fake answers");
    assert_eq!(resp.status().as_u16(), 422);
    let status: serde_json::Value =
        serde_json::from_str(&resp.text().expect("body")).expect("a Status");
    assert_eq!(status["reason"], json!("Invalid"), "{status}");
    assert_ne!(
        fake.object(&LEASE, ns, name).expect("lease")["spec"]["holderIdentity"],
        json!("last-writer"),
        "nothing was written"
    );
}

/// A clock whose wall time is `by_ms` away from `inner`'s, ticking with it (same monotonic
/// time): another machine whose clock is wrong.
struct Offset<C> {
    inner: C,
    by_ms: i64,
}

impl<C: Clock> Clock for Offset<C> {
    fn now(&self) -> Timestamp {
        self.inner.now().plus_millis(self.by_ms)
    }
    fn monotonic_ms(&self) -> i64 {
        self.inner.monotonic_ms()
    }
    fn sleep(&self, millis: u64) {
        self.inner.sleep(millis)
    }
}

const TEN_MINUTES_MS: i64 = 600_000;

fn lock_on(fake: &FakeKube, clock: impl Clock + 'static, holder: &str) -> LeaseLock {
    LeaseLock::new(fake.client(TOKEN), Arc::new(clock), config(holder)).expect("valid config")
}

#[test]
fn a_taker_whose_clock_is_ten_minutes_fast_never_steals_a_live_lock() {
    let fake = FakeKube::start();
    let clock = ManualClock::at(T0);
    let a = lock(&fake, &clock, "honest");
    let fast = lock_on(
        &fake,
        Offset {
            inner: clock.clone(),
            by_ms: TEN_MINUTES_MS,
        },
        "fast",
    );
    let mut held = a.acquire().expect("free");
    // By the fast clock, a's renewTime + 60 s is nine minutes past; it must not matter.
    for round in 0..20 {
        let err = fast.acquire().expect_err("a renews every 30 s: never free");
        assert!(
            matches!(err, LockError::Busy { .. }),
            "round {round}: {err:?}"
        );
        clock.advance(Duration::from_secs(30));
        a.renew(&mut held).expect("a still holds");
    }
    let stored = fake
        .object(&LEASE, "mainline", "mainline-lock-prod")
        .expect("lease");
    assert_eq!(stored["spec"]["holderIdentity"], json!(a.identity()));
    assert_eq!(
        stored["spec"]["leaseTransitions"],
        json!(0),
        "never changed hands"
    );

    // a dies (stops renewing): the fast taker gets it after one duration of watching, not
    // sooner, and not ten minutes later.
    fast.acquire().expect_err("first look at a's last renew");
    clock.advance(Duration::from_secs(59));
    fast.acquire().expect_err("59 s unchanged");
    clock.advance(Duration::from_secs(1));
    let taken = fast.acquire().expect("60 s unchanged: a is dead");
    assert_eq!(taken.holder.transitions, 1);
    let err = a.renew(&mut held).expect_err("a lost it");
    assert!(matches!(err, LockError::Lost { .. }), "{err:?}");
}

#[test]
fn a_holder_whose_clock_is_ten_minutes_fast_is_still_taken_over_after_one_duration() {
    let fake = FakeKube::start();
    let clock = ManualClock::at(T0);
    let fast = lock_on(
        &fake,
        Offset {
            inner: clock.clone(),
            by_ms: TEN_MINUTES_MS,
        },
        "fast-and-dead",
    );
    let slow = lock_on(
        &fake,
        Offset {
            inner: clock.clone(),
            by_ms: -TEN_MINUTES_MS,
        },
        "slow",
    );
    fast.acquire().expect("free");
    // By the slow clock, the fast holder's renewTime is twenty minutes in the future.
    let err = slow.acquire().expect_err("first look");
    assert!(
        err.to_string().contains("is held by fast-and-dead/"),
        "{err}"
    );
    clock.advance(Duration::from_secs(59));
    slow.acquire().expect_err("59 s unchanged");
    clock.advance(Duration::from_secs(1));
    slow.acquire().expect("one duration unchanged: taken over");
}

#[test]
fn two_takers_ten_minutes_apart_racing_on_a_shared_clock_never_both_hold() {
    // Both poll, hold for 10 s, release or die, over twenty minutes of manual time; after
    // every step at most one believes it holds, and the Lease names that one.
    let fake = FakeKube::start();
    let clock = ManualClock::at(T0);
    let takers = [
        lock(&fake, &clock, "right"),
        lock_on(
            &fake,
            Offset {
                inner: clock.clone(),
                by_ms: TEN_MINUTES_MS,
            },
            "fast",
        ),
    ];
    let mut held: [Option<mainline_kube::LockHandle>; 2] = [None, None];
    let mut takeovers = 0;
    for step in 0..240u32 {
        let i = (step % 2) as usize;
        match held[i].take() {
            // Dies silently: forgets its hold without releasing (a killed CI runner).
            Some(_) if step % 7 == 0 => {}
            Some(h) if step % 5 == 0 => takers[i].release(h).expect("release"),
            Some(mut h) => match takers[i].renew(&mut h) {
                Ok(()) => held[i] = Some(h),
                Err(LockError::Lost { .. }) => {}
                Err(e) => panic!("renew: {e}"),
            },
            None => match takers[i].acquire() {
                Ok(h) => {
                    takeovers += 1;
                    held[i] = Some(h)
                }
                Err(LockError::Busy { .. }) => {}
                Err(e) => panic!("acquire: {e}"),
            },
        }
        assert!(
            held.iter().filter(|h| h.is_some()).count() <= 1,
            "step {step}: both hold"
        );
        if let Some(j) = held.iter().position(Option::is_some) {
            let stored = fake
                .object(&LEASE, "mainline", "mainline-lock-prod")
                .expect("lease");
            assert_eq!(
                stored["spec"]["holderIdentity"],
                json!(takers[j].identity())
            );
        }
        clock.advance(Duration::from_secs(5));
    }
    assert!(takeovers >= 4, "the lock changed hands {takeovers} times");
}

#[test]
fn judge_reads_only_the_watched_time_never_the_records_times() {
    let far_future = Timestamp(T0.millis() + 10 * TEN_MINUTES_MS);
    let record = |renew: Timestamp| rules::LeaseRecord {
        holder: Some("other".into()),
        duration_secs: Some(15),
        acquire_time: Some(renew),
        renew_time: Some(renew),
        transitions: 0,
    };
    for renew in [Timestamp(0), T0, far_future] {
        let r = record(renew);
        assert!(matches!(
            rules::judge(&r, "me", 14_999, 60_000),
            rules::Judgement::Held {
                takeover_in_ms: 1,
                ..
            }
        ));
        assert!(matches!(
            rules::judge(&r, "me", 15_000, 60_000),
            rules::Judgement::Expired { .. }
        ));
        assert!(matches!(
            rules::judge(&r, "other", 0, 60_000),
            rules::Judgement::Ours { .. }
        ));
    }
    // A hostile duration is capped; a missing one takes the caller's default.
    let mut r = record(T0);
    r.duration_secs = Some(i64::MAX);
    assert!(matches!(
        rules::judge(&r, "me", rules::MAX_DURATION_MS, 60_000),
        rules::Judgement::Expired { .. }
    ));
    r.duration_secs = None;
    assert!(matches!(
        rules::judge(&r, "me", 59_999, 60_000),
        rules::Judgement::Held { .. }
    ));
    // The watch restarts whenever any part of the record's key changes.
    let mut slot = None;
    let key = |rv: &str, renew| record(renew).key(rv);
    assert_eq!(rules::Observation::watch(&mut slot, key("1", T0), 100), 0);
    assert_eq!(
        rules::Observation::watch(&mut slot, key("1", T0), 5_100),
        5_000
    );
    assert_eq!(rules::Observation::watch(&mut slot, key("2", T0), 6_000), 0);
    assert_eq!(
        rules::Observation::watch(&mut slot, key("2", far_future), 7_000),
        0
    );
    assert_eq!(
        rules::Observation::watch(&mut slot, key("2", far_future), 9_000),
        2_000
    );
}
