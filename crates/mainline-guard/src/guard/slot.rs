//! One watched channel: its adapters (opened once and kept, so the fact cache and the
//! registry connection survive between reconciles), its state, and the blocking run that
//! reconciles it and records the outcome.
//!
//! A run is exactly what `mainline reconcile` does — `Executor::run` over the same ports, with
//! the channel's lock and the journal — plus, afterwards, reading what the page shows: the lock
//! holder (only when the run's first ref listing showed a lock ref) and the journal's tail (only
//! when the journal head moved or this run wrote). So the "nothing changed" reconcile costs the
//! executor's one manifest HEAD and one ref listing, and nothing more — plus, for a channel with
//! Kubernetes settings, one GET per Flux object it names (what prod applied) and one on its
//! Lease (the holder) when the lock is a Lease.
//!
//! Invariants: runs of one channel never overlap (the caller holds `run_lock`); every method
//! here blocks and is called from a blocking thread; a slot is dropped outside the async runtime
//! (a registry store owns a runtime of its own).
//! Must never: decide anything (the executor does), or hide a failed run behind the last good
//! verdict (the state turns UNKNOWN).

use super::settings::ChannelSpec;
use super::state::{ChannelState, LockView};
use crate::adapters::git::{GitBuilder, GitRepo};
use crate::adapters::github::GithubQueue;
use crate::assemble::ChannelPorts;
use crate::channel::cache::FactCache;
use crate::channel::exec::{Executor, LockMode, Report};
use crate::channel::journal::Journal;
use crate::channel::lock::GitLock;
use crate::channel::ports::{Clock, RemoteView, Repo, RepoError, RepoWrapper, SystemClock};
use crate::error::CliError;
use mainline_core::{CommitId, Digest, Request};
use mainline_store::{ReferenceTarget, Store};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A [`Repo`] that remembers the first ref listing of a run, so the guard learns the lock and
/// journal heads from the listing the executor made anyway.
pub struct Observed {
    inner: Box<dyn Repo>,
    first: Mutex<Option<RemoteView>>,
}

impl Observed {
    pub fn new(inner: Box<dyn Repo>) -> Observed {
        Observed {
            inner,
            first: Mutex::new(None),
        }
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<RemoteView>> {
        self.first.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forget the last run's listing.
    pub fn begin(&self) {
        *self.slot() = None;
    }

    /// The first listing since [`Observed::begin`], if any succeeded.
    pub fn first_view(&self) -> Option<RemoteView> {
        self.slot().take()
    }
}

impl RepoWrapper for Observed {
    fn inner(&self) -> &dyn Repo {
        self.inner.as_ref()
    }
    fn view(&self, branch: &str) -> Result<RemoteView, RepoError> {
        let v = self.inner.view(branch)?;
        let mut first = self.slot();
        if first.is_none() {
            *first = Some(v.clone());
        }
        Ok(v)
    }
}

/// The adapters of one channel.
pub struct Ports {
    pub store: Box<dyn Store>,
    pub repo: Observed,
    /// The plain git remote (journal and lock reads never need the GitHub API).
    pub git: GitRepo,
    pub builder: GitBuilder,
    pub cache: Arc<FactCache>,
    pub queue: Option<Arc<GithubQueue>>,
    /// The channel's Flux consumers and Lease lock, when it has a `kubernetes` table.
    #[cfg(feature = "kubernetes")]
    pub kube: Option<crate::adapters::kube::Kube>,
}

/// One channel the guard watches.
pub struct Slot {
    pub spec: ChannelSpec,
    pub ports: Ports,
    pub clock: SystemClock,
    pub actor: String,
    pub history_len: usize,
    pub state: Mutex<ChannelState>,
    /// Wakes the channel's loop for an immediate reconcile (webhook, API).
    pub trigger: tokio::sync::Notify,
    /// Why the next triggered run happens (webhook event, API call).
    pub pending: Mutex<Option<String>>,
    /// Serialises runs of this channel (the loop's reconciles and API pins/unpins).
    pub run_lock: tokio::sync::Mutex<()>,
}

impl Slot {
    pub fn new(spec: ChannelSpec, ports: Ports, actor: String, history_len: usize) -> Slot {
        let clock = SystemClock;
        let mut state = ChannelState::new(clock.now());
        state.lock.backend = match spec.config.lock {
            LockMode::None => "none".into(),
            LockMode::Git { .. } => "git".into(),
            LockMode::Kubernetes { .. } => "kubernetes".into(),
        };
        Slot {
            spec,
            ports,
            clock,
            actor,
            history_len,
            state: Mutex::new(state),
            trigger: tokio::sync::Notify::new(),
            pending: Mutex::new(None),
            run_lock: tokio::sync::Mutex::new(()),
        }
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    pub fn state(&self) -> std::sync::MutexGuard<'_, ChannelState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Ask for a reconcile as soon as the channel's loop can run one (coalesced).
    pub fn request(&self, why: &str) {
        *self.pending.lock().unwrap_or_else(|p| p.into_inner()) = Some(why.to_owned());
        self.trigger.notify_one();
    }

    /// The reason recorded by the last [`Slot::request`], if one is pending.
    pub fn take_pending(&self) -> Option<String> {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// The executor over this channel's ports, assembled as the CLI's `Opened::executor`
    /// assembles it (`crate::assemble`).
    fn executor(&self, actor: &str) -> Executor<'_> {
        ChannelPorts {
            config: &self.spec.config,
            store: self.ports.store.as_ref(),
            repo: &self.ports.repo,
            builder: &self.ports.builder,
            clock: &self.clock,
            cache: &self.ports.cache,
            #[cfg(feature = "kubernetes")]
            kube: self.ports.kube.as_ref(),
        }
        .executor(actor.to_owned(), self.spec.config.lock)
    }

    /// Run `request` (blocking) as the guard, then record its outcome, the lock and the
    /// journal's tail.
    pub fn run(&self, request: Request, trigger: &str) -> Result<Report, CliError> {
        self.run_as(request, trigger, &self.actor.clone())
    }

    /// [`Slot::run`] with the journal and lock naming `actor` (an API action names its token).
    /// The duration recorded is the whole run: the executor (lock, journal, writes), then the
    /// lock and journal reads for the page.
    pub fn run_as(&self, request: Request, trigger: &str, actor: &str) -> Result<Report, CliError> {
        let started = Instant::now();
        {
            let mut s = self.state();
            s.running = true;
            s.last_started = Some(self.clock.now());
            s.last_trigger = Some(trigger.to_owned());
        }
        self.ports.repo.begin();
        let writes_journal = matches!(request, Request::Pin { .. } | Request::Unpin);
        let result = self.executor(actor).run(request).map_err(CliError::from);
        let view = self.ports.repo.first_view();
        let lock = self.read_lock(view.as_ref());
        let moved = result.as_ref().is_ok_and(|r| !r.moves.is_empty());
        let journal_head = view.as_ref().and_then(|v| {
            v.mainline_refs
                .get(&self.spec.config.key.journal_ref())
                .cloned()
        });
        let stale = {
            let s = self.state();
            moved || writes_journal || (view.is_some() && journal_head != s.history_head)
        };
        let history = stale.then(|| self.read_history());
        // After the run (a consumer never delays a write), on this blocking thread.
        #[cfg(feature = "kubernetes")]
        let applied = super::kube::applied(self.ports.kube.as_ref(), &result, self.clock.now());
        let seconds = started.elapsed().as_secs_f64();
        match &result {
            Ok(r) => tracing::info!(
                channel = %self.spec.name,
                trigger,
                verdict = %r.final_decision.verdict,
                moves = r.moves.len(),
                seconds,
                "reconciled"
            ),
            Err(e) => tracing::warn!(
                channel = %self.spec.name,
                trigger,
                kind = ?e.kind,
                seconds,
                "reconcile failed: {}",
                e.message
            ),
        }
        let mut s = self.state();
        s.record(&self.spec.config, &result, self.clock.now(), seconds);
        s.lock = lock;
        s.queue_warning = self.ports.queue.as_ref().and_then(|q| q.last_error());
        #[cfg(feature = "kubernetes")]
        if let Some(view) = applied {
            s.apply_timing.observe(&view, moved);
            s.applied = Some(view);
        }
        if let Some(h) = history {
            s.take_history(h, self.clock.now());
        }
        s.running = false;
        result
    }

    /// The lock as the run's first listing showed it; the holder is read only when a lock ref
    /// was there.
    fn read_lock(&self, view: Option<&RemoteView>) -> LockView {
        let mut lock = LockView {
            backend: self.state().lock.backend.clone(),
            ..LockView::default()
        };
        if let LockMode::Kubernetes { .. } = self.spec.config.lock {
            return self.read_lease(lock);
        }
        // Only the git-ref lock is visible in the ref listing; `none` has no holder.
        if !matches!(self.spec.config.lock, LockMode::Git { .. }) {
            return lock;
        }
        let Some(view) = view else {
            lock.error = Some("the git remote's refs could not be listed".into());
            return lock;
        };
        let key = &self.spec.config.key;
        if !view.mainline_refs.contains_key(&key.lock_ref()) {
            return lock;
        }
        lock.held = true;
        let reader = GitLock::new(
            &self.ports.git,
            &self.clock,
            key,
            &self.spec.config.branch,
            &self.actor,
        );
        match reader.current() {
            Ok(Some(h)) => {
                lock.holder = Some(h.record.holder);
                lock.expires_at = Some(h.record.expires_at);
            }
            Ok(None) => lock.held = false,
            Err(e) => lock.error = Some(e.to_string()),
        }
        lock
    }

    /// The Lease's holder (one GET on the Lease; a released Lease has none).
    #[cfg(feature = "kubernetes")]
    fn read_lease(&self, mut lock: LockView) -> LockView {
        use crate::channel::ports::ChannelLock;
        let Some(lease) = self.ports.kube.as_ref().and_then(|k| k.lock.as_ref()) else {
            lock.error = Some("no Lease lock was opened for this channel".into());
            return lock;
        };
        match lease.holder() {
            Ok(Some(h)) => {
                lock.held = true;
                lock.holder = Some(h.holder);
                lock.expires_at = Some(h.expires_at);
            }
            Ok(None) => {}
            Err(e) => lock.error = Some(e.to_string()),
        }
        lock
    }

    #[cfg(not(feature = "kubernetes"))]
    fn read_lease(&self, lock: LockView) -> LockView {
        lock
    }

    /// The newest `history_len` journal records (oldest first) and the head they were read at:
    /// read back from the head, so the cost is the tail's length, not the chain's.
    pub fn read_history(
        &self,
    ) -> Result<(Vec<crate::channel::journal::Record>, Option<CommitId>), String> {
        let journal = Journal::new(
            &self.ports.git,
            &self.clock,
            &self.spec.config.key,
            &self.spec.config.branch,
        );
        let records = journal.last(self.history_len).map_err(|e| e.to_string())?;
        let head = records.last().map(|r| r.commit.clone());
        Ok((records, head))
    }

    /// What a pin names: a digest in the channel's repository (its commit read from the
    /// manifest), or a commit whose artifact exists.
    pub fn pin_target(&self, target: &str) -> Result<(Digest, Option<CommitId>), CliError> {
        let store = self.ports.store.as_ref();
        if target.starts_with("sha256:") {
            let digest: Digest = target.parse()?;
            let m =
                crate::artifact::fetch_existing(store, &ReferenceTarget::Digest(digest.clone()))?;
            let commit = mainline_pack::parse_manifest(&m.bytes)
                .ok()
                .and_then(|f| f.revision())
                .and_then(Result::ok)
                .map(|r| r.commit);
            return Ok((digest, commit));
        }
        let commit: CommitId = target.parse().map_err(|_| {
            CliError::invalid(format!(
                "pin target {target:?} is neither a digest (sha256:…) nor a full commit id"
            ))
        })?;
        let digest = store.resolve(&commit.artifact_tag())?.ok_or_else(|| {
            CliError::invalid(format!(
                "{} has no artifact {}",
                self.spec.config.store,
                commit.artifact_tag()
            ))
            .with_hint("pin a digest instead, or push that commit's artifact first")
        })?;
        Ok((digest, Some(commit)))
    }
}
