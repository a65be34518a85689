//! The in-memory OCI registry and each actor's view of it through the `Store` port, plus the
//! deterministic artifact "packing" every strategy's CI and mainline's `Builder` share.
//!
//! Faithful where it matters to the verdict: manifests are content-addressed (the digest is
//! the sha256 of the exact bytes, so `put_manifest` of identical bytes keeps the digest and a
//! re-tag preserves signatures), a manifest whose blobs are missing is rejected (as a registry
//! answers MANIFEST_BLOB_UNKNOWN), tags move only by `put_manifest`, signatures are cosign's
//! `sha256-<hex>.sig` tags. The registry has no conditional write, so neither does this one.
//! An artifact is the real Flux manifest (`mainline_pack::manifest_bytes`) over a layer whose
//! bytes are derived from the commit's deploy tree: same tree and revision, same digest.
//!
//! Held writes (DESIGN.md scenario 12): a channel write may be held by the network past its
//! attempt's limit; the caller gets no answer at the cut-off, and the registry applies the PUT
//! later in virtual time ([`land_held`]). A fenced write asks `fence.admit()` for its attempt's
//! limit and reports the unanswered attempt (`note_uncertain`), as a real client must; the
//! executor then holds its lock until the late landing cannot hurt. `SimConfig::unfenced_writes`
//! (a demonstration for tests only) drops both, reproducing the pre-fence bug.
//!
//! Must never: accept bytes whose digest differs from the one asked for, or return a tag's
//! digest for bytes it does not hold.

mod artifacts;
mod client;

pub use artifacts::{pack, push_packed, seed_main, sign, upload_blobs, Packed};
pub use client::SimStore;

use super::world::{ActorId, State, World};
use mainline_core::{CommitId, Digest, Tag};
use mainline_store::{ErrorKind, StoreError, StoredManifest};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The registry's contents.
#[derive(Default)]
pub struct Registry {
    pub blobs: BTreeMap<Digest, Arc<Vec<u8>>>,
    pub manifests: BTreeMap<Digest, StoredManifest>,
    pub tags: BTreeMap<Tag, Digest>,
    /// The commit each manifest's revision annotation records (parsed once, on first put).
    pub revisions: BTreeMap<Digest, Option<CommitId>>,
    /// Channel writes held by the network, applied when their `Event::LateWrite` comes.
    pub held: Vec<Option<HeldWrite>>,
}

/// A PUT the registry has received but not yet applied.
pub struct HeldWrite {
    pub actor: ActorId,
    pub tag: Tag,
    pub media_type: String,
    pub bytes: Vec<u8>,
    /// When the request was sent.
    pub sent: super::world::Ms,
    /// What its writer's decision was based on when it sent it (S4 judges the write by that,
    /// not by whatever the writer read afterwards).
    pub decided_at: super::world::Stamp,
}

/// A held write reaches the registry now.
pub fn land_held(w: &World, s: &mut State, k: usize) {
    let Some(h) = s.registry.held.get_mut(k).and_then(Option::take) else {
        return;
    };
    let name = s.actors[h.actor].name.clone();
    let sent = h.sent;
    s.note(|s| {
        format!(
            "{name}: its channel write sent at {} s, held by the network, lands now ({} s late)",
            sent / 1000,
            (s.now - sent) / 1000
        )
    });
    let channel = w.config.tag.clone();
    let later = std::mem::replace(&mut s.actors[h.actor].decided_at, h.decided_at);
    if let Err(e) = put(s, h.actor, &channel, &h.tag, &h.media_type, &h.bytes) {
        s.note(|_| format!("{name}: the late write was rejected: {e}"));
    }
    s.actors[h.actor].decided_at = later;
}

impl Registry {
    pub fn signed(&self, digest: &Digest) -> bool {
        self.tags.contains_key(&digest.cosign_signature_tag())
    }
}

/// What the registry says when a manifest names a blob it does not have.
fn blob_unknown(digest: &Digest) -> StoreError {
    StoreError::new(
        ErrorKind::InvalidInput,
        format!("MANIFEST_BLOB_UNKNOWN: blob {digest} is not in the repository"),
    )
}

/// Store `bytes` under `tag` (the registry side of a PUT). Reports channel moves to the monitor.
fn put(
    s: &mut State,
    actor: ActorId,
    channel: &Tag,
    tag: &Tag,
    media_type: &str,
    bytes: &[u8],
) -> Result<Digest, StoreError> {
    let digest = Digest::of(bytes);
    if !s.registry.manifests.contains_key(&digest) {
        let parsed = mainline_pack::parse_manifest(bytes).map_err(|e| {
            StoreError::new(ErrorKind::InvalidInput, format!("MANIFEST_INVALID: {e}"))
        })?;
        for d in
            std::iter::once(&parsed.config.digest).chain(parsed.layers.iter().map(|l| &l.digest))
        {
            if !s.registry.blobs.contains_key(d) {
                return Err(blob_unknown(d));
            }
        }
        let commit = parsed.revision().and_then(Result::ok).map(|r| r.commit);
        s.registry.revisions.insert(digest.clone(), commit);
        s.registry.manifests.insert(
            digest.clone(),
            StoredManifest {
                digest: digest.clone(),
                media_type: media_type.to_owned(),
                bytes: bytes.to_vec(),
            },
        );
    }
    let before = s.registry.tags.insert(tag.clone(), digest.clone());
    if tag == channel && before.as_ref() != Some(&digest) {
        super::monitor::on_channel_write(s, actor, &digest);
    } else if tag.as_str().ends_with(".sig") {
        super::monitor::observe(s);
    }
    Ok(digest)
}
