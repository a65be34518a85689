//! Parsing webhook deliveries into events, and which events start a reconcile.

mod common;

use common::fixture;
use mainline_core::CommitId;
use mainline_github::webhook::{
    group_id_for_head_ref, parse_event, DestroyReason, Event, WebhookError, MAX_BODY_BYTES,
};
use serde_json::Value;

const DELIVERY: &str = "72d3162e-cc78-11e3-81ab-4c9367dc0958";
const HEAD: &str = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
const BASE: &str = "6dcb09b5b57875f334f61aebed695e2e4193db5e";
const HEAD_REF: &str =
    "refs/heads/gh-readonly-queue/main/pr-42-9b2c6c2b1f0e8d7a6b5c4d3e2f1a0b9c8d7e6f5a";
const REPO: &str = "octocat/Hello-World";

fn id(s: &str) -> CommitId {
    s.parse().expect("valid commit id")
}

fn json(path: &str) -> Value {
    serde_json::from_str(&fixture(path)).expect("fixture is JSON")
}

fn parse(event: &str, body: &Value) -> Result<Event, WebhookError> {
    parse_event(event, DELIVERY, body.to_string().as_bytes())
}

fn destroyed(reason: Option<&str>) -> Value {
    let mut body = json("webhook/merge_group_destroyed.json");
    match reason {
        Some(r) => body["reason"] = Value::from(r),
        None => {
            body.as_object_mut().expect("object").remove("reason");
        }
    }
    body
}

#[test]
fn checks_requested_is_parsed() {
    let event = parse(
        "merge_group",
        &json("webhook/merge_group_checks_requested.json"),
    );
    assert_eq!(
        event,
        Ok(Event::MergeGroupChecksRequested {
            repository: Some(REPO.to_owned()),
            head_sha: id(HEAD),
            head_ref: HEAD_REF.to_owned(),
            base_sha: id(BASE),
            base_ref: "refs/heads/main".to_owned(),
        })
    );
}

#[test]
fn destroyed_reasons_are_parsed() {
    let cases = [
        (Some("merged"), DestroyReason::Merged),
        (Some("invalidated"), DestroyReason::Invalidated),
        (Some("dequeued"), DestroyReason::Dequeued),
        (
            Some("timed_out"),
            DestroyReason::Other("timed_out".to_owned()),
        ),
        (None, DestroyReason::Other(String::new())),
    ];
    for (reason, expected) in cases {
        let event = parse("merge_group", &destroyed(reason));
        assert_eq!(
            event,
            Ok(Event::MergeGroupDestroyed {
                repository: Some(REPO.to_owned()),
                reason: expected,
                head_sha: id(HEAD),
                head_ref: HEAD_REF.to_owned(),
                base_ref: "refs/heads/main".to_owned(),
            }),
            "reason {reason:?}"
        );
    }
}

#[test]
fn push_is_parsed() {
    let mut body = json("webhook/push.json");
    assert_eq!(
        parse("push", &body),
        Ok(Event::Push {
            repository: Some(REPO.to_owned()),
            git_ref: "refs/heads/main".to_owned(),
            before: id(BASE),
            after: id(HEAD),
            forced: false,
        })
    );
    body["forced"] = Value::from(true);
    assert!(matches!(
        parse("push", &body),
        Ok(Event::Push { forced: true, .. })
    ));
}

#[test]
fn ping_is_parsed() {
    assert_eq!(parse("ping", &json("webhook/ping.json")), Ok(Event::Ping));
}

#[test]
fn unknown_events_and_actions_are_ignored_not_errors() {
    assert_eq!(
        parse_event("issues", DELIVERY, b"{\"action\":\"opened\"}"),
        Ok(Event::Ignored {
            event: "issues".to_owned()
        })
    );
    // Ignored events are not even parsed: GitHub may send any shape.
    assert_eq!(
        parse_event("workflow_run", DELIVERY, b"not json at all"),
        Ok(Event::Ignored {
            event: "workflow_run".to_owned()
        })
    );
    let mut body = json("webhook/merge_group_checks_requested.json");
    body["action"] = Value::from("enqueued_for_review");
    assert_eq!(
        parse("merge_group", &body),
        Ok(Event::Ignored {
            event: "merge_group.enqueued_for_review".to_owned()
        })
    );
}

fn malformed_field(result: Result<Event, WebhookError>) -> String {
    match result {
        Err(WebhookError::Malformed {
            field,
            delivery,
            event,
            ..
        }) => {
            assert_eq!(delivery, DELIVERY);
            assert!(!event.is_empty());
            field
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn truncated_json_is_malformed() {
    let text = fixture("webhook/merge_group_checks_requested.json");
    let truncated = &text.as_bytes()[..text.len() / 2];
    let err = parse_event("merge_group", DELIVERY, truncated);
    assert_eq!(malformed_field(err.clone()), "(body)");
    let message = err.expect_err("malformed").to_string();
    assert!(message.contains(DELIVERY), "{message}");
    assert!(message.contains("application/json"), "{message}");
}

#[test]
fn non_object_body_is_malformed() {
    assert_eq!(
        malformed_field(parse_event("push", DELIVERY, b"[1,2]")),
        "(body)"
    );
}

#[test]
fn missing_and_mistyped_fields_are_named() {
    let remove = |path: &[&str]| {
        let mut body = json("webhook/merge_group_checks_requested.json");
        let (last, parents) = path.split_last().expect("non-empty path");
        let mut node = &mut body;
        for p in parents {
            node = &mut node[*p];
        }
        node.as_object_mut().expect("object").remove(*last);
        body
    };
    assert_eq!(
        malformed_field(parse("merge_group", &remove(&["merge_group", "head_sha"]))),
        "merge_group.head_sha"
    );
    assert_eq!(
        malformed_field(parse("merge_group", &remove(&["merge_group", "base_ref"]))),
        "merge_group.base_ref"
    );
    assert_eq!(
        malformed_field(parse("merge_group", &remove(&["action"]))),
        "action"
    );

    let mut bad_sha = json("webhook/merge_group_checks_requested.json");
    bad_sha["merge_group"]["head_sha"] = Value::from("not-a-sha");
    assert_eq!(
        malformed_field(parse("merge_group", &bad_sha)),
        "merge_group.head_sha"
    );

    let mut bad_forced = json("webhook/push.json");
    bad_forced["forced"] = Value::from("yes");
    assert_eq!(malformed_field(parse("push", &bad_forced)), "forced");

    let mut null_after = json("webhook/push.json");
    null_after["after"] = Value::Null;
    assert_eq!(malformed_field(parse("push", &null_after)), "after");

    let mut bad_reason = destroyed(Some("merged"));
    bad_reason["reason"] = Value::from(7);
    assert_eq!(malformed_field(parse("merge_group", &bad_reason)), "reason");
}

#[test]
fn oversized_body_is_refused() {
    let body = vec![b' '; MAX_BODY_BYTES + 1];
    assert!(matches!(
        parse_event("push", DELIVERY, &body),
        Err(WebhookError::TooLarge { .. })
    ));
}

#[test]
fn which_events_trigger_a_reconcile() {
    let ev = |event: &str, body: &Value| parse(event, body).expect("parses");
    let mut other_branch_push = json("webhook/push.json");
    other_branch_push["ref"] = Value::from("refs/heads/feature");
    let mut queue_branch_push = json("webhook/push.json");
    queue_branch_push["ref"] = Value::from(HEAD_REF);
    let mut tag_push = json("webhook/push.json");
    tag_push["ref"] = Value::from("refs/tags/main");
    let mut forced_push = json("webhook/push.json");
    forced_push["forced"] = Value::from(true);
    let mut other_repo_push = json("webhook/push.json");
    other_repo_push["repository"]["full_name"] = Value::from("octocat/Other");
    let mut no_repo_push = json("webhook/push.json");
    no_repo_push
        .as_object_mut()
        .expect("object")
        .remove("repository");
    let mut release_group = destroyed(Some("dequeued"));
    release_group["merge_group"]["base_ref"] = Value::from("refs/heads/release");

    let cases = [
        (
            "checks_requested",
            ev(
                "merge_group",
                &json("webhook/merge_group_checks_requested.json"),
            ),
            false,
        ),
        (
            "destroyed merged",
            ev("merge_group", &destroyed(Some("merged"))),
            false,
        ),
        (
            "destroyed invalidated",
            ev("merge_group", &destroyed(Some("invalidated"))),
            true,
        ),
        (
            "destroyed dequeued",
            ev("merge_group", &destroyed(Some("dequeued"))),
            true,
        ),
        (
            "destroyed, unknown reason",
            ev("merge_group", &destroyed(Some("timed_out"))),
            true,
        ),
        (
            "destroyed, no reason",
            ev("merge_group", &destroyed(None)),
            true,
        ),
        (
            "destroyed, other base branch",
            ev("merge_group", &release_group),
            false,
        ),
        ("push to main", ev("push", &json("webhook/push.json")), true),
        ("force-push to main", ev("push", &forced_push), true),
        (
            "push to a feature branch",
            ev("push", &other_branch_push),
            false,
        ),
        (
            "push of a merge-queue branch",
            ev("push", &queue_branch_push),
            false,
        ),
        ("push of a tag named main", ev("push", &tag_push), false),
        (
            "push to another repository",
            ev("push", &other_repo_push),
            false,
        ),
        ("push without repository", ev("push", &no_repo_push), true),
        ("ping", Event::Ping, false),
        (
            "ignored",
            Event::Ignored {
                event: "issues".to_owned(),
            },
            false,
        ),
    ];
    for (name, event, expected) in cases {
        assert_eq!(event.triggers_reconcile(REPO, "main"), expected, "{name}");
    }
    // Repository names compare case-insensitively, as on GitHub.
    let push = ev("push", &json("webhook/push.json"));
    assert!(push.triggers_reconcile("OctoCat/hello-world", "main"));
}

#[test]
fn group_ids_match_the_queue_source() {
    assert_eq!(group_id_for_head_ref(HEAD_REF).as_deref(), Some("pr-42"));
    assert_eq!(
        group_id_for_head_ref("gh-readonly-queue/release/v2/pr-7-abc").as_deref(),
        Some("pr-7")
    );
    for not_a_group in [
        "refs/heads/main",
        "refs/heads/gh-readonly-queue/main/feature",
        "refs/heads/gh-readonly-queue/main/pr-x-abc",
        "refs/heads/pr-42-abc",
    ] {
        assert_eq!(group_id_for_head_ref(not_a_group), None, "{not_a_group}");
    }
    let event = parse("merge_group", &destroyed(Some("dequeued"))).expect("parses");
    assert_eq!(event.group_id().as_deref(), Some("pr-42"));
    assert_eq!(Event::Ping.group_id(), None);
}
