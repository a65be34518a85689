//! Many users of one cache directory at once: racing cache creation and racing fetches of the
//! same refs (which would collide on git's ref locks without the cache lock) all succeed.

mod support;

use mainline_git::GitRemote;
use std::sync::{Arc, Barrier};
use support::Fixture;

#[test]
fn concurrent_open_and_fetch_into_one_cache_all_succeed() {
    let fx = Fixture::new();
    let mut commits = Vec::new();
    for i in 0..6 {
        let c = fx.commit(
            &format!("c{i}"),
            &[("k8s/app.yaml", &format!("v{i}\n"))],
            1_700_000_000 + i,
        );
        fx.push(&format!("refs/heads/b{i}"));
        commits.push(c);
    }
    fx.push("refs/heads/main");
    let root = fx.cache_root("shared");
    let threads = 8;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let (url, root, barrier) = (fx.url(), root.clone(), Arc::clone(&barrier));
            let commit = commits[i % commits.len()].to_string();
            std::thread::spawn(move || {
                barrier.wait();
                let remote = GitRemote::open(&url, &root).expect("racing open");
                // Everyone fetches main (same private ref) plus one commit of their own.
                remote
                    .fetch(&["refs/heads/main".to_owned(), commit.clone()])
                    .expect("racing fetch");
                remote
                    .fetch_blobs(&commit.parse().expect("hex"), "k8s")
                    .expect("racing blob fetch");
                remote.cache_path().to_owned()
            })
        })
        .collect();
    let paths: Vec<_> = handles
        .into_iter()
        .map(|h| h.join().expect("thread"))
        .collect();
    assert!(
        paths.windows(2).all(|w| w[0] == w[1]),
        "one cache for one URL: {paths:?}"
    );
    // Exactly one cache repository; no staging directory left behind.
    let entries: Vec<_> = std::fs::read_dir(&root)
        .expect("cache root")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        entries.iter().filter(|e| e.ends_with(".git")).count(),
        1,
        "{entries:?}"
    );
    assert!(!entries.iter().any(|e| e.contains(".init-")), "{entries:?}");

    let remote = GitRemote::open(&fx.url(), &root).expect("open");
    let snap = remote.snapshot().expect("snapshot");
    for c in &commits {
        assert!(snap.has_commit(c), "{c} fetched");
    }
    assert_eq!(snap.resolve("refs/heads/main").expect("main"), commits[5]);
    let fsck = support::git(
        remote.cache_path(),
        &["fsck", "--connectivity-only", "--no-progress"],
    );
    assert!(
        !fsck.contains("missing") && !fsck.contains("broken"),
        "{fsck}"
    );
}

#[test]
fn lock_files_left_by_a_killed_git_do_not_wedge_the_cache() {
    let fx = Fixture::new();
    let first = fx.commit("one", &[("k8s/a", "1\n")], 1_700_000_000);
    fx.push("refs/heads/main");
    let remote = GitRemote::open(&fx.url(), &fx.cache_root("cache")).expect("open");
    remote
        .fetch(&["refs/heads/main".to_owned()])
        .expect("first fetch");
    let second = fx.commit("two", &[("k8s/a", "2\n")], 1_700_000_100);
    fx.push("refs/heads/main");

    // What a git killed at its deadline leaves behind.
    let cache = remote.cache_path();
    let ref_lock = cache.join("refs/mainline-cache/refs/heads/main.lock");
    let graph_lock = cache.join("objects/info/commit-graphs/commit-graph-chain.lock");
    std::fs::create_dir_all(graph_lock.parent().expect("parent")).expect("mkdir");
    std::fs::write(&ref_lock, first.as_str()).expect("stale ref lock");
    std::fs::write(&graph_lock, "").expect("stale graph lock");

    remote
        .fetch(&["refs/heads/main".to_owned()])
        .expect("fetch despite stale locks");
    assert_eq!(
        remote
            .snapshot()
            .expect("snap")
            .resolve("refs/heads/main")
            .expect("main"),
        second
    );
    assert!(!ref_lock.exists() && !graph_lock.exists());
}

/// The cache's settings are written into its config file as text (not by `git config`, one
/// process per key): git itself must read back every one, in the commit cache and the records
/// cache alike — a partial clone that git does not see as one would fetch every blob.
#[test]
fn a_new_cache_has_the_settings_git_reads_back() {
    let fx = Fixture::new();
    fx.commit("c0", &[("k8s/app.yaml", "v0\n")], 1_700_000_000);
    fx.push("refs/heads/main");
    let remote = GitRemote::open(&fx.url(), &fx.cache_root("config")).expect("open");
    let records = remote.records_cache().expect("records cache");
    for cache in [remote.cache_path(), records.cache_path()] {
        for (key, value) in [
            ("extensions.partialClone", "origin"),
            ("remote.origin.promisor", "true"),
            ("remote.origin.partialCloneFilter", "blob:none"),
            ("gc.auto", "0"),
            ("maintenance.auto", "false"),
            ("fetch.writeCommitGraph", "true"),
            ("core.commitGraph", "true"),
            ("fetch.recurseSubmodules", "false"),
        ] {
            let out = std::process::Command::new("git")
                .arg("--git-dir")
                .arg(cache)
                .args(["config", "--get", key])
                .output()
                .expect("git config");
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                value,
                "{key} in {}: {}",
                cache.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    // And it behaves as a blob-less partial clone: fetching main brings no blob.
    remote
        .fetch(&["refs/heads/main".to_owned()])
        .expect("fetch");
    let out = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(remote.cache_path())
        .args(["rev-list", "--objects", "--all", "--missing=print"])
        .output()
        .expect("rev-list");
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        listing.lines().any(|l| l.starts_with('?')),
        "the blob of k8s/app.yaml should be missing (promised), got:\n{listing}"
    );
}
