//! One blocking HTTP exchange with the Kubernetes API, in its documented wire format: the
//! request path from an [`ApiCall`] (`/apis/{group}/{version}/namespaces/{ns}/{plural}/{name}`),
//! `application/merge-patch+json` for patches, `application/json` for creates and updates,
//! `Authorization: Bearer` from the connection, and every non-2xx answer read as a `Status`
//! object (`reason`, `message`, `code`) and mapped to a typed [`KubeError`].
//!
//! Invariants: a call never outlives its deadline (the remaining time is the request's total
//! timeout, and a call whose deadline has passed is not sent); there are no retries here; the
//! `Authorization` header is marked sensitive; quoted server messages are redacted.
//! Must never: send a request that is not in [`crate::api::API_CALLS`], or be built or dropped
//! on an async runtime thread (reqwest's blocking client owns one): use `spawn_blocking`.

use crate::api::{ApiCall, Verb};
use crate::config::Cluster;
use crate::connect::{check_token, connect, Connection, Credentials, Environment};
use crate::error::{ConnectError, KubeError, ObjectName};
use crate::secret::redact;
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The content type of a JSON merge patch (RFC 7386), as the API server requires it.
pub const MERGE_PATCH: &str = "application/merge-patch+json";

/// A client for one API server.
pub struct KubeClient {
    server: String,
    origin: String,
    namespace: Option<String>,
    http: reqwest::blocking::Client,
    auth: Auth,
}

enum Auth {
    None,
    Header(HeaderValue),
    File(PathBuf),
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
        let pem_error = |what, reason: String| ConnectError::Pem {
            what,
            origin: conn.origin.clone(),
            reason,
        };
        let mut builder = reqwest::blocking::Client::builder()
            .user_agent(concat!("mainline/", env!("CARGO_PKG_VERSION")))
            // A backstop only: every request sets its own timeout from its deadline.
            .timeout(Duration::from_secs(120));
        builder = match &conn.proxy_url {
            Some(url) => {
                let proxy =
                    reqwest::Proxy::all(url.expose()).map_err(|_| ConnectError::Invalid {
                        origin: conn.origin.clone(),
                        field: "proxy-url",
                        reason: "is not a usable proxy URL".to_owned(),
                    })?;
                builder.proxy(proxy)
            }
            None => builder.no_proxy(),
        };
        if let Some(ca) = &conn.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(ca)
                .map_err(|e| pem_error("the cluster CA", e.to_string()))?;
            if certs.is_empty() {
                return Err(pem_error(
                    "the cluster CA",
                    "it holds no certificate".to_owned(),
                ));
            }
            builder = builder.tls_certs_only(certs);
        }
        if let Some(identity) = &conn.identity_pem {
            let id = reqwest::Identity::from_pem(identity.expose()).map_err(|_| {
                pem_error(
                    "the client certificate and key",
                    "not PEM, or the key is not in a supported format".to_owned(),
                )
            })?;
            builder = builder.identity(id);
        }
        if conn.insecure_skip_tls_verify {
            tracing::warn!(server = %conn.server, origin = %conn.origin,
                "kubeconfig sets insecure-skip-tls-verify: the API server's certificate is not verified");
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        let http = builder.build().map_err(|e| ConnectError::Client {
            server: conn.server.clone(),
            reason: e.to_string(),
        })?;
        let auth = match &conn.credentials {
            Credentials::None => Auth::None,
            Credentials::Token(token) => {
                Auth::Header(bearer(token.expose()).ok_or_else(|| ConnectError::Invalid {
                    origin: conn.origin.clone(),
                    field: "token",
                    reason: "cannot be sent in a header".to_owned(),
                })?)
            }
            Credentials::TokenFile(path) => Auth::File(path.clone()),
        };
        Ok(KubeClient {
            server: conn.server,
            origin: conn.origin,
            namespace: conn.namespace,
            http,
            auth,
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
        let budget = deadline.saturating_duration_since(Instant::now());
        if budget.is_zero() {
            return Err(KubeError::DeadlineExceeded {
                verb,
                object,
                server: self.server.clone(),
                budget,
            });
        }
        let path = match verb {
            Verb::Create => call.resource.collection_path(namespace),
            _ => call.resource.object_path(namespace, name),
        };
        let url = format!("{}{}", self.server, path);
        let method = match verb {
            Verb::Get => reqwest::Method::GET,
            Verb::Create => reqwest::Method::POST,
            Verb::Update => reqwest::Method::PUT,
            Verb::Patch => reqwest::Method::PATCH,
        };
        let (header, token) = self.authorization(&object)?;
        let mut req = self
            .http
            .request(method, &url)
            .timeout(budget)
            .header(ACCEPT, "application/json");
        if let Some(h) = header {
            req = req.header(AUTHORIZATION, h);
        }
        if let Some(body) = body {
            let content_type = match verb {
                Verb::Patch => MERGE_PATCH,
                _ => "application/json",
            };
            let bytes = serde_json::to_vec(body).map_err(|e| KubeError::Decode {
                verb,
                object: object.clone(),
                what: format!("request body does not serialise: {e}"),
            })?;
            req = req.header(CONTENT_TYPE, content_type).body(bytes);
        }
        let transport = |e: reqwest::Error, object: ObjectName| {
            if e.is_timeout() {
                KubeError::DeadlineExceeded {
                    verb,
                    object,
                    server: self.server.clone(),
                    budget,
                }
            } else {
                KubeError::Unreachable {
                    verb,
                    object,
                    server: self.server.clone(),
                    source: e.without_url(),
                }
            }
        };
        let resp = req.send().map_err(|e| transport(e, object.clone()))?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().map_err(|e| transport(e, object.clone()))?;
        if (200..300).contains(&status) {
            return serde_json::from_slice(&bytes).map_err(|e| KubeError::Decode {
                verb,
                object,
                what: format!("answer {status} is not JSON: {e}"),
            });
        }
        let secrets: Vec<&str> = token.as_deref().into_iter().collect();
        Err(self.status_error(verb, object, status, &bytes, &secrets))
    }

    /// The `Authorization` header (and the token, to redact echoes of it).
    fn authorization(
        &self,
        object: &ObjectName,
    ) -> Result<(Option<HeaderValue>, Option<String>), KubeError> {
        match &self.auth {
            Auth::None => Ok((None, None)),
            Auth::Header(h) => Ok((Some(h.clone()), None)),
            Auth::File(path) => {
                let file_error = |reason: String| KubeError::TokenFile {
                    path: path.clone(),
                    server: self.server.clone(),
                    reason,
                };
                let text =
                    std::fs::read_to_string(path).map_err(|e| file_error(e.kind().to_string()))?;
                let token = check_token(&self.origin, &text).map_err(|_| {
                    file_error(format!(
                        "its content is empty or not a single-line token (while reading {object})"
                    ))
                })?;
                let header = bearer(token.expose()).ok_or_else(|| {
                    file_error("its content cannot be sent in a header".to_owned())
                })?;
                Ok((Some(header), Some(token.expose().to_owned())))
            }
        }
    }

    fn status_error(
        &self,
        verb: Verb,
        object: ObjectName,
        status: u16,
        body: &[u8],
        secrets: &[&str],
    ) -> KubeError {
        #[derive(serde::Deserialize, Default)]
        struct StatusBody {
            #[serde(default)]
            message: String,
            #[serde(default)]
            reason: String,
        }
        let parsed: StatusBody = serde_json::from_slice(body).unwrap_or_else(|_| StatusBody {
            message: String::from_utf8_lossy(body).into_owned(),
            reason: String::new(),
        });
        let message = redact(parsed.message.trim(), secrets);
        match status {
            401 => KubeError::Unauthorized {
                verb,
                object,
                server: self.server.clone(),
            },
            403 => KubeError::Forbidden {
                verb,
                resource: resource_of(&object),
                object,
                message,
            },
            404 => KubeError::NotFound { verb, object },
            409 if parsed.reason == "AlreadyExists" => KubeError::AlreadyExists { object },
            409 => KubeError::Conflict {
                verb,
                object,
                message,
            },
            s if s >= 500 => KubeError::Server {
                verb,
                object,
                server: self.server.clone(),
                status,
                message,
            },
            _ => KubeError::Rejected {
                verb,
                object,
                status,
                reason: parsed.reason,
                message,
            },
        }
    }
}

/// `plural.group` of the object's kind, for the RBAC hint.
fn resource_of(object: &ObjectName) -> String {
    crate::api::API_CALLS
        .iter()
        .find(|c| c.resource.kind == object.kind)
        .map(|c| c.resource.qualified())
        .unwrap_or_else(|| object.kind.to_owned())
}

fn bearer(token: &str) -> Option<HeaderValue> {
    let mut value = HeaderValue::from_str(&format!("Bearer {token}")).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// reqwest is built without a bundled crypto provider (as the rest of the workspace builds
/// it); install ring's as the process default unless one is installed already.
pub(crate) fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Err means another thread installed one first: that one is used, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}
