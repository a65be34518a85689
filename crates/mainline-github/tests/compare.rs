//! Commit comparison and ancestry against the fake GitHub, with real git as the oracle.

mod common;

use common::{client, commit, OWNER, REPO};
use mainline_core::CommitId;
use mainline_github::fake::FakeGithub;
use mainline_github::{CompareStatus, ErrorKind, GithubError, SystemClock};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

fn id(s: &str) -> CommitId {
    s.parse().expect("valid commit id")
}

/// c1 ← c2 ← c3 (main); c2 ← c4 ← c5 (feature); c6 merges c3 and c5.
fn graph(fake: &FakeGithub) {
    fake.add_repo(OWNER, REPO);
    fake.add_commit(&commit(1), &[]);
    fake.add_commit(&commit(2), &[&commit(1)]);
    fake.add_commit(&commit(3), &[&commit(2)]);
    fake.add_commit(&commit(4), &[&commit(2)]);
    fake.add_commit(&commit(5), &[&commit(4)]);
    fake.add_commit(&commit(6), &[&commit(3), &commit(5)]);
}

#[test]
fn compare_reports_each_status() {
    let fake = FakeGithub::start();
    graph(&fake);
    let gh = client(&fake, Arc::new(SystemClock));
    let cases = [
        (1, 3, CompareStatus::Ahead, 2, 0, 1),
        (3, 3, CompareStatus::Identical, 0, 0, 3),
        (3, 1, CompareStatus::Behind, 0, 2, 1),
        (3, 5, CompareStatus::Diverged, 2, 1, 2),
        (5, 6, CompareStatus::Ahead, 2, 0, 5),
    ];
    for (base, head, status, ahead_by, behind_by, merge_base) in cases {
        let got = gh
            .compare(OWNER, REPO, &id(&commit(base)), &id(&commit(head)))
            .expect("compares");
        assert_eq!(got.status, status, "{base}...{head}");
        assert_eq!(
            (got.ahead_by, got.behind_by),
            (ahead_by, behind_by),
            "{base}...{head}"
        );
        assert_eq!(got.merge_base, id(&commit(merge_base)), "{base}...{head}");
    }
    let paths: Vec<String> = fake.requests().into_iter().map(|r| r.path).collect();
    assert!(paths.contains(&format!(
        "/repos/{OWNER}/{REPO}/compare/{}...{}?per_page=1",
        commit(1),
        commit(3)
    )));
}

#[test]
fn is_ancestor_for_ahead_identical_behind_diverged() {
    let fake = FakeGithub::start();
    graph(&fake);
    let gh = client(&fake, Arc::new(SystemClock));
    let ask = |a: u32, d: u32| {
        gh.is_ancestor(OWNER, REPO, &id(&commit(a)), &id(&commit(d)))
            .expect("answers")
    };
    assert!(ask(1, 3), "ahead");
    assert!(ask(3, 3), "identical");
    assert!(!ask(3, 1), "behind");
    assert!(!ask(3, 5), "diverged");
    assert!(ask(4, 6), "through a merge");
    // Equal ids need no request.
    let before = fake.requests().len();
    assert!(ask(2, 2));
    assert_eq!(fake.requests().len(), before);
}

#[test]
fn unknown_commit_is_not_found_never_false() {
    let fake = FakeGithub::start();
    graph(&fake);
    let gh = client(&fake, Arc::new(SystemClock));
    let err = gh
        .is_ancestor(OWNER, REPO, &id(&commit(1)), &id(&commit(99)))
        .expect_err("unknown commit");
    assert!(matches!(err, GithubError::NotFound { .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("404"), "{err}");
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_DATE", "2024-05-01T12:00:00Z")
        .env("GIT_COMMITTER_DATE", "2024-05-01T12:00:00Z")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

/// Every ordered pair of commits in a real repository with branches and merges: our answer
/// (through the fake's graph model and the client) equals `git merge-base --is-ancestor`, and
/// the counts equal `git rev-list --count`.
#[test]
fn ancestry_matches_git_for_every_pair() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    git(d, &["init", "-q", "-b", "main"]);
    git(d, &["config", "user.email", "t@example.com"]);
    git(d, &["config", "user.name", "t"]);
    let commit_empty = |msg: &str| git(d, &["commit", "-q", "--allow-empty", "-m", msg]);
    commit_empty("m1");
    commit_empty("m2");
    git(d, &["checkout", "-q", "-b", "feature"]);
    commit_empty("f1");
    commit_empty("f2");
    git(d, &["checkout", "-q", "main"]);
    commit_empty("m3");
    git(
        d,
        &["merge", "-q", "--no-ff", "-m", "merge feature", "feature"],
    );
    git(d, &["checkout", "-q", "-b", "other", "HEAD~2"]);
    commit_empty("o1");
    git(d, &["checkout", "-q", "main"]);
    commit_empty("m4");

    let fake = FakeGithub::start();
    fake.add_repo(OWNER, REPO);
    let listing = git(d, &["rev-list", "--parents", "--all"]);
    let mut commits = Vec::new();
    for line in listing.lines() {
        let mut ids = line.split_whitespace();
        let c = ids.next().expect("a commit per line").to_owned();
        let parents: Vec<&str> = ids.collect();
        fake.add_commit(&c, &parents);
        commits.push(c);
    }
    assert_eq!(commits.len(), 8);
    let gh = client(&fake, Arc::new(SystemClock));

    for a in &commits {
        for b in &commits {
            let oracle = Command::new("git")
                .current_dir(d)
                .args(["merge-base", "--is-ancestor", a, b])
                .status()
                .expect("git runs")
                .success();
            let ours = gh
                .is_ancestor(OWNER, REPO, &id(a), &id(b))
                .expect("answers");
            assert_eq!(ours, oracle, "is {a} an ancestor of {b}?");
            if a != b {
                let got = gh.compare(OWNER, REPO, &id(a), &id(b)).expect("compares");
                let ahead: u64 = git(d, &["rev-list", "--count", &format!("{a}..{b}")])
                    .parse()
                    .expect("a count");
                let behind: u64 = git(d, &["rev-list", "--count", &format!("{b}..{a}")])
                    .parse()
                    .expect("a count");
                assert_eq!((got.ahead_by, got.behind_by), (ahead, behind), "{a}...{b}");
                let merge_base = git(d, &["merge-base", a, b]);
                assert_eq!(got.merge_base, id(&merge_base), "{a}...{b}");
            }
        }
    }
}
