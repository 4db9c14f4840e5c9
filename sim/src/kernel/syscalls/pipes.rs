//! Pipes: pipe and pipe2, and reads and writes of pipe ends on the modelled pipe
//! (`kernel::pipe`), which block the task, not the simulator.

use std::cell::{Cell, RefCell};
use std::os::fd::{FromRawFd, OwnedFd};
use std::rc::Rc;

use nix::errno::Errno;

use super::fs::{give, host, pipe_signal};
use crate::costs::work::DescriptorKind;
use crate::kernel::fd::{Channel, OpenFile, PipeEnd};
use crate::kernel::pipe::{Pipe, Ready};
use crate::kernel::task::Wait;
use crate::kernel::{Args, Kernel, SysError, SysResult};

pub fn pipe(k: &mut Kernel, a: &Args) -> SysResult {
    pipe2(k, &[a[0], 0, 0, 0, 0, 0])
}

/// A modelled pipe (see `kernel::pipe`), each end with a host pipe end of its own for what
/// needs no model (see `kernel::fd`).
pub fn pipe2(k: &mut Kernel, a: &Args) -> SysResult {
    let allowed = (libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_DIRECT) as u64;
    if a[1] & !allowed != 0 {
        return Err(Errno::EINVAL.into());
    }
    if a[1] & libc::O_DIRECT as u64 != 0 {
        return Err(SysError::Unsupported(
            "a packet-mode pipe (O_DIRECT)".into(),
        ));
    }
    let mut fds = [0i32; 2];
    // SAFETY: `fds` has room for the two descriptors.
    host(unsafe { libc::pipe2(fds.as_mut_ptr(), a[1] as i32 | libc::O_CLOEXEC) } as libc::c_long)?;
    // SAFETY: the host just made them; nobody else owns them.
    let [read_host, write_host] = fds.map(|fd| unsafe { OwnedFd::from_raw_fd(fd) });
    let pipe = Rc::new(RefCell::new(Pipe::new(k.alloc_pipe_id())));
    let end = |host, writer| {
        let channel = Channel::Pipe(PipeEnd {
            pipe: Rc::clone(&pipe),
            writer,
            non_blocking: Cell::new(a[1] & libc::O_NONBLOCK as u64 != 0),
        });
        Rc::new(OpenFile {
            host,
            channel,
            kind: DescriptorKind::Pipe,
        })
    };
    let (read_file, write_file) = (end(read_host, false), end(write_host, true));
    let cloexec = a[1] & libc::O_CLOEXEC as u64 != 0;
    install_pair(k, [read_file, write_file], cloexec, a[0])
}

/// Installs two new open files at the lowest free numbers and stores the two numbers, as
/// two ints, at guest address `at` (pipe2's and socketpair's array); if that address cannot
/// be written, closes them again.
pub(super) fn install_pair(
    k: &mut Kernel,
    files: [Rc<OpenFile>; 2],
    cloexec: bool,
    at: u64,
) -> SysResult {
    let [first, second] = files;
    let first = k.proc.fds.install_file(first, cloexec, 0)?;
    let second = match k.proc.fds.install_file(second, cloexec, 0) {
        Ok(fd) => fd,
        Err(errno) => {
            // EMFILE for the second: the first goes too, as Linux takes both or neither.
            k.proc.fds.close(first)?;
            return Err(errno.into());
        }
    };
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&(first as i32).to_le_bytes());
    out[4..].copy_from_slice(&(second as i32).to_le_bytes());
    if let Err(errno) = give(k, at, &out) {
        k.proc.fds.close(first)?;
        k.proc.fds.close(second)?;
        return Err(errno.into());
    }
    Ok(0)
}

/// Reads from or writes to the pipe end of `file`, through host iovecs into guest memory
/// (see `stream_io`).
pub fn pipe_io(
    k: &mut Kernel,
    file: &Rc<OpenFile>,
    iov: &[libc::iovec],
    into_guest: bool,
) -> SysResult {
    let end = file.pipe().expect("a pipe end");
    if end.writer == into_guest {
        return Err(Errno::EBADF.into());
    }
    stream_io(
        k,
        &end.pipe,
        iov,
        into_guest,
        file.non_blocking().is_some_and(Cell::get),
        true,
    )
}

/// Reads from or writes to `pipe` (a pipe, or one way of a socket), through host iovecs
/// into guest memory. A blocking write of more than the pipe holds goes on when readers
/// make room: the bytes written so far are the task's (`Task::io_progress`), as Linux's
/// `pipe_write` loops. A write with no reader left is EPIPE, and SIGPIPE if `signal`.
pub(super) fn stream_io(
    k: &mut Kernel,
    pipe: &Rc<RefCell<Pipe>>,
    iov: &[libc::iovec],
    into_guest: bool,
    non_blocking: bool,
    signal: bool,
) -> SysResult {
    let id = pipe.borrow().id;
    let total: usize = iov.iter().map(|v| v.iov_len).sum();
    // Memory that cannot be mapped cut the transfer short (`total` bytes are mapped).
    let (_, cut) = k.proc.mem.transfer_asked();
    if cut {
        cut_transfer(k, pipe, total, into_guest, non_blocking)?;
    }
    if into_guest {
        let mut copied = 0;
        let ready = pipe.borrow_mut().read(total, |piece| {
            scatter(iov, copied, piece);
            copied += piece.len();
        });
        let taken = std::mem::take(&mut pipe.borrow_mut().delivered);
        k.received_rights.extend(taken);
        return match ready {
            Ready::Moved(n) => {
                k.proc.mem.note_transfer(n as u64);
                k.wake_pipe_waiters(id);
                Ok(n as u64)
            }
            Ready::Wait if non_blocking => Err(Errno::EAGAIN.into()),
            Ready::Wait | Ready::Broken => Err(SysError::Block(Wait::PipeRead { pipe: id })),
        };
    }
    let done = std::mem::take(&mut k.task.io_progress) as usize;
    let bytes = gather(iov, done);
    let wrote = pipe.borrow_mut().write(&bytes, total);
    let written = match wrote {
        Ready::Moved(n) => {
            // A write the pipe took in pieces passes them with its first.
            if let Some(files) = k.sending_rights.take().filter(|_| n > 0 && done == 0) {
                pipe.borrow_mut().attach(files, n);
            }
            n
        }
        Ready::Broken if done == 0 && signal => return pipe_signal(k, Err(Errno::EPIPE)),
        Ready::Broken if done == 0 => return Err(Errno::EPIPE.into()),
        Ready::Broken => return Ok(done as u64),
        Ready::Wait if non_blocking && done == 0 => return Err(Errno::EAGAIN.into()),
        Ready::Wait => 0,
    };
    k.proc.mem.note_transfer(written as u64);
    if written > 0 {
        k.wake_pipe_waiters(id);
    }
    let done = done + written;
    if done == total || non_blocking {
        return Ok(done as u64);
    }
    k.task.io_progress = done as u64;
    Err(SysError::Block(Wait::PipeWrite { pipe: id }))
}

/// A transfer whose buffer runs into memory that cannot be mapped after `mapped` bytes.
/// Linux copies a pipe buffer or a packet whole or not at all, and a read returns what it
/// copied before the one that faulted, or EFAULT. The model keeps no packet boundaries
/// in a stream, so a read of more than the mapped part holds is EFAULT (a seqpacket
/// message taken all the same, as `__unix_dgram_recvmsg` frees it); a read the mapped
/// part holds goes on. What a write keeps before the fault depends on the kind of buffer
/// (whole pages of a pipe, a TCP segment's copies, an AF_UNIX packet), which the model
/// does not follow: it stops the run, unless it answers before it copies (EPIPE, EAGAIN).
fn cut_transfer(
    k: &mut Kernel,
    pipe: &Rc<RefCell<Pipe>>,
    mapped: usize,
    into_guest: bool,
    non_blocking: bool,
) -> Result<(), SysError> {
    if !into_guest {
        let (readers, full) = {
            let pipe = pipe.borrow();
            (
                pipe.readers,
                pipe.available() == crate::kernel::pipe::CAPACITY,
            )
        };
        if readers == 0 || (full && non_blocking) {
            return Ok(());
        }
        return Err(SysError::Unsupported(
            "a write to a modelled pipe or socket from a buffer that runs into memory that \
             cannot be mapped"
                .into(),
        ));
    }
    let next = pipe.borrow().next_message();
    if next.unwrap_or_else(|| pipe.borrow().available()) <= mapped {
        return Ok(());
    }
    if next.is_some() {
        let id = {
            let mut pipe = pipe.borrow_mut();
            pipe.read(0, |_| ());
            pipe.delivered.clear();
            pipe.truncated = None;
            pipe.id
        };
        k.wake_pipe_waiters(id);
    }
    Err(Errno::EFAULT.into())
}

/// sendfile into a pipe end (see `sendfile_into_way`).
pub fn sendfile_into(
    k: &mut Kernel,
    file: &Rc<OpenFile>,
    from: std::os::fd::RawFd,
    offset: u64,
    count: u64,
) -> SysResult {
    let end = file.pipe().expect("a pipe end");
    if !end.writer {
        return Err(Errno::EBADF.into());
    }
    let non_blocking = file.non_blocking().is_some_and(Cell::get);
    sendfile_into_way(k, &end.pipe, non_blocking, from, offset, count)
}

/// sendfile into `pipe` (a pipe, or a socket's way out): up to `count` bytes of host
/// descriptor `from` (at the offset stored at guest address `offset`, if not 0, else at its
/// position) go in, as many as it has room for; a full pipe blocks the task or answers
/// EAGAIN.
pub(super) fn sendfile_into_way(
    k: &mut Kernel,
    pipe: &Rc<RefCell<Pipe>>,
    non_blocking: bool,
    from: std::os::fd::RawFd,
    offset: u64,
    count: u64,
) -> SysResult {
    let (id, readers, room) = {
        let pipe = pipe.borrow();
        (
            pipe.id,
            pipe.readers,
            crate::kernel::pipe::CAPACITY - pipe.available(),
        )
    };
    if readers == 0 {
        return pipe_signal(k, Err(Errno::EPIPE));
    }
    if room == 0 {
        if non_blocking {
            return Err(Errno::EAGAIN.into());
        }
        return Err(SysError::Block(Wait::PipeWrite { pipe: id }));
    }
    let mut buf = vec![0u8; (count as usize).min(room)];
    let at = if offset == 0 {
        None
    } else {
        Some(k.proc.mem.read_u64(offset)?)
    };
    // SAFETY: `buf` has the length passed; `from` is an open host descriptor.
    let got = host(unsafe {
        match at {
            Some(at) => libc::pread(from, buf.as_mut_ptr().cast(), buf.len(), at as i64),
            None => libc::read(from, buf.as_mut_ptr().cast(), buf.len()),
        }
    } as libc::c_long)? as usize;
    if let Some(at) = at {
        k.proc.mem.write(offset, &(at + got as u64).to_le_bytes())?;
    }
    pipe.borrow_mut().write(&buf[..got], got);
    if got > 0 {
        k.wake_pipe_waiters(id);
    }
    Ok(got as u64)
}

/// Copies `bytes` into the iovecs, starting `offset` bytes in.
pub(super) fn scatter(iov: &[libc::iovec], mut offset: usize, mut bytes: &[u8]) {
    for v in iov {
        if bytes.is_empty() {
            break;
        }
        if offset >= v.iov_len {
            offset -= v.iov_len;
            continue;
        }
        let n = (v.iov_len - offset).min(bytes.len());
        // SAFETY: the iovecs point into guest physical memory that the kernel checked
        // for writing (`host_iovecs`), and nothing else holds a reference into it.
        let target = unsafe { std::slice::from_raw_parts_mut(v.iov_base.cast::<u8>(), v.iov_len) };
        target[offset..offset + n].copy_from_slice(&bytes[..n]);
        bytes = &bytes[n..];
        offset = 0;
    }
}

/// The bytes of the iovecs from `skip` bytes in.
pub(super) fn gather(iov: &[libc::iovec], skip: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    for v in iov {
        // SAFETY: the iovecs point into guest physical memory that the kernel checked for
        // reading (`host_iovecs`).
        bytes.extend_from_slice(unsafe {
            std::slice::from_raw_parts(v.iov_base.cast::<u8>(), v.iov_len)
        });
    }
    bytes.split_off(skip.min(bytes.len()))
}
