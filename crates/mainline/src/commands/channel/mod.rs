//! The channel commands — status, reconcile, deploy, promote, pin, unpin, rollback — as thin
//! wrappers: resolve settings, open the adapters, build a `Request`, run the executor, render.

use crate::channel::ports::{Clock, Repo};
use crate::channel::refs::sanitize;
use crate::channel::QueueSource;
use crate::cli::{
    DeployArgs, PinArgs, PromoteArgs, ReconcileArgs, RollbackArgs, StatusArgs, UnpinArgs,
};
use crate::error::{CliError, Kind};
use crate::settings::Context;
use mainline_core::{CommitId, Digest, Pin, PinKind, Request, Timestamp};
use mainline_store::ReferenceTarget;
use std::io::Write;

mod checks;
mod finish;
mod open;
pub use crate::channel::report::{verdict_exit, After, AppliedReport, ChannelReport, WaitReport};
pub use finish::WAIT_TIMED_OUT;
use finish::{check_wait, finish};
pub use open::{actor, Opened};

pub fn status(ctx: &Context, args: &StatusArgs, out: &mut dyn Write) -> Result<u8, CliError> {
    let o = Opened::open_read_only(ctx, &args.channel)?;
    let report = o.executor().run(Request::Status)?;
    finish(ctx, &o, &report, out, true, None)
}

pub fn reconcile(ctx: &Context, args: &ReconcileArgs, out: &mut dyn Write) -> Result<u8, CliError> {
    let o = Opened::open(ctx, &args.channel)?;
    let report = o.executor().run(Request::Reconcile {
        force_restore: args.force_restore,
    })?;
    finish(ctx, &o, &report, out, false, None)
}

pub fn promote(ctx: &Context, args: &PromoteArgs, out: &mut dyn Write) -> Result<u8, CliError> {
    let o = Opened::open(ctx, &args.channel)?;
    check_wait(&o, args.wait)?;
    let commit = match args
        .commit
        .clone()
        .or_else(|| std::env::var("GITHUB_SHA").ok())
    {
        Some(c) => parse_commit(&c, "--commit")?,
        None => mainline_tip(&o)?,
    };
    let report = o.executor().run(Request::Promote { commit })?;
    finish(ctx, &o, &report, out, false, args.wait)
}

pub fn deploy(ctx: &Context, args: &DeployArgs, out: &mut dyn Write) -> Result<u8, CliError> {
    let gh = crate::github_env::MergeGroupEnv::read()?;
    let commit = args
        .commit
        .clone()
        .or_else(|| gh.as_ref().map(|g| g.head_sha.clone()))
        .or_else(|| std::env::var("GITHUB_SHA").ok())
        .filter(|c| !c.is_empty());
    if !args.candidate {
        let o = Opened::open(ctx, &args.channel)?;
        check_wait(&o, args.wait)?;
        let commit = match commit {
            Some(c) => parse_commit(&c, "--commit")?,
            None => mainline_tip(&o)?,
        };
        let report = o.executor().run(Request::Promote { commit })?;
        return finish(ctx, &o, &report, out, false, args.wait);
    }
    // Every missing input in one error, before anything is opened or read.
    let group_id = args
        .group
        .clone()
        .or_else(|| gh.as_ref().map(|g| g.group_id()));
    let (commit, group_id) = match (commit, group_id) {
        (Some(c), Some(g)) => (c, g),
        (c, g) => {
            let mut missing = Vec::new();
            if c.is_none() {
                missing.push("--commit SHA (the group's head commit)");
            }
            if g.is_none() {
                missing.push("--group ID (gh-readonly-queue/main/pr-<N>-<sha>, or any id with --queue lease)");
            }
            return Err(CliError::invalid(format!(
                "deploy --candidate needs {}",
                missing.join(" and ")
            ))
            .with_hint("pass them, or run it in a GitHub Actions merge_group job (GITHUB_SHA and GITHUB_REF give both)"));
        }
    };
    let head = parse_commit(&commit, "--commit")?;
    let o = Opened::open(ctx, &args.channel)?;
    check_wait(&o, args.wait)?;
    let group_id = group_id
        .strip_prefix("refs/heads/")
        .unwrap_or(&group_id)
        .to_owned();
    check_group_id(&group_id)?;
    let group_id = if o.config.queue == QueueSource::Lease {
        let lease_id = sanitize(&group_id);
        record_lease(&o, &lease_id, &head)?;
        lease_id
    } else {
        group_id
    };
    let report = o
        .executor()
        .run(Request::DeployCandidate { group_id, head })?;
    finish(ctx, &o, &report, out, false, args.wait)
}

/// Record (or renew) the candidate's lease before deciding, so the group is in flight for the
/// decision and for every concurrent reconcile until the lease expires.
fn record_lease(o: &Opened, id: &str, head: &CommitId) -> Result<(), CliError> {
    let expires = o
        .clock
        .now()
        .plus_millis(o.config.lease_ttl.as_millis() as i64);
    let refname = o.config.key.lease_ref(id, expires);
    // The lease ref is pushed from the local cache, so the head must be fetched first.
    if !o.repo.has_commit(head) {
        let missing = o.repo.fetch(std::slice::from_ref(head))?;
        if !missing.is_empty() {
            return Err(CliError::invalid(format!(
                "commit {head} is not on {}: a candidate must be pushed before it is deployed",
                o.config.git_display
            ))
            .with_hint(
                "push the group's head to any branch of the remote, then re-run deploy --candidate",
            ));
        }
    }
    match o.repo.cas_ref(&refname, None, Some(head))? {
        crate::channel::ports::Cas::Updated => Ok(()),
        crate::channel::ports::Cas::Conflict { .. } => Err(CliError::new(
            Kind::Conflict,
            format!("lease {refname} already exists on {}", o.config.git_display),
        )),
    }
}

pub fn pin(ctx: &Context, args: &PinArgs, out: &mut dyn Write) -> Result<u8, CliError> {
    check_reason(&args.reason, "pin")?;
    let o = Opened::open(ctx, &args.channel)?;
    let (digest, commit) = resolve_pin_target(&o, &args.target)?;
    let pin = Pin {
        digest,
        commit,
        reason: args.reason.clone(),
        actor: o.actor.clone(),
        expires_at: expiry(&o, args.expires),
        kind: PinKind::Pin,
    };
    let report = o.executor().run(Request::Pin { pin })?;
    finish(ctx, &o, &report, out, false, None)
}

pub fn rollback(ctx: &Context, args: &RollbackArgs, out: &mut dyn Write) -> Result<u8, CliError> {
    check_reason(&args.reason, "rollback")?;
    let o = Opened::open(ctx, &args.channel)?;
    let commit = parse_commit(&args.commit, "COMMIT")?;
    let digest = artifact_of(&o, &commit)?.ok_or_else(|| {
        CliError::invalid(format!(
            "{} has no artifact {}: nothing to roll back to",
            o.config.store,
            commit.artifact_tag()
        ))
        .with_hint(
            "push it first: mainline push --git REPO --commit <sha> --path <dir> --to <store>",
        )
    })?;
    let pin = Pin {
        digest,
        commit: Some(commit),
        reason: args.reason.clone(),
        actor: o.actor.clone(),
        expires_at: expiry(&o, args.expires),
        kind: PinKind::Rollback,
    };
    let report = o.executor().run(Request::Pin { pin })?;
    finish(ctx, &o, &report, out, false, None)
}

pub fn unpin(ctx: &Context, args: &UnpinArgs, out: &mut dyn Write) -> Result<u8, CliError> {
    let o = Opened::open(ctx, &args.channel)?;
    let report = o.executor().run(Request::Unpin)?;
    finish(ctx, &o, &report, out, false, None)
}

fn expiry(o: &Opened, d: Option<std::time::Duration>) -> Option<Timestamp> {
    d.map(|d| o.clock.now().plus_millis(d.as_millis() as i64))
}

/// A pin names a digest in the channel's repository, or a commit whose artifact exists.
fn resolve_pin_target(o: &Opened, target: &str) -> Result<(Digest, Option<CommitId>), CliError> {
    if target.starts_with("sha256:") {
        let digest: Digest = target.parse()?;
        let m =
            crate::artifact::fetch_existing(&o.store, &ReferenceTarget::Digest(digest.clone()))?;
        let commit = mainline_pack::parse_manifest(&m.bytes)
            .ok()
            .and_then(|f| f.revision())
            .and_then(Result::ok)
            .map(|r| r.commit);
        return Ok((digest, commit));
    }
    let commit = parse_commit(target, "DIGEST|COMMIT")?;
    let digest = artifact_of(o, &commit)?.ok_or_else(|| {
        CliError::invalid(format!(
            "{} has no artifact {}",
            o.config.store,
            commit.artifact_tag()
        ))
        .with_hint("pin a digest instead, or push that commit's artifact first")
    })?;
    Ok((digest, Some(commit)))
}

/// The artifact of `commit`, as a gather reads it (the fact cache's, else the verified tag).
fn artifact_of(o: &Opened, commit: &CommitId) -> Result<Option<Digest>, CliError> {
    Ok(crate::channel::gather::verified_artifact(
        &o.store, &o.cache, commit,
    )?)
}

/// The longest group id accepted: queue refs are far shorter, and a lease id becomes part of
/// a git ref name (and a journal record).
pub const MAX_GROUP_ID: usize = 200;

/// A group id is one non-empty line of at most [`MAX_GROUP_ID`] characters.
fn check_group_id(id: &str) -> Result<(), CliError> {
    let problem = if id.trim().is_empty() {
        Some("is empty".to_owned())
    } else if id.chars().any(char::is_control) {
        Some("holds a line break or another control character".to_owned())
    } else if id.chars().count() > MAX_GROUP_ID {
        Some(format!(
            "is {} characters long (at most {MAX_GROUP_ID})",
            id.chars().count()
        ))
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(p) => {
            let shown: String = id.chars().take(60).collect();
            Err(CliError::invalid(format!("--group {shown:?} {p}")).with_hint(
                "pass the merge group's queue ref (gh-readonly-queue/main/pr-<N>-<sha>) or, with --queue lease, a short one-line id such as pr-42",
            ))
        }
    }
}

/// A pin's reason is recorded and shown by status: one non-empty line.
fn check_reason(reason: &str, command: &str) -> Result<(), CliError> {
    if reason.trim().is_empty() {
        return Err(CliError::invalid(format!("{command} --reason is empty"))
            .with_hint("say why, e.g. --reason \"INC-123: hold while we debug\""));
    }
    if reason.chars().any(char::is_control) {
        return Err(CliError::invalid(format!(
            "{command} --reason holds a line break or another control character"
        ))
        .with_hint("give the reason as one line"));
    }
    Ok(())
}

fn parse_commit(s: &str, what: &str) -> Result<CommitId, CliError> {
    s.parse::<CommitId>().map_err(|_| {
        CliError::invalid(format!(
            "{what} {s:?} is not a full commit id (40 hex digits)"
        ))
    })
}

fn mainline_tip(o: &Opened) -> Result<CommitId, CliError> {
    o.repo.view(&o.config.branch)?.mainline.ok_or_else(|| {
        CliError::invalid(format!(
            "branch {} does not exist on {}",
            o.config.branch, o.config.git_display
        ))
    })
}
