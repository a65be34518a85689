//! Fetching into the blob-less cache: commits and trees arrive, blobs do not until
//! `fetch_blobs`; unknown commits are `CommitNotFound`; present commits skip the network.

mod support;

use mainline_git::{GitError, GitErrorKind, GitRemote};
use support::{git, Fixture};

fn two_commits(fx: &Fixture) -> (mainline_core::CommitId, mainline_core::CommitId) {
    let first = fx.commit(
        "first",
        &[
            ("k8s/app.yaml", "a: 1\n"),
            ("k8s/base/svc.yaml", "svc\n"),
            ("README.md", "hi\n"),
        ],
        1_700_000_000,
    );
    let second = fx.commit(
        "second",
        &[("k8s/app.yaml", "a: 2\n"), ("src/lib.rs", "//\n")],
        1_700_000_600,
    );
    fx.push("refs/heads/main");
    (first, second)
}

#[test]
fn blobless_fetch_answers_ancestry_and_deploy_trees_without_blobs() {
    let fx = Fixture::new();
    let (first, second) = two_commits(&fx);
    let remote = GitRemote::open(&fx.url(), &fx.cache_root("cache")).expect("open");
    remote.fetch(&[second.to_string()]).expect("fetch by id");

    let snap = remote.snapshot().expect("snapshot");
    assert!(snap.is_ancestor(&first, &second).expect("present"));
    assert!(!snap.is_ancestor(&second, &first).expect("present"));
    let expected = git(&fx.work, &["rev-parse", &format!("{second}:k8s")]);
    assert_eq!(
        snap.deploy_tree(&second, "k8s/").expect("tree"),
        Some(expected)
    );
    assert_eq!(snap.deploy_tree(&first, "src").expect("absent"), None);
    assert_eq!(snap.commit_time(&second).expect("time"), 1_700_000_600);
    assert_eq!(snap.resolve(second.as_str()).expect("resolve"), second);
    assert_eq!(
        snap.resolve(&format!("{second}~1")).expect("resolve"),
        first
    );
    let err = snap
        .deploy_tree(&second, "k8s/app.yaml")
        .expect_err("a file");
    assert!(
        matches!(err, GitError::NotATree { found: "file", .. }),
        "{err}"
    );

    // Blob-less: the file content is not in the cache.
    let blob = git(&fx.work, &["rev-parse", &format!("{second}:k8s/app.yaml")]);
    let blob_id = gix::ObjectId::from_hex(blob.as_bytes()).expect("hex");
    assert!(
        !snap.repository().has_object(blob_id),
        "blobs must not be fetched"
    );

    // Fetching by ref keeps it under the private namespace and resolves through it.
    remote
        .fetch(&["refs/heads/main".to_owned()])
        .expect("fetch ref");
    let snap = remote.snapshot().expect("snapshot");
    assert_eq!(snap.resolve("refs/heads/main").expect("cached ref"), second);
}

#[test]
fn a_commit_the_remote_does_not_have_is_commit_not_found() {
    let fx = Fixture::new();
    let (_, second) = two_commits(&fx);
    let remote = GitRemote::open(&fx.url(), &fx.cache_root("cache")).expect("open");
    let ghost = "0123456789abcdef0123456789abcdef01234567";
    let err = remote
        .fetch(&[second.to_string(), ghost.to_owned()])
        .expect_err("unknown commit");
    match &err {
        GitError::CommitNotFound { commit, remote: r } => {
            assert_eq!(commit.as_str(), ghost);
            assert!(r.contains("remote.git"), "{r}");
        }
        other => panic!("expected CommitNotFound, got {other:?}"),
    }
    assert_eq!(err.kind(), GitErrorKind::NotFound);
    assert!(err.to_string().contains(ghost), "{err}");

    let snap = remote.snapshot().expect("snapshot");
    let missing: mainline_core::CommitId = ghost.parse().expect("hex");
    let err = snap
        .is_ancestor(&missing, &missing)
        .expect_err("not in cache");
    assert!(matches!(err, GitError::CommitNotFound { .. }), "{err}");

    let err = remote
        .fetch(&["refs/heads/nope".to_owned()])
        .expect_err("no such ref");
    assert!(matches!(err, GitError::RefNotFound { .. }), "{err}");
    let err = remote
        .fetch(&["main".to_owned()])
        .expect_err("short names are ambiguous");
    assert!(matches!(err, GitError::InvalidFetchTarget { .. }), "{err}");
}

#[test]
fn present_commits_skip_the_network() {
    let fx = Fixture::new();
    let (first, second) = two_commits(&fx);
    let remote = GitRemote::open(&fx.url(), &fx.cache_root("cache")).expect("open");
    remote.fetch(&[second.to_string()]).expect("first fetch");
    // Make the remote unreachable: a fetch that went to the network would now fail.
    let moved = fx.dir.path().join("moved.git");
    std::fs::rename(&fx.remote, &moved).expect("move the remote away");
    remote
        .fetch(&[first.to_string(), second.to_string()])
        .expect("both are present: no network needed");
    let err = remote
        .fetch(&["refs/heads/main".to_owned()])
        .expect_err("refs always fetch");
    assert_eq!(err.kind(), GitErrorKind::Unavailable, "{err}");
}

#[test]
fn fetch_blobs_makes_the_deploy_folder_readable_in_process() {
    let fx = Fixture::new();
    let (first, second) = two_commits(&fx);
    let remote = GitRemote::open(&fx.url(), &fx.cache_root("cache")).expect("open");
    remote
        .fetch(&[second.to_string()])
        .expect("blob-less fetch");

    remote.fetch_blobs(&first, "k8s").expect("fetch blobs");
    let snap = remote.snapshot().expect("snapshot");
    let repo = snap.repository();
    for (path, content) in [("k8s/app.yaml", "a: 1\n"), ("k8s/base/svc.yaml", "svc\n")] {
        let id = git(&fx.work, &["rev-parse", &format!("{first}:{path}")]);
        let blob = repo
            .find_blob(gix::ObjectId::from_hex(id.as_bytes()).expect("hex"))
            .unwrap_or_else(|e| panic!("{path} must be readable through gix: {e}"));
        assert_eq!(blob.data, content.as_bytes(), "{path}");
    }
    // Only the deploy folder: README.md at the same commit and k8s at the other stay absent.
    for spec in [
        format!("{first}:README.md"),
        format!("{second}:k8s/app.yaml"),
    ] {
        let id = git(&fx.work, &["rev-parse", &spec]);
        let oid = gix::ObjectId::from_hex(id.as_bytes()).expect("hex");
        assert!(!repo.has_object(oid), "{spec} must not have been fetched");
    }
    // Idempotent, and a missing path is reported.
    remote.fetch_blobs(&first, "k8s").expect("again");
    let err = remote
        .fetch_blobs(&first, "src")
        .expect_err("absent at first");
    assert!(matches!(err, GitError::PathNotFound { .. }), "{err}");
}
