//! Signals: dispositions per process, masks and altstacks per task, pending sets of both,
//! and what happens to a signal from its sending to its delivery. Frames and their undoing
//! are `kernel::sigframe`'s; the machine reads and writes the task's registers around
//! [`Kernel::deliver_signals`] and [`Kernel::sigreturn`].
//!
//! When: a signal is acted on as its target task returns to user mode from a syscall, or
//! wakes in one (a blocked task that can take the signal is woken for it, and its call
//! ends with Linux's restart code). A task that makes no syscall takes its signals at its
//! next one: delivery between two instructions of translated code would need the guest's
//! registers translated back from mid-sequence (see DESIGN.md), so it is not done in either
//! mode, which keeps both modes alike.

use std::collections::BTreeMap;

use nix::sys::signal::Signal;

use super::process::Pid;
use super::sigframe::{
    self, forced_sigsegv, restart_after_signal, AltStack, Delivery, ForcedSigsegv, FxState,
    SigAction, SigInfo, UserRegs, SIG_DFL, SIG_IGN,
};
use super::task::{State, Wait, Wake};
use super::{Exit, Kernel};

pub const NSIG: usize = 64;

/// What a signal does when its disposition is SIG_DFL (signal(7)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultAction {
    Terminate,
    Ignore,
    Stop,
}

/// Linux's default actions; every other signal, the real-time ones included, terminates.
const DEFAULT_ACTIONS: &[(Signal, DefaultAction)] = &[
    (Signal::SIGCHLD, DefaultAction::Ignore),
    (Signal::SIGCONT, DefaultAction::Ignore),
    (Signal::SIGURG, DefaultAction::Ignore),
    (Signal::SIGWINCH, DefaultAction::Ignore),
    (Signal::SIGSTOP, DefaultAction::Stop),
    (Signal::SIGTSTP, DefaultAction::Stop),
    (Signal::SIGTTIN, DefaultAction::Stop),
    (Signal::SIGTTOU, DefaultAction::Stop),
];

pub fn default_action(signo: u32) -> DefaultAction {
    DEFAULT_ACTIONS
        .iter()
        .find(|(s, _)| *s as u32 == signo)
        .map_or(DefaultAction::Terminate, |&(_, action)| action)
}

pub const fn bit(signo: u32) -> u64 {
    sigframe::sigbit(signo)
}

/// The signals a fault raises (Linux's `SYNCHRONOUS_MASK`).
const SYNCHRONOUS: u64 = bit(libc::SIGSEGV as u32)
    | bit(libc::SIGBUS as u32)
    | bit(libc::SIGILL as u32)
    | bit(libc::SIGTRAP as u32)
    | bit(libc::SIGFPE as u32)
    | bit(libc::SIGSYS as u32);

/// A set of pending signals with the siginfo of each (one instance of each signal; a
/// second of a pending signal is merged, as Linux does for the standard ones).
#[derive(Clone, Debug, Default)]
pub struct Pending {
    pub set: u64,
    infos: BTreeMap<u32, SigInfo>,
}

impl Pending {
    pub fn add(&mut self, info: SigInfo) {
        let signo = info.signo() as u32;
        if self.set & bit(signo) == 0 {
            self.set |= bit(signo);
            self.infos.insert(signo, info);
        }
    }

    fn take(&mut self, signo: u32) -> Option<SigInfo> {
        if self.set & bit(signo) == 0 {
            return None;
        }
        self.set &= !bit(signo);
        self.infos.remove(&signo)
    }

    pub fn discard(&mut self, signo: u32) {
        self.take(signo);
    }
}

/// A process's signal state: what each signal does, what is pending for any of its tasks,
/// and its alarm.
#[derive(Clone)]
pub struct SignalState {
    actions: [SigAction; NSIG + 1],
    pub pending: Pending,
    /// ITIMER_REAL, which alarm and setitimer set.
    pub alarm: RealTimer,
    /// Signals that came for the process or one of its tasks: a signalfd's changes, for an
    /// edge-triggered epoll entry.
    pub arrivals: u64,
}

/// What a signalfd shows the task that reads or polls it (Linux's signalfd looks at
/// `current`, so a descriptor inherited across fork shows the child its own signals).
#[derive(Clone, Copy, Debug, Default)]
pub struct SignalView {
    /// The signals pending for the task: its own and its process's.
    pub pending: u64,
    /// Its process's `SignalState::arrivals`.
    pub arrivals: u64,
}

/// A process's real-time interval timer (ITIMER_REAL): when it next fires, on the virtual
/// clock (`Kernel::elapsed_ns`), and after how long it fires again (0: once).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RealTimer {
    pub at: Option<u64>,
    pub interval: u64,
}

impl RealTimer {
    /// Whether the timer fires by `now` (SIGALRM is due). An interval timer is set again
    /// for its first expiry after `now`: expiries missed meanwhile are overruns, one signal
    /// for all, as Linux's `hrtimer_forward` makes them.
    pub fn fire(&mut self, now: u64) -> bool {
        let Some(at) = self.at.filter(|&at| at <= now) else {
            return false;
        };
        self.at = (self.interval != 0).then(|| {
            let missed = (now - at) / self.interval + 1;
            at.saturating_add(missed.saturating_mul(self.interval))
        });
        true
    }
}

impl Default for SignalState {
    fn default() -> Self {
        Self {
            actions: [SigAction::default(); NSIG + 1],
            pending: Pending::default(),
            alarm: RealTimer::default(),
            arrivals: 0,
        }
    }
}

impl SignalState {
    pub fn action(&self, signo: u32) -> SigAction {
        self.actions[signo as usize]
    }

    pub fn set_action(&mut self, signo: u32, action: SigAction) {
        self.actions[signo as usize] = action;
        if self.ignores(signo) {
            // Setting SIG_IGN (or a default of ignoring) discards a pending instance.
            self.pending.discard(signo);
        }
    }

    /// The handler word of signal `signo`: SIG_DFL, SIG_IGN or a guest address.
    pub fn handler(&self, signo: u32) -> u64 {
        self.actions[signo as usize].handler
    }

    /// Whether the signal would be dropped on arrival.
    fn ignores(&self, signo: u32) -> bool {
        match self.handler(signo) {
            SIG_IGN => true,
            SIG_DFL => default_action(signo) == DefaultAction::Ignore,
            _ => false,
        }
    }

    /// A fork child's: the same dispositions; nothing pending, no alarm (fork(2)).
    pub fn for_child(&self) -> Self {
        Self {
            actions: self.actions,
            ..Self::default()
        }
    }

    /// After execve: caught signals go back to their default action (ignored ones stay
    /// ignored; Linux's `flush_signal_handlers`). Pending signals and the alarm stay.
    pub fn reset_for_exec(&mut self) {
        for action in self.actions.iter_mut() {
            if action.handler != SIG_IGN {
                *action = SigAction::default();
            }
        }
    }
}

/// A task's own signal state.
#[derive(Clone, Debug, Default)]
pub struct TaskSignals {
    pub mask: u64,
    /// Signals sent to this task (tgkill, tkill, faults).
    pub pending: Pending,
    pub altstack: AltStack,
    /// The mask sigsuspend put aside, back once a handler returns.
    pub saved_mask: Option<u64>,
}

/// The syscall a task last stopped in, for restarting it after a signal.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AtSyscall {
    pub nr: u64,
}

/// What the machine does after the kernel acted on the running task's signals.
pub enum Delivered {
    /// Nothing changed.
    Nothing,
    /// The task goes on with these registers (a handler's entry, a restarted call).
    Registers(Box<(UserRegs, FxState)>),
    /// The task (its process) ended.
    Ended,
}

impl Kernel {
    /// Sends `info`'s signal to process `pid`, as kill does: dropped if the process ignores
    /// it, otherwise pending for the process, and a task that can take it is woken.
    pub fn signal_process(&mut self, pid: Pid, info: SigInfo) {
        let signo = info.signo() as u32;
        // A blocked signal is never ignored on arrival (`sig_ignored`): a signalfd or a new
        // handler may take it. Linux looks at the task kill names, the group leader.
        let leader_blocks = self
            .tasks_of(pid)
            .first()
            .and_then(|&tid| self.task_ref(tid))
            .is_some_and(|t| t.signals.mask & bit(signo) != 0);
        let Some(process) = self.process_mut(pid) else {
            return;
        };
        if process.exit.is_some() || (process.signals.ignores(signo) && !leader_blocks) {
            return;
        }
        process.signals.pending.add(info);
        process.signals.arrivals += 1;
        self.wake_signal_readers(pid);
        // Linux's complete_signal: the first task that does not block it (lowest tid).
        let taker = self.tasks_of(pid).into_iter().find(|&tid| {
            self.task_ref(tid)
                .is_some_and(|t| t.signals.mask & bit(signo) == 0)
        });
        if let Some(tid) = taker {
            self.interrupt(tid);
        }
    }

    /// Sends `info`'s signal to task `tid` (tgkill, tkill).
    pub fn signal_task(&mut self, tid: Pid, info: SigInfo) {
        let signo = info.signo() as u32;
        let Some(pid) = self.task_ref(tid).map(|t| t.pid) else {
            return;
        };
        let blocked = self
            .task_ref(tid)
            .is_some_and(|t| t.signals.mask & bit(signo) != 0);
        if !blocked
            && self
                .process_mut(pid)
                .is_some_and(|p| p.signals.ignores(signo))
        {
            return;
        }
        let task = self.task_mut(tid).expect("found above");
        task.signals.pending.add(info);
        let unblocked = task.signals.mask & bit(signo) == 0;
        if let Some(process) = self.process_mut(pid) {
            process.signals.arrivals += 1;
        }
        self.wake_signal_readers(pid);
        if unblocked {
            self.interrupt(tid);
        }
    }

    /// A signal came for process `pid`: its tasks reading a signalfd, or polling (one may
    /// watch a signalfd), look again, as Linux's `signalfd_notify` wakes them.
    pub fn wake_signal_readers(&mut self, pid: Pid) {
        for tid in self.tasks_of(pid) {
            let reading = self.task_ref(tid).is_some_and(|t| {
                matches!(
                    t.state,
                    State::Blocked {
                        wait: Wait::Signalfd | Wait::Poll { .. },
                        ..
                    }
                )
            });
            if reading {
                self.wake(tid, Wake::Retry);
            }
        }
    }

    /// The running task's view of its signals, for a signalfd.
    pub fn signal_view(&self) -> SignalView {
        SignalView {
            pending: self.task.signals.pending.set | self.proc.signals.pending.set,
            arrivals: self.proc.signals.arrivals,
        }
    }

    /// Takes the running task's lowest pending signal of `mask`, its own before its
    /// process's, as a signalfd read dequeues them (`dequeue_signal`).
    pub fn take_signal_of(&mut self, mask: u64) -> Option<SigInfo> {
        [
            &mut self.task.signals.pending,
            &mut self.proc.signals.pending,
        ]
        .into_iter()
        .find_map(|pending| {
            let ready = pending.set & mask;
            (ready != 0).then(|| {
                let signo = ready.trailing_zeros() + 1;
                pending
                    .take(signo)
                    .unwrap_or_else(|| SigInfo::kernel(signo))
            })
        })
    }

    /// Wakes task `tid` from an interruptible wait: its call ends with Linux's restart code
    /// for it, which the delivery settles.
    pub(super) fn interrupt(&mut self, tid: Pid) {
        let Some(task) = self.task_ref(tid) else {
            return;
        };
        let State::Blocked { wait, .. } = &task.state else {
            return;
        };
        let code = match *wait {
            Wait::Vfork { .. } => return,
            Wait::PipeWrite { .. } if task.io_progress > 0 => {
                let done = task.io_progress;
                if let Some(task) = self.task_mut(tid) {
                    task.io_progress = 0;
                }
                self.wake(tid, Wake::Return(done));
                return;
            }
            Wait::Suspend | Wait::Poll { .. } => sigframe::ERESTARTNOHAND,
            Wait::Sleep { restart, until } => {
                self.write_time_left(tid, until);
                restart
            }
            _ => sigframe::ERESTARTSYS,
        };
        self.futexes.forget(tid);
        if let Some(task) = self.task_mut(tid) {
            task.poll_deadline = None;
        }
        self.wake(tid, Wake::Return((-code) as u64));
    }

    /// A relative sleep of task `tid` that a signal cut short writes the time left to its
    /// remaining-time argument, as Linux's `nanosleep_copyout` does (a fault there is
    /// ignored: the call still ends as the signal says).
    fn write_time_left(&mut self, tid: Pid, until: u64) {
        let Some(task) = self.task_ref(tid) else {
            return;
        };
        let State::Blocked { call, .. } = task.state else {
            return;
        };
        let absolute = |flags: u64| flags & libc::TIMER_ABSTIME as u64 != 0;
        let remaining = match call.nr {
            nr if nr == libc::SYS_nanosleep as u64 => call.args[1],
            nr if nr == libc::SYS_clock_nanosleep as u64 && !absolute(call.args[1]) => call.args[3],
            _ => return,
        };
        let left = until.saturating_sub(self.elapsed_ns);
        let pid = task.pid;
        if remaining != 0 {
            if let Some(process) = self.process_mut(pid) {
                let _ = process
                    .mem
                    .write(remaining, &super::syscalls::time::timespec(left));
            }
        }
    }

    /// Whether the running task has a signal it does not block.
    pub fn signal_pending(&self) -> bool {
        let pending = self.task.signals.pending.set | self.proc.signals.pending.set;
        pending & !self.task.signals.mask != 0
    }

    /// Acts on the running task's deliverable signals, as it returns to user mode from the
    /// syscall it stopped in (`at`) with registers `regs`: default actions, then at most
    /// one handler's frame. A restart code left in RAX is settled as Linux settles it.
    pub fn deliver_signals(
        &mut self,
        mut regs: UserRegs,
        fx: &FxState,
        at: Option<AtSyscall>,
    ) -> Delivered {
        loop {
            let Some((signo, info)) = self.dequeue() else {
                if let Some(at) = at {
                    let before = regs;
                    restart_after_signal(&mut regs, at.nr, None);
                    if regs != before {
                        return Delivered::Registers(Box::new((regs, *fx)));
                    }
                }
                return Delivered::Nothing;
            };
            let action = self.proc.signals.action(signo);
            match action.handler {
                SIG_IGN => continue,
                SIG_DFL => match default_action(signo) {
                    DefaultAction::Ignore | DefaultAction::Stop => continue,
                    DefaultAction::Terminate => {
                        let signal = Signal::try_from(signo as i32).unwrap_or(Signal::SIGKILL);
                        self.exit_process(Exit::Signal {
                            signal,
                            reason: format!("{} sent to the process", signal.as_str()),
                        });
                        return Delivered::Ended;
                    }
                },
                _ => {}
            }
            if let Some(at) = at {
                restart_after_signal(&mut regs, at.nr, Some(action.flags));
            }
            self.proc.signals.actions[signo as usize] = action.dequeued();
            let delivery = Delivery {
                signo,
                info: &info,
                action: &action,
                regs: &regs,
                fx,
                blocked: self.task.signals.mask,
                saved_sigmask: self.task.signals.saved_mask.take(),
                altstack: self.task.signals.altstack,
            };
            let frame = sigframe::build(&delivery).ok().filter(|frame| {
                frame
                    .writes()
                    .all(|(address, bytes)| self.proc.mem.write(address, bytes).is_ok())
            });
            let Some(frame) = frame else {
                return self.force_sigsegv(signo);
            };
            self.task.signals.mask = frame.blocked;
            self.task.signals.altstack = frame.altstack;
            return Delivered::Registers(Box::new((frame.handler_regs, frame.handler_fx)));
        }
    }

    /// A frame could not be built: SIGSEGV, fatal or for its handler (`force_sigsegv`).
    fn force_sigsegv(&mut self, signo: u32) -> Delivered {
        let segv = Signal::SIGSEGV as u32;
        if forced_sigsegv(signo) == ForcedSigsegv::Fatal
            || self.proc.signals.handler(segv) <= SIG_IGN
        {
            self.exit_process(Exit::Signal {
                signal: Signal::SIGSEGV,
                reason: "the signal frame could not be written to the stack".into(),
            });
            return Delivered::Ended;
        }
        self.proc.signals.actions[segv as usize].handler = SIG_DFL;
        self.task.signals.pending.add(SigInfo::kernel(segv));
        Delivered::Nothing
    }

    /// The next deliverable signal: a fault's first (`dequeue_synchronous_signal`: one
    /// the kernel raised for the task itself), then the lowest, the task's own before the
    /// process's.
    fn dequeue(&mut self) -> Option<(u32, SigInfo)> {
        let mask = self.task.signals.mask;
        let own = &mut self.task.signals.pending;
        let synchronous = own.set & SYNCHRONOUS & !mask;
        if synchronous != 0 {
            let signo = synchronous.trailing_zeros() + 1;
            if own.infos.get(&signo).is_some_and(|info| info.code() > 0) {
                return own.take(signo).map(|info| (signo, info));
            }
        }
        for pending in [
            &mut self.task.signals.pending,
            &mut self.proc.signals.pending,
        ] {
            let ready = pending.set & !mask;
            if ready != 0 {
                let signo = ready.trailing_zeros() + 1;
                let info = pending
                    .take(signo)
                    .unwrap_or_else(|| SigInfo::kernel(signo));
                return Some((signo, info));
            }
        }
        None
    }

    /// rt_sigreturn: the registers, FP state, mask and altstack a handler's frame saved, read
    /// at the running task's `rsp`. `None` when the frame cannot be read or restored: the
    /// process then gets SIGSEGV.
    pub fn sigreturn(&mut self, rsp: u64, at_syscall: &UserRegs) -> Option<(UserRegs, FxState)> {
        let mut bytes = [0u8; sigframe::UCONTEXT_SIZE];
        self.proc.mem.read(rsp, &mut bytes).ok()?;
        let frame = sigframe::read_sigreturn_frame(&bytes);
        self.task.signals.mask = frame.blocked();
        let regs = frame.registers(at_syscall);
        regs.check_user_segments().ok()?;
        let fx = match frame.fpstate().ok()? {
            None => FxState::INIT,
            Some(address) => {
                let mut fx = FxState::INIT;
                self.proc.mem.read(address, &mut fx.0).ok()?;
                fx.check_restorable().ok()?;
                fx
            }
        };
        let _ = self
            .task
            .signals
            .altstack
            .change(frame.uc_stack(), regs.rsp);
        Some((regs, fx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_actions() {
        assert_eq!(
            default_action(libc::SIGSEGV as u32),
            DefaultAction::Terminate
        );
        assert_eq!(default_action(libc::SIGCHLD as u32), DefaultAction::Ignore);
        assert_eq!(default_action(libc::SIGTSTP as u32), DefaultAction::Stop);
        assert_eq!(default_action(40), DefaultAction::Terminate);
    }

    #[test]
    fn an_interval_timer_fires_once_for_the_expiries_it_missed() {
        let mut once = RealTimer {
            at: Some(100),
            interval: 0,
        };
        assert!(!once.fire(99));
        assert!(once.fire(100));
        assert_eq!(once.at, None);
        let mut periodic = RealTimer {
            at: Some(100),
            interval: 10,
        };
        assert!(periodic.fire(135));
        assert_eq!(periodic.at, Some(140));
        assert!(!periodic.fire(139));
    }

    #[test]
    fn a_pending_signal_is_kept_once_with_its_first_siginfo() {
        let mut pending = Pending::default();
        pending.add(SigInfo::user(10, 1000, 0));
        pending.add(SigInfo::user(10, 1001, 0));
        assert_eq!(pending.set, bit(10));
        assert_eq!(pending.take(10).map(|i| i.pid()), Some(1000));
        assert_eq!(pending.take(10), None);
    }
}
