//! The fixtures directory is the one place for GitHub's shapes: every file is documented in
//! its README and carries the field names the client and the fake rely on.

mod common;

use common::fixture;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("fixtures directory is readable") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[test]
fn every_fixture_is_documented_and_json_fixtures_parse() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let readme = fixture("README.md");
    let mut all = Vec::new();
    files(&root, &mut all);
    assert!(all.len() >= 16, "{all:?}");
    for path in all {
        let relative = path
            .strip_prefix(&root)
            .expect("under fixtures/")
            .to_string_lossy()
            .replace('\\', "/");
        if relative == "README.md" {
            continue;
        }
        assert!(
            readme.contains(&format!("`{relative}`")),
            "README.md does not name {relative}"
        );
        if relative.ends_with(".json") {
            let text = std::fs::read_to_string(&path).expect("readable");
            serde_json::from_str::<Value>(&text)
                .unwrap_or_else(|e| panic!("{relative} is not JSON: {e}"));
        }
    }
}

fn has(json: &Value, pointer: &str) -> bool {
    json.pointer(pointer).is_some_and(|v| !v.is_null())
}

#[test]
fn api_templates_carry_the_documented_field_names() {
    let json = |p: &str| serde_json::from_str::<Value>(&fixture(p)).expect("JSON");
    let compare = json("api/compare_response.json");
    for p in [
        "/status",
        "/ahead_by",
        "/behind_by",
        "/merge_base_commit/sha",
        "/base_commit/sha",
    ] {
        assert!(has(&compare, p), "compare lacks {p}");
    }
    let page = json("api/merge_queue_response.json");
    let entries = "/data/repository/mergeQueue/entries";
    for p in [
        "/pageInfo/hasNextPage",
        "/pageInfo/endCursor",
        "/nodes/0/position",
        "/nodes/0/state",
        "/nodes/0/headCommit/oid",
        "/nodes/0/baseCommit/oid",
        "/nodes/0/pullRequest/number",
    ] {
        assert!(has(&page, &format!("{entries}{p}")), "queue page lacks {p}");
    }
    let token = json("api/installation_token_response.json");
    assert!(has(&token, "/token") && has(&token, "/expires_at"));
    for p in ["api/graphql_errors.json", "api/graphql_rate_limited.json"] {
        assert!(has(&json(p), "/errors/0/message"), "{p}");
        assert!(has(&json(p), "/errors/0/type"), "{p}");
    }
    let query = mainline_github::GRAPHQL_DOCUMENTS
        .iter()
        .find(|d| d.file == "merge_queue.graphql")
        .expect("the merge queue document")
        .text;
    for field in [
        "repository(owner: $owner, name: $name)",
        "mergeQueue(branch: $branch)",
        "entries(first: $first, after: $after)",
        "hasNextPage",
        "endCursor",
        "position",
        "state",
        "headCommit",
        "baseCommit",
        "pullRequest",
        "oid",
        "number",
    ] {
        assert!(query.contains(field), "query lacks {field}");
    }
}

#[test]
fn webhook_fixtures_carry_the_documented_field_names() {
    let json = |p: &str| serde_json::from_str::<Value>(&fixture(p)).expect("JSON");
    for p in [
        "webhook/merge_group_checks_requested.json",
        "webhook/merge_group_destroyed.json",
    ] {
        let body = json(p);
        for f in [
            "head_sha",
            "head_ref",
            "base_sha",
            "base_ref",
            "head_commit",
        ] {
            assert!(
                has(&body, &format!("/merge_group/{f}")),
                "{p} lacks merge_group.{f}"
            );
        }
    }
    assert_eq!(
        json("webhook/merge_group_destroyed.json")["reason"],
        "dequeued"
    );
    let push = json("webhook/push.json");
    for f in [
        "/ref", "/before", "/after", "/forced", "/created", "/deleted",
    ] {
        assert!(has(&push, f), "push lacks {f}");
    }
    assert!(has(&json("webhook/ping.json"), "/zen"));
}

#[test]
fn the_test_key_is_labelled_throwaway() {
    let readme = fixture("README.md");
    assert!(readme.contains("THROWAWAY TEST KEY"));
    assert!(
        fixture("keys/throwaway-test-app-key.pem").starts_with("-----BEGIN RSA PRIVATE KEY-----")
    );
}
