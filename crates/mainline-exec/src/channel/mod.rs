//! Channel control: gather facts, ask the pure core for a decision, carry out its plan, read
//! back and decide again — the loop every entry point (deploy, promote, reconcile, pin) runs.
//!
//! Invariants (DESIGN.md): the channel is only written with the identical manifest bytes of an
//! artifact that exists in the store (fetched by digest right before the write), every write is
//! read back, and after every write the executor re-decides from fresh facts, so a write that
//! raced with a group's end is undone in the same run.
//! Must never: decide anything itself (that is `mainline_core::decide`), or move the channel
//! on a fact it could not read.

pub mod cache;
mod effects;
pub mod error;
mod evidence;
pub mod exec;
mod fence;
pub mod gather;
pub mod journal;
pub mod journal_verify;
pub mod lock;
pub mod ports;
mod record;
pub mod refs;
mod render;
pub mod report;
mod rounds;
mod short;
pub mod verified;

use mainline_core::{Policy, Tag};
use mainline_store::Location;
use refs::ChannelKey;
use std::time::Duration;

/// Where candidates' in-flight state comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum QueueSource {
    /// GitHub's merge-queue refs (`refs/heads/gh-readonly-queue/<branch>/…`); leases count too.
    GithubRefs,
    /// Hosts without a queue: a candidate deploy records a lease with a TTL.
    Lease,
}

/// One channel, fully validated: where it lives, what it follows, and its policy.
#[derive(Debug, Clone)]
pub struct ChannelConfig {
    pub store: Location,
    pub tag: Tag,
    pub key: ChannelKey,
    /// The git remote as given (may hold credentials: never print it; use `git_display`).
    pub git: String,
    /// The remote with any credentials redacted.
    pub git_display: String,
    pub branch: String,
    pub path: String,
    /// `org.opencontainers.image.source` for artifacts mainline packs itself.
    pub source: String,
    pub policy: Policy,
    /// The keys and attestation policy evidence is judged by (under `policy.require_signature`).
    pub evidence: EvidenceConfig,
    pub queue: QueueSource,
    pub lease_ttl: Duration,
    /// How writers are serialised (the git-ref lock by default).
    pub lock: exec::LockMode,
    /// The `[kubernetes]` settings (Flux consumers, Lease namespace), parsed by the
    /// Kubernetes adapter when this build has it.
    pub kubernetes: Option<toml::Value>,
}

/// What counts as evidence. No keys: only the presence of a `sha256-<hex>.sig` tag is
/// checked (the behaviour before keys existed; documented as weak).
#[derive(Debug, Clone, Default)]
pub struct EvidenceConfig {
    pub keys: mainline_evidence::KeySet,
    /// Also require a verified SLSA provenance attestation matching this policy.
    pub attestation: Option<mainline_evidence::AttestationPolicy>,
}

impl ChannelConfig {
    /// `STORE:TAG`, for messages.
    pub fn channel_display(&self) -> String {
        format!("{}:{}", self.store, self.tag)
    }
}
