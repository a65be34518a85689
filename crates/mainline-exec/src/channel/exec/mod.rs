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

mod values;

pub use values::{AppliedMove, LockMode, Report};

use super::cache::FactCache;
use super::error::ExecError;
use super::gather::{Depth, Gathered, Prior, Sources};
use super::journal::{Entry, EntryKind, Journal, RecordMemo};
use super::lock::{GitLock, Held};
use super::ports::{Builder, ChannelLock, Clock, Consumers, LockToken, Repo};
use super::rounds::Carried;
use super::short::Short;
use super::ChannelConfig;
use mainline_core::{
    decide, ChannelHead, Decision, Digest, Known, Plan, RefuseReason, Request, Verdict,
};
use mainline_store::Store;

/// At most this many channel writes in one run.
pub const MAX_ROUNDS: usize = 4;

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
    /// Read the refs and the channel tag in parallel (see `gather::Sources::parallel`).
    pub parallel_reads: bool,
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
        /// The backend's TTL (`--lock-ttl`).
        ttl_ms: i64,
        /// Until when (monotonic ms, less the safety margin) the last write hold declared on
        /// the backend is ours (see `fence.rs`); `None` when none was, or a plain renewal has
        /// declared one TTL since (it shortens the hold as takers judge it).
        write_hold_until: Option<i64>,
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
            parallel_reads: false,
        }
    }

    /// List the refs and read the channel tag at the same time, on two threads: one round trip
    /// less per observation at a distance. For real adapters; the simulator stays sequential.
    pub fn with_parallel_reads(mut self, on: bool) -> Executor<'a> {
        self.parallel_reads = on;
        self
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
            parallel: self.parallel_reads,
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
        self.observe_from(request, Prior::default())
    }

    /// [`Executor::observe`], taking from `prior` what was read already. The escalation
    /// re-reads only what the cached depth skipped: the ref listing and the channel tag it
    /// already read are reused (they are a moment old, as on the first pass).
    pub(super) fn observe_from(&self, request: &Request, prior: Prior) -> (Gathered, Decision) {
        let sources = self.sources();
        // A fresh cache (a new runner) would defer every lookup and escalate: it reads at full
        // depth at once, the lookups alongside the fetch (`Sources::gather_from`).
        if self.parallel_reads && self.cache.knows_no_revision() {
            let g = sources.gather_from(request, Depth::Full, prior);
            let d = decide(&g.facts, request);
            return (g, d);
        }
        let g = sources.gather_from(request, Depth::Cached, prior);
        let d = decide(&g.facts, request);
        let depends_on_unknown = d.verdict == Verdict::Unknown
            || matches!(&d.plan, Plan::Refuse(r) if r.reason == RefuseReason::FactsUnknown);
        if g.deferred && depends_on_unknown {
            let prior = match (&g.view, channel_digest(&g.facts.channel)) {
                // A listing or a tag that could not be read is read again.
                (Some(view), Some(channel)) => Prior {
                    view: Some(view.clone()),
                    channel: Some(channel),
                },
                _ => Prior::default(),
            };
            let g = sources.gather_from(request, Depth::Full, prior);
            let d = decide(&g.facts, request);
            return (g, d);
        }
        (g, d)
    }

    /// Run `request` to completion.
    pub fn run(&self, request: Request) -> Result<Report, ExecError> {
        let (g, d) = self.observe(&request);
        let writes = match (&request, &d.plan) {
            (Request::Status, _) => false,
            // "A newer group holds the channel" answers a deploy as deployed with that group
            // (G: its gate opens now), a claim about what the channel will keep naming. A
            // writer holding the lock may have a move in flight that changes it (a restore
            // decided before this group's artifact existed, landing late), so the claim is
            // made under the lock, on facts read there, like a write.
            (Request::DeployCandidate { .. }, Plan::Refuse(r))
                if r.reason == RefuseReason::NewerGroupHolds && self.lock != LockMode::None =>
            {
                true
            }
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
        // The common move takes the short path (`short.rs`): lock and intent in one push,
        // outcome and release in another; a pin or an unpin rides in the first push. It hands
        // over here when its conditions do not hold.
        let mut carried = Carried::default();
        let mut now = request.clone();
        let short = !settle
            && matches!(d.plan, Plan::Move(_) | Plan::ClearPin)
            && self.short_path_start(&g).is_some();
        if short {
            match self.run_short(&request, g, d)? {
                Short::Done(report) => return Ok(self.nudge(*report)),
                Short::Handover(c) => {
                    if !c.moves.is_empty() || c.overtakes > 0 || c.pin_recorded {
                        now = Request::Reconcile {
                            force_restore: false,
                        };
                    }
                    carried = *c;
                }
            }
        }
        let mut locked = match (self.lock, self.lock_backend) {
            (LockMode::None, _) => {
                return self
                    .run_writes(request, now, None, carried)
                    .map(|r| self.nudge(r))
            }
            (LockMode::Git { .. }, _) => {
                let lock = Box::new(self.git_lock());
                let held = lock.acquire().map_err(|e| self.lock_err(e))?;
                Locked::Git { lock, held }
            }
            (LockMode::Kubernetes { ttl_ms, .. }, Some(lock)) => Locked::External {
                lock,
                token: lock.acquire()?,
                ttl_ms,
                write_hold_until: None,
            },
            (LockMode::Kubernetes { .. }, None) => return Err(ExecError::NoKubernetesSettings),
        };
        let result = self.run_writes(request, now, Some(&mut locked), carried);
        let released = match locked {
            Locked::Git { lock, held } => lock.release(held).map_err(|e| e.to_string()),
            Locked::External { lock, token, .. } => lock.release(token).map_err(|e| e.to_string()),
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

    pub(super) fn report(
        &self,
        first: Decision,
        moves: Vec<AppliedMove>,
        last: Decision,
        g: Gathered,
    ) -> Report {
        let lock_listed = g
            .view
            .as_ref()
            .map(|v| v.mainline_refs.get(&self.config.key.lock_ref()).cloned());
        Report {
            lock_listed,
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

    /// The intent to record before the move `mv` of decision `d` (observed as `g`).
    pub(super) fn intent_entry(
        &self,
        g: &Gathered,
        d: &Decision,
        mv: &mainline_core::Move,
    ) -> Entry {
        let mut intent = self.entry(EntryKind::Intent, &mv.reason, g);
        intent.action = Some(mv.action);
        intent.verdict = Some(d.verdict);
        intent.to_digest = mv.to_digest.clone();
        intent.to_commit = mv.to_commit.clone();
        intent
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
    pub(super) fn journal_append(&self, e: Entry) -> Result<Option<u64>, ExecError> {
        if !self.journal {
            return Ok(None);
        }
        self.journal()
            .append(e)
            .map(|r| Some(r.entry.seq))
            .map_err(ExecError::from)
    }

    /// Append, turning a failure into a warning (the next locked run settles the journal).
    pub(super) fn append(&self, e: Entry, warnings: &mut Vec<String>) {
        if let Err(err) = self.journal_append(e) {
            let message = err.message();
            tracing::warn!("{message}");
            warnings.push(message);
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
