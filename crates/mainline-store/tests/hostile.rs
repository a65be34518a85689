//! Registries that misbehave on demand (tests/common/fake.rs): wrong digests, 5xx, 429,
//! refusals. Each test checks what we answer and how many requests it took.

mod common;

use common::fake::{Answer, FakeRegistry, Request};
use common::{plain_http_options, registry_location};
use mainline_core::{Digest, Tag};
use mainline_store::registry::{Credentials, RegistryOptions, RegistryStore};
use mainline_store::{ErrorKind, ReferenceTarget, Store, OCI_MANIFEST_MEDIA_TYPE};
use std::time::{Duration, Instant};

const MANIFEST: &[u8] = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.cncf.flux.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;

fn tag(name: &str) -> Tag {
    name.parse().expect("test tags are valid")
}

fn store_for(fake: &FakeRegistry, options: RegistryOptions) -> RegistryStore {
    RegistryStore::new(registry_location(&fake.host, "team/app"), options).expect("store")
}

fn options(fake: &FakeRegistry, dir: &std::path::Path) -> RegistryOptions {
    plain_http_options(&fake.host, dir)
}

/// A fake that wants basic auth (any credentials) before it runs `script`.
fn with_basic_auth(
    script: impl Fn(&Request, usize) -> Answer + Send + Sync + 'static,
) -> FakeRegistry {
    FakeRegistry::start(move |request, n| {
        if request.authorization.is_none() {
            return Answer::new(401).header("WWW-Authenticate", r#"Basic realm="fake""#);
        }
        script(request, n)
    })
}

fn lying_manifests(request: &Request, _: usize) -> Answer {
    let other = Digest::of(b"some other manifest");
    match request.path.as_str() {
        "/v2/" => Answer::new(200),
        "/v2/team/app/manifests/latest" => Answer::new(200)
            .header("Content-Type", OCI_MANIFEST_MEDIA_TYPE)
            .header("Docker-Content-Digest", other.as_str())
            .body(MANIFEST),
        // Asked by digest, answers bytes with another digest (and no header).
        path if path.starts_with("/v2/team/app/manifests/sha256:") => Answer::new(200)
            .header("Content-Type", OCI_MANIFEST_MEDIA_TYPE)
            .body(MANIFEST),
        _ => Answer::new(404),
    }
}

#[test]
fn manifest_bytes_that_do_not_match_their_digest_are_an_integrity_error() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let asked = Digest::of(b"the manifest we asked for");
    let credentials = Credentials {
        username: "u".to_owned(),
        password: "p".to_owned(),
    };
    // Both paths: our own anonymous requests, and oci-client's authenticated ones.
    let open = FakeRegistry::start(lying_manifests);
    let guarded = with_basic_auth(lying_manifests);
    let stores = [
        store_for(&open, options(&open, scratch.path())),
        store_for(
            &guarded,
            RegistryOptions {
                credentials: Some(credentials),
                ..options(&guarded, scratch.path())
            },
        ),
    ];
    for store in &stores {
        for target in [
            ReferenceTarget::Tag(tag("latest")),
            ReferenceTarget::Digest(asked.clone()),
        ] {
            let err = store
                .fetch_manifest(&target)
                .expect_err("must not accept the bytes");
            assert_eq!(err.kind, ErrorKind::Integrity, "{target}: {err}");
            assert!(err.message.contains("does not match its digest"), "{err}");
        }
    }
    for fake in [&open, &guarded] {
        let path = format!("/v2/team/app/manifests/{asked}");
        let by_digest: Vec<_> = fake
            .requests()
            .into_iter()
            .filter(|r| r.path == path && r.authorization.is_some() == (fake.host == guarded.host))
            .collect();
        assert_eq!(by_digest.len(), 1, "an integrity failure is not retried");
    }
}

#[test]
fn a_registry_reporting_another_digest_for_our_manifest_is_an_integrity_error() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let other = Digest::of(b"not what we sent");
    let fake = FakeRegistry::start(move |request, _| match request.path.as_str() {
        "/v2/team/app/manifests/latest" if request.method == "PUT" => {
            Answer::new(201).header("Location", &format!("/v2/team/app/manifests/{other}"))
        }
        _ => Answer::new(404),
    });
    let store = store_for(&fake, options(&fake, scratch.path()));
    let err = store
        .put_manifest(&tag("latest"), OCI_MANIFEST_MEDIA_TYPE, MANIFEST)
        .expect_err("the registry stored something else");
    assert_eq!(err.kind, ErrorKind::Integrity, "{err}");
}

#[test]
fn a_503_twice_then_200_succeeds_after_retries() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let digest = Digest::of(MANIFEST);
    let blob = Digest::of(b"a blob");
    let fake = FakeRegistry::start(move |request, n| {
        if n < 2 {
            return Answer::new(503).body(b"busy");
        }
        match request.path.as_str() {
            "/v2/team/app/manifests/latest" => Answer::new(200)
                .header("Docker-Content-Digest", digest.as_str())
                .header("Content-Length", &MANIFEST.len().to_string()),
            path if path.starts_with("/v2/team/app/blobs/") => Answer::new(200),
            _ => Answer::new(404),
        }
    });
    let store = store_for(&fake, options(&fake, scratch.path()));
    assert_eq!(
        store.resolve(&tag("latest")).expect("retried"),
        Some(Digest::of(MANIFEST))
    );
    assert_eq!(fake.count("HEAD", "/v2/team/app/manifests/latest"), 3);
    // The same through oci-client (blob calls go through it).
    assert!(store.blob_exists(&blob).expect("retried"));
    assert_eq!(fake.count("HEAD", &format!("/v2/team/app/blobs/{blob}")), 3);
}

#[test]
fn a_429_with_retry_after_is_retried_after_the_pause_it_asks_for() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let digest = Digest::of(MANIFEST);
    let fake = FakeRegistry::start(move |_, n| {
        if n == 0 {
            Answer::new(429).header("Retry-After", "1")
        } else {
            Answer::new(200).header("Docker-Content-Digest", digest.as_str())
        }
    });
    let store = store_for(&fake, options(&fake, scratch.path()));
    let started = Instant::now();
    assert_eq!(
        store.resolve(&tag("latest")).expect("retried"),
        Some(Digest::of(MANIFEST))
    );
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "waited only {:?}",
        started.elapsed()
    );
    assert_eq!(fake.count("HEAD", "/v2/team/app/manifests/latest"), 2);
}

#[test]
fn a_4xx_is_never_retried() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let fake = FakeRegistry::start(|request, _| match request.method.as_str() {
        "PUT" => Answer::new(400)
            .header("Content-Type", "application/json")
            .body(br#"{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid"}]}"#),
        _ => Answer::new(400).body(b"bad request"),
    });
    let store = store_for(&fake, options(&fake, scratch.path()));
    let err = store.resolve(&tag("latest")).expect_err("400");
    assert_eq!(err.kind, ErrorKind::InvalidInput, "{err}");
    let err = store
        .put_manifest(&tag("latest"), OCI_MANIFEST_MEDIA_TYPE, MANIFEST)
        .expect_err("400");
    assert_eq!(err.kind, ErrorKind::InvalidInput, "{err}");
    assert!(err.message.contains("manifest invalid"), "{err}");
    assert_eq!(fake.count("HEAD", "/v2/team/app/manifests/latest"), 1);
    assert_eq!(fake.count("PUT", "/v2/team/app/manifests/latest"), 1);
}

#[test]
fn a_registry_that_stays_down_is_unavailable_after_the_configured_retries() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let fake = FakeRegistry::start(|_, _| Answer::new(500).body(b"internal error"));
    let store = store_for(
        &fake,
        RegistryOptions {
            retries: 2,
            ..options(&fake, scratch.path())
        },
    );
    let err = store.list_tags().expect_err("500 forever");
    assert_eq!(err.kind, ErrorKind::Unavailable, "{err}");
    assert!(err.message.contains("answered 500"), "{err}");
    assert!(err.message.contains("tried 3 times"), "{err}");
    assert_eq!(fake.count("GET", "/v2/team/app/tags/list"), 3);
}

#[test]
fn once_authenticated_resolve_is_one_head() {
    let scratch = tempfile::tempdir().expect("temp dir");
    let digest = Digest::of(MANIFEST);
    let fake = with_basic_auth(move |request, _| match request.path.as_str() {
        "/v2/" => Answer::new(200),
        _ => Answer::new(200).header("Docker-Content-Digest", digest.as_str()),
    });
    let docker = scratch.path().join("docker");
    std::fs::create_dir(&docker).expect("mkdir");
    std::fs::write(
        docker.join("config.json"),
        serde_json::json!({"auths": {fake.host.clone(): {"username": "u", "password": "p"}}})
            .to_string(),
    )
    .expect("write config.json");
    let store = store_for(&fake, options(&fake, &docker));
    assert_eq!(
        store.resolve(&tag("latest")).expect("first"),
        Some(Digest::of(MANIFEST))
    );
    assert!(store.is_authenticated());
    let before = fake.requests().len();
    assert_eq!(
        store.resolve(&tag("latest")).expect("second"),
        Some(Digest::of(MANIFEST))
    );
    let after: Vec<_> = fake.requests().split_off(before);
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(after[0].method, "HEAD");
    assert!(after[0]
        .authorization
        .as_deref()
        .is_some_and(|a| a.starts_with("Basic ")));
}
