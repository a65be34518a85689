//! Every GraphQL document this crate can send, each kept in its own file under `graphql/` and
//! compiled in with `include_str!`.
//!
//! Why files: the same bytes are read by the schema checker in `tests/github-schemas/`, which
//! validates every `graphql/*.graphql` against GitHub's published schema
//! (`@octokit/graphql-schema`), and by the fake GitHub, which answers only a query that is
//! byte-identical to one of [`GRAPHQL_DOCUMENTS`]. A test (`tests/graphql_documents.rs`)
//! checks that this list and the directory name the same files.
//!
//! Must never: build a query string at run time (with `format!` or concatenation). A query
//! that is not one of these documents was never validated, and the fake refuses it.

/// A GraphQL document mainline sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraphqlDocument {
    /// The file name under `crates/mainline-github/graphql/`.
    pub file: &'static str,
    /// The document, byte for byte as sent.
    pub text: &'static str,
}

/// The merge queue's entries, one page at a time ([`crate::GithubClient::merge_queue`]).
pub(crate) const MERGE_QUEUE: &str = include_str!("../../graphql/merge_queue.graphql");

/// Every document this crate can send.
pub const GRAPHQL_DOCUMENTS: &[GraphqlDocument] = &[GraphqlDocument {
    file: "merge_queue.graphql",
    text: MERGE_QUEUE,
}];

/// Whether `query` is byte-identical to one of [`GRAPHQL_DOCUMENTS`].
pub fn is_known_document(query: &str) -> bool {
    GRAPHQL_DOCUMENTS.iter().any(|d| d.text == query)
}
