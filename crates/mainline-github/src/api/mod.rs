//! A small blocking GitHub client with only the calls mainline makes: the merge queue's
//! entries (GraphQL), commit comparison (REST), and the GitHub App token exchange.
//!
//! It blocks the calling thread: build, call and drop it outside any async context (e.g. in
//! `tokio::task::spawn_blocking` or a plain thread); reqwest's blocking client panics when
//! created or dropped on an async runtime's worker. Settings are validated in
//! [`GithubClient::new`] before any request is made.
//!
//! Invariants: the token is sent only in the `Authorization` header to the configured URLs,
//! and never appears in `Debug` output, logs or errors; waits and retries are bounded
//! (`max_retries`, `max_rate_limit_wait`); every answer is parsed into our own types.
//! Must never: decide anything about the channel, or guess a fact it could not read (an
//! unreadable queue is an error, never an empty queue).

mod compare;
pub(crate) mod documents;
mod error;
mod http;
mod queue;
mod token;

pub use compare::{Compare, CompareStatus};
pub use documents::{is_known_document, GraphqlDocument, GRAPHQL_DOCUMENTS};
pub use error::{ErrorKind, GithubError};
pub use http::API_VERSION;
pub use queue::{EntryState, Group, QueueEntry, PAGE_SIZE};
pub use token::{Secret, Token, REFRESH_MARGIN, TOKEN_ENV};

use crate::clock::{Clock, SystemClock};
use http::{Http, Request};
use reqwest::Method;
use std::sync::Arc;
use std::time::Duration;
use token::{parse_expires_at, AppAuth, Cached};

/// Settings of a [`GithubClient`]. Start from [`GithubConfig::new`] and override fields.
#[derive(Debug, Clone)]
pub struct GithubConfig {
    /// REST base URL: `https://api.github.com`, or `https://HOST/api/v3` for GitHub Enterprise
    /// Server.
    pub api_url: String,
    /// GraphQL endpoint: `https://api.github.com/graphql`, or `https://HOST/api/graphql`.
    pub graphql_url: String,
    pub token: Token,
    /// GitHub rejects requests without a `User-Agent`.
    pub user_agent: String,
    /// Per-request timeout (connect + answer).
    pub timeout: Duration,
    /// Retries after the first attempt, for 5xx, transport errors and rate limits.
    pub max_retries: u32,
    /// The longest single rate-limit wait; a longer one fails with `RateLimited` at once.
    pub max_rate_limit_wait: Duration,
    /// The first 5xx/transport backoff; doubled on each retry, at most 30 s.
    pub retry_backoff: Duration,
    /// Time source and sleeper.
    pub clock: Arc<dyn Clock>,
}

impl GithubConfig {
    /// github.com defaults for `token`.
    pub fn new(token: Token) -> GithubConfig {
        GithubConfig {
            api_url: "https://api.github.com".to_owned(),
            graphql_url: "https://api.github.com/graphql".to_owned(),
            token,
            user_agent: concat!("mainline/", env!("CARGO_PKG_VERSION")).to_owned(),
            timeout: Duration::from_secs(30),
            max_retries: 3,
            max_rate_limit_wait: Duration::from_secs(60),
            retry_backoff: Duration::from_millis(500),
            clock: Arc::new(SystemClock),
        }
    }
}

/// How a request authenticates.
#[derive(Debug)]
enum Auth {
    Plain(Secret),
    App(AppAuth),
}

/// The GitHub API client. Cheap to share by reference across threads.
#[derive(Debug)]
pub struct GithubClient {
    api_url: String,
    graphql_url: String,
    auth: Auth,
    http: Http,
    /// Every secret of this client, for redacting quoted messages.
    secrets: Vec<Secret>,
}

impl GithubClient {
    /// Validate `config` and build the client. No request is made here; a GitHub App's
    /// private key is parsed now, so a bad key fails at startup.
    pub fn new(config: GithubConfig) -> Result<GithubClient, GithubError> {
        let api_url = validate_url("api_url", &config.api_url)?;
        let graphql_url = validate_url("graphql_url", &config.graphql_url)?;
        if config.user_agent.trim().is_empty() {
            return Err(config_error(
                "user_agent",
                "must not be empty: GitHub requires one",
            ));
        }
        if config.timeout.is_zero() {
            return Err(config_error("timeout", "must be greater than zero"));
        }
        let secrets = config
            .token
            .secrets()
            .into_iter()
            .map(Secret::new)
            .collect();
        let auth = match &config.token {
            Token::Plain(s) if s.expose().trim().is_empty() => {
                return Err(config_error(
                    "token",
                    "is empty: set GITHUB_TOKEN or an App",
                ))
            }
            Token::Plain(s) if !s.expose().bytes().all(|b| b.is_ascii_graphic()) => {
                return Err(config_error(
                    "token",
                    "contains spaces or control characters (a stray newline?): it cannot be \
                     sent in a header",
                ))
            }
            Token::Plain(s) => Auth::Plain(s.clone()),
            Token::App {
                app_id,
                installation_id,
                private_key_pem,
            } => Auth::App(AppAuth::new(app_id, *installation_id, private_key_pem)?),
        };
        install_crypto_provider();
        let client = reqwest::blocking::Client::builder()
            .user_agent(config.user_agent.clone())
            .timeout(config.timeout)
            .build()
            .map_err(|e| config_error("http client", &format!("cannot be built: {e}")))?;
        Ok(GithubClient {
            api_url,
            graphql_url,
            auth,
            http: Http {
                client,
                clock: config.clock.clone(),
                max_retries: config.max_retries,
                max_rate_limit_wait: config.max_rate_limit_wait,
                retry_backoff: config.retry_backoff,
            },
            secrets,
        })
    }

    /// Make an authenticated request. With a GitHub App, a 401 drops the cached installation
    /// token and the request is tried once more with a fresh one.
    pub(crate) fn request(
        &self,
        method: Method,
        url: &str,
        json_body: Option<Vec<u8>>,
        graphql: bool,
    ) -> Result<Vec<u8>, GithubError> {
        let req = Request {
            method,
            url,
            json_body,
            graphql,
        };
        let mut fresh_app_token = false;
        loop {
            let (token, fetched_now) = self.bearer()?;
            let authorization = format!("Bearer {}", token.expose());
            let mut secrets = self.secret_strs();
            secrets.push(token.expose());
            match self.http.execute(&req, &authorization, &secrets) {
                Err(GithubError::Unauthorized { .. })
                    if matches!(self.auth, Auth::App(_)) && !fresh_app_token && !fetched_now =>
                {
                    if let Auth::App(app) = &self.auth {
                        app.invalidate();
                    }
                    fresh_app_token = true;
                }
                other => return other.map(|r| r.body),
            }
        }
    }

    /// The bearer token for the next request, and whether it was just exchanged.
    fn bearer(&self) -> Result<(Secret, bool), GithubError> {
        match &self.auth {
            Auth::Plain(s) => Ok((s.clone(), false)),
            Auth::App(app) => {
                let now = self.http.clock.now().millis();
                if let Some(token) = app.cached(now) {
                    return Ok((token, false));
                }
                let cached = self.exchange_installation_token(app)?;
                let token = cached.token.clone();
                app.store(cached);
                Ok((token, true))
            }
        }
    }

    /// `POST /app/installations/{id}/access_tokens` with a fresh JWT.
    fn exchange_installation_token(&self, app: &AppAuth) -> Result<Cached, GithubError> {
        let url = format!(
            "{}/app/installations/{}/access_tokens",
            self.api_url, app.installation_id
        );
        let jwt = app.jwt(self.http.clock.now().millis())?;
        let mut secrets = self.secret_strs();
        secrets.push(jwt.expose());
        let req = Request {
            method: Method::POST,
            url: &url,
            json_body: None,
            graphql: false,
        };
        let body = self
            .http
            .execute(&req, &format!("Bearer {}", jwt.expose()), &secrets)?
            .body;
        #[derive(serde::Deserialize)]
        struct Answer {
            token: String,
            expires_at: String,
        }
        let answer: Answer = serde_json::from_slice(&body).map_err(|e| GithubError::Decode {
            url: url.clone(),
            what: format!("installation token: {e}"),
        })?;
        let expires_at =
            parse_expires_at(&answer.expires_at).ok_or_else(|| GithubError::Decode {
                url: url.clone(),
                what: format!("`expires_at` {:?} is not RFC 3339", answer.expires_at),
            })?;
        tracing::debug!(
            installation = app.installation_id,
            expires_at = %answer.expires_at,
            "exchanged a GitHub App installation token"
        );
        Ok(Cached {
            token: Secret::new(answer.token),
            expires_at,
        })
    }

    fn secret_strs(&self) -> Vec<&str> {
        self.secrets.iter().map(Secret::expose).collect()
    }

    /// `message` (quoted from GitHub) with every secret of this client redacted, the current
    /// installation token included.
    pub(crate) fn redact(&self, message: &str) -> String {
        let installation = match &self.auth {
            Auth::App(app) => app.current(),
            Auth::Plain(_) => None,
        };
        let mut secrets = self.secret_strs();
        if let Some(token) = &installation {
            secrets.push(token.expose());
        }
        error::redact(message, &secrets)
    }

    pub(crate) fn api_url(&self) -> &str {
        &self.api_url
    }

    pub(crate) fn graphql_url(&self) -> &str {
        &self.graphql_url
    }
}

/// reqwest is built without a bundled crypto provider (as oci-client builds it); install
/// ring's as the process default unless one is installed already.
fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Err means another thread installed one first: that one is used, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

fn config_error(field: &'static str, reason: &str) -> GithubError {
    GithubError::Config {
        field,
        reason: reason.to_owned(),
    }
}

/// An http(s) URL without credentials, trailing `/` removed.
fn validate_url(field: &'static str, raw: &str) -> Result<String, GithubError> {
    // A value with `@` may carry credentials: never echo it.
    let shown = if raw.contains('@') {
        "(value withheld)"
    } else {
        raw
    };
    let url = reqwest::Url::parse(raw.trim()).map_err(|e| {
        config_error(
            field,
            &format!("{shown:?} is not a URL ({e}); e.g. https://api.github.com"),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(config_error(
            field,
            &format!("{shown:?} must be an http(s) URL"),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(config_error(
            field,
            "must not contain credentials: put the token in GITHUB_TOKEN instead",
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// Check an owner or repository name before it goes into a URL path.
pub(crate) fn check_name(what: &'static str, value: &str) -> Result<(), GithubError> {
    let ok = !value.is_empty()
        && value.len() <= 100
        && value != "."
        && value != ".."
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(GithubError::BadName {
            what,
            value: value.chars().take(100).collect(),
        })
    }
}
