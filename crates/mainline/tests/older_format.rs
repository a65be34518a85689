//! A packing format change (`mainline_pack::PACK_FORMAT`; format 2 moved the layer's gzip to
//! libdeflate) changes every layer's bytes, so a commit pushed by an older mainline has
//! another digest under `sha-<commit>` than this mainline packs. A re-push must keep that
//! artifact — tags are immutable, signatures name its digest — not fail with a conflict; and
//! it must still refuse an artifact whose layer holds another tar stream.
//!
//! The "older format" artifact is made as another tool would: the layer this mainline packs,
//! gunzipped and gzipped again by GNU gzip at another level (the same tar stream, other gzip
//! bytes), its manifest otherwise identical, uploaded by hand (curl, or the layout's files).
//! Checked on the real registry and on an OCI image layout.

#[macro_use]
mod support;

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use support::*;

fn push_git(store: &str, repo: &Path, commit: &str) -> Run {
    let repo = repo.to_str().expect("utf-8");
    mainline(&[
        "push", "--git", repo, "--commit", commit, "--path", "k8s", "--to", store, "-o", "json",
    ])
}

/// What this mainline packs for `commit`, read from a scratch layout: (manifest, layer).
fn packed_now(tmp: &Path, repo: &Path, commit: &str) -> (Vec<u8>, Vec<u8>) {
    let dir = tmp.join(format!("scratch-{commit}"));
    let pushed = push_git(&format!("oci-layout:{}", dir.display()), repo, commit)
        .ok()
        .json();
    let blob = |digest: &str| {
        let hex = digest.trim_start_matches("sha256:");
        std::fs::read(dir.join("blobs/sha256").join(hex)).expect("layout blob")
    };
    let manifest = blob(pushed["digest"].as_str().expect("digest"));
    let parsed: Value = serde_json::from_slice(&manifest).expect("manifest json");
    let layer = blob(
        parsed["layers"][0]["digest"]
            .as_str()
            .expect("layer digest"),
    );
    (manifest, layer)
}

/// `input` through `cmd` (a filter such as `gzip -dc`).
fn filter(cmd: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new(cmd[0])
        .args(&cmd[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn filter");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        stdin.write_all(&input).expect("write to filter");
    });
    let out = child.wait_with_output().expect("filter output");
    writer.join().expect("writer");
    assert!(out.status.success(), "{cmd:?} failed");
    out.stdout
}

fn sha256(bytes: &[u8]) -> String {
    let hex = String::from_utf8(filter(&["sha256sum"], bytes)).expect("hex");
    format!("sha256:{}", &hex[..64])
}

/// `manifest` with its layer replaced by `layer` (digest and size), byte for byte otherwise.
fn with_layer(manifest: &[u8], layer: &[u8]) -> Vec<u8> {
    let parsed: Value = serde_json::from_slice(manifest).expect("manifest json");
    let old = &parsed["layers"][0];
    let text = String::from_utf8(manifest.to_vec()).expect("utf-8 manifest");
    let from = format!(
        r#""digest":"{}","size":{}"#,
        old["digest"].as_str().expect("digest"),
        old["size"]
    );
    assert_eq!(text.matches(&from).count(), 1, "{text}");
    let to = format!(r#""digest":"{}","size":{}"#, sha256(layer), layer.len());
    text.replace(&from, &to).into_bytes()
}

/// Stores `layer`, the config (`{}`) and `manifest` under `tag` by hand, as another tool would.
fn put_artifact(store: &str, tag: &str, layer: &[u8], manifest: &[u8]) {
    let blobs: [&[u8]; 2] = [b"{}", layer];
    if let Some(path) = store.strip_prefix("oci-layout:") {
        let dir = Path::new(path).join("blobs/sha256");
        std::fs::create_dir_all(&dir).expect("blobs dir");
        for blob in blobs {
            let hex = sha256(blob);
            std::fs::write(dir.join(hex.trim_start_matches("sha256:")), blob).expect("blob");
        }
        put_manifest_in_layout(Path::new(path), tag, manifest);
        return;
    }
    let (host, repo) = store
        .strip_prefix("oci://")
        .and_then(|r| r.split_once('/'))
        .expect("HOST/REPO");
    let file = tempfile::NamedTempFile::new().expect("temp");
    let curl = |args: &[&str]| {
        let out = Command::new("curl")
            .args(["-sS"])
            .args(args)
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let put = |body: &[u8], content_type: &str, url: &str| {
        std::fs::write(file.path(), body).expect("write");
        curl(&[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "PUT",
            "-H",
            &format!("Content-Type: {content_type}"),
            "--data-binary",
            &format!("@{}", file.path().display()),
            url,
        ])
    };
    for blob in blobs {
        // POST a session, PUT the bytes with their digest (a monolithic upload).
        let headers = curl(&[
            "-D",
            "-",
            "-o",
            "/dev/null",
            "-X",
            "POST",
            &format!("http://{host}/v2/{repo}/blobs/uploads/"),
        ]);
        let location = headers
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("location")
                    .then(|| value.trim().to_owned())
            })
            .expect("upload Location");
        let location = if location.starts_with('/') {
            format!("http://{host}{location}")
        } else {
            location
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{sep}digest={}", sha256(blob));
        assert_eq!(
            put(blob, "application/octet-stream", &url),
            "201",
            "blob upload"
        );
    }
    let url = format!("http://{host}/v2/{repo}/manifests/{tag}");
    let code = put(manifest, "application/vnd.oci.image.manifest.v1+json", &url);
    assert_eq!(code, "201", "PUT {tag}");
}

fn put_manifest_in_layout(dir: &Path, tag: &str, manifest: &[u8]) {
    let hex = sha256(manifest);
    std::fs::write(
        dir.join("blobs/sha256")
            .join(hex.trim_start_matches("sha256:")),
        manifest,
    )
    .expect("manifest blob");
    let index_path = dir.join("index.json");
    let mut index: Value = match std::fs::read(&index_path) {
        Ok(bytes) => serde_json::from_slice(&bytes).expect("index json"),
        Err(_) => serde_json::json!({"schemaVersion": 2, "manifests": []}),
    };
    index["manifests"]
        .as_array_mut()
        .expect("manifests")
        .push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": hex,
            "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }));
    std::fs::write(&index_path, serde_json::to_vec(&index).expect("json")).expect("index");
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
        .expect("oci-layout");
}

/// The digest `tag` names in `store`, read by skopeo (not by mainline).
fn tagged(store: &str, tag: &str) -> String {
    let reference = match store.strip_prefix("oci://") {
        Some(rest) => format!("docker://{rest}:{tag}"),
        None => format!("oci:{}:{tag}", store.trim_start_matches("oci-layout:")),
    };
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false", &reference])
        .output()
        .expect("skopeo");
    assert!(out.status.success(), "skopeo inspect {reference}");
    sha256(&out.stdout)
}

fn an_older_format_artifact_is_kept_on_re_push(store: &str, tmp: &Path) {
    let (repo, c) = same_tree_repo(tmp);
    let (a, b) = (&c[0], &c[1]);
    let (manifest, layer) = packed_now(tmp, &repo, a);
    let older_layer = filter(&["gzip", "-n", "-1"], &filter(&["gzip", "-dc"], &layer));
    assert_ne!(older_layer, layer, "another gzip of the same tar");
    let older = with_layer(&manifest, &older_layer);
    put_artifact(store, &format!("sha-{a}"), &older_layer, &older);

    let pushed = push_git(store, &repo, a).ok().json();
    assert_eq!(pushed["digest"], sha256(&older), "{pushed}");
    assert_eq!(pushed["already_present"], true, "{pushed}");
    assert_eq!(tagged(store, &format!("sha-{a}")), sha256(&older));
    // The new layer was uploaded and indexed: B (same tree) reuses it, in today's format.
    assert_eq!(pushed["blobs_uploaded"], 1, "{pushed}");
    let reused = push_git(store, &repo, b).ok().json();
    assert_eq!(reused["tree_index"], "reused", "{reused}");
    assert_eq!(
        pulled_file(&format!("{store}:sha-{b}"), &tmp.join("pulled"), "app.yaml"),
        "kind: Deployment\nreplicas: 2\n"
    );
}
on_both_stores!(an_older_format_artifact_is_kept_on_re_push);

fn another_tar_stream_under_the_tag_is_still_a_conflict(store: &str, tmp: &Path) {
    let (repo, c) = same_tree_repo(tmp);
    let (a, cc) = (&c[0], &c[2]);
    // C's manifest exactly, but over a layer that holds A's tree (gzipped by GNU gzip).
    let (_, a_layer) = packed_now(tmp, &repo, a);
    let (c_manifest, _) = packed_now(tmp, &repo, cc);
    let foreign = filter(&["gzip", "-n", "-1"], &filter(&["gzip", "-dc"], &a_layer));
    let wrong = with_layer(&c_manifest, &foreign);
    put_artifact(store, &format!("sha-{cc}"), &foreign, &wrong);

    let run = push_git(store, &repo, cc);
    assert_eq!(run.code, 9, "a conflict\n{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("artifact tags are immutable"),
        "{}",
        run.stderr
    );
    assert_eq!(tagged(store, &format!("sha-{cc}")), sha256(&wrong));
}
on_both_stores!(another_tar_stream_under_the_tag_is_still_a_conflict);
