//! poll, ppoll, select and pselect6: readiness of modelled pipe ends (from the pipe) and of
//! host descriptors (from a host poll that does not wait). A call that finds nothing ready
//! blocks the task until a pipe changes or its timeout passes on the virtual clock.

use std::cell::RefCell;
use std::os::fd::{AsRawFd, RawFd};

use nix::errno::Errno;

use super::epoll::happened;
use crate::kernel::fd::{Channel, OpenFile};
use crate::kernel::pipe::Reset;
use crate::kernel::sigframe::UNBLOCKABLE;
use crate::kernel::signal::SignalView;
use crate::kernel::socket::Socket;
use crate::kernel::task::Wait;
use crate::kernel::{Args, Kernel, SysError, SysResult};

/// `struct pollfd`: fd, events, revents.
const POLLFD_SIZE: usize = 8;
const POLLIN: i16 = libc::POLLIN;
const POLLOUT: i16 = libc::POLLOUT;
const POLLERR: i16 = libc::POLLERR;
const POLLHUP: i16 = libc::POLLHUP;
const POLLNVAL: i16 = libc::POLLNVAL;
const POLLRDHUP: i16 = libc::POLLRDHUP;

/// The events ready on `file` now, of those asked for (POLLERR and POLLHUP always count).
/// What a scan of descriptors needs besides them, and what it learns: the calling task's
/// signals (by which a signalfd is ready), and the host descriptors it polled with their
/// events, which the scheduler waits on if the task blocks (`Kernel::wait_for_host`).
pub(super) struct Scan {
    pub signals: SignalView,
    pub host: RefCell<Vec<(RawFd, i16)>>,
}

pub(super) fn ready(file: &OpenFile, events: i16, scan: &Scan) -> i16 {
    let wanted = events | POLLERR | POLLHUP;
    if let Some(socket) = file.socket() {
        return socket_ready(socket) & wanted;
    }
    if let Channel::Epoll(interest) = &file.channel {
        // Readable when an entry would be reported (no epoll holds another: no recursion).
        let any = interest
            .borrow()
            .entries
            .iter()
            .any(|e| happened(e, scan) != 0);
        return if any { POLLIN & wanted } else { 0 };
    }
    if let Channel::Timer(end) = &file.channel {
        let due = end
            .timer
            .borrow()
            .announced
            .is_some_and(|at| end.timer.borrow().next.is_some_and(|next| next <= at));
        return if due { POLLIN & wanted } else { 0 };
    }
    if let Channel::Signal(end) = &file.channel {
        let pending = scan.signals.pending & end.mask.get() != 0;
        return if pending { POLLIN & wanted } else { 0 };
    }
    if let Channel::Event(end) = &file.channel {
        let value = end.counter.borrow().value;
        let readable = if value > 0 { POLLIN } else { 0 };
        let writable = if value < crate::kernel::eventfd::MAX {
            POLLOUT
        } else {
            0
        };
        return (readable | writable) & wanted;
    }
    let happened = match file.pipe() {
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
            let fd = file.host.as_raw_fd();
            scan.host.borrow_mut().push((fd, events));
            let mut one = libc::pollfd {
                fd,
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

/// A socket's events, as Linux's `unix_poll` and `tcp_poll` give them.
fn socket_ready(socket: &Socket) -> i16 {
    if let Some(mailbox) = &socket.mailbox {
        let readable = if mailbox.borrow().queue.is_empty() {
            0
        } else {
            POLLIN
        };
        let error = if socket.error.get().is_some() {
            POLLERR
        } else {
            0
        };
        let writable = if super::datagram::writable(socket) {
            POLLOUT
        } else {
            0
        };
        return readable | writable | error;
    }
    if let Some(listener) = socket.listener() {
        return if listener.borrow().queue.is_empty() {
            0
        } else {
            POLLIN
        };
    }
    let Some(end) = socket.connection.get() else {
        // In SYN_SENT nothing is ready; a listener that closed meanwhile refuses it.
        if socket.waiting_on().is_some() {
            return 0;
        }
        // A refused connect: readable, writable, in error, hung up (`tcp_poll` of a reset);
        // once its error is taken, still shut both ways until a connect reports it.
        if socket.error.get().is_some() {
            return POLLIN | POLLOUT | POLLERR | POLLHUP | POLLRDHUP;
        }
        if socket.is_inet() && socket.connecting.get() {
            return POLLIN | POLLOUT | POLLHUP | POLLRDHUP;
        }
        // Not connected: closed, so hung up, and as writable as an empty buffer.
        return POLLOUT | POLLHUP;
    };
    let (rx, tx) = (end.rx.borrow(), end.tx.borrow());
    // The receiving way is shut by this socket's SHUT_RD or the peer's SHUT_WR or close,
    // the sending way by its own SHUT_WR, or for AF_UNIX the peer's SHUT_RD or close (a TCP
    // peer's close is known only from the RST a write brings back); POLLOUT is room to
    // write, whatever is shut; an RST is an error until reported, and hangs up.
    let reset = rx.reset != Reset::None;
    let receive_shut = end.read_shut.get() || rx.writers == 0 || reset;
    let peer_gone = !socket.is_inet() && tx.readers == 0;
    let send_shut = end.write_shut.get() || peer_gone || reset;
    let readable = if rx.available() > 0 || receive_shut {
        POLLIN
    } else {
        0
    };
    let peer_shut = if receive_shut { POLLRDHUP } else { 0 };
    let hung_up = if receive_shut && send_shut {
        POLLHUP
    } else {
        0
    };
    let writable = if tx.writable() { POLLOUT } else { 0 };
    let pending = matches!(rx.reset, Reset::Pending(_)) || socket.error.get().is_some();
    let error = if pending { POLLERR } else { 0 };
    readable | writable | hung_up | peer_shut | error
}

/// Fills each pollfd's revents; returns how many are ready.
fn scan(k: &mut Kernel, fds: u64, count: u64, look: &Scan) -> Result<u64, Errno> {
    let mut raw = k.proc.mem.read_vec(fds, count as usize * POLLFD_SIZE)?;
    let mut ready_count = 0;
    for entry in raw.chunks_exact_mut(POLLFD_SIZE) {
        let fd = i32::from_le_bytes(entry[..4].try_into().unwrap());
        let events = i16::from_le_bytes(entry[4..6].try_into().unwrap());
        let revents = if fd < 0 {
            0
        } else {
            match k.proc.fds.file(fd as u64) {
                Ok(file) => ready(&file, events, look),
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
    // Linux caps nfds at RLIMIT_NOFILE.
    if count > k.proc.fds.limit as u64 {
        return Err(Errno::EINVAL.into());
    }
    wait_ready(k, deadline, |k, _, look| scan(k, fds, count, look))
}

/// Runs `scan` (which reports how many descriptors are ready, and is told whether the call
/// ends anyway: its timeout passed), and waits until one is or `deadline` passes on the
/// virtual clock (`None`: for ever).
pub(super) fn wait_ready(
    k: &mut Kernel,
    deadline: Option<u64>,
    scan: impl FnOnce(&mut Kernel, bool, &Scan) -> Result<u64, Errno>,
) -> SysResult {
    let timed_out = deadline.is_some_and(|at| at <= k.elapsed_ns);
    // A timerfd the clock has passed is ready now, not at the next switch.
    k.announce_timer_expiries();
    let look = Scan {
        signals: k.signal_view(),
        host: RefCell::default(),
    };
    let ready = scan(k, timed_out, &look);
    if ready.is_err() || ready.as_ref().is_ok_and(|&n| n > 0) || timed_out {
        k.task.poll_deadline = None;
        restore_call_mask(k);
        return Ok(ready?);
    }
    k.task.poll_deadline = deadline;
    Err(SysError::Block(Wait::Poll {
        until: deadline,
        host: look.host.into_inner(),
    }))
}

/// The absolute deadline of a poll: kept across the task's retries of the same call.
pub(super) fn deadline(k: &mut Kernel, timeout_ns: Option<u64>) -> Option<u64> {
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

/// A timeout at `addr` (none when 0): a timespec, or a timeval (microseconds) for select.
fn read_timeout(k: &mut Kernel, addr: u64, micros: bool) -> Result<Option<u64>, Errno> {
    if addr == 0 {
        return Ok(None);
    }
    let raw = k.proc.mem.read_vec(addr, 16)?;
    let secs = i64::from_le_bytes(raw[..8].try_into().unwrap());
    let fraction = i64::from_le_bytes(raw[8..].try_into().unwrap());
    let (limit, unit) = if micros {
        (1_000_000, 1000)
    } else {
        (1_000_000_000, 1)
    };
    if secs < 0 || !(0..limit).contains(&fraction) {
        return Err(Errno::EINVAL);
    }
    Ok(Some(
        (secs as u64).saturating_mul(1_000_000_000) + (fraction * unit) as u64,
    ))
}

/// Replaces the mask for the call (ppoll, pselect6) with the one at `addr`, if given; it
/// comes back when the call returns, or after the handler of the signal that ends it.
pub(super) fn set_call_mask(k: &mut Kernel, addr: u64, size: u64) -> Result<(), Errno> {
    if addr == 0 || k.task.signals.saved_mask.is_some() {
        return Ok(());
    }
    if size != 8 {
        return Err(Errno::EINVAL);
    }
    let mask = k.proc.mem.read_u64_control(addr)? & !UNBLOCKABLE;
    let old = std::mem::replace(&mut k.task.signals.mask, mask);
    k.task.signals.saved_mask = Some(old);
    Ok(())
}

/// Gives back the mask `set_call_mask` replaced, as the call returns.
pub(super) fn restore_call_mask(k: &mut Kernel) {
    if let Some(mask) = k.task.signals.saved_mask.take() {
        k.task.signals.mask = mask;
    }
}

/// ppoll(fds, nfds, timeout timespec or NULL, sigmask or NULL, sigsetsize).
pub fn ppoll(k: &mut Kernel, a: &Args) -> SysResult {
    let ns = read_timeout(k, a[2], false)?;
    set_call_mask(k, a[3], a[4])?;
    let until = deadline(k, ns);
    poll_until(k, a[0], a[1], until)
}

/// Linux's `FD_SETSIZE`.
const FD_SETSIZE: u64 = 1024;

/// The three fd_sets of select: which of descriptors `0..count` are ready for reading and
/// writing (none is ever exceptional: pipes and files have no out-of-band data). When some
/// are, or the call ends anyway (`ending`), the sets are rewritten to those; a call that
/// waits leaves them as asked, to look again. Returns how many bits are set.
fn scan_sets(
    k: &mut Kernel,
    count: u64,
    sets: [u64; 3],
    ending: bool,
    look: &Scan,
) -> Result<u64, Errno> {
    let bytes = count.div_ceil(64) as usize * 8;
    let mut read = |addr: u64| -> Result<Vec<u8>, Errno> {
        if addr == 0 {
            Ok(vec![0; bytes])
        } else {
            k.proc.mem.read_vec(addr, bytes)
        }
    };
    let asked = [read(sets[0])?, read(sets[1])?, read(sets[2])?];
    let mut found = [vec![0u8; bytes], vec![0u8; bytes], vec![0u8; bytes]];
    let mut total = 0;
    for fd in 0..count as usize {
        let (byte, bit) = (fd / 8, 1u8 << (fd % 8));
        let wanted = [0, 1, 2].map(|i| asked[i][byte] & bit != 0);
        if !wanted.contains(&true) {
            continue;
        }
        let file = k.proc.fds.file(fd as u64)?;
        let events = ready(&file, POLLIN | POLLOUT, look);
        let now = [
            events & (POLLIN | POLLHUP | POLLERR) != 0,
            events & (POLLOUT | POLLERR) != 0,
            false,
        ];
        for i in 0..3 {
            if wanted[i] && now[i] {
                found[i][byte] |= bit;
                total += 1;
            }
        }
    }
    if total > 0 || ending {
        for (addr, set) in sets.iter().zip(&found) {
            if *addr != 0 {
                k.proc.mem.write(*addr, set)?;
            }
        }
    }
    Ok(total)
}

/// select and pselect6: waits on the sets; on return the timeout holds the time left, as
/// Linux writes it back.
fn select_sets(k: &mut Kernel, a: &Args, timeout: Option<u64>, micros: bool) -> SysResult {
    let count = a[0] as i32;
    if count < 0 || count as u64 > FD_SETSIZE {
        return Err(Errno::EINVAL.into());
    }
    let until = deadline(k, timeout);
    let sets = [a[1], a[2], a[3]];
    let result = wait_ready(k, until, |k, ending, look| {
        scan_sets(k, count as u64, sets, ending, look)
    });
    if let (Ok(_), Some(until)) = (&result, until) {
        let left = until.saturating_sub(k.elapsed_ns);
        let fraction = if micros {
            left % 1_000_000_000 / 1000
        } else {
            left % 1_000_000_000
        };
        let mut bytes = (left / 1_000_000_000).to_le_bytes().to_vec();
        bytes.extend_from_slice(&fraction.to_le_bytes());
        k.proc.mem.write(a[4], &bytes)?;
    }
    result
}

/// select(nfds, readfds, writefds, exceptfds, timeout timeval or NULL).
pub fn select(k: &mut Kernel, a: &Args) -> SysResult {
    let timeout = read_timeout(k, a[4], true)?;
    select_sets(k, a, timeout, true)
}

/// pselect6(nfds, readfds, writefds, exceptfds, timeout timespec or NULL, {sigmask, size}).
pub fn pselect6(k: &mut Kernel, a: &Args) -> SysResult {
    let timeout = read_timeout(k, a[4], false)?;
    if a[5] != 0 {
        let mask = k.proc.mem.read_vec(a[5], 16)?;
        let addr = u64::from_le_bytes(mask[..8].try_into().unwrap());
        let size = u64::from_le_bytes(mask[8..].try_into().unwrap());
        set_call_mask(k, addr, size)?;
    }
    select_sets(k, a, timeout, false)
}
