//! `remote_refs`: one ls-remote gives the mainline tip, the merge queue's groups (created and
//! deleted on the bare remote the way GitHub does) and mainline's own refs; malformed queue
//! refs and other branches' queues are skipped, never fatal.

mod support;

use mainline_git::{GitError, GitRemote, RemoteRefs};
use support::Fixture;

#[test]
fn reads_mainline_queue_groups_and_mainline_refs() {
    let fx = Fixture::new();
    let base = fx.commit("base", &[("k8s/app.yaml", "v1\n")], 1_700_000_000);
    fx.push("refs/heads/main");
    let group = fx.commit("group head", &[("k8s/app.yaml", "v2\n")], 1_700_000_100);
    let queue_ref = format!("refs/heads/gh-readonly-queue/main/pr-12-{base}");
    fx.push(&queue_ref);
    fx.set_remote_ref("refs/mainline/lock/prod", &base);
    // Not ours: another branch, and a suffix match that ls-remote's patterns would return.
    fx.set_remote_ref("refs/heads/other", &group);
    fx.set_remote_ref("refs/heads/feature/refs/heads/main", &group);

    let remote = GitRemote::open(&fx.url(), &fx.cache_root("cache")).expect("open");
    let refs = remote.remote_refs("main").expect("ls-remote");
    assert_eq!(refs.mainline.as_ref(), Some(&base));
    assert_eq!(refs.queue.len(), 1, "{refs:?}");
    assert_eq!(refs.queue[0].refname, queue_ref);
    assert_eq!(refs.queue[0].branch, "main");
    assert_eq!(refs.queue[0].pr, 12);
    assert_eq!(refs.queue[0].head, group);
    assert_eq!(refs.other.len(), 1);
    assert_eq!(refs.other.get("refs/mainline/lock/prod"), Some(&base));

    // The group ends: GitHub deletes its ref.
    fx.delete_remote_ref(&queue_ref);
    let refs = remote.remote_refs("main").expect("ls-remote");
    assert!(refs.queue.is_empty(), "{refs:?}");
    assert_eq!(refs.mainline.as_ref(), Some(&base));
}

#[test]
fn branch_names_with_slashes_and_malformed_queue_refs() {
    let fx = Fixture::new();
    let base = fx.commit("base", &[("k8s/app.yaml", "v1\n")], 1_700_000_000);
    fx.push("refs/heads/release/1.x");
    let head = fx.commit("group", &[("k8s/app.yaml", "v2\n")], 1_700_000_100);
    let good = format!("refs/heads/gh-readonly-queue/release/1.x/pr-7-{base}");
    fx.push(&good);
    for malformed in [
        "refs/heads/gh-readonly-queue/release/1.x/pr-abc-0123".to_owned(),
        "refs/heads/gh-readonly-queue/release/1.x/pr-9".to_owned(),
        "refs/heads/gh-readonly-queue/release/1.x/pr-9-nothex".to_owned(),
        "refs/heads/gh-readonly-queue/release/1.x/group-3".to_owned(),
        // The queue of branch `release/1.x/hotfix`, not of `release/1.x`.
        format!("refs/heads/gh-readonly-queue/release/1.x/hotfix/pr-8-{base}"),
    ] {
        fx.set_remote_ref(&malformed, &head);
    }

    let remote = GitRemote::open(&fx.url(), &fx.cache_root("cache")).expect("open");
    let refs = remote.remote_refs("release/1.x").expect("ls-remote");
    assert_eq!(refs.mainline.as_ref(), Some(&base));
    assert_eq!(refs.queue.len(), 1, "only the well-formed group: {refs:?}");
    assert_eq!(refs.queue[0].pr, 7);
    assert_eq!(refs.queue[0].branch, "release/1.x");
    assert_eq!(refs.queue[0].head, head);

    // A branch that does not exist is simply absent.
    let refs = remote.remote_refs("nope").expect("ls-remote");
    assert_eq!(refs, RemoteRefs::default());
}

#[test]
fn invalid_branch_names_are_refused_before_running_git() {
    let fx = Fixture::new();
    let remote = GitRemote::open(&fx.url(), &fx.cache_root("cache")).expect("open");
    for bad in ["", "a..b", "-rf", "main*", "with space", "trailing/"] {
        let err = remote.remote_refs(bad).expect_err(bad);
        assert!(
            matches!(err, GitError::InvalidRefName { .. }),
            "{bad:?}: {err}"
        );
        assert!(err.to_string().contains("branch name"), "{err}");
    }
}

#[test]
fn parse_tolerates_garbage_lines() {
    let c = "0123456789abcdef0123456789abcdef01234567";
    let text = format!(
        "garbage\nnot-a-sha\trefs/heads/main\n{c}\trefs/heads/main\n{c}\trefs/mainline/journal/prod\n\n"
    );
    let refs = RemoteRefs::parse("main", &text);
    assert_eq!(refs.mainline.as_ref().map(|c| c.as_str()), Some(c));
    assert_eq!(refs.other.len(), 1);
}
