//! Issue 6's load test: the guard watching 1,000 channels on the local registry (one
//! repository, 1,000 channel tags naming the same artifact, all on one bare git remote), served
//! on loopback. It prints the duration of the cold first pass and of full reconcile passes
//! when nothing changed (each started through the guard's own `POST /api/reconcile`), and the
//! registry requests per channel per pass counted from the registry's access log (target: one
//! manifest HEAD).
//!
//! Run: scripts/with-registry.sh cargo bench -p mainline --bench guard_load
//! (MAINLINE_BENCH_CHANNELS, MAINLINE_BENCH_PARALLELISM and MAINLINE_BENCH_PASSES scale it.)
//! Prints figures; asserts only what must hold (every channel CONVERGED, no request lost), not
//! speed: timed asserts are flaky on a shared 2-core machine.

#[path = "common/mod.rs"]
mod common;
use clap::Parser;
use common::git;
use mainline::cli::{Cli, Command as Sub};
use mainline::guard::{self, GuardSettings};
use mainline_store::registry::RegistryOptions;
use mainline_store::{Location, ReferenceTarget};
use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

const TOKEN: &str = "bench-token";

fn main() {
    let registry = std::env::var("MAINLINE_TEST_REGISTRY").expect(
        "MAINLINE_TEST_REGISTRY is not set: run scripts/with-registry.sh cargo bench -p mainline --bench guard_load",
    );
    let log =
        std::env::var("MAINLINE_TEST_REGISTRY_LOG").expect("MAINLINE_TEST_REGISTRY_LOG is not set");
    let channels = env_or("MAINLINE_BENCH_CHANNELS", 1000);
    let parallelism = env_or("MAINLINE_BENCH_PARALLELISM", 8);
    let passes = env_or("MAINLINE_BENCH_PASSES", 3);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();

    // A source repository with a k8s/ folder, and its bare remote.
    let repo = dir.join("repo");
    std::fs::create_dir_all(repo.join("k8s")).expect("mkdir");
    std::fs::write(repo.join("k8s/app.yaml"), "kind: Deployment\nreplicas: 2\n").expect("write");
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "one"]);
    let remote = dir.join("remote.git");
    git(dir, &["clone", "-q", "--bare", "repo", "remote.git"]);
    let head = git(&repo, &["rev-parse", "HEAD"]);

    // main's artifact, then one channel tag per channel naming its exact manifest bytes.
    let store = format!("oci://{registry}/bench/guard-{}", std::process::id());
    let bin = env!("CARGO_BIN_EXE_mainline");
    let pushed = Command::new(bin)
        .args([
            "--plain-http",
            "push",
            "--git",
            remote.to_str().expect("utf8"),
            "--commit",
            &head,
            "--path",
            "k8s",
            "--to",
            &store,
        ])
        .env("MAINLINE_SOURCE", "https://example.com/acme/app")
        .output()
        .expect("run mainline push");
    assert!(
        pushed.status.success(),
        "push: {}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    let location: Location = store.parse().expect("store location");
    let opts = RegistryOptions {
        plain_http_hosts: vec![registry.clone()],
        ..RegistryOptions::default()
    };
    let s = mainline_store::open(&location, &opts).expect("open store");
    let tag = format!("sha-{head}").parse().expect("tag");
    let m = s
        .fetch_manifest(&ReferenceTarget::Tag(tag))
        .expect("fetch")
        .expect("artifact exists");
    let t = Instant::now();
    for i in 0..channels {
        let t = format!("ch-{i:04}").parse().expect("tag");
        s.put_manifest(&t, &m.media_type, &m.bytes)
            .expect("tag channel");
    }
    drop(s);
    println!(
        "setup: {channels} channel tags on {store} in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let mut config = format!(
        "git = \"{}\"\npath = \"k8s\"\n\n[guard]\ninterval = \"1h\"\nparallelism = {parallelism}\n",
        remote.display()
    );
    for i in 0..channels {
        config.push_str(&format!(
            "\n[[channels]]\nname = \"ch-{i:04}\"\nchannel = \"{store}:ch-{i:04}\"\n"
        ));
    }
    let config_path = dir.join("mainline.toml");
    std::fs::write(&config_path, config).expect("write config");
    std::env::set_var("MAINLINE_GUARD_TOKEN", TOKEN);
    std::env::set_var("MAINLINE_SOURCE", "https://example.com/acme/app");
    let cache = dir.join("cache");
    let cli = Cli::try_parse_from([
        "mainline",
        "--plain-http",
        "guard",
        "--config",
        config_path.to_str().expect("utf8"),
        "--cache-dir",
        cache.to_str().expect("utf8"),
        "--listen",
        "127.0.0.1:0",
    ])
    .expect("guard arguments");
    let Sub::Guard(args) = &cli.command else {
        unreachable!("parsed a guard command")
    };
    let ctx = mainline::settings::Context::from_args(&cli.global, None).expect("context");
    let settings = GuardSettings::resolve(args).expect("guard settings");

    let t = Instant::now();
    let handle = guard::spawn(&ctx, settings).expect("start the guard");
    let addr = handle.addr.to_string();
    println!("guard: {channels} channels opened and listening on {addr} in {:.1} s (parallelism {parallelism})", t.elapsed().as_secs_f64());
    let done = |n: u64| {
        handle.slots.iter().all(|s| {
            let st = s.state();
            st.reconciles >= n && !st.running
        })
    };
    let requests_before = registry_requests(&log);
    let cold = wait(&done, 1, Duration::from_secs(900));
    println!(
        "first pass (cold: git fetch, manifest reads): {:.2} s, {:.2} registry requests per channel",
        cold.as_secs_f64(),
        (registry_requests(&log) - requests_before) as f64 / channels as f64
    );
    for pass in 2..=(passes as u64 + 1) {
        let before = registry_requests(&log);
        let t = Instant::now();
        let r = http(&addr, "POST", "/api/reconcile");
        assert!(r.starts_with("HTTP/1.1 202"), "POST /api/reconcile: {r}");
        wait(&done, pass, Duration::from_secs(900));
        let took = t.elapsed();
        // The registry writes its log line after answering: let the last lines land.
        std::thread::sleep(Duration::from_millis(300));
        let per_channel = (registry_requests(&log) - before) as f64 / channels as f64;
        let durations: Vec<u64> = handle
            .slots
            .iter()
            .filter_map(|s| s.state().last_duration_ms)
            .collect();
        let mean = durations.iter().sum::<u64>() as f64 / durations.len().max(1) as f64;
        let max = durations.iter().max().copied().unwrap_or(0);
        println!(
            "pass {}: nothing changed: {:.2} s for {channels} channels ({:.0} channels/s), {per_channel:.2} registry requests per channel; one reconcile: mean {mean:.0} ms, max {max} ms",
            pass - 1,
            took.as_secs_f64(),
            channels as f64 / took.as_secs_f64()
        );
    }
    let converged = handle
        .slots
        .iter()
        .filter(|s| s.state().verdict() == mainline_core::Verdict::Converged)
        .count();
    println!("verdicts: {converged} of {channels} CONVERGED");
    assert_eq!(converged, channels, "every channel should be CONVERGED");
    let metrics = http(&addr, "GET", "/metrics");
    println!(
        "/metrics: {} KiB for {channels} channels",
        metrics.len() / 1024
    );
    handle.stop().expect("the guard stops");
}

/// Time until `done(n)`, polled every 20 ms.
fn wait(done: &dyn Fn(u64) -> bool, n: u64, limit: Duration) -> Duration {
    let t = Instant::now();
    while !done(n) {
        assert!(
            t.elapsed() < limit,
            "pass {n} did not finish within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    t.elapsed()
}

fn http(addr: &str, method: &str, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).expect("connect to the guard");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    )
    .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out
}

fn registry_requests(log: &str) -> usize {
    std::fs::read_to_string(log)
        .expect("read the registry log")
        .lines()
        .filter(|l| l.contains("msg=\"response completed\""))
        .count()
}

fn env_or(k: &str, d: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}
