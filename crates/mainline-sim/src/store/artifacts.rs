//! The deterministic artifact "packing" every strategy's CI and mainline's `Builder` share,
//! pushing and cosign-style signing through an actor's client, and the history's seed.
//!
//! Why apart from the registry: these are what a CI job or a heal does with a registry, not
//! the registry itself; they go through the `Store` port like the real `mainline push`.
//! Must never: give the same commit, tree and revision two different digests, or move an
//! existing artifact tag (`push_packed` returns the digest already there).

use super::put;
use crate::artifact::ArtifactError;
use crate::channel::ports::BuildError;
use crate::error::CliError;
use crate::faults::Side;
use crate::world::{ActorId, State, World};
use mainline_core::{CommitId, Digest, Revision};
use mainline_store::{Store, StoredManifest, OCI_MANIFEST_MEDIA_TYPE};
use std::sync::Arc;

/// The bytes of one packed artifact.
pub struct Packed {
    pub config: Vec<u8>,
    pub layer: Vec<u8>,
    pub manifest: Vec<u8>,
}

/// Pack the artifact of `commit` (deploy tree `tree`, committed at `time_s`) as built from
/// `revision_ref`: the same inputs give the same bytes, like the real reproducible packer.
pub fn pack(
    tree: &str,
    commit: &CommitId,
    time_s: i64,
    revision_ref: &str,
    source: &str,
) -> Result<Packed, BuildError> {
    let created = time::OffsetDateTime::from_unix_timestamp(time_s)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .ok_or_else(|| BuildError::Internal(format!("unusable commit time {time_s}")))?;
    let revision = Revision::new(Some(revision_ref.to_owned()), commit.clone());
    let meta = mainline_pack::ArtifactMeta::new(source, revision, &created)?;
    let config = mainline_pack::FLUX_CONFIG_BYTES.to_vec();
    let layer = format!("sim layer: deploy tree {tree}\n").into_bytes();
    let manifest = mainline_pack::manifest_bytes(
        &mainline_pack::Descriptor::of(mainline_pack::FLUX_CONFIG_MEDIA_TYPE, &config),
        &mainline_pack::Descriptor::of(mainline_pack::FLUX_LAYER_MEDIA_TYPE, &layer),
        &meta,
    );
    Ok(Packed {
        config,
        layer,
        manifest,
    })
}

/// Upload blobs through `actor`'s faults (the sim's stand-in for `push_blob` from files).
pub fn upload_blobs(world: &Arc<World>, actor: ActorId, blobs: &[&[u8]]) -> Result<(), BuildError> {
    for b in blobs {
        let digest = Digest::of(b);
        let bytes = Arc::new(b.to_vec());
        world
            .call(actor, Side::Registry, true, |s| {
                s.registry.blobs.insert(digest, bytes);
            })
            .map_err(|e| BuildError::Unavailable(format!("uploading a blob: {e}")))?;
    }
    Ok(())
}

/// Push `packed` under the immutable tag of `commit`, as `mainline push` does: an existing
/// artifact tag is never moved (its digest is returned), a new one is written and read back.
pub fn push_packed(
    world: &Arc<World>,
    actor: ActorId,
    store: &dyn Store,
    commit: &CommitId,
    packed: &Packed,
) -> Result<Digest, BuildError> {
    let tag = commit.artifact_tag();
    if let Some(existing) = store.resolve(&tag).map_err(ArtifactError::from)? {
        return Ok(existing);
    }
    upload_blobs(world, actor, &[&packed.config, &packed.layer])?;
    let manifest = StoredManifest {
        digest: Digest::of(&packed.manifest),
        media_type: OCI_MANIFEST_MEDIA_TYPE.to_owned(),
        bytes: packed.manifest.clone(),
    };
    crate::artifact::write_tag(store, &manifest, &tag)?;
    Ok(manifest.digest)
}

/// The blobs and manifest of a cosign-style signature of `digest`.
fn signature(digest: &Digest) -> (Vec<u8>, Vec<u8>, String) {
    let config = b"{}".to_vec();
    let payload =
        format!("{{\"critical\":{{\"image\":{{\"docker-manifest-digest\":\"{digest}\"}}}}}}")
            .into_bytes();
    let manifest = format!(
        "{{\"schemaVersion\":2,\"mediaType\":\"{OCI_MANIFEST_MEDIA_TYPE}\",\"config\":{{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"{}\",\"size\":{}}},\"layers\":[{{\"mediaType\":\"application/vnd.dev.cosign.simplesigning.v1+json\",\"digest\":\"{}\",\"size\":{}}}]}}",
        Digest::of(&config),
        config.len(),
        Digest::of(&payload),
        payload.len()
    );
    (config, payload, manifest)
}

/// Sign `digest` the way cosign stores a signature: a small manifest under `sha256-<hex>.sig`.
pub fn sign(
    world: &Arc<World>,
    actor: ActorId,
    store: &dyn Store,
    digest: &Digest,
) -> Result<(), CliError> {
    let (config, payload, manifest) = signature(digest);
    upload_blobs(world, actor, &[&config, &payload])?;
    store.put_manifest(
        &digest.cosign_signature_tag(),
        OCI_MANIFEST_MEDIA_TYPE,
        manifest.as_bytes(),
    )?;
    Ok(())
}

/// The history's start: main's first commit, its artifact pushed (and signed), the channel on
/// it. World moves, not actor calls: no faults.
pub fn seed_main(w: &World, s: &mut State) {
    let setup = s.add_actor("setup".into(), None, 0);
    let c0 = crate::queue::source_commit(s, &[], crate::rng::mix(w.params.seed));
    s.git.set_ref(crate::git::MAIN_REF, Some(c0));
    let id = s.git.id(c0).clone();
    let tree = s.git.tree(c0).unwrap_or_default().to_owned();
    let packed = pack(&tree, &id, s.git.objs[c0].time_s, "main", &w.config.source)
        .expect("the first commit's time and the sim's source are valid");
    let digest = Digest::of(&packed.manifest);
    let (sig_config, sig_payload, sig_manifest) = signature(&digest);
    for b in [packed.config, packed.layer, sig_config, sig_payload] {
        s.registry.blobs.insert(Digest::of(&b), Arc::new(b));
    }
    let channel = w.config.tag.clone();
    let mut puts = vec![(id.artifact_tag(), packed.manifest.clone())];
    if w.params.require_signature {
        puts.push((digest.cosign_signature_tag(), sig_manifest.into_bytes()));
    }
    puts.push((channel.clone(), packed.manifest));
    for (tag, bytes) in puts {
        put(s, setup, &channel, &tag, OCI_MANIFEST_MEDIA_TYPE, &bytes)
            .expect("the seeded artifact's blobs were stored first");
    }
}
