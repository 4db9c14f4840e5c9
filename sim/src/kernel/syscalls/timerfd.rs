//! timerfd_create, timerfd_settime and timerfd_gettime, and reads of a timerfd: the count
//! of expiries on the virtual clock since the last read (see `kernel::timerfd`).

use std::cell::{Cell, RefCell};
use std::os::fd::{FromRawFd, OwnedFd};
use std::rc::Rc;

use nix::errno::Errno;

use super::fs::host;
use super::pipes::scatter;
use super::time::{read_timespec, timespec, EPOCH_NS};
use crate::costs::work::DescriptorKind;
use crate::kernel::fd::{Channel, OpenFile, TimerEnd};
use crate::kernel::task::Wait;
use crate::kernel::timerfd::Timer;
use crate::kernel::{Args, Kernel, SysError, SysResult};

/// A read's buffer: the count, an unsigned 64-bit integer.
const COUNT_SIZE: usize = 8;
const TFD_TIMER_ABSTIME: u64 = 1;
/// Asks to be told when the wall clock is set; the virtual one never is.
const TFD_TIMER_CANCEL_ON_SET: u64 = 2;

/// timerfd_create(clockid, flags): CLOCK_REALTIME, CLOCK_MONOTONIC or CLOCK_BOOTTIME.
pub fn timerfd_create(k: &mut Kernel, a: &Args) -> SysResult {
    let (clock, flags) = (a[0] as i32, a[1] as i32);
    if flags & !(libc::TFD_NONBLOCK | libc::TFD_CLOEXEC) != 0 {
        return Err(Errno::EINVAL.into());
    }
    let realtime = match clock {
        libc::CLOCK_REALTIME => true,
        libc::CLOCK_MONOTONIC | libc::CLOCK_BOOTTIME => false,
        libc::CLOCK_REALTIME_ALARM | libc::CLOCK_BOOTTIME_ALARM => {
            return Err(SysError::Unsupported(
                "a timerfd on an alarm clock (it wakes a suspended machine)".into(),
            ))
        }
        _ => return Err(Errno::EINVAL.into()),
    };
    // SAFETY: plain syscall. The host timer is never armed: it answers fstat as Linux would.
    let raw = host(
        unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_CLOEXEC) } as libc::c_long,
    )?;
    // SAFETY: the host just made it; nobody else owns it.
    let host = unsafe { OwnedFd::from_raw_fd(raw as i32) };
    let timer = Rc::new(RefCell::new(Timer::new(k.alloc_pipe_id(), realtime)));
    k.timers.push(Rc::downgrade(&timer));
    let file = Rc::new(OpenFile {
        host,
        channel: Channel::Timer(TimerEnd {
            timer,
            non_blocking: Cell::new(flags & libc::TFD_NONBLOCK != 0),
        }),
        kind: DescriptorKind::Other,
    });
    Ok(k.proc
        .fds
        .install_file(file, flags & libc::TFD_CLOEXEC != 0, 0)?)
}

/// The timer of timerfd `fd`: EINVAL for another file.
fn timer_of(k: &Kernel, fd: u64) -> Result<Rc<RefCell<Timer>>, Errno> {
    match &k.proc.fds.file(fd)?.channel {
        Channel::Timer(end) => Ok(Rc::clone(&end.timer)),
        _ => Err(Errno::EINVAL),
    }
}

/// `struct itimerspec`: the interval, then the value.
fn itimerspec(value: u64, interval: u64) -> Vec<u8> {
    [timespec(interval), timespec(value)].concat()
}

/// timerfd_settime(fd, flags, new, old).
pub fn timerfd_settime(k: &mut Kernel, a: &Args) -> SysResult {
    let flags = a[1];
    if flags & !(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET) != 0 {
        return Err(Errno::EINVAL.into());
    }
    let interval = read_timespec(k, a[2])?;
    let value = read_timespec(k, a[2] + 16)?;
    let timer = timer_of(k, a[0])?;
    let now = k.elapsed_ns;
    let old = timer.borrow().remaining(now);
    let mut t = timer.borrow_mut();
    t.interval = interval;
    t.announced = None;
    t.next = match (value, flags & TFD_TIMER_ABSTIME != 0) {
        (0, _) => None,
        (at, true) if t.realtime => Some(at.saturating_sub(EPOCH_NS)),
        (at, true) => Some(at),
        (after, false) => Some(now.saturating_add(after)),
    };
    drop(t);
    if a[3] != 0 {
        k.proc.mem.write(a[3], &itimerspec(old.0, old.1))?;
    }
    k.timers_changed = true;
    // A waiter may find it expired already (an absolute time in the past).
    k.announce_timer_expiries();
    Ok(0)
}

/// timerfd_gettime(fd, cur): the time to the next expiry, and the interval.
pub fn timerfd_gettime(k: &mut Kernel, a: &Args) -> SysResult {
    let timer = timer_of(k, a[0])?;
    let (value, interval) = timer.borrow().remaining(k.elapsed_ns);
    k.proc.mem.write(a[1], &itimerspec(value, interval))?;
    Ok(0)
}

/// A read of a timerfd: the expiries since the last read, or a wait for the next; a write
/// is EINVAL.
pub fn timerfd_io(
    k: &mut Kernel,
    file: &Rc<OpenFile>,
    iov: &[libc::iovec],
    into_guest: bool,
) -> SysResult {
    let Channel::Timer(end) = &file.channel else {
        unreachable!("a timerfd's open file")
    };
    // The length asked is checked; the copy may then reach memory that cannot be mapped:
    // the read gives what it copied, the expiries taken all the same (`timerfd_read_iter`).
    let (asked, cut) = k.proc.mem.transfer_asked();
    if !into_guest || asked < COUNT_SIZE {
        return Err(Errno::EINVAL.into());
    }
    let mut timer = end.timer.borrow_mut();
    let count = timer.take(k.elapsed_ns);
    if count == 0 {
        if end.non_blocking.get() {
            return Err(Errno::EAGAIN.into());
        }
        return Err(SysError::Block(Wait::Timerfd { timer: timer.id }));
    }
    timer.changes.for_writers += 1;
    drop(timer);
    scatter(iov, 0, &count.to_le_bytes());
    let copied = if cut {
        iov.iter().map(|v| v.iov_len).sum::<usize>().min(COUNT_SIZE)
    } else {
        COUNT_SIZE
    };
    k.proc.mem.note_transfer(copied as u64);
    Ok(copied as u64)
}
