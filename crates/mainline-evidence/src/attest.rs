//! Provenance attestations: an in-toto statement in a DSSE envelope, stored by `cosign attest`
//! as a layer of the manifest tagged `sha256-<hex>.att`. Under an attestation policy a digest
//! needs one envelope that (1) verifies with a configured key over DSSE's pre-authentication
//! encoding, (2) carries an in-toto statement whose subject is exactly this digest, (3) has an
//! SLSA provenance predicate (v0.2 or v1), and (4) names the configured builder id and source
//! repository, when those are configured.
//!
//! Where the fields live: SLSA v0.2 `predicate.builder.id`, `predicate.invocation.configSource
//! .uri` and `predicate.materials[].uri`; SLSA v1 `predicate.runDetails.builder.id`,
//! `predicate.buildDefinition.externalParameters.workflow.repository` and
//! `predicate.buildDefinition.resolvedDependencies[].uri`. A source matches when one of those
//! URIs, without a `git+` prefix and an `@<ref>` suffix, equals the configured repository.
//!
//! Must never: accept a statement about another digest, or one whose envelope did not verify.

use crate::cosign::{read_layer, read_layers};
use crate::keys::KeySet;
use crate::MAX_LAYERS;
use base64::Engine;
use mainline_core::{Digest, Tag};
use mainline_store::{Store, StoreError};
use serde::Deserialize;
use serde_json::Value;

/// The payload type of an in-toto statement inside DSSE.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// What an attestation must say. Both fields optional: an empty policy still requires a
/// verified SLSA provenance statement about the digest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttestationPolicy {
    /// The builder id the provenance must name (e.g. a GitHub workflow URL).
    pub builder_id: Option<String>,
    /// The source repository the provenance must name (e.g. `https://github.com/acme/app`).
    pub source: Option<String>,
}

/// Why no attestation satisfied the policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttestationProblem {
    #[error("no attestation: the tag {tag} does not exist (run `cosign attest --key … --type slsaprovenance`)")]
    None { tag: Tag },
    #[error("{tag} holds no usable attestation: {why}")]
    Unusable { tag: Tag, why: String },
    #[error("no attestation in {tag} verifies with the configured key(s) {keys}")]
    NoKeyVerifies { tag: Tag, keys: String },
    #[error("the attestation in {tag} is about another subject, not this digest")]
    OtherSubject { tag: Tag },
    #[error("the provenance in {tag} does not match the policy: {why}")]
    Mismatch { tag: Tag, why: String },
}

impl AttestationProblem {
    fn rank(&self) -> u8 {
        match self {
            AttestationProblem::None { .. } => 0,
            AttestationProblem::Unusable { .. } => 1,
            AttestationProblem::NoKeyVerifies { .. } => 2,
            AttestationProblem::OtherSubject { .. } => 3,
            AttestationProblem::Mismatch { .. } => 4,
        }
    }
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "payloadType")]
    payload_type: String,
    payload: String,
    signatures: Vec<EnvelopeSig>,
}

#[derive(Deserialize)]
struct EnvelopeSig {
    sig: String,
}

/// DSSE's pre-authentication encoding: what the envelope's signatures are over.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// The tag cosign stores attestations of `digest` under.
pub fn attestation_tag(digest: &Digest) -> Tag {
    format!("sha256-{}.att", digest.hex())
        .parse()
        .expect("sha256-<hex>.att is a valid tag")
}

/// Check `digest`'s attestations in `store` against `keys` and `policy`. `Ok(Ok(()))`: one
/// satisfied everything.
pub fn check_attestation(
    store: &dyn Store,
    digest: &Digest,
    keys: &KeySet,
    policy: &AttestationPolicy,
) -> Result<Result<(), AttestationProblem>, StoreError> {
    let tag = attestation_tag(digest);
    let layers = match read_layers(store, &tag)? {
        Ok(Some(layers)) => layers,
        Ok(None) => return Ok(Err(AttestationProblem::None { tag })),
        Err(why) => return Ok(Err(AttestationProblem::Unusable { tag, why })),
    };
    let mut worst: Option<AttestationProblem> = None;
    for layer in layers.iter().take(MAX_LAYERS) {
        let outcome = match read_layer(store, layer)? {
            Ok(bytes) => judge(&bytes, digest, keys, policy, &tag),
            Err(why) => Err(AttestationProblem::Unusable {
                tag: tag.clone(),
                why,
            }),
        };
        match outcome {
            Ok(()) => return Ok(Ok(())),
            Err(p) => {
                if worst.as_ref().is_none_or(|w| p.rank() > w.rank()) {
                    worst = Some(p);
                }
            }
        }
    }
    Ok(Err(worst.unwrap_or(AttestationProblem::Unusable {
        tag,
        why: "none of its layers is an attestation".into(),
    })))
}

/// Judge one DSSE envelope.
fn judge(
    bytes: &[u8],
    digest: &Digest,
    keys: &KeySet,
    policy: &AttestationPolicy,
    tag: &Tag,
) -> Result<(), AttestationProblem> {
    let unusable = |why: String| AttestationProblem::Unusable {
        tag: tag.clone(),
        why,
    };
    let env: Envelope =
        serde_json::from_slice(bytes).map_err(|e| unusable(format!("not a DSSE envelope: {e}")))?;
    if env.payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(unusable(format!(
            "payload type {:?}, not {IN_TOTO_PAYLOAD_TYPE:?}",
            env.payload_type
        )));
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let payload = b64
        .decode(env.payload.trim())
        .map_err(|e| unusable(format!("the payload is not base64: {e}")))?;
    let message = pae(&env.payload_type, &payload);
    let verified = env.signatures.iter().any(|s| {
        b64.decode(s.sig.trim())
            .is_ok_and(|sig| keys.verifying_key(&message, &sig).is_some())
    });
    if !verified {
        return Err(AttestationProblem::NoKeyVerifies {
            tag: tag.clone(),
            keys: keys.names(),
        });
    }
    let statement: Value = serde_json::from_slice(&payload)
        .map_err(|e| unusable(format!("the payload is not an in-toto statement: {e}")))?;
    let about_us = statement["subject"].as_array().is_some_and(|subjects| {
        subjects
            .iter()
            .any(|s| s["digest"]["sha256"].as_str() == Some(digest.hex()))
    });
    if !about_us {
        return Err(AttestationProblem::OtherSubject { tag: tag.clone() });
    }
    let mismatch = |why: String| AttestationProblem::Mismatch {
        tag: tag.clone(),
        why,
    };
    let predicate_type = statement["predicateType"].as_str().unwrap_or_default();
    if !predicate_type.starts_with("https://slsa.dev/provenance/") {
        return Err(mismatch(format!(
            "predicate type {predicate_type:?} is not SLSA provenance"
        )));
    }
    let p = &statement["predicate"];
    if let Some(want) = &policy.builder_id {
        let builder = p["builder"]["id"]
            .as_str()
            .or(p["runDetails"]["builder"]["id"].as_str())
            .unwrap_or_default();
        if builder != want {
            return Err(mismatch(format!(
                "builder {builder:?}, the policy wants {want:?}"
            )));
        }
    }
    if let Some(want) = &policy.source {
        let sources = source_uris(p);
        if !sources.iter().any(|s| same_repository(s, want)) {
            return Err(mismatch(format!(
                "sources {sources:?}, the policy wants {want:?}"
            )));
        }
    }
    Ok(())
}

/// Every source URI the provenance names (both SLSA versions).
fn source_uris(p: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut push = |v: &Value| {
        if let Some(s) = v.as_str() {
            out.push(s.to_string());
        }
    };
    push(&p["invocation"]["configSource"]["uri"]);
    push(&p["buildDefinition"]["externalParameters"]["workflow"]["repository"]);
    for list in [
        &p["materials"],
        &p["buildDefinition"]["resolvedDependencies"],
    ] {
        for m in list.as_array().into_iter().flatten() {
            push(&m["uri"]);
        }
    }
    out
}

/// `git+https://github.com/acme/app@refs/heads/main` names `https://github.com/acme/app`.
fn same_repository(uri: &str, want: &str) -> bool {
    let bare = uri.strip_prefix("git+").unwrap_or(uri);
    let bare = bare.split_once('@').map_or(bare, |(repo, _)| repo);
    let norm = |s: &str| s.trim_end_matches('/').trim_end_matches(".git").to_string();
    norm(bare) == norm(want)
}
