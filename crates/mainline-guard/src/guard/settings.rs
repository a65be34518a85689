//! The guard's settings, validated before anything is opened: the channels it watches (from
//! `[[channels]]` in `mainline.toml`, or the one channel the single-channel flags name), the
//! daemon's own knobs (`[guard]`, `--listen`, `--interval`, …) and its secrets.
//!
//! Precedence, as for every command: flags > `MAINLINE_*` environment > the file. With
//! `[[channels]]`, the file's top-level keys (`git`, `path`, `branch`, `lock`, …) are defaults
//! for every entry, an entry's own keys win over them, and a flag or environment variable
//! (e.g. `--lock none`) wins over both for every channel. `--channel` names a single channel and
//! is refused next to `[[channels]]`.
//!
//! Kubernetes: a `[[channels]]` entry's `kubernetes` table (Flux consumers, the Lease lock's
//! namespace) replaces the top-level `[kubernetes]`, which it inherits when it has none;
//! `[guard.leader_election]` is validated here too (see `leader`).
//!
//! Secrets: the webhook secret comes from `MAINLINE_WEBHOOK_SECRET` or the file named by
//! `webhook_secret_file` / `--webhook-secret-file`; the action token from `MAINLINE_GUARD_TOKEN`;
//! GitHub credentials from `GITHUB_TOKEN` or a GitHub App (`MAINLINE_GITHUB_APP_ID`,
//! `MAINLINE_GITHUB_APP_INSTALLATION_ID`, `MAINLINE_GITHUB_APP_PRIVATE_KEY_FILE`).
//! Must never: read a secret from `mainline.toml` (a `webhook_secret` or `token` key there is an
//! error that says where it goes instead), or print one.

use super::error::GuardError;
use super::secret::Secret;
use crate::adapters::github::RepoName;
use crate::channel::ChannelConfig;
use crate::config::ChannelArgs;
use clap::Args;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the guard listens unless told otherwise: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8787";
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
pub const DEFAULT_PARALLELISM: usize = 8;
/// Journal records kept per channel for the page and the history API.
pub const DEFAULT_HISTORY: usize = 50;

/// `mainline guard --help` epilogue.
pub const GUARD_HELP: &str = "\
mainline.toml for several channels (top-level keys are defaults for every entry):
  git = \"https://github.com/acme/app.git\"
  path = \"k8s\"
  [guard]
  listen = \"127.0.0.1:8787\"          # loopback by default
  interval = \"30s\"
  parallelism = 8
  webhook_secret_file = \"/run/secrets/mainline-webhook\"
  header_timeout = \"10s\"              # request head (and idle keep-alive); body_timeout = \"30s\"
  max_connections = 512                # + health_reserve = 16 for /healthz and /readyz
  api_auth = \"none\"                    # or \"token\": / and /api/... need a bearer token
  rate_limit = 50                      # requests/s per client on / and /api/... (0: off)
  [guard.tokens]                       # named action tokens (files); journal records the name
  alice = \"/run/secrets/alice-token\"
  [guard.leader_election]              # several replicas: one reconciles (a Lease)
  namespace = \"mainline\"               # identity: POD_NAME (else hostname-pid)
  [[channels]]
  name = \"prod\"
  channel = \"oci://ghcr.io/acme/app-manifests:latest\"
  queue = \"github-api\"                 # or github-refs (default), lease
  github_repository = \"acme/app\"
  lock = \"kubernetes\"                  # or git (default), none
  [channels.kubernetes]                # else the top-level [kubernetes]
  lease_namespace = \"mainline\"
  [[channels.kubernetes.consumers]]
  namespace = \"flux-system\"
  oci_repository = \"app-manifests\"

Secrets come from the environment or files only: MAINLINE_WEBHOOK_SECRET (or
webhook_secret_file), MAINLINE_GUARD_TOKEN (enables POST actions), GITHUB_TOKEN (or
MAINLINE_GITHUB_APP_ID + MAINLINE_GITHUB_APP_INSTALLATION_ID + MAINLINE_GITHUB_APP_PRIVATE_KEY_FILE).

Serves: / (status page), /api/channels, /api/channels/NAME/history, /metrics, /healthz,
/readyz, POST /webhooks/github, and with the token POST /api/channels/NAME/{reconcile,pin,unpin}.
Stops on SIGTERM/SIGINT after the reconciles in flight finish (at most shutdown_grace, 30s).

Examples:
  mainline guard --config mainline.toml --check      # validate, list the channels, exit
  mainline guard --config mainline.toml              # serve (every [[channels]] entry)
  mainline guard --channel oci://ghcr.io/acme/app-manifests:latest --git https://github.com/acme/app.git --path k8s --listen 0.0.0.0:8787";

/// `mainline guard` options (the channel options are shared with every channel command).
#[derive(Debug, Args, Clone, Default)]
pub struct GuardArgs {
    #[command(flatten)]
    pub channel: ChannelArgs,
    /// Where to serve the status page, API, /metrics and /webhooks/github [default: 127.0.0.1:8787]
    #[arg(long, env = "MAINLINE_GUARD_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// How often every channel is reconciled (±10% jitter) [default: 30s]
    #[arg(long, env = "MAINLINE_GUARD_INTERVAL", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub interval: Option<Duration>,
    /// How many channels reconcile at the same time [default: 8]
    #[arg(long, env = "MAINLINE_GUARD_PARALLELISM", value_name = "N")]
    pub parallelism: Option<usize>,
    /// File holding the GitHub webhook secret (or set MAINLINE_WEBHOOK_SECRET).
    #[arg(long, env = "MAINLINE_WEBHOOK_SECRET_FILE", value_name = "FILE")]
    pub webhook_secret_file: Option<PathBuf>,
    /// GitHub REST API base URL [default: https://api.github.com]
    #[arg(long, env = "MAINLINE_GITHUB_API_URL", value_name = "URL")]
    pub github_api_url: Option<String>,
    /// GitHub GraphQL endpoint [default: <api url>/graphql]
    #[arg(long, env = "MAINLINE_GITHUB_GRAPHQL_URL", value_name = "URL")]
    pub github_graphql_url: Option<String>,
    /// Single-channel mode: the GitHub repository (OWNER/REPO) whose webhooks concern the
    /// channel [default: derived from a github.com git remote]
    #[arg(long, env = "MAINLINE_GITHUB_REPOSITORY", value_name = "OWNER/REPO")]
    pub github_repository: Option<String>,
    /// Seed of the interval jitter (the same seed replays the same schedule).
    #[arg(long, env = "MAINLINE_GUARD_SEED", value_name = "N")]
    pub seed: Option<u64>,
    /// Validate the settings, print the channels, and exit without serving.
    #[arg(long)]
    pub check: bool,
}

/// `[guard]` in `mainline.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardSection {
    pub listen: Option<String>,
    pub interval: Option<String>,
    /// Fraction of the interval each wait varies by, 0 to 0.5 [default: 0.1].
    pub jitter: Option<f64>,
    pub parallelism: Option<usize>,
    pub webhook_secret_file: Option<PathBuf>,
    pub github_api_url: Option<String>,
    pub github_graphql_url: Option<String>,
    /// How long shutdown waits for in-flight reconciles [default: 30s].
    pub shutdown_grace: Option<String>,
    /// Journal records kept per channel for the page [default: 50].
    pub history: Option<usize>,
    /// Refused: present only to say where the secret goes instead.
    pub webhook_secret: Option<toml::Value>,
    /// Refused: present only to say where the token goes instead.
    pub token: Option<toml::Value>,
    /// `[guard.leader_election]`: several replicas, one reconciles (mainline-kube's
    /// `LeaderElectionConfig`; parsed in [`super::leader::settings`]).
    pub leader_election: Option<toml::Value>,
    /// The HTTP surface's limits (see [`super::limits`]).
    pub header_timeout: Option<String>,
    pub body_timeout: Option<String>,
    pub max_connections: Option<usize>,
    pub health_reserve: Option<usize>,
    /// `none` (default) or `token`: whether `/` and `/api/…` reads need a bearer token.
    pub api_auth: Option<String>,
    /// Requests per second per client on `/` and `/api/…` (0: off), and the burst.
    pub rate_limit: Option<u32>,
    pub rate_burst: Option<u32>,
    /// `[guard.tokens]`: action tokens by name, each read from the file named.
    pub tokens: Option<std::collections::BTreeMap<String, PathBuf>>,
}

/// A `[[channels]]` entry and its `queue`: the channel configuration's own types (one schema
/// for the CLI and the guard; see `crate::config`).
pub use crate::config::{ChannelEntry, QueueArg as EntryQueue};

/// One channel the guard watches, fully validated.
#[derive(Debug, Clone)]
pub struct ChannelSpec {
    pub name: String,
    pub config: ChannelConfig,
    pub queue_api: bool,
    pub github: Option<RepoName>,
}

/// GitHub API access, when some channel reads its queue from the API.
#[derive(Debug, Clone)]
pub struct GithubSettings {
    pub api_url: String,
    pub graphql_url: String,
    pub token: mainline_github::Token,
}

/// Everything the guard needs, validated.
#[derive(Debug)]
pub struct GuardSettings {
    pub listen: SocketAddr,
    pub interval: Duration,
    pub jitter: f64,
    pub parallelism: usize,
    pub shutdown_grace: Duration,
    pub history: usize,
    pub seed: u64,
    pub cache_root: PathBuf,
    pub channels: Vec<ChannelSpec>,
    pub webhook_secret: Option<Secret>,
    /// Action tokens by name (`default`: `MAINLINE_GUARD_TOKEN`; more from `[guard.tokens]`).
    pub tokens: Vec<(String, Secret)>,
    pub http: super::limits::HttpLimits,
    pub github: Option<GithubSettings>,
    /// `[guard.leader_election]`, validated, with this replica's identity.
    pub leader_election: Option<super::leader::ElectionSettings>,
}

pub(super) fn invalid(
    setting: &'static str,
    value: impl Into<String>,
    reason: impl Into<String>,
) -> GuardError {
    GuardError::InvalidSetting {
        setting,
        value: value.into(),
        reason: reason.into(),
    }
}

pub(super) fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

pub(super) fn duration(setting: &'static str, s: &str) -> Result<Duration, GuardError> {
    humantime::parse_duration(s).map_err(|e| invalid(setting, s, format!("{e} (e.g. 30s, 2m)")))
}

/// Read a secret from `path`: trailing newlines dropped, empty refused.
pub fn read_secret_file(what: &'static str, path: &Path) -> Result<Secret, GuardError> {
    let text = std::fs::read_to_string(path).map_err(|source| GuardError::SecretFile {
        what,
        path: path.to_owned(),
        source,
    })?;
    let value = text.trim_end_matches(['\r', '\n']);
    if value.trim().is_empty() {
        return Err(GuardError::EmptySecretFile {
            what,
            path: path.to_owned(),
        });
    }
    Ok(Secret::new(value))
}

/// Valid channel names: what is safe in a URL path segment and a metric label.
pub(super) fn check_name(name: &str) -> Result<(), GuardError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(GuardError::BadName {
            name: name.to_owned(),
        })
    }
}
