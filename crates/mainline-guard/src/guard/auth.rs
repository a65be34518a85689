//! Who may call what, checked before a handler reads anything: the bearer token of actions (and,
//! with `api_auth = "token"`, of the page and read-only API), and the per-client rate limit.
//!
//! Both are route middleware, so they run before the handler's extractors: a pin body (64 KiB)
//! is never read for a caller without a valid token. The scheme is matched case-insensitively
//! (RFC 7235 §2.1: `bearer`, `BEARER` and `Bearer` are the same), the token compared in
//! constant time against every configured token (each compare runs, whichever matches), and the
//! matching token's *name* travels to the handler as [`TokenName`] so the journal records which
//! token made a change.
//! The rate limit is governor's GCRA keyed by the client's IP address (one bucket per address,
//! stale buckets dropped as the map grows).
//! Must never: echo or log a token, or tell a caller which part of a token was wrong.

use super::http::{error_response, Shared};
use super::limits::ApiAuth;
use crate::error::{CliError, Kind};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock as _, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

/// The name of the token an action was authorised with (`default`: `MAINLINE_GUARD_TOKEN`).
#[derive(Debug, Clone)]
pub struct TokenName(pub String);

/// The token of `Authorization: <scheme> <token>` when the scheme is Bearer in any case.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.trim_start().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim())
        .filter(|t| !t.is_empty())
}

/// The name of the configured token `headers` carry, or the response refusing the request.
pub fn check(shared: &Shared, headers: &HeaderMap) -> Result<TokenName, Box<Response>> {
    if shared.tokens.is_empty() {
        return Err(Box::new(error_response(
            StatusCode::FORBIDDEN,
            &CliError::new(
                Kind::Unauthorized,
                "action endpoints are disabled on this guard",
            )
            .with_hint(
                "start the guard with MAINLINE_GUARD_TOKEN (or [guard.tokens]) set to enable them",
            ),
        )));
    }
    let found = bearer(headers).and_then(|given| {
        // Every token is compared, so the time taken does not say which one (if any) matched.
        shared
            .tokens
            .iter()
            .fold(None, |hit, (name, secret)| match secret.matches(given) {
                true => Some(name.clone()),
                false => hit,
            })
    });
    match found {
        Some(name) => Ok(TokenName(name)),
        None => {
            let mut r = error_response(
                StatusCode::UNAUTHORIZED,
                &CliError::new(Kind::Unauthorized, "missing or wrong bearer token")
                    .with_hint("send Authorization: Bearer <a token the guard was started with>"),
            );
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"mainline guard\""),
            );
            Err(Box::new(r))
        }
    }
}

/// Route middleware for actions: a valid token, before the body is read.
pub async fn actions(State(shared): State<Arc<Shared>>, mut req: Request, next: Next) -> Response {
    match check(&shared, req.headers()) {
        Ok(name) => {
            req.extensions_mut().insert(name);
            next.run(req).await
        }
        Err(r) => *r,
    }
}

/// Route middleware for `/` and `/api/…` reads: the rate limit, then (with `api_auth =
/// "token"`) a valid token.
pub async fn reads(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    if let Some(r) = shared.rate.refuse(super::server::peer(&req)) {
        return r;
    }
    if shared.api_auth == ApiAuth::Token {
        if let Err(r) = check(&shared, req.headers()) {
            return *r;
        }
    }
    next.run(req).await
}

/// Per-client-address rate limit (off when the limit is 0).
pub struct RateLimit {
    limiter: Option<RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, DefaultClock>>,
}

/// Buckets kept before stale ones are dropped.
const MAX_BUCKETS: usize = 10_000;

impl RateLimit {
    pub fn new(per_second: u32, burst: u32) -> RateLimit {
        let limiter = NonZeroU32::new(per_second).map(|rate| {
            let burst = NonZeroU32::new(burst.max(1)).expect("at least 1");
            RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        RateLimit { limiter }
    }

    /// The 429 to send when `peer` is over its rate; `None` lets the request through.
    pub fn refuse(&self, peer: Option<std::net::SocketAddr>) -> Option<Response> {
        let limiter = self.limiter.as_ref()?;
        let ip = peer?.ip();
        if limiter.len() > MAX_BUCKETS {
            limiter.retain_recent();
        }
        let not_until = limiter.check_key(&ip).err()?;
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        let secs = wait.as_secs() + 1;
        let mut r = error_response(
            StatusCode::TOO_MANY_REQUESTS,
            &CliError::new(Kind::Unavailable, format!("too many requests from {ip}")).with_hint(
                format!("retry in {secs}s; the guard's rate_limit is per client address"),
            ),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        Some(r.into_response())
    }
}
