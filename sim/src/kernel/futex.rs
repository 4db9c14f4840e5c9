//! Futex wait queues: tasks waiting on a word of their process's memory, woken in the order
//! they began to wait, as Linux's hash-bucket queues wake them.

use super::process::Pid;

/// A futex word: the process whose memory holds it and its address there. (Shared futexes
/// across processes would be keyed by physical frame; no memory is shared between processes
/// yet.)
pub type Key = (Pid, u64);

#[derive(Default)]
pub struct Futexes {
    /// Waiters in the order they began to wait.
    waiters: Vec<Waiter>,
}

struct Waiter {
    key: Key,
    tid: Pid,
    bitset: u32,
}

impl Futexes {
    pub fn wait(&mut self, key: Key, tid: Pid, bitset: u32) {
        self.waiters.push(Waiter { key, tid, bitset });
    }

    /// Takes up to `count` waiters on `key` whose bitset meets `bitset`, first come first.
    pub fn wake(&mut self, key: Key, count: u64, bitset: u32) -> Vec<Pid> {
        let mut woken = Vec::new();
        self.waiters.retain(|w| {
            let wake = woken.len() < count as usize && w.key == key && w.bitset & bitset != 0;
            if wake {
                woken.push(w.tid);
            }
            !wake
        });
        woken
    }

    /// FUTEX_REQUEUE: wakes up to `wake` waiters on `from` and moves up to `requeue` more to
    /// `to`. Returns the woken tasks and how many moved.
    pub fn requeue(&mut self, from: Key, to: Key, wake: u64, requeue: u64) -> (Vec<Pid>, u64) {
        let woken = self.wake(from, wake, u32::MAX);
        let mut moved = 0;
        for waiter in self.waiters.iter_mut().filter(|w| w.key == from) {
            if moved == requeue {
                break;
            }
            waiter.key = to;
            moved += 1;
        }
        (woken, moved)
    }

    /// `tid` no longer waits (it was killed).
    pub fn forget(&mut self, tid: Pid) {
        self.waiters.retain(|w| w.tid != tid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wakes_in_arrival_order_by_key_and_bitset() {
        let mut futexes = Futexes::default();
        futexes.wait((1, 0x10), 5, u32::MAX);
        futexes.wait((1, 0x20), 6, u32::MAX);
        futexes.wait((1, 0x10), 7, 0b10);
        futexes.wait((1, 0x10), 8, u32::MAX);
        assert_eq!(futexes.wake((1, 0x10), 5, 0b01), vec![5, 8]);
        assert_eq!(futexes.wake((2, 0x10), 5, u32::MAX), Vec::<Pid>::new());
        assert_eq!(futexes.wake((1, 0x10), 1, u32::MAX), vec![7]);
    }

    #[test]
    fn requeue_moves_the_rest_to_the_other_word() {
        let mut futexes = Futexes::default();
        for tid in 1..=4 {
            futexes.wait((1, 0x10), tid, u32::MAX);
        }
        assert_eq!(futexes.requeue((1, 0x10), (1, 0x20), 1, 2), (vec![1], 2));
        assert_eq!(futexes.wake((1, 0x20), 9, u32::MAX), vec![2, 3]);
        assert_eq!(futexes.wake((1, 0x10), 9, u32::MAX), vec![4]);
    }
}
