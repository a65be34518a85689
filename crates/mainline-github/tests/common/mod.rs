//! Helpers shared by the integration tests: fixture loading, commit ids, and a client wired
//! to a fake GitHub.
#![allow(dead_code)]

use mainline_github::fake::FakeGithub;
use mainline_github::{Clock, GithubClient, GithubConfig, Token};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub const OWNER: &str = "octocat";
pub const REPO: &str = "Hello-World";
pub const TOKEN: &str = "test-token-5f0c1e7d9a";

/// The text of `fixtures/<path>`.
pub fn fixture(path: &str) -> String {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("reading {}: {e}", full.display()))
}

/// A distinct, valid 40-hex commit id for `n`.
pub fn commit(n: u32) -> String {
    format!("{n:040x}")
}

/// Settings pointing at `fake`, with fast backoff.
pub fn config(fake: &FakeGithub, token: Token, clock: Arc<dyn Clock>) -> GithubConfig {
    let mut config = GithubConfig::new(token);
    config.api_url = fake.url();
    config.graphql_url = fake.graphql_url();
    config.clock = clock;
    config.retry_backoff = Duration::from_millis(1);
    config.timeout = Duration::from_secs(10);
    config
}

/// A client with the plain token [`TOKEN`], accepted by `fake`.
pub fn client(fake: &FakeGithub, clock: Arc<dyn Clock>) -> GithubClient {
    fake.accept_token(TOKEN);
    GithubClient::new(config(fake, Token::plain(TOKEN), clock)).expect("valid test settings")
}

pub mod schemas;
