//! The simulator's only source of randomness: SplitMix64, seeded, with named sub-streams.
//!
//! Why our own 20 lines and not `rand`: `rand` documents that `StdRng`'s output may change
//! between releases, and a simulator seed must replay the same history forever. SplitMix64's
//! output is fixed by its definition (Steele, Lea, Flood 2014), and its statistical quality is
//! more than enough to draw durations and coin flips.
//!
//! Invariants: every draw is integer arithmetic (no floats, so no libm differences between
//! machines); a sub-stream depends only on (seed, label, index), never on how many draws other
//! streams made — so one PR's content does not change when a strategy makes more calls.
//! Must never: read the clock, the process id, or any OS entropy.

/// A seeded SplitMix64 generator.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

/// The SplitMix64 finaliser: a bijective mix of 64 bits.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a of a label, to derive sub-streams by name.
fn label_hash(label: &str) -> u64 {
    label.bytes().fold(0xCBF2_9CE4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng { state: mix(seed) }
    }

    /// The independent stream `label`/`index` of `seed`.
    pub fn stream(seed: u64, label: &str, index: u64) -> Rng {
        Rng::new(mix(seed ^ mix(label_hash(label) ^ mix(index))))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi]` (inclusive); `lo` when the range is empty.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        let span = (hi - lo) as u64 + 1;
        // Multiply-shift: unbiased enough for spans far below 2^32, which is all we draw.
        lo + ((u128::from(self.next_u64()) * u128::from(span)) >> 64) as i64
    }

    /// True with probability `per_mille / 1000`.
    pub fn chance(&mut self, per_mille: u32) -> bool {
        self.range(0, 999) < i64::from(per_mille)
    }
}
