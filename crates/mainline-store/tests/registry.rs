//! Registry specifics against the real registries: where credentials come from, what a
//! refusal and an unreachable registry look like, and how many requests each operation costs.
//! (The behaviour shared with the layout is in tests/suite.rs; misbehaving registries are in
//! tests/hostile.rs.)

mod common;

use base64::Engine as _;
use common::suite::manifest;
use common::{
    auth_registry, open_registry, plain_http_options, registry_location, unique_repository,
    write_blob_file, LoggedRequest, RequestLog,
};
use mainline_core::{Digest, Tag};
use mainline_store::registry::{Credentials, RegistryOptions, RegistryStore};
use mainline_store::{ErrorKind, ReferenceTarget, Store, OCI_MANIFEST_MEDIA_TYPE};
use std::time::{Duration, Instant};

fn tag(name: &str) -> Tag {
    name.parse().expect("test tags are valid")
}

/// Pushes config + layer + manifest under `latest`; returns the manifest digest.
fn push_artifact(store: &dyn Store, scratch: &std::path::Path) -> Digest {
    let (layer_path, layer) = write_blob_file(scratch, "layer", 2048, 11);
    store
        .push_blob(&layer, 2048, &layer_path, &mut |_| {})
        .expect("push layer");
    let config_path = scratch.join("config");
    std::fs::write(&config_path, b"{}").expect("write config");
    let config = Digest::of(b"{}");
    store
        .push_blob(&config, 2, &config_path, &mut |_| {})
        .expect("push config");
    let bytes = manifest(
        (&config, 2),
        (&layer, 2048),
        "main@sha1:4444444444444444444444444444444444444444",
    );
    store
        .put_manifest(&tag("latest"), OCI_MANIFEST_MEDIA_TYPE, &bytes)
        .expect("put manifest")
}

#[test]
fn credentials_from_a_docker_config_json_are_used() {
    let (host, credentials) = auth_registry();
    let scratch = tempfile::tempdir().expect("temp dir");
    let docker = scratch.path().join("docker");
    std::fs::create_dir(&docker).expect("mkdir");
    let auth = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", credentials.username, credentials.password));
    std::fs::write(
        docker.join("config.json"),
        serde_json::json!({"auths": {host.clone(): {"auth": auth}}}).to_string(),
    )
    .expect("write config.json");
    let location = registry_location(&host, &unique_repository("docker-config"));
    let store = RegistryStore::new(location, plain_http_options(&host, &docker)).expect("store");
    assert!(!store.is_authenticated(), "no request was made yet");
    let digest = push_artifact(&store, scratch.path());
    assert!(
        store.is_authenticated(),
        "the 401 switched the store to credentials"
    );
    assert_eq!(
        store.resolve(&tag("latest")).expect("resolve"),
        Some(digest)
    );
}

#[test]
fn a_registry_that_wants_credentials_we_lack_is_unauthorized_and_says_what_to_do() {
    let (host, credentials) = auth_registry();
    let scratch = tempfile::tempdir().expect("temp dir");
    let repository = unique_repository("no-credentials");
    let location = registry_location(&host, &repository);
    let store = RegistryStore::new(location.clone(), plain_http_options(&host, scratch.path()))
        .expect("store");
    let err = store.resolve(&tag("latest")).expect_err("must be refused");
    assert_eq!(err.kind, ErrorKind::Unauthorized, "{err}");
    assert_eq!(
        err.message,
        format!("registry {host} refused the credentials (401) for {repository}: run `docker login {host}` or set MAINLINE_REGISTRY_USERNAME/MAINLINE_REGISTRY_PASSWORD")
    );

    // Wrong credentials: the same answer, and the password appears nowhere.
    let wrong = Credentials {
        username: credentials.username,
        password: "wrong-password-do-not-print".to_owned(),
    };
    let options = RegistryOptions {
        credentials: Some(wrong.clone()),
        ..plain_http_options(&host, scratch.path())
    };
    let store = RegistryStore::new(location, options).expect("store");
    for err in [
        store.resolve(&tag("latest")).expect_err("must be refused"),
        store
            .fetch_manifest(&ReferenceTarget::Tag(tag("latest")))
            .expect_err("must be refused"),
        store.list_tags().expect_err("must be refused"),
    ] {
        assert_eq!(err.kind, ErrorKind::Unauthorized, "{err}");
        assert!(err.message.contains(&host), "{err}");
        let printed = format!("{err} {err:?}");
        assert!(
            !printed.contains(&wrong.password),
            "the password leaked: {printed}"
        );
    }
    assert!(
        !format!("{wrong:?}").contains(&wrong.password),
        "Debug redacts the password"
    );
}

#[test]
fn an_unreachable_registry_is_unavailable_quickly_and_named() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let host = format!("127.0.0.1:{port}");
    let scratch = tempfile::tempdir().expect("temp dir");
    let store = RegistryStore::new(
        registry_location(&host, "nobody/home"),
        plain_http_options(&host, scratch.path()),
    )
    .expect("store");
    let started = Instant::now();
    let err = store.resolve(&tag("latest")).expect_err("nothing listens");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(err.kind, ErrorKind::Unavailable, "{err}");
    assert!(
        err.message
            .contains(&format!("registry {host} is unreachable")),
        "{err}"
    );
    assert!(
        err.message.contains("resolve tag latest on nobody/home"),
        "{err}"
    );
    assert!(err.message.contains("tried 4 times"), "{err}");
}

/// The requests one operation made, as (method, path-after-/v2/) pairs.
fn requests_of(log: &RequestLog, run: impl FnOnce()) -> Vec<(String, String)> {
    let before = log.requests().len();
    run();
    log.since(before)
        .into_iter()
        .map(|LoggedRequest { method, uri, .. }| (method, uri))
        .collect()
}

#[test]
fn each_operation_costs_the_fewest_requests_on_the_open_registry() {
    let host = open_registry();
    let log = RequestLog::open();
    let scratch = tempfile::tempdir().expect("temp dir");
    let repository = unique_repository("requests");
    let store = RegistryStore::new(
        registry_location(&host, &repository),
        plain_http_options(&host, scratch.path()),
    )
    .expect("store");
    let base = format!("/v2/{repository}");

    // First contact: no /v2/ ping, no token dance.
    let (path, blob) = write_blob_file(scratch.path(), "blob", 1024, 5);
    let seen = requests_of(&log, || {
        assert!(!store.blob_exists(&blob).expect("blob_exists"));
    });
    assert_eq!(
        seen,
        vec![("HEAD".to_owned(), format!("{base}/blobs/{blob}"))]
    );

    let seen = requests_of(&log, || {
        store
            .push_blob(&blob, 1024, &path, &mut |_| {})
            .expect("push");
    });
    assert_eq!(seen.len(), 2, "a blob upload is POST + PUT: {seen:?}");
    assert_eq!(
        seen[0],
        ("POST".to_owned(), format!("{base}/blobs/uploads/"))
    );
    assert_eq!(seen[1].0, "PUT");

    let digest = push_artifact(&store, scratch.path());

    let seen = requests_of(&log, || {
        assert_eq!(
            store.resolve(&tag("latest")).expect("resolve"),
            Some(digest.clone())
        );
    });
    assert_eq!(
        seen,
        vec![("HEAD".to_owned(), format!("{base}/manifests/latest"))],
        "resolve is one HEAD"
    );

    let seen = requests_of(&log, || {
        assert_eq!(store.resolve(&tag("absent")).expect("resolve"), None);
    });
    assert_eq!(
        seen,
        vec![("HEAD".to_owned(), format!("{base}/manifests/absent"))]
    );

    let seen = requests_of(&log, || {
        store
            .fetch_manifest(&ReferenceTarget::Digest(digest.clone()))
            .expect("fetch")
            .expect("present");
    });
    assert_eq!(
        seen,
        vec![("GET".to_owned(), format!("{base}/manifests/{digest}"))]
    );

    let bytes = store
        .fetch_manifest(&ReferenceTarget::Tag(tag("latest")))
        .expect("fetch")
        .expect("present")
        .bytes;
    let seen = requests_of(&log, || {
        store
            .put_manifest(&tag("channel"), OCI_MANIFEST_MEDIA_TYPE, &bytes)
            .expect("re-tag");
    });
    assert_eq!(
        seen,
        vec![("PUT".to_owned(), format!("{base}/manifests/channel"))],
        "re-tag is one PUT"
    );

    let seen = requests_of(&log, || {
        assert_eq!(store.list_tags().expect("list").len(), 2);
    });
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(
        seen[0].1.starts_with(&format!("{base}/tags/list")),
        "{seen:?}"
    );

    let seen = requests_of(&log, || {
        store
            .fetch_blob(&blob, &mut Vec::new())
            .expect("fetch blob");
    });
    assert_eq!(
        seen,
        vec![("GET".to_owned(), format!("{base}/blobs/{blob}"))]
    );
    assert!(!store.is_authenticated());
}
