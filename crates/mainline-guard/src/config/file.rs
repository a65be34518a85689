//! `mainline.toml`, as written: the per-channel keys ([`ChannelKeys`], one description for the
//! top level and every `[[channels]]` entry), the file-wide keys (evidence, `allow_empty`,
//! `cache_dir`) and the guard's sections. Loading refuses unknown keys and secrets; merging
//! and validating is [`super::resolve`]'s job, and an entry over the top level is
//! [`ChannelKeys::over`]'s.
//!
//! Must never: accept a key it does not know (a typo is an error naming it), or accept a git
//! remote with a password in it, at the top level or in any entry (tokens come from the
//! environment).

use super::args::{LockArg, QueueArg};
use crate::error::CliError;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The keys one channel is described by, spelled as the flags are (snake_case): at the top
/// level of `mainline.toml` (the CLI's channel, and every entry's default) and in each
/// `[[channels]]` entry (the guard's channels, `--channel-name`). Unset keys fall back: an
/// entry's to the top level's, the top level's to the built-in defaults.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelKeys {
    pub channel: Option<String>,
    pub git: Option<String>,
    pub path: Option<String>,
    pub branch: Option<String>,
    pub source: Option<String>,
    pub require_signature: Option<bool>,
    pub queue: Option<QueueArg>,
    pub lease_ttl: Option<String>,
    pub lock: Option<LockArg>,
    /// `OWNER/REPO` on GitHub (the guard matches webhooks and reads the queue API with it;
    /// CLI commands ignore it).
    pub github_repository: Option<String>,
    /// Flux consumers and the Lease lock's namespace (see mainline-kube's `KubernetesConfig`).
    /// In an entry, a whole table: it replaces the top-level one, keys are not merged.
    pub kubernetes: Option<toml::Value>,
}

/// `mainline.toml`: the same keys as the flags (snake_case).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The channel keys; with `[[channels]]`, every entry's defaults.
    #[serde(flatten)]
    pub keys: ChannelKeys,
    /// PEM public keys (paths relative to the working directory).
    pub signature_keys: Option<Vec<PathBuf>>,
    pub require_attestation: Option<bool>,
    pub attestation_builder: Option<String>,
    pub attestation_source: Option<String>,
    pub allow_empty: Option<bool>,
    pub cache_dir: Option<PathBuf>,
    /// `mainline guard`: the channels it watches (the keys above are their defaults).
    pub channels: Option<Vec<ChannelEntry>>,
    /// `mainline guard`: daemon settings (never secrets).
    pub guard: Option<crate::guard::settings::GuardSection>,
}

/// One `[[channels]]` entry: a name and the channel keys; unset keys fall back to the file's
/// top-level keys. Evidence, `allow_empty` and `cache_dir` are file-wide (an entry with one of
/// them is refused as an unknown key).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelEntry {
    /// The channel's name on the page, in metrics and in URLs: `[A-Za-z0-9._-]`, unique.
    pub name: String,
    #[serde(flatten)]
    pub keys: ChannelKeys,
}

const KEYS_HINT: &str = "top-level keys are channel, git, path, branch, source, require_signature, signature_keys, require_attestation, attestation_builder, attestation_source, allow_empty, queue, lease_ttl, lock, cache_dir, github_repository, [kubernetes], [guard] and [[channels]]; a [[channels]] entry takes name, channel, git, path, branch, source, require_signature, queue, lease_ttl, lock, github_repository and [channels.kubernetes] (see docs/guard.md)";

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
        let cfg: FileConfig = toml::from_str(&text).map_err(|e| {
            CliError::invalid(format!("{}: {}", path.display(), e.message().trim()))
                .with_hint(KEYS_HINT)
        })?;
        let entries = cfg.channels.iter().flatten();
        let gits = std::iter::once((None, &cfg.keys.git))
            .chain(entries.map(|e| (Some(e.name.as_str()), &e.keys.git)));
        for (entry, git) in gits {
            if git.as_deref().is_some_and(has_password) {
                let whose = match entry {
                    None => String::new(),
                    Some(name) => format!(" of [[channels]] entry {name:?}"),
                };
                return Err(CliError::invalid(format!(
                    "{}: the git remote{whose} carries a password or token; secrets never go in the config file",
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
