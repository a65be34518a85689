//! The merge queue as GitHub's GraphQL API reports it (`repository.mergeQueue(branch:)
//! .entries`), paginated, and the in-flight groups the decision core consumes.
//!
//! Which entries are alive (their group's speculative commit may legitimately be on the
//! channel): every state but `UNMERGEABLE`. `AWAITING_CHECKS` (checks running: the window in
//! which a candidate deploys), `MERGEABLE` (passed, waiting to merge) and `LOCKED` (being
//! merged) hold a group that may still land; `QUEUED` is waiting in the queue and has not
//! been ejected. `UNMERGEABLE` entries failed and are about to be removed, so their code must
//! not stay in production. Entries without a head commit have no group yet and are skipped.
//!
//! Group ids are `pr-<N>`: GraphQL entries carry no ref name, and `pr-<N>` is what
//! [`crate::webhook::group_id_for_head_ref`] derives from a `merge_group` webhook's
//! `gh-readonly-queue/<branch>/pr-<N>-<sha>` ref, so both sources name a group alike. Entries
//! sharing a head commit (one batched group) become one [`Group`] named after the
//! last-positioned of them, with every PR listed.
//!
//! Must never: report an empty queue when the queue could not be read (a missing repository
//! or merge queue is an error), or loop forever on a misbehaving `pageInfo`.

use super::documents::MERGE_QUEUE;
use super::error::GithubError;
use super::{check_name, GithubClient};
use mainline_core::CommitId;
pub use mainline_core::Group;
use reqwest::Method;
use serde::Deserialize;
use std::collections::HashSet;

/// Entries asked for per page (GraphQL connections allow at most 100).
pub const PAGE_SIZE: u32 = 100;
/// Pages read before giving up (10,000 entries; real queues hold a few dozen).
const MAX_PAGES: u32 = 100;

/// GitHub's `MergeQueueEntryState`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EntryState {
    Queued,
    AwaitingChecks,
    Mergeable,
    Unmergeable,
    Locked,
    /// A state GitHub added after this was written; treated as alive (not ejected).
    Other(String),
}

impl EntryState {
    fn parse(s: &str) -> EntryState {
        match s {
            "QUEUED" => EntryState::Queued,
            "AWAITING_CHECKS" => EntryState::AwaitingChecks,
            "MERGEABLE" => EntryState::Mergeable,
            "UNMERGEABLE" => EntryState::Unmergeable,
            "LOCKED" => EntryState::Locked,
            other => EntryState::Other(other.to_owned()),
        }
    }

    /// Whether the entry's group is still in flight (see the module docs).
    pub fn is_alive(&self) -> bool {
        !matches!(self, EntryState::Unmergeable)
    }
}

/// One merge queue entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEntry {
    /// 1-based position in the queue.
    pub position: u32,
    pub state: EntryState,
    /// The speculative merge commit; `None` until GitHub created the entry's group.
    pub head: Option<CommitId>,
    /// The commit the group is built on; `None` until GitHub created the entry's group.
    pub base: Option<CommitId>,
    /// The pull request's number; `None` if GitHub did not return it.
    pub pr: Option<u64>,
}

#[derive(Deserialize)]
struct GraphqlAnswer {
    data: Option<Data>,
    #[serde(default)]
    errors: Vec<GraphqlError>,
}

#[derive(Deserialize)]
struct GraphqlError {
    message: String,
}

#[derive(Deserialize)]
struct Data {
    repository: Option<Repository>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Repository {
    merge_queue: Option<MergeQueue>,
}

#[derive(Deserialize)]
struct MergeQueue {
    entries: Connection,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Connection {
    page_info: PageInfo,
    nodes: Vec<Option<Node>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageInfo {
    has_next_page: bool,
    end_cursor: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Node {
    position: u32,
    state: String,
    head_commit: Option<Oid>,
    base_commit: Option<Oid>,
    pull_request: Option<Number>,
}

#[derive(Deserialize)]
struct Oid {
    oid: String,
}

#[derive(Deserialize)]
struct Number {
    number: u64,
}

impl GithubClient {
    /// Every entry of the merge queue of `owner/repo` on `branch`, in position order.
    pub fn merge_queue(
        &self,
        owner: &str,
        repo: &str,
        branch: &str,
    ) -> Result<Vec<QueueEntry>, GithubError> {
        check_name("owner", owner)?;
        check_name("repository", repo)?;
        let url = self.graphql_url().to_owned();
        let mut entries = Vec::new();
        let mut after: Option<String> = None;
        let mut seen_cursors = HashSet::new();
        for _ in 0..MAX_PAGES {
            let body = serde_json::json!({
                "query": MERGE_QUEUE,
                "variables": {
                    "owner": owner, "name": repo, "branch": branch,
                    "first": PAGE_SIZE, "after": after,
                },
            });
            let body = serde_json::to_vec(&body).expect("a JSON value serialises");
            let answer = self.request(Method::POST, &url, Some(body), true)?;
            let answer: GraphqlAnswer =
                serde_json::from_slice(&answer).map_err(|e| GithubError::Decode {
                    url: url.clone(),
                    what: format!("merge queue page: {e}"),
                })?;
            if !answer.errors.is_empty() {
                return Err(GithubError::Graphql {
                    url,
                    messages: answer
                        .errors
                        .iter()
                        .map(|e| self.redact(&e.message))
                        .collect(),
                });
            }
            let repository = answer
                .data
                .ok_or_else(|| GithubError::Decode {
                    url: url.clone(),
                    what: "neither `data` nor `errors`".to_owned(),
                })?
                .repository
                .ok_or_else(|| GithubError::RepositoryNotFound {
                    owner: owner.to_owned(),
                    repo: repo.to_owned(),
                })?;
            let queue = repository
                .merge_queue
                .ok_or_else(|| GithubError::NoMergeQueue {
                    owner: owner.to_owned(),
                    repo: repo.to_owned(),
                    branch: branch.to_owned(),
                })?;
            for node in queue.entries.nodes.into_iter().flatten() {
                entries.push(entry(&url, node)?);
            }
            let page = queue.entries.page_info;
            match (page.has_next_page, page.end_cursor) {
                (true, Some(cursor)) if seen_cursors.insert(cursor.clone()) => after = Some(cursor),
                (true, _) => {
                    return Err(GithubError::Decode {
                        url,
                        what: "`hasNextPage` without a new `endCursor`".to_owned(),
                    })
                }
                (false, _) => {
                    entries.sort_by_key(|e| e.position);
                    return Ok(entries);
                }
            }
        }
        Err(GithubError::Pagination {
            owner: owner.to_owned(),
            repo: repo.to_owned(),
            branch: branch.to_owned(),
            pages: MAX_PAGES,
        })
    }

    /// The groups in flight in the merge queue of `owner/repo` on `branch`, in queue order,
    /// as the decision core consumes them (see the module docs for which entries count).
    pub fn in_flight_groups(
        &self,
        owner: &str,
        repo: &str,
        branch: &str,
    ) -> Result<Vec<Group>, GithubError> {
        Ok(groups_of(&self.merge_queue(owner, repo, branch)?))
    }
}

/// Alive entries with a head commit, merged by head commit, in position order.
pub(crate) fn groups_of(entries: &[QueueEntry]) -> Vec<Group> {
    let mut groups: Vec<(Group, u32)> = Vec::new();
    let mut sorted: Vec<&QueueEntry> = entries.iter().collect();
    sorted.sort_by_key(|e| e.position);
    for e in sorted.into_iter().filter(|e| e.state.is_alive()) {
        let Some(head) = &e.head else { continue };
        let index = match groups.iter().position(|(g, _)| &g.head == head) {
            Some(i) => i,
            None => {
                let group = Group {
                    id: String::new(),
                    head: head.clone(),
                    prs: Vec::new(),
                    expires_at: None,
                };
                groups.push((group, e.position));
                groups.len() - 1
            }
        };
        let (group, _) = &mut groups[index];
        if let Some(pr) = e.pr {
            group.prs.push(pr);
            group.id = format!("pr-{pr}");
        }
    }
    groups
        .into_iter()
        .map(|(mut g, position)| {
            if g.id.is_empty() {
                // No PR number came back: name the group by its position, which is unique.
                g.id = format!("position-{position}");
            }
            g
        })
        .collect()
}

fn entry(url: &str, node: Node) -> Result<QueueEntry, GithubError> {
    let commit = |field: &str, oid: Option<Oid>| -> Result<Option<CommitId>, GithubError> {
        oid.map(|o| {
            o.oid.parse().map_err(|_| GithubError::Decode {
                url: url.to_owned(),
                what: format!(
                    "entry {} `{field}.oid` {:?} is not a commit id",
                    node.position, o.oid
                ),
            })
        })
        .transpose()
    };
    Ok(QueueEntry {
        position: node.position,
        state: EntryState::parse(&node.state),
        head: commit("headCommit", node.head_commit)?,
        base: commit("baseCommit", node.base_commit)?,
        pr: node.pull_request.map(|p| p.number),
    })
}
