//! The pure rules of holding a Lease: who holds it, until when, and what record to write to
//! claim, renew or release it. Time arrives as a value; nothing here does I/O.
//!
//! A Lease is held by `holderIdentity` for `leaseDurationSeconds` after its last write. Whether
//! that time has passed is judged as client-go's leader election judges it: by how long *this
//! process* has watched the record stay unchanged (same `resourceVersion`, holder and
//! `renewTime`), on its own monotonic clock ([`Observation`]) — never by comparing the
//! holder's `renewTime` with our clock, so a taker whose clock is fast cannot steal a live
//! lock and a holder whose clock is slow cannot freeze it. The duration a record declares is
//! capped at [`MAX_DURATION_MS`]. The price: a process that first sees a dead holder's record
//! waits one duration from that first look, however old the record is.
//!
//! A claim by a new holder sets `acquireTime` and increments `leaseTransitions` (as client-go
//! does); a renew by the holder keeps `acquireTime`. A release clears the holder and shortens
//! the duration to one second. `renewTime`/`acquireTime` are written for people and for
//! `status`; no decision here reads them against a clock.
//! Must never: call a live holder's Lease free, compare a remote time with a local one, or
//! read "now" itself.

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

/// The longest duration a record may declare: a write hold (twice the TTL) of the longest
/// `--lock-ttl` (ten minutes). A longer one (a typo, a hostile record) counts as this, so
/// nobody can freeze a lock for longer than twenty minutes.
pub const MAX_DURATION_MS: i64 = 1_200_000;

/// Who holds a Lease, as judged from how long this process has watched its record unchanged.
/// `expires_at` is the holder's own claim (`renewTime + leaseDurationSeconds`, by the holder's
/// clock): shown to people, never compared with ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    /// Nobody.
    Free,
    /// The identity asking.
    Ours { expires_at: Timestamp },
    /// Someone else, whose record changed less than a duration ago (as watched locally).
    Held {
        holder: String,
        expires_at: Timestamp,
        /// How much longer the record must stay unchanged before a takeover (ms).
        takeover_in_ms: i64,
    },
    /// Someone else, whose record this process watched unchanged for a whole duration.
    Expired {
        holder: String,
        expired_at: Timestamp,
    },
}

/// What identifies one write of a Lease: a change in any part restarts the watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordKey {
    pub resource_version: String,
    pub holder: Option<String>,
    pub renew_time: Option<Timestamp>,
}

/// The record this process last saw and when (monotonic ms) it first saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub key: RecordKey,
    pub since_ms: i64,
}

impl Observation {
    /// Note that `key` was read at `now_ms` (monotonic): the watch goes on if it is the record
    /// seen before, and restarts at `now_ms` otherwise. Returns how long it has stayed unchanged.
    pub fn watch(slot: &mut Option<Observation>, key: RecordKey, now_ms: i64) -> i64 {
        match slot {
            Some(o) if o.key == key => (now_ms - o.since_ms).max(0),
            _ => {
                *slot = Some(Observation {
                    key,
                    since_ms: now_ms,
                });
                0
            }
        }
    }
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

    /// The key of this record as stored at `resource_version`.
    pub fn key(&self, resource_version: &str) -> RecordKey {
        RecordKey {
            resource_version: resource_version.to_owned(),
            holder: self.holder().map(str::to_owned),
            renew_time: self.renew_time,
        }
    }

    /// How long a taker must watch this record unchanged: the declared duration, capped at
    /// [`MAX_DURATION_MS`]; `default_ms` when the record declares none (or a non-positive one).
    pub fn takeover_after_ms(&self, default_ms: i64) -> i64 {
        match self.duration_secs {
            Some(d) if d > 0 => d.saturating_mul(1000).min(MAX_DURATION_MS),
            _ => default_ms.clamp(1, MAX_DURATION_MS),
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

/// Judge `record` for identity `me`, given how long this process has watched it unchanged
/// (`unchanged_ms`, from [`Observation::watch`]); `default_ms` is the duration assumed when the
/// record declares none. A foreign holder counts as expired only after a whole (capped)
/// duration of watching — clocks are never compared.
pub fn judge(record: &LeaseRecord, me: &str, unchanged_ms: i64, default_ms: i64) -> Judgement {
    let (Some(holder), Some(expires_at)) = (record.holder(), record.expires_at()) else {
        return Judgement::Free;
    };
    if holder == me {
        return Judgement::Ours { expires_at };
    }
    let after = record.takeover_after_ms(default_ms);
    if unchanged_ms >= after {
        Judgement::Expired {
            holder: holder.to_owned(),
            expired_at: expires_at,
        }
    } else {
        Judgement::Held {
            holder: holder.to_owned(),
            expires_at,
            takeover_in_ms: after - unchanged_ms.max(0),
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
