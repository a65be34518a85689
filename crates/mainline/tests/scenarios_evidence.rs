//! DESIGN.md scenario 8, with evidence that means something: signatures and SLSA provenance
//! made by the real `cosign` CLI (built from its Go module by scripts/test.sh, path in
//! `MAINLINE_COSIGN`) against the real test registry, judged by `mainline … --signature-key`.
//! `cosign verify` is the independent judge that what mainline accepts, cosign (and so Flux's
//! `spec.verify`, which uses cosign's libraries) accepts too.
//!
//! Cases: no signature; a signature by another key; a signature by the configured key (moves);
//! no attestation; an attestation from another builder; the right one (moves); each refusal
//! recorded in the journal with what failed. Payloads for another digest, tampered payloads and
//! garbage `.sig` tags need a signer that misbehaves on demand: mainline-evidence's tests make
//! them with openssl.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use support::queue::{app, moves, Channel, Queue};
use support::*;

fn cosign_bin() -> PathBuf {
    PathBuf::from(std::env::var("MAINLINE_COSIGN").unwrap_or_else(|_| {
        panic!(
            "MAINLINE_COSIGN is not set: these tests need the real cosign CLI. scripts/test.sh \
             builds it (go install github.com/sigstore/cosign/v2/cmd/cosign@v2.4.3) and exports \
             its path"
        )
    }))
}

/// Run cosign in `dir` (its keys live there; HOME too, so nothing is read from the user's).
fn cosign(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(cosign_bin())
        .args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .env("COSIGN_PASSWORD", "")
        .env("COSIGN_YES", "true")
        .env("SIGSTORE_NO_CACHE", "1")
        .output()
        .expect("run cosign")
}

fn cosign_ok(dir: &Path, args: &[&str]) {
    let out = cosign(dir, args);
    assert!(
        out.status.success(),
        "cosign {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A key pair in its own folder: `<dir>/<name>/cosign.{key,pub}`.
fn key_pair(root: &Path, name: &str) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    cosign_ok(&dir, &["generate-key-pair"]);
    dir
}

/// `host/repo@digest` for cosign.
fn image(ch: &Channel, digest: &str) -> String {
    format!(
        "{}@{digest}",
        ch.store.strip_prefix("oci://").expect("registry store")
    )
}

fn sign(keys: &Path, ch: &Channel, digest: &str) {
    cosign_ok(
        keys,
        &[
            "sign",
            "--key",
            "cosign.key",
            "--tlog-upload=false",
            "--allow-http-registry",
            &image(ch, digest),
        ],
    );
}

fn attest(keys: &Path, ch: &Channel, digest: &str, builder: &str, source: &str) {
    let predicate = keys.join("predicate.json");
    std::fs::write(
        &predicate,
        serde_json::to_vec(&serde_json::json!({
            "buildDefinition": {
                "buildType": "https://actions.github.io/buildtypes/workflow/v1",
                "externalParameters": {"workflow": {"repository": source, "ref": "refs/heads/main", "path": ".github/workflows/ci.yml"}},
                "resolvedDependencies": [{"uri": format!("git+{source}@refs/heads/main")}]
            },
            "runDetails": {"builder": {"id": builder}, "metadata": {"invocationId": "1"}}
        }))
        .unwrap(),
    )
    .unwrap();
    cosign_ok(
        keys,
        &[
            "attest",
            "--key",
            "cosign.key",
            "--type",
            "slsaprovenance1",
            "--predicate",
            "predicate.json",
            "--tlog-upload=false",
            "--allow-http-registry",
            &image(ch, digest),
        ],
    );
}

fn refusal_message(r: &serde_json::Value) -> String {
    assert_eq!(r["refusal"]["reason"], "evidence_missing", "{r}");
    r["refusal"]["message"]
        .as_str()
        .expect("message")
        .to_owned()
}

#[test]
fn cosign_signatures_are_verified_with_the_configured_key() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let q = Queue::new(root);
    let ours = key_pair(root, "ours");
    let theirs = key_pair(root, "theirs");
    let key = ours.join("cosign.pub");
    let ch = Channel::new(&registry_store("cosign"), &q, "runner")
        .with(&["--signature-key", key.to_str().unwrap()]);
    let m0 = q.main();
    let d0 = ch.push_artifact(&m0);

    let msg = refusal_message(&ch.expect(&["reconcile"], 5));
    assert!(
        msg.contains("no cosign signature") && msg.contains(&d0[..19]),
        "{msg}"
    );
    assert_eq!(ch.digest("latest"), None, "nothing was written");

    sign(&theirs, &ch, &d0);
    let msg = refusal_message(&ch.expect(&["reconcile"], 5));
    assert!(
        msg.contains("does not verify with the configured key(s)")
            && msg.contains("ours/cosign.pub"),
        "{msg}"
    );
    assert_eq!(ch.digest("latest"), None);
    // cosign agrees: not signed by our key.
    let verify = |dir: &Path| {
        cosign(
            dir,
            &[
                "verify",
                "--key",
                "cosign.pub",
                "--insecure-ignore-tlog",
                "--allow-http-registry",
                &image(&ch, &d0),
            ],
        )
    };
    assert!(
        !verify(&ours).status.success(),
        "cosign verify accepted another key's signature"
    );

    sign(&ours, &ch, &d0);
    assert!(
        verify(&ours).status.success(),
        "cosign verify refuses what we signed"
    );
    let r = ch.expect(&["reconcile"], 0);
    assert_eq!(moves(&r).len(), 1, "{r}");
    assert_eq!(ch.digest("latest").as_deref(), Some(d0.as_str()));

    // The refusals are in the journal, with what failed.
    let h = ch.expect(&["history"], 0);
    let text = h.to_string();
    assert!(
        text.contains("no cosign signature") && text.contains("does not verify"),
        "{h}"
    );
}

#[test]
fn provenance_must_name_the_configured_builder_and_source() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let mut q = Queue::new(root);
    let ours = key_pair(root, "ours");
    let key = ours.join("cosign.pub");
    let builder = "https://github.com/acme/app/.github/workflows/ci.yml@refs/heads/main";
    let source = "https://github.com/acme/app";
    let ch = Channel::new(&registry_store("attest"), &q, "runner").with(&[
        "--signature-key",
        key.to_str().unwrap(),
        "--attestation-builder",
        builder,
        "--attestation-source",
        source,
    ]);
    let m1 = q.push_main(&[("k8s/app.yaml", &app(3))], "three replicas");
    let d1 = ch.push_artifact(&m1);
    sign(&ours, &ch, &d1);

    let msg = refusal_message(&ch.expect(&["reconcile"], 5));
    assert!(msg.contains("no attestation"), "{msg}");

    attest(&ours, &ch, &d1, "https://evil.example/builder", source);
    let msg = refusal_message(&ch.expect(&["reconcile"], 5));
    assert!(
        msg.contains("does not match the policy") && msg.contains("evil.example"),
        "{msg}"
    );
    assert_eq!(ch.digest("latest"), None);

    attest(&ours, &ch, &d1, builder, source);
    let r = ch.expect(&["reconcile"], 0);
    assert_eq!(moves(&r).len(), 1, "{r}");
    assert_eq!(ch.digest("latest").as_deref(), Some(d1.as_str()));
}

#[test]
fn a_bad_key_file_is_invalid_input_named_before_anything_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let q = Queue::new(root);
    let bad = root.join("cosign.key");
    std::fs::write(&bad, "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n").unwrap();
    let ch = Channel::new(&registry_store("badkey"), &q, "runner")
        .with(&["--signature-key", bad.to_str().unwrap()]);
    let r = ch.run(&["reconcile"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("cosign.key") && r.stderr.contains("PUBLIC KEY"),
        "{}",
        r.stderr
    );
    let r = Channel::new(&registry_store("badkey"), &q, "runner")
        .with(&["--require-attestation"])
        .run(&["status"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("--signature-key"), "{}", r.stderr);
    // An empty MAINLINE_SIGNATURE_KEY (a CI variable left undefined) means no key, not an error.
    let plain = Channel::new(&registry_store("badkey"), &q, "runner");
    let r = plain.run_env(&["status"], &[("MAINLINE_SIGNATURE_KEY", "")]);
    assert_ne!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.json()["verdict"], "BEHIND", "{}", r.stdout);
}
