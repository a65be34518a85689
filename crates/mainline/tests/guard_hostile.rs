//! The guard on a hostile network (issue 21, items 1 and 5): the built binary on loopback,
//! against the real test registry and a real bare git remote, attacked the way a peer on the
//! same network would — slowloris heads, bodies that never come, idle connections past the
//! open-file limit — and stopped with SIGTERM while a reconcile hangs on a silent registry.
//! Every wait here is bounded; counts and times are printed so the figures can be quoted.

mod guard;
#[path = "support/loopback.rs"]
mod loopback;
mod support;

use guard::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A guard over the world's channel with `extra` in `[guard]`.
fn start(w: &World, extra: &str, wrapper: &[&str]) -> GuardProc {
    let secret = w.write("webhook-secret", SECRET);
    let config = format!(
        "git = \"{remote}\"\npath = \"k8s\"\ncache_dir = \"{cache}\"\n\n[guard]\ninterval = \"1h\"\n\
         webhook_secret_file = \"{secret}\"\n{extra}\n\n[[channels]]\nname = \"app\"\nchannel = \"{channel}\"\n",
        remote = w.remote_str(),
        cache = w.path().join("guard-cache").display(),
        secret = secret.display(),
        channel = w.channel(),
    );
    let path = w.write("mainline.toml", &config);
    let g = GuardProc::start_wrapped(
        wrapper,
        w.path(),
        &[
            "--config",
            path.to_str().expect("utf8"),
            "--listen",
            "127.0.0.1:0",
        ],
        &[("MAINLINE_GUARD_TOKEN", TOKEN)],
    );
    wait_for(60, "the guard to be ready", || {
        (get(&g.addr, "/readyz").status == 200).then_some(())
    });
    g
}

/// `/healthz` over a fresh connection within `limit`: how long it took, or `None`.
fn probe(addr: &str, path: &str, limit: Duration) -> Option<(u16, Duration)> {
    let t = Instant::now();
    let mut s = TcpStream::connect_timeout(&addr.parse().ok()?, limit).ok()?;
    s.set_read_timeout(Some(limit)).ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let status = String::from_utf8_lossy(&raw)
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((status, t.elapsed()))
}

/// Whether the server closed `s` (a read returns 0 or a reset within 200 ms).
fn closed(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // a 408 or similar before the close
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn slowloris_and_bodies_that_never_come_are_cut_off_while_probes_answer() {
    let w = World::new("hostile-slow");
    let g = start(&w, "header_timeout = \"1s\"\nbody_timeout = \"1s\"", &[]);
    let fds_before = g.fds();

    // 200 connections dribbling a request head, one byte every 200 ms, for at most 4 s.
    const N: usize = 200;
    let mut conns: Vec<TcpStream> = (0..N)
        .map(|_| TcpStream::connect(&g.addr).expect("connect"))
        .collect();
    let head = b"GET /api/channels HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaa";
    let start = Instant::now();
    let mut probes = Vec::new();
    let mut fds_peak = 0;
    let mut i = 0;
    while start.elapsed() < Duration::from_secs(4) {
        for c in &mut conns {
            let _ = c.write_all(&head[i % head.len()..i % head.len() + 1]);
        }
        i += 1;
        fds_peak = fds_peak.max(g.fds());
        probes.push(probe(&g.addr, "/healthz", Duration::from_secs(1)));
        std::thread::sleep(Duration::from_millis(200));
    }
    let cut = conns.iter_mut().map(closed).filter(|c| *c).count();
    let answered: Vec<Duration> = probes
        .iter()
        .filter_map(|p| p.filter(|(status, _)| *status == 200).map(|(_, d)| d))
        .collect();
    let slowest = answered.iter().max().copied().unwrap_or_default();
    eprintln!(
        "slowloris: {cut}/{N} connections closed by the guard within 4 s (header_timeout 1 s); \
         fds {fds_before} before, {fds_peak} at peak, {} after; /healthz answered {}/{} probes, slowest {slowest:?}",
        g.fds(),
        answered.len(),
        probes.len()
    );
    assert_eq!(cut, N, "every slow head is cut off by header_timeout");
    assert_eq!(answered.len(), probes.len(), "every probe answered");
    assert!(
        slowest < Duration::from_millis(500),
        "probes stay fast: {slowest:?}"
    );
    assert!(
        g.fds() <= fds_before + 5,
        "the descriptors came back: {fds_before} before, {} after",
        g.fds()
    );

    // A declared 100 MiB body that never comes: refused at once, before any of it is read.
    for path in ["/webhooks/github", "/api/channels/app/pin"] {
        let mut s = TcpStream::connect(&g.addr).expect("connect");
        let t = Instant::now();
        s.write_all(
            format!("POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 104857600\r\n\r\n")
                .as_bytes(),
        )
        .expect("head");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).expect("an answer");
        let status = String::from_utf8_lossy(&buf[..n]).to_string();
        eprintln!(
            "{path} declaring 100 MiB: {:?} after {:?}",
            &status[..12.min(status.len())],
            t.elapsed()
        );
        assert!(status.starts_with("HTTP/1.1 413"), "{path}: {status}");
        assert!(t.elapsed() < Duration::from_secs(1));
    }

    // A small declared body that never comes: 408 after body_timeout, counted `incomplete`.
    let mut s = TcpStream::connect(&g.addr).expect("connect");
    let t = Instant::now();
    s.write_all(b"POST /webhooks/github HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        .expect("head");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).expect("an answer");
    let status = String::from_utf8_lossy(&buf[..n]).to_string();
    eprintln!(
        "webhook body that never comes: {:?} after {:?}",
        &status[..12.min(status.len())],
        t.elapsed()
    );
    assert!(status.starts_with("HTTP/1.1 408"), "{status}");
    assert!(t.elapsed() < Duration::from_secs(3));
    let m = g.metrics();
    assert_eq!(
        metric(
            &m,
            "mainline_webhook_deliveries_total{outcome=\"incomplete\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(
            &m,
            "mainline_webhook_deliveries_total{outcome=\"too_large\"}"
        ),
        1.0
    );
}

#[test]
fn a_guard_at_its_open_file_limit_keeps_answering_healthz() {
    let prlimit = tool("prlimit", "util-linux");
    let w = World::new("hostile-fds");
    let wrapper = [prlimit.to_str().expect("utf8"), "--nofile=128:128", "--"];
    let g = start(&w, "", &wrapper);
    assert!(
        g.log()
            .contains("max_connections lowered to fit the open-file limit"),
        "the guard says it lowered the cap:\n{}",
        g.log()
    );
    // 150 idle connections (never a byte): more than the 128 descriptors the guard may open.
    let idle: Vec<TcpStream> = (0..150)
        .map(|_| TcpStream::connect(&g.addr).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    let mut results = Vec::new();
    while start.elapsed() < Duration::from_secs(5) {
        results.push(probe(&g.addr, "/healthz", Duration::from_secs(1)));
        results.push(probe(&g.addr, "/readyz", Duration::from_secs(1)));
        std::thread::sleep(Duration::from_millis(200));
    }
    let ok = results
        .iter()
        .filter(|r| matches!(r, Some((200, _))))
        .count();
    let slowest = results
        .iter()
        .flatten()
        .map(|(_, d)| *d)
        .max()
        .unwrap_or_default();
    let fds_held = g.fds();
    // The idle connections fill the cap: a metrics scrape would land in the reserve (503).
    assert_eq!(get(&g.addr, "/metrics").status, 503);
    drop(idle);
    let m = wait_for(10, "the cap to free up", || {
        let r = get(&g.addr, "/metrics");
        (r.status == 200).then(|| r.text())
    });
    eprintln!(
        "fd-limited (nofile 128), 150 idle connections held: {ok}/{} probes answered 200, slowest {slowest:?}; \
         guard fds {fds_held}; reserve {} evicted {}",
        results.len(),
        metric(&m, "mainline_guard_http_reserve_connections_total"),
        metric(&m, "mainline_guard_http_refused_connections_total"),
    );
    assert_eq!(
        ok,
        results.len(),
        "every probe answered while 150 idle connections are held"
    );
    assert!(slowest < Duration::from_millis(500), "{slowest:?}");
    assert!(fds_held < 128);
}

#[test]
fn sigterm_keeps_health_endpoints_answering_until_in_flight_work_ends() {
    // The channel's registry accepts and never answers: the first reconcile hangs in flight.
    let dir = tempfile::tempdir().expect("tempdir");
    let (_repo, _) = support::fixture_repo(dir.path());
    let remote = dir.path().join("remote.git");
    support::git(dir.path(), &["clone", "-q", "--bare", "repo", "remote.git"]);
    let silent = loopback::silent();
    let config = format!(
        "git = \"{}\"\npath = \"k8s\"\ncache_dir = \"{}\"\n[guard]\ninterval = \"1h\"\nshutdown_grace = \"4s\"\n\
         [[channels]]\nname = \"hung\"\nchannel = \"oci://127.0.0.1:{silent}/app:latest\"\n",
        remote.display(),
        dir.path().join("cache").display()
    );
    std::fs::write(dir.path().join("mainline.toml"), config).expect("write");
    let mut g = GuardProc::start(
        dir.path(),
        &["--config", "mainline.toml", "--listen", "127.0.0.1:0"],
        &[],
    );
    wait_for(30, "the first reconcile to be in flight", || {
        (g.channel("hung")["running"] == true).then_some(())
    });
    let pid = i32::try_from(g.child.id()).expect("pid");
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let t = Instant::now();
    let (mut ready_503, mut live_200, mut failed) = (0, 0, 0);
    while t.elapsed() < Duration::from_secs(3) {
        match probe(&g.addr, "/readyz", Duration::from_secs(1)) {
            Some((503, _)) => ready_503 += 1,
            _ => failed += 1,
        }
        match probe(&g.addr, "/healthz", Duration::from_secs(1)) {
            Some((200, _)) => live_200 += 1,
            _ => failed += 1,
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let code = wait_for(15, "the guard to exit", || {
        g.child.try_wait().expect("wait")
    })
    .code()
    .unwrap_or(-1);
    eprintln!(
        "SIGTERM with a reconcile in flight: {ready_503} /readyz 503, {live_200} /healthz 200, {failed} other in 3 s; \
         exited {code} after {:?}",
        t.elapsed()
    );
    assert_eq!(
        failed, 0,
        "health endpoints answer through the grace period"
    );
    assert!(ready_503 >= 5 && live_200 >= 5);
    assert_eq!(code, 0, "{}", g.log());
    assert!(
        g.log().contains("abandoning reconciles still running"),
        "{}",
        g.log()
    );
}
