//! Errors of the Kubernetes API client and of loading a cluster connection, and the small kind
//! that drives exit codes, retries and metric labels.
//!
//! Every message names the object (`OCIRepository flux-system/app`) or the file it concerns and
//! says what to do. Invariant: no variant carries a token, a client key or an `Authorization`
//! header; messages quoted from the API server are redacted first.
//! Must never: put a cause both in `#[source]` and in the message.

use crate::api::{ApiResource, Verb};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// What the caller can do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Configuration, names or RBAC are wrong: an operator must fix something.
    InvalidInput,
    /// Credentials were refused.
    Unauthorized,
    /// The API server is unreachable, slow or failing: retry later.
    Unavailable,
    /// Someone else wrote first (a stale `resourceVersion`, or the object already exists).
    Conflict,
    /// The server answered something this client does not understand.
    Internal,
}

/// A Kubernetes object, for messages: `OCIRepository flux-system/app`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectName {
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
}

impl ObjectName {
    pub fn new(resource: &ApiResource, namespace: &str, name: &str) -> ObjectName {
        ObjectName {
            kind: resource.kind,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }
}

impl fmt::Display for ObjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// An error from one API call.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error(
        "the Kubernetes API at {server} did not answer `{verb}` on {object} within {budget:?}: \
         the call was abandoned (the API server may be overloaded or unreachable); the next \
         reconcile tries again"
    )]
    DeadlineExceeded {
        verb: Verb,
        object: ObjectName,
        server: String,
        budget: Duration,
    },
    #[error(
        "could not reach the Kubernetes API at {server} to `{verb}` {object}: check the network, \
         the cluster's server URL and CA (kubeconfig, or the pod's service account)"
    )]
    Unreachable {
        verb: Verb,
        object: ObjectName,
        server: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error(
        "could not get credentials for {server} to `{verb}` {object}: {reason}; check the \
         kubeconfig user (exec plugin, auth-provider, token file) or log in again"
    )]
    Credentials {
        verb: Verb,
        object: ObjectName,
        server: String,
        reason: String,
    },
    #[error(
        "could not read the bearer token file {} for {server}: {reason}; check the \
         service-account token mount (or the kubeconfig user's tokenFile)",
        path.display()
    )]
    TokenFile {
        path: PathBuf,
        server: String,
        reason: String,
    },
    #[error(
        "the Kubernetes API at {server} refused the credentials (401) for `{verb}` on {object}: \
         the service-account token or kubeconfig user is invalid or expired; refresh it"
    )]
    Unauthorized {
        verb: Verb,
        object: ObjectName,
        server: String,
    },
    #[error(
        "`{verb}` on {object} is forbidden (403: {message}): grant `{verb}` on {resource} in \
         namespace {namespace} to mainline's service account (see deploy/kubernetes/rbac.yaml)",
        namespace = object.namespace
    )]
    Forbidden {
        verb: Verb,
        object: ObjectName,
        resource: String,
        message: String,
    },
    #[error(
        "{object} was not found (404): check the namespace and name in mainline.toml, and that \
         Flux's CRDs are installed on this cluster"
    )]
    NotFound { verb: Verb, object: ObjectName },
    #[error(
        "{object}: this cluster serves {resource} in none of the versions mainline speaks \
         ({tried}): install Flux 2.0 or later (its CRDs), or check that the kubeconfig points \
         at the cluster Flux runs in"
    )]
    NotServed {
        object: ObjectName,
        resource: String,
        tried: String,
    },
    #[error(
        "`{verb}` on {object} lost a race (409 Conflict: {message}): someone else updated it \
         first; read it again before deciding"
    )]
    Conflict {
        verb: Verb,
        object: ObjectName,
        message: String,
    },
    #[error("{object} already exists (409 AlreadyExists): someone else created it first")]
    AlreadyExists { object: ObjectName },
    #[error("the Kubernetes API rejected `{verb}` on {object} ({status} {reason}: {message})")]
    Rejected {
        verb: Verb,
        object: ObjectName,
        status: u16,
        reason: String,
        message: String,
    },
    #[error(
        "the Kubernetes API at {server} failed `{verb}` on {object} ({status}: {message}); the \
         next reconcile tries again"
    )]
    Server {
        verb: Verb,
        object: ObjectName,
        server: String,
        status: u16,
        message: String,
    },
    #[error(
        "the answer to `{verb}` on {object} is not in the documented shape ({what}); this is a \
         bug in mainline or an unsupported Flux/Kubernetes version: please report it"
    )]
    Decode {
        verb: Verb,
        object: ObjectName,
        what: String,
    },
}

impl KubeError {
    pub fn kind(&self) -> ErrorKind {
        use KubeError::*;
        match self {
            DeadlineExceeded { .. } | Unreachable { .. } | Server { .. } => ErrorKind::Unavailable,
            TokenFile { .. }
            | Forbidden { .. }
            | NotFound { .. }
            | NotServed { .. }
            | Rejected { .. } => ErrorKind::InvalidInput,
            Unauthorized { .. } | Credentials { .. } => ErrorKind::Unauthorized,
            Conflict { .. } | AlreadyExists { .. } => ErrorKind::Conflict,
            Decode { .. } => ErrorKind::Internal,
        }
    }

    /// The object the failed call was about.
    pub fn object(&self) -> Option<&ObjectName> {
        use KubeError::*;
        match self {
            DeadlineExceeded { object, .. }
            | Unreachable { object, .. }
            | Credentials { object, .. }
            | Unauthorized { object, .. }
            | Forbidden { object, .. }
            | NotFound { object, .. }
            | Conflict { object, .. }
            | AlreadyExists { object }
            | NotServed { object, .. }
            | Rejected { object, .. }
            | Server { object, .. }
            | Decode { object, .. } => Some(object),
            TokenFile { .. } => None,
        }
    }
}

/// An error loading a cluster connection (kubeconfig or in-cluster service account).
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(
        "no kubeconfig found (looked at {}) and not running in a pod (KUBERNETES_SERVICE_HOST is \
         not set): set KUBECONFIG, `kubeconfig = \"PATH\"` on the consumer, or `in_cluster = true`",
        tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    NoConfig { tried: Vec<PathBuf> },
    #[error("cannot read kubeconfig {}: {reason}", path.display())]
    KubeconfigRead { path: PathBuf, reason: String },
    #[error("kubeconfig {} is not valid YAML in the kubeconfig shape: {reason}", path.display())]
    KubeconfigParse { path: PathBuf, reason: String },
    #[error(
        "kubeconfig {} has no context {context:?} (it has: {}): fix `context` on the consumer",
        path.display(), available.join(", ")
    )]
    ContextNotFound {
        path: PathBuf,
        context: String,
        available: Vec<String>,
    },
    #[error(
        "kubeconfig {} names no current-context: set `context` on the consumer",
        path.display()
    )]
    NoCurrentContext { path: PathBuf },
    #[error(
        "kubeconfig {}: context {context:?} refers to {what} {name:?}, which is not defined",
        path.display()
    )]
    Dangling {
        path: PathBuf,
        context: String,
        what: &'static str,
        name: String,
    },
    #[error(
        "kubeconfig {}: user of context {context:?} authenticates with `{method}`, which mainline \
         does not run: give it a service-account token (`token` or `tokenFile`) or a client \
         certificate",
        path.display()
    )]
    UnsupportedAuth {
        path: PathBuf,
        context: String,
        method: &'static str,
    },
    #[error("{origin}: invalid {field}: {reason}")]
    Invalid {
        origin: String,
        field: &'static str,
        reason: String,
    },
    #[error(
        "running in-cluster, but {what}: mount the pod's service account (automountServiceAccountToken) \
         or configure a kubeconfig"
    )]
    InCluster { what: String },
    #[error("cannot read {what} {}: {reason}", path.display())]
    File {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error(
        "{what} from {origin} is not usable PEM ({reason}): check the file or the base64 `-data` \
         field"
    )]
    Pem {
        what: &'static str,
        origin: String,
        reason: String,
    },
    #[error(
        "{origin}: cannot get credentials: {reason}; fix the kubeconfig user (exec plugin, \
         auth-provider, token file) or log in again"
    )]
    Credentials { origin: String, reason: String },
    #[error("cannot build the HTTP client for {server}: {reason}")]
    Client { server: String, reason: String },
}

impl ConnectError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ConnectError::Client { .. } => ErrorKind::Internal,
            _ => ErrorKind::InvalidInput,
        }
    }
}
