//! One actor's registry client: the `Store` port over the in-memory registry, every call
//! going through the actor's faults, and a channel write that the network may hold past its
//! attempt's limit (see the parent module on held writes).
//!
//! Why apart from the registry: the registry is what is stored and how a PUT is judged; this is
//! how an actor reaches it (faults, timeouts, the fence), which is where the interleavings live.
//! Must never: apply a write outside `put` (which checks blobs and reports channel moves), or
//! answer a held write before its attempt's cut-off.

use super::{blob_unknown, put, HeldWrite};
use crate::faults::Side;
use crate::world::{ActorId, CallError, State, World};
use mainline_core::{Digest, Tag};
use mainline_store::{
    ErrorKind, Location, ReferenceTarget, Store, StoreError, StoredManifest, WriteFence,
};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

/// One actor's registry client: the `Store` the executor and the CI glue use.
pub struct SimStore {
    pub world: Arc<World>,
    pub actor: ActorId,
}

impl SimStore {
    fn call<T>(
        &self,
        write: bool,
        op: impl FnOnce(&mut State) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let actor = self.actor;
        match self.world.call(actor, Side::Registry, write, |s| {
            s.actors[actor].pending_view = None;
            op(s)
        }) {
            Ok(r) => r,
            Err(e) => Err(self.unavailable(e)),
        }
    }

    /// A channel write, possibly held past its attempt's limit (`limit_ms`: the fence's bound;
    /// `None` for unfenced writers, cut off by the client's own timeout).
    fn put_channel(
        &self,
        tag: &Tag,
        media_type: &str,
        bytes: &[u8],
        fence: Option<&dyn WriteFence>,
    ) -> Result<Digest, StoreError> {
        let actor = self.actor;
        let w = &self.world;
        let demo = w.params.unfenced_writes;
        let limit_ms = match fence.filter(|_| !demo) {
            Some(f) => {
                let d = f
                    .admit()
                    .map_err(|r| StoreError::new(ErrorKind::Fenced, r.to_string()))?;
                Some(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            }
            None => None,
        };
        let timeout = w.params.faults.timeout_ms;
        let cut = limit_ms.map_or(timeout, |l| l.min(timeout));
        let held = w.with(|s| {
            if s.actors[actor].dead || *tag != w.config.tag {
                return None;
            }
            let after = s.faults.stall(s.now)?;
            s.actors[actor].calls += 1;
            let k = s.registry.held.len();
            let sent = s.now;
            s.registry.held.push(Some(HeldWrite {
                actor,
                tag: tag.clone(),
                media_type: media_type.to_owned(),
                bytes: bytes.to_vec(),
                sent,
                decided_at: s.actors[actor].decided_at,
            }));
            s.at(sent + cut + after, crate::Event::LateWrite(k));
            let name = s.actors[actor].name.clone();
            s.note(|_| format!("{name}: its channel write is held by the network"));
            Some(())
        });
        if held.is_none() {
            let channel = w.config.tag.clone();
            return self.call(true, |s| put(s, actor, &channel, tag, media_type, bytes));
        }
        w.wait(cut);
        if let (Some(f), false) = (fence, demo) {
            f.note_uncertain();
        }
        Err(StoreError::new(
            ErrorKind::Unavailable,
            format!(
                "{}: no answer to the PUT of {tag} within {} ms (it may still be applied)",
                w.config.store, cut
            ),
        ))
    }

    fn unavailable(&self, e: CallError) -> StoreError {
        StoreError::new(
            ErrorKind::Unavailable,
            format!("{}: {e}", self.world.config.store),
        )
    }
}

impl Store for SimStore {
    fn location(&self) -> &Location {
        &self.world.config.store
    }

    fn blob_exists(&self, digest: &Digest) -> Result<bool, StoreError> {
        self.call(false, |s| Ok(s.registry.blobs.contains_key(digest)))
    }

    fn push_blob(
        &self,
        digest: &Digest,
        size: u64,
        path: &Path,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), StoreError> {
        let bytes = std::fs::read(path).map_err(|e| {
            StoreError::new(
                ErrorKind::Internal,
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        if Digest::of(&bytes) != *digest || bytes.len() as u64 != size {
            return Err(StoreError::new(
                ErrorKind::Integrity,
                format!("blob at {} is not {digest} ({size} bytes)", path.display()),
            ));
        }
        progress(size);
        self.call(true, |s| {
            s.registry.blobs.insert(digest.clone(), Arc::new(bytes));
            Ok(())
        })
    }

    fn fetch_blob(&self, digest: &Digest, out: &mut dyn Write) -> Result<u64, StoreError> {
        let bytes = self.call(false, |s| {
            s.registry
                .blobs
                .get(digest)
                .cloned()
                .ok_or_else(|| blob_unknown(digest))
        })?;
        out.write_all(&bytes)
            .map_err(|e| StoreError::new(ErrorKind::Internal, format!("writing blob: {e}")))?;
        Ok(bytes.len() as u64)
    }

    fn resolve(&self, tag: &Tag) -> Result<Option<Digest>, StoreError> {
        let actor = self.actor;
        let channel = &self.world.config.tag;
        match self.world.call(actor, Side::Registry, false, |s| {
            let a = &mut s.actors[actor];
            if tag == channel {
                if let Some(at) = a.pending_view.take() {
                    a.decided_at = at;
                }
            } else {
                a.pending_view = None;
            }
            s.registry.tags.get(tag).cloned()
        }) {
            Ok(d) => Ok(d),
            Err(e) => Err(self.unavailable(e)),
        }
    }

    fn fetch_manifest(
        &self,
        target: &ReferenceTarget,
    ) -> Result<Option<StoredManifest>, StoreError> {
        self.call(false, |s| {
            let digest = match target {
                ReferenceTarget::Tag(t) => s.registry.tags.get(t).cloned(),
                ReferenceTarget::Digest(d) => Some(d.clone()),
            };
            Ok(digest.and_then(|d| s.registry.manifests.get(&d).cloned()))
        })
    }

    fn put_manifest(
        &self,
        tag: &Tag,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest, StoreError> {
        self.put_channel(tag, media_type, bytes, None)
    }

    fn put_manifest_fenced(
        &self,
        tag: &Tag,
        media_type: &str,
        bytes: &[u8],
        fence: &dyn WriteFence,
    ) -> Result<Digest, StoreError> {
        self.put_channel(tag, media_type, bytes, Some(fence))
    }

    fn list_tags(&self) -> Result<Vec<Tag>, StoreError> {
        self.call(false, |s| Ok(s.registry.tags.keys().cloned().collect()))
    }
}
