//! The journal: every channel move, pin, unpin and refusal, as a hash-chained record on the
//! source remote, at `refs/mainline/journal/<channel key>`.
//!
//! Why there: the git remote is a system every user already has, readable from any machine that
//! can fetch (CI, a laptop, the guard), it needs no new server, and a ref update with its
//! expected old value is a real compare-and-swap. Each record is a commit (empty tree, fixed
//! identity) whose parent is the previous record and whose message carries the entry as JSON,
//! including `prev`, the sha256 of the previous entry's JSON. So the chain is hash-linked twice
//! (git's object ids and our own), and `mainline history --verify` checks ours without trusting
//! git. Appends are compare-and-swap: a writer that lost the race re-reads the head and
//! re-parents its record, so concurrent appends never lose a record. (The registry was the
//! alternative: it has no conditional write, so concurrent appends could silently drop one.)
//!
//! Must never: rewrite or drop a record, append without the CAS, or accept an entry it cannot
//! parse as valid during verification.

mod entry;
mod settle;

pub use super::journal_verify::{verify, Break};
pub use entry::{Entry, EntryKind, FORMAT};
pub use settle::settlement;

use super::ports::{Cas, Clock, Repo, RepoError};
use super::refs::ChannelKey;
use mainline_core::CommitId;
use serde::Serialize;

/// How long an append keeps re-parenting after lost races before giving up. Each lost race
/// means another writer's record landed, so progress is made overall; the deadline only bounds
/// a pathological pile-up.
const APPEND_DEADLINE_MS: i64 = 60_000;

/// Why the journal could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal {refname}: {source}")]
    Repo {
        refname: String,
        #[source]
        source: RepoError,
    },
    #[error("journal {refname}: record {commit} is unreadable ({reason})")]
    Unreadable {
        refname: String,
        commit: CommitId,
        reason: String,
    },
    #[error("journal {refname}: {attempts} appends in a row lost the race to other writers")]
    Contended { refname: String, attempts: u32 },
}

/// A record as read back: the entry and the commit holding it.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    pub commit: CommitId,
    #[serde(flatten)]
    pub entry: Entry,
}

/// Records already read and parsed, by commit: a record commit never changes, so one process
/// reads and parses each at most once (the executor keeps one per run; see `Journal::with_memo`).
pub type RecordMemo = std::sync::Mutex<std::collections::BTreeMap<CommitId, Entry>>;

/// The journal of one channel on one remote.
pub struct Journal<'a> {
    pub repo: &'a dyn Repo,
    pub clock: &'a dyn Clock,
    pub refname: String,
    pub branch: String,
    memo: Option<&'a RecordMemo>,
}

impl<'a> Journal<'a> {
    pub fn new(
        repo: &'a dyn Repo,
        clock: &'a dyn Clock,
        key: &ChannelKey,
        branch: &str,
    ) -> Journal<'a> {
        Journal {
            repo,
            clock,
            refname: key.journal_ref(),
            branch: branch.to_owned(),
            memo: None,
        }
    }

    /// Remember parsed records in `memo` and answer repeated reads of a commit from it (no
    /// second `read_record`, no second parse). The ref listing is never memoised: the head is
    /// always read from the remote.
    pub fn with_memo(mut self, memo: &'a RecordMemo) -> Journal<'a> {
        self.memo = Some(memo);
        self
    }

    fn err(&self, source: RepoError) -> JournalError {
        JournalError::Repo {
            refname: self.refname.clone(),
            source,
        }
    }

    /// The head record, if any.
    pub fn head(&self) -> Result<Option<Record>, JournalError> {
        let view = self.repo.view(&self.branch).map_err(|e| self.err(e))?;
        match view.mainline_refs.get(&self.refname) {
            None => Ok(None),
            Some(c) => self.read(c).map(Some),
        }
    }

    fn read(&self, commit: &CommitId) -> Result<Record, JournalError> {
        let memo = |m: &'a RecordMemo| m.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = self.memo.and_then(|m| memo(m).get(commit).cloned()) {
            return Ok(Record {
                commit: commit.clone(),
                entry,
            });
        }
        let message = self
            .repo
            .read_record(&self.refname, commit)
            .map_err(|e| self.err(e))?;
        let entry = Entry::parse(&message).map_err(|reason| JournalError::Unreadable {
            refname: self.refname.clone(),
            commit: commit.clone(),
            reason,
        })?;
        if let Some(m) = self.memo {
            memo(m).insert(commit.clone(), entry.clone());
        }
        Ok(Record {
            commit: commit.clone(),
            entry,
        })
    }

    /// The record at `commit` (from the memo when this run read it already).
    pub fn record(&self, commit: &CommitId) -> Result<Record, JournalError> {
        self.read(commit)
    }

    /// `entry` as the record after `head` (`None`: the first record), written locally but not
    /// pushed: for a caller that moves the journal ref in one push with other refs, then calls
    /// [`Journal::remember`] once the remote took it.
    pub fn prepare(&self, mut entry: Entry, head: Option<&Record>) -> Result<Record, JournalError> {
        let parents = match head {
            Some(h) => {
                entry.seq = h.entry.seq + 1;
                entry.prev = Some(h.entry.hash());
                vec![h.commit.clone()]
            }
            None => {
                entry.seq = 1;
                entry.prev = None;
                vec![]
            }
        };
        let commit = self
            .repo
            .write_record(&entry.message(), &parents, entry.time)
            .map_err(|e| self.err(e))?;
        Ok(Record { commit, entry })
    }

    /// Remember a record this run pushed (a record commit never changes).
    pub fn remember(&self, record: &Record) {
        if let Some(m) = self.memo {
            let mut m = m.lock().unwrap_or_else(|p| p.into_inner());
            m.insert(record.commit.clone(), record.entry.clone());
        }
    }

    /// Append `entry` after the current head (filling `seq` and `prev`), retrying on a lost
    /// race so no record is ever lost. Returns the record as stored.
    pub fn append(&self, mut entry: Entry) -> Result<Record, JournalError> {
        let start = self.clock.now();
        let mut attempts: u32 = 0;
        loop {
            attempts += 1;
            let head = self.head()?;
            let (parents, expected) = match &head {
                Some(h) => {
                    entry.seq = h.entry.seq + 1;
                    entry.prev = Some(h.entry.hash());
                    (vec![h.commit.clone()], Some(h.commit.clone()))
                }
                None => {
                    entry.seq = 1;
                    entry.prev = None;
                    (vec![], None)
                }
            };
            let commit = self
                .repo
                .write_record(&entry.message(), &parents, entry.time)
                .map_err(|e| self.err(e))?;
            match self
                .repo
                .cas_ref(&self.refname, expected.as_ref(), Some(&commit))
                .map_err(|e| self.err(e))?
            {
                Cas::Updated => {
                    if let Some(m) = self.memo {
                        let mut m = m.lock().unwrap_or_else(|p| p.into_inner());
                        m.insert(commit.clone(), entry.clone());
                    }
                    return Ok(Record { commit, entry });
                }
                Cas::Conflict { .. } => {
                    if self.clock.now().millis() - start.millis() > APPEND_DEADLINE_MS {
                        return Err(JournalError::Contended {
                            refname: self.refname.clone(),
                            attempts,
                        });
                    }
                    // Jittered, growing pauses so racing appenders spread out instead of
                    // colliding again in lockstep.
                    let cap = 20u64 << attempts.min(4);
                    self.clock.sleep(5 + jitter(&entry, attempts) % cap);
                }
            }
        }
    }

    /// Records from the head backwards (newest first), up to and including the first for which
    /// `stop` holds, or `max` records.
    pub fn tail(
        &self,
        max: usize,
        stop: impl Fn(&Entry) -> bool,
    ) -> Result<Vec<Record>, JournalError> {
        let head = self.head()?;
        self.tail_from(head, max, stop)
    }

    /// [`Journal::tail`] from a head already listed (`commit`, e.g. from the run's ref listing):
    /// no second listing of the remote.
    pub fn tail_from_commit(
        &self,
        commit: &CommitId,
        max: usize,
        stop: impl Fn(&Entry) -> bool,
    ) -> Result<Vec<Record>, JournalError> {
        let head = self.read(commit)?;
        self.tail_from(Some(head), max, stop)
    }

    fn tail_from(
        &self,
        head: Option<Record>,
        max: usize,
        stop: impl Fn(&Entry) -> bool,
    ) -> Result<Vec<Record>, JournalError> {
        let mut out = Vec::new();
        let mut next = head;
        while let Some(rec) = next {
            let done = stop(&rec.entry) || out.len() + 1 >= max;
            let parent = if done {
                None
            } else {
                self.repo
                    .record_parents(&rec.commit)
                    .map_err(|e| self.err(e))?
                    .first()
                    .cloned()
            };
            out.push(rec);
            next = match parent {
                Some(p) => Some(self.read(&p)?),
                None => None,
            };
        }
        Ok(out)
    }

    /// The newest `k` records, oldest first: read back from the head, one record at a time, so
    /// the cost is O(k) whatever the chain's length.
    pub fn last(&self, k: usize) -> Result<Vec<Record>, JournalError> {
        if k == 0 {
            return Ok(Vec::new());
        }
        let mut out = self.tail(k, |_| false)?;
        out.reverse();
        Ok(out)
    }

    /// Every record, oldest first (O(chain): for `history` of the whole chain; the guard and
    /// `--last` use [`Journal::last`]).
    pub fn records(&self) -> Result<Vec<Record>, JournalError> {
        let mut out = Vec::new();
        let mut next = match self.head()? {
            None => return Ok(out),
            Some(h) => Some(h),
        };
        while let Some(rec) = next {
            let parents = self
                .repo
                .record_parents(&rec.commit)
                .map_err(|e| self.err(e))?;
            next = match parents.first() {
                Some(p) => Some(self.read(p)?),
                None => None,
            };
            out.push(rec);
        }
        out.reverse();
        Ok(out)
    }
}

/// A pseudo-random pause component from the entry and the attempt: different writers (different
/// actors, times, reasons) get different pauses without a random number generator — and the
/// same inputs give the same pause, so a simulated history replays exactly.
fn jitter(entry: &Entry, attempt: u32) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    entry.actor.hash(&mut h);
    entry.time.millis().hash(&mut h);
    entry.reason.hash(&mut h);
    attempt.hash(&mut h);
    h.finish()
}
