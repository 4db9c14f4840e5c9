//! Signals: dispositions and the mask are recorded; a signal whose action is the default
//! one ends the process as Linux would. Running a guest handler (delivery) is not modelled
//! yet, and stops the run with a message that says so. `alarm` runs on the virtual clock:
//! it fires during a sleep that reaches it, or on return from the first syscall after it.

use nix::errno::Errno;
use nix::sys::signal::Signal;

use super::time::NS_PER_SECOND;
use crate::kernel::{Args, Exit, Kernel, SysError, SysResult};

const NSIG: usize = 64;
const SIG_DFL: u64 = 0;
const SIG_IGN: u64 = 1;
/// `struct kernel_sigaction`: handler, flags, restorer, mask.
const SIGACTION_SIZE: usize = 32;
const SIGSET_SIZE: u64 = 8;
const SS_DISABLE: u32 = 2;

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

fn default_action(signo: usize) -> DefaultAction {
    DEFAULT_ACTIONS
        .iter()
        .find(|(s, _)| *s as usize == signo)
        .map_or(DefaultAction::Terminate, |&(_, action)| action)
}

fn bit(signo: usize) -> u64 {
    1 << (signo - 1)
}

const UNBLOCKABLE: u64 = (1 << (libc::SIGKILL - 1)) | (1 << (libc::SIGSTOP - 1));

#[derive(Clone)]
pub struct SignalState {
    actions: [[u8; SIGACTION_SIZE]; NSIG + 1],
    mask: u64,
    pending: u64,
    altstack: [u8; 24],
    /// When the alarm fires, on the virtual clock (`Kernel::elapsed_ns`).
    alarm_at: Option<u64>,
}

impl Default for SignalState {
    fn default() -> Self {
        let mut altstack = [0u8; 24];
        altstack[8..12].copy_from_slice(&SS_DISABLE.to_le_bytes());
        Self {
            actions: [[0; SIGACTION_SIZE]; NSIG + 1],
            mask: 0,
            pending: 0,
            altstack,
            alarm_at: None,
        }
    }
}

impl SignalState {
    /// The handler word of signal `signo`: SIG_DFL, SIG_IGN or a guest address.
    pub fn handler(&self, signo: usize) -> u64 {
        u64::from_le_bytes(self.actions[signo][..8].try_into().unwrap())
    }

    /// A fork child's: the same dispositions, mask and alternate stack; nothing pending, no
    /// alarm (fork(2)).
    pub fn for_child(&self) -> Self {
        Self {
            pending: 0,
            alarm_at: None,
            ..self.clone()
        }
    }

    /// After execve: caught signals go back to their default action (ignored ones stay
    /// ignored), and the alternate stack is gone (Linux's `flush_signal_handlers`).
    pub fn reset_for_exec(&mut self) {
        for action in self.actions.iter_mut() {
            let handler = u64::from_le_bytes(action[..8].try_into().unwrap());
            if handler != SIG_IGN {
                *action = [0; SIGACTION_SIZE];
            }
        }
        self.altstack = Self::default().altstack;
    }

    /// When the pending alarm fires, if one is set.
    pub fn alarm_deadline(&self) -> Option<u64> {
        self.alarm_at
    }
}

fn name(signo: usize) -> String {
    Signal::try_from(signo as i32)
        .map_or_else(|_| format!("signal {signo}"), |s| s.as_str().to_string())
}

/// Acts on signal `signo` sent to the process now that it is unblocked.
fn act(k: &mut Kernel, signo: usize) -> Result<(), SysError> {
    match k.proc.signals.handler(signo) {
        SIG_IGN => Ok(()),
        SIG_DFL => match default_action(signo) {
            DefaultAction::Ignore => Ok(()),
            DefaultAction::Terminate => {
                let signal = Signal::try_from(signo as i32).map_err(|_| {
                    SysError::Unsupported(format!("termination by real-time {}", name(signo)))
                })?;
                k.exit = Some(Exit::Signal {
                    signal,
                    reason: "sent by the program".into(),
                });
                Ok(())
            }
            DefaultAction::Stop => Err(SysError::Unsupported(format!(
                "stopping the process with {}",
                name(signo)
            ))),
        },
        _ => Err(SysError::Unsupported(format!(
            "delivering {} to a guest handler",
            name(signo)
        ))),
    }
}

/// Sends `signal` to the process itself (kill, tgkill, SIGPIPE on a broken pipe).
pub fn send_to_self(k: &mut Kernel, signal: Signal) -> Result<(), SysError> {
    send(k, signal as usize)
}

fn send(k: &mut Kernel, signo: usize) -> Result<(), SysError> {
    if signo == 0 {
        return Ok(());
    }
    if k.proc.signals.mask & bit(signo) & !UNBLOCKABLE != 0 {
        k.proc.signals.pending |= bit(signo);
        return Ok(());
    }
    act(k, signo)
}

/// Acts on pending signals the mask no longer blocks, lowest number first, as Linux does.
fn deliver_unblocked(k: &mut Kernel) -> Result<(), SysError> {
    while let Some(signo) =
        (1..=NSIG).find(|&s| k.proc.signals.pending & bit(s) & !k.proc.signals.mask != 0)
    {
        k.proc.signals.pending &= !bit(signo);
        act(k, signo)?;
        if k.exit.is_some() {
            break;
        }
    }
    Ok(())
}

fn signal_number(raw: u64) -> Result<usize, Errno> {
    if (1..=NSIG as u64).contains(&raw) {
        Ok(raw as usize)
    } else {
        Err(Errno::EINVAL)
    }
}

pub fn rt_sigaction(k: &mut Kernel, a: &Args) -> SysResult {
    let signo = signal_number(a[0])?;
    if a[3] != SIGSET_SIZE {
        return Err(Errno::EINVAL.into());
    }
    let new = if a[1] != 0 {
        if bit(signo) & UNBLOCKABLE != 0 {
            return Err(Errno::EINVAL.into());
        }
        Some(k.proc.mem.read_vec(a[1], SIGACTION_SIZE)?)
    } else {
        None
    };
    if a[2] != 0 {
        let old = k.proc.signals.actions[signo];
        k.proc.mem.write(a[2], &old)?;
    }
    if let Some(new) = new {
        k.proc.signals.actions[signo].copy_from_slice(&new);
        // Setting SIG_IGN discards a pending instance.
        if k.proc.signals.handler(signo) == SIG_IGN {
            k.proc.signals.pending &= !bit(signo);
        }
    }
    Ok(0)
}

pub fn rt_sigprocmask(k: &mut Kernel, a: &Args) -> SysResult {
    if a[3] != SIGSET_SIZE {
        return Err(Errno::EINVAL.into());
    }
    let old = k.proc.signals.mask;
    if a[1] != 0 {
        let set = k.proc.mem.read_u64(a[1])?;
        k.proc.signals.mask = match a[0] as i32 {
            libc::SIG_BLOCK => old | set,
            libc::SIG_UNBLOCK => old & !set,
            libc::SIG_SETMASK => set,
            _ => return Err(Errno::EINVAL.into()),
        } & !UNBLOCKABLE;
    }
    if a[2] != 0 {
        k.proc.mem.write(a[2], &old.to_le_bytes())?;
    }
    deliver_unblocked(k)?;
    Ok(0)
}

pub fn sigaltstack(k: &mut Kernel, a: &Args) -> SysResult {
    let new = if a[0] != 0 {
        Some(k.proc.mem.read_vec(a[0], 24)?)
    } else {
        None
    };
    if a[1] != 0 {
        let old = k.proc.signals.altstack;
        k.proc.mem.write(a[1], &old)?;
    }
    if let Some(new) = new {
        k.proc.signals.altstack.copy_from_slice(&new);
    }
    Ok(0)
}

/// Sends SIGALRM if the virtual clock has reached the alarm.
pub fn fire_due_alarm(k: &mut Kernel) -> Result<(), SysError> {
    match k.proc.signals.alarm_at {
        Some(at) if at <= k.elapsed_ns => {
            k.proc.signals.alarm_at = None;
            send(k, libc::SIGALRM as usize)
        }
        _ => Ok(()),
    }
}

/// Seconds left until `at`, rounded as Linux's alarm reports them: to the nearest second,
/// and at least 1 while any time is left.
fn seconds_left(at: u64, now: u64) -> u64 {
    let left = at.saturating_sub(now);
    let (seconds, micros) = (left / NS_PER_SECOND, left % NS_PER_SECOND / 1000);
    seconds + u64::from((seconds == 0 && micros != 0) || micros >= 500_000)
}

pub fn alarm(k: &mut Kernel, a: &Args) -> SysResult {
    // The argument is an unsigned int.
    let seconds = u64::from(a[0] as u32);
    let now = k.elapsed_ns;
    let previous = k
        .proc
        .signals
        .alarm_at
        .map_or(0, |at| seconds_left(at, now));
    k.proc.signals.alarm_at = (seconds != 0).then(|| now.saturating_add(seconds * NS_PER_SECOND));
    Ok(previous)
}

/// Whether kill's `pid` names this process (or its group, of which it is the only member).
/// -1 means every process but the caller: with one process, nobody.
fn is_self(k: &Kernel, pid: u64) -> bool {
    pid == 0 || pid == k.proc.pid || pid as i64 == -(k.proc.pid as i64)
}

pub fn kill(k: &mut Kernel, a: &Args) -> SysResult {
    if !is_self(k, a[0]) {
        return Err(Errno::ESRCH.into());
    }
    send(k, signal_number_or_zero(a[1])?)?;
    Ok(0)
}

pub fn tgkill(k: &mut Kernel, a: &Args) -> SysResult {
    if a[0] != k.proc.pid || a[1] != k.proc.pid {
        return Err(Errno::ESRCH.into());
    }
    send(k, signal_number_or_zero(a[2])?)?;
    Ok(0)
}

pub fn tkill(k: &mut Kernel, a: &Args) -> SysResult {
    if a[0] != k.proc.pid {
        return Err(Errno::ESRCH.into());
    }
    send(k, signal_number_or_zero(a[1])?)?;
    Ok(0)
}

/// No handler ever interrupts a call, so there is never a call to restart: Linux's
/// `do_no_restart_syscall` answers EINTR.
pub fn restart_syscall(_k: &mut Kernel, _a: &Args) -> SysResult {
    Err(Errno::EINTR.into())
}

fn signal_number_or_zero(raw: u64) -> Result<usize, Errno> {
    if raw == 0 {
        Ok(0)
    } else {
        signal_number(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_actions() {
        assert_eq!(
            default_action(libc::SIGSEGV as usize),
            DefaultAction::Terminate
        );
        assert_eq!(
            default_action(libc::SIGCHLD as usize),
            DefaultAction::Ignore
        );
        assert_eq!(default_action(libc::SIGTSTP as usize), DefaultAction::Stop);
        assert_eq!(default_action(40), DefaultAction::Terminate);
    }

    #[test]
    fn alarm_reports_the_seconds_left_as_linux_rounds_them() {
        assert_eq!(seconds_left(10 * NS_PER_SECOND, 0), 10);
        assert_eq!(seconds_left(NS_PER_SECOND, NS_PER_SECOND - 1000), 1);
        assert_eq!(seconds_left(NS_PER_SECOND, NS_PER_SECOND), 0);
        assert_eq!(seconds_left(5 * NS_PER_SECOND + 600_000_000, 0), 6);
        assert_eq!(seconds_left(5 * NS_PER_SECOND + 400_000_000, 0), 5);
    }
}
