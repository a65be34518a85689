//! One blocking exchange with the Kubernetes API, made by kube-rs: a resolved [`Connection`]
//! becomes a `kube::Config` (server, CA, client certificate, and the user's credentials:
//! token, rotated token file, `exec` plugin or `auth-provider`), and kube's client does TLS
//! (rustls with ring), authentication (running the plugin, caching its credential until it
//! expires, refreshing an OIDC id-token) and the HTTP. This module only builds the request
//! from an [`ApiCall`] (path, `application/merge-patch+json` for patches, `application/json`
//! for creates and updates) and maps the answer — a `Status` object for every non-2xx — to a
//! typed [`KubeError`].
//!
//! kube is async; mainline's executor is blocking. The client owns a current-thread tokio
//! runtime and blocks on it, so callers keep the blocking API they had.
//!
//! Invariants: a call never outlives its deadline (the remaining time bounds the whole
//! exchange, and a call whose deadline has passed is not sent); kube's own retry layer is off
//! (there are no retries here); quoted server messages are redacted.
//! Must never: send a request that is not in [`crate::api::API_CALLS`]; be built, called or
//! dropped on an async runtime thread (it owns a runtime): use `spawn_blocking`.

mod errors;
mod settings;

use crate::api::{ApiCall, ApiResource, Verb};
use crate::config::Cluster;
use crate::connect::{connect, Connection, Credentials, Environment};
use crate::error::{ConnectError, KubeError, ObjectName};
use errors::describe_auth;
use settings::{kube_config, Bearer};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// The content type of a JSON merge patch (RFC 7386), as the API server requires it.
pub const MERGE_PATCH: &str = "application/merge-patch+json";

/// A client for one API server.
pub struct KubeClient {
    server: String,
    origin: String,
    namespace: Option<String>,
    runtime: tokio::runtime::Runtime,
    client: kube::Client,
    /// Bearer tokens are sent by this module (see [`Bearer`]); everything else by kube-rs.
    bearer: Bearer,
    /// The version discovered for each resource with several ([`ApiResource::versions`]),
    /// keyed by `plural.group`.
    served: Mutex<HashMap<String, &'static str>>,
}

impl std::fmt::Debug for KubeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeClient")
            .field("server", &self.server)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl KubeClient {
    /// Resolve `cluster` in `env` and build a client for it.
    pub fn connect(cluster: &Cluster, env: &Environment) -> Result<KubeClient, ConnectError> {
        KubeClient::new(connect(cluster, env)?)
    }

    /// Build a client for a resolved connection.
    pub fn new(conn: Connection) -> Result<KubeClient, ConnectError> {
        install_crypto_provider();
        let client_error = |reason: String| ConnectError::Client {
            server: conn.server.clone(),
            reason,
        };
        let config = kube_config(&conn)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| client_error(format!("no async runtime: {e}")))?;
        // kube's client spawns its request buffer on the runtime it is built in.
        let client = {
            let _entered = runtime.enter();
            kube::Client::try_from(config).map_err(|e| match e {
                kube::Error::Auth(auth) => ConnectError::Credentials {
                    origin: conn.origin.clone(),
                    reason: describe_auth(&auth),
                },
                other => client_error(other.to_string()),
            })?
        };
        if conn.insecure_skip_tls_verify {
            tracing::warn!(server = %conn.server, origin = %conn.origin,
                "kubeconfig sets insecure-skip-tls-verify: the API server's certificate is not verified");
        }
        let bearer = match &conn.credentials {
            Credentials::Token(t) => Bearer::Fixed(t.clone()),
            Credentials::TokenFile(path) => Bearer::File(path.clone()),
            _ => Bearer::None,
        };
        Ok(KubeClient {
            server: conn.server,
            origin: conn.origin,
            namespace: conn.namespace,
            runtime,
            client,
            bearer,
            served: Mutex::new(HashMap::new()),
        })
    }

    /// The API server URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Where the connection came from (`kubeconfig PATH context NAME`, `in-cluster …`).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The kubeconfig context's or service account's namespace.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// Make `call` on `namespace`/`name` (for a create, `name` is the new object's, used in
    /// messages), with `body` as JSON, returning the answer's JSON, by `deadline`.
    pub(crate) fn call(
        &self,
        call: &'static ApiCall,
        namespace: &str,
        name: &str,
        body: Option<&serde_json::Value>,
        deadline: Instant,
    ) -> Result<serde_json::Value, KubeError> {
        let verb = call.verb;
        let object = ObjectName::new(call.resource, namespace, name);
        let version = self.served_version(call.resource, &object, deadline)?;
        let path = match verb {
            Verb::Create => call.resource.collection_path_at(version, namespace),
            _ => call.resource.object_path_at(version, namespace, name),
        };
        let text = self.exchange(verb, &object, &path, body, deadline)?;
        serde_json::from_str(&text).map_err(|e| KubeError::Decode {
            verb,
            object,
            what: format!("the answer is not JSON: {e}"),
        })
    }

    /// The version of `resource` this server serves: the only one this code speaks, or the
    /// first of [`ApiResource::versions`] whose discovery document (`/apis/{group}/{version}`)
    /// lists the resource — by resource, not by group, because Flux 2.5 serves
    /// `source.toolkit.fluxcd.io/v1` (GitRepository) but OCIRepository only as `v1beta2`.
    /// Discovered once per client; `object` names what it is needed for, in messages.
    pub fn served_version(
        &self,
        resource: &'static ApiResource,
        object: &ObjectName,
        deadline: Instant,
    ) -> Result<&'static str, KubeError> {
        if let [only] = resource.versions {
            return Ok(only);
        }
        let key = resource.qualified();
        if let Some(v) = self.served.lock().expect("not poisoned").get(&key) {
            return Ok(v);
        }
        for &version in resource.versions {
            let path = resource.discovery_path(version);
            let text = match self.exchange(Verb::Get, object, &path, None, deadline) {
                Ok(text) => text,
                Err(KubeError::NotFound { .. }) => continue,
                Err(e) => return Err(e),
            };
            if crate::discovery::lists(&text, resource.plural).map_err(|what| {
                KubeError::Decode {
                    verb: Verb::Get,
                    object: object.clone(),
                    what: format!("the discovery document {path}: {what}"),
                }
            })? {
                self.served
                    .lock()
                    .expect("not poisoned")
                    .insert(key, version);
                return Ok(version);
            }
        }
        Err(KubeError::NotServed {
            object: object.clone(),
            resource: key,
            tried: resource.versions.join(", "),
        })
    }

    fn exchange(
        &self,
        verb: Verb,
        object: &ObjectName,
        path: &str,
        body: Option<&serde_json::Value>,
        deadline: Instant,
    ) -> Result<String, KubeError> {
        let budget = deadline.saturating_duration_since(Instant::now());
        let deadline_error = || KubeError::DeadlineExceeded {
            verb,
            object: object.clone(),
            server: self.server.clone(),
            budget,
        };
        if budget.is_zero() {
            return Err(deadline_error());
        }
        let mut req = http::Request::builder()
            .method(verb.method())
            .uri(path)
            .header(http::header::ACCEPT, "application/json");
        let token = self.bearer.token(&self.origin, &self.server, object)?;
        if let Some(token) = &token {
            let mut value = http::HeaderValue::from_str(&format!("Bearer {}", token.expose()))
                .map_err(|_| KubeError::TokenFile {
                    path: self.bearer.path(),
                    server: self.server.clone(),
                    reason: "the token cannot be sent in a header".to_owned(),
                })?;
            value.set_sensitive(true);
            req = req.header(http::header::AUTHORIZATION, value);
        }
        let bytes = match body {
            Some(body) => {
                let content_type = match verb {
                    Verb::Patch => MERGE_PATCH,
                    _ => "application/json",
                };
                req = req.header(http::header::CONTENT_TYPE, content_type);
                serde_json::to_vec(body).map_err(|e| KubeError::Decode {
                    verb,
                    object: object.clone(),
                    what: format!("request body does not serialise: {e}"),
                })?
            }
            None => Vec::new(),
        };
        let req = req.body(bytes).map_err(|e| KubeError::Decode {
            verb,
            object: object.clone(),
            what: format!("the request does not build: {e}"),
        })?;
        let answer = self
            .runtime
            .block_on(async { tokio::time::timeout(budget, self.client.request_text(req)).await });
        match answer {
            Err(_elapsed) => Err(deadline_error()),
            Ok(Ok(text)) => Ok(text),
            Ok(Err(e)) => Err(self.map_error(verb, object.clone(), e, token.as_ref())),
        }
    }
}

/// rustls needs a process-wide crypto provider; install ring's (as the rest of the workspace
/// does) unless one is installed already.
pub(crate) fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Err means another thread installed one first: that one is used, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}
