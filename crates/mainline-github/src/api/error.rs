//! Errors of the GitHub API client, and the small kind that drives exit codes and retries.
//!
//! Invariant: no variant carries a token, a JWT, a private key or an `Authorization` header;
//! messages quoted from GitHub pass through [`redact`] before they are stored.
//! Must never: put a cause both in `#[source]` and in the message.

use std::time::Duration;

/// What the caller can do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The configuration, credentials or names are wrong: an operator must fix something.
    InvalidInput,
    /// GitHub is unreachable, degraded or rate-limiting: retry later.
    Unavailable,
    /// GitHub answered something this client does not understand.
    Internal,
}

/// An error talking to GitHub. URLs never contain credentials (they are refused in config).
#[derive(Debug, thiserror::Error)]
pub enum GithubError {
    #[error(
        "{var} is not set or empty: set it to a token with the `repo` scope (or read access to \
         the repository's contents and pull requests), or configure a GitHub App"
    )]
    MissingToken { var: String },
    #[error("invalid GitHub client setting `{field}`: {reason}")]
    Config { field: &'static str, reason: String },
    #[error(
        "invalid {what} {value:?}: GitHub names are letters, digits, '.', '-' and '_'; check \
         the repository setting"
    )]
    BadName { what: &'static str, value: String },
    #[error(
        "the private key of GitHub App {app_id} is not a usable RSA PEM key: use the .pem file \
         downloaded from the App's settings page"
    )]
    InvalidPrivateKey {
        app_id: String,
        #[source]
        source: jsonwebtoken::errors::Error,
    },
    #[error(
        "GitHub rejected the credentials for {url} (401: {message}): set GITHUB_TOKEN with the \
         `repo` scope or configure a GitHub App"
    )]
    Unauthorized { url: String, message: String },
    #[error(
        "GitHub refused {url} (403: {message}): give the token read access to the repository's \
         contents and pull requests (or install the GitHub App on the repository)"
    )]
    Forbidden { url: String, message: String },
    #[error(
        "GitHub has nothing at {url} (404: {message}): check the owner, repository and commit, \
         and that the token can read the repository"
    )]
    NotFound { url: String, message: String },
    #[error(
        "GitHub rate limit reached for {url}; it resets at {reset}, beyond what this client may \
         wait (at most {max_wait:?} per wait, and a bounded number of retries): retry after the \
         reset, or use a GitHub App, whose limit is higher",
        reset = fmt_unix(*reset_at)
    )]
    RateLimited {
        url: String,
        /// When GitHub said the limit resets, unix seconds.
        reset_at: i64,
        max_wait: Duration,
    },
    #[error(
        "GitHub answered {status} for {url} after {attempts} attempts: GitHub may be degraded \
         (see https://www.githubstatus.com); the next reconcile tries again"
    )]
    Server {
        url: String,
        status: u16,
        attempts: u32,
    },
    #[error("GitHub answered {status} for {url}: {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
    },
    #[error(
        "could not reach GitHub at {url} after {attempts} attempts: check the network, proxy \
         and the configured API URL"
    )]
    Transport {
        url: String,
        attempts: u32,
        #[source]
        source: reqwest::Error,
    },
    #[error(
        "GitHub's answer from {url} is not in the documented shape ({what}); this is a bug in \
         mainline or a change at GitHub: please report it"
    )]
    Decode { url: String, what: String },
    #[error(
        "GitHub GraphQL at {url} answered with errors: {}; check the repository and branch \
         names and the token's access",
        messages.join("; ")
    )]
    Graphql { url: String, messages: Vec<String> },
    #[error(
        "repository {owner}/{repo} was not found, or the token cannot read it: check the name \
         and the token's access"
    )]
    RepositoryNotFound { owner: String, repo: String },
    #[error(
        "{owner}/{repo} has no merge queue on branch {branch:?}: require a merge queue in the \
         branch's ruleset, or use leases as the queue source"
    )]
    NoMergeQueue {
        owner: String,
        repo: String,
        branch: String,
    },
    #[error(
        "the merge queue of {owner}/{repo} on {branch:?} was still paginating after {pages} \
         pages: GitHub kept answering hasNextPage; try again later"
    )]
    Pagination {
        owner: String,
        repo: String,
        branch: String,
        pages: u32,
    },
}

impl GithubError {
    /// What the caller can do about this error.
    pub fn kind(&self) -> ErrorKind {
        use GithubError::*;
        match self {
            MissingToken { .. }
            | Config { .. }
            | BadName { .. }
            | InvalidPrivateKey { .. }
            | Unauthorized { .. }
            | Forbidden { .. }
            | NotFound { .. }
            | RepositoryNotFound { .. }
            | NoMergeQueue { .. } => ErrorKind::InvalidInput,
            RateLimited { .. } | Server { .. } | Transport { .. } | Pagination { .. } => {
                ErrorKind::Unavailable
            }
            Status { .. } | Decode { .. } | Graphql { .. } => ErrorKind::Internal,
        }
    }
}

/// RFC 3339 UTC for unix seconds, for messages.
pub(crate) fn fmt_unix(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("unix time {secs}"))
}

/// A message quoted from GitHub, with every occurrence of `secrets` replaced and its length
/// bounded, so a surprising echo can never leak a credential into an error.
pub(crate) fn redact(message: &str, secrets: &[&str]) -> String {
    let mut out = message.to_owned();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(secret, "<redacted>");
    }
    if out.chars().count() > 300 {
        out = out.chars().take(300).collect::<String>() + "…";
    }
    out
}
