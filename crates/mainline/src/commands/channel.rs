//! The channel commands — status, reconcile, deploy, promote, pin, unpin, rollback — as thin
//! wrappers: resolve settings, open the adapters, build a `Request`, run the executor, render.

use crate::adapters::git::{GitBuilder, GitRepo};
use crate::channel::cache::FactCache;
use crate::channel::exec::{AppliedMove, Executor, LockMode, Report};
use crate::channel::ports::{Clock, Repo, SystemClock};
use crate::channel::refs::sanitize;
use crate::channel::{ChannelConfig, QueueSource};
use crate::cli::{
    DeployArgs, PinArgs, PromoteArgs, ReconcileArgs, RollbackArgs, StatusArgs, UnpinArgs,
};
use crate::commands::push::io_err;
use crate::config::{self, ChannelArgs};
use crate::error::{exit, CliError, Kind};
use crate::output::emit;
use crate::settings::Context;
use mainline_core::{
    ChannelHead, CommitId, Digest, Group, Known, Pin, PinKind, Plan, Refusal, Request, Timestamp,
    Verdict,
};
use mainline_store::{ReferenceTarget, Store};
use serde::Serialize;
use std::io::Write;

/// Everything a channel command acts through.
pub struct Opened {
    pub config: ChannelConfig,
    pub store: Box<dyn Store>,
    pub repo: GitRepo,
    pub builder: GitBuilder,
    pub cache: FactCache,
    pub clock: SystemClock,
    pub actor: String,
    /// Flux consumers and the Lease lock, when `[kubernetes]` is configured.
    #[cfg(feature = "kubernetes")]
    pub kube: Option<crate::adapters::kube::Kube>,
}

impl Opened {
    pub fn open(ctx: &Context, args: &ChannelArgs) -> Result<Opened, CliError> {
        let (config, cache_root) = config::resolve(args)?;
        let store = ctx.open_store(&config.store)?;
        let repo = GitRepo::open(&config, &cache_root)?;
        let builder = GitBuilder::new(&repo, &config);
        let cache = FactCache::load(
            Some(
                cache_root
                    .join("facts")
                    .join(format!("{}.json", sanitize(&config.store.to_string()))),
            ),
            config.store.to_string(),
        );
        let actor = actor();
        #[cfg(feature = "kubernetes")]
        let kube = match &config.kubernetes {
            Some(raw) => Some(crate::adapters::kube::Kube::open(&config, raw, &actor)?),
            None => None,
        };
        #[cfg(not(feature = "kubernetes"))]
        if config.kubernetes.is_some() || matches!(config.lock, LockMode::Kubernetes { .. }) {
            return Err(CliError::invalid(
                "this mainline was built without the `kubernetes` feature, but [kubernetes] or --lock kubernetes is set",
            )
            .with_hint("use a release build (the feature is on by default)"));
        }
        Ok(Opened {
            config,
            store,
            repo,
            builder,
            cache,
            clock: SystemClock,
            actor,
            #[cfg(feature = "kubernetes")]
            kube,
        })
    }

    pub fn executor(&self) -> Executor<'_> {
        let exec = Executor::new(
            &self.config,
            self.store.as_ref(),
            &self.repo,
            &self.builder,
            &self.clock,
            &self.cache,
            self.actor.clone(),
        )
        .with_lock(self.config.lock)
        .with_journal(true);
        #[cfg(feature = "kubernetes")]
        let exec = match &self.kube {
            Some(k) => {
                let exec = match &k.consumers {
                    Some(c) => exec.with_consumers(c),
                    None => exec,
                };
                match &k.lock {
                    Some(l) => exec.with_lock_backend(l),
                    None => exec,
                }
            }
            None => exec,
        };
        exec
    }
}

/// Who is acting: the GitHub Actions run URL in CI, else user@host.
pub fn actor() -> String {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let (Some(server), Some(repo), Some(run)) = (
        env("GITHUB_SERVER_URL"),
        env("GITHUB_REPOSITORY"),
        env("GITHUB_RUN_ID"),
    ) {
        return format!("{server}/{repo}/actions/runs/{run}");
    }
    let user = env("USER").or_else(|| env("LOGNAME")).unwrap_or_else(|| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self").map_or("unknown".into(), |m| format!("uid{}", m.uid()))
    });
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into());
    format!("{user}@{host}")
}

/// The JSON (and text) report of every channel command. Keys are a public contract.
#[derive(Debug, Serialize)]
pub struct ChannelReport {
    pub channel: String,
    /// The verdict on the facts as first read.
    pub verdict: Verdict,
    pub explanation: String,
    /// What the channel names now (after any move).
    pub channel_digest: Option<Digest>,
    pub channel_commit: Option<CommitId>,
    pub mainline_commit: Option<CommitId>,
    /// The plan decided on the first facts (what reconcile would do, for status).
    pub plan: Plan,
    pub moves: Vec<AppliedMove>,
    pub final_verdict: Verdict,
    pub final_explanation: String,
    pub refusal: Option<Refusal>,
    pub groups: Vec<Group>,
    pub pin: Option<Pin>,
    /// `none`, or `git` with the holder when `status` looked.
    pub lock: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_holder: Option<crate::channel::lock::LockRecord>,
    /// Journal entries this run could not append (a later locked run settles them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub journal_warnings: Vec<String>,
    /// What nudging the Flux consumers after a move gave (best effort).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<String>,
    /// What each Flux consumer has applied versus what the channel names (`status`, `--wait`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub applied: Vec<AppliedReport>,
    /// With `--wait`: whether every consumer applied the channel's digest in time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait: Option<WaitReport>,
}

/// One consumer's applied state: APPLIED, PENDING, STUCK or UNREACHABLE.
#[derive(Debug, Serialize)]
pub struct AppliedReport {
    pub consumer: String,
    pub state: String,
    pub detail: String,
}

#[derive(Debug, Serialize)]
pub struct WaitReport {
    pub applied: bool,
    pub elapsed_ms: u128,
    pub polls: u32,
}

impl ChannelReport {
    pub fn new(config: &ChannelConfig, report: &Report) -> ChannelReport {
        let facts = report.facts.as_ref();
        let (channel_digest, channel_commit) = match facts.map(|f| &f.channel) {
            Some(Known::Known(ChannelHead::Names { digest, commit })) => {
                (Some(digest.clone()), commit.known().cloned())
            }
            _ => (None, None),
        };
        ChannelReport {
            channel: config.channel_display(),
            verdict: report.decision.verdict,
            explanation: report.decision.explanation.clone(),
            channel_digest,
            channel_commit,
            mainline_commit: facts.and_then(|f| f.mainline.known().cloned()),
            plan: report.decision.plan.clone(),
            moves: report.moves.clone(),
            final_verdict: report.final_decision.verdict,
            final_explanation: report.final_decision.explanation.clone(),
            refusal: report.refusal.clone(),
            groups: facts
                .and_then(|f| f.groups.known())
                .map(|gs| {
                    gs.iter()
                        .filter(|g| g.is_in_flight(facts.map_or(Timestamp(0), |f| f.now)))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default(),
            pin: facts.and_then(|f| f.active_pin().cloned()),
            lock: match config.lock {
                LockMode::None => {
                    "none: unlocked (every run still re-decides from fresh facts and converges)"
                        .into()
                }
                LockMode::Git { .. } => format!("git: {}", config.key.lock_ref()),
                LockMode::Kubernetes { .. } => "kubernetes: a Lease per channel".into(),
            },
            lock_holder: None,
            journal_warnings: report.journal_warnings.clone(),
            triggers: report.triggers.clone(),
            applied: Vec::new(),
            wait: None,
        }
    }

    /// The exit code: refusal 5, UNKNOWN 4, BEHIND/DIVERGED left standing 3, else 0. A
    /// refusal because a fact could not be read (e.g. evidence, after retries) is UNKNOWN, 4:
    /// nothing forbids the move, it just cannot be checked now.
    pub fn exit_code(&self) -> u8 {
        if let Some(r) = &self.refusal {
            return if r.reason == mainline_core::RefuseReason::FactsUnknown {
                exit::UNKNOWN
            } else {
                Kind::Refused.exit_code()
            };
        }
        verdict_exit(self.final_verdict)
    }

    /// `  applied  STATE ns/name: detail`, one line per Flux consumer.
    fn render_applied(&self, w: &mut dyn Write) -> std::io::Result<()> {
        for a in &self.applied {
            if a.detail.is_empty() {
                writeln!(w, "  applied  {} {}", a.state, a.consumer)?;
            } else {
                writeln!(w, "  applied  {} {}: {}", a.state, a.consumer, a.detail)?;
            }
        }
        Ok(())
    }

    fn render(&self, w: &mut dyn Write, status_only: bool) -> std::io::Result<()> {
        let short =
            |c: &Option<CommitId>| c.as_ref().map_or("-".to_owned(), |c| c.short().to_owned());
        writeln!(w, "channel   {}", self.channel)?;
        writeln!(w, "verdict   {}  {}", self.verdict, self.explanation)?;
        writeln!(
            w,
            "  prod     {} (commit {})",
            self.channel_digest
                .as_ref()
                .map_or("(tag absent)", |d| d.short()),
            short(&self.channel_commit)
        )?;
        if status_only {
            // Right under `prod`: what the Flux consumers have applied of it.
            self.render_applied(w)?;
        }
        writeln!(w, "  mainline {}", short(&self.mainline_commit))?;
        for g in &self.groups {
            writeln!(
                w,
                "  queue    {} at {}",
                mainline_core::display_group_id(&g.id),
                g.head.short()
            )?;
        }
        if let Some(p) = &self.pin {
            let until = p
                .expires_at
                .map_or("until unpinned".to_owned(), |t| format!("until {t}"));
            writeln!(
                w,
                "  PINNED   {} by {} ({}) {until}",
                p.digest.short(),
                p.actor,
                p.reason
            )?;
        }
        writeln!(w, "  lock     {}", self.lock)?;
        if status_only {
            match &self.plan {
                Plan::Move(m) => writeln!(
                    w,
                    "reconcile would {:?} to {}: {}",
                    m.action,
                    m.to_commit.as_ref().map_or("-", |c| c.short()),
                    m.reason
                )?,
                Plan::Hold => writeln!(w, "reconcile would hold")?,
                Plan::Refuse(r) => writeln!(w, "refused ({}): {}", r.reason, r.message)?,
                Plan::ClearPin => writeln!(w, "unpin would clear the pin")?,
            }
            return Ok(());
        }
        for m in &self.moves {
            writeln!(
                w,
                "moved     {:?}: {} -> {} (commit {}){}",
                m.action,
                m.from_digest.as_ref().map_or("(absent)", |d| d.short()),
                m.to_digest.short(),
                short(&m.to_commit),
                if m.packed { ", packed from git" } else { "" }
            )?;
        }
        self.render_applied(w)?;
        for t in &self.triggers {
            writeln!(w, "  nudged   {t}")?;
        }
        if let Some(wr) = &self.wait {
            writeln!(
                w,
                "  waited   {} ms, {} polls: {}",
                wr.elapsed_ms,
                wr.polls,
                if wr.applied {
                    "every consumer applied the digest"
                } else {
                    "NOT applied in time"
                }
            )?;
        }
        for warning in &self.journal_warnings {
            writeln!(w, "warning   journal: {warning}")?;
        }
        if let Some(r) = &self.refusal {
            writeln!(w, "REFUSED   {}: {}", r.reason, r.message)?;
        } else if self.moves.is_empty() {
            writeln!(w, "held      nothing to do")?;
        }
        if !self.moves.is_empty() || self.final_verdict != self.verdict {
            writeln!(
                w,
                "now       {}  {}",
                self.final_verdict, self.final_explanation
            )?;
        }
        Ok(())
    }
}

pub fn verdict_exit(v: Verdict) -> u8 {
    match v {
        Verdict::Converged | Verdict::Candidate | Verdict::Pinned => exit::OK,
        Verdict::Behind | Verdict::Diverged => exit::NEEDS_ACTION,
        Verdict::Unknown => exit::UNKNOWN,
    }
}

fn finish(
    ctx: &Context,
    o: &Opened,
    report: &Report,
    out: &mut dyn Write,
    status_only: bool,
    wait: Option<std::time::Duration>,
) -> Result<u8, CliError> {
    let mut r = ChannelReport::new(&o.config, report);
    if status_only && o.config.lock != LockMode::None {
        // status shows who holds the lock (one more read; only status pays it), from the
        // backend that is configured: the git ref, or the channel's Lease.
        let now = o.clock.now();
        let current = match o.config.lock {
            LockMode::Kubernetes { .. } => lease_holder(o),
            _ => o
                .executor()
                .git_lock()
                .current()
                .map(|h| h.map(|h| (h.record.holder.clone(), h.record.expires_at, Some(h.record))))
                .map_err(|e| e.to_string()),
        };
        match current {
            Ok(None) => r.lock.push_str(" (free)"),
            Ok(Some((holder, expires_at, _))) if expires_at <= now => r
                .lock
                .push_str(&format!(" (free: {holder}'s hold expired at {expires_at})")),
            Ok(Some((holder, expires_at, record))) => {
                r.lock
                    .push_str(&format!(" (held by {holder} until {expires_at})"));
                r.lock_holder = record;
            }
            Err(e) => r.lock.push_str(&format!(" (holder unreadable: {e})")),
        }
    }
    let waited = consumers_view(o, &mut r, status_only, wait);
    emit(ctx, out, &r, |w| r.render(w, status_only)).map_err(io_err)?;
    Ok(if status_only {
        verdict_exit(r.verdict)
    } else if waited == Some(false) && r.refusal.is_none() {
        WAIT_TIMED_OUT
    } else {
        r.exit_code()
    })
}

/// Who holds the channel's Lease (`--lock kubernetes`): holder and expiry.
type HolderView = Option<(String, Timestamp, Option<crate::channel::lock::LockRecord>)>;

#[cfg(feature = "kubernetes")]
fn lease_holder(o: &Opened) -> Result<HolderView, String> {
    use crate::channel::ports::ChannelLock;
    let lock = o
        .kube
        .as_ref()
        .and_then(|k| k.lock.as_ref())
        .ok_or("--lock kubernetes needs [kubernetes] in mainline.toml")?;
    lock.holder()
        .map(|h| h.map(|h| (h.holder, h.expires_at, None)))
        .map_err(|e| e.message)
}

#[cfg(not(feature = "kubernetes"))]
fn lease_holder(_: &Opened) -> Result<HolderView, String> {
    Err("this mainline was built without the `kubernetes` feature".into())
}

/// Exit code when `--wait` ran out before every consumer applied the digest.
pub const WAIT_TIMED_OUT: u8 = 10;

/// Fill in what the Flux consumers applied (for `status`), or wait for them (`--wait`).
/// Returns whether the wait succeeded, when there was one.
#[cfg(feature = "kubernetes")]
fn consumers_view(
    o: &Opened,
    r: &mut ChannelReport,
    status_only: bool,
    wait: Option<std::time::Duration>,
) -> Option<bool> {
    use crate::adapters::kube;
    use mainline_kube::AppliedState;
    let consumers = o.kube.as_ref().and_then(|k| k.consumers.as_ref())?;
    let digest = r.channel_digest.clone()?;
    let to_report = |states: Vec<mainline_kube::ConsumerState>| -> Vec<AppliedReport> {
        states
            .into_iter()
            .map(|s| AppliedReport {
                consumer: s.source,
                state: s.state.label().to_owned(),
                // The detail without the state's label (it is in `state` already).
                detail: match s.state {
                    AppliedState::Applied => String::new(),
                    AppliedState::Pending { detail } => detail,
                    AppliedState::Stuck {
                        object,
                        reason,
                        message,
                    } => format!("{object}: {message} ({reason})"),
                    AppliedState::Unreachable { reason } => reason,
                },
            })
            .collect()
    };
    match wait {
        Some(budget) if r.refusal.is_none() => {
            let outcome = kube::wait(consumers, &digest, budget);
            r.wait = Some(WaitReport {
                applied: outcome.applied,
                elapsed_ms: outcome.elapsed.as_millis(),
                polls: outcome.polls,
            });
            r.applied = to_report(outcome.states);
            Some(outcome.applied)
        }
        _ if status_only => {
            r.applied = to_report(kube::observe(consumers, &digest));
            None
        }
        _ => None,
    }
}

#[cfg(not(feature = "kubernetes"))]
fn consumers_view(
    _: &Opened,
    _: &mut ChannelReport,
    _: bool,
    _: Option<std::time::Duration>,
) -> Option<bool> {
    None
}

/// `--wait` needs consumers to wait for; say so before anything is written.
fn check_wait(o: &Opened, wait: Option<std::time::Duration>) -> Result<(), CliError> {
    #[cfg(feature = "kubernetes")]
    let has = o.kube.as_ref().is_some_and(|k| k.consumers.is_some());
    #[cfg(not(feature = "kubernetes"))]
    let has = {
        let _ = o;
        false
    };
    if wait.is_some() && !has {
        return Err(CliError::invalid("--wait needs Flux consumers to wait for")
            .with_hint("add [kubernetes] consumers = [{ namespace = \"flux-system\", oci_repository = \"app\" }] to mainline.toml"));
    }
    Ok(())
}

pub fn status(ctx: &Context, args: &StatusArgs, out: &mut dyn Write) -> Result<u8, CliError> {
    let o = Opened::open(ctx, &args.channel)?;
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
    let o = Opened::open(ctx, &args.channel)?;
    check_wait(&o, args.wait)?;
    let gh = crate::github_env::MergeGroupEnv::read()?;
    let commit = args
        .commit
        .clone()
        .or_else(|| gh.as_ref().map(|g| g.head_sha.clone()))
        .or_else(|| std::env::var("GITHUB_SHA").ok());
    if !args.candidate {
        let commit = match commit {
            Some(c) => parse_commit(&c, "--commit")?,
            None => mainline_tip(&o)?,
        };
        let report = o.executor().run(Request::Promote { commit })?;
        return finish(ctx, &o, &report, out, false, args.wait);
    }
    let head = parse_commit(
        &commit.ok_or_else(|| {
            CliError::invalid("deploy --candidate needs the group's head commit")
                .with_hint("pass --commit SHA, or run it in a GitHub Actions merge_group job")
        })?,
        "--commit",
    )?;
    let group_id = args
        .group
        .clone()
        .or_else(|| gh.as_ref().map(|g| g.group_id()))
        .ok_or_else(|| {
            CliError::invalid("deploy --candidate needs the merge group")
                .with_hint("pass --group gh-readonly-queue/main/pr-<N>-<sha> (or any id with --queue lease), or run it in a merge_group job")
        })?;
    let group_id = group_id
        .strip_prefix("refs/heads/")
        .unwrap_or(&group_id)
        .to_owned();
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
        let missing = o
            .repo
            .fetch(std::slice::from_ref(head))
            .map_err(crate::channel::exec::repo_err)?;
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
    match o
        .repo
        .cas_ref(&refname, None, Some(head))
        .map_err(crate::channel::exec::repo_err)?
    {
        crate::channel::ports::Cas::Updated => Ok(()),
        crate::channel::ports::Cas::Conflict { .. } => Err(CliError::new(
            Kind::Conflict,
            format!("lease {refname} already exists on {}", o.config.git_display),
        )),
    }
}

pub fn pin(ctx: &Context, args: &PinArgs, out: &mut dyn Write) -> Result<u8, CliError> {
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
    let o = Opened::open(ctx, &args.channel)?;
    let commit = parse_commit(&args.commit, "COMMIT")?;
    let digest = o.store.resolve(&commit.artifact_tag())?.ok_or_else(|| {
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
        let m = crate::artifact::fetch_existing(
            o.store.as_ref(),
            &ReferenceTarget::Digest(digest.clone()),
        )?;
        let commit = mainline_pack::parse_manifest(&m.bytes)
            .ok()
            .and_then(|f| f.revision())
            .and_then(Result::ok)
            .map(|r| r.commit);
        return Ok((digest, commit));
    }
    let commit = parse_commit(target, "DIGEST|COMMIT")?;
    let digest = o.store.resolve(&commit.artifact_tag())?.ok_or_else(|| {
        CliError::invalid(format!(
            "{} has no artifact {}",
            o.config.store,
            commit.artifact_tag()
        ))
        .with_hint("pin a digest instead, or push that commit's artifact first")
    })?;
    Ok((digest, Some(commit)))
}

fn parse_commit(s: &str, what: &str) -> Result<CommitId, CliError> {
    s.parse::<CommitId>().map_err(|_| {
        CliError::invalid(format!(
            "{what} {s:?} is not a full commit id (40 hex digits)"
        ))
    })
}

fn mainline_tip(o: &Opened) -> Result<CommitId, CliError> {
    o.repo
        .view(&o.config.branch)
        .map_err(crate::channel::exec::repo_err)?
        .mainline
        .ok_or_else(|| {
            CliError::invalid(format!(
                "branch {} does not exist on {}",
                o.config.branch, o.config.git_display
            ))
        })
}
