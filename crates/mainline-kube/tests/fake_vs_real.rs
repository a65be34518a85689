//! The fake API server refuses what the real one refuses, for the bodies mainline sends: each
//! case is sent to a real kube-apiserver (tests/kube, as admin, so RBAC plays no part) and to
//! the fake, and both must answer the same status code and reason — Lease fields of the wrong
//! JSON type and `MicroTime`s not in their one format (400 BadRequest), invalid Lease values
//! (422 Invalid), patches that are not JSON merge patches on a Flux object (415), and a no-op
//! update that keeps the resourceVersion (200, nothing stored).

mod real;

use mainline_kube::api::{LEASE, OCI_REPOSITORY};
use mainline_kube::fake::{fixture, FakeKube};
use real::{server, FLUX_NS, GUARD_NS};
use serde_json::{json, Value};

const TOKEN: &str = "fake-vs-real-token";

/// One request to the fake: status code and body.
fn to_fake(
    fake: &FakeKube,
    method: &str,
    path: &str,
    content_type: &str,
    body: &Value,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
    let resp = reqwest::blocking::Client::new()
        .request(method, format!("{}{path}", fake.url()))
        .bearer_auth(TOKEN)
        .header("Content-Type", content_type)
        .body(body.to_string())
        .send()
        .expect("the fake answers");
    let code = resp.status().as_u16();
    (
        code,
        serde_json::from_str(&resp.text().unwrap_or_default()).unwrap_or(Value::Null),
    )
}

fn to_real(method: &str, path: &str, content_type: &str, body: &Value) -> (u16, Value) {
    let a = server().admin_request(method, path, content_type, Some(body));
    (a.status, a.body)
}

fn lease(name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": name, "namespace": GUARD_NS},
        "spec": spec,
    })
}

/// Both answer `code` with `reason`; returns the real server's message (for the report).
fn same(case: &str, real: (u16, Value), fake: (u16, Value), code: u16, reason: &str) -> String {
    assert_eq!(
        real.0, code,
        "{case}: the real server answered {} {}",
        real.0, real.1
    );
    assert_eq!(
        fake.0, code,
        "{case}: the fake answered {} {}",
        fake.0, fake.1
    );
    if !reason.is_empty() {
        assert_eq!(real.1["reason"], json!(reason), "{case}: real {}", real.1);
        assert_eq!(fake.1["reason"], json!(reason), "{case}: fake {}", fake.1);
    }
    let msg = real.1["message"].as_str().unwrap_or_default().to_owned();
    eprintln!(
        "{case}: {code} {reason}: real says {msg:?}; fake says {:?}",
        fake.1["message"]
    );
    msg
}

#[test]
fn lease_bodies_the_real_server_refuses_the_fake_refuses_too() {
    let fake = FakeKube::start();
    fake.accept_token(TOKEN);
    let path = LEASE.collection_path(GUARD_NS);
    let good_time = "2025-06-14T11:00:00.123456Z";
    let cases: [(&str, Value, u16, &str); 7] = [
        (
            "leaseDurationSeconds as a string",
            json!({"holderIdentity": "a", "leaseDurationSeconds": "30"}),
            400,
            "BadRequest",
        ),
        (
            "holderIdentity as a number",
            json!({"holderIdentity": 5, "leaseDurationSeconds": 30}),
            400,
            "BadRequest",
        ),
        (
            "leaseTransitions beyond int32",
            json!({"holderIdentity": "a", "leaseTransitions": 4_294_967_296_i64}),
            400,
            "BadRequest",
        ),
        (
            "renewTime without microseconds",
            json!({"holderIdentity": "a", "renewTime": "2025-06-14T11:00:00Z"}),
            400,
            "BadRequest",
        ),
        (
            "acquireTime with milliseconds",
            json!({"holderIdentity": "a", "acquireTime": "2025-06-14T11:00:00.123Z"}),
            400,
            "BadRequest",
        ),
        (
            "leaseDurationSeconds zero",
            json!({"holderIdentity": "a", "leaseDurationSeconds": 0}),
            422,
            "Invalid",
        ),
        (
            "leaseTransitions negative",
            json!({"holderIdentity": "a", "leaseTransitions": -1}),
            422,
            "Invalid",
        ),
    ];
    for (i, (case, spec, code, reason)) in cases.into_iter().enumerate() {
        let body = lease(&format!("fake-vs-real-{i}"), spec);
        let real = to_real("POST", &path, "application/json", &body);
        let faked = to_fake(&fake, "POST", &path, "application/json", &body);
        same(case, real, faked, code, reason);
    }
    // And what mainline sends is accepted by both.
    let ok = lease(
        "fake-vs-real-ok",
        json!({"holderIdentity": "a", "leaseDurationSeconds": 30, "leaseTransitions": 0,
               "acquireTime": good_time, "renewTime": "2025-06-14T13:00:00.000000+02:00"}),
    );
    let real = to_real("POST", &path, "application/json", &ok);
    let faked = to_fake(&fake, "POST", &path, "application/json", &ok);
    same("a valid Lease", real, faked, 201, "");
}

#[test]
fn a_no_op_update_keeps_the_resource_version_on_both() {
    let fake = FakeKube::start();
    fake.accept_token(TOKEN);
    let name = "fake-vs-real-noop";
    let body = lease(
        name,
        json!({"holderIdentity": "a", "leaseDurationSeconds": 30}),
    );
    let path = LEASE.collection_path(GUARD_NS);
    let object = LEASE.object_path(GUARD_NS, name);
    let real_created = to_real("POST", &path, "application/json", &body).1;
    let fake_created = to_fake(&fake, "POST", &path, "application/json", &body).1;
    for (who, created, put) in [
        (
            "real",
            real_created.clone(),
            to_real("PUT", &object, "application/json", &real_created),
        ),
        (
            "fake",
            fake_created.clone(),
            to_fake(&fake, "PUT", &object, "application/json", &fake_created),
        ),
    ] {
        assert_eq!(put.0, 200, "{who}: {}", put.1);
        assert_eq!(
            put.1["metadata"]["resourceVersion"], created["metadata"]["resourceVersion"],
            "{who}: a no-op update keeps the resourceVersion"
        );
    }
    // A real change does move it, on both.
    for (who, created, put) in [
        ("real", real_created.clone(), {
            let mut b = real_created.clone();
            b["spec"]["holderIdentity"] = json!("b");
            to_real("PUT", &object, "application/json", &b)
        }),
        ("fake", fake_created.clone(), {
            let mut b = fake_created.clone();
            b["spec"]["holderIdentity"] = json!("b");
            to_fake(&fake, "PUT", &object, "application/json", &b)
        }),
    ] {
        assert_eq!(put.0, 200, "{who}: {}", put.1);
        assert_ne!(
            put.1["metadata"]["resourceVersion"], created["metadata"]["resourceVersion"],
            "{who}"
        );
    }
}

#[test]
fn a_flux_object_takes_json_merge_patches_only_on_both() {
    let fake = FakeKube::start();
    fake.accept_token(TOKEN);
    let name = "fake-vs-real-patch";
    let f = fixture("flux/ocirepository_ready");
    let obj = json!({
        "apiVersion": f["apiVersion"], "kind": f["kind"],
        "metadata": {"name": name, "namespace": FLUX_NS}, "spec": f["spec"],
    });
    server().create(&OCI_REPOSITORY, &obj);
    fake.put_object(&OCI_REPOSITORY, obj.clone());
    let path = OCI_REPOSITORY.object_path(FLUX_NS, name);
    let patch = json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "x"}}});
    for (content_type, code) in [
        ("application/json", 415),
        ("application/strategic-merge-patch+json", 415),
        ("application/merge-patch+json", 200),
    ] {
        let real = to_real("PATCH", &path, content_type, &patch);
        let faked = to_fake(&fake, "PATCH", &path, content_type, &patch);
        same(&format!("PATCH as {content_type}"), real, faked, code, "");
    }
    // The same patch again changes nothing: the resourceVersion stays on both.
    let real_rv = server()
        .get(&OCI_REPOSITORY, FLUX_NS, name)
        .expect("exists")["metadata"]["resourceVersion"]
        .clone();
    let fake_rv = fake.object(&OCI_REPOSITORY, FLUX_NS, name).expect("exists")["metadata"]
        ["resourceVersion"]
        .clone();
    let real = to_real("PATCH", &path, "application/merge-patch+json", &patch);
    let faked = to_fake(
        &fake,
        "PATCH",
        &path,
        "application/merge-patch+json",
        &patch,
    );
    assert_eq!(
        real.1["metadata"]["resourceVersion"], real_rv,
        "real: a no-op patch"
    );
    assert_eq!(
        faked.1["metadata"]["resourceVersion"], fake_rv,
        "fake: a no-op patch"
    );
}
