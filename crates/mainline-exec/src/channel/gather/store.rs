//! What gathering reads from the store: the channel tag and the commit its manifest records,
//! whether a foreign artifact was made elsewhere, a commit's artifact tag, and manifests by
//! digest through the fact cache.
//!
//! Why apart from `gather_from`: that function decides which reads a decision needs and in
//! what order; these are the reads themselves, each turning a failure into `Known::Unknown`
//! with its reason.
//! Must never: answer from the store at `Depth::Cached` (a cache miss is "deferred"), keep in
//! the cache a manifest whose digest is not the one asked for, or read a failure as absence.

use super::{Depth, Sources, DEFERRED};
use crate::channel::cache::FactCache;
use mainline_core::{ChannelHead, CommitFacts, CommitId, Known};
use mainline_store::{ReferenceTarget, Store};
use std::collections::BTreeMap;

impl Sources<'_> {
    /// The channel tag: HEAD it (unless `known` says what it names), then read the commit
    /// from the manifest (cached per digest). A cache that knows no revision (a fresh runner)
    /// GETs the tag instead: the digest and the bytes in one round trip. A warm one HEADs,
    /// which registries do not count as a pull.
    pub(super) fn channel_head(
        &self,
        known: Option<Option<mainline_core::Digest>>,
    ) -> Known<ChannelHead> {
        let resolved = match known {
            Some(d) => Ok(d),
            None if self.cache.knows_no_revision() => self
                .store
                .fetch_manifest(&ReferenceTarget::Tag(self.config.tag.clone()))
                .map(|found| {
                    found.map(|m| {
                        self.cache.set_manifest(&m.digest, &m.media_type, &m.bytes);
                        m.digest
                    })
                }),
            None => self.store.resolve(&self.config.tag),
        };
        let digest = match resolved {
            Ok(None) => return Known::Known(ChannelHead::Absent),
            Ok(Some(d)) => d,
            Err(e) => {
                return Known::unknown(format!(
                    "cannot read {}:{}: {e}",
                    self.store.location(),
                    self.config.tag
                ))
            }
        };
        let cached = match self.cache.revision(&digest) {
            Some(c) => c,
            None => match self.read_revision(&digest) {
                Ok(c) => c,
                Err(reason) => {
                    return Known::Known(ChannelHead::Names {
                        digest,
                        commit: Known::unknown(reason),
                    })
                }
            },
        };
        Known::Known(match cached {
            Some(c) => ChannelHead::Names {
                digest,
                commit: Known::Known(c),
            },
            None => ChannelHead::Foreign {
                digest,
                why: "its manifest has no readable org.opencontainers.image.revision".into(),
            },
        })
    }

    /// Whether the channel names a Flux artifact another tool made (see
    /// `Facts::channel_made_elsewhere`): it records a commit whose artifact it is not, and its
    /// config blob is not mainline's. Only then is the manifest read again (one GET); any
    /// doubt answers false, which leaves the channel foreign (UNKNOWN).
    pub(super) fn made_elsewhere(
        &self,
        channel: &Known<ChannelHead>,
        commits: &BTreeMap<CommitId, CommitFacts>,
    ) -> bool {
        let Known::Known(ChannelHead::Names {
            digest,
            commit: Known::Known(x),
        }) = channel
        else {
            return false;
        };
        match commits.get(x).map(|f| &f.artifact) {
            Some(Known::Known(artifact)) if artifact.as_ref() != Some(digest) => {}
            _ => return false,
        }
        let Ok(Some(stored)) = manifest_by_digest(self.store, self.cache, digest) else {
            return false;
        };
        mainline_pack::parse_manifest(&stored.bytes).is_ok_and(|m| {
            m.is_flux()
                && m.config.digest != mainline_core::Digest::of(mainline_pack::FLUX_CONFIG_BYTES)
        })
    }

    /// The commit a manifest records (`None`: it records none — not made by mainline), or why
    /// the manifest could not be read.
    fn read_revision(&self, digest: &mainline_core::Digest) -> Result<Option<CommitId>, String> {
        let stored = match manifest_by_digest(self.store, self.cache, digest) {
            Ok(Some(m)) => m,
            Ok(None) => {
                return Err(format!(
                    "manifest {} vanished while reading it",
                    digest.short()
                ))
            }
            Err(e) => return Err(format!("cannot read manifest {}: {e}", digest.short())),
        };
        let commit = mainline_pack::parse_manifest(&stored.bytes)
            .ok()
            .and_then(|m| m.revision())
            .and_then(Result::ok)
            .map(|r| r.commit);
        self.cache.set_revision(digest, commit.clone());
        Ok(commit)
    }

    pub(super) fn artifact(
        &self,
        c: &CommitId,
        depth: Depth,
        deferred: &mut bool,
    ) -> Known<Option<mainline_core::Digest>> {
        if let Some(d) = self.cache.artifact(c) {
            return Known::Known(Some(d));
        }
        if depth == Depth::Cached {
            *deferred = true;
            return Known::unknown(DEFERRED);
        }
        match verified_artifact(self.store, self.cache, c) {
            Ok(found) => Known::Known(found),
            Err(e) => Known::unknown(format!(
                "cannot read {}:{}: {e}",
                self.store.location(),
                c.artifact_tag()
            )),
        }
    }
}

/// The artifact of `c`: the fact cache's, when a run verified it before, else the store's
/// `sha-<c>` (verified when the store is a `VerifiedStore`), then kept in the cache. What a
/// gather at full depth asks, and what a command that names a commit (pin, rollback) asks.
pub fn verified_artifact(
    store: &dyn Store,
    cache: &FactCache,
    c: &CommitId,
) -> Result<Option<mainline_core::Digest>, mainline_store::StoreError> {
    if let Some(d) = cache.artifact(c) {
        return Ok(Some(d));
    }
    let found = store.resolve(&c.artifact_tag())?;
    if let Some(d) = &found {
        cache.set_artifact(c, d);
    }
    Ok(found)
}

/// The manifest `digest` names: its bytes from the fact cache when it has them (checked against
/// the digest), else from the store (then kept in the cache).
pub(in crate::channel) fn manifest_by_digest(
    store: &dyn Store,
    cache: &FactCache,
    digest: &mainline_core::Digest,
) -> Result<Option<mainline_store::StoredManifest>, mainline_store::StoreError> {
    if let Some((media_type, bytes)) = cache.manifest(digest) {
        return Ok(Some(mainline_store::StoredManifest {
            digest: digest.clone(),
            media_type,
            bytes,
        }));
    }
    let stored = store.fetch_manifest(&ReferenceTarget::Digest(digest.clone()))?;
    if let Some(m) = &stored {
        if &m.digest == digest {
            cache.set_manifest(digest, &m.media_type, &m.bytes);
        }
    }
    Ok(stored)
}
