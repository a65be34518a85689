//! Issue 15 item 4: a re-push of a deploy tree that was pushed before reuses its layer through
//! the store's tree index (`tree-<tree id>-p<format>`) instead of packing and uploading it.
//!
//! The contract checked here, on the real registry and on an OCI image layout: the artifact of
//! a commit is byte-identical whether packed or reused (compared with a full pack of the same
//! commit in a second, fresh store, and read back by skopeo and by Flux's own code); the reuse
//! sends no blob request at all (counted in the registry's own request log); and an index
//! entry that is stale (another packing format), foreign (another tree's, or not an entry at
//! all) or whose layer is gone never gives a wrong or broken artifact — the push packs as it
//! did before the index, and rewrites the entry.

#[macro_use]
mod support;
#[path = "support/oracle.rs"]
mod oracle;

use serde_json::Value;
use std::path::Path;
use std::process::Command;
use support::*;

/// `mainline push --git REPO --commit C --path k8s --to STORE -o json EXTRA…`, as it ran.
fn push_git_run(store: &str, repo: &Path, commit: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        "push",
        "--git",
        repo.to_str().expect("utf-8"),
        "--commit",
        commit,
        "--path",
        "k8s",
        "--to",
        store,
        "-o",
        "json",
    ];
    args.extend_from_slice(extra);
    mainline(&args)
}

fn push_git(store: &str, repo: &Path, commit: &str, extra: &[&str]) -> Value {
    push_git_run(store, repo, commit, extra).ok().json()
}

fn tree_tag(repo: &Path, commit: &str) -> String {
    format!(
        "tree-{}-p2",
        git(repo, &["rev-parse", &format!("{commit}:k8s")])
    )
}

fn skopeo_raw(store: &str, tag: &str) -> Vec<u8> {
    let reference = match store.strip_prefix("oci://") {
        Some(rest) => format!("docker://{rest}:{tag}"),
        None => format!("oci:{}:{tag}", store.trim_start_matches("oci-layout:")),
    };
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false", &reference])
        .output()
        .expect("run skopeo (apt-get install skopeo)");
    assert!(
        out.status.success(),
        "skopeo inspect --raw {reference}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `METHOD <path below /v2/<repo>/> STATUS` of every request the open registry logged for
/// this store's repository, oldest first (from its access log lines, which, unlike "response
/// completed", include the answers with an error status such as a 404).
fn registry_log(store: &str) -> Vec<String> {
    let repo = store
        .strip_prefix("oci://")
        .and_then(|r| r.split_once('/'))
        .map(|(_, repo)| repo)
        .expect("a registry store");
    let log = std::env::var("MAINLINE_TEST_REGISTRY_LOG")
        .expect("MAINLINE_TEST_REGISTRY_LOG is not set: run scripts/with-registry.sh");
    let prefix = format!("/v2/{repo}/");
    std::fs::read_to_string(log)
        .expect("read registry log")
        .lines()
        .filter_map(|l| {
            // 127.0.0.1 - - [date] "HEAD /v2/x/manifests/t HTTP/1.1" 404 94 "" "agent"
            let (_, request) = l.split_once("] \"")?;
            let (line, after) = request.split_once('"')?;
            let mut words = line.split(' ');
            let (method, uri) = (words.next()?, words.next()?);
            let rest = uri.strip_prefix(&prefix)?;
            let status = after.split_whitespace().next()?;
            Some(format!("{method} {rest} {status}"))
        })
        .collect()
}

/// Requests logged by the time `f` returns, beyond those logged before.
fn requests_of<T>(store: &str, f: impl FnOnce() -> T) -> (T, Vec<String>) {
    let before = registry_log(store).len();
    let out = f();
    (out, registry_log(store).split_off(before))
}

fn a_second_store(store: &str, tmp: &Path) -> String {
    if store.starts_with("oci://") {
        registry_store("treeidx-ref")
    } else {
        layout_store(tmp, "reference")
    }
}

fn reuse_is_byte_identical_to_a_full_pack(store: &str, tmp: &Path) {
    let (repo, c) = same_tree_repo(tmp);
    let (a, b) = (&c[0], &c[1]);
    let first = push_git(store, &repo, a, &[]);
    assert_eq!(first["tree_index"], "recorded", "{first}");
    assert_eq!(first["blobs_uploaded"], 2, "{first}");

    // B has A's deploy tree: one manifest write, nothing packed or uploaded.
    let (reused, requests) = requests_of_any(store, || push_git(store, &repo, b, &[]));
    assert_eq!(reused["tree_index"], "reused", "{reused}");
    assert_eq!(reused["bytes_uploaded"], 0, "{reused}");
    assert_eq!(reused["blobs_uploaded"], 0, "{reused}");
    assert_eq!(reused["already_present"], false, "{reused}");
    assert_eq!(reused["files"], first["files"], "{reused}");
    assert_eq!(reused["layer_bytes"], first["layer_bytes"], "{reused}");
    assert_eq!(reused["revision"], format!("main@sha1:{b}"));
    if let Some(requests) = requests {
        let tag_b = format!("sha-{b}");
        let want = [
            format!("HEAD manifests/{tag_b} 404"),
            format!("GET manifests/{} 200", tree_tag(&repo, b)),
            format!("PUT manifests/{tag_b} 201"),
            format!("HEAD manifests/{tag_b} 200"),
        ];
        assert_eq!(requests, want, "a reuse is 4 manifest requests, no blob");
    }

    // The reference: B packed in full into a second, fresh store.
    let second = a_second_store(store, tmp);
    let (full, full_requests) = requests_of_any(&second, || push_git(&second, &repo, b, &[]));
    assert_eq!(full["tree_index"], "recorded", "{full}");
    assert_eq!(full["blobs_uploaded"], 2, "{full}");
    assert_eq!(
        full["digest"], reused["digest"],
        "reused {reused}\nfull {full}"
    );
    let tag_b = format!("sha-{b}");
    assert_eq!(
        skopeo_raw(store, &tag_b),
        skopeo_raw(&second, &tag_b),
        "skopeo reads the same manifest bytes"
    );
    if let Some(full_requests) = full_requests {
        let blobs = full_requests
            .iter()
            .filter(|r| r.contains("blobs/"))
            .count();
        assert!(
            blobs >= 2,
            "a full pack checks and uploads blobs: {full_requests:?}"
        );
        eprintln!(
            "re-push of an unchanged tree: {} registry requests with the index, {} (with {blobs} blob requests) packing in full",
            4,
            full_requests.len()
        );
    }

    // Flux's own code pulls the reused artifact and unpacks B's deploy tree.
    let flux = tmp.join("flux");
    let report = oracle::flux_pull(store, &tag_b, &flux, true);
    assert_eq!(
        report["annotations"]["org.opencontainers.image.revision"],
        format!("main@sha1:{b}")
    );
    let checkout = tmp.join("checkout");
    git(
        &repo,
        &["worktree", "add", "-q", checkout.to_str().unwrap(), b],
    );
    oracle::assert_same_tree(
        &oracle::snapshot(&flux, false),
        &oracle::snapshot(&checkout.join("k8s"), false),
        "flux's untar of the reused artifact vs. the checkout of B",
    );

    // The same commit again: already present, still without a pack — after the same checks
    // as a packed push makes (each blob, then the manifest by digest).
    let (again, requests) = requests_of_any(store, || push_git(store, &repo, b, &[]));
    assert_eq!(again["tree_index"], "reused", "{again}");
    assert_eq!(again["already_present"], true, "{again}");
    assert_eq!(again["digest"], reused["digest"]);
    if let Some(requests) = requests {
        let manifest: Value =
            serde_json::from_slice(&skopeo_raw(store, &tag_b)).expect("manifest json");
        let want = [
            format!("HEAD manifests/{tag_b} 200"),
            format!("GET manifests/{} 200", tree_tag(&repo, b)),
            format!(
                "HEAD blobs/{} 200",
                manifest["config"]["digest"].as_str().unwrap()
            ),
            format!(
                "HEAD blobs/{} 200",
                manifest["layers"][0]["digest"].as_str().unwrap()
            ),
            format!("GET manifests/{} 200", again["digest"].as_str().unwrap()),
        ];
        assert_eq!(
            requests, want,
            "an already-present re-push through the index"
        );
    }

    // Another tree is packed, and recorded under its own tag.
    let other = push_git(store, &repo, &c[2], &[]);
    assert_eq!(other["tree_index"], "recorded", "{other}");
    assert_ne!(other["tree"], first["tree"]);
}
on_both_stores!(reuse_is_byte_identical_to_a_full_pack);

/// Requests made by `f` when `store` is a registry; `None` for a layout (no request log).
fn requests_of_any<T>(store: &str, f: impl FnOnce() -> T) -> (T, Option<Vec<String>>) {
    if store.starts_with("oci://") {
        let (out, r) = requests_of(store, f);
        (out, Some(r))
    } else {
        (f(), None)
    }
}

/// Put `bytes` as a manifest under `tag` by hand, outside mainline (a registry PUT with curl,
/// or an index.json entry plus its blob in a layout).
fn put_by_hand(store: &str, tag: &str, bytes: &[u8]) {
    let file = tempfile::NamedTempFile::new().expect("temp");
    std::fs::write(file.path(), bytes).expect("write");
    if let Some(rest) = store.strip_prefix("oci://") {
        let (host, repo) = rest.split_once('/').expect("HOST/REPO");
        let out = Command::new("curl")
            .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT"])
            .args([
                "-H",
                "Content-Type: application/vnd.oci.image.manifest.v1+json",
            ])
            .arg("--data-binary")
            .arg(format!("@{}", file.path().display()))
            .arg(format!("http://{host}/v2/{repo}/manifests/{tag}"))
            .output()
            .expect("curl");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "201", "PUT {tag}");
        return;
    }
    // A layout: mainline's own `tag` cannot write foreign bytes, so edit it as another tool.
    let dir = Path::new(store.trim_start_matches("oci-layout:"));
    let digest = sha256_hex(bytes);
    std::fs::write(dir.join("blobs/sha256").join(&digest), bytes).expect("blob");
    let index_path = dir.join("index.json");
    let mut index: Value =
        serde_json::from_slice(&std::fs::read(&index_path).expect("index")).expect("json");
    let manifests = index["manifests"].as_array_mut().expect("manifests");
    manifests.retain(|m| m["annotations"]["org.opencontainers.image.ref.name"] != tag);
    manifests.push(serde_json::json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": format!("sha256:{digest}"),
        "size": bytes.len(),
        "annotations": {"org.opencontainers.image.ref.name": tag},
    }));
    std::fs::write(&index_path, serde_json::to_vec(&index).expect("json")).expect("write");
}

fn sha256_hex(bytes: &[u8]) -> String {
    let out = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().expect("stdin").write_all(bytes)?;
            child.wait_with_output()
        })
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)[..64].to_owned()
}

fn raw_manifest(store: &str, tag: &str) -> Vec<u8> {
    skopeo_raw(store, tag)
}

/// A new commit on main with the deploy tree of main's last commit (only the README changes).
fn same_tree_commit(repo: &Path, n: usize) -> String {
    let date = format!("2024-06-{:02}T10:00:00Z", n + 1);
    write_tree(repo, &[("README.md", &format!("round {n}\n"))]);
    git_at(repo, &["add", "-A"], &date);
    git_at(repo, &["commit", "-q", "-m", "readme"], &date);
    git(repo, &["rev-parse", "HEAD"])
}

fn bad_entries_are_never_reused(store: &str, tmp: &Path) {
    let (repo, c) = same_tree_repo(tmp);
    // New commits land on top of the last one: its tree is the one they share.
    let (a, other) = (&c[2], &c[0]);
    let second = a_second_store(store, tmp);
    push_git(store, &repo, a, &[]);
    push_git(store, &repo, other, &[]);
    let tag = tree_tag(&repo, a);
    let good = raw_manifest(store, &tag);
    let good_text = String::from_utf8(good.clone()).expect("utf-8 entry");
    let format_of = |text: &str| {
        let value: Value = serde_json::from_str(text).expect("entry json");
        value["annotations"]["dev.mainline.pack-format"]
            .as_str()
            .expect("the entry records its packing format")
            .to_owned()
    };
    let this_format = format!(r#""dev.mainline.pack-format":"{}""#, format_of(&good_text));

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "an entry of another packing format",
            good_text
                .replace(&this_format, r#""dev.mainline.pack-format":"0""#)
                .into_bytes(),
            "packing format 0",
        ),
        (
            "another tree's entry",
            raw_manifest(store, &tree_tag(&repo, other)),
            "names tree",
        ),
        (
            "this tree's entry with one more annotation",
            good_text
                .replace(r#""annotations":{"#, r#""annotations":{"a.b":"c","#)
                .into_bytes(),
            "byte for byte",
        ),
        (
            "an artifact, not an entry",
            raw_manifest(store, &format!("sha-{a}")),
            "not a tree index entry",
        ),
        (
            "an entry packed with symlinks resolved, for a push that refuses them",
            good_text
                .replace(
                    r#""dev.mainline.symlinks":"refuse""#,
                    r#""dev.mainline.symlinks":"resolve""#,
                )
                .into_bytes(),
            "symlinks resolve",
        ),
    ];
    for (n, (what, bytes, reason)) in cases.into_iter().enumerate() {
        assert_ne!(
            good, bytes,
            "{what}: the case must differ from the good entry"
        );
        put_by_hand(store, &tag, &bytes);
        let commit = same_tree_commit(&repo, n);
        let pushed = push_git(store, &repo, &commit, &[]);
        assert_eq!(pushed["tree_index"], "recorded", "{what}: {pushed}");
        assert_eq!(
            pushed["blobs_uploaded"], 0,
            "{what}: layer already there {pushed}"
        );
        let note = pushed["tree_index_note"].as_str().unwrap_or_default();
        assert!(note.contains(reason), "{what}: note {note:?}");
        let reference = push_git(&second, &repo, &commit, &[]);
        assert_eq!(pushed["digest"], reference["digest"], "{what}");
        // Packing rewrote the entry: it is the good one again.
        assert_eq!(raw_manifest(store, &tag), good, "{what}: entry rewritten");
    }

    // Once rewritten, the next commit with this tree reuses it.
    let commit = same_tree_commit(&repo, 20);
    let pushed = push_git(store, &repo, &commit, &[]);
    assert_eq!(pushed["tree_index"], "reused", "{pushed}");
    assert_eq!(
        pushed["digest"],
        push_git(&second, &repo, &commit, &[])["digest"]
    );
}
on_both_stores!(bad_entries_are_never_reused);

/// Delete a blob by hand: its file in a layout, a DELETE on the registry.
fn delete_blob(store: &str, digest: &str) {
    if let Some(path) = store.strip_prefix("oci-layout:") {
        let hex = digest.trim_start_matches("sha256:");
        std::fs::remove_file(Path::new(path).join("blobs/sha256").join(hex)).expect("rm blob");
        return;
    }
    let (host, repo) = store
        .strip_prefix("oci://")
        .and_then(|r| r.split_once('/'))
        .expect("HOST/REPO");
    let out = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "DELETE",
        ])
        .arg(format!("http://{host}/v2/{repo}/blobs/{digest}"))
        .output()
        .expect("curl");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "202",
        "DELETE {digest}"
    );
}

fn a_deleted_layer_is_packed_and_uploaded_again(store: &str, tmp: &Path) {
    let (repo, c) = same_tree_repo(tmp);
    let (a, b) = (&c[0], &c[1]);
    let first = push_git(store, &repo, a, &[]);
    let layer: Value =
        serde_json::from_slice(&raw_manifest(store, &format!("sha-{a}"))).expect("manifest json");
    let layer = layer["layers"][0]["digest"]
        .as_str()
        .expect("layer")
        .to_owned();
    delete_blob(store, &layer);

    // The index still names the layer; the store refuses a manifest over it: pack, upload.
    let pushed = push_git(store, &repo, b, &[]);
    assert_eq!(pushed["blobs_uploaded"], 1, "{pushed}");
    assert_eq!(pushed["tree_index"], "kept", "{pushed}");
    let note = pushed["tree_index_note"].as_str().unwrap_or_default();
    assert!(note.contains("refused"), "{note}");
    assert_eq!(pushed["layer_bytes"], first["layer_bytes"]);
    assert_eq!(
        pulled_file(
            &format!("{store}:sha-{b}"),
            &tmp.join("pulled"),
            "base/svc.yaml"
        ),
        "kind: Service\n"
    );
    let second = a_second_store(store, tmp);
    assert_eq!(pushed["digest"], push_git(&second, &repo, b, &[])["digest"]);

    // A re-push of A (tag present, layer back): already present, through the index.
    let again = push_git(store, &repo, a, &[]);
    assert_eq!(again["already_present"], true, "{again}");
    assert_eq!(again["tree_index"], "reused", "{again}");
}
on_both_stores!(a_deleted_layer_is_packed_and_uploaded_again);

fn repack_bypasses_the_index_and_gives_the_same_bytes(store: &str, tmp: &Path) {
    let (repo, c) = same_tree_repo(tmp);
    push_git(store, &repo, &c[0], &[]);
    let pushed = push_git(store, &repo, &c[1], &["--repack"]);
    assert_eq!(pushed["tree_index"], "recorded", "{pushed}");
    assert_eq!(pushed["blobs_uploaded"], 0, "{pushed}");
    let second = a_second_store(store, tmp);
    assert_eq!(
        pushed["digest"],
        push_git(&second, &repo, &c[1], &[])["digest"]
    );
}
on_both_stores!(repack_bypasses_the_index_and_gives_the_same_bytes);

/// The heal/deploy path (`GitBuilder`): a candidate whose group did not touch the deploy
/// folder is built from the tree index — no blob fetched from git, none uploaded — and its
/// artifact is the one `mainline push --git` packs in full for the same commit and revision.
fn a_candidate_with_mainlines_tree_is_built_from_the_index(store: &str, tmp: &Path) {
    use support::queue::{deploy, first_deploy, Channel, Queue};
    let mut q = Queue::new(tmp);
    let ch = Channel::new(store, &q, "cache");
    first_deploy(&ch, &q);
    let g = q.enqueue(1, &[("README.md", "docs only\n")]);
    let before = registry_log_any(store).len();
    deploy(&ch, &g);
    let requests = registry_log_any(store).split_off(before);
    assert!(
        !requests.iter().any(|r| r.contains("blobs/")),
        "a build through the index touches no blob: {requests:#?}"
    );
    let tag = format!("sha-{}", g.head);
    assert!(
        requests.is_empty()
            || requests
                .iter()
                .any(|r| r.starts_with("GET manifests/tree-")),
        "{requests:#?}"
    );

    // The reference: the same commit, revision and source, packed in full elsewhere.
    let built: Value = serde_json::from_slice(&raw_manifest(store, &tag)).expect("json");
    let note = |k: &str| built["annotations"][k].as_str().expect(k).to_owned();
    let second = a_second_store(store, tmp);
    let full = mainline(&[
        "push",
        "--git",
        &q.url(),
        "--commit",
        &g.head,
        "--path",
        "k8s",
        "--to",
        &second,
        "--revision",
        &note("org.opencontainers.image.revision"),
        "--source",
        &note("org.opencontainers.image.source"),
        "-o",
        "json",
    ])
    .ok()
    .json();
    assert_eq!(full["tree_index"], "recorded", "{full}");
    assert_eq!(raw_manifest(&second, &tag), raw_manifest(store, &tag));
}
on_both_stores!(a_candidate_with_mainlines_tree_is_built_from_the_index);

/// [`registry_log`] for a registry store; empty for a layout.
fn registry_log_any(store: &str) -> Vec<String> {
    if store.starts_with("oci://") {
        registry_log(store)
    } else {
        vec![]
    }
}

/// An empty deploy tree (a folder holding only a submodule) stays refused without
/// `--allow-empty` even when the index knows it: the reuse checks the entry's count.
fn indexed_empty_tree_stays_refused(store: &str, tmp: &Path) {
    let repo = tmp.join("empty-repo");
    std::fs::create_dir_all(&repo).expect("mkdir");
    git(&repo, &["init", "-q", "-b", "main"]);
    write_tree(&repo, &[("README.md", "one\n")]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "base"]);
    let base = git(&repo, &["rev-parse", "HEAD"]);
    let gitlink = format!("160000,{base},k8s/vendored");
    git(&repo, &["update-index", "--add", "--cacheinfo", &gitlink]);
    git(&repo, &["commit", "-q", "-m", "k8s: vendored only"]);
    let first = git(&repo, &["rev-parse", "HEAD"]);
    let push = |commit: &str, extra: &[&str]| push_git_run(store, &repo, commit, extra);
    let r = push(&first, &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let allowed = push(&first, &["--allow-empty"]).ok().json();
    assert_eq!(allowed["tree_index"], "recorded", "{allowed}");
    assert_eq!(allowed["files"], 0, "{allowed}");

    let date = "2024-05-02T12:00:00Z";
    write_tree(&repo, &[("README.md", "two\n")]);
    // Not `commit -a`: the submodule has no checkout, and -a would record it as deleted.
    git_at(&repo, &["add", "README.md"], date);
    git_at(&repo, &["commit", "-q", "-m", "docs"], date);
    let second = git(&repo, &["rev-parse", "HEAD"]);
    let r = push(&second, &[]);
    assert_eq!(
        r.code, 2,
        "refused through the index too\n{}\n{}",
        r.stdout, r.stderr
    );
    assert!(r.stderr.contains("holds no file"), "{}", r.stderr);
    let tag = format!("{store}:sha-{second}");
    assert_ne!(mainline(&["inspect", &tag]).code, 0, "nothing was pushed");
    let reused = push(&second, &["--allow-empty"]).ok().json();
    assert_eq!(reused["tree_index"], "reused", "{reused}");
}
on_both_stores!(indexed_empty_tree_stays_refused);
