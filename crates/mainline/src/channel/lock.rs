//! The channel lock: a compare-and-swap on a git ref, `refs/mainline/lock/<channel key>`, on the
//! source remote — a system every writer already reaches. (A registry tag cannot be a lock: the
//! distribution API has no conditional PUT.)
//!
//! The ref points at a record commit naming the holder, a nonce and an expiry. Acquire: create
//! the ref from "absent", or take it over from an expired holder by swapping from the exact
//! commit that was read. Renew: swap from our own record to a fresh one with a later expiry.
//! Release: delete from our own record. Every step is a CAS, so of several writers exactly one
//! wins; a holder whose renew fails (someone took over after expiry) has lost the lock and must
//! stop before writing.
//!
//! Must never: take over a lock before its expiry, write (or let the executor write) after a
//! failed renew, or treat an unreadable lock record as free.

use super::ports::{Cas, Clock, Repo, RepoError};
use super::refs::ChannelKey;
use mainline_core::{CommitId, Timestamp};
use serde::{Deserialize, Serialize};

/// Who holds the lock and until when (the record's JSON; shown by `status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRecord {
    pub holder: String,
    /// Distinguishes two runs of the same holder identity.
    pub nonce: String,
    pub acquired_at: Timestamp,
    pub expires_at: Timestamp,
}

impl LockRecord {
    fn message(&self) -> String {
        format!(
            "mainline lock held by {}\n\n{}\n",
            self.holder,
            serde_json::to_string(self).expect("a lock record always serialises")
        )
    }
    fn parse(message: &str) -> Result<LockRecord, String> {
        let body = message
            .find('{')
            .map(|i| message[i..].trim())
            .ok_or_else(|| "no JSON body".to_owned())?;
        serde_json::from_str(body).map_err(|e| format!("unreadable lock record: {e}"))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("lock {refname}: {source}")]
    Repo {
        refname: String,
        #[source]
        source: RepoError,
    },
    #[error("lock {refname} is held by {holder} until {expires_at}; gave up waiting after {waited_ms} ms")]
    Busy {
        refname: String,
        holder: String,
        expires_at: Timestamp,
        waited_ms: u64,
    },
    #[error("lock {refname} was lost: another writer took it over after it expired")]
    Lost { refname: String },
    #[error(
        "lock {refname} points at an unreadable record ({reason}); delete the ref if it is stale"
    )]
    Unreadable { refname: String, reason: String },
}

/// The lock while held: the record commit we own.
#[derive(Debug, Clone)]
pub struct Held {
    pub commit: CommitId,
    pub record: LockRecord,
}

/// The lock of one channel.
pub struct GitLock<'a> {
    pub repo: &'a dyn Repo,
    pub clock: &'a dyn Clock,
    pub refname: String,
    pub branch: String,
    pub holder: String,
    /// How long a holder may go without renewing.
    pub ttl_ms: i64,
    /// How long `acquire` waits for a live holder before giving up.
    pub wait_ms: u64,
}

impl<'a> GitLock<'a> {
    pub fn new(
        repo: &'a dyn Repo,
        clock: &'a dyn Clock,
        key: &ChannelKey,
        branch: &str,
        holder: &str,
    ) -> GitLock<'a> {
        GitLock {
            repo,
            clock,
            refname: key.lock_ref(),
            branch: branch.to_owned(),
            holder: holder.to_owned(),
            ttl_ms: 60_000,
            wait_ms: 120_000,
        }
    }

    fn err(&self, source: RepoError) -> LockError {
        LockError::Repo {
            refname: self.refname.clone(),
            source,
        }
    }

    /// The current holder, if any (expired holders included: compare `expires_at` with now).
    ///
    /// The ref is listed, then its record fetched; a holder may release or renew in between,
    /// which makes the listed commit unfetchable. That is a changed lock, not an error: list
    /// again (a few times, then report).
    pub fn current(&self) -> Result<Option<Held>, LockError> {
        let mut attempts = 0;
        loop {
            let view = self.repo.view(&self.branch).map_err(|e| self.err(e))?;
            let Some(commit) = view.mainline_refs.get(&self.refname).cloned() else {
                return Ok(None);
            };
            let message = match self.repo.read_record(&self.refname, &commit) {
                Ok(m) => m,
                Err(RepoError::CommitNotFound { .. }) if attempts < 8 => {
                    attempts += 1;
                    self.clock.sleep(10 * attempts);
                    continue;
                }
                Err(e) => return Err(self.err(e)),
            };
            let record = LockRecord::parse(&message).map_err(|reason| LockError::Unreadable {
                refname: self.refname.clone(),
                reason,
            })?;
            return Ok(Some(Held { commit, record }));
        }
    }

    fn record(&self, acquired_at: Timestamp) -> LockRecord {
        let now = self.clock.now();
        LockRecord {
            holder: self.holder.clone(),
            nonce: nonce(now),
            acquired_at,
            expires_at: now.plus_millis(self.ttl_ms),
        }
    }

    /// Take the lock: create it, or take it over after its holder's expiry; wait (polling) while
    /// a live holder has it, up to `wait_ms`.
    pub fn acquire(&self) -> Result<Held, LockError> {
        let start = self.clock.now();
        let mut pause = 50u64;
        loop {
            let current = self.current()?;
            let now = self.clock.now();
            let expected = match &current {
                None => None,
                Some(h) if h.record.expires_at <= now => Some(h.commit.clone()),
                Some(h) => {
                    let waited = (now.millis() - start.millis()).max(0) as u64;
                    if waited >= self.wait_ms {
                        return Err(LockError::Busy {
                            refname: self.refname.clone(),
                            holder: h.record.holder.clone(),
                            expires_at: h.record.expires_at,
                            waited_ms: waited,
                        });
                    }
                    self.clock.sleep(pause);
                    pause = (pause * 2).min(1_000);
                    continue;
                }
            };
            let record = self.record(now);
            let commit = self
                .repo
                .write_record(&record.message(), &[], now)
                .map_err(|e| self.err(e))?;
            match self
                .repo
                .cas_ref(&self.refname, expected.as_ref(), Some(&commit))
                .map_err(|e| self.err(e))?
            {
                Cas::Updated => return Ok(Held { commit, record }),
                Cas::Conflict { .. } => self.clock.sleep(pause.min(200)),
            }
        }
    }

    /// Extend our hold. Fails with `Lost` when someone else's record is there now: the caller
    /// must stop before writing anything.
    pub fn renew(&self, held: &mut Held) -> Result<(), LockError> {
        let record = self.record(held.record.acquired_at);
        let commit = self
            .repo
            .write_record(&record.message(), &[], self.clock.now())
            .map_err(|e| self.err(e))?;
        match self
            .repo
            .cas_ref(&self.refname, Some(&held.commit), Some(&commit))
            .map_err(|e| self.err(e))?
        {
            Cas::Updated => {
                *held = Held { commit, record };
                Ok(())
            }
            Cas::Conflict { .. } => Err(LockError::Lost {
                refname: self.refname.clone(),
            }),
        }
    }

    /// Give the lock back (only if it is still ours; a conflict means it already was not).
    pub fn release(&self, held: Held) -> Result<(), LockError> {
        self.repo
            .cas_ref(&self.refname, Some(&held.commit), None)
            .map_err(|e| self.err(e))
            .map(|_| ())
    }
}

/// A nonce from the time and the process: unique enough to tell two runs apart.
fn nonce(now: Timestamp) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}-{}",
        std::process::id(),
        now.millis(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
