//! The OCI distribution registry store (`oci://HOST[:PORT]/REPO`), on `oci-client`.
//!
//! oci-client speaks the protocol (blob and manifest calls, basic auth and the bearer-token
//! challenge, digest checks on what it downloads). What this module adds, because oci-client
//! lacks it:
//! - **retries** with exponential backoff on connection errors, timeouts, 5xx and 429
//!   (`Retry-After` is honoured where we can see it: on our own requests; oci-client hides
//!   response headers), never on another 4xx ([`retry`]);
//! - **credentials** from docker's `config.json` and its helpers ([`auth`]);
//! - **streaming uploads from a file** with bounded memory, progress, and a size and digest
//!   check before the last byte leaves ([`upload`]), pushed monolithically (POST + PUT);
//! - **no per-request ping on open registries**: until a registry answers 401/403 we never
//!   hand oci-client any auth, and the three reads oci-client would ping for go out through
//!   our own reqwest client ([`direct`]); after a 401/403 the store resolves credentials once
//!   and uses oci-client's authenticated path, whose tokens it caches;
//! - **typed, actionable errors** ([`failure`]) and raw manifests with their media type kept
//!   (oci-client's high-level `push` re-encodes manifests and re-uploads every blob, so we do
//!   not use it).
//!
//! The store owns a current-thread tokio runtime and blocks on it: the [`Store`] trait is
//! synchronous.
//!
//! Must never: print or log a credential; retry a 4xx other than 429 or an integrity failure;
//! report success for a manifest whose returned digest differs from the bytes we sent.

mod auth;
mod direct;
mod failure;
mod open;
mod ops;
mod retry;
mod upload;

pub use auth::{Credentials, PASSWORD_ENV, USERNAME_ENV};
pub use failure::first_stall;
pub use open::RegistryOptions;

use crate::{ErrorKind, Location, ReferenceTarget, Store, StoreError, StoredManifest};
use failure::{Context, Failure};
use futures_util::future::LocalBoxFuture;
use mainline_core::{Digest, Tag};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference as OciReference};
use retry::Policy;
use std::cell::RefCell;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Tags per page when listing.
const TAGS_PAGE: usize = 1000;

/// Whether oci-client holds auth for this registry (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// No auth handed to oci-client; manifest and tag reads go through [`direct`].
    Open,
    /// oci-client holds the credentials (or anonymous, for a token-issuing registry).
    Authenticated,
}

/// A repository on an OCI distribution registry.
pub struct RegistryStore {
    location: Location,
    registry: String,
    repository: String,
    options: RegistryOptions,
    runtime: tokio::runtime::Runtime,
    client: Client,
    direct: direct::Direct,
    authenticated: AtomicBool,
    /// What oci-client's auth-taking calls get; set when switching to `Authenticated`.
    auth: Mutex<RegistryAuth>,
}

impl std::fmt::Debug for RegistryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryStore")
            .field("location", &self.location)
            .field("authenticated", &self.authenticated.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl RegistryStore {
    /// Has this store switched to authenticated requests (after explicit credentials or a
    /// 401/403)? Exposed for diagnostics and tests.
    pub fn is_authenticated(&self) -> bool {
        self.mode() == Mode::Authenticated
    }

    fn mode(&self) -> Mode {
        if self.authenticated.load(Ordering::Acquire) {
            Mode::Authenticated
        } else {
            Mode::Open
        }
    }

    fn set_auth(&self, auth: RegistryAuth) {
        let registry = self.reference_for("latest").resolve_registry().to_owned();
        self.runtime
            .block_on(self.client.store_auth_if_needed(&registry, &auth));
        *self.auth.lock().expect("the auth slot is never poisoned") = auth;
        self.authenticated.store(true, Ordering::Release);
    }

    fn current_auth(&self) -> RegistryAuth {
        self.auth
            .lock()
            .expect("the auth slot is never poisoned")
            .clone()
    }

    fn reference_for(&self, tag: &str) -> OciReference {
        OciReference::with_tag(
            self.registry.clone(),
            self.repository.clone(),
            tag.to_owned(),
        )
    }

    fn reference_to(&self, target: &ReferenceTarget) -> OciReference {
        match target {
            ReferenceTarget::Tag(tag) => self.reference_for(tag.as_str()),
            ReferenceTarget::Digest(digest) => OciReference::with_digest(
                self.registry.clone(),
                self.repository.clone(),
                digest.to_string(),
            ),
        }
    }

    fn policy(&self, small: bool) -> Policy {
        Policy {
            retries: self.options.retries,
            timeout: small.then_some(self.options.timeout),
            deadline: self.options.deadline,
        }
    }

    /// Runs one operation with retries; on a 401/403 while still open, resolves credentials
    /// (off the runtime: helpers are processes) and runs it once more, authenticated.
    fn run<'a, T>(
        &'a self,
        op: &str,
        small: bool,
        attempt: impl Fn(Mode) -> LocalBoxFuture<'a, Result<T, Failure>>,
    ) -> Result<T, StoreError> {
        self.run_fenced(op, small, &crate::NoFence, attempt)
    }

    /// [`RegistryStore::run`] with every attempt admitted (and bounded) by `fence`.
    fn run_fenced<'a, T>(
        &'a self,
        op: &str,
        small: bool,
        fence: &dyn crate::WriteFence,
        attempt: impl Fn(Mode) -> LocalBoxFuture<'a, Result<T, Failure>>,
    ) -> Result<T, StoreError> {
        let mode = self.mode();
        let policy = self.policy(small);
        let once = |mode: Mode, limit: Option<Duration>| {
            self.runtime.block_on(retry::timed(limit, attempt(mode)))
        };
        let sleep = |wait: Duration| std::thread::sleep(wait);
        let first = retry::with_fence(policy, op, fence, |limit| once(mode, limit), sleep);
        let result = match first {
            Err((Failure::Unauthorized { .. }, _)) if mode == Mode::Open => {
                let auth = match &self.options.credentials {
                    Some(credentials) => credentials.to_auth(),
                    None => auth::from_docker_config(
                        auth::docker_config_dir(self.options.docker_config_dir.as_deref())
                            .as_deref(),
                        &self.registry,
                    )?,
                };
                self.set_auth(auth);
                retry::with_fence(
                    policy,
                    op,
                    fence,
                    |limit| once(Mode::Authenticated, limit),
                    sleep,
                )
            }
            other => other,
        };
        result.map_err(|(failure, attempts)| {
            let realm = self.direct.realm();
            let ctx = Context {
                host: &self.registry,
                repository: &self.repository,
                op,
                realm: realm.as_deref(),
            };
            failure.into_store_error(&ctx, attempts)
        })
    }
}

impl Store for RegistryStore {
    fn location(&self) -> &Location {
        &self.location
    }

    fn blob_exists(&self, digest: &Digest) -> Result<bool, StoreError> {
        let reference = self.reference_for("latest");
        let op = format!("check blob {digest}");
        self.run(&op, true, |_| {
            Box::pin(async {
                self.client
                    .blob_exists(&reference, digest.as_str())
                    .await
                    .map_err(Failure::from_oci)
            })
        })
    }

    fn push_blob(
        &self,
        digest: &Digest,
        size: u64,
        path: &Path,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), StoreError> {
        let progress = RefCell::new(progress);
        let op = format!("push blob {digest} from {}", path.display());
        self.run(&op, false, |_| {
            Box::pin(self.push_blob_once(digest, size, path, &progress))
        })
    }

    fn fetch_blob(&self, digest: &Digest, out: &mut dyn Write) -> Result<u64, StoreError> {
        let out = RefCell::new(out);
        let written = RefCell::new(0u64);
        let op = format!("fetch blob {digest}");
        // A failure after bytes reached `out` is not retried: we cannot take them back.
        self.run(&op, false, |_| {
            Box::pin(self.fetch_blob_once(digest, &out, &written))
        })
    }

    fn resolve(&self, tag: &Tag) -> Result<Option<Digest>, StoreError> {
        let op = format!("resolve tag {tag}");
        self.run(&op, true, |mode| Box::pin(self.resolve_once(mode, tag)))
    }

    fn fetch_manifest(
        &self,
        target: &ReferenceTarget,
    ) -> Result<Option<StoredManifest>, StoreError> {
        let op = format!("fetch manifest {target}");
        self.run(&op, true, |mode| {
            Box::pin(self.fetch_manifest_once(mode, target))
        })
    }

    fn put_manifest(
        &self,
        tag: &Tag,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest, StoreError> {
        self.put_manifest_fenced(tag, media_type, bytes, &crate::NoFence)
    }

    fn put_manifest_fenced(
        &self,
        tag: &Tag,
        media_type: &str,
        bytes: &[u8],
        fence: &dyn crate::WriteFence,
    ) -> Result<Digest, StoreError> {
        let digest = Digest::of(bytes);
        let content_type = reqwest::header::HeaderValue::from_str(media_type).map_err(|_| {
            StoreError::new(
                ErrorKind::InvalidInput,
                format!("media type {media_type:?} is not a valid HTTP header value; use a media type such as {}", crate::OCI_MANIFEST_MEDIA_TYPE),
            )
        })?;
        let op = format!("put manifest {digest} as tag {tag}");
        self.run_fenced(&op, true, fence, |_| {
            Box::pin(self.put_manifest_once(tag, &content_type, bytes, &digest))
        })?;
        Ok(digest)
    }

    fn list_tags(&self) -> Result<Vec<Tag>, StoreError> {
        let names = self.run("list tags", true, |mode| {
            Box::pin(self.list_tags_once(mode))
        })?;
        let mut tags: Vec<Tag> = names.iter().filter_map(|t| t.parse().ok()).collect();
        tags.sort();
        tags.dedup();
        Ok(tags)
    }
}
