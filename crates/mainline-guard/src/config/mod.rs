//! Channel settings from three places, in order of precedence: command-line flags, `MAINLINE_*`
//! environment variables (clap reads both), then `mainline.toml` in the working directory (or
//! `--config FILE`). The result is a validated [`ChannelConfig`]; nothing touches the network
//! before it exists.
//!
//! One description for the CLI and the guard: the flags are [`ChannelArgs`] (`args`), the file
//! is [`FileConfig`] whose channel keys are [`ChannelKeys`] — the same type a `[[channels]]`
//! entry holds (`file`) — an entry is merged over the top level by one function (`entries`),
//! and every channel, the CLI's or each of the guard's, is validated by [`resolve_from`] here.
//!
//! Must never: read a secret from the config file (a git URL with a password in it is refused:
//! tokens come from the environment), or silently ignore an unknown key (typos are errors).

mod args;
pub mod entries;
mod file;

pub use args::{ChannelArgs, LockArg, QueueArg};
pub use file::{cache_root, redact_url, ChannelEntry, ChannelKeys, FileConfig};

use crate::channel::exec::LockMode;
use crate::channel::lock::default_wait_ms;
use crate::channel::refs::ChannelKey;
use crate::channel::{ChannelConfig, EvidenceConfig, QueueSource};
use crate::error::CliError;
use mainline_core::Policy;
use mainline_store::{Reference, ReferenceTarget};
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    let file = entries::pick(args, file, &file_name)?;
    if args.queue.or(file.keys.queue) == Some(QueueArg::GithubApi) {
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
    let channel = args.channel.clone().or(file.keys.channel).ok_or_else(|| {
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
    let git = args.git.clone().or(file.keys.git).ok_or_else(|| {
        CliError::invalid("no git remote given")
            .with_hint("pass --git REMOTE (a path or URL), set MAINLINE_GIT, or add git = \"…\" to mainline.toml")
    })?;
    let git_display = redact_url(&git);
    let lease_ttl = match (args.lease_ttl, file.keys.lease_ttl) {
        (Some(d), _) => d,
        (None, Some(s)) => humantime::parse_duration(&s)
            .map_err(|e| CliError::invalid(format!("mainline.toml: lease_ttl = {s:?}: {e}")))?,
        (None, None) => Duration::from_secs(30 * 60),
    };
    let queue = match args.queue.or(file.keys.queue) {
        Some(QueueArg::Lease) => QueueSource::Lease,
        Some(QueueArg::GithubRefs | QueueArg::GithubApi) | None => QueueSource::GithubRefs,
    };
    let path = normalise_path(
        args.path
            .clone()
            .or(file.keys.path)
            .unwrap_or_else(|| ".".into()),
    )?;
    let config = ChannelConfig {
        key: ChannelKey::new(&reference.location, &tag),
        store: reference.location,
        tag,
        source: args
            .source
            .clone()
            .or(file.keys.source)
            .unwrap_or_else(|| git_display.clone()),
        git,
        git_display,
        branch: args
            .branch
            .clone()
            .or(file.keys.branch)
            .unwrap_or_else(|| "main".into()),
        path,
        policy: Policy {
            require_signature: args.require_signature
                || file.keys.require_signature.unwrap_or(false)
                || !evidence.keys.is_empty(),
            allow_empty: args.allow_empty || file.allow_empty.unwrap_or(false),
        },
        evidence,
        queue,
        lease_ttl,
        lock: {
            let ttl_ms = lock_ttl_ms(args.lock_ttl)?;
            let wait_ms = args
                .lock_wait
                .map_or(default_wait_ms(ttl_ms), |d| d.as_millis() as u64);
            match args.lock.or(file.keys.lock) {
                Some(LockArg::None) => LockMode::None,
                Some(LockArg::Kubernetes) => LockMode::Kubernetes { ttl_ms, wait_ms },
                Some(LockArg::Git) | None => LockMode::Git { ttl_ms, wait_ms },
            }
        },
        kubernetes: file.keys.kubernetes,
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
