//! Channel settings from three places, in order of precedence: command-line flags, `MAINLINE_*`
//! environment variables (clap reads both), then `mainline.toml` in the working directory (or
//! `--config FILE`). The result is a validated [`ChannelConfig`]; nothing touches the network
//! before it exists.
//!
//! Must never: read a secret from the config file (a git URL with a password in it is refused:
//! tokens come from the environment), or silently ignore an unknown key (typos are errors).

use crate::channel::exec::LockMode;
use crate::channel::refs::ChannelKey;
use crate::channel::{ChannelConfig, EvidenceConfig, QueueSource};
use crate::error::CliError;
use clap::{Args, ValueEnum};
use mainline_core::Policy;
use mainline_store::{Reference, ReferenceTarget};
use serde::Deserialize;
use std::path::{Path, PathBuf};
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
    /// holder's record stay unchanged for the holder's TTL (never by comparing clocks). Fencing:
    /// a writer starts a registry write attempt only if its lock covers that attempt's whole
    /// time limit (it renews first, or stops); after an attempt that got no answer it keeps the
    /// lock one more TTL so a late landing happens while it still holds it, then re-reads.
    #[arg(long, env = "MAINLINE_LOCK_TTL", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub lock_ttl: Option<Duration>,
    /// How long to wait for another writer's lock before giving up (exit 6) [default: 2m]
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

/// `mainline.toml`: the same keys as the flags (snake_case).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub channel: Option<String>,
    pub git: Option<String>,
    pub path: Option<String>,
    pub branch: Option<String>,
    pub source: Option<String>,
    pub require_signature: Option<bool>,
    /// PEM public keys (paths relative to the working directory).
    pub signature_keys: Option<Vec<PathBuf>>,
    pub require_attestation: Option<bool>,
    pub attestation_builder: Option<String>,
    pub attestation_source: Option<String>,
    pub allow_empty: Option<bool>,
    pub queue: Option<QueueArg>,
    pub lease_ttl: Option<String>,
    pub lock: Option<LockArg>,
    pub cache_dir: Option<PathBuf>,
    /// `OWNER/REPO` on GitHub (the guard matches webhooks and reads the queue API with it;
    /// CLI commands ignore it).
    pub github_repository: Option<String>,
    /// Flux consumers and the Lease lock's namespace (see mainline-kube's `KubernetesConfig`).
    pub kubernetes: Option<toml::Value>,
    /// `mainline guard`: the channels it watches (the keys above are their defaults).
    pub channels: Option<Vec<crate::guard::settings::ChannelEntry>>,
    /// `mainline guard`: daemon settings (never secrets).
    pub guard: Option<crate::guard::settings::GuardSection>,
}

impl FileConfig {
    pub fn load(explicit: Option<&Path>) -> Result<FileConfig, CliError> {
        let (path, required) = match explicit {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from("mainline.toml"), false),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                return Ok(FileConfig::default())
            }
            Err(e) => {
                return Err(CliError::invalid(format!(
                    "cannot read {}: {e}",
                    path.display()
                )))
            }
        };
        let cfg: FileConfig = toml::from_str(&text)
            .map_err(|e| CliError::invalid(format!("{}: {}", path.display(), e.message().trim()))
                .with_hint("top-level keys are channel, git, path, branch, source, require_signature, signature_keys, require_attestation, attestation_builder, attestation_source, allow_empty, queue, lease_ttl, lock, cache_dir, github_repository, [kubernetes], [guard] and [[channels]] (see docs/guard.md)"))?;
        if let Some(g) = &cfg.git {
            if has_password(g) {
                return Err(CliError::invalid(format!(
                    "{}: the git remote carries a password or token; secrets never go in the config file",
                    path.display()
                ))
                .with_hint("put the token in MAINLINE_GIT_TOKEN (or GITHUB_TOKEN) and use the plain URL"));
            }
        }
        Ok(cfg)
    }
}

/// `https://user:secret@host/…` has a password; `ssh://git@host/…` does not.
pub(crate) fn has_password(url: &str) -> bool {
    url.split_once("://")
        .and_then(|(_, rest)| rest.split('/').next())
        .and_then(|auth| auth.rsplit_once('@'))
        .is_some_and(|(userinfo, _)| userinfo.contains(':'))
}

/// Replace any userinfo in a URL with `***`.
pub fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let (auth, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
        if let Some((_, host)) = auth.rsplit_once('@') {
            let sep = if path.is_empty() && !rest.contains('/') {
                ""
            } else {
                "/"
            };
            return format!("{scheme}://***@{host}{sep}{path}");
        }
    }
    url.to_owned()
}

/// The cache root: --cache-dir, else $XDG_CACHE_HOME/mainline, else ~/.cache/mainline.
pub fn cache_root(explicit: Option<PathBuf>) -> PathBuf {
    explicit.unwrap_or_else(|| {
        std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(std::env::temp_dir)
            .join("mainline")
    })
}

/// Merge flags/env over the file and validate (the CLI's channel commands). With
/// `--channel-name`, the named `[[channels]]` entry is merged over the top-level keys first.
pub fn resolve(args: &ChannelArgs) -> Result<(ChannelConfig, PathBuf), CliError> {
    let file = FileConfig::load(args.config.as_deref())?;
    let file_name = args
        .config
        .as_deref()
        .unwrap_or(Path::new("mainline.toml"))
        .display()
        .to_string();
    let file = super::config_entries::pick(args, file, &file_name)?;
    if args.queue.or(file.queue) == Some(QueueArg::GithubApi) {
        tracing::warn!(
            "note: queue = github-api is read by the guard; this command reads the same merge queue from its refs (github-refs)"
        );
    }
    resolve_from(args, file)
}

/// [`resolve`] over an already loaded file (the guard resolves each `[[channels]]` entry so).
pub fn resolve_from(
    args: &ChannelArgs,
    file: FileConfig,
) -> Result<(ChannelConfig, PathBuf), CliError> {
    let evidence = evidence_config(args, &file)?;
    let channel = args.channel.clone().or(file.channel).ok_or_else(|| {
        CliError::invalid("no channel given")
            .with_hint("pass --channel STORE:TAG (e.g. oci://ghcr.io/acme/app:latest) or --channel-name NAME (a [[channels]] entry), set MAINLINE_CHANNEL, or add channel = \"…\" to mainline.toml")
    })?;
    let reference: Reference = channel.parse()?;
    let tag = match reference.target {
        ReferenceTarget::Tag(t) => t,
        ReferenceTarget::Digest(d) => {
            return Err(CliError::invalid(format!(
                "--channel {channel} names a digest ({d}); a channel is a tag"
            )))
        }
    };
    if let Some(commit) = tag.artifact_commit() {
        return Err(CliError::invalid(format!(
            "--channel {channel}: {tag} is the immutable artifact tag of commit {}; a channel \
             is a mutable tag that mainline moves, and artifact tags never move",
            commit.short()
        ))
        .with_hint("name the channel something else, e.g. latest or prod"));
    }
    let git = args.git.clone().or(file.git).ok_or_else(|| {
        CliError::invalid("no git remote given")
            .with_hint("pass --git REMOTE (a path or URL), set MAINLINE_GIT, or add git = \"…\" to mainline.toml")
    })?;
    let git_display = redact_url(&git);
    let lease_ttl = match (args.lease_ttl, file.lease_ttl) {
        (Some(d), _) => d,
        (None, Some(s)) => humantime::parse_duration(&s)
            .map_err(|e| CliError::invalid(format!("mainline.toml: lease_ttl = {s:?}: {e}")))?,
        (None, None) => Duration::from_secs(30 * 60),
    };
    let queue = match args.queue.or(file.queue) {
        Some(QueueArg::Lease) => QueueSource::Lease,
        Some(QueueArg::GithubRefs | QueueArg::GithubApi) | None => QueueSource::GithubRefs,
    };
    let path = normalise_path(
        args.path
            .clone()
            .or(file.path)
            .unwrap_or_else(|| ".".into()),
    )?;
    let config = ChannelConfig {
        key: ChannelKey::new(&reference.location, &tag),
        store: reference.location,
        tag,
        source: args
            .source
            .clone()
            .or(file.source)
            .unwrap_or_else(|| git_display.clone()),
        git,
        git_display,
        branch: args
            .branch
            .clone()
            .or(file.branch)
            .unwrap_or_else(|| "main".into()),
        path,
        policy: Policy {
            require_signature: args.require_signature
                || file.require_signature.unwrap_or(false)
                || !evidence.keys.is_empty(),
            allow_empty: args.allow_empty || file.allow_empty.unwrap_or(false),
        },
        evidence,
        queue,
        lease_ttl,
        lock: {
            let ttl_ms = lock_ttl_ms(args.lock_ttl)?;
            let wait_ms = args.lock_wait.map_or(120_000, |d| d.as_millis() as u64);
            match args.lock.or(file.lock) {
                Some(LockArg::None) => LockMode::None,
                Some(LockArg::Kubernetes) => LockMode::Kubernetes { ttl_ms, wait_ms },
                Some(LockArg::Git) | None => LockMode::Git { ttl_ms, wait_ms },
            }
        },
        kubernetes: file.kubernetes,
    };
    Ok((
        config,
        cache_root(args.cache_dir.clone().or(file.cache_dir)),
    ))
}

/// The keys and attestation policy evidence is judged by: flags first, then mainline.toml.
/// A key file that cannot be used is invalid input, named, before anything else happens.
fn evidence_config(args: &ChannelArgs, file: &FileConfig) -> Result<EvidenceConfig, CliError> {
    let paths = if args.signature_keys.is_empty() {
        file.signature_keys.clone().unwrap_or_default()
    } else {
        args.signature_keys.clone()
    };
    let keys = mainline_evidence::KeySet::load(&paths).map_err(|e| {
        CliError::invalid(e.to_string()).with_hint(
            "--signature-key takes the PEM public key (cosign.pub) the artifacts are signed with",
        )
    })?;
    let builder_id = args
        .attestation_builder
        .clone()
        .or_else(|| file.attestation_builder.clone());
    let source = args
        .attestation_source
        .clone()
        .or_else(|| file.attestation_source.clone());
    let wanted = args.require_attestation
        || file.require_attestation.unwrap_or(false)
        || builder_id.is_some()
        || source.is_some();
    if wanted && keys.is_empty() {
        return Err(CliError::invalid(
            "--require-attestation needs --signature-key: an attestation counts only when it \
             verifies with a configured key",
        ));
    }
    Ok(EvidenceConfig {
        keys,
        attestation: wanted.then_some(mainline_evidence::AttestationPolicy { builder_id, source }),
    })
}

/// `--lock-ttl`, checked against the bounds the lock honours (see `channel::lock`).
fn lock_ttl_ms(ttl: Option<Duration>) -> Result<i64, CliError> {
    use crate::channel::lock::{DEFAULT_TTL_MS, MAX_TTL_MS, MIN_TTL_MS};
    let Some(ttl) = ttl else {
        return Ok(DEFAULT_TTL_MS);
    };
    let ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    if !(MIN_TTL_MS..=MAX_TTL_MS).contains(&ms) {
        return Err(CliError::invalid(format!(
            "--lock-ttl {}: must be between {} s and {} s",
            humantime::format_duration(ttl),
            MIN_TTL_MS / 1000,
            MAX_TTL_MS / 1000
        ))
        .with_hint("a holder renews well within its TTL; takers wait one TTL after a holder dies, so keep it short (the default is 60s)"));
    }
    Ok(ms)
}

/// `./k8s/` → `k8s`; `.` and `` → `.`; `..` anywhere is refused.
fn normalise_path(p: String) -> Result<String, CliError> {
    let parts: Vec<&str> = p
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    if parts.contains(&"..") || p.starts_with('/') {
        return Err(CliError::invalid(format!(
            "--path {p:?} must be a folder inside the repository (relative, no ..)"
        )));
    }
    Ok(if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    })
}
