//! Commit ancestry from GitHub's REST compare endpoint
//! (`GET /repos/{owner}/{repo}/compare/{base}...{head}`).
//!
//! `status` is how `head` relates to `base`: `ahead` (base is an ancestor of head),
//! `identical`, `behind` (head is an ancestor of base) or `diverged`. So `a` is an ancestor
//! of (or equal to) `d` exactly when comparing `a...d` answers `ahead` or `identical`.
//!
//! Invariant: an answer whose `status` contradicts its `merge_base_commit` is refused, not
//! believed. Must never: answer `false` for a pair it could not compare (that is an error).

use super::error::GithubError;
use super::{check_name, GithubClient};
use mainline_core::CommitId;
use reqwest::Method;
use serde::Deserialize;

/// How `head` relates to `base`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareStatus {
    /// `base` is a proper ancestor of `head`.
    Ahead,
    /// `head` is a proper ancestor of `base`.
    Behind,
    Identical,
    /// Neither contains the other.
    Diverged,
}

/// The answer of a comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compare {
    pub status: CompareStatus,
    /// Commits in `head` not in `base`.
    pub ahead_by: u64,
    /// Commits in `base` not in `head`.
    pub behind_by: u64,
    pub merge_base: CommitId,
}

#[derive(Deserialize)]
struct Answer {
    status: String,
    ahead_by: u64,
    behind_by: u64,
    merge_base_commit: Sha,
}

#[derive(Deserialize)]
struct Sha {
    sha: String,
}

impl GithubClient {
    /// Compare `base...head` in `owner/repo`.
    pub fn compare(
        &self,
        owner: &str,
        repo: &str,
        base: &CommitId,
        head: &CommitId,
    ) -> Result<Compare, GithubError> {
        check_name("owner", owner)?;
        check_name("repository", repo)?;
        // `per_page=1`: we need the counts, not the commit list (which GitHub paginates).
        let url = format!(
            "{}/repos/{owner}/{repo}/compare/{base}...{head}?per_page=1",
            self.api_url()
        );
        let body = self.request(Method::GET, &url, None, false)?;
        let answer: Answer = serde_json::from_slice(&body).map_err(|e| GithubError::Decode {
            url: url.clone(),
            what: format!("comparison: {e}"),
        })?;
        let status = match answer.status.as_str() {
            "ahead" => CompareStatus::Ahead,
            "behind" => CompareStatus::Behind,
            "identical" => CompareStatus::Identical,
            "diverged" => CompareStatus::Diverged,
            other => {
                return Err(GithubError::Decode {
                    url,
                    what: format!("unknown comparison status {other:?}"),
                })
            }
        };
        let merge_base: CommitId =
            answer
                .merge_base_commit
                .sha
                .parse()
                .map_err(|_| GithubError::Decode {
                    url: url.clone(),
                    what: format!(
                        "`merge_base_commit.sha` {:?} is not a commit id",
                        answer.merge_base_commit.sha
                    ),
                })?;
        let consistent = match status {
            CompareStatus::Ahead | CompareStatus::Identical => &merge_base == base,
            CompareStatus::Behind => &merge_base == head,
            CompareStatus::Diverged => &merge_base != base && &merge_base != head,
        };
        if !consistent {
            return Err(GithubError::Decode {
                url,
                what: format!(
                    "status {:?} contradicts merge base {}",
                    answer.status,
                    merge_base.short()
                ),
            });
        }
        Ok(Compare {
            status,
            ahead_by: answer.ahead_by,
            behind_by: answer.behind_by,
            merge_base,
        })
    }

    /// Whether `ancestor` is `descendant` or one of its ancestors in `owner/repo`. Equal ids
    /// answer `true` without a request.
    pub fn is_ancestor(
        &self,
        owner: &str,
        repo: &str,
        ancestor: &CommitId,
        descendant: &CommitId,
    ) -> Result<bool, GithubError> {
        if ancestor == descendant {
            return Ok(true);
        }
        let compared = self.compare(owner, repo, ancestor, descendant)?;
        Ok(matches!(
            compared.status,
            CompareStatus::Ahead | CompareStatus::Identical
        ))
    }
}
