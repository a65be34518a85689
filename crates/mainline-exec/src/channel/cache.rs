//! A local cache of facts that never change once true, so the common reconcile ("nothing
//! changed") costs one manifest HEAD and one ref listing:
//! - manifest digest → the commit in its revision annotation (a digest names fixed bytes);
//! - artifact tag `sha-<commit>` in a store → its digest (mainline never moves artifact tags);
//! - manifest digest → its bytes, for the last [`MANIFESTS`] manifests read (a digest names
//!   fixed bytes; checked against the digest on every use), so a restore to an artifact this
//!   runner read before sends no GET, and one run never GETs the same manifest twice.
//!
//! Only positive answers are cached; a miss always asks the store. Losing the file only costs
//! requests. Writes are atomic (temp file + rename); concurrent writers may drop each other's
//! additions, which is harmless for a cache.
//! Must never: cache evidence (a signature can be revoked) or a channel tag (it moves).

use mainline_core::{CommitId, Digest};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

/// How many manifests' bytes the cache keeps (the newest; each is a few hundred bytes).
pub const MANIFESTS: usize = 32;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CachedManifest {
    digest: Digest,
    media_type: String,
    /// The bytes, hex.
    bytes: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct Entries {
    /// manifest digest → commit recorded in it (None: it records no parseable revision).
    revisions: BTreeMap<Digest, Option<CommitId>>,
    /// "<store location>|<commit>" → digest of `sha-<commit>`.
    artifacts: BTreeMap<String, Digest>,
    /// The newest last.
    manifests: Vec<CachedManifest>,
}

/// The fact cache of one channel's store.
pub struct FactCache {
    path: Option<PathBuf>,
    store: String,
    entries: Mutex<(Entries, bool)>,
}

impl FactCache {
    /// Load the cache at `path` (a missing or unreadable file is an empty cache).
    pub fn load(path: Option<PathBuf>, store: String) -> FactCache {
        let entries = path
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        FactCache {
            path,
            store,
            entries: Mutex::new((entries, false)),
        }
    }

    /// An in-memory cache that is never written (tests, simulator).
    pub fn memory(store: String) -> FactCache {
        FactCache::load(None, store)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Entries, bool)> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether no manifest's revision is known yet (a fresh runner): what the channel names
    /// will need its manifest read, so it is read with its bytes at once.
    pub fn knows_no_revision(&self) -> bool {
        self.lock().0.revisions.is_empty()
    }

    pub fn revision(&self, digest: &Digest) -> Option<Option<CommitId>> {
        self.lock().0.revisions.get(digest).cloned()
    }

    pub fn set_revision(&self, digest: &Digest, commit: Option<CommitId>) {
        let mut g = self.lock();
        if g.0.revisions.insert(digest.clone(), commit.clone()) != Some(commit) {
            g.1 = true;
        }
    }

    /// `<store location>|<commit>` (built without the formatting machinery: it is on every
    /// gather's path).
    fn artifact_key(&self, commit: &CommitId) -> String {
        let mut key = String::with_capacity(self.store.len() + 1 + commit.as_str().len());
        key.push_str(&self.store);
        key.push('|');
        key.push_str(commit.as_str());
        key
    }

    pub fn artifact(&self, commit: &CommitId) -> Option<Digest> {
        let key = self.artifact_key(commit);
        self.lock().0.artifacts.get(&key).cloned()
    }

    pub fn set_artifact(&self, commit: &CommitId, digest: &Digest) {
        let key = self.artifact_key(commit);
        let mut g = self.lock();
        if g.0.artifacts.insert(key, digest.clone()).as_ref() != Some(digest) {
            g.1 = true;
        }
    }

    /// The bytes of manifest `digest` if they are cached, as `(media type, bytes)`; bytes that
    /// do not hash to `digest` (a damaged file) count as absent.
    pub fn manifest(&self, digest: &Digest) -> Option<(String, Vec<u8>)> {
        let g = self.lock();
        let m = g.0.manifests.iter().find(|m| &m.digest == digest)?;
        let bytes = hex::decode(&m.bytes).ok()?;
        (Digest::of(&bytes) == *digest).then(|| (m.media_type.clone(), bytes))
    }

    /// Keep the bytes of a manifest just read by digest (only bytes that hash to it).
    pub fn set_manifest(&self, digest: &Digest, media_type: &str, bytes: &[u8]) {
        if Digest::of(bytes) != *digest {
            return;
        }
        let mut g = self.lock();
        if g.0.manifests.iter().any(|m| &m.digest == digest) {
            return;
        }
        g.0.manifests.push(CachedManifest {
            digest: digest.clone(),
            media_type: media_type.to_owned(),
            bytes: hex::encode(bytes),
        });
        let over = g.0.manifests.len().saturating_sub(MANIFESTS);
        g.0.manifests.drain(..over);
        g.1 = true;
    }

    /// Write the cache back if it changed. Failures are ignored: it is only a cache.
    pub fn save(&self) {
        let Some(path) = &self.path else { return };
        let g = self.lock();
        if !g.1 {
            return;
        }
        let Ok(bytes) = serde_json::to_vec(&g.0) else {
            return;
        };
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
            if let Ok(mut tmp) = tempfile::NamedTempFile::new_in(dir) {
                use std::io::Write;
                if tmp.write_all(&bytes).is_ok() {
                    let _ = tmp.persist(path);
                }
            }
        }
    }
}
