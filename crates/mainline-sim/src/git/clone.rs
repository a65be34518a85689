//! One actor's clone of the in-memory remote: the `Repo` port the executor and the CI glue
//! use, every remote call going through the actor's faults, ancestry and trees answered from
//! the clone alone.
//!
//! Why apart from the remote: the remote is the shared DAG and its refs; this is what one actor
//! has fetched and how it reaches the remote (faults, the protected-ref rule, the atomic CAS).
//! Must never: answer for a commit the clone does not have, update a ref outside
//! `refs/mainline/*`, or move any ref of a `cas_refs` batch when one of them does not match.

use super::{bit, union_into};
use crate::channel::ports::{Cas, RefUpdate, RemoteView, Repo, RepoError};
use crate::faults::Side;
use crate::world::{ActorId, CallError, State, World};
use mainline_core::{CommitId, Timestamp};
use std::sync::Arc;

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
                    crate::monitor::observe(s);
                }
                Cas::Updated
            })
            .map_err(unavailable)
    }
}
