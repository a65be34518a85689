//! The channel's view of its store never trusts an artifact tag's name: `sha-<commit>` is
//! used only after the manifest it names was read and its `org.opencontainers.image.revision`
//! names that very commit. A tag that was re-pointed (by hand, or by an older mainline) to
//! another commit's bytes is an integrity failure: the fact stays unknown, so nothing is
//! decided on it and nothing is deployed, and the command exits 8 naming the tag.
//!
//! Cost: one manifest GET per artifact tag the first time a run resolves it; the executor's
//! fact cache remembers verified artifacts, so a steady-state reconcile pays nothing. The
//! manifests read by digest, or written and answered with their own digest, are remembered
//! (the newest [`MEMO`]; a digest names fixed bytes), so verifying a tag and then reading or
//! re-tagging its manifest is one GET, not two, and a manifest just pushed is not read back
//! by digest before the channel names it (the registry still refuses it over a missing blob).
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
            self.remember(m);
        }
        Ok(found)
    }

    /// Remember `m` if its bytes hash to its digest (the newest [`MEMO`] are kept).
    fn remember(&self, m: &StoredManifest) {
        if Digest::of(&m.bytes) != m.digest {
            return;
        }
        let mut memo = self.memo.lock().unwrap_or_else(|p| p.into_inner());
        if memo.iter().any(|x| x.digest == m.digest) {
            return;
        }
        memo.push_back(m.clone());
        while memo.len() > MEMO {
            memo.pop_front();
        }
    }

    /// After a manifest PUT the store answered with `written`: when that is the digest of the
    /// bytes sent, the store holds exactly them, so a read by digest needs no GET (the
    /// builder's push followed by the channel write of the same manifest).
    fn remember_written(&self, media_type: &str, bytes: &[u8], written: &Digest) {
        self.remember(&StoredManifest {
            digest: written.clone(),
            media_type: media_type.to_owned(),
            bytes: bytes.to_vec(),
        });
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
        let written = self.inner.put_manifest(tag, media_type, bytes)?;
        self.remember_written(media_type, bytes, &written);
        Ok(written)
    }
    fn put_manifest_fenced(
        &self,
        tag: &Tag,
        media_type: &str,
        bytes: &[u8],
        fence: &dyn mainline_store::WriteFence,
    ) -> Result<Digest, StoreError> {
        let written = self
            .inner
            .put_manifest_fenced(tag, media_type, bytes, fence)?;
        self.remember_written(media_type, bytes, &written);
        Ok(written)
    }
    fn list_tags(&self) -> Result<Vec<Tag>, StoreError> {
        self.inner.list_tags()
    }
}
