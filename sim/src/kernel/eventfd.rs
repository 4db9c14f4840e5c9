//! eventfd counters, modelled in the kernel as Linux's `fs/eventfd.c` keeps them: a read
//! takes the whole count (one, in semaphore mode) and waits while it is 0; a write adds and
//! waits while the sum would pass the largest count. Blocking is the scheduler's, as for
//! pipes.

/// The largest count: one less than `u64::MAX`, which no write may carry.
pub const MAX: u64 = u64::MAX - 1;

pub struct Counter {
    /// Names the counter in wait reasons.
    pub id: u64,
    pub value: u64,
    /// EFD_SEMAPHORE: a read takes one.
    pub semaphore: bool,
    /// Counts added, for its readers, and taken, for its writers (see `Pipe::changes`).
    pub changes: super::pipe::Changes,
}

impl Counter {
    /// What a read takes now, or `None` while the count is 0.
    pub fn take(&mut self) -> Option<u64> {
        if self.value == 0 {
            return None;
        }
        let taken = if self.semaphore { 1 } else { self.value };
        self.value -= taken;
        self.changes.for_writers += 1;
        Some(taken)
    }

    /// Adds `n` if the sum stays at most `MAX`; `false`: the write must wait.
    pub fn add(&mut self, n: u64) -> bool {
        match self.value.checked_add(n) {
            Some(sum) if sum <= MAX => {
                self.value = sum;
                self.changes.for_readers += 1;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_take_all_or_one_and_writes_stop_below_the_largest_count() {
        let mut counter = Counter {
            id: 1,
            value: 3,
            semaphore: false,
            changes: Default::default(),
        };
        assert_eq!(counter.take(), Some(3));
        assert_eq!(counter.take(), None);
        assert!(counter.add(MAX));
        assert!(!counter.add(1));
        counter.semaphore = true;
        assert_eq!(counter.take(), Some(1));
        assert_eq!(counter.value, MAX - 1);
    }
}
