//! Issue 15: round trips dominate at real distances, and request counts are stable where times
//! are not. The registry sits behind a counting proxy and the git remote is served over smart
//! HTTP by `git http-backend` (the `rtt` bench's servers, with no delay); each operation's
//! requests are counted at the servers. The bounds are the counts after issue 15's executor
//! work (the short path: lock + intent in one push, moved + release in another; manifests by
//! digest from the fact cache; the re-decision takes the channel from the write's read-back),
//! so a change that adds a round trip fails here. The hand-made floor is checked exactly
//! (3 registry / 6 git requests), which also checks the counting itself, and a warm restore
//! must match it on the registry and stay within one git process of it.
//!
//! Needs the test registry: scripts/with-registry.sh cargo test -p mainline --test request_counts

#[path = "../benches/common/mod.rs"]
mod common;
#[path = "../benches/common/http_delay.rs"]
mod http_delay;
#[path = "../benches/common/rtt_scenario.rs"]
mod rtt_scenario;

use rtt_scenario::{Sample, Scenario};
use std::path::PathBuf;

/// (operation, registry requests at most, git HTTP requests at most, git processes at most).
/// Before issue 15's executor work: deploy 19/30–35, warm restore 6/24 (12 git processes),
/// fresh restore 13/31–32, no-op from a fresh cache 5/9–10. A git process over smart HTTP
/// opens with one `GET info/refs`, so those count processes.
const BOUNDS: &[(&str, usize, usize, usize)] = &[
    // ls-remote, fetch, lock+intent, moved+release, ls-remote; the registry side packs and
    // uploads the candidate (before the lock) and records its tree in the tree index (a GET
    // that misses, a PUT: item 4, so the next commit with this tree is not packed again),
    // then PUT, HEAD of the channel (the manifest just pushed is not read back by digest:
    // `VerifiedStore` remembers what it wrote; 14 before).
    ("deploy --candidate", 13, 10, 5),
    // The floor's requests, plus the re-decision's ls-remote (sent alongside the release
    // push: one round trip for both).
    ("restore, warm cache", 3, 8, 4),
    // + the fetch of commits and of the journal's tail into the empty caches, and the reads of
    // the manifests a fresh cache has not seen: a fresh cache GETs the channel tag (digest and
    // bytes at once; a warm one HEADs it) and each artifact tag it verifies (one GET by tag).
    // A fresh runner sends the fetches *while* it lists (`Sources::warm_up`): the branch by
    // name with the channel's commit by id, and the journal's tail by name — a fetch by name
    // lists too (3 requests, not 2), but no fetch waits for the listing any more: 14 requests
    // in one git round trip fewer than the 12 before (those: 13 and 7 before that).
    ("restore, fresh cache", 5, 14, 6),
    ("no-op reconcile, fresh cache", 2, 8, 3),
    // Issue 15 goal 2: one ls-remote and one registry request.
    ("no-op reconcile, warm cache", 1, 2, 1),
    ("status, warm cache", 1, 2, 1),
    // A pin or an unpin on the short path: the pin ref and its journal record ride in the push
    // that takes the lock, with the intent when the channel moves; a pin by commit takes the
    // artifact the fact cache verified. Without a move: list, lock + pin, release (+ the
    // re-decision's listing beside it), and the channel read twice (observe, re-decide). With
    // one: a restore's counts. Before (the general path): 4/20 (10 processes) and 3/22 (11)
    // without a move, 7/32 (16) for a pin that moves, 6/34 (17) for an unpin that restores.
    ("pin, the channel already there", 2, 8, 4),
    ("unpin, nothing to move", 2, 8, 4),
    ("pin that moves the channel", 3, 8, 4),
    ("pin that replaces a pin and moves", 3, 8, 4),
    ("unpin that restores", 3, 8, 4),
];

fn processes(sample: &Sample) -> usize {
    sample
        .git
        .iter()
        .filter(|r| r.starts_with("GET ") && r.contains("/info/refs"))
        .count()
}

fn check(what: &str, sample: &Sample, failures: &mut Vec<String>) {
    let (_, registry, git, procs) = BOUNDS
        .iter()
        .find(|b| b.0 == what)
        .expect("a bound for every operation");
    println!(
        "{what}: {} registry, {} git requests ({} git processes)\n  registry: {:?}\n  git: {:?}",
        sample.registry.len(),
        sample.git.len(),
        processes(sample),
        sample.registry,
        sample.git
    );
    if sample.registry.len() > *registry || sample.git.len() > *git || processes(sample) > *procs {
        failures.push(format!(
            "{what}: {} registry / {} git requests / {} git processes, over {registry} / {git} / {procs}",
            sample.registry.len(),
            sample.git.len(),
            processes(sample)
        ));
    }
}

#[test]
fn requests_per_operation_stay_within_the_short_path_counts() {
    let registry = std::env::var("MAINLINE_TEST_REGISTRY").expect(
        "MAINLINE_TEST_REGISTRY is not set: run scripts/with-registry.sh cargo test -p mainline --test request_counts",
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_mainline"));
    let s = Scenario::new(bin, tmp.path(), &registry, "counts");
    let manifest = tmp.path().join("main-manifest.json");
    s.main_manifest(&manifest);

    let mut failures = Vec::new();
    let deploy = s.diverge(1);
    check("deploy --candidate", &deploy, &mut failures);
    let warm = s.measure_mainline(&["reconcile"], "runner", 1);
    check("restore, warm cache", &warm, &mut failures);
    s.diverge(2);
    let cold = s.measure_mainline(&["reconcile"], &s.fresh_cache(), 1);
    check("restore, fresh cache", &cold, &mut failures);
    let idle = s.measure_mainline(&["reconcile"], &s.fresh_cache(), 0);
    check("no-op reconcile, fresh cache", &idle, &mut failures);
    // The runner's cache catches up first with the journal records the fresh caches' runs
    // appended (one fetch of the journal's new tail); then it is warm.
    s.mainline(&["reconcile"], "runner", &[0]);
    let idle = s.measure_mainline(&["reconcile"], "runner", 0);
    check("no-op reconcile, warm cache", &idle, &mut failures);
    let status = s.measure(|| {
        s.mainline(&["status"], "runner", &[0]);
    });
    check("status, warm cache", &status, &mut failures);

    // Pins and unpins take the short path too: the pin ref and its journal record ride in the
    // push that takes the lock (with the intent when the channel moves).
    let main = s.main();
    let pin = s.measure_mainline(&["pin", &main, "--reason", "INC-1"], "runner", 0);
    check("pin, the channel already there", &pin, &mut failures);
    let unpin = s.measure_mainline(&["unpin"], "runner", 0);
    check("unpin, nothing to move", &unpin, &mut failures);
    let (group, head) = s.queue_group(3);
    s.deploy_candidate(&group, &head);
    let pin = s.measure_mainline(&["pin", &main, "--reason", "INC-2"], "runner", 1);
    check("pin that moves the channel", &pin, &mut failures);
    let pin = s.measure_mainline(&["pin", &head, "--reason", "INC-3"], "runner", 1);
    check("pin that replaces a pin and moves", &pin, &mut failures);
    s.drop_group(&group);
    let unpin = s.measure_mainline(&["unpin"], "runner", 1);
    check("unpin that restores", &unpin, &mut failures);

    let floor = s.floor(&manifest, 1);
    println!("floor: {:?} {:?}", floor.registry, floor.git);
    assert_eq!(
        floor.registry.len(),
        3,
        "the floor is HEAD, PUT, HEAD: {:?}",
        floor.registry
    );
    assert_eq!(
        floor.git.len(),
        6,
        "the floor is ls-remote and two pushes, 2 requests each: {:?}",
        floor.git
    );
    assert_eq!(
        warm.registry.len(),
        floor.registry.len(),
        "a warm restore sends the floor's registry requests: {:?}",
        warm.registry
    );
    assert_eq!(processes(&floor), 3, "{:?}", floor.git);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A fresh runner reads the artifact tags it must verify beside the commit fetch — in front of
/// a long merge queue that is one tag per group, and no more than
/// `MAX_LOOKUPS_IN_FLIGHT` (4) may be at the registry at once. Every request is held 150 ms at
/// the registry, so requests sent together overlap there and the peak counts them (the groups'
/// tags only: the channel's read and its check of main's tag run beside them, in the listing's
/// round trip).
#[test]
fn a_fresh_runner_reads_at_most_four_artifact_tags_at_once() {
    let registry = std::env::var("MAINLINE_TEST_REGISTRY").expect(
        "MAINLINE_TEST_REGISTRY is not set: run scripts/with-registry.sh cargo test -p mainline --test request_counts",
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_mainline"));
    let s = Scenario::new(bin, tmp.path(), &registry, "lookups");
    let heads: Vec<String> = (1..=10).map(|pr| s.queue_group(pr).1).collect();
    s.set_delays(
        std::time::Duration::from_millis(150),
        std::time::Duration::ZERO,
    );
    // Count the groups' artifact tags: the channel's own read (and its check of main's tag)
    // may still be in flight beside them.
    s.registry.count_in_flight_only(Some(
        heads
            .iter()
            .map(|h| format!("/manifests/sha-{h}"))
            .collect(),
    ));
    let sample = s.measure(|| {
        s.mainline(&["reconcile"], &s.fresh_cache(), &[0]);
    });
    let peak = s.registry.peak_in_flight();
    let tag_reads = sample
        .registry
        .iter()
        .filter(|r| {
            heads
                .iter()
                .any(|h| r.ends_with(&format!("/manifests/sha-{h}")))
        })
        .count();
    println!(
        "fresh reconcile before 10 groups: {} registry requests, {tag_reads} of the groups' tags, peak {peak} group tags at once\n  {:?}",
        sample.registry.len(),
        sample.registry
    );
    assert!(
        tag_reads >= heads.len(),
        "every group's artifact tag was read: {:?}",
        sample.registry
    );
    assert!(
        (2..=4).contains(&peak),
        "the tags are read in parallel, at most 4 at once: peak {peak}"
    );
}
