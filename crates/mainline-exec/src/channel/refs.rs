//! Where mainline keeps its own state on the git remote, and how it is encoded. Pure: names
//! and (de)serialisation only.
//!
//! Everything lives under `refs/mainline/` on the source remote — a system every user already
//! has, readable from any machine that can fetch, with a real compare-and-swap (a ref push with
//! its expected old value). Per channel key K:
//! - `refs/mainline/pin/K`: a record commit whose message holds the active pin;
//! - `refs/mainline/lease/K/<group>/<expires_ms>`: points at a candidate's head commit. The
//!   expiry is in the name, so one `ls-remote` answers "which leases are live" with no fetch,
//!   and the ref keeps the head commit reachable on the remote.
//!
//! Must never: produce a ref name git would reject, or accept a record it cannot fully parse.

use mainline_core::{CommitId, Digest, Group, Pin, PinKind, Tag, Timestamp};
use mainline_store::Location;
use serde::{Deserialize, Serialize};

use super::ports::RemoteView;

/// A channel's identity in ref names: `<registry>/<repository>/<tag>` with characters git
/// refuses replaced, e.g. `127.0.0.1_5000/acme/app/latest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelKey(String);

impl ChannelKey {
    pub fn new(location: &Location, tag: &Tag) -> ChannelKey {
        let base = match location {
            Location::Registry {
                registry,
                repository,
            } => format!("{}/{}", sanitize(registry), repository),
            Location::Layout { path } => format!(
                "layout/{}",
                sanitize(
                    &path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_else(|| "store".into())
                )
            ),
        };
        ChannelKey(format!("{base}/{}", sanitize(tag.as_str())))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn pin_ref(&self) -> String {
        format!("refs/mainline/pin/{}", self.0)
    }
    pub fn lease_prefix(&self) -> String {
        format!("refs/mainline/lease/{}/", self.0)
    }
    pub fn lease_ref(&self, group: &str, expires: Timestamp) -> String {
        format!(
            "{}{}/{}",
            self.lease_prefix(),
            sanitize(group),
            expires.millis()
        )
    }
    pub fn lock_ref(&self) -> String {
        format!("refs/mainline/lock/{}", self.0)
    }
    pub fn journal_ref(&self) -> String {
        format!("{JOURNAL_REFS}{}", self.0)
    }
}

/// Where every channel's journal lives.
pub const JOURNAL_REFS: &str = "refs/mainline/journal/";

/// Keep `[A-Za-z0-9._-]`, replace the rest with `_`; never start a component with `.`.
pub fn sanitize(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with('.') || out.is_empty() {
        out.insert(0, '_');
    }
    while out.contains("..") {
        out = out.replace("..", "._");
    }
    if out.ends_with(".lock") {
        out.push('_');
    }
    out
}

/// The leases of this channel found in a remote view (expired ones included: the core filters
/// by `now`). Malformed lease refs are ignored.
pub fn leases(key: &ChannelKey, view: &RemoteView) -> Vec<Group> {
    let prefix = key.lease_prefix();
    view.mainline_refs
        .iter()
        .filter_map(|(name, head)| {
            let rest = name.strip_prefix(&prefix)?;
            let (group, expires) = rest.rsplit_once('/')?;
            let expires: i64 = expires.parse().ok()?;
            (!group.contains('/')).then(|| Group {
                id: group.to_owned(),
                head: head.clone(),
                prs: vec![],
                expires_at: Some(Timestamp(expires)),
            })
        })
        .collect()
}

/// The in-flight groups GitHub's merge queue shows as refs.
pub fn queue_groups(view: &RemoteView) -> Vec<Group> {
    view.queue
        .iter()
        .map(|q| Group {
            id: q.name.clone(),
            head: q.head.clone(),
            prs: vec![q.pr],
            expires_at: None,
        })
        .collect()
}

/// The pin record stored in the message of the commit at `refs/mainline/pin/K`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinRecord {
    pub kind: PinKind,
    pub digest: Digest,
    pub commit: Option<CommitId>,
    pub reason: String,
    pub actor: String,
    pub expires_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

impl PinRecord {
    pub fn to_pin(&self) -> Pin {
        Pin {
            digest: self.digest.clone(),
            commit: self.commit.clone(),
            reason: self.reason.clone(),
            actor: self.actor.clone(),
            expires_at: self.expires_at,
            kind: self.kind,
        }
    }

    /// A commit message: a summary line, a blank line, the JSON body.
    pub fn to_message(&self) -> String {
        let kind = match self.kind {
            PinKind::Pin => "pin",
            PinKind::Rollback => "rollback",
        };
        let body = serde_json::to_string(self).expect("a pin record always serialises");
        format!("mainline {kind} {}\n\n{body}\n", self.digest)
    }

    pub fn from_message(message: &str) -> Result<PinRecord, String> {
        let body = message
            .find('{')
            .map(|i| &message[i..])
            .ok_or_else(|| "the pin record has no JSON body".to_owned())?;
        serde_json::from_str(body.trim()).map_err(|e| format!("unreadable pin record: {e}"))
    }
}
