//! Leases against a real kube-apiserver (tests/kube), as the shipped guard ServiceAccount: the
//! channel lock's create/update compare-and-swap on resourceVersion (409 from the real
//! server, never applied), leader election, and ten processes racing for one Lease with
//! exactly one holder at any time — including a holder killed with SIGKILL, whose lock is
//! taken over only after it expires — and takers whose clocks are ten minutes apart, which
//! never both hold (expiry is judged by locally watched time, never by comparing clocks).

mod real;

use mainline_core::Timestamp;
use mainline_kube::api::LEASE;
use mainline_kube::lease::{rules, LeaseApi, Write};
use mainline_kube::{
    ElectionConfig, LeaderElector, Leadership, LeaseLock, LeaseLockConfig, LockError, SystemClock,
};
use real::{guard_client, server, GUARD_NS};
use serde_json::json;
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

fn now() -> Timestamp {
    Timestamp(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_millis() as i64,
    )
}

fn lock(name: &str, holder: &str, ttl: Duration, wait: Duration) -> LeaseLock {
    let mut c = LeaseLockConfig::new(GUARD_NS, name, holder);
    c.ttl = ttl;
    c.wait = wait;
    LeaseLock::new(guard_client(), Arc::new(SystemClock), c).expect("valid config")
}

#[test]
fn the_lock_creates_renews_and_releases_a_lease_the_real_server_accepts() {
    let a = lock(
        "real-lock-basic",
        "ci@run-1",
        Duration::from_secs(30),
        Duration::ZERO,
    );
    let mut held = a.acquire().expect("free lock");
    let stored = server()
        .get(&LEASE, GUARD_NS, "real-lock-basic")
        .expect("created");
    assert_eq!(stored["spec"]["holderIdentity"], json!(a.identity()));
    assert_eq!(stored["spec"]["leaseDurationSeconds"], json!(30));
    // MicroTime as the server re-serialises it: our format survived validation unchanged.
    assert_eq!(stored["spec"]["renewTime"], stored["spec"]["acquireTime"]);
    assert!(stored["spec"]["renewTime"]
        .as_str()
        .expect("a time")
        .ends_with('Z'));

    let b = lock(
        "real-lock-basic",
        "ci@run-2",
        Duration::from_secs(30),
        Duration::ZERO,
    );
    let busy = b.acquire().expect_err("held by a");
    assert!(matches!(busy, LockError::Busy { .. }), "{busy:?}");
    assert!(
        busy.to_string().contains(a.identity()),
        "names the holder: {busy}"
    );

    let rv = stored["metadata"]["resourceVersion"].clone();
    a.renew(&mut held).expect("renew");
    let renewed = server()
        .get(&LEASE, GUARD_NS, "real-lock-basic")
        .expect("exists");
    assert_ne!(renewed["metadata"]["resourceVersion"], rv);
    assert_eq!(
        renewed["spec"]["acquireTime"],
        stored["spec"]["acquireTime"]
    );

    a.release(held).expect("release");
    let got = b.acquire().expect("free again at once");
    assert_eq!(got.holder.transitions, 1);
}

#[test]
fn a_stale_update_gets_409_from_the_real_server_and_is_never_applied() {
    let api = LeaseApi::new(guard_client(), GUARD_NS, "real-race");
    let t0 = now();
    let first = match api
        .create(&rules::claim(None, "a", 30, t0), soon())
        .expect("create")
    {
        Write::Done(o) => o,
        Write::LostRace => panic!("nobody else created it"),
    };
    let read = api.get(soon()).expect("get").expect("exists");
    assert_eq!(read.resource_version, first.resource_version);
    let x = api
        .update(
            &read,
            &rules::claim(Some(&read.record), "x", 30, t0),
            soon(),
        )
        .expect("x");
    assert!(matches!(x, Write::Done(_)));
    let y = api
        .update(
            &read,
            &rules::claim(Some(&read.record), "y", 30, t0),
            soon(),
        )
        .expect("y");
    assert_eq!(y, Write::LostRace);
    let stored = server().get(&LEASE, GUARD_NS, "real-race").expect("lease");
    assert_eq!(
        stored["spec"]["holderIdentity"],
        json!("x"),
        "y's stale write was not applied"
    );
    assert_eq!(
        api.create(&rules::claim(None, "z", 30, t0), soon())
            .expect("create"),
        Write::LostRace,
        "a second create is 409 AlreadyExists"
    );
}

#[test]
fn two_replicas_elect_one_leader_and_a_step_down_hands_over() {
    let cfg = |id: &str| {
        let mut c = ElectionConfig::new(GUARD_NS, "real-leader", id);
        c.lease_duration = Duration::from_secs(3);
        c.renew_deadline = Duration::from_secs(2);
        c.retry_period = Duration::from_millis(200);
        c
    };
    let a = LeaderElector::new(guard_client(), Arc::new(SystemClock), cfg("pod-a")).expect("a");
    let b = LeaderElector::new(guard_client(), Arc::new(SystemClock), cfg("pod-b")).expect("b");
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
    assert!(matches!(
        a.try_acquire_or_renew().expect("a renews"),
        Leadership::Leader { .. }
    ));
    a.step_down().expect("step down");
    assert!(matches!(
        b.try_acquire_or_renew().expect("b"),
        Leadership::Leader { .. }
    ));
    assert!(!a.is_leader() && b.is_leader());
}

// ---- ten processes, one Lease ----

const CHILD_ENV: &str = "MAINLINE_TEST_LEASE_RACER";
const ROUNDS: usize = 3;
const TTL: Duration = Duration::from_secs(4);

/// Not a test of its own: the entry point of the racing child processes (this same test
/// binary, run with `CHILD_ENV` set). Without it, it returns at once.
#[test]
fn lease_racer_child_process() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let parts: Vec<&str> = spec.splitn(5, '|').collect();
    let [id, server_url, ca, token_file, log] = parts[..] else {
        panic!("bad {CHILD_ENV}")
    };
    let token = std::fs::read_to_string(token_file).expect("token file");
    let conn = mainline_kube::Connection {
        server: server_url.to_owned(),
        origin: "racer".to_owned(),
        namespace: None,
        ca_pem: Some(std::fs::read(ca).expect("ca")),
        client_cert_pem: None,
        client_key_pem: None,
        credentials: mainline_kube::Credentials::Token(mainline_kube::Secret::new(token.trim())),
        insecure_skip_tls_verify: false,
        proxy_url: None,
    };
    let client = Arc::new(mainline_kube::KubeClient::new(conn).expect("client"));
    let mut c = LeaseLockConfig::new(GUARD_NS, "real-ten-racers", id);
    c.ttl = TTL;
    c.wait = Duration::from_secs(120);
    let l = LeaseLock::new(client, Arc::new(SystemClock), c).expect("lock");
    let mut out = std::fs::OpenOptions::new()
        .append(true)
        .open(log)
        .expect("log");
    let rounds = if id == "racer-0" { 1 } else { ROUNDS };
    for _ in 0..rounds {
        let held = l.acquire().expect("acquired within the wait");
        writeln!(out, "acquired {} {}", l.identity(), now().millis()).expect("log");
        if id == "racer-0" {
            // Hold and wait to be killed (SIGKILL): never release. Should the parent die
            // first, its end of our stdin closes and we go too.
            println!("HOLDING");
            std::io::stdout().flush().expect("flush");
            let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
            std::process::exit(1);
        }
        std::thread::sleep(Duration::from_millis(100));
        writeln!(out, "released {} {}", l.identity(), now().millis()).expect("log");
        l.release(held).expect("release");
    }
}

fn spawn_racer(id: &str, spec_tail: &str) -> Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "lease_racer_child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, format!("{id}|{spec_tail}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn a racer")
}

#[test]
fn ten_processes_race_for_one_lease_and_exactly_one_holds_at_any_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("guard.token");
    std::fs::write(&token_file, real::guard_token().expose()).expect("token");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, server().ca_pem()).expect("ca");
    let log: PathBuf = dir.path().join("holds.log");
    std::fs::write(&log, "").expect("log");
    let tail = format!(
        "{}|{}|{}|{}",
        server().server(),
        ca.display(),
        token_file.display(),
        log.display()
    );

    // racer-0 takes the Lease first and is killed while holding it.
    let mut victim = spawn_racer("racer-0", &tail);
    let mut line = String::new();
    let mut stdout = BufReader::new(victim.stdout.take().expect("stdout"));
    while !line.contains("HOLDING") {
        line.clear();
        assert_ne!(
            stdout.read_line(&mut line).expect("read"),
            0,
            "racer-0 died before holding"
        );
    }
    let start = Instant::now();
    let others: Vec<Child> = (1..10)
        .map(|i| spawn_racer(&format!("racer-{i}"), &tail))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    victim.kill().expect("SIGKILL racer-0");
    victim.wait().expect("reaped");
    for mut c in others {
        assert!(c.wait().expect("racer exit").success(), "a racer failed");
    }
    let elapsed = start.elapsed();
    let holds = check_exclusive(&log);
    println!(
        "10 processes: {} holds in {elapsed:?}, one at a time; the killed holder's lock was \
         taken over {:?} after it was taken",
        holds.len(),
        Duration::from_millis((holds[1].0 - holds[0].0) as u64)
    );
    assert_eq!(
        holds.len(),
        1 + 9 * ROUNDS,
        "every racer held it each round"
    );
    // racer-0 never released: the next holder waited for its lease to run out.
    assert!(
        holds[1].0 - holds[0].0 >= TTL.as_millis() as i64,
        "took over {} ms after a SIGKILLed holder acquired, before its {TTL:?} lease ran out",
        holds[1].0 - holds[0].0
    );
}

/// Parse the log: `acquired ID T` / `released ID T` lines, appended by the holders. Exactly
/// one holder at any time means each acquisition is followed by its own release (or, for the
/// killed holder, by the next acquisition after its lease ran out) before any other one.
fn check_exclusive(log: &Path) -> Vec<(i64, String)> {
    let text = std::fs::read_to_string(log).expect("log");
    let mut holds = Vec::new();
    let mut holding: Option<String> = None;
    for l in text.lines() {
        let f: Vec<&str> = l.split(' ').collect();
        let (what, id, t) = (f[0], f[1].to_owned(), f[2].parse::<i64>().expect("a time"));
        match what {
            "acquired" => {
                if let Some(h) = &holding {
                    assert!(
                        h.starts_with("racer-0/"),
                        "{id} acquired while {h} held it:\n{text}"
                    );
                }
                holding = Some(id.clone());
                holds.push((t, id));
            }
            "released" => {
                assert_eq!(
                    holding.as_deref(),
                    Some(id.as_str()),
                    "release by a non-holder:\n{text}"
                );
                holding = None;
            }
            other => panic!("unexpected log line {other}"),
        }
    }
    holds
}

#[test]
fn a_follower_takes_over_only_after_a_full_lease_duration_on_its_own_clock() {
    // The election's rules on a manual clock, the Lease's storage and resourceVersions real.
    let clock = mainline_kube::clock::ManualClock::at(Timestamp(1_750_000_000_000));
    let shared: Arc<dyn mainline_kube::Clock> = Arc::new(clock.clone());
    let cfg = |id: &str| {
        let mut c = ElectionConfig::new(GUARD_NS, "real-leader-manual", id);
        c.request_timeout = Duration::from_secs(5);
        c
    };
    let a = LeaderElector::new(guard_client(), shared.clone(), cfg("pod-a")).expect("a");
    let b = LeaderElector::new(guard_client(), shared, cfg("pod-b")).expect("b");
    assert!(matches!(
        a.try_acquire_or_renew().expect("a"),
        Leadership::Leader { .. }
    ));
    assert!(matches!(
        b.try_acquire_or_renew().expect("b"),
        Leadership::Follower { .. }
    ));
    for _ in 0..5 {
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
    // a stops renewing: its leadership lapses after the renew deadline (10 s), b takes over
    // once 15 s passed since it saw a's last renew.
    clock.advance(Duration::from_secs(10));
    assert!(!a.is_leader());
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
    let lease = server()
        .get(&LEASE, GUARD_NS, "real-leader-manual")
        .expect("lease");
    assert_eq!(lease["spec"]["holderIdentity"], json!("pod-b"));
    assert_eq!(lease["spec"]["leaseTransitions"], json!(1));
    assert_eq!(
        a.try_acquire_or_renew().expect("a"),
        Leadership::Follower {
            holder: Some("pod-b".into())
        }
    );
}

#[test]
fn an_update_without_resource_version_is_refused_422_and_the_fake_says_the_same() {
    // The fake's `kube/status_invalid` fixture was captured from this answer.
    let api = LeaseApi::new(guard_client(), GUARD_NS, "real-no-rv");
    api.create(&rules::claim(None, "a", 30, now()), soon())
        .expect("create");
    let mut body = server().get(&LEASE, GUARD_NS, "real-no-rv").expect("lease");
    body["metadata"]
        .as_object_mut()
        .expect("metadata")
        .remove("resourceVersion");
    body["spec"]["holderIdentity"] = json!("last-writer");
    let a = server().admin_request(
        "PUT",
        &LEASE.object_path(GUARD_NS, "real-no-rv"),
        "application/json",
        Some(&body),
    );
    assert_eq!(a.status, 422, "{}", a.body);
    let fixture = mainline_kube::fake::fixture("kube/status_invalid");
    assert_eq!(a.body["reason"], fixture["reason"]);
    assert_eq!(
        a.body["details"]["causes"], fixture["details"]["causes"],
        "{}",
        a.body
    );
    assert_eq!(
        a.body["message"],
        json!(
            r#"leases.coordination.k8s.io "real-no-rv" is invalid: metadata.resourceVersion: Invalid value: 0: must be specified for an update"#
        )
    );
    let stored = server().get(&LEASE, GUARD_NS, "real-no-rv").expect("lease");
    assert_eq!(
        stored["spec"]["holderIdentity"],
        json!("a"),
        "nothing was written"
    );
}

/// The system clock, `by_ms` off on the wall (as another machine's might be); monotonic time
/// is the real one.
struct Offset {
    by_ms: i64,
}

impl mainline_kube::Clock for Offset {
    fn now(&self) -> Timestamp {
        mainline_kube::Clock::now(&SystemClock).plus_millis(self.by_ms)
    }
    fn monotonic_ms(&self) -> i64 {
        SystemClock.monotonic_ms()
    }
    fn sleep(&self, millis: u64) {
        mainline_kube::Clock::sleep(&SystemClock, millis)
    }
}

fn lock_off(name: &str, holder: &str, wait: Duration, by_ms: i64) -> LeaseLock {
    let mut c = LeaseLockConfig::new(GUARD_NS, name, holder);
    c.ttl = Duration::from_secs(3);
    c.wait = wait;
    LeaseLock::new(guard_client(), Arc::new(Offset { by_ms }), c).expect("valid config")
}

#[test]
fn takers_with_clocks_ten_minutes_apart_never_both_hold_and_a_dead_one_is_taken_over() {
    use mainline_kube::Clock as _;
    const TEN_MIN: i64 = 600_000;
    let name = "real-skewed-clocks";
    let honest = lock_off(name, "honest", Duration::ZERO, 0);
    let fast = lock_off(name, "fast", Duration::ZERO, TEN_MIN);
    let mut held = honest.acquire().expect("free");
    // The honest holder renews every second (3 s lease) for three durations; by the fast
    // clock its renewTime + 3 s is always ten minutes past, and it must not matter.
    let mut refused = 0;
    let stop = Instant::now() + Duration::from_secs(9);
    while Instant::now() < stop {
        match fast.acquire() {
            Err(LockError::Busy { .. }) => refused += 1,
            Ok(h) => panic!("the fast clock stole a live lock: {h:?}"),
            Err(e) => panic!("acquire: {e}"),
        }
        std::thread::sleep(Duration::from_millis(1000));
        honest.renew(&mut held).expect("still ours");
    }
    let lease = server().get(&LEASE, GUARD_NS, name).expect("lease");
    assert_eq!(lease["spec"]["holderIdentity"], json!(honest.identity()));
    assert_eq!(lease["spec"]["leaseTransitions"], json!(0));

    // The honest holder dies (no release). The fast taker gets it after one duration of
    // watching the record unchanged — not sooner.
    let fast = lock_off(name, "fast", Duration::from_secs(10), TEN_MIN);
    let t = Instant::now();
    let mut fast_held = fast.acquire().expect("taken over");
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(5),
        "took over after {took:?}, expected one 3 s duration"
    );
    assert!(matches!(
        honest.renew(&mut held),
        Err(LockError::Lost { .. })
    ));
    fast.renew(&mut fast_held).expect("fast holds");
    let renew = server().get(&LEASE, GUARD_NS, name).expect("lease")["spec"]["renewTime"]
        .as_str()
        .map(str::to_owned)
        .expect("renewTime");
    let renew = mainline_kube::lease::parse_time(&renew).expect("MicroTime");
    assert!(renew.millis() - SystemClock.now().millis() > TEN_MIN - 60_000);

    // And a taker whose clock is ten minutes slow (the record says twenty minutes ahead)
    // takes over from the dead fast holder after one duration too, not twenty minutes.
    let slow = lock_off(name, "slow", Duration::from_secs(10), -TEN_MIN);
    let t = Instant::now();
    slow.acquire().expect("taken over");
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(5),
        "took over after {took:?}, expected one 3 s duration"
    );
    println!(
        "clocks 10 min apart: {refused} takeover attempts refused while the holder lived; \
         dead holders taken over after {took:?} (3 s lease)"
    );
}
