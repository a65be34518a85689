//! cosign's "simple signing" payload: the JSON document a cosign signature is made over. Its
//! `critical.image.docker-manifest-digest` names the one manifest digest the signature is for;
//! that, and only that, ties a signature to our artifact (the signature itself only proves who
//! signed these bytes).
//!
//! `critical.identity.docker-reference` (the repository the signer pushed to) is not compared:
//! an artifact copied between repositories keeps a valid signature, as `skopeo copy` and
//! `cosign copy` keep it.
//!
//! Must never: accept a payload whose digest differs from the one asked about in any way
//! (case, algorithm, whitespace).

use mainline_core::Digest;
use serde::Deserialize;

/// The `critical.type` every cosign image signature carries.
pub const COSIGN_SIGNATURE_TYPE: &str = "cosign container image signature";

#[derive(Deserialize)]
struct Payload {
    critical: Critical,
}

#[derive(Deserialize)]
struct Critical {
    #[serde(rename = "type")]
    kind: String,
    image: Image,
}

#[derive(Deserialize)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    digest: String,
}

/// Why a payload does not vouch for a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadProblem {
    /// Not the JSON shape of a simple-signing payload.
    Malformed(String),
    /// A well-formed payload for another manifest.
    OtherDigest(String),
}

/// The digest a payload names, if it is a cosign image-signature payload for `digest`.
pub fn check(payload: &[u8], digest: &Digest) -> Result<(), PayloadProblem> {
    let p: Payload = serde_json::from_slice(payload)
        .map_err(|e| PayloadProblem::Malformed(format!("not a simple-signing payload: {e}")))?;
    if p.critical.kind != COSIGN_SIGNATURE_TYPE {
        return Err(PayloadProblem::Malformed(format!(
            "critical.type is {:?}, not {COSIGN_SIGNATURE_TYPE:?}",
            p.critical.kind
        )));
    }
    if p.critical.image.digest != digest.as_str() {
        return Err(PayloadProblem::OtherDigest(p.critical.image.digest));
    }
    Ok(())
}

/// The payload cosign signs for `digest` pushed to `reference` (tests build signatures with it,
/// as an independent signer would).
pub fn payload_for(reference: &str, digest: &Digest) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "critical": {
            "identity": {"docker-reference": reference},
            "image": {"docker-manifest-digest": digest.as_str()},
            "type": COSIGN_SIGNATURE_TYPE,
        },
        "optional": null,
    }))
    .expect("a JSON value serialises")
}
