//! The guard's API under load and abuse (issue 21, items 2, 4, 6–9): the built binary on
//! loopback over the real test registry and a real bare git remote. A history flood must leave
//! reconcile latency within 2× its idle figure and start no git work; `api_auth = "token"`,
//! the per-client rate limit, the Bearer scheme in any case, auth before the body, named tokens
//! in the journal; a redelivery after a 400, a body cut short, an unreachable git remote in
//! `reconcile_errors_total`, and a duration metric that covers the whole run.

mod guard;
mod support;

use guard::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn start(w: &World, guard_extra: &str, channels_extra: &str, env: &[(&str, &str)]) -> GuardProc {
    let secret = w.write("webhook-secret", SECRET);
    let config = format!(
        "git = \"{remote}\"\npath = \"k8s\"\ncache_dir = \"{cache}\"\n\n[guard]\ninterval = \"1h\"\n\
         webhook_secret_file = \"{secret}\"\n{guard_extra}\n\n[[channels]]\nname = \"app\"\n\
         channel = \"{channel}\"\ngithub_repository = \"acme/app\"\n{channels_extra}\n",
        remote = w.remote_str(),
        cache = w.path().join("guard-cache").display(),
        secret = secret.display(),
        channel = w.channel(),
    );
    let path = w.write("mainline.toml", &config);
    let g = GuardProc::start(
        w.path(),
        &[
            "--config",
            path.to_str().expect("utf8"),
            "--listen",
            "127.0.0.1:0",
        ],
        env,
    );
    wait_for(60, "the guard to be ready", || {
        (get(&g.addr, "/readyz").status == 200).then_some(())
    });
    g
}

/// Reconcile `app` `n` times through the API; each run's `last_duration_ms`.
fn timed_reconciles(g: &GuardProc, n: usize) -> Vec<u64> {
    (0..n)
        .map(|_| {
            let before = g.reconciles("app");
            assert_eq!(
                post_token(&g.addr, "/api/channels/app/reconcile", "").status,
                202
            );
            let c = g.wait_reconciled("app", before);
            c["last_duration_ms"].as_u64().expect("duration")
        })
        .collect()
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

#[test]
fn a_history_flood_costs_no_git_work_and_leaves_reconcile_latency_alone() {
    let w = World::new("api-flood");
    // Some journal to serve: a pin and an unpin from the CLI.
    w.mainline(&["pin", &w.main.clone(), "--reason", "flood fixture"])
        .ok();
    w.mainline(&["unpin"]).ok();
    let g = start(&w, "rate_limit = 0", "", &[("MAINLINE_GUARD_TOKEN", TOKEN)]);
    let idle = timed_reconciles(&g, 7);
    let threads_idle = g.threads();

    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let flooders: Vec<_> = (0..4)
        .map(|_| {
            let (stop, served, addr) = (stop.clone(), served.clone(), g.addr.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let r = get(&addr, "/api/channels/app/history");
                    assert_eq!(r.status, 200, "{}", r.text());
                    served.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let t = Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    let threads_flood = g.threads();
    let flooded = timed_reconciles(&g, 7);
    stop.store(true, Ordering::Relaxed);
    for f in flooders {
        f.join().expect("flooder");
    }
    let rate = served.load(Ordering::Relaxed) as f64 / t.elapsed().as_secs_f64();
    let history = get(&g.addr, "/api/channels/app/history").json();
    eprintln!(
        "history flood: {rate:.0} requests/s over 4 connections-at-a-time; reconcile ms idle {idle:?} \
         (median {}), under flood {flooded:?} (median {}); guard threads {threads_idle} idle, {threads_flood} flooded",
        median(idle.clone()),
        median(flooded.clone())
    );
    assert!(
        history["records"].as_array().is_some_and(|r| r.len() >= 2),
        "{history}"
    );
    assert!(history["read_at"].is_number(), "{history}");
    // 2x the idle median; a 5 ms floor because durations are whole milliseconds.
    let bound = (2 * median(idle.clone())).max(median(idle) + 5);
    assert!(
        median(flooded) <= bound,
        "reconcile latency under the flood stays within 2x idle"
    );
    assert!(
        threads_flood <= threads_idle + 4,
        "no thread per history request"
    );
}

#[test]
fn tokens_rate_limits_and_auth_before_the_body() {
    let w = World::new("api-auth");
    let alice = w.write("alice-token", "alice-token-for-tests-only\n");
    let g = start(
        &w,
        &format!(
            "api_auth = \"token\"\nrate_limit = 5\nrate_burst = 10\n[guard.tokens]\nalice = \"{}\"",
            alice.display()
        ),
        "",
        &[("MAINLINE_GUARD_TOKEN", TOKEN)],
    );
    let auth = |scheme: &str, token: &str| vec![("Authorization", format!("{scheme} {token}"))];
    // api_auth = "token": reads need a token, the scheme in any case; health and metrics do not.
    assert_eq!(http(&g.addr, "GET", "/api/channels", &[], b"").status, 401);
    assert_eq!(http(&g.addr, "GET", "/", &[], b"").status, 401);
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let r = http(
            &g.addr,
            "GET",
            "/api/channels/app/history",
            &auth(scheme, TOKEN),
            b"",
        );
        assert_eq!(r.status, 200, "{scheme}: {}", r.text());
    }
    assert_eq!(
        http(&g.addr, "GET", "/api/channels", &auth("Basic", TOKEN), b"").status,
        401
    );
    std::thread::sleep(Duration::from_secs(3)); // refill the bucket
                                                // The rate limit: 30 reads at once from one address, burst 10.
    let statuses: Vec<u16> = (0..30)
        .map(|_| http(&g.addr, "GET", "/api/channels", &auth("Bearer", TOKEN), b"").status)
        .collect();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    let r = http(&g.addr, "GET", "/api/channels", &auth("Bearer", TOKEN), b"");
    eprintln!("rate limit 5/s burst 10: {limited} of 30 back-to-back reads got 429");
    assert!((15..=20).contains(&limited), "{statuses:?}");
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").is_some());
    for _ in 0..20 {
        assert_eq!(
            get(&g.addr, "/healthz").status,
            200,
            "probes are never throttled"
        );
        assert_eq!(get(&g.addr, "/metrics").status, 200);
    }

    // Auth before the body: a wrong token with a declared 60 KiB body that never comes is
    // answered at once.
    let mut s = TcpStream::connect(&g.addr).expect("connect");
    let t = Instant::now();
    s.write_all(b"POST /api/channels/app/pin HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope\r\nContent-Length: 60000\r\n\r\n")
        .expect("head");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).expect("an answer before the body");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 401"));
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());

    // Named tokens: alice pins (lower-case scheme), the default token unpins; the journal says who.
    let body = format!(
        r#"{{"target": "{}", "reason": "alice holds prod on main"}}"#,
        w.main
    );
    let pin = http(
        &g.addr,
        "POST",
        "/api/channels/app/pin",
        &[
            ("Authorization", "bearer alice-token-for-tests-only".into()),
            ("Content-Type", "application/json".into()),
        ],
        body.as_bytes(),
    );
    assert_eq!(pin.status, 200, "{}", pin.text());
    assert_eq!(
        post_token(&g.addr, "/api/channels/app/unpin", "").status,
        200
    );
    let history = w.mainline(&["history", "-o", "json"]).ok().json();
    let actors: Vec<String> = history["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter(|r| r["kind"] == "pin" || r["kind"] == "unpin")
        .map(|r| format!("{} {}", r["kind"], r["actor"]))
        .collect();
    eprintln!("journal actors: {actors:?}");
    assert!(
        actors
            .iter()
            .any(|a| a.contains("pin") && a.contains("(API, token alice)")),
        "{actors:?}"
    );
    assert!(
        actors
            .iter()
            .any(|a| a.contains("unpin") && a.contains("(API, token default)")),
        "{actors:?}"
    );
}

#[test]
fn redelivery_after_a_400_cut_bodies_unreachable_remotes_and_whole_run_durations() {
    let w = World::new("api-hooks");
    let g = start(
        &w,
        "",
        "[[channels]]\nname = \"nogit\"\ngit = \"http://127.0.0.1:9/none.git\"\nchannel = \"oci://127.0.0.1:9/none/app:latest\"\n",
        &[("MAINLINE_GUARD_TOKEN", TOKEN)],
    );
    // A signed delivery refused as malformed does not consume its id: the fixed redelivery acts.
    let bad = br#"{"ref": 42}"#;
    assert_eq!(deliver(&g.addr, "push", "d-1", bad).status, 400);
    let good = push("acme/app", "refs/heads/main", &w.main, &w.main);
    let r = deliver(&g.addr, "push", "d-1", &good);
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.json()["status"], "accepted");
    assert_eq!(
        deliver(&g.addr, "push", "d-1", &good).json()["status"],
        "replayed"
    );

    // A client that goes away mid-body is `incomplete`, not `too_large`.
    let mut s = TcpStream::connect(&g.addr).expect("connect");
    s.write_all(
        b"POST /webhooks/github HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n{\"zen\":",
    )
    .expect("head");
    drop(s);
    let m = wait_for(10, "the cut body to be counted", || {
        let m = g.metrics();
        (metric(
            &m,
            "mainline_webhook_deliveries_total{outcome=\"incomplete\"}",
        ) == 1.0)
            .then_some(m)
    });
    assert_eq!(
        metric(
            &m,
            "mainline_webhook_deliveries_total{outcome=\"too_large\"}"
        ),
        0.0
    );

    // The channel whose git remote refuses connections counts as failed runs.
    let nogit = g.wait_reconciled("nogit", 0);
    let m = g.metrics();
    eprintln!(
        "unreachable git remote: verdict {} error {}",
        nogit["verdict"], nogit["error"]
    );
    assert!(
        metric(
            &m,
            "mainline_channel_reconcile_errors_total{channel=\"nogit\"}"
        ) >= 1.0,
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            "mainline_channel_reconcile_errors_total{channel=\"app\"}"
        ),
        0.0
    );

    // The duration covers the whole run: a CI pin moves the journal head, so the next run
    // re-reads the tail, and the recorded duration spans from start to finish.
    w.mainline(&["pin", &w.main.clone(), "--reason", "moves the journal"])
        .ok();
    let before = g.reconciles("app");
    assert_eq!(
        post_token(&g.addr, "/api/channels/app/reconcile", "").status,
        202
    );
    let c = g.wait_reconciled("app", before);
    let span = c["last_finished"].as_i64().expect("finished")
        - c["last_started"].as_i64().expect("started");
    let took = c["last_duration_ms"].as_i64().expect("duration");
    eprintln!("whole-run duration: {took} ms recorded, {span} ms between start and finish stamps");
    assert!(took + 3 >= span && took <= span + 1, "{took} vs {span}");
    let h = get(&g.addr, "/api/channels/app/history").json();
    assert!(
        h["records"]
            .as_array()
            .expect("records")
            .iter()
            .any(|r| r["reason"] == "moves the journal"),
        "{h}"
    );
}
