//! The three reads we send ourselves, without credentials, while a registry has not asked for
//! any: `HEAD` and `GET` of a manifest, and a page of the tag list.
//!
//! Why not oci-client: its manifest and tag calls record an auth entry for the registry, and
//! from then on every request (its blob calls too) is preceded by a `GET /v2/` ping to look
//! for a token — which an open registry never hands out, so the ping repeats forever. Going
//! around it for these three reads keeps `resolve` at one `HEAD` on an open registry. As
//! soon as any request is answered 401/403 the store switches to oci-client's
//! authenticated path for good (see the `registry` module).
//!
//! Must never: send credentials (this path has none); accept manifest bytes whose digest
//! differs from the `Docker-Content-Digest` header or from the digest asked for (checked by
//! the caller on what [`Direct::get_manifest`] returns).

use super::failure::Failure;
use crate::media::ACCEPTED_MANIFEST_TYPES;
use reqwest::header::{HeaderMap, ACCEPT, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Client, Response};
use std::time::Duration;

const DIGEST_HEADER: &str = "Docker-Content-Digest";

/// A manifest as the registry answered it.
pub(crate) struct Answer {
    pub(crate) bytes: bytes::Bytes,
    pub(crate) content_type: Option<String>,
    pub(crate) digest_header: Option<String>,
}

pub(crate) struct Direct {
    http: Client,
    /// `scheme://host/v2/repository`
    base: String,
    /// The token endpoint a 401 named (`WWW-Authenticate: Bearer realm=...`), without its
    /// query: named in the error when a request does not answer before the deadline.
    realm: std::sync::Mutex<Option<String>>,
}

impl Direct {
    pub(crate) fn new(http: Client, scheme: &str, registry: &str, repository: &str) -> Direct {
        Direct {
            http,
            base: format!("{scheme}://{registry}/v2/{repository}"),
            realm: std::sync::Mutex::new(None),
        }
    }

    /// The token endpoint the registry named in a 401, if one was seen.
    pub(crate) fn realm(&self) -> Option<String> {
        self.realm.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Success passes through, 404 is `None`, anything else is a classified failure (a 401
    /// also tells us the token endpoint).
    async fn check(&self, response: Response) -> Result<Option<Response>, Failure> {
        if response.status().as_u16() == 401 {
            if let Some(realm) = header(response.headers(), "www-authenticate")
                .as_deref()
                .and_then(bearer_realm)
            {
                *self.realm.lock().unwrap_or_else(|p| p.into_inner()) = Some(realm);
            }
        }
        check(response).await
    }

    /// The digest `reference` (a tag or digest) names, or `None` when absent. One `HEAD`,
    /// plus a `GET` only if the registry does not report the digest.
    pub(crate) async fn head_manifest(&self, reference: &str) -> Result<Option<String>, Failure> {
        let url = format!("{}/manifests/{reference}", self.base);
        let response = self
            .http
            .head(&url)
            .header(ACCEPT, ACCEPTED_MANIFEST_TYPES.join(", "))
            .send()
            .await
            .map_err(Failure::from_reqwest)?;
        let Some(response) = self.check(response).await? else {
            return Ok(None);
        };
        if let Some(digest) = header(response.headers(), DIGEST_HEADER) {
            return Ok(Some(digest));
        }
        Ok(self
            .get_manifest(reference)
            .await?
            .map(|answer| mainline_core::Digest::of(&answer.bytes).to_string()))
    }

    /// The manifest `reference` names, as answered, or `None` when absent.
    pub(crate) async fn get_manifest(&self, reference: &str) -> Result<Option<Answer>, Failure> {
        let url = format!("{}/manifests/{reference}", self.base);
        let response = self
            .http
            .get(&url)
            .header(ACCEPT, ACCEPTED_MANIFEST_TYPES.join(", "))
            .send()
            .await
            .map_err(Failure::from_reqwest)?;
        let Some(response) = self.check(response).await? else {
            return Ok(None);
        };
        let content_type = header(response.headers(), CONTENT_TYPE.as_str())
            .map(|v| v.split(';').next().unwrap_or_default().trim().to_owned());
        let digest_header = header(response.headers(), DIGEST_HEADER);
        let bytes = response.bytes().await.map_err(Failure::from_reqwest)?;
        Ok(Some(Answer {
            bytes,
            content_type,
            digest_header,
        }))
    }

    /// One page of tags (`n` at most, after `last`); an unknown repository has none.
    pub(crate) async fn tags_page(
        &self,
        n: usize,
        last: Option<&str>,
    ) -> Result<Vec<String>, Failure> {
        let url = format!("{}/tags/list", self.base);
        let mut request = self.http.get(&url).query(&[("n", n.to_string())]);
        if let Some(last) = last {
            request = request.query(&[("last", last)]);
        }
        let response = request.send().await.map_err(Failure::from_reqwest)?;
        let Some(response) = self.check(response).await? else {
            return Ok(Vec::new());
        };
        let bytes = response.bytes().await.map_err(Failure::from_reqwest)?;
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let page: Page = serde_json::from_slice(&bytes).map_err(|e| Failure::Protocol {
            detail: format!("the tag list is not valid JSON: {e}"),
        })?;
        Ok(page.tags.unwrap_or_default())
    }
}

/// Success passes through, 404 is `None`, anything else is a classified failure.
async fn check(response: Response) -> Result<Option<Response>, Failure> {
    let status = response.status();
    if status.is_success() {
        return Ok(Some(response));
    }
    if status.as_u16() == 404 {
        return Ok(None);
    }
    let retry_after = header(response.headers(), RETRY_AFTER.as_str())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    // The body is only a hint for the message; a broken body must not hide the status.
    let body = response.text().await.unwrap_or_default();
    Err(Failure::from_status(status.as_u16(), retry_after, &body))
}

/// `realm` of a `Bearer realm="…",service="…"` challenge, without query or credentials.
fn bearer_realm(challenge: &str) -> Option<String> {
    let rest = challenge.trim().strip_prefix("Bearer")?.trim_start();
    let start = rest.find("realm=\"")? + "realm=\"".len();
    let realm = &rest[start..];
    let realm = &realm[..realm.find('"')?];
    let realm = realm.split(['?', '#']).next().unwrap_or_default();
    let realm = match realm.split_once("://") {
        Some((scheme, after)) => {
            let (authority, path) = after.split_at(after.find('/').unwrap_or(after.len()));
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            format!("{scheme}://{host}{path}")
        }
        None => realm.to_owned(),
    };
    (!realm.is_empty()).then_some(realm)
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}
