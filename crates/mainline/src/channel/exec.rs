//! The executor: the decide → act → read back → re-decide loop, under the channel lock, with
//! every step recorded in the journal.
//!
//! One run: observe (gather facts at cached depth, decide; escalate to full facts when the
//! decision depends on a skipped fact). A decision that writes nothing (Hold, a refusal, any
//! `status`) ends the run there, without taking the lock — the common "nothing changed"
//! reconcile stays one manifest HEAD and one ref listing. A decision that writes takes the lock,
//! settles what a crashed writer left in the journal, observes AGAIN under the lock (facts read
//! before the lock are never acted on), and then loops: renew the lock (a lost lock stops the
//! run before it writes), journal an intent, write the channel's identical manifest bytes, read
//! back, journal the move, and decide again as a plain reconcile on fresh facts. That
//! re-decision undoes a candidate write that raced with its group's end (DESIGN.md S4) and lets
//! any number of concurrent runs converge. At most `MAX_ROUNDS` writes per run.
//!
//! Crash safety: the channel only ever names complete artifacts (the store verifies blobs and
//! the manifest before the tag moves), so a kill at any point leaves a state the next run
//! re-decides from. The journal keeps intent-before / completion-after records; the next locked
//! run settles a dangling intent as `moved` (the channel names its target) or `abandoned`.
//!
//! Must never: write on facts read outside the lock (when a lock is configured), write after a
//! failed renew, or report a move that was not read back.

use super::cache::FactCache;
use super::effects::WriteOutcome;
use super::gather::{Depth, Gathered, Sources};
use super::journal::{Entry, EntryKind, Journal, RecordMemo};
use super::lock::{GitLock, Held, LockError};
use super::ports::{Builder, ChannelLock, Clock, Consumers, LockToken, Repo};
use super::ChannelConfig;
use crate::error::{CliError, Kind};
use mainline_core::{
    decide, Action, ChannelHead, CommitId, Decision, Digest, Known, Plan, Refusal, RefuseReason,
    Request, Verdict,
};
use mainline_store::Store;
use serde::Serialize;

pub use super::effects::repo_err;

/// At most this many channel writes in one run.
pub const MAX_ROUNDS: usize = 4;

/// How writers are serialised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// No lock: every run still re-decides from fresh facts and converges, but two writers may
    /// interleave (`status` says so).
    None,
    /// The git-ref lock on the source remote.
    Git { ttl_ms: i64, wait_ms: u64 },
    /// A Kubernetes `Lease` per channel; the backend is handed in with `with_lock_backend`.
    Kubernetes { ttl_ms: i64, wait_ms: u64 },
}

impl LockMode {
    pub fn git_default() -> LockMode {
        LockMode::Git {
            ttl_ms: 60_000,
            wait_ms: 120_000,
        }
    }
}

/// A channel write that happened (and was read back).
#[derive(Debug, Clone, Serialize)]
pub struct AppliedMove {
    pub action: Action,
    pub verdict: Verdict,
    pub from_digest: Option<Digest>,
    pub from_commit: Option<CommitId>,
    pub to_digest: Digest,
    pub to_commit: Option<CommitId>,
    /// True when the artifact was packed from git and pushed first.
    pub packed: bool,
    pub reason: String,
}

/// What one run did.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The decision on the facts as first read.
    pub decision: Decision,
    /// Every write, in order.
    pub moves: Vec<AppliedMove>,
    /// The decision after the last write (equal to `decision` when nothing moved).
    pub final_decision: Decision,
    /// Set when the request was refused.
    pub refusal: Option<Refusal>,
    /// Journal entries this run could not append (the run itself succeeded; a later locked
    /// run settles them).
    pub journal_warnings: Vec<String>,
    /// What nudging the consumers after each move gave (best effort; never changes the outcome).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<String>,
    /// The facts of the final decision, for `status` and the JSON report.
    #[serde(skip)]
    pub facts: Option<mainline_core::Facts>,
    /// `pin`/`rollback`: the active pin this run's pin replaced (also said in the journal).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaced_pin: Option<mainline_core::Pin>,
}

pub struct Executor<'a> {
    pub config: &'a ChannelConfig,
    pub store: &'a dyn Store,
    pub repo: &'a dyn Repo,
    pub builder: &'a dyn Builder,
    pub clock: &'a dyn Clock,
    pub cache: &'a FactCache,
    /// Who acts (CI run URL, user@host), recorded with pins and journal entries.
    pub actor: String,
    pub lock: LockMode,
    /// Record moves, pins, unpins and refusals in the journal.
    pub journal: bool,
    /// A lock backend other than the git ref (with `LockMode::Kubernetes`).
    pub lock_backend: Option<&'a dyn ChannelLock>,
    /// Nudged after every move.
    pub consumers: Option<&'a dyn Consumers>,
    /// Journal records this run already read (a record commit never changes).
    records: RecordMemo,
}

/// The lock held for one writing run.
pub(super) enum Locked<'l> {
    Git {
        lock: Box<GitLock<'l>>,
        held: Held,
    },
    External {
        lock: &'l dyn ChannelLock,
        token: LockToken,
    },
}

impl<'a> Executor<'a> {
    /// An executor over the given ports, unlocked and without a journal; see `with_lock` and
    /// `with_journal`.
    pub fn new(
        config: &'a ChannelConfig,
        store: &'a dyn Store,
        repo: &'a dyn Repo,
        builder: &'a dyn Builder,
        clock: &'a dyn Clock,
        cache: &'a FactCache,
        actor: String,
    ) -> Executor<'a> {
        Executor {
            config,
            store,
            repo,
            builder,
            clock,
            cache,
            actor,
            lock: LockMode::None,
            journal: false,
            lock_backend: None,
            consumers: None,
            records: RecordMemo::default(),
        }
    }

    /// Use `backend` as the channel lock (`LockMode::Kubernetes`).
    pub fn with_lock_backend(mut self, backend: &'a dyn ChannelLock) -> Executor<'a> {
        self.lock_backend = Some(backend);
        self
    }

    /// Nudge these consumers after every move.
    pub fn with_consumers(mut self, consumers: &'a dyn Consumers) -> Executor<'a> {
        self.consumers = Some(consumers);
        self
    }

    pub fn with_lock(mut self, lock: LockMode) -> Executor<'a> {
        self.lock = lock;
        self
    }

    pub fn with_journal(mut self, on: bool) -> Executor<'a> {
        self.journal = on;
        self
    }

    fn sources(&self) -> Sources<'_> {
        Sources {
            config: self.config,
            store: self.store,
            repo: self.repo,
            clock: self.clock,
            cache: self.cache,
        }
    }

    pub fn journal(&self) -> Journal<'_> {
        Journal::new(self.repo, self.clock, &self.config.key, &self.config.branch)
            .with_memo(&self.records)
    }

    pub fn git_lock(&self) -> GitLock<'_> {
        let mut lock = GitLock::new(
            self.repo,
            self.clock,
            &self.config.key,
            &self.config.branch,
            &self.actor,
        );
        if let LockMode::Git { ttl_ms, wait_ms } = self.lock {
            lock.ttl_ms = ttl_ms;
            lock.wait_ms = wait_ms;
        }
        lock
    }

    /// Gather and decide, escalating to full facts when a cached-depth decision depends on a
    /// fact it skipped.
    pub fn observe(&self, request: &Request) -> (Gathered, Decision) {
        let sources = self.sources();
        let g = sources.gather(request, Depth::Cached);
        let d = decide(&g.facts, request);
        let depends_on_unknown = d.verdict == Verdict::Unknown
            || matches!(&d.plan, Plan::Refuse(r) if r.reason == RefuseReason::FactsUnknown);
        if g.deferred && depends_on_unknown {
            let g = sources.gather(request, Depth::Full);
            let d = decide(&g.facts, request);
            return (g, d);
        }
        (g, d)
    }

    /// Run `request` to completion.
    pub fn run(&self, request: Request) -> Result<Report, CliError> {
        let (g, d) = self.observe(&request);
        let writes = match (&request, &d.plan) {
            (Request::Status, _) => false,
            (_, Plan::Refuse(_)) => false,
            (Request::Pin { .. }, _) => true,
            (_, plan) => matches!(plan, Plan::Move(_) | Plan::ClearPin),
        };
        // A run that would write nothing still settles what a dead writer left: an intent
        // nobody settled means `history` cannot say what prod ran. It takes the lock for that
        // (settling without it could mistake a live writer's intent for a dead one's), then
        // re-decides under the lock like any writer. `status` only reports it.
        let settle = !writes
            && self.journal
            && self.lock != LockMode::None
            && matches!(request, Request::Reconcile { .. })
            && self.dangling_intent(&g);
        let writes = writes || settle;
        if !writes {
            let mut report = self.report(d.clone(), Vec::new(), d, g);
            self.journal_refusal(&request, &report)
                .into_iter()
                .for_each(|w| report.journal_warnings.push(w));
            self.cache.save();
            return Ok(report);
        }
        let mut locked = match (self.lock, self.lock_backend) {
            (LockMode::None, _) => return self.run_writes(request, None).map(|r| self.nudge(r)),
            (LockMode::Git { .. }, _) => {
                let lock = Box::new(self.git_lock());
                let held = lock.acquire().map_err(|e| self.lock_err(e))?;
                Locked::Git { lock, held }
            }
            (LockMode::Kubernetes { .. }, Some(lock)) => Locked::External {
                lock,
                token: lock.acquire()?,
            },
            (LockMode::Kubernetes { .. }, None) => {
                return Err(CliError::invalid(
                    "--lock kubernetes needs the channel's Kubernetes settings ([kubernetes] in mainline.toml)",
                )
                .with_hint("or use --lock git"))
            }
        };
        let result = self.run_writes(request, Some(&mut locked));
        let released = match locked {
            Locked::Git { lock, held } => lock.release(held).map_err(|e| e.to_string()),
            Locked::External { lock, token } => lock.release(token).map_err(|e| e.to_string()),
        };
        if let Err(e) = released {
            tracing::warn!("could not release the channel lock (it expires by itself): {e}");
        }
        result.map(|r| self.nudge(r))
    }

    /// After the run's last write and with the lock released: ask the consumers to reconcile
    /// the digest the channel names now. Best effort: a slow or failing consumer never delays
    /// a write, holds the lock, or changes the outcome.
    fn nudge(&self, mut report: Report) -> Report {
        if let (Some(c), Some(last)) = (self.consumers, report.moves.last()) {
            report.triggers = c.nudge(&last.to_digest);
        }
        report
    }

    /// The writing part of a run, under the lock when one is configured.
    fn run_writes(
        &self,
        request: Request,
        mut locked: Option<&mut Locked<'_>>,
    ) -> Result<Report, CliError> {
        let mut warnings = Vec::new();
        // The first observation under the lock serves both the journal's settlement (what the
        // channel names now) and the first decision below: no second read of the same facts.
        let mut observed = Some(self.observe(&request));
        if locked.is_some() && self.journal {
            let current = observed
                .as_ref()
                .and_then(|(g, _)| channel_digest(&g.facts.channel));
            self.settle_journal(current, &mut warnings);
        }
        let original = request.clone();
        let mut request = request;
        let mut first: Option<Decision> = None;
        let mut moves: Vec<AppliedMove> = Vec::new();
        // Writes another writer overtook at once (read back as its digest): they count
        // towards MAX_ROUNDS like moves.
        let mut overtakes = 0usize;
        let mut replaced_pin = None;
        if let Request::Pin { pin } = &request {
            // The pin record goes first (even when the channel already names the digest), so
            // every later reconcile sees it; the channel follows in the loop below.
            let (g, d) = observed.take().unwrap_or_else(|| self.observe(&request));
            if matches!(d.plan, Plan::Refuse(_)) {
                let mut report = self.report(d.clone(), moves, d, g);
                warnings.extend(self.journal_refusal(&original, &report));
                report.journal_warnings = warnings;
                return Ok(report);
            }
            // A second pin replaces the first: never silently. The journal says whose it was.
            replaced_pin = g.facts.active_pin().cloned();
            self.write_pin(&g, pin)?;
            let reason = match &replaced_pin {
                Some(old) => format!(
                    "{} (replaces the {} of {} by {}: {})",
                    pin.reason,
                    pin_word(old),
                    old.digest.short(),
                    old.actor,
                    old.reason
                ),
                None => pin.reason.clone(),
            };
            let mut e = self.entry(EntryKind::Pin, &reason, &g);
            e.to_digest = Some(pin.digest.clone());
            e.to_commit = pin.commit.clone();
            self.append(e, &mut warnings);
            first = Some(d);
            request = Request::Reconcile {
                force_restore: false,
            };
        }
        loop {
            let (g, d) = observed.take().unwrap_or_else(|| self.observe(&request));
            let first_decision = first.get_or_insert_with(|| d.clone()).clone();
            match d.plan.clone() {
                Plan::Hold | Plan::Refuse(_) => {
                    let mut report = self.report(first_decision, moves, d, g);
                    report.replaced_pin = replaced_pin;
                    if report.refusal.is_some() {
                        warnings.extend(self.journal_refusal(&original, &report));
                    }
                    report.journal_warnings = warnings;
                    self.cache.save();
                    return Ok(report);
                }
                Plan::ClearPin => {
                    self.renew(&mut locked)?;
                    self.clear_pin(&g)?;
                    self.append(
                        self.entry(EntryKind::Unpin, "operator unpinned the channel", &g),
                        &mut warnings,
                    );
                    request = Request::Reconcile {
                        force_restore: false,
                    };
                }
                Plan::Move(mv) => {
                    if moves.len() + overtakes >= MAX_ROUNDS {
                        return Err(CliError::new(
                            Kind::Unavailable,
                            format!(
                                "{} kept changing under this run ({} writes); another writer is active",
                                self.config.channel_display(),
                                moves.len()
                            ),
                        )
                        .with_hint("re-run; with the git lock (--lock git) writers take turns"));
                    }
                    self.renew(&mut locked)?;
                    let mut intent = self.entry(EntryKind::Intent, &mv.reason, &g);
                    intent.action = Some(mv.action);
                    intent.verdict = Some(d.verdict);
                    intent.to_digest = mv.to_digest.clone();
                    intent.to_commit = mv.to_commit.clone();
                    // Without a recorded intent a crash would leave an unexplained move: a
                    // journal that cannot be written stops the move (except unlocked, where
                    // the journal is best effort).
                    let intent_seq = match self.journal_append(intent.clone()) {
                        Ok(seq) => seq,
                        Err(e) if locked.is_some() => return Err(e),
                        Err(e) => {
                            warnings.push(e.message);
                            None
                        }
                    };
                    let (error, abandoned, overtaken) =
                        match self.write_fenced(&g, &d, &mv, &mut locked) {
                            WriteOutcome::Moved(applied, note) => {
                                warnings.extend(note);
                                let mut done = intent;
                                done.kind = EntryKind::Moved;
                                done.intent = intent_seq;
                                done.to_digest = Some(applied.to_digest.clone());
                                done.after = Some(applied.to_digest.clone());
                                done.time = self.clock.now();
                                self.append(done, &mut warnings);
                                moves.push(applied);
                                // Re-decide on fresh facts: undo a write the world no longer allows.
                                request = Request::Reconcile {
                                    force_restore: false,
                                };
                                continue;
                            }
                            WriteOutcome::Overtaken { seen, error } => {
                                (error, Some(Some(seen)), true)
                            }
                            WriteOutcome::Failed { error, abandoned } => (error, abandoned, false),
                        };
                    if let Some(after) = abandoned {
                        let mut e = intent;
                        e.kind = EntryKind::Abandoned;
                        e.intent = intent_seq;
                        e.after = after;
                        e.reason = match overtaken {
                            true => error.message.clone(),
                            false => format!("the write did not land: {}", error.message),
                        };
                        e.time = self.clock.now();
                        self.append(e, &mut warnings);
                    }
                    if overtaken && moves.len() + overtakes + 1 < MAX_ROUNDS {
                        overtakes += 1;
                        warnings.push(error.message);
                        request = Request::Reconcile {
                            force_restore: false,
                        };
                        continue;
                    }
                    return Err(error);
                }
            }
        }
    }

    fn renew(&self, locked: &mut Option<&mut Locked<'_>>) -> Result<(), CliError> {
        match locked {
            None => Ok(()),
            Some(Locked::Git { lock, held }) => lock.renew(held).map_err(|e| self.lock_err(e)),
            Some(Locked::External { lock, token }) => lock.renew(token),
        }
    }

    fn lock_err(&self, e: LockError) -> CliError {
        // A lock ref we cannot read is not free and not busy: UNKNOWN (4), and the way out.
        let unreadable = matches!(
            &e,
            LockError::Unreadable { .. }
                | LockError::Repo {
                    source: super::ports::RepoError::NotARecord { .. },
                    ..
                }
        );
        let kind = match &e {
            _ if unreadable => Kind::Unknown,
            LockError::Busy { .. } | LockError::Repo { .. } => Kind::Unavailable,
            LockError::Lost { .. } => Kind::Conflict,
            LockError::Unreadable { .. } => Kind::Internal,
        };
        let hint = match &e {
            _ if unreadable => format!(
                "nothing was written; if no mainline run holds this lock (see `mainline status`), delete the ref: git push {} :{}",
                self.config.git_display,
                self.config.key.lock_ref()
            ),
            LockError::Lost { .. } => "nothing was written after the lock was lost; re-run to converge".into(),
            LockError::Busy { .. } => "another mainline run is working on this channel; retry, or use --lock none to run unlocked".into(),
            _ => "check access to the git remote".into(),
        };
        CliError::new(kind, crate::error::chain_message(&e)).with_hint(hint)
    }

    fn report(
        &self,
        first: Decision,
        moves: Vec<AppliedMove>,
        last: Decision,
        g: Gathered,
    ) -> Report {
        Report {
            refusal: last.plan.as_refusal().cloned(),
            decision: first,
            moves,
            final_decision: last,
            journal_warnings: Vec::new(),
            triggers: Vec::new(),
            facts: Some(g.facts),
            replaced_pin: None,
        }
    }

    /// A journal entry stamped with the channel, actor, time and current channel digest.
    pub(super) fn entry(&self, kind: EntryKind, reason: &str, g: &Gathered) -> Entry {
        let mut e = Entry::new(
            &self.config.channel_display(),
            kind,
            &self.actor,
            reason,
            self.clock.now(),
        );
        if let Known::Known(ChannelHead::Names { digest, commit }) = &g.facts.channel {
            e.from_digest = Some(digest.clone());
            e.from_commit = commit.known().cloned();
            e.after = Some(digest.clone());
        } else if let Known::Known(ChannelHead::Foreign { digest, .. }) = &g.facts.channel {
            e.from_digest = Some(digest.clone());
            e.after = Some(digest.clone());
        }
        e
    }

    /// Append an entry; returns its seq. `Ok(None)` when the journal is off.
    fn journal_append(&self, e: Entry) -> Result<Option<u64>, CliError> {
        if !self.journal {
            return Ok(None);
        }
        self.journal()
            .append(e)
            .map(|r| Some(r.entry.seq))
            .map_err(|e| CliError::new(Kind::Unavailable, crate::error::chain_message(&e)))
    }

    /// Append, turning a failure into a warning (the next locked run settles the journal).
    pub(super) fn append(&self, e: Entry, warnings: &mut Vec<String>) {
        if let Err(err) = self.journal_append(e) {
            tracing::warn!("{}", err.message);
            warnings.push(err.message);
        }
    }
}

/// "pin" or "rollback", for messages.
pub fn pin_word(p: &mainline_core::Pin) -> &'static str {
    match p.kind {
        mainline_core::PinKind::Rollback => "rollback",
        mainline_core::PinKind::Pin => "pin",
    }
}

/// What the channel names according to the facts: `Some(None)` when the tag is absent, `None`
/// when the channel could not be read.
pub(super) fn channel_digest(channel: &Known<ChannelHead>) -> Option<Option<Digest>> {
    match channel {
        Known::Known(ChannelHead::Absent) => Some(None),
        Known::Known(ChannelHead::Names { digest, .. } | ChannelHead::Foreign { digest, .. }) => {
            Some(Some(digest.clone()))
        }
        Known::Unknown { .. } => None,
    }
}
