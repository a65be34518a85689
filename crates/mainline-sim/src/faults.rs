//! Fault injection for every actor call to the registry and the git remote, driven by the
//! history's seeded fault stream: latency, server errors (5xx after the client's own retries),
//! timeouts, lost responses after a successful write, outage windows, process deaths, channel
//! writes held by the network past their attempt's limit that land later (the write that
//! outlives its writer's lease, DESIGN.md scenario 12), and clock skew between runners.
//!
//! Every injected fault is also recorded as an "unclean" interval of virtual time. The
//! liveness checkers (S3, L1) only hold the channel to its bound T over stretches with no
//! fault at all: with the registry down, no strategy can heal, and the design says so.
//! Invariants: the fault stream is separate from the scenario streams, so a strategy that makes
//! more calls draws more faults but sees the same PRs, groups and CI outcomes.
//! Must never: fault the world's own moves (GitHub merging a group, the queue deleting a ref);
//! only actors' calls fail.

use super::rng::Rng;
use super::world::{CallError, Ms, MINUTE, SECOND};

/// Which system a call goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Registry,
    Git,
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Side::Registry => "the registry",
            Side::Git => "the git remote",
        })
    }
}

/// Per-history fault rates (per mille per call) and outage windows.
#[derive(Debug, Clone)]
pub struct FaultProfile {
    /// The call fails before reaching the server (5xx, connection reset).
    pub fail_pm: u32,
    /// The call hangs until the client's timeout; a write may or may not have happened.
    pub timeout_pm: u32,
    /// A write happens but its response is lost: the caller sees an error.
    pub lost_pm: u32,
    pub latency_ms: (Ms, Ms),
    pub timeout_ms: Ms,
    /// `[from, to)` windows in which every call to that side fails.
    pub outages: Vec<(Side, Ms, Ms)>,
    /// A channel write is held (a proxy, a stuck connection) past its attempt's limit, then
    /// applied by the registry later.
    pub stall_pm: u32,
    /// How long past the attempt's cut-off a held write lands: `[min, max]`. The upper bound
    /// stays under the git lock's TTL (60 s): the fence's documented guarantee covers a
    /// request held for less than its attempt's limit plus one TTL (`channel/fence.rs`).
    pub stall_after_cut_ms: (Ms, Ms),
    /// Each runner's wall clock is off by up to this much, either way.
    pub max_skew_ms: Ms,
}

impl FaultProfile {
    /// A profile with no faults at all (for tests that isolate a scenario).
    pub fn none() -> FaultProfile {
        FaultProfile {
            fail_pm: 0,
            timeout_pm: 0,
            lost_pm: 0,
            latency_ms: (20, 200),
            timeout_ms: 30 * SECOND,
            outages: Vec::new(),
            stall_pm: 0,
            stall_after_cut_ms: (5 * SECOND, 55 * SECOND),
            max_skew_ms: 0,
        }
    }

    /// Rates drawn for one history: most histories see rare faults, some see many.
    pub fn draw(rng: &mut Rng, history_ms: Ms) -> FaultProfile {
        let heavy = rng.chance(200);
        let mut outages = Vec::new();
        if rng.chance(150) {
            let side = if rng.chance(500) {
                Side::Registry
            } else {
                Side::Git
            };
            let from = rng.range(0, history_ms);
            outages.push((side, from, from + rng.range(MINUTE, 10 * MINUTE)));
        }
        FaultProfile {
            fail_pm: if heavy { 30 } else { rng.range(0, 5) as u32 },
            timeout_pm: if heavy { 10 } else { rng.range(0, 2) as u32 },
            lost_pm: if heavy { 20 } else { rng.range(0, 5) as u32 },
            latency_ms: (20, rng.range(100, 1_500)),
            timeout_ms: 30 * SECOND,
            outages,
            stall_pm: if heavy { 50 } else { rng.range(0, 8) as u32 },
            stall_after_cut_ms: (5 * SECOND, 55 * SECOND),
            max_skew_ms: rng.range(0, 3 * MINUTE),
        }
    }
}

/// What happens to one call.
#[derive(Debug)]
pub struct Gate {
    pub latency: Ms,
    /// Whether the request reaches the server and acts.
    pub apply: bool,
    pub error: Option<CallError>,
}

/// The fault stream of one history and the record of what it injected.
pub struct Faults {
    rng: Rng,
    /// A separate stream for per-runner clock skew (so skew does not shift the call faults).
    skew_rng: Rng,
    pub profile: FaultProfile,
    /// `[from, to]` intervals during which some fault happened (outages included).
    pub unclean: Vec<(Ms, Ms)>,
    pub injected: u32,
}

impl Faults {
    pub fn new(rng: Rng, skew_rng: Rng, profile: FaultProfile) -> Faults {
        let unclean = profile.outages.iter().map(|&(_, a, b)| (a, b)).collect();
        Faults {
            rng,
            skew_rng,
            profile,
            unclean,
            injected: 0,
        }
    }

    /// Mark `[from, to]` as unclean (a death, a timeout, a lost webhook is not one).
    pub fn taint(&mut self, from: Ms, to: Ms) {
        self.injected += 1;
        self.unclean.push((from, to));
    }

    /// A new runner's clock offset (ms, either way).
    pub fn skew(&mut self) -> Ms {
        let max = self.profile.max_skew_ms;
        if max == 0 {
            return 0;
        }
        self.skew_rng.range(0, 2 * max) - max
    }

    /// Is this channel write held past its attempt's limit? If so: how long after the cut-off
    /// it lands. The held time counts as unclean (a fault is in progress).
    pub fn stall(&mut self, now: Ms) -> Option<Ms> {
        if self.profile.stall_pm == 0 || !self.rng.chance(self.profile.stall_pm) {
            return None;
        }
        let (lo, hi) = self.profile.stall_after_cut_ms;
        let after = self.rng.range(lo, hi);
        self.taint(now, now + self.profile.timeout_ms + after);
        Some(after)
    }

    /// Decide the fate of one call made at `now`.
    pub fn gate(&mut self, side: Side, write: bool, dies: bool, now: Ms) -> Gate {
        let p = &self.profile;
        let latency = self.rng.range(p.latency_ms.0, p.latency_ms.1);
        if dies {
            let apply = write && self.rng.chance(500);
            self.taint(now, now + latency);
            return Gate {
                latency,
                apply,
                error: Some(CallError::Dead),
            };
        }
        let outage = p
            .outages
            .iter()
            .any(|&(s, a, b)| s == side && a <= now && now < b);
        if outage {
            return Gate {
                latency: latency.min(200),
                apply: false,
                error: Some(CallError::Failed(format!(
                    "sim: {side} unreachable (outage)"
                ))),
            };
        }
        let (fail, timeout, lost, timeout_ms) = (p.fail_pm, p.timeout_pm, p.lost_pm, p.timeout_ms);
        if self.rng.chance(fail) {
            self.taint(now, now + latency);
            return Gate {
                latency,
                apply: false,
                error: Some(CallError::Failed(format!(
                    "sim: {side} answered 503 after retries"
                ))),
            };
        }
        if self.rng.chance(timeout) {
            let apply = write && self.rng.chance(500);
            self.taint(now, now + timeout_ms);
            return Gate {
                latency: timeout_ms,
                apply,
                error: Some(CallError::Failed(format!(
                    "sim: {side} timed out after {timeout_ms} ms"
                ))),
            };
        }
        if write && self.rng.chance(lost) {
            self.taint(now, now + latency);
            return Gate {
                latency,
                apply: true,
                error: Some(CallError::Failed(format!(
                    "sim: {side} connection reset after the write (response lost)"
                ))),
            };
        }
        Gate {
            latency,
            apply: true,
            error: None,
        }
    }

    /// The longest stretch of `[from, to]` with no unclean instant in it.
    pub fn longest_clean(&self, from: Ms, to: Ms) -> Ms {
        let mut cuts: Vec<(Ms, Ms)> = self
            .unclean
            .iter()
            .filter(|&&(a, b)| b >= from && a <= to)
            .map(|&(a, b)| (a.max(from), b.min(to)))
            .collect();
        cuts.sort_unstable();
        let mut best = 0;
        let mut cursor = from;
        for (a, b) in cuts {
            best = best.max(a - cursor);
            cursor = cursor.max(b);
        }
        best.max(to - cursor)
    }
}
