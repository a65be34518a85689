//! Leader election for guard replicas on one Lease, against the fake API server: with a manual
//! clock (exact rules), and with two replicas on threads on the real clock (exactly one leader
//! at any instant; a standby takes over within one lease duration plus one retry period after
//! the leader stops renewing). Measured times are printed (`--nocapture`).

mod support;

use mainline_core::Timestamp;
use mainline_kube::api::LEASE;
use mainline_kube::clock::ManualClock;
use mainline_kube::fake::FakeKube;
use mainline_kube::{
    Clock, ElectionConfig, LeaderElectionConfig, LeaderElector, Leadership, SystemClock,
};
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::TOKEN;

fn cfg(identity: &str, lease: u64, renew_ms: u64, retry_ms: u64) -> ElectionConfig {
    let mut c = ElectionConfig::new("mainline", "mainline-guard-leader", identity);
    c.lease_duration = Duration::from_secs(lease);
    c.renew_deadline = Duration::from_millis(renew_ms);
    c.retry_period = Duration::from_millis(retry_ms);
    c.request_timeout = Duration::from_secs(2);
    c
}

#[test]
fn follower_takes_over_only_after_a_full_lease_duration_on_its_own_clock() {
    let fake = FakeKube::start();
    let clock = ManualClock::at(Timestamp(1_750_000_000_000));
    let shared: Arc<dyn Clock> = Arc::new(clock.clone());
    let a = LeaderElector::new(
        fake.client(TOKEN),
        shared.clone(),
        cfg("pod-a", 15, 10_000, 2_000),
    )
    .expect("valid");
    let b = LeaderElector::new(fake.client(TOKEN), shared, cfg("pod-b", 15, 10_000, 2_000))
        .expect("valid");

    assert!(matches!(
        a.try_acquire_or_renew().expect("a"),
        Leadership::Leader { .. }
    ));
    assert_eq!(
        b.try_acquire_or_renew().expect("b"),
        Leadership::Follower {
            holder: Some("pod-a".into())
        }
    );
    assert!(a.is_leader() && !b.is_leader());

    // a renews every 2 s: b never takes over.
    for _ in 0..10 {
        clock.advance(Duration::from_secs(2));
        assert!(matches!(
            a.try_acquire_or_renew().expect("a"),
            Leadership::Leader { .. }
        ));
        assert!(matches!(
            b.try_acquire_or_renew().expect("b"),
            Leadership::Follower { .. }
        ));
    }
    // a stops renewing. Its own leadership lapses after renew_deadline (10 s)...
    clock.advance(Duration::from_secs(10));
    assert!(
        !a.is_leader(),
        "the old leader stops acting before anyone can take over"
    );
    assert!(matches!(
        b.try_acquire_or_renew().expect("b"),
        Leadership::Follower { .. }
    ));
    // ...and b takes over once 15 s passed since it first saw a's last renew.
    clock.advance(Duration::from_secs(4));
    assert!(
        matches!(
            b.try_acquire_or_renew().expect("b"),
            Leadership::Follower { .. }
        ),
        "14 s < 15 s"
    );
    clock.advance(Duration::from_secs(1));
    assert!(
        matches!(
            b.try_acquire_or_renew().expect("b"),
            Leadership::Leader { .. }
        ),
        "15 s"
    );
    assert!(b.is_leader());
    let lease = fake
        .object(&LEASE, "mainline", "mainline-guard-leader")
        .expect("lease");
    assert_eq!(lease["spec"]["holderIdentity"], json!("pod-b"));
    assert_eq!(lease["spec"]["leaseTransitions"], json!(1));
    // a comes back: it is a follower now.
    assert_eq!(
        a.try_acquire_or_renew().expect("a"),
        Leadership::Follower {
            holder: Some("pod-b".into())
        }
    );
    assert!(!a.is_leader());
}

#[test]
fn step_down_releases_so_the_standby_takes_over_at_its_next_try() {
    let fake = FakeKube::start();
    let clock = ManualClock::at(Timestamp(1_750_000_000_000));
    let shared: Arc<dyn Clock> = Arc::new(clock.clone());
    let a = LeaderElector::new(
        fake.client(TOKEN),
        shared.clone(),
        cfg("pod-a", 15, 10_000, 2_000),
    )
    .expect("valid");
    let b = LeaderElector::new(fake.client(TOKEN), shared, cfg("pod-b", 15, 10_000, 2_000))
        .expect("valid");
    a.try_acquire_or_renew().expect("a");
    b.try_acquire_or_renew().expect("b");
    a.step_down().expect("step down");
    assert!(!a.is_leader());
    clock.advance(Duration::from_secs(2));
    assert!(matches!(
        b.try_acquire_or_renew().expect("b"),
        Leadership::Leader { .. }
    ));
}

#[test]
fn timing_is_validated() {
    let fake = FakeKube::start();
    let c = fake.client(TOKEN);
    let bad = [
        cfg("p", 10, 10_000, 2_000),  // renew deadline = lease duration
        cfg("p", 15, 10_000, 10_000), // retry = renew deadline
        cfg("", 15, 10_000, 2_000),   // no identity
    ];
    for b in bad {
        let err = LeaderElector::new(c.clone(), Arc::new(SystemClock), b)
            .err()
            .expect("refused");
        assert!(
            err.to_string()
                .starts_with("invalid leader election timing"),
            "{err}"
        );
    }
    let from_toml: LeaderElectionConfig =
        toml::from_str("lease_duration_seconds = 20\nretry_period_seconds = 3").expect("toml");
    let resolved =
        ElectionConfig::from_config(&from_toml, "pod-x", Some("mainline")).expect("valid");
    assert_eq!(resolved.name, "mainline-guard-leader");
    assert_eq!(resolved.lease_duration, Duration::from_secs(20));
    assert_eq!(resolved.renew_deadline, Duration::from_secs(10));
    assert!(
        ElectionConfig::from_config(&from_toml, "pod-x", None).is_err(),
        "no namespace"
    );
}

/// One replica: a loop like the guard's, until `stop`.
fn replica(
    elector: Arc<LeaderElector>,
    stop: Arc<AtomicBool>,
    graceful: bool,
    renewals: Arc<Mutex<Vec<Instant>>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let retry = elector.config().retry_period;
        while !stop.load(Ordering::SeqCst) {
            let started = Instant::now();
            if let Ok(Leadership::Leader { .. }) = elector.try_acquire_or_renew() {
                renewals.lock().expect("lock").push(started);
            }
            std::thread::sleep(retry);
        }
        if graceful {
            let _ = elector.step_down();
        }
    })
}

#[test]
fn two_replicas_one_leader_at_a_time_and_takeover_after_the_leader_dies() {
    let fake = FakeKube::start();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    // Lease 1 s, renew deadline 600 ms, retry 100 ms.
    let electors: Vec<Arc<LeaderElector>> = ["pod-a", "pod-b"]
        .iter()
        .map(|id| {
            Arc::new(
                LeaderElector::new(fake.client(TOKEN), clock.clone(), cfg(id, 1, 600, 100))
                    .expect("valid"),
            )
        })
        .collect();

    // A monitor samples both replicas' belief all along: never two leaders.
    let done = Arc::new(AtomicBool::new(false));
    let both = Arc::new(AtomicU32::new(0));
    let samples = Arc::new(AtomicU32::new(0));
    let monitor = {
        let (e, done, both, samples) = (
            electors.clone(),
            done.clone(),
            both.clone(),
            samples.clone(),
        );
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                if e[0].is_leader() && e[1].is_leader() {
                    both.fetch_add(1, Ordering::SeqCst);
                }
                samples.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };

    let stops: Vec<Arc<AtomicBool>> = (0..2).map(|_| Arc::new(AtomicBool::new(false))).collect();
    let renewals: Vec<Arc<Mutex<Vec<Instant>>>> =
        (0..2).map(|_| Arc::new(Mutex::new(Vec::new()))).collect();
    let threads: Vec<_> = (0..2)
        .map(|i| {
            replica(
                electors[i].clone(),
                stops[i].clone(),
                false,
                renewals[i].clone(),
            )
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let leader = (0..2)
        .find(|&i| electors[i].is_leader())
        .expect("someone leads after 1.5 s");
    let standby = 1 - leader;
    assert!(!renewals[leader].lock().expect("lock").is_empty());
    assert!(
        renewals[standby].lock().expect("lock").is_empty(),
        "the standby never led"
    );

    // The leader dies: it stops renewing, and never steps down.
    stops[leader].store(true, Ordering::SeqCst);
    let mut threads = threads;
    threads.remove(leader).join().expect("leader thread");
    let last_renew = *renewals[leader]
        .lock()
        .expect("lock")
        .last()
        .expect("renewed");
    let wait_until = Instant::now() + Duration::from_secs(5);
    while !electors[standby].is_leader() && Instant::now() < wait_until {
        std::thread::sleep(Duration::from_millis(2));
    }
    let took_over = renewals[standby]
        .lock()
        .expect("lock")
        .first()
        .copied()
        .expect("standby took over");
    let after = took_over.duration_since(last_renew);
    println!("standby took over {after:?} after the leader's last renew (lease 1 s, retry 100 ms)");
    assert!(
        after >= Duration::from_secs(1),
        "no takeover within a lease duration: {after:?}"
    );
    assert!(
        after < Duration::from_millis(1100 + 600),
        "takeover within lease + retry (+ slack): {after:?}"
    );

    std::thread::sleep(Duration::from_millis(300));
    done.store(true, Ordering::SeqCst);
    stops[standby].store(true, Ordering::SeqCst);
    for t in threads {
        t.join().expect("standby thread");
    }
    monitor.join().expect("monitor");
    println!(
        "monitor: {} samples, {} with two leaders",
        samples.load(Ordering::SeqCst),
        both.load(Ordering::SeqCst)
    );
    assert!(samples.load(Ordering::SeqCst) > 300);
    assert_eq!(
        both.load(Ordering::SeqCst),
        0,
        "two replicas believed they led at the same time"
    );
    let lease = fake
        .object(&LEASE, "mainline", "mainline-guard-leader")
        .expect("lease");
    assert_eq!(
        lease["spec"]["leaseTransitions"],
        json!(1),
        "exactly one change of leader"
    );
}

#[test]
fn graceful_shutdown_hands_over_within_a_retry_period() {
    let fake = FakeKube::start();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let a = Arc::new(
        LeaderElector::new(
            fake.client(TOKEN),
            clock.clone(),
            cfg("pod-a", 5, 3_000, 100),
        )
        .expect("valid"),
    );
    let b = Arc::new(
        LeaderElector::new(fake.client(TOKEN), clock, cfg("pod-b", 5, 3_000, 100)).expect("valid"),
    );
    assert!(matches!(
        a.try_acquire_or_renew().expect("a"),
        Leadership::Leader { .. }
    ));
    let (stop_a, stop_b) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let renewals_b = Arc::new(Mutex::new(Vec::new()));
    let ta = replica(
        a.clone(),
        stop_a.clone(),
        true,
        Arc::new(Mutex::new(Vec::new())),
    );
    let tb = replica(b.clone(), stop_b.clone(), false, renewals_b.clone());
    std::thread::sleep(Duration::from_millis(400));
    assert!(a.is_leader() && !b.is_leader());
    stop_a.store(true, Ordering::SeqCst);
    ta.join().expect("a");
    let released = Instant::now();
    let until = released + Duration::from_secs(3);
    while !b.is_leader() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(2));
    }
    let after = released.elapsed();
    println!(
        "after a graceful step-down the standby led within {after:?} (lease 5 s, retry 100 ms)"
    );
    assert!(b.is_leader());
    assert!(
        after < Duration::from_millis(700),
        "not a lease duration: {after:?}"
    );
    stop_b.store(true, Ordering::SeqCst);
    tb.join().expect("b");
}
