//! The Kubernetes side of the CLI tests: mainline-kube's fake API server (HTTPS, with the
//! throwaway test CA) reached the way the binary reaches a real cluster — a kubeconfig file
//! named by the `[kubernetes]` table of a mainline.toml passed with `--config` — and Flux
//! objects built from the documented fixtures in crates/mainline-kube/fixtures/.
//!
//! Must never: point at anything but loopback.
#![allow(dead_code)]

use crate::support::queue::Channel;
use mainline_kube::api::{KUSTOMIZATION, LEASE, OCI_REPOSITORY};
use mainline_kube::fake::{fixture, FakeKube, TEST_CA_PEM};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The bearer token the fake accepts (written into the kubeconfig, never into mainline.toml).
pub const TOKEN: &str = "cli-test-token-5e1f0c2a";
/// Where the Flux objects live.
pub const NS: &str = "flux-system";
/// The OCIRepository that follows the channel, and the Kustomization applying it.
pub const SOURCE: &str = "app";
pub const KS: &str = "app";
/// Where the channel lock's Lease lives (`lease_namespace`).
pub const LEASE_NS: &str = "mainline";
/// `namespace/name` of the OCIRepository, as reports name a consumer.
pub const CONSUMER: &str = "flux-system/app";

/// A fake API server over TLS that accepts [`TOKEN`].
pub fn start() -> FakeKube {
    let fake = FakeKube::start_tls();
    fake.accept_token(TOKEN);
    fake
}

/// An `https://127.0.0.1:PORT` nothing listens on (bound, then closed).
pub fn refused_server() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let port = l.local_addr().expect("bound address").port();
    drop(l);
    format!("https://127.0.0.1:{port}")
}

/// Write a kubeconfig for `server` (trusting the test CA, sending [`TOKEN`]) and a mainline.toml
/// whose `[kubernetes]` table names the consumer through it, with `lease_namespace` =
/// [`LEASE_NS`]; returns the mainline.toml path.
pub fn config(dir: &Path, name: &str, server: &str) -> PathBuf {
    config_with(dir, name, server, Some(LEASE_NS), None)
}

/// [`config`] with `lease_namespace` (omitted when `None`) and the kubeconfig context's
/// `namespace` (omitted when `None`) chosen.
pub fn config_with(
    dir: &Path,
    name: &str,
    server: &str,
    lease_namespace: Option<&str>,
    context_namespace: Option<&str>,
) -> PathBuf {
    std::fs::create_dir_all(dir).expect("mkdir");
    let ca = dir.join(format!("{name}-ca.pem"));
    std::fs::write(&ca, TEST_CA_PEM).expect("write CA");
    let kubeconfig = dir.join(format!("{name}-kubeconfig.yaml"));
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: test\nclusters:\n  - name: test\n    \
             cluster:\n      server: {server}\n      certificate-authority: {ca}\ncontexts:\n  - \
             name: test\n    context:\n      cluster: test\n      user: ci\n{ns}users:\n  - \
             name: ci\n    user:\n      token: {TOKEN}\n",
            ca = ca.display(),
            ns = context_namespace
                .map(|n| format!("      namespace: {n}\n"))
                .unwrap_or_default(),
        ),
    )
    .expect("write kubeconfig");
    let toml = dir.join(format!("{name}-mainline.toml"));
    std::fs::write(
        &toml,
        format!(
            "[kubernetes]\n{lease}\n[[kubernetes.consumers]]\nnamespace = \"{NS}\"\n\
             oci_repository = \"{SOURCE}\"\nkustomizations = [\"{KS}\"]\nkubeconfig = \"{}\"\n",
            kubeconfig.display(),
            lease = lease_namespace
                .map(|n| format!("lease_namespace = \"{n}\"\n"))
                .unwrap_or_default(),
        ),
    )
    .expect("write mainline.toml");
    toml
}

/// `ch` reading `[kubernetes]` from `toml` (plus `flags`).
pub fn with_config(ch: &Channel, toml: &Path, flags: &[&str]) -> Channel {
    let toml = toml.display().to_string();
    let mut all = vec!["--config", toml.as_str()];
    all.extend_from_slice(flags);
    ch.with(&all)
}

/// Flux's revision string for the channel tag at `digest`.
pub fn revision(digest: &str) -> String {
    format!("latest@{digest}")
}

fn place(mut v: Value, name: &str) -> Value {
    v["metadata"]["namespace"] = json!(NS);
    v["metadata"]["name"] = json!(name);
    v
}

/// The OCIRepository, Ready, having fetched `digest`.
pub fn source_at(digest: &str) -> Value {
    let mut v = place(fixture("flux/ocirepository_ready"), SOURCE);
    v["status"]["artifact"]["revision"] = json!(revision(digest));
    v
}

/// The Kustomization, Ready, having applied `digest`.
pub fn kustomization_at(digest: &str) -> Value {
    let mut v = place(fixture("flux/kustomization_ready"), KS);
    v["status"]["lastAppliedRevision"] = json!(revision(digest));
    v["status"]["lastAttemptedRevision"] = json!(revision(digest));
    v
}

/// Seed both objects at `digest`.
pub fn seed(fake: &FakeKube, digest: &str) {
    fake.put_object(&OCI_REPOSITORY, source_at(digest));
    fake.put_object(&KUSTOMIZATION, kustomization_at(digest));
}

/// Play Flux: after the next reconcile request with a new token, wait `delay`, then report
/// both objects at `digest` (and echo the token in `status.lastHandledReconcileAt`).
pub fn flux_applies_after(fake: &FakeKube, delay: Duration, digest: &str) {
    fake.react_to_reconcile(
        NS,
        SOURCE,
        delay,
        vec![
            (
                &OCI_REPOSITORY,
                NS,
                SOURCE,
                source_at(digest)["status"].clone(),
            ),
            (
                &KUSTOMIZATION,
                NS,
                KS,
                kustomization_at(digest)["status"].clone(),
            ),
        ],
    );
}

/// The OCIRepository as stored now.
pub fn source_object(fake: &FakeKube) -> Value {
    fake.object(&OCI_REPOSITORY, NS, SOURCE)
        .expect("the OCIRepository exists")
}

/// The name of `ch`'s channel-lock Lease, derived as the binary derives it.
pub fn lease_name(ch: &Channel) -> String {
    let reference: mainline_store::Reference =
        ch.reference().parse().expect("a valid channel reference");
    let mainline_store::ReferenceTarget::Tag(tag) = reference.target else {
        panic!("a channel is a tag");
    };
    let key = mainline::channel::refs::ChannelKey::new(&reference.location, &tag);
    mainline_kube::channel_lease_name(key.as_str())
}

/// The channel's Lease as stored now.
pub fn lease(fake: &FakeKube, ch: &Channel) -> Option<Value> {
    fake.object(&LEASE, LEASE_NS, &lease_name(ch))
}

/// Store a Lease on `ch`'s channel held by `holder`, last renewed `renewed_ago` ago, for
/// `duration_secs`, with `transitions` hand-overs so far.
pub fn seed_lease(
    fake: &FakeKube,
    ch: &Channel,
    holder: &str,
    renewed_ago: Duration,
    duration_secs: i64,
    transitions: i64,
) -> Value {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64;
    let renewed = mainline_kube::lease::micro_time(mainline_core::Timestamp(
        now_ms - renewed_ago.as_millis() as i64,
    ));
    let mut v = fixture("kube/lease");
    v["metadata"]["namespace"] = json!(LEASE_NS);
    v["metadata"]["name"] = json!(lease_name(ch));
    v["spec"] = json!({
        "holderIdentity": holder,
        "leaseDurationSeconds": duration_secs,
        "acquireTime": renewed,
        "renewTime": renewed,
        "leaseTransitions": transitions,
    });
    fake.put_object(&LEASE, v);
    lease(fake, ch).expect("seeded")
}

/// Every distinct value `probe` returned while `body` ran (probing every 2 ms on another
/// thread), with `body`'s result.
pub fn watching<T: PartialEq + Send, R>(
    probe: impl Fn() -> T + Sync,
    body: impl FnOnce() -> R,
) -> (R, Vec<T>) {
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let watcher = s.spawn(|| {
            let mut seen: Vec<T> = Vec::new();
            loop {
                let done = stop.load(std::sync::atomic::Ordering::SeqCst);
                let v = probe();
                if seen.last() != Some(&v) {
                    seen.push(v);
                }
                if done {
                    return seen;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        let r = body();
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        (r, watcher.join().expect("the watcher thread"))
    })
}

/// Wait until `f` returns `Some`, at most `limit`.
pub fn eventually<T>(limit: Duration, f: impl Fn() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
