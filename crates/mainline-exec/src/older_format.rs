//! A commit's tag already names an artifact of the same tree packed by another packing format
//! (an older mainline pushed it; `mainline_pack::PACK_FORMAT` changed since): the push keeps
//! that artifact instead of failing with "artifact tags are immutable". Its digest — and every
//! signature on it — stays; the new layer is still uploaded, so the store's tree index can name
//! it for later commits of the same tree.
//!
//! Costs one manifest GET and a download of the stored layer, and only when the tag names
//! another digest; an artifact that differs in anything but the layer's gzip bytes (another
//! tree, source, revision or created time) is decided on the manifest alone and stays a
//! conflict.
//!
//! Must never: accept another artifact whose tar stream was not hashed equal to the one just
//! packed, or hold a layer in memory.

use crate::artifact::ArtifactError;
use mainline_core::Digest;
use mainline_pack::{other_gzip_of, tar_stream_digest, Packed, TarStreamHasher};
use mainline_store::{ReferenceTarget, Store};

/// Whether `existing` (what the commit's tag names) is `packed`'s tree, with the same
/// annotations, packed by another format: its manifest differs from `packed`'s in the layer's
/// digest and size alone, and its layer gunzips to the same tar stream.
pub(crate) fn same_tree(
    store: &dyn Store,
    existing: &Digest,
    packed: &Packed,
) -> Result<bool, ArtifactError> {
    let Some(stored) = store.fetch_manifest(&ReferenceTarget::Digest(existing.clone()))? else {
        return Ok(false);
    };
    let Some(layer) = other_gzip_of(&packed.manifest_bytes, &stored.bytes) else {
        return Ok(false);
    };
    // The packed layer is a temp file of ours: failing to read it back is a scratch failure.
    let ours = std::fs::File::open(&packed.layer_file)
        .and_then(tar_stream_digest)
        .map_err(|source| ArtifactError::Scratch {
            action: "read back",
            source,
        })?;
    let mut theirs = TarStreamHasher::new();
    store.fetch_blob(&layer.digest, &mut theirs)?;
    let theirs = match theirs.finish() {
        Ok(digest) => digest,
        // Not gzip, or cut short: not the same tree; the conflict says what the tag names.
        Err(_) => return Ok(false),
    };
    Ok(ours == theirs)
}
