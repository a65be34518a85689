//! Resolving the guard's settings (see `settings.rs` for what they are and their precedence):
//! flags, environment and `mainline.toml` into one validated [`GuardSettings`], each
//! `[[channels]]` entry through the same channel configuration the CLI uses
//! (`config::resolve_from`), and the GitHub credentials.
//!
//! Must never: read a secret from `mainline.toml`, or print one.

use super::error::GuardError;
use super::secret::Secret;
use super::settings::{check_name, duration, env, invalid, read_secret_file};
use super::settings::{
    ChannelEntry, ChannelSpec, EntryQueue, GithubSettings, GuardArgs, GuardSettings,
};
use super::settings::{DEFAULT_HISTORY, DEFAULT_INTERVAL, DEFAULT_LISTEN, DEFAULT_PARALLELISM};
use crate::adapters::github::RepoName;

use crate::config::{self, FileConfig};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

impl GuardSettings {
    /// Resolve flags, environment and file into settings. Reads only the config file and the
    /// secret files; opens nothing.
    pub fn resolve(args: &GuardArgs) -> Result<GuardSettings, GuardError> {
        let mut file = FileConfig::load(args.channel.config.as_deref())?;
        let entries = file.channels.take();
        let mut section = file.guard.take().unwrap_or_default();
        if section.webhook_secret.is_some() {
            return Err(GuardError::SecretInFile {
                key: "webhook_secret",
                instead:
                    "put it in a file named by webhook_secret_file, or set MAINLINE_WEBHOOK_SECRET",
            });
        }
        if section.token.is_some() {
            return Err(GuardError::SecretInFile {
                key: "token",
                instead: "set MAINLINE_GUARD_TOKEN in the guard's environment",
            });
        }
        let (channels, cache_root) = match entries {
            Some(entries) => resolve_entries(args, &file, entries)?,
            None => {
                let (config, root) = config::resolve_from(&args.channel, file)?;
                let github =
                    match &args.github_repository {
                        Some(r) => Some(RepoName::parse(r).ok_or_else(|| {
                            invalid("--github-repository", r, "expected OWNER/REPO")
                        })?),
                        None => RepoName::from_git_url(&config.git),
                    };
                super::kube::check_kubernetes("default", &config)?;
                let spec = ChannelSpec {
                    name: "default".into(),
                    config,
                    queue_api: false,
                    github,
                };
                (vec![spec], root)
            }
        };
        let listen_raw = args
            .listen
            .clone()
            .or(section.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.into());
        let listen: SocketAddr = listen_raw.parse().map_err(|_| {
            invalid(
                "listen",
                &listen_raw,
                "expected IP:PORT, e.g. 127.0.0.1:8787",
            )
        })?;
        let interval = match (args.interval, &section.interval) {
            (Some(d), _) => d,
            (None, Some(s)) => duration("interval", s)?,
            (None, None) => DEFAULT_INTERVAL,
        };
        if interval < Duration::from_millis(100) {
            return Err(invalid(
                "interval",
                format!("{interval:?}"),
                "must be at least 100ms",
            ));
        }
        let jitter = section.jitter.unwrap_or(0.1);
        if !(0.0..=0.5).contains(&jitter) {
            return Err(invalid(
                "jitter",
                jitter.to_string(),
                "must be between 0 and 0.5",
            ));
        }
        let parallelism = args
            .parallelism
            .or(section.parallelism)
            .unwrap_or(DEFAULT_PARALLELISM);
        if !(1..=256).contains(&parallelism) {
            return Err(invalid(
                "parallelism",
                parallelism.to_string(),
                "must be 1 to 256",
            ));
        }
        let shutdown_grace = match &section.shutdown_grace {
            Some(s) => duration("shutdown_grace", s)?,
            None => Duration::from_secs(30),
        };
        let webhook_secret = match env("MAINLINE_WEBHOOK_SECRET") {
            Some(s) => Some(Secret::new(s.trim_end_matches(['\r', '\n']))),
            None => match args
                .webhook_secret_file
                .as_ref()
                .or(section.webhook_secret_file.as_ref())
            {
                Some(p) => Some(read_secret_file("webhook secret", p)?),
                None => None,
            },
        };
        let tokens = super::limits::tokens(
            env("MAINLINE_GUARD_TOKEN").map(Secret::new),
            section.tokens.take(),
        )?;
        let http = super::limits::HttpLimits::resolve(super::limits::HttpKeys {
            header_timeout: section.header_timeout.take(),
            body_timeout: section.body_timeout.take(),
            max_connections: section.max_connections,
            health_reserve: section.health_reserve,
            api_auth: section.api_auth.take(),
            rate_limit: section.rate_limit,
            rate_burst: section.rate_burst,
        })?;
        if http.api_auth == super::limits::ApiAuth::Token && tokens.is_empty() {
            return Err(invalid(
                "api_auth",
                "token",
                "needs a token: set MAINLINE_GUARD_TOKEN or add [guard.tokens]",
            ));
        }
        let leader_election = super::leader::settings(section.leader_election)?;
        let github = if channels.iter().any(|c| c.queue_api) {
            let api_url = args
                .github_api_url
                .clone()
                .or(section.github_api_url)
                .unwrap_or_else(|| "https://api.github.com".into());
            let graphql_url = args
                .github_graphql_url
                .clone()
                .or(section.github_graphql_url)
                .unwrap_or_else(|| format!("{}/graphql", api_url.trim_end_matches('/')));
            Some(GithubSettings {
                api_url,
                graphql_url,
                token: github_token()?,
            })
        } else {
            None
        };
        Ok(GuardSettings {
            listen,
            interval,
            jitter,
            parallelism,
            shutdown_grace,
            history: section.history.unwrap_or(DEFAULT_HISTORY).clamp(1, 1000),
            seed: args.seed.unwrap_or_else(default_seed),
            cache_root,
            channels,
            webhook_secret,
            tokens,
            http,
            github,
            leader_election,
        })
    }
}

/// Each `[[channels]]` entry over the file's top-level defaults, then flags/env over both.
fn resolve_entries(
    args: &GuardArgs,
    top: &FileConfig,
    entries: Vec<ChannelEntry>,
) -> Result<(Vec<ChannelSpec>, PathBuf), GuardError> {
    if args.channel.channel.is_some() {
        return Err(GuardError::AmbiguousChannel);
    }
    if entries.is_empty() {
        return Err(GuardError::NoChannels);
    }
    let mut specs: Vec<ChannelSpec> = Vec::with_capacity(entries.len());
    let mut root = PathBuf::new();
    for e in entries {
        check_name(&e.name)?;
        if specs.iter().any(|s| s.name == e.name) {
            return Err(GuardError::DuplicateName { name: e.name });
        }
        let channel_err = |message: String| GuardError::Channel {
            name: e.name.clone(),
            message,
        };
        // The entry over the top-level keys (a password in any git remote was refused when the
        // file was loaded); a top-level `queue` or `github_repository` is every entry's default.
        let merged = crate::config::entries::entry_over(&e, top);
        let queue_api = merged.keys.queue == Some(EntryQueue::GithubApi);
        let github_repository = merged.keys.github_repository.clone();
        let (config, cache_root) = config::resolve_from(&args.channel, merged)
            .map_err(|err| channel_err(err.to_string()))?;
        root = cache_root;
        super::kube::check_kubernetes(&e.name, &config)?;
        let github = match &github_repository {
            Some(r) => Some(RepoName::parse(r).ok_or_else(|| {
                channel_err(format!("github_repository = {r:?} is not OWNER/REPO"))
            })?),
            None => RepoName::from_git_url(&config.git),
        };
        if queue_api && github.is_none() {
            return Err(GuardError::NoGithubRepository { name: e.name });
        }
        specs.push(ChannelSpec {
            name: e.name,
            config,
            queue_api,
            github,
        });
    }
    Ok((specs, root))
}

/// A GitHub App when `MAINLINE_GITHUB_APP_ID` is set, else `GITHUB_TOKEN`.
fn github_token() -> Result<mainline_github::Token, GuardError> {
    let Some(app_id) = env("MAINLINE_GITHUB_APP_ID") else {
        return mainline_github::Token::from_env().map_err(GuardError::Github);
    };
    let installation = env("MAINLINE_GITHUB_APP_INSTALLATION_ID").ok_or_else(|| {
        invalid(
            "MAINLINE_GITHUB_APP_INSTALLATION_ID",
            "",
            "must be set with MAINLINE_GITHUB_APP_ID (the App's installation on the repository)",
        )
    })?;
    let installation_id: u64 = installation.trim().parse().map_err(|_| {
        invalid(
            "MAINLINE_GITHUB_APP_INSTALLATION_ID",
            &installation,
            "must be a number",
        )
    })?;
    let key_path = env("MAINLINE_GITHUB_APP_PRIVATE_KEY_FILE").ok_or_else(|| {
        invalid(
            "MAINLINE_GITHUB_APP_PRIVATE_KEY_FILE",
            "",
            "must name the App's .pem private key file when MAINLINE_GITHUB_APP_ID is set",
        )
    })?;
    let key = read_secret_file("GitHub App private key", Path::new(&key_path))?;
    Ok(mainline_github::Token::App {
        app_id: app_id.trim().to_owned(),
        installation_id,
        private_key_pem: mainline_github::Secret::new(key.expose()),
    })
}

/// A seed from the time and process: different guards spread differently unless `--seed`.
fn default_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    nanos ^ (u64::from(std::process::id()) << 32)
}
