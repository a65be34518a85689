//! The real API server shared by the tests of one test binary: started once (with the Flux
//! CRDs and `deploy/kubernetes/` as shipped), reached by the code under test as the shipped
//! ServiceAccount. Tests in one binary run in parallel, so each uses its own object names.
//! The server stops when the test process exits (its stdin closes).
#![allow(dead_code)]

use mainline_core::Digest;
use mainline_kube::api::{ApiResource, KUSTOMIZATION, OCI_REPOSITORY};
use mainline_kube::apiserver::ApiServer;
use mainline_kube::fake::fixture;
use mainline_kube::{KubeClient, Secret};
use serde_json::{json, Value};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// Where the Flux objects live, and the one OCIRepository the shipped Role lets the guard
/// patch (`resourceNames: ["app-manifests"]` in deploy/kubernetes/rbac.yaml).
pub const FLUX_NS: &str = "flux-system";
pub const TRIGGERABLE: &str = "app-manifests";
/// The guard's namespace, where its Leases live.
pub const GUARD_NS: &str = "mainline";

struct Shared {
    server: ApiServer,
    guard: Secret,
}

fn shared() -> &'static Shared {
    static S: OnceLock<Shared> = OnceLock::new();
    S.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir").keep();
        let started = Instant::now();
        let server = ApiServer::start_with_shipped(&dir);
        let guard = server.guard_token();
        // Bindings reach the authorizer a moment after they are written.
        server.wait_allowed(
            &guard,
            "update",
            "coordination.k8s.io",
            "leases",
            GUARD_NS,
            "x",
        );
        server.wait_allowed(
            &guard,
            "patch",
            "source.toolkit.fluxcd.io",
            "ocirepositories",
            FLUX_NS,
            TRIGGERABLE,
        );
        server.wait_allowed(
            &guard,
            "get",
            "kustomize.toolkit.fluxcd.io",
            "kustomizations",
            FLUX_NS,
            "x",
        );
        eprintln!(
            "test kube-apiserver at {} ready with CRDs and deploy/kubernetes in {:?}",
            server.server(),
            started.elapsed()
        );
        Shared { server, guard }
    })
}

pub fn server() -> &'static ApiServer {
    &shared().server
}

/// The shipped guard ServiceAccount's token.
pub fn guard_token() -> Secret {
    shared().guard.clone()
}

/// A client authenticating as the shipped guard ServiceAccount.
pub fn guard_client() -> Arc<KubeClient> {
    server().client(&guard_token())
}

pub fn digest(n: u8) -> Digest {
    format!("sha256:{}", format!("{n:02x}").repeat(32))
        .parse()
        .expect("a valid digest")
}

pub fn revision(d: &Digest) -> String {
    format!("latest@{d}")
}

/// Create the fixture object `name` (spec and metadata as documented, status left out: a
/// create ignores it) as `ns/obj_name`, then write its status as the controller would.
pub fn create_with_status(
    res: &ApiResource,
    fixture_name: &str,
    ns: &str,
    obj_name: &str,
    status: Value,
) -> Value {
    let f = fixture(fixture_name);
    let obj = json!({
        "apiVersion": f["apiVersion"],
        "kind": f["kind"],
        "metadata": {"name": obj_name, "namespace": ns},
        "spec": f["spec"],
    });
    server().create(res, &obj);
    server().write_status(res, ns, obj_name, &status)
}

/// A Ready OCIRepository status whose artifact is `d`.
pub fn source_status(d: &Digest) -> Value {
    let mut s = fixture("flux/ocirepository_ready")["status"].clone();
    s["artifact"]["revision"] = json!(revision(d));
    s
}

/// A Ready Kustomization status that applied `d` (`fixture_name`: ready or failing).
pub fn kustomization_status(fixture_name: &str, d: &Digest) -> Value {
    let mut s = fixture(fixture_name)["status"].clone();
    s["lastAppliedRevision"] = json!(revision(d));
    s["lastAttemptedRevision"] = json!(revision(d));
    s
}

/// `status` with its `Reconciling` condition removed: the controller stopped retrying.
pub fn not_retrying(mut status: Value) -> Value {
    if let Some(c) = status["conditions"].as_array_mut() {
        c.retain(|c| c["type"] != "Reconciling");
    }
    status
}

/// Create the OCIRepository `name` at `d` and a Kustomization `name` applying it.
pub fn seed(ns: &str, name: &str, d: &Digest) {
    create_with_status(
        &OCI_REPOSITORY,
        "flux/ocirepository_ready",
        ns,
        name,
        source_status(d),
    );
    let mut ks = fixture("flux/kustomization_ready");
    ks["spec"]["sourceRef"]["name"] = json!(name);
    let obj = json!({
        "apiVersion": ks["apiVersion"], "kind": ks["kind"],
        "metadata": {"name": name, "namespace": ns}, "spec": ks["spec"],
    });
    server().create(&KUSTOMIZATION, &obj);
    server().write_status(
        &KUSTOMIZATION,
        ns,
        name,
        &kustomization_status("flux/kustomization_ready", d),
    );
}
