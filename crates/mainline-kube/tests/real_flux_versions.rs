//! Flux before 2.6 serves OCIRepository as `source.toolkit.fluxcd.io/v1beta2` only (and
//! older Flux serves Kustomization as `v1beta2`): against a real kube-apiserver with the
//! vendored Flux 2.7 CRDs (v1 and v1beta2 served), the client reads `v1`; after the CRDs are
//! made to serve `v1beta2` only — a Flux 2.5 cluster as far as discovery and paths go — a new
//! client discovers `v1beta2`, reads and triggers the same objects, and the observation says
//! which version it read. Its own test binary: it changes the CRDs of its server.

mod real;

use mainline_kube::api::{KUSTOMIZATION, OCI_REPOSITORY};
use mainline_kube::config::Cluster;
use mainline_kube::flux::{observe, request_reconcile, REQUESTED_AT};
use mainline_kube::{assess, AppliedState, Consumer, ObjectRef, SystemClock};
use real::{digest, guard_client, seed, server, FLUX_NS, TRIGGERABLE};
use std::time::{Duration, Instant};

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

#[test]
fn v1_is_read_where_served_and_v1beta2_is_discovered_where_only_it_is() {
    let d = digest(7);
    seed(FLUX_NS, TRIGGERABLE, &d);
    let app = ObjectRef::new(FLUX_NS, TRIGGERABLE).expect("valid");
    let consumer = Consumer {
        cluster: Cluster::InCluster,
        source: app.clone(),
        kustomizations: vec![app.clone()],
    };

    let v1 = observe(&guard_client(), &consumer, soon()).expect("read at v1");
    assert_eq!(
        v1.source.api_version.as_deref(),
        Some("source.toolkit.fluxcd.io/v1")
    );
    assert_eq!(
        v1.kustomizations[0].api_version.as_deref(),
        Some("kustomize.toolkit.fluxcd.io/v1")
    );
    assert_eq!(assess(&v1, &d), AppliedState::Applied);

    server().serve_only(&OCI_REPOSITORY, "v1beta2");
    server().serve_only(&KUSTOMIZATION, "v1beta2");
    let client = guard_client();
    let old = observe(&client, &consumer, soon()).expect("read at v1beta2");
    assert_eq!(
        old.source.api_version.as_deref(),
        Some("source.toolkit.fluxcd.io/v1beta2")
    );
    assert_eq!(
        old.kustomizations[0].api_version.as_deref(),
        Some("kustomize.toolkit.fluxcd.io/v1beta2")
    );
    assert_eq!(
        assess(&old, &d),
        AppliedState::Applied,
        "the same status fields"
    );

    // The trigger's merge patch goes to the v1beta2 path and the real server stores it.
    let token = request_reconcile(&client, &app, &SystemClock, soon()).expect("trigger");
    let a = server().admin_request(
        "GET",
        &OCI_REPOSITORY.object_path_at("v1beta2", FLUX_NS, TRIGGERABLE),
        "",
        None,
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        a.body["metadata"]["annotations"][REQUESTED_AT],
        serde_json::json!(token.0)
    );
}
