//! The clauses of the invariant (DESIGN.md "The invariant") as values, so the simulator's
//! monitor, the reports and the docs name them the same way. Where each clause is enforced and
//! which test checks it is listed once, in the crate documentation (`lib.rs`).
//!
//! Must never: grow a clause that the list in `lib.rs` does not name, or rename one (the
//! simulator's JSON reports and the docs use these names).

use serde::Serialize;

/// One clause of the invariant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Clause {
    /// Only real, verified digests.
    S1,
    /// Never backwards past a landed merge.
    S2,
    /// Bounded exposure to unmerged code.
    S3,
    /// No deploys of ended groups.
    S4,
    /// No lost update.
    S5,
    /// Liveness: the channel names mainline's deploy tree within T.
    L1,
    /// Nothing merged is lost.
    L2,
    /// The gate is real.
    G,
}

impl Clause {
    /// Every clause, in the order DESIGN.md gives them.
    pub const ALL: [Clause; 8] = [
        Clause::S1,
        Clause::S2,
        Clause::S3,
        Clause::S4,
        Clause::L1,
        Clause::L2,
        Clause::S5,
        Clause::G,
    ];

    /// The clause's name, as DESIGN.md, the simulator and the reports write it.
    pub fn name(self) -> &'static str {
        match self {
            Clause::S1 => "S1",
            Clause::S2 => "S2",
            Clause::S3 => "S3",
            Clause::S4 => "S4",
            Clause::S5 => "S5",
            Clause::L1 => "L1",
            Clause::L2 => "L2",
            Clause::G => "G",
        }
    }

    /// DESIGN.md's title of the clause.
    pub fn title(self) -> &'static str {
        match self {
            Clause::S1 => "only real, verified digests",
            Clause::S2 => "never backwards past a landed merge",
            Clause::S3 => "bounded exposure to unmerged code",
            Clause::S4 => "no deploys of ended groups",
            Clause::S5 => "no lost update",
            Clause::L1 => "liveness",
            Clause::L2 => "nothing merged is lost",
            Clause::G => "the gate is real",
        }
    }
}

impl std::fmt::Display for Clause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
