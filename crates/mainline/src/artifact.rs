//! Artifact operations on any [`Store`]: push a packed artifact under its immutable tag, and
//! re-tag — the primitive every promotion and restore uses.
//!
//! Invariants: a tag is only ever pointed at manifest bytes that already exist in the store
//! byte for byte (so the digest, and every signature on it, is preserved), and every tag write
//! is read back and compared before it counts as done. An immutable artifact tag (`sha-<commit>`)
//! is never moved: pushing different bytes for a commit that already has an artifact is a
//! conflict, not an overwrite.

use crate::error::{CliError, Kind};
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

/// Push `packed` (the artifact of `revision`) and point its immutable tag at it.
/// Blobs the store has are not uploaded again (one existence check each, first).
pub fn push_packed(
    store: &dyn Store,
    packed: &Packed,
    revision: &Revision,
    progress: &mut dyn FnMut(u64),
) -> Result<PushOutcome, CliError> {
    let tag = revision.commit.artifact_tag();
    let mut outcome = PushOutcome {
        digest: packed.manifest_digest.clone(),
        tag: tag.clone(),
        repository: store.location().to_string(),
        revision: revision.clone(),
        bytes_uploaded: 0,
        blobs_uploaded: 0,
        blobs_skipped: 0,
        already_present: false,
    };
    if let Some(existing) = store.resolve(&tag)? {
        if existing == packed.manifest_digest {
            outcome.already_present = true;
            outcome.blobs_skipped = 2;
            return Ok(outcome);
        }
        return Err(CliError::new(
            Kind::Conflict,
            format!(
                "{}:{tag} already names {existing}, not the {} just packed; artifact tags are immutable",
                store.location(),
                packed.manifest_digest
            ),
        )
        .with_hint(
            "the same commit was packed with a different tree, revision, source or created time; \
             reuse the existing artifact, or push the change as a new commit",
        ));
    }

    // The config blob is tiny; it goes through a temp file like every blob so the store keeps
    // one upload path (streamed from disk).
    let config_file = tempfile::NamedTempFile::new()
        .map_err(|e| CliError::new(Kind::Internal, format!("cannot create a temp file: {e}")))?;
    config_file
        .as_file()
        .write_all(&packed.config_bytes)
        .map_err(|e| CliError::new(Kind::Internal, format!("cannot write a temp file: {e}")))?;

    let blobs = [
        (&packed.config, config_file.path()),
        (&packed.layer, packed.layer_file.as_ref()),
    ];
    let mut sent_before = 0u64;
    for (desc, path) in blobs {
        if store.blob_exists(&desc.digest)? {
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

    let manifest = StoredManifest {
        digest: packed.manifest_digest.clone(),
        media_type: OCI_MANIFEST_MEDIA_TYPE.to_owned(),
        bytes: packed.manifest_bytes.clone(),
    };
    write_tag(store, &manifest, &tag)?;
    Ok(outcome)
}

/// Point `tag` at exactly `manifest.bytes`, then read the tag back and fail unless it names
/// `manifest.digest`. Two requests on a registry: one PUT, one HEAD.
pub fn write_tag(store: &dyn Store, manifest: &StoredManifest, tag: &Tag) -> Result<(), CliError> {
    write_tag_fenced(store, manifest, tag, &mainline_store::NoFence)
}

/// [`write_tag`] with every attempt of the PUT admitted and bounded by `fence` (the channel
/// lock, for channel writes).
pub fn write_tag_fenced(
    store: &dyn Store,
    manifest: &StoredManifest,
    tag: &Tag,
    fence: &dyn mainline_store::WriteFence,
) -> Result<(), CliError> {
    let written = store.put_manifest_fenced(tag, &manifest.media_type, &manifest.bytes, fence)?;
    if written != manifest.digest {
        return Err(CliError::new(
            Kind::Integrity,
            format!(
                "{}: writing {tag} stored {written}, expected {}",
                store.location(),
                manifest.digest
            ),
        ));
    }
    match store.resolve(tag)? {
        Some(d) if d == manifest.digest => Ok(()),
        other => Err(CliError::new(
            Kind::Integrity,
            format!(
                "{}: read-back of {tag} after writing {} gave {}",
                store.location(),
                manifest.digest,
                other.map_or_else(|| "no tag".to_owned(), |d| d.to_string())
            ),
        )
        .with_hint("another writer may have moved the tag at the same moment; re-run to converge")),
    }
}

/// Fetch the manifest a reference names, or a clear error when it does not exist.
pub fn fetch_existing(
    store: &dyn Store,
    target: &ReferenceTarget,
) -> Result<StoredManifest, CliError> {
    store.fetch_manifest(target)?.ok_or_else(|| {
        let what = match target {
            ReferenceTarget::Tag(t) => format!("{}:{t}: no such tag", store.location()),
            ReferenceTarget::Digest(d) => format!("{}@{d}: no such manifest", store.location()),
        };
        CliError::invalid(what)
            .with_hint("check the name (tags are case-sensitive), or push the artifact first with `mainline push`")
    })
}

/// Re-tag: point `new_tag` at the identical manifest bytes `source` names.
/// Three requests on a registry: GET the source manifest, PUT it under the new tag, HEAD back.
pub fn retag(
    store: &dyn Store,
    source: &ReferenceTarget,
    new_tag: &Tag,
) -> Result<StoredManifest, CliError> {
    let manifest = fetch_existing(store, source)?;
    write_tag(store, &manifest, new_tag)?;
    Ok(manifest)
}
