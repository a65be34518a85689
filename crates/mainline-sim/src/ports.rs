//! The remaining ports for one actor — a virtual `Clock` and a `Builder` that packs from the
//! in-memory remote — and the one function that runs the real `Executor` for an actor, the
//! way `mainline deploy|promote|reconcile|pin|unpin` would in that actor's process.
//!
//! Must never: give the executor anything but the same traits the real adapters implement.

use super::git::SimRepo;
use super::store::{pack, push_packed, SimStore};
use super::world::{ActorId, World, EPOCH_MS};
use super::Strategy;
use crate::channel::cache::FactCache;
use crate::channel::exec::{Executor, LockMode, Report};
use crate::channel::ports::{BuildError, Builder, Clock, Repo};
use crate::error::{CliError, Kind};
use mainline_core::{CommitId, Digest, Request, Timestamp};
use mainline_store::Store;
use std::sync::Arc;

/// Virtual time as one runner sees it: its wall clock is off by the runner's skew (records,
/// pin expiry), its monotonic clock is true (lock leases are judged by it, never by comparing
/// two machines' clocks). Sleeping (the lock's back-off) lets the world move on.
pub struct SimClock {
    pub world: Arc<World>,
    /// This runner's wall-clock offset.
    pub skew_ms: i64,
}

impl Clock for SimClock {
    fn now(&self) -> Timestamp {
        Timestamp(EPOCH_MS + self.world.now() + self.skew_ms)
    }
    fn monotonic_ms(&self) -> i64 {
        self.world.now()
    }
    fn sleep(&self, millis: u64) {
        self.world.wait(i64::try_from(millis).unwrap_or(i64::MAX));
    }
}

/// `mainline push --git`: fetch the commit, pack its deploy tree, push under `sha-<commit>`.
pub struct SimBuilder {
    pub world: Arc<World>,
    pub actor: ActorId,
}

impl Builder for SimBuilder {
    fn build(
        &self,
        store: &dyn Store,
        commit: &CommitId,
        revision_ref: &str,
    ) -> Result<Digest, BuildError> {
        let repo = SimRepo {
            world: self.world.clone(),
            actor: self.actor,
        };
        let git = |e: crate::channel::ports::RepoError| BuildError::Unavailable(e.to_string());
        if !repo.has_commit(commit) {
            let missing = repo.fetch(std::slice::from_ref(commit)).map_err(git)?;
            if !missing.is_empty() {
                return Err(BuildError::NotFound(format!(
                    "commit {commit} is not on the remote"
                )));
            }
        }
        let path = self.world.config.path.clone();
        let tree = repo
            .deploy_tree(commit, &path)
            .map_err(git)?
            .ok_or_else(|| {
                BuildError::NotFound(format!("{path} does not exist at {}", commit.short()))
            })?;
        let time_s = repo.commit_time(commit).map_err(git)?;
        let packed = pack(
            &tree,
            commit,
            time_s,
            revision_ref,
            &self.world.config.source,
        )?;
        push_packed(&self.world, self.actor, store, commit, &packed)
    }
}

/// The adapters of one actor's process.
pub struct Ports {
    pub store: SimStore,
    pub repo: SimRepo,
    pub builder: SimBuilder,
    pub clock: SimClock,
}

impl Ports {
    pub fn new(world: &Arc<World>, actor: ActorId) -> Ports {
        Ports {
            store: SimStore {
                world: world.clone(),
                actor,
            },
            repo: SimRepo {
                world: world.clone(),
                actor,
            },
            builder: SimBuilder {
                world: world.clone(),
                actor,
            },
            clock: SimClock {
                world: world.clone(),
                skew_ms: world.with(|s| s.actors[actor].skew_ms),
            },
        }
    }
}

/// Run `request` through the real executor as `actor` (with the lock for `mainline`, without
/// for `mainline-unlocked`; the journal on for both). `cache` persists across runs only for
/// the daemon; CI runs start cold, as a fresh runner does.
pub fn run_mainline(
    world: &Arc<World>,
    actor: ActorId,
    request: Request,
    cache: Option<&FactCache>,
) -> Result<Report, CliError> {
    let ports = Ports::new(world, actor);
    let fresh;
    let cache = match cache {
        Some(c) => c,
        None => {
            fresh = FactCache::memory(world.config.store.to_string());
            &fresh
        }
    };
    let lock = match world.strategy {
        Strategy::Mainline => LockMode::git_default(),
        _ => LockMode::None,
    };
    let name = world.with(|s| s.actors[actor].name.clone());
    let result = Executor::new(
        &world.config,
        &ports.store,
        &ports.repo,
        &ports.builder,
        &ports.clock,
        cache,
        name.clone(),
    )
    .with_lock(lock)
    .with_journal(true)
    .run(request)
    .map_err(CliError::from);
    world.with(|s| {
        s.ci.exec_runs += 1;
        match &result {
            Ok(r) => {
                let moves = r.moves.len();
                let refusal = r.refusal.as_ref().map(|x| x.reason.as_str());
                s.note(|_| {
                    format!(
                        "{name}: {} -> {} ({moves} moves{})",
                        r.decision.verdict,
                        r.final_decision.verdict,
                        refusal
                            .map(|x| format!(", refused {x}"))
                            .unwrap_or_default()
                    )
                });
            }
            Err(e) => {
                s.ci.exec_errors += 1;
                s.note(|_| format!("{name}: failed ({}): {}", kind_word(e.kind), e.message));
            }
        }
    });
    result
}

/// An error kind as a lowercase word for the trace ("unavailable", "refused").
pub fn kind_word(kind: Kind) -> String {
    format!("{kind:?}").to_lowercase()
}
