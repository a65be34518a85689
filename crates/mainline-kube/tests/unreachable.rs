//! An unreachable or hanging API server never delays a restore beyond the caller's deadline:
//! the trigger, the status read and the wait all return by it. Elapsed times are measured and
//! printed (run with `--nocapture` to see them).

mod support;

use mainline_kube::config::Cluster;
use mainline_kube::fake::{Failure, FakeKube};
use mainline_kube::flux::request_reconcile;
use mainline_kube::{
    AppliedState, Connection, Consumer, Consumers, Credentials, ErrorKind, KubeClient, KubeError,
    ObjectRef, Secret, SystemClock, WaitOptions,
};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{digest, seed, TOKEN};

/// Scheduling slack on a loaded 2-core machine.
const SLACK: Duration = Duration::from_millis(400);

fn app() -> ObjectRef {
    ObjectRef::new("flux-system", "app-manifests").expect("valid")
}

/// A loopback port nothing listens on: bind, read the port, close.
fn refused_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn client_for(server: String) -> Arc<KubeClient> {
    Arc::new(
        KubeClient::new(Connection {
            server,
            origin: "test".into(),
            namespace: None,
            ca_pem: None,
            client_cert_pem: None,
            client_key_pem: None,
            credentials: Credentials::Token(Secret::new(TOKEN)),
            insecure_skip_tls_verify: false,
            proxy_url: None,
        })
        .expect("client"),
    )
}

fn consumer(name: &str) -> Consumer {
    Consumer {
        cluster: Cluster::InCluster,
        source: ObjectRef::new("flux-system", name).expect("valid"),
        kustomizations: vec![ObjectRef::new("flux-system", "app").expect("valid")],
    }
}

#[test]
fn connection_refused_fails_fast_as_unreachable() {
    let client = client_for(format!("http://127.0.0.1:{}", refused_port()));
    let budget = Duration::from_secs(3);
    let start = Instant::now();
    let err =
        request_reconcile(&client, &app(), &SystemClock, start + budget).expect_err("refused");
    let elapsed = start.elapsed();
    println!("trigger against a refused port: {elapsed:?} (deadline {budget:?})");
    assert!(matches!(err, KubeError::Unreachable { .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(
        elapsed < Duration::from_secs(1),
        "a refused connection is immediate: {elapsed:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("OCIRepository flux-system/app-manifests") && msg.contains("could not reach"),
        "{msg}"
    );
}

#[test]
fn hanging_server_is_abandoned_at_the_deadline() {
    let fake = FakeKube::start();
    let client = fake.client(TOKEN);
    seed(&fake, "flux-system", "app-manifests", "app", &digest(1));
    fake.fail_next(Failure::Hang(Duration::from_secs(30)), 1);
    let budget = Duration::from_millis(500);
    let start = Instant::now();
    let err = request_reconcile(&client, &app(), &SystemClock, start + budget).expect_err("hangs");
    let elapsed = start.elapsed();
    println!("trigger against a hanging API server: {elapsed:?} (deadline {budget:?})");
    assert!(matches!(err, KubeError::DeadlineExceeded { .. }), "{err:?}");
    assert!(elapsed >= budget - Duration::from_millis(20), "{elapsed:?}");
    assert!(
        elapsed < budget + SLACK,
        "returned {elapsed:?} after a {budget:?} deadline"
    );
    assert!(err
        .to_string()
        .contains("did not answer `patch` on OCIRepository flux-system/app-manifests"));
}

#[test]
fn a_passed_deadline_sends_nothing() {
    let fake = FakeKube::start();
    let client = fake.client(TOKEN);
    let err =
        request_reconcile(&client, &app(), &SystemClock, Instant::now()).expect_err("no time");
    assert!(matches!(err, KubeError::DeadlineExceeded { .. }));
    assert!(fake.requests().is_empty());
}

#[test]
fn one_hanging_cluster_does_not_delay_the_others() {
    let hanging = FakeKube::start();
    let healthy = FakeKube::start();
    seed(&hanging, "flux-system", "app-manifests", "app", &digest(1));
    seed(&healthy, "flux-system", "app-manifests", "app", &digest(1));
    hanging.fail_next(Failure::Hang(Duration::from_secs(30)), 10);
    let refused = client_for(format!("http://127.0.0.1:{}", refused_port()));
    let consumers = Consumers::from_clients(vec![
        (consumer("app-manifests"), hanging.client(TOKEN)),
        (consumer("app-manifests"), healthy.client(TOKEN)),
        (consumer("app-manifests"), refused),
    ]);
    let budget = Duration::from_millis(600);
    let start = Instant::now();
    let reports = consumers.request_reconcile(&SystemClock, start + budget);
    let elapsed = start.elapsed();
    for r in &reports {
        println!(
            "  trigger {}: {:?} after {:?}",
            r.consumer.source,
            r.result.as_ref().map(|t| &t.0).map_err(|e| e.kind()),
            r.elapsed
        );
    }
    println!(
        "trigger of 3 consumers (hanging, healthy, refused): {elapsed:?} (deadline {budget:?})"
    );
    assert!(elapsed < budget + SLACK, "{elapsed:?}");
    assert!(matches!(
        reports[0].result,
        Err(KubeError::DeadlineExceeded { .. })
    ));
    assert!(
        reports[1].result.is_ok(),
        "the healthy cluster was triggered: {:?}",
        reports[1].result
    );
    assert!(
        reports[1].elapsed < Duration::from_millis(300),
        "and not held up: {:?}",
        reports[1].elapsed
    );
    assert!(matches!(
        reports[2].result,
        Err(KubeError::Unreachable { .. })
    ));
}

#[test]
fn unreadable_status_is_unreachable_never_applied_and_the_wait_ends_at_its_deadline() {
    let fake = FakeKube::start();
    seed(&fake, "flux-system", "app-manifests", "app", &digest(1));
    fake.fail_next(Failure::Hang(Duration::from_secs(30)), 100);
    let consumers = Consumers::from_clients(vec![(consumer("app-manifests"), fake.client(TOKEN))]);
    let options = WaitOptions {
        poll_interval: Duration::from_millis(100),
        request_timeout: Duration::from_millis(200),
    };
    let budget = Duration::from_millis(900);
    let start = Instant::now();
    let mut seen = Vec::new();
    let outcome = consumers.wait_applied(&digest(1), start + budget, &options, &mut |p| {
        seen.push(p.states[0].state.label());
    });
    let elapsed = start.elapsed();
    println!(
        "wait_applied against a hanging API server: {elapsed:?} (deadline {budget:?}, {} polls)",
        outcome.polls
    );
    assert!(!outcome.applied);
    assert!(elapsed < budget + SLACK, "{elapsed:?}");
    assert!(
        outcome.polls >= 2,
        "kept polling until the deadline: {}",
        outcome.polls
    );
    let AppliedState::Unreachable { reason } = outcome.worst() else {
        panic!("expected UNREACHABLE, got {}", outcome.worst());
    };
    assert!(
        reason.contains("OCIRepository flux-system/app-manifests"),
        "{reason}"
    );
    assert_eq!(
        seen,
        vec!["UNREACHABLE"],
        "progress is reported on change only"
    );
}
