//! signalfd and signalfd4: a descriptor whose reads take the reading task's pending signals
//! of its mask, as `struct signalfd_siginfo` records (128 bytes each), instead of their
//! delivery. A read with none pending blocks the task until one comes (or is EAGAIN);
//! poll and epoll see it readable while one is pending.

use std::cell::Cell;
use std::os::fd::{FromRawFd, OwnedFd};
use std::rc::Rc;

use nix::errno::Errno;

use super::fs::host;
use super::pipes::scatter;
use crate::costs::work::DescriptorKind;
use crate::kernel::fd::{Channel, OpenFile, SignalEnd};
use crate::kernel::sigframe::{SigInfo, SI_KERNEL, SI_SIGIO, SI_TIMER, SI_USER, UNBLOCKABLE};
use crate::kernel::task::Wait;
use crate::kernel::{Args, Kernel, SysError, SysResult};

/// `struct signalfd_siginfo`.
const RECORD_SIZE: usize = 128;

/// Where a siginfo's union members go in a signalfd_siginfo: (siginfo offset, record
/// offset, bytes), by the union member the signal and its code select (Linux's
/// `siginfo_layout`, copied as `signalfd_copyinfo` copies them).
const KILL: &[(usize, usize, usize)] = &[(16, 12, 4), (20, 16, 4)];
/// Queued and tkill'd signals: pid, uid, then the sigval as ssi_ptr and ssi_int.
const RT: &[(usize, usize, usize)] = &[(16, 12, 4), (20, 16, 4), (24, 48, 8), (24, 44, 4)];
/// POSIX timers: tid, overrun, sigval.
const TIMER: &[(usize, usize, usize)] = &[(16, 24, 4), (20, 32, 4), (24, 48, 8), (24, 44, 4)];
/// SIGPOLL: band (a long, whose low half ssi_band keeps), fd.
const POLL: &[(usize, usize, usize)] = &[(16, 28, 4), (24, 20, 4)];
/// Faults: the address.
const FAULT: &[(usize, usize, usize)] = &[(16, 72, 8)];
/// SIGCHLD: pid, uid, status, user and system times.
const CHILD: &[(usize, usize, usize)] = &[
    (16, 12, 4),
    (20, 16, 4),
    (24, 40, 4),
    (32, 56, 8),
    (40, 64, 8),
];

/// The signals whose positive codes are faults.
const FAULTS: &[i32] = &[
    libc::SIGILL,
    libc::SIGFPE,
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGTRAP,
];

/// The union fields of `info` that a signalfd reports.
fn layout(info: &SigInfo) -> &'static [(usize, usize, usize)] {
    let (signo, code) = (info.signo(), info.code());
    if code > SI_USER && code < SI_KERNEL {
        if FAULTS.contains(&signo) {
            FAULT
        } else if signo == libc::SIGCHLD {
            CHILD
        } else {
            POLL
        }
    } else if code == SI_TIMER {
        TIMER
    } else if code == SI_SIGIO {
        POLL
    } else if code < 0 {
        RT
    } else {
        KILL
    }
}

/// `info` as a read of a signalfd gives it.
fn record(info: &SigInfo) -> [u8; RECORD_SIZE] {
    let mut record = [0; RECORD_SIZE];
    // signo, errno and code head both structures.
    record[..12].copy_from_slice(&info.0[..12]);
    for &(from, to, bytes) in layout(info) {
        record[to..to + bytes].copy_from_slice(&info.0[from..from + bytes]);
    }
    record
}

pub fn signalfd(k: &mut Kernel, a: &Args) -> SysResult {
    signalfd4(k, &[a[0], a[1], a[2], 0, 0, 0])
}

/// signalfd4(fd, mask, sizemask, flags): a new signalfd when fd is -1, otherwise a new mask
/// for signalfd `fd`. SIGKILL and SIGSTOP are dropped from the mask, as Linux does.
pub fn signalfd4(k: &mut Kernel, a: &Args) -> SysResult {
    let flags = a[3] as i32;
    let allowed = libc::SFD_CLOEXEC | libc::SFD_NONBLOCK;
    if flags & !allowed != 0 || a[2] != 8 {
        return Err(Errno::EINVAL.into());
    }
    let raw = k.proc.mem.read_vec(a[1], 8)?;
    let mask = u64::from_le_bytes(raw.try_into().expect("eight bytes")) & !UNBLOCKABLE;
    if a[0] as i32 != -1 {
        return match &k.proc.fds.file(a[0])?.channel {
            Channel::Signal(end) => {
                end.mask.set(mask);
                // A new mask may make a pending signal readable.
                k.wake_signal_readers(k.proc.pid);
                Ok(a[0] as i32 as u64)
            }
            _ => Err(Errno::EINVAL.into()),
        };
    }
    // SAFETY: plain syscall on an empty mask. The host signalfd takes no signal: it answers
    // fstat and F_GETFL as Linux would for the guest's.
    let raw = host(unsafe {
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::signalfd(-1, &empty, libc::SFD_CLOEXEC | (flags & libc::SFD_NONBLOCK))
    } as libc::c_long)?;
    // SAFETY: the host just made it; nobody else owns it.
    let host = unsafe { OwnedFd::from_raw_fd(raw as i32) };
    let file = Rc::new(OpenFile {
        host,
        channel: Channel::Signal(SignalEnd {
            mask: Cell::new(mask),
            non_blocking: Cell::new(flags & libc::SFD_NONBLOCK != 0),
        }),
        // Records built inside the kernel: priced as a character device's few bytes.
        kind: DescriptorKind::CharDevice,
    });
    Ok(k.proc
        .fds
        .install_file(file, flags & libc::SFD_CLOEXEC != 0, 0)?)
}

/// A read of signalfd `file`: as many pending signals of its mask as whole records fit;
/// a write is EINVAL.
pub fn signalfd_io(
    k: &mut Kernel,
    file: &Rc<OpenFile>,
    iov: &[libc::iovec],
    into_guest: bool,
) -> SysResult {
    let Channel::Signal(end) = &file.channel else {
        unreachable!("a signalfd's open file")
    };
    // The records asked for are counted by the length asked; a record whose copy reaches
    // memory that cannot be mapped is taken and lost, and ends the read (EFAULT if first).
    let room = k.proc.mem.transfer_asked().0 / RECORD_SIZE;
    if !into_guest || room == 0 {
        return Err(Errno::EINVAL.into());
    }
    let mapped: usize = iov.iter().map(|v| v.iov_len).sum();
    let mut bytes = Vec::new();
    let mut faulted = false;
    while bytes.len() < room * RECORD_SIZE {
        let Some(info) = k.take_signal_of(end.mask.get()) else {
            break;
        };
        if bytes.len() + RECORD_SIZE > mapped {
            faulted = true;
            break;
        }
        bytes.extend_from_slice(&record(&info));
    }
    if bytes.is_empty() && !faulted {
        return if end.non_blocking.get() {
            Err(Errno::EAGAIN.into())
        } else {
            Err(SysError::Block(Wait::Signalfd))
        };
    }
    scatter(iov, 0, &bytes);
    k.proc.mem.note_transfer(bytes.len() as u64);
    if bytes.is_empty() {
        return Err(Errno::EFAULT.into());
    }
    Ok(bytes.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_carry_the_fields_of_the_signals_union_member() {
        let kill = record(&SigInfo::user(libc::SIGUSR1 as u32, 1234, 1000));
        assert_eq!(&kill[..4], &(libc::SIGUSR1 as u32).to_le_bytes());
        assert_eq!(
            &kill[12..20],
            &[1234u32.to_le_bytes(), 1000u32.to_le_bytes()].concat()
        );
        let child = record(&SigInfo::child_exit(1001, 0, 3 << 8, 7, 9));
        assert_eq!(&child[40..44], &3i32.to_le_bytes());
        assert_eq!(
            &child[56..72],
            &[7u64.to_le_bytes(), 9u64.to_le_bytes()].concat()
        );
        let fault = record(&SigInfo::fault(libc::SIGSEGV as u32, 1, 0xdead));
        assert_eq!(&fault[72..80], &0xdeadu64.to_le_bytes());
        assert_eq!(&fault[12..16], &[0; 4]);
    }
}
