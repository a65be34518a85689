//! A local cache of facts that never change once true, so the common reconcile ("nothing
//! changed") costs one manifest HEAD and one ref listing:
//! - manifest digest → the commit in its revision annotation (a digest names fixed bytes);
//! - artifact tag `sha-<commit>` in a store → its digest (mainline never moves artifact tags);
//! - manifest digest → its bytes, for the last [`MANIFESTS`] manifests read (a digest names
//!   fixed bytes; checked against the digest when they enter: read from the file or kept after
//!   a GET), so a restore to an artifact this runner read before sends no GET, and one run
//!   never GETs the same manifest twice.
//!
//! In memory the bytes are kept as bytes; the file holds them as hex (its format is unchanged):
//! converting on every read and keep was most of the cost of a gather in the simulator.
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
    /// The bytes (hex in the file).
    #[serde(with = "hex_bytes")]
    bytes: Vec<u8>,
}

/// `Vec<u8>` as a hex string, the file's format for manifest bytes.
mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        // Not hex (a damaged file): no bytes, which hash to no digest and are dropped on load;
        // the rest of the file still counts.
        let text = String::deserialize(d)?;
        Ok(hex::decode(text).unwrap_or_default())
    }
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
        let mut entries: Entries = path
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        // Bytes that do not hash to their digest (a damaged file) are dropped here, once.
        entries
            .manifests
            .retain(|m| Digest::of(&m.bytes) == m.digest);
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

    /// The bytes of manifest `digest` if they are cached, as `(media type, bytes)` (only bytes
    /// that hash to `digest` ever enter: see `load` and `set_manifest`).
    pub fn manifest(&self, digest: &Digest) -> Option<(String, Vec<u8>)> {
        let g = self.lock();
        let m = g.0.manifests.iter().find(|m| &m.digest == digest)?;
        Some((m.media_type.clone(), m.bytes.clone()))
    }

    /// Keep the bytes of a manifest just read by digest (only bytes that hash to it).
    pub fn set_manifest(&self, digest: &Digest, media_type: &str, bytes: &[u8]) {
        if self.lock().0.manifests.iter().any(|m| &m.digest == digest) {
            return;
        }
        if Digest::of(bytes) != *digest {
            return;
        }
        let mut g = self.lock();
        if g.0.manifests.iter().any(|m| &m.digest == digest) {
            return; // kept meanwhile by another thread of this run
        }
        g.0.manifests.push(CachedManifest {
            digest: digest.clone(),
            media_type: media_type.to_owned(),
            bytes: bytes.to_vec(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn saved(bytes: &[u8]) -> (tempfile::TempDir, PathBuf, Digest) {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("facts.json");
        let digest = Digest::of(bytes);
        let cache = FactCache::load(Some(path.clone()), "store".into());
        cache.set_manifest(&digest, "application/json", bytes);
        cache.save();
        (dir, path, digest)
    }

    #[test]
    fn the_file_keeps_manifest_bytes_as_hex_and_reads_them_back() {
        let (_dir, path, digest) = saved(b"{\"a\":1}");
        let file: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).expect("the file")).expect("json");
        assert_eq!(file["manifests"][0]["bytes"], hex::encode(b"{\"a\":1}"));
        assert_eq!(file["manifests"][0]["digest"], digest.as_str());
        let again = FactCache::load(Some(path), "store".into());
        assert_eq!(
            again.manifest(&digest),
            Some(("application/json".into(), b"{\"a\":1}".to_vec()))
        );
    }

    #[test]
    fn bytes_that_do_not_hash_to_their_digest_are_never_kept_or_answered() {
        let cache = FactCache::memory("store".into());
        let digest = Digest::of(b"right");
        cache.set_manifest(&digest, "m", b"wrong");
        assert_eq!(cache.manifest(&digest), None);

        // A damaged file: one entry's bytes altered, another's not hex. Both count as absent,
        // and the rest of the file (a revision) still loads.
        let (_dir, path, digest) = saved(b"{\"a\":1}");
        let mut file: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).expect("the file")).expect("json");
        let other = Digest::of(b"other");
        file["manifests"][0]["bytes"] = hex::encode(b"{\"a\":2}").into();
        file["manifests"]
            .as_array_mut()
            .expect("a list")
            .push(serde_json::json!({
                "digest": other.as_str(), "media_type": "m", "bytes": "not hex"
            }));
        file["revisions"][digest.as_str()] = serde_json::Value::Null;
        std::fs::write(&path, serde_json::to_vec(&file).expect("json")).expect("write");
        let loaded = FactCache::load(Some(path), "store".into());
        assert_eq!(loaded.manifest(&digest), None);
        assert_eq!(loaded.manifest(&other), None);
        assert_eq!(loaded.revision(&digest), Some(None));
        // And the right bytes may be kept again after the damaged ones were dropped.
        loaded.set_manifest(&digest, "m", b"{\"a\":1}");
        assert_eq!(
            loaded.manifest(&digest),
            Some(("m".into(), b"{\"a\":1}".to_vec()))
        );
    }
}
