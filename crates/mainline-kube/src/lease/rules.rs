//! The pure rules of holding a Lease: who holds it, until when, and what record to write to
//! claim, renew or release it. Time arrives as a value; nothing here does I/O.
//!
//! A Lease is held by `holderIdentity` until `renewTime + leaseDurationSeconds` (the holder's
//! own promise, in the record). A claim by a new holder sets `acquireTime` and increments
//! `leaseTransitions` (as client-go's leader election does); a renew by the holder keeps
//! `acquireTime`. A release clears the holder and shortens the duration to one second.
//! Must never: call a live holder's Lease free, or read "now" itself.

use super::{micro_time, parse_time};
use mainline_core::Timestamp;
use serde_json::{json, Map, Value};

/// The `spec` fields this crate reads and writes.
pub const SPEC_FIELDS: [&str; 5] = [
    "holderIdentity",
    "leaseDurationSeconds",
    "acquireTime",
    "renewTime",
    "leaseTransitions",
];

/// A Lease's `spec`, typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaseRecord {
    /// `holderIdentity`; `None` (or empty on the wire) when free.
    pub holder: Option<String>,
    /// `leaseDurationSeconds`.
    pub duration_secs: Option<i64>,
    /// `acquireTime`.
    pub acquire_time: Option<Timestamp>,
    /// `renewTime`.
    pub renew_time: Option<Timestamp>,
    /// `leaseTransitions`.
    pub transitions: i64,
}

/// Who holds a Lease, as judged at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    /// Nobody.
    Free,
    /// The identity asking.
    Ours { expires_at: Timestamp },
    /// Someone else, still within their duration.
    Held {
        holder: String,
        expires_at: Timestamp,
    },
    /// Someone else, whose duration has passed: may be taken over.
    Expired {
        holder: String,
        expired_at: Timestamp,
    },
}

impl LeaseRecord {
    /// The holder, when there is one.
    pub fn holder(&self) -> Option<&str> {
        self.holder.as_deref().filter(|h| !h.is_empty())
    }

    /// When the holder's claim ends: last renew (or acquire) plus the duration. `None` without
    /// a holder; the epoch when the record lacks the times to tell (so it can be taken over).
    pub fn expires_at(&self) -> Option<Timestamp> {
        self.holder()?;
        match (self.renew_time.or(self.acquire_time), self.duration_secs) {
            (Some(t), Some(d)) => Some(t.plus_millis(d.saturating_mul(1000))),
            _ => Some(Timestamp(0)),
        }
    }

    /// The wire `spec` (absent values omitted).
    pub fn to_spec(&self) -> Value {
        let mut spec = Map::new();
        if let Some(h) = self.holder() {
            spec.insert("holderIdentity".into(), json!(h));
        }
        if let Some(d) = self.duration_secs {
            spec.insert("leaseDurationSeconds".into(), json!(d));
        }
        if let Some(t) = self.acquire_time {
            spec.insert("acquireTime".into(), json!(micro_time(t)));
        }
        if let Some(t) = self.renew_time {
            spec.insert("renewTime".into(), json!(micro_time(t)));
        }
        spec.insert("leaseTransitions".into(), json!(self.transitions));
        Value::Object(spec)
    }

    /// Read a wire `spec`. Err names the field that is not in the documented shape.
    pub fn from_spec(spec: &Value) -> Result<LeaseRecord, String> {
        let time = |key: &str| -> Result<Option<Timestamp>, String> {
            match spec.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => parse_time(s)
                    .map(Some)
                    .ok_or_else(|| format!("spec.{key} {s:?} is not an RFC 3339 time")),
                Some(other) => Err(format!("spec.{key} is {other}, not a time string")),
            }
        };
        let int = |key: &str| -> Result<Option<i64>, String> {
            match spec.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_i64()
                    .map(Some)
                    .ok_or_else(|| format!("spec.{key} is {v}, not an integer")),
            }
        };
        let holder = match spec.get("holderIdentity") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()).filter(|s| !s.is_empty()),
            Some(other) => return Err(format!("spec.holderIdentity is {other}, not a string")),
        };
        Ok(LeaseRecord {
            holder,
            duration_secs: int("leaseDurationSeconds")?,
            acquire_time: time("acquireTime")?,
            renew_time: time("renewTime")?,
            transitions: int("leaseTransitions")?.unwrap_or(0),
        })
    }
}

/// Judge `record` for identity `me` at `now`. A foreign holder counts as expired only once
/// `skew_ms` more have passed, to absorb clock differences between holder and taker.
pub fn judge(record: &LeaseRecord, me: &str, now: Timestamp, skew_ms: i64) -> Judgement {
    let (Some(holder), Some(expires_at)) = (record.holder(), record.expires_at()) else {
        return Judgement::Free;
    };
    if holder == me {
        return Judgement::Ours { expires_at };
    }
    if now >= expires_at.plus_millis(skew_ms) {
        Judgement::Expired {
            holder: holder.to_owned(),
            expired_at: expires_at,
        }
    } else {
        Judgement::Held {
            holder: holder.to_owned(),
            expires_at,
        }
    }
}

/// The record that claims (or renews) the Lease for `me` at `now` for `duration_secs`.
pub fn claim(
    previous: Option<&LeaseRecord>,
    me: &str,
    duration_secs: i64,
    now: Timestamp,
) -> LeaseRecord {
    let (acquire_time, transitions) = match previous {
        None => (now, 0),
        Some(p) if p.holder() == Some(me) => (p.acquire_time.unwrap_or(now), p.transitions),
        Some(p) => (now, p.transitions.saturating_add(1)),
    };
    LeaseRecord {
        holder: Some(me.to_owned()),
        duration_secs: Some(duration_secs),
        acquire_time: Some(acquire_time),
        renew_time: Some(now),
        transitions,
    }
}

/// The record that gives the Lease back (as client-go's `ReleaseOnCancel` writes it).
pub fn release(previous: &LeaseRecord, now: Timestamp) -> LeaseRecord {
    LeaseRecord {
        holder: None,
        duration_secs: Some(1),
        acquire_time: Some(now),
        renew_time: Some(now),
        transitions: previous.transitions,
    }
}
