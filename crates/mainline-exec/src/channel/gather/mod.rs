//! Gathering facts for one decision: the remote's refs, the channel tag, the in-flight groups,
//! the pin, and per-commit facts (deploy tree, artifact, evidence) and ancestry for exactly the
//! commits the core says it may consult.
//!
//! Every read that fails becomes `Known::Unknown` with the reason — the core turns that into an
//! UNKNOWN verdict or a refusal. Nothing here decides anything.
//!
//! Two depths: `Depth::Cached` answers artifact and evidence lookups only from the fact cache
//! (Unknown "deferred" otherwise) so the common "nothing changed" reconcile costs one manifest
//! HEAD; `Depth::Full` asks the store for every one. The executor escalates to Full whenever
//! a decision made on cached facts depends on something unknown.

mod store;

pub(super) use store::manifest_by_digest;
pub use store::verified_artifact;

use super::cache::FactCache;
use super::ports::{Clock, RemoteView, Repo};
use super::refs::{self, ChannelKey, PinRecord};
use super::ChannelConfig;
use mainline_core::{
    ancestry_pairs, commits_of_interest, ChannelHead, CommitFacts, CommitId, Facts, Known, Request,
};
use mainline_store::Store;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    Cached,
    Full,
}

/// Facts plus what the executor needs to act on them.
pub struct Gathered {
    pub facts: Facts,
    pub view: Option<RemoteView>,
    /// The commit `refs/mainline/pin/K` pointed at (for a compare-and-swap on it).
    pub pin_ref: Option<CommitId>,
    /// Some fact was left Unknown only because `Depth::Cached` skipped the lookup.
    pub deferred: bool,
}

pub const DEFERRED: &str = "deferred: not looked up yet";

/// How many artifact tags a fresh runner reads from the registry at once (beside the fetch).
pub const MAX_LOOKUPS_IN_FLIGHT: usize = 4;

/// What a gather may take from an earlier read instead of asking again: the ref listing (an
/// escalation to `Depth::Full` right after a cached-depth gather) and what the channel tag
/// named (a write's read-back, right before the re-decision).
#[derive(Default)]
pub struct Prior {
    pub view: Option<RemoteView>,
    /// `Some(None)`: the tag was absent.
    pub channel: Option<Option<mainline_core::Digest>>,
}

pub struct Sources<'a> {
    pub config: &'a ChannelConfig,
    pub store: &'a dyn Store,
    pub repo: &'a dyn Repo,
    pub clock: &'a dyn Clock,
    pub cache: &'a FactCache,
    /// List the refs and read the channel tag at the same time (two threads): one round trip
    /// instead of two at a distance. Off in the simulator, whose virtual clock runs one call of
    /// an actor at a time.
    pub parallel: bool,
}

impl Sources<'_> {
    pub fn gather(&self, request: &Request, depth: Depth) -> Gathered {
        self.gather_from(request, depth, Prior::default())
    }

    /// [`Sources::gather`], taking from `prior` what was read already.
    pub fn gather_from(&self, request: &Request, depth: Depth, prior: Prior) -> Gathered {
        let now = self.clock.now();
        let key: &ChannelKey = &self.config.key;
        let mut deferred = false;
        let mut channel_read = None;
        // A fresh runner's artifact tags read while listing (`warm_up`): the channel's commit
        // and mainline's tip, often one commit, are read once.
        let claimed = &Mutex::new(BTreeSet::new());
        let view = match prior.view {
            Some(v) => Ok(v),
            None if self.parallel && prior.channel.is_none() => std::thread::scope(|s| {
                // A fresh runner warms its caches while the refs are listed (`warm_up`).
                let fresh = depth == Depth::Full && self.cache.knows_no_revision();
                if fresh {
                    s.spawn(|| self.repo.prefetch_records(&key.journal_ref()));
                }
                let channel = s.spawn(move || {
                    let read = self.channel_head(None);
                    if fresh {
                        self.warm_up(request, &read, claimed);
                    }
                    read
                });
                let view = self.repo.view(&self.config.branch);
                if let (true, Ok(Some(m))) = (fresh, view.as_ref().map(|v| v.mainline.as_ref())) {
                    if lock_set(claimed).insert(m.clone()) {
                        self.artifact(m, Depth::Full, &mut false);
                    }
                }
                channel_read = Some(channel.join().unwrap_or_else(|_| {
                    Known::unknown("reading the channel tag failed (a panic in its thread)")
                }));
                view
            }),
            None => self.repo.view(&self.config.branch),
        };
        let mut pin_ref = None;

        let (mainline, groups, pin, pin_error) = match &view {
            Ok(v) => {
                let mainline = match &v.mainline {
                    Some(m) => Known::Known(m.clone()),
                    None => Known::unknown(format!(
                        "branch {} does not exist on {}",
                        self.config.branch, self.config.git_display
                    )),
                };
                let mut groups = refs::queue_groups(v);
                groups.extend(refs::leases(key, v));
                let pin_refname = key.pin_ref();
                let (pin, err) = match v.mainline_refs.get(&pin_refname) {
                    None => (None, None),
                    Some(c) => {
                        pin_ref = Some(c.clone());
                        match self
                            .repo
                            .read_record(&pin_refname, c)
                            .map_err(|e| e.to_string())
                            .and_then(|m| PinRecord::from_message(&m))
                        {
                            Ok(r) => (Some(r.to_pin()), None),
                            Err(e) => (
                                None,
                                Some(format!("the pin at {pin_refname} is unreadable: {e}")),
                            ),
                        }
                    }
                };
                (mainline, Known::Known(groups), pin, err)
            }
            Err(e) => {
                let reason = format!("cannot list refs of {}: {e}", self.config.git_display);
                (Known::unknown(&reason), Known::unknown(reason), None, None)
            }
        };

        let channel = match pin_error {
            Some(e) => Known::unknown(e),
            None => match channel_read {
                Some(read) => read,
                None => self.channel_head(prior.channel),
            },
        };

        let channel_commit = match &channel {
            Known::Known(ChannelHead::Names {
                commit: Known::Known(c),
                ..
            }) => Some(c.clone()),
            _ => None,
        };
        let group_list = groups.known().cloned().unwrap_or_default();
        let interest = commits_of_interest(
            mainline.known(),
            channel_commit.as_ref(),
            &group_list,
            request,
            pin.as_ref(),
        );

        // Fetch what is not local yet. Commits the remote lacks stay absent.
        let wanted: Vec<CommitId> = interest
            .iter()
            .filter(|c| !self.repo.has_commit(c))
            .cloned()
            .collect();
        // A fresh cache also lacks the journal's tail, which the executor reads next (is an
        // intent unsettled? may the short path append?): with parallel reads, fetch it into
        // the record cache while the commits come (a record commit never changes, so reading
        // it early is reading it; a failure here is simply a miss later).
        let journal_head = view
            .as_ref()
            .ok()
            .filter(|_| self.parallel)
            .and_then(|v| v.mainline_refs.get(&key.journal_ref()));
        // At full depth with parallel reads, the artifact tags the cache lacks are read while
        // the commits come too: they depend on the listing only. Fetch, journal tail and
        // artifact tags are then one round trip at a distance, not three.
        let lookups: Vec<&CommitId> = match (depth, self.parallel) {
            (Depth::Full, true) => interest
                .iter()
                .filter(|c| self.cache.artifact(c).is_none())
                .collect(),
            _ => Vec::new(),
        };
        let next = AtomicUsize::new(0);
        let (fetch_error, mut looked_up) = std::thread::scope(|s| {
            if let (false, Some(head)) = (wanted.is_empty(), journal_head) {
                s.spawn(|| self.repo.read_record(&key.journal_ref(), head).ok());
            }
            // At most MAX_LOOKUPS_IN_FLIGHT at once, each worker taking the next commit: a
            // fresh runner in front of a long merge queue must not open one request per group
            // at the registry in the same instant.
            let workers: Vec<_> = (0..lookups.len().min(MAX_LOOKUPS_IN_FLIGHT))
                .map(|_| {
                    s.spawn(|| {
                        let mut read = Vec::new();
                        while let Some(&c) = lookups.get(next.fetch_add(1, Ordering::Relaxed)) {
                            read.push((c, self.artifact(c, Depth::Full, &mut false)));
                        }
                        read
                    })
                })
                .collect();
            let fetch_error = match wanted.is_empty() {
                true => None,
                false => self.repo.fetch(&wanted).err().map(|e| e.to_string()),
            };
            let mut read: BTreeMap<&CommitId, _> = workers
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect();
            for &c in &lookups {
                read.entry(c).or_insert_with(|| {
                    Known::unknown("reading the artifact tag failed (a panic in its thread)")
                });
            }
            (fetch_error, read)
        });

        let mut commits = BTreeMap::new();
        // Whether each commit of interest is local, asked once after the fetch: the ancestry
        // questions below ask about every ordered pair, and nothing between here and there
        // fetches (only this run's own fetch adds to the clone).
        let mut is_local: BTreeMap<&CommitId, bool> = BTreeMap::new();
        for c in &interest {
            let local = self.repo.has_commit(c);
            is_local.insert(c, local);
            let absent_reason = || match &fetch_error {
                Some(e) => format!("commit {} could not be fetched: {e}", c.short()),
                None => format!("commit {} is not on {}", c.short(), self.config.git_display),
            };
            let (deploy_tree, empty_tree) = if local {
                let tree = match self.repo.deploy_tree(c, &self.config.path) {
                    Ok(t) => Known::Known(t),
                    Err(e) => Known::unknown(e.to_string()),
                };
                let empty = match &tree {
                    Known::Known(None) => Known::Known(true),
                    Known::Known(Some(_)) => {
                        match self.repo.deploy_tree_empty(c, &self.config.path) {
                            Ok(empty) => Known::Known(empty),
                            Err(e) => Known::unknown(e.to_string()),
                        }
                    }
                    Known::Unknown { reason } => Known::unknown(reason.clone()),
                };
                (tree, empty)
            } else {
                (
                    Known::unknown(absent_reason()),
                    Known::unknown(absent_reason()),
                )
            };
            let artifact = match looked_up.remove(c) {
                Some(known) => known,
                None => self.artifact(c, depth, &mut deferred),
            };
            let (signed, evidence_problem) = match (&artifact, self.config.policy.require_signature)
            {
                (_, false) => (Known::Known(false), None),
                (Known::Known(None), true) => (Known::Known(false), None),
                (Known::Known(Some(d)), true) => match depth {
                    Depth::Cached => {
                        deferred = true;
                        (Known::unknown(DEFERRED), None)
                    }
                    Depth::Full => super::evidence::judge(self.store, &self.config.evidence, d),
                },
                (Known::Unknown { reason }, true) => (Known::unknown(reason.clone()), None),
            };
            commits.insert(
                c.clone(),
                CommitFacts {
                    deploy_tree,
                    artifact,
                    signed,
                    empty_tree,
                    evidence_problem,
                },
            );
        }

        let mut ancestry = BTreeMap::new();
        let local = |c: &CommitId| match is_local.get(c) {
            Some(&known) => known,
            None => self.repo.has_commit(c),
        };
        for (a, d) in ancestry_pairs(&interest) {
            let answer = match (local(&a), local(&d)) {
                (true, true) => match self.repo.is_ancestor(&a, &d) {
                    Ok(b) => Known::Known(b),
                    Err(e) => Known::unknown(e.to_string()),
                },
                // `d` and its whole history are local (the cache is never shallow), so an
                // absent `a` cannot be among its ancestors: a fact, not a guess.
                (false, true) if fetch_error.is_none() => Known::Known(false),
                // Not local: an adapter with another source (the GitHub compare API) may still
                // answer; the plain git adapter errs, and the fact stays Unknown.
                _ => match self.repo.is_ancestor(&a, &d) {
                    Ok(b) => Known::Known(b),
                    Err(_) => Known::unknown(format!(
                        "ancestry of {} and {} cannot be read: a commit is not on {}",
                        a.short(),
                        d.short(),
                        self.config.git_display
                    )),
                },
            };
            ancestry.insert((a, d), answer);
        }

        let channel_made_elsewhere = self.made_elsewhere(&channel, &commits);
        Gathered {
            facts: Facts {
                now,
                channel_name: self.config.tag.to_string(),
                policy: self.config.policy,
                mainline,
                channel,
                groups,
                pin,
                commits,
                channel_made_elsewhere,
                ancestry,
            },
            view: view.ok(),
            pin_ref,
            deferred,
        }
    }

    /// A fresh runner's first gather, while its refs are being listed: fetch the branch (with
    /// its merge-queue refs) by name and the commits already known — the channel's, the
    /// request's — by id, in one git process, and read their artifact tags beside it. Without
    /// it the fetch waits for the listing: one git round trip more, the whole difference
    /// between a fresh and a warm runner at a distance. Nothing here is a fact: the gather
    /// still lists, fetches what is missing and looks up what the fact cache lacks; it finds
    /// them here. A failure is a miss, paid for later.
    fn warm_up(
        &self,
        request: &Request,
        channel: &Known<ChannelHead>,
        claimed: &Mutex<BTreeSet<CommitId>>,
    ) {
        let named = match channel {
            Known::Known(ChannelHead::Names {
                commit: Known::Known(c),
                ..
            }) => Some(c),
            _ => None,
        };
        let commits: Vec<CommitId> = commits_of_interest(None, named, &[], request, None)
            .into_iter()
            .collect();
        std::thread::scope(|s| {
            for c in commits.iter().take(MAX_LOOKUPS_IN_FLIGHT) {
                if lock_set(claimed).insert(c.clone()) {
                    s.spawn(move || self.artifact(c, Depth::Full, &mut false));
                }
            }
            if let Err(e) = self.repo.prefetch(&self.config.branch, &commits) {
                tracing::debug!("warming the commit cache failed ({e}); the fetch after the listing tries again");
            }
        });
    }
}

fn lock_set(set: &Mutex<BTreeSet<CommitId>>) -> std::sync::MutexGuard<'_, BTreeSet<CommitId>> {
    set.lock().unwrap_or_else(|p| p.into_inner())
}
