//! The guard on Kubernetes, end to end: the built binary as child processes, against
//! mainline-kube's fake API server (HTTPS, reached through kubeconfig files as on a laptop; in a
//! pod it is the service account), the real test registry and a real bare git remote. The
//! leader election also runs against a real kube-apiserver (tests/kube) with
//! `deploy/kubernetes/` applied as shipped and the replicas authenticating as its
//! ServiceAccount.
//!
//! - Leader election: two replicas on one Lease; only the leader reconciles (every move in the
//!   journal is its actor, the standby's metrics count none), the standby serves its views,
//!   `/readyz` 200, acknowledges webhooks without acting and refuses reconcile-now; after the
//!   leader is SIGKILLed the standby takes over within about one lease duration, and after a
//!   SIGTERM (the leader steps down) faster. Both hand-over times are printed (`--nocapture`).
//! - Per-channel Kubernetes: a channel inheriting the top-level `[kubernetes]` with
//!   `lock = "kubernetes"` writes through its Lease (a foreign holder shown on the page first,
//!   then the guard's own identity observed on the Lease during the restore, released after);
//!   the restore nudges the OCIRepository (token set, echoed by "Flux"); `/api/channels` and the
//!   page show APPLIED / PENDING / STUCK / UNREACHABLE per channel, from each channel's own table.
//!
//! Every test fails (never skips) when scripts/with-registry.sh is not running it.

mod guard;
#[path = "support/kube.rs"]
mod kube;
mod support;

use guard::*;
use mainline_kube::api::{KUSTOMIZATION, LEASE, OCI_REPOSITORY};
use mainline_kube::fake::{fixture, FakeKube, TEST_CA_PEM};
use mainline_kube::flux::REQUESTED_AT;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::git;

/// Leader election timing of the replicas (whole seconds, as the Lease counts).
const LEASE_SECS: u64 = 4;
const RENEW_SECS: u64 = 3;
const RETRY_SECS: u64 = 1;
/// Scheduling slack on the shared 2-core machine.
const SLACK: Duration = Duration::from_secs(2);

/// A kubeconfig for `server` that trusts the test CA and sends the fake's token.
fn kubeconfig(dir: &Path, name: &str, server: &str) -> PathBuf {
    let ca = dir.join(format!("{name}-ca.pem"));
    std::fs::write(&ca, TEST_CA_PEM).expect("write CA");
    let path = dir.join(format!("{name}-kubeconfig.yaml"));
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: test\nclusters:\n  - name: test\n    \
             cluster:\n      server: {server}\n      certificate-authority: {ca}\ncontexts:\n  - \
             name: test\n    context:\n      cluster: test\n      user: guard\nusers:\n  - name: \
             guard\n    user:\n      token: {token}\n",
            ca = ca.display(),
            token = kube::TOKEN,
        ),
    )
    .expect("write kubeconfig");
    path
}

/// One guard replica named `pod` (its POD_NAME, hence its identity and journal actor), with
/// its own working directory and cache, reaching the cluster through `kubeconfig`.
fn replica(w: &World, config: &Path, kubeconfig: &Path, pod: &str) -> GuardProc {
    let dir = w.path().join(pod);
    std::fs::create_dir_all(&dir).expect("replica dir");
    let cache = dir.join("cache");
    GuardProc::start(
        &dir,
        &[
            "--config",
            config.to_str().expect("utf8"),
            "--listen",
            "127.0.0.1:0",
        ],
        &[
            ("KUBECONFIG", kubeconfig.to_str().expect("utf8")),
            ("POD_NAME", pod),
            ("MAINLINE_CACHE_DIR", cache.to_str().expect("utf8")),
            ("MAINLINE_GUARD_TOKEN", TOKEN),
            ("MAINLINE_WEBHOOK_SECRET", SECRET),
        ],
    )
}

/// `guard` of `/api/channels`: role, identity, lease, leader.
fn role(g: &GuardProc) -> Value {
    get(&g.addr, "/api/channels").json()["guard"].clone()
}

fn leads(g: &GuardProc) -> bool {
    metric(&g.metrics(), "mainline_guard_leader") == 1.0
}

/// Poll `f` every 50 ms until it holds; how long it took, or a panic naming `what`.
fn until(limit: Duration, what: &str, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if f() {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The journal's moves of a channel, `(action, actor)`, read through a guard's history API.
fn moves(g: &GuardProc, channel: &str) -> Vec<(String, String)> {
    let history = get(&g.addr, &format!("/api/channels/{channel}/history")).json();
    history["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter(|r| r["kind"] == "moved")
        .map(|r| {
            (
                r["action"].as_str().unwrap_or("").to_owned(),
                r["actor"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// CI deploys the merge group's candidate (re-creating its queue ref), then the group ends
/// (GitHub deletes the ref): the channel runs ejected code until a guard restores main.
fn eject_a_candidate(w: &World) {
    git(
        &w.repo,
        &[
            "push",
            "-q",
            "-f",
            w.remote_str(),
            &format!("{}:{}", w.candidate, w.queue_ref),
        ],
    );
    w.mainline(&[
        "deploy",
        "--candidate",
        "--group",
        &w.queue_ref,
        "--commit",
        &w.candidate,
    ])
    .ok();
    w.end_group();
}

#[test]
fn two_replicas_elect_one_leader_and_the_standby_takes_over() {
    let w = World::new("guard-kube-leader");
    let fake = kube::start();
    let kc = kubeconfig(w.path(), "cluster", &fake.url());
    leader_election(&w, &kc, &|| {
        fake.object(&LEASE, "mainline", "mainline-guard-leader")
            .expect("the leader Lease")
    });
}

/// The same election against a real kube-apiserver (tests/kube) with `deploy/kubernetes/`
/// applied as shipped, the replicas authenticating as the shipped ServiceAccount: the Lease
/// compare-and-swap, the MicroTime fields and the Role are the real server's.
#[test]
fn two_replicas_elect_one_leader_on_a_real_api_server_as_the_shipped_service_account() {
    let w = World::new("guard-kube-leader-real");
    let server =
        mainline_kube::apiserver::ApiServer::start_with_shipped(&w.path().join("apiserver"));
    let token = server.guard_token();
    server.wait_allowed(
        &token,
        "update",
        "coordination.k8s.io",
        "leases",
        "mainline",
        "mainline-guard-leader",
    );
    let kc = w.path().join("real-kubeconfig.yaml");
    server.write_kubeconfig(&kc, &token);
    leader_election(&w, &kc, &|| {
        server
            .get(&LEASE, "mainline", "mainline-guard-leader")
            .expect("the leader Lease")
    });
}

/// Two replicas on one Lease, then a third: the leader alone moves the channel, the standby
/// serves read-only; SIGKILL hands over after a lease duration, SIGTERM at the next retry.
/// `lease()` reads the leader Lease as the API server stores it.
fn leader_election(w: &World, kc: &Path, lease: &dyn Fn() -> Value) {
    let kc = kc.to_path_buf();
    let config = w.write(
        "mainline.toml",
        &format!(
            r#"git = "{remote}"
path = "k8s"

[guard]
interval = "1s"
shutdown_grace = "10s"

[guard.leader_election]
namespace = "mainline"
lease_duration_seconds = {LEASE_SECS}
renew_deadline_seconds = {RENEW_SECS}
retry_period_seconds = {RETRY_SECS}

[[channels]]
name = "app"
channel = "{channel}"
github_repository = "acme/app"
"#,
            remote = w.remote_str(),
            channel = w.channel(),
        ),
    );
    let main_digest = w.artifact(&w.main);

    // guard-a starts first and wins the Lease; guard-b stands by.
    let a = replica(w, &config, &kc, "guard-a");
    until(Duration::from_secs(30), "guard-a to lead", || leads(&a));
    let b = replica(w, &config, &kc, "guard-b");
    b.wait_reconciled("app", 0);
    let r = role(&b);
    assert_eq!(r["role"], "standby", "{r}");
    assert_eq!(r["identity"], "guard-b", "{r}");
    assert_eq!(r["leader"], "guard-a", "{r}");
    assert_eq!(r["lease"], "mainline/mainline-guard-leader", "{r}");
    assert_eq!(role(&a)["role"], "leader");
    let leader_lease = lease();
    assert_eq!(
        leader_lease["spec"]["holderIdentity"], "guard-a",
        "{leader_lease}"
    );
    assert_eq!(
        leader_lease["spec"]["leaseDurationSeconds"],
        json!(LEASE_SECS),
        "{leader_lease}"
    );

    // The standby serves: health, ready, its page and read-only passes (status, no writes).
    assert_eq!(get(&b.addr, "/healthz").status, 200);
    let ready = get(&b.addr, "/readyz");
    assert_eq!(ready.status, 200, "{}", ready.text());
    assert!(ready.text().contains("standby"), "{}", ready.text());
    assert!(get(&b.addr, "/").text().contains(r#"data-role="standby""#));
    assert_eq!(metric(&b.metrics(), "mainline_guard_leader"), 0.0);
    assert_eq!(metric(&a.metrics(), "mainline_guard_leader"), 1.0);
    // A webhook reaching the standby is acknowledged, not acted on; reconcile-now is refused.
    let r = deliver(
        &b.addr,
        "push",
        "d-standby",
        &push("acme/app", "refs/heads/main", &w.main, &w.main),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.json()["status"], "standby", "{}", r.text());
    assert_eq!(r.json()["triggered"], json!([]));
    assert!(b
        .metrics()
        .contains(r#"mainline_webhook_deliveries_total{outcome="standby"} 1"#));
    let r = post_token(&b.addr, "/api/channels/app/reconcile", "");
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(
        r.text().contains("guard-a"),
        "names the leader: {}",
        r.text()
    );

    // Twice, a candidate is ejected: only the leader restores (both replicas run every second).
    for round in 1..=2u64 {
        eject_a_candidate(w);
        until(Duration::from_secs(30), "guard-a to restore", || {
            a.channel("app")["restores"].as_u64() >= Some(round)
        });
    }
    assert_eq!(w.channel_digest(), main_digest);
    until(
        Duration::from_secs(30),
        "the standby to see CONVERGED",
        || b.channel("app")["verdict"] == "CONVERGED",
    );
    let bm = b.metrics();
    for action in ["promote", "restore", "deploy_candidate", "apply_pin"] {
        let series = format!(r#"mainline_channel_moves_total{{channel="app",action="{action}"}}"#);
        assert_eq!(
            metric(&bm, &series),
            0.0,
            "the standby moved nothing: {series}"
        );
    }
    assert!(metric(&bm, r#"mainline_channel_reconciles_total{channel="app"}"#) >= 2.0);
    assert_eq!(
        metric(
            &a.metrics(),
            r#"mainline_channel_moves_total{channel="app",action="restore"}"#
        ),
        2.0
    );
    let journal = moves(&a, "app");
    let by_guards: Vec<&(String, String)> = journal
        .iter()
        .filter(|(_, who)| who.starts_with("guard@"))
        .collect();
    assert_eq!(
        by_guards
            .iter()
            .filter(|(action, who)| action == "restore" && who == "guard@guard-a")
            .count(),
        2,
        "{journal:?}"
    );
    assert!(
        by_guards.iter().all(|(_, who)| who == "guard@guard-a"),
        "only the leader's actor appears among the guards' moves: {journal:?}"
    );

    // SIGKILL the leader: it cannot step down; the standby takes over after a lease duration.
    let mut a = a;
    a.child.kill().expect("SIGKILL guard-a");
    let _ = a.child.wait();
    let took = until(
        Duration::from_secs(LEASE_SECS + RETRY_SECS) + SLACK * 3,
        "guard-b to take over after SIGKILL",
        || leads(&b),
    );
    println!(
        "takeover after SIGKILL of the leader: {:.2} s (lease duration {LEASE_SECS} s, retry \
         period {RETRY_SECS} s)",
        took.as_secs_f64()
    );
    assert!(
        took <= Duration::from_secs(LEASE_SECS + RETRY_SECS) + SLACK,
        "within one lease duration plus one retry period (and slack): {took:?}"
    );
    assert!(
        took >= Duration::from_secs(LEASE_SECS - RETRY_SECS) - Duration::from_millis(500),
        "not before the old leader's renewal could have lapsed: {took:?}"
    );
    let r = role(&b);
    assert_eq!(r["role"], "leader", "{r}");
    // The new leader acts at once, and its actor is in the journal.
    eject_a_candidate(w);
    until(Duration::from_secs(30), "guard-b to restore", || {
        b.channel("app")["restores"].as_u64() >= Some(1)
    });
    assert!(moves(&b, "app")
        .iter()
        .any(|(action, who)| action == "restore" && who == "guard@guard-b"));

    // A graceful SIGTERM: the leader steps down, so the next standby takes over at its next
    // retry instead of after a lease duration.
    let c = replica(w, &config, &kc, "guard-c");
    c.wait_reconciled("app", 0);
    assert_eq!(role(&c)["role"], "standby");
    let mut b = b;
    let pid = i32::try_from(b.child.id()).expect("pid fits");
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let took = until(
        Duration::from_secs(LEASE_SECS + RETRY_SECS) + SLACK * 3,
        "guard-c to take over after SIGTERM",
        || leads(&c),
    );
    println!(
        "takeover after SIGTERM of the leader (it steps down): {:.2} s (lease duration \
         {LEASE_SECS} s)",
        took.as_secs_f64()
    );
    let code = wait_for(30, "guard-b to exit", || {
        b.child.try_wait().expect("try_wait")
    })
    .code();
    assert_eq!(code, Some(0), "{}", b.log());
    assert!(b.log().contains("stepped down as leader"), "{}", b.log());
    assert!(
        took < Duration::from_secs(LEASE_SECS),
        "a graceful hand-over is faster than a lease duration: {took:?}"
    );
    let lease = lease();
    assert_eq!(lease["spec"]["holderIdentity"], "guard-c", "{lease}");
}

/// The name of the channel lock's Lease for `channel` (STORE:TAG), as the binary derives it.
fn lease_name(channel: &str) -> String {
    let reference: mainline_store::Reference = channel.parse().expect("a channel reference");
    let mainline_store::ReferenceTarget::Tag(tag) = reference.target else {
        panic!("a channel is a tag");
    };
    let key = mainline::channel::refs::ChannelKey::new(&reference.location, &tag);
    mainline_kube::channel_lease_name(key.as_str())
}

/// Store the channel lock's Lease with `spec`.
fn put_lease(fake: &FakeKube, name: &str, spec: Value) {
    let mut v = fixture("kube/lease");
    v["metadata"]["namespace"] = json!(kube::LEASE_NS);
    v["metadata"]["name"] = json!(name);
    v["spec"] = spec;
    fake.put_object(&LEASE, v);
}

fn now_micro() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64;
    mainline_kube::lease::micro_time(mainline_core::Timestamp(ms))
}

#[test]
fn a_guard_channel_nudges_flux_shows_what_it_applied_and_locks_through_a_lease() {
    let w = World::new("guard-kube-flux");
    let fake = kube::start();
    let kc = kubeconfig(w.path(), "cluster", &fake.url());
    let dark = kubeconfig(w.path(), "dark", &kube::refused_server());
    let main_digest = w.artifact(&w.main);
    let candidate_digest = w.artifact(&w.candidate);
    for tag in ["staging", "dark"] {
        w.mainline(&["tag", &format!("{}:sha-{}", w.store, w.main), tag])
            .ok();
    }
    // "Flux": prod runs main's artifact; staging's Kustomization fails its health checks.
    kube::seed(&fake, &main_digest);
    let mut staging = kube::source_at(&main_digest);
    staging["metadata"]["name"] = json!("staging");
    fake.put_object(&OCI_REPOSITORY, staging);
    let mut ks = fixture("flux/kustomization_health_check_failed");
    ks["metadata"]["namespace"] = json!(kube::NS);
    ks["metadata"]["name"] = json!("staging");
    ks["status"]["lastAppliedRevision"] = json!(kube::revision(&main_digest));
    ks["status"]["lastAttemptedRevision"] = json!(kube::revision(&main_digest));
    // kustomize-controller stopped retrying (no Reconciling=True): only then is it STUCK.
    ks["status"]["conditions"]
        .as_array_mut()
        .expect("conditions")
        .retain(|c| c["type"] != "Reconciling");
    fake.put_object(&KUSTOMIZATION, ks);
    // A CI job holds app's channel lock (a live Lease) when the guard starts.
    let lease = lease_name(&w.channel());
    let renewed = now_micro();
    put_lease(
        &fake,
        &lease,
        json!({ "holderIdentity": "ci@run-42", "leaseDurationSeconds": 300,
                "acquireTime": renewed, "renewTime": renewed, "leaseTransitions": 0 }),
    );

    let config = w.write(
        "mainline.toml",
        &format!(
            r#"git = "{remote}"
path = "k8s"

# Inherited by every channel without its own table.
[kubernetes]
lease_namespace = "{lease_ns}"

[[kubernetes.consumers]]
namespace = "{ns}"
oci_repository = "{source}"
kustomizations = ["{ks}"]
kubeconfig = "{kc}"

[guard]
interval = "1h"

[[channels]]
name = "app"
channel = "{store}:latest"
lock = "kubernetes"

[[channels]]
name = "staging"
channel = "{store}:staging"

[channels.kubernetes]
[[channels.kubernetes.consumers]]
namespace = "{ns}"
oci_repository = "staging"
kustomizations = ["staging"]
kubeconfig = "{kc}"

[[channels]]
name = "dark"
channel = "{store}:dark"

[channels.kubernetes]
[[channels.kubernetes.consumers]]
namespace = "{ns}"
oci_repository = "{source}"
kubeconfig = "{dark}"
"#,
            remote = w.remote_str(),
            store = w.store,
            lease_ns = kube::LEASE_NS,
            ns = kube::NS,
            source = kube::SOURCE,
            ks = kube::KS,
            kc = kc.display(),
            dark = dark.display(),
        ),
    );
    let dir = w.path().join("guard");
    std::fs::create_dir_all(&dir).expect("guard dir");
    let g = GuardProc::start(
        &dir,
        &[
            "--config",
            config.to_str().expect("utf8"),
            "--listen",
            "127.0.0.1:0",
            "--cache-dir",
            dir.join("cache").to_str().expect("utf8"),
        ],
        &[("POD_NAME", "guard-flux"), ("MAINLINE_GUARD_TOKEN", TOKEN)],
    );
    wait_for(60, "/readyz to answer 200", || {
        (get(&g.addr, "/readyz").status == 200).then_some(())
    });

    // What prod applied, per channel, from each channel's own table (or the inherited one).
    let app = g.channel("app");
    assert_eq!(app["verdict"], "CONVERGED", "{app}");
    assert_eq!(app["applied"]["state"], "APPLIED", "{app}");
    assert_eq!(app["applied"]["digest"], main_digest.as_str(), "{app}");
    assert_eq!(app["applied"]["consumers"][0]["consumer"], kube::CONSUMER);
    let staging = g.channel("staging");
    assert_eq!(staging["applied"]["state"], "STUCK", "{staging}");
    let detail = staging["applied"]["consumers"][0]["detail"]
        .as_str()
        .unwrap_or("");
    assert_eq!(
        staging["applied"]["consumers"][0]["consumer"],
        "flux-system/staging"
    );
    assert!(detail.contains("health check failed"), "{staging}");
    let dark = g.channel("dark");
    assert_eq!(dark["applied"]["state"], "UNREACHABLE", "{dark}");
    assert_eq!(
        dark["verdict"], "CONVERGED",
        "an unreachable cluster is no verdict: {dark}"
    );
    // The Lease lock's holder, as the guard read it.
    assert_eq!(app["lock"]["backend"], "kubernetes", "{app}");
    assert_eq!(app["lock"]["held"], true, "{app}");
    assert_eq!(app["lock"]["holder"], "ci@run-42", "{app}");
    let page = get(&g.addr, "/").text();
    for needle in [
        r#"class="applied" data-state="APPLIED""#,
        r#"class="applied" data-state="STUCK""#,
        r#"class="applied" data-state="UNREACHABLE""#,
        "Lease held by ci@run-42",
    ] {
        assert!(page.contains(needle), "the page shows {needle:?}");
    }

    // The CI job finishes (releases the Lease); a group deploys its candidate, Flux applies
    // it, and the group is ejected. Flux will apply main again 300 ms after it is nudged.
    let renewed = now_micro();
    put_lease(
        &fake,
        &lease,
        json!({ "leaseDurationSeconds": 1, "acquireTime": renewed, "renewTime": renewed,
                "leaseTransitions": 0 }),
    );
    eject_a_candidate(&w);
    assert_eq!(w.channel_digest(), candidate_digest);
    kube::seed(&fake, &candidate_digest);
    kube::flux_applies_after(&fake, Duration::from_millis(300), &main_digest);
    let patches_before = fake
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .count();

    // The guard restores, holding the Lease while it writes (watched on the fake every 2 ms).
    let before = g.reconciles("app");
    let (app, holders) = kube::watching(
        || {
            fake.object(&LEASE, kube::LEASE_NS, &lease)
                .and_then(|l| l["spec"]["holderIdentity"].as_str().map(str::to_owned))
                .unwrap_or_default()
        },
        || {
            let r = post_token(&g.addr, "/api/channels/app/reconcile", "");
            assert_eq!(r.status, 202, "{}", r.text());
            g.wait_reconciled("app", before)
        },
    );
    assert_eq!(app["first_verdict"], "DIVERGED", "{app}");
    assert_eq!(app["verdict"], "CONVERGED", "{app}");
    assert_eq!(app["restores"], 1, "{app}");
    assert_eq!(w.channel_digest(), main_digest);
    println!("Lease holders seen during the restore: {holders:?}");
    assert!(
        holders.iter().any(|h| h.starts_with("guard@guard-flux/")),
        "the guard held the channel's Lease during the restore: {holders:?}"
    );
    let after = fake
        .object(&LEASE, kube::LEASE_NS, &lease)
        .expect("the Lease");
    assert!(
        after["spec"]["holderIdentity"]
            .as_str()
            .unwrap_or("")
            .is_empty(),
        "released after the run: {after}"
    );
    assert_eq!(app["lock"]["held"], false, "{app}");
    assert!(
        moves(&g, "app")
            .iter()
            .any(|(action, who)| action == "restore" && who == "guard@guard-flux"),
        "the journal names the guard"
    );

    // The restore nudged the OCIRepository (a merge patch of requestedAt), and "Flux" echoes
    // the token once it handled it.
    let patches: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    assert_eq!(patches.len(), patches_before + 1, "one nudge: {patches:?}");
    assert_eq!(
        patches.last().and_then(|r| r.content_type.as_deref()),
        Some("application/merge-patch+json")
    );
    let token = kube::source_object(&fake)["metadata"]["annotations"][REQUESTED_AT]
        .as_str()
        .expect("the requestedAt annotation is set")
        .to_owned();
    until(Duration::from_secs(10), "Flux to echo the token", || {
        kube::source_object(&fake)["status"]["lastHandledReconcileAt"] == token.as_str()
    });
    println!(
        "applied right after the restore: {} (Flux applies 300 ms after the nudge)",
        app["applied"]["state"]
    );
    assert!(
        ["PENDING", "APPLIED"].contains(&app["applied"]["state"].as_str().unwrap_or("")),
        "{app}"
    );
    // The next pass sees Flux caught up.
    let before = g.reconciles("app");
    assert_eq!(
        post_token(&g.addr, "/api/channels/app/reconcile", "").status,
        202
    );
    let app = g.wait_reconciled("app", before);
    assert_eq!(app["applied"]["state"], "APPLIED", "{app}");
    assert_eq!(app["applied"]["digest"], main_digest.as_str(), "{app}");
}

/// The guard's channel lock and nudge against a real kube-apiserver (tests/kube), as the
/// shipped ServiceAccount: a CI job's live Lease is shown, then, once released, the guard
/// holds the channel's Lease while it restores, releases it, and merge-patches the one
/// OCIRepository the shipped Role lets it patch; the test plays Flux by writing status.
#[test]
fn a_guard_channel_on_a_real_api_server_locks_through_its_lease_and_nudges_flux() {
    use mainline_kube::apiserver::ApiServer;
    const NS: &str = "flux-system";
    const SOURCE: &str = "app-manifests";
    let w = World::new("guard-kube-flux-real");
    let server = ApiServer::start_with_shipped(&w.path().join("apiserver"));
    let token = server.guard_token();
    server.wait_allowed(
        &token,
        "patch",
        "source.toolkit.fluxcd.io",
        "ocirepositories",
        NS,
        SOURCE,
    );
    server.wait_allowed(
        &token,
        "update",
        "coordination.k8s.io",
        "leases",
        "mainline",
        "x",
    );
    let kc = w.path().join("real-kubeconfig.yaml");
    server.write_kubeconfig(&kc, &token);
    let main_digest = w.artifact(&w.main);
    let candidate_digest = w.artifact(&w.candidate);
    let status = |res: &mainline_kube::api::ApiResource, digest: &str, echo: Option<&str>| {
        let f = if res.kind == "OCIRepository" {
            "flux/ocirepository_ready"
        } else {
            "flux/kustomization_ready"
        };
        let mut s = fixture(f)["status"].clone();
        let rev = json!(kube::revision(digest));
        if res.kind == "OCIRepository" {
            s["artifact"]["revision"] = rev;
        } else {
            s["lastAppliedRevision"] = rev.clone();
            s["lastAttemptedRevision"] = rev;
        }
        if let Some(t) = echo {
            s["lastHandledReconcileAt"] = json!(t);
        }
        server.write_status(res, NS, SOURCE, &s);
    };
    for res in [&OCI_REPOSITORY, &KUSTOMIZATION] {
        let f = fixture(if res.kind == "OCIRepository" {
            "flux/ocirepository_ready"
        } else {
            "flux/kustomization_ready"
        });
        let mut spec = f["spec"].clone();
        if res.kind == "Kustomization" {
            spec["sourceRef"]["name"] = json!(SOURCE);
        }
        server.create(
            res,
            &json!({"apiVersion": f["apiVersion"], "kind": res.kind,
            "metadata": {"name": SOURCE, "namespace": NS}, "spec": spec}),
        );
        status(res, &main_digest, None);
    }
    let lease = lease_name(&w.channel());
    let put_lease = |spec: Value| {
        server.apply(
            &json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": lease, "namespace": "mainline"}, "spec": spec}),
            "test",
        )
    };
    let renewed = now_micro();
    put_lease(
        json!({ "holderIdentity": "ci@run-42", "leaseDurationSeconds": 300,
                      "acquireTime": renewed, "renewTime": renewed, "leaseTransitions": 0 }),
    );
    let config = w.write(
        "mainline.toml",
        &format!(
            r#"git = "{remote}"
path = "k8s"

[kubernetes]
lease_namespace = "mainline"

[[kubernetes.consumers]]
namespace = "{NS}"
oci_repository = "{SOURCE}"
kustomizations = ["{SOURCE}"]
kubeconfig = "{kc}"

[guard]
interval = "1h"

[[channels]]
name = "app"
channel = "{store}:latest"
lock = "kubernetes"
"#,
            remote = w.remote_str(),
            store = w.store,
            kc = kc.display(),
        ),
    );
    let dir = w.path().join("guard");
    std::fs::create_dir_all(&dir).expect("guard dir");
    let g = GuardProc::start(
        &dir,
        &[
            "--config",
            config.to_str().expect("utf8"),
            "--listen",
            "127.0.0.1:0",
            "--cache-dir",
            dir.join("cache").to_str().expect("utf8"),
        ],
        &[("POD_NAME", "guard-flux"), ("MAINLINE_GUARD_TOKEN", TOKEN)],
    );
    wait_for(60, "/readyz to answer 200", || {
        (get(&g.addr, "/readyz").status == 200).then_some(())
    });
    let app = g.channel("app");
    assert_eq!(app["verdict"], "CONVERGED", "{app}");
    assert_eq!(app["applied"]["state"], "APPLIED", "{app}");
    assert_eq!(
        app["applied"]["consumers"][0]["consumer"],
        "flux-system/app-manifests"
    );
    assert_eq!(app["lock"]["backend"], "kubernetes", "{app}");
    assert_eq!(app["lock"]["holder"], "ci@run-42", "{app}");

    // The CI job releases; a candidate is deployed, applied, then ejected.
    let renewed = now_micro();
    put_lease(
        json!({ "leaseDurationSeconds": 1, "acquireTime": renewed, "renewTime": renewed,
                      "leaseTransitions": 0 }),
    );
    eject_a_candidate(&w);
    assert_eq!(w.channel_digest(), candidate_digest);
    status(&OCI_REPOSITORY, &candidate_digest, None);
    status(&KUSTOMIZATION, &candidate_digest, None);

    let holder = || {
        server
            .get(&LEASE, "mainline", &lease)
            .and_then(|l| l["spec"]["holderIdentity"].as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    let before = g.reconciles("app");
    let (app, holders) = kube::watching(holder, || {
        let r = post_token(&g.addr, "/api/channels/app/reconcile", "");
        assert_eq!(r.status, 202, "{}", r.text());
        g.wait_reconciled("app", before)
    });
    println!("Lease holders seen on the real server during the restore: {holders:?}");
    assert_eq!(app["verdict"], "CONVERGED", "{app}");
    assert_eq!(app["restores"], 1, "{app}");
    assert_eq!(w.channel_digest(), main_digest);
    assert!(
        holders.iter().any(|h| h.starts_with("guard@guard-flux/")),
        "the guard held the channel's Lease during the restore: {holders:?}"
    );
    assert_eq!(holder(), "", "released after the run");

    // The nudge landed as the guard's merge patch; Flux handles it and the next pass sees it.
    let src = server.get(&OCI_REPOSITORY, NS, SOURCE).expect("source");
    let token = src["metadata"]["annotations"][REQUESTED_AT]
        .as_str()
        .expect("the requestedAt annotation is set")
        .to_owned();
    status(&OCI_REPOSITORY, &main_digest, Some(&token));
    status(&KUSTOMIZATION, &main_digest, Some(&token));
    let before = g.reconciles("app");
    assert_eq!(
        post_token(&g.addr, "/api/channels/app/reconcile", "").status,
        202
    );
    let app = g.wait_reconciled("app", before);
    assert_eq!(app["applied"]["state"], "APPLIED", "{app}");
    assert_eq!(app["applied"]["digest"], main_digest.as_str(), "{app}");
}

/// `mainline guard --check` on `config` in a fresh directory.
fn check(config: &str, env: &[(&str, &str)]) -> support::Run {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("mainline.toml"), config).expect("write config");
    let mut env = env.to_vec();
    env.push(("MAINLINE_CACHE_DIR", "cache"));
    support::mainline_in(
        dir.path(),
        &[
            "guard",
            "--config",
            "mainline.toml",
            "--check",
            "-o",
            "json",
        ],
        &env,
    )
}

#[test]
fn kubernetes_settings_are_checked_before_anything_is_opened() {
    // The deploy example (deploy/kubernetes/configmap.yaml) is a valid guard config.
    let cm = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/kubernetes/configmap.yaml"),
    )
    .expect("the ConfigMap");
    let cm: Value = serde_saphyr::from_str(&cm).expect("YAML");
    let example = cm["data"]["mainline.toml"].as_str().expect("mainline.toml");
    let run = check(example, &[("GITHUB_TOKEN", "ghp_not_printed_0000")]).ok();
    let prod = &run.json()["channels"][0];
    assert!(
        prod["lock"]
            .as_str()
            .unwrap_or("")
            .starts_with("kubernetes"),
        "{prod}"
    );

    let base = r#"git = "https://github.com/acme/app.git"
path = "k8s"
"#;
    let one = "[[channels]]\nname = \"prod\"\nchannel = \"oci://ghcr.io/acme/app:latest\"\n";
    let refused = [
        (
            "[guard.leader_election]\nnamespace = \"mainline\"\nlease_duration_seconds = 10\n\
             renew_deadline_seconds = 10\n",
            "renew_deadline must be shorter than lease_duration",
        ),
        (
            "[guard.leader_election]\nlease = \"mainline-guard-leader\"\n",
            "no namespace for the leader Lease",
        ),
        (
            "[guard.leader_election]\nnamespace = \"mainline\"\nleader = \"me\"\n",
            "unknown field `leader`",
        ),
        (
            "[[channels]]\nname = \"prod\"\nchannel = \"oci://ghcr.io/acme/app:latest\"\n\
             lock = \"kubernetes\"\n",
            "lock = \"kubernetes\" needs a kubernetes table with at least one consumer",
        ),
        (
            "[[channels]]\nname = \"prod\"\nchannel = \"oci://ghcr.io/acme/app:latest\"\n\
             [channels.kubernetes]\n[[channels.kubernetes.consumers]]\nnamespace = \"Flux_System\"\n\
             oci_repository = \"app\"\n",
            "channel \"prod\": its kubernetes table is invalid",
        ),
        (
            // Inherited by the entry: the top-level table is checked for every channel.
            "[kubernetes]\nlease_namespace = \"-bad\"\n[[channels]]\nname = \"prod\"\n\
             channel = \"oci://ghcr.io/acme/app:latest\"\n",
            "channel \"prod\": its kubernetes table is invalid",
        ),
    ];
    for (extra, says) in refused {
        let config = if extra.contains("[[channels]]") {
            format!("{base}{extra}")
        } else {
            format!("{base}{extra}{one}")
        };
        let run = check(&config, &[("POD_NAMESPACE", "")]);
        assert_eq!(run.code, 2, "refused with exit 2: {extra}\n{}", run.stderr);
        assert!(
            run.stderr.contains(says),
            "{extra}\nsays {says:?}: {}",
            run.stderr
        );
    }
}
