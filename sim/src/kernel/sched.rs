//! The deterministic scheduler: one simulated CPU, a run queue in the order tasks became
//! runnable, and quanta counted in guest instructions, so that a run's interleaving depends
//! only on the program, its input, the quantum and the schedule seed, never on the host.
//!
//! The rule: the running task keeps the CPU until it blocks, yields, exits or has run its
//! quantum; the next task is the front of the run queue. A task that was woken joins the
//! queue ahead of the others, after those woken before it since the last pick (Linux's
//! scheduler favours a task that slept: a parent woken by its child's exit runs before its
//! other children); a task created, yielding or preempted joins its back. `--schedule-seed`
//! instead picks a
//! random runnable task from a seeded stream and draws each quantum between half and one and
//! a half times the configured one, in the spirit of rr's chaos mode: other interleavings,
//! each replayable from its seed.

use std::collections::VecDeque;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::process::Pid;

/// The default quantum: about a millisecond of a 3 GHz core at one instruction a cycle,
/// a quarter of Linux's default CFS minimum granularity of 4 ms (HZ=250).
pub const DEFAULT_QUANTUM: u64 = 1_000_000;

pub struct Scheduler {
    queue: VecDeque<Pid>,
    /// How many tasks at the queue's front were woken since the last pick.
    woken: usize,
    quantum: u64,
    chaos: Option<ChaCha8Rng>,
}

impl Scheduler {
    pub fn new(quantum: u64, seed: Option<u64>) -> Self {
        Self {
            queue: VecDeque::new(),
            woken: 0,
            quantum: quantum.max(1),
            chaos: seed.map(ChaCha8Rng::seed_from_u64),
        }
    }

    /// `tid` may run: it joins the back of the queue.
    pub fn enqueue(&mut self, tid: Pid) {
        debug_assert!(!self.queue.contains(&tid));
        self.queue.push_back(tid);
    }

    /// `tid` was woken: it joins the queue after the tasks woken before it, ahead of the
    /// rest.
    pub fn enqueue_woken(&mut self, tid: Pid) {
        debug_assert!(!self.queue.contains(&tid));
        self.queue.insert(self.woken.min(self.queue.len()), tid);
        self.woken += 1;
    }

    /// `tid` may not run any more (it exited, or was killed while runnable).
    pub fn remove(&mut self, tid: Pid) {
        if let Some(at) = self.queue.iter().position(|&t| t == tid) {
            self.queue.remove(at);
            if at < self.woken {
                self.woken -= 1;
            }
        }
    }

    /// Whether another task is waiting for the CPU.
    pub fn has_runnable(&self) -> bool {
        !self.queue.is_empty()
    }

    /// The task to run next, taken out of the queue.
    pub fn pick(&mut self) -> Option<Pid> {
        self.woken = 0;
        let index = match &mut self.chaos {
            Some(rng) if !self.queue.is_empty() => rng.random_range(0..self.queue.len()),
            _ => 0,
        };
        self.queue.remove(index)
    }

    /// The quantum of the task about to run, in guest instructions.
    pub fn next_quantum(&mut self) -> u64 {
        match &mut self.chaos {
            Some(rng) => rng
                .random_range(self.quantum / 2..=self.quantum + self.quantum / 2)
                .max(1),
            None => self.quantum,
        }
    }

    /// The runnable tasks in queue order, for reports of a stuck system.
    pub fn queued(&self) -> impl Iterator<Item = Pid> + '_ {
        self.queue.iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_in_the_order_tasks_became_runnable() {
        let mut sched = Scheduler::new(100, None);
        for tid in [1002, 1000, 1001] {
            sched.enqueue(tid);
        }
        sched.remove(1000);
        assert_eq!(sched.pick(), Some(1002));
        sched.enqueue(1002);
        assert_eq!(sched.pick(), Some(1001));
        assert_eq!(sched.pick(), Some(1002));
        assert_eq!(sched.pick(), None);
        assert_eq!(sched.next_quantum(), 100);
    }

    #[test]
    fn woken_tasks_run_first_in_the_order_they_were_woken() {
        let mut sched = Scheduler::new(100, None);
        sched.enqueue(1);
        sched.enqueue_woken(2);
        sched.enqueue_woken(3);
        sched.enqueue(4);
        assert_eq!(sched.pick(), Some(2));
        sched.enqueue_woken(5);
        assert_eq!(
            std::iter::from_fn(|| sched.pick()).collect::<Vec<_>>(),
            vec![5, 3, 1, 4]
        );
    }

    #[test]
    fn a_schedule_seed_replays_exactly_and_other_seeds_differ() {
        let order = |seed| {
            let mut sched = Scheduler::new(1000, Some(seed));
            let mut picks = Vec::new();
            for tid in 0..8 {
                sched.enqueue(tid);
            }
            while let Some(tid) = sched.pick() {
                picks.push((tid, sched.next_quantum()));
            }
            picks
        };
        assert_eq!(order(7), order(7));
        assert_ne!(order(7), order(8));
        assert!(order(7).iter().all(|&(_, q)| (500..=1500).contains(&q)));
    }
}
