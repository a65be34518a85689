//! The fake GitHub's in-memory world: accepted tokens, registered Apps, merge queues, a
//! commit graph for comparisons, scripted failures, and a log of the requests it served.
//!
//! Invariant: comparisons are computed from the commit graph the test declared (reachability
//! over parents), never from a canned answer, so `is_ancestor` is checked against a model.

use crate::clock::Clock;
use jsonwebtoken::DecodingKey;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// A misbehaviour the fake performs on the next request(s) instead of answering normally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// 429 with `retry-after: <secs>`.
    TooManyRequests { retry_after_secs: u64 },
    /// 403 with `x-ratelimit-remaining: 0` and `x-ratelimit-reset: <reset_at_unix>`.
    RateLimitReset { reset_at_unix: i64 },
    /// 429 with neither `retry-after` nor rate-limit headers.
    TooManyRequestsBare,
    /// 403 whose message names a secondary rate limit, without headers.
    SecondaryRateLimit,
    /// 403 with a permission message and no rate-limit headers.
    Forbidden,
    /// 500.
    ServerError,
    /// 200 with a GraphQL `errors` array carrying `message`.
    GraphqlErrors { message: String },
    /// 200 with a GraphQL `RATE_LIMITED` error, `x-ratelimit-remaining: 0` and the reset.
    GraphqlRateLimited { reset_at_unix: i64 },
}

/// One merge queue entry as the test declares it; its position is its index + 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeEntry {
    /// A `MergeQueueEntryState` name, e.g. `AWAITING_CHECKS`.
    pub state: String,
    /// `headCommit.oid`; `None` answers `headCommit: null`.
    pub head: Option<String>,
    /// `baseCommit.oid`; `None` answers `baseCommit: null`.
    pub base: Option<String>,
    /// `pullRequest.number`; `None` answers `pullRequest: null`.
    pub pr: Option<u64>,
}

impl FakeEntry {
    /// An entry for PR `pr` in `state` with head and base commits.
    pub fn new(pr: u64, state: &str, head: &str, base: &str) -> FakeEntry {
        FakeEntry {
            state: state.to_owned(),
            head: Some(head.to_owned()),
            base: Some(base.to_owned()),
            pr: Some(pr),
        }
    }
}

/// A request the fake served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Whether the `Authorization` header was accepted.
    pub authorized: bool,
}

/// A request the fake served and its answer, as they went over the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query string without `?`; empty when there is none.
    pub query: String,
    /// The request body (empty for none).
    pub request_body: String,
    pub status: u16,
    pub response_body: String,
}

pub(crate) struct App {
    pub(crate) app_id: String,
    pub(crate) key: DecodingKey,
    pub(crate) token_ttl: Duration,
}

pub(crate) struct State {
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) tokens: HashSet<String>,
    pub(crate) apps: HashMap<u64, App>,
    pub(crate) issued: u64,
    pub(crate) repos: HashSet<(String, String)>,
    pub(crate) queues: HashMap<(String, String, String), Vec<FakeEntry>>,
    pub(crate) parents: HashMap<String, Vec<String>>,
    pub(crate) failures: VecDeque<Failure>,
    pub(crate) log: Vec<Recorded>,
    pub(crate) exchanges: Vec<Exchange>,
}

/// A comparison computed from the commit graph.
pub(crate) struct Compared {
    pub(crate) status: &'static str,
    pub(crate) ahead_by: usize,
    pub(crate) behind_by: usize,
    pub(crate) merge_base: String,
}

impl State {
    pub(crate) fn new(clock: Arc<dyn Clock>) -> State {
        State {
            clock,
            tokens: HashSet::new(),
            apps: HashMap::new(),
            issued: 0,
            repos: HashSet::new(),
            queues: HashMap::new(),
            parents: HashMap::new(),
            failures: VecDeque::new(),
            log: Vec::new(),
            exchanges: Vec::new(),
        }
    }

    /// `commit` and all its ancestors, or `None` if `commit` is unknown.
    fn ancestors(&self, commit: &str) -> Option<BTreeSet<String>> {
        if !self.parents.contains_key(commit) {
            return None;
        }
        let mut seen = BTreeSet::new();
        let mut todo = vec![commit.to_owned()];
        while let Some(c) = todo.pop() {
            if seen.insert(c.clone()) {
                todo.extend(self.parents.get(&c).into_iter().flatten().cloned());
            }
        }
        Some(seen)
    }

    /// Compare `base...head` as GitHub does; `Err(message)` when a commit is unknown or the
    /// two share no ancestor (GitHub answers 404 for both).
    pub(crate) fn compare(&self, base: &str, head: &str) -> Result<Compared, String> {
        let of_base = self.ancestors(base).ok_or("Not Found")?;
        let of_head = self.ancestors(head).ok_or("Not Found")?;
        let common: BTreeSet<&String> = of_base.intersection(&of_head).collect();
        // The best common ancestor: one that no other common ancestor descends from.
        let merge_base = common
            .iter()
            .find(|c| {
                common.iter().all(|other| {
                    other == *c
                        || !self
                            .ancestors(other)
                            .is_some_and(|anc| anc.contains(c.as_str()))
                })
            })
            .ok_or_else(|| format!("No common ancestor between {base} and {head}."))?;
        let ahead_by = of_head.difference(&of_base).count();
        let behind_by = of_base.difference(&of_head).count();
        let status = match (ahead_by, behind_by) {
            (0, 0) => "identical",
            (_, 0) => "ahead",
            (0, _) => "behind",
            _ => "diverged",
        };
        Ok(Compared {
            status,
            ahead_by,
            behind_by,
            merge_base: (*merge_base).clone(),
        })
    }
}
