//! Deterministic simulation of a GitHub merge queue, CI runners, reconcilers, an operator and a
//! failing registry and git remote, running the real decision core and the real `Executor`
//! against in-memory adapters of the same ports — to compare deployment strategies on the same
//! histories and to hold mainline to its invariant over many of them.
//!
//! One seed gives one run; history `i` of a run has its own seed ([`history_seed`]) and replays
//! alone (`mainline simulate --seed S --history I --trace`). Virtual time only; the same seed
//! gives byte-identical results (no wall clock, no OS randomness, no hash-map iteration, and
//! worker threads only split independent histories whose results are put back in order).
//!
//! Modules: [`world`] (time, agenda, processes, the interleaving model — read its doc for
//! which interleavings are and are not produced), [`git`] and [`store`] (the in-memory remote and
//! registry behind `Repo` and `Store`), [`faults`], [`queue`] (the merge queue), [`ci`] and
//! [`actors`] (each strategy's CI glue, reconcilers, operator), [`monitor`] (the invariant
//! checkers), [`report`] and [`plot`] (figures).
//!
//! The baselines are the GitHub Actions workflows in `docs/simulate-baselines/` ([`glue`]
//! is their model, checked against the YAML by `tests/sim_glue.rs`): every strategy signs
//! before it deploys, concurrency groups behave as GitHub's, a heal job runs on its own runner.
//! The named scenarios each still fails (`tests/sim_baselines.rs`, `tests/sim_clauses.rs`;
//! each also runs the same history under `mainline`):
//! - `deploy-no-heal`: S3, prod stays on a group that failed after deploying
//!   (`deploy_no_heal_leaves_prod_on_ejected_code`); S4, a run evicted at the check timeout
//!   deploys afterwards (`evicted_group_deploys_after_eviction`); S5, a stalled older run
//!   deploys behind a newer group (`a_backward_deploy_is_s5`).
//! - `heal-on-failure`: S3 after a cancelled run or a dead runner, where the heal step never
//!   runs (`heal_on_failure_skips_cancelled_runs`); S5/L1/S2 when a late heal from an older
//!   failed group overwrites a newer group (`heal_on_failure_overwrites_a_newer_group`).
//! - `heal-on-failure-or-cancel`: the concurrency group orders writers but the heal still
//!   writes the main it read before waiting (`locked_heal_still_writes_a_stale_main`);
//!   force-cancel skips the heal job (`heal_on_failure_or_cancel_skips_force_cancel`).
//! - `heal-plus-cron`: the hourly restore re-tags main over a live candidate (S5,
//!   `heal_plus_cron_restores_over_a_live_candidate`), and an hour is far past T.
//! - `promote-after-merge`: no pre-merge gate (`promote_after_merge_has_no_premerge_gate`);
//!   push runs finishing out of order leave prod behind main
//!   (`promote_after_merge_runs_finish_out_of_order`).
//! - `mainline-unlocked`: gives up S5 (`unlocked_mode_loses_updates_the_lock_prevents`).
//!
//! Must never: give the executor a fake of anything it reads through a port; decide for it.

pub mod actors;
pub mod ci;
pub mod clauses;
pub mod faults;
pub mod git;
pub mod glue;
pub mod monitor;
pub mod plot;
pub mod ports;
pub mod queue;
pub mod report;
pub mod rng;
pub mod runner;
pub mod scenario;
pub mod store;
pub mod world;

// The executor's modules under the paths this code has always used (`crate::channel::…`).
pub(crate) use mainline_exec::{artifact, channel, error};

use crate::channel::cache::FactCache;
use crate::channel::exec::LockMode;
use crate::channel::refs::ChannelKey;
use crate::channel::{ChannelConfig, QueueSource};
use mainline_core::{Policy, Tag};
use mainline_store::Location;
use monitor::{Monitor, Violation};
use scenario::{Params, SimConfig};
use std::sync::Arc;
use world::{Ms, State, World, MINUTE};

/// A deployment strategy, as the CI glue a team writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Strategy {
    DeployNoHeal,
    HealOnFailure,
    HealOnFailureOrCancel,
    HealPlusCron,
    PromoteAfterMerge,
    Mainline,
    MainlineUnlocked,
}

impl Strategy {
    pub const ALL: [Strategy; 7] = [
        Strategy::DeployNoHeal,
        Strategy::HealOnFailure,
        Strategy::HealOnFailureOrCancel,
        Strategy::HealPlusCron,
        Strategy::PromoteAfterMerge,
        Strategy::Mainline,
        Strategy::MainlineUnlocked,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Strategy::DeployNoHeal => "deploy-no-heal",
            Strategy::HealOnFailure => "heal-on-failure",
            Strategy::HealOnFailureOrCancel => "heal-on-failure-or-cancel",
            Strategy::HealPlusCron => "heal-plus-cron",
            Strategy::PromoteAfterMerge => "promote-after-merge",
            Strategy::Mainline => "mainline",
            Strategy::MainlineUnlocked => "mainline-unlocked",
        }
    }

    pub fn from_name(name: &str) -> Option<Strategy> {
        Strategy::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// Everything on the agenda.
#[derive(Debug, Clone, Copy)]
pub enum Event {
    Queue(queue::QueueEvent),
    Job(usize, ci::Step),
    Cancel(usize),
    RunnerLost(usize),
    /// The hourly "restore stranded prod" cron of `heal-plus-cron`.
    RestoreCron(u64),
    Push(usize),
    Schedule(u64),
    Webhook,
    Daemon,
    Pin,
    Unpin,
    /// Re-check the invariants (a pin expiry changes them with no write).
    Observe,
    /// Wake a process whose call or sleep is over.
    Resume(usize),
    /// A held channel write reaches the registry (index into `Registry::held`).
    LateWrite(usize),
}

/// Run one event: world moves inline; anything that calls a port as a new process.
pub(crate) fn dispatch(w: &Arc<World>, ev: Event) {
    let w2 = w.clone();
    match ev {
        Event::Queue(q) => w.with(|s| queue::handle(w, s, q)),
        Event::Cancel(j) => ci::cancel(w, j),
        Event::RunnerLost(j) => ci::runner_lost(w, j),
        Event::Observe => w.with(monitor::observe),
        Event::Resume(_) => {} // the scheduler resumes processes itself
        Event::LateWrite(k) => w.with(|s| store::land_held(w, s, k)),
        Event::Job(j, step) => w.spawn(move || ci::step(&w2, j, step)),
        Event::RestoreCron(k) => w.spawn(move || actors::restore_cron(&w2, k)),
        Event::Push(c) => w.spawn(move || actors::push_run(&w2, c)),
        Event::Schedule(k) => w.spawn(move || actors::schedule_tick(&w2, k)),
        Event::Webhook => w.spawn(move || actors::webhook(&w2)),
        Event::Daemon => w.spawn(move || actors::daemon_tick(&w2)),
        Event::Pin => w.spawn(move || actors::pin(&w2)),
        Event::Unpin => w.spawn(move || actors::unpin(&w2)),
    }
}

/// The seed of history `index` of a run seeded `seed`.
pub fn history_seed(seed: u64, index: u64) -> u64 {
    rng::mix(seed ^ rng::mix(index.wrapping_add(0x5EED)))
}

/// What one history showed.
#[derive(Debug, Clone)]
pub struct HistoryOutcome {
    pub seed: u64,
    pub violations: Vec<Violation>,
    pub max_unmerged_ms: Ms,
    pub max_behind_ms: Ms,
    pub merged_never_deployed: u32,
    /// Groups that merged without a successful pre-merge deploy of their run.
    pub merged_without_deploy: u32,
    pub groups: u32,
    pub executor_runs: u64,
    pub executor_errors: u64,
    pub faults: u32,
    /// Writes that dropped a landed change which landed after the writer decided (races with
    /// a merge; not violations, see `monitor`).
    pub s2_races: u32,
    /// Time main's artifact failed the evidence policy (no heal was allowed).
    pub evidence_gap_ms: Ms,
    /// S3/L1 episodes over the bound excused by faults or the evidence gap, and their length.
    pub fault_excused_episodes: u32,
    pub fault_excused_ms: Ms,
    /// Channel writes just after a pin's expiry, by runners whose clocks disagreed about it.
    pub pin_skew_writes: u32,
    /// The event log (empty unless `SimConfig::log`).
    pub log: Vec<String>,
}

/// The channel every history deploys to.
pub fn channel_config(strategy: Strategy, require_signature: bool) -> ChannelConfig {
    let store = Location::Registry {
        registry: "registry.sim.invalid".into(),
        repository: "acme/app".into(),
    };
    let tag: Tag = "latest".parse().expect("a valid tag");
    ChannelConfig {
        key: ChannelKey::new(&store, &tag),
        store,
        tag,
        git: "https://github.sim.invalid/acme/app.git".into(),
        git_display: "https://github.sim.invalid/acme/app.git".into(),
        branch: "main".into(),
        path: "k8s".into(),
        source: "https://github.sim.invalid/acme/app".into(),
        policy: Policy {
            require_signature,
            allow_empty: false,
        },
        evidence: Default::default(),
        queue: QueueSource::GithubRefs,
        lease_ttl: std::time::Duration::from_secs(30 * 60),
        lock: match strategy {
            Strategy::Mainline => LockMode::git_default(),
            _ => LockMode::None,
        },
        kubernetes: None,
    }
}

/// Run history `seed` under `strategy`.
pub fn run_history(seed: u64, strategy: Strategy, cfg: &SimConfig) -> HistoryOutcome {
    let params = Params::draw(seed, cfg);
    let config = channel_config(strategy, params.require_signature);
    let t_bound = params.schedule_every + 3 * MINUTE;
    let monitor = Monitor::new(
        config.tag.clone(),
        config.key.pin_ref(),
        t_bound,
        params.require_signature,
    );
    let mut monitor = monitor;
    monitor.pin_grace = 2 * params.faults.max_skew_ms;
    let state = State {
        git: git::Remote::new(seed),
        registry: store::Registry::default(),
        agenda: world::Agenda::default(),
        actors: Vec::new(),
        faults: faults::Faults::new(
            rng::Rng::stream(seed, "faults", 0),
            rng::Rng::stream(seed, "skew", 0),
            params.faults.clone(),
        ),
        queue: queue::Queue::default(),
        ci: ci::Ci::default(),
        monitor,
        log: cfg.log.then(Vec::new),
        now: 0,
        tick: 0,
    };
    let daemon_cache = FactCache::memory(config.store.to_string());
    let w = Arc::new(World::new(params, strategy, config, state, daemon_cache));
    w.with(|s| {
        store::seed_main(&w, s);
        queue::schedule_arrivals(&w, s);
        actors::schedule_reconcilers(&w, s);
    });
    w.run_until(w.params.end);
    w.drain();
    w.with(|s| {
        monitor::finish(s);
        HistoryOutcome {
            seed,
            violations: s.monitor.violations.clone(),
            max_unmerged_ms: s.monitor.max_unmerged,
            max_behind_ms: s.monitor.max_behind,
            merged_never_deployed: s.monitor.merged_never_deployed,
            merged_without_deploy: ci::merged_without_deploy(s),
            groups: s.queue.groups.len() as u32,
            executor_runs: s.ci.exec_runs,
            executor_errors: s.ci.exec_errors,
            faults: s.faults.injected,
            s2_races: s.monitor.s2_races,
            evidence_gap_ms: s.monitor.evidence_gap_ms,
            fault_excused_episodes: s.monitor.fault_excused_episodes,
            fault_excused_ms: s.monitor.fault_excused_ms,
            pin_skew_writes: s.monitor.pin_skew_writes,
            log: s.log.take().unwrap_or_default(),
        }
    })
}
