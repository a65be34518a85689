//! Push a commit's deploy tree through the store's tree index ([`crate::tree_index`]): when
//! the index names this tree's layer, write only the commit's manifest; otherwise pack, push
//! as [`push_packed`] does, and record the tree for next time.
//!
//! The reused artifact is byte for byte the one a full pack gives: its manifest is built by
//! the same function from the same layer descriptor and the commit's own annotations
//! (`mainline_pack::manifest_bytes`), and the layer descriptor comes only from an entry of this
//! packing format for this tree id. Requests on a registry, for a new commit whose tree is
//! indexed: HEAD `sha-<commit>`, GET the entry, PUT the manifest, HEAD it back — no blob
//! request and no upload (the registry refuses the PUT if a blob is gone, and we then pack).
//! For a commit already pushed, the same "already present" checks as [`push_packed`] (every
//! blob and the manifest verified), minus the pack.
//!
//! Must never: fail a push because of the index (a bad, stale or unreadable entry, or a
//! refused reuse, means packing as before; only a store that cannot be reached at all fails
//! the push), treat a tag mismatch found through the index as a conflict without packing to
//! confirm it, or skip the empty-tree refusal.

use crate::artifact::ArtifactError;
use crate::artifact::{manifest_intact, push_packed_over, read_back, PushOutcome};
use crate::tree_index::{self, Entry, TreeKey};
use mainline_core::Digest;
use mainline_pack::{ArtifactMeta, PackError, Packed};
use mainline_store::{ErrorKind, Store, StoredManifest, OCI_MANIFEST_MEDIA_TYPE};
use serde::Serialize;

/// What the push did with the tree index (`tree_index` in `push -o json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IndexUse {
    /// The index named this tree's layer: nothing was packed or uploaded.
    Reused,
    /// Packed, and the tree's entry written (it was absent, stale or unusable).
    Recorded,
    /// Packed; the tree's entry was already right and was left as it was.
    Kept,
    /// Packed and pushed, but the entry could not be written (see the note); the push stands.
    NotRecorded,
    /// No git tree id (a directory push): packed and pushed without the index.
    Unused,
}

/// A push through the index: the push itself, and what the index did.
#[derive(Debug, Clone)]
pub struct TreePush {
    pub outcome: PushOutcome,
    pub index: IndexUse,
    /// Why an entry was not reused, or not written, when that happened.
    pub note: Option<String>,
    pub entries: u64,
    pub files: u64,
    pub content_bytes: u64,
    pub layer_bytes: u64,
}

/// The commit's deploy tree, as the push needs it.
pub struct TreeSource<'a> {
    /// The tree id and symlink handling; `None` when the tree id is unknown (no index).
    pub key: Option<TreeKey>,
    pub meta: &'a ArtifactMeta,
    /// Push an empty tree anyway (`--allow-empty`).
    pub allow_empty: bool,
    /// Names the tree in the empty-tree refusal, e.g. `<commit>:k8s of REPO`.
    pub root: String,
    /// Look the tree up (false: `--repack`; the entry is still written after packing).
    pub lookup: bool,
}

/// Push the artifact of `src.meta.revision`: reused through the index when it can be, else
/// `pack()`ed and pushed (and recorded). Fails with the caller's error type `E`, so a `pack`
/// that fails its own way (a git fetch, a folder read) keeps its own error.
pub fn push_tree<E: From<ArtifactError>>(
    store: &dyn Store,
    src: &TreeSource<'_>,
    pack: &mut dyn FnMut() -> Result<Packed, E>,
    progress: &mut dyn FnMut(u64),
) -> Result<TreePush, E> {
    let art = |e: ArtifactError| E::from(e);
    let revision = &src.meta.revision;
    let existing = store
        .resolve(&revision.commit.artifact_tag())
        .map_err(|e| art(e.into()))?;
    let mut note = None;
    let mut known: Option<Entry> = None;
    if let (Some(key), true) = (&src.key, src.lookup) {
        match tree_index::lookup(store, key).map_err(|e| art(e.into()))? {
            Ok(entry) => {
                if entry.entries == 0 && !src.allow_empty {
                    return Err(art(empty(src)));
                }
                match reuse(store, &entry, src.meta, existing.as_ref()).map_err(art)? {
                    Ok(outcome) => {
                        return Ok(TreePush {
                            outcome,
                            index: IndexUse::Reused,
                            note: None,
                            entries: entry.entries,
                            files: entry.files,
                            content_bytes: entry.content_bytes,
                            layer_bytes: entry.layer.size,
                        })
                    }
                    Err(why) => note = Some(why),
                }
                known = Some(entry);
            }
            Err(why) => note = Some(why.0),
        }
    }

    let packed = pack()?;
    if !src.allow_empty {
        packed.refuse_empty(&src.root).map_err(|e| art(e.into()))?;
    }
    let outcome = push_packed_over(store, &packed, revision, existing, progress).map_err(art)?;
    let mut index = IndexUse::NotRecorded;
    if let Some(key) = &src.key {
        let entry = Entry::of(&packed, key.symlinks());
        if known.as_ref() == Some(&entry) {
            index = IndexUse::Kept;
        } else {
            if let Some(old) = known.filter(|k| k.layer != entry.layer) {
                note = Some(format!(
                    "{} named layer {} but this tree packs to {}: the entry was wrong, and is rewritten",
                    key.tag(),
                    old.layer.digest,
                    entry.layer.digest
                ));
            }
            match tree_index::record(store, key, &entry) {
                Ok(()) => index = IndexUse::Recorded,
                Err(e) => note = Some(format!("the tree index entry was not written: {e}")),
            }
        }
    } else {
        index = IndexUse::Unused;
    }
    Ok(TreePush {
        outcome,
        index,
        note,
        entries: packed.entries,
        files: packed.files,
        content_bytes: packed.content_bytes,
        layer_bytes: packed.layer.size,
    })
}

/// Push the commit's manifest over the indexed layer. `Ok(Err(why))`: the index could not be
/// used this time (pack instead); `Err` only for a store that could not be reached.
fn reuse(
    store: &dyn Store,
    entry: &Entry,
    meta: &ArtifactMeta,
    existing: Option<&Digest>,
) -> Result<Result<PushOutcome, String>, ArtifactError> {
    let config = mainline_pack::flux_config();
    let bytes = mainline_pack::manifest_bytes(&config, &entry.layer, meta);
    let manifest = StoredManifest {
        digest: Digest::of(&bytes),
        media_type: OCI_MANIFEST_MEDIA_TYPE.to_owned(),
        bytes,
    };
    let tag = meta.revision.commit.artifact_tag();
    let mut outcome = PushOutcome::nothing_yet(store, &manifest.digest, &meta.revision);
    match existing {
        // A different artifact under the commit's tag: pack to know whether that is a real
        // conflict (the index is never the only witness for refusing a push).
        Some(d) if *d != manifest.digest => {
            return Ok(Err(format!(
                "{tag} names {d}, not the {} the index gives: packing to compare",
                manifest.digest
            )))
        }
        // Already there: "already present" only with every blob and the manifest verified.
        Some(_) => {
            for blob in [&config.digest, &entry.layer.digest] {
                if !store.blob_intact(blob)? {
                    return Ok(Err(format!("blob {blob} is missing: packing to upload it")));
                }
            }
            if !manifest_intact(store, &manifest)? {
                return Ok(Err(format!(
                    "manifest {} is missing or damaged: packing to write it again",
                    manifest.digest
                )));
            }
            outcome.already_present = true;
            outcome.blobs_skipped = 2;
            return Ok(Ok(outcome));
        }
        None => {}
    }
    // The store refuses a manifest whose blobs it lacks (a registry: MANIFEST_BLOB_UNKNOWN;
    // the layout store checks too): that refusal means "pack", anything else is the push's.
    let written = match store.put_manifest(&tag, &manifest.media_type, &manifest.bytes) {
        Ok(d) => d,
        Err(e) if e.kind == ErrorKind::InvalidInput => {
            return Ok(Err(format!(
                "the store refused the manifest over the indexed layer ({e}): packing"
            )))
        }
        Err(e) => return Err(e.into()),
    };
    read_back(store, &manifest, &tag, &written)?;
    outcome.blobs_skipped = 2;
    Ok(Ok(outcome))
}

fn empty(src: &TreeSource<'_>) -> ArtifactError {
    ArtifactError::Pack(PackError::EmptyTree {
        root: src.root.clone(),
    })
}
