//! Every Kubernetes API call this crate makes, as constants: which resource (group, version,
//! plural), which verb, in which namespaces, and why. The HTTP client only accepts an
//! [`ApiCall`] from this table, so the table *is* the list of permissions the code needs; the
//! RBAC in `deploy/kubernetes/rbac.yaml` is tested against it, and the fake API server can
//! enforce that RBAC on every request.
//!
//! Invariant: no request leaves this crate without naming one of [`API_CALLS`].
//! Must never: grow a call without a line here (and so in the Role), or use a wildcard.

use std::fmt;

/// A namespaced API resource.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ApiResource {
    /// API group, e.g. `source.toolkit.fluxcd.io`.
    pub group: &'static str,
    /// The version fixtures and messages use (the newest this code speaks).
    pub version: &'static str,
    /// Every version this code can read and patch, newest first. When there is more than one,
    /// the client asks the server which it serves ([`crate::KubeClient`] discovers once per
    /// client): Flux before 2.6 serves OCIRepository as `v1beta2` only.
    pub versions: &'static [&'static str],
    /// The plural resource name used in paths and in RBAC rules, e.g. `ocirepositories`.
    pub plural: &'static str,
    /// The kind, for messages.
    pub kind: &'static str,
}

impl ApiResource {
    /// `/apis/{group}/{version}/namespaces/{ns}/{plural}`, at [`ApiResource::version`].
    pub fn collection_path(&self, namespace: &str) -> String {
        self.collection_path_at(self.version, namespace)
    }

    /// `/apis/{group}/{version}/namespaces/{ns}/{plural}/{name}`, at [`ApiResource::version`].
    pub fn object_path(&self, namespace: &str, name: &str) -> String {
        self.object_path_at(self.version, namespace, name)
    }

    /// `/apis/{group}/{version}/namespaces/{ns}/{plural}` at `version`.
    pub fn collection_path_at(&self, version: &str, namespace: &str) -> String {
        format!(
            "/apis/{}/{}/namespaces/{}/{}",
            self.group, version, namespace, self.plural
        )
    }

    /// `/apis/{group}/{version}/namespaces/{ns}/{plural}/{name}` at `version`.
    pub fn object_path_at(&self, version: &str, namespace: &str, name: &str) -> String {
        format!("{}/{}", self.collection_path_at(version, namespace), name)
    }

    /// `/apis/{group}/{version}`: the discovery document listing the resources served there.
    pub fn discovery_path(&self, version: &str) -> String {
        format!("/apis/{}/{}", self.group, version)
    }

    /// `plural.group`, as RBAC messages and `kubectl` name it.
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.plural, self.group)
    }
}

/// Flux's OCI source: <https://fluxcd.io/flux/components/source/ocirepositories/>.
pub const OCI_REPOSITORY: ApiResource = ApiResource {
    group: "source.toolkit.fluxcd.io",
    version: "v1",
    versions: &["v1", "v1beta2"],
    plural: "ocirepositories",
    kind: "OCIRepository",
};

/// Flux's Kustomization: <https://fluxcd.io/flux/components/kustomize/kustomizations/>.
pub const KUSTOMIZATION: ApiResource = ApiResource {
    group: "kustomize.toolkit.fluxcd.io",
    version: "v1",
    versions: &["v1", "v1beta2"],
    plural: "kustomizations",
    kind: "Kustomization",
};

/// <https://kubernetes.io/docs/reference/kubernetes-api/cluster-resources/lease-v1/>.
pub const LEASE: ApiResource = ApiResource {
    group: "coordination.k8s.io",
    version: "v1",
    versions: &["v1"],
    plural: "leases",
    kind: "Lease",
};

/// A Kubernetes API verb, as RBAC names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verb {
    Get,
    Create,
    Update,
    Patch,
}

impl Verb {
    /// The RBAC verb (`get`, `create`, `update`, `patch`).
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
        }
    }

    /// The HTTP method the API server maps to this verb.
    pub fn method(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Create => "POST",
            Verb::Update => "PUT",
            Verb::Patch => "PATCH",
        }
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a call's objects live, which decides Role versus ClusterRole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Wherever the configured Flux objects are (any namespace: read through a ClusterRole).
    FluxNamespaces,
    /// Only the configured consumers' OCIRepositories (a Role per namespace, `resourceNames`).
    ConfiguredSources,
    /// The guard's own namespace (a Role).
    LeaseNamespace,
}

/// One call the code makes.
#[derive(Debug, PartialEq, Eq)]
pub struct ApiCall {
    pub resource: &'static ApiResource,
    pub verb: Verb,
    pub scope: Scope,
    pub why: &'static str,
}

pub const GET_OCI_REPOSITORY: ApiCall = ApiCall {
    resource: &OCI_REPOSITORY,
    verb: Verb::Get,
    scope: Scope::FluxNamespaces,
    why: "read status.artifact.revision, conditions and lastHandledReconcileAt",
};
pub const PATCH_OCI_REPOSITORY: ApiCall = ApiCall {
    resource: &OCI_REPOSITORY,
    verb: Verb::Patch,
    scope: Scope::ConfiguredSources,
    why: "merge-patch the reconcile.fluxcd.io/requestedAt annotation after a channel move",
};
pub const GET_KUSTOMIZATION: ApiCall = ApiCall {
    resource: &KUSTOMIZATION,
    verb: Verb::Get,
    scope: Scope::FluxNamespaces,
    why: "read status.lastAppliedRevision and the Ready condition",
};
pub const GET_LEASE: ApiCall = ApiCall {
    resource: &LEASE,
    verb: Verb::Get,
    scope: Scope::LeaseNamespace,
    why: "read the channel lock's or the guard leader's holder",
};
pub const CREATE_LEASE: ApiCall = ApiCall {
    resource: &LEASE,
    verb: Verb::Create,
    scope: Scope::LeaseNamespace,
    why: "create a channel lock or leader Lease the first time",
};
pub const UPDATE_LEASE: ApiCall = ApiCall {
    resource: &LEASE,
    verb: Verb::Update,
    scope: Scope::LeaseNamespace,
    why: "acquire, renew, take over or release a Lease (with its resourceVersion)",
};

/// Every call this crate makes.
pub const API_CALLS: [&ApiCall; 6] = [
    &GET_OCI_REPOSITORY,
    &PATCH_OCI_REPOSITORY,
    &GET_KUSTOMIZATION,
    &GET_LEASE,
    &CREATE_LEASE,
    &UPDATE_LEASE,
];

/// Read verbs the deploy manifests grant on the Flux kinds beyond the `get` the code calls:
/// issue 7 asks for get/list/watch, so a later watch-based observer needs no RBAC change.
/// They are read-only; nothing else is granted.
pub const EXTRA_READ_VERBS: [&str; 2] = ["list", "watch"];
