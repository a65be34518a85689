//! The lock record and the TTL rules every holder and taker share: what the lock ref's commit
//! says (holder, nonce, the holder's times, its declared TTL), how it is stored in the commit
//! message, and the bounds a declared TTL is held to.
//!
//! Why apart from `GitLock`: the record is a format other runs (and `status`) read, and the TTL
//! bounds are the contract between holders and takers; the CAS protocol that moves the ref is
//! separate and changes more often.
//! Must never: let a record's declared TTL exceed [`MAX_TTL_MS`] where a taker judges expiry
//! (`effective_ttl_ms`), or make the times written in a record count for expiry.

use mainline_core::Timestamp;
use serde::{Deserialize, Serialize};

/// The default TTL of the git lock (`--lock-ttl`).
pub const DEFAULT_TTL_MS: i64 = 60_000;
/// The shortest `--lock-ttl`: below it, git round trips eat the lease.
pub const MIN_TTL_MS: i64 = 2_000;
/// The longest TTL a record may declare; a longer one (a typo, a hostile record) counts as this.
pub const MAX_TTL_MS: i64 = 600_000;

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
    /// The TTL takers honour: the declared one, capped at [`MAX_TTL_MS`].
    pub fn effective_ttl_ms(&self) -> i64 {
        self.ttl_ms
            .unwrap_or(DEFAULT_TTL_MS)
            .clamp(MIN_TTL_MS, MAX_TTL_MS)
    }

    pub(super) fn parse(message: &str) -> Result<LockRecord, String> {
        let body = message
            .find('{')
            .map(|i| message[i..].trim())
            .ok_or_else(|| "no JSON body".to_owned())?;
        serde_json::from_str(body).map_err(|e| format!("unreadable lock record: {e}"))
    }
}
