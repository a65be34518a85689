//! A local fake GitHub for tests (feature `fake`): axum on `127.0.0.1:0`, on a background
//! thread with its own tokio runtime, serving the three endpoints mainline calls
//! (`POST /graphql` for the merge queue, `GET /repos/{o}/{r}/compare/{base}...{head}`,
//! `POST /app/installations/{id}/access_tokens`) from in-memory state a test sets, checking
//! the `Authorization` header, and misbehaving on demand ([`Failure`]).
//!
//! GitHub's published schemas are the judge of this fake, not the client beside it (issue 16):
//! - It answers only a GraphQL query byte-identical to one of [`crate::GRAPHQL_DOCUMENTS`]; any
//!   other text gets a GraphQL error, as an invalid query gets at GitHub. Those documents are
//!   the files in `graphql/`, which `tests/github-schemas` validates against
//!   `@octokit/graphql-schema` (in `npm test` there, and in `cargo test` through
//!   `tests/github_schemas.rs`). Byte identity was chosen over running a validator in the
//!   fake: it needs no Node.js per request, it cannot disagree with the checker about what was
//!   validated, and a misspelt field therefore fails the schema check, never silently passes
//!   through a lenient fake.
//! - Every exchange is kept ([`FakeGithub::exchanges`]); `tests/github_schemas.rs` drives
//!   every client call through the fake and has the checker hold each request against GitHub's
//!   REST description (operation, query parameters) and each answer against the operation's
//!   response schema, GraphQL answers by executing the query over GitHub's schema.
//!
//! Invariants: it listens on loopback only; every answer is built from the templates in
//! `fixtures/api/`, which validate against GitHub's descriptions; scripted failures are
//! consumed one per request, in order.
//! Must never: be compiled into a release build (it exists only behind the `fake` feature);
//! answer a GraphQL document the schema checker did not validate.

mod record;
mod routes;
mod state;

pub use crate::clock::ManualClock;
pub use state::{Exchange, Failure, FakeEntry, Recorded};

use crate::clock::{Clock, SystemClock};
use crate::webhook;
use axum::routing::{get, post};
use axum::Router;
use jsonwebtoken::DecodingKey;
use routes::Shared;
use state::{App, State};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The throwaway test App key in `fixtures/keys/` (never a real App's key).
pub const TEST_APP_PRIVATE_KEY: &str =
    include_str!("../../fixtures/keys/throwaway-test-app-key.pem");
/// The public half of [`TEST_APP_PRIVATE_KEY`].
pub const TEST_APP_PUBLIC_KEY: &str =
    include_str!("../../fixtures/keys/throwaway-test-app-key.pub.pem");

/// A running fake GitHub. Dropping it stops the server.
pub struct FakeGithub {
    addr: SocketAddr,
    state: Shared,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl std::fmt::Debug for FakeGithub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeGithub")
            .field("addr", &self.addr)
            .finish()
    }
}

impl FakeGithub {
    /// Start a fake on a free loopback port, on the real clock.
    pub fn start() -> FakeGithub {
        FakeGithub::start_with_clock(Arc::new(SystemClock))
    }

    /// Start a fake whose notion of time (JWT checks, token expiry) is `clock`; share a
    /// [`ManualClock`] with the client to test expiry without waiting.
    pub fn start_with_clock(clock: Arc<dyn Clock>) -> FakeGithub {
        let state: Shared = Arc::new(Mutex::new(State::new(clock)));
        let app = Router::new()
            .route("/graphql", post(routes::graphql))
            .route("/repos/{owner}/{repo}/compare/{spec}", get(routes::compare))
            .route(
                "/app/installations/{id}/access_tokens",
                post(routes::access_token),
            )
            .fallback(routes::fallback)
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                record::record,
            ))
            .with_state(state.clone());
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("fake-github".to_owned())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a current-thread tokio runtime builds");
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                        .await
                        .expect("binding 127.0.0.1:0 for the fake GitHub");
                    let addr = listener
                        .local_addr()
                        .expect("a bound socket has an address");
                    addr_tx
                        .send(addr)
                        .expect("the starting thread waits for the address");
                    let stop = async {
                        let _ = shutdown_rx.await;
                    };
                    axum::serve(listener, app)
                        .with_graceful_shutdown(stop)
                        .await
                        .expect("the fake GitHub serves until shut down");
                });
            })
            .expect("spawning the fake GitHub thread");
        let addr = addr_rx
            .recv()
            .expect("the fake GitHub thread reports its address");
        FakeGithub {
            addr,
            state,
            shutdown: Some(shutdown_tx),
        }
    }

    /// The base URL, e.g. `http://127.0.0.1:43117` (use as `api_url`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The GraphQL endpoint (use as `graphql_url`).
    pub fn graphql_url(&self) -> String {
        format!("{}/graphql", self.url())
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Accept `token` as a bearer token.
    pub fn accept_token(&self, token: &str) {
        self.with(|s| s.tokens.insert(token.to_owned()));
    }

    /// Register a GitHub App installation whose JWTs verify with `public_key_pem` and carry
    /// `iss` = `app_id`; its installation tokens live `token_ttl`.
    pub fn register_app(
        &self,
        app_id: &str,
        installation_id: u64,
        public_key_pem: &str,
        token_ttl: Duration,
    ) {
        let key = DecodingKey::from_rsa_pem(public_key_pem.as_bytes())
            .expect("the test passes a PEM RSA public key");
        self.with(|s| {
            s.apps.insert(
                installation_id,
                App {
                    app_id: app_id.to_owned(),
                    key,
                    token_ttl,
                },
            )
        });
    }

    /// Declare a repository (unknown ones answer "not found").
    pub fn add_repo(&self, owner: &str, repo: &str) {
        self.with(|s| s.repos.insert((owner.to_owned(), repo.to_owned())));
    }

    /// Set the merge queue of `owner/repo` on `branch` (declaring the repository).
    pub fn set_queue(&self, owner: &str, repo: &str, branch: &str, entries: Vec<FakeEntry>) {
        self.add_repo(owner, repo);
        self.with(|s| {
            s.queues.insert(
                (owner.to_owned(), repo.to_owned(), branch.to_owned()),
                entries,
            )
        });
    }

    /// Add `commit` with `parents` to the commit graph comparisons are computed from.
    pub fn add_commit(&self, commit: &str, parents: &[&str]) {
        self.with(|s| {
            s.parents.insert(
                commit.to_owned(),
                parents.iter().map(|p| (*p).to_owned()).collect(),
            )
        });
    }

    /// Perform `failure` on the next `times` requests (after any already scripted).
    pub fn fail_next(&self, failure: Failure, times: usize) {
        self.with(|s| s.failures.extend(std::iter::repeat_n(failure, times)));
    }

    /// Every request served so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.with(|s| s.log.clone())
    }

    /// Every exchange served so far (request and answer as sent), in order.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.with(|s| s.exchanges.clone())
    }

    /// How many installation tokens were issued.
    pub fn tokens_issued(&self) -> u64 {
        self.with(|s| s.issued)
    }

    /// Revoke every installation token issued so far (they answer 401 from now on).
    pub fn revoke_installation_tokens(&self) {
        self.with(|s| {
            s.tokens
                .retain(|t| !t.starts_with("fake-installation-token-"))
        });
    }
}

impl Drop for FakeGithub {
    fn drop(&mut self) {
        if let Some(stop) = self.shutdown.take() {
            // The server thread ends once its connections close; it is not joined, so a
            // client holding a keep-alive connection cannot hang the test.
            let _ = stop.send(());
        }
    }
}

/// A signed webhook delivery, as GitHub would POST it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// `X-GitHub-Event`.
    pub event: String,
    /// `X-GitHub-Delivery`.
    pub id: String,
    /// `X-Hub-Signature-256`.
    pub signature: String,
    pub body: Vec<u8>,
}

impl Delivery {
    /// Sign `body` for `event` with `secret`.
    pub fn new(secret: &[u8], event: &str, id: &str, body: &[u8]) -> Delivery {
        Delivery {
            event: event.to_owned(),
            id: id.to_owned(),
            signature: webhook::sign(secret, body),
            body: body.to_vec(),
        }
    }

    /// The headers GitHub sends with it (plus the JSON content type).
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        vec![
            (webhook::EVENT_HEADER, self.event.clone()),
            (webhook::DELIVERY_HEADER, self.id.clone()),
            (webhook::SIGNATURE_HEADER, self.signature.clone()),
            ("Content-Type", "application/json".to_owned()),
        ]
    }
}

/// `sign(secret, body)`: the `X-Hub-Signature-256` value for `body`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    webhook::sign(secret, body)
}
