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
    c.skew_allowance = Duration::from_secs(2);
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
fn takeover_only_after_expiry_plus_skew() {
    let fake = FakeKube::start();
    let clock = ManualClock::at(T0);
    let a = lock(&fake, &clock, "dead-runner");
    let held_a = a.acquire().expect("free");
    let b = lock(&fake, &clock, "guard");

    clock.advance(Duration::from_secs(61)); // expired, but within the 2 s skew allowance
    assert!(matches!(b.acquire(), Err(LockError::Busy { .. })));

    clock.advance(Duration::from_secs(1)); // 62 s: past expiry + skew
    let held_b = b.acquire().expect("takeover after expiry");
    assert_eq!(held_b.holder.holder, b.identity());
    assert_eq!(
        held_b.holder.transitions, 1,
        "leaseTransitions counts the change of holder"
    );
    assert_eq!(held_b.holder.acquired_at, Some(T0.plus_millis(62_000)));

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
