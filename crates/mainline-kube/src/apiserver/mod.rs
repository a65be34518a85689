//! A real Kubernetes API server for tests (feature `apiserver`): the upstream kube-apiserver
//! over an embedded etcd, built from `tests/kube/` (a Go program) and started per test on
//! loopback with its own CA, bearer-token authentication and the RBAC authorizer only. It is
//! the judge the fake (`fake`) cannot be: what a cluster accepts, rejects and enforces —
//! resourceVersion conflicts, CRD schemas, status subresources, RBAC — is the real code's.
//!
//! The binary comes from `$MAINLINE_KUBE_APISERVER` (scripts/test.sh builds it and sets it).
//! Without it a test fails saying how to build it: nothing skips.
//!
//! The admin token (system:masters) is used only by the fixture, to install CRDs and the
//! shipped manifests and to play Flux's controllers (writing status). Code under test gets a
//! ServiceAccount token from the TokenRequest API, so only what `deploy/kubernetes/rbac.yaml`
//! grants is allowed.
//!
//! Invariants: the server listens on loopback only; it stops when the [`ApiServer`] is dropped
//! and also when the test process dies (its stdin closes: `--exit-on-stdin-eof`).
//! Must never: print a token; be compiled into a release build.

mod apply;
mod process;

use crate::api::ApiResource;
use crate::connect::{Connection, Credentials};
use crate::secret::Secret;
use crate::KubeClient;
use process::ServerProcess;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The environment variable naming the built `tests/kube` server.
pub const BINARY_ENV: &str = "MAINLINE_KUBE_APISERVER";

/// The shipped guard's ServiceAccount (`deploy/kubernetes/serviceaccount.yaml`).
pub const GUARD_NAMESPACE: &str = "mainline";
pub const GUARD_SERVICE_ACCOUNT: &str = "mainline-guard";
/// Where Flux is installed (and the shipped trigger Role is).
pub const FLUX_NAMESPACE: &str = "flux-system";

/// A running API server, its CA and an admin client.
pub struct ApiServer {
    process: ServerProcess,
    server: String,
    ca_pem: Vec<u8>,
    admin: reqwest::blocking::Client,
    admin_token: Secret,
    client_identity: Option<(PathBuf, PathBuf)>,
}

/// What an admin request answered.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

/// The repository root (for `tests/kube/crds` and `deploy/kubernetes`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

impl ApiServer {
    /// Start a server whose files live under `dir` (a fresh temporary directory). Panics with
    /// the server's own diagnostics if it does not become ready.
    pub fn start(dir: &Path) -> ApiServer {
        let ready = process::start(dir);
        crate::client::install_crypto_provider();
        let certs = reqwest::Certificate::from_pem_bundle(&ready.ca_pem)
            .expect("the test server's CA is PEM");
        let admin = reqwest::blocking::Client::builder()
            .tls_certs_only(certs)
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("an HTTP client");
        ApiServer {
            process: ready.process,
            server: ready.server,
            ca_pem: ready.ca_pem,
            admin,
            admin_token: ready.admin_token,
            client_identity: ready.client_identity,
        }
    }

    /// Start a server with Flux's CRDs and namespace (`flux-system`, where the shipped Role
    /// for the trigger lives), then `deploy/kubernetes/` applied as shipped.
    pub fn start_with_shipped(dir: &Path) -> ApiServer {
        let s = ApiServer::start(dir);
        s.install_crds();
        s.ensure_namespace(FLUX_NAMESPACE);
        s.apply_shipped();
        s
    }

    /// `https://127.0.0.1:PORT`.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The CA that signed the serving certificate (PEM).
    pub fn ca_pem(&self) -> &[u8] {
        &self.ca_pem
    }

    /// A client certificate and its key (PEM files) that the server trusts, for user
    /// `mainline-cert-user` in group `mainline-cert-group` (no RBAC grant: what it may do is
    /// up to the test).
    pub fn client_identity(&self) -> (&Path, &Path) {
        let (cert, key) = self.client_identity.as_ref().unwrap_or_else(|| {
            panic!(
                "the test API server at $MAINLINE_KUBE_APISERVER writes no client certificate: \
                 it is older than tests/kube; rebuild it (scripts/test.sh does)"
            )
        });
        (cert, key)
    }

    /// The server's process id (for tests that check it is gone).
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// One request as the admin; panics only if the server cannot be reached.
    pub fn admin_request(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Option<&Value>,
    ) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
        let mut req = self
            .admin
            .request(method, format!("{}{path}", self.server))
            .bearer_auth(self.admin_token.expose())
            .header("Accept", "application/json");
        if let Some(b) = body {
            req = req.header("Content-Type", content_type).body(b.to_string());
        }
        let resp = req
            .send()
            .unwrap_or_else(|e| panic!("test API server unreachable on {path}: {e}"));
        let status = resp.status().as_u16();
        let text = resp.text().unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer { status, body }
    }

    fn admin_ok(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Option<&Value>,
    ) -> Value {
        let a = self.admin_request(method, path, content_type, body);
        assert!(
            (200..300).contains(&a.status),
            "{method} {path} as admin answered {}: {}",
            a.status,
            a.body
        );
        a.body
    }

    /// Create `obj` (its metadata names the namespace) as the admin.
    pub fn create(&self, res: &ApiResource, obj: &Value) -> Value {
        let ns = obj["metadata"]["namespace"]
            .as_str()
            .expect("a namespaced object names its namespace");
        self.admin_ok(
            "POST",
            &res.collection_path(ns),
            "application/json",
            Some(obj),
        )
    }

    /// The object as stored, or `None` on 404.
    pub fn get(&self, res: &ApiResource, ns: &str, name: &str) -> Option<Value> {
        let a = self.admin_request("GET", &res.object_path(ns, name), "", None);
        match a.status {
            404 => None,
            200 => Some(a.body),
            s => panic!("GET {} {ns}/{name} answered {s}: {}", res.kind, a.body),
        }
    }

    /// Write `status` through the status subresource, as Flux's controllers do (a merge patch
    /// of `.status`); returns the stored object.
    pub fn write_status(&self, res: &ApiResource, ns: &str, name: &str, status: &Value) -> Value {
        self.admin_ok(
            "PATCH",
            &format!("{}/status", res.object_path(ns, name)),
            "application/merge-patch+json",
            Some(&json!({ "status": status })),
        )
    }

    /// Make the CRD of `res` serve (and store) `version` only, as Flux before 2.6 served
    /// OCIRepository (`v1beta2`), then wait until discovery no longer lists it at any other
    /// version. Objects created before stay readable (at `version`).
    pub fn serve_only(&self, res: &ApiResource, version: &str) {
        let path = format!(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{}",
            res.qualified()
        );
        let crd = self.admin_ok("GET", &path, "", None);
        let versions = crd["spec"]["versions"]
            .as_array()
            .expect("a CRD lists its versions");
        assert!(
            versions.iter().any(|v| v["name"] == version),
            "the CRD of {} has no version {version}",
            res.kind
        );
        let ops: Vec<Value> = versions
            .iter()
            .enumerate()
            .flat_map(|(i, v)| {
                let this = v["name"] == version;
                [
                    json!({"op": "replace", "path": format!("/spec/versions/{i}/served"), "value": this}),
                    json!({"op": "replace", "path": format!("/spec/versions/{i}/storage"), "value": this}),
                ]
            })
            .collect();
        self.admin_ok(
            "PATCH",
            &path,
            "application/json-patch+json",
            Some(&Value::Array(ops)),
        );
        let until = Instant::now() + Duration::from_secs(30);
        for v in res.versions.iter().filter(|v| **v != version) {
            loop {
                let a = self.admin_request("GET", &res.discovery_path(v), "", None);
                let listed = a.status == 200
                    && a.body["resources"]
                        .as_array()
                        .is_some_and(|r| r.iter().any(|r| r["name"] == res.plural));
                if !listed {
                    break;
                }
                assert!(
                    Instant::now() < until,
                    "discovery still lists {} at {v}",
                    res.plural
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// Create a namespace (idempotent).
    pub fn ensure_namespace(&self, ns: &str) {
        let a = self.admin_request(
            "POST",
            "/api/v1/namespaces",
            "application/json",
            Some(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})),
        );
        assert!(
            a.status == 201 || a.status == 409,
            "creating namespace {ns}: {} {}",
            a.status,
            a.body
        );
    }

    /// A fresh token of ServiceAccount `ns/name` from the TokenRequest API (one hour).
    pub fn service_account_token(&self, ns: &str, name: &str) -> Secret {
        let body = self.admin_ok(
            "POST",
            &format!("/api/v1/namespaces/{ns}/serviceaccounts/{name}/token"),
            "application/json",
            Some(&json!({
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": 3600}
            })),
        );
        Secret::new(
            body["status"]["token"]
                .as_str()
                .expect("a TokenRequest answer carries status.token"),
        )
    }

    /// The shipped guard's token.
    pub fn guard_token(&self) -> Secret {
        self.service_account_token(GUARD_NAMESPACE, GUARD_SERVICE_ACCOUNT)
    }

    /// Whether the holder of `token` may `verb` `resource` (`group`) named `name` in `ns`, as
    /// the server's RBAC authorizer answers a SelfSubjectAccessReview.
    pub fn can(
        &self,
        token: &Secret,
        verb: &str,
        group: &str,
        resource: &str,
        ns: &str,
        name: &str,
    ) -> bool {
        let review = json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {
                "verb": verb, "group": group, "resource": resource,
                "namespace": ns, "name": name
            }}
        });
        let resp = self
            .admin
            .post(format!(
                "{}/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                self.server
            ))
            .bearer_auth(token.expose())
            .header("Content-Type", "application/json")
            .body(review.to_string())
            .send()
            .expect("test API server reachable");
        let status = resp.status().as_u16();
        let body: Value =
            serde_json::from_str(&resp.text().unwrap_or_default()).unwrap_or(Value::Null);
        assert_eq!(
            status, 201,
            "SelfSubjectAccessReview answered {status}: {body}"
        );
        body["status"]["allowed"] == json!(true)
    }

    /// Wait (at most 30 s) until RBAC grants `token` `verb` on `resource`: bindings reach the
    /// authorizer through an informer, a moment after they are written.
    pub fn wait_allowed(
        &self,
        token: &Secret,
        verb: &str,
        group: &str,
        resource: &str,
        ns: &str,
        name: &str,
    ) {
        let until = Instant::now() + Duration::from_secs(30);
        while !self.can(token, verb, group, resource, ns, name) {
            assert!(
                Instant::now() < until,
                "RBAC never allowed {verb} {resource}.{group} {ns}/{name}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A connection as `token`, trusting this server's CA only.
    pub fn connection(&self, token: &Secret) -> Connection {
        Connection {
            server: self.server.clone(),
            origin: "test kube-apiserver".to_owned(),
            namespace: None,
            ca_pem: Some(self.ca_pem.clone()),
            client_cert_pem: None,
            client_key_pem: None,
            credentials: Credentials::Token(token.clone()),
            insecure_skip_tls_verify: false,
            proxy_url: None,
        }
    }

    /// A client as `token`.
    pub fn client(&self, token: &Secret) -> Arc<KubeClient> {
        Arc::new(KubeClient::new(self.connection(token)).expect("a client for the test server"))
    }

    /// Write a kubeconfig (and its CA file beside it) that reaches this server as `token`.
    pub fn write_kubeconfig(&self, path: &Path, token: &Secret) {
        let ca = path.with_extension("ca.pem");
        std::fs::write(&ca, &self.ca_pem).expect("write the CA");
        let text = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: test\nclusters:\n  - name: test\n    \
             cluster:\n      server: {}\n      certificate-authority: {}\ncontexts:\n  - name: \
             test\n    context:\n      cluster: test\n      user: guard\nusers:\n  - name: \
             guard\n    user:\n      token: {}\n",
            self.server,
            ca.display(),
            token.expose()
        );
        std::fs::write(path, text).expect("write the kubeconfig");
    }
}
