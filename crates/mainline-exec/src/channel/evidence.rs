//! The evidence fact for one artifact digest, as the channel's configuration defines evidence:
//! with signature keys, a cosign signature over exactly that digest that verifies with one of
//! them (and, under an attestation policy, a verified SLSA provenance about it); without keys,
//! the presence of the `sha256-<hex>.sig` tag (weak: anyone who can push a tag satisfies it,
//! and the docs say so).
//!
//! Must never: turn a read error into "unsigned" (it is Unknown: the core holds or refuses
//! `facts_unknown`), or into "signed".

use super::EvidenceConfig;
use mainline_core::{Digest, Known};
use mainline_evidence::{check_attestation, check_signature, Evidence};
use mainline_store::Store;

/// Whether `digest` carries the evidence `config` asks for, and when it does not, why.
pub fn judge(
    store: &dyn Store,
    config: &EvidenceConfig,
    digest: &Digest,
) -> (Known<bool>, Option<String>) {
    let unreadable = |e: mainline_store::StoreError| {
        (
            Known::unknown(format!(
                "evidence for {} could not be read: {e}",
                digest.short()
            )),
            None,
        )
    };
    if config.keys.is_empty() {
        return match store.resolve(&digest.cosign_signature_tag()) {
            Ok(found) => (Known::Known(found.is_some()), None),
            Err(e) => unreadable(e),
        };
    }
    match check_signature(store, digest, &config.keys) {
        Err(e) => return unreadable(e),
        Ok(Evidence::Missing(problem)) => return (Known::Known(false), Some(problem.to_string())),
        Ok(Evidence::Verified { .. }) => {}
    }
    let Some(policy) = &config.attestation else {
        return (Known::Known(true), None);
    };
    match check_attestation(store, digest, &config.keys, policy) {
        Err(e) => unreadable(e),
        Ok(Err(problem)) => (Known::Known(false), Some(problem.to_string())),
        Ok(Ok(())) => (Known::Known(true), None),
    }
}
