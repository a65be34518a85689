//! GitHub's published schemas judge every exchange of the client with the fake GitHub
//! (issue 16). Every public call of `GithubClient` is driven through the fake — the merge
//! queue over several pages in every entry state, with and without commits and pull
//! requests; comparisons in every status; a GitHub App token exchange; every scripted
//! failure on every endpoint — and every request and answer is handed to
//! `tests/github-schemas/check-corpus.mjs`, with the webhook payloads the tests use. It fails
//! on any request GitHub's REST description does not have, any GraphQL document or variable
//! GitHub's schema refuses, and any answer that does not have the documented shape.
//!
//! Needs `npm ci` in `tests/github-schemas` (scripts/test.sh runs it); never skips.

mod common;

use common::schemas::check_corpus;
use common::{client, commit, config, fixture, OWNER, REPO};
use mainline_github::fake::{
    Exchange, Failure, FakeEntry, FakeGithub, ManualClock, TEST_APP_PRIVATE_KEY,
    TEST_APP_PUBLIC_KEY,
};
use mainline_github::{Clock, GithubClient, Secret, Token};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

const STATES: [&str; 5] = [
    "QUEUED",
    "AWAITING_CHECKS",
    "MERGEABLE",
    "UNMERGEABLE",
    "LOCKED",
];

/// The public calls of `GithubClient` this test drives; a new one must be added here.
const DRIVEN: [&str; 4] = ["merge_queue", "in_flight_groups", "compare", "is_ancestor"];

fn id(n: u32) -> mainline_core::CommitId {
    commit(n).parse().expect("valid commit id")
}

fn drive_queue(fake: &FakeGithub, gh: &GithubClient) {
    let mut entries: Vec<FakeEntry> = (1..=230u32)
        .map(|n| {
            FakeEntry::new(
                u64::from(n),
                STATES[(n % 5) as usize],
                &commit(n),
                &commit(n + 1000),
            )
        })
        .collect();
    // A batch (two entries, one head), and entries GitHub has not built a group for.
    entries.push(FakeEntry::new(
        231,
        "AWAITING_CHECKS",
        &commit(7),
        &commit(1),
    ));
    entries.push(FakeEntry {
        state: "QUEUED".to_owned(),
        head: None,
        base: None,
        pr: Some(232),
    });
    entries.push(FakeEntry {
        state: "QUEUED".to_owned(),
        head: None,
        base: None,
        pr: None,
    });
    fake.set_queue(OWNER, REPO, "main", entries);
    assert_eq!(
        gh.merge_queue(OWNER, REPO, "main").expect("reads").len(),
        233
    );
    assert!(!gh
        .in_flight_groups(OWNER, REPO, "main")
        .expect("reads")
        .is_empty());
    fake.set_queue(OWNER, REPO, "empty", Vec::new());
    assert!(gh
        .in_flight_groups(OWNER, REPO, "empty")
        .expect("reads")
        .is_empty());
    gh.merge_queue(OWNER, REPO, "no-queue-here")
        .expect_err("no merge queue on that branch");
    gh.merge_queue(OWNER, "missing", "main")
        .expect_err("unknown repository");
}

fn drive_compare(fake: &FakeGithub, gh: &GithubClient) {
    fake.add_commit(&commit(1), &[]);
    fake.add_commit(&commit(2), &[&commit(1)]);
    fake.add_commit(&commit(3), &[&commit(2)]);
    fake.add_commit(&commit(4), &[&commit(2)]);
    for (base, head) in [(1, 3), (3, 3), (3, 1), (3, 4)] {
        gh.compare(OWNER, REPO, &id(base), &id(head))
            .expect("compares");
    }
    assert!(gh
        .is_ancestor(OWNER, REPO, &id(1), &id(4))
        .expect("compares"));
    gh.compare(OWNER, REPO, &id(1), &id(99))
        .expect_err("unknown commit");
    gh.compare(OWNER, "missing", &id(1), &id(3))
        .expect_err("unknown repository");
}

fn drive_failures(fake: &FakeGithub, gh: &GithubClient) {
    let failures = [
        Failure::TooManyRequests {
            retry_after_secs: 0,
        },
        Failure::RateLimitReset { reset_at_unix: 0 },
        Failure::TooManyRequestsBare,
        Failure::SecondaryRateLimit,
        Failure::Forbidden,
        Failure::ServerError,
        Failure::GraphqlErrors {
            message: "Something went wrong while executing your query.".to_owned(),
        },
        Failure::GraphqlRateLimited { reset_at_unix: 0 },
    ];
    for failure in failures {
        let graphql_only = matches!(
            failure,
            Failure::GraphqlErrors { .. } | Failure::GraphqlRateLimited { .. }
        );
        fake.fail_next(failure.clone(), 1);
        let _ = gh.merge_queue(OWNER, REPO, "main");
        if !graphql_only {
            fake.fail_next(failure, 1);
            let _ = gh.compare(OWNER, REPO, &id(1), &id(3));
        }
    }
}

/// A GitHub App client: its first call exchanges an installation token.
fn drive_app(fake: &FakeGithub, clock: &Arc<dyn Clock>) {
    fake.register_app(
        "Iv1.schema",
        4242,
        TEST_APP_PUBLIC_KEY,
        Duration::from_secs(3600),
    );
    let token = Token::App {
        app_id: "Iv1.schema".to_owned(),
        installation_id: 4242,
        private_key_pem: Secret::new(TEST_APP_PRIVATE_KEY),
    };
    let gh = GithubClient::new(config(fake, token, clock.clone())).expect("valid settings");
    gh.in_flight_groups(OWNER, REPO, "main").expect("reads");
    // An installation the fake does not know: 401 from the token endpoint.
    let stranger = Token::App {
        app_id: "Iv1.schema".to_owned(),
        installation_id: 1,
        private_key_pem: Secret::new(TEST_APP_PRIVATE_KEY),
    };
    let gh = GithubClient::new(config(fake, stranger, clock.clone())).expect("valid");
    gh.in_flight_groups(OWNER, REPO, "main")
        .expect_err("unknown installation");
}

fn exchange_json(x: &Exchange) -> Value {
    json!({
        "method": x.method, "path": x.path, "query": x.query,
        "request_body": x.request_body, "status": x.status, "response_body": x.response_body,
    })
}

/// The webhook payloads the tests use: every fixture, and the destroyed one with each reason
/// GitHub documents (the tests also send off-schema variants on purpose; those are not here).
fn webhooks() -> Vec<Value> {
    let load =
        |f: &str| serde_json::from_str::<Value>(&fixture(&format!("webhook/{f}"))).expect("JSON");
    let mut out = vec![
        json!({"name": "merge_group_checks_requested.json", "event": "merge_group", "payload": load("merge_group_checks_requested.json")}),
        json!({"name": "push.json", "event": "push", "payload": load("push.json")}),
        json!({"name": "ping.json", "event": "ping", "payload": load("ping.json")}),
    ];
    for reason in ["merged", "invalidated", "dequeued"] {
        let mut payload = load("merge_group_destroyed.json");
        payload["reason"] = Value::from(reason);
        out.push(json!({"name": format!("merge_group_destroyed.json ({reason})"), "event": "merge_group", "payload": payload}));
    }
    let mut forced = load("push.json");
    forced["forced"] = Value::from(true);
    out.push(json!({"name": "push.json (forced)", "event": "push", "payload": forced}));
    out
}

#[test]
fn every_request_and_answer_and_payload_has_githubs_documented_shape() {
    // One manual clock for both sides: rate-limit waits pass at once, JWTs are judged alike.
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::at(1_700_000_000_000));
    let fake = FakeGithub::start_with_clock(clock.clone());
    let gh = client(&fake, clock.clone());
    drive_queue(&fake, &gh);
    drive_compare(&fake, &gh);
    drive_failures(&fake, &gh);
    drive_app(&fake, &clock);

    let exchanges = fake.exchanges();
    let routes: BTreeSet<String> = exchanges
        .iter()
        .map(|x| match x.path.as_str() {
            "/graphql" => "POST /graphql".to_owned(),
            p if p.contains("/compare/") => format!("{} compare", x.method),
            p if p.ends_with("/access_tokens") => format!("{} access_tokens", x.method),
            other => format!("{} {other}", x.method),
        })
        .collect();
    assert_eq!(
        routes,
        BTreeSet::from([
            "GET compare".to_owned(),
            "POST /graphql".to_owned(),
            "POST access_tokens".to_owned()
        ]),
        "the client made a request to a route the fake does not serve, or one went unexercised"
    );
    let statuses: BTreeSet<u16> = exchanges.iter().map(|x| x.status).collect();
    assert!(
        statuses.is_superset(&BTreeSet::from([200, 201, 401, 403, 404, 429, 500])),
        "{statuses:?}"
    );

    let corpus = json!({
        "exchanges": exchanges.iter().map(exchange_json).collect::<Vec<_>>(),
        "webhooks": webhooks(),
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("corpus.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&corpus).expect("JSON")).expect("write corpus");
    let report = check_corpus(&file);
    println!("{report}");
    assert!(report.contains("; 0 problems"), "{report}");
}

/// Every `pub fn name(&self, …)` in an `impl GithubClient` block of `src/api/` is one this
/// test drives.
#[test]
fn every_public_client_call_is_driven() {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/api");
    let mut calls = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("src/api is readable") {
        let text = std::fs::read_to_string(entry.expect("entry").path()).expect("readable");
        for block in text.split("\nimpl GithubClient {").skip(1) {
            let body = block.split("\n}\n").next().unwrap_or_default();
            for item in body.split("\n    pub fn ").skip(1) {
                let name: String = item
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                let signature: String = item.chars().take_while(|c| *c != '{').collect();
                if signature.contains("&self") {
                    calls.insert(name);
                }
            }
        }
    }
    let driven: BTreeSet<String> = DRIVEN.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(
        calls, driven,
        "every public GithubClient call must be driven through the schema check (DRIVEN)"
    );
}
