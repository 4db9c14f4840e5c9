//! Signal syscalls: dispositions, masks, the alternate stack, sending (kill, tgkill,
//! tkill, alarm and the real-time itimer), waiting (rt_sigsuspend, pause) and rt_sigreturn. What becomes of a signal
//! once sent is `kernel::signal`'s.

use nix::errno::Errno;
use nix::sys::signal::Signal;

use super::time::NS_PER_SECOND;
use crate::kernel::process::INIT_PID;
use crate::kernel::sigframe::{AltStack, SigAction, SigInfo, UNBLOCKABLE};
use crate::kernel::signal::{bit, RealTimer, NSIG};
use crate::kernel::task::Wait;
use crate::kernel::{Args, Kernel, SysError, SysResult};

const SIGSET_SIZE: u64 = 8;

fn signal_number(raw: u64) -> Result<u32, Errno> {
    if (1..=NSIG as u64).contains(&raw) {
        Ok(raw as u32)
    } else {
        Err(Errno::EINVAL)
    }
}

fn signal_number_or_zero(raw: u64) -> Result<u32, Errno> {
    if raw == 0 {
        Ok(0)
    } else {
        signal_number(raw)
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
        let mut bytes = [0u8; SigAction::SIZE];
        k.proc.mem.read(a[1], &mut bytes)?;
        Some(SigAction::from_bytes(&bytes).installed())
    } else {
        None
    };
    if a[2] != 0 {
        let old = k.proc.signals.action(signo).to_bytes();
        k.proc.mem.write(a[2], &old)?;
    }
    if let Some(new) = new {
        k.proc.signals.set_action(signo, new);
    }
    Ok(0)
}

pub fn rt_sigprocmask(k: &mut Kernel, a: &Args) -> SysResult {
    if a[3] != SIGSET_SIZE {
        return Err(Errno::EINVAL.into());
    }
    let old = k.task.signals.mask;
    if a[1] != 0 {
        let set = k.proc.mem.read_u64(a[1])?;
        k.task.signals.mask = match a[0] as i32 {
            libc::SIG_BLOCK => old | set,
            libc::SIG_UNBLOCK => old & !set,
            libc::SIG_SETMASK => set,
            _ => return Err(Errno::EINVAL.into()),
        } & !UNBLOCKABLE;
    }
    if a[2] != 0 {
        k.proc.mem.write(a[2], &old.to_le_bytes())?;
    }
    Ok(0)
}

pub fn rt_sigpending(k: &mut Kernel, a: &Args) -> SysResult {
    if a[1] > SIGSET_SIZE {
        return Err(Errno::EINVAL.into());
    }
    let pending = (k.task.signals.pending.set | k.proc.signals.pending.set) & k.task.signals.mask;
    k.proc
        .mem
        .write(a[0], &pending.to_le_bytes()[..a[1] as usize])?;
    Ok(0)
}

/// The guest's RSP now: the machine puts it in the register requests for the calls that
/// read it (sigaltstack, rt_sigreturn).
fn stack_pointer(k: &Kernel) -> u64 {
    k.registers.rsp_now
}

pub fn sigaltstack(k: &mut Kernel, a: &Args) -> SysResult {
    let sp = stack_pointer(k);
    let new = if a[0] != 0 {
        let mut bytes = [0u8; AltStack::SIZE];
        k.proc.mem.read(a[0], &mut bytes)?;
        Some(AltStack::from_bytes(&bytes))
    } else {
        None
    };
    if a[1] != 0 {
        let old = k.task.signals.altstack.reported(sp).to_bytes();
        k.proc.mem.write(a[1], &old)?;
    }
    if let Some(new) = new {
        k.task.signals.altstack.change(new, sp)?;
    }
    Ok(0)
}

/// Waits, with the mask replaced, until a signal runs a handler (EINTR, once it returned)
/// or ends the process.
pub fn rt_sigsuspend(k: &mut Kernel, a: &Args) -> SysResult {
    if a[1] != SIGSET_SIZE {
        return Err(Errno::EINVAL.into());
    }
    let mask = k.proc.mem.read_u64(a[0])? & !UNBLOCKABLE;
    let old = std::mem::replace(&mut k.task.signals.mask, mask);
    k.task.signals.saved_mask.get_or_insert(old);
    suspend(k)
}

pub fn pause(k: &mut Kernel, _a: &Args) -> SysResult {
    suspend(k)
}

/// Blocks until a signal comes; one already pending ends the wait at once.
fn suspend(k: &mut Kernel) -> SysResult {
    if k.signal_pending() {
        return Ok(sigframe_restart_code());
    }
    Err(SysError::Block(Wait::Suspend))
}

/// What a signal leaves in RAX for pause and sigsuspend: a code that becomes EINTR.
fn sigframe_restart_code() -> u64 {
    (-crate::kernel::sigframe::ERESTARTNOHAND) as u64
}

/// Sends SIGALRM to the running process if the virtual clock has reached its alarm.
pub fn fire_due_alarm(k: &mut Kernel) {
    if k.proc.signals.alarm.fire(k.elapsed_ns) {
        let pid = k.proc.pid;
        k.signal_process(pid, SigInfo::kernel(libc::SIGALRM as u32));
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
        .alarm
        .at
        .map_or(0, |at| seconds_left(at, now));
    k.proc.signals.alarm = RealTimer {
        at: (seconds != 0).then(|| now.saturating_add(seconds * NS_PER_SECOND)),
        interval: 0,
    };
    k.timers_changed = true;
    Ok(previous)
}

/// The `struct itimerval` of `timer` at `now`: interval, then the time left (at least
/// 1 µs while the timer is set, as Linux's `itimer_get_remtime` reports an expiry not yet
/// handled).
fn itimerval(timer: RealTimer, now: u64) -> [u8; 32] {
    let left = timer.at.map_or(0, |at| at.saturating_sub(now).max(1000));
    let mut out = [0u8; 32];
    out[..16].copy_from_slice(&timeval(timer.interval));
    out[16..].copy_from_slice(&timeval(left));
    out
}

/// A `struct timeval` for `ns`, rounded up to the microsecond as Linux's
/// `ns_to_timeval` for itimers does.
fn timeval(ns: u64) -> [u8; 16] {
    let micros = ns.div_ceil(1000);
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&(micros / 1_000_000).to_le_bytes());
    out[8..].copy_from_slice(&(micros % 1_000_000).to_le_bytes());
    out
}

/// A `struct timeval` at `addr`, in nanoseconds; EINVAL out of range.
fn read_timeval(k: &mut Kernel, addr: u64) -> Result<u64, Errno> {
    let raw = k.proc.mem.read_vec(addr, 16)?;
    let secs = i64::from_le_bytes(raw[..8].try_into().unwrap());
    let micros = i64::from_le_bytes(raw[8..].try_into().unwrap());
    if secs < 0 || !(0..1_000_000).contains(&micros) {
        return Err(Errno::EINVAL);
    }
    Ok((secs as u64)
        .saturating_mul(NS_PER_SECOND)
        .saturating_add(micros as u64 * 1000))
}

/// Which itimer: ITIMER_REAL, the one the virtual clock drives. ITIMER_VIRTUAL and
/// ITIMER_PROF count the process's CPU time, which is not modelled per process.
fn real_itimer(which: u64) -> Result<(), SysError> {
    match which as i32 {
        libc::ITIMER_REAL => Ok(()),
        libc::ITIMER_VIRTUAL => Err(SysError::Unsupported("setitimer ITIMER_VIRTUAL".into())),
        libc::ITIMER_PROF => Err(SysError::Unsupported("setitimer ITIMER_PROF".into())),
        _ => Err(SysError::Errno(Errno::EINVAL)),
    }
}

pub fn getitimer(k: &mut Kernel, a: &Args) -> SysResult {
    real_itimer(a[0])?;
    let value = itimerval(k.proc.signals.alarm, k.elapsed_ns);
    k.proc.mem.write(a[1], &value)?;
    Ok(0)
}

/// setitimer(ITIMER_REAL): a null new value disarms, as Linux takes it.
pub fn setitimer(k: &mut Kernel, a: &Args) -> SysResult {
    real_itimer(a[0])?;
    let (value, interval) = match a[1] {
        0 => (0, 0),
        new => (read_timeval(k, new + 16)?, read_timeval(k, new)?),
    };
    let now = k.elapsed_ns;
    if a[2] != 0 {
        let old = itimerval(k.proc.signals.alarm, now);
        k.proc.mem.write(a[2], &old)?;
    }
    k.proc.signals.alarm = RealTimer {
        at: (value != 0).then(|| now.saturating_add(value)),
        interval: if value != 0 { interval } else { 0 },
    };
    k.timers_changed = true;
    Ok(0)
}

/// The sender's identity in a siginfo.
fn sender(k: &Kernel, signo: u32) -> SigInfo {
    SigInfo::user(signo, k.proc.pid as i32, k.proc.credentials.uid.real)
}

/// kill(pid, sig): a process, the caller's group (0), a group (-pgid), or every process
/// but init and the caller (-1). Signal 0 only checks that the target exists.
pub fn kill(k: &mut Kernel, a: &Args) -> SysResult {
    let selector = a[0] as i32 as i64;
    let signo = signal_number_or_zero(a[1])?;
    let me = k.proc.pid;
    let group = k.proc.pgid as i64;
    let targets: Vec<u64> = k
        .live_processes()
        .into_iter()
        .filter(|&(pid, pgid)| match selector {
            0 => pgid as i64 == group,
            -1 => pid != me && pid != INIT_PID,
            s if s > 0 => pid as i64 == s,
            s => pgid as i64 == -s,
        })
        .map(|(pid, _)| pid)
        .collect();
    if targets.is_empty() {
        return Err(Errno::ESRCH.into());
    }
    if signo != 0 {
        for pid in targets {
            k.signal_process(pid, sender(k, signo));
        }
    }
    Ok(0)
}

pub fn tgkill(k: &mut Kernel, a: &Args) -> SysResult {
    let (tgid, tid) = (a[0] as i32 as i64, a[1] as i32 as i64);
    if tgid <= 0 || tid <= 0 {
        return Err(Errno::EINVAL.into());
    }
    send_to_task(k, tid as u64, Some(tgid as u64), a[2])
}

pub fn tkill(k: &mut Kernel, a: &Args) -> SysResult {
    if a[0] as i32 <= 0 {
        return Err(Errno::EINVAL.into());
    }
    send_to_task(k, a[0] as i32 as u64, None, a[1])
}

fn send_to_task(k: &mut Kernel, tid: u64, tgid: Option<u64>, raw: u64) -> SysResult {
    let signo = signal_number_or_zero(raw)?;
    let pid = k.task_process(tid).ok_or(Errno::ESRCH)?;
    if tgid.is_some_and(|tgid| tgid != pid) {
        return Err(Errno::ESRCH.into());
    }
    if signo != 0 {
        let info = SigInfo::tkill(signo, k.proc.pid as i32, k.proc.credentials.uid.real);
        k.signal_task(tid, info);
    }
    Ok(0)
}

/// Sends `signal` to the calling task (SIGPIPE on a broken pipe).
pub fn send_to_self(k: &mut Kernel, signal: Signal) {
    let tid = k.task.tid;
    let info = SigInfo::user(
        signal as u32,
        k.proc.pid as i32,
        k.proc.credentials.uid.real,
    );
    k.signal_task(tid, info);
}

/// rt_sigreturn: the machine reads the registers back from the frame (they need the CPU);
/// its result is the restored RAX, which the kernel returns here.
pub fn rt_sigreturn(k: &mut Kernel, _a: &Args) -> SysResult {
    let rsp = stack_pointer(k);
    let at_syscall = k.registers.user_now;
    match k.sigreturn(rsp, &at_syscall) {
        Some((regs, fx)) => {
            let rax = regs.rax;
            k.registers.restore = Some((regs, fx));
            Ok(rax)
        }
        None => {
            let tid = k.task.tid;
            k.signal_task(tid, SigInfo::kernel(libc::SIGSEGV as u32));
            Ok(0)
        }
    }
}

/// A call a signal cut short, restarted without its handler (`ERESTART_RESTARTBLOCK`
/// with no handler run): the sleeps here have no remaining time to finish, so it answers
/// as Linux's `do_no_restart_syscall` does.
pub fn restart_syscall(_k: &mut Kernel, _a: &Args) -> SysResult {
    Err(Errno::EINTR.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alarm_reports_the_seconds_left_as_linux_rounds_them() {
        assert_eq!(seconds_left(10 * NS_PER_SECOND, 0), 10);
        assert_eq!(seconds_left(NS_PER_SECOND, NS_PER_SECOND - 1000), 1);
        assert_eq!(seconds_left(NS_PER_SECOND, NS_PER_SECOND), 0);
        assert_eq!(seconds_left(5 * NS_PER_SECOND + 600_000_000, 0), 6);
        assert_eq!(seconds_left(5 * NS_PER_SECOND + 400_000_000, 0), 5);
    }
}
