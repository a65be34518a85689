//! Issue 10, items 2 and 8: artifact tags (`sha-<commit>`) stay immutable and are never
//! trusted by name, and a push says "already present" only over an artifact whose every blob
//! is really in the store. Each case runs on the real registry and an OCI image layout; the
//! "someone else" who re-points a tag or deletes a blob works by hand, outside mainline
//! (curl against the registry's HTTP API, or an edit of the layout's files).

#[macro_use]
mod support;

use serde_json::Value;
use std::path::Path;
use std::process::Command;
use support::queue::{deploy, field, first_deploy, Channel, Queue, DEPLOY_PATH};
use support::*;

const CREATED: &str = "2024-05-01T12:00:00Z";
const COMMIT_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const COMMIT_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const COMMIT_C: &str = "cccccccccccccccccccccccccccccccccccccccc";

/// Push `files` as the artifact of `commit`; its JSON report.
fn push_dir(store: &str, dir: &Path, commit: &str, files: &[(&str, &str)]) -> Value {
    write_tree(dir, files);
    let r = mainline(&[
        "push",
        dir.to_str().expect("utf-8"),
        "--to",
        store,
        "--revision",
        &format!("main@sha1:{commit}"),
        "--created",
        CREATED,
        "-o",
        "json",
    ]);
    r.ok().json()
}

fn resolve(store: &str, tag: &str) -> Option<String> {
    let r = mainline(&["inspect", &format!("{store}:{tag}"), "-o", "json"]);
    (r.code == 0).then(|| r.json()["digest"].as_str().expect("digest").to_owned())
}

/// `oci://HOST/REPO` → (`HOST`, `REPO`).
fn registry_parts(store: &str) -> (&str, &str) {
    store
        .strip_prefix("oci://")
        .expect("oci:// store")
        .split_once('/')
        .expect("HOST/REPO")
}

fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}"])
        .args(args)
        .output()
        .expect("run curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Point `tag` at `bytes` by hand, bypassing mainline (what a careless operator or another
/// tool does): a raw manifest PUT on the registry, an index.json edit in a layout.
fn repoint_by_hand(store: &str, tag: &str, bytes: &[u8], digest: &str) {
    if let Some(path) = store.strip_prefix("oci-layout:") {
        let index_path = Path::new(path).join("index.json");
        let mut index: Value =
            serde_json::from_slice(&std::fs::read(&index_path).expect("index")).expect("json");
        for m in index["manifests"].as_array_mut().expect("manifests") {
            if m["annotations"]["org.opencontainers.image.ref.name"] == tag {
                m["digest"] = digest.into();
                m["size"] = bytes.len().into();
            }
        }
        std::fs::write(&index_path, serde_json::to_vec(&index).expect("json")).expect("write");
        return;
    }
    let (host, repo) = registry_parts(store);
    let file = tempfile::NamedTempFile::new().expect("temp");
    std::fs::write(file.path(), bytes).expect("write");
    let code = curl(&[
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/vnd.oci.image.manifest.v1+json",
        "--data-binary",
        &format!("@{}", file.path().display()),
        &format!("http://{host}/v2/{repo}/manifests/{tag}"),
    ]);
    assert_eq!(code, "201", "PUT manifest {tag}");
}

/// Delete a blob by hand: its file in a layout, a DELETE on the registry.
fn delete_blob(store: &str, digest: &str) {
    if let Some(path) = store.strip_prefix("oci-layout:") {
        let hex = digest.trim_start_matches("sha256:");
        std::fs::remove_file(Path::new(path).join("blobs/sha256").join(hex)).expect("rm blob");
        return;
    }
    let (host, repo) = registry_parts(store);
    let code = curl(&[
        "-X",
        "DELETE",
        &format!("http://{host}/v2/{repo}/blobs/{digest}"),
    ]);
    assert_eq!(code, "202", "DELETE blob {digest}");
}

fn layer_digest(store: &str, reference: &str) -> String {
    let r = mainline(&["inspect", &format!("{store}{reference}"), "-o", "json"]);
    r.ok().json()["layers"][0]["digest"]
        .as_str()
        .expect("layer digest")
        .to_owned()
}

fn tag_refuses_to_repoint_an_artifact_tag(store: &str, tmp: &Path) {
    let a = push_dir(store, &tmp.join("a"), COMMIT_A, &[("app.yaml", "a: 1\n")]);
    let b = push_dir(store, &tmp.join("b"), COMMIT_B, &[("app.yaml", "b: 2\n")]);
    let (da, db) = (field(&a, "digest").unwrap(), field(&b, "digest").unwrap());
    let (tag_a, tag_b) = (format!("sha-{COMMIT_A}"), format!("sha-{COMMIT_B}"));

    // Re-pointing sha-B at A's bytes: conflict, and sha-B still names B's artifact.
    let r = mainline(&["tag", &format!("{store}:{tag_a}"), &tag_b]);
    assert_eq!(r.code, 9, "re-point exits 9\n{}", r.stderr);
    assert!(
        r.stderr.contains(&tag_b) && r.stderr.contains("immutable"),
        "{}",
        r.stderr
    );
    assert_eq!(resolve(store, &tag_b).as_deref(), Some(db));

    // The same bytes again is idempotent.
    let r = mainline(&["tag", &format!("{store}@{db}"), &tag_b]);
    assert_eq!(r.code, 0, "same bytes: {}", r.stderr);
    assert_eq!(resolve(store, &tag_b).as_deref(), Some(db));

    // A new artifact tag for a commit the manifest does not record is refused, not created.
    let tag_c = format!("sha-{COMMIT_C}");
    let r = mainline(&["tag", &format!("{store}:{tag_a}"), &tag_c]);
    assert_eq!(r.code, 2, "wrong revision exits 2\n{}", r.stderr);
    assert!(r.stderr.contains(COMMIT_A), "{}", r.stderr);
    assert_eq!(resolve(store, &tag_c), None, "sha-C was created");
    assert_eq!(resolve(store, &tag_a).as_deref(), Some(da));
}
on_both_stores!(tag_refuses_to_repoint_an_artifact_tag);

fn channel_named_like_an_artifact_tag_is_invalid_input(store: &str, tmp: &Path) {
    let q = Queue::new(tmp);
    let main = q.main();
    let channel = format!("{store}:sha-{main}");
    for cmd in ["status", "reconcile"] {
        let r = mainline_in(
            tmp,
            &[
                cmd,
                "--channel",
                &channel,
                "--git",
                &q.url(),
                "--path",
                DEPLOY_PATH,
                "--cache-dir",
                tmp.join("cache").to_str().unwrap(),
            ],
            &[],
        );
        assert_eq!(r.code, 2, "{cmd}: {}", r.stderr);
        assert!(r.stderr.contains("immutable artifact tag"), "{}", r.stderr);
    }
    assert_eq!(resolve(store, &format!("sha-{main}")), None, "written");
    assert!(q.refs_under("refs/mainline/").is_empty(), "refs written");
}
on_both_stores!(channel_named_like_an_artifact_tag_is_invalid_input);

fn force_restore_never_deploys_a_repointed_artifact_tag(store: &str, tmp: &Path) {
    let mut q = Queue::new(tmp);
    let ch = Channel::new(store, &q, "cache");
    let old = q.main();
    first_deploy(&ch, &q);
    let new = q.push_main(
        &[("k8s/app.yaml", "kind: Deployment\nreplicas: 2\n")],
        "two",
    );
    ch.expect(&["reconcile"], 0);
    let prod = ch.digest("latest").expect("channel");
    assert_eq!(ch.digest(&format!("sha-{new}")).as_ref(), Some(&prod));

    // Someone re-points mainline's artifact tag at the old commit's bytes.
    let old_bytes = ch
        .raw_manifest(&format!("sha-{old}"))
        .expect("old artifact");
    let old_digest = ch.digest(&format!("sha-{old}")).expect("old digest");
    repoint_by_hand(store, &format!("sha-{new}"), &old_bytes, &old_digest);

    // From a machine that never saw the tag before: integrity, exit 8, nothing deployed.
    let fresh = ch.elsewhere("cache-fresh");
    let journal_before = q.refs_under("refs/mainline/journal/");
    for args in [&["reconcile", "--force-restore"][..], &["status"]] {
        let r = fresh.run(args);
        assert_eq!(
            r.code, 8,
            "{args:?}\nstdout:\n{}\nstderr:\n{}",
            r.stdout, r.stderr
        );
        assert!(r.stderr.contains(&format!("sha-{new}")), "{}", r.stderr);
        assert!(
            r.stderr.contains(&old),
            "names the recorded commit: {}",
            r.stderr
        );
    }
    // Nor does `tag` copy the re-pointed tag's bytes anywhere.
    let r = mainline(&["tag", &format!("{store}:sha-{new}"), "copy"]);
    assert_eq!(
        r.code, 8,
        "tag from a re-pointed artifact tag: {}",
        r.stderr
    );
    assert_eq!(ch.digest("copy"), None);
    assert_eq!(ch.digest("latest"), Some(prod), "prod was rolled back");
    assert_eq!(q.refs_under("refs/mainline/journal/"), journal_before);
}
on_both_stores!(force_restore_never_deploys_a_repointed_artifact_tag);

/// Issue 15: a restore takes the target's manifest bytes from the runner's fact cache when it
/// read them before (no GET). Both stores refuse a manifest whose blobs they lack, so when
/// someone deleted the target's layer meanwhile, the write fails and the channel keeps naming
/// the candidate: never an artifact Flux could not pull.
fn a_restore_from_cached_bytes_never_names_a_partial_artifact(store: &str, tmp: &Path) {
    let mut q = Queue::new(tmp);
    let ch = Channel::new(store, &q, "cache");
    let main_digest = first_deploy(&ch, &q);
    let g = q.enqueue(7, &[("k8s/app.yaml", "kind: Deployment\nreplicas: 7\n")]);
    let candidate = deploy(&ch, &g);
    let layer = layer_digest(store, &format!(":sha-{}", q.main()));
    delete_blob(store, &layer);
    q.end(&g);
    let r = ch.run(&["reconcile"]);
    assert_ne!(
        r.code, 0,
        "a restore over a missing layer must fail\nstdout:\n{}\nstderr:\n{}",
        r.stdout, r.stderr
    );
    assert_eq!(
        ch.digest("latest"),
        Some(candidate),
        "the channel still names the candidate, not main's partial artifact {main_digest}: {}",
        r.stderr
    );
}
on_both_stores!(a_restore_from_cached_bytes_never_names_a_partial_artifact);

fn push_over_a_deleted_blob_uploads_it_again(store: &str, tmp: &Path) {
    let files = [
        ("app.yaml", "kind: Deployment\n"),
        ("svc.yaml", "kind: Service\n"),
    ];
    let first = push_dir(store, &tmp.join("src"), COMMIT_A, &files);
    let tag = format!(":sha-{COMMIT_A}");
    let layer = layer_digest(store, &tag);
    delete_blob(store, &layer);
    let out = tmp.join("out-broken");
    let broken = mainline(&[
        "pull",
        &format!("{store}{tag}"),
        "--output-dir",
        out.to_str().unwrap(),
    ]);
    assert_ne!(broken.code, 0, "pull of a deleted layer succeeded");

    let again = push_dir(store, &tmp.join("src"), COMMIT_A, &files);
    assert_eq!(again["already_present"], false, "{again}");
    assert_eq!(again["blobs_uploaded"], 1, "{again}");
    assert_eq!(again["digest"], first["digest"]);
    let out = tmp.join("out");
    mainline(&[
        "pull",
        &format!("{store}{tag}"),
        "--output-dir",
        out.to_str().unwrap(),
    ])
    .ok();
    assert_eq!(
        std::fs::read_to_string(out.join("svc.yaml")).unwrap(),
        "kind: Service\n"
    );

    // Now everything is there: the third push really is "already present".
    let third = push_dir(store, &tmp.join("src"), COMMIT_A, &files);
    assert_eq!(third["already_present"], true, "{third}");
    assert_eq!(third["bytes_uploaded"], 0, "{third}");
}
on_both_stores!(push_over_a_deleted_blob_uploads_it_again);

#[test]
fn push_over_a_corrupt_layout_blob_uploads_it_again() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = layout_store(tmp.path(), "store");
    let files = [("app.yaml", "kind: Deployment\n")];
    push_dir(&store, &tmp.path().join("src"), COMMIT_A, &files);
    let layer = layer_digest(&store, &format!(":sha-{COMMIT_A}"));
    let blob = tmp
        .path()
        .join("store/blobs/sha256")
        .join(layer.trim_start_matches("sha256:"));
    std::fs::write(&blob, b"not the layer").expect("corrupt");

    let again = push_dir(&store, &tmp.path().join("src"), COMMIT_A, &files);
    assert_eq!(again["already_present"], false, "{again}");
    assert_eq!(again["blobs_uploaded"], 1, "{again}");
    let bytes = std::fs::read(&blob).expect("blob");
    assert_eq!(
        queue_sha256(&bytes),
        layer,
        "the layer blob was not repaired"
    );
}

fn queue_sha256(bytes: &[u8]) -> String {
    support::queue::sha256(bytes)
}
