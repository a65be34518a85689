//! Everyone outside the merge-group run: the push-to-main workflow, the async signer, the
//! reconcilers mainline is deployed with (a cron schedule, a `merge_group.destroyed` webhook,
//! an optional daemon), and an operator who pins during an incident.
//!
//! - restore cron (`heal-plus-cron`): hourly, re-tags main when the channel is not on main.
//! - push workflow (`promote-after-merge`, `mainline*`): on every main update, after a runner
//!   picks it up: push (and sign) the pushed commit's artifact, then re-tag `latest` to it
//!   (`promote-after-merge`: runs can finish out of order) or `mainline promote --commit`.
//! - schedule: every T (plus GitHub's jitter), a fresh runner runs `mainline reconcile`.
//!   Runs overlap freely. Webhook: each `destroyed` delivery (some are lost) starts one.
//!   Daemon: one long-lived process reconciling every minute or two, with a warm cache.
//! - operator (mainline strategies only; the baselines have no pin to speak of): `status`, then
//!   `pin` of what the channel names with an expiry, sometimes `unpin` by hand.
//!
//! Must never: act for a strategy that does not deploy this way.

use super::ci::sign_commit;
use super::glue::glue;
use super::ports::{run_mainline, Ports};
use super::rng::Rng;
use super::world::{State, World, MINUTE, SECOND};
use super::{Event, Strategy};
use crate::channel::cache::FactCache;
use crate::error::CliError;
use mainline_core::{ChannelHead, Known, Pin, PinKind, Request, Timestamp};
use mainline_store::{ReferenceTarget, Store};
use std::sync::Arc;

fn uses_mainline(strategy: Strategy) -> bool {
    matches!(strategy, Strategy::Mainline | Strategy::MainlineUnlocked)
}

/// A per-run draw (pickup delay, death) from the run counter: deterministic per history.
fn run_rng(w: &World, s: &mut State, label: &str) -> (u64, Rng) {
    s.ci.runs += 1;
    (s.ci.runs, Rng::stream(w.params.seed, label, s.ci.runs))
}

/// Main moved (a merge or a direct push): the push workflow is triggered.
pub fn on_main_push(w: &World, s: &mut State, commit: usize) {
    if glue(w.strategy).deploys_on_push {
        let (_, mut r) = run_rng(w, s, "push");
        s.at(
            s.now + r.range(20 * SECOND, 150 * SECOND),
            Event::Push(commit),
        );
    }
}

/// A group left the queue: GitHub sends `merge_group.destroyed` (mainline strategies listen).
pub fn on_destroyed(w: &World, s: &mut State, _group: usize) {
    if uses_mainline(w.strategy) {
        let (_, mut r) = run_rng(w, s, "webhook");
        if !r.chance(w.params.webhook_loss_pm) {
            s.at(s.now + r.range(5 * SECOND, 60 * SECOND), Event::Webhook);
        }
    }
}

fn new_actor(w: &World, label: &str) -> usize {
    w.with(|s| {
        let (n, mut r) = run_rng(w, s, label);
        let die_at = r
            .chance(w.params.reconcile_death_pm)
            .then(|| r.range(1, 40) as u32);
        s.add_actor(format!("{label}#{n}"), die_at, s.now)
    })
}

/// One run of the push workflow for `commit`.
pub fn push_run(w: &Arc<World>, commit: usize) {
    let actor = new_actor(w, "push");
    let id = w.with(|s| s.git.id(commit).clone());
    let ports = Ports::new(w, actor);
    let result = (|| -> Result<(), CliError> {
        crate::channel::ports::Builder::build(&ports.builder, &ports.store, &id, "main")?;
        if w.params.require_signature {
            sign_commit(w, actor, &id)?;
        }
        match w.strategy {
            Strategy::PromoteAfterMerge => super::ci::retag(w, actor, &id),
            _ => run_mainline(w, actor, Request::Promote { commit: id.clone() }, None).map(|_| ()),
        }
    })();
    if let Err(e) = result {
        w.with(|s| s.note(|_| format!("push#{commit}: failed: {}", e.message)));
    }
}

/// `heal-plus-cron`'s hourly "restore stranded prod" (docs/simulate-baselines/heal-plus-cron.yml):
/// read main and the channel's revision; when the channel names a commit that is not on main,
/// re-tag main's artifact. It knows nothing of the merge queue.
pub fn restore_cron(w: &Arc<World>, k: u64) {
    let Some((_, period)) = glue(w.strategy).restore_cron else {
        return;
    };
    if w.now() >= w.params.end {
        return;
    }
    w.with(|s| {
        let mut r = Rng::stream(w.params.seed, "restore-cron", k);
        let at = (k as i64 + 1) * period * MINUTE + r.range(0, 10 * MINUTE);
        s.at(at, Event::RestoreCron(k + 1));
    });
    let actor = new_actor(w, "restore-cron");
    let ports = Ports::new(w, actor);
    let result = (|| -> Result<(), CliError> {
        let view = crate::channel::ports::Repo::view(&ports.repo, "main")?;
        let Some(main) = view.mainline else {
            return Ok(());
        };
        let live = ports
            .store
            .fetch_manifest(&ReferenceTarget::Tag(w.config.tag.clone()))?
            .and_then(|m| mainline_pack::parse_manifest(&m.bytes).ok())
            .and_then(|p| p.revision().and_then(Result::ok))
            .map(|r| r.commit);
        // `git merge-base --is-ancestor` in its full clone: a local read, no time.
        let on_main =
            w.with(
                |s| match (live.as_ref().and_then(|c| s.git.idx(c)), s.git.idx(&main)) {
                    (Some(c), Some(m)) => s.git.is_ancestor(c, m),
                    _ => false,
                },
            );
        if on_main {
            return Ok(());
        }
        w.with(|s| s.note(|_| "restore-cron: the channel is not on main; re-tagging main".into()));
        crate::channel::ports::Builder::build(&ports.builder, &ports.store, &main, "main")?;
        super::ci::retag(w, actor, &main)
    })();
    if let Err(e) = result {
        w.with(|s| s.note(|_| format!("restore-cron: failed: {}", e.message)));
    }
}

/// Start the reconcilers and the operator of a mainline strategy.
pub fn schedule_reconcilers(w: &World, s: &mut State) {
    if let Some((_, period)) = glue(w.strategy).restore_cron {
        let mut r = Rng::stream(w.params.seed, "restore-cron", 0);
        s.at(
            period * MINUTE + r.range(0, 10 * MINUTE),
            Event::RestoreCron(1),
        );
    }
    if !uses_mainline(w.strategy) {
        return;
    }
    s.at(w.params.schedule_every, Event::Schedule(1));
    if let Some(every) = w.params.daemon_every {
        s.at(every, Event::Daemon);
    }
    if let Some(op) = w.params.operator {
        s.at(op.pin_at, Event::Pin);
    }
}

fn reconcile(w: &Arc<World>, label: &str, cache: Option<&FactCache>) {
    let actor = new_actor(w, label);
    let _ = run_mainline(
        w,
        actor,
        Request::Reconcile {
            force_restore: false,
        },
        cache,
    );
}

/// A cron tick: runs are started every T, late by GitHub's jitter, and may overlap.
pub fn schedule_tick(w: &Arc<World>, k: u64) {
    if w.now() >= w.params.end {
        return;
    }
    w.with(|s| {
        let mut r = Rng::stream(w.params.seed, "cron", k);
        let at = (k as i64 + 1) * w.params.schedule_every + r.range(0, 60 * SECOND);
        s.at(at, Event::Schedule(k + 1));
    });
    reconcile(w, "cron", None);
}

pub fn webhook(w: &Arc<World>) {
    reconcile(w, "webhook", None);
}

/// The daemon: one process, a warm fact cache, a run every `daemon_every`; restarted as a new
/// process when it died.
pub fn daemon_tick(w: &Arc<World>) {
    if w.now() >= w.params.end {
        return;
    }
    let actor = w.with(|s| match s.ci.daemon {
        Some(a) if !s.actors[a].dead => a,
        _ => {
            let (n, mut r) = run_rng(w, s, "daemon");
            let die_at = r
                .chance(w.params.reconcile_death_pm * 10)
                .then(|| r.range(1, 400) as u32);
            let a = s.add_actor(format!("daemon#{n}"), die_at, s.now);
            s.ci.daemon = Some(a);
            a
        }
    });
    let _ = run_mainline(
        w,
        actor,
        Request::Reconcile {
            force_restore: false,
        },
        Some(&w.daemon_cache),
    );
    if let Some(every) = w.params.daemon_every {
        w.with(|s| s.at(s.now + every, Event::Daemon));
    }
}

/// The operator pins what the channel names now, with an expiry.
pub fn pin(w: &Arc<World>) {
    let Some(plan) = w.params.operator else {
        return;
    };
    let actor = new_actor(w, "operator");
    let Ok(status) = run_mainline(w, actor, Request::Status, None) else {
        return;
    };
    let Some(Known::Known(ChannelHead::Names { digest, commit })) =
        status.facts.as_ref().map(|f| f.channel.clone())
    else {
        return;
    };
    let now = w.now();
    // The operator's laptop clock, skewed like any runner's.
    let skew = w.with(|s| s.actors[actor].skew_ms);
    let pin = Pin {
        digest,
        commit: commit.known().cloned(),
        reason: "incident: hold prod while we look".into(),
        actor: "operator".into(),
        expires_at: Some(Timestamp(
            super::world::EPOCH_MS + now + skew + plan.expires_after,
        )),
        kind: PinKind::Pin,
    };
    if run_mainline(w, actor, Request::Pin { pin }, None).is_ok() {
        w.with(|s| {
            s.at(now + plan.expires_after, Event::Observe);
            if let Some(after) = plan.unpin_after {
                s.at(now + after, Event::Unpin);
            }
        });
    }
}

pub fn unpin(w: &Arc<World>) {
    let actor = new_actor(w, "operator");
    let _ = run_mainline(w, actor, Request::Unpin, None);
}
