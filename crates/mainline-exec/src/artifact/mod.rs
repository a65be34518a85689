//! Artifact operations on any [`Store`]: push a packed artifact under its immutable tag, and
//! re-tag — the primitive every promotion and restore uses.
//!
//! Invariants: a tag is only ever pointed at manifest bytes that already exist in the store
//! byte for byte (so the digest, and every signature on it, is preserved), and every tag write
//! is read back and compared before it counts as done. An immutable artifact tag (`sha-<commit>`)
//! is never moved: pushing different bytes for a commit that already has an artifact is a
//! conflict, not an overwrite; nor is it ever pointed at a manifest whose revision records
//! another commit. "Already present" is said only after every blob was verified present
//! (registry: a HEAD each; layout: a digest check) and the manifest read back whole.

mod error;

pub use error::ArtifactError;
use mainline_core::{Digest, Revision, Tag};
use mainline_pack::Packed;
use mainline_store::{ReferenceTarget, Store, StoredManifest, OCI_MANIFEST_MEDIA_TYPE};
use serde::Serialize;
use std::io::Write;

/// What a push did. `bytes_uploaded` is 0 when the store already had every blob.
#[derive(Debug, Clone, Serialize)]
pub struct PushOutcome {
    pub digest: Digest,
    pub tag: Tag,
    pub repository: String,
    pub revision: Revision,
    pub bytes_uploaded: u64,
    pub blobs_uploaded: u32,
    pub blobs_skipped: u32,
    /// True when the artifact tag already named exactly these bytes (nothing was written).
    pub already_present: bool,
}

impl PushOutcome {
    /// The push of `digest` as the artifact of `revision`, before anything was sent.
    pub(crate) fn nothing_yet(store: &dyn Store, digest: &Digest, revision: &Revision) -> Self {
        PushOutcome {
            digest: digest.clone(),
            tag: revision.commit.artifact_tag(),
            repository: store.location().to_string(),
            revision: revision.clone(),
            bytes_uploaded: 0,
            blobs_uploaded: 0,
            blobs_skipped: 0,
            already_present: false,
        }
    }
}

/// Push `packed` (the artifact of `revision`) and point its immutable tag at it.
/// Blobs the store has are not uploaded again (one existence check each, first).
pub fn push_packed(
    store: &dyn Store,
    packed: &Packed,
    revision: &Revision,
    progress: &mut dyn FnMut(u64),
) -> Result<PushOutcome, ArtifactError> {
    let existing = store.resolve(&revision.commit.artifact_tag())?;
    push_packed_over(store, packed, revision, existing, progress)
}

/// [`push_packed`] when the caller has just resolved the artifact tag (`existing`: the digest
/// it names, if any), so it is not asked again.
pub fn push_packed_over(
    store: &dyn Store,
    packed: &Packed,
    revision: &Revision,
    existing: Option<Digest>,
    progress: &mut dyn FnMut(u64),
) -> Result<PushOutcome, ArtifactError> {
    let tag = revision.commit.artifact_tag();
    let mut outcome = PushOutcome::nothing_yet(store, &packed.manifest_digest, revision);
    // The tag names another artifact: the same tree packed by an older format is kept (its
    // digest and signatures stand; see `older_format`); anything else is a conflict.
    let mut older = None;
    if let Some(existing) = existing.as_ref().filter(|d| **d != packed.manifest_digest) {
        if !crate::older_format::same_tree(store, existing, packed)? {
            return Err(ArtifactError::PackedOther {
                location: store.location().to_string(),
                tag,
                existing: existing.clone(),
                packed: packed.manifest_digest.clone(),
            });
        }
        older = Some(existing.clone());
    }

    // The config blob is tiny; it goes through a temp file like every blob so the store keeps
    // one upload path (streamed from disk).
    let config_file = tempfile::NamedTempFile::new().map_err(|source| ArtifactError::Scratch {
        action: "create",
        source,
    })?;
    config_file
        .as_file()
        .write_all(&packed.config_bytes)
        .map_err(|source| ArtifactError::Scratch {
            action: "write",
            source,
        })?;

    let blobs = [
        (&packed.config, config_file.path()),
        (&packed.layer, packed.layer_file.as_ref()),
    ];
    let mut sent_before = 0u64;
    for (desc, path) in blobs {
        // Verified, not just named: a blob deleted from a registry, or a layout blob that is
        // missing or corrupt, is uploaded again — even under a tag that already names it.
        if store.blob_intact(&desc.digest)? {
            outcome.blobs_skipped += 1;
            continue;
        }
        store.push_blob(&desc.digest, desc.size, path, &mut |n| {
            progress(sent_before + n)
        })?;
        sent_before += desc.size;
        outcome.bytes_uploaded += desc.size;
        outcome.blobs_uploaded += 1;
    }

    if let Some(existing) = older {
        outcome.digest = existing;
        outcome.already_present = true;
        return Ok(outcome);
    }
    let manifest = StoredManifest {
        digest: packed.manifest_digest.clone(),
        media_type: OCI_MANIFEST_MEDIA_TYPE.to_owned(),
        bytes: packed.manifest_bytes.clone(),
    };
    // The tag already names these bytes: "already present" only when every blob was found
    // intact and the manifest itself reads back whole (a layout keeps it as a blob too).
    if existing.is_some() && outcome.blobs_uploaded == 0 && manifest_intact(store, &manifest)? {
        outcome.already_present = true;
        return Ok(outcome);
    }
    // The tag is absent or names these very bytes (checked above): no artifact-tag check.
    write_tag_fenced(store, &manifest, &tag, &mainline_store::NoFence)?;
    Ok(outcome)
}

/// Whether the store returns exactly `manifest`'s bytes for its digest (a missing or corrupt
/// manifest answers `false`, so the push writes it again).
pub(crate) fn manifest_intact(
    store: &dyn Store,
    manifest: &StoredManifest,
) -> Result<bool, ArtifactError> {
    match store.fetch_manifest(&ReferenceTarget::Digest(manifest.digest.clone())) {
        Ok(Some(m)) => Ok(m.bytes == manifest.bytes),
        Ok(None) => Ok(false),
        Err(e) if e.kind == mainline_store::ErrorKind::Integrity => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Point `tag` at exactly `manifest.bytes`, then read the tag back and fail unless it names
/// `manifest.digest`. Two requests on a registry: one PUT, one HEAD. An artifact tag
/// (`sha-<commit>`) is immutable: see [`check_artifact_tag`] (one more HEAD for those only).
pub fn write_tag(
    store: &dyn Store,
    manifest: &StoredManifest,
    tag: &Tag,
) -> Result<(), ArtifactError> {
    if check_artifact_tag(store, manifest, tag)? == ArtifactTag::AlreadyNamesIt {
        return Ok(());
    }
    write_tag_fenced(store, manifest, tag, &mainline_store::NoFence)
}

/// The PUT of [`write_tag`] and its read-back, with every attempt of the PUT admitted and
/// bounded by `fence` (the channel lock, for channel writes). No artifact-tag check: channel
/// tags are never artifact tags (refused when the channel is configured).
pub fn write_tag_fenced(
    store: &dyn Store,
    manifest: &StoredManifest,
    tag: &Tag,
    fence: &dyn mainline_store::WriteFence,
) -> Result<(), ArtifactError> {
    let written = store.put_manifest_fenced(tag, &manifest.media_type, &manifest.bytes, fence)?;
    read_back(store, manifest, tag, &written)
}

/// After a PUT of `manifest` under `tag` that the store answered with `written`: fail unless
/// that is the manifest's digest and the tag, read back, names it.
pub(crate) fn read_back(
    store: &dyn Store,
    manifest: &StoredManifest,
    tag: &Tag,
    written: &Digest,
) -> Result<(), ArtifactError> {
    if *written != manifest.digest {
        return Err(ArtifactError::StoredOther {
            location: store.location().to_string(),
            tag: tag.clone(),
            written: written.clone(),
            expected: manifest.digest.clone(),
        });
    }
    match store.resolve(tag)? {
        Some(d) if d == manifest.digest => Ok(()),
        got => Err(ArtifactError::ReadBack {
            location: store.location().to_string(),
            tag: tag.clone(),
            expected: manifest.digest.clone(),
            got,
        }),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum ArtifactTag {
    /// Not an artifact tag, or one that does not exist yet: write it.
    Write,
    /// The artifact tag already names exactly these bytes: nothing to write (idempotent).
    AlreadyNamesIt,
}

/// The rules for writing `sha-<commit>`: an existing tag is never moved to other bytes
/// (conflict, exit 9; the same bytes again is a no-op), and a new one only names a manifest
/// that records that commit as its revision (a tag name is never trusted without it).
fn check_artifact_tag(
    store: &dyn Store,
    manifest: &StoredManifest,
    tag: &Tag,
) -> Result<ArtifactTag, ArtifactError> {
    let Some(commit) = tag.artifact_commit() else {
        return Ok(ArtifactTag::Write);
    };
    match store.resolve(tag)? {
        None => {}
        Some(d) if d == manifest.digest => return Ok(ArtifactTag::AlreadyNamesIt),
        Some(existing) => {
            return Err(ArtifactError::Immutable {
                location: store.location().to_string(),
                tag: tag.clone(),
                existing,
                manifest: manifest.digest.clone(),
            })
        }
    }
    let recorded = recorded_commit(manifest);
    if recorded.as_ref() != Some(&commit) {
        return Err(ArtifactError::NotItsCommit {
            location: store.location().to_string(),
            tag: tag.clone(),
            commit,
            manifest: manifest.digest.clone(),
            recorded,
        });
    }
    Ok(ArtifactTag::Write)
}

/// Fetch the manifest a reference names, or a clear error when it does not exist.
pub fn fetch_existing(
    store: &dyn Store,
    target: &ReferenceTarget,
) -> Result<StoredManifest, ArtifactError> {
    store.fetch_manifest(target)?.ok_or_else(|| {
        let location = store.location().to_string();
        match target {
            ReferenceTarget::Tag(tag) => ArtifactError::NoSuchTag {
                location,
                tag: tag.clone(),
            },
            ReferenceTarget::Digest(digest) => ArtifactError::NoSuchManifest {
                location,
                digest: digest.clone(),
            },
        }
    })
}

/// Re-tag: point `new_tag` at the identical manifest bytes `source` names.
/// Three requests on a registry: GET the source manifest, PUT it under the new tag, HEAD back.
pub fn retag(
    store: &dyn Store,
    source: &ReferenceTarget,
    new_tag: &Tag,
) -> Result<StoredManifest, ArtifactError> {
    let manifest = fetch_existing(store, source)?;
    if let ReferenceTarget::Tag(tag) = source {
        // A source named by its artifact tag must be that commit's artifact (never trust a
        // tag name): a re-pointed `sha-<c>` is not copied anywhere.
        if let Some(commit) = tag.artifact_commit() {
            let recorded = recorded_commit(&manifest);
            if recorded.as_ref() != Some(&commit) {
                return Err(ArtifactError::RePointed {
                    location: store.location().to_string(),
                    tag: tag.clone(),
                    commit,
                    manifest: manifest.digest.clone(),
                    recorded,
                });
            }
        }
    }
    write_tag(store, &manifest, new_tag)?;
    Ok(manifest)
}

/// The commit a manifest records as its revision, if it records a readable one.
fn recorded_commit(manifest: &StoredManifest) -> Option<mainline_core::CommitId> {
    mainline_pack::parse_manifest(&manifest.bytes)
        .ok()
        .and_then(|m| m.revision())
        .and_then(Result::ok)
        .map(|r| r.commit)
}
