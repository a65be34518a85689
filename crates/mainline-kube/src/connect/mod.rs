//! From a [`Cluster`] (in-cluster, or a kubeconfig and context) to a [`Connection`]: the API
//! server URL, the CA to trust, and the credentials — read once, validated, and kept out of
//! every message. The environment (`KUBECONFIG`, `HOME`, `KUBERNETES_SERVICE_HOST`/`_PORT`,
//! the service-account directory) comes in as an [`Environment`] value, so tests load from a
//! temporary directory and nothing here reads a global.
//!
//! Supported credentials: a bearer token (`token`, `tokenFile`, the pod's service-account
//! token, which kube-rs re-reads every minute because the kubelet rotates it, as client-go
//! does), client certificates, `exec` credential plugins (EKS's `aws eks get-token`, GKE's
//! `gke-gcloud-auth-plugin`, AKS's `kubelogin`) and `auth-provider` entries (OIDC) — the last
//! two run by kube-rs when the client needs a credential. Basic auth is refused with a
//! message saying what to use instead. `HTTPS_PROXY` is not read; a cluster's `proxy-url` is.
//!
//! Must never: print, log or put in an error a token, a client key or a `-data` field; trust
//! anything but the configured CA when one is given.

mod incluster;
mod kubeconfig;

use crate::config::Cluster;
use crate::error::ConnectError;
use crate::secret::{Secret, SecretBytes};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Where the kubelet mounts a pod's service account.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The process environment as connection loading needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment {
    /// `$KUBECONFIG`: one or more paths separated by `:`.
    pub kubeconfig: Option<OsString>,
    /// `$HOME`, for `~/.kube/config`.
    pub home: Option<PathBuf>,
    /// `$KUBERNETES_SERVICE_HOST`, set by the kubelet in every pod.
    pub service_host: Option<String>,
    /// `$KUBERNETES_SERVICE_PORT`.
    pub service_port: Option<String>,
    /// Where the service account's `token`, `ca.crt` and `namespace` are.
    pub service_account_dir: PathBuf,
}

impl Environment {
    /// Read the real environment (the only place this crate reads one).
    pub fn from_process() -> Environment {
        Environment {
            kubeconfig: std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()),
            home: std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            service_host: std::env::var("KUBERNETES_SERVICE_HOST")
                .ok()
                .filter(|v| !v.is_empty()),
            service_port: std::env::var("KUBERNETES_SERVICE_PORT")
                .ok()
                .filter(|v| !v.is_empty()),
            service_account_dir: PathBuf::from(SERVICE_ACCOUNT_DIR),
        }
    }
}

/// How requests authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// Anonymous (or client certificates only).
    None,
    /// A fixed bearer token.
    Token(Secret),
    /// A bearer token read from this file (re-read every minute: rotated service-account
    /// tokens).
    TokenFile(PathBuf),
    /// A kubeconfig `exec` credential plugin, run by kube-rs (its `command` made absolute when
    /// it was a relative path, as client-go resolves it against the kubeconfig's folder).
    Exec(Plugin<kube::config::ExecConfig>),
    /// A kubeconfig `auth-provider` (`oidc`, `gcp`), run by kube-rs.
    AuthProvider(Plugin<kube::config::AuthProviderConfig>),
}

/// A credential plugin's configuration as kube-rs reads it. Its environment and provider
/// config may hold secrets (an OIDC `refresh-token`, a client secret), so `Debug` shows only
/// the command or provider name.
#[derive(Clone)]
pub struct Plugin<T>(Box<T>);

impl<T> Plugin<T> {
    pub fn new(config: T) -> Plugin<T> {
        Plugin(Box::new(config))
    }

    /// The configuration, for kube-rs. Never log what this returns.
    pub fn config(&self) -> &T {
        &self.0
    }
}

impl std::fmt::Debug for Plugin<kube::config::ExecConfig> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Exec({:?}, <args and env redacted>)", self.0.command)
    }
}

impl std::fmt::Debug for Plugin<kube::config::AuthProviderConfig> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuthProvider({:?}, <config redacted>)", self.0.name)
    }
}

impl<T: serde::Serialize> PartialEq for Plugin<T> {
    fn eq(&self, other: &Self) -> bool {
        serde_json::to_value(&*self.0).ok() == serde_json::to_value(&*other.0).ok()
    }
}

impl<T: serde::Serialize> Eq for Plugin<T> {}

/// A resolved, validated connection to one API server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// `https://host:port`, without a trailing slash.
    pub server: String,
    /// Where this came from, for messages: `kubeconfig /path context prod`.
    pub origin: String,
    /// The context's (or service account's) namespace, if any.
    pub namespace: Option<String>,
    /// PEM CA bundle to trust instead of the system roots.
    pub ca_pem: Option<Vec<u8>>,
    /// PEM client certificate chain (with [`Connection::client_key_pem`]).
    pub client_cert_pem: Option<Vec<u8>>,
    /// PEM private key of the client certificate.
    pub client_key_pem: Option<SecretBytes>,
    pub credentials: Credentials,
    /// The kubeconfig explicitly disabled certificate verification for this cluster.
    pub insecure_skip_tls_verify: bool,
    /// The cluster's `proxy-url` (may carry `user:password@`, hence a [`Secret`]).
    pub proxy_url: Option<Secret>,
}

/// Resolve `cluster` in `env`.
pub fn connect(cluster: &Cluster, env: &Environment) -> Result<Connection, ConnectError> {
    match cluster {
        Cluster::InCluster => incluster::load(env),
        Cluster::Kubeconfig { path, context } => {
            let paths: Vec<PathBuf> = match path {
                Some(p) => vec![p.clone()],
                None => default_kubeconfigs(env),
            };
            let existing: Vec<PathBuf> = paths.iter().filter(|p| p.is_file()).cloned().collect();
            if existing.is_empty() {
                if path.is_none() && context.is_none() && env.service_host.is_some() {
                    return incluster::load(env);
                }
                return Err(ConnectError::NoConfig { tried: paths });
            }
            kubeconfig::load(&existing, context.as_deref())
        }
    }
}

/// `$KUBECONFIG`'s entries, else `~/.kube/config`.
fn default_kubeconfigs(env: &Environment) -> Vec<PathBuf> {
    match &env.kubeconfig {
        Some(list) => std::env::split_paths(list)
            .filter(|p| !p.as_os_str().is_empty())
            .collect(),
        None => env
            .home
            .iter()
            .map(|h| h.join(".kube").join("config"))
            .collect(),
    }
}

/// A token must fit in an HTTP header: visible ASCII only (a trailing newline is trimmed).
pub(crate) fn check_token(origin: &str, token: &str) -> Result<Secret, ConnectError> {
    let token = token.trim_end_matches(['\n', '\r']);
    if token.is_empty() {
        return Err(ConnectError::Invalid {
            origin: origin.to_owned(),
            field: "token",
            reason: "it is empty".to_owned(),
        });
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ConnectError::Invalid {
            origin: origin.to_owned(),
            field: "token",
            reason: "it contains spaces or control characters, so it cannot be sent in a header"
                .to_owned(),
        });
    }
    Ok(Secret::new(token))
}

/// Read a small file whose content is not secret (a CA, a namespace).
pub(crate) fn read_file(what: &'static str, path: &Path) -> Result<Vec<u8>, ConnectError> {
    std::fs::read(path).map_err(|e| ConnectError::File {
        what,
        path: path.to_owned(),
        reason: e.kind().to_string(),
    })
}

/// `https://…` or `http://…`, no credentials in it, no trailing slash.
pub(crate) fn check_server(origin: &str, server: &str) -> Result<String, ConnectError> {
    let invalid = |reason: &str| ConnectError::Invalid {
        origin: origin.to_owned(),
        field: "server",
        reason: reason.to_owned(),
    };
    let rest = server
        .strip_prefix("https://")
        .or_else(|| server.strip_prefix("http://"))
        .ok_or_else(|| invalid("expected an https:// URL"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        return Err(invalid("it has no host"));
    }
    if authority.contains('@') {
        return Err(invalid(
            "it carries credentials (user@host): put them in the kubeconfig user instead",
        ));
    }
    Ok(server.trim_end_matches('/').to_owned())
}
