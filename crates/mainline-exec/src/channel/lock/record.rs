//! The lock record and the TTL rules every holder and taker share: what the lock ref's commit
//! says (holder, nonce, the holder's times, its declared TTL), how it is stored in the commit
//! message, and the bounds a declared TTL is held to.
//!
//! Why apart from `GitLock`: the record is a format other runs (and `status`) read, and the TTL
//! bounds are the contract between holders and takers; the CAS protocol that moves the ref is
//! separate and changes more often.
//! Must never: let a record's declared TTL exceed [`MAX_DECLARED_TTL_MS`] where a taker judges
//! expiry (`effective_ttl_ms`), or make the times written in a record count for expiry.

use mainline_core::Timestamp;
use serde::{Deserialize, Serialize};

/// The default TTL of the git lock (`--lock-ttl`).
pub const DEFAULT_TTL_MS: i64 = 60_000;
/// How long a run waits for another holder by default (`--lock-wait`): three TTLs, so a
/// run that finds a writer killed mid-write (its write hold is two TTLs, see
/// [`write_hold_ms`]) still takes over instead of giving up just before it could.
pub fn default_wait_ms(ttl_ms: i64) -> u64 {
    u64::try_from(ttl_ms.saturating_mul(3)).unwrap_or(0)
}

/// The shortest `--lock-ttl`: below it, git round trips eat the lease.
pub const MIN_TTL_MS: i64 = 2_000;
/// The longest `--lock-ttl`.
pub const MAX_TTL_MS: i64 = 600_000;
/// The longest TTL a record may declare: a write hold (twice the TTL, see
/// [`write_hold_ms`]) of the longest `--lock-ttl`. A longer one (a typo, a hostile record)
/// counts as this.
pub const MAX_DECLARED_TTL_MS: i64 = 2 * MAX_TTL_MS;

/// The TTL a holder declares right before a registry write attempt: its own TTL twice over.
/// One TTL bounds the attempt (with what a renewal leaves of it); the other is the window in
/// which a request cut off without an answer may still land. Takers watch a record for its
/// declared TTL, so a late landing inside that window happens before anyone else can hold the
/// lock — even when the holder was killed mid-write and never renews again.
pub fn write_hold_ms(ttl_ms: i64) -> i64 {
    ttl_ms.saturating_mul(2).min(MAX_DECLARED_TTL_MS)
}

/// How much of a lease the holder keeps back from its own reckoning: covers the time between
/// our send of a renew and the remote applying it, and clock-rate differences between machines.
pub fn safety_margin_ms(ttl_ms: i64) -> i64 {
    (ttl_ms / 10).clamp(200, 5_000)
}

/// Who holds the lock (the record's JSON; shown by `status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRecord {
    pub holder: String,
    /// Distinguishes two runs of the same holder identity.
    pub nonce: String,
    /// By the holder's clock: for people reading `status`, never for judging expiry.
    pub acquired_at: Timestamp,
    /// By the holder's clock: for people reading `status`, never for judging expiry.
    pub expires_at: Timestamp,
    /// How long the holder may go without renewing. Records written before this field existed
    /// count as [`DEFAULT_TTL_MS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<i64>,
}

impl LockRecord {
    pub(super) fn message(&self) -> String {
        format!(
            "mainline lock held by {}\n\n{}\n",
            self.holder,
            serde_json::to_string(self).expect("a lock record always serialises")
        )
    }
    /// The TTL takers honour: the declared one, capped at [`MAX_DECLARED_TTL_MS`].
    pub fn effective_ttl_ms(&self) -> i64 {
        self.ttl_ms
            .unwrap_or(DEFAULT_TTL_MS)
            .clamp(MIN_TTL_MS, MAX_DECLARED_TTL_MS)
    }

    pub(super) fn parse(message: &str) -> Result<LockRecord, String> {
        let body = message
            .find('{')
            .map(|i| message[i..].trim())
            .ok_or_else(|| "no JSON body".to_owned())?;
        serde_json::from_str(body).map_err(|e| format!("unreadable lock record: {e}"))
    }
}
