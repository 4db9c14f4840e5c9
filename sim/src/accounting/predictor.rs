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

/// Branches that generated code resolved and logged, taken in a run when the log is full
/// or before the predictor is read: 64 KiB.
const LOG_PAIRS: usize = 4096;

pub struct Predictor {
    /// Two-bit saturating counters: 0 and 1 predict not taken, 2 and 3 taken. They start
    /// at 0, so the table costs nothing until the run touches it (calloc).
    counters: Box<[u8]>,
    /// The last `BITS` outcomes, the latest in bit 0.
    history: u32,
    mispredictions: u64,
    /// Branches resolved by generated code and not yet recorded, in order: (the branch's
    /// fall-through, the address of the block that ran next) pairs.
    log: Box<[[u64; 2]]>,
    /// The address in `log` where the next pair goes, which generated code advances.
    log_next: u64,
}

impl Default for Predictor {
    fn default() -> Self {
        let mut log = vec![[0; 2]; LOG_PAIRS].into_boxed_slice();
        let log_next = log.as_mut_ptr() as u64;
        Self {
            counters: vec![0; 1 << BITS].into_boxed_slice(),
            history: 0,
            mispredictions: 0,
            log,
            log_next,
        }
    }
}

impl Predictor {
    /// The conditional branch at `site` went the way `taken` says: count a misprediction
    /// if the predictor said otherwise, and let it learn. The branches logged before it
    /// are recorded first.
    pub fn record(&mut self, site: u64, taken: bool) {
        self.drain();
        self.step(site, taken);
    }

    /// Records the logged branches, in order, and empties the log. Generated code does
    /// the same when the log is full (`ringsim_drain_branches` in the vendored Unicorn).
    pub fn drain(&mut self) {
        let start = self.log.as_ptr() as u64;
        let logged = ((self.log_next - start) / 16) as usize;
        for index in 0..logged {
            let [site, next] = self.log[index];
            self.step(site, next != site);
        }
        self.log_next = start;
    }

    #[inline]
    fn step(&mut self, site: u64, taken: bool) {
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

    /// The mispredictions so far, the logged branches' included.
    pub fn mispredictions(&mut self) -> u64 {
        self.drain();
        self.mispredictions
    }

    /// Where its state lives, for generated code that logs branches and records them as
    /// `drain` does (`System::inline_counting`).
    pub fn raw_parts(&mut self) -> RawParts {
        let log = self.log.as_mut_ptr().cast::<u64>();
        RawParts {
            table: self.counters.as_mut_ptr(),
            history: &raw mut self.history,
            mispredictions: &raw mut self.mispredictions,
            next: NEXT.as_ptr(),
            bits: BITS,
            log,
            log_next: (&raw mut self.log_next).cast(),
            // SAFETY: one past the log's last pair, within the same allocation.
            log_end: unsafe { log.add(2 * LOG_PAIRS) },
        }
    }
}

/// `Predictor::raw_parts`: the counters, the history, the misprediction count, the table
/// of counters' next values, the bits of history, and the log: its first pair, the slot
/// holding where the next goes, and its end.
pub struct RawParts {
    pub table: *mut u8,
    pub history: *mut u32,
    pub mispredictions: *mut u64,
    pub next: *const u8,
    pub bits: u32,
    pub log: *mut u64,
    pub log_next: *mut *mut u64,
    pub log_end: *mut u64,
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
    fn logged_branches_count_as_recorded_ones_in_order() {
        // Two branches in turn, taken one time in three. More than two logs' worth are
        // logged in a row (the log fills and is drained twice), then two are recorded
        // directly among logged ones.
        let outcomes: Vec<(u64, bool)> = (0..3 * LOG_PAIRS as u64)
            .map(|i| (0x40_1000 + 16 * (i % 2), i % 3 == 0))
            .collect();
        let mut recorded = Predictor::default();
        for &(site, taken) in &outcomes {
            recorded.record(site, taken);
        }
        let mut logged = Predictor::default();
        for (i, &(site, taken)) in outcomes.iter().enumerate() {
            if i == 2 * LOG_PAIRS + 5 || i == 2 * LOG_PAIRS + 77 {
                logged.record(site, taken);
                continue;
            }
            // As generated code logs: the pair at `log_next`, which it advances; a full
            // log is drained first.
            let parts = logged.raw_parts();
            // SAFETY: the parts point into `logged`, alive and not otherwise borrowed here.
            unsafe {
                if *parts.log_next == parts.log_end {
                    logged.drain();
                }
                let at = *parts.log_next;
                *at = site;
                *at.add(1) = if taken { 0 } else { site };
                *parts.log_next = at.add(2);
            }
        }
        assert!(recorded.mispredictions() > 0);
        assert_eq!(logged.mispredictions(), recorded.mispredictions());
        assert_eq!(logged.history, recorded.history);
        assert_eq!(logged.counters, recorded.counters);
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
