//! What the guard's HTTP surface allows a client, validated from `[guard]` before anything is
//! served: how long a connection may take to send a request head (and may sit idle between
//! requests), how long a request body may take, how many connections are served at once (and
//! the reserve kept for `/healthz` and `/readyz`), whether the read-only API needs a token,
//! the per-client rate limit, and the named action tokens.
//!
//! Why: the guard listens where an attacker on the same network can reach it. Without these a
//! few hundred slow or idle connections exhaust its file descriptors, liveness probes fail and
//! webhooks are lost (issue 21).
//! Must never: read a token's value from `mainline.toml` (only the file naming it), or let a
//! setting of 0 silently disable a timeout (timeouts are at least 100 ms; a rate limit of 0 is
//! the documented "off").

use super::error::GuardError;
use super::secret::Secret;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// How long a connection may take to send a whole request head; hyper runs the same timer
/// while a kept-alive connection waits for its next request, so it is the idle timeout too.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request body may take to arrive once its head is read.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections served at once (clamped to what the open-file limit allows).
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
/// Connections over `max_connections` that are still accepted, for `/healthz` and `/readyz`
/// only, with [`RESERVE_HEADER_TIMEOUT`].
pub const DEFAULT_HEALTH_RESERVE: usize = 16;
/// How long a reserve connection may take to send its request head.
pub const RESERVE_HEADER_TIMEOUT: Duration = Duration::from_secs(2);
/// Requests per second per client address on `/` and `/api/…` (0: off), and the burst.
pub const DEFAULT_RATE_LIMIT: u32 = 50;
pub const DEFAULT_RATE_BURST: u32 = 100;
/// File descriptors kept free for git processes, registry connections and the cache.
pub const FD_HEADROOM: u64 = 64;

/// `api_auth`: who may read `/` and `/api/…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiAuth {
    /// Read-only views are open (actions always need a token).
    None,
    /// Every read of `/` and `/api/…` needs a bearer token too.
    Token,
}

/// The HTTP surface's limits, validated.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    /// Effective cap (after clamping to the open-file limit).
    pub max_connections: usize,
    /// What the settings asked for, when the open-file limit lowered it.
    pub max_connections_asked: Option<usize>,
    pub health_reserve: usize,
    pub api_auth: ApiAuth,
    pub rate_limit: u32,
    pub rate_burst: u32,
}

/// The `[guard]` keys this module reads (as written in the file).
#[derive(Debug, Default)]
pub struct HttpKeys {
    pub header_timeout: Option<String>,
    pub body_timeout: Option<String>,
    pub max_connections: Option<usize>,
    pub health_reserve: Option<usize>,
    pub api_auth: Option<String>,
    pub rate_limit: Option<u32>,
    pub rate_burst: Option<u32>,
}

fn invalid(setting: &'static str, value: impl Into<String>, reason: &str) -> GuardError {
    GuardError::InvalidSetting {
        setting,
        value: value.into(),
        reason: reason.into(),
    }
}

fn timeout(
    setting: &'static str,
    raw: Option<&str>,
    default: Duration,
) -> Result<Duration, GuardError> {
    let Some(s) = raw else { return Ok(default) };
    let d = humantime::parse_duration(s)
        .map_err(|e| invalid(setting, s, &format!("{e} (e.g. 10s, 1m)")))?;
    if d < Duration::from_millis(100) || d > Duration::from_secs(3600) {
        return Err(invalid(setting, s, "must be between 100ms and 1h"));
    }
    Ok(d)
}

/// The soft open-file limit of this process (`RLIMIT_NOFILE`), if it can be read.
pub fn open_file_limit() -> Option<u64> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own; no other effect.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) };
    (rc == 0 && r.rlim_cur != libc::RLIM_INFINITY).then_some(r.rlim_cur)
}

/// The connection cap that leaves [`FD_HEADROOM`] descriptors and the reserve free under
/// `limit`.
pub fn clamp_connections(asked: usize, reserve: usize, limit: Option<u64>) -> usize {
    let Some(limit) = limit else { return asked };
    let room = limit.saturating_sub(FD_HEADROOM + reserve as u64);
    asked.min(room as usize).max(1)
}

impl HttpLimits {
    pub fn resolve(keys: HttpKeys) -> Result<HttpLimits, GuardError> {
        let header_timeout = timeout(
            "header_timeout",
            keys.header_timeout.as_deref(),
            DEFAULT_HEADER_TIMEOUT,
        )?;
        let body_timeout = timeout(
            "body_timeout",
            keys.body_timeout.as_deref(),
            DEFAULT_BODY_TIMEOUT,
        )?;
        let asked = keys.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS);
        if !(1..=65_536).contains(&asked) {
            return Err(invalid(
                "max_connections",
                asked.to_string(),
                "must be 1 to 65536",
            ));
        }
        let health_reserve = keys.health_reserve.unwrap_or(DEFAULT_HEALTH_RESERVE);
        if !(1..=1024).contains(&health_reserve) {
            return Err(invalid(
                "health_reserve",
                health_reserve.to_string(),
                "must be 1 to 1024 (kubelet probes need a way in when the cap is reached)",
            ));
        }
        let max_connections = clamp_connections(asked, health_reserve, open_file_limit());
        let api_auth = match keys.api_auth.as_deref() {
            None | Some("none") => ApiAuth::None,
            Some("token") => ApiAuth::Token,
            Some(other) => {
                return Err(invalid(
                    "api_auth",
                    other,
                    "expected \"none\" (read-only views open) or \"token\" (a bearer token for / and /api/…)",
                ))
            }
        };
        let rate_limit = keys.rate_limit.unwrap_or(DEFAULT_RATE_LIMIT);
        let rate_burst = keys
            .rate_burst
            .unwrap_or(DEFAULT_RATE_BURST.max(rate_limit));
        if rate_limit > 0 && rate_burst == 0 {
            return Err(invalid(
                "rate_burst",
                "0",
                "must be at least 1 when rate_limit is on",
            ));
        }
        Ok(HttpLimits {
            header_timeout,
            body_timeout,
            max_connections,
            max_connections_asked: (max_connections != asked).then_some(asked),
            health_reserve,
            api_auth,
            rate_limit,
            rate_burst,
        })
    }
}

impl Default for HttpLimits {
    fn default() -> HttpLimits {
        HttpLimits::resolve(HttpKeys::default()).expect("the defaults are valid")
    }
}

/// Action tokens by name: `MAINLINE_GUARD_TOKEN` is named `default`; `[guard.tokens]` maps
/// more names to files holding one token each.
pub fn tokens(
    env_token: Option<Secret>,
    files: Option<BTreeMap<String, PathBuf>>,
) -> Result<Vec<(String, Secret)>, GuardError> {
    let mut out = Vec::new();
    if let Some(t) = env_token {
        out.push(("default".to_owned(), t));
    }
    for (name, path) in files.unwrap_or_default() {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'));
        if !ok || out.iter().any(|(n, _)| *n == name) {
            return Err(invalid(
                "guard.tokens",
                name,
                "token names are unique, 1-64 of [A-Za-z0-9._@-] (`default` is MAINLINE_GUARD_TOKEN's)",
            ));
        }
        let secret = super::settings::read_secret_file("guard token", &path)?;
        if let Some((other, _)) = out.iter().find(|(_, s)| s.matches(secret.expose())) {
            return Err(invalid(
                "guard.tokens",
                name,
                &format!("holds the same token as {other:?}: give every person or system its own"),
            ));
        }
        out.push((name, secret));
    }
    Ok(out)
}
