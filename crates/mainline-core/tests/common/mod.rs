//! Shared test fixtures: a commit-DAG model with its ancestry computed by graph search (the
//! oracle), and a small named history for unit tests.
//!
//! The fixture history (indices into the model):
//!
//! ```text
//! ROOT(tree A) - QUIET(tree A) - MAIN(tree B) - PR7(tree C) - PR8(tree D)
//!                     \                \
//!                      STALE(tree E)    PR9(tree F)
//! ```
//! MAIN is mainline's tip; PR7 and PR8 head in-flight groups `pr-7` and `pr-8` (PR8 descends
//! from PR7); STALE is the head of a group that failed; PR9 is a sibling group off MAIN.
#![allow(dead_code)]

use mainline_core::{
    ChannelHead, CommitFacts, CommitId, Digest, Facts, Group, Known, Pin, PinKind, Policy,
    Timestamp,
};
use std::collections::BTreeMap;

pub const ROOT: usize = 0;
pub const QUIET: usize = 1;
pub const MAIN: usize = 2;
pub const PR7: usize = 3;
pub const PR8: usize = 4;
pub const STALE: usize = 5;
pub const PR9: usize = 6;

/// "Now" in every unit test: 2023-11-14T22:13:20Z.
pub const NOW: i64 = 1_700_000_000_000;

/// A commit id whose 12-hex short form is distinct per index.
pub fn c(i: usize) -> CommitId {
    format!("{:012x}{}", 0xc0ffee_000000u64 + i as u64, "0".repeat(28))
        .parse()
        .expect("valid commit id")
}

/// The artifact digest of commit `i` in the models.
pub fn art(i: usize) -> Digest {
    Digest::of(format!("artifact of commit {i}").as_bytes())
}

/// A digest mainline never made.
pub fn foreign(n: usize) -> Digest {
    Digest::of(format!("pushed by hand {n}").as_bytes())
}

/// The channel naming commit `i`'s artifact, annotated with `i`.
pub fn at(i: usize) -> ChannelHead {
    ChannelHead::Names {
        digest: art(i),
        commit: Known::Known(c(i)),
    }
}

pub fn group(id: &str, head: usize, prs: &[u64]) -> Group {
    Group {
        id: id.to_owned(),
        head: c(head),
        prs: prs.to_vec(),
        expires_at: None,
    }
}

pub fn lease(id: &str, head: usize, expires_at: i64) -> Group {
    Group {
        id: id.to_owned(),
        head: c(head),
        prs: Vec::new(),
        expires_at: Some(Timestamp(expires_at)),
    }
}

pub fn pin_to(i: usize, kind: PinKind, expires_at: Option<i64>) -> Pin {
    Pin {
        digest: art(i),
        commit: Some(c(i)),
        reason: "incident 42".to_owned(),
        actor: "alice".to_owned(),
        expires_at: expires_at.map(Timestamp),
        kind,
    }
}

/// A commit DAG (parents have lower indices) with per-commit facts.
#[derive(Debug, Clone)]
pub struct Model {
    pub parents: Vec<Vec<usize>>,
    pub trees: Vec<Option<String>>,
    pub artifacts: Vec<Option<Digest>>,
    pub signed: Vec<bool>,
}

impl Model {
    /// The fixture history described in the module docs.
    pub fn fixture() -> Model {
        let parents = vec![
            vec![],
            vec![ROOT],
            vec![QUIET],
            vec![MAIN],
            vec![PR7],
            vec![QUIET],
            vec![MAIN],
        ];
        let trees = ["A", "A", "B", "C", "D", "E", "F"]
            .iter()
            .map(|t| Some(format!("tree-{t}")))
            .collect();
        Model {
            artifacts: (0..parents.len()).map(|i| Some(art(i))).collect(),
            signed: vec![true; parents.len()],
            parents,
            trees,
        }
    }

    pub fn len(&self) -> usize {
        self.parents.len()
    }

    /// `anc[a][d]`: is `a` equal to or an ancestor of `d`, by graph search (the oracle).
    pub fn ancestry(&self) -> Vec<Vec<bool>> {
        let n = self.len();
        // reach[d][a]: a is reachable from d through parent edges (or is d).
        let reach: Vec<Vec<bool>> = (0..n)
            .map(|d| {
                let mut seen = vec![false; n];
                let mut stack = vec![d];
                while let Some(x) = stack.pop() {
                    if !seen[x] {
                        seen[x] = true;
                        stack.extend(self.parents[x].iter().copied());
                    }
                }
                seen
            })
            .collect();
        (0..n)
            .map(|a| reach.iter().map(|seen| seen[a]).collect())
            .collect()
    }

    /// Facts with every commit gathered and every ordered pair's ancestry answered.
    pub fn facts(
        &self,
        mainline: usize,
        channel: ChannelHead,
        groups: Vec<Group>,
        pin: Option<Pin>,
    ) -> Facts {
        let anc = self.ancestry();
        let mut ancestry = BTreeMap::new();
        for (a, row) in anc.iter().enumerate() {
            for (d, &is) in row.iter().enumerate() {
                if a != d {
                    ancestry.insert((c(a), c(d)), Known::Known(is));
                }
            }
        }
        let commits = (0..self.len())
            .map(|i| {
                let facts = CommitFacts {
                    deploy_tree: Known::Known(self.trees[i].clone()),
                    artifact: Known::Known(self.artifacts[i].clone()),
                    signed: Known::Known(self.signed[i]),
                    empty_tree: Known::Known(self.trees[i].is_none()),
                    evidence_problem: None,
                };
                (c(i), facts)
            })
            .collect();
        Facts {
            now: Timestamp(NOW),
            channel_name: "latest".to_owned(),
            policy: Policy::default(),
            mainline: Known::Known(c(mainline)),
            channel: Known::Known(channel),
            groups: Known::Known(groups),
            pin,
            commits,
            channel_made_elsewhere: false,
            ancestry,
        }
    }
}

/// The fixture with mainline at MAIN, `pr-7` and `pr-8` in flight, no pin, channel as given.
pub fn facts_with_channel(channel: ChannelHead) -> Facts {
    Model::fixture().facts(
        MAIN,
        channel,
        vec![group("pr-7", PR7, &[7]), group("pr-8", PR8, &[7, 8])],
        None,
    )
}

/// Mutable access to a commit's facts in a test.
pub fn commit_mut(facts: &mut Facts, i: usize) -> &mut CommitFacts {
    facts
        .commits
        .get_mut(&c(i))
        .expect("fixture commit is gathered")
}
