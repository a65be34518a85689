//! Crash safety (issue 4; DESIGN.md scenario 11): `mainline` is SIGKILLed — with every git
//! process it started, as when a runner dies — at seeded random points of writing runs against
//! a real docker-registry and a real bare git remote: `deploy --candidate` (packing the
//! candidate from git objects and pushing it), `reconcile` restoring main after a group failed,
//! and `promote` after a push to main (packing main). Each situation is attempted 1-4 times,
//! each attempt killed at a uniform random delay within the measured duration of that kind of
//! run (or left to finish).
//!
//! Two ways to die, chosen at random: `Process` (SIGKILL `mainline` alone: a git push it had
//! started still lands) and `Runner` (SIGKILL `mainline` and every client process it started).
//! The bare remote's own receive-pack is never killed: on a real host it runs on the server.
//! The seed replays the situations, kill delays and kill modes; where in the run a delay lands
//! depends on the machine's speed.
//!
//! After every kill: the channel names only complete artifacts (manifest fetchable, every blob
//! present and hashing to its digest, byte-identical to `sha-<commit>`), the journal chain
//! verifies, and the lock is either free or held by the dead run with an expiry at most the TTL
//! its record declares away: one TTL (the default 60 s), or two for a write hold (a run killed
//! around its channel write: `channel/fence.rs`). Rather than wait out ~120 dead holders, the
//! test takes each one's lock over with `GitLock` on a clock whose waits cost nothing — the
//! real takeover path, which watches the record for its declared TTL — and releases it; `a_killed_holder_blocks_writers_until_its_lock_expires` does the
//! real wait once, through the CLI (with `--lock-ttl 5s`).
//! After the re-run (`reconcile`, sometimes a late refused deploy first, sometimes the deploy
//! again): the invariant holds (oracle + `status`), `history --verify` passes, the journal is
//! continuous, every intent but the head is settled, and the registry's channel writes equal
//! the journal's `moved` records.
//!
//! Seed: `MAINLINE_CRASH_SEED`; runs: `MAINLINE_CRASH_RUNS` (default 200). Figures:
//! `cargo test … --test crash -- --nocapture`.

#[path = "support/race.rs"]
mod race;
mod support;

use mainline::adapters::git::GitRepo;
use mainline::channel::lock::GitLock;
use mainline::channel::ports::{Clock, SystemClock};
use mainline::config::{self, ChannelArgs};
use mainline_core::Timestamp;
use race::{
    audit, complete, history, invariant, journal_head, lock_record, status_agrees, KillMode, Proc,
    Registry, Rng,
};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use support::queue::{app, first_deploy, Channel, Group, Queue};

/// The executor's default lock TTL (`LockMode::git_default`), not settable from the CLI.
const LOCK_TTL_MS: i64 = 60_000;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Kind {
    Deploy,
    Restore,
    Promote,
}

#[derive(Default, Debug)]
struct Figures {
    /// Runs started with a kill scheduled.
    runs: usize,
    /// Runs left to finish, to measure the kill window.
    calibrations: usize,
    kills: usize,
    finished_before_kill: usize,
    /// Killed with its intent as the journal head (intent without completion).
    mid_write: usize,
    /// ... of which the channel had already been written.
    mid_write_after_channel_write: usize,
    locks_left_held: usize,
    /// Dangling intents of killed runs settled by a later locked run.
    settled_moved: usize,
    settled_abandoned: usize,
    late_refused_deploys: usize,
    redeploys: usize,
    recoveries: usize,
    ci_pushed: usize,
    kill_modes: BTreeMap<String, usize>,
    violations: Vec<String>,
    by_kind: BTreeMap<String, (usize, usize)>,
}

/// A clock on which waiting costs nothing: `sleep` moves it ahead (twenty times the asked
/// pause) instead of sleeping. A takeover watches a dead holder's record for one TTL on it
/// without waiting for real, in a handful of polls of the remote rather than one a second
/// (sixty git listings per dead holder made this file the suite's slowest).
struct Ahead(std::sync::atomic::AtomicI64);

/// How much further than asked [`Ahead`] moves on a `sleep`.
const AHEAD_SPEEDUP: i64 = 20;

impl Ahead {
    fn new(ms: i64) -> Ahead {
        Ahead(std::sync::atomic::AtomicI64::new(ms))
    }
}

impl Clock for Ahead {
    fn now(&self) -> Timestamp {
        Timestamp(SystemClock.now().millis() + self.0.load(std::sync::atomic::Ordering::SeqCst))
    }
    fn sleep(&self, millis: u64) {
        self.0.fetch_add(
            millis as i64 * AHEAD_SPEEDUP,
            std::sync::atomic::Ordering::SeqCst,
        );
    }
}

struct Harness {
    q: Queue,
    ch: Channel,
    reg: Registry,
    lock_repo: GitRepo,
    lock_key: mainline::channel::refs::ChannelKey,
    rng: Rng,
    f: Figures,
    /// Completed durations per kind, for the kill window.
    took: BTreeMap<Kind, Vec<u64>>,
    next_pr: u64,
    ended: Vec<Group>,
    run_no: u64,
    name: String,
    /// Actors of every killed run, to count the settlement of their intents.
    killed_actors: std::collections::BTreeSet<String>,
    /// (intent seq, settling seq) pairs already counted.
    settlements_seen: std::collections::BTreeSet<(u64, u64)>,
    seen_violations: std::collections::BTreeSet<String>,
}

impl Harness {
    fn new(root: &std::path::Path, seed: u64, name: &str) -> Harness {
        let (q, ch, reg) = race::world(root, "crash");
        let (config, cache_root) = config::resolve(&ChannelArgs {
            channel: Some(ch.reference()),
            git: Some(q.url()),
            path: Some("k8s".into()),
            cache_dir: Some(root.join("lock-breaker")),
            ..ChannelArgs::default()
        })
        .expect("channel config");
        let lock_repo = GitRepo::open(&config, &cache_root).expect("open remote");
        Harness {
            q,
            ch,
            reg,
            lock_repo,
            lock_key: config.key,
            rng: Rng::new(seed),
            f: Figures::default(),
            took: BTreeMap::new(),
            next_pr: 100,
            ended: Vec::new(),
            run_no: 0,
            name: name.to_owned(),
            killed_actors: Default::default(),
            settlements_seen: Default::default(),
            seen_violations: Default::default(),
        }
    }

    /// Record a violation once (each check audits the whole journal again).
    fn violation(&mut self, what: String) {
        let key = what
            .split(" (first seen at")
            .next()
            .unwrap_or(&what)
            .to_owned();
        if !self.seen_violations.insert(key) {
            return;
        }
        eprintln!("  VIOLATION [{}] run {}: {what}", self.name, self.run_no);
        self.f
            .violations
            .push(format!("[{}] run {}: {what}", self.name, self.run_no));
    }

    /// The kill window for `kind`: 1.25 x the median of its last 7 completed writing runs.
    fn window_ms(&self, kind: Kind) -> u64 {
        let mut recent: Vec<u64> = self
            .took
            .get(&kind)
            .map(|v| v.iter().rev().take(7).copied().collect())
            .unwrap_or_default();
        recent.sort_unstable();
        let median = recent.get(recent.len() / 2).copied().unwrap_or(600);
        median + median / 4
    }

    /// Start `args` and SIGKILL it after a random delay within the window (unless `calibrate`).
    /// Returns (killed, actor, exit code, report).
    fn attempt(&mut self, kind: Kind, args: &[&str], calibrate: bool) -> (bool, String, i32) {
        self.run_no += 1;
        if calibrate {
            self.f.calibrations += 1;
        } else {
            self.f.runs += 1;
        }
        let run_id = format!("crash-{}", self.run_no);
        let mut p = Proc::spawn(&self.ch, args, &run_id, &format!("{kind:?}"));
        let actor = p.actor();
        let delay = if calibrate {
            None
        } else {
            Some(Duration::from_millis(
                self.rng.below(self.window_ms(kind) + 1),
            ))
        };
        let mut killed = false;
        if let Some(d) = delay {
            let deadline = p.started + d;
            while Instant::now() < deadline && p.running() {
                std::thread::sleep(Duration::from_millis(2));
            }
            let mode = if self.rng.chance(1, 2) {
                KillMode::Process
            } else {
                KillMode::Runner
            };
            killed = p.kill(mode);
            if killed {
                *self.f.kill_modes.entry(format!("{mode:?}")).or_default() += 1;
            }
        }
        let (run, took) = p.finish();
        let wrote = race::report(&run)["moves"]
            .as_array()
            .is_some_and(|m| !m.is_empty());
        let e = self.f.by_kind.entry(format!("{kind:?}")).or_default();
        e.0 += usize::from(!calibrate);
        if killed {
            self.f.kills += 1;
            e.1 += 1;
        } else {
            if delay.is_some() {
                self.f.finished_before_kill += 1;
            }
            if wrote {
                self.took
                    .entry(kind)
                    .or_default()
                    .push(took.as_millis() as u64);
            }
            if ![0, 5].contains(&run.code) {
                self.violation(format!(
                    "{kind:?} {args:?} exited {}: {}{}",
                    run.code, run.stdout, run.stderr
                ));
            }
        }
        (killed, actor, run.code)
    }

    /// Right after an attempt: S1 for consumers, the journal head, the lock.
    fn after_attempt(&mut self, killed: bool, actor: &str, channel_before: &Option<String>) {
        if let Err(e) = complete(&self.reg, "latest") {
            self.violation(format!("S1 after a kill: {e}"));
        }
        if let Some(head) = journal_head(&self.q) {
            if killed && head["kind"] == "intent" && head["actor"] == actor {
                self.f.mid_write += 1;
                let wrote = self.reg.digest("latest") != *channel_before;
                if wrote {
                    self.f.mid_write_after_channel_write += 1;
                }
                eprintln!(
                    "  [{}] run {}: killed mid-write: intent #{} ({}) dangling, channel {}",
                    self.name,
                    self.run_no,
                    head["seq"],
                    head["action"],
                    if wrote {
                        "ALREADY WRITTEN"
                    } else {
                        "not written"
                    }
                );
            }
        }
        match lock_record(&self.q) {
            None => {}
            Some((_, rec)) if killed && rec["holder"] == actor => {
                self.f.locks_left_held += 1;
                let expires = rec["expires_at"].as_i64().unwrap_or(i64::MAX);
                let declared = rec["ttl_ms"].as_i64().unwrap_or(i64::MAX);
                let now = SystemClock.now().millis();
                if declared != LOCK_TTL_MS && declared != 2 * LOCK_TTL_MS {
                    self.violation(format!(
                        "the dead holder's record declares {declared} ms, neither one TTL nor a write hold of two"
                    ));
                }
                if expires > now + declared + 2_000 {
                    self.violation(format!(
                        "the dead holder's lock expires in {} ms, more than the {declared} ms it declares",
                        expires - now
                    ));
                }
                self.expire_dead_holder();
            }
            Some((_, rec)) => self.violation(format!(
                "the lock is held by {} after its run ended (killed: {killed})",
                rec["holder"]
            )),
        }
    }

    /// Take the dead holder's lock over — watching its record for its declared TTL (at most
    /// a write hold of two TTLs) on a clock whose waits cost nothing — then release it.
    fn expire_dead_holder(&mut self) {
        let clock = Ahead::new(0);
        let mut l = GitLock::new(
            &self.lock_repo,
            &clock,
            &self.lock_key,
            "main",
            "crash-test (clock past the dead holder's expiry)",
        );
        l.wait_ms = 2 * LOCK_TTL_MS as u64 + 1_000;
        match l.acquire() {
            Ok(held) => l.release(held).expect("release the taken-over lock"),
            Err(e) => {
                let msg = format!("could not take over the dead holder's lock: {e}");
                self.violation(msg)
            }
        }
    }

    /// The re-run and every check at rest.
    fn recover_and_check(&mut self) {
        self.f.recoveries += 1;
        let r = self
            .ch
            .run_env(&["reconcile"], &[("GITHUB_RUN_ID", "recovery")]);
        if r.code != 0 {
            self.violation(format!(
                "recovery reconcile exited {}: {}{}",
                r.code, r.stdout, r.stderr
            ));
        }
        if let Some((_, rec)) = lock_record(&self.q) {
            self.violation(format!("lock still held after the re-run: {rec}"));
        }
        self.check_at_rest();
    }

    fn check_at_rest(&mut self) {
        match invariant(&self.q, &self.reg, "latest") {
            Ok((seen, holds)) => {
                if let Err(e) = status_agrees(&self.ch, &seen, &holds) {
                    self.violation(e);
                }
            }
            Err(e) => self.violation(format!("INVARIANT after the re-run: {e}")),
        }
        let h = history(&self.ch);
        if h.code != 0 || !h.breaks.is_empty() {
            self.violation(format!(
                "history --verify exit {} breaks {:?}",
                h.code, h.breaks
            ));
        }
        let now = self.reg.digest("latest");
        let a = audit(&h.records, now.as_deref());
        for an in a.anomalies.clone() {
            self.violation(format!("journal: {an}"));
        }
        // Intents of killed runs that a later run settled.
        for (intent, by) in &a.settled_by {
            let Some(actor) = a.intent_actor.get(intent) else {
                continue;
            };
            if !self.killed_actors.contains(actor) {
                continue;
            }
            let rec = &h.records[*by as usize - 1];
            if rec["actor"] != actor.as_str() {
                // Counted once: only when first seen.
                if self.settlements_seen.insert((*intent, *by)) {
                    eprintln!(
                        "  [{}] run {}: intent #{intent} of a killed run settled by #{by} as {} (by {})",
                        self.name, self.run_no, rec["kind"], rec["actor"]
                    );
                    match rec["kind"].as_str() {
                        Some("moved") => self.f.settled_moved += 1,
                        _ => self.f.settled_abandoned += 1,
                    }
                }
            }
        }
        if a.unsettled.is_empty() {
            let puts = self.reg.tag_puts("latest");
            if puts != a.moved {
                // Worded by the difference, so one lost move is reported once.
                self.violation(format!(
                    "the registry logged {} more channel writes than the journal has moved records (first seen at {puts} vs {})",
                    puts as i64 - a.moved as i64,
                    a.moved
                ));
            }
        }
    }

    /// Half the time CI pushed the commit's artifact (`mainline push --git`) before the
    /// channel run, so the run re-tags an existing digest; otherwise the run packs it from git.
    fn maybe_ci_push(&mut self, commit: &str) {
        if self.rng.chance(1, 2) {
            self.f.ci_pushed += 1;
            self.ch.push_artifact(commit);
        }
    }

    fn end(&mut self, g: &Group) {
        self.q.end(g);
        self.ended.push(g.clone());
    }

    /// One situation: set it up, attempt its writing run 1-4 times under random kills, re-run,
    /// check. Returns the group left in flight on the channel, if any.
    fn situation(&mut self, live: Option<Group>) -> Option<Group> {
        let kind = match &live {
            Some(_) => Kind::Restore,
            None if self.rng.chance(1, 2) => Kind::Deploy,
            None => Kind::Promote,
        };
        let mut group = None;
        let args: Vec<String> = match kind {
            Kind::Restore => {
                let g = live.expect("a live candidate");
                self.end(&g);
                vec!["reconcile".into()]
            }
            Kind::Deploy => {
                self.next_pr += 1;
                let pr = self.next_pr;
                let g = self.q.enqueue(pr, &[("k8s/app.yaml", &app(pr as u32))]);
                self.maybe_ci_push(&g.head.clone());
                let args = [
                    "deploy",
                    "--candidate",
                    "--group",
                    &g.id,
                    "--commit",
                    &g.head,
                ]
                .map(str::to_owned)
                .to_vec();
                group = Some(g);
                args
            }
            Kind::Promote => {
                self.next_pr += 1;
                let m = self.q.push_main(
                    &[("k8s/app.yaml", &app(self.next_pr as u32))],
                    "a direct push to main",
                );
                self.maybe_ci_push(&m);
                vec!["promote".into()]
            }
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        // The first runs of each kind calibrate the kill window; then a killed run is retried
        // (as CI retries a job) up to 1-4 times in all, each retry killed at a new point.
        let calibrate = self.took.get(&kind).is_none_or(|v| v.len() < 2);
        let attempts = if calibrate { 1 } else { 1 + self.rng.below(4) };
        for _ in 0..attempts {
            let before = self.reg.digest("latest");
            let (killed, actor, _) = self.attempt(kind, &args, calibrate);
            if killed {
                self.killed_actors.insert(actor.clone());
            }
            self.after_attempt(killed, &actor, &before);
            if !killed {
                break;
            }
        }

        // Sometimes a late deploy of a group that already ended arrives first (refused: exit 5).
        if !self.ended.is_empty() && self.rng.chance(1, 4) {
            let old = self.ended[self.rng.below(self.ended.len() as u64) as usize].clone();
            let r = self.ch.run_env(
                &[
                    "deploy",
                    "--candidate",
                    "--group",
                    &old.id,
                    "--commit",
                    &old.head,
                ],
                &[("GITHUB_RUN_ID", "late-deploy")],
            );
            self.f.late_refused_deploys += 1;
            if r.code != 5 {
                self.violation(format!(
                    "a late deploy of ended group {} exited {} (expected refused, 5): {}",
                    old.id, r.code, r.stdout
                ));
            }
        }
        self.recover_and_check();

        // What happens to a group whose deploy was interrupted.
        let g = group?;
        match self.rng.below(4) {
            0 | 1 => {
                // Its CI job is re-run and completes the gate.
                self.f.redeploys += 1;
                let r = self.ch.run_env(
                    &[
                        "deploy",
                        "--candidate",
                        "--group",
                        &g.id,
                        "--commit",
                        &g.head,
                    ],
                    &[("GITHUB_RUN_ID", "redeploy")],
                );
                if r.code != 0 || r.json()["final_verdict"] != "CANDIDATE" {
                    self.violation(format!(
                        "the re-run deploy of {} failed: {}",
                        g.id, r.stdout
                    ));
                }
                self.check_at_rest();
                Some(g)
            }
            2 => {
                // It lands: main fast-forwards to it. The next reconcile converges.
                self.q.merge(&g);
                self.recover_and_check();
                None
            }
            _ => {
                // It fails; the next reconcile heals.
                self.end(&g);
                self.recover_and_check();
                None
            }
        }
    }
}

impl Figures {
    fn add(&mut self, o: Figures) {
        self.runs += o.runs;
        self.calibrations += o.calibrations;
        self.kills += o.kills;
        self.finished_before_kill += o.finished_before_kill;
        self.mid_write += o.mid_write;
        self.mid_write_after_channel_write += o.mid_write_after_channel_write;
        self.locks_left_held += o.locks_left_held;
        self.settled_moved += o.settled_moved;
        self.settled_abandoned += o.settled_abandoned;
        self.late_refused_deploys += o.late_refused_deploys;
        self.redeploys += o.redeploys;
        self.recoveries += o.recoveries;
        self.ci_pushed += o.ci_pushed;
        for (k, n) in o.kill_modes {
            *self.kill_modes.entry(k).or_default() += n;
        }
        self.violations.extend(o.violations);
        for (k, (r, x)) in o.by_kind {
            let e = self.by_kind.entry(k).or_default();
            e.0 += r;
            e.1 += x;
        }
    }
}

/// One worker: its own remote, registry repository and runner cache; `runs` killable runs.
fn worker(seed: u64, runs: usize, name: &str) -> (Figures, Vec<String>, usize) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut h = Harness::new(tmp.path(), seed, name);
    first_deploy(&h.ch, &h.q);
    let start = Instant::now();
    let mut live: Option<Group> = None;
    let mut situations = 0;
    while h.f.runs < runs {
        situations += 1;
        live = h.situation(live);
        if situations % 25 == 0 {
            eprintln!(
                "  [{name}] {} runs, {} kills, {} violations ({:.0}s)",
                h.f.runs,
                h.f.kills,
                h.f.violations.len(),
                start.elapsed().as_secs_f64()
            );
        }
    }
    let windows = [Kind::Deploy, Kind::Restore, Kind::Promote]
        .iter()
        .map(|k| format!("{name} {k:?} {} ms", h.window_ms(*k)))
        .collect();
    (h.f, windows, situations)
}

#[test]
fn sigkill_at_random_points_leaves_a_valid_channel_and_a_consistent_journal() {
    let seed = race::seed("MAINLINE_CRASH_SEED", 0x00c0_ffee);
    let runs = race::count("MAINLINE_CRASH_RUNS", 200);
    // Two independent worlds at once halve the wall time; each has its own seed stream.
    let workers = race::count("MAINLINE_CRASH_WORKERS", 2).max(1);
    let start = Instant::now();
    let results: Vec<(Figures, Vec<String>, usize)> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..workers)
            .map(|w| {
                let share = runs / workers + usize::from(w < runs % workers);
                let wseed = seed.wrapping_add(0x9E37_79B9 * w as u64);
                s.spawn(move || worker(wseed, share, &format!("w{w}")))
            })
            .collect();
        hs.into_iter().map(|h| h.join().expect("worker")).collect()
    });
    let mut f = Figures::default();
    let mut windows = Vec::new();
    let mut situations = 0;
    for (wf, w, n) in results {
        f.add(wf);
        windows.extend(w);
        situations += n;
    }
    eprintln!(
        "CRASH seed {seed} ({workers} workers): runs {} (+{} calibration runs not killed), kills {} (by kind {:?}; {:?}), finished before \
         the kill {}, kills mid-write (intent without completion) {} (of which after the channel \
         write {}), locks left held by a dead run {}, recoveries {} (intents of killed runs \
         settled: {} moved, {} abandoned), late refused deploys {}, re-run deploys {}, artifacts \
         pushed by CI first {}, situations {situations}, kill windows [{}], violations {} ({:.0}s)",
        f.runs,
        f.calibrations,
        f.kills,
        f.by_kind,
        f.kill_modes,
        f.finished_before_kill,
        f.mid_write,
        f.mid_write_after_channel_write,
        f.locks_left_held,
        f.recoveries,
        f.settled_moved,
        f.settled_abandoned,
        f.late_refused_deploys,
        f.redeploys,
        f.ci_pushed,
        windows.join(", "),
        f.violations.len(),
        start.elapsed().as_secs_f64()
    );
    let kinds = [
        (
            "intent buried under a later record, never settled",
            "is never settled",
        ),
        (
            "intent settled `abandoned` although the channel was written",
            "abandoned, yet",
        ),
        (
            "registry writes missing from the journal",
            "more channel writes",
        ),
        ("journal continuity breaks (consequences)", "decided from"),
        ("journal continuity breaks (consequences)", "moved from"),
        (
            "journal ends elsewhere than the channel",
            "the journal leaves",
        ),
    ];
    let mut by_cause: BTreeMap<&str, usize> = BTreeMap::new();
    for v in &f.violations {
        let cause = kinds
            .iter()
            .find(|(_, k)| v.contains(k))
            .map_or("other", |(c, _)| c);
        *by_cause.entry(cause).or_default() += 1;
    }
    eprintln!("CRASH violations by cause: {by_cause:?}");
    assert!(f.runs >= runs);
    assert!(
        f.kills * 2 >= f.runs,
        "at least half the runs were killed mid-run: {f:?}"
    );
    assert!(
        f.mid_write > 0,
        "some kills landed between an intent and its completion"
    );
    // Regression (found here with seed 12648430): a refusal recorded without the lock after a
    // killed writer's intent used to bury that intent (the settle looked only at the journal
    // head), and an intent whose artifact had to be packed (no `to_digest`) was settled as
    // `abandoned` although the channel had moved. `settle_journal` now settles every intent
    // after the last settling record, matching packed targets by their commit's artifact tag.
    assert!(
        f.violations.is_empty(),
        "seed {seed}: {} violations:\n{}",
        f.violations.len(),
        f.violations.join("\n")
    );
}

/// The real wait, once, through the CLI: a run SIGKILLed while it holds the lock blocks the
/// next writer until the lock's expiry — no longer — and that writer then takes it over,
/// settles the journal and heals. `--lock-ttl 5s` (on both runs: the holder's record carries
/// its expiry) keeps the wait short; the default is 60 s. The deploy takes the lock with its
/// intent right before the channel write, so its record declares the write hold: two TTLs
/// (`channel/fence.rs`).
#[test]
fn a_killed_holder_blocks_writers_until_its_lock_expires() {
    const TTL_MS: i64 = 5_000;
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut q, ch, reg) = race::world(tmp.path(), "crash-ttl");
    let ch = ch.with(&["--lock-ttl", "5s"]);
    first_deploy(&ch, &q);
    let g = q.enqueue(7, &[("k8s/app.yaml", &app(7))]);
    let mut p = Proc::spawn(
        &ch,
        &[
            "deploy",
            "--candidate",
            "--group",
            &g.id,
            "--commit",
            &g.head,
        ],
        "ttl-victim",
        "deploy",
    );
    let actor = p.actor();
    let held = race::wait_until(Duration::from_secs(30), Duration::from_millis(1), || {
        lock_record(&q).is_some_and(|(_, r)| r["holder"] == actor.as_str())
    });
    assert!(held, "the deploy took the lock");
    assert!(p.kill(KillMode::Runner), "killed while holding the lock");
    let killed_at = SystemClock.now().millis();
    p.finish();
    let (_, rec) = lock_record(&q).expect("the dead run's lock is left on the remote");
    let expires = rec["expires_at"].as_i64().expect("expires_at");
    // The short path's record is a write hold from the start; a patient run killed between
    // its acquire and its renewal for the write would leave one TTL.
    let declared = rec["ttl_ms"].as_i64().expect("ttl_ms");
    assert!(declared == 2 * TTL_MS || declared == TTL_MS, "{rec}");
    assert!(expires - killed_at <= declared + 500, "{rec}");
    let s = ch.status(0);
    assert!(
        s["lock"]
            .as_str()
            .is_some_and(|l| l.contains(&format!("held by {actor}"))),
        "status shows the dead holder: {s}"
    );

    // Main moves: the next reconcile must write, so it needs the lock.
    q.end(&g);
    let m1 = q.push_main(&[("k8s/app.yaml", &app(8))], "a push to main");
    let t = Instant::now();
    let r = ch.run_env(&["reconcile"], &[("GITHUB_RUN_ID", "ttl-next")]);
    let waited = t.elapsed();
    let done_at = SystemClock.now().millis();
    eprintln!(
        "CRASH ttl: a holder killed at +0 s left its lock until +{:.1} s (TTL {} s, a write hold \
         of two); the next writer waited {:.1} s, then took over (exit {})",
        (expires - killed_at) as f64 / 1000.0,
        TTL_MS / 1000,
        waited.as_secs_f64(),
        r.code
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        done_at >= expires,
        "the writer finished at {done_at}, before the dead holder's expiry {expires}"
    );
    assert!(
        waited.as_millis() as i64 <= (expires - killed_at) + 10_000,
        "the writer waited far longer than the remaining TTL"
    );
    let (seen, holds) = invariant(&q, &reg, "latest").expect("invariant");
    status_agrees(&ch, &seen, &holds).expect("status agrees");
    assert_eq!(seen.commit, m1);
    let h = history(&ch);
    assert_eq!(h.code, 0);
    let a = audit(&h.records, reg.digest("latest").as_deref());
    assert!(a.anomalies.is_empty(), "{:?}", a.anomalies);
    assert!(
        a.unsettled.is_empty(),
        "the takeover run settled the dead run's intent"
    );
    assert!(lock_record(&q).is_none(), "released");
}
