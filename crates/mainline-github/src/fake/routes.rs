//! The fake GitHub's HTTP handlers. Every answer is built from a template in `fixtures/api/`,
//! so the fake speaks exactly the shapes the fixtures document.
//!
//! Order per request: log it, perform the next scripted [`Failure`] if any, check the
//! `Authorization` header, then answer from the in-memory state.

use super::state::{Failure, Recorded, State};
use axum::body::Bytes;
use axum::extract::{Path, State as Extract};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

pub(crate) type Shared = Arc<Mutex<State>>;

const QUEUE_PAGE: &str = include_str!("../../fixtures/api/merge_queue_response.json");
const GRAPHQL_ERRORS: &str = include_str!("../../fixtures/api/graphql_errors.json");
const GRAPHQL_RATE_LIMITED: &str = include_str!("../../fixtures/api/graphql_rate_limited.json");
const COMPARE: &str = include_str!("../../fixtures/api/compare_response.json");
const INSTALLATION_TOKEN: &str =
    include_str!("../../fixtures/api/installation_token_response.json");
const RATE_LIMITED: &str = include_str!("../../fixtures/api/rate_limited.json");
const BAD_CREDENTIALS: &str = include_str!("../../fixtures/api/bad_credentials.json");
const NOT_FOUND: &str = include_str!("../../fixtures/api/not_found.json");
const SERVER_ERROR: &str = include_str!("../../fixtures/api/server_error.json");

fn template(text: &str) -> Value {
    serde_json::from_str(text).expect("fixtures are valid JSON (checked by tests/fixtures.rs)")
}

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, State> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

fn answer(status: StatusCode, headers: &[(&'static str, String)], body: &Value) -> Response {
    let mut map = HeaderMap::new();
    map.insert("content-type", HeaderValue::from_static("application/json"));
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_str(value) {
            map.insert(*name, v);
        }
    }
    (status, map, body.to_string()).into_response()
}

/// The fake's notion of now (its clock may be a test's manual clock), unix seconds.
fn now_unix(state: &State) -> i64 {
    state.clock.now().millis().div_euclid(1000)
}

fn failure_response(failure: Failure) -> Response {
    match failure {
        Failure::TooManyRequests { retry_after_secs } => answer(
            StatusCode::TOO_MANY_REQUESTS,
            &[("retry-after", retry_after_secs.to_string())],
            &template(RATE_LIMITED),
        ),
        Failure::RateLimitReset { reset_at_unix } => answer(
            StatusCode::FORBIDDEN,
            &[
                ("x-ratelimit-limit", "5000".to_owned()),
                ("x-ratelimit-remaining", "0".to_owned()),
                ("x-ratelimit-reset", reset_at_unix.to_string()),
            ],
            &template(RATE_LIMITED),
        ),
        Failure::TooManyRequestsBare => {
            answer(StatusCode::TOO_MANY_REQUESTS, &[], &template(RATE_LIMITED))
        }
        Failure::SecondaryRateLimit => answer(
            StatusCode::FORBIDDEN,
            &[],
            &json!({
                "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
                "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
            }),
        ),
        Failure::Forbidden => answer(
            StatusCode::FORBIDDEN,
            &[("x-ratelimit-remaining", "4999".to_owned())],
            &json!({ "message": "Resource not accessible by integration" }),
        ),
        Failure::ServerError => answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            &[],
            &template(SERVER_ERROR),
        ),
        Failure::GraphqlErrors { message } => {
            let mut body = template(GRAPHQL_ERRORS);
            body["errors"][0]["message"] = Value::from(message);
            answer(StatusCode::OK, &[], &body)
        }
        Failure::GraphqlRateLimited { reset_at_unix } => answer(
            StatusCode::OK,
            &[
                ("x-ratelimit-remaining", "0".to_owned()),
                ("x-ratelimit-reset", reset_at_unix.to_string()),
            ],
            &template(GRAPHQL_RATE_LIMITED),
        ),
    }
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    matches!(scheme.to_ascii_lowercase().as_str(), "bearer" | "token").then(|| token.to_owned())
}

/// Log the request, then either a scripted failure, a 401, or `None` to go on.
fn prelude(
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    accept: impl FnOnce(&State, Option<&str>) -> bool,
) -> Option<Response> {
    let mut state = lock(shared);
    let token = bearer(headers);
    let authorized = accept(&state, token.as_deref());
    state.log.push(Recorded {
        method: method.to_string(),
        path: uri
            .path_and_query()
            .map_or_else(|| uri.path().to_owned(), |p| p.to_string()),
        authorized,
    });
    if let Some(failure) = state.failures.pop_front() {
        return Some(failure_response(failure));
    }
    (!authorized).then(|| answer(StatusCode::UNAUTHORIZED, &[], &template(BAD_CREDENTIALS)))
}

fn token_accepted(state: &State, token: Option<&str>) -> bool {
    token.is_some_and(|t| state.tokens.contains(t))
}

pub(crate) async fn graphql(
    Extract(shared): Extract<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = prelude(&shared, &method, &uri, &headers, token_accepted) {
        return r;
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return graphql_error("Problems parsing JSON");
    };
    let query = request["query"].as_str().unwrap_or_default();
    if !crate::is_known_document(query) {
        // Only documents the schema checker validated are answered (see the module docs of
        // `fake`): a query GitHub would refuse must fail here too.
        return graphql_error(
            "the fake GitHub answers only the GraphQL documents in crates/mainline-github/graphql/, \
             which tests/github-schemas validates against GitHub's schema; this query is not \
             one of them byte for byte: put it in a .graphql file there and list it in \
             GRAPHQL_DOCUMENTS",
        );
    }
    if query != crate::api::documents::MERGE_QUEUE {
        return graphql_error("the fake GitHub has no answer for this document yet");
    }
    let vars = &request["variables"];
    let (Some(owner), Some(name), Some(branch), Some(first)) = (
        vars["owner"].as_str(),
        vars["name"].as_str(),
        vars["branch"].as_str(),
        vars["first"].as_u64(),
    ) else {
        return graphql_error("Variable $owner, $name, $branch or $first was not provided");
    };
    let start = match vars["after"].as_str() {
        None => 0,
        Some(cursor) => match cursor.strip_prefix("cursor:").and_then(|n| n.parse().ok()) {
            Some(n) => n,
            None => return graphql_error("`after` is not a valid cursor"),
        },
    };
    let state = lock(&shared);
    if !state.repos.contains(&(owner.to_owned(), name.to_owned())) {
        let mut body = template(GRAPHQL_ERRORS);
        body["errors"][0]["message"] = Value::from(format!(
            "Could not resolve to a Repository with the name '{owner}/{name}'."
        ));
        return answer(StatusCode::OK, &[], &body);
    }
    let mut page = template(QUEUE_PAGE);
    let key = (owner.to_owned(), name.to_owned(), branch.to_owned());
    let Some(entries) = state.queues.get(&key) else {
        page["data"]["repository"]["mergeQueue"] = Value::Null;
        return answer(StatusCode::OK, &[], &page);
    };
    let node_template = page["data"]["repository"]["mergeQueue"]["entries"]["nodes"][0].clone();
    let first = usize::try_from(first.min(100)).unwrap_or(100);
    let end = (start + first).min(entries.len());
    let nodes: Vec<Value> = entries
        .iter()
        .enumerate()
        .take(end)
        .skip(start)
        .map(|(index, e)| {
            let mut node = node_template.clone();
            node["position"] = Value::from(index + 1);
            node["state"] = Value::from(e.state.clone());
            node["headCommit"] = e.head.as_ref().map_or(Value::Null, |h| json!({ "oid": h }));
            node["baseCommit"] = e.base.as_ref().map_or(Value::Null, |b| json!({ "oid": b }));
            node["pullRequest"] = e.pr.map_or(Value::Null, |n| json!({ "number": n }));
            node
        })
        .collect();
    let connection = &mut page["data"]["repository"]["mergeQueue"]["entries"];
    connection["nodes"] = Value::from(nodes);
    connection["pageInfo"]["hasNextPage"] = Value::from(end < entries.len());
    connection["pageInfo"]["endCursor"] = Value::from(format!("cursor:{end}"));
    answer(StatusCode::OK, &[], &page)
}

fn graphql_error(message: &str) -> Response {
    let mut body = template(GRAPHQL_ERRORS);
    body["errors"][0]["message"] = Value::from(message);
    answer(StatusCode::OK, &[], &body)
}

pub(crate) async fn compare(
    Extract(shared): Extract<Shared>,
    Path((owner, repo, spec)): Path<(String, String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = prelude(&shared, &method, &uri, &headers, token_accepted) {
        return r;
    }
    let state = lock(&shared);
    let not_found = |message: &str| {
        let mut body = template(NOT_FOUND);
        body["message"] = Value::from(message);
        answer(StatusCode::NOT_FOUND, &[], &body)
    };
    if !state.repos.contains(&(owner.clone(), repo.clone())) {
        return not_found("Not Found");
    }
    let Some((base, head)) = spec.split_once("...") else {
        return not_found("Not Found");
    };
    match state.compare(base, head) {
        Err(message) => not_found(&message),
        Ok(c) => {
            let mut body = template(COMPARE);
            body["status"] = Value::from(c.status);
            body["ahead_by"] = Value::from(c.ahead_by);
            body["behind_by"] = Value::from(c.behind_by);
            body["total_commits"] = Value::from(c.ahead_by);
            body["base_commit"]["sha"] = Value::from(base);
            body["merge_base_commit"]["sha"] = Value::from(c.merge_base);
            answer(StatusCode::OK, &[], &body)
        }
    }
}

pub(crate) async fn access_token(
    Extract(shared): Extract<Shared>,
    Path(installation_id): Path<u64>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let accept = |state: &State, jwt: Option<&str>| {
        let Some(app) = state.apps.get(&installation_id) else {
            return false;
        };
        jwt.is_some_and(|jwt| jwt_accepted(app, jwt, now_unix(state)))
    };
    if let Some(r) = prelude(&shared, &method, &uri, &headers, accept) {
        return r;
    }
    let mut state = lock(&shared);
    state.issued += 1;
    let token = format!("fake-installation-token-{}", state.issued);
    state.tokens.insert(token.clone());
    let ttl = state
        .apps
        .get(&installation_id)
        .map_or(0, |a| i64::try_from(a.token_ttl.as_secs()).unwrap_or(3600));
    let expires_at = time::OffsetDateTime::from_unix_timestamp(now_unix(&state) + ttl)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    let mut body = template(INSTALLATION_TOKEN);
    body["token"] = Value::from(token);
    body["expires_at"] = Value::from(expires_at);
    answer(StatusCode::CREATED, &[], &body)
}

/// RS256, signed by the App's key, `iss` the App's id (a string), and GitHub's
/// bounds at `now` (the fake's clock): issued in the past, expiring in the future but at most
/// 10 minutes ahead.
fn jwt_accepted(app: &super::state::App, jwt: &str, now: i64) -> bool {
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_required_spec_claims(&["exp", "iat", "iss"]);
    // Times are checked below against the fake's clock, not the host's.
    validation.validate_exp = false;
    let Ok(data) = jsonwebtoken::decode::<Value>(jwt, &app.key, &validation) else {
        return false;
    };
    let claims = data.claims;
    let iss_ok = claims["iss"].as_str() == Some(app.app_id.as_str());
    let (Some(iat), Some(exp)) = (claims["iat"].as_i64(), claims["exp"].as_i64()) else {
        return false;
    };
    iss_ok && iat <= now && now < exp && exp <= now + 600
}

pub(crate) async fn fallback(
    Extract(shared): Extract<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = prelude(&shared, &method, &uri, &headers, token_accepted) {
        return r;
    }
    answer(StatusCode::NOT_FOUND, &[], &template(NOT_FOUND))
}
