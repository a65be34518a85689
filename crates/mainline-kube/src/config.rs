//! The Kubernetes part of a channel's configuration: which Flux objects consume the channel
//! (one or more `OCIRepository`s, each with the `Kustomization`s that apply it), on which
//! cluster, and where the channel lock's Lease lives. Deserialised from the channel's
//! `kubernetes` table in mainline.toml, then validated into [`Consumer`]s before anything
//! touches a cluster.
//!
//! ```toml
//! [channel.kubernetes]
//! lease_namespace = "mainline"          # lock = "kubernetes": the channel lock's Lease lives here
//!
//! [[channel.kubernetes.consumers]]
//! namespace = "flux-system"
//! oci_repository = "app-manifests"      # the OCIRepository whose spec.ref.tag is the channel
//! kustomizations = ["app", "monitoring/app-alerts"]   # "name" (same namespace) or "namespace/name"
//! in_cluster = true                     # or: kubeconfig = "/path", context = "prod-eu"
//! ```
//!
//! Invariant: a [`Consumer`] holds only names Kubernetes accepts (DNS-1123), so no request path
//! is ever built from an unchecked string. Must never: hold a credential (tokens come from the
//! kubeconfig or the pod's service account, never from mainline.toml).

use serde::Deserialize;
use std::fmt;
use std::path::PathBuf;

/// The `kubernetes` table of one channel, as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesConfig {
    /// The Flux objects that follow this channel.
    #[serde(default)]
    pub consumers: Vec<ConsumerConfig>,
    /// Namespace of the channel lock's Lease (with `lock = "kubernetes"`); default: the
    /// namespace of the pod's service account.
    #[serde(default)]
    pub lease_namespace: Option<String>,
}

/// One consumer as written in mainline.toml.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerConfig {
    /// Namespace of the OCIRepository.
    pub namespace: String,
    /// Name of the OCIRepository.
    pub oci_repository: String,
    /// Kustomizations applying its artifact: `name` (same namespace) or `namespace/name`.
    #[serde(default)]
    pub kustomizations: Vec<String>,
    /// Use the pod's service account (`/var/run/secrets/kubernetes.io/serviceaccount`).
    #[serde(default)]
    pub in_cluster: bool,
    /// A kubeconfig file; default `$KUBECONFIG`, then `~/.kube/config`.
    #[serde(default)]
    pub kubeconfig: Option<PathBuf>,
    /// A kubeconfig context; default its `current-context`.
    #[serde(default)]
    pub context: Option<String>,
}

/// `[guard.leader_election]`: the guard's leader-election Lease and timing (whole seconds,
/// as the Lease itself counts). The identity is the pod name (`POD_NAME`), not configured.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaderElectionConfig {
    /// The Lease name [default: `mainline-guard-leader`].
    #[serde(default)]
    pub lease: Option<String>,
    /// Its namespace [default: the pod's namespace].
    #[serde(default)]
    pub namespace: Option<String>,
    /// [default: 15]
    #[serde(default)]
    pub lease_duration_seconds: Option<u64>,
    /// [default: 10]
    #[serde(default)]
    pub renew_deadline_seconds: Option<u64>,
    /// [default: 2]
    #[serde(default)]
    pub retry_period_seconds: Option<u64>,
}

/// How to reach a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Cluster {
    /// The pod's service account and `KUBERNETES_SERVICE_HOST`/`_PORT`.
    InCluster,
    /// A kubeconfig (`None`: `$KUBECONFIG`, then `~/.kube/config`, then in-cluster when running
    /// in a pod, as kubectl and kube-rs infer it) and a context (`None`: its current-context).
    Kubeconfig {
        path: Option<PathBuf>,
        context: Option<String>,
    },
}

impl fmt::Display for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cluster::InCluster => f.write_str("in-cluster service account"),
            Cluster::Kubeconfig { path, context } => {
                match path {
                    Some(p) => write!(f, "kubeconfig {}", p.display())?,
                    None => f.write_str("default kubeconfig")?,
                }
                match context {
                    Some(c) => write!(f, " context {c}"),
                    None => f.write_str(" current context"),
                }
            }
        }
    }
}

/// A namespaced object name, validated.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct ObjectRef {
    pub namespace: String,
    pub name: String,
}

impl ObjectRef {
    /// Validate `namespace` (a DNS-1123 label) and `name` (a DNS-1123 subdomain).
    pub fn new(namespace: &str, name: &str) -> Result<ObjectRef, ConfigError> {
        check_label("namespace", namespace)?;
        check_subdomain("name", name)?;
        Ok(ObjectRef {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        })
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// One consumer, validated: the OCIRepository, its Kustomizations, and its cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Consumer {
    pub cluster: Cluster,
    pub source: ObjectRef,
    pub kustomizations: Vec<ObjectRef>,
}

impl fmt::Display for Consumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OCIRepository {} ({})", self.source, self.cluster)
    }
}

/// A configuration value Kubernetes would refuse, or a contradiction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "invalid Kubernetes {field} {value:?}: {reason} (names are lowercase letters, digits \
         and '-'{dots}, starting and ending with a letter or digit)",
        dots = if *.field == "namespace" { "" } else { " or '.'" }
    )]
    InvalidName {
        field: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error(
        "consumer {consumer}: `in_cluster = true` cannot be combined with `{field}`: use the \
         pod's service account or a kubeconfig, not both"
    )]
    Conflicting {
        consumer: String,
        field: &'static str,
    },
    #[error("consumer {consumer}: kustomization {value:?} is not `name` or `namespace/name`")]
    KustomizationRef { consumer: String, value: String },
    #[error("consumer {consumer} is listed twice: each OCIRepository once per channel")]
    Duplicate { consumer: String },
}

impl KubernetesConfig {
    /// Validate every consumer (and the Lease namespace).
    pub fn validate(&self) -> Result<Vec<Consumer>, ConfigError> {
        if let Some(ns) = &self.lease_namespace {
            check_label("namespace", ns)?;
        }
        let mut out: Vec<Consumer> = Vec::with_capacity(self.consumers.len());
        for c in &self.consumers {
            let consumer = c.validate()?;
            if out
                .iter()
                .any(|o| o.source == consumer.source && o.cluster == consumer.cluster)
            {
                return Err(ConfigError::Duplicate {
                    consumer: consumer.source.to_string(),
                });
            }
            out.push(consumer);
        }
        Ok(out)
    }
}

impl ConsumerConfig {
    pub fn validate(&self) -> Result<Consumer, ConfigError> {
        let source = ObjectRef::new(&self.namespace, &self.oci_repository)?;
        let label = source.to_string();
        if self.in_cluster {
            for (set, field) in [
                (self.kubeconfig.is_some(), "kubeconfig"),
                (self.context.is_some(), "context"),
            ] {
                if set {
                    return Err(ConfigError::Conflicting {
                        consumer: label,
                        field,
                    });
                }
            }
        }
        let cluster = if self.in_cluster {
            Cluster::InCluster
        } else {
            Cluster::Kubeconfig {
                path: self.kubeconfig.clone(),
                context: self.context.clone(),
            }
        };
        let mut kustomizations = Vec::with_capacity(self.kustomizations.len());
        for k in &self.kustomizations {
            let parts: Vec<&str> = k.split('/').collect();
            let r = match parts.as_slice() {
                [name] => ObjectRef::new(&self.namespace, name)?,
                [ns, name] => ObjectRef::new(ns, name)?,
                _ => {
                    return Err(ConfigError::KustomizationRef {
                        consumer: label,
                        value: k.clone(),
                    })
                }
            };
            kustomizations.push(r);
        }
        Ok(Consumer {
            cluster,
            source,
            kustomizations,
        })
    }
}

fn invalid(field: &'static str, value: &str, reason: &'static str) -> ConfigError {
    ConfigError::InvalidName {
        field,
        value: value.to_owned(),
        reason,
    }
}

fn alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// A DNS-1123 label: at most 63 of `[a-z0-9-]`, alphanumeric at both ends.
pub(crate) fn check_label(field: &'static str, value: &str) -> Result<(), ConfigError> {
    let b = value.as_bytes();
    if b.is_empty() {
        return Err(invalid(field, value, "it is empty"));
    }
    if b.len() > 63 {
        return Err(invalid(field, value, "it is longer than 63 characters"));
    }
    if !b.iter().all(|&c| alnum(c) || c == b'-') {
        return Err(invalid(
            field,
            value,
            "it has a character outside [a-z0-9-]",
        ));
    }
    if !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return Err(invalid(field, value, "it starts or ends with '-'"));
    }
    Ok(())
}

/// A DNS-1123 subdomain: at most 253 characters, dot-separated labels of `[a-z0-9-]`.
pub(crate) fn check_subdomain(field: &'static str, value: &str) -> Result<(), ConfigError> {
    if value.len() > 253 {
        return Err(invalid(field, value, "it is longer than 253 characters"));
    }
    if value.is_empty() {
        return Err(invalid(field, value, "it is empty"));
    }
    for part in value.split('.') {
        let b = part.as_bytes();
        if b.is_empty() {
            return Err(invalid(field, value, "it has an empty part between dots"));
        }
        if !b.iter().all(|&c| alnum(c) || c == b'-') {
            return Err(invalid(
                field,
                value,
                "it has a character outside [a-z0-9.-]",
            ));
        }
        if !alnum(b[0]) || !alnum(b[b.len() - 1]) {
            return Err(invalid(field, value, "a part starts or ends with '-'"));
        }
    }
    Ok(())
}
