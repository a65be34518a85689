//! What one seed decides before any strategy runs: the history's parameters (queue settings,
//! reconcile interval, evidence policy, fault rates, direct pushes, operator pin) and, by named
//! sub-stream, each pull request's content and each merge group's CI draws.
//!
//! Invariant: every draw here depends only on the history seed and the entity's number
//! (PR number, group serial), so all strategies replay the same PRs, and a group built at the
//! same position gets the same CI fate, whatever the strategy did before.
//! Must never: depend on the strategy or on anything that happened in the simulation.

use super::faults::FaultProfile;
use super::rng::Rng;
use super::world::{Ms, MINUTE, SECOND};

/// Knobs that hold for every history of a run (CLI flags and tests set them).
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Pull requests are opened during this many minutes.
    pub arrival_minutes: i64,
    /// Then the queue drains and reconcilers keep running this many minutes.
    pub drain_minutes: i64,
    /// The scheduled reconcile's interval: the detection bound T.
    pub schedule_minutes: i64,
    /// Inject registry/git faults and process deaths.
    pub faults: bool,
    /// Keep an event log per history.
    pub log: bool,
    /// Per-mille chance that a channel write is held by the network past its attempt's limit
    /// and lands later (`None`: the history's drawn rate).
    pub stall_writes_pm: Option<u32>,
    /// DEMONSTRATION ONLY: the sim registry ignores the executor's write fence (no bound per
    /// attempt, no report of an unanswered attempt), as mainline behaved before fencing, so a
    /// test can show that the checker finds the late landing. Never set by `simulate`.
    pub unfenced_writes: bool,
    /// Kill the runner of every third merge-group run on its Nth port call (tests walk N over
    /// every call of a run: "runner death at every step").
    pub kill_every_third_run_at: Option<u32>,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            arrival_minutes: 90,
            drain_minutes: 45,
            schedule_minutes: 5,
            faults: true,
            log: false,
            stall_writes_pm: None,
            unfenced_writes: false,
            kill_every_third_run_at: None,
        }
    }
}

/// An operator's pin during an incident.
#[derive(Debug, Clone, Copy)]
pub struct OperatorPlan {
    pub pin_at: Ms,
    pub expires_after: Ms,
    /// Unpinned by hand this long after pinning (else it expires).
    pub unpin_after: Option<Ms>,
}

/// One history's parameters.
#[derive(Debug, Clone)]
pub struct Params {
    pub seed: u64,
    pub arrivals_until: Ms,
    pub end: Ms,
    pub pr_gap: (Ms, Ms),
    /// Groups the queue builds at once ("build concurrency").
    pub max_groups: usize,
    /// Pull requests per group at most ("merge limit").
    pub batch: usize,
    pub check_timeout: Ms,
    pub schedule_every: Ms,
    pub daemon_every: Option<Ms>,
    pub webhook_loss_pm: u32,
    pub require_signature: bool,
    pub direct_pushes: Vec<Ms>,
    pub operator: Option<OperatorPlan>,
    pub faults: FaultProfile,
    /// Deaths of reconcile runs (per mille), when faults are on.
    pub reconcile_death_pm: u32,
    /// Demonstration only: see `SimConfig::unfenced_writes`.
    pub unfenced_writes: bool,
    /// See `SimConfig::kill_every_third_run_at`.
    pub kill_every_third_run_at: Option<u32>,
}

impl Params {
    pub fn draw(seed: u64, cfg: &SimConfig) -> Params {
        let mut r = Rng::stream(seed, "params", 0);
        let arrivals_until = cfg.arrival_minutes * MINUTE;
        let end = arrivals_until + cfg.drain_minutes * MINUTE;
        let mut direct_pushes = Vec::new();
        if r.chance(300) {
            direct_pushes.push(r.range(10 * MINUTE, arrivals_until));
        }
        let operator = r.chance(150).then(|| OperatorPlan {
            pin_at: r.range(15 * MINUTE, arrivals_until.max(16 * MINUTE)),
            expires_after: r.range(10, 25) * MINUTE,
            unpin_after: r.chance(500).then(|| r.range(3, 9) * MINUTE),
        });
        let mut fr = Rng::stream(seed, "fault-profile", 0);
        let mut faults = if cfg.faults {
            FaultProfile::draw(&mut fr, end)
        } else {
            FaultProfile::none()
        };
        if let Some(pm) = cfg.stall_writes_pm {
            faults.stall_pm = pm;
        }
        Params {
            seed,
            arrivals_until,
            end,
            pr_gap: (r.range(1, 4) * MINUTE, r.range(8, 20) * MINUTE),
            max_groups: r.range(1, 4) as usize,
            batch: r.range(1, 3) as usize,
            check_timeout: r.range(20, 40) * MINUTE,
            schedule_every: cfg.schedule_minutes * MINUTE,
            daemon_every: r.chance(300).then(|| r.range(1, 3) * MINUTE),
            webhook_loss_pm: 50,
            require_signature: r.chance(250),
            direct_pushes,
            operator,
            faults,
            reconcile_death_pm: if cfg.faults { 10 } else { 0 },
            unfenced_writes: cfg.unfenced_writes,
            kill_every_third_run_at: cfg.kill_every_third_run_at,
        }
    }
}

/// A pull request's fate.
#[derive(Debug, Clone, Copy)]
pub struct PrDraw {
    /// Changes the deploy tree (else: mainline moves, prod need not).
    pub touches: bool,
    /// Its change breaks CI: any group containing it fails.
    pub bad: bool,
    /// From open to entering the queue.
    pub review: Ms,
    /// Re-enqueued by its author after its group failed for another reason.
    pub requeue: bool,
    pub requeue_after: Ms,
    /// Removed from the queue by its author this long after entering it.
    pub dequeue_after: Option<Ms>,
}

pub fn pr_draw(seed: u64, pr: u64) -> PrDraw {
    let mut r = Rng::stream(seed, "pr", pr);
    PrDraw {
        touches: r.chance(700),
        bad: r.chance(120),
        review: r.range(0, 3 * MINUTE),
        requeue: r.chance(800),
        requeue_after: r.range(MINUTE, 8 * MINUTE),
        dequeue_after: r.chance(40).then(|| r.range(MINUTE, 20 * MINUTE)),
    }
}

/// A merge-group CI run's fate (by group serial).
#[derive(Debug, Clone, Copy)]
pub struct JobDraw {
    pub pickup: Ms,
    pub build: Ms,
    pub sign: Ms,
    pub verify: Ms,
    /// Fails for no reason of its own (a flaky test, a cluster hiccup).
    pub flaky: bool,
    /// Cancelled by a person this long after the run started.
    pub cancel_after: Option<Ms>,
    /// ...with force-cancel: no `if: cancelled()` step runs.
    pub force: bool,
    /// The runner dies on this port call of the run (1-based).
    pub die_at: Option<u32>,
    /// The runner stalls this long before deploying (past the queue's check timeout).
    pub stall: Option<Ms>,
    /// How long a baseline heal re-runs the deploy path, and whether it fails again.
    pub heal_rebuild: Ms,
    pub heal_fails: bool,
    /// When the runner-lost detection fails the run after a death.
    pub runner_lost_after: Ms,
}

pub fn job_draw(seed: u64, serial: u64, faults: bool) -> JobDraw {
    let mut r = Rng::stream(seed, "job", serial);
    let cancel = r.chance(60);
    JobDraw {
        pickup: r.range(5 * SECOND, 90 * SECOND),
        build: r.range(MINUTE, 4 * MINUTE),
        sign: r.range(10 * SECOND, 2 * MINUTE),
        verify: r.range(2 * MINUTE, 9 * MINUTE),
        flaky: r.chance(60),
        cancel_after: cancel.then(|| r.range(MINUTE, 12 * MINUTE)),
        force: r.chance(300),
        // Any port call of the run, up to past the quarantine and read-back of a fenced write.
        die_at: (faults && r.chance(60)).then(|| r.range(1, 40) as u32),
        stall: r.chance(50).then(|| r.range(25 * MINUTE, 45 * MINUTE)),
        heal_rebuild: r.range(MINUTE, 5 * MINUTE),
        heal_fails: r.chance(250),
        runner_lost_after: r.range(5 * MINUTE, 10 * MINUTE),
    }
}
