//! The Flux side against a real kube-apiserver (tests/kube): the vendored Flux CRDs and
//! `deploy/kubernetes/` as shipped, and mainline authenticating as the shipped ServiceAccount —
//! so the trigger's merge patch, the status reads, `--wait`, and the Role's limits are judged
//! by the real server, not by the fake that was written beside the client.

mod real;

use mainline_kube::api::{KUSTOMIZATION, OCI_REPOSITORY};
use mainline_kube::config::Cluster;
use mainline_kube::flux::{observe_source, request_reconcile, REQUESTED_AT};
use mainline_kube::{
    AppliedState, Consumer, Consumers, ErrorKind, KubeError, ObjectRef, Secret, SystemClock,
    WaitOptions,
};
use real::{
    digest, guard_client, guard_token, revision, seed, server, FLUX_NS, GUARD_NS, TRIGGERABLE,
};
use serde_json::json;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

/// The Role lets the guard patch one OCIRepository name only: tests that trigger it take turns
/// and each starts from a freshly created object.
fn triggerable(d: &mainline_core::Digest) -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    let turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
    for res in [&OCI_REPOSITORY, &KUSTOMIZATION] {
        let a = server().admin_request("DELETE", &res.object_path(FLUX_NS, TRIGGERABLE), "", None);
        assert!(
            a.status == 200 || a.status == 404,
            "delete: {} {}",
            a.status,
            a.body
        );
    }
    let until = Instant::now() + Duration::from_secs(10);
    while server()
        .get(&OCI_REPOSITORY, FLUX_NS, TRIGGERABLE)
        .is_some()
    {
        assert!(
            Instant::now() < until,
            "the old OCIRepository never went away"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    seed(FLUX_NS, TRIGGERABLE, d);
    turn
}

fn app() -> ObjectRef {
    ObjectRef::new(FLUX_NS, TRIGGERABLE).expect("valid")
}

fn consumer() -> Consumer {
    Consumer {
        cluster: Cluster::InCluster,
        source: app(),
        kustomizations: vec![app()],
    }
}

fn fast() -> WaitOptions {
    WaitOptions {
        poll_interval: Duration::from_millis(50),
        request_timeout: Duration::from_secs(5),
    }
}

#[test]
fn the_shipped_role_grants_the_guard_its_calls_and_nothing_else() {
    let s = server();
    let t = guard_token();
    let allowed = [
        (
            "get",
            "source.toolkit.fluxcd.io",
            "ocirepositories",
            "any-ns",
            "anything",
        ),
        (
            "watch",
            "kustomize.toolkit.fluxcd.io",
            "kustomizations",
            "apps",
            "",
        ),
        (
            "patch",
            "source.toolkit.fluxcd.io",
            "ocirepositories",
            FLUX_NS,
            TRIGGERABLE,
        ),
        ("get", "coordination.k8s.io", "leases", GUARD_NS, "l"),
        ("create", "coordination.k8s.io", "leases", GUARD_NS, ""),
        ("update", "coordination.k8s.io", "leases", GUARD_NS, "l"),
    ];
    let refused = [
        (
            "patch",
            "source.toolkit.fluxcd.io",
            "ocirepositories",
            FLUX_NS,
            "other-app",
        ),
        (
            "patch",
            "source.toolkit.fluxcd.io",
            "ocirepositories",
            "apps",
            TRIGGERABLE,
        ),
        (
            "update",
            "source.toolkit.fluxcd.io",
            "ocirepositories",
            FLUX_NS,
            TRIGGERABLE,
        ),
        (
            "patch",
            "kustomize.toolkit.fluxcd.io",
            "kustomizations",
            FLUX_NS,
            TRIGGERABLE,
        ),
        ("delete", "coordination.k8s.io", "leases", GUARD_NS, "l"),
        (
            "update",
            "coordination.k8s.io",
            "leases",
            "kube-system",
            "l",
        ),
        ("get", "", "secrets", GUARD_NS, "mainline-secrets"),
        (
            "create",
            "source.toolkit.fluxcd.io",
            "ocirepositories",
            FLUX_NS,
            "",
        ),
    ];
    for (verb, group, res, ns, name) in allowed {
        assert!(
            s.can(&t, verb, group, res, ns, name),
            "{verb} {res} {ns}/{name} must be allowed"
        );
    }
    for (verb, group, res, ns, name) in refused {
        assert!(
            !s.can(&t, verb, group, res, ns, name),
            "{verb} {res} {ns}/{name} must be refused"
        );
    }
    println!(
        "RBAC as shipped: {} calls allowed, {} refused, as the real authorizer answers",
        allowed.len(),
        refused.len()
    );
}

#[test]
fn a_patch_outside_the_role_is_forbidden_naming_the_grant_to_add() {
    let other = ObjectRef::new(FLUX_NS, "other-app").expect("valid");
    seed(FLUX_NS, "other-app", &digest(1));
    let client = guard_client();
    let err = request_reconcile(&client, &other, &SystemClock, soon()).expect_err("not granted");
    assert!(matches!(err, KubeError::Forbidden { .. }), "{err:?}");
    let msg = err.to_string();
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
    let stored = server()
        .get(&OCI_REPOSITORY, FLUX_NS, "other-app")
        .expect("exists");
    assert!(
        stored["metadata"]["annotations"][REQUESTED_AT].is_null(),
        "nothing was written"
    );
    observe_source(&client, &other, soon()).expect("reading anywhere is granted");
}

#[test]
fn the_trigger_merge_patches_the_annotation_as_the_guard_and_flux_echoes_it() {
    let _turn = triggerable(&digest(1));
    server().admin_request(
        "PATCH",
        &OCI_REPOSITORY.object_path(FLUX_NS, TRIGGERABLE),
        "application/merge-patch+json",
        Some(&json!({"metadata": {"annotations": {"team": "payments"}}})),
    );
    let before = server()
        .get(&OCI_REPOSITORY, FLUX_NS, TRIGGERABLE)
        .expect("exists");
    let client = guard_client();

    let token = request_reconcile(&client, &app(), &SystemClock, soon()).expect("trigger");

    let stored = server()
        .get(&OCI_REPOSITORY, FLUX_NS, TRIGGERABLE)
        .expect("exists");
    assert_eq!(
        stored["metadata"]["annotations"][REQUESTED_AT],
        json!(token.0)
    );
    assert_eq!(
        stored["metadata"]["annotations"]["team"],
        json!("payments"),
        "a merge patch keeps other annotations"
    );
    assert_eq!(stored["status"], before["status"], "status untouched");
    assert_eq!(
        stored["metadata"]["generation"], before["metadata"]["generation"],
        "an annotation is not a spec change"
    );
    assert_ne!(
        stored["metadata"]["resourceVersion"],
        before["metadata"]["resourceVersion"]
    );

    // Flux's controller answers in status.lastHandledReconcileAt.
    let mut status = real::source_status(&digest(2));
    status["lastHandledReconcileAt"] = json!(token.0);
    server().write_status(&OCI_REPOSITORY, FLUX_NS, TRIGGERABLE, &status);
    let seen = observe_source(&client, &app(), soon()).expect("read");
    assert_eq!(
        seen.last_handled_reconcile_at.as_deref(),
        Some(token.0.as_str())
    );
    assert_eq!(seen.requested_at.as_deref(), Some(token.0.as_str()));
    assert_eq!(seen.revision, Some(revision(&digest(2))));
}

/// Play Flux: once the guard's token is on the OCIRepository, wait `delay`, then write both
/// objects' status at `d`, echoing the token.
fn flux_applies_after(delay: Duration, d: mainline_core::Digest) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let until = Instant::now() + Duration::from_secs(20);
        let token = loop {
            let o = server()
                .get(&OCI_REPOSITORY, FLUX_NS, TRIGGERABLE)
                .expect("exists");
            if let Some(t) = o["metadata"]["annotations"][REQUESTED_AT].as_str() {
                break t.to_owned();
            }
            assert!(Instant::now() < until, "no reconcile was requested");
            std::thread::sleep(Duration::from_millis(20));
        };
        std::thread::sleep(delay);
        let mut s = real::source_status(&d);
        s["lastHandledReconcileAt"] = json!(token);
        server().write_status(&OCI_REPOSITORY, FLUX_NS, TRIGGERABLE, &s);
        let mut k = real::kustomization_status("flux/kustomization_ready", &d);
        k["lastHandledReconcileAt"] = json!(token);
        server().write_status(&KUSTOMIZATION, FLUX_NS, TRIGGERABLE, &k);
    })
}

#[test]
fn trigger_then_wait_sees_pending_then_applied() {
    let (old, new) = (digest(1), digest(2));
    let _turn = triggerable(&old);
    let flux = flux_applies_after(Duration::from_millis(300), new.clone());
    let consumers = Consumers::from_clients(vec![(consumer(), guard_client())]);

    let reports = consumers.request_reconcile(&SystemClock, soon());
    let token = reports[0].result.as_ref().expect("triggered").clone();
    let mut progress = Vec::new();
    let start = Instant::now();
    let outcome =
        consumers.wait_applied(&new, start + Duration::from_secs(15), &fast(), &mut |p| {
            progress.push(p.states[0].state.label());
        });
    flux.join().expect("flux thread");
    println!(
        "applied after {:?}, {} polls, progress {progress:?}",
        outcome.elapsed, outcome.polls
    );
    assert!(outcome.applied, "{:?}", outcome.states);
    assert_eq!(progress.first().copied(), Some("PENDING"));
    assert_eq!(progress.last().copied(), Some("APPLIED"));
    let observed = outcome.states[0].observed.as_ref().expect("read");
    assert_eq!(
        observed.source.last_handled_reconcile_at.as_deref(),
        Some(token.0.as_str())
    );
}

#[test]
fn a_kustomization_failing_health_checks_ends_the_wait_stuck_at_the_deadline() {
    let d = digest(3);
    seed(FLUX_NS, "stuck-app", &d);
    server().write_status(
        &KUSTOMIZATION,
        FLUX_NS,
        "stuck-app",
        &real::not_retrying(real::kustomization_status(
            "flux/kustomization_health_check_failed",
            &d,
        )),
    );
    let c = Consumer {
        cluster: Cluster::InCluster,
        source: ObjectRef::new(FLUX_NS, "stuck-app").expect("valid"),
        kustomizations: vec![ObjectRef::new(FLUX_NS, "stuck-app").expect("valid")],
    };
    let consumers = Consumers::from_clients(vec![(c, guard_client())]);
    let start = Instant::now();
    let outcome = consumers.wait_applied(&d, start + Duration::from_secs(2), &fast(), &mut |_| {});
    assert!(!outcome.applied);
    assert!(
        matches!(outcome.worst(), AppliedState::Stuck { .. }),
        "{:?}",
        outcome.worst()
    );
    assert!(
        outcome.elapsed >= Duration::from_secs(2),
        "{:?}",
        outcome.elapsed
    );
    assert!(
        outcome.elapsed < Duration::from_secs(6),
        "{:?}",
        outcome.elapsed
    );
}

#[test]
fn stuck_only_when_flux_stops_retrying_and_only_for_the_current_generation() {
    // Issue 18, item 3, on the real server: the status is stored through Flux's CRD schema and
    // the server itself bumps metadata.generation on a spec change.
    let d = digest(4);
    let name = "retrying-app";
    seed(FLUX_NS, name, &d);
    let c = Consumer {
        cluster: Cluster::InCluster,
        source: ObjectRef::new(FLUX_NS, name).expect("valid"),
        kustomizations: vec![ObjectRef::new(FLUX_NS, name).expect("valid")],
    };
    let consumers = Consumers::from_clients(vec![(c, guard_client())]);
    let state = || {
        let states = consumers.observe(&d, soon());
        assert_eq!(states.len(), 1);
        states[0].state.clone()
    };
    let failing = real::kustomization_status("flux/kustomization_health_check_failed", &d);
    server().write_status(&KUSTOMIZATION, FLUX_NS, name, &failing);
    let retrying = state();
    assert!(
        matches!(&retrying, AppliedState::Pending { detail } if detail.contains("Reconciling=True")),
        "Ready=False while kustomize-controller retries: {retrying}"
    );
    // A merge patch cannot drop one list element: write the whole list without Reconciling.
    server().write_status(&KUSTOMIZATION, FLUX_NS, name, &real::not_retrying(failing));
    let stuck = state();
    assert!(
        matches!(&stuck, AppliedState::Stuck { reason, .. } if reason == "HealthCheckFailed"),
        "Ready=False on the expected digest, not retrying: {stuck}"
    );
    // A spec change: the server bumps metadata.generation; the conditions (written for
    // generation 1) no longer speak for it, so it is PENDING again, not STUCK.
    let before = server().get(&KUSTOMIZATION, FLUX_NS, name).expect("stored");
    let patched = server().admin_request(
        "PATCH",
        &KUSTOMIZATION.object_path(FLUX_NS, name),
        "application/merge-patch+json",
        Some(&json!({"spec": {"interval": "7m"}})),
    );
    assert_eq!(patched.status, 200, "{}", patched.body);
    let gen_before = before["metadata"]["generation"]
        .as_i64()
        .expect("generation");
    let gen_after = patched.body["metadata"]["generation"]
        .as_i64()
        .expect("generation");
    assert_eq!(
        gen_after,
        gen_before + 1,
        "the real server bumped generation"
    );
    let stale = state();
    assert!(
        matches!(&stale, AppliedState::Pending { .. }),
        "conditions of generation {gen_before} say nothing of {gen_after}: {stale}"
    );
    println!("real server: retrying {retrying} / given up {stuck} / new generation {stale}");
}

#[test]
fn the_documented_status_fixtures_survive_the_served_schemas_unpruned() {
    // A structural CRD schema silently drops fields it does not declare: what we store must
    // come back whole, through v1 and the deprecated v1beta2 alike.
    let cases: [(&mainline_kube::api::ApiResource, &str, &str); 5] = [
        (&OCI_REPOSITORY, "flux/ocirepository_ready", "fx-src-ready"),
        (
            &OCI_REPOSITORY,
            "flux/ocirepository_fetch_failed",
            "fx-src-fetch",
        ),
        (
            &OCI_REPOSITORY,
            "flux/ocirepository_verification_failed",
            "fx-src-verify",
        ),
        (&KUSTOMIZATION, "flux/kustomization_ready", "fx-ks-ready"),
        (
            &KUSTOMIZATION,
            "flux/kustomization_health_check_failed",
            "fx-ks-health",
        ),
    ];
    for (res, fixture, name) in cases {
        let status = mainline_kube::fake::fixture(fixture)["status"].clone();
        let stored = real::create_with_status(res, fixture, FLUX_NS, name, status.clone());
        assert_eq!(
            stored["status"], status,
            "{fixture}: the v1 schema pruned or changed status"
        );
        let beta = server().admin_request(
            "GET",
            &format!(
                "/apis/{}/v1beta2/namespaces/{FLUX_NS}/{}/{name}",
                res.group, res.plural
            ),
            "",
            None,
        );
        assert_eq!(beta.status, 200, "{fixture} via v1beta2: {}", beta.body);
        assert_eq!(
            beta.body["apiVersion"],
            json!(format!("{}/v1beta2", res.group))
        );
        assert_eq!(
            beta.body["status"]["conditions"], status["conditions"],
            "{fixture} via v1beta2"
        );
    }
}

#[test]
fn a_missing_object_is_not_found_and_a_wrong_token_is_unauthorized_without_printing_it() {
    let client = guard_client();
    let missing = ObjectRef::new(FLUX_NS, "no-such-app").expect("valid");
    let err = observe_source(&client, &missing, soon()).expect_err("absent");
    assert!(matches!(err, KubeError::NotFound { .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);

    let wrong = Secret::new("not-a-token-4f1d9e");
    let err = observe_source(&server().client(&wrong), &app(), soon()).expect_err("refused");
    assert!(matches!(err, KubeError::Unauthorized { .. }), "{err:?}");
    assert!(
        !format!("{err} {err:?}").contains("not-a-token-4f1d9e"),
        "the token leaked: {err}"
    );
}

#[test]
fn a_client_trusting_another_ca_is_refused_by_tls_before_any_token_is_sent() {
    let mut conn = server().connection(&guard_token());
    conn.ca_pem = Some(mainline_kube::fake::OTHER_CA_PEM.to_vec());
    let client = mainline_kube::KubeClient::new(conn).expect("a client builds");
    let err = observe_source(&client, &app(), soon()).expect_err("TLS must fail");
    assert!(
        matches!(err, KubeError::Unreachable { .. }),
        "a certificate the CA did not sign is unreachable, not a server answer: {err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(!err.to_string().contains(guard_token().expose()), "{err}");
}
