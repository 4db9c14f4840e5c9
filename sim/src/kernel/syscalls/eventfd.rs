//! eventfd and eventfd2: a counter modelled in the kernel (`kernel::eventfd`), read and
//! written eight bytes at a time, which blocks the task, not the simulator.

use std::cell::{Cell, RefCell};
use std::os::fd::{FromRawFd, OwnedFd};
use std::rc::Rc;

use nix::errno::Errno;

use super::fs::host;
use super::pipes::{gather, scatter};
use crate::costs::work::DescriptorKind;
use crate::kernel::eventfd::Counter;
use crate::kernel::fd::{Channel, EventEnd, OpenFile};
use crate::kernel::task::Wait;
use crate::kernel::{Args, Kernel, SysError, SysResult};

/// The bytes a read or write of an eventfd moves.
const COUNT_SIZE: usize = 8;

pub fn eventfd(k: &mut Kernel, a: &Args) -> SysResult {
    eventfd2(k, &[a[0], 0, 0, 0, 0, 0])
}

/// eventfd2(initval, flags): EFD_CLOEXEC, EFD_NONBLOCK and EFD_SEMAPHORE.
pub fn eventfd2(k: &mut Kernel, a: &Args) -> SysResult {
    let flags = a[1] as i32;
    let allowed = libc::EFD_CLOEXEC | libc::EFD_NONBLOCK | libc::EFD_SEMAPHORE;
    if flags & !allowed != 0 {
        return Err(Errno::EINVAL.into());
    }
    // SAFETY: plain syscall. The host eventfd carries no count: it answers fstat and
    // F_GETFL as Linux would for the guest's.
    let raw = host(
        unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | (flags & libc::EFD_NONBLOCK)) }
            as libc::c_long,
    )?;
    // SAFETY: the host just made it; nobody else owns it.
    let host = unsafe { OwnedFd::from_raw_fd(raw as i32) };
    let counter = Counter {
        id: k.alloc_pipe_id(),
        // initval is an unsigned int.
        value: u64::from(a[0] as u32),
        semaphore: flags & libc::EFD_SEMAPHORE != 0,
        changes: Default::default(),
    };
    let file = Rc::new(OpenFile {
        host,
        channel: Channel::Event(EventEnd {
            counter: Rc::new(RefCell::new(counter)),
            non_blocking: Cell::new(flags & libc::EFD_NONBLOCK != 0),
        }),
        // A count moved inside the kernel: priced as a character device's few bytes.
        kind: DescriptorKind::CharDevice,
    });
    Ok(k.proc
        .fds
        .install_file(file, flags & libc::EFD_CLOEXEC != 0, 0)?)
}

/// A read (the count, eight bytes) or a write (eight bytes added) of the eventfd of `file`.
pub fn eventfd_io(
    k: &mut Kernel,
    file: &Rc<OpenFile>,
    iov: &[libc::iovec],
    into_guest: bool,
) -> SysResult {
    let Channel::Event(end) = &file.channel else {
        unreachable!("an eventfd's open file")
    };
    // Linux checks the length asked, then copies: the count's bytes may reach memory that
    // cannot be mapped (EFAULT, a read's count taken all the same).
    let (asked, cut) = k.proc.mem.transfer_asked();
    if asked < COUNT_SIZE {
        return Err(Errno::EINVAL.into());
    }
    let mapped = iov.iter().map(|v| v.iov_len).sum::<usize>().min(COUNT_SIZE);
    let faults = cut && mapped < COUNT_SIZE;
    let id = end.counter.borrow().id;
    let moved = if into_guest {
        let taken = end.counter.borrow_mut().take();
        taken.inspect(|count| scatter(iov, 0, &count.to_le_bytes()))
    } else {
        if faults {
            return Err(Errno::EFAULT.into());
        }
        let bytes = gather(iov, 0);
        let count = u64::from_le_bytes(bytes[..COUNT_SIZE].try_into().expect("eight bytes"));
        if count == u64::MAX {
            return Err(Errno::EINVAL.into());
        }
        end.counter.borrow_mut().add(count).then_some(count)
    };
    match moved {
        Some(_) => {
            k.proc.mem.note_transfer(mapped as u64);
            k.wake_pipe_waiters(id);
            if faults {
                return Err(Errno::EFAULT.into());
            }
            Ok(COUNT_SIZE as u64)
        }
        None if end.non_blocking.get() => Err(Errno::EAGAIN.into()),
        None => Err(SysError::Block(Wait::Eventfd { counter: id })),
    }
}
