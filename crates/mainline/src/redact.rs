//! Never print a credential: every byte mainline writes (stdout, logs on stderr at any level,
//! the final error) passes through [`Redacting`], which replaces each registered secret and its
//! encoded forms with `***`.
//!
//! Why a filter on output and not only care at each call site: a registry or token endpoint
//! may echo what we sent (an `Authorization: Basic base64(user:password)` header in a 500 body),
//! and dependencies log such bodies at debug level. Secrets are registered when settings are
//! read (registry credentials, git and GitHub tokens from the environment), before any request.
//! `main` also caps oci-client's own logs at info: its debug lines quote token-endpoint bodies.
//!
//! Invariants: the password, `user:password` and the password alone in standard and URL-safe
//! base64 (padded or not), and the percent-encoded password are all replaced. Output is
//! line-buffered so a secret is never split across two writes. Must never: print a registered
//! secret, or redact anything when no secret is registered (output passes through unchanged).

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use std::io::{self, Write};
use std::sync::{OnceLock, RwLock};

/// Shorter secrets are not redacted: replacing every `ab` would garble the output, and such a
/// secret protects nothing anyway.
const MIN_SECRET: usize = 4;

/// Environment variables whose values are secrets.
const SECRET_ENV: &[&str] = &[
    "MAINLINE_REGISTRY_PASSWORD",
    "MAINLINE_GIT_TOKEN",
    "GITHUB_TOKEN",
    "MAINLINE_GUARD_TOKEN",
];

fn secrets() -> &'static RwLock<Vec<String>> {
    static SECRETS: OnceLock<RwLock<Vec<String>>> = OnceLock::new();
    SECRETS.get_or_init(|| RwLock::new(Vec::new()))
}

/// Redact `secret` (and its base64 and percent-encoded forms) from all later output.
pub fn register(secret: &str) {
    if secret.len() < MIN_SECRET {
        return;
    }
    let mut forms = vec![secret.to_owned(), percent_encode(secret)];
    forms.extend(base64_forms(secret.as_bytes()));
    let mut all = secrets().write().unwrap_or_else(|p| p.into_inner());
    for form in forms {
        if form.len() >= MIN_SECRET && !all.contains(&form) {
            all.push(form);
        }
    }
    // Longest first, so a form that contains another is replaced whole.
    all.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// Registry credentials: the password, and `user:password` as HTTP basic auth encodes it.
pub fn register_credentials(username: &str, password: &str) {
    register(password);
    if password.len() >= MIN_SECRET {
        let pair = format!("{username}:{password}");
        let mut all = secrets().write().unwrap_or_else(|p| p.into_inner());
        for form in base64_forms(pair.as_bytes()) {
            if !all.contains(&form) {
                all.push(form);
            }
        }
        all.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// Secrets that arrive through the environment (tokens, a registry password).
pub fn register_env() {
    for name in SECRET_ENV {
        if let Ok(value) = std::env::var(name) {
            register(value.trim());
        }
    }
}

fn base64_forms(bytes: &[u8]) -> Vec<String> {
    let mut forms = vec![
        STANDARD.encode(bytes),
        STANDARD_NO_PAD.encode(bytes),
        URL_SAFE.encode(bytes),
        URL_SAFE_NO_PAD.encode(bytes),
    ];
    forms.dedup();
    forms
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `text` with every registered secret replaced by `***`.
pub fn redact(text: &str) -> String {
    let all = secrets().read().unwrap_or_else(|p| p.into_inner());
    let mut out = text.to_owned();
    for secret in all.iter() {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), "***");
        }
    }
    out
}

fn any_registered() -> bool {
    !secrets()
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .is_empty()
}

/// A line-buffered writer that redacts each line before it reaches `inner`.
pub struct Redacting<W: Write> {
    inner: W,
    pending: Vec<u8>,
}

impl<W: Write> Redacting<W> {
    pub fn new(inner: W) -> Redacting<W> {
        Redacting {
            inner,
            pending: Vec::new(),
        }
    }

    fn emit(&mut self, bytes: &[u8]) -> io::Result<()> {
        if any_registered() {
            let text = String::from_utf8_lossy(bytes);
            self.inner.write_all(redact(&text).as_bytes())
        } else {
            self.inner.write_all(bytes)
        }
    }
}

impl<W: Write> Write for Redacting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Only the new bytes are searched: a long line written in small pieces (a JSON
        // document is one line) must not rescan what is pending on every write — that made
        // `history -o json` of 3,000 records take a minute.
        let before = self.pending.len();
        self.pending.extend_from_slice(buf);
        if let Some(last) = buf.iter().rposition(|&b| b == b'\n') {
            let rest = self.pending.split_off(before + last + 1);
            let lines = std::mem::replace(&mut self.pending, rest);
            self.emit(&lines)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            self.emit(&rest)?;
        }
        self.inner.flush()
    }
}

impl<W: Write> Drop for Redacting<W> {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}
