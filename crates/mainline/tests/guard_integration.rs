//! The guard end to end: the built binary as a child process, against the real test registry,
//! a real bare git remote and the fake GitHub (merge queue over GraphQL), driven through a
//! queue history by signed webhooks and API fixtures:
//!
//! candidate deployed by CI (CANDIDATE, held) → its group fails (the API says UNMERGEABLE while
//! its queue ref still exists) and `merge_group.destroyed` arrives → the guard restores main at
//! once → a merge lands and its `push` arrives → the guard promotes (packing the artifact from
//! git) → `destroyed` with reason `merged` triggers nothing. A second, broken channel fails on
//! every run without stalling the first. Then /metrics passes `promtool check metrics` with
//! the expected values, the journal shows the guard's moves, and SIGTERM stops it cleanly.

mod guard;
mod support;

use guard::*;
use mainline_github::fake::{FakeEntry, FakeGithub};
use std::process::Command;

const REPO: &str = "acme/app";

#[test]
fn guard_follows_a_merge_queue_history_through_webhooks_and_the_api() {
    let w = World::new("guard-queue");
    let fake = FakeGithub::start();
    fake.accept_token(GITHUB_TOKEN);
    fake.set_queue("acme", "app", "main", vec![]);
    let main_digest = w.artifact(&w.main);
    let candidate_digest = w.artifact(&w.candidate);
    assert_eq!(
        w.channel_digest(),
        main_digest,
        "the fixture starts CONVERGED"
    );

    let secret_file = w.write("webhook-secret", &format!("{SECRET}\n"));
    let config = format!(
        r#"git = "{remote}"
path = "k8s"
cache_dir = "{cache}"

[guard]
interval = "1h"
parallelism = 2
webhook_secret_file = "{secret}"
github_api_url = "{api}"

[[channels]]
name = "app"
channel = "{channel}"
queue = "github-api"
github_repository = "{REPO}"

[[channels]]
name = "broken"
channel = "oci://127.0.0.1:9/nowhere/app:latest"
github_repository = "{REPO}"
"#,
        remote = w.remote_str(),
        cache = w.path().join("guard-cache").display(),
        secret = secret_file.display(),
        api = fake.url(),
        channel = w.channel(),
    );
    let config_path = w.write("mainline.toml", &config);
    let mut g = GuardProc::start(
        w.path(),
        &[
            "--config",
            config_path.to_str().expect("utf8"),
            "--listen",
            "127.0.0.1:0",
        ],
        &[
            ("GITHUB_TOKEN", GITHUB_TOKEN),
            ("MAINLINE_GUARD_TOKEN", TOKEN),
        ],
    );
    let addr = g.addr.clone();

    // First pass: both channels reconciled; ready; the broken one is UNKNOWN, the good one is not
    // held up by it.
    wait_for(60, "/readyz to answer 200", || {
        (get(&addr, "/readyz").status == 200).then_some(())
    });
    assert_eq!(get(&addr, "/healthz").status, 200);
    let app = g.channel("app");
    assert_eq!(app["verdict"], "CONVERGED", "{app}");
    assert_eq!(app["queue"], "github-api");
    let broken = g.channel("broken");
    assert_eq!(broken["verdict"], "UNKNOWN", "{broken}");
    assert!(
        broken["explanation"]
            .as_str()
            .unwrap_or("")
            .contains("127.0.0.1:9"),
        "UNKNOWN names the registry it could not read: {broken}"
    );

    // CI deploys the group's candidate (the git-ref source sees its queue ref); GitHub's API
    // shows the group awaiting checks.
    fake.set_queue(
        "acme",
        "app",
        "main",
        vec![FakeEntry::new(7, "AWAITING_CHECKS", &w.candidate, &w.main)],
    );
    w.mainline(&[
        "deploy",
        "--candidate",
        "--group",
        &w.queue_ref,
        "--commit",
        &w.candidate,
    ])
    .ok();
    assert_eq!(w.channel_digest(), candidate_digest);

    // checks_requested does not trigger; an API reconcile holds the live candidate.
    let mut checks = fixture("merge_group_checks_requested.json");
    checks["repository"]["full_name"] = REPO.into();
    let r = deliver(
        &addr,
        "merge_group",
        "d-checks",
        &serde_json::to_vec(&checks).expect("json"),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.json()["triggered"], serde_json::json!([]));
    let before = g.reconciles("app");
    assert_eq!(
        post_token(&addr, "/api/channels/app/reconcile", "").status,
        202
    );
    let app = g.wait_reconciled("app", before);
    assert_eq!(app["verdict"], "CANDIDATE", "{app}");
    assert_eq!(app["prod"]["commit"], w.candidate.as_str());
    assert_eq!(app["prod"]["prs"], serde_json::json!([7]));
    assert_eq!(
        w.channel_digest(),
        candidate_digest,
        "a live candidate is held"
    );

    // The group fails: GitHub marks it UNMERGEABLE (its queue ref is still there) and sends
    // merge_group.destroyed (dequeued): the guard restores main at once.
    fake.set_queue(
        "acme",
        "app",
        "main",
        vec![FakeEntry::new(7, "UNMERGEABLE", &w.candidate, &w.main)],
    );
    let before = g.reconciles("app");
    let r = deliver(
        &addr,
        "merge_group",
        "d-destroyed",
        &destroyed(REPO, "dequeued", 7, &w.candidate, &w.main),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.json()["triggered"], serde_json::json!(["app", "broken"]));
    let app = g.wait_reconciled("app", before);
    assert_eq!(app["verdict"], "CONVERGED", "{app}");
    assert_eq!(app["first_verdict"], "DIVERGED", "{app}");
    assert_eq!(app["restores"], 1);
    assert_eq!(
        w.channel_digest(),
        main_digest,
        "the channel names main's artifact again"
    );

    // A merge lands on main (no artifact pushed: the guard packs it from git) and its push
    // arrives: the guard promotes.
    let landed = w.land(
        &[("k8s/app.yaml", "kind: Deployment\nreplicas: 9\n")],
        "2024-05-05T10:00:00Z",
    );
    fake.set_queue("acme", "app", "main", vec![]);
    let before = g.reconciles("app");
    let r = deliver(
        &addr,
        "push",
        "d-push",
        &push(REPO, "refs/heads/main", &w.main, &landed),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let app = g.wait_reconciled("app", before);
    assert_eq!(app["verdict"], "CONVERGED", "{app}");
    assert_eq!(app["first_verdict"], "BEHIND", "{app}");
    assert_eq!(app["prod"]["commit"], landed.as_str());
    assert_eq!(w.channel_digest(), w.artifact(&landed));

    // destroyed(merged) and a push to another branch trigger nothing.
    let r = deliver(
        &addr,
        "merge_group",
        "d-merged",
        &destroyed(REPO, "merged", 8, &landed, &landed),
    );
    assert_eq!(r.json()["triggered"], serde_json::json!([]));
    let r = deliver(
        &addr,
        "push",
        "d-other",
        &push(REPO, "refs/heads/feature", &w.main, &landed),
    );
    assert_eq!(r.json()["triggered"], serde_json::json!([]));

    // The journal (on the git remote) shows the guard's restore and promote, hash-chained.
    let history = get(&addr, "/api/channels/app/history").json();
    let records = history["records"].as_array().expect("records");
    let moved: Vec<(&str, &str)> = records
        .iter()
        .filter(|r| r["kind"] == "moved")
        .map(|r| {
            (
                r["action"].as_str().unwrap_or(""),
                r["actor"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(
        moved
            .iter()
            .any(|(a, who)| *a == "restore" && who.starts_with("guard@")),
        "{history}"
    );
    assert!(
        moved
            .iter()
            .any(|(a, who)| *a == "promote" && who.starts_with("guard@")),
        "{history}"
    );
    let verify = w.mainline(&["history", "--verify", "-o", "json"]);
    assert_eq!(
        verify.code, 0,
        "the journal chain verifies: {}{}",
        verify.stdout, verify.stderr
    );

    // Metrics: values, and promtool accepts the exposition. (The broken channel's run that the
    // destroyed webhook started may still be retrying its registry: wait for it.)
    g.wait_reconciled("broken", 1);
    let text = g.metrics();
    assert_eq!(
        metric(
            &text,
            r#"mainline_channel_verdict{channel="app",verdict="CONVERGED"}"#
        ),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            r#"mainline_channel_verdict{channel="broken",verdict="UNKNOWN"}"#
        ),
        1.0
    );
    assert_eq!(
        metric(&text, r#"mainline_channel_restores_total{channel="app"}"#),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            r#"mainline_channel_moves_total{channel="app",action="promote"}"#
        ),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            r#"mainline_channel_moves_total{channel="app",action="restore"}"#
        ),
        1.0
    );
    assert_eq!(
        metric(&text, r#"mainline_channel_unmerged_seconds{channel="app"}"#),
        0.0
    );
    assert_eq!(
        metric(
            &text,
            r#"mainline_channel_seconds_since_mainline{channel="app"}"#
        ),
        0.0
    );
    assert!(
        metric(
            &text,
            r#"mainline_channel_reconciles_total{channel="broken"}"#
        ) >= 2.0
    );
    assert_eq!(
        metric(
            &text,
            r#"mainline_channel_reconcile_errors_total{channel="app"}"#
        ),
        0.0
    );
    assert_eq!(
        metric(
            &text,
            r#"mainline_webhook_deliveries_total{outcome="accepted"}"#
        ),
        5.0
    );
    let count = metric(
        &text,
        r#"mainline_reconcile_duration_seconds_count{channel="app"}"#,
    );
    assert_eq!(
        count,
        metric(
            &text,
            r#"mainline_reconcile_duration_seconds_bucket{channel="app",le="+Inf"}"#
        )
    );
    assert!(count >= 4.0, "{count}");
    let metrics_file = w.write("metrics.txt", &text);
    let promtool = tool("promtool", "prometheus");
    let out = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&metrics_file).expect("open"))
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool check metrics refused /metrics:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // SIGTERM: a clean exit, and no secret anywhere in the log.
    let code = g.terminate(30);
    let log = g.log();
    assert_eq!(code, 0, "guard exit code after SIGTERM; log:\n{log}");
    assert!(log.contains("SIGTERM received"), "{log}");
    for secret in [SECRET, TOKEN, GITHUB_TOKEN] {
        assert!(!log.contains(secret), "the log shows a secret:\n{log}");
    }
    assert!(
        log.contains("d-destroyed"),
        "webhook deliveries are logged by id:\n{log}"
    );
}

/// A registry that accepts connections and never answers: a reconcile against it hangs in
/// its first read until the store's timeout.
fn black_hole() -> (std::net::SocketAddr, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let t = std::thread::spawn(move || {
        let mut held = Vec::new();
        listener.set_nonblocking(true).expect("nonblocking");
        let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::time::Instant::now() < until {
            match listener.accept() {
                Ok((s, _)) => held.push(s),
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        }
    });
    (addr, t)
}

#[test]
fn sigterm_abandons_a_hung_reconcile_after_the_grace_period_and_the_others_go_on() {
    let w = World::new("guard-shutdown");
    let (hole, _keep) = black_hole();
    let config = format!(
        r#"git = "{remote}"
path = "k8s"

[guard]
interval = "300ms"
parallelism = 2
shutdown_grace = "1s"

[[channels]]
name = "hung"
channel = "oci://{hole}/stuck/app:latest"

[[channels]]
name = "app"
channel = "{channel}"
"#,
        remote = w.remote_str(),
        channel = w.channel(),
    );
    let path = w.write("mainline.toml", &config);
    let cache = w.path().join("guard-cache");
    let mut g = GuardProc::start(
        w.path(),
        &[
            "--config",
            path.to_str().expect("utf8"),
            "--listen",
            "127.0.0.1:0",
            "--cache-dir",
            cache.to_str().expect("utf8"),
        ],
        &[],
    );
    // The hung channel holds its run (and one permit); the other keeps reconciling on its
    // interval meanwhile.
    wait_for(30, "the hung channel's run to start", || {
        (g.channel("hung")["running"] == true).then_some(())
    });
    let n = g.reconciles("app");
    g.wait_reconciled("app", n + 2);
    assert_eq!(
        g.channel("hung")["reconciles"],
        0,
        "still hung in its first read"
    );
    assert_eq!(
        get(&g.addr, "/readyz").status,
        503,
        "not ready until every channel ran once"
    );

    let started = std::time::Instant::now();
    let code = g.terminate(20);
    let took = started.elapsed();
    let log = g.log();
    assert_eq!(code, 0, "{log}");
    assert!(
        took < std::time::Duration::from_secs(10),
        "shutdown should take about the 1s grace, took {took:?}:\n{log}"
    );
    assert!(log.contains("abandoning reconciles"), "{log}");
    assert!(
        log.contains("hung"),
        "the abandoned channel is named:\n{log}"
    );
    assert_eq!(
        w.channel_digest(),
        w.artifact(&w.main),
        "nothing was half-written"
    );
}
