//! Credentials: a plain token (`GITHUB_TOKEN`, a PAT, an Actions token) or a GitHub App
//! installation, whose short-lived installation token is obtained with an RS256 JWT and
//! cached until shortly before it expires.
//!
//! Invariants: a secret lives only inside [`Secret`], whose `Debug` prints `<redacted>` and
//! which has no `Display`; the installation token is reused only while
//! `now < expires_at - REFRESH_MARGIN` by the client's clock.
//! Must never: log, print or put in an error a token, a JWT or the private key.

use super::error::GithubError;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

/// The environment variable [`Token::from_env`] reads.
pub const TOKEN_ENV: &str = "GITHUB_TOKEN";

/// How long before its `expires_at` a cached installation token is replaced. Installation
/// tokens live one hour; renewing five minutes early keeps a slow request from outliving it.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// A secret string. `Debug` never shows it; there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the one place that must send it.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How the client authenticates.
#[derive(Clone, PartialEq, Eq)]
pub enum Token {
    /// A token sent as is: a personal access token, or the Actions `GITHUB_TOKEN`.
    Plain(Secret),
    /// A GitHub App installation. `app_id` is the App's client ID (recommended by GitHub) or
    /// its numeric app ID; it becomes the JWT's `iss`.
    App {
        app_id: String,
        installation_id: u64,
        private_key_pem: Secret,
    },
}

impl Token {
    /// A plain token.
    pub fn plain(token: impl Into<String>) -> Token {
        Token::Plain(Secret::new(token))
    }

    /// The token in `GITHUB_TOKEN`; an error naming the variable when it is unset or blank.
    pub fn from_env() -> Result<Token, GithubError> {
        match std::env::var(TOKEN_ENV) {
            Ok(v) if !v.trim().is_empty() => Ok(Token::plain(v.trim())),
            _ => Err(GithubError::MissingToken {
                var: TOKEN_ENV.to_owned(),
            }),
        }
    }

    /// The secrets this token could put on the wire, for redaction of quoted messages.
    pub(crate) fn secrets(&self) -> Vec<&str> {
        match self {
            Token::Plain(s) => vec![s.expose()],
            Token::App {
                private_key_pem, ..
            } => vec![private_key_pem.expose()],
        }
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Plain(_) => f.write_str("Token::Plain(<redacted>)"),
            Token::App {
                app_id,
                installation_id,
                ..
            } => f
                .debug_struct("Token::App")
                .field("app_id", app_id)
                .field("installation_id", installation_id)
                .field("private_key_pem", &"<redacted>")
                .finish(),
        }
    }
}

/// The claims GitHub requires of an App JWT.
#[derive(Serialize)]
struct Claims {
    /// Issued at, set 60 s in the past against clock drift (as GitHub recommends).
    iat: i64,
    /// At most 10 minutes after issue; we use 9 so a slow clock stays inside the bound.
    exp: i64,
    /// The App's client ID or app ID, as a string (as GitHub's examples send both).
    iss: String,
}

/// A GitHub App's signing key and its cached installation token.
pub(crate) struct AppAuth {
    pub(crate) app_id: String,
    pub(crate) installation_id: u64,
    key: EncodingKey,
    cached: Mutex<Option<Cached>>,
}

#[derive(Clone)]
pub(crate) struct Cached {
    pub(crate) token: Secret,
    /// Unix milliseconds.
    pub(crate) expires_at: i64,
}

impl fmt::Debug for AppAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppAuth")
            .field("app_id", &self.app_id)
            .field("installation_id", &self.installation_id)
            .field("key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl AppAuth {
    /// Parse the private key once, up front, so a bad key fails at startup.
    pub(crate) fn new(
        app_id: &str,
        installation_id: u64,
        pem: &Secret,
    ) -> Result<AppAuth, GithubError> {
        let key = EncodingKey::from_rsa_pem(pem.expose().as_bytes()).map_err(|source| {
            GithubError::InvalidPrivateKey {
                app_id: app_id.to_owned(),
                source,
            }
        })?;
        Ok(AppAuth {
            app_id: app_id.to_owned(),
            installation_id,
            key,
            cached: Mutex::new(None),
        })
    }

    /// A fresh App JWT, valid for nine minutes from `now_ms`.
    pub(crate) fn jwt(&self, now_ms: i64) -> Result<Secret, GithubError> {
        let now = now_ms.div_euclid(1000);
        let claims = Claims {
            iat: now - 60,
            exp: now + 9 * 60,
            iss: self.app_id.clone(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key)
            .map(Secret)
            .map_err(|source| GithubError::InvalidPrivateKey {
                app_id: self.app_id.clone(),
                source,
            })
    }

    /// The cached installation token if it is still good at `now_ms`.
    pub(crate) fn cached(&self, now_ms: i64) -> Option<Secret> {
        let margin = i64::try_from(REFRESH_MARGIN.as_millis()).unwrap_or(i64::MAX);
        let guard = self.lock();
        guard
            .as_ref()
            .filter(|c| now_ms < c.expires_at.saturating_sub(margin))
            .map(|c| c.token.clone())
    }

    pub(crate) fn store(&self, cached: Cached) {
        *self.lock() = Some(cached);
    }

    /// The cached token regardless of expiry, for redacting messages.
    pub(crate) fn current(&self) -> Option<Secret> {
        self.lock().as_ref().map(|c| c.token.clone())
    }

    /// Forget the cached token (GitHub answered 401 to it: revoked or expired early).
    pub(crate) fn invalidate(&self) {
        *self.lock() = None;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Cached>> {
        // The guarded value is a plain cache; a panic elsewhere cannot leave it inconsistent.
        self.cached.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Parse the `expires_at` of an installation token (RFC 3339) into unix milliseconds.
pub(crate) fn parse_expires_at(s: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}
