//! Why the guard could not start: settings it refused, secret files it could not read, an
//! address it could not bind. Each message names the input and says what to do; the CLI maps
//! the kind to an exit code.
//!
//! Must never: carry a secret's value (only the path of the file that holds it).

use crate::error::{chain_message, CliError, Kind};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error(transparent)]
    Config(#[from] CliError),
    #[error("guard setting {setting} = {value:?} is not valid: {reason}")]
    InvalidSetting {
        setting: &'static str,
        value: String,
        reason: String,
    },
    #[error("cannot read the {what} file {}", path.display())]
    SecretFile {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the {what} file {} is empty", path.display())]
    EmptySecretFile { what: &'static str, path: PathBuf },
    #[error("[guard] {key} is set in the config file, but secrets never go there: {instead}")]
    SecretInFile {
        key: &'static str,
        instead: &'static str,
    },
    #[error(
        "--channel (or MAINLINE_CHANNEL) names one channel, but the config file declares \
         [[channels]]: drop the flag (or unset the variable), or drop [[channels]]"
    )]
    AmbiguousChannel,
    #[error("the config file declares `channels = []`: add at least one [[channels]] entry")]
    NoChannels,
    #[error(
        "channel name {name:?} is not usable: use 1 to 64 letters, digits, '.', '_' or '-', \
         starting with a letter or digit (it appears in URLs and metric labels)"
    )]
    BadName { name: String },
    #[error("two [[channels]] entries are named {name:?}: channel names must be unique")]
    DuplicateName { name: String },
    #[error("channel {name:?}: {message}")]
    Channel { name: String, message: String },
    #[error(
        "channel {name:?} reads its merge queue from the GitHub API (queue = \"github-api\") but \
         names no repository: add github_repository = \"OWNER/REPO\""
    )]
    NoGithubRepository { name: String },
    #[error("[guard.leader_election]: {reason}")]
    LeaderElection { reason: String },
    #[error("GitHub API client: {0}")]
    Github(mainline_github::GithubError),
    #[error("cannot listen on {addr}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the guard's runtime")]
    Runtime(#[source] std::io::Error),
}

impl GuardError {
    pub fn kind(&self) -> Kind {
        match self {
            GuardError::Config(e) => e.kind,
            GuardError::Bind { .. } => Kind::Unavailable,
            GuardError::Runtime(_) => Kind::Internal,
            GuardError::Github(e) => match e.kind() {
                mainline_github::ErrorKind::Unavailable => Kind::Unavailable,
                _ => Kind::InvalidInput,
            },
            _ => Kind::InvalidInput,
        }
    }
}

impl From<GuardError> for CliError {
    fn from(e: GuardError) -> CliError {
        match e {
            GuardError::Config(e) => e,
            GuardError::Bind { ref addr, .. } => {
                let hint = format!(
                    "another process may hold {addr}; pick another with --listen (or \
                     MAINLINE_GUARD_LISTEN)"
                );
                CliError::new(e.kind(), chain_message(&e)).with_hint(hint)
            }
            GuardError::SecretFile { what, .. } | GuardError::EmptySecretFile { what, .. } => {
                let hint = match what {
                    "webhook secret" => "write the GitHub webhook's secret into that file (readable by the guard only), or set MAINLINE_WEBHOOK_SECRET instead",
                    _ => "point the setting at the readable, non-empty file that holds the secret",
                };
                CliError::new(e.kind(), chain_message(&e)).with_hint(hint)
            }
            other => CliError::new(other.kind(), chain_message(&other)),
        }
    }
}
