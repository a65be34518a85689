//! The failure path of a merge-group run, as each strategy's workflow has it: who heals and
//! when (a step `if: failure()` on the same runner, or a separate job on a fresh runner after a
//! failure, a non-forced cancel or a lost runner), what the heal reads (main, once, when it
//! starts) and what it writes (the glue re-deploys that main; mainline runs `reconcile`).
//!
//! Must never: start a second heal for one run, or re-read main between a glue heal's read and
//! its write (the workflows it models do not; a better-behaved model would hide the stale
//! write the monitor counts).

use super::{release_ci_lock, retag, running, JobState, Step};
use crate::error::CliError;
use crate::glue::{glue, Heal};
use crate::ports::{run_mainline, Ports};
use crate::queue::{self, End};
use crate::world::{ActorId, State, World, SECOND};
use crate::{Event, Strategy};
use mainline_core::Request;
use std::sync::Arc;

pub(super) fn heals_on_failure(strategy: Strategy) -> bool {
    glue(strategy).heal != Heal::None
}

/// The heal is a separate job `if: failure() || cancelled()`: it also runs after a cancel or
/// a lost runner, on a fresh runner.
fn heal_is_a_job(strategy: Strategy) -> bool {
    glue(strategy).heal == Heal::JobOnFailureOrCancel
}

pub(super) fn start_heal(w: &World, s: &mut State, j: usize) {
    if s.ci.jobs[j].heal_actor.is_some() {
        return;
    }
    let name = format!("ci#{j}-heal");
    let heal = s.add_actor(name, None, s.now);
    if !heal_is_a_job(w.strategy) {
        let local = s.actors[s.ci.jobs[j].actor].local.clone();
        s.actors[heal].local = local; // a step: same runner, same checkout
    }
    s.ci.jobs[j].heal_actor = Some(heal);
    // A job waits for a runner; a step follows at once.
    let pickup = if heal_is_a_job(w.strategy) {
        20 * SECOND
    } else {
        5 * SECOND
    };
    s.at(s.now + pickup, Event::Job(j, Step::Heal));
}

/// Someone cancels the run: the running step's process is killed; `if: cancelled()` steps
/// run unless it was a force-cancel.
pub fn cancel(w: &Arc<World>, j: usize) {
    let force = w.with(|s| s.ci.jobs[j].draw.force);
    cancel_run(w, j, force);
}

/// Cancel run `j` (by a person, or by its concurrency group when `force` is false).
pub(super) fn cancel_run(w: &Arc<World>, j: usize, force: bool) {
    let release = w.with(|s| {
        if !running(s, j) {
            return false;
        }
        s.ci.jobs[j].state = JobState::Cancelled;
        let actor = s.ci.jobs[j].actor;
        s.actors[actor].dead = true;
        s.note(|_| format!("ci#{j}: cancelled{}", if force { " (force)" } else { "" }));
        let g = s.ci.jobs[j].group;
        queue::conclude(w, s, g, Some(End::Cancelled));
        if !force && heal_is_a_job(w.strategy) {
            start_heal(w, s, j);
        }
        true
    });
    if release {
        release_ci_lock(w, j);
    }
}

/// GitHub gives up on a dead runner: the job fails. A failure step died with the runner; a
/// separate heal job (`needs: deploy`, `if: failure()`) now starts on another runner.
pub fn runner_lost(w: &Arc<World>, j: usize) {
    release_ci_lock(w, j);
    w.with(|s| {
        let g = s.ci.jobs[j].group;
        queue::conclude(w, s, g, Some(End::RunnerLost));
        if heal_is_a_job(w.strategy) {
            start_heal(w, s, j);
        }
    });
}

pub(super) fn heal(w: &Arc<World>, j: usize, actor: ActorId) -> Result<(), CliError> {
    match w.strategy {
        Strategy::Mainline | Strategy::MainlineUnlocked => run_mainline(
            w,
            actor,
            Request::Reconcile {
                force_restore: false,
            },
            None,
        )
        .map(|_| ()),
        _ => {
            // `git ls-remote origin main`, then re-run the deploy path before writing.
            let ports = Ports::new(w, actor);
            let view = crate::channel::ports::Repo::view(&ports.repo, "main")?;
            w.with(|s| {
                let main = view.mainline.as_ref().and_then(|m| s.git.idx(m));
                s.ci.jobs[j].heal_main = main;
                let d = s.ci.jobs[j].draw;
                if !d.heal_fails {
                    s.at(s.now + d.heal_rebuild, Event::Job(j, Step::HealWrite));
                } else {
                    s.note(|_| format!("ci#{j}-heal: the deploy path failed again"));
                }
            });
            Ok(())
        }
    }
}

pub(super) fn heal_write(w: &Arc<World>, j: usize, actor: ActorId) -> Result<(), CliError> {
    let Some(main) = w.with(|s| s.ci.jobs[j].heal_main) else {
        return Ok(());
    };
    let commit = w.with(|s| s.git.id(main).clone());
    let ports = Ports::new(w, actor);
    crate::channel::ports::Builder::build(&ports.builder, &ports.store, &commit, "main")?;
    retag(w, actor, &commit)
}
