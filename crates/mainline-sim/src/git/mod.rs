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

mod clone;

pub use clone::SimRepo;

use crate::channel::ports::{QueueRef, RemoteView};
use mainline_core::CommitId;
use std::collections::BTreeMap;

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
