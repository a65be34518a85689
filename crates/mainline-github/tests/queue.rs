//! The merge queue through GraphQL against the fake GitHub: pagination, state filtering,
//! grouping, and the errors that must never read as an empty queue.

mod common;

use common::{client, commit, OWNER, REPO};
use mainline_core::CommitId;
use mainline_github::fake::{Failure, FakeEntry, FakeGithub};
use mainline_github::{EntryState, ErrorKind, GithubError, Group, SystemClock, PAGE_SIZE};
use std::sync::Arc;

fn id(s: &str) -> CommitId {
    s.parse().expect("valid commit id")
}

const STATES: [&str; 5] = [
    "QUEUED",
    "AWAITING_CHECKS",
    "MERGEABLE",
    "UNMERGEABLE",
    "LOCKED",
];

#[test]
fn entries_are_read_across_pages() {
    let fake = FakeGithub::start();
    let total = 250u32;
    let entries: Vec<FakeEntry> = (1..=total)
        .map(|n| {
            FakeEntry::new(
                u64::from(n),
                STATES[(n % 5) as usize],
                &commit(n),
                &commit(n + 1000),
            )
        })
        .collect();
    fake.set_queue(OWNER, REPO, "main", entries);
    let gh = client(&fake, Arc::new(SystemClock));

    let got = gh.merge_queue(OWNER, REPO, "main").expect("queue reads");
    assert_eq!(got.len(), total as usize);
    for (i, e) in got.iter().enumerate() {
        let n = u32::try_from(i).expect("small") + 1;
        assert_eq!(e.position, n);
        assert_eq!(e.pr, Some(u64::from(n)));
        assert_eq!(e.head, Some(id(&commit(n))));
        assert_eq!(e.base, Some(id(&commit(n + 1000))));
    }
    assert_eq!(got[0].state, EntryState::AwaitingChecks); // n = 1
    assert_eq!(got[2].state, EntryState::Unmergeable); // n = 3

    // 250 entries at 100 a page: three GraphQL requests.
    let graphql: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.path == "/graphql")
        .collect();
    assert_eq!(graphql.len(), 3);
    assert!(graphql.iter().all(|r| r.authorized && r.method == "POST"));
    assert_eq!(PAGE_SIZE, 100);
}

#[test]
fn exactly_one_full_page_needs_one_request() {
    let fake = FakeGithub::start();
    let entries = (1..=100)
        .map(|n| FakeEntry::new(u64::from(n), "QUEUED", &commit(n), &commit(0)))
        .collect();
    fake.set_queue(OWNER, REPO, "main", entries);
    let gh = client(&fake, Arc::new(SystemClock));
    assert_eq!(
        gh.merge_queue(OWNER, REPO, "main").expect("reads").len(),
        100
    );
    assert_eq!(fake.requests().len(), 1);
}

#[test]
fn in_flight_groups_keep_alive_states_only() {
    let fake = FakeGithub::start();
    let base = commit(100);
    let mut entries: Vec<FakeEntry> = STATES
        .iter()
        .zip(1u32..)
        .map(|(state, n)| FakeEntry::new(u64::from(n), state, &commit(n), &base))
        .collect();
    // A queued entry GitHub has not built a group for yet.
    entries.push(FakeEntry {
        state: "QUEUED".to_owned(),
        head: None,
        base: None,
        pr: Some(6),
    });
    fake.set_queue(OWNER, REPO, "main", entries);
    let gh = client(&fake, Arc::new(SystemClock));

    let groups = gh.in_flight_groups(OWNER, REPO, "main").expect("reads");
    let expected: Vec<Group> = [(1u32, 1u64), (2, 2), (3, 3), (5, 5)]
        .into_iter()
        .map(|(n, pr)| Group {
            id: format!("pr-{pr}"),
            head: id(&commit(n)),
            prs: vec![pr],
            expires_at: None,
        })
        .collect();
    // QUEUED (pr 1), AWAITING_CHECKS (2), MERGEABLE (3), LOCKED (5); not UNMERGEABLE (4),
    // not the entry without a head commit (6).
    assert_eq!(groups, expected);

    let entries = gh.merge_queue(OWNER, REPO, "main").expect("reads");
    assert_eq!(entries[5].head, None);
    assert!(!EntryState::Unmergeable.is_alive());
    assert!(EntryState::Locked.is_alive());
}

#[test]
fn entries_sharing_a_head_form_one_group_named_after_the_last() {
    let fake = FakeGithub::start();
    let base = commit(100);
    fake.set_queue(
        OWNER,
        REPO,
        "main",
        vec![
            FakeEntry::new(11, "AWAITING_CHECKS", &commit(7), &base),
            FakeEntry::new(12, "AWAITING_CHECKS", &commit(7), &base),
            FakeEntry::new(13, "AWAITING_CHECKS", &commit(8), &commit(7)),
        ],
    );
    let gh = client(&fake, Arc::new(SystemClock));
    let groups = gh.in_flight_groups(OWNER, REPO, "main").expect("reads");
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0].id, "pr-12");
    assert_eq!(groups[0].prs, vec![11, 12]);
    assert_eq!(groups[0].head, id(&commit(7)));
    assert_eq!(groups[1].id, "pr-13");
}

#[test]
fn an_empty_queue_is_empty() {
    let fake = FakeGithub::start();
    fake.set_queue(OWNER, REPO, "main", Vec::new());
    let gh = client(&fake, Arc::new(SystemClock));
    assert_eq!(
        gh.in_flight_groups(OWNER, REPO, "main").expect("reads"),
        Vec::new()
    );
}

#[test]
fn a_branch_without_a_merge_queue_is_an_error_not_an_empty_queue() {
    let fake = FakeGithub::start();
    fake.set_queue(OWNER, REPO, "main", Vec::new());
    let gh = client(&fake, Arc::new(SystemClock));
    let err = gh
        .in_flight_groups(OWNER, REPO, "develop")
        .expect_err("no queue there");
    assert!(
        matches!(&err, GithubError::NoMergeQueue { branch, .. } if branch == "develop"),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("ruleset"), "{err}");
}

#[test]
fn graphql_errors_are_surfaced() {
    let fake = FakeGithub::start();
    let gh = client(&fake, Arc::new(SystemClock));
    // Unknown repository: GitHub answers 200 with an `errors` array.
    let err = gh
        .merge_queue(OWNER, "missing", "main")
        .expect_err("unknown repository");
    match &err {
        GithubError::Graphql { messages, .. } => {
            assert_eq!(
                messages,
                &vec![
                    "Could not resolve to a Repository with the name 'octocat/missing'.".to_owned()
                ]
            );
        }
        other => panic!("expected Graphql, got {other:?}"),
    }

    fake.set_queue(OWNER, REPO, "main", Vec::new());
    fake.fail_next(
        Failure::GraphqlErrors {
            message: "Something went wrong while executing your query.".to_owned(),
        },
        1,
    );
    let err = gh
        .merge_queue(OWNER, REPO, "main")
        .expect_err("scripted errors");
    assert!(matches!(err, GithubError::Graphql { .. }), "{err:?}");
    assert!(err.to_string().contains("Something went wrong"), "{err}");
    // Not retried: a GraphQL error is an answer, not an outage.
    assert_eq!(fake.requests().len(), 2);
}

#[test]
fn invalid_commit_ids_from_github_are_refused() {
    let fake = FakeGithub::start();
    fake.set_queue(
        OWNER,
        REPO,
        "main",
        vec![FakeEntry::new(
            1,
            "AWAITING_CHECKS",
            "NOT-A-SHA",
            &commit(1),
        )],
    );
    let gh = client(&fake, Arc::new(SystemClock));
    let err = gh
        .in_flight_groups(OWNER, REPO, "main")
        .expect_err("bad oid");
    assert!(matches!(err, GithubError::Decode { .. }), "{err:?}");
    assert!(err.to_string().contains("headCommit.oid"), "{err}");
}

#[test]
fn names_that_could_escape_the_url_path_are_refused_before_any_request() {
    let fake = FakeGithub::start();
    let gh = client(&fake, Arc::new(SystemClock));
    for (owner, repo) in [
        ("octo/cat", REPO),
        (OWNER, "../x"),
        ("", REPO),
        (OWNER, "a?b"),
    ] {
        let err = gh.merge_queue(owner, repo, "main").expect_err("bad name");
        assert!(
            matches!(err, GithubError::BadName { .. }),
            "{owner}/{repo}: {err:?}"
        );
    }
    assert!(fake.requests().is_empty());
}
