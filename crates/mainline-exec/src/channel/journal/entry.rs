//! The journal entry: what one record says, its JSON (the stored and hashed form, a public
//! contract through `history -o json`) and the commit message that carries it.
//!
//! Why apart from the reader: the format is the contract every reader of the chain relies on
//! (the CLI, the guard, `history --verify`), while the reader/appender is how it moves over
//! git; the format changes rarely and deliberately, the plumbing may change freely.
//! Must never: rename or drop a field (add optional ones, bump `FORMAT` otherwise), or
//! serialise an entry two ways (its hash is of exactly `Entry::json`).

use mainline_core::{Action, CommitId, Digest, Timestamp, Verdict};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// Current entry format.
pub const FORMAT: u32 = 1;

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

    pub(super) fn message(&self) -> String {
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

    pub(super) fn parse(message: &str) -> Result<Entry, String> {
        let body = message
            .find('{')
            .map(|i| message[i..].trim())
            .ok_or_else(|| "no JSON body".to_owned())?;
        serde_json::from_str(body).map_err(|e| format!("unreadable entry: {e}"))
    }
}
