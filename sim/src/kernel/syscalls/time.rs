//! Time, on the virtual clock: it advances with simulated cycles (and with sleeps, which
//! take no real time), so runs are reproducible and fast.
//!
//! Like Linux's clocks, the virtual clock saturates at `KTIME_MAX` (about 292 years): a
//! sleep "for ever" (`tv_sec = INT64_MAX`) ends when the clock gets there, as Linux's timer
//! would, and the guest goes on. A pending `alarm` ends such a sleep first.

use nix::errno::Errno;

use crate::kernel::task::Wait;
use crate::kernel::{Args, Kernel, SysError, SysResult};

/// The virtual wall clock starts at 2025-01-01T00:00:00Z.
pub const EPOCH_NS: u64 = 1_735_689_600 * 1_000_000_000;
const TICKS_PER_SECOND: u64 = 100;
/// Linux's `KTIME_MAX`: the latest time its clocks and timers can hold, in nanoseconds.
pub const KTIME_MAX: u64 = i64::MAX as u64;
pub const NS_PER_SECOND: u64 = 1_000_000_000;

pub fn timespec(ns: u64) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&(ns / NS_PER_SECOND).to_le_bytes());
    out[8..].copy_from_slice(&(ns % NS_PER_SECOND).to_le_bytes());
    out
}

pub fn read_timespec(k: &mut Kernel, addr: u64) -> Result<u64, Errno> {
    let raw = k.proc.mem.read_vec(addr, 16)?;
    let secs = i64::from_le_bytes(raw[..8].try_into().unwrap());
    let nanos = i64::from_le_bytes(raw[8..].try_into().unwrap());
    if secs < 0 || !(0..NS_PER_SECOND as i64).contains(&nanos) {
        return Err(Errno::EINVAL);
    }
    Ok((secs as u64)
        .saturating_mul(NS_PER_SECOND)
        .saturating_add(nanos as u64))
}

/// The reading of clock `id` in nanoseconds.
fn clock(k: &Kernel, id: u64) -> Result<u64, Errno> {
    match id as i32 {
        libc::CLOCK_REALTIME | libc::CLOCK_REALTIME_COARSE | libc::CLOCK_TAI => {
            Ok(EPOCH_NS.saturating_add(k.elapsed_ns))
        }
        libc::CLOCK_MONOTONIC
        | libc::CLOCK_MONOTONIC_RAW
        | libc::CLOCK_MONOTONIC_COARSE
        | libc::CLOCK_BOOTTIME => Ok(k.elapsed_ns),
        libc::CLOCK_PROCESS_CPUTIME_ID | libc::CLOCK_THREAD_CPUTIME_ID => Ok(k.cpu_ns),
        _ => Err(Errno::EINVAL),
    }
}

pub fn clock_gettime(k: &mut Kernel, a: &Args) -> SysResult {
    let now = clock(k, a[0])?;
    k.proc.mem.write(a[1], &timespec(now))?;
    Ok(0)
}

pub fn clock_getres(k: &mut Kernel, a: &Args) -> SysResult {
    clock(k, a[0])?;
    if a[1] != 0 {
        k.proc.mem.write(a[1], &timespec(1))?;
    }
    Ok(0)
}

pub fn gettimeofday(k: &mut Kernel, a: &Args) -> SysResult {
    if a[0] != 0 {
        let now = EPOCH_NS.saturating_add(k.elapsed_ns);
        let mut tv = [0u8; 16];
        tv[..8].copy_from_slice(&(now / NS_PER_SECOND).to_le_bytes());
        tv[8..].copy_from_slice(&(now % NS_PER_SECOND / 1000).to_le_bytes());
        k.proc.mem.write(a[0], &tv)?;
    }
    if a[1] != 0 {
        k.proc.mem.write(a[1], &[0u8; 8])?;
    }
    Ok(0)
}

pub fn time(k: &mut Kernel, a: &Args) -> SysResult {
    let secs = EPOCH_NS.saturating_add(k.elapsed_ns) / NS_PER_SECOND;
    if a[0] != 0 {
        k.proc.mem.write(a[0], &secs.to_le_bytes())?;
    }
    Ok(secs)
}

/// What Linux's sleeps return when a signal cuts them short (include/linux/errno.h): kernel
/// values that the guest never sees, as the signal ends the process, but a tracer does.
const ERESTARTNOHAND: u64 = 514;
const ERESTART_RESTARTBLOCK: u64 = 516;

/// Sleeps `ns` on the virtual clock, up to `KTIME_MAX`: the task blocks, others run, and
/// when no task can run the clock jumps to the earliest deadline (`Kernel::switch`). A
/// signal ends the sleep with `interrupted`, Linux's restart code for the call, which its
/// delivery settles; the time left goes to the remaining-time argument then
/// (`Kernel::write_time_left`).
fn sleep(k: &mut Kernel, ns: u64, interrupted: u64) -> SysResult {
    let until = k.elapsed_ns.saturating_add(ns).min(KTIME_MAX);
    if until <= k.elapsed_ns {
        return Ok(0);
    }
    let restart = interrupted as i64;
    Err(SysError::Block(Wait::Sleep { until, restart }))
}

pub fn nanosleep(k: &mut Kernel, a: &Args) -> SysResult {
    let ns = read_timespec(k, a[0])?;
    sleep(k, ns, ERESTART_RESTARTBLOCK)
}

pub fn clock_nanosleep(k: &mut Kernel, a: &Args) -> SysResult {
    let now = clock(k, a[0])?;
    let request = read_timespec(k, a[2])?;
    if a[1] & libc::TIMER_ABSTIME as u64 != 0 {
        sleep(k, request.saturating_sub(now), ERESTARTNOHAND)
    } else {
        sleep(k, request, ERESTART_RESTARTBLOCK)
    }
}

fn ticks(ns: u64) -> u64 {
    ns / (NS_PER_SECOND / TICKS_PER_SECOND)
}

pub fn times(k: &mut Kernel, a: &Args) -> SysResult {
    if a[0] != 0 {
        let mut tms = [0u8; 32];
        tms[..8].copy_from_slice(&ticks(k.cpu_ns).to_le_bytes());
        k.proc.mem.write(a[0], &tms)?;
    }
    Ok(ticks(k.elapsed_ns))
}

pub fn getrusage(k: &mut Kernel, a: &Args) -> SysResult {
    if a[0] as i32 != libc::RUSAGE_SELF
        && a[0] as i32 != libc::RUSAGE_THREAD
        && a[0] as i32 != libc::RUSAGE_CHILDREN
    {
        return Err(Errno::EINVAL.into());
    }
    let mut usage = [0u8; std::mem::size_of::<libc::rusage>()];
    if a[0] as i32 != libc::RUSAGE_CHILDREN {
        usage[..8].copy_from_slice(&(k.cpu_ns / NS_PER_SECOND).to_le_bytes());
        usage[8..16].copy_from_slice(&(k.cpu_ns % NS_PER_SECOND / 1000).to_le_bytes());
    }
    k.proc.mem.write(a[1], &usage)?;
    Ok(0)
}
