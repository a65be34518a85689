//! The in-memory git remote (what GitHub hosts) and each actor's clone of it, behind the same
//! `Repo` port the real git adapter implements.
//!
//! The remote is a commit DAG: source commits carry a deploy-tree id (content identity of the
//! deploy path), record commits carry a message (pins, locks, journal entries). Refs are
//! `refs/heads/main`, the merge queue's `refs/heads/gh-readonly-queue/main/pr-<N>-<base>` and
//! mainline's `refs/mainline/*`. Like the real adapter: `view` lists refs (one network call),
//! `fetch` copies commits with their history into the actor's clone, ancestry and trees are
//! answered only from the clone, record commits are created locally and published by
//! `cas_ref` — a real compare-and-swap against the remote's current value. GitHub's
//! protection is kept: an actor may only update `refs/mainline/*`.
//!
//! Differences from git, on purpose: commit ids are counters (not content hashes), so two
//! identical record commits get two ids; objects are never garbage-collected.
//! Must never: answer an ancestry or tree question for a commit the clone does not have, or let
//! a CAS succeed against a value other than the expected one.

use super::faults::Side;
use super::world::{ActorId, CallError, State, World};
use crate::channel::ports::{Cas, QueueRef, RefUpdate, RemoteView, Repo, RepoError};
use mainline_core::{CommitId, Timestamp};
use std::collections::BTreeMap;
use std::sync::Arc;

pub const MAIN_REF: &str = "refs/heads/main";
pub const QUEUE_PREFIX: &str = "refs/heads/gh-readonly-queue/main/";

/// One git object (a commit).
#[derive(Debug)]
pub struct Obj {
    pub id: CommitId,
    pub parents: Vec<usize>,
    /// The deploy tree id at this commit (`None`: a record commit, the path is absent).
    pub tree: Option<String>,
    pub time_s: i64,
    pub message: String,
    /// Bitset of this commit and all its ancestors, by index.
    pub ancestors: Vec<u64>,
    /// Whether the remote has it (world commits always; records once pushed).
    pub on_remote: bool,
}

pub fn bit(set: &[u64], i: usize) -> bool {
    set.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
}

fn union_into(dst: &mut Vec<u64>, src: &[u64]) {
    if dst.len() < src.len() {
        dst.resize(src.len(), 0);
    }
    for (d, s) in dst.iter_mut().zip(src) {
        *d |= s;
    }
}

fn set_bit(set: &mut Vec<u64>, i: usize) {
    if set.len() <= i / 64 {
        set.resize(i / 64 + 1, 0);
    }
    set[i / 64] |= 1 << (i % 64);
}

/// The remote: objects and refs.
pub struct Remote {
    salt: u64,
    pub objs: Vec<Obj>,
    pub refs: BTreeMap<String, usize>,
}

impl Remote {
    pub fn new(salt: u64) -> Remote {
        Remote {
            salt,
            objs: Vec::new(),
            refs: BTreeMap::new(),
        }
    }

    /// A new commit; its id encodes its index (so lookups need no map).
    pub fn commit(
        &mut self,
        parents: &[usize],
        tree: Option<String>,
        time_s: i64,
        message: String,
        on_remote: bool,
    ) -> usize {
        let idx = self.objs.len();
        let hex = format!(
            "{idx:08x}{:016x}{:016x}",
            super::rng::mix(self.salt ^ idx as u64),
            super::rng::mix(!self.salt ^ idx as u64)
        );
        let id: CommitId = hex
            .parse()
            .expect("40 lowercase hex digits are a commit id");
        let mut ancestors = Vec::new();
        for &p in parents {
            union_into(&mut ancestors, &self.objs[p].ancestors);
        }
        set_bit(&mut ancestors, idx);
        self.objs.push(Obj {
            id,
            parents: parents.to_vec(),
            tree,
            time_s,
            message,
            ancestors,
            on_remote,
        });
        idx
    }

    /// The index of a commit id this remote created, if it is one.
    pub fn idx(&self, id: &CommitId) -> Option<usize> {
        let idx = usize::from_str_radix(id.as_str().get(..8)?, 16).ok()?;
        (self.objs.get(idx)?.id == *id).then_some(idx)
    }

    pub fn id(&self, idx: usize) -> &CommitId {
        &self.objs[idx].id
    }

    /// Is `a` equal to or an ancestor of `d`?
    pub fn is_ancestor(&self, a: usize, d: usize) -> bool {
        bit(&self.objs[d].ancestors, a)
    }

    pub fn tree(&self, idx: usize) -> Option<&str> {
        self.objs[idx].tree.as_deref()
    }

    pub fn main(&self) -> Option<usize> {
        self.refs.get(MAIN_REF).copied()
    }

    /// The world (GitHub) moves a ref; no CAS, no faults.
    pub fn set_ref(&mut self, name: &str, target: Option<usize>) {
        match target {
            Some(t) => {
                self.refs.insert(name.to_owned(), t);
            }
            None => {
                self.refs.remove(name);
            }
        }
    }

    /// What `git ls-remote` shows for `branch`.
    fn view(&self, branch: &str) -> RemoteView {
        let mut view = RemoteView {
            mainline: self
                .refs
                .get(&format!("refs/heads/{branch}"))
                .map(|&i| self.id(i).clone()),
            ..RemoteView::default()
        };
        let queue_prefix = format!("refs/heads/gh-readonly-queue/{branch}/");
        // Refs are sorted: only the queue's and mainline's own ranges can match (no scan of
        // every branch); the listing is the same.
        let queue = self
            .refs
            .range::<str, _>((
                std::ops::Bound::Included(queue_prefix.as_str()),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(name, _)| name.starts_with(&queue_prefix));
        let own = self
            .refs
            .range::<str, _>((
                std::ops::Bound::Included("refs/mainline/"),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(name, _)| name.starts_with("refs/mainline/"));
        for (name, &target) in queue.chain(own) {
            if let Some(leaf) = name.strip_prefix(&queue_prefix) {
                let pr = leaf
                    .strip_prefix("pr-")
                    .and_then(|r| r.split_once('-'))
                    .and_then(|(n, _)| n.parse().ok());
                if let Some(pr) = pr {
                    view.queue.push(QueueRef {
                        name: name.trim_start_matches("refs/heads/").to_owned(),
                        pr,
                        head: self.id(target).clone(),
                    });
                }
            } else if name.starts_with("refs/mainline/") {
                view.mainline_refs
                    .insert(name.clone(), self.id(target).clone());
            }
        }
        view
    }
}

/// One actor's clone of the remote: the `Repo` the executor and the CI glue use.
pub struct SimRepo {
    pub world: Arc<World>,
    pub actor: ActorId,
}

fn unavailable(e: CallError) -> RepoError {
    RepoError::Unavailable(format!("git remote: {e}"))
}

impl SimRepo {
    /// Run `f` on a commit of the actor's clone, or fail as git would for a missing object.
    fn local<T>(&self, c: &CommitId, f: impl FnOnce(&State, usize) -> T) -> Result<T, RepoError> {
        self.world.with(|s| {
            let i = s
                .git
                .idx(c)
                .filter(|&i| bit(&s.actors[self.actor].local, i));
            match i {
                Some(i) => Ok(f(s, i)),
                None => Err(RepoError::Other(format!(
                    "commit {} is not in the local clone",
                    c.short()
                ))),
            }
        })
    }
}

/// Copy `idx` and its history into `actor`'s clone.
fn take(s: &mut State, actor: ActorId, idx: usize) {
    let State { git, actors, .. } = s;
    union_into(&mut actors[actor].local, &git.objs[idx].ancestors);
}

impl Repo for SimRepo {
    fn view(&self, branch: &str) -> Result<RemoteView, RepoError> {
        let actor = self.actor;
        self.world
            .call(actor, Side::Git, false, |s| {
                s.actors[actor].pending_view = Some((s.now, s.tick));
                s.git.view(branch)
            })
            .map_err(unavailable)
    }

    fn fetch(&self, commits: &[CommitId]) -> Result<Vec<CommitId>, RepoError> {
        let actor = self.actor;
        self.world
            .call(actor, Side::Git, false, |s| {
                let mut missing = Vec::new();
                for c in commits {
                    match s.git.idx(c).filter(|&i| s.git.objs[i].on_remote) {
                        Some(i) => take(s, actor, i),
                        None => missing.push(c.clone()),
                    }
                }
                missing
            })
            .map_err(unavailable)
    }

    fn has_commit(&self, commit: &CommitId) -> bool {
        self.local(commit, |_, _| ()).is_ok()
    }

    fn is_ancestor(&self, a: &CommitId, d: &CommitId) -> Result<bool, RepoError> {
        let a = self.local(a, |_, i| i)?;
        self.local(d, |s, d| s.git.is_ancestor(a, d))
    }

    fn deploy_tree(&self, commit: &CommitId, path: &str) -> Result<Option<String>, RepoError> {
        let deploy_path = self.world.config.path.clone();
        self.local(commit, |s, i| {
            (path == deploy_path)
                .then(|| s.git.tree(i).map(str::to_owned))
                .flatten()
        })
    }

    fn deploy_tree_empty(&self, commit: &CommitId, path: &str) -> Result<bool, RepoError> {
        // Simulated trees always hold files; only an absent path is empty.
        Ok(self.deploy_tree(commit, path)?.is_none())
    }

    fn commit_time(&self, commit: &CommitId) -> Result<i64, RepoError> {
        self.local(commit, |s, i| s.git.objs[i].time_s)
    }

    fn write_record(
        &self,
        message: &str,
        parents: &[CommitId],
        time: Timestamp,
    ) -> Result<CommitId, RepoError> {
        let mut idxs = Vec::with_capacity(parents.len());
        for p in parents {
            idxs.push(self.local(p, |_, i| i)?);
        }
        Ok(self.world.with(|s| {
            let idx = s.git.commit(
                &idxs,
                None,
                time.millis().div_euclid(1000),
                message.to_owned(),
                false,
            );
            take(s, self.actor, idx);
            s.git.id(idx).clone()
        }))
    }

    fn read_record(&self, _refname: &str, commit: &CommitId) -> Result<String, RepoError> {
        if let Ok(m) = self.local(commit, |s, i| s.git.objs[i].message.clone()) {
            return Ok(m);
        }
        let actor = self.actor;
        self.world
            .call(actor, Side::Git, false, |s| {
                match s.git.idx(commit).filter(|&i| s.git.objs[i].on_remote) {
                    Some(i) => {
                        take(s, actor, i);
                        Ok(s.git.objs[i].message.clone())
                    }
                    None => Err(RepoError::CommitNotFound {
                        commit: commit.clone(),
                    }),
                }
            })
            .map_err(unavailable)?
    }

    fn record_parents(&self, commit: &CommitId) -> Result<Vec<CommitId>, RepoError> {
        self.local(commit, |s, i| {
            s.git.objs[i]
                .parents
                .iter()
                .map(|&p| s.git.id(p).clone())
                .collect()
        })
    }

    fn cas_ref(
        &self,
        refname: &str,
        expected: Option<&CommitId>,
        new: Option<&CommitId>,
    ) -> Result<Cas, RepoError> {
        self.cas_refs(&[RefUpdate {
            refname: refname.to_owned(),
            expected: expected.cloned(),
            new: new.cloned(),
        }])
    }

    fn cas_refs(&self, updates: &[RefUpdate]) -> Result<Cas, RepoError> {
        if let Some(u) = updates
            .iter()
            .find(|u| !u.refname.starts_with("refs/mainline/"))
        {
            return Err(RepoError::Other(format!(
                "{} is protected on the remote; mainline may only update refs/mainline/*",
                u.refname
            )));
        }
        let mut news = Vec::with_capacity(updates.len());
        for u in updates {
            news.push(match &u.new {
                Some(c) => Some(self.local(c, |_, i| i)?),
                None => None,
            });
        }
        let actor = self.actor;
        self.world
            .call(actor, Side::Git, true, |s| {
                // All or nothing, like `git push --atomic`: check every ref, then move them.
                for u in updates {
                    let current = s.git.refs.get(u.refname.as_str()).copied();
                    let expected_idx = u.expected.as_ref().map(|c| s.git.idx(c));
                    let matches = match (current, expected_idx) {
                        (None, None) => true,
                        (Some(cur), Some(Some(e))) => cur == e,
                        _ => false,
                    };
                    if !matches {
                        return Cas::Conflict {
                            actual: current.map(|c| s.git.id(c).clone()),
                        };
                    }
                }
                let mut pin_moved = false;
                for (u, new_idx) in updates.iter().zip(&news) {
                    if let Some(n) = *new_idx {
                        let ancestors = s.git.objs[n].ancestors.clone();
                        for (w, word) in ancestors.iter().enumerate() {
                            for b in 0..64 {
                                if word & (1 << b) != 0 {
                                    s.git.objs[w * 64 + b].on_remote = true;
                                }
                            }
                        }
                    }
                    s.git.set_ref(&u.refname, *new_idx);
                    pin_moved |= u.refname.starts_with("refs/mainline/pin/");
                }
                if pin_moved {
                    super::monitor::observe(s);
                }
                Cas::Updated
            })
            .map_err(unavailable)
    }
}
