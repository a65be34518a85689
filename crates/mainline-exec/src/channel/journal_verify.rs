//! Checking the journal's hash chain, and the checkpoints that let `mainline history --verify`
//! resume instead of re-reading a long chain from record 1.
//!
//! A checkpoint says "on this remote, the chain `refname` verified from record 1 up to `seq`,
//! whose record is commit `commit` with entry hash `hash`". The next verification walks back
//! from the head only until it reaches `seq`; when that record is the same commit with the same
//! hash, the records above it are checked against it (their `prev` links reach it) and the
//! rest of the chain is already known good. When it is not (the ref was rewritten, the record
//! altered, the chain is shorter), the checkpoint is ignored and the whole chain is verified.
//!
//! Why a local file: a checkpoint is a claim this machine made after checking; it is never
//! trusted from the remote (anyone who can push the journal could forge one there).
//! Must never: treat a checkpoint that does not match the chain as verified, or write one for a
//! chain that has a break.

use super::journal::{Entry, Record};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A break in the chain, as `history --verify` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Break {
    pub seq: u64,
    pub commit: mainline_core::CommitId,
    pub problem: String,
}

/// Check the chain oldest-first: sequence numbers count up from 1, each `prev` is the hash of
/// the entry before, and times never go backwards by more than clock skew (5 minutes).
pub fn verify(records: &[Record]) -> Vec<Break> {
    verify_from(None, records)
}

/// [`verify`] of `records` (oldest first) continuing after `anchor`, an entry already verified
/// (`None`: `records` starts at record 1).
pub fn verify_from(anchor: Option<&Entry>, records: &[Record]) -> Vec<Break> {
    let mut breaks = Vec::new();
    let mut before = anchor;
    for r in records {
        let e = &r.entry;
        let expected_seq = before.map_or(1, |b| b.seq + 1);
        if e.seq != expected_seq {
            breaks.push(Break {
                seq: e.seq,
                commit: r.commit.clone(),
                problem: format!(
                    "sequence number {} where {expected_seq} was expected",
                    e.seq
                ),
            });
        }
        let expected_prev = before.map(Entry::hash);
        if e.prev != expected_prev {
            breaks.push(Break {
                seq: e.seq,
                commit: r.commit.clone(),
                problem: format!(
                    "prev is {} but the previous entry hashes to {}",
                    e.prev.as_deref().unwrap_or("(none)"),
                    expected_prev.as_deref().unwrap_or("(none)")
                ),
            });
        }
        if let Some(b) = before {
            if e.time.millis() + 300_000 < b.time.millis() {
                breaks.push(Break {
                    seq: e.seq,
                    commit: r.commit.clone(),
                    problem: format!("time {} is before the previous entry's {}", e.time, b.time),
                });
            }
        }
        before = Some(e);
    }
    breaks
}

/// What a successful verification established.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub remote: String,
    pub refname: String,
    pub seq: u64,
    pub commit: mainline_core::CommitId,
    pub hash: String,
}

impl Checkpoint {
    /// The checkpoint for `record`, the newest record of a chain that verified.
    pub fn at(remote: &str, refname: &str, record: &Record) -> Checkpoint {
        Checkpoint {
            remote: remote.to_owned(),
            refname: refname.to_owned(),
            seq: record.entry.seq,
            commit: record.commit.clone(),
            hash: record.entry.hash(),
        }
    }

    /// Whether `record` is the record this checkpoint names.
    pub fn matches(&self, record: &Record) -> bool {
        record.entry.seq == self.seq
            && record.commit == self.commit
            && record.entry.hash() == self.hash
    }
}

/// Where checkpoints of `refname` on `remote` live under the cache root.
pub fn path(cache_root: &Path, remote: &str, refname: &str) -> PathBuf {
    use sha2::{Digest as _, Sha256};
    let key = hex::encode(Sha256::digest(format!("{remote}\n{refname}").as_bytes()));
    cache_root
        .join("journal-checkpoints")
        .join(format!("{}.json", &key[..32]))
}

/// The checkpoint at `path`, if there is a readable one for this remote and ref (a damaged or
/// foreign file is ignored: the whole chain is verified instead).
pub fn load(path: &Path, remote: &str, refname: &str) -> Option<Checkpoint> {
    let text = std::fs::read_to_string(path).ok()?;
    let c: Checkpoint = serde_json::from_str(&text).ok()?;
    (c.remote == remote && c.refname == refname).then_some(c)
}

/// Write `c` to `path` whole (a temporary file renamed over it), so a killed run leaves the old
/// checkpoint or the new one, never half of one.
pub fn save(path: &Path, c: &Checkpoint) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = tempfile::NamedTempFile::new_in(dir)?;
    serde_json::to_writer(&tmp, c).map_err(std::io::Error::other)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
