//! The evidence checks against signatures made by an independent signer — the `openssl` CLI
//! (ECDSA P-256/P-384, Ed25519, RSA) over cosign's simple-signing payload and DSSE's
//! pre-authentication encoding — stored in a real OCI image layout the way cosign stores them
//! (`sha256-<hex>.sig` / `.att` manifests whose layers carry the documents). The end-to-end
//! check with the real `cosign` CLI against a registry is `crates/mainline/tests/cosign.rs`.

use base64::Engine;
use mainline_core::{Digest, Tag};
use mainline_evidence::attest::{attestation_tag, pae};
use mainline_evidence::cosign::{SIGNATURE_ANNOTATION, SIMPLESIGNING_MEDIA_TYPE};
use mainline_evidence::simplesigning::payload_for;
use mainline_evidence::{
    check_attestation, check_signature, AttestationPolicy, AttestationProblem, Evidence, KeySet,
    Problem, PublicKey,
};
use mainline_store::layout::LayoutStore;
use mainline_store::{Location, Store, OCI_MANIFEST_MEDIA_TYPE};
use std::path::{Path, PathBuf};
use std::process::Command;

fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("openssl is needed as the independent signer ({e}); apt-get install -y openssl")
        });
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A key pair made by openssl: the private key file and the public key file.
struct Pair {
    private: PathBuf,
    public: PathBuf,
    /// `openssl dgst` digest option, or None for Ed25519 (signs the message itself).
    digest: Option<&'static str>,
}

fn pair(dir: &Path, name: &str, kind: &str) -> Pair {
    let private = dir.join(format!("{name}.key"));
    let public = dir.join(format!("{name}.pub"));
    let p = private.to_str().unwrap();
    let digest = match kind {
        "p256" => {
            openssl(&[
                "ecparam",
                "-genkey",
                "-name",
                "prime256v1",
                "-noout",
                "-out",
                p,
            ]);
            Some("-sha256")
        }
        "p384" => {
            openssl(&[
                "ecparam",
                "-genkey",
                "-name",
                "secp384r1",
                "-noout",
                "-out",
                p,
            ]);
            Some("-sha384")
        }
        "ed25519" => {
            openssl(&["genpkey", "-algorithm", "ed25519", "-out", p]);
            None
        }
        "rsa" => {
            openssl(&[
                "genpkey",
                "-algorithm",
                "rsa",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                p,
            ]);
            Some("-sha256")
        }
        _ => unreachable!(),
    };
    openssl(&[
        "pkey",
        "-in",
        p,
        "-pubout",
        "-out",
        public.to_str().unwrap(),
    ]);
    Pair {
        private,
        public,
        digest,
    }
}

impl Pair {
    fn sign(&self, dir: &Path, message: &[u8]) -> Vec<u8> {
        let msg = dir.join("message.bin");
        std::fs::write(&msg, message).unwrap();
        let key = self.private.to_str().unwrap();
        let m = msg.to_str().unwrap();
        match self.digest {
            Some(d) => openssl(&["dgst", d, "-sign", key, m]),
            None => openssl(&["pkeyutl", "-sign", "-rawin", "-inkey", key, "-in", m]),
        }
    }
    fn keys(&self) -> KeySet {
        KeySet::load(&[&self.public]).expect("openssl's public key loads")
    }
}

fn layout(dir: &Path) -> LayoutStore {
    LayoutStore::open(Location::Layout {
        path: dir.join("store"),
    })
    .expect("layout")
}

/// One stored document: its bytes and its layer annotations.
type Document<'a> = (Vec<u8>, Vec<(&'a str, String)>);

/// Store `layers` as a manifest tagged `tag`, as cosign does.
fn put_documents(store: &dyn Store, dir: &Path, tag: &Tag, media: &str, layers: &[Document]) {
    let config = b"{}".to_vec();
    let mut descs = Vec::new();
    for (i, (bytes, annotations)) in layers
        .iter()
        .chain([(config.clone(), vec![])].iter())
        .enumerate()
    {
        let path = dir.join(format!("blob-{i}"));
        std::fs::write(&path, bytes).unwrap();
        let digest = Digest::of(bytes);
        store
            .push_blob(&digest, bytes.len() as u64, &path, &mut |_| {})
            .unwrap();
        let ann: serde_json::Map<String, serde_json::Value> = annotations
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.clone())))
            .collect();
        descs.push(serde_json::json!({
            "mediaType": media, "digest": digest.as_str(), "size": bytes.len(), "annotations": ann
        }));
    }
    let config_desc = descs.pop().unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_desc["digest"], "size": config_desc["size"]},
        "layers": descs,
    });
    store
        .put_manifest(
            tag,
            OCI_MANIFEST_MEDIA_TYPE,
            &serde_json::to_vec(&manifest).unwrap(),
        )
        .unwrap();
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn artifact() -> Digest {
    Digest::of(b"the artifact's manifest")
}

/// Sign `payload` with `pair` and store it as `digest`'s cosign signature.
fn store_signature(
    store: &dyn Store,
    dir: &Path,
    digest: &Digest,
    pair: &Pair,
    payload: &[u8],
    sig_over: &[u8],
) {
    let sig = pair.sign(dir, sig_over);
    put_documents(
        store,
        dir,
        &digest.cosign_signature_tag(),
        SIMPLESIGNING_MEDIA_TYPE,
        &[(payload.to_vec(), vec![(SIGNATURE_ANNOTATION, b64(&sig))])],
    );
}

#[test]
fn every_supported_key_type_verifies_its_own_signature_and_no_other() {
    let dir = tempfile::tempdir().unwrap();
    let pairs: Vec<Pair> = ["p256", "p384", "ed25519", "rsa"]
        .iter()
        .map(|k| pair(dir.path(), k, k))
        .collect();
    let message = payload_for("example.test/acme/app", &artifact());
    for (i, p) in pairs.iter().enumerate() {
        let key = PublicKey::load(&p.public).unwrap();
        let sig = p.sign(dir.path(), &message);
        assert!(key.verifies(&message, &sig), "{}", key.algorithm_name());
        let mut altered = message.clone();
        altered[10] ^= 1;
        assert!(
            !key.verifies(&altered, &sig),
            "altered payload, {}",
            key.algorithm_name()
        );
        for (j, other) in pairs.iter().enumerate() {
            if i != j {
                let theirs = other.sign(dir.path(), &message);
                assert!(!key.verifies(&message, &theirs));
            }
        }
    }
}

#[test]
fn unusable_key_files_are_refused_naming_the_file_and_what_was_found() {
    let dir = tempfile::tempdir().unwrap();
    let p = pair(dir.path(), "k", "p256");
    let e = PublicKey::load(&p.private).unwrap_err();
    assert!(
        e.to_string().contains("k.key") && e.to_string().contains("not a \"PUBLIC KEY\""),
        "{e}"
    );
    let garbage = dir.path().join("garbage.pub");
    std::fs::write(&garbage, "not a key\n").unwrap();
    let e = PublicKey::load(&garbage).unwrap_err();
    assert!(
        e.to_string().contains("garbage.pub") && e.to_string().contains("not a PEM"),
        "{e}"
    );
    let missing = dir.path().join("missing.pub");
    let e = KeySet::load(&[&missing]).unwrap_err();
    assert!(
        e.to_string().contains("missing.pub") && e.to_string().contains("cannot read"),
        "{e}"
    );
    // An EC key on a curve ring cannot verify with is refused when loaded, not at verify time.
    let k1 = dir.path().join("k1.key");
    openssl(&[
        "ecparam",
        "-genkey",
        "-name",
        "secp256k1",
        "-noout",
        "-out",
        k1.to_str().unwrap(),
    ]);
    let k1pub = dir.path().join("k1.pub");
    openssl(&[
        "pkey",
        "-in",
        k1.to_str().unwrap(),
        "-pubout",
        "-out",
        k1pub.to_str().unwrap(),
    ]);
    let e = PublicKey::load(&k1pub).unwrap_err();
    assert!(e.to_string().contains("only P-256 and P-384"), "{e}");
}

#[test]
fn a_signature_counts_only_over_this_digest_with_a_configured_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = layout(dir.path());
    let ours = pair(dir.path(), "ours", "p256");
    let theirs = pair(dir.path(), "theirs", "p256");
    let d = artifact();
    let payload = payload_for("example.test/acme/app", &d);

    // No .sig tag at all.
    let e = check_signature(&store, &d, &ours.keys()).unwrap();
    assert!(
        matches!(&e, Evidence::Missing(Problem::NoSignature { .. })),
        "{e:?}"
    );

    // Signed by our key: verified, naming the key.
    store_signature(&store, dir.path(), &d, &ours, &payload, &payload);
    match check_signature(&store, &d, &ours.keys()).unwrap() {
        Evidence::Verified { key, algorithm } => {
            assert!(key.ends_with("ours.pub"));
            assert_eq!(algorithm, "ecdsa-p256");
        }
        other => panic!("expected verified: {other:?}"),
    }
    // The same signature judged with another key.
    let e = check_signature(&store, &d, &theirs.keys()).unwrap();
    match &e {
        Evidence::Missing(p @ Problem::NoKeyVerifies { .. }) => {
            assert_eq!(p.code(), "wrong_key_or_bad_signature");
            assert!(p.to_string().contains("theirs.pub"), "{p}");
        }
        other => panic!("{other:?}"),
    }
    // Two keys configured, one of them right: verified.
    let both = KeySet::load(&[&theirs.public, &ours.public]).unwrap();
    assert!(matches!(
        check_signature(&store, &d, &both).unwrap(),
        Evidence::Verified { .. }
    ));

    // A tampered payload (the signature is over the original bytes).
    // (still a valid payload for this digest: only the signed-for repository changed).
    let tampered = String::from_utf8(payload.clone())
        .unwrap()
        .replace("acme/app", "acme/apq")
        .into_bytes();
    store_signature(&store, dir.path(), &d, &ours, &tampered, &payload);
    let e = check_signature(&store, &d, &ours.keys()).unwrap();
    assert!(
        matches!(&e, Evidence::Missing(Problem::NoKeyVerifies { .. })),
        "{e:?}"
    );

    // A valid signature by our key, but over another digest's payload, re-tagged as ours.
    let other = Digest::of(b"another artifact");
    let other_payload = payload_for("example.test/acme/app", &other);
    store_signature(
        &store,
        dir.path(),
        &d,
        &ours,
        &other_payload,
        &other_payload,
    );
    let e = check_signature(&store, &d, &ours.keys()).unwrap();
    match &e {
        Evidence::Missing(p @ Problem::OtherDigest { named, .. }) => {
            assert_eq!(named, other.as_str());
            assert_eq!(p.code(), "other_digest");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_sig_tag_with_garbage_is_not_a_signature() {
    let dir = tempfile::tempdir().unwrap();
    let store = layout(dir.path());
    let ours = pair(dir.path(), "ours", "ed25519");
    let d = artifact();
    let tag = d.cosign_signature_tag();
    // A layer without the signature annotation.
    put_documents(
        &store,
        dir.path(),
        &tag,
        "text/plain",
        &[(b"hello".to_vec(), vec![])],
    );
    let e = check_signature(&store, &d, &ours.keys()).unwrap();
    assert!(
        matches!(&e, Evidence::Missing(Problem::NotASignature { .. })),
        "{e:?}"
    );
    // A signature annotation that is not base64, over a payload that is not JSON.
    put_documents(
        &store,
        dir.path(),
        &tag,
        SIMPLESIGNING_MEDIA_TYPE,
        &[(
            b"\x00\x01 garbage".to_vec(),
            vec![(SIGNATURE_ANNOTATION, "%%%".into())],
        )],
    );
    let e = check_signature(&store, &d, &ours.keys()).unwrap();
    match &e {
        Evidence::Missing(p @ Problem::NotASignature { why, .. }) => {
            assert!(why.contains("base64"), "{why}");
            assert_eq!(p.code(), "not_a_signature");
        }
        other => panic!("{other:?}"),
    }
    let sig = ours.sign(dir.path(), b"\x00\x01 garbage");
    put_documents(
        &store,
        dir.path(),
        &tag,
        SIMPLESIGNING_MEDIA_TYPE,
        &[(
            b"\x00\x01 garbage".to_vec(),
            vec![(SIGNATURE_ANNOTATION, b64(&sig))],
        )],
    );
    let e = check_signature(&store, &d, &ours.keys()).unwrap();
    assert!(
        matches!(&e, Evidence::Missing(Problem::NotASignature { why, .. }) if why.contains("simple-signing")),
        "{e:?}"
    );
}

fn statement(digest: &Digest, builder: &str, source: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "example.test/acme/app", "digest": {"sha256": digest.hex()}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {
            "buildDefinition": {
                "buildType": "https://actions.github.io/buildtypes/workflow/v1",
                "externalParameters": {"workflow": {"repository": source, "ref": "refs/heads/main"}},
                "resolvedDependencies": [{"uri": format!("git+{source}@refs/heads/main")}]
            },
            "runDetails": {"builder": {"id": builder}}
        }
    }))
    .unwrap()
}

fn store_attestation(
    store: &dyn Store,
    dir: &Path,
    digest: &Digest,
    pair: &Pair,
    statement: &[u8],
) {
    let ptype = "application/vnd.in-toto+json";
    let sig = pair.sign(dir, &pae(ptype, statement));
    let envelope = serde_json::to_vec(&serde_json::json!({
        "payloadType": ptype, "payload": b64(statement), "signatures": [{"keyid": "", "sig": b64(&sig)}]
    }))
    .unwrap();
    put_documents(
        store,
        dir,
        &attestation_tag(digest),
        "application/vnd.dsse.envelope.v1+json",
        &[(envelope, vec![(SIGNATURE_ANNOTATION, String::new())])],
    );
}

#[test]
fn an_attestation_counts_only_about_this_digest_from_the_configured_builder_and_source() {
    let dir = tempfile::tempdir().unwrap();
    let store = layout(dir.path());
    let ours = pair(dir.path(), "ours", "p256");
    let theirs = pair(dir.path(), "theirs", "p256");
    let d = artifact();
    let builder = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main";
    let source = "https://github.com/acme/app";
    let policy = AttestationPolicy {
        builder_id: Some(builder.into()),
        source: Some(source.into()),
    };
    let check = |keys: &KeySet, policy: &AttestationPolicy| {
        check_attestation(&store, &d, keys, policy).unwrap()
    };

    assert!(matches!(
        check(&ours.keys(), &policy),
        Err(AttestationProblem::None { .. })
    ));
    store_attestation(
        &store,
        dir.path(),
        &d,
        &ours,
        &statement(&d, builder, source),
    );
    assert_eq!(check(&ours.keys(), &policy), Ok(()));
    assert_eq!(check(&ours.keys(), &AttestationPolicy::default()), Ok(()));
    assert!(matches!(
        check(&theirs.keys(), &policy),
        Err(AttestationProblem::NoKeyVerifies { .. })
    ));

    let wrong_builder = AttestationPolicy {
        builder_id: Some("https://evil.example/builder".into()),
        ..policy.clone()
    };
    match check(&ours.keys(), &wrong_builder) {
        Err(p @ AttestationProblem::Mismatch { .. }) => {
            assert!(p.to_string().contains("builder"), "{p}")
        }
        other => panic!("{other:?}"),
    }
    let wrong_source = AttestationPolicy {
        source: Some("https://github.com/evil/app".into()),
        ..policy.clone()
    };
    assert!(matches!(
        check(&ours.keys(), &wrong_source),
        Err(AttestationProblem::Mismatch { .. })
    ));

    // A valid statement about another digest, stored as ours.
    let other = Digest::of(b"another artifact");
    store_attestation(
        &store,
        dir.path(),
        &d,
        &ours,
        &statement(&other, builder, source),
    );
    assert!(matches!(
        check(&ours.keys(), &policy),
        Err(AttestationProblem::OtherSubject { .. })
    ));
}

#[test]
fn a_layer_longer_than_its_descriptor_says_is_refused_not_held() {
    let dir = tempfile::tempdir().unwrap();
    let store = layout(dir.path());
    let ours = pair(dir.path(), "ours", "p256");
    let d = artifact();
    let payload = payload_for("example.test/acme/app", &d);
    let sig = ours.sign(dir.path(), &payload);
    let path = dir.path().join("payload");
    std::fs::write(&path, &payload).unwrap();
    let blob = Digest::of(&payload);
    store
        .push_blob(&blob, payload.len() as u64, &path, &mut |_| {})
        .unwrap();
    let config = b"{}";
    let cpath = dir.path().join("config");
    std::fs::write(&cpath, config).unwrap();
    let cdigest = Digest::of(config);
    store.push_blob(&cdigest, 2, &cpath, &mut |_| {}).unwrap();
    // The descriptor under-declares the payload by 10 bytes.
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdigest.as_str(), "size": 2},
        "layers": [{"mediaType": SIMPLESIGNING_MEDIA_TYPE, "digest": blob.as_str(),
                    "size": payload.len() - 10, "annotations": {SIGNATURE_ANNOTATION: b64(&sig)}}],
    });
    store
        .put_manifest(
            &d.cosign_signature_tag(),
            OCI_MANIFEST_MEDIA_TYPE,
            &serde_json::to_vec(&manifest).unwrap(),
        )
        .unwrap();
    match check_signature(&store, &d, &ours.keys()).unwrap() {
        Evidence::Missing(Problem::NotASignature { why, .. }) => {
            assert!(why.contains("longer than"), "{why}")
        }
        other => panic!("a layer longer than declared was used: {other:?}"),
    }
}
