//! The channel's view of its store never trusts an artifact tag's name: `sha-<commit>` is
//! used only after the manifest it names was read and its `org.opencontainers.image.revision`
//! names that very commit. A tag that was re-pointed (by hand, or by an older mainline) to
//! another commit's bytes is an integrity failure: the fact stays unknown, so nothing is
//! decided on it and nothing is deployed, and the command exits 8 naming the tag.
//!
//! Cost: one manifest GET per artifact tag the first time a run resolves it; the executor's
//! fact cache remembers verified artifacts, so a steady-state reconcile pays nothing. The
//! manifests read by digest are remembered (the newest [`MEMO`]; a digest names fixed bytes),
//! so verifying a tag and then reading or re-tagging its manifest is one GET, not two.
//! Must never: return a digest for `sha-<c>` whose manifest records another commit (or none).

use mainline_core::{CommitId, Digest, Tag};
use mainline_store::{ErrorKind, Location, ReferenceTarget, Store, StoreError, StoredManifest};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

/// An artifact tag whose manifest records another commit than the tag claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub store: String,
    pub tag: Tag,
    pub claimed: CommitId,
    pub digest: Digest,
    /// The commit the manifest records; `None`: it records no readable revision.
    pub recorded: Option<CommitId>,
}

impl Mismatch {
    pub fn message(&self) -> String {
        let recorded = match &self.recorded {
            Some(c) => format!("records revision {c}"),
            None => "records no readable revision".to_owned(),
        };
        format!(
            "{}:{} names {}, whose manifest {recorded}, not commit {}: the immutable artifact \
             tag was re-pointed, so mainline does not use it (nothing was deployed from it)",
            self.store, self.tag, self.digest, self.claimed
        )
    }
}

/// How many manifests read by digest a [`VerifiedStore`] remembers.
pub const MEMO: usize = 64;

/// A [`Store`] that verifies every artifact tag it resolves (see the module doc) and keeps
/// the mismatches it saw, for the command to report.
pub struct VerifiedStore {
    inner: Box<dyn Store>,
    mismatches: Mutex<Vec<Mismatch>>,
    /// Manifests read by digest, the newest last.
    memo: Mutex<std::collections::VecDeque<StoredManifest>>,
}

impl VerifiedStore {
    pub fn new(inner: Box<dyn Store>) -> VerifiedStore {
        VerifiedStore {
            inner,
            mismatches: Mutex::new(Vec::new()),
            memo: Mutex::new(std::collections::VecDeque::new()),
        }
    }

    /// The manifest `digest` names, remembered once read (only bytes that hash to it).
    fn manifest_by_digest(&self, digest: &Digest) -> Result<Option<StoredManifest>, StoreError> {
        let memo = || self.memo.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = memo().iter().find(|m| &m.digest == digest) {
            return Ok(Some(m.clone()));
        }
        let found = self
            .inner
            .fetch_manifest(&ReferenceTarget::Digest(digest.clone()))?;
        if let Some(m) = &found {
            if Digest::of(&m.bytes) == *digest {
                let mut memo = memo();
                memo.push_back(m.clone());
                while memo.len() > MEMO {
                    memo.pop_front();
                }
            }
        }
        Ok(found)
    }

    /// Every mismatch seen so far, first seen first, without repeats.
    pub fn mismatches(&self) -> Vec<Mismatch> {
        self.mismatches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn verify(&self, tag: &Tag, claimed: CommitId, digest: &Digest) -> Result<(), StoreError> {
        let Some(manifest) = self.manifest_by_digest(digest)? else {
            // Gone between the two reads: the caller's own fetch reports it.
            return Ok(());
        };
        let recorded = mainline_pack::parse_manifest(&manifest.bytes)
            .ok()
            .and_then(|m| m.revision())
            .and_then(Result::ok)
            .map(|r| r.commit);
        if recorded.as_ref() == Some(&claimed) {
            return Ok(());
        }
        let mismatch = Mismatch {
            store: self.inner.location().to_string(),
            tag: tag.clone(),
            claimed,
            digest: digest.clone(),
            recorded,
        };
        let message = mismatch.message();
        let mut seen = self.mismatches.lock().unwrap_or_else(|p| p.into_inner());
        if !seen.contains(&mismatch) {
            seen.push(mismatch);
        }
        Err(StoreError::new(ErrorKind::Integrity, message))
    }
}

impl Store for VerifiedStore {
    fn location(&self) -> &Location {
        self.inner.location()
    }
    fn blob_exists(&self, digest: &Digest) -> Result<bool, StoreError> {
        self.inner.blob_exists(digest)
    }
    fn blob_intact(&self, digest: &Digest) -> Result<bool, StoreError> {
        self.inner.blob_intact(digest)
    }
    fn push_blob(
        &self,
        digest: &Digest,
        size: u64,
        path: &Path,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), StoreError> {
        self.inner.push_blob(digest, size, path, progress)
    }
    fn fetch_blob(&self, digest: &Digest, out: &mut dyn Write) -> Result<u64, StoreError> {
        self.inner.fetch_blob(digest, out)
    }
    fn resolve(&self, tag: &Tag) -> Result<Option<Digest>, StoreError> {
        let found = self.inner.resolve(tag)?;
        if let (Some(claimed), Some(digest)) = (tag.artifact_commit(), &found) {
            self.verify(tag, claimed, digest)?;
        }
        Ok(found)
    }
    fn fetch_manifest(
        &self,
        target: &ReferenceTarget,
    ) -> Result<Option<StoredManifest>, StoreError> {
        match target {
            ReferenceTarget::Digest(d) => self.manifest_by_digest(d),
            ReferenceTarget::Tag(_) => self.inner.fetch_manifest(target),
        }
    }
    fn put_manifest(
        &self,
        tag: &Tag,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest, StoreError> {
        self.inner.put_manifest(tag, media_type, bytes)
    }
    fn put_manifest_fenced(
        &self,
        tag: &Tag,
        media_type: &str,
        bytes: &[u8],
        fence: &dyn mainline_store::WriteFence,
    ) -> Result<Digest, StoreError> {
        self.inner
            .put_manifest_fenced(tag, media_type, bytes, fence)
    }
    fn list_tags(&self) -> Result<Vec<Tag>, StoreError> {
        self.inner.list_tags()
    }
}
