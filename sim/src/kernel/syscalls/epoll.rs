//! epoll_create, epoll_create1, epoll_ctl, epoll_wait and epoll_pwait, level- and
//! edge-triggered (see `kernel::epoll`) and with EPOLLONESHOT, over the same readiness as
//! poll (`poll::ready`): modelled pipes, sockets and eventfds, and host descriptors. A wait
//! that finds nothing blocks the task as poll does. EPOLLET on a host descriptor, whose
//! changes the simulator does not see, EPOLLEXCLUSIVE and an epoll inside an epoll stop the
//! run as unsupported.

use std::cell::RefCell;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::rc::Rc;

use nix::errno::Errno;

use super::fs::host;
use super::poll::{deadline, ready, restore_call_mask, set_call_mask, wait_ready, Scan};
use crate::costs::work::DescriptorKind;
use crate::kernel::epoll::{changes, Entry, Interest, EDGE_TRIGGERED};
use crate::kernel::fd::{Channel, OpenFile};
use crate::kernel::{Args, Kernel, SysError, SysResult};

/// `struct epoll_event`, packed on x86-64: the events, then the data.
const EVENT_SIZE: usize = 12;
/// Linux's cap on maxevents: INT_MAX / sizeof(struct epoll_event).
const MAX_EVENTS: u64 = (i32::MAX as u64) / EVENT_SIZE as u64;
/// What an entry can ask for beyond what poll reports.
const EPOLLONESHOT: u32 = 1 << 30;
const EPOLLEXCLUSIVE: u32 = 1 << 28;
const EPOLLWAKEUP: u32 = 1 << 29;
/// Reported whether asked for or not.
const ALWAYS: u32 = (libc::EPOLLERR | libc::EPOLLHUP) as u32;

pub fn epoll_create(k: &mut Kernel, a: &Args) -> SysResult {
    if a[0] as i32 <= 0 {
        return Err(Errno::EINVAL.into());
    }
    epoll_create1(k, &[0, 0, 0, 0, 0, 0])
}

pub fn epoll_create1(k: &mut Kernel, a: &Args) -> SysResult {
    let flags = a[0] as i32;
    if flags & !libc::EPOLL_CLOEXEC != 0 {
        return Err(Errno::EINVAL.into());
    }
    // SAFETY: plain syscall. The host epoll holds nothing: it answers fstat as Linux would
    // for the guest's.
    let raw = host(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) } as libc::c_long)?;
    // SAFETY: the host just made it; nobody else owns it.
    let host = unsafe { OwnedFd::from_raw_fd(raw as i32) };
    let file = Rc::new(OpenFile {
        host,
        channel: Channel::Epoll(Rc::new(RefCell::new(Interest::default()))),
        kind: DescriptorKind::Other,
    });
    Ok(k.proc
        .fds
        .install_file(file, flags & libc::EPOLL_CLOEXEC != 0, 0)?)
}

/// The interest list of epoll descriptor `fd`: EINVAL if it is another kind of file.
fn interest(k: &mut Kernel, fd: u64) -> Result<Rc<RefCell<Interest>>, Errno> {
    match &k.proc.fds.file(fd)?.channel {
        Channel::Epoll(interest) => Ok(Rc::clone(interest)),
        _ => Err(Errno::EINVAL),
    }
}

/// epoll_ctl(epfd, op, fd, event), its errors in Linux's order (`do_epoll_ctl`): the event
/// read (EFAULT), both descriptors (EBADF), a file that cannot be polled (EPERM), then an
/// epfd that is no epoll, or the same file (EINVAL).
pub fn epoll_ctl(k: &mut Kernel, a: &Args) -> SysResult {
    let (op, fd) = (a[1] as i32, a[2]);
    let (events, data) = if op == libc::EPOLL_CTL_DEL {
        (0, 0)
    } else {
        let raw = k.proc.mem.read_vec(a[3], EVENT_SIZE)?;
        let events = u32::from_le_bytes(raw[..4].try_into().expect("four bytes"));
        (
            events,
            u64::from_le_bytes(raw[4..].try_into().expect("eight bytes")),
        )
    };
    let epoll = k.proc.fds.file(a[0])?;
    let file = k.proc.fds.file(fd)?;
    if matches!(file.channel, Channel::Host) && !host_pollable(&epoll, &file) {
        // A regular file, a directory, /dev/null: nothing Linux can watch.
        return Err(Errno::EPERM.into());
    }
    let Channel::Epoll(interest) = &epoll.channel else {
        return Err(Errno::EINVAL.into());
    };
    if Rc::ptr_eq(&epoll, &file) {
        return Err(Errno::EINVAL.into());
    }
    if matches!(file.channel, Channel::Epoll(_)) {
        return Err(SysError::Unsupported("an epoll inside an epoll".into()));
    }
    if events & EPOLLEXCLUSIVE != 0 {
        return Err(SysError::Unsupported(
            "epoll_ctl with EPOLLEXCLUSIVE".into(),
        ));
    }
    let host_socket = matches!(file.channel, Channel::HostSocket(_));
    if events & EDGE_TRIGGERED != 0 && (!file.is_modelled() || host_socket) {
        return Err(SysError::Unsupported(
            "an edge-triggered epoll entry on a host descriptor (its changes are not seen)".into(),
        ));
    }
    let events = events & !EPOLLWAKEUP;
    let mut interest = interest.borrow_mut();
    interest.forget_closed();
    let exists = interest.find(fd, &file).is_some();
    match op {
        libc::EPOLL_CTL_ADD if exists => Err(Errno::EEXIST.into()),
        libc::EPOLL_CTL_ADD => {
            interest.entries.push(Entry {
                fd,
                file: Rc::downgrade(&file),
                events,
                data,
                spent: false,
                reported_at: None,
            });
            drop(interest);
            // A task already waiting may now have something to report.
            k.pipes_changed();
            Ok(0)
        }
        libc::EPOLL_CTL_MOD => {
            let entry = interest.find(fd, &file).ok_or(Errno::ENOENT)?;
            entry.events = events;
            entry.data = data;
            entry.spent = false;
            entry.reported_at = None;
            drop(interest);
            k.pipes_changed();
            Ok(0)
        }
        libc::EPOLL_CTL_DEL if !exists => Err(Errno::ENOENT.into()),
        libc::EPOLL_CTL_DEL => {
            interest.entries.retain(|e| !e.is(fd, &file));
            Ok(0)
        }
        _ => Err(Errno::EINVAL.into()),
    }
}

/// The events of `entry` that have happened: none while it is spent or its file gone, nor
/// for an edge-triggered entry whose file has not changed since it was reported.
pub(super) fn happened(entry: &Entry, scan: &Scan) -> u32 {
    match entry.file.upgrade() {
        Some(file) if !entry.spent => {
            let edge = entry.events & EDGE_TRIGGERED != 0;
            if edge && entry.reported_at == Some(changes(&file, entry.events, scan.signals)) {
                return 0;
            }
            let asked = (entry.events | ALWAYS) & 0xffff;
            ready(&file, asked as i16, scan) as u16 as u32
        }
        _ => 0,
    }
}

/// Whether the host's epoll would watch `file`'s host descriptor: added to the epoll's own
/// host instance and taken out again (EPERM is the answer for files that cannot be polled).
fn host_pollable(epoll: &OpenFile, file: &OpenFile) -> bool {
    let (ep, fd) = (epoll.host.as_raw_fd(), file.host.as_raw_fd());
    let mut event = libc::epoll_event { events: 0, u64: 0 };
    // SAFETY: owned descriptors and a local event.
    let added = unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut event) };
    if added != 0 {
        return std::io::Error::last_os_error().raw_os_error() != Some(libc::EPERM);
    }
    // SAFETY: as above.
    unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_DEL, fd, &mut event) };
    true
}

/// The ready entries, at most `max`, written as epoll_events at `out`; EPOLLONESHOT
/// entries reported are spent, and the others reported go to the back of the list, as
/// Linux puts them back at the end of its ready list, so that no entry starves the rest.
fn collect(
    k: &mut Kernel,
    interest: &Rc<RefCell<Interest>>,
    out: u64,
    max: usize,
    scan: &Scan,
) -> Result<u64, Errno> {
    let mut found = Vec::new();
    {
        let mut interest = interest.borrow_mut();
        interest.forget_closed();
        let mut reported = vec![false; interest.entries.len()];
        for (entry, reported) in interest.entries.iter_mut().zip(&mut reported) {
            if found.len() == max {
                break;
            }
            let happened = happened(entry, scan);
            if happened != 0 {
                found.push((happened, entry.data));
                entry.spent = entry.events & EPOLLONESHOT != 0;
                if entry.events & EDGE_TRIGGERED != 0 {
                    let file = entry.file.upgrade();
                    entry.reported_at = file.map(|file| changes(&file, entry.events, scan.signals));
                }
                *reported = true;
            }
        }
        let mut order = reported.into_iter();
        let (back, front): (Vec<Entry>, Vec<Entry>) = interest
            .entries
            .drain(..)
            .partition(|_| order.next().unwrap_or(false));
        interest.entries = front;
        interest.entries.extend(back);
    }
    let mut bytes = Vec::with_capacity(found.len() * EVENT_SIZE);
    for (events, data) in &found {
        bytes.extend_from_slice(&events.to_le_bytes());
        bytes.extend_from_slice(&data.to_le_bytes());
    }
    k.proc.mem.write(out, &bytes)?;
    Ok(found.len() as u64)
}

/// epoll_wait(epfd, events, maxevents, timeout in ms; negative: for ever).
pub fn epoll_wait(k: &mut Kernel, a: &Args) -> SysResult {
    epoll_pwait(k, &[a[0], a[1], a[2], a[3], 0, 0])
}

/// epoll_pwait(epfd, events, maxevents, timeout, sigmask or NULL, sigsetsize).
pub fn epoll_pwait(k: &mut Kernel, a: &Args) -> SysResult {
    set_call_mask(k, a[4], a[5])?;
    // The descriptor first (EBADF, EINVAL), then maxevents, as Linux 6.18 answers.
    let max = a[2] as i32;
    let checked = interest(k, a[0]).and_then(|interest| {
        if max <= 0 || max as u64 > MAX_EVENTS {
            Err(Errno::EINVAL)
        } else {
            Ok(interest)
        }
    });
    let interest = match checked {
        Ok(interest) => interest,
        Err(errno) => {
            restore_call_mask(k);
            return Err(errno.into());
        }
    };
    let timeout = a[3] as i32;
    let until = deadline(k, (timeout >= 0).then(|| timeout as u64 * 1_000_000));
    wait_ready(k, until, |k, _, scan| {
        collect(k, &interest, a[1], max as usize, scan)
    })
}
