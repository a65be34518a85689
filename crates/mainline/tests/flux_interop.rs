//! Issue 13, the other direction: artifacts made by Flux's own push (`tests/flux-oracle push`,
//! fluxcd/pkg/oci's Client.Push as `flux push artifact` calls it) are first-class. A `latest`
//! that Flux pushed — as teams have before they adopt mainline — gets the verdict its revision
//! says (every form Flux users write), and mainline promotes and restores over it.
//!
//! Flux's digest for a tree differs from mainline's (Flux writes an image config blob with a
//! `created` time where mainline writes `{}`, and its own tar), yet Flux unpacks both to the
//! same tree: that is checked here too.

#[macro_use]
mod support;
#[path = "support/oracle.rs"]
mod oracle;

use oracle::{assert_same_tree, flux_pull, oracle_ref, run_oracle, snapshot};
use std::path::{Path, PathBuf};
use std::process::Command;
use support::queue::{field, moves, verdict, Channel, Queue, DEPLOY_PATH};
use support::*;

/// The deploy folder of `commit`, checked out from the queue's remote into `dir`.
fn checkout(q: &Queue, commit: &str, dir: &Path) -> PathBuf {
    let remote = q.url();
    git(
        q.root.as_path(),
        &["clone", "-q", &remote, dir.to_str().expect("utf-8")],
    );
    git(dir, &["checkout", "-q", "--detach", commit]);
    dir.join(DEPLOY_PATH)
}

/// `flux push artifact` of `commit`'s deploy folder to `ch`'s `latest`, with `revision`.
/// A registry gets it directly; an OCI layout gets a digest-preserving `skopeo copy` of it
/// (Flux pushes to registries only). Returns the digest.
fn flux_push_latest(ch: &Channel, q: &Queue, commit: &str, revision: &str) -> String {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = checkout(q, commit, &q.root.join(format!("flux-push-{n}")));
    let (target, layout) = match ch.store.strip_prefix("oci-layout:") {
        Some(path) => (
            format!(
                "{}:latest",
                registry_store("fluxpush").trim_start_matches("oci://")
            ),
            Some(path.to_owned()),
        ),
        None => (oracle_ref(&ch.store, "latest"), None),
    };
    let report = run_oracle(&[
        "push",
        dir.to_str().expect("utf-8"),
        &target,
        "--source",
        "https://example.com/acme/app",
        "--revision",
        revision,
    ]);
    let digest = report["digest"].as_str().expect("digest").to_owned();
    if let Some(path) = layout {
        let out = Command::new("skopeo")
            .args([
                "copy",
                "--quiet",
                "--preserve-digests",
                "--src-tls-verify=false",
            ])
            .arg(format!("docker://{target}"))
            .arg(format!("oci:{path}:latest"))
            .output()
            .expect("run skopeo");
        assert!(
            out.status.success(),
            "skopeo copy: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        ch.digest("latest"),
        Some(digest.clone()),
        "latest is Flux's push"
    );
    digest
}

fn flux_pushed_latest_gets_the_verdict_its_revision_says(store: &str, root: &Path) {
    let mut q = Queue::new(root);
    let ch = Channel::new(store, &q, "runner");
    let m0 = q.main();

    // Every revision form flux users write names m0: CONVERGED, nothing to do.
    for revision in [
        format!("main/{m0}"),
        format!("main@sha1:{m0}"),
        format!("sha1:{m0}"),
        m0.clone(),
    ] {
        let flux_digest = flux_push_latest(&ch, &q, &m0, &revision);
        let s = ch.status(0);
        assert_eq!(verdict(&s), "CONVERGED", "{revision}: {s}");
        let r = ch.expect(&["reconcile"], 0);
        assert!(moves(&r).is_empty(), "{r}");
        assert_eq!(ch.digest("latest"), Some(flux_digest));
    }
    // `inspect` shows it: the revision as written, the commit it records, who made it.
    let flux_digest = flux_push_latest(&ch, &q, &m0, &format!("main/{m0}"));
    let r = mainline(&["inspect", &format!("{store}:latest"), "-o", "json"]).ok();
    let shown = r.json();
    assert_eq!(shown["digest"], flux_digest.as_str(), "{shown}");
    assert_eq!(shown["revision"], format!("main/{m0}").as_str(), "{shown}");
    assert_eq!(shown["commit"], m0.as_str(), "{shown}");
    assert_eq!(shown["made_by"], "another tool", "{shown}");

    // A landing changes the deploy tree: BEHIND, promoted over Flux's latest.
    let m1 = q.push_main(&[("k8s/app.yaml", &queue_app(2))], "scale to 2");
    flux_push_latest(&ch, &q, &m0, &format!("main/{m0}"));
    assert_eq!(verdict(&ch.status(3)), "BEHIND");
    let r = ch.expect(&["reconcile"], 0);
    assert_eq!(moves(&r)[0]["action"], "promote", "{r}");
    assert_eq!(field(&r, "final_verdict"), Some("CONVERGED"), "{r}");
    let ours = ch.digest(&format!("sha-{m1}")).expect("m1 artifact");
    assert_eq!(ch.digest("latest").as_ref(), Some(&ours));

    // Flux's push of the same tree has another digest, and unpacks to the same tree.
    let flux_digest = flux_push_latest(&ch, &q, &m1, &format!("main@sha1:{m1}"));
    assert_ne!(flux_digest, ours, "the config blobs differ");
    assert_eq!(verdict(&ch.status(0)), "CONVERGED");
    let theirs_tree = root.join("pull-flux");
    let ours_tree = root.join("pull-ours");
    flux_pull(store, "latest", &theirs_tree, true);
    flux_pull(store, &format!("sha-{m1}"), &ours_tree, true);
    assert_same_tree(
        &snapshot(&theirs_tree, false),
        &snapshot(&ours_tree, false),
        "Flux's push vs mainline's, as Flux unpacks them",
    );

    // Flux pushed a commit that never landed: DIVERGED, restored to mainline's artifact.
    let pr = q.open_pr(7, &[("k8s/app.yaml", &queue_app(9))]);
    flux_push_latest(&ch, &q, &pr, &format!("sha1:{pr}"));
    let s = ch.status(3);
    assert_eq!(verdict(&s), "DIVERGED", "{s}");
    let r = ch.expect(&["reconcile"], 0);
    assert_eq!(moves(&r)[0]["action"], "restore", "{r}");
    assert_eq!(ch.digest("latest").as_ref(), Some(&ours));
    assert_eq!(verdict(&ch.status(0)), "CONVERGED");
}
on_both_stores!(flux_pushed_latest_gets_the_verdict_its_revision_says);

fn queue_app(replicas: u32) -> String {
    support::queue::app(replicas)
}
