//! `--net host`: internet sockets (TCP and UDP, IPv4 and IPv6) are the host's, so that a
//! simulated client reaches a real server and a simulated server takes real connections.
//! AF_UNIX stays modelled.
//!
//! The host descriptor never blocks (it is made O_NONBLOCK, fcntl keeps it so, and every
//! send and receive passes MSG_DONTWAIT): a call that would block blocks the simulated task
//! (`Wait::Host`), and when no task can run the scheduler waits on the host descriptors
//! its tasks wait for (`Kernel::wait_for_host`). What comes over the network is the world's,
//! so such a run is not deterministic; `--check` refuses it.

use std::cell::Cell;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::rc::Rc;

use nix::errno::Errno;

use super::fs::{give, guest_iovecs, host, pipe_signal};
use super::socket::room_at;
use super::socket_io::{buffer_length, message_header};
use crate::costs::work::DescriptorKind;
use crate::kernel::fd::{Channel, HostSocket, OpenFile};
use crate::kernel::task::Wait;
use crate::kernel::{Args, Kernel, SysError, SysResult};

/// `sizeof(struct sockaddr_storage)`.
const NAME_ROOM: usize = 128;
/// The most option or control bytes passed through in one call.
const BUFFER_ROOM: usize = 64 * 1024;

/// Whether `--net host` makes a socket of `domain` a host one.
pub fn takes(k: &Kernel, domain: u64) -> bool {
    k.net_host && matches!(domain as i32, libc::AF_INET | libc::AF_INET6)
}

/// socket(domain, type, protocol) on the host.
pub fn socket(k: &mut Kernel, a: &Args) -> SysResult {
    let kind = a[1] as i32;
    // SAFETY: plain syscall; the descriptor it returns is owned at once.
    let raw = host(unsafe {
        libc::socket(
            a[0] as i32,
            kind | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            a[2] as i32,
        )
    } as libc::c_long)?;
    // SAFETY: the host just made it; nobody else owns it.
    let socket = unsafe { OwnedFd::from_raw_fd(raw as RawFd) };
    let stream = kind & 0xf == libc::SOCK_STREAM;
    install(k, socket, kind, stream)
}

/// Gives the guest host socket `host`, with SOCK_NONBLOCK and SOCK_CLOEXEC from `flags`.
fn install(k: &mut Kernel, host: OwnedFd, flags: i32, stream: bool) -> SysResult {
    let file = Rc::new(OpenFile {
        host,
        channel: Channel::HostSocket(HostSocket {
            non_blocking: Cell::new(flags & libc::SOCK_NONBLOCK != 0),
            stream,
            connecting: Cell::new(false),
        }),
        kind: DescriptorKind::InetSocket,
    });
    Ok(k.proc
        .fds
        .install_file(file, flags & libc::SOCK_CLOEXEC != 0, 0)?)
}

/// The host socket `fd` names, if it is one.
pub fn of(k: &Kernel, fd: u64) -> Option<Rc<OpenFile>> {
    k.proc
        .fds
        .file(fd)
        .ok()
        .filter(|file| matches!(file.channel, Channel::HostSocket(_)))
}

fn state(file: &OpenFile) -> &HostSocket {
    match &file.channel {
        Channel::HostSocket(socket) => socket,
        _ => unreachable!("a host socket's open file"),
    }
}

/// What a host EAGAIN is for the guest: a wait for `events` when its socket blocks.
pub fn would_block(file: &OpenFile, errno: Errno, dont_wait: bool, events: i16) -> SysError {
    if errno == Errno::EAGAIN && !dont_wait && !state(file).non_blocking.get() {
        return SysError::Block(Wait::Host {
            fd: file.host.as_raw_fd(),
            events,
        });
    }
    errno.into()
}

/// The guest's address at `addr`, `len` bytes (EINVAL past a sockaddr_storage).
fn name_in(k: &mut Kernel, addr: u64, len: u64) -> Result<Vec<u8>, Errno> {
    if len as i32 as u64 != len || len as usize > NAME_ROOM {
        return Err(Errno::EINVAL);
    }
    if len == 0 {
        return Ok(Vec::new());
    }
    k.proc.mem.read_vec(addr, len as usize)
}

/// Gives a host name to the guest at `addr`, at most the length at `len`, and stores its
/// whole length there (nothing when `addr` is NULL).
fn name_out(k: &mut Kernel, addr: u64, len: u64, name: &[u8]) -> Result<(), Errno> {
    if addr == 0 {
        return Ok(());
    }
    let room = room_at(k, len)?;
    let n = name.len().min(room);
    if n > 0 {
        give(k, addr, &name[..n])?;
    }
    give(k, len, &(name.len() as u32).to_le_bytes())
}

pub fn bind(k: &mut Kernel, file: &OpenFile, a: &Args) -> SysResult {
    let name = name_in(k, a[1], a[2])?;
    // SAFETY: `name` holds the length passed.
    Ok(host(unsafe {
        libc::bind(
            file.host.as_raw_fd(),
            name.as_ptr().cast(),
            name.len() as u32,
        )
    } as libc::c_long)?)
}

pub fn listen(_k: &mut Kernel, file: &OpenFile, a: &Args) -> SysResult {
    // SAFETY: plain syscall on an owned descriptor.
    Ok(host(
        unsafe { libc::listen(file.host.as_raw_fd(), a[1] as i32) } as libc::c_long,
    )?)
}

/// The pending error of host socket `fd` (SO_ERROR), taken.
fn pending_error(fd: RawFd) -> Option<Errno> {
    let mut error: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: an int and its length.
    unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&raw mut error).cast(),
            &mut len,
        )
    };
    (error != 0).then(|| Errno::from_raw(error))
}

/// connect: a blocking guest's connect waits for the host's answer (writable, or an error).
pub fn connect(k: &mut Kernel, file: &OpenFile, a: &Args) -> SysResult {
    let (fd, socket) = (file.host.as_raw_fd(), state(file));
    let writable = SysError::Block(Wait::Host {
        fd,
        events: libc::POLLOUT,
    });
    if socket.connecting.get() {
        if let Some(errno) = pending_error(fd) {
            socket.connecting.set(false);
            return Err(errno.into());
        }
        let mut one = libc::pollfd {
            fd,
            events: libc::POLLOUT,
            revents: 0,
        };
        // SAFETY: one pollfd, no waiting.
        if unsafe { libc::poll(&mut one, 1, 0) } == 0 {
            return Err(writable);
        }
        socket.connecting.set(false);
        return Ok(0);
    }
    let name = name_in(k, a[1], a[2])?;
    // SAFETY: `name` holds the length passed.
    let ret = unsafe { libc::connect(fd, name.as_ptr().cast(), name.len() as u32) };
    match host(ret as libc::c_long) {
        Err(Errno::EINPROGRESS) if !socket.non_blocking.get() => {
            socket.connecting.set(true);
            Err(writable)
        }
        result => Ok(result?),
    }
}

pub fn accept4(k: &mut Kernel, file: &OpenFile, a: &Args) -> SysResult {
    let flags = a[3] as i32;
    if flags & !(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) != 0 {
        return Err(Errno::EINVAL.into());
    }
    let mut name = [0u8; NAME_ROOM];
    let mut len = NAME_ROOM as libc::socklen_t;
    // SAFETY: a name buffer and its length.
    let ret = unsafe {
        libc::accept4(
            file.host.as_raw_fd(),
            name.as_mut_ptr().cast(),
            &mut len,
            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        )
    };
    let raw = host(ret as libc::c_long).map_err(|e| would_block(file, e, false, libc::POLLIN))?;
    // SAFETY: the host just made it: owned until installed.
    let accepted = unsafe { OwnedFd::from_raw_fd(raw as RawFd) };
    name_out(k, a[1], a[2], &name[..len as usize])?;
    install(k, accepted, flags, true)
}

/// getsockname and getpeername (`peer`).
pub fn name(k: &mut Kernel, file: &OpenFile, a: &Args, peer: bool) -> SysResult {
    let mut name = [0u8; NAME_ROOM];
    let mut len = NAME_ROOM as libc::socklen_t;
    let fd = file.host.as_raw_fd();
    // SAFETY: a name buffer and its length.
    let ret = unsafe {
        if peer {
            libc::getpeername(fd, name.as_mut_ptr().cast(), &mut len)
        } else {
            libc::getsockname(fd, name.as_mut_ptr().cast(), &mut len)
        }
    };
    host(ret as libc::c_long)?;
    name_out(k, a[1], a[2], &name[..len as usize])?;
    Ok(0)
}

pub fn shutdown(_k: &mut Kernel, file: &OpenFile, a: &Args) -> SysResult {
    // SAFETY: plain syscall on an owned descriptor.
    Ok(host(
        unsafe { libc::shutdown(file.host.as_raw_fd(), a[1] as i32) } as libc::c_long,
    )?)
}

pub fn setsockopt(k: &mut Kernel, file: &OpenFile, a: &Args) -> SysResult {
    let len = a[4] as i32;
    let value = if len > 0 {
        k.proc.mem.read_vec(a[3], (len as usize).min(BUFFER_ROOM))?
    } else {
        Vec::new()
    };
    // A negative length goes as it is: the host refuses it (EINVAL).
    let passed = if len < 0 {
        len as libc::socklen_t
    } else {
        value.len() as libc::socklen_t
    };
    // SAFETY: `value` holds `passed` bytes, or the host refuses the length first.
    let ret = unsafe {
        libc::setsockopt(
            file.host.as_raw_fd(),
            a[1] as i32,
            a[2] as i32,
            value.as_ptr().cast(),
            passed,
        )
    };
    Ok(host(ret as libc::c_long)?)
}

pub fn getsockopt(k: &mut Kernel, file: &OpenFile, a: &Args) -> SysResult {
    let room = room_at(k, a[4])?.min(BUFFER_ROOM);
    let mut value = vec![0u8; room];
    let mut len = room as libc::socklen_t;
    // SAFETY: `value` and its length.
    let ret = unsafe {
        libc::getsockopt(
            file.host.as_raw_fd(),
            a[1] as i32,
            a[2] as i32,
            value.as_mut_ptr().cast(),
            &mut len,
        )
    };
    host(ret as libc::c_long)?;
    give(k, a[3], &value[..(len as usize).min(room)])?;
    give(k, a[4], &len.to_le_bytes())?;
    Ok(0)
}

/// What a send or receive carries besides the bytes: a name, control bytes, flags.
struct Message {
    name: Vec<u8>,
    control: Vec<u8>,
    flags: i32,
}

/// The bytes of `iov` after the first `skip`.
fn skipped(iov: &[libc::iovec], mut skip: usize) -> Vec<libc::iovec> {
    let mut rest = Vec::with_capacity(iov.len());
    for v in iov {
        if skip >= v.iov_len {
            skip -= v.iov_len;
            continue;
        }
        rest.push(libc::iovec {
            // SAFETY: within the iovec's own buffer.
            iov_base: unsafe { v.iov_base.cast::<u8>().add(skip) }.cast(),
            iov_len: v.iov_len - skip,
        });
        skip = 0;
    }
    rest
}

/// A host sendmsg or recvmsg that never waits, through `iov` (host pointers into guest
/// memory). A blocking stream send goes on until all is sent, as Linux's does: what is
/// sent so far is the task's (`Task::io_progress`). EPIPE raises SIGPIPE unless
/// MSG_NOSIGNAL.
fn transfer(
    k: &mut Kernel,
    file: &OpenFile,
    iov: &[libc::iovec],
    message: &mut Message,
    into_guest: bool,
) -> SysResult {
    // A datagram goes whole or not at all: memory that cannot be mapped in it is EFAULT.
    if !into_guest && k.proc.mem.transfer_asked().1 && !state(file).stream {
        return Err(Errno::EFAULT.into());
    }
    let dont_wait = message.flags & libc::MSG_DONTWAIT != 0;
    let done = if into_guest {
        0
    } else {
        std::mem::take(&mut k.task.io_progress) as usize
    };
    let mut rest = skipped(iov, done);
    let mut name = std::mem::take(&mut message.name);
    name.resize(if into_guest { NAME_ROOM } else { name.len() }, 0);
    // SAFETY: msghdr is plain data; zeroed is its empty value.
    let mut header: libc::msghdr = unsafe { std::mem::zeroed() };
    header.msg_name = if name.is_empty() {
        std::ptr::null_mut()
    } else {
        name.as_mut_ptr().cast()
    };
    header.msg_namelen = name.len() as u32;
    header.msg_iov = rest.as_mut_ptr();
    header.msg_iovlen = rest.len();
    if !message.control.is_empty() {
        header.msg_control = message.control.as_mut_ptr().cast();
        header.msg_controllen = message.control.len();
    }
    let fd = file.host.as_raw_fd();
    let flags = message.flags | libc::MSG_DONTWAIT;
    // SAFETY: the header's buffers live until the call returns.
    let ret = unsafe {
        if into_guest {
            libc::recvmsg(fd, &mut header, flags)
        } else {
            libc::sendmsg(fd, &header, flags | libc::MSG_NOSIGNAL)
        }
    };
    let events = if into_guest {
        libc::POLLIN
    } else {
        libc::POLLOUT
    };
    let moved = match host(ret as libc::c_long) {
        Ok(n) => n as usize,
        Err(_) if done > 0 && !into_guest => {
            // What went before stands; the error comes with the next call.
            return Ok(done as u64);
        }
        Err(Errno::EPIPE) if message.flags & libc::MSG_NOSIGNAL == 0 && !into_guest => {
            return pipe_signal(k, Err(Errno::EPIPE));
        }
        Err(errno) => return Err(would_block(file, errno, dont_wait, events)),
    };
    k.proc.mem.note_transfer(moved as u64);
    if into_guest {
        name.truncate(header.msg_namelen as usize);
        message.name = name;
        message.control.truncate(header.msg_controllen);
        message.flags = header.msg_flags;
        return Ok(moved as u64);
    }
    let total: usize = iov.iter().map(|v| v.iov_len).sum();
    let sent = done + moved;
    let blocking = !dont_wait && !state(file).non_blocking.get();
    if sent < total && blocking && state(file).stream {
        k.task.io_progress = sent as u64;
        return Err(SysError::Block(Wait::Host { fd, events }));
    }
    Ok(sent as u64)
}

/// read, write and their vectored forms.
pub fn io(k: &mut Kernel, file: &OpenFile, iov: &[libc::iovec], into_guest: bool) -> SysResult {
    let mut message = Message {
        name: Vec::new(),
        control: Vec::new(),
        flags: 0,
    };
    transfer(k, file, iov, &mut message, into_guest)
}

/// sendto(fd, buf, len, flags, dest, dest_len).
pub fn sendto(k: &mut Kernel, file: &OpenFile, a: &Args) -> SysResult {
    k.proc.mem.begin_transfer();
    let iov = k.proc.mem.host_iovecs(a[1], buffer_length(a[2]), false)?;
    let name = if a[4] == 0 {
        Vec::new()
    } else {
        name_in(k, a[4], a[5])?
    };
    let mut message = Message {
        name,
        control: Vec::new(),
        flags: a[3] as i32,
    };
    transfer(k, file, &iov, &mut message, false)
}

/// recvfrom(fd, buf, len, flags, src, src_len).
pub fn recvfrom(k: &mut Kernel, file: &OpenFile, a: &Args) -> SysResult {
    k.proc.mem.begin_transfer();
    let iov = k.proc.mem.host_iovecs(a[1], buffer_length(a[2]), true)?;
    let mut message = Message {
        name: Vec::new(),
        control: Vec::new(),
        flags: a[3] as i32,
    };
    let got = transfer(k, file, &iov, &mut message, true)?;
    if a[5] != 0 {
        name_out(k, a[4], a[5], &message.name)?;
    }
    Ok(got)
}

/// sendmsg(fd, msg, flags): the name and control bytes passed to the host as they are.
pub fn sendmsg(k: &mut Kernel, file: &OpenFile, a: &Args) -> SysResult {
    let header = message_header(k, a[1])?;
    let iov = guest_iovecs(k, header.iov, header.iov_len, false)?;
    let name = if header.name == 0 {
        Vec::new()
    } else {
        name_in(k, header.name, header.name_len)?
    };
    let control = if header.control == 0 {
        Vec::new()
    } else {
        let len = (header.control_len as usize).min(BUFFER_ROOM);
        k.proc.mem.read_vec(header.control, len)?
    };
    let mut message = Message {
        name,
        control,
        flags: a[2] as i32,
    };
    transfer(k, file, &iov, &mut message, false)
}

/// recvmsg(fd, msg, flags): the sender's name, control bytes and flags as the host gives
/// them.
pub fn recvmsg(k: &mut Kernel, file: &OpenFile, a: &Args) -> SysResult {
    let header = message_header(k, a[1])?;
    let iov = guest_iovecs(k, header.iov, header.iov_len, true)?;
    let room = if header.control == 0 {
        0
    } else {
        (header.control_len as usize).min(BUFFER_ROOM)
    };
    let mut message = Message {
        name: Vec::new(),
        control: vec![0; room],
        flags: a[2] as i32,
    };
    let got = transfer(k, file, &iov, &mut message, true)?;
    if header.name != 0 {
        name_out(k, header.name, a[1] + 8, &message.name)?;
    }
    if !message.control.is_empty() {
        give(k, header.control, &message.control)?;
    }
    give(k, a[1] + 40, &(message.control.len() as u64).to_le_bytes())?;
    give(k, a[1] + 48, &message.flags.to_le_bytes())?;
    Ok(got)
}

/// fcntl's F_GETFL and F_SETFL: the guest's O_NONBLOCK is the socket's own; the host
/// descriptor stays non-blocking.
pub fn file_flags(file: &OpenFile, command: i32, flags: u64) -> SysResult {
    let socket = state(file);
    let fd = file.host.as_raw_fd();
    if command == libc::F_SETFL {
        socket
            .non_blocking
            .set(flags & libc::O_NONBLOCK as u64 != 0);
        let kept = flags as libc::c_int | libc::O_NONBLOCK;
        // SAFETY: integer-argument fcntl on an owned descriptor.
        return Ok(host(
            unsafe { libc::fcntl(fd, libc::F_SETFL, kept) } as libc::c_long
        )?);
    }
    // SAFETY: as above.
    let host_flags = host(unsafe { libc::fcntl(fd, libc::F_GETFL) } as libc::c_long)? as i32;
    let own = if socket.non_blocking.get() {
        libc::O_NONBLOCK
    } else {
        0
    };
    Ok(((host_flags & !libc::O_NONBLOCK) | own) as u64)
}
