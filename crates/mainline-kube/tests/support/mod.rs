//! Shared test helpers: Flux objects from the documented fixtures, placed where a test wants
//! them, and digests.
#![allow(dead_code)]

use mainline_core::Digest;
use mainline_kube::api::{KUSTOMIZATION, OCI_REPOSITORY};
use mainline_kube::fake::{fixture, FakeKube};
use serde_json::{json, Value};

pub const TOKEN: &str = "test-token-7d1c0ffee";

pub fn digest(n: u8) -> Digest {
    format!("sha256:{}", format!("{n:02x}").repeat(32))
        .parse()
        .expect("a valid digest")
}

pub fn revision(d: &Digest) -> String {
    format!("latest@{d}")
}

fn place(mut v: Value, ns: &str, name: &str) -> Value {
    v["metadata"]["namespace"] = json!(ns);
    v["metadata"]["name"] = json!(name);
    v
}

/// A Ready OCIRepository whose artifact is `d`.
pub fn source_at(ns: &str, name: &str, d: &Digest) -> Value {
    let mut v = place(fixture("flux/ocirepository_ready"), ns, name);
    v["status"]["artifact"]["revision"] = json!(revision(d));
    v
}

/// A Ready Kustomization that last applied `d`.
pub fn kustomization_at(ns: &str, name: &str, d: &Digest) -> Value {
    let mut v = place(fixture("flux/kustomization_ready"), ns, name);
    v["status"]["lastAppliedRevision"] = json!(revision(d));
    v["status"]["lastAttemptedRevision"] = json!(revision(d));
    v
}

/// A Kustomization failing health checks on `d`, no longer retrying (no `Reconciling=True`):
/// what Flux reports when it gave up, so STUCK.
pub fn kustomization_unhealthy(ns: &str, name: &str, d: &Digest) -> Value {
    let mut v = place(fixture("flux/kustomization_health_check_failed"), ns, name);
    v["status"]["lastAppliedRevision"] = json!(revision(d));
    v["status"]["lastAttemptedRevision"] = json!(revision(d));
    v["status"]["conditions"]
        .as_array_mut()
        .expect("conditions")
        .retain(|c| c["type"] != "Reconciling");
    v
}

/// Put an OCIRepository at `d` and a Kustomization at `d` into `fake`.
pub fn seed(fake: &FakeKube, ns: &str, source: &str, ks: &str, d: &Digest) {
    fake.put_object(&OCI_REPOSITORY, source_at(ns, source, d));
    fake.put_object(&KUSTOMIZATION, kustomization_at(ns, ks, d));
}
