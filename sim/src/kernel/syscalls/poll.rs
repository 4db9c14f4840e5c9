//! poll and ppoll: readiness of modelled pipe ends (from the pipe) and of host descriptors
//! (from a host poll that does not wait). A poll that finds nothing ready blocks the task
//! until a pipe changes or its timeout passes on the virtual clock.

use std::os::fd::AsRawFd;

use nix::errno::Errno;

use crate::kernel::fd::OpenFile;
use crate::kernel::sigframe::UNBLOCKABLE;
use crate::kernel::task::Wait;
use crate::kernel::{Args, Kernel, SysError, SysResult};

/// `struct pollfd`: fd, events, revents.
const POLLFD_SIZE: usize = 8;
const POLLIN: i16 = libc::POLLIN;
const POLLOUT: i16 = libc::POLLOUT;
const POLLERR: i16 = libc::POLLERR;
const POLLHUP: i16 = libc::POLLHUP;
const POLLNVAL: i16 = libc::POLLNVAL;
/// Linux's `RLIMIT_NOFILE` cap on nfds.
const MAX_POLL: u64 = 1024;

/// The events ready on `file` now, of those asked for (POLLERR and POLLHUP always count).
fn ready(file: &OpenFile, events: i16) -> i16 {
    let wanted = events | POLLERR | POLLHUP;
    let happened = match &file.pipe {
        Some(end) => {
            let pipe = end.pipe.borrow();
            if end.writer {
                let broken = if pipe.readers == 0 { POLLERR } else { 0 };
                broken | if pipe.writable() { POLLOUT } else { 0 }
            } else {
                let data = if pipe.available() > 0 { POLLIN } else { 0 };
                data | if pipe.writers == 0 { POLLHUP } else { 0 }
            }
        }
        None => {
            let mut one = libc::pollfd {
                fd: file.host.as_raw_fd(),
                events,
                revents: 0,
            };
            // SAFETY: one pollfd on an owned descriptor, no waiting.
            unsafe { libc::poll(&mut one, 1, 0) };
            one.revents
        }
    };
    happened & wanted
}

/// Fills each pollfd's revents; returns how many are ready.
fn scan(k: &mut Kernel, fds: u64, count: u64) -> Result<u64, Errno> {
    let mut raw = k.proc.mem.read_vec(fds, count as usize * POLLFD_SIZE)?;
    let mut ready_count = 0;
    for entry in raw.chunks_exact_mut(POLLFD_SIZE) {
        let fd = i32::from_le_bytes(entry[..4].try_into().unwrap());
        let events = i16::from_le_bytes(entry[4..6].try_into().unwrap());
        let revents = if fd < 0 {
            0
        } else {
            match k.proc.fds.file(fd as u64) {
                Ok(file) => ready(&file, events),
                Err(_) => POLLNVAL,
            }
        };
        entry[6..8].copy_from_slice(&revents.to_le_bytes());
        ready_count += u64::from(revents != 0);
    }
    k.proc.mem.write(fds, &raw)?;
    Ok(ready_count)
}

/// Polls, or waits until `deadline` on the virtual clock (`None`: for ever).
fn poll_until(k: &mut Kernel, fds: u64, count: u64, deadline: Option<u64>) -> SysResult {
    if count > MAX_POLL {
        return Err(Errno::EINVAL.into());
    }
    let ready = scan(k, fds, count)?;
    let timed_out = deadline.is_some_and(|at| at <= k.elapsed_ns);
    if ready > 0 || timed_out {
        k.task.poll_deadline = None;
        if let Some(mask) = k.task.signals.saved_mask.take() {
            k.task.signals.mask = mask;
        }
        return Ok(ready);
    }
    k.task.poll_deadline = deadline;
    Err(SysError::Block(Wait::Poll { until: deadline }))
}

/// The absolute deadline of a poll: kept across the task's retries of the same call.
fn deadline(k: &mut Kernel, timeout_ns: Option<u64>) -> Option<u64> {
    match k.task.poll_deadline {
        Some(at) => Some(at),
        None => timeout_ns.map(|ns| k.elapsed_ns.saturating_add(ns)),
    }
}

/// poll(fds, nfds, timeout in ms; negative: for ever).
pub fn poll(k: &mut Kernel, a: &Args) -> SysResult {
    let timeout = a[2] as i32;
    let ns = (timeout >= 0).then(|| timeout as u64 * 1_000_000);
    let until = deadline(k, ns);
    poll_until(k, a[0], a[1], until)
}

/// ppoll(fds, nfds, timeout timespec or NULL, sigmask or NULL, sigsetsize).
pub fn ppoll(k: &mut Kernel, a: &Args) -> SysResult {
    let ns = if a[2] == 0 {
        None
    } else {
        let raw = k.proc.mem.read_vec(a[2], 16)?;
        let secs = i64::from_le_bytes(raw[..8].try_into().unwrap());
        let nanos = i64::from_le_bytes(raw[8..].try_into().unwrap());
        if secs < 0 || !(0..1_000_000_000).contains(&nanos) {
            return Err(Errno::EINVAL.into());
        }
        Some((secs as u64).saturating_mul(1_000_000_000) + nanos as u64)
    };
    if a[3] != 0 && k.task.signals.saved_mask.is_none() {
        if a[4] != 8 {
            return Err(Errno::EINVAL.into());
        }
        let mask = k.proc.mem.read_u64(a[3])? & !UNBLOCKABLE;
        let old = std::mem::replace(&mut k.task.signals.mask, mask);
        k.task.signals.saved_mask = Some(old);
    }
    let until = deadline(k, ns);
    poll_until(k, a[0], a[1], until)
}
