//! The gate is real (DESIGN.md, G) when a group fails whose candidate contained older groups
//! still in flight: the heal restores the newest of those live groups, not mainline, so their
//! candidates stay deployed while their checks run. Through the `mainline` binary against a
//! real docker-registry and an OCI image layout, with a bare git remote whose merge-queue refs
//! are made and deleted as GitHub does (support::queue); skopeo reads what the channel names.
//!
//! The simulator found this case (`tests/sim_clauses.rs`,
//! `a_failed_group_that_contained_live_groups_keeps_their_gates`).

#[macro_use]
mod support;

use std::path::Path;
use support::queue::{deploy, field, first_deploy, moves, short, verdict, Channel, Queue};
use support::*;

/// The `org.opencontainers.image.revision` annotation of what `tag` names, read by skopeo.
fn revision(ch: &Channel, tag: &str) -> String {
    let raw = ch.raw_manifest(tag).expect("the tag exists");
    let v: serde_json::Value = serde_json::from_slice(&raw).expect("a JSON manifest");
    v["annotations"]["org.opencontainers.image.revision"]
        .as_str()
        .expect("a revision annotation")
        .to_owned()
}

// A and B are in the queue, B built on A; both deploy; B fails while A's checks still run →
// the heal restores A's candidate (the very digest A deployed), A merges → CONVERGED, no move.
fn scenario_g1_failed_group_keeps_the_live_group_it_contained(store: &str, root: &Path) {
    let mut q = Queue::new(root);
    let runner = Channel::new(store, &q, "runner");
    let main_digest = first_deploy(&runner, &q);
    let a = q.enqueue(1, &[("k8s/a.yaml", "kind: ConfigMap\nname: a\n")]);
    let b = q.enqueue_behind(2, &[("k8s/b.yaml", "kind: ConfigMap\nname: b\n")], &a);
    let a_digest = deploy(&runner, &a);
    let b_digest = deploy(&runner, &b);
    assert_ne!(a_digest, b_digest);

    q.end(&b); // B's checks fail; A is still in flight
    let heal = runner.elsewhere("heal");
    let s = heal.status(3);
    assert_eq!(verdict(&s), "DIVERGED", "{s}");
    let r = heal.expect(&["reconcile"], 0);
    let mv = &moves(&r)[0];
    assert_eq!(moves(&r).len(), 1, "{r}");
    assert_eq!(mv["action"], "restore", "the JSON action name is kept: {r}");
    assert_eq!(mv["to_commit"], a.head.as_str(), "{r}");
    assert_eq!(mv["packed"], false, "A's candidate exists: a re-tag");
    let reason = mv["reason"].as_str().expect("reason");
    assert!(
        reason.contains("restore the newest live group pr-1")
            && reason.contains(short(&b.head))
            && reason.contains(short(&a.head)),
        "the reason says what happened: {reason}"
    );
    assert_eq!(field(&r, "final_verdict"), Some("CANDIDATE"), "{r}");
    assert_eq!(heal.digest("latest"), Some(a_digest.clone()));
    assert_ne!(heal.digest("latest"), Some(main_digest));

    // A's checks pass and it merges: prod already runs it.
    q.merge(&a);
    let s = runner.status(0);
    assert_eq!(verdict(&s), "CONVERGED", "{s}");
    let r = runner.expect(&["reconcile"], 0);
    assert!(moves(&r).is_empty(), "{r}");
    assert_eq!(runner.digest("latest"), Some(a_digest));
}
on_both_stores!(scenario_g1_failed_group_keeps_the_live_group_it_contained);

// Only B deployed (A's run had not reached its deploy step): the heal packs A's head from git
// objects with A's queue ref as its revision, exactly as A's own deploy would have; A's late
// deploy then finds the channel already there.
fn scenario_g2_live_group_never_deployed_is_packed_with_its_ref(store: &str, root: &Path) {
    let mut q = Queue::new(root);
    let runner = Channel::new(store, &q, "runner");
    first_deploy(&runner, &q);
    let a = q.enqueue(1, &[("k8s/a.yaml", "kind: ConfigMap\nname: a\n")]);
    let b = q.enqueue_behind(2, &[("k8s/b.yaml", "kind: ConfigMap\nname: b\n")], &a);
    deploy(&runner, &b);
    q.end(&b);

    let r = runner.elsewhere("heal").expect(&["reconcile"], 0);
    let mv = &moves(&r)[0];
    assert_eq!(mv["to_commit"], a.head.as_str(), "{r}");
    assert_eq!(mv["packed"], true, "{r}");
    assert_eq!(
        revision(&runner, "latest"),
        format!("{}@sha1:{}", a.id, a.head),
        "packed as A's candidate"
    );
    let r = runner.expect(
        &[
            "deploy",
            "--candidate",
            "--group",
            &a.id,
            "--commit",
            &a.head,
        ],
        0,
    );
    assert!(moves(&r).is_empty(), "already there: {r}");
    assert_eq!(field(&r, "final_verdict"), Some("CANDIDATE"), "{r}");
}
on_both_stores!(scenario_g2_live_group_never_deployed_is_packed_with_its_ref);

// Once A has ended too, nothing live is left inside B: the heal restores mainline.
fn scenario_g3_with_nothing_live_inside_restores_mainline(store: &str, root: &Path) {
    let mut q = Queue::new(root);
    let runner = Channel::new(store, &q, "runner");
    let main_digest = first_deploy(&runner, &q);
    let a = q.enqueue(1, &[("k8s/a.yaml", "kind: ConfigMap\nname: a\n")]);
    let b = q.enqueue_behind(2, &[("k8s/b.yaml", "kind: ConfigMap\nname: b\n")], &a);
    deploy(&runner, &a);
    deploy(&runner, &b);
    q.end(&b);
    q.end(&a);
    let r = runner.expect(&["reconcile"], 0);
    assert_eq!(moves(&r)[0]["to_commit"], q.main().as_str(), "{r}");
    assert_eq!(field(&r, "final_verdict"), Some("CONVERGED"), "{r}");
    assert_eq!(runner.digest("latest"), Some(main_digest));
}
on_both_stores!(scenario_g3_with_nothing_live_inside_restores_mainline);
