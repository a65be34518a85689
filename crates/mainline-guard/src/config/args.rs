//! The channel flags every channel command (and `mainline guard`) shares, and the two choices
//! they and `mainline.toml` spell the same way (`lock`, `queue`). clap reads each flag from the
//! command line, then from its `MAINLINE_*` variable; `mainline.toml` comes after both (see
//! `file`), and [`super::resolve`] merges and validates.
//!
//! Must never: give a flag a default here (a default would hide the file's value: defaults are
//! applied once, in `resolve`, after the merge), or take a secret as a flag value.

use clap::{Args, ValueEnum};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// The options every channel command shares.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Channel (flags > MAINLINE_* env > mainline.toml)")]
pub struct ChannelArgs {
    /// Pick this `[[channels]]` entry of mainline.toml (the guard's list; its keys over the
    /// file's top-level ones, flags and MAINLINE_* over both).
    #[arg(long, env = "MAINLINE_CHANNEL_NAME", value_name = "NAME")]
    pub channel_name: Option<String>,
    /// The channel consumers follow: STORE:TAG, e.g. oci://ghcr.io/acme/app-manifests:latest
    /// or oci-layout:./store:latest.
    #[arg(long, env = "MAINLINE_CHANNEL", value_name = "STORE:TAG")]
    pub channel: Option<String>,
    /// The source repository's git remote (any URL git takes). Tokens come from
    /// MAINLINE_GIT_TOKEN or GITHUB_TOKEN, never from the URL in mainline.toml.
    #[arg(long = "git", env = "MAINLINE_GIT", value_name = "REMOTE")]
    pub git: Option<String>,
    /// The deploy folder inside the repository [default: .]
    #[arg(long, env = "MAINLINE_PATH", value_name = "SUBDIR")]
    pub path: Option<String>,
    /// The protected branch [default: main]
    #[arg(long, env = "MAINLINE_BRANCH", value_name = "BRANCH")]
    pub branch: Option<String>,
    /// org.opencontainers.image.source for artifacts mainline packs itself
    /// [default: the git remote, without credentials]
    #[arg(long, env = "MAINLINE_SOURCE", value_name = "URL")]
    pub source: Option<String>,
    /// Refuse to let the channel name a digest without a cosign signature (sha256-<hex>.sig).
    /// With --signature-key the signature must verify with one of the keys over a payload
    /// naming exactly that digest (as Flux's spec.verify checks it); without a key only the
    /// tag's presence is checked, which anyone who can push a tag satisfies.
    #[arg(long, env = "MAINLINE_REQUIRE_SIGNATURE", value_parser = clap::builder::BoolishValueParser::new())]
    pub require_signature: bool,
    /// A PEM public key (cosign.pub, the file Flux's spec.verify secret holds) signatures
    /// must verify with; repeatable, or comma-separated in the env var. Implies
    /// --require-signature. ECDSA P-256/P-384, Ed25519 and RSA keys.
    #[arg(
        long = "signature-key",
        env = "MAINLINE_SIGNATURE_KEY",
        value_name = "PATH",
        value_delimiter = ','
    )]
    pub signature_keys: Vec<PathBuf>,
    /// Also require an SLSA provenance attestation (`cosign attest`, sha256-<hex>.att) about
    /// the digest, signed by one of the --signature-key keys.
    #[arg(long, env = "MAINLINE_REQUIRE_ATTESTATION", value_parser = clap::builder::BoolishValueParser::new())]
    pub require_attestation: bool,
    /// The builder id the provenance must name (implies --require-attestation).
    #[arg(long, env = "MAINLINE_ATTESTATION_BUILDER", value_name = "ID")]
    pub attestation_builder: Option<String>,
    /// The source repository the provenance must name, e.g. https://github.com/acme/app
    /// (implies --require-attestation).
    #[arg(long, env = "MAINLINE_ATTESTATION_SOURCE", value_name = "URL")]
    pub attestation_source: Option<String>,
    /// Let the channel name an artifact whose deploy tree holds no file. Off by default: Flux
    /// with `prune: true` would delete everything the channel deployed before, so such a
    /// move is refused (exit 5, recorded in the journal).
    #[arg(long, env = "MAINLINE_ALLOW_EMPTY", value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_empty: bool,
    /// Where in-flight groups come from [default: github-refs]
    #[arg(long, env = "MAINLINE_QUEUE", value_enum)]
    pub queue: Option<QueueArg>,
    /// How long a candidate's lease lasts (with --queue lease) [default: 30m]
    #[arg(long, env = "MAINLINE_LEASE_TTL", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub lease_ttl: Option<Duration>,
    /// How concurrent writers are serialised: `git` (a compare-and-swap lock ref under
    /// refs/mainline/lock/ on the git remote) or `none` (unlocked: still converges, since every
    /// run re-decides from fresh facts) [default: git]
    #[arg(long, env = "MAINLINE_LOCK", value_enum)]
    pub lock: Option<LockArg>,
    /// How long a lock holder may go without renewing before others may take over, 2s to 10m
    /// [default: 60s].
    ///
    /// Expiry is judged by each taker's own clock: it takes over only after watching the
    /// holder's record stay unchanged for the TTL the record declares (never by comparing
    /// clocks). Fencing: before a registry write a writer declares a write hold of two TTLs and
    /// starts an attempt only if that hold covers the attempt's whole time limit plus one TTL
    /// (it renews first, or stops), so a late landing of a request that got no answer happens
    /// while the lock is still its own, even if the writer was killed; a living writer then
    /// keeps the lock that TTL and re-reads.
    #[arg(long, env = "MAINLINE_LOCK_TTL", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub lock_ttl: Option<Duration>,
    /// How long to wait for another writer's lock before giving up (exit 6) [default: three
    /// lock TTLs, 3m at the default TTL: a writer killed mid-write holds the lock for two]
    #[arg(long, env = "MAINLINE_LOCK_WAIT", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub lock_wait: Option<Duration>,
    /// Local cache of git objects and immutable facts [default: $XDG_CACHE_HOME/mainline]
    #[arg(long, env = "MAINLINE_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Read settings from this file [default: ./mainline.toml when it exists]
    #[arg(long, env = "MAINLINE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LockArg {
    /// A compare-and-swap lock ref on the git remote.
    Git,
    /// A coordination.k8s.io/v1 Lease per channel (needs [kubernetes] settings).
    Kubernetes,
    /// No lock.
    None,
}

/// Where in-flight groups come from. One type for the CLI's `--queue`, the top-level `queue`
/// key and a `[[channels]]` entry's `queue` (the guard's `EntryQueue` is this type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum QueueArg {
    /// GitHub merge-queue refs (refs/heads/gh-readonly-queue/<branch>/pr-<N>-<sha>).
    GithubRefs,
    /// Leases recorded by `deploy --candidate` (hosts without a merge-queue API).
    Lease,
    /// GitHub's GraphQL merge queue, read by the guard (needs github_repository and a token).
    /// CLI commands read the same queue from its refs (github-refs), and say so.
    GithubApi,
}
