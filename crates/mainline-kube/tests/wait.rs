//! `deploy --wait`: poll the consumers until they applied the exact digest, reporting progress,
//! against the fake API server playing Flux.

mod support;

use mainline_kube::api::{KUSTOMIZATION, OCI_REPOSITORY};
use mainline_kube::config::Cluster;
use mainline_kube::fake::FakeKube;
use mainline_kube::{AppliedState, Consumer, Consumers, ObjectRef, SystemClock, WaitOptions};
use std::time::{Duration, Instant};
use support::{digest, kustomization_at, kustomization_unhealthy, seed, source_at, TOKEN};

fn consumer() -> Consumer {
    Consumer {
        cluster: Cluster::InCluster,
        source: ObjectRef::new("flux-system", "app-manifests").expect("valid"),
        kustomizations: vec![ObjectRef::new("apps", "web").expect("valid")],
    }
}

fn fast() -> WaitOptions {
    WaitOptions {
        poll_interval: Duration::from_millis(50),
        request_timeout: Duration::from_secs(2),
    }
}

#[test]
fn trigger_then_wait_sees_pending_then_applied() {
    let fake = FakeKube::start();
    let (old, new) = (digest(1), digest(2));
    fake.put_object(
        &OCI_REPOSITORY,
        source_at("flux-system", "app-manifests", &old),
    );
    fake.put_object(&KUSTOMIZATION, kustomization_at("apps", "web", &old));
    // "Flux": 300 ms after the request, the source has the new artifact and the
    // Kustomization applied it.
    fake.react_to_reconcile(
        "flux-system",
        "app-manifests",
        Duration::from_millis(300),
        vec![
            (
                &OCI_REPOSITORY,
                "flux-system",
                "app-manifests",
                source_at("flux-system", "app-manifests", &new)["status"].clone(),
            ),
            (
                &KUSTOMIZATION,
                "apps",
                "web",
                kustomization_at("apps", "web", &new)["status"].clone(),
            ),
        ],
    );
    let consumers = Consumers::from_clients(vec![(consumer(), fake.client(TOKEN))]);

    let reports =
        consumers.request_reconcile(&SystemClock, Instant::now() + Duration::from_secs(2));
    let token = reports[0].result.as_ref().expect("triggered").clone();
    let mut progress = Vec::new();
    let start = Instant::now();
    let outcome =
        consumers.wait_applied(&new, start + Duration::from_secs(10), &fast(), &mut |p| {
            progress.push((p.elapsed, p.states[0].state.clone()));
        });
    println!(
        "applied after {:?} and {} polls; progress: {:?}",
        outcome.elapsed,
        outcome.polls,
        progress
            .iter()
            .map(|(t, s)| format!("{t:?} {}", s.label()))
            .collect::<Vec<_>>()
    );

    assert!(outcome.applied);
    assert_eq!(progress.first().map(|p| p.1.label()), Some("PENDING"));
    assert_eq!(
        progress.last().map(|p| p.1.clone()),
        Some(AppliedState::Applied)
    );
    assert!(
        outcome.elapsed >= Duration::from_millis(250),
        "{:?}",
        outcome.elapsed
    );
    let observed = outcome.states[0].observed.as_ref().expect("read");
    assert_eq!(
        observed.source.last_handled_reconcile_at.as_deref(),
        Some(token.0.as_str()),
        "token echoed back"
    );
}

#[test]
fn stuck_consumer_ends_the_wait_at_the_deadline_with_the_condition_message() {
    let fake = FakeKube::start();
    let d = digest(3);
    fake.put_object(
        &OCI_REPOSITORY,
        source_at("flux-system", "app-manifests", &d),
    );
    fake.put_object(&KUSTOMIZATION, kustomization_unhealthy("apps", "web", &d));
    let consumers = Consumers::from_clients(vec![(consumer(), fake.client(TOKEN))]);
    let budget = Duration::from_millis(400);
    let start = Instant::now();
    let outcome = consumers.wait_applied(&d, start + budget, &fast(), &mut |_| {});
    let elapsed = start.elapsed();
    println!(
        "stuck consumer: gave up after {elapsed:?} (deadline {budget:?}): {}",
        outcome.worst()
    );
    assert!(!outcome.applied);
    assert!(
        elapsed >= budget && elapsed < budget + Duration::from_millis(400),
        "{elapsed:?}"
    );
    let AppliedState::Stuck {
        object,
        reason,
        message,
    } = outcome.worst()
    else {
        panic!("expected STUCK, got {}", outcome.worst());
    };
    assert_eq!(object, "Kustomization apps/web");
    assert_eq!(reason, "HealthCheckFailed");
    assert!(
        message.starts_with("health check failed after 1m0.0s"),
        "{message}"
    );
}

#[test]
fn already_applied_returns_after_one_read() {
    let fake = FakeKube::start();
    let d = digest(4);
    seed(&fake, "flux-system", "app-manifests", "web", &d);
    fake.put_object(&KUSTOMIZATION, kustomization_at("apps", "web", &d));
    let consumers = Consumers::from_clients(vec![(consumer(), fake.client(TOKEN))]);
    let outcome = consumers.wait_applied(
        &d,
        Instant::now() + Duration::from_secs(5),
        &fast(),
        &mut |_| {},
    );
    assert!(outcome.applied);
    assert_eq!(outcome.polls, 1);
    assert_eq!(fake.requests().len(), 2, "one GET per object");
    assert!(fake.requests().iter().all(|r| r.method == "GET"));
}

#[test]
fn no_consumer_is_never_applied() {
    let outcome = Consumers::default().wait_applied(
        &digest(5),
        Instant::now() + Duration::from_secs(1),
        &fast(),
        &mut |_| {},
    );
    assert!(!outcome.applied, "nothing checked is not a passed gate");
    assert!(outcome.states.is_empty());
}
