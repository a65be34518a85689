//! The GitHub API as a merge-queue source (`adapters::github::GithubRepo`) over a real git
//! remote and the fake GitHub: the API's groups replace the git-ref queue (entries that failed
//! their checks no longer count as in flight), an unreadable API falls back to GitHub's queue
//! refs (never to an empty queue) and says why, and ancestry goes to the compare endpoint only
//! for commits the local object database lacks — answering what `git merge-base
//! --is-ancestor` answers.

mod support;

use mainline::adapters::git::GitRepo;
use mainline::adapters::github::{GithubQueue, GithubRepo, RepoName};
use mainline::channel::ports::Repo;
use mainline::config::{resolve_from, ChannelArgs, FileConfig};
use mainline_core::CommitId;
use mainline_github::fake::{FakeEntry, FakeGithub};
use mainline_github::{GithubClient, GithubConfig, Token};
use std::process::Command;
use std::sync::Arc;
use support::{fixture_repo, git};

const TOKEN: &str = "ghp_adapter_test_token";

struct Setup {
    _dir: tempfile::TempDir,
    repo: std::path::PathBuf,
    commits: Vec<String>,
    queue_head: String,
    fake: FakeGithub,
    github: GithubRepo<GitRepo>,
}

fn id(s: &str) -> CommitId {
    s.parse().expect("commit id")
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let (repo, commits) = fixture_repo(dir.path());
    let remote = dir.path().join("remote.git");
    git(
        dir.path(),
        &[
            "clone",
            "-q",
            "--bare",
            repo.to_str().expect("utf8"),
            remote.to_str().expect("utf8"),
        ],
    );
    // A merge group GitHub made: its queue ref on the remote, head a child of main.
    git(
        &repo,
        &[
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "Merge pull request #3",
        ],
    );
    let queue_head = git(&repo, &["rev-parse", "HEAD"]);
    let queue_ref = format!("refs/heads/gh-readonly-queue/main/pr-3-{}", commits[2]);
    git(
        &repo,
        &[
            "push",
            "-q",
            remote.to_str().expect("utf8"),
            &format!("HEAD:{queue_ref}"),
        ],
    );
    let args = ChannelArgs {
        channel: Some(format!(
            "oci-layout:{}:latest",
            dir.path().join("store").display()
        )),
        git: Some(remote.to_str().expect("utf8").to_owned()),
        path: Some("k8s".into()),
        ..ChannelArgs::default()
    };
    let (config, _) = resolve_from(&args, FileConfig::default()).expect("valid channel");
    let git_repo = GitRepo::open(&config, &dir.path().join("cache")).expect("open git cache");
    let fake = FakeGithub::start();
    fake.accept_token(TOKEN);
    let mut gh = GithubConfig::new(Token::plain(TOKEN));
    gh.api_url = fake.url();
    gh.graphql_url = fake.graphql_url();
    gh.max_retries = 0;
    let client = Arc::new(GithubClient::new(gh).expect("client"));
    let queue = Arc::new(GithubQueue::new(
        client,
        RepoName::parse("acme/app").expect("name"),
    ));
    Setup {
        _dir: dir,
        repo,
        commits,
        queue_head,
        fake,
        github: GithubRepo::new(git_repo, queue),
    }
}

#[test]
fn the_api_queue_replaces_the_git_refs_and_drops_failed_entries() {
    let s = setup();
    let other = "1111111111111111111111111111111111111111";
    s.fake.set_queue(
        "acme",
        "app",
        "main",
        vec![
            FakeEntry::new(3, "UNMERGEABLE", &s.queue_head, &s.commits[2]),
            FakeEntry::new(4, "AWAITING_CHECKS", other, &s.commits[2]),
            FakeEntry::new(5, "QUEUED", other, &s.commits[2]),
        ],
    );
    let view = s.github.view("main").expect("view");
    assert_eq!(
        view.mainline,
        Some(id(&s.commits[2])),
        "mainline still comes from git"
    );
    let queue: Vec<(String, u64, String)> = view
        .queue
        .iter()
        .map(|q| (q.name.clone(), q.pr, q.head.to_string()))
        .collect();
    // PR 3 failed (UNMERGEABLE) although its queue ref still exists; 4 and 5 share a head
    // (one batched group) named after the last of them.
    assert_eq!(queue, vec![("pr-5".to_owned(), 5, other.to_owned())]);
    assert_eq!(s.github.queue().last_error(), None);
}

#[test]
fn an_unreadable_api_falls_back_to_the_queue_refs_and_says_why() {
    let s = setup();
    // The fake knows no acme/app: GitHub answers "not found".
    let view = s.github.view("main").expect("view");
    let queue: Vec<String> = view.queue.iter().map(|q| q.head.to_string()).collect();
    assert_eq!(
        queue,
        vec![s.queue_head.clone()],
        "the git refs' queue, not an empty one"
    );
    let why = s
        .github
        .queue()
        .last_error()
        .expect("the fallback is recorded");
    assert!(
        why.contains("acme/app") && why.contains("gh-readonly-queue"),
        "{why}"
    );
    assert!(!why.contains(TOKEN), "{why}");
}

#[test]
fn ancestry_asks_github_only_for_commits_missing_locally() {
    let s = setup();
    let (c1, c3) = (&s.commits[0], &s.commits[2]);
    s.github.fetch(&[id(c3)]).expect("fetch main");
    // Local pair: git answers, GitHub is not asked.
    assert!(s
        .github
        .is_ancestor(&id(c1), &id(c3))
        .expect("local ancestry"));
    assert!(s
        .fake
        .requests()
        .iter()
        .all(|r| !r.path.contains("/compare/")));

    // A commit the remote never had (a fork's, say): GitHub's compare answers, from its graph.
    let foreign = "2222222222222222222222222222222222222222";
    assert!(!s.github.has_commit(&id(foreign)));
    s.fake.add_repo("acme", "app");
    s.fake.add_commit(c1, &[]);
    s.fake.add_commit(&s.commits[1], &[c1]);
    s.fake.add_commit(c3, &[&s.commits[1]]);
    s.fake.add_commit(foreign, &[c3]);
    assert!(s
        .github
        .is_ancestor(&id(c3), &id(foreign))
        .expect("compare"));
    assert!(!s
        .github
        .is_ancestor(&id(foreign), &id(c3))
        .expect("compare"));
    let compares = s
        .fake
        .requests()
        .iter()
        .filter(|r| r.path.contains("/compare/"))
        .count();
    assert_eq!(compares, 2);
    // The same graph in git agrees (the oracle for the part git has).
    let oracle = Command::new("git")
        .current_dir(&s.repo)
        .args(["merge-base", "--is-ancestor", c1, c3])
        .status()
        .expect("git");
    assert!(oracle.success());
    // An API failure is an error, never "not an ancestor".
    let unknown = "3333333333333333333333333333333333333333";
    assert!(s.github.is_ancestor(&id(unknown), &id(foreign)).is_err());
}
