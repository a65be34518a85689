//! Every `merge_group`, `push` and `pull_request` example GitHub publishes
//! (`@octokit/webhooks-examples`, installed by `npm ci` in `tests/github-schemas`) is parsed by
//! mainline's webhook code without error, into the facts the payload states: group head and
//! base, ref, before/after, the destroy reason. And the batching assumption of
//! `src/api/queue.rs` (entries sharing a head commit are one group, named `pr-<N>` after its
//! last pull request) is checked to name a group exactly as its webhook does.
//!
//! Never skips: without the examples installed it fails, saying to run `npm ci`.

mod common;

use common::schemas::installed;
use common::{client, OWNER, REPO};
use mainline_github::fake::{FakeEntry, FakeGithub, ManualClock};
use mainline_github::webhook::{parse_event, DestroyReason, Event};
use serde_json::Value;
use std::sync::Arc;

/// `(source, event, example)` for every example of `merge_group`, `push` and `pull_request`,
/// from github.com's and every GitHub Enterprise Server's list.
fn examples() -> Vec<(String, String, Value)> {
    let root = installed("@octokit/webhooks-examples");
    let mut out = Vec::new();
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .expect("examples directory is readable")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("index.json").is_file())
        .collect();
    dirs.sort();
    for dir in dirs {
        let text = std::fs::read_to_string(dir.join("index.json")).expect("readable");
        let events: Vec<Value> = serde_json::from_str(&text).expect("index.json is JSON");
        let source = dir
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        for event in events {
            let name = event["name"].as_str().expect("name").to_owned();
            if !matches!(name.as_str(), "merge_group" | "push" | "pull_request") {
                continue;
            }
            for example in event["examples"].as_array().expect("examples") {
                out.push((source.clone(), name.clone(), example.clone()));
            }
        }
    }
    out
}

fn s<'v>(v: &'v Value, pointer: &str) -> &'v str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("example lacks {pointer}"))
}

fn id(v: &Value, pointer: &str) -> mainline_core::CommitId {
    s(v, pointer).parse().expect("a commit id")
}

fn parse(event: &str, example: &Value) -> Event {
    let body = serde_json::to_vec(example).expect("JSON");
    parse_event(event, "example-delivery", &body)
        .unwrap_or_else(|e| panic!("{event} example refused: {e}\n{example}"))
}

#[test]
fn every_published_example_parses_into_the_facts_it_states() {
    let all = examples();
    let count = |e: &str| all.iter().filter(|(_, name, _)| name == e).count();
    assert!(
        count("merge_group") >= 2,
        "merge_group examples: {}",
        count("merge_group")
    );
    assert!(count("push") >= 7, "push examples: {}", count("push"));
    assert!(
        count("pull_request") >= 29,
        "pull_request examples: {}",
        count("pull_request")
    );
    for (source, name, ex) in &all {
        let repository = ex
            .pointer("/repository/full_name")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let got = parse(name, ex);
        let want = match name.as_str() {
            "merge_group" => {
                assert_eq!(
                    s(ex, "/action"),
                    "checks_requested",
                    "{source}: a new action"
                );
                Event::MergeGroupChecksRequested {
                    repository,
                    head_sha: id(ex, "/merge_group/head_sha"),
                    head_ref: s(ex, "/merge_group/head_ref").to_owned(),
                    base_sha: id(ex, "/merge_group/base_sha"),
                    base_ref: s(ex, "/merge_group/base_ref").to_owned(),
                }
            }
            "push" => Event::Push {
                repository,
                git_ref: s(ex, "/ref").to_owned(),
                before: id(ex, "/before"),
                after: id(ex, "/after"),
                forced: ex["forced"].as_bool().expect("forced"),
            },
            _ => Event::Ignored {
                event: "pull_request".to_owned(),
            },
        };
        assert_eq!(got, want, "{source} {name}");
        // Only a push to the mainline branch (or a destroyed group) starts a reconcile.
        let full_name = ex
            .pointer("/repository/full_name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let branch = ex["ref"]
            .as_str()
            .and_then(|r| r.strip_prefix("refs/heads/"));
        let triggers = got.triggers_reconcile(full_name, branch.unwrap_or("main"));
        assert_eq!(
            triggers,
            name == "push" && branch.is_some(),
            "{source} {name}"
        );
    }
}

#[test]
fn a_destroyed_group_built_from_each_example_yields_its_reason_and_head() {
    let groups: Vec<Value> = examples()
        .into_iter()
        .filter(|(_, name, _)| name == "merge_group")
        .map(|(_, _, ex)| ex)
        .collect();
    assert!(!groups.is_empty());
    for ex in groups {
        // GitHub publishes no `destroyed` example; its description (checked against our
        // fixture in tests/github-schemas) differs from `checks_requested` by `reason` only.
        for (reason, want) in [
            ("merged", DestroyReason::Merged),
            ("invalidated", DestroyReason::Invalidated),
            ("dequeued", DestroyReason::Dequeued),
        ] {
            let mut destroyed = ex.clone();
            destroyed["action"] = Value::from("destroyed");
            destroyed["reason"] = Value::from(reason);
            let got = parse("merge_group", &destroyed);
            assert_eq!(
                got,
                Event::MergeGroupDestroyed {
                    repository: Some(s(&ex, "/repository/full_name").to_owned()),
                    reason: want.clone(),
                    head_sha: id(&ex, "/merge_group/head_sha"),
                    head_ref: s(&ex, "/merge_group/head_ref").to_owned(),
                    base_ref: s(&ex, "/merge_group/base_ref").to_owned(),
                }
            );
            let triggers = got.triggers_reconcile(s(&ex, "/repository/full_name"), "main");
            assert_eq!(triggers, want != DestroyReason::Merged, "{reason}");
        }
    }
}

/// A batch: the queue lists one entry per pull request; mainline assumes the entries of one
/// merge group share its head commit (GitHub's schema names no group, see
/// tests/github-schemas/test/batches.test.mjs). The group's webhook names only the last pull
/// request (`…/pr-<N>-<sha>`). Both sources must name the group alike, with the same head.
#[test]
fn a_batched_queue_group_and_its_webhook_name_the_same_group() {
    let ex = examples()
        .into_iter()
        .find(|(_, name, _)| name == "merge_group")
        .map(|(_, _, ex)| ex)
        .expect("a merge_group example");
    let event = parse("merge_group", &ex);
    let webhook_id = event
        .group_id()
        .expect("a gh-readonly-queue ref names its group");
    let last: u64 = webhook_id
        .trim_start_matches("pr-")
        .parse()
        .expect("pr number");
    let head = s(&ex, "/merge_group/head_sha");
    let base = s(&ex, "/merge_group/base_sha");

    let clock = Arc::new(ManualClock::at(1_700_000_000_000));
    let fake = FakeGithub::start_with_clock(clock.clone());
    fake.set_queue(
        OWNER,
        REPO,
        "main",
        vec![
            FakeEntry::new(last - 2, "AWAITING_CHECKS", head, base),
            FakeEntry::new(last - 1, "AWAITING_CHECKS", head, base),
            FakeEntry::new(last, "AWAITING_CHECKS", head, base),
        ],
    );
    let groups = client(&fake, clock)
        .in_flight_groups(OWNER, REPO, "main")
        .expect("reads");
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(groups[0].id, webhook_id);
    assert_eq!(groups[0].head.to_string(), head);
    assert_eq!(groups[0].prs, vec![last - 2, last - 1, last]);
}
