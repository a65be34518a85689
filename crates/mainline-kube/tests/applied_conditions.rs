//! The STUCK/PENDING table (issue 18, item 3), from Flux's documented conditions: the
//! kustomize-controller and source-controller pages named in `fixtures/README.md` ("Failed
//! Kustomization", "Reconciling", "Stalled", "Last attempted revision", `observedGeneration`
//! on the object and on each condition, as kstatus reads them). Each row starts from a
//! documented fixture, sets the conditions a controller writes in that situation, and names
//! the state `assess` must give. STUCK only when Flux itself gave up on the expected digest.

use mainline_core::Digest;
use mainline_kube::fake::fixture;
use mainline_kube::flux::{assess, kustomization_from_json, source_from_json, Observed};
use mainline_kube::ObjectRef;
use serde_json::{json, Value};

const NEW: &str = "latest@sha256:3b6cdcc7adcc9a84d3214ee1c029543789d90b5ae69debe9efa3f66e982875de";
const OLD: &str = "latest@sha256:2222222222222222222222222222222222222222222222222222222222222222";

fn expected() -> Digest {
    NEW.rsplit_once('@')
        .expect("revision")
        .1
        .parse()
        .expect("digest")
}

/// A condition as Flux writes it (`observedGeneration` on the condition, as Flux v1 APIs do).
fn cond(kind: &str, status: &str, reason: &str, generation: i64) -> Value {
    json!({
        "type": kind, "status": status, "reason": reason,
        "message": format!("{kind} {status} ({reason})"),
        "observedGeneration": generation,
        "lastTransitionTime": "2025-06-15T15:06:40Z",
    })
}

/// A Kustomization at `generation`, with `lastAppliedRevision`, `lastAttemptedRevision` and
/// `conditions` as given (the rest from the documented Ready fixture).
fn ks(generation: i64, applied: &str, attempted: &str, conditions: Vec<Value>) -> Value {
    let mut k = fixture("flux/kustomization_ready");
    k["metadata"]["generation"] = json!(generation);
    k["status"]["lastAppliedRevision"] = json!(applied);
    k["status"]["lastAttemptedRevision"] = json!(attempted);
    k["status"]["conditions"] = Value::Array(conditions);
    k
}

fn src(generation: i64, revision: &str, conditions: Vec<Value>) -> Value {
    let mut s = fixture("flux/ocirepository_ready");
    s["metadata"]["generation"] = json!(generation);
    s["status"]["artifact"]["revision"] = json!(revision);
    s["status"]["conditions"] = Value::Array(conditions);
    s
}

fn ready_src() -> Value {
    src(1, NEW, vec![cond("Ready", "True", "Succeeded", 1)])
}

fn observed(source: Value, kustomization: Option<Value>) -> Observed {
    let r = ObjectRef::new("flux-system", "app").expect("valid");
    Observed {
        source: source_from_json(&r, source).expect("source parses"),
        kustomizations: kustomization
            .map(|k| kustomization_from_json(&r, k).expect("kustomization parses"))
            .into_iter()
            .collect(),
    }
}

#[test]
fn the_stuck_table_follows_fluxs_conditions() {
    let ready = |g| cond("Ready", "True", "ReconciliationSucceeded", g);
    let failed = |g| cond("Ready", "False", "HealthCheckFailed", g);
    let retrying = |g| cond("Reconciling", "True", "ProgressingWithRetry", g);
    let progressing = |g| cond("Reconciling", "True", "Progressing", g);
    let stalled = |g| cond("Stalled", "True", "InvalidPath", g);
    let in_progress = |g| cond("Ready", "Unknown", "Progressing", g);
    #[rustfmt::skip]
    let rows: Vec<(&str, Value, Option<Value>, &str)> = vec![
        ("applied and Ready for the current generation",
            ready_src(), Some(ks(1, NEW, NEW, vec![ready(1)])), "APPLIED"),
        ("Stalled=True is STUCK, whatever the revisions",
            ready_src(), Some(ks(1, OLD, OLD, vec![stalled(1), cond("Ready", "False", "InvalidPath", 1)])), "STUCK"),
        ("Ready=False on the expected digest, not retrying: STUCK",
            ready_src(), Some(ks(1, OLD, NEW, vec![failed(1)])), "STUCK"),
        ("Ready=False on the expected digest, Reconciling=False: STUCK",
            ready_src(), Some(ks(1, OLD, NEW, vec![failed(1), cond("Reconciling", "False", "Succeeded", 1)])), "STUCK"),
        ("Ready=False on the expected digest while retrying (Reconciling=True): PENDING",
            ready_src(), Some(ks(1, OLD, NEW, vec![retrying(1), failed(1)])), "PENDING"),
        ("Ready=False left from the previous revision: PENDING until Flux tries the new one",
            ready_src(), Some(ks(1, OLD, OLD, vec![failed(1)])), "PENDING"),
        ("Ready=False with no attempted revision: PENDING",
            ready_src(), Some(ks(1, OLD, "", vec![failed(1)])), "PENDING"),
        ("new generation not observed yet: its old Ready=True is not APPLIED",
            ready_src(), Some(ks(2, NEW, NEW, vec![ready(1)])), "PENDING"),
        ("new generation not observed yet: its old Ready=False is not STUCK",
            ready_src(), Some(ks(2, OLD, NEW, vec![failed(1)])), "PENDING"),
        ("new generation not observed yet: its old Stalled is not STUCK",
            ready_src(), Some(ks(2, OLD, OLD, vec![stalled(1)])), "PENDING"),
        ("reconciling the expected digest (Ready=Unknown, Progressing): PENDING",
            ready_src(), Some(ks(1, OLD, NEW, vec![progressing(1), in_progress(1)])), "PENDING"),
        ("applied the digest, health checks running (Ready=Unknown): PENDING",
            ready_src(), Some(ks(1, NEW, NEW, vec![progressing(1), in_progress(1)])), "PENDING"),
        ("source Stalled=True: STUCK",
            src(1, OLD, vec![cond("Stalled", "True", "InvalidURL", 1), cond("Ready", "False", "InvalidURL", 1)]), None, "STUCK"),
        ("source fetch failing while retrying: PENDING",
            src(1, OLD, vec![retrying(1), cond("Ready", "False", "OCIOperationFailed", 1)]), None, "PENDING"),
        ("source fetch failed, not retrying: STUCK",
            src(1, OLD, vec![cond("Ready", "False", "OCIOperationFailed", 1)]), None, "STUCK"),
        ("source verification failed, not retrying: STUCK",
            src(1, OLD, vec![cond("SourceVerified", "False", "VerificationError", 1), cond("Ready", "False", "VerificationError", 1)]), None, "STUCK"),
        ("source failure for an older generation: PENDING",
            src(3, OLD, vec![cond("Ready", "False", "OCIOperationFailed", 2)]), None, "PENDING"),
        ("source at the digest, Ready for an older generation: PENDING",
            src(2, NEW, vec![cond("Ready", "True", "Succeeded", 1)]), None, "PENDING"),
        ("source behind, Ready for it: PENDING",
            src(1, OLD, vec![cond("Ready", "True", "Succeeded", 1)]), None, "PENDING"),
    ];
    let mut failures = Vec::new();
    for (name, source, kustomization, want) in &rows {
        let state = assess(
            &observed(source.clone(), kustomization.clone()),
            &expected(),
        );
        if state.label() != *want {
            failures.push(format!("{name}: want {want}, got {state}"));
        }
    }
    println!("{} rows, {} failed", rows.len(), failures.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn without_condition_generations_the_objects_observed_generation_decides() {
    // Conditions without their own observedGeneration (older Flux APIs) are judged by
    // status.observedGeneration.
    let mut k = ks(2, NEW, NEW, vec![]);
    k["status"]["conditions"] = json!([{"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded", "message": "Applied"}]);
    k["status"]["observedGeneration"] = json!(1);
    let state = assess(&observed(ready_src(), Some(k.clone())), &expected());
    assert_eq!(state.label(), "PENDING", "{state}");
    k["status"]["observedGeneration"] = json!(2);
    let state = assess(&observed(ready_src(), Some(k)), &expected());
    assert_eq!(state.label(), "APPLIED", "{state}");
}
