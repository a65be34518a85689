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

use super::ports::{Cas, Clock, Repo, RepoError};
use super::refs::ChannelKey;
use mainline_core::{Action, CommitId, Digest, Timestamp, Verdict};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// Current entry format.
pub const FORMAT: u32 = 1;
/// How long an append keeps re-parenting after lost races before giving up. Each lost race
/// means another writer's record landed, so progress is made overall; the deadline only bounds
/// a pathological pile-up.
const APPEND_DEADLINE_MS: i64 = 60_000;

/// What an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// About to write the channel (written before the move: a crash leaves a visible intent).
    Intent,
    /// The channel was written and read back.
    Moved,
    /// An intent whose write never happened (found by a later run).
    Abandoned,
    /// The channel was found naming something no recorded move put there (a hand move, or a
    /// writer that crashed after its write but before recording it).
    Observed,
    Pin,
    Unpin,
    /// A request the invariant refused (nothing was written).
    Refused,
}

/// One journal record. Field names are a public contract (`history -o json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub format: u32,
    /// 1 for the first record of a channel, then +1 per record.
    pub seq: u64,
    /// sha256 (hex) of the previous entry's JSON; `None` only for seq 1.
    pub prev: Option<String>,
    pub channel: String,
    pub kind: EntryKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_digest: Option<Digest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_commit: Option<CommitId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_digest: Option<Digest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_commit: Option<CommitId>,
    /// What the channel names right after this record (for an intent: still the old digest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Digest>,
    /// For `moved`/`abandoned`: the seq of the intent this settles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<u64>,
    /// Who acted: a CI run URL, user@host, or `guard@host`.
    pub actor: String,
    pub reason: String,
    pub time: Timestamp,
}

impl Entry {
    /// A new entry with the chain fields left for `append` to fill.
    pub fn new(
        channel: &str,
        kind: EntryKind,
        actor: &str,
        reason: &str,
        time: Timestamp,
    ) -> Entry {
        Entry {
            format: FORMAT,
            seq: 0,
            prev: None,
            channel: channel.to_owned(),
            kind,
            action: None,
            verdict: None,
            from_digest: None,
            from_commit: None,
            to_digest: None,
            to_commit: None,
            after: None,
            intent: None,
            actor: actor.to_owned(),
            reason: reason.to_owned(),
            time,
        }
    }

    /// The entry's JSON, exactly as stored and hashed.
    pub fn json(&self) -> String {
        serde_json::to_string(self).expect("an entry always serialises")
    }

    /// sha256 of [`Entry::json`], hex.
    pub fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.json().as_bytes()))
    }

    fn message(&self) -> String {
        let what = match (&self.kind, &self.to_commit) {
            (kind, Some(c)) => format!("{kind:?} {}", c.short()),
            (kind, None) => format!("{kind:?}"),
        };
        format!(
            "mainline journal #{} {}\n\n{}\n",
            self.seq,
            what.to_lowercase(),
            self.json()
        )
    }

    fn parse(message: &str) -> Result<Entry, String> {
        let body = message
            .find('{')
            .map(|i| message[i..].trim())
            .ok_or_else(|| "no JSON body".to_owned())?;
        serde_json::from_str(body).map_err(|e| format!("unreadable entry: {e}"))
    }
}

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

pub use super::journal_verify::{verify, Break};

/// Which records settle what killed writers left (pure; the executor appends them under the
/// lock). `window` is the journal's tail, newest first, ending at (and including) the last
/// settling record (`moved` / `abandoned` / `observed`) when there is one. `current` is what the
/// channel names now; `targets` maps an intent's seq to the digest it meant to write (for a
/// packed target, its commit's artifact). `template` carries channel, actor and time.
///
/// The newest intent whose target the channel names now landed (`moved`), every other intent
/// did not (`abandoned`); with no landed intent, a channel that is not where the window's first
/// record left it changed without a recorded move (`observed`). The position each record
/// reports is where the channel stands as the settlements are read in order. (Not a refusal's
/// `after`: refusals are recorded without the lock, so they may already see the unrecorded
/// write being settled.)
pub fn settlement(
    window: &[Entry],
    current: Option<&Digest>,
    targets: &std::collections::BTreeMap<u64, Digest>,
    template: &Entry,
) -> Vec<Entry> {
    let settles = |k: EntryKind| {
        matches!(
            k,
            EntryKind::Moved | EntryKind::Abandoned | EntryKind::Observed
        )
    };
    let known = window
        .last()
        .filter(|e| settles(e.kind))
        .and_then(|e| e.after.clone());
    let mut intents: Vec<&Entry> = window
        .iter()
        .filter(|e| e.kind == EntryKind::Intent)
        .collect();
    intents.reverse(); // oldest first
    let landed = intents
        .iter()
        .rev()
        .find(|e| current.is_some() && targets.get(&e.seq) == current)
        .map(|e| e.seq);
    let mut out = Vec::new();
    let mut position = known.clone();
    for h in intents {
        let mut e = h.clone();
        e.intent = Some(h.seq);
        e.time = template.time;
        e.actor = template.actor.clone();
        if Some(h.seq) == landed {
            e.kind = EntryKind::Moved;
            e.from_digest = position.clone();
            e.to_digest = current.cloned();
            e.after = current.cloned();
            position = current.cloned();
            e.reason = format!(
                "settled by a later run (the writer stopped before recording it): {}",
                h.reason
            );
        } else {
            e.kind = EntryKind::Abandoned;
            e.after = position.clone();
            e.reason = "the writer stopped before writing the channel".into();
        }
        out.push(e);
    }
    if landed.is_none() && known.as_ref() != current && !(window.is_empty()) {
        let mut e = template.clone();
        e.kind = EntryKind::Observed;
        e.reason = "the channel changed without a recorded move (moved by hand, or by a run without the journal)".into();
        e.from_digest = position;
        e.to_digest = current.cloned();
        e.after = current.cloned();
        out.push(e);
    }
    out
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
