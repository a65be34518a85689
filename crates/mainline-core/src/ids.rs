//! Validated identifiers: every value of these types is well-formed, so code downstream never
//! re-checks a digest, commit id or tag, and a malformed one is rejected once, at the edge,
//! with a message that names it.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::fmt;
use std::str::FromStr;

/// Why an identifier was rejected. Each variant carries the offending input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("invalid digest {0:?}: expected sha256:<64 lowercase hex digits>")]
    Digest(String),
    #[error("invalid commit id {0:?}: expected 40 (sha1) or 64 (sha256) lowercase hex digits")]
    Commit(String),
    #[error(
        "invalid tag {0:?}: a tag is 1-128 characters of [A-Za-z0-9_.-] and must not start with '.' or '-'"
    )]
    Tag(String),
    #[error(
        "invalid revision {0:?}: expected <ref>@sha1:<commit> (as flux writes it), sha1:<commit>, a bare 40-hex commit, or the legacy <ref>/<commit>"
    )]
    Revision(String),
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A content digest, `sha256:<hex>`: the identity of a manifest or blob.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

impl Digest {
    /// The sha256 digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest::from_sha256(Sha256::digest(bytes).into())
    }
    /// From a finished sha256 hash. (Hex into one buffer: `hex::encode` goes char by char and
    /// `format!` copies again, and this is on every manifest the executor reads.)
    pub fn from_sha256(hash: [u8; 32]) -> Digest {
        const PREFIX: &[u8] = b"sha256:";
        let mut out = [0u8; 7 + 64];
        out[..PREFIX.len()].copy_from_slice(PREFIX);
        hex::encode_to_slice(hash, &mut out[PREFIX.len()..]).expect("64 bytes hold the hex of 32");
        Digest(
            std::str::from_utf8(&out)
                .expect("hex digits are ASCII")
                .to_owned(),
        )
    }
    /// The hex part, without the algorithm.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// A short form for humans: `sha256:0123456789ab`.
    pub fn short(&self) -> &str {
        &self.0[..("sha256:".len() + 12)]
    }
    /// The tag under which cosign stores a signature of this digest (`sha256-<hex>.sig`).
    pub fn cosign_signature_tag(&self) -> Tag {
        Tag(format!("sha256-{}.sig", self.hex()))
    }
}

impl FromStr for Digest {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        match s.strip_prefix("sha256:") {
            Some(h) if h.len() == 64 && is_lower_hex(h) => Ok(Digest(s.to_owned())),
            _ => Err(IdError::Digest(s.to_owned())),
        }
    }
}
impl TryFrom<String> for Digest {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        s.parse()
    }
}
impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.0
    }
}
impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A git commit id in lowercase hex (sha1 today; sha256 repositories are accepted).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CommitId(String);

impl CommitId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The first 12 hex digits, for messages.
    pub fn short(&self) -> &str {
        &self.0[..12]
    }
    /// The immutable artifact tag of this commit: `sha-<hex>`.
    pub fn artifact_tag(&self) -> Tag {
        Tag(format!("sha-{}", self.0))
    }
}
impl FromStr for CommitId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        if (s.len() == 40 || s.len() == 64) && is_lower_hex(s) {
            Ok(CommitId(s.to_owned()))
        } else {
            Err(IdError::Commit(s.to_owned()))
        }
    }
}
impl TryFrom<String> for CommitId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        s.parse()
    }
}
impl From<CommitId> for String {
    fn from(c: CommitId) -> String {
        c.0
    }
}
impl fmt::Display for CommitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An OCI tag, validated against the distribution spec's grammar
/// `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Tag(String);

impl Tag {
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The commit this tag names if it is an artifact tag (`sha-<hex>`).
    pub fn artifact_commit(&self) -> Option<CommitId> {
        self.0.strip_prefix("sha-").and_then(|h| h.parse().ok())
    }
}
impl FromStr for Tag {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let b = s.as_bytes();
        let ok = !b.is_empty()
            && b.len() <= 128
            && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
            && b.iter()
                .all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-');
        if ok {
            Ok(Tag(s.to_owned()))
        } else {
            Err(IdError::Tag(s.to_owned()))
        }
    }
}
impl TryFrom<String> for Tag {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        s.parse()
    }
}
impl From<Tag> for String {
    fn from(t: Tag) -> String {
        t.0
    }
}
impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A source revision as flux records it: `<ref>@sha1:<commit>`, or `sha1:<commit>` when no
/// ref is known. A bare commit id parses too and is written back in the `sha1:` form, and so
/// does the legacy `<ref>/<commit>` that `flux push artifact --revision` took before Flux 2.0
/// (and that pipelines still write), written back as `<ref>@sha1:<commit>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Revision {
    /// The named pointer (`main`, `refs/heads/gh-readonly-queue/main/pr-1-…`), if any.
    pub reference: Option<String>,
    pub commit: CommitId,
}

impl Revision {
    pub fn new(reference: Option<String>, commit: CommitId) -> Revision {
        Revision { reference, commit }
    }
}

impl FromStr for Revision {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let bad = || IdError::Revision(s.to_owned());
        let (reference, rest) = match s.rsplit_once('@') {
            Some((r, rest)) => {
                if r.is_empty() || r.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(bad());
                }
                (Some(r.to_owned()), rest)
            }
            None => (None, s),
        };
        let hex = match rest.split_once(':') {
            Some(("sha1", h)) if h.len() == 40 => h,
            Some(("sha256", h)) if h.len() == 64 => h,
            Some(_) => return Err(bad()),
            None if reference.is_some() => return Err(bad()),
            None => match rest.rsplit_once('/') {
                // The legacy `<ref>/<commit>` form.
                Some((r, h)) => {
                    if r.is_empty() || r.chars().any(|c| c.is_whitespace() || c.is_control()) {
                        return Err(bad());
                    }
                    let commit = h.parse::<CommitId>().map_err(|_| bad())?;
                    return Ok(Revision {
                        reference: Some(r.to_owned()),
                        commit,
                    });
                }
                None => rest,
            },
        };
        let commit = hex.parse::<CommitId>().map_err(|_| bad())?;
        Ok(Revision { reference, commit })
    }
}
impl TryFrom<String> for Revision {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        s.parse()
    }
}
impl From<Revision> for String {
    fn from(r: Revision) -> String {
        r.to_string()
    }
}
impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let algo = if self.commit.as_str().len() == 64 {
            "sha256"
        } else {
            "sha1"
        };
        match &self.reference {
            Some(r) => write!(f, "{r}@{algo}:{}", self.commit),
            None => write!(f, "{algo}:{}", self.commit),
        }
    }
}
