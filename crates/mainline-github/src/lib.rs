//! The GitHub side of mainline: verifying and parsing webhook deliveries ([`webhook`]), and
//! a small blocking client for the facts GitHub holds ([`GithubClient`]): the merge queue's
//! in-flight groups and commit ancestry. With the `fake` feature, [`fake`] serves a local fake
//! GitHub for tests.
//!
//! Everything leaves this crate in mainline's own types (`CommitId`, [`Group`]): no GitHub
//! SDK type crosses the boundary, and the decision core never sees a JSON value.
//!
//! Invariants: a webhook body is acted on only after its HMAC verified; a fact GitHub could
//! not give is an error, never a guess (an unreadable queue is not an empty queue); every wait
//! and retry is bounded. Must never: log, print or put in an error a token, a JWT, a private
//! key, a webhook secret or an `Authorization` header; run an HTTP server outside `fake`.

mod api;
pub mod clock;
#[cfg(feature = "fake")]
pub mod fake;
pub mod webhook;

pub use api::{
    is_known_document, Compare, CompareStatus, EntryState, ErrorKind, GithubClient, GithubConfig,
    GithubError, GraphqlDocument, Group, QueueEntry, Secret, Token, API_VERSION, GRAPHQL_DOCUMENTS,
    PAGE_SIZE, REFRESH_MARGIN, TOKEN_ENV,
};
pub use clock::{Clock, SystemClock};
