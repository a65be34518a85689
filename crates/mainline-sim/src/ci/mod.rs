//! The merge-group CI run of every strategy, step by step, as the workflow YAML teams write:
//! build and push the group head's artifact (and sign it), deploy (strategy-specific), verify,
//! conclude — and the failure / cancel path. Each step is one event; a step's port calls wait
//! their latency, so the world (and other actors) move between them.
//!
//! What each strategy's workflow is comes from [`super::glue`] (checked against the YAML it
//! models). Every strategy signs before it deploys. `deploy-no-heal` re-tags `latest` to the
//! candidate and does nothing on failure; `heal-on-failure` re-deploys main on failure from a
//! step `if: failure()` (skipped when cancelled or the runner dies) after re-running the deploy
//! path, from main as read when the heal started; `heal-on-failure-or-cancel` and
//! `heal-plus-cron` heal from a separate job on a fresh runner (after a failure, a non-forced
//! cancel, or a lost runner), and run the deploy and the heal jobs in one GitHub concurrency
//! group — one running, one pending, a newer pending job cancels the older pending one — still
//! writing the main the heal read before waiting its turn; `promote-after-merge` deploys
//! nothing here; `mainline[-unlocked]` runs `mainline deploy --candidate` and, from its heal
//! job, `mainline reconcile`.
//! Deaths: the runner dies on its Nth port call; nothing of that run happens after, and
//! GitHub fails the run after its runner-lost timeout.
//! The failure, cancel and runner-lost paths and the heal they start are in `heal`.
//! Must never: let a dead or cancelled run's process act again.

mod heal;

pub use heal::{cancel, runner_lost};

use super::glue::glue;
use super::ports::{run_mainline, Ports};
use super::queue::{self, End, PrState};
use super::scenario::{job_draw, JobDraw};
use super::world::{ActorId, State, World, SECOND};
use super::{Event, Strategy};
use crate::error::CliError;
use heal::{cancel_run, heal, heal_write, heals_on_failure, start_heal};
use mainline_core::{CommitId, RefuseReason, Request};
use mainline_store::{ReferenceTarget, Store};
use std::collections::VecDeque;
use std::sync::Arc;

/// The steps of a merge-group run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Build,
    Sign,
    Deploy,
    Conclude,
    /// The failure/cancel path: starts the heal (reads main for the baselines).
    Heal,
    /// Baselines: the heal's write, after re-running the deploy path.
    HealWrite,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Running,
    Cancelled,
    Dead,
    Done,
}

#[derive(Debug)]
pub struct Job {
    pub group: usize,
    pub actor: ActorId,
    pub draw: JobDraw,
    pub state: JobState,
    pub failed: bool,
    /// The cleanup step's process (a new one: a cancel kills only the running step).
    pub heal_actor: Option<ActorId>,
    /// Baselines: main as the heal read it (the stale read).
    pub heal_main: Option<usize>,
}

/// CI-wide state: runs, the concurrency group of `heal-on-failure-or-cancel`, counters.
#[derive(Default)]
pub struct Ci {
    pub jobs: Vec<Job>,
    pub lock_holder: Option<usize>,
    pub lock_waiters: VecDeque<(usize, Step)>,
    pub runs: u64,
    /// The daemon's current process.
    pub daemon: Option<ActorId>,
    pub exec_runs: u64,
    pub exec_errors: u64,
}

/// A group entered the queue: its `merge_group` run is requested.
pub fn start_job(w: &World, s: &mut State, g: usize) {
    let mut draw = job_draw(w.params.seed, g as u64, w.params.reconcile_death_pm > 0);
    if let Some(k) = w.params.kill_every_third_run_at {
        draw.die_at = g.is_multiple_of(3).then_some(k).or(draw.die_at);
    }
    let actor = s.add_actor(format!("ci#{g}"), draw.die_at, s.now);
    let j = s.ci.jobs.len();
    s.ci.jobs.push(Job {
        group: g,
        actor,
        draw,
        state: JobState::Running,
        failed: false,
        heal_actor: None,
        heal_main: None,
    });
    s.at(s.now + draw.pickup, Event::Job(j, Step::Build));
    if let Some(after) = draw.cancel_after {
        s.at(s.now + draw.pickup + after, Event::Cancel(j));
    }
}

pub(super) fn running(s: &State, j: usize) -> bool {
    let job = &s.ci.jobs[j];
    job.state == JobState::Running && !s.actors[job.actor].dead
}

/// The run's runner died: nothing more happens in it; GitHub notices later.
fn died(s: &mut State, j: usize) {
    let job = &mut s.ci.jobs[j];
    if job.state == JobState::Running {
        job.state = JobState::Dead;
        let at = s.now + job.draw.runner_lost_after;
        s.at(at, Event::RunnerLost(j));
    }
}

fn group_head(s: &State, j: usize) -> (usize, CommitId, String) {
    let g = &s.queue.groups[s.ci.jobs[j].group];
    (g.head, s.git.id(g.head).clone(), g.id.clone())
}

/// A step's name in the trace.
fn step_name(step: Step) -> &'static str {
    match step {
        Step::Build => "build",
        Step::Sign => "sign",
        Step::Deploy => "deploy",
        Step::Conclude => "conclude",
        Step::Heal => "heal",
        Step::HealWrite => "heal (write)",
    }
}

pub fn step(w: &Arc<World>, j: usize, step: Step) {
    let (ok, actor) = w.with(|s| {
        let ok = match step {
            Step::Heal | Step::HealWrite => {
                s.ci.jobs[j].heal_actor.is_some_and(|a| !s.actors[a].dead)
            }
            _ => running(s, j),
        };
        let actor = match step {
            Step::Heal | Step::HealWrite => s.ci.jobs[j].heal_actor,
            _ => Some(s.ci.jobs[j].actor),
        };
        // Glue reads nothing before it writes: it decides when its step starts (a heal's
        // write acts on the main its first step read).
        if let (Some(a), false) = (actor, step == Step::HealWrite) {
            s.actors[a].decided_at = (s.now, s.tick);
        }
        (ok, actor)
    });
    let Some(actor) = actor.filter(|_| ok) else {
        release_ci_lock(w, j); // a run that died or was cancelled while queued leaves the group
        return;
    };
    let strategy = w.strategy;
    if needs_ci_lock(strategy, step) && !take_ci_lock(w, j, step) {
        return; // queued behind the concurrency group
    }
    let outcome = match step {
        Step::Build => build(w, j, actor),
        Step::Sign => sign_head(w, j, actor),
        Step::Deploy => deploy(w, j, actor),
        Step::Conclude => {
            conclude(w, j);
            Ok(())
        }
        Step::Heal => heal(w, j, actor),
        Step::HealWrite => heal_write(w, j, actor),
    };
    if needs_ci_lock(strategy, step) {
        release_ci_lock(w, j);
    }
    w.with(|s| {
        let dead = s.actors[actor].dead;
        match (&outcome, step) {
            _ if dead && !matches!(step, Step::Heal | Step::HealWrite) => died(s, j),
            (Err(e), Step::Build | Step::Sign | Step::Deploy) if running(s, j) => {
                let (kind, msg) = (e.kind, e.message.clone());
                let kind = super::ports::kind_word(kind);
                s.note(|_| format!("ci#{j}: step {} failed ({kind}): {msg}", step_name(step)));
                s.ci.jobs[j].failed = true;
                s.at(s.now, Event::Job(j, Step::Conclude));
            }
            _ => {}
        }
    });
}

fn needs_ci_lock(strategy: Strategy, step: Step) -> bool {
    glue(strategy).concurrency.is_some() && matches!(step, Step::Deploy | Step::HealWrite)
}

/// Enter the concurrency group, or wait as its one pending job (the step runs again when it
/// is our turn). GitHub keeps one pending job per group: a newly queued job cancels the one
/// pending before it — a deploy job so cancelled cancels its run (its group leaves the queue
/// and its `if: cancelled()` heal job starts); a heal job so cancelled never writes.
fn take_ci_lock(w: &Arc<World>, j: usize, step: Step) -> bool {
    let (entered, displaced) = w.with(|s| match s.ci.lock_holder {
        None => {
            s.ci.lock_holder = Some(j);
            (true, None)
        }
        Some(h) if h == j => (true, None),
        Some(_) => {
            let displaced = s.ci.lock_waiters.pop_front();
            s.ci.lock_waiters.push_back((j, step));
            (false, displaced)
        }
    });
    match displaced {
        Some((k, Step::Deploy)) => {
            w.with(|s| {
                s.note(|_| {
                    format!(
                        "ci#{k}: pending deploy job cancelled by a newer one (concurrency group)"
                    )
                })
            });
            cancel_run(w, k, false);
        }
        Some((k, _)) => w.with(|s| {
            s.note(|_| {
                format!(
                    "ci#{k}-heal: pending heal job cancelled by a newer one (concurrency group)"
                )
            });
            if let Some(a) = s.ci.jobs[k].heal_actor {
                s.actors[a].dead = true;
            }
        }),
        None => {}
    }
    entered
}

pub fn release_ci_lock(w: &World, j: usize) {
    w.with(|s| {
        if s.ci.lock_holder == Some(j) {
            s.ci.lock_holder = None;
            if let Some((next, step)) = s.ci.lock_waiters.pop_front() {
                s.ci.lock_holder = Some(next);
                s.at(s.now, Event::Job(next, step));
            }
        }
    });
}

fn build(w: &Arc<World>, j: usize, actor: ActorId) -> Result<(), CliError> {
    let (_, head, id) = w.with(|s| group_head(s, j));
    let ports = Ports::new(w, actor);
    crate::channel::ports::Builder::build(&ports.builder, &ports.store, &head, &id)?;
    w.with(|s| {
        let draw = s.ci.jobs[j].draw;
        let g = glue(w.strategy);
        let next = if !g.deploys_candidate {
            (draw.verify, Step::Conclude)
        } else if w.params.require_signature && g.signs_before_deploy {
            (draw.sign, Step::Sign)
        } else {
            (5 * SECOND, Step::Deploy)
        };
        let stall = if next.1 == Step::Deploy || next.1 == Step::Sign {
            draw.stall.unwrap_or(0)
        } else {
            0
        };
        s.at(s.now + next.0 + stall, Event::Job(j, next.1));
    });
    Ok(())
}

fn sign_head(w: &Arc<World>, j: usize, actor: ActorId) -> Result<(), CliError> {
    let (_, head, _) = w.with(|s| group_head(s, j));
    sign_commit(w, actor, &head)?;
    w.with(|s| s.at(s.now + 5 * SECOND, Event::Job(j, Step::Deploy)));
    Ok(())
}

/// Sign the artifact of `commit` (it must have been pushed).
pub fn sign_commit(w: &Arc<World>, actor: ActorId, commit: &CommitId) -> Result<(), CliError> {
    let ports = Ports::new(w, actor);
    let digest = ports
        .store
        .resolve(&commit.artifact_tag())?
        .ok_or_else(|| CliError::invalid(format!("{} was never pushed", commit.artifact_tag())))?;
    super::store::sign(w, actor, &ports.store, &digest)
}

/// What teams' glue does to deploy: `crane tag`: GET the artifact's manifest, PUT it as
/// `latest`. No read of the queue, no check of main, no read-back.
pub fn retag(w: &Arc<World>, actor: ActorId, commit: &CommitId) -> Result<(), CliError> {
    let ports = Ports::new(w, actor);
    let m = ports
        .store
        .fetch_manifest(&ReferenceTarget::Tag(commit.artifact_tag()))?
        .ok_or_else(|| CliError::invalid(format!("{} does not exist", commit.artifact_tag())))?;
    ports
        .store
        .put_manifest(&w.config.tag, &m.media_type, &m.bytes)?;
    Ok(())
}

fn deploy(w: &Arc<World>, j: usize, actor: ActorId) -> Result<(), CliError> {
    let (_, head, id) = w.with(|s| group_head(s, j));
    match w.strategy {
        Strategy::Mainline | Strategy::MainlineUnlocked => {
            let report = run_mainline(
                w,
                actor,
                Request::DeployCandidate { group_id: id, head },
                None,
            )?;
            match report.refusal {
                // A newer group that contains this one holds the channel: deployed with it.
                None => {}
                Some(r) if r.reason == RefuseReason::NewerGroupHolds => {}
                Some(r) => return Err(CliError::new(crate::error::Kind::Refused, r.message)),
            }
        }
        _ => retag(w, actor, &head)?,
    }
    w.with(|s| {
        let g = s.ci.jobs[j].group;
        s.queue.groups[g].deployed = true;
        // The gate's window opens now: the channel must name the candidate from here on.
        let c = s
            .registry
            .tags
            .get(&w.config.tag)
            .and_then(|d| s.registry.revisions.get(d).cloned().flatten())
            .and_then(|c| s.git.idx(&c));
        super::clauses::check_gates(s, c);
        let verify = s.ci.jobs[j].draw.verify;
        s.at(s.now + verify, Event::Job(j, Step::Conclude));
    });
    Ok(())
}

/// The run's conclusion reaches the queue; the failure path follows where the YAML has one.
fn conclude(w: &Arc<World>, j: usize) {
    w.with(|s| {
        let g = s.ci.jobs[j].group;
        let bad = s.queue.groups[g]
            .prs
            .iter()
            .any(|&n| s.queue.prs[(n - 1) as usize].draw.bad);
        let ok = !bad && !s.ci.jobs[j].draw.flaky && !s.ci.jobs[j].failed;
        s.ci.jobs[j].state = JobState::Done;
        s.note(|_| {
            format!(
                "ci#{j}: concluded {}",
                if ok { "success" } else { "failure" }
            )
        });
        queue::conclude(w, s, g, (!ok).then_some(End::Failed));
        if !ok && heals_on_failure(w.strategy) {
            start_heal(w, s, j);
        }
    });
}

/// Groups that merged although their run never passed its pre-merge deploy step (the gate).
pub fn merged_without_deploy(s: &State) -> u32 {
    s.queue
        .groups
        .iter()
        .filter(|g| {
            matches!(g.ended, Some((_, End::Merged))) && (!g.deployed || g.gate_broken.is_some())
        })
        .filter(|g| {
            g.prs
                .iter()
                .any(|&n| s.queue.prs[(n - 1) as usize].state == PrState::Merged)
        })
        .count() as u32
}
