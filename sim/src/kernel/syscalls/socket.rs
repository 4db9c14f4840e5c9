//! Sockets, as far as they are modelled.
//!
//! - socketpair(AF_UNIX, SOCK_STREAM): a connected pair, a modelled pipe each way (see
//!   `kernel::fd::SocketEnd`), with read, write, send, recv, shutdown and poll, which block
//!   the task, not the simulator.
//! - A name lookup when no name-service daemon runs: glibc looks a user or group up through
//!   nscd first (an AF_UNIX socket, a connect to nscd's path, which fails with ENOENT where
//!   nscd does not run, a close), then in the files. That socket is the host's.
//!
//! Everything else (other families and types, a connect to a path where something exists,
//! bind, listen, accept) stops the run as unsupported until the network is modelled.

use std::cell::{Cell, RefCell};
use std::ffi::CString;
use std::os::fd::{FromRawFd, OwnedFd};
use std::rc::Rc;

use nix::errno::Errno;

use super::fs::{give, host, pipe_signal};
use super::pipes::{install_pair, stream_io};
use crate::costs::work::DescriptorKind;
use crate::kernel::fd::{Channel, OpenFile, SocketEnd};
use crate::kernel::pipe::Pipe;
use crate::kernel::{Args, Kernel, SysError, SysResult};

/// One past the highest address family Linux knows (`AF_MAX` in linux/socket.h, 6.x).
const AF_MAX: i32 = 46;

/// `struct sockaddr_un`: the family, then at most 108 bytes of path.
const SOCKADDR_UN_SIZE: u64 = 110;

pub fn socket(k: &mut Kernel, a: &Args) -> SysResult {
    let (domain, kind, protocol) = (a[0] as i32, a[1] as i32, a[2] as i32);
    if domain != libc::AF_UNIX {
        return Err(SysError::Unsupported(format!(
            "socket of address family {domain}"
        )));
    }
    // SAFETY: plain syscall; the descriptor it returns is installed at once.
    let raw = host(unsafe {
        libc::syscall(
            libc::SYS_socket,
            domain,
            kind | libc::SOCK_CLOEXEC,
            protocol,
        )
    })?;
    Ok(k.proc
        .fds
        .install_raw(raw as i32, kind & libc::SOCK_CLOEXEC != 0, None)?)
}

/// connect(fd, addr, len) of an AF_UNIX socket to a path: the error Linux gives when
/// nothing is there (ENOENT, ENOTDIR, EACCES…).
pub fn connect(k: &mut Kernel, a: &Args) -> SysResult {
    k.proc.fds.host(a[0])?;
    let len = a[2];
    if !(2..=SOCKADDR_UN_SIZE).contains(&len) {
        return Err(Errno::EINVAL.into());
    }
    let address = k.proc.mem.read_vec(a[1], len as usize)?;
    if u16::from_le_bytes([address[0], address[1]]) != libc::AF_UNIX as u16 {
        return Err(Errno::EINVAL.into());
    }
    let path = &address[2..];
    let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
    if end == 0 {
        return Err(SysError::Unsupported(
            "connect to an abstract AF_UNIX socket".into(),
        ));
    }
    let name = CString::new(&path[..end]).expect("cut at the first NUL");
    match nix::sys::stat::lstat(name.as_c_str()) {
        Err(errno) => Err(errno.into()),
        Ok(_) => Err(SysError::Unsupported(format!(
            "connect to the host's socket {}",
            name.to_string_lossy()
        ))),
    }
}

/// socketpair(domain, type, protocol, sv): AF_UNIX SOCK_STREAM is modelled; another AF_UNIX
/// type stops the run; another family Linux knows is EOPNOTSUPP (only AF_UNIX has pairs),
/// one it does not EAFNOSUPPORT.
pub fn socketpair(k: &mut Kernel, a: &Args) -> SysResult {
    let (domain, kind, protocol) = (a[0] as i32, a[1] as i32, a[2] as i32);
    let flags = kind & (libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC);
    let base = kind & !(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC);
    if !(0..AF_MAX).contains(&domain) {
        return Err(Errno::EAFNOSUPPORT.into());
    }
    if domain != libc::AF_UNIX {
        return Err(Errno::EOPNOTSUPP.into());
    }
    if base != libc::SOCK_STREAM {
        return Err(SysError::Unsupported(format!(
            "socketpair of AF_UNIX type {base} (only SOCK_STREAM is modelled)"
        )));
    }
    if protocol != 0 && protocol != libc::PF_UNIX {
        return Err(Errno::EPROTONOSUPPORT.into());
    }
    let mut raw = [0i32; 2];
    // SAFETY: `raw` has room for the two descriptors. The host pair carries no data: it
    // answers fstat and F_GETFL as Linux would for the guest's.
    host(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC | (flags & libc::SOCK_NONBLOCK),
            0,
            raw.as_mut_ptr(),
        )
    } as libc::c_long)?;
    // SAFETY: the host just made them; nobody else owns them.
    let [first_host, second_host] = raw.map(|fd| unsafe { OwnedFd::from_raw_fd(fd) });
    let ways =
        [k.alloc_pipe_id(), k.alloc_pipe_id()].map(|id| Rc::new(RefCell::new(Pipe::new(id))));
    let end = |host, rx: &Rc<RefCell<Pipe>>, tx: &Rc<RefCell<Pipe>>| {
        Rc::new(OpenFile {
            host,
            channel: Channel::Socket(SocketEnd {
                rx: Rc::clone(rx),
                tx: Rc::clone(tx),
                non_blocking: Cell::new(flags & libc::SOCK_NONBLOCK != 0),
                read_shut: Cell::new(false),
                write_shut: Cell::new(false),
            }),
            // Priced as pipe reads and writes until sockets have kernel work of their own.
            kind: DescriptorKind::Pipe,
        })
    };
    let first = end(first_host, &ways[0], &ways[1]);
    let second = end(second_host, &ways[1], &ways[0]);
    install_pair(k, [first, second], flags & libc::SOCK_CLOEXEC != 0, a[3])
}

/// Reads or writes a modelled socket: through `stream_io` on its way in or out, after a
/// shutdown end of file or EPIPE (SIGPIPE unless `signal` is false, MSG_NOSIGNAL).
pub fn socket_io(
    k: &mut Kernel,
    file: &Rc<OpenFile>,
    iov: &[libc::iovec],
    into_guest: bool,
    non_blocking: bool,
    signal: bool,
) -> SysResult {
    let end = file.socket().expect("a modelled socket");
    let non_blocking = non_blocking || end.non_blocking.get();
    if into_guest {
        // After its own SHUT_RD a socket still gives what was queued, then end of file.
        if end.read_shut.get() && end.rx.borrow().available() == 0 {
            return Ok(0);
        }
        return stream_io(k, &end.rx, iov, true, non_blocking, signal);
    }
    if end.write_shut.get() {
        // A blocked write that the shutdown cut off returns what it wrote.
        let done = std::mem::take(&mut k.task.io_progress);
        if done > 0 {
            return Ok(done);
        }
        return if signal {
            pipe_signal(k, Err(Errno::EPIPE))
        } else {
            Err(Errno::EPIPE.into())
        };
    }
    stream_io(k, &end.tx, iov, false, non_blocking, signal)
}

/// The flags send and recv take here: MSG_DONTWAIT, and for send MSG_NOSIGNAL; another
/// stops the run.
fn message_flags(flags: u64, allowed: i32, call: &str) -> Result<(bool, bool), SysError> {
    let flags = flags as i32;
    if flags & !allowed != 0 {
        return Err(SysError::Unsupported(format!(
            "{call} with flags {:#x}",
            flags & !allowed
        )));
    }
    Ok((
        flags & libc::MSG_DONTWAIT != 0,
        flags & libc::MSG_NOSIGNAL == 0,
    ))
}

/// The modelled socket `fd` names: ENOTSOCK for something that is not a socket; a host
/// socket (the name lookup's) stops the run.
fn modelled_socket(k: &mut Kernel, fd: u64, call: &str) -> Result<Rc<OpenFile>, SysError> {
    let file = k.proc.fds.file(fd)?;
    if file.socket().is_some() {
        return Ok(file);
    }
    let is_socket = nix::sys::stat::fstat(&file.host)
        .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFSOCK);
    if is_socket {
        return Err(SysError::Unsupported(format!(
            "{call} on an unconnected socket"
        )));
    }
    Err(Errno::ENOTSOCK.into())
}

/// sendto(fd, buf, len, flags, dest, dest_len) on a connected pair: an address is EISCONN.
pub fn sendto(k: &mut Kernel, a: &Args) -> SysResult {
    let file = modelled_socket(k, a[0], "sendto")?;
    let (dont_wait, signal) =
        message_flags(a[3], libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL, "sendto")?;
    // An address is one with a length (Linux ignores a pointer with length 0).
    if a[4] != 0 && a[5] != 0 {
        return Err(Errno::EISCONN.into());
    }
    k.proc.mem.begin_transfer();
    let iov = k.proc.mem.host_iovecs(a[1], a[2] as usize, false)?;
    socket_io(k, &file, &iov, false, dont_wait, signal)
}

/// recvfrom(fd, buf, len, flags, src, src_len): the peer of a pair has no name, so the
/// length stored is 0, as Linux stores it.
pub fn recvfrom(k: &mut Kernel, a: &Args) -> SysResult {
    let file = modelled_socket(k, a[0], "recvfrom")?;
    let (dont_wait, _) = message_flags(a[3], libc::MSG_DONTWAIT, "recvfrom")?;
    k.proc.mem.begin_transfer();
    let iov = k.proc.mem.host_iovecs(a[1], a[2] as usize, true)?;
    let got = socket_io(k, &file, &iov, true, dont_wait, false)?;
    if a[4] != 0 && a[5] != 0 {
        give(k, a[5], &0u32.to_le_bytes())?;
    }
    Ok(got)
}

/// shutdown(fd, how): SHUT_RD, SHUT_WR or SHUT_RDWR on a modelled socket.
pub fn shutdown(k: &mut Kernel, a: &Args) -> SysResult {
    let file = modelled_socket(k, a[0], "shutdown")?;
    let end = file.socket().expect("a modelled socket");
    match a[1] as i32 {
        libc::SHUT_RD => end.shut_read(),
        libc::SHUT_WR => end.shut_write(),
        libc::SHUT_RDWR => {
            end.shut_read();
            end.shut_write();
        }
        _ => return Err(Errno::EINVAL.into()),
    }
    k.pipes_changed();
    Ok(0)
}

/// The `socklen_t` a call finds at `len`: the room the caller gives; negative is EINVAL.
fn room_at(k: &mut Kernel, len: u64) -> Result<usize, SysError> {
    let room = k.proc.mem.read_u32(len)? as i32;
    usize::try_from(room).map_err(|_| Errno::EINVAL.into())
}

/// Writes an unnamed AF_UNIX address (the family alone, as Linux gives for a socket of a pair)
/// to `addr`, at most the length at `len`, and stores its full length there.
fn give_unnamed(k: &mut Kernel, addr: u64, len: u64) -> SysResult {
    let room = room_at(k, len)?;
    let family = (libc::AF_UNIX as u16).to_le_bytes();
    give(k, addr, &family[..family.len().min(room)])?;
    give(k, len, &(family.len() as u32).to_le_bytes())?;
    Ok(0)
}

/// getsockname(fd, addr, len): a socket of a pair has no name.
pub fn getsockname(k: &mut Kernel, a: &Args) -> SysResult {
    modelled_socket(k, a[0], "getsockname")?;
    give_unnamed(k, a[1], a[2])
}

/// getpeername(fd, addr, len): the peer of a pair has no name either.
pub fn getpeername(k: &mut Kernel, a: &Args) -> SysResult {
    modelled_socket(k, a[0], "getpeername")?;
    give_unnamed(k, a[1], a[2])
}

/// What getsockopt answers for a socket of a pair, by SOL_SOCKET option: fixed facts.
const FIXED_OPTIONS: &[(i32, i32)] = &[
    (libc::SO_TYPE, libc::SOCK_STREAM),
    (libc::SO_DOMAIN, libc::AF_UNIX),
    (libc::SO_PROTOCOL, 0),
    (libc::SO_ERROR, 0),
    (libc::SO_ACCEPTCONN, 0),
];

/// getsockopt(fd, level, name, value, len): the options of `FIXED_OPTIONS`, as an int cut
/// to the length given; any other option stops the run.
pub fn getsockopt(k: &mut Kernel, a: &Args) -> SysResult {
    modelled_socket(k, a[0], "getsockopt")?;
    let (level, name) = (a[1] as i32, a[2] as i32);
    let value = FIXED_OPTIONS
        .iter()
        .find(|(option, _)| level == libc::SOL_SOCKET && *option == name)
        .map(|(_, value)| *value)
        .ok_or_else(|| {
            SysError::Unsupported(format!("getsockopt of level {level}, option {name}"))
        })?;
    let room = room_at(k, a[4])?;
    let bytes = value.to_le_bytes();
    let n = bytes.len().min(room);
    give(k, a[3], &bytes[..n])?;
    give(k, a[4], &(n as u32).to_le_bytes())?;
    Ok(0)
}
