//! The webhook events mainline reacts to, parsed from a (verified) body into our own types,
//! and the rule for which of them should start a reconcile.
//!
//! Invariants: every commit id in an [`Event`] is validated; a missing or mistyped field is a
//! [`WebhookError::Malformed`] naming the field by its JSON path; an event or action we do not
//! handle is [`Event::Ignored`].
//! Must never: decide anything about the channel; that is the core's job, from fresh facts.

use super::{WebhookError, MAX_BODY_BYTES};
use mainline_core::CommitId;
use serde_json::Value;

/// Why GitHub destroyed a merge group (`merge_group.destroyed`'s `reason`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DestroyReason {
    /// The group landed on the base branch.
    Merged,
    /// An earlier entry left the queue, so this group's speculative commit is void.
    Invalidated,
    /// The entry was removed from the queue (failed checks, timeout, conflict, by hand).
    Dequeued,
    /// A reason GitHub added after this was written, or none given (empty string).
    Other(String),
}

impl DestroyReason {
    fn parse(reason: Option<&str>) -> DestroyReason {
        match reason {
            Some("merged") => DestroyReason::Merged,
            Some("invalidated") => DestroyReason::Invalidated,
            Some("dequeued") => DestroyReason::Dequeued,
            Some(other) => DestroyReason::Other(other.to_owned()),
            None => DestroyReason::Other(String::new()),
        }
    }
}

/// A webhook delivery, as far as mainline cares.
///
/// `repository` is the payload's `repository.full_name` (`owner/name`) when present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `merge_group` / `checks_requested`: a group was created and its checks should run.
    MergeGroupChecksRequested {
        repository: Option<String>,
        head_sha: CommitId,
        /// Full ref, e.g. `refs/heads/gh-readonly-queue/main/pr-42-<sha>`.
        head_ref: String,
        base_sha: CommitId,
        /// Full ref of the branch the group merges into, e.g. `refs/heads/main`.
        base_ref: String,
    },
    /// `merge_group` / `destroyed`: the group left the queue.
    MergeGroupDestroyed {
        repository: Option<String>,
        reason: DestroyReason,
        head_sha: CommitId,
        head_ref: String,
        base_ref: String,
    },
    /// `push`: a ref moved. `before`/`after` are all zeros when the ref was created/deleted.
    Push {
        repository: Option<String>,
        git_ref: String,
        before: CommitId,
        after: CommitId,
        forced: bool,
    },
    /// `ping`: GitHub checking the endpoint after the webhook was created.
    Ping,
    /// An event or action mainline does not act on: acknowledged, not an error. `event` is
    /// `<event>` or `<event>.<action>`.
    Ignored { event: String },
}

impl Event {
    /// Whether this delivery should start a reconcile of `repository` (`owner/name`, compared
    /// case-insensitively as GitHub does; a payload without a repository matches) whose
    /// mainline is `mainline_branch` (e.g. `main`).
    ///
    /// - `merge_group.destroyed` for a group targeting the mainline, with any reason but
    ///   `merged`: the candidate may have ended, so the channel may hold ejected code (S3).
    ///   `merged` does not trigger: the merge's own `push` to the branch does, and it arrives
    ///   only after the branch moved; reconciling on `merged` could read the branch before it
    ///   moved, find the group gone and its head not yet on mainline, and restore needlessly.
    /// - `push` to `refs/heads/<mainline_branch>` (forced or not): mainline moved (L1; after a
    ///   force-push, removed commits no longer count as landed).
    /// - `merge_group.checks_requested`: no. A new group never makes the channel wrong; its
    ///   candidate is deployed by the CI job that the same event starts.
    /// - `ping`, pushes to other refs (including `gh-readonly-queue/…`), ignored events: no.
    pub fn triggers_reconcile(&self, repository: &str, mainline_branch: &str) -> bool {
        let branch_ref = format!("refs/heads/{mainline_branch}");
        let same_repo = |r: &Option<String>| {
            r.as_deref()
                .is_none_or(|r| r.eq_ignore_ascii_case(repository))
        };
        match self {
            Event::MergeGroupDestroyed {
                repository: r,
                reason,
                base_ref,
                ..
            } => same_repo(r) && *reason != DestroyReason::Merged && *base_ref == branch_ref,
            Event::Push {
                repository: r,
                git_ref,
                ..
            } => same_repo(r) && *git_ref == branch_ref,
            Event::MergeGroupChecksRequested { .. } | Event::Ping | Event::Ignored { .. } => false,
        }
    }

    /// For a merge-group event, the group id the API's queue source uses for the same group
    /// (`pr-<N>`, see [`group_id_for_head_ref`]).
    pub fn group_id(&self) -> Option<String> {
        match self {
            Event::MergeGroupChecksRequested { head_ref, .. }
            | Event::MergeGroupDestroyed { head_ref, .. } => group_id_for_head_ref(head_ref),
            _ => None,
        }
    }
}

/// `pr-<N>` for a merge-group head ref `[refs/heads/]gh-readonly-queue/<branch>/pr-<N>-<sha>`,
/// the same id [`crate::GithubClient::in_flight_groups`] gives that group; `None` for other
/// refs. The GraphQL queue entries carry no ref name, so `pr-<N>` is the id both sides can
/// compute.
pub fn group_id_for_head_ref(head_ref: &str) -> Option<String> {
    let rest = head_ref.strip_prefix("refs/heads/").unwrap_or(head_ref);
    let rest = rest.strip_prefix("gh-readonly-queue/")?;
    let last = rest.rsplit('/').next()?;
    let digits = last.strip_prefix("pr-")?.split('-').next()?;
    let number: u64 = digits.parse().ok()?;
    Some(format!("pr-{number}"))
}

/// Parse a delivery's body for event `event` (the `X-GitHub-Event` header) and `delivery`
/// (the `X-GitHub-Delivery` header, used in messages). Verify the signature first.
pub fn parse_event(event: &str, delivery: &str, body: &[u8]) -> Result<Event, WebhookError> {
    let fields = Fields { event, delivery };
    if body.len() > MAX_BODY_BYTES {
        return Err(WebhookError::TooLarge {
            len: body.len(),
            max: MAX_BODY_BYTES,
        });
    }
    if !matches!(event, "merge_group" | "push" | "ping") {
        return Ok(Event::Ignored {
            event: event.to_owned(),
        });
    }
    let json: Value = serde_json::from_slice(body)
        .map_err(|e| fields.malformed("(body)", format!("is not valid JSON ({e})")))?;
    if !json.is_object() {
        return Err(fields.malformed("(body)", "is not a JSON object".to_owned()));
    }
    let repository = json
        .pointer("/repository/full_name")
        .and_then(Value::as_str)
        .map(str::to_owned);
    match event {
        "ping" => Ok(Event::Ping),
        "push" => Ok(Event::Push {
            repository,
            git_ref: fields.string(&json, "ref")?,
            before: fields.commit(&json, "before")?,
            after: fields.commit(&json, "after")?,
            forced: fields.boolean(&json, "forced")?,
        }),
        _ => {
            let action = fields.string(&json, "action")?;
            match action.as_str() {
                "checks_requested" => Ok(Event::MergeGroupChecksRequested {
                    repository,
                    head_sha: fields.commit(&json, "merge_group.head_sha")?,
                    head_ref: fields.string(&json, "merge_group.head_ref")?,
                    base_sha: fields.commit(&json, "merge_group.base_sha")?,
                    base_ref: fields.string(&json, "merge_group.base_ref")?,
                }),
                "destroyed" => {
                    let reason = match json.get("reason") {
                        None | Some(Value::Null) => None,
                        Some(Value::String(s)) => Some(s.as_str()),
                        Some(_) => {
                            return Err(fields.malformed("reason", "is not a string".to_owned()))
                        }
                    };
                    Ok(Event::MergeGroupDestroyed {
                        repository,
                        reason: DestroyReason::parse(reason),
                        head_sha: fields.commit(&json, "merge_group.head_sha")?,
                        head_ref: fields.string(&json, "merge_group.head_ref")?,
                        base_ref: fields.string(&json, "merge_group.base_ref")?,
                    })
                }
                other => Ok(Event::Ignored {
                    event: format!("{event}.{other}"),
                }),
            }
        }
    }
}

/// Field access that names the field (as a dotted path) when it is missing or mistyped.
struct Fields<'a> {
    event: &'a str,
    delivery: &'a str,
}

impl Fields<'_> {
    fn malformed(&self, field: &str, reason: String) -> WebhookError {
        WebhookError::Malformed {
            event: self.event.to_owned(),
            delivery: self.delivery.to_owned(),
            field: field.to_owned(),
            reason,
        }
    }

    fn get<'v>(&self, json: &'v Value, path: &str) -> Result<&'v Value, WebhookError> {
        let pointer = format!("/{}", path.replace('.', "/"));
        match json.pointer(&pointer) {
            None | Some(Value::Null) => Err(self.malformed(path, "is missing".to_owned())),
            Some(v) => Ok(v),
        }
    }

    fn string(&self, json: &Value, path: &str) -> Result<String, WebhookError> {
        self.get(json, path)?
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| self.malformed(path, "is not a string".to_owned()))
    }

    fn boolean(&self, json: &Value, path: &str) -> Result<bool, WebhookError> {
        self.get(json, path)?
            .as_bool()
            .ok_or_else(|| self.malformed(path, "is not a boolean".to_owned()))
    }

    fn commit(&self, json: &Value, path: &str) -> Result<CommitId, WebhookError> {
        let s = self.string(json, path)?;
        s.parse().map_err(|_| {
            let shown: String = s.chars().take(80).collect();
            self.malformed(
                path,
                format!("is not a commit id (40 or 64 lowercase hex digits): {shown:?}"),
            )
        })
    }
}
