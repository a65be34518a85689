//! The reconcile trigger against the fake API server: the merge patch on the wire, the token
//! echoed back, and typed errors that name the object and never the token.

mod support;

use mainline_kube::api::{ApiResource, OCI_REPOSITORY};
use mainline_kube::fake::{Failure, FakeKube, Grant};
use mainline_kube::flux::{observe_source, request_reconcile, REQUESTED_AT};
use mainline_kube::{ErrorKind, KubeError, ObjectRef, SystemClock};
use serde_json::json;
use std::time::{Duration, Instant};
use support::{digest, source_at, TOKEN};

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

fn app() -> ObjectRef {
    ObjectRef::new("flux-system", "app-manifests").expect("valid")
}

#[test]
fn trigger_merge_patches_the_annotation_and_gets_its_token_echoed_back() {
    let fake = FakeKube::start();
    let client = fake.client(TOKEN);
    let mut src = source_at("flux-system", "app-manifests", &digest(1));
    src["metadata"]["annotations"] = json!({"team": "payments"});
    fake.put_object(&OCI_REPOSITORY, src);

    let token = request_reconcile(&client, &app(), &SystemClock, soon()).expect("trigger");

    let stored = fake
        .object(&OCI_REPOSITORY, "flux-system", "app-manifests")
        .expect("stored");
    let annotations = &stored["metadata"]["annotations"];
    assert_eq!(
        annotations[REQUESTED_AT],
        json!(token.0),
        "the token is on the object"
    );
    assert_eq!(
        annotations["team"],
        json!("payments"),
        "a merge patch keeps other annotations"
    );
    assert_eq!(
        stored["status"]["artifact"]["revision"],
        json!(support::revision(&digest(1))),
        "status untouched"
    );
    assert!(
        token.0.ends_with('Z') && token.0.contains('T'),
        "an RFC 3339 time: {token}"
    );

    let reqs = fake.requests();
    let patch = reqs
        .iter()
        .find(|r| r.method == "PATCH")
        .expect("a PATCH was sent");
    assert_eq!(
        patch.path,
        "/apis/source.toolkit.fluxcd.io/v1/namespaces/flux-system/ocirepositories/app-manifests"
    );
    assert_eq!(
        patch.content_type.as_deref(),
        Some("application/merge-patch+json")
    );
    assert!(patch.authenticated);
    assert_eq!(patch.status, 200);
}

#[test]
fn flux_echoes_the_token_in_last_handled_reconcile_at() {
    let fake = FakeKube::start();
    let client = fake.client(TOKEN);
    fake.put_object(
        &OCI_REPOSITORY,
        source_at("flux-system", "app-manifests", &digest(1)),
    );
    let ready = source_at("flux-system", "app-manifests", &digest(2))["status"].clone();
    fake.react_to_reconcile(
        "flux-system",
        "app-manifests",
        Duration::from_millis(50),
        vec![(&OCI_REPOSITORY, "flux-system", "app-manifests", ready)],
    );

    let token = request_reconcile(&client, &app(), &SystemClock, soon()).expect("trigger");
    let start = Instant::now();
    let seen = loop {
        let obs = observe_source(&client, &app(), soon()).expect("read");
        if obs.last_handled_reconcile_at.is_some() || start.elapsed() > Duration::from_secs(5) {
            break obs;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        seen.last_handled_reconcile_at.as_deref(),
        Some(token.0.as_str())
    );
    assert_eq!(seen.requested_at.as_deref(), Some(token.0.as_str()));
    assert_eq!(seen.revision, Some(support::revision(&digest(2))));
}

#[test]
fn missing_object_is_not_found_naming_it() {
    let fake = FakeKube::start();
    let client = fake.client(TOKEN);
    let err = request_reconcile(&client, &app(), &SystemClock, soon()).expect_err("no such object");
    assert!(matches!(err, KubeError::NotFound { .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let msg = err.to_string();
    assert!(
        msg.contains("OCIRepository flux-system/app-manifests was not found"),
        "{msg}"
    );
    assert!(msg.contains("mainline.toml"), "says what to fix: {msg}");
}

#[test]
fn rbac_refusal_is_forbidden_with_the_grant_to_add() {
    let fake = FakeKube::start();
    let client = fake.client(TOKEN);
    fake.put_object(
        &OCI_REPOSITORY,
        source_at("flux-system", "app-manifests", &digest(1)),
    );
    fake.restrict_to(
        "system:serviceaccount:mainline:mainline-guard",
        vec![Grant {
            group: "source.toolkit.fluxcd.io".into(),
            resources: vec!["ocirepositories".into()],
            verbs: vec!["get".into()],
            namespace: None,
            resource_names: vec![],
        }],
    );
    let err =
        request_reconcile(&client, &app(), &SystemClock, soon()).expect_err("patch not granted");
    let msg = err.to_string();
    assert!(matches!(err, KubeError::Forbidden { .. }), "{err:?}");
    assert!(
        msg.contains(
            "grant `patch` on ocirepositories.source.toolkit.fluxcd.io in namespace flux-system"
        ),
        "{msg}"
    );
    assert!(
        msg.contains("cannot patch resource \"ocirepositories\""),
        "quotes the server: {msg}"
    );
    // Reading is granted.
    observe_source(&client, &app(), soon()).expect("get is granted");
}

#[test]
fn refused_credentials_are_unauthorized_and_never_print_the_token() {
    let fake = FakeKube::start();
    fake.accept_token("the-right-token");
    let wrong = "wrong-token-s3cr3t-value";
    let client = std::sync::Arc::new(
        mainline_kube::KubeClient::new(fake.connection(wrong)).expect("client"),
    );
    fake.put_object(
        &OCI_REPOSITORY,
        source_at("flux-system", "app-manifests", &digest(1)),
    );
    let err = request_reconcile(&client, &app(), &SystemClock, soon()).expect_err("401");
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    for text in [err.to_string(), format!("{err:?}"), format!("{client:?}")] {
        assert!(!text.contains(wrong), "token leaked: {text}");
    }
    // The first request is the version discovery, and it is refused before any object is read.
    assert!(!fake.discovery_requests()[0].authenticated);
    assert!(fake.requests().is_empty());
}

#[test]
fn server_errors_are_unavailable_and_not_retried() {
    let fake = FakeKube::start();
    let client = fake.client(TOKEN);
    fake.put_object(
        &OCI_REPOSITORY,
        source_at("flux-system", "app-manifests", &digest(1)),
    );
    fake.fail_next(Failure::Status(500), 1);
    let err = request_reconcile(&client, &app(), &SystemClock, soon()).expect_err("500");
    assert!(
        matches!(err, KubeError::Server { status: 500, .. }),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(
        fake.requests().len(),
        1,
        "a trigger is one request, never retried"
    );
}

#[test]
fn paths_of_every_resource_follow_the_api_layout() {
    let cases: [(&ApiResource, &str); 3] = [
        (
            &mainline_kube::api::OCI_REPOSITORY,
            "/apis/source.toolkit.fluxcd.io/v1/namespaces/ns/ocirepositories/n",
        ),
        (
            &mainline_kube::api::KUSTOMIZATION,
            "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/ns/kustomizations/n",
        ),
        (
            &mainline_kube::api::LEASE,
            "/apis/coordination.k8s.io/v1/namespaces/ns/leases/n",
        ),
    ];
    for (resource, path) in cases {
        assert_eq!(resource.object_path("ns", "n"), path);
        assert_eq!(format!("{}/n", resource.collection_path("ns")), path);
    }
}
