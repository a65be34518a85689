//! The pure verdict on what prod applied: observed Flux status (from the documented fixtures)
//! plus the digest the channel names → APPLIED / PENDING / STUCK. No I/O.

use mainline_core::Digest;
use mainline_kube::fake::fixture;
use mainline_kube::flux::{
    assess, kustomization_from_json, revision_digest, source_from_json, AppliedState, Observed,
};
use mainline_kube::ObjectRef;
use serde_json::{json, Value};

/// The digest the fixtures' `latest@sha256:3b6c…` revision names.
const FIXTURE_DIGEST: &str =
    "sha256:3b6cdcc7adcc9a84d3214ee1c029543789d90b5ae69debe9efa3f66e982875de";
const OTHER_DIGEST: &str =
    "sha256:1111111111111111111111111111111111111111111111111111111111111111";

fn digest(s: &str) -> Digest {
    s.parse().expect("a valid digest")
}

fn r(name: &str) -> ObjectRef {
    ObjectRef::new("default", name).expect("valid")
}

fn observed(source: Value, kustomizations: Vec<Value>) -> Observed {
    Observed {
        source: source_from_json(&r("podinfo"), source).expect("fixture parses"),
        kustomizations: kustomizations
            .into_iter()
            .map(|k| kustomization_from_json(&r("podinfo"), k).expect("fixture parses"))
            .collect(),
    }
}

fn with(mut v: Value, pointer: &str, new: Value) -> Value {
    *v.pointer_mut(pointer).expect("the fixture has this field") = new;
    v
}

#[test]
fn ready_source_and_kustomization_at_the_expected_digest_is_applied() {
    let o = observed(
        fixture("flux/ocirepository_ready"),
        vec![fixture("flux/kustomization_ready")],
    );
    assert_eq!(assess(&o, &digest(FIXTURE_DIGEST)), AppliedState::Applied);
    assert_eq!(
        o.source.revision.as_deref(),
        Some("latest@sha256:3b6cdcc7adcc9a84d3214ee1c029543789d90b5ae69debe9efa3f66e982875de")
    );
}

#[test]
fn the_stored_tarball_digest_is_not_mistaken_for_the_manifest_digest() {
    // status.artifact.digest is Flux's tarball; only the revision names the OCI manifest.
    let tarball = "sha256:d7e924b4882e55b97627355c7b3d2e711e9b54303afa2f50c25377f4df66a83b";
    let o = observed(fixture("flux/ocirepository_ready"), vec![]);
    assert!(matches!(
        assess(&o, &digest(tarball)),
        AppliedState::Pending { .. }
    ));
}

#[test]
fn source_at_another_digest_is_pending_and_says_where_it_is() {
    let o = observed(
        fixture("flux/ocirepository_ready"),
        vec![fixture("flux/kustomization_ready")],
    );
    let state = assess(&o, &digest(OTHER_DIGEST));
    let AppliedState::Pending { detail } = &state else {
        panic!("expected PENDING, got {state}");
    };
    assert!(
        detail.contains("OCIRepository default/podinfo is at latest@sha256:3b6c"),
        "{detail}"
    );
    assert!(detail.contains(OTHER_DIGEST), "{detail}");
    assert!(state.to_string().starts_with("PENDING: "));
}

#[test]
fn a_fetch_failure_flux_is_retrying_is_pending_and_stuck_once_it_stops() {
    // As documented: Reconciling=True (ProgressingWithRetry) while source-controller retries.
    let src = fixture("flux/ocirepository_fetch_failed");
    let state = assess(&observed(src.clone(), vec![]), &digest(OTHER_DIGEST));
    assert!(
        matches!(&state, AppliedState::Pending { detail }
            if detail.contains("couldn't find tag") && detail.contains("retrying")),
        "{state}"
    );
    // The same failure with Reconciling no longer True: source-controller gave up.
    let src = with(src, "/status/conditions/0/status", json!("False"));
    let state = assess(&observed(src, vec![]), &digest(OTHER_DIGEST));
    assert_eq!(
        state,
        AppliedState::Stuck {
            object: "OCIRepository default/podinfo".into(),
            reason: "OCIOperationFailed".into(),
            message: "failed to pull artifact from 'oci://ghcr.io/stefanprodan/manifests/podinfo': couldn't find tag \"0.0.1\"".into(),
        }
    );
    assert_eq!(state.label(), "STUCK");
    assert!(state.to_string().contains("couldn't find tag"));
}

#[test]
fn failed_signature_verification_is_stuck_with_its_message() {
    let o = observed(fixture("flux/ocirepository_verification_failed"), vec![]);
    let AppliedState::Stuck {
        reason, message, ..
    } = assess(&o, &digest(OTHER_DIGEST))
    else {
        panic!("expected STUCK");
    };
    assert_eq!(reason, "VerificationError");
    assert!(message.contains("no matching signatures"), "{message}");
    assert!(
        o.source.revision.is_none(),
        "a never-verified source has no artifact"
    );
}

#[test]
fn a_suspended_source_behind_the_channel_is_stuck_and_says_how_to_resume() {
    let src = with(
        fixture("flux/ocirepository_ready"),
        "/spec",
        json!({"suspend": true}),
    );
    let AppliedState::Stuck {
        reason, message, ..
    } = assess(&observed(src.clone(), vec![]), &digest(OTHER_DIGEST))
    else {
        panic!("expected STUCK");
    };
    assert_eq!(reason, "Suspended");
    assert!(
        message.contains("flux resume source oci podinfo -n default"),
        "{message}"
    );
    // Suspended but already at the digest: nothing is wrong for this channel.
    assert_eq!(
        assess(&observed(src, vec![]), &digest(FIXTURE_DIGEST)),
        AppliedState::Applied
    );
}

#[test]
fn source_at_the_digest_but_not_ready_yet_is_pending() {
    let src = with(
        fixture("flux/ocirepository_ready"),
        "/status/conditions/0/status",
        json!("Unknown"),
    );
    let state = assess(&observed(src, vec![]), &digest(FIXTURE_DIGEST));
    assert!(
        matches!(&state, AppliedState::Pending { detail } if detail.contains("waiting for it to be Ready")),
        "{state}"
    );
}

#[test]
fn kustomization_failing_health_checks_on_the_digest_is_stuck_once_flux_stops_retrying() {
    let ks = fixture("flux/kustomization_health_check_failed");
    let o = observed(fixture("flux/ocirepository_ready"), vec![ks.clone()]);
    let state = assess(&o, &digest(FIXTURE_DIGEST));
    assert!(
        matches!(&state, AppliedState::Pending { detail } if detail.contains("health check failed") && detail.contains("Reconciling=True")),
        "retrying (Reconciling=True): {state}"
    );
    let ks = with(ks, "/status/conditions/0/status", json!("False"));
    let o = observed(fixture("flux/ocirepository_ready"), vec![ks]);
    assert_eq!(
        assess(&o, &digest(FIXTURE_DIGEST)),
        AppliedState::Stuck {
            object: "Kustomization default/podinfo".into(),
            reason: "HealthCheckFailed".into(),
            message: "health check failed after 1m0.0s: timeout waiting for: [Deployment/default/podinfo status: 'InProgress']".into(),
        }
    );
}

#[test]
fn kustomization_behind_the_source_is_pending() {
    let old = "latest@sha256:2222222222222222222222222222222222222222222222222222222222222222";
    let ks = with(
        fixture("flux/kustomization_ready"),
        "/status/lastAppliedRevision",
        json!(old),
    );
    let state = assess(
        &observed(fixture("flux/ocirepository_ready"), vec![ks]),
        &digest(FIXTURE_DIGEST),
    );
    assert!(
        matches!(&state, AppliedState::Pending { detail } if detail.contains("Kustomization default/podinfo last applied") && detail.contains(old)),
        "{state}"
    );
}

#[test]
fn kustomization_applied_but_health_checks_running_is_pending() {
    let ks = with(
        fixture("flux/kustomization_ready"),
        "/status/conditions/0/status",
        json!("Unknown"),
    );
    let state = assess(
        &observed(fixture("flux/ocirepository_ready"), vec![ks]),
        &digest(FIXTURE_DIGEST),
    );
    assert!(
        matches!(&state, AppliedState::Pending { detail } if detail.contains("health checks")),
        "{state}"
    );
}

#[test]
fn a_kustomization_failure_left_from_another_revision_is_pending_not_stuck() {
    // Regression (issue 18): a Ready=False from the previous digest showed STUCK for the new
    // one before Flux had tried it.
    // The source already fetched the new digest; the Kustomization last tried the old one.
    let old = "latest@sha256:2222222222222222222222222222222222222222222222222222222222222222";
    let ks = with(
        fixture("flux/kustomization_health_check_failed"),
        "/status/conditions/0/status",
        json!("False"),
    );
    let ks = with(ks, "/status/lastAttemptedRevision", json!(old));
    let ks = with(ks, "/status/lastAppliedRevision", json!(old));
    let o = observed(fixture("flux/ocirepository_ready"), vec![ks]);
    let state = assess(&o, &digest(FIXTURE_DIGEST));
    assert!(
        matches!(&state, AppliedState::Pending { detail }
            if detail.contains("lastAttemptedRevision") && detail.contains(old)),
        "{state}"
    );
}

#[test]
fn a_source_without_status_is_pending_not_applied() {
    let mut src = fixture("flux/ocirepository_ready");
    src.as_object_mut().expect("object").remove("status");
    let state = assess(&observed(src, vec![]), &digest(FIXTURE_DIGEST));
    assert!(
        matches!(&state, AppliedState::Pending { detail } if detail.contains("no artifact yet")),
        "{state}"
    );
}

#[test]
fn revision_formats_flux_writes() {
    let hex = "3b6cdcc7adcc9a84d3214ee1c029543789d90b5ae69debe9efa3f66e982875de";
    let d = digest(&format!("sha256:{hex}"));
    assert_eq!(
        revision_digest(&format!("latest@sha256:{hex}")),
        Some(d.clone())
    );
    assert_eq!(revision_digest(&format!("sha256:{hex}")), Some(d.clone()));
    assert_eq!(
        revision_digest(&format!("latest/{hex}")),
        Some(d),
        "Flux < 2.0 wrote <tag>/<hex>"
    );
    assert_eq!(
        revision_digest("latest@sha1:3b6cdcc7adcc9a84d3214ee1c029543789d90b5a"),
        None
    );
    assert_eq!(revision_digest("latest"), None);
    assert_eq!(revision_digest(""), None);
}

#[test]
fn worst_state_wins_and_none_is_not_applied() {
    let pending = AppliedState::Pending { detail: "x".into() };
    let unreachable = AppliedState::Unreachable {
        reason: "down".into(),
    };
    assert_eq!(
        AppliedState::worst([&AppliedState::Applied, &pending]),
        pending
    );
    assert_eq!(
        AppliedState::worst([&pending, &unreachable, &AppliedState::Applied]),
        unreachable
    );
    assert!(!AppliedState::worst([]).is_applied());
    let json = serde_json::to_value(&unreachable).expect("serialises");
    assert_eq!(json, json!({"state": "UNREACHABLE", "reason": "down"}));
}
