//! Remote URLs and tokens: what git is given, what humans see, and where the cache lives.
//!
//! A [`RemoteUrl`] keeps the URL exactly as git needs it (credentials included) but only ever
//! shows its redacted form: `Display`, `Debug` and every error use `scheme://***@host/...`.
//! A [`Token`] never prints at all. Must never: put a credential in a message, a log line, a
//! process argument or the cache directory name.

use crate::error::GitError;
use sha2::{Digest as _, Sha256};
use std::fmt;

/// A git remote URL as the user gave it: a path, `file://`, `https://`, `ssh://` or scp-like
/// `user@host:path`. Local paths are made absolute so the cache works from any directory.
#[derive(Clone, PartialEq, Eq)]
pub struct RemoteUrl {
    raw: String,
    redacted: String,
    /// The URL without userinfo: the cache key, so rotating a credential keeps the cache.
    identity: String,
    scheme: Option<String>,
    host: Option<String>,
    has_userinfo: bool,
    /// Strings that must be scrubbed from git's output before it reaches a message.
    secrets: Vec<String>,
}

impl RemoteUrl {
    /// Parse and normalise `url`. Rejects empty input, control characters and a leading `-`
    /// (which git would read as an option).
    pub fn parse(url: &str) -> Result<RemoteUrl, GitError> {
        let invalid = |reason| GitError::InvalidUrl {
            url: redact(url),
            reason,
        };
        if url.trim().is_empty() {
            return Err(invalid(
                "the URL is empty; pass the source repository's clone URL",
            ));
        }
        if url.chars().any(|c| c.is_control()) {
            return Err(invalid("the URL contains control characters"));
        }
        if url.starts_with('-') {
            return Err(invalid("a URL must not start with '-'"));
        }
        if let Some((scheme, rest)) = url.split_once("://") {
            let scheme_ok = scheme
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
            if !scheme_ok {
                return Err(invalid(
                    "the scheme must be letters, digits, '+', '-' or '.'",
                ));
            }
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            let (userinfo, host) = match authority.rsplit_once('@') {
                Some((user, host)) => (Some(user), host),
                None => (None, authority),
            };
            if host.is_empty() && scheme != "file" {
                return Err(invalid("the URL names no host"));
            }
            let mut secrets = Vec::new();
            if let Some(user) = userinfo.filter(|u| !u.is_empty()) {
                secrets.push(user.to_owned());
                if let Some((_, password)) = user.split_once(':') {
                    if !password.is_empty() {
                        secrets.push(password.to_owned());
                    }
                }
            }
            // Longest first, so a password inside the userinfo never leaves a partial match.
            secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
            let identity = format!("{scheme}://{host}{path}");
            Ok(RemoteUrl {
                raw: url.to_owned(),
                redacted: match userinfo {
                    Some(_) => format!("{scheme}://***@{host}{path}"),
                    None => url.to_owned(),
                },
                identity,
                scheme: Some(scheme.to_ascii_lowercase()),
                host: Some(host.to_owned()).filter(|h| !h.is_empty()),
                has_userinfo: userinfo.is_some(),
                secrets,
            })
        } else if is_scp_like(url) {
            // `user@host:path`: ssh; the user name is not a secret (there is no password here).
            let (before_colon, _) = url.split_once(':').expect("scp-like URLs contain ':'");
            let host = before_colon
                .rsplit_once('@')
                .map_or(before_colon, |(_, h)| h);
            Ok(RemoteUrl {
                raw: url.to_owned(),
                redacted: url.to_owned(),
                identity: url.to_owned(),
                scheme: Some("ssh".to_owned()),
                host: Some(host.to_owned()),
                has_userinfo: false,
                secrets: Vec::new(),
            })
        } else {
            let absolute = std::path::absolute(url).map_err(|_| {
                invalid("the local path cannot be made absolute (is the current directory gone?)")
            })?;
            let path = absolute
                .to_str()
                .ok_or_else(|| invalid("the local path is not valid UTF-8"))?
                .to_owned();
            Ok(RemoteUrl {
                raw: path.clone(),
                redacted: path.clone(),
                identity: path,
                scheme: None,
                host: None,
                has_userinfo: false,
                secrets: Vec::new(),
            })
        }
    }

    /// The URL with any userinfo replaced by `***`: safe to print.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    /// The URL as git needs it. Crate-private: it may hold a credential.
    pub(crate) fn raw(&self) -> &str {
        &self.raw
    }

    /// The host, for URLs that have one.
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// Whether the URL carries its own credentials (`https://user:pass@host/...`).
    pub fn has_userinfo(&self) -> bool {
        self.has_userinfo
    }

    /// The cache directory's name: the first 16 hex digits of sha256 of the URL without its
    /// userinfo (so the name reveals nothing and a rotated password keeps the cache).
    pub fn cache_key(&self) -> String {
        hex::encode(&Sha256::digest(self.identity.as_bytes())[..8])
    }

    /// The `https://host[:port]/` prefix a token header is scoped to, for https URLs only.
    pub(crate) fn https_base(&self) -> Option<String> {
        match (self.scheme.as_deref(), self.host.as_deref()) {
            (Some("https"), Some(host)) => Some(format!("https://{host}/")),
            _ => None,
        }
    }

    /// Replace every credential (and the raw URL) in `text` with its redacted form.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut out = text.replace(&self.raw, &self.redacted);
        for secret in &self.secrets {
            out = out.replace(secret.as_str(), "***");
        }
        out
    }
}

impl fmt::Display for RemoteUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl fmt::Debug for RemoteUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RemoteUrl({:?})", self.redacted)
    }
}

/// git's rule: `host:path` is scp-like when a ':' comes before any '/'.
fn is_scp_like(url: &str) -> bool {
    match (url.find(':'), url.find('/')) {
        (Some(colon), Some(slash)) => colon < slash && colon > 0,
        (Some(colon), None) => colon > 0,
        _ => false,
    }
}

/// Best-effort redaction of a string that did not even parse as a URL.
fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let end = rest.find('/').unwrap_or(rest.len());
            match rest[..end].rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://***@{host}{}", &rest[end..]),
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    }
}

/// An access token for https remotes. It prints as `***`; git receives it only through
/// environment-passed config (`http.<url>.extraHeader`), never in argv or on disk.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// A token from its secret value; `None` when empty or only whitespace.
    pub fn new(secret: impl Into<String>) -> Option<Token> {
        let secret = secret.into();
        let trimmed = secret.trim();
        (!trimmed.is_empty()).then(|| Token(trimmed.to_owned()))
    }

    /// The token the environment supplies for `url`: `MAINLINE_GIT_TOKEN`, else `GITHUB_TOKEN`
    /// when the host is github.com. `lookup` reads a variable (`std::env::var` in production),
    /// so this stays testable without touching the process environment.
    pub fn for_url(url: &RemoteUrl, lookup: impl Fn(&str) -> Option<String>) -> Option<Token> {
        if let Some(token) = lookup("MAINLINE_GIT_TOKEN").and_then(Token::new) {
            return Some(token);
        }
        let host = url.host()?.to_ascii_lowercase();
        let host = host.split(':').next().unwrap_or_default();
        (host == "github.com")
            .then(|| lookup("GITHUB_TOKEN").and_then(Token::new))
            .flatten()
    }

    /// The header value git sends: `Authorization: Basic base64(x-access-token:TOKEN)`.
    pub(crate) fn authorization_header(&self) -> String {
        use base64::Engine as _;
        let basic =
            base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{}", self.0));
        format!("Authorization: Basic {basic}")
    }

    /// The strings to scrub from output: the token and its encoded header form.
    pub(crate) fn secrets(&self) -> [String; 2] {
        let header = self.authorization_header();
        let basic = header
            .rsplit(' ')
            .next()
            .expect("the header has a value")
            .to_owned();
        [self.0.clone(), basic]
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}
