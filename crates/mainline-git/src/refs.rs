//! Refs on the remote as a coordination medium: record commits, compare-and-swap updates and
//! chains of records. These carry mainline's journal (`refs/mainline/journal/<channel>`), the
//! channel lock (`refs/mainline/lock/<channel>`) and merge-group leases
//! (`refs/mainline/lease/<channel>/<group>`).
//!
//! Invariants: a ref moves only from the value the caller expected (git's
//! `--force-with-lease`, checked client-side against the advertisement and again by the server's
//! ref transaction), so of N racing writers from the same expected value exactly one wins; a
//! loser learns the value it lost to. Record commits are deterministic: the same message,
//! parents and time give the same commit id on any machine (fixed identity, explicit time, the
//! empty tree). Must never: read a clock, or report success for an update the remote refused.

use crate::cache;
use crate::error::GitError;
use crate::exec::REMOTE_NAME;
use crate::graph::to_commit_id;
use crate::refs_parse::validate_refname;
use crate::remote::{fetch_args, GitRemote, CACHE_NS};
use gix::ObjectId;
use mainline_core::CommitId;

/// The depth git reads as "the whole history" (its `INFINITE_DEPTH`).
pub const FULL_DEPTH: u32 = 0x7fff_ffff;

/// The identity on every record commit.
pub const RECORD_NAME: &str = "mainline";
pub const RECORD_EMAIL: &str = "mainline@localhost";

/// How a compare-and-swap on a remote ref ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CasOutcome {
    /// The ref now holds the new value (or is deleted).
    Updated,
    /// The ref did not hold the expected value; `actual` is what the remote has now.
    Conflict { actual: Option<CommitId> },
}

/// One ref of an atomic compare-and-swap push: move `refname` from `expected` (`None`: must be
/// absent) to `new` (`None`: delete).
#[derive(Debug, Clone, Copy)]
pub struct RefCas<'a> {
    pub refname: &'a str,
    pub expected: Option<&'a CommitId>,
    pub new: Option<&'a CommitId>,
}

/// Rejection reasons that mean "someone else moved the ref" rather than "not allowed".
const CAS_REASONS: &[&str] = &[
    "stale info",
    "fetch first",
    "non-fast-forward",
    "already exists",
    "cannot lock ref",
    "failed to update ref",
    "failed to lock",
    "incorrect old value",
];

impl GitRemote {
    /// Write an empty-tree commit with `message` and `parents` into the cache, authored and
    /// committed by "mainline <mainline@localhost>" at `time_unix` (UTC). The parents must be
    /// present in the cache (fetched or created here).
    pub fn create_record_commit(
        &self,
        message: &str,
        parents: &[CommitId],
        time_unix: i64,
    ) -> Result<CommitId, GitError> {
        if message.contains('\0') {
            return Err(GitError::InvalidMessage {
                reason: "a commit message must not contain NUL bytes",
            });
        }
        let snapshot = self.snapshot()?;
        for parent in parents {
            if !snapshot.has_commit(parent) {
                return Err(GitError::NotInCache {
                    commit: parent.clone(),
                    cache: self.repo.clone(),
                });
            }
        }
        let repo = snapshot.repository();
        let empty_tree = ObjectId::empty_tree(repo.object_hash());
        // Written for real: git only fakes the empty tree, and a push must be able to send it.
        if !gix::objs::Exists::exists(&repo.objects, &empty_tree) {
            gix::objs::Write::write_buf(&repo.objects, gix::object::Kind::Tree, &[]).map_err(
                |e| GitError::objects("the empty tree", &self.repo, std::io::Error::other(e)),
            )?;
        }
        let signature = gix::actor::Signature {
            name: RECORD_NAME.into(),
            email: RECORD_EMAIL.into(),
            time: gix::date::Time {
                seconds: time_unix,
                offset: 0,
            },
        };
        let commit = gix::objs::Commit {
            tree: empty_tree,
            parents: parents
                .iter()
                .map(|p| ObjectId::from_hex(p.as_str().as_bytes()).expect("validated commit id"))
                .collect(),
            author: signature.clone(),
            committer: signature,
            encoding: None,
            message: message.into(),
            extra_headers: Vec::new(),
        };
        let id = repo
            .write_object(&commit)
            .map_err(|e| GitError::objects("a record commit", &self.repo, e))?;
        Ok(to_commit_id(id.detach()))
    }

    /// Move `refname` on the remote from `expected_old` to `new` (delete when `new` is `None`;
    /// create when `expected_old` is `None`), atomically: `Conflict` when the remote held
    /// anything else. `new` must be in the cache.
    pub fn push_ref_cas(
        &self,
        refname: &str,
        expected_old: Option<&CommitId>,
        new: Option<&CommitId>,
    ) -> Result<CasOutcome, GitError> {
        self.push_refs_cas(&[RefCas {
            refname,
            expected: expected_old,
            new,
        }])
    }

    /// [`GitRemote::push_ref_cas`] for several refs in one push (`git push --atomic`): every
    /// ref moves from its expected value, or none moves. `Conflict` names the first ref found
    /// holding something else. One process, one round trip: what lets a writer take the lock
    /// and record its intent at once.
    pub fn push_refs_cas(&self, updates: &[RefCas<'_>]) -> Result<CasOutcome, GitError> {
        let Some(first) = updates.first() else {
            return Ok(CasOutcome::Updated);
        };
        let mut leases = Vec::with_capacity(updates.len());
        let mut refspecs = Vec::with_capacity(updates.len());
        let snapshot = self.snapshot()?;
        for u in updates {
            validate_refname(u.refname)?;
            if let Some(commit) = u.new {
                if !snapshot.has_commit(commit) {
                    return Err(GitError::NotInCache {
                        commit: commit.clone(),
                        cache: self.repo.clone(),
                    });
                }
            }
            leases.push(format!(
                "--force-with-lease={}:{}",
                u.refname,
                u.expected.map(CommitId::as_str).unwrap_or_default()
            ));
            refspecs.push(format!(
                "{}:{}",
                u.new.map(CommitId::as_str).unwrap_or_default(),
                u.refname
            ));
        }
        drop(snapshot);
        let mut args: Vec<&str> = vec!["push", "--porcelain", "--atomic", "--no-verify"];
        args.extend(leases.iter().map(String::as_str));
        args.push(REMOTE_NAME);
        args.extend(refspecs.iter().map(String::as_str));
        let out = self.git.run(Some(&self.repo), &args, None)?;
        let stdout = out.stdout_str();
        let mut statuses = Vec::with_capacity(updates.len());
        for u in updates {
            let Some(status) = porcelain_status(&stdout, u.refname) else {
                return Err(self.git.failed(&args, &out));
            };
            statuses.push(status);
        }
        let mut rejected = false;
        // A ref the remote already holds at its new value is "up to date" to git, which then
        // skips its lease: with another ref of the push updated, the others moved although
        // this one's expected value did not hold.
        let mut unchecked = None;
        let mut moved_any = false;
        for (u, (flag, summary)) in updates.iter().zip(&statuses) {
            match flag {
                ' ' | '+' | '-' | '*' if out.status.success() => moved_any = true,
                // The remote already holds `new`: a success only if that is what we expected.
                '=' if u.expected == u.new => {}
                '=' => unchecked = unchecked.or(Some(u)),
                '!' => rejected = true,
                _ => {
                    return Err(GitError::UnexpectedOutput {
                        command: "push".to_owned(),
                        remote: self.git.url.redacted().to_owned(),
                        detail: format!(
                            "status {flag:?} for {} with {}: {}",
                            u.refname,
                            out.status,
                            self.git.scrub(summary)
                        ),
                    })
                }
            }
        }
        match unchecked {
            Some(u) if moved_any => {
                return Err(GitError::AtomicPartlyApplied {
                    remote: self.git.url.redacted().to_owned(),
                    refname: u.refname.to_owned(),
                })
            }
            // Nothing moved: the ref's expected value did not hold, as in a lost race.
            Some(u) if !rejected => {
                return Ok(CasOutcome::Conflict {
                    actual: u.new.cloned(),
                })
            }
            _ => {}
        }
        if !rejected {
            return Ok(CasOutcome::Updated);
        }
        // Refused: a lost race (some ref moved) or a refusal (permissions, hooks). The remote
        // says which.
        let names: Vec<&str> = updates.iter().map(|u| u.refname).collect();
        let actual = self.read_refs(&names)?;
        let raced = statuses
            .iter()
            .any(|(_, summary)| CAS_REASONS.iter().any(|r| summary.contains(r)));
        let moved = updates.iter().find(|u| actual.get(u.refname) != u.expected);
        if raced || moved.is_some() {
            let culprit = moved.unwrap_or(first);
            tracing::debug!(refname = culprit.refname, "compare-and-swap lost");
            return Ok(CasOutcome::Conflict {
                actual: actual.get(culprit.refname).cloned(),
            });
        }
        let (refname, summary) = updates
            .iter()
            .zip(&statuses)
            .find(|(_, (flag, s))| *flag == '!' && !s.contains("atomic push failed"))
            .or_else(|| updates.iter().zip(&statuses).find(|(_, (f, _))| *f == '!'))
            .map(|(u, (_, s))| (u.refname, s.clone()))
            .expect("a rejected ref exists");
        Err(GitError::PushRejected {
            refname: refname.to_owned(),
            remote: self.git.url.redacted().to_owned(),
            reason: self.git.scrub(&summary),
        })
    }

    /// The remote's current values of `refnames` (one `ls-remote`); absent refs are missing
    /// from the map.
    pub fn read_refs(
        &self,
        refnames: &[&str],
    ) -> Result<std::collections::BTreeMap<String, CommitId>, GitError> {
        let mut out = std::collections::BTreeMap::new();
        for r in refnames {
            validate_refname(r)?;
        }
        let mut args = vec!["ls-remote", REMOTE_NAME];
        args.extend(refnames.iter().copied());
        let listed = self.git.run_ok(Some(&self.repo), &args, None)?;
        for line in listed.stdout_str().lines() {
            // ls-remote matches patterns by suffix: keep only the exact names.
            if let Some((oid, name)) = line.split_once('\t') {
                if refnames.contains(&name) {
                    let id = oid.parse().map_err(|_| GitError::UnexpectedOutput {
                        command: "ls-remote".to_owned(),
                        remote: self.git.url.redacted().to_owned(),
                        detail: format!("{name} points at {oid:?}, not a commit id"),
                    })?;
                    out.insert(name.to_owned(), id);
                }
            }
        }
        Ok(out)
    }

    /// The remote's current value of `refname` (one `ls-remote`), `None` when it is absent.
    pub fn read_ref(&self, refname: &str) -> Result<Option<CommitId>, GitError> {
        validate_refname(refname)?;
        let args = ["ls-remote", REMOTE_NAME, refname];
        let out = self.git.run_ok(Some(&self.repo), &args, None)?;
        for line in out.stdout_str().lines() {
            // ls-remote matches patterns by suffix: keep only the exact name.
            if let Some((oid, name)) = line.split_once('\t') {
                if name == refname {
                    return oid
                        .parse()
                        .map(Some)
                        .map_err(|_| GitError::UnexpectedOutput {
                            command: "ls-remote".to_owned(),
                            remote: self.git.url.redacted().to_owned(),
                            detail: format!("{refname} points at {oid:?}, not a commit id"),
                        });
                }
            }
        }
        Ok(None)
    }

    /// Fetch `refname` and its whole history (record commits are tiny; any commits they name
    /// as parents come blob-less) and return what it points at, `None` when the remote has no
    /// such ref.
    pub fn fetch_ref_chain(&self, refname: &str) -> Result<Option<CommitId>, GitError> {
        self.fetch_ref(refname, None)
    }

    /// [`GitRemote::fetch_ref_chain`] limited to the newest `depth` commits of the ref
    /// (`git fetch --depth`): what reading a long journal's tail needs, at a cost that does not
    /// grow with the chain. The cache becomes shallow, so use it only on a cache that holds
    /// records alone (see [`GitRemote::records_cache`]): git neither reads nor writes
    /// commit-graphs in a shallow repository. A later call with a larger depth deepens it;
    /// [`FULL_DEPTH`] fetches everything.
    pub fn fetch_ref_tail(&self, refname: &str, depth: u32) -> Result<Option<CommitId>, GitError> {
        self.fetch_ref(refname, Some(depth.clamp(1, FULL_DEPTH)))
    }

    /// [`GitRemote::fetch_ref_tail`] from a commit the caller listed as `refname`'s value,
    /// asked for by id: protocol v2 fetches an id without listing the remote's refs first, one
    /// request fewer than by name (what a fresh runner's first read of a journal costs). The
    /// local copy of `refname` then names `commit`, as a fetch by name at the time of the
    /// listing would have. Meant for refs that only grow (a journal): the listed commit stays
    /// reachable. A ref that can be deleted or rewound (a lock record) must be read by name:
    /// its listed commit may no longer be served, and then this fails (nothing changed).
    pub fn fetch_commit_tail(
        &self,
        refname: &str,
        commit: &CommitId,
        depth: u32,
    ) -> Result<(), GitError> {
        self.fetch_into(
            refname,
            &commit.to_string(),
            Some(depth.clamp(1, FULL_DEPTH)),
        )
        .map(|_| ())
    }

    fn fetch_ref(&self, refname: &str, depth: Option<u32>) -> Result<Option<CommitId>, GitError> {
        self.fetch_into(refname, refname, depth)
    }

    /// Fetch `source` (a ref name or a commit id) into the local copy of `refname`.
    fn fetch_into(
        &self,
        refname: &str,
        source: &str,
        depth: Option<u32>,
    ) -> Result<Option<CommitId>, GitError> {
        validate_refname(refname)?;
        let local = format!("{CACHE_NS}{refname}");
        let _lock = cache::lock(&self.repo, self.git.limit().0)?;
        let refspec = format!("+{source}:{local}");
        let depth_arg = depth.map(|d| format!("--depth={d}"));
        let mut args = fetch_args(&[]);
        args.extend(depth_arg.as_deref());
        args.extend([REMOTE_NAME, refspec.as_str()]);
        let out = self.git.run(Some(&self.repo), &args, None)?;
        if !out.status.success() {
            if out.stderr.contains("couldn't find remote ref") {
                // Forget a stale copy so `resolve` cannot answer with it.
                self.git
                    .run_ok(Some(&self.repo), &["update-ref", "-d", &local], None)?;
                return Ok(None);
            }
            return Err(self.git.failed(&args, &out));
        }
        // Asked for by id: the copy names that commit; no process needed to say so.
        if let Ok(commit) = source.parse::<CommitId>() {
            return Ok(Some(commit));
        }
        // Still under the lock: nobody else can have moved our copy since the fetch.
        let rev = self.git.run_ok(
            Some(&self.repo),
            &["rev-parse", "--verify", "--quiet", &local],
            None,
        )?;
        let hex = rev.stdout_str();
        hex.trim()
            .parse()
            .map(Some)
            .map_err(|_| GitError::UnexpectedOutput {
                command: "rev-parse".to_owned(),
                remote: self.git.url.redacted().to_owned(),
                detail: format!("{local} resolved to {:?}", hex.trim()),
            })
    }

    /// The full message of a commit in the cache.
    pub fn commit_message(&self, commit: &CommitId) -> Result<String, GitError> {
        self.snapshot()?.commit_message(commit)
    }

    /// The parents of a commit in the cache, in order.
    pub fn parents(&self, commit: &CommitId) -> Result<Vec<CommitId>, GitError> {
        self.snapshot()?.parents(commit)
    }
}

/// The flag and summary of `refname`'s line in `git push --porcelain` output
/// (`<flag>\t<from>:<to>\t<summary>`).
fn porcelain_status(stdout: &str, refname: &str) -> Option<(char, String)> {
    stdout.lines().find_map(|line| {
        let mut fields = line.splitn(3, '\t');
        let flag = fields.next()?.chars().next()?;
        let spec = fields.next()?;
        let summary = fields.next().unwrap_or_default();
        let (_, to) = spec.rsplit_once(':')?;
        (to == refname).then(|| (flag, summary.to_owned()))
    })
}
