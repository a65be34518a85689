//! Reading and judging a cosign signature artifact: the manifest tagged `sha256-<hex>.sig`
//! next to the artifact, whose layers are simple-signing payloads with the base64 signature in
//! the `dev.cosignproject.cosign/signature` annotation (one layer per `cosign sign`).
//!
//! A digest counts as signed when at least one layer's payload names exactly that digest and
//! its signature verifies with one of the configured keys. Otherwise the most telling problem
//! is reported: a payload for our digest that no key verifies beats one for another digest,
//! which beats a layer that is not a signature at all.
//!
//! Must never: call a digest signed because a `.sig` tag exists; read more than
//! [`MAX_DOCUMENT_BYTES`](crate::MAX_DOCUMENT_BYTES) of one layer or more than
//! [`MAX_LAYERS`](crate::MAX_LAYERS) layers; turn a registry error into "unsigned" (it is a
//! read error: the fact stays unknown).

use crate::keys::KeySet;
use crate::simplesigning::{self, PayloadProblem};
use crate::{MAX_DOCUMENT_BYTES, MAX_LAYERS};
use base64::Engine;
use mainline_core::{Digest, Tag};
use mainline_store::{ReferenceTarget, Store, StoreError};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The annotation holding a layer's base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The media type of a simple-signing payload layer.
pub const SIMPLESIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";

/// What the evidence check concluded about one digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evidence {
    /// A signature over this digest verified with the named key.
    Verified {
        key: String,
        algorithm: &'static str,
    },
    /// Not signed, for this reason.
    Missing(Problem),
}

/// Why a digest is not signed, in words an operator can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("no cosign signature: the tag {tag} does not exist (run `cosign sign --key …` on the artifact)")]
    NoSignature { tag: Tag },
    #[error("{tag} is not a cosign signature: {why}")]
    NotASignature { tag: Tag, why: String },
    #[error("the signature in {tag} is for another digest ({named}), not this artifact")]
    OtherDigest { tag: Tag, named: String },
    #[error(
        "the signature in {tag} does not verify with the configured key(s) {keys}: signed by \
         another key, or its payload or signature was altered"
    )]
    NoKeyVerifies { tag: Tag, keys: String },
}

impl Problem {
    /// A short machine-readable name: `no_signature`, `not_a_signature`, `other_digest`,
    /// `wrong_key_or_bad_signature`.
    pub fn code(&self) -> &'static str {
        match self {
            Problem::NoSignature { .. } => "no_signature",
            Problem::NotASignature { .. } => "not_a_signature",
            Problem::OtherDigest { .. } => "other_digest",
            Problem::NoKeyVerifies { .. } => "wrong_key_or_bad_signature",
        }
    }

    /// How telling the problem is, when several layers fail differently.
    fn rank(&self) -> u8 {
        match self {
            Problem::NoSignature { .. } => 0,
            Problem::NotASignature { .. } => 1,
            Problem::OtherDigest { .. } => 2,
            Problem::NoKeyVerifies { .. } => 3,
        }
    }
}

#[derive(Deserialize)]
struct Manifest {
    #[serde(default)]
    layers: Vec<Layer>,
}

#[derive(Deserialize)]
pub(crate) struct Layer {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// Read the manifest tagged `tag` and its layer list. `Ok(Err(why))`: the tag exists but is
/// not a manifest with layers; `Ok(Ok(None))`: no such tag.
pub(crate) fn read_layers(
    store: &dyn Store,
    tag: &Tag,
) -> Result<Result<Option<Vec<Layer>>, String>, StoreError> {
    let Some(manifest) = store.fetch_manifest(&ReferenceTarget::Tag(tag.clone()))? else {
        return Ok(Ok(None));
    };
    Ok(match serde_json::from_slice::<Manifest>(&manifest.bytes) {
        Ok(m) if m.layers.is_empty() => Err("its manifest has no layers".into()),
        Ok(m) => Ok(Some(m.layers)),
        Err(e) => Err(format!("its manifest is not an OCI manifest: {e}")),
    })
}

/// Fetch one layer's bytes, at most [`MAX_DOCUMENT_BYTES`]. `Ok(Err(why))`: unusable layer.
pub(crate) fn read_layer(
    store: &dyn Store,
    layer: &Layer,
) -> Result<Result<Vec<u8>, String>, StoreError> {
    if layer.size > MAX_DOCUMENT_BYTES {
        return Ok(Err(format!(
            "a layer of {} bytes is larger than the {MAX_DOCUMENT_BYTES} bytes a signature \
             document may have",
            layer.size
        )));
    }
    let Ok(digest) = layer.digest.parse::<Digest>() else {
        return Ok(Err(format!(
            "layer digest {:?} is not a digest",
            layer.digest
        )));
    };
    let mut out = Capped {
        bytes: Vec::with_capacity(layer.size as usize),
        cap: layer.size,
    };
    match store.fetch_blob(&digest, &mut out) {
        Ok(_) => {}
        // The store streamed more than the descriptor declared: refused before it is held.
        Err(_) if out.bytes.len() as u64 >= layer.size && out.overflowed() => {
            return Ok(Err(format!(
                "layer {} is longer than the {} bytes its descriptor declares",
                digest.short(),
                layer.size
            )))
        }
        Err(e) => return Err(e),
    }
    let bytes = out.bytes;
    if bytes.len() as u64 != layer.size {
        return Ok(Err(format!(
            "layer {} holds {} bytes, its descriptor says {}",
            digest.short(),
            bytes.len(),
            layer.size
        )));
    }
    Ok(Ok(bytes))
}

/// A writer that holds at most `cap` bytes and fails past it, so a store that streams more than
/// a descriptor declares never makes us hold more than [`MAX_DOCUMENT_BYTES`].
struct Capped {
    bytes: Vec<u8>,
    cap: u64,
}

impl Capped {
    fn overflowed(&self) -> bool {
        self.bytes.len() as u64 > self.cap
    }
}

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let room = self.cap.saturating_sub(self.bytes.len() as u64) as usize;
        if buf.len() > room {
            // Keep one byte past the cap as the mark that it overflowed.
            self.bytes.extend_from_slice(&buf[..room + 1]);
            return Err(std::io::Error::other("longer than declared"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Judge the cosign signatures of `digest` in `store` against `keys`.
pub fn check_signature(
    store: &dyn Store,
    digest: &Digest,
    keys: &KeySet,
) -> Result<Evidence, StoreError> {
    let tag = digest.cosign_signature_tag();
    let layers = match read_layers(store, &tag)? {
        Ok(Some(layers)) => layers,
        Ok(None) => return Ok(Evidence::Missing(Problem::NoSignature { tag })),
        Err(why) => return Ok(Evidence::Missing(Problem::NotASignature { tag, why })),
    };
    let mut worst: Option<Problem> = None;
    let mut note = |p: Problem| {
        if worst.as_ref().is_none_or(|w| p.rank() > w.rank()) {
            worst = Some(p);
        }
    };
    for layer in layers.iter().take(MAX_LAYERS) {
        let not_sig = |why: String| Problem::NotASignature {
            tag: tag.clone(),
            why,
        };
        let Some(sig_b64) = layer.annotations.get(SIGNATURE_ANNOTATION) else {
            note(not_sig(format!(
                "a layer ({}) carries no {SIGNATURE_ANNOTATION} annotation",
                layer.media_type
            )));
            continue;
        };
        let sig = match base64::engine::general_purpose::STANDARD.decode(sig_b64.trim()) {
            Ok(sig) => sig,
            Err(e) => {
                note(not_sig(format!(
                    "the signature annotation is not base64: {e}"
                )));
                continue;
            }
        };
        let payload = match read_layer(store, layer)? {
            Ok(p) => p,
            Err(why) => {
                note(not_sig(why));
                continue;
            }
        };
        match simplesigning::check(&payload, digest) {
            Err(PayloadProblem::Malformed(why)) => note(not_sig(why)),
            Err(PayloadProblem::OtherDigest(named)) => note(Problem::OtherDigest {
                tag: tag.clone(),
                named,
            }),
            Ok(()) => match keys.verifying_key(&payload, &sig) {
                Some(key) => {
                    return Ok(Evidence::Verified {
                        key: key.name().to_string(),
                        algorithm: key.algorithm_name(),
                    })
                }
                None => note(Problem::NoKeyVerifies {
                    tag: tag.clone(),
                    keys: keys.names(),
                }),
            },
        }
    }
    Ok(Evidence::Missing(worst.unwrap_or(Problem::NotASignature {
        tag,
        why: "none of its layers is a signature".into(),
    })))
}
