//! DESIGN.md's scenario catalog, 1–5 (the heal paths), through the `mainline` binary against a
//! real docker-registry and an OCI image layout, with a bare git remote whose merge-queue refs
//! are created and deleted as GitHub does (support::queue). Scenario 6 is in
//! scenarios_race.rs, 7–10 in scenarios_policy.rs.
//!
//! Each scenario is one function run on both stores (`on_both_stores!`), so its test names
//! are `scenario_NN_…::layout` and `scenario_NN_…::registry`. The registry variants fail (never
//! skip) when scripts/with-registry.sh is not running them.

#[macro_use]
mod support;

use std::path::Path;
use support::queue::{
    app, deploy, field, first_deploy, moves, requests_to, short, verdict, Channel, Queue,
};
use support::*;

// 1. A group deploys its candidate, then fails → the channel names mainline's artifact again.
fn scenario_01_group_fails_after_deploying_candidate_restores_mainline(store: &str, root: &Path) {
    let mut q = Queue::new(root);
    let ch = Channel::new(store, &q, "runner");
    let m0 = q.main();
    let main_digest = first_deploy(&ch, &q);

    let g = q.enqueue(7, &[("k8s/app.yaml", &app(7))]);
    let candidate = deploy(&ch, &g);
    let s = ch.status(0);
    assert_eq!(verdict(&s), "CANDIDATE");
    assert_eq!(field(&s, "channel_commit"), Some(g.head.as_str()));
    assert_eq!(field(&s, "channel_digest"), Some(candidate.as_str()));
    assert_eq!(field(&s, "mainline_commit"), Some(m0.as_str()));

    q.end(&g); // the group's checks fail: GitHub deletes the queue ref
    let s = ch.status(3);
    assert_eq!(verdict(&s), "DIVERGED", "{s}");
    assert_eq!(field(&s, "channel_commit"), Some(g.head.as_str()));
    assert_eq!(field(&s, "mainline_commit"), Some(m0.as_str()));
    let why = field(&s, "explanation").expect("explanation");
    assert!(
        why.contains(short(&g.head)) && why.contains(short(&m0)) && why.contains("not on mainline"),
        "the explanation names both commits and why: {why}"
    );

    let r = ch.expect(&["reconcile"], 0);
    assert_eq!(moves(&r).len(), 1, "{r}");
    assert_eq!(moves(&r)[0]["action"], "restore");
    assert_eq!(moves(&r)[0]["packed"], false, "a restore is a re-tag");
    assert_eq!(field(&r, "final_verdict"), Some("CONVERGED"));
    let s = ch.status(0);
    assert_eq!(verdict(&s), "CONVERGED");
    assert_eq!(field(&s, "channel_digest"), Some(main_digest.as_str()));
    assert_eq!(field(&s, "channel_commit"), Some(m0.as_str()));
    assert_eq!(ch.digest("latest"), Some(main_digest));
}
on_both_stores!(scenario_01_group_fails_after_deploying_candidate_restores_mainline);

// 2. The CI run is cancelled (or the runner dies) after the channel moved → the next reconcile
// from anywhere restores.
fn scenario_02_cancelled_run_heals_from_a_fresh_machine(store: &str, root: &Path) {
    let mut q = Queue::new(root);
    let runner = Channel::new(store, &q, "runner");
    let main_digest = first_deploy(&runner, &q);
    let g = q.enqueue(7, &[("k8s/app.yaml", &app(7))]);
    deploy(&runner, &g);
    q.end(&g); // the group times out; the runner's failure step never runs

    // A scheduled job on another machine: its cache has never seen the candidate, and the
    // candidate's queue ref is gone from the remote.
    let schedule = runner.elsewhere("schedule");
    let s = schedule.status(3);
    assert_eq!(verdict(&s), "DIVERGED", "{s}");
    assert_eq!(field(&s, "channel_commit"), Some(g.head.as_str()));
    let r = schedule.elsewhere("schedule-2").expect(&["reconcile"], 0);
    assert_eq!(moves(&r)[0]["action"], "restore", "{r}");
    assert_eq!(schedule.digest("latest"), Some(main_digest));
    assert_eq!(verdict(&schedule.status(0)), "CONVERGED");
    assert_eq!(verdict(&runner.status(0)), "CONVERGED");
}
on_both_stores!(scenario_02_cancelled_run_heals_from_a_fresh_machine);

// 2'. With leases (a host without merge-queue refs): the candidate holds the channel until its
// lease expires, then the next reconcile from anywhere restores.
fn scenario_02_lease_restores_only_after_expiry(store: &str, root: &Path) {
    const TTL_MS: u64 = 4000;
    let mut q = Queue::new(root);
    let runner = Channel::new(store, &q, "runner").with(&["--queue", "lease", "--lease-ttl", "4s"]);
    let main_digest = first_deploy(&runner, &q);
    let m0 = q.main();
    let head = q.commit_on(
        Some(&m0),
        &[("k8s/app.yaml", &app(7))],
        "candidate of MR !7",
    );
    q.push_branch("mr-7", &head);

    let started = std::time::Instant::now();
    let r = runner.expect(
        &[
            "deploy",
            "--candidate",
            "--group",
            "mr-7",
            "--commit",
            &head,
        ],
        0,
    );
    assert_eq!(field(&r, "final_verdict"), Some("CANDIDATE"), "{r}");
    let candidate = runner.digest("latest").expect("channel");
    let leases = q.refs_under("refs/mainline/lease/");
    assert_eq!(
        leases.len(),
        1,
        "one lease recorded on the remote: {leases:?}"
    );

    // The runner dies. Before expiry, a reconcile from anywhere holds.
    let other = runner.elsewhere("schedule");
    let s = other.status(0);
    assert_eq!(verdict(&s), "CANDIDATE", "{s}");
    let r = other.expect(&["reconcile"], 0);
    assert!(
        moves(&r).is_empty(),
        "a live lease is never overwritten: {r}"
    );
    assert_eq!(other.digest("latest").as_ref(), Some(&candidate));
    assert!(
        started.elapsed().as_millis() < u128::from(TTL_MS),
        "the before-expiry checks took longer than the lease; the test proves nothing"
    );

    std::thread::sleep(
        std::time::Duration::from_millis(TTL_MS + 300).saturating_sub(started.elapsed()),
    );
    let s = other.status(3);
    assert_eq!(verdict(&s), "DIVERGED", "{s}");
    assert!(
        field(&s, "explanation")
            .expect("explanation")
            .contains("expired"),
        "{s}"
    );
    let r = other.expect(&["reconcile"], 0);
    assert_eq!(moves(&r)[0]["action"], "restore", "{r}");
    assert_eq!(other.digest("latest"), Some(main_digest));
}
on_both_stores!(scenario_02_lease_restores_only_after_expiry);

// 3. Group A fails; group B deploys; A's heal runs late → B is kept; B merges → CONVERGED with
// no further deploy. Also: the channel only moves forward along the queue.
fn scenario_03_late_heal_of_failed_group_keeps_newer_candidate(store: &str, root: &Path) {
    let mut q = Queue::new(root);
    let a_runner = Channel::new(store, &q, "runner-a");
    let b_runner = Channel::new(store, &q, "runner-b");
    first_deploy(&a_runner, &q);

    // A and B are in the queue together; B is built on A (it contains A's changes).
    let a = q.enqueue(1, &[("k8s/a.yaml", "kind: ConfigMap\nname: a\n")]);
    let b = q.enqueue_behind(2, &[("k8s/b.yaml", "kind: ConfigMap\nname: b\n")], &a);
    deploy(&a_runner, &a);
    let b_digest = deploy(&b_runner, &b);
    // A's deploy job retries late, while A is still in flight: never backwards along the queue.
    let r = a_runner.expect(
        &[
            "deploy",
            "--candidate",
            "--group",
            &a.id,
            "--commit",
            &a.head,
        ],
        5,
    );
    assert_eq!(r["refusal"]["reason"], "newer_group_holds", "{r}");
    assert_eq!(b_runner.digest("latest").as_ref(), Some(&b_digest));

    // A fails: GitHub removes A and rebuilds B on mainline without A's changes.
    q.end(&a);
    q.end(&b);
    let pr2 = q.remote_ref("refs/pull/2/head").expect("PR 2 head");
    let main = q.main();
    let b2 = q.enqueue_on(2, &pr2, &main);
    let b2_digest = deploy(&b_runner, &b2);

    // A's heal runs late, from A's runner: B's candidate is kept.
    let r = a_runner.expect(&["reconcile"], 0);
    assert_eq!(field(&r, "verdict"), Some("CANDIDATE"), "{r}");
    assert!(
        moves(&r).is_empty(),
        "the late heal must not move the channel: {r}"
    );
    assert_eq!(a_runner.digest("latest").as_ref(), Some(&b2_digest));
    // …and A's own late deploy is refused: A is no longer in flight.
    let r = a_runner.expect(
        &[
            "deploy",
            "--candidate",
            "--group",
            &a.id,
            "--commit",
            &a.head,
        ],
        5,
    );
    assert_eq!(r["refusal"]["reason"], "group_not_in_flight", "{r}");

    // B merges: CONVERGED with no further deploy.
    q.merge(&b2);
    let s = a_runner.status(0);
    assert_eq!(verdict(&s), "CONVERGED", "{s}");
    assert_eq!(field(&s, "channel_commit"), Some(b2.head.as_str()));
    assert_eq!(field(&s, "mainline_commit"), Some(b2.head.as_str()));
    let r = b_runner.expect(&["reconcile"], 0);
    assert!(moves(&r).is_empty(), "{r}");
    assert_eq!(b_runner.digest("latest"), Some(b2_digest));
}
on_both_stores!(scenario_03_late_heal_of_failed_group_keeps_newer_candidate);

// 4. A heal runs, and a merge lands right after it → the next reconcile promotes (BEHIND).
fn scenario_04_merge_after_heal_is_promoted_next(store: &str, root: &Path) {
    let mut q = Queue::new(root);
    let ch = Channel::new(store, &q, "runner");
    let main_digest = first_deploy(&ch, &q);
    let g = q.enqueue(7, &[("k8s/app.yaml", &app(7))]);
    deploy(&ch, &g);
    q.end(&g);
    let r = ch.expect(&["reconcile"], 0);
    assert_eq!(moves(&r)[0]["action"], "restore", "{r}");
    assert_eq!(ch.digest("latest").as_ref(), Some(&main_digest));

    // Right after the heal, PR #8 lands through the queue without deploying (its CI never
    // pushed an artifact): a merge commit on main that changes the deploy tree.
    let h = q.enqueue(8, &[("k8s/app.yaml", &app(8))]);
    q.merge(&h);
    let s = ch.status(3);
    assert_eq!(verdict(&s), "BEHIND", "{s}");
    assert_eq!(field(&s, "mainline_commit"), Some(h.head.as_str()));
    assert_eq!(field(&s, "channel_digest"), Some(main_digest.as_str()));

    let r = ch.expect(&["reconcile"], 0);
    assert_eq!(moves(&r).len(), 1, "{r}");
    assert_eq!(moves(&r)[0]["action"], "promote");
    assert_eq!(
        moves(&r)[0]["packed"],
        true,
        "main's artifact was packed from git"
    );
    let s = ch.status(0);
    assert_eq!(verdict(&s), "CONVERGED");
    assert_eq!(field(&s, "channel_commit"), Some(h.head.as_str()));
    assert_eq!(ch.digest("latest"), ch.digest(&format!("sha-{}", h.head)));
}
on_both_stores!(scenario_04_merge_after_heal_is_promoted_next);

fn blob_files(store: &str) -> usize {
    match store.strip_prefix("oci-layout:") {
        Some(p) => std::fs::read_dir(Path::new(p).join("blobs/sha256"))
            .expect("layout blobs")
            .count(),
        None => 0,
    }
}

// 5. The deploy path is broken → restore still succeeds, because it is a registry write of an
// artifact that exists (or is packed from git objects when mainline's is missing).
fn scenario_05_broken_deploy_path_still_restores(store: &str, root: &Path) {
    let mut q = Queue::new(root);
    let ch = Channel::new(store, &q, "runner");
    let main_digest = first_deploy(&ch, &q);
    let g = q.enqueue(7, &[("k8s/app.yaml", &app(7))]);
    deploy(&ch, &g);
    q.end(&g);

    // The CI heal re-runs the deploy path, which is what broke: its push cannot reach the
    // registry it deploys through.
    let checkout = root.join("checkout");
    write_tree(&checkout, &[("app.yaml", &app(1))]);
    let broken = mainline_in(
        root,
        &[
            "push",
            checkout.to_str().expect("utf-8"),
            "--to",
            "oci://127.0.0.1:9/unreachable",
            "--revision",
            &format!("main@sha1:{}", q.main()),
            "--created",
            "2024-05-01T12:00:00Z",
        ],
        &[],
    );
    assert_eq!(
        broken.code, 6,
        "the broken deploy path fails: {}",
        broken.stderr
    );

    // mainline's restore is a re-tag: manifest requests only, no blob moves.
    let (before_log, before_blobs) = (requests_to(store).len(), blob_files(store));
    let r = ch.expect(&["reconcile"], 0);
    assert_eq!(moves(&r)[0]["action"], "restore", "{r}");
    assert_eq!(moves(&r)[0]["packed"], false);
    assert_eq!(ch.digest("latest").as_ref(), Some(&main_digest));
    let during: Vec<String> = requests_to(store).split_off(before_log);
    assert!(
        during.iter().all(|l| !l.contains("/blobs/")),
        "a restore touches no blob: {during:#?}"
    );
    assert_eq!(blob_files(store), before_blobs, "a restore writes no blob");

    // Mainline's own artifact is missing too: PR #9 landed by a direct push whose CI push step
    // never ran, while group 10's candidate held the channel and then failed.
    let h = q.enqueue(10, &[("k8s/app.yaml", &app(10))]);
    deploy(&ch, &h);
    let m1 = q.push_main(&[("k8s/app.yaml", &app(9))], "PR #9 (direct push)");
    q.end(&h);
    assert_eq!(
        ch.digest(&format!("sha-{m1}")),
        None,
        "no artifact for main yet"
    );
    let r = ch.expect(&["reconcile"], 0);
    assert_eq!(moves(&r)[0]["action"], "restore", "{r}");
    assert_eq!(moves(&r)[0]["packed"], true, "packed from git objects: {r}");
    let healed = ch.digest("latest").expect("channel");

    // The same digest `mainline push --git` (what CI runs on a push to main) makes.
    let ci = Channel {
        store: if store.starts_with("oci://") {
            format!("{store}-ci")
        } else {
            layout_store(root, "ci-store")
        },
        ..ch.clone()
    };
    let ci_push = mainline_in(
        root,
        &[
            "push",
            "--git",
            &q.url(),
            "--commit",
            "main",
            "--path",
            "k8s",
            "--to",
            &ci.store,
            "-o",
            "json",
        ],
        &[],
    )
    .ok()
    .json();
    assert_eq!(
        field(&ci_push, "digest"),
        Some(healed.as_str()),
        "{ci_push}"
    );
    assert_eq!(
        ch.raw_manifest("latest"),
        ci.raw_manifest(&format!("sha-{m1}"))
    );
    assert_eq!(verdict(&ch.status(0)), "CONVERGED");
}
on_both_stores!(scenario_05_broken_deploy_path_still_restores);

// S2: a commit that a force-push removed from mainline no longer counts as landed.
fn invariant_s2_force_push_removes_landed_commit(store: &str, root: &Path) {
    let mut q = Queue::new(root);
    let ch = Channel::new(store, &q, "runner");
    let m0 = q.main();
    let m0_digest = first_deploy(&ch, &q);
    let g = q.enqueue(3, &[("k8s/app.yaml", &app(3))]);
    q.merge(&g);
    let r = ch.expect(&["reconcile"], 0);
    assert_eq!(moves(&r)[0]["action"], "promote", "{r}");
    assert_eq!(verdict(&ch.status(0)), "CONVERGED");

    q.force_push_main(&m0); // an admin rewrites main: g.head no longer landed
    let s = ch.status(3);
    assert_eq!(verdict(&s), "DIVERGED", "{s}");
    assert_eq!(field(&s, "channel_commit"), Some(g.head.as_str()));
    assert_eq!(field(&s, "mainline_commit"), Some(m0.as_str()));
    let r = ch.expect(&["promote", "--commit", &g.head], 5);
    assert_eq!(r["refusal"]["reason"], "not_on_mainline", "{r}");
    let r = ch.expect(&["reconcile"], 0);
    assert_eq!(moves(&r)[0]["action"], "restore", "{r}");
    assert_eq!(ch.digest("latest"), Some(m0_digest));
}
on_both_stores!(invariant_s2_force_push_removes_landed_commit);
