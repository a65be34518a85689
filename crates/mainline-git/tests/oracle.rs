//! Oracle tests: on a generated 1,200-commit history with merges, `is_ancestor` agrees with
//! `git merge-base --is-ancestor` and `deploy_tree` with `git rev-parse C:PATH`, both through
//! the blob-less cache (with its commit-graph) and on a repository without a commit-graph.

mod support;

use mainline_git::{GitRemote, Snapshot};
use std::time::Instant;
use support::history::{generate, History};
use support::{git, git_ok, Fixture, SplitMix64};

const SEED: u64 = 0x6d61_696e_6c69_6e65;
const COMMITS: usize = 1200;

fn setup() -> (Fixture, History, GitRemote) {
    let fx = Fixture::new();
    let history = generate(&fx.remote, SEED, COMMITS);
    let remote = GitRemote::open(&fx.url(), &fx.cache_root("cache")).expect("open remote");
    let refs: Vec<String> = history
        .branches
        .iter()
        .map(|(name, _)| format!("refs/heads/{name}"))
        .collect();
    remote.fetch(&refs).expect("fetch every branch");
    (fx, history, remote)
}

fn check_ancestry(fx: &Fixture, history: &History, snapshot: &Snapshot, seed: u64) {
    let mut rng = SplitMix64::new(seed);
    let (mut yes, mut no) = (0, 0);
    let started = Instant::now();
    for _ in 0..300 {
        let d = rng.below(history.commits.len());
        let a = match rng.below(10) {
            0 => d,
            1..=5 => {
                let steps = 1 + rng.below(400);
                history.random_ancestor(&mut rng, d, steps)
            }
            6 | 7 => rng.below(history.commits.len()),
            // Later commits are never ancestors, but the walk must still stop early.
            _ => d + rng.below(history.commits.len() - d),
        };
        let (a, d) = (&history.commits[a], &history.commits[d]);
        let expected = git_ok(
            &fx.remote,
            &["merge-base", "--is-ancestor", a.as_str(), d.as_str()],
        );
        let actual = snapshot
            .is_ancestor(a, d)
            .expect("both commits are present");
        assert_eq!(
            actual,
            expected,
            "is_ancestor({a}, {d}) in {}",
            snapshot.repo_path().display()
        );
        if expected {
            yes += 1;
        } else {
            no += 1;
        }
    }
    eprintln!(
        "300 ancestry pairs ({yes} true, {no} false) checked in {:?} (incl. git oracle)",
        started.elapsed()
    );
    assert!(
        yes > 60 && no > 60,
        "the sample must exercise both answers: {yes} true, {no} false"
    );
}

#[test]
fn is_ancestor_matches_git_merge_base_through_the_blobless_cache() {
    let (fx, history, remote) = setup();
    let snapshot = remote.snapshot().expect("snapshot");
    let graphs = remote.cache_path().join("objects/info/commit-graphs");
    assert!(
        graphs.is_dir()
            || remote
                .cache_path()
                .join("objects/info/commit-graph")
                .is_file(),
        "the fetch must leave a commit-graph so generation pruning is exercised"
    );
    check_ancestry(&fx, &history, &snapshot, SEED);
}

#[test]
fn is_ancestor_matches_git_merge_base_without_a_commit_graph() {
    let (fx, history, _remote) = setup();
    // fast-import writes no commit-graph: the walk runs on plain commit objects.
    assert!(!fx.remote.join("objects/info/commit-graph").exists());
    assert!(!fx.remote.join("objects/info/commit-graphs").exists());
    let snapshot = Snapshot::open(&fx.remote).expect("open the remote directly");
    check_ancestry(&fx, &history, &snapshot, SEED ^ 1);
}

#[test]
fn deploy_tree_matches_git_rev_parse_including_absent_paths() {
    let (fx, history, remote) = setup();
    let snapshot = remote.snapshot().expect("snapshot");
    let mut rng = SplitMix64::new(SEED ^ 2);
    let (mut present, mut absent) = (0, 0);
    for _ in 0..200 {
        let commit = &history.commits[rng.below(history.commits.len())];
        for path in ["k8s", "k8s/base", "./k8s/", ""] {
            let spec = match path {
                "" => format!("{commit}^{{tree}}"),
                p => format!(
                    "{commit}:{}",
                    p.trim_start_matches("./").trim_end_matches('/')
                ),
            };
            let expected = git_ok(&fx.remote, &["rev-parse", "--verify", "--quiet", &spec])
                .then(|| git(&fx.remote, &["rev-parse", "--verify", "--quiet", &spec]));
            let actual = snapshot
                .deploy_tree(commit, path)
                .expect("a tree or absent");
            assert_eq!(actual, expected, "deploy_tree({commit}, {path:?})");
            if expected.is_some() {
                present += 1;
            } else {
                absent += 1;
            }
        }
    }
    assert!(
        present > 100 && absent > 10,
        "{present} present, {absent} absent"
    );
}

#[test]
fn ancestry_of_the_root_from_the_tip_is_fast() {
    let (fx, history, remote) = setup();
    let snapshot = remote.snapshot().expect("snapshot");
    let main = &history
        .branches
        .iter()
        .find(|(n, _)| n == "main")
        .expect("main")
        .1;
    let root = &history.commits[0];
    let started = Instant::now();
    for _ in 0..20 {
        assert!(snapshot.is_ancestor(root, main).expect("present"));
        assert!(!snapshot.is_ancestor(main, root).expect("present"));
    }
    let per_query = started.elapsed() / 40;
    eprintln!("root-from-tip ancestry over {COMMITS} commits (commit-graph): {per_query:?}");
    assert!(
        per_query.as_millis() < 200,
        "ancestry too slow: {per_query:?} per query"
    );

    // The worst case: an unmerged topic tip is not below main, and without a commit-graph
    // nothing prunes the walk, so every commit reachable from main is visited.
    let unmerged = history
        .branches
        .iter()
        .filter(|(n, _)| n != "main")
        .map(|(_, c)| c)
        .find(|c| !snapshot.is_ancestor(c, main).expect("present"))
        .expect("the generator leaves at least one topic unmerged");
    let plain = Snapshot::open(&fx.remote).expect("open the remote directly");
    let started = Instant::now();
    for _ in 0..10 {
        assert!(!plain.is_ancestor(unmerged, main).expect("present"));
    }
    let per_query = started.elapsed() / 10;
    eprintln!("full-walk ancestry over {COMMITS} commits (no commit-graph): {per_query:?}");
    assert!(
        per_query.as_millis() < 500,
        "full walk too slow: {per_query:?} per query"
    );
}
