//! What each strategy's CI workflow is, as plain values: the simulator's CI ([`super::ci`])
//! and reconcilers ([`super::actors`]) act from this model, and `tests/sim_glue.rs` checks it
//! against the workflow YAML each baseline models (`docs/simulate-baselines/*.yml`) — so the
//! baselines are the glue a team would really write, not a strawman.
//!
//! Fairness, as modelled: every strategy signs an artifact before the channel may name it
//! (signing order is the same for all); a heal that is a separate job runs on another runner
//! and survives a dead deploy runner; concurrency groups follow GitHub (see [`Concurrency`]).
//!
//! Must never: give a baseline less than its YAML does, or mainline more than its recipe
//! (`docs/github-actions/mainline.yml`) does.

use super::Strategy;

/// How the failure path is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heal {
    /// No failure path.
    None,
    /// A step `if: failure()` in the deploy job: same runner; skipped when cancelled or dead.
    StepOnFailure,
    /// A job `needs: deploy`, `if: failure() || cancelled()`, on a fresh runner: runs after a
    /// failure, a (non-forced) cancel, or a lost runner.
    JobOnFailureOrCancel,
}

/// A GitHub concurrency group on the deploy and heal jobs: one running and at most one pending
/// job per group; a newly queued job cancels the pending one (`cancel-in-progress: false`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Concurrency {
    pub group: &'static str,
    pub cancel_in_progress: bool,
}

/// One strategy's workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Glue {
    /// The group run deploys the group's head before it merges (the pre-merge gate).
    pub deploys_candidate: bool,
    /// A push to main builds, signs and deploys main.
    pub deploys_on_push: bool,
    /// The deploy job `needs` the sign job.
    pub signs_before_deploy: bool,
    pub heal: Heal,
    pub concurrency: Option<Concurrency>,
    /// A "restore stranded prod" cron (cron expression), and its period in minutes.
    pub restore_cron: Option<(&'static str, i64)>,
}

const DEPLOY_PROD: Concurrency = Concurrency {
    group: "deploy-prod",
    cancel_in_progress: false,
};

/// The workflow of `strategy`.
pub fn glue(strategy: Strategy) -> Glue {
    let base = Glue {
        deploys_candidate: true,
        deploys_on_push: false,
        signs_before_deploy: true,
        heal: Heal::None,
        concurrency: None,
        restore_cron: None,
    };
    match strategy {
        Strategy::DeployNoHeal => base,
        Strategy::HealOnFailure => Glue {
            heal: Heal::StepOnFailure,
            ..base
        },
        Strategy::HealOnFailureOrCancel => Glue {
            heal: Heal::JobOnFailureOrCancel,
            concurrency: Some(DEPLOY_PROD),
            ..base
        },
        Strategy::HealPlusCron => Glue {
            heal: Heal::JobOnFailureOrCancel,
            concurrency: Some(DEPLOY_PROD),
            restore_cron: Some(("0 * * * *", 60)),
            ..base
        },
        Strategy::PromoteAfterMerge => Glue {
            deploys_candidate: false,
            deploys_on_push: true,
            ..base
        },
        // docs/github-actions/mainline.yml: a separate heal job, a push job, a schedule (the
        // simulator's reconcilers); the lock orders writers instead of a concurrency group.
        Strategy::Mainline | Strategy::MainlineUnlocked => Glue {
            deploys_on_push: true,
            heal: Heal::JobOnFailureOrCancel,
            ..base
        },
    }
}

/// The YAML file (under `docs/simulate-baselines/`) a baseline models; `None` for mainline's
/// own strategies (their recipe is `docs/github-actions/mainline.yml`).
pub fn workflow_file(strategy: Strategy) -> Option<&'static str> {
    match strategy {
        Strategy::Mainline | Strategy::MainlineUnlocked => None,
        s => Some(match s {
            Strategy::DeployNoHeal => "deploy-no-heal.yml",
            Strategy::HealOnFailure => "heal-on-failure.yml",
            Strategy::HealOnFailureOrCancel => "heal-on-failure-or-cancel.yml",
            Strategy::HealPlusCron => "heal-plus-cron.yml",
            _ => "promote-after-merge.yml",
        }),
    }
}
