//! A task (a thread): what each thread of a process has of its own, and what it waits on.

use super::process::Pid;
use super::signal::{AtSyscall, TaskSignals};
use super::Args;
use crate::accounting::Tally;
use std::os::fd::RawFd;

pub struct Task {
    pub tid: Pid,
    /// The process (thread group) it belongs to.
    pub pid: Pid,
    pub state: State,
    /// Where `exit` writes 0 and wakes a futex waiter (set_tid_address, CLONE_CHILD_CLEARTID):
    /// how `pthread_join` learns that the thread is gone.
    pub clear_child_tid: u64,
    /// Its robust futex list's head (set_robust_list), which its exit walks.
    pub robust_list: u64,
    /// Bytes a blocked pipe write has written so far.
    pub io_progress: u64,
    /// When a blocked poll times out, on the virtual clock.
    pub poll_deadline: Option<u64>,
    pub signals: TaskSignals,
    /// The syscall it stopped in, while it has not gone back to user mode: where its
    /// signals are delivered.
    pub at_syscall: Option<AtSyscall>,
    /// What the cost model prices that this task ran or caused, as of its last switch out.
    pub tally: Tally,
    /// Syscalls it completed.
    pub syscalls: u64,
    /// Switches away from it: voluntary (it blocked or yielded) and preempted.
    pub voluntary_switches: u64,
    pub preempted: u64,
    /// While it is switched out: the fall-through of the conditional branch its last block
    /// ended with, or 0, which its next block resolves (`System::pending_branch`).
    pub pending_branch: u64,
}

impl Task {
    pub fn new(tid: Pid, pid: Pid) -> Self {
        Self {
            tid,
            pid,
            state: State::Runnable,
            clear_child_tid: 0,
            robust_list: 0,
            io_progress: 0,
            poll_deadline: None,
            signals: TaskSignals::default(),
            at_syscall: None,
            tally: Tally::default(),
            syscalls: 0,
            voluntary_switches: 0,
            preempted: 0,
            pending_branch: 0,
        }
    }
}

/// A syscall a task made that could not complete yet; it completes when the task runs again.
#[derive(Clone, Copy, Debug)]
pub struct Parked {
    pub nr: u64,
    pub args: Args,
    /// The guest address of the syscall instruction.
    pub rip: u64,
}

#[derive(Clone, Debug)]
pub enum State {
    /// Running or waiting in the run queue.
    Runnable,
    /// Waiting for `Wait`, inside the parked call.
    Blocked { wait: Wait, call: Parked },
    /// Woken: when it runs again, its parked call ends as `Wake` says.
    Woken { wake: Wake, call: Parked },
    /// It has exited; it is dropped at the next switch.
    Exited,
}

/// What a blocked task waits for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wait {
    /// A FUTEX_WAKE on the word at this address of its process, matching the bitset, or
    /// the virtual clock to reach `until` (ETIMEDOUT).
    Futex {
        address: u64,
        bitset: u32,
        until: Option<u64>,
    },
    /// A child process to end (wait4).
    Child,
    /// The vfork child `child` to exec or end.
    Vfork { child: Pid },
    /// Bytes in, or no writer left on, pipe `pipe`.
    PipeRead { pipe: u64 },
    /// Room in, or no reader left on, pipe `pipe`.
    PipeWrite { pipe: u64 },
    /// A connection to listening socket `listener` (accept).
    Accept { listener: u64 },
    /// Room in listening socket `listener`'s full accept queue (connect).
    Connect { listener: u64 },
    /// An expiry of timerfd timer `timer`.
    Timerfd { timer: u64 },
    /// A datagram in, or room in, datagram queue `queue`.
    Datagrams { queue: u64 },
    /// A change of eventfd counter `counter`: a count to read, or room to write.
    Eventfd { counter: u64 },
    /// A signal (rt_sigsuspend, pause).
    Suspend,
    /// A signal of a signalfd's mask (its read).
    Signalfd,
    /// A change of any pipe, or the virtual clock to reach `until` (poll, ppoll), or one
    /// of the host descriptors it polled, with their events, to be ready.
    Poll {
        until: Option<u64>,
        host: Vec<(RawFd, i16)>,
    },
    /// Host descriptor `fd` to have one of `events` (a host socket's call, `--net host`).
    Host { fd: RawFd, events: i16 },
    /// The virtual clock to reach `until` (nanosleep); a signal ends the sleep with
    /// `restart`, Linux's restart code for the call.
    Sleep { until: u64, restart: i64 },
}

impl std::fmt::Display for Wait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Wait::Futex { address, .. } => write!(f, "futex wait on {address:#x}"),
            Wait::Child => write!(f, "a child to exit (wait4)"),
            Wait::Vfork { child } => write!(f, "its vfork child {child} to exec or exit"),
            Wait::PipeRead { pipe } => write!(f, "a read of empty pipe {pipe}"),
            Wait::PipeWrite { pipe } => write!(f, "a write to full pipe {pipe}"),
            Wait::Accept { listener } => {
                write!(f, "a connection to listening socket {listener} (accept)")
            }
            Wait::Connect { listener } => {
                write!(
                    f,
                    "a connection to listening socket {listener} (connect, or a read or write in SYN_SENT)"
                )
            }
            Wait::Datagrams { queue } => write!(f, "a change of datagram queue {queue}"),
            Wait::Timerfd { timer } => write!(f, "an expiry of timerfd {timer}"),
            Wait::Eventfd { counter } => write!(f, "a change of eventfd {counter}"),
            Wait::Suspend => write!(f, "a signal"),
            Wait::Signalfd => write!(f, "a signal to read from a signalfd"),
            Wait::Poll { .. } => write!(f, "a poll to find a descriptor ready"),
            Wait::Host { fd, .. } => write!(f, "host socket {fd} to be ready"),
            Wait::Sleep { until, .. } => write!(f, "the clock to reach {until} ns"),
        }
    }
}

/// How a woken task's parked call ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// It returns this value.
    Return(u64),
    /// It runs again from the start (what it waited for may now let it complete).
    Retry,
}
