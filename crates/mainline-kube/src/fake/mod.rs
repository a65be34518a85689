//! A local fake Kubernetes API server for tests (feature `fake`): axum on `127.0.0.1:0` (plain
//! HTTP, or HTTPS with the throwaway CA in `fixtures/tls/`), on a background thread with its
//! own tokio runtime. It serves the three resources mainline uses —
//! `source.toolkit.fluxcd.io/v1` ocirepositories, `kustomize.toolkit.fluxcd.io/v1`
//! kustomizations, `coordination.k8s.io/v1` leases — with the wire behaviour described in
//! `routes`, builds every error from the `Status` templates in `fixtures/kube/`, and can
//! enforce RBAC grants (e.g. parsed from `deploy/kubernetes/rbac.yaml`), misbehave on demand
//! ([`Failure`]), and play Flux's controllers after a reconcile request
//! ([`FakeKube::react_to_reconcile`]).
//!
//! Invariants: it listens on loopback only; scripted failures are consumed one per request.
//! Must never: be compiled into a release build (it exists only behind the `fake` feature).

mod patch;
mod routes;
mod schema;
mod state;
mod tls;
mod writes;

pub use state::{Failure, Grant, Recorded};

use crate::api::{ApiResource, KUSTOMIZATION, LEASE, OCI_REPOSITORY};
use crate::connect::{Connection, Credentials};
use crate::secret::Secret;
use crate::KubeClient;
use axum::routing::any;
use axum::Router;
use routes::Shared;
use serde_json::Value;
use state::{Key, Reaction, State};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The resources the fake serves.
pub(crate) const SERVED: [&ApiResource; 3] = [&OCI_REPOSITORY, &KUSTOMIZATION, &LEASE];

/// The throwaway CA that signed the fake's HTTPS certificate.
pub const TEST_CA_PEM: &[u8] = include_bytes!("../../fixtures/tls/throwaway-ca.pem");
/// A throwaway CA that signed nothing the fake serves (for "wrong CA" tests).
pub const OTHER_CA_PEM: &[u8] = include_bytes!("../../fixtures/tls/throwaway-other-ca.pem");

const FIXTURES: [(&str, &str); 19] = [
    (
        "flux/ocirepository_ready",
        include_str!("../../fixtures/flux/ocirepository_ready.json"),
    ),
    (
        "flux/ocirepository_fetch_failed",
        include_str!("../../fixtures/flux/ocirepository_fetch_failed.json"),
    ),
    (
        "flux/ocirepository_verification_failed",
        include_str!("../../fixtures/flux/ocirepository_verification_failed.json"),
    ),
    (
        "flux/kustomization_ready",
        include_str!("../../fixtures/flux/kustomization_ready.json"),
    ),
    (
        "flux/kustomization_health_check_failed",
        include_str!("../../fixtures/flux/kustomization_health_check_failed.json"),
    ),
    ("kube/lease", include_str!("../../fixtures/kube/lease.json")),
    (
        "kube/status_conflict",
        include_str!("../../fixtures/kube/status_conflict.json"),
    ),
    (
        "kube/status_already_exists",
        include_str!("../../fixtures/kube/status_already_exists.json"),
    ),
    (
        "kube/status_not_found",
        include_str!("../../fixtures/kube/status_not_found.json"),
    ),
    (
        "kube/status_forbidden",
        include_str!("../../fixtures/kube/status_forbidden.json"),
    ),
    (
        "kube/status_unauthorized",
        include_str!("../../fixtures/kube/status_unauthorized.json"),
    ),
    (
        "kube/status_unsupported_media_type",
        include_str!("../../fixtures/kube/status_unsupported_media_type.json"),
    ),
    (
        "kube/status_bad_request",
        include_str!("../../fixtures/kube/status_bad_request.json"),
    ),
    (
        "kube/status_invalid",
        include_str!("../../fixtures/kube/status_invalid.json"),
    ),
    (
        "kube/status_internal_error",
        include_str!("../../fixtures/kube/status_internal_error.json"),
    ),
    (
        "kube/status_resource_not_served",
        include_str!("../../fixtures/kube/status_resource_not_served.json"),
    ),
    (
        "kube/status_gateway_timeout",
        include_str!("../../fixtures/kube/status_gateway_timeout.json"),
    ),
    (
        "tls/throwaway-ca",
        include_str!("../../fixtures/tls/throwaway-ca.pem"),
    ),
    (
        "tls/throwaway-other-ca",
        include_str!("../../fixtures/tls/throwaway-other-ca.pem"),
    ),
];

/// A fixture by name without extension, e.g. `flux/ocirepository_ready` (JSON fixtures only).
pub fn fixture(name: &str) -> Value {
    let text = FIXTURES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .unwrap_or_else(|| panic!("no fixture {name:?} in fixtures/"));
    serde_json::from_str(text).unwrap_or_else(|e| panic!("fixture {name} is not JSON: {e}"))
}

/// A `Status` template from `fixtures/kube/` with `{placeholders}` replaced in every string.
pub(crate) fn status_body(template: &str, vars: &[(&str, &str)]) -> Value {
    fn walk(v: &mut Value, vars: &[(&str, &str)]) {
        match v {
            Value::String(s) => {
                for (k, val) in vars {
                    *s = s.replace(k, val);
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| walk(x, vars)),
            Value::Object(o) => o.values_mut().for_each(|x| walk(x, vars)),
            _ => {}
        }
    }
    let mut v = fixture(&format!("kube/{template}"));
    walk(&mut v, vars);
    v
}

/// A running fake API server. Dropping it stops the server.
pub struct FakeKube {
    addr: SocketAddr,
    tls: bool,
    state: Shared,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl std::fmt::Debug for FakeKube {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeKube")
            .field("addr", &self.addr)
            .field("tls", &self.tls)
            .finish()
    }
}

fn key(resource: &ApiResource, namespace: &str, name: &str) -> Key {
    (
        resource.group.to_owned(),
        resource.plural.to_owned(),
        namespace.to_owned(),
        name.to_owned(),
    )
}

impl FakeKube {
    /// Start on plain HTTP.
    pub fn start() -> FakeKube {
        FakeKube::start_inner(false)
    }

    /// Start on HTTPS with the throwaway certificate (trust [`TEST_CA_PEM`]).
    pub fn start_tls() -> FakeKube {
        FakeKube::start_inner(true)
    }

    fn start_inner(tls: bool) -> FakeKube {
        let state: Shared = Arc::new(Mutex::new(State::new()));
        let app = Router::new()
            .route("/apis/{group}/{version}", any(routes::discovery))
            .route(
                "/apis/{group}/{version}/namespaces/{namespace}/{resource}",
                any(routes::collection),
            )
            .route(
                "/apis/{group}/{version}/namespaces/{namespace}/{resource}/{name}",
                any(routes::object),
            )
            .fallback(routes::fallback)
            .with_state(state.clone());
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("fake-kube".to_owned())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a current-thread tokio runtime builds");
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                        .await
                        .expect("binding 127.0.0.1:0 for the fake API server");
                    let addr = listener
                        .local_addr()
                        .expect("a bound socket has an address");
                    addr_tx
                        .send(addr)
                        .expect("the starting thread waits for the address");
                    let stop = async {
                        let _ = shutdown_rx.await;
                    };
                    // Not graceful: a request scripted to hang must not keep the server alive.
                    let serve = async move {
                        if tls {
                            let _ = axum::serve(tls::TlsListener::new(listener), app).await;
                        } else {
                            let _ = axum::serve(listener, app).await;
                        }
                    };
                    let serve = tokio::spawn(serve);
                    stop.await;
                    serve.abort();
                });
            })
            .expect("spawning the fake API server thread");
        let addr = addr_rx
            .recv()
            .expect("the fake API server thread reports its address");
        FakeKube {
            addr,
            tls,
            state,
            shutdown: Some(shutdown_tx),
        }
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Accept `token` as a bearer token.
    pub fn accept_token(&self, token: &str) {
        self.with(|s| s.tokens.insert(token.to_owned()));
    }

    /// A connection to this server with `token` (trusting the test CA when on HTTPS).
    pub fn connection(&self, token: &str) -> Connection {
        Connection {
            server: self.url(),
            origin: format!("fake API server {}", self.url()),
            namespace: None,
            ca_pem: self.tls.then(|| TEST_CA_PEM.to_vec()),
            client_cert_pem: None,
            client_key_pem: None,
            credentials: Credentials::Token(Secret::new(token)),
            insecure_skip_tls_verify: false,
            proxy_url: None,
        }
    }

    /// Accept `token` and build a client that sends it.
    pub fn client(&self, token: &str) -> Arc<KubeClient> {
        self.accept_token(token);
        Arc::new(KubeClient::new(self.connection(token)).expect("a client for the fake builds"))
    }

    /// Store `object` (a full JSON object with `metadata.namespace` and `metadata.name`) as
    /// `resource`, replacing any; returns its new `resourceVersion`.
    pub fn put_object(&self, resource: &ApiResource, mut object: Value) -> String {
        let ns = object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        assert!(
            !ns.is_empty() && !name.is_empty(),
            "put_object needs metadata.namespace and metadata.name"
        );
        self.with(|s| {
            let rv = s.bump();
            object["metadata"]["resourceVersion"] = Value::String(rv.clone());
            s.objects.insert(key(resource, &ns, &name), object);
            rv
        })
    }

    /// The stored object, if any.
    pub fn object(&self, resource: &ApiResource, namespace: &str, name: &str) -> Option<Value> {
        self.with(|s| s.objects.get(&key(resource, namespace, name)).cloned())
    }

    /// Replace an object's `status` (as its controller would), bumping its `resourceVersion`.
    pub fn set_status(&self, resource: &ApiResource, namespace: &str, name: &str, status: Value) {
        self.with(|s| {
            let rv = s.bump();
            let obj = s
                .objects
                .get_mut(&key(resource, namespace, name))
                .unwrap_or_else(|| panic!("set_status: no {} {namespace}/{name}", resource.kind));
            obj["status"] = status;
            obj["metadata"]["resourceVersion"] = Value::String(rv);
        });
    }

    /// After a PATCH sets a new `reconcile.fluxcd.io/requestedAt` on OCIRepository
    /// `namespace/name`, wait `delay`, then set each `(resource, namespace, name)`'s status as
    /// given, and echo the token in the OCIRepository's `status.lastHandledReconcileAt`.
    pub fn react_to_reconcile(
        &self,
        namespace: &str,
        name: &str,
        delay: Duration,
        updates: Vec<(&ApiResource, &str, &str, Value)>,
    ) {
        let updates = updates
            .into_iter()
            .map(|(r, ns, n, status)| (key(r, ns, n), status))
            .collect();
        self.with(|s| {
            s.reactions.insert(
                key(&OCI_REPOSITORY, namespace, name),
                Reaction { delay, updates },
            )
        });
    }

    /// Enforce RBAC: only requests some grant allows pass (others get 403 naming `user`).
    pub fn restrict_to(&self, user: &str, grants: Vec<Grant>) {
        self.with(|s| {
            s.user = user.to_owned();
            s.grants = Some(grants);
        });
    }

    /// Perform `failure` on the next `times` requests (after any already scripted).
    pub fn fail_next(&self, failure: Failure, times: usize) {
        self.with(|s| s.failures.extend(std::iter::repeat_n(failure, times)));
    }

    /// Every request served so far, in order.
    pub fn discovery_requests(&self) -> Vec<Recorded> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .discovery_log
            .clone()
    }

    /// Every object request so far (discovery requests are in
    /// [`FakeKube::discovery_requests`]).
    pub fn requests(&self) -> Vec<Recorded> {
        self.with(|s| s.log.clone())
    }
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
