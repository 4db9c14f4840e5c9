//! timerfd timers, on the virtual clock (`syscalls::time`): armed with a first expiry and
//! an interval, read as the count of expiries since the last read, as Linux's
//! `fs/timerfd.c` keeps them. A task that reads or polls one waits on the scheduler until
//! the clock reaches the next expiry (the kernel's list of timers gives the idle clock its
//! deadlines).

use super::pipe::Changes;

pub struct Timer {
    /// Names the timer in wait reasons and wake-ups.
    pub id: u64,
    /// CLOCK_REALTIME: an absolute setting is on the wall clock.
    pub realtime: bool,
    /// The next expiry on the virtual clock (`Kernel::elapsed_ns`), if armed.
    pub next: Option<u64>,
    /// 0: one expiry.
    pub interval: u64,
    /// The expiry whose arrival was announced (its waiters woken).
    pub announced: Option<u64>,
    /// Expiries announced, for readers (see `Pipe::changes`).
    pub changes: Changes,
}

impl Timer {
    pub fn new(id: u64, realtime: bool) -> Self {
        Self {
            id,
            realtime,
            next: None,
            interval: 0,
            announced: None,
            changes: Changes::default(),
        }
    }

    /// The expiries at `now` not yet read.
    pub fn expirations(&self, now: u64) -> u64 {
        match self.next {
            Some(next) if next <= now => 1 + (now - next).checked_div(self.interval).unwrap_or(0),
            _ => 0,
        }
    }

    /// Reads the expiries at `now` and moves the next one past them.
    pub fn take(&mut self, now: u64) -> u64 {
        let count = self.expirations(now);
        if count > 0 {
            self.next = match self.interval {
                0 => None,
                interval => self
                    .next
                    .map(|next| next.saturating_add(count.saturating_mul(interval))),
            };
        }
        count
    }

    /// The time to the next expiry and the interval (timerfd_gettime): 0 when disarmed.
    pub fn remaining(&self, now: u64) -> (u64, u64) {
        let value = self.next.map_or(0, |next| next.saturating_sub(now).max(1));
        (if self.next.is_some() { value } else { 0 }, self.interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_periodic_timer_counts_the_expiries_it_missed() {
        let mut timer = Timer::new(1, false);
        timer.next = Some(100);
        timer.interval = 50;
        assert_eq!(timer.expirations(99), 0);
        assert_eq!(timer.take(260), 4);
        assert_eq!(timer.next, Some(300));
        assert_eq!(timer.remaining(260), (40, 50));
        timer.interval = 0;
        assert_eq!(timer.take(300), 1);
        assert_eq!(timer.next, None);
        assert_eq!(timer.remaining(400), (0, 0));
    }
}
