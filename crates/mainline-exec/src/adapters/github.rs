//! The GitHub API as a merge-queue source: a [`Repo`] wrapper that keeps every git fact of the
//! repository it wraps, but takes the in-flight groups from GitHub's GraphQL `mergeQueue`
//! (entries with their state, so a group that failed its checks stops counting as in flight
//! even while its `gh-readonly-queue/…` ref still exists), and answers ancestry from the REST
//! compare endpoint when the local object database lacks one of the two commits.
//!
//! Invariants: the API's answer replaces the git-ref queue only when it was read; when the API
//! cannot be read the wrapper falls back to the git refs GitHub itself creates for in-flight
//! groups (never to an empty queue), and records why in [`GithubQueue::last_error`] so the
//! guard shows it. Ancestry is asked from GitHub only for commits that are not local; a local
//! pair is always answered by git.
//! Must never: call the blocking client from an async task (the executor runs on a blocking
//! thread), or turn an API failure into a fact ("not in flight", "not an ancestor").

use crate::channel::ports::{QueueRef, RemoteView, Repo, RepoError, RepoWrapper};
use mainline_core::CommitId;
use mainline_github::{ErrorKind, GithubClient, GithubError};
use std::sync::{Arc, Mutex};

/// `owner/name` of a GitHub repository, validated.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RepoName {
    pub owner: String,
    pub name: String,
}

impl RepoName {
    /// Parse `owner/name`; `None` when it is not of that shape.
    pub fn parse(s: &str) -> Option<RepoName> {
        let (owner, name) = s.trim().split_once('/')?;
        let ok = |p: &str| {
            !p.is_empty()
                && p.len() <= 100
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        };
        (ok(owner) && ok(name)).then(|| RepoName {
            owner: owner.to_owned(),
            name: name.strip_suffix(".git").unwrap_or(name).to_owned(),
        })
    }

    /// The repository a GitHub git URL names (`https://github.com/o/r(.git)`,
    /// `git@github.com:o/r.git`, `ssh://git@github.com/o/r.git`); `None` for any other host.
    pub fn from_git_url(url: &str) -> Option<RepoName> {
        let rest = if let Some((_, rest)) = url.split_once("://") {
            let (host, path) = rest.split_once('/')?;
            let host = host.rsplit('@').next()?;
            (host.eq_ignore_ascii_case("github.com")).then_some(path)?
        } else {
            let (userhost, path) = url.split_once(':')?;
            let host = userhost.rsplit('@').next()?;
            (host.eq_ignore_ascii_case("github.com")).then_some(path)?
        };
        RepoName::parse(rest.trim_end_matches('/'))
    }

    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }
}

/// The merge queue of one repository, read through a shared client.
pub struct GithubQueue {
    pub client: Arc<GithubClient>,
    pub repo: RepoName,
    last_error: Mutex<Option<String>>,
}

impl GithubQueue {
    pub fn new(client: Arc<GithubClient>, repo: RepoName) -> GithubQueue {
        GithubQueue {
            client,
            repo,
            last_error: Mutex::new(None),
        }
    }

    /// Why the last queue read fell back to the git refs (`None`: it did not).
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set_error(&self, e: Option<String>) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = e;
    }
}

/// A [`Repo`] whose queue and missing-commit ancestry come from the GitHub API.
pub struct GithubRepo<R> {
    inner: R,
    queue: Arc<GithubQueue>,
}

impl<R: Repo> GithubRepo<R> {
    pub fn new(inner: R, queue: Arc<GithubQueue>) -> GithubRepo<R> {
        GithubRepo { inner, queue }
    }

    pub fn queue(&self) -> &GithubQueue {
        &self.queue
    }
}

fn api_err(e: &GithubError) -> RepoError {
    let message = format!("GitHub API: {}", crate::error::chain_message(e));
    match e.kind() {
        ErrorKind::Unavailable => RepoError::Unavailable(message),
        ErrorKind::InvalidInput | ErrorKind::Internal => RepoError::Other(message),
    }
}

impl<R: Repo> RepoWrapper for GithubRepo<R> {
    fn inner(&self) -> &dyn Repo {
        &self.inner
    }
    fn view(&self, branch: &str) -> Result<RemoteView, RepoError> {
        let mut view = self.inner.view(branch)?;
        let q = &self.queue;
        match q
            .client
            .in_flight_groups(&q.repo.owner, &q.repo.name, branch)
        {
            Ok(groups) => {
                q.set_error(None);
                view.queue = groups
                    .into_iter()
                    .map(|g| QueueRef {
                        pr: g.prs.last().copied().unwrap_or(0),
                        name: g.id,
                        head: g.head,
                    })
                    .collect();
            }
            Err(e) => {
                // GitHub's own queue refs are the fallback: still facts, never an empty queue.
                let why = format!(
                    "the merge queue of {} could not be read from the GitHub API, using its \
                     gh-readonly-queue refs instead: {}",
                    q.repo.full_name(),
                    crate::error::chain_message(&e)
                );
                tracing::warn!("{why}");
                q.set_error(Some(why));
            }
        }
        Ok(view)
    }
    fn is_ancestor(&self, a: &CommitId, d: &CommitId) -> Result<bool, RepoError> {
        if self.inner.has_commit(a) && self.inner.has_commit(d) {
            return self.inner.is_ancestor(a, d);
        }
        let q = &self.queue;
        q.client
            .is_ancestor(&q.repo.owner, &q.repo.name, a, d)
            .map_err(|e| api_err(&e))
    }
}
