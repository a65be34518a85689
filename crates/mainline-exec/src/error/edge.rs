//! Typed errors → [`CliError`]: the exit-code kind and the hint of every failure the executor,
//! its ports and the artifact operations can return, decided here and nowhere else.
//!
//! Must never: map a transient failure (a registry or remote that did not answer) to invalid
//! input — CI scripts retry on the unavailable code only — or lose a failure's causes (the
//! message is the whole chain, as the journal records it).

use super::{chain_message, CliError, Kind};
use crate::artifact::ArtifactError;
use crate::channel::error::ExecError;
use crate::channel::journal::JournalError;
use crate::channel::lock::LockError;
use crate::channel::ports::{BuildError, LockBackendError, RepoError};
use mainline_git::{GitError, GitErrorKind};

const RERUN: &str = "re-run to converge";
const SETTLE: &str =
    "the next locked run (any reconcile) settles the journal from what the channel names and re-decides";
const MISSING: &str =
    "check the name (tags are case-sensitive), or push the artifact first with `mainline push`";

fn kind_of_store(e: &mainline_store::StoreError) -> Kind {
    use mainline_store::ErrorKind as S;
    match e.kind {
        S::InvalidInput => Kind::InvalidInput,
        S::Unauthorized => Kind::Unauthorized,
        S::Unavailable => Kind::Unavailable,
        S::Integrity => Kind::Integrity,
        S::Internal => Kind::Internal,
        S::Fenced => Kind::Conflict,
    }
}

fn artifact(e: &ArtifactError) -> (Kind, Option<String>) {
    use ArtifactError as A;
    let (kind, hint) = match e {
        A::Store(s) => return (kind_of_store(s), None),
        A::Pack(p) => return (pack_kind(p), None),
        A::Scratch { .. } => (Kind::Internal, None),
        A::PackedOther { .. } => (
            Kind::Conflict,
            Some(
                "the same commit was packed with a different tree, revision, source or created time; \
                 reuse the existing artifact, or push the change as a new commit",
            ),
        ),
        A::Immutable { .. } => (
            Kind::Conflict,
            Some("use the existing artifact, or push the change as a new commit"),
        ),
        A::NotItsCommit { .. } => (
            Kind::InvalidInput,
            Some("artifact tags only ever name their own commit's artifact; tag a channel (e.g. latest) instead, or push that commit with `mainline push`"),
        ),
        A::RePointed { .. } => (
            Kind::Integrity,
            Some("name the source by digest (STORE@sha256:…) if you really mean those bytes"),
        ),
        A::StoredOther { .. } => (Kind::Integrity, None),
        A::ReadBack { .. } => (
            Kind::Integrity,
            Some("another writer may have moved the tag at the same moment; re-run to converge"),
        ),
        A::NoSuchTag { .. } | A::NoSuchManifest { .. } => (Kind::InvalidInput, Some(MISSING)),
    };
    (kind, hint.map(str::to_owned))
}

fn pack_kind(e: &mainline_pack::PackError) -> Kind {
    use mainline_pack::PackError as P;
    match e {
        P::Read { .. } | P::Scratch { .. } | P::Changed { .. } => Kind::Internal,
        P::MissingObject { .. } => Kind::Unavailable,
        _ => Kind::InvalidInput,
    }
}

fn repo(e: &RepoError) -> Kind {
    match e {
        RepoError::Unavailable(_) => Kind::Unavailable,
        RepoError::CommitNotFound { .. } => Kind::InvalidInput,
        RepoError::Other(_) => Kind::Internal,
        RepoError::NotARecord { .. } => Kind::Integrity,
    }
}

/// A journal that cannot be reached is unavailable (6), and so is a listed record gone from
/// the remote (the ref moved on: a re-run reads it again); one whose ref or records something
/// other than mainline wrote is an integrity failure (8), as for any other ref.
fn journal(e: &JournalError) -> Kind {
    match e {
        JournalError::Repo {
            source: RepoError::CommitNotFound { .. },
            ..
        } => Kind::Unavailable,
        JournalError::Repo { source, .. } => repo(source),
        JournalError::Unreadable { .. } => Kind::Integrity,
        JournalError::Contended { .. } => Kind::Unavailable,
    }
}

fn build(e: &BuildError) -> (Kind, Option<String>) {
    match e {
        BuildError::Unavailable(_) => (Kind::Unavailable, None),
        BuildError::NotFound(_) => (Kind::InvalidInput, None),
        BuildError::Internal(_) => (Kind::Internal, None),
        BuildError::Format(_) => (Kind::InvalidInput, None),
        BuildError::Artifact(a) => artifact(a),
    }
}

fn lock(e: &LockError, remote: &str, lock_ref: &str) -> (Kind, String) {
    // A lock ref we cannot read is not free and not busy: UNKNOWN (4), and the way out.
    let unreadable = matches!(
        e,
        LockError::Unreadable { .. }
            | LockError::Repo {
                source: RepoError::NotARecord { .. },
                ..
            }
    );
    if unreadable {
        return (
            Kind::Unknown,
            format!("nothing was written; if no mainline run holds this lock (see `mainline status`), delete the ref: git push {remote} :{lock_ref}"),
        );
    }
    match e {
        LockError::Lost { .. } => (
            Kind::Conflict,
            "nothing was written after the lock was lost; re-run to converge".into(),
        ),
        LockError::Busy { .. } => (
            Kind::Unavailable,
            "another mainline run is working on this channel; retry, or use --lock none to run unlocked".into(),
        ),
        _ => (Kind::Unavailable, "check access to the git remote".into()),
    }
}

fn lock_backend(e: &LockBackendError) -> Kind {
    match e {
        LockBackendError::Unavailable(_) => Kind::Unavailable,
        LockBackendError::Lost(_) => Kind::Conflict,
        LockBackendError::ForeignToken { .. } => Kind::Internal,
    }
}

/// The kind and hint of a channel run's failure.
fn exec(e: &ExecError) -> (Kind, Option<String>) {
    use ExecError as E;
    match e {
        E::Store(s) => (kind_of_store(s), None),
        E::Artifact(a) => artifact(a),
        E::Repo(r) => (repo(r), None),
        E::Build(b) => build(b),
        E::Lock {
            source,
            remote,
            lock_ref,
        } => {
            let (kind, hint) = lock(source, remote, lock_ref);
            (kind, Some(hint))
        }
        E::LockBackend(l) => (lock_backend(l), None),
        E::Journal(j) => (journal(j), None),
        E::PlanWithoutTarget => (Kind::Internal, None),
        E::NoKubernetesSettings => (Kind::InvalidInput, Some("or use --lock git".into())),
        E::KeptChanging { .. } => (
            Kind::Unavailable,
            Some("re-run; with the git lock (--lock git) writers take turns".into()),
        ),
        E::PinChanged { .. } => (
            Kind::Conflict,
            Some("another operator changed the pin at the same time; check `mainline status` and retry".into()),
        ),
        E::Overtaken { .. } => (Kind::Unavailable, Some(RERUN.into())),
        E::FenceLost { .. } => (Kind::Conflict, None),
        E::LostAfterWrite { lost, written } => (
            exec(lost).0,
            Some(format!(
                "this run wrote {written} and read it back before it lost the lock; the next locked run settles the journal and re-decides"
            )),
        ),
        E::WriteFailed { write, .. } => {
            let (kind, hint) = exec(write);
            (kind, Some(hint.unwrap_or_else(|| RERUN.into())))
        }
        E::WriteLockLost { lost, .. } => (exec(lost).0, Some(SETTLE.into())),
        E::WriteUnknown { write, .. } => (exec(write).0, Some(SETTLE.into())),
    }
}

fn cli(kind: Kind, err: &dyn std::error::Error, hint: Option<String>) -> CliError {
    let e = CliError::new(kind, chain_message(err));
    match hint {
        Some(h) => e.with_hint(h),
        None => e,
    }
}

impl From<ExecError> for CliError {
    fn from(e: ExecError) -> CliError {
        let (kind, hint) = exec(&e);
        cli(kind, &e, hint)
    }
}

impl From<ArtifactError> for CliError {
    fn from(e: ArtifactError) -> CliError {
        let (kind, hint) = artifact(&e);
        cli(kind, &e, hint)
    }
}

impl From<BuildError> for CliError {
    fn from(e: BuildError) -> CliError {
        let (kind, hint) = build(&e);
        cli(kind, &e, hint)
    }
}

impl From<RepoError> for CliError {
    fn from(e: RepoError) -> CliError {
        CliError::new(repo(&e), e.to_string())
    }
}

impl From<LockBackendError> for CliError {
    fn from(e: LockBackendError) -> CliError {
        CliError::new(lock_backend(&e), e.to_string())
    }
}

/// A git failure outside the executor (opening the remote's cache, `push --git`): a remote
/// that did not answer is unavailable, a missing commit or path is the input's fault.
impl From<GitError> for CliError {
    fn from(e: GitError) -> CliError {
        let kind = match e.kind() {
            GitErrorKind::InvalidInput | GitErrorKind::NotFound => Kind::InvalidInput,
            GitErrorKind::Unavailable => Kind::Unavailable,
            GitErrorKind::Rejected | GitErrorKind::Internal => Kind::Internal,
        };
        CliError::new(kind, chain_message(&e))
    }
}

/// The `[kubernetes]` settings of a channel: the configuration's fault.
#[cfg(feature = "kubernetes")]
impl From<crate::adapters::kube::KubeSetupError> for CliError {
    fn from(e: crate::adapters::kube::KubeSetupError) -> CliError {
        CliError::invalid(e.to_string()).with_hint("see deploy/kubernetes/ for a working example")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mainline_core::{CommitId, Digest};

    fn digest(n: u8) -> Digest {
        Digest::of(&[n])
    }

    fn read_back() -> ExecError {
        ExecError::from(ArtifactError::ReadBack {
            location: "reg.example/app".into(),
            tag: "latest".parse().expect("tag"),
            expected: digest(1),
            got: Some(digest(2)),
        })
    }

    #[test]
    fn a_failed_write_keeps_the_kind_and_hint_of_what_failed() {
        let e = CliError::from(ExecError::WriteFailed {
            write: Box::new(read_back()),
            attempts: 2,
            seen: Some(digest(2)),
            target: digest(1),
        });
        assert_eq!(e.kind, Kind::Integrity);
        assert!(
            e.message
                .starts_with("reg.example/app: read-back of latest"),
            "{e}"
        );
        assert!(e.message.contains("(after 2 attempt(s))"), "{e}");
        assert!(
            e.hint
                .as_deref()
                .is_some_and(|h| h.contains("another writer")),
            "{e}"
        );
        // Without a hint of its own, the way out is to re-run.
        let e = CliError::from(ExecError::WriteFailed {
            write: Box::new(ExecError::Store(mainline_store::StoreError::new(
                mainline_store::ErrorKind::Unavailable,
                "registry did not answer",
            ))),
            attempts: 3,
            seen: None,
            target: digest(1),
        });
        assert_eq!(e.kind, Kind::Unavailable);
        assert_eq!(e.hint.as_deref(), Some(RERUN));
        assert!(e.message.contains("the channel names no tag"), "{e}");
    }

    #[test]
    fn a_lost_lock_is_a_conflict_and_says_what_was_written() {
        let lost = ExecError::FenceLost {
            reason: "renew refused".into(),
        };
        let e = CliError::from(ExecError::LostAfterWrite {
            lost: Box::new(lost),
            written: digest(3),
        });
        assert_eq!(e.kind, Kind::Conflict);
        assert!(e.message.contains("renew refused"), "{e}");
        assert!(
            e.hint
                .as_deref()
                .is_some_and(|h| h.contains(&digest(3).to_string())),
            "{e}"
        );
    }

    #[test]
    fn an_unreadable_lock_is_unknown_and_names_the_ref_to_delete() {
        let e = CliError::from(ExecError::Lock {
            source: Box::new(LockError::Unreadable {
                refname: "refs/mainline/lock/x".into(),
                reason: "not a record".into(),
            }),
            remote: "https://git.example/app.git".into(),
            lock_ref: "refs/mainline/lock/x".into(),
        });
        assert_eq!(e.kind, Kind::Unknown);
        let hint = e.hint.expect("hint");
        assert!(
            hint.contains("git push https://git.example/app.git :refs/mainline/lock/x"),
            "{hint}"
        );
        let busy = CliError::from(ExecError::Lock {
            source: Box::new(LockError::Lost {
                refname: "refs/mainline/lock/x".into(),
            }),
            remote: "r".into(),
            lock_ref: "l".into(),
        });
        assert_eq!(busy.kind, Kind::Conflict);
    }

    #[test]
    fn a_journal_something_else_wrote_is_integrity_and_an_unreachable_one_unavailable() {
        let refname = "refs/mainline/journal/x".to_owned();
        let commit: CommitId = "0123456789abcdef0123456789abcdef01234567"
            .parse()
            .expect("id");
        let kind = |e: JournalError| CliError::from(ExecError::from(e)).kind;
        let tree = JournalError::Repo {
            refname: refname.clone(),
            source: RepoError::NotARecord {
                refname: refname.clone(),
                remote: "r".into(),
                object: commit.clone(),
                found: "a tree".into(),
            },
        };
        assert_eq!(kind(tree), Kind::Integrity);
        let garbage = JournalError::Unreadable {
            refname: refname.clone(),
            commit: commit.clone(),
            reason: "not JSON".into(),
        };
        assert_eq!(kind(garbage), Kind::Integrity);
        let down = JournalError::Repo {
            refname: refname.clone(),
            source: RepoError::Unavailable("connection refused".into()),
        };
        assert_eq!(kind(down), Kind::Unavailable);
        let moved_on = JournalError::Repo {
            refname,
            source: RepoError::CommitNotFound { commit },
        };
        assert_eq!(kind(moved_on), Kind::Unavailable);
    }

    #[test]
    fn immutable_tags_and_missing_artifacts_map_to_their_exit_codes() {
        let tag: mainline_core::Tag = "sha-0123456789abcdef0123456789abcdef01234567"
            .parse()
            .expect("tag");
        let conflict = CliError::from(ArtifactError::Immutable {
            location: "reg/app".into(),
            tag: tag.clone(),
            existing: digest(1),
            manifest: digest(2),
        });
        assert_eq!(
            (conflict.kind, conflict.kind.exit_code()),
            (Kind::Conflict, 9)
        );
        let missing = CliError::from(ExecError::from(ArtifactError::NoSuchTag {
            location: "reg/app".into(),
            tag,
        }));
        assert_eq!(missing.kind, Kind::InvalidInput);
        assert_eq!(missing.hint.as_deref(), Some(MISSING));
        let build = CliError::from(ExecError::from(BuildError::Unavailable(
            "fetch timed out".into(),
        )));
        assert_eq!(build.kind, Kind::Unavailable);
    }
}
