//! `coordination.k8s.io/v1` Leases: the wire shape ([`LeaseRecord`], `spec.holderIdentity`,
//! `leaseDurationSeconds`, `acquireTime`, `renewTime`, `leaseTransitions`), a tiny API over
//! get/create/update ([`LeaseApi`]) whose writes are compare-and-swaps on `resourceVersion`,
//! the pure rules of holding one ([`rules`]), and the two users: the channel lock
//! ([`LeaseLock`]) and the guard's leader election ([`LeaderElector`]).
//!
//! Invariant: every write names the `resourceVersion` it was decided from (create names
//! none and fails if the object exists), so of two writers deciding from the same read exactly
//! one succeeds and the other gets 409, surfaced as [`Write::LostRace`].
//! Must never: write a Lease without a `resourceVersion`, or retry a lost race with the same
//! (stale) read.

mod elector;
mod lock;
pub mod rules;

pub use elector::{ElectionConfig, ElectionError, LeaderElector, Leadership, DEFAULT_LEADER_LEASE};
pub use lock::{ChannelLock, LeaseLock, LeaseLockConfig, LockError, LockHandle, LockHolder};
pub use rules::LeaseRecord;

use crate::api::{CREATE_LEASE, GET_LEASE, LEASE, UPDATE_LEASE};
use crate::client::KubeClient;
use crate::error::{KubeError, ObjectName};
use mainline_core::{Digest, Timestamp};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Instant;

/// A Lease as read: its record, its `resourceVersion`, and the raw object (so an update keeps
/// labels, annotations and spec fields this crate does not know).
#[derive(Debug, Clone, PartialEq)]
pub struct LeaseObject {
    pub record: LeaseRecord,
    pub resource_version: String,
    raw: Value,
}

/// The outcome of a compare-and-swap write.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Written; the object as the server stored it.
    Done(LeaseObject),
    /// Someone else wrote first (409): nothing was written. Read again before deciding.
    LostRace,
}

/// One Lease, `namespace/name`, on one API server.
#[derive(Debug, Clone)]
pub struct LeaseApi {
    client: Arc<KubeClient>,
    pub namespace: String,
    pub name: String,
}

impl LeaseApi {
    pub fn new(client: Arc<KubeClient>, namespace: &str, name: &str) -> LeaseApi {
        LeaseApi {
            client,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }

    /// `namespace/name`, for messages.
    pub fn display(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    fn object_name(&self) -> ObjectName {
        ObjectName::new(&LEASE, &self.namespace, &self.name)
    }

    /// Read the Lease; `None` when it does not exist.
    pub fn get(&self, deadline: Instant) -> Result<Option<LeaseObject>, KubeError> {
        match self
            .client
            .call(&GET_LEASE, &self.namespace, &self.name, None, deadline)
        {
            Ok(v) => self.parse(GET_LEASE.verb, v).map(Some),
            Err(KubeError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Create the Lease with `record`; [`Write::LostRace`] if it exists already.
    pub fn create(&self, record: &LeaseRecord, deadline: Instant) -> Result<Write, KubeError> {
        let body = json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": { "app.kubernetes.io/managed-by": "mainline" },
            },
            "spec": record.to_spec(),
        });
        match self.client.call(
            &CREATE_LEASE,
            &self.namespace,
            &self.name,
            Some(&body),
            deadline,
        ) {
            Ok(v) => self.parse(CREATE_LEASE.verb, v).map(Write::Done),
            Err(KubeError::AlreadyExists { .. }) | Err(KubeError::Conflict { .. }) => {
                Ok(Write::LostRace)
            }
            Err(e) => Err(e),
        }
    }

    /// Replace `current`'s spec with `record`, only if the Lease is still at `current`'s
    /// `resourceVersion`; [`Write::LostRace`] on 409.
    pub fn update(
        &self,
        current: &LeaseObject,
        record: &LeaseRecord,
        deadline: Instant,
    ) -> Result<Write, KubeError> {
        let mut body = current.raw.clone();
        body["metadata"]["resourceVersion"] = json!(current.resource_version);
        let spec = body
            .get_mut("spec")
            .filter(|s| s.is_object())
            .map(|s| s.take())
            .unwrap_or_else(|| json!({}));
        body["spec"] = merge_spec(spec, record.to_spec());
        match self.client.call(
            &UPDATE_LEASE,
            &self.namespace,
            &self.name,
            Some(&body),
            deadline,
        ) {
            Ok(v) => self.parse(UPDATE_LEASE.verb, v).map(Write::Done),
            Err(KubeError::Conflict { .. }) => Ok(Write::LostRace),
            Err(e) => Err(e),
        }
    }

    fn parse(&self, verb: crate::api::Verb, raw: Value) -> Result<LeaseObject, KubeError> {
        let decode = |what: String| KubeError::Decode {
            verb,
            object: self.object_name(),
            what,
        };
        let resource_version = raw
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| decode("no metadata.resourceVersion".to_owned()))?
            .to_owned();
        let spec = raw.get("spec").cloned().unwrap_or_else(|| json!({}));
        let record = LeaseRecord::from_spec(&spec).map_err(decode)?;
        Ok(LeaseObject {
            record,
            resource_version,
            raw,
        })
    }
}

/// `current` with our five fields replaced (absent ones removed), others kept.
fn merge_spec(mut current: Value, ours: Value) -> Value {
    if let (Some(cur), Some(new)) = (current.as_object_mut(), ours.as_object()) {
        for key in rules::SPEC_FIELDS {
            match new.get(key) {
                Some(v) => {
                    cur.insert(key.to_owned(), v.clone());
                }
                None => {
                    cur.remove(key);
                }
            }
        }
    }
    current
}

/// The Lease name of a channel lock: `mainline-lock-<readable part>-<10 hex of a hash>`, a
/// valid DNS-1123 subdomain for any channel key (the hash keeps two keys that sanitise alike
/// apart).
pub fn channel_lease_name(channel_key: &str) -> String {
    let mut readable = String::new();
    for c in channel_key.chars() {
        let c = c.to_ascii_lowercase();
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() {
            c
        } else {
            '-'
        };
        if !(c == '-' && readable.ends_with('-')) {
            readable.push(c);
        }
    }
    let readable: String = readable.trim_matches('-').chars().take(200).collect();
    let readable = readable.trim_end_matches('-');
    let hash = Digest::of(channel_key.as_bytes());
    let short = &hash.hex()[..10];
    if readable.is_empty() {
        format!("mainline-lock-{short}")
    } else {
        format!("mainline-lock-{readable}-{short}")
    }
}

/// A `MicroTime` (`2006-01-02T15:04:05.000000Z07:00`) from unix milliseconds.
pub fn micro_time(t: Timestamp) -> String {
    let ms = t.to_string(); // `…T12:00:00.123Z`
    match ms.strip_suffix('Z') {
        Some(base) => format!("{base}000Z"),
        None => ms,
    }
}

/// Unix milliseconds from an RFC 3339 `MicroTime` or `Time`.
pub fn parse_time(s: &str) -> Option<Timestamp> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    let ms = t.unix_timestamp_nanos() / 1_000_000;
    i64::try_from(ms).ok().map(Timestamp)
}
