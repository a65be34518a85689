//! Reading a merge group from the GitHub Actions environment of a `merge_group` run:
//! `GITHUB_EVENT_NAME`, `GITHUB_EVENT_PATH` (the webhook payload: `merge_group.head_sha`,
//! `merge_group.head_ref`), with `GITHUB_SHA`/`GITHUB_REF` as they are set for that event.
//!
//! Must never: guess a group outside a merge_group run (other events return `None`).

use crate::error::CliError;
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeGroupEnv {
    pub head_sha: String,
    /// `refs/heads/gh-readonly-queue/<branch>/pr-<N>-<sha>`
    pub head_ref: String,
}

#[derive(Deserialize)]
struct Payload {
    merge_group: Option<MergeGroup>,
}

#[derive(Deserialize)]
struct MergeGroup {
    head_sha: String,
    head_ref: String,
}

impl MergeGroupEnv {
    /// The group of this run, when it is a `merge_group` run.
    pub fn read() -> Result<Option<MergeGroupEnv>, CliError> {
        if std::env::var("GITHUB_EVENT_NAME").ok().as_deref() != Some("merge_group") {
            return Ok(None);
        }
        let path = std::env::var("GITHUB_EVENT_PATH").map_err(|_| {
            CliError::invalid("GITHUB_EVENT_NAME is merge_group but GITHUB_EVENT_PATH is not set")
        })?;
        let text = std::fs::read_to_string(&path)
            .map_err(|e| CliError::invalid(format!("cannot read GITHUB_EVENT_PATH {path}: {e}")))?;
        let payload: Payload = serde_json::from_str(&text).map_err(|e| {
            CliError::invalid(format!(
                "GITHUB_EVENT_PATH {path} is not a merge_group payload: {e}"
            ))
        })?;
        let g = payload.merge_group.ok_or_else(|| {
            CliError::invalid(format!(
                "GITHUB_EVENT_PATH {path} has no merge_group object"
            ))
        })?;
        Ok(Some(MergeGroupEnv {
            head_sha: g.head_sha,
            head_ref: g.head_ref,
        }))
    }

    /// The group id mainline uses: the queue ref without `refs/heads/`.
    pub fn group_id(&self) -> String {
        self.head_ref
            .strip_prefix("refs/heads/")
            .unwrap_or(&self.head_ref)
            .to_owned()
    }
}
