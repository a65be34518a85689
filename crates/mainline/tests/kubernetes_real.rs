//! Issue 19 through the `mainline` binary: `--lock kubernetes` and `deploy --candidate --wait`
//! against a real kube-apiserver (tests/kube) with the Flux CRDs and `deploy/kubernetes/`
//! applied as shipped, mainline authenticating as the shipped ServiceAccount through a
//! kubeconfig — so the Lease compare-and-swap, the trigger's merge patch and the Role's limits
//! are the real server's. The test plays Flux's controllers by writing status, as they would.
//!
//! Every test fails (never skips) when scripts/with-registry.sh is not running it or the test
//! API server is not built (`MAINLINE_KUBE_APISERVER`, see scripts/test.sh).

mod support;

use mainline_kube::api::{KUSTOMIZATION, LEASE, OCI_REPOSITORY};
use mainline_kube::apiserver::ApiServer;
use mainline_kube::fake::fixture;
use mainline_kube::flux::REQUESTED_AT;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::queue::{app, deploy, field, first_deploy, moves, Channel, Queue};
use support::registry_store;

/// The OCIRepository the shipped Role lets the guard patch, and where the Leases live.
const FLUX_NS: &str = "flux-system";
const SOURCE: &str = "app-manifests";
const LEASE_NS: &str = "mainline";

/// A real server with the shipped manifests, the guard's token allowed to do its calls, and a
/// mainline.toml whose `[kubernetes]` table reaches it as that ServiceAccount.
fn cluster(dir: &Path) -> (ApiServer, PathBuf) {
    let server = ApiServer::start_with_shipped(&dir.join("apiserver"));
    server.ensure_namespace(FLUX_NS);
    let token = server.guard_token();
    server.wait_allowed(
        &token,
        "update",
        "coordination.k8s.io",
        "leases",
        LEASE_NS,
        "x",
    );
    server.wait_allowed(
        &token,
        "patch",
        "source.toolkit.fluxcd.io",
        "ocirepositories",
        FLUX_NS,
        SOURCE,
    );
    let kubeconfig = dir.join("guard-kubeconfig.yaml");
    server.write_kubeconfig(&kubeconfig, &token);
    let toml = dir.join("mainline.toml");
    std::fs::write(
        &toml,
        format!(
            "[kubernetes]\nlease_namespace = \"{LEASE_NS}\"\n\n[[kubernetes.consumers]]\n\
             namespace = \"{FLUX_NS}\"\noci_repository = \"{SOURCE}\"\nkustomizations = \
             [\"{SOURCE}\"]\nkubeconfig = \"{}\"\n",
            kubeconfig.display()
        ),
    )
    .expect("write mainline.toml");
    (server, toml)
}

fn status_at(fixture_name: &str, digest: &str) -> Value {
    let mut s = fixture(fixture_name)["status"].clone();
    if s.get("artifact").is_some() {
        s["artifact"]["revision"] = json!(format!("latest@{digest}"));
    } else {
        s["lastAppliedRevision"] = json!(format!("latest@{digest}"));
        s["lastAttemptedRevision"] = json!(format!("latest@{digest}"));
    }
    s
}

/// Create the OCIRepository and its Kustomization (spec from the documented fixtures), both
/// Ready at `digest`.
fn seed(server: &ApiServer, digest: &str) {
    for (res, f) in [
        (&OCI_REPOSITORY, "flux/ocirepository_ready"),
        (&KUSTOMIZATION, "flux/kustomization_ready"),
    ] {
        let mut spec = fixture(f)["spec"].clone();
        if res.kind == "Kustomization" {
            spec["sourceRef"]["name"] = json!(SOURCE);
        }
        server.create(
            res,
            &json!({"apiVersion": fixture(f)["apiVersion"], "kind": res.kind,
                    "metadata": {"name": SOURCE, "namespace": FLUX_NS}, "spec": spec}),
        );
        server.write_status(res, FLUX_NS, SOURCE, &status_at(f, digest));
    }
}

fn lease_name(ch: &Channel) -> String {
    let reference: mainline_store::Reference =
        ch.reference().parse().expect("a valid channel reference");
    let mainline_store::ReferenceTarget::Tag(tag) = reference.target else {
        panic!("a channel is a tag");
    };
    let key = mainline::channel::refs::ChannelKey::new(&reference.location, &tag);
    mainline_kube::channel_lease_name(key.as_str())
}

#[test]
fn lock_kubernetes_holds_the_channel_lease_on_a_real_server_during_the_restore() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (server, toml) = cluster(tmp.path());
    let mut q = Queue::new(tmp.path());
    let plain = Channel::new(&registry_store("kube-real-lease"), &q, "runner");
    let toml_s = toml.display().to_string();
    let ch = plain.with(&["--config", &toml_s, "--lock", "kubernetes"]);
    let name = lease_name(&plain);
    seed(
        &server,
        "sha256:1111111111111111111111111111111111111111111111111111111111111111",
    );

    assert!(server.get(&LEASE, LEASE_NS, &name).is_none());
    let main_digest = first_deploy(&ch, &q);
    let after_first = server
        .get(&LEASE, LEASE_NS, &name)
        .expect("the first write created it");
    assert!(
        after_first["spec"].get("holderIdentity").is_none(),
        "released: {after_first}"
    );

    let g = q.enqueue(7, &[("k8s/app.yaml", &app(7))]);
    deploy(&ch, &g);
    q.end(&g);
    let rv_before =
        server.get(&LEASE, LEASE_NS, &name).expect("lease")["metadata"]["resourceVersion"].clone();

    // Watch the Lease on the real server while the restore runs.
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (r, (seen, durations)) = std::thread::scope(|s| {
        let watcher = s.spawn(|| {
            let mut seen: Vec<Option<String>> = Vec::new();
            let mut durations: Vec<i64> = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let lease = server.get(&LEASE, LEASE_NS, &name);
                let spec = lease.as_ref().map(|l| &l["spec"]);
                let h = spec.and_then(|s| s["holderIdentity"].as_str().map(str::to_owned));
                if h.is_some() {
                    let d = spec.and_then(|s| s["leaseDurationSeconds"].as_i64());
                    if let Some(d) = d.filter(|d| durations.last() != Some(d)) {
                        durations.push(d);
                    }
                }
                if seen.last() != Some(&h) {
                    seen.push(h);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            (seen, durations)
        });
        let r = ch.run_env(&["reconcile"], &[("USER", "kube-test")]);
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        (r, watcher.join().expect("watcher"))
    });
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let j = r.json();
    assert_eq!(moves(&j)[0]["action"], "restore", "{j}");
    assert_eq!(plain.digest("latest"), Some(main_digest));
    eprintln!("Lease holders seen on the real server during the restore: {seen:?}; leaseDurationSeconds while held: {durations:?}");
    // The write hold (channel/fence.rs): before the channel PUT the holder declares two TTLs
    // (the default TTL is 60 s), so a late landing of the PUT falls inside its hold.
    assert!(
        durations.contains(&120),
        "a write hold of 120 s was declared on the real server: {durations:?}"
    );
    let ours: Vec<&String> = seen.iter().flatten().collect();
    assert_eq!(ours.len(), 1, "held by this run only: {seen:?}");
    assert!(
        ours[0].starts_with("kube-test@"),
        "the run's identity: {ours:?}"
    );
    let released = server.get(&LEASE, LEASE_NS, &name).expect("lease");
    assert!(
        released["spec"].get("holderIdentity").is_none(),
        "released at the end: {released}"
    );
    assert_eq!(released["spec"]["leaseDurationSeconds"], 1, "{released}");
    assert_ne!(
        released["metadata"]["resourceVersion"], rv_before,
        "the run claimed and released it"
    );
    assert!(
        released["spec"]["leaseTransitions"].as_i64() >= Some(1),
        "the run's claim was a transition: {released}"
    );
    // The restore nudged the consumer as the guard (the Role allows exactly this patch).
    let src = server
        .get(&OCI_REPOSITORY, FLUX_NS, SOURCE)
        .expect("source");
    assert!(
        src["metadata"]["annotations"][REQUESTED_AT].is_string(),
        "{src}"
    );
    assert!(
        q.refs_under("refs/mainline/lock/").is_empty(),
        "the git-ref lock was not used"
    );
    let s = ch.status(0);
    assert!(
        field(&s, "lock").is_some_and(|l| l.starts_with("kubernetes") && l.contains("free")),
        "{s}"
    );
}

#[test]
fn deploy_wait_passes_once_flux_applied_the_candidate_on_a_real_server() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (server, toml) = cluster(tmp.path());
    let mut q = Queue::new(tmp.path());
    let plain = Channel::new(&registry_store("kube-real-wait"), &q, "runner");
    let d = first_deploy(&plain, &q);
    seed(&server, &d);
    let toml_s = toml.display().to_string();
    let ch = plain.with(&["--config", &toml_s]);
    let g = q.enqueue(7, &[("k8s/app.yaml", &app(7))]);
    let candidate = plain.push_artifact(&g.head);

    let r = std::thread::scope(|s| {
        // Flux: once asked (the annotation), fetch and apply the candidate 2 s later.
        s.spawn(|| {
            let until = Instant::now() + Duration::from_secs(30);
            let token = loop {
                let o = server
                    .get(&OCI_REPOSITORY, FLUX_NS, SOURCE)
                    .expect("source");
                if let Some(t) = o["metadata"]["annotations"][REQUESTED_AT].as_str() {
                    break t.to_owned();
                }
                assert!(
                    Instant::now() < until,
                    "mainline never asked Flux to reconcile"
                );
                std::thread::sleep(Duration::from_millis(20));
            };
            std::thread::sleep(Duration::from_secs(2));
            for (res, f) in [
                (&OCI_REPOSITORY, "flux/ocirepository_ready"),
                (&KUSTOMIZATION, "flux/kustomization_ready"),
            ] {
                let mut st = status_at(f, &candidate);
                st["lastHandledReconcileAt"] = json!(token);
                server.write_status(res, FLUX_NS, SOURCE, &st);
            }
        });
        ch.run(&[
            "deploy",
            "--candidate",
            "--group",
            &g.id,
            "--commit",
            &g.head,
            "--wait",
            "15s",
        ])
    });
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let j = r.json();
    assert_eq!(field(&j, "final_verdict"), Some("CANDIDATE"), "{j}");
    let wait = &j["wait"];
    eprintln!("deploy --wait 15s on a real API server (Flux applies 2 s after the nudge): {wait}");
    assert_eq!(wait["applied"], true, "{j}");
    let elapsed = wait["elapsed_ms"].as_u64().expect("elapsed_ms");
    assert!(
        (1500..15_000).contains(&elapsed),
        "waited for Flux, not the deadline: {elapsed} ms"
    );
    let src = server
        .get(&OCI_REPOSITORY, FLUX_NS, SOURCE)
        .expect("source");
    assert_eq!(
        src["status"]["lastHandledReconcileAt"], src["metadata"]["annotations"][REQUESTED_AT],
        "the token the run wrote is the one Flux echoed"
    );
}

/// A Lease held by `holder`, renewed `ago` ago for `secs`, written as the admin with
/// server-side apply (created, or replaced in place).
fn put_foreign_lease(
    server: &ApiServer,
    name: &str,
    holder: &str,
    ago: Duration,
    secs: i64,
) -> Value {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64;
    let renewed =
        mainline_kube::lease::micro_time(mainline_core::Timestamp(now_ms - ago.as_millis() as i64));
    server.apply(
        &json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name, "namespace": LEASE_NS},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": secs,
                     "acquireTime": renewed, "renewTime": renewed, "leaseTransitions": 3}
        }),
        "test",
    )
}

#[test]
fn a_live_foreign_lease_on_a_real_server_stops_writers_and_an_expired_one_is_taken_over() {
    const OTHER: &str = "mainline-guard-7c9d8f6b5-x2x9q";
    let tmp = tempfile::tempdir().expect("tempdir");
    let (server, toml) = cluster(tmp.path());
    let mut q = Queue::new(tmp.path());
    let plain = Channel::new(&registry_store("kube-real-busy"), &q, "runner");
    let main_digest = first_deploy(&plain, &q);
    let g = q.enqueue(7, &[("k8s/app.yaml", &app(7))]);
    let candidate = deploy(&plain, &g);
    q.end(&g);
    seed(&server, &candidate);
    let toml_s = toml.display().to_string();
    let ch = plain.with(&[
        "--config",
        &toml_s,
        "--lock",
        "kubernetes",
        "--lock-wait",
        "1s",
    ]);
    let name = lease_name(&plain);

    put_foreign_lease(&server, &name, OTHER, Duration::ZERO, 3600);
    let seeded = server.get(&LEASE, LEASE_NS, &name).expect("seeded");
    let r = ch.run(&["reconcile"]);
    assert_eq!(
        r.code, 6,
        "unavailable: retry later\n{}\n{}",
        r.stdout, r.stderr
    );
    assert!(r.stderr.contains(OTHER), "names the holder: {}", r.stderr);
    assert_eq!(
        plain.digest("latest"),
        Some(candidate.clone()),
        "nothing written"
    );
    assert_eq!(
        server.get(&LEASE, LEASE_NS, &name),
        Some(seeded.clone()),
        "the Lease is untouched"
    );
    let st = ch.status(3);
    let lock = field(&st, "lock").expect("lock");
    assert!(
        lock.starts_with("kubernetes") && lock.contains(OTHER),
        "{lock}"
    );

    // The holder died an hour ago (by its renewTime): this run takes its Lease over, after
    // watching the record unchanged for its duration (2 s) — the remote renewTime is never
    // compared with our clock (issue 18, item 4).
    put_foreign_lease(&server, &name, OTHER, Duration::from_secs(3600), 2);
    let patient = plain.with(&[
        "--config",
        &toml_s,
        "--lock",
        "kubernetes",
        "--lock-wait",
        "10s",
    ]);
    let start = std::time::Instant::now();
    let r = patient.run_env(&["reconcile"], &[("USER", "kube-test")]);
    let took = start.elapsed();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        took >= Duration::from_secs(2),
        "took over after watching one duration, not at once: {took:?}"
    );
    assert_eq!(moves(&r.json())[0]["action"], "restore", "{}", r.stdout);
    assert_eq!(plain.digest("latest"), Some(main_digest));
    let after = server.get(&LEASE, LEASE_NS, &name).expect("lease");
    assert_eq!(
        after["spec"]["leaseTransitions"], 4,
        "one more hand-over: {after}"
    );
    assert!(
        after["spec"].get("holderIdentity").is_none(),
        "released: {after}"
    );
}

#[test]
fn status_reads_what_flux_wrote_on_a_real_server_and_a_wait_flux_never_meets_exits_10() {
    const BEFORE: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const CONSUMER: &str = "flux-system/app-manifests";
    let tmp = tempfile::tempdir().expect("tempdir");
    let (server, toml) = cluster(tmp.path());
    let mut q = Queue::new(tmp.path());
    let plain = Channel::new(&registry_store("kube-real-status"), &q, "runner");
    let d = first_deploy(&plain, &q);
    seed(&server, &d);
    let toml_s = toml.display().to_string();
    let ch = plain.with(&["--config", &toml_s]);
    let applied = |what: &str, state: &str| -> String {
        let s = ch.status(0);
        let a = s["applied"]
            .as_array()
            .unwrap_or_else(|| panic!("{what}: no applied in {s}"));
        assert_eq!(a.len(), 1, "{s}");
        assert_eq!(a[0]["consumer"], CONSUMER, "{s}");
        assert_eq!(a[0]["state"], state, "{what}: {s}");
        // The versions the cluster serves and the client discovered (issue 18 item 2).
        assert_eq!(
            a[0]["api_versions"],
            serde_json::json!([
                "source.toolkit.fluxcd.io/v1",
                "kustomize.toolkit.fluxcd.io/v1"
            ]),
            "{s}"
        );
        a[0]["detail"].as_str().expect("detail").to_owned()
    };

    assert_eq!(applied("Flux runs the channel's digest", "APPLIED"), "");
    server.write_status(
        &OCI_REPOSITORY,
        FLUX_NS,
        SOURCE,
        &status_at("flux/ocirepository_ready", BEFORE),
    );
    let detail = applied("Flux is on another digest", "PENDING");
    assert!(
        detail.contains(BEFORE) && detail.contains(&d),
        "names both digests: {detail}"
    );
    // Flux's own failing status, stored through the CRD's schema (conditions replace).
    let mut failing = fixture("flux/ocirepository_fetch_failed")["status"].clone();
    // source-controller stopped retrying (no Reconciling=True): only then is it STUCK.
    failing["conditions"]
        .as_array_mut()
        .expect("conditions")
        .retain(|c| c["type"] != "Reconciling");
    server.write_status(&OCI_REPOSITORY, FLUX_NS, SOURCE, &failing);
    let ready = failing["conditions"]
        .as_array()
        .expect("conditions")
        .iter()
        .find(|c| c["type"] == "Ready")
        .expect("a Ready condition")
        .clone();
    let detail = applied("the source fails to fetch", "STUCK");
    for quoted in [&ready["reason"], &ready["message"]] {
        assert!(
            detail.contains(quoted.as_str().expect("text")),
            "quotes Flux's {quoted}: {detail}"
        );
    }

    // The gate: Flux stays on the old digest, so --wait gives up at its deadline with exit 10.
    server.write_status(
        &OCI_REPOSITORY,
        FLUX_NS,
        SOURCE,
        &status_at("flux/ocirepository_ready", &d),
    );
    let g = q.enqueue(7, &[("k8s/app.yaml", &app(7))]);
    let start = Instant::now();
    let r = ch.run(&[
        "deploy",
        "--candidate",
        "--group",
        &g.id,
        "--commit",
        &g.head,
        "--wait",
        "2s",
    ]);
    let took = start.elapsed();
    assert_eq!(r.code, 10, "{}\n{}", r.stdout, r.stderr);
    let j = r.json();
    eprintln!(
        "deploy --wait 2s on a real API server, Flux never applies: exit 10 after {took:?}: {}",
        j["wait"]
    );
    assert_eq!(j["wait"]["applied"], false, "{j}");
    assert_eq!(j["applied"][0]["state"], "PENDING", "{j}");
    assert!(took < Duration::from_secs(15), "{took:?}");
}
