//! A GitHub-style merge queue driving the in-memory remote: pull requests are enqueued, the
//! queue builds groups on top of each other (each group's head merges its PRs onto the
//! previous group's head, or onto main), batches several PRs into one group, runs CI on each
//! group, merges a passed group at the front by fast-forwarding main to its head, and removes
//! a group that failed, was cancelled, lost its runner, timed out at the check timeout or whose
//! PR was dequeued — invalidating every later group, whose PRs are rebuilt on the new base.
//! Failed PRs are ejected (a bad change) or re-enqueued by their authors. Admins push to main
//! directly now and then, which invalidates every group in flight.
//!
//! Invariants (GitHub's, which the checkers rely on): every in-flight group's head descends
//! from main; a group's queue ref exists exactly while it is in flight; main only ever
//! fast-forwards. A removed group's CI run is not stopped: it runs on, orphaned, and may still
//! deploy (the "finished after eviction" incident).
//! Must never: wait or call a port (these are the world's own moves, atomic and fault-free).

use super::git::{MAIN_REF, QUEUE_PREFIX};
use super::rng::mix;
use super::scenario::{pr_draw, PrDraw};
use super::world::{Ms, State, World, EPOCH_MS};
use super::{ci, Event};

/// Why a group left the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum End {
    Merged,
    Failed,
    Cancelled,
    RunnerLost,
    TimedOut,
    Dequeued,
    Invalidated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrState {
    Open,
    Waiting,
    InGroup(usize),
    Merged,
    Ejected,
}

#[derive(Debug)]
pub struct Pr {
    pub num: u64,
    /// The PR branch's tip.
    pub commit: usize,
    pub draw: PrDraw,
    pub state: PrState,
    /// When it landed on main.
    pub landed_at: Option<Ms>,
}

#[derive(Debug)]
pub struct Group {
    pub serial: usize,
    pub prs: Vec<u64>,
    pub head: usize,
    /// The queue ref without `refs/heads/`: mainline's group id.
    pub id: String,
    pub created_at: Ms,
    pub ended: Option<(Ms, End)>,
    /// The state step it ended at (orders it against reads in the same millisecond).
    pub ended_tick: u64,
    pub passed: bool,
    /// The group's CI run passed its pre-merge deploy step.
    pub deployed: bool,
    /// When (and by whose write) the channel stopped naming this group's candidate before its
    /// checks concluded (`clauses`, G).
    pub gate_broken: Option<(Ms, super::monitor::Cause)>,
    /// A write made under an operator pin (or in the pin-skew window after its expiry) moved
    /// the channel off this group's candidate: its window is not judged (clauses.rs, G).
    pub gate_pinned: bool,
}

/// The queue's state.
#[derive(Debug, Default)]
pub struct Queue {
    pub prs: Vec<Pr>,
    pub waiting: Vec<u64>,
    pub groups: Vec<Group>,
    /// In-flight groups, front first.
    pub in_flight: Vec<usize>,
    /// Deploy content (set of changes) of each source commit, by object index.
    pub content: Vec<u64>,
}

/// Queue events on the agenda.
#[derive(Debug, Clone, Copy)]
pub enum QueueEvent {
    Open(u64),
    Enqueue(u64),
    Timeout(usize),
    DirectPush(u64),
    Dequeue(u64),
}

/// A source commit: its deploy tree id is derived from its content (the set of changes).
pub fn source_commit(s: &mut State, parents: &[usize], content: u64) -> usize {
    let tree = format!(
        "{:016x}{:016x}{:08x}",
        content,
        mix(content),
        content as u32
    );
    let time_s = (EPOCH_MS + s.now).div_euclid(1000);
    let idx = s.git.commit(
        parents,
        Some(tree),
        time_s,
        "sim source commit".into(),
        true,
    );
    if s.queue.content.len() <= idx {
        s.queue.content.resize(idx + 1, 0);
    }
    s.queue.content[idx] = content;
    idx
}

fn change(pr: u64) -> u64 {
    mix(pr ^ 0xC0FF_EE00)
}

pub fn handle(w: &World, s: &mut State, ev: QueueEvent) {
    match ev {
        QueueEvent::Open(num) => {
            let draw = pr_draw(w.params.seed, num);
            let main = s.git.main().expect("main exists from the start");
            let content = s.queue.content[main] ^ if draw.touches { change(num) } else { 0 };
            let commit = source_commit(s, &[main], content);
            s.queue.prs.push(Pr {
                num,
                commit,
                draw,
                state: PrState::Open,
                landed_at: None,
            });
            s.note(|_| format!("queue: PR #{num} opened (touches deploy: {})", draw.touches));
            s.at(s.now + draw.review, Event::Queue(QueueEvent::Enqueue(num)));
            if let Some(after) = draw.dequeue_after {
                s.at(
                    s.now + draw.review + after,
                    Event::Queue(QueueEvent::Dequeue(num)),
                );
            }
        }
        QueueEvent::Enqueue(num) => {
            let pr = &mut s.queue.prs[(num - 1) as usize];
            if pr.state == PrState::Open {
                pr.state = PrState::Waiting;
                s.queue.waiting.push(num);
                s.note(|_| format!("queue: PR #{num} enqueued"));
            }
        }
        QueueEvent::Timeout(g) => {
            let grp = &s.queue.groups[g];
            if grp.ended.is_none() && !grp.passed {
                remove(w, s, g, End::TimedOut);
            }
        }
        QueueEvent::DirectPush(n) => {
            let main = s.git.main().expect("main exists");
            let content =
                s.queue.content[main] ^ if n % 3 == 2 { 0 } else { change(1_000_000 + n) };
            let c = source_commit(s, &[main], content);
            let groups = s.queue.in_flight.clone();
            if let Some(&first) = groups.first() {
                invalidate_from(w, s, first);
            }
            s.git.set_ref(MAIN_REF, Some(c));
            s.note(|s| format!("queue: direct push to main {}", s_id(s, c)));
            super::actors::on_main_push(w, s, c);
        }
        QueueEvent::Dequeue(num) => {
            let state = s.queue.prs[(num - 1) as usize].state;
            match state {
                PrState::Waiting => {
                    s.queue.waiting.retain(|&p| p != num);
                    s.queue.prs[(num - 1) as usize].state = PrState::Open;
                }
                PrState::InGroup(g) => {
                    s.queue.prs[(num - 1) as usize].state = PrState::Open;
                    remove(w, s, g, End::Dequeued);
                }
                _ => {}
            }
        }
    }
    form(w, s);
    super::monitor::observe(s);
}

fn s_id(s: &State, c: usize) -> String {
    s.git.id(c).short().to_owned()
}

/// Build groups while there is room and PRs are waiting.
pub fn form(w: &World, s: &mut State) {
    while s.queue.in_flight.len() < w.params.max_groups && !s.queue.waiting.is_empty() {
        let take = w.params.batch.min(s.queue.waiting.len());
        let prs: Vec<u64> = s.queue.waiting.drain(..take).collect();
        let base = match s.queue.in_flight.last() {
            Some(&g) => s.queue.groups[g].head,
            None => s.git.main().expect("main exists"),
        };
        let mut head = base;
        for &num in &prs {
            let pr = &s.queue.prs[(num - 1) as usize];
            let (tip, touches) = (pr.commit, pr.draw.touches);
            let content = s.queue.content[head] ^ if touches { change(num) } else { 0 };
            head = source_commit(s, &[head, tip], content);
        }
        let serial = s.queue.groups.len();
        let last = *prs.last().expect("a group has at least one PR");
        let id = format!(
            "{}pr-{last}-{}",
            QUEUE_PREFIX.trim_start_matches("refs/heads/"),
            s.git.id(base)
        );
        for &num in &prs {
            s.queue.prs[(num - 1) as usize].state = PrState::InGroup(serial);
        }
        s.git.set_ref(&format!("refs/heads/{id}"), Some(head));
        s.note(|s| {
            format!(
                "queue: group {serial} (PR {}) head {} in flight",
                prs.iter()
                    .map(|n| format!("#{n}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                s_id(s, head)
            )
        });
        s.queue.groups.push(Group {
            serial,
            prs,
            head,
            id,
            created_at: s.now,
            ended: None,
            ended_tick: 0,
            passed: false,
            deployed: false,
            gate_broken: None,
            gate_pinned: false,
        });
        s.queue.in_flight.push(serial);
        s.at(
            s.now + w.params.check_timeout,
            Event::Queue(QueueEvent::Timeout(serial)),
        );
        ci::start_job(w, s, serial);
    }
}

/// A group's CI run finished: `None` passed, `Some(end)` failed that way.
pub fn conclude(w: &World, s: &mut State, g: usize, failure: Option<End>) {
    if s.queue.groups[g].ended.is_some() {
        return; // orphaned run: the queue no longer listens
    }
    match failure {
        None => {
            s.queue.groups[g].passed = true;
            merge_ready(w, s);
        }
        Some(end) => remove(w, s, g, end),
    }
    form(w, s);
    super::monitor::observe(s);
}

/// Merge passed groups at the front: fast-forward main to the head, delete the ref.
fn merge_ready(w: &World, s: &mut State) {
    while let Some(&g) = s.queue.in_flight.first() {
        if !s.queue.groups[g].passed {
            break;
        }
        s.queue.in_flight.remove(0);
        let head = s.queue.groups[g].head;
        s.git.set_ref(MAIN_REF, Some(head));
        end_group(w, s, g, End::Merged);
        for num in s.queue.groups[g].prs.clone() {
            let pr = &mut s.queue.prs[(num - 1) as usize];
            pr.state = PrState::Merged;
            pr.landed_at = Some(s.now);
        }
        super::actors::on_main_push(w, s, head);
    }
}

/// Mark a group ended and delete its ref (the `merge_group.destroyed` moment).
fn end_group(w: &World, s: &mut State, g: usize, end: End) {
    let now = s.now;
    let grp = &mut s.queue.groups[g];
    grp.ended = Some((now, end));
    grp.ended_tick = s.tick;
    let refname = format!("refs/heads/{}", grp.id);
    s.git.set_ref(&refname, None);
    s.note(|_| {
        format!(
            "queue: group {g} {} (destroyed)",
            super::clauses::end_words(end)
        )
    });
    super::actors::on_destroyed(w, s, g);
}

/// Remove group `g` (not merged) and invalidate every later group.
fn remove(w: &World, s: &mut State, g: usize, end: End) {
    let Some(pos) = s.queue.in_flight.iter().position(|&x| x == g) else {
        return;
    };
    if let Some(&next) = s.queue.in_flight.get(pos + 1) {
        invalidate_from(w, s, next);
    }
    s.queue.in_flight.remove(pos);
    end_group(w, s, g, end);
    for num in s.queue.groups[g].prs.clone() {
        let pr = &mut s.queue.prs[(num - 1) as usize];
        if pr.state != PrState::InGroup(g) {
            continue; // the dequeued PR itself
        }
        let flaky_or_other = !pr.draw.bad || end != End::Failed;
        if flaky_or_other && pr.draw.requeue {
            pr.state = PrState::Open;
            let at = s.now + pr.draw.requeue_after;
            s.at(at, Event::Queue(QueueEvent::Enqueue(num)));
        } else {
            pr.state = PrState::Ejected;
        }
    }
}

/// Invalidate the in-flight group `from` and every group after it: their PRs go back to the
/// front of the waiting line, in order, to be rebuilt on the new base.
fn invalidate_from(w: &World, s: &mut State, from: usize) {
    let Some(pos) = s.queue.in_flight.iter().position(|&x| x == from) else {
        return;
    };
    let gone: Vec<usize> = s.queue.in_flight.drain(pos..).collect();
    let mut back = Vec::new();
    for g in gone {
        end_group(w, s, g, End::Invalidated);
        for num in s.queue.groups[g].prs.clone() {
            let pr = &mut s.queue.prs[(num - 1) as usize];
            if pr.state == PrState::InGroup(g) {
                pr.state = PrState::Waiting;
                back.push(num);
            }
        }
    }
    back.append(&mut s.queue.waiting);
    s.queue.waiting = back;
}

/// Open PR number `num` at `at` (the arrival process calls this).
pub fn schedule_arrivals(w: &World, s: &mut State) {
    let mut r = super::rng::Rng::stream(w.params.seed, "arrivals", 0);
    let mut t = r.range(0, w.params.pr_gap.1);
    let mut num = 1;
    while t < w.params.arrivals_until {
        s.at(t, Event::Queue(QueueEvent::Open(num)));
        num += 1;
        t += r.range(w.params.pr_gap.0, w.params.pr_gap.1.max(w.params.pr_gap.0));
    }
    for (i, &at) in w.params.direct_pushes.iter().enumerate() {
        s.at(at, Event::Queue(QueueEvent::DirectPush(i as u64)));
    }
}
