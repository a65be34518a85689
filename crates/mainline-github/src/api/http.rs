//! One HTTP exchange with GitHub, with GitHub's documented retry rules: on 403/429 (or a
//! GraphQL `RATE_LIMITED` error) wait for `retry-after`, or until `x-ratelimit-reset` when
//! `x-ratelimit-remaining` is 0, or a minute when neither is given; retry 5xx and transport
//! errors with exponential backoff; map every other status to a typed error.
//!
//! Invariants: every wait goes through the configured [`Clock`], is at most
//! `max_rate_limit_wait`, and the number of retries is at most `max_retries`; the
//! `Authorization` header is marked sensitive; quoted GitHub messages are redacted.
//! Must never: log or return the `Authorization` value, or retry a 4xx other than a rate limit.

use super::error::{redact, GithubError};
use crate::clock::{duration_millis, wait_millis, Clock};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::Method;
use std::sync::Arc;
use std::time::Duration;

/// The REST API version this client speaks (sent as `X-GitHub-Api-Version`).
pub const API_VERSION: &str = "2022-11-28";
/// What GitHub asks us to wait when a rate limit names no time ("at least one minute").
const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);
/// The longest backoff between two 5xx/transport retries.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The retry policy and the connection.
#[derive(Debug)]
pub(crate) struct Http {
    pub(crate) client: reqwest::blocking::Client,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) max_retries: u32,
    pub(crate) max_rate_limit_wait: Duration,
    pub(crate) retry_backoff: Duration,
}

/// A request to make.
pub(crate) struct Request<'a> {
    pub(crate) method: Method,
    pub(crate) url: &'a str,
    pub(crate) json_body: Option<Vec<u8>>,
    /// A GraphQL call: a 200 carrying a `RATE_LIMITED` error is a rate limit.
    pub(crate) graphql: bool,
}

/// A successful (2xx) answer.
pub(crate) struct Response {
    pub(crate) body: Vec<u8>,
}

impl Http {
    /// Send `req` with `authorization` (the full header value, e.g. `Bearer …`), retrying as
    /// GitHub documents. `secrets` are redacted from any quoted message.
    pub(crate) fn execute(
        &self,
        req: &Request<'_>,
        authorization: &str,
        secrets: &[&str],
    ) -> Result<Response, GithubError> {
        let url = req.url.to_owned();
        let mut retries = 0u32;
        loop {
            let attempts = retries + 1;
            let sent = self.send_once(req, authorization);
            let (status, headers, body) = match sent {
                Ok(answer) => answer,
                Err(source) => {
                    if retries < self.max_retries {
                        self.clock.sleep(wait_millis(self.backoff(retries)));
                        retries += 1;
                        continue;
                    }
                    return Err(GithubError::Transport {
                        url,
                        attempts,
                        source,
                    });
                }
            };
            let graphql_limited = req.graphql && status == 200 && is_graphql_rate_limited(&body);
            if (200..300).contains(&status) && !graphql_limited {
                return Ok(Response { body });
            }
            if status == 403 || status == 429 || graphql_limited {
                if let Some((wait, reset_at)) =
                    self.rate_limit_wait(status, &headers, &body, graphql_limited)
                {
                    if wait <= self.max_rate_limit_wait && retries < self.max_retries {
                        tracing::warn!(%url, ?wait, "GitHub rate limit: waiting before retrying");
                        self.clock.sleep(wait_millis(wait));
                        retries += 1;
                        continue;
                    }
                    return Err(GithubError::RateLimited {
                        url,
                        reset_at,
                        max_wait: self.max_rate_limit_wait,
                    });
                }
            }
            if status >= 500 {
                if retries < self.max_retries {
                    tracing::debug!(%url, status, "GitHub server error: retrying");
                    self.clock.sleep(wait_millis(self.backoff(retries)));
                    retries += 1;
                    continue;
                }
                return Err(GithubError::Server {
                    url,
                    status,
                    attempts,
                });
            }
            let message = redact(&quoted_message(&body), secrets);
            return Err(match status {
                401 => GithubError::Unauthorized { url, message },
                403 => GithubError::Forbidden { url, message },
                404 => GithubError::NotFound { url, message },
                _ => GithubError::Status {
                    url,
                    status,
                    message,
                },
            });
        }
    }

    fn send_once(
        &self,
        req: &Request<'_>,
        authorization: &str,
    ) -> Result<(u16, HeaderMap, Vec<u8>), reqwest::Error> {
        let mut auth = HeaderValue::from_str(authorization)
            .unwrap_or_else(|_| HeaderValue::from_static("invalid"));
        auth.set_sensitive(true);
        let mut builder = self
            .client
            .request(req.method.clone(), req.url)
            .header(ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", API_VERSION)
            .header(AUTHORIZATION, auth);
        if let Some(body) = &req.json_body {
            builder = builder
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        let resp = builder.send()?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.bytes()?.to_vec();
        Ok((status, headers, body))
    }

    /// `base * 2^retries`, at most [`MAX_BACKOFF`].
    fn backoff(&self, retries: u32) -> Duration {
        let factor = 2u32.saturating_pow(retries.min(16));
        self.retry_backoff.saturating_mul(factor).min(MAX_BACKOFF)
    }

    /// How long GitHub asks us to wait, and when (unix seconds) the limit resets; `None` if
    /// this 403 is not a rate limit (a plain permission refusal).
    fn rate_limit_wait(
        &self,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
        graphql_limited: bool,
    ) -> Option<(Duration, i64)> {
        let now_ms = self.clock.now().millis();
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        if let Some(secs) = header("retry-after").and_then(|v| v.trim().parse::<u64>().ok()) {
            let reset = now_ms.div_euclid(1000) + i64::try_from(secs).unwrap_or(i64::MAX / 2);
            return Some((Duration::from_secs(secs), reset));
        }
        let remaining = header("x-ratelimit-remaining").and_then(|v| v.trim().parse::<u64>().ok());
        let reset = header("x-ratelimit-reset").and_then(|v| v.trim().parse::<i64>().ok());
        if let (Some(0), Some(reset)) = (remaining, reset) {
            let wait_ms = reset.saturating_mul(1000).saturating_sub(now_ms).max(0);
            let wait = Duration::from_millis(u64::try_from(wait_ms).unwrap_or(0));
            return Some((wait, reset));
        }
        let secondary = status == 403
            && String::from_utf8_lossy(body)
                .to_ascii_lowercase()
                .contains("rate limit");
        if status == 429 || graphql_limited || secondary {
            let wait = DEFAULT_RATE_LIMIT_WAIT;
            let reset = (now_ms + duration_millis(wait)).div_euclid(1000);
            return Some((wait, reset));
        }
        None
    }
}

/// A 200 GraphQL answer whose `errors` include one of type `RATE_LIMITED`.
fn is_graphql_rate_limited(body: &[u8]) -> bool {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) else {
        return false;
    };
    json.get("errors")
        .and_then(|e| e.as_array())
        .is_some_and(|errors| {
            errors
                .iter()
                .any(|e| e.get("type").and_then(|t| t.as_str()) == Some("RATE_LIMITED"))
        })
}

/// GitHub's `message` from an error body, or a short excerpt of a non-JSON body.
fn quoted_message(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() {
                "no message".to_owned()
            } else {
                text.chars().take(200).collect()
            }
        })
}
