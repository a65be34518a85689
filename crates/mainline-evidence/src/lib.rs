//! Evidence that means something: before the channel may name a digest under
//! `--require-signature`, a cosign signature over exactly that digest must verify with one of
//! the public keys the operator configured (`--signature-key`, `signature_keys`) — the same PEM
//! file Flux's `OCIRepository.spec.verify` secret holds, so mainline's gate and Flux's agree.
//!
//! - [`keys`]: loading PEM public keys (ECDSA P-256/P-384, Ed25519, RSA) and verifying one
//!   signature with them;
//! - [`simplesigning`]: cosign's "simple signing" payload and the digest it names;
//! - [`cosign`]: reading the `sha256-<hex>.sig` artifact through the [`Store`] trait and
//!   judging it;
//! - [`attest`]: in-toto/SLSA provenance attestations (`sha256-<hex>.att`, DSSE envelopes)
//!   checked against a configured builder and source.
//!
//! Signatures are found by cosign's tag scheme (`sha256-<hex>.sig`). The OCI referrers API is
//! not consulted: the registries mainline is tested against (Debian's `docker-registry`) do not
//! serve it; a signature stored only as a referrer is reported as missing, never as present.
//! Keyless signing (Fulcio certificates, Rekor inclusion proofs) needs the public-good
//! infrastructure online and is out of scope: a key-based setup is `cosign sign --key`.
//!
//! Why not the `sigstore` crate: it brings TUF, OAuth and Rekor clients for keyless signing,
//! which mainline cannot use offline, and a large dependency tree; the key-based check is a
//! JSON payload comparison plus one signature verification, done here with `ring` (already in
//! the tree through rustls).
//!
//! Must never: report a digest as signed on anything but a signature that verified over a
//! payload naming exactly that digest; read an unbounded blob; print key material.

pub mod attest;
pub mod cosign;
pub mod keys;
pub mod simplesigning;

pub use attest::{check_attestation, AttestationPolicy, AttestationProblem};
pub use cosign::{check_signature, Evidence, Problem};
pub use keys::{KeyError, KeySet, PublicKey};

/// The largest signature or attestation document read (a cosign payload is a few hundred
/// bytes; an SLSA provenance a few KiB).
pub const MAX_DOCUMENT_BYTES: u64 = 1024 * 1024;

/// The most layers of one `.sig`/`.att` manifest that are tried (cosign adds one per signing).
pub const MAX_LAYERS: usize = 64;
