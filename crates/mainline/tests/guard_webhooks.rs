//! The webhook endpoint's bad-input table and the action endpoints' bearer check, against a
//! running guard (child process, real registry, real git remote): each bad delivery gets the
//! right code and changes nothing — no reconcile runs, the channel does not move.

mod guard;
mod support;

use guard::*;
use serde_json::json;

const REPO: &str = "acme/app";

fn start(w: &World, env: &[(&str, &str)]) -> GuardProc {
    let config = format!(
        r#"[guard]
interval = "1h"

[[channels]]
name = "app"
channel = "{channel}"
git = "{remote}"
path = "k8s"
github_repository = "{REPO}"
"#,
        channel = w.channel(),
        remote = w.remote_str(),
    );
    let path = w.write("mainline.toml", &config);
    let cache = w.path().join("guard-cache");
    let g = GuardProc::start(
        w.path(),
        &[
            "--config",
            path.to_str().expect("utf8"),
            "--listen",
            "127.0.0.1:0",
            "--cache-dir",
            cache.to_str().expect("utf8"),
        ],
        env,
    );
    wait_for(60, "the first reconcile", || {
        (get(&g.addr, "/readyz").status == 200).then_some(())
    });
    g
}

fn signed_headers(event: &str, id: &str, sig: Option<String>) -> Vec<(&'static str, String)> {
    let mut h = vec![
        ("X-GitHub-Event", event.to_owned()),
        ("X-GitHub-Delivery", id.to_owned()),
        ("Content-Type", "application/json".to_owned()),
    ];
    if let Some(s) = sig {
        h.push(("X-Hub-Signature-256", s));
    }
    h
}

#[test]
fn bad_webhook_deliveries_are_refused_and_change_nothing() {
    let w = World::new("guard-webhooks");
    let g = start(&w, &[("MAINLINE_WEBHOOK_SECRET", SECRET)]);
    let addr = g.addr.clone();
    let digest = w.channel_digest();
    // A delivery that would trigger a reconcile if it were accepted: a push to main.
    let body = push(REPO, "refs/heads/main", &w.main, &w.main);
    let sign = |b: &[u8]| mainline_github::webhook::sign(SECRET.as_bytes(), b);
    let wrong = mainline_github::webhook::sign(b"not-the-secret", &body);
    let truncated = &body[..body.len() / 2];
    let huge = vec![b' '; 10 * 1024 * 1024];
    // Under the webhook's 1 MiB cap but over the 64 KiB cap of every other route.
    let mut big: Vec<u8> = body.clone();
    big.extend(std::iter::repeat_n(b' ', 600 * 1024));
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, Vec<u8>, u16);
    let cases: Vec<Case> = vec![
        (
            "bad signature",
            signed_headers("push", "b-1", Some(wrong)),
            body.clone(),
            401,
        ),
        (
            "missing signature",
            signed_headers("push", "b-2", None),
            body.clone(),
            401,
        ),
        (
            "malformed signature",
            signed_headers("push", "b-3", Some("sha1=abc".into())),
            body.clone(),
            401,
        ),
        (
            "wrong event",
            signed_headers("issues", "b-4", Some(sign(&body))),
            body.clone(),
            202,
        ),
        (
            "600 KiB, ignored event",
            signed_headers("issues", "b-7", Some(sign(&big))),
            big.clone(),
            202,
        ),
        (
            "truncated JSON",
            signed_headers("push", "b-5", Some(sign(truncated))),
            truncated.to_vec(),
            400,
        ),
        (
            "10 MiB body",
            signed_headers("push", "b-6", Some(sign(&huge))),
            huge.clone(),
            413,
        ),
        (
            "no delivery id",
            vec![
                ("X-GitHub-Event", "push".into()),
                ("X-Hub-Signature-256", sign(&body)),
            ],
            body.clone(),
            400,
        ),
    ];
    let reconciles = g.reconciles("app");
    for (what, headers, payload, code) in &cases {
        let r = http(&addr, "POST", "/webhooks/github", headers, payload);
        assert_eq!(r.status, *code, "{what}: {}", r.text());
        if *code >= 400 {
            assert!(
                r.json()["error"]["message"].is_string(),
                "{what}: errors are JSON: {}",
                r.text()
            );
        } else {
            assert_eq!(r.json()["triggered"], json!([]), "{what}");
        }
    }

    // A delivery id that was refused (bad signature) was not recorded: the genuine delivery
    // with that id is accepted and reconciles once; its replay is acknowledged, not acted on.
    let r = deliver(&addr, "push", "b-1", &body);
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.json()["triggered"], json!(["app"]));
    g.wait_reconciled("app", reconciles);
    let after_genuine = g.reconciles("app");
    assert_eq!(after_genuine, reconciles + 1);
    let r = deliver(&addr, "push", "b-1", &body);
    assert_eq!(r.status, 200, "a replay is acknowledged: {}", r.text());
    assert_eq!(r.json()["status"], "replayed");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(
        g.reconciles("app"),
        after_genuine,
        "a replay must not reconcile"
    );
    assert_eq!(w.channel_digest(), digest, "nothing moved the channel");

    let text = g.metrics();
    for (outcome, n) in [
        ("unauthorized", 3.0),
        ("ignored", 2.0),
        ("malformed", 2.0),
        ("too_large", 1.0),
        ("replayed", 1.0),
        ("accepted", 1.0),
    ] {
        let series = format!(r#"mainline_webhook_deliveries_total{{outcome="{outcome}"}}"#);
        assert_eq!(metric(&text, &series), n, "{series}");
    }
    let log = g.log();
    assert!(
        !log.contains(SECRET),
        "the log shows the webhook secret:\n{log}"
    );
    assert!(
        log.contains("webhook refused"),
        "refusals are logged:\n{log}"
    );
}

#[test]
fn webhooks_and_actions_are_off_without_their_secrets() {
    let w = World::new("guard-off");
    let g = start(&w, &[]);
    let body = push(REPO, "refs/heads/main", &w.main, &w.main);
    let r = deliver(&g.addr, "push", "x-1", &body);
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(r.text().contains("MAINLINE_WEBHOOK_SECRET"), "{}", r.text());
    let r = post_token(&g.addr, "/api/channels/app/reconcile", "");
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("MAINLINE_GUARD_TOKEN"), "{}", r.text());
    // Read-only views need no login.
    assert_eq!(get(&g.addr, "/").status, 200);
    assert_eq!(get(&g.addr, "/api/channels").status, 200);
    assert_eq!(get(&g.addr, "/api/channels/app/history").status, 200);
    assert_eq!(get(&g.addr, "/api/channels/nope").status, 404);
}

#[test]
fn actions_need_the_bearer_token_and_pin_through_the_journal() {
    let w = World::new("guard-actions");
    let g = start(&w, &[("MAINLINE_GUARD_TOKEN", TOKEN)]);
    let addr = g.addr.clone();
    let reconciles = g.reconciles("app");
    for (what, auth) in [
        ("no token", None),
        ("wrong token", Some(format!("Bearer {TOKEN}x"))),
        ("wrong scheme", Some(format!("Basic {TOKEN}"))),
    ] {
        let headers: Vec<(&str, String)> = auth.into_iter().map(|a| ("Authorization", a)).collect();
        for path in [
            "/api/channels/app/reconcile",
            "/api/channels/app/unpin",
            "/api/reconcile",
        ] {
            let r = http(&addr, "POST", path, &headers, b"");
            assert_eq!(r.status, 401, "{what} on {path}: {}", r.text());
            assert!(r.header("www-authenticate").is_some(), "{what}");
        }
    }
    assert_eq!(
        g.reconciles("app"),
        reconciles,
        "refused actions ran nothing"
    );
    assert!(!g.log().contains(TOKEN), "the log shows the token");

    // With the token: reconcile now, then pin the candidate's artifact and unpin.
    assert_eq!(
        post_token(&addr, "/api/channels/app/reconcile", "").status,
        202
    );
    g.wait_reconciled("app", reconciles);
    let r = post_token(
        &addr,
        "/api/channels/app/pin",
        r#"{"target": "x", "reason": "r"}"#,
    );
    assert_eq!(r.status, 400, "a bad pin target: {}", r.text());
    let r = post_token(&addr, "/api/channels/app/pin", "{not json");
    assert_eq!(r.status, 400, "{}", r.text());
    let body =
        json!({"target": w.candidate, "reason": "INC-1: hold the candidate", "expires": "1h"})
            .to_string();
    let r = post_token(&addr, "/api/channels/app/pin", &body);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["final_verdict"], "PINNED", "{}", r.text());
    assert_eq!(w.channel_digest(), w.artifact(&w.candidate));
    let app = g.channel("app");
    assert_eq!(app["verdict"], "PINNED");
    assert_eq!(app["pin"]["reason"], "INC-1: hold the candidate");
    // The group ends while pinned: unpinning hands back to automation, which restores main.
    w.end_group();
    let r = post_token(&addr, "/api/channels/app/unpin", "");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["final_verdict"], "CONVERGED", "{}", r.text());
    assert_eq!(w.channel_digest(), w.artifact(&w.main));
    let history = get(&addr, "/api/channels/app/history").json();
    let kinds: Vec<&str> = history["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter_map(|r| r["kind"].as_str())
        .collect();
    assert!(
        kinds.contains(&"pin") && kinds.contains(&"unpin"),
        "{history}"
    );
}
