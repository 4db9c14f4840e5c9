//! Time, on the virtual clock: it advances with simulated cycles (and with sleeps, which
//! take no real time), so runs are reproducible and fast.

use nix::errno::Errno;

use crate::kernel::{Args, Kernel, SysResult};

/// The virtual wall clock starts at 2025-01-01T00:00:00Z.
pub const EPOCH_NS: u64 = 1_735_689_600 * 1_000_000_000;
const TICKS_PER_SECOND: u64 = 100;

fn timespec(ns: u64) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&(ns / 1_000_000_000).to_le_bytes());
    out[8..].copy_from_slice(&(ns % 1_000_000_000).to_le_bytes());
    out
}

fn read_timespec(k: &mut Kernel, addr: u64) -> Result<u64, Errno> {
    let raw = k.mem.read_vec(addr, 16)?;
    let secs = i64::from_le_bytes(raw[..8].try_into().unwrap());
    let nanos = i64::from_le_bytes(raw[8..].try_into().unwrap());
    if secs < 0 || !(0..1_000_000_000).contains(&nanos) {
        return Err(Errno::EINVAL);
    }
    Ok((secs as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(nanos as u64))
}

/// The reading of clock `id` in nanoseconds.
fn clock(k: &Kernel, id: u64) -> Result<u64, Errno> {
    match id as i32 {
        libc::CLOCK_REALTIME | libc::CLOCK_REALTIME_COARSE | libc::CLOCK_TAI => {
            Ok(EPOCH_NS + k.elapsed_ns)
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
    k.mem.write(a[1], &timespec(now))?;
    Ok(0)
}

pub fn clock_getres(k: &mut Kernel, a: &Args) -> SysResult {
    clock(k, a[0])?;
    if a[1] != 0 {
        k.mem.write(a[1], &timespec(1))?;
    }
    Ok(0)
}

pub fn gettimeofday(k: &mut Kernel, a: &Args) -> SysResult {
    if a[0] != 0 {
        let now = EPOCH_NS + k.elapsed_ns;
        let mut tv = [0u8; 16];
        tv[..8].copy_from_slice(&(now / 1_000_000_000).to_le_bytes());
        tv[8..].copy_from_slice(&(now % 1_000_000_000 / 1000).to_le_bytes());
        k.mem.write(a[0], &tv)?;
    }
    if a[1] != 0 {
        k.mem.write(a[1], &[0u8; 8])?;
    }
    Ok(0)
}

pub fn time(k: &mut Kernel, a: &Args) -> SysResult {
    let secs = (EPOCH_NS + k.elapsed_ns) / 1_000_000_000;
    if a[0] != 0 {
        k.mem.write(a[0], &secs.to_le_bytes())?;
    }
    Ok(secs)
}

fn sleep(k: &mut Kernel, ns: u64, remaining: u64) -> SysResult {
    k.slept_ns = k.slept_ns.saturating_add(ns);
    if remaining != 0 {
        k.mem.write(remaining, &timespec(0))?;
    }
    Ok(0)
}

pub fn nanosleep(k: &mut Kernel, a: &Args) -> SysResult {
    let ns = read_timespec(k, a[0])?;
    sleep(k, ns, a[1])
}

pub fn clock_nanosleep(k: &mut Kernel, a: &Args) -> SysResult {
    let now = clock(k, a[0])?;
    let request = read_timespec(k, a[2])?;
    let ns = if a[1] & libc::TIMER_ABSTIME as u64 != 0 {
        request.saturating_sub(now)
    } else {
        request
    };
    sleep(
        k,
        ns,
        if a[1] & libc::TIMER_ABSTIME as u64 != 0 {
            0
        } else {
            a[3]
        },
    )
}

fn ticks(ns: u64) -> u64 {
    ns / (1_000_000_000 / TICKS_PER_SECOND)
}

pub fn times(k: &mut Kernel, a: &Args) -> SysResult {
    if a[0] != 0 {
        let mut tms = [0u8; 32];
        tms[..8].copy_from_slice(&ticks(k.cpu_ns).to_le_bytes());
        k.mem.write(a[0], &tms)?;
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
        usage[..8].copy_from_slice(&(k.cpu_ns / 1_000_000_000).to_le_bytes());
        usage[8..16].copy_from_slice(&(k.cpu_ns % 1_000_000_000 / 1000).to_le_bytes());
    }
    k.mem.write(a[1], &usage)?;
    Ok(0)
}
