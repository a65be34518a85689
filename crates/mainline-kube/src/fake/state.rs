//! The fake API server's memory: objects by (group, plural, namespace, name) with a global
//! `resourceVersion` counter (as etcd's revision), accepted tokens, optional RBAC grants,
//! scripted failures, reactions that play Flux's controllers, and a log of every request.
//!
//! Must never: keep a token in the request log.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

/// `(group, plural, namespace, name)`.
pub type Key = (String, String, String, String);

/// One RBAC rule as a Role/ClusterRole grants it, with where the binding applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub group: String,
    pub resources: Vec<String>,
    pub verbs: Vec<String>,
    /// `None`: cluster-wide (a ClusterRoleBinding); `Some(ns)`: a RoleBinding in `ns`.
    pub namespace: Option<String>,
    /// Empty: any name. Never matches `create` otherwise (as in Kubernetes RBAC).
    pub resource_names: Vec<String>,
}

impl Grant {
    pub(crate) fn allows(
        &self,
        group: &str,
        resource: &str,
        verb: &str,
        ns: &str,
        name: &str,
    ) -> bool {
        self.group == group
            && self.resources.iter().any(|r| r == resource)
            && self.verbs.iter().any(|v| v == verb)
            && self.namespace.as_deref().is_none_or(|n| n == ns)
            && (self.resource_names.is_empty()
                || (verb != "create" && self.resource_names.iter().any(|r| r == name)))
    }
}

/// A misbehaviour for the next request(s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Accept the request and answer nothing for this long (then 504).
    Hang(Duration),
    /// Answer this HTTP status with a `Status` object.
    Status(u16),
}

/// A request as the fake saw it (without any credential).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub content_type: Option<String>,
    /// The RBAC verb the method maps to.
    pub verb: String,
    /// Whether a known bearer token came with it.
    pub authenticated: bool,
    pub status: u16,
}

/// What "Flux" does after a reconcile request on an OCIRepository.
#[derive(Debug, Clone)]
pub(crate) struct Reaction {
    pub delay: Duration,
    /// `(key, status)`: replace each object's `status`.
    pub updates: Vec<(Key, Value)>,
}

pub(crate) struct State {
    pub objects: BTreeMap<Key, Value>,
    pub next_rv: u64,
    pub tokens: BTreeSet<String>,
    pub user: String,
    pub grants: Option<Vec<Grant>>,
    pub failures: VecDeque<Failure>,
    pub log: Vec<Recorded>,
    /// Discovery requests (`/apis/{group}/{version}`), apart so that tests counting object
    /// requests are not disturbed by the client's once-per-client version discovery.
    pub discovery_log: Vec<Recorded>,
    pub reactions: BTreeMap<Key, Reaction>,
}

impl State {
    pub fn new() -> State {
        State {
            objects: BTreeMap::new(),
            next_rv: 1000,
            tokens: BTreeSet::new(),
            user: "system:anonymous".to_owned(),
            grants: None,
            failures: VecDeque::new(),
            log: Vec::new(),
            discovery_log: Vec::new(),
            reactions: BTreeMap::new(),
        }
    }

    /// The next `resourceVersion`.
    pub fn bump(&mut self) -> String {
        self.next_rv += 1;
        self.next_rv.to_string()
    }
}
