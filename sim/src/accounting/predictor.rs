//! The guest's conditional branches run through a branch predictor, to count the
//! mispredictions a core would pay its penalty for.
//!
//! A gshare predictor (McFarling, "Combining Branch Predictors", DEC WRL TN-36, 1993):
//! 2^16 two-bit counters indexed by the branch's address folded with the last 16
//! outcomes. The cores the cost models name predict with TAGE-like predictors of many
//! tables and longer histories, so this one mispredicts more where outcomes follow a
//! pattern (a loop of more than 16 iterations ends, a branch repeats a long sequence) and
//! about as often where they follow the data (a comparison of random bytes), which no
//! predictor can foresee. It is deterministic: the same run gives the same count.

/// log2 of the counters, and the bits of history.
const BITS: u32 = 16;
const MASK: u32 = (1 << BITS) - 1;

/// A counter's next value, by its value and the outcome: `[value << 1 | taken]`.
const NEXT: [u8; 8] = [0, 1, 0, 2, 1, 3, 2, 3];

pub struct Predictor {
    /// Two-bit saturating counters: 0 and 1 predict not taken, 2 and 3 taken. They start
    /// at 0, so the table costs nothing until the run touches it (calloc).
    counters: Box<[u8]>,
    /// The last `BITS` outcomes, the latest in bit 0.
    history: u32,
    mispredictions: u64,
}

impl Default for Predictor {
    fn default() -> Self {
        Self {
            counters: vec![0; 1 << BITS].into_boxed_slice(),
            history: 0,
            mispredictions: 0,
        }
    }
}

impl Predictor {
    /// The conditional branch at `site` went the way `taken` says: count a misprediction
    /// if the predictor said otherwise, and let it learn.
    #[inline]
    pub fn record(&mut self, site: u64, taken: bool) {
        let folded = (site ^ (site >> BITS) ^ (site >> (2 * BITS))) as u32;
        let index = ((folded ^ self.history) & MASK) as usize;
        let counter = &mut self.counters[index];
        // No host branch on the outcome: it is as hard for the host to predict as for
        // the guest's core.
        let mispredicted = (*counter >> 1) ^ u8::from(taken);
        self.mispredictions = self.mispredictions.wrapping_add(u64::from(mispredicted));
        *counter = NEXT[usize::from(*counter) << 1 | usize::from(taken)];
        self.history = ((self.history << 1) | u32::from(taken)) & MASK;
    }

    pub fn mispredictions(&self) -> u64 {
        self.mispredictions
    }

    /// Where its state lives, for generated code that records branches as `record` does
    /// (`System::inline_counting`): the counters, the history, the misprediction count, the
    /// table of counters' next values and the bits of history.
    pub fn raw_parts(&mut self) -> (*mut u8, *mut u32, *mut u64, *const u8, u32) {
        (
            self.counters.as_mut_ptr(),
            &raw mut self.history,
            &raw mut self.mispredictions,
            NEXT.as_ptr(),
            BITS,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The mispredictions of `outcomes` of one branch, repeated `times`.
    fn mispredicted(outcomes: &[bool], times: usize) -> u64 {
        let mut predictor = Predictor::default();
        for _ in 0..times {
            for &taken in outcomes {
                predictor.record(0x40_1000, taken);
            }
        }
        predictor.mispredictions()
    }

    #[test]
    fn a_branch_always_taken_is_learnt() {
        // The first 16 outcomes each meet a fresh counter, under a history still filling
        // with ones; from then on one counter sees every outcome and mispredicts twice
        // (at 0 and at 1) before it predicts taken for good.
        assert_eq!(mispredicted(&[true], 1000), 16 + 2);
    }

    #[test]
    fn a_short_loop_is_learnt_from_history_and_a_long_one_mispredicts_its_exit() {
        // Taken 7 times, then not: the 16 outcomes before each say where in the loop it
        // is, so after warming up none is mispredicted.
        let mut short = vec![true; 7];
        short.push(false);
        let warm = mispredicted(&short, 100);
        assert_eq!(mispredicted(&short, 1100) - warm, 0);
        // Taken 40 times, then not: the history is all ones at the exit as at every other
        // iteration, so each exit is mispredicted.
        let mut long = vec![true; 40];
        long.push(false);
        let warm = mispredicted(&long, 100);
        assert_eq!(mispredicted(&long, 1100) - warm, 1000);
    }

    #[test]
    fn random_outcomes_are_mispredicted_about_as_often_as_the_rarer_one() {
        // A fixed xorshift sequence, taken one time in four.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let outcomes: Vec<bool> = (0..100_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state.is_multiple_of(4)
            })
            .collect();
        let rate = mispredicted(&outcomes, 1) as f64 / outcomes.len() as f64;
        assert!((0.25..0.40).contains(&rate), "{rate}");
    }
}
