//! The store's tree index: "this git tree, packed in this format, is this layer", kept in the
//! store itself so that pushing a deploy tree that was already packed — a new commit that did
//! not touch the deploy folder, a CI re-run, a heal — writes one manifest instead of packing
//! and uploading the tree again.
//!
//! Why in the store, and why a tag per tree: CI runners start empty, so a local cache would
//! miss exactly where it matters; the store is the one place every pusher already reads and
//! writes, with no new server or credential. One tag per tree (`tree-<tree id>-p<format>`)
//! costs one GET to look up, one PUT to record, and no read-modify-write: writers of the same
//! tree and format write the same bytes, so racing writers cannot lose each other's entries
//! (an OCI index listing every tree would need a compare-and-swap the distribution API does
//! not have). The format is in the tag name so that mainline versions with different packing
//! formats, pushing the same tree, each find their own entry instead of overwriting the
//! other's.
//!
//! An entry is an OCI image manifest (`artifactType` [`ARTIFACT_TYPE`], the OCI empty config,
//! one layer: the Flux content layer of the tree) whose annotations name the tree id, the
//! packing format ([`mainline_pack::PACK_FORMAT`]), how symlinks were packed, and the counts
//! `push` reports. Because it references the layer, a registry refuses to store an entry over
//! a missing layer, and garbage collection keeps the layer while the entry exists. It is not a
//! Flux artifact (no revision, another config type): nothing deploys it.
//!
//! Never trusted blindly: [`read_entry`] accepts an entry only if its bytes are exactly what
//! this version writes for this tree id and format (so a foreign, stale or hand-edited tag is
//! refused with the reason), and a reuse still goes through the store's own check that the
//! blobs exist (a manifest PUT over a missing blob is refused by a registry and by the layout
//! store) — on any refusal the caller packs as if there were no index. What cannot be checked
//! without unpacking is that the layer really is that tree: an entry is as trustworthy as the
//! store's write access, the same trust `sha-<commit>` tags already get (whoever can write
//! `tree-…` could as well write `sha-<commit>` for a commit not pushed yet). `push --repack`
//! bypasses the index and rewrites the entry.
//!
//! Must never: produce an artifact whose bytes differ from a full pack of the same commit,
//! reuse an entry of another packing format or tree, or make a push fail because the index is
//! missing, stale or unwritable.

use mainline_core::Tag;
use mainline_pack::{Descriptor, Packed, Symlinks, FLUX_LAYER_MEDIA_TYPE, PACK_FORMAT};
use mainline_store::{ReferenceTarget, Store, StoreError, OCI_MANIFEST_MEDIA_TYPE};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `artifactType` of a tree index entry.
pub const ARTIFACT_TYPE: &str = "application/vnd.mainline.tree-index.v1";
/// The OCI empty descriptor's media type (its blob, `{}`, is the Flux config blob too).
const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
const A_TREE: &str = "dev.mainline.tree";
const A_FORMAT: &str = "dev.mainline.pack-format";
const A_SYMLINKS: &str = "dev.mainline.symlinks";
const A_ENTRIES: &str = "dev.mainline.entries";
const A_FILES: &str = "dev.mainline.files";
const A_CONTENT_BYTES: &str = "dev.mainline.content-bytes";

/// What an entry is looked up by: the deploy tree's git tree id and how symlinks are packed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeKey {
    tree: String,
    symlinks: Symlinks,
}

impl TreeKey {
    /// `tree` must be a git object id (40 or 64 lowercase hex digits); `None` otherwise.
    pub fn new(tree: &str, symlinks: Symlinks) -> Option<TreeKey> {
        let hex = tree
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        (hex && matches!(tree.len(), 40 | 64)).then(|| TreeKey {
            tree: tree.to_owned(),
            symlinks,
        })
    }

    pub fn tree(&self) -> &str {
        &self.tree
    }

    pub fn symlinks(&self) -> Symlinks {
        self.symlinks
    }

    /// The entry's tag: `tree-<tree id>-p<packing format>`.
    pub fn tag(&self) -> Tag {
        format!("tree-{}-p{PACK_FORMAT}", self.tree)
            .parse()
            .expect("hex, digits and dashes make a valid tag under 128 characters")
    }
}

/// What an entry remembers about the packed tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The Flux content layer of the tree.
    pub layer: Descriptor,
    pub entries: u64,
    pub files: u64,
    pub content_bytes: u64,
    /// How symlinks were packed when the entry was written.
    symlinks: Symlinks,
}

impl Entry {
    pub fn of(packed: &Packed, symlinks: Symlinks) -> Entry {
        Entry {
            layer: packed.layer.clone(),
            entries: packed.entries,
            files: packed.files,
            content_bytes: packed.content_bytes,
            symlinks,
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EntryJson {
    schema_version: u32,
    media_type: String,
    artifact_type: String,
    config: Descriptor,
    layers: Vec<Descriptor>,
    annotations: BTreeMap<String, String>,
}

fn symlinks_name(s: Symlinks) -> &'static str {
    match s {
        Symlinks::Refuse => "refuse",
        Symlinks::Resolve => "resolve",
    }
}

/// The canonical bytes of the entry for `key`'s tree: a pure function of the tree id, the
/// packing format and `entry`, so every writer of the same tree writes the same bytes.
pub fn entry_bytes(key: &TreeKey, entry: &Entry) -> Vec<u8> {
    let annotations = BTreeMap::from([
        (A_CONTENT_BYTES.to_owned(), entry.content_bytes.to_string()),
        (A_ENTRIES.to_owned(), entry.entries.to_string()),
        (A_FILES.to_owned(), entry.files.to_string()),
        (A_FORMAT.to_owned(), PACK_FORMAT.to_string()),
        (
            A_SYMLINKS.to_owned(),
            symlinks_name(entry.symlinks).to_owned(),
        ),
        (A_TREE.to_owned(), key.tree.clone()),
    ]);
    let json = EntryJson {
        schema_version: 2,
        media_type: OCI_MANIFEST_MEDIA_TYPE.to_owned(),
        artifact_type: ARTIFACT_TYPE.to_owned(),
        config: Descriptor {
            media_type: EMPTY_MEDIA_TYPE.to_owned(),
            ..mainline_pack::flux_config()
        },
        layers: vec![entry.layer.clone()],
        annotations,
    };
    serde_json::to_vec(&json).expect("strings, numbers and maps always serialize to JSON")
}

/// Why an entry found under the tree's tag is not used (a sentence for the push report).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unusable(pub String);

/// The entry for `key` in `bytes`, if it is exactly what this version writes for that tree
/// and format, and was packed in a way this push may reuse (an entry packed with symlinks
/// refused fits either way; one packed with symlinks resolved only a push that resolves them).
pub fn read_entry(key: &TreeKey, bytes: &[u8]) -> Result<Entry, Unusable> {
    let unusable = |why: String| Err(Unusable(why));
    let Ok(json) = serde_json::from_slice::<EntryJson>(bytes) else {
        return unusable(format!(
            "{} is not a tree index entry (another tool's tag?)",
            key.tag()
        ));
    };
    let note = |name: &str| json.annotations.get(name).map(String::as_str);
    if json.artifact_type != ARTIFACT_TYPE {
        return unusable(format!(
            "{} has artifactType {}",
            key.tag(),
            json.artifact_type
        ));
    }
    if note(A_FORMAT) != Some(PACK_FORMAT.to_string().as_str()) {
        return unusable(format!(
            "{} was written for packing format {}, this mainline packs format {PACK_FORMAT}",
            key.tag(),
            note(A_FORMAT).unwrap_or("(none)")
        ));
    }
    if note(A_TREE) != Some(key.tree.as_str()) {
        return unusable(format!(
            "{} names tree {}, not {}",
            key.tag(),
            note(A_TREE).unwrap_or("(none)"),
            key.tree
        ));
    }
    let symlinks = match note(A_SYMLINKS) {
        Some("refuse") => Symlinks::Refuse,
        Some("resolve") if key.symlinks == Symlinks::Resolve => Symlinks::Resolve,
        other => {
            return unusable(format!(
                "{} was packed with symlinks {}, this push has them {}",
                key.tag(),
                other.unwrap_or("(unsaid)"),
                symlinks_name(key.symlinks)
            ))
        }
    };
    let count = |name: &str| note(name).and_then(|v| v.parse::<u64>().ok());
    let (Some(entries), Some(files), Some(content_bytes), [layer]) = (
        count(A_ENTRIES),
        count(A_FILES),
        count(A_CONTENT_BYTES),
        json.layers.as_slice(),
    ) else {
        return unusable(format!("{} is malformed (counts or layer)", key.tag()));
    };
    let entry = Entry {
        layer: layer.clone(),
        entries,
        files,
        content_bytes,
        symlinks,
    };
    // Exactly the bytes this version writes: the config, media types, layer media type and
    // every annotation are what they must be, and nothing else is there.
    if layer.media_type != FLUX_LAYER_MEDIA_TYPE || entry_bytes(key, &entry) != bytes {
        return unusable(format!(
            "{} is not byte for byte what this mainline writes for it",
            key.tag()
        ));
    }
    Ok(entry)
}

/// Look the tree up: `Ok(Ok(entry))` to reuse, `Ok(Err(why))` when there is no usable entry
/// (absent: `why` says so), `Err` only when the store could not be read.
pub fn lookup(store: &dyn Store, key: &TreeKey) -> Result<Result<Entry, Unusable>, StoreError> {
    let tag = key.tag();
    match store.fetch_manifest(&ReferenceTarget::Tag(tag.clone())) {
        Ok(Some(m)) => Ok(read_entry(key, &m.bytes)),
        Ok(None) => Ok(Err(Unusable(format!("no entry {tag} yet")))),
        // Bytes that fail their digest are as unusable as a foreign entry: pack.
        Err(e) if e.kind == mainline_store::ErrorKind::Integrity => Ok(Err(Unusable(format!(
            "{tag} could not be read intact: {e}"
        )))),
        Err(e) => Err(e),
    }
}

/// Write the entry for `key`: the layer and config it names must already be in the store.
/// No read-back: a wrong or lost entry only costs a later push a full pack.
pub fn record(store: &dyn Store, key: &TreeKey, entry: &Entry) -> Result<(), StoreError> {
    let bytes = entry_bytes(key, entry);
    store.put_manifest(&key.tag(), OCI_MANIFEST_MEDIA_TYPE, &bytes)?;
    Ok(())
}
