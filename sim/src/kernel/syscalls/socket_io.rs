//! Reads and writes of modelled stream sockets: read, write, send, recv, sendto and
//! recvfrom, on a connection's pipes (`pipes::stream_io`), with the errors of a socket
//! that is not connected, has been shut down, or was reset by its peer.

use std::rc::Rc;

use nix::errno::Errno;

use super::datagram;
use super::fs::{give, guest_iovecs, pipe_signal};
use super::pipes::{sendfile_into_way, stream_io};
use super::socket::{give_address, socket_of};
use crate::kernel::fd::OpenFile;
use crate::kernel::net::address::Address;
use crate::kernel::socket::Socket;
use crate::kernel::{Args, Kernel, SysError, SysResult};

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
    let socket = file.socket().expect("a modelled socket");
    if socket.is_datagram() {
        return if into_guest {
            Ok(datagram::receive(k, socket, iov, non_blocking, false)?.copied)
        } else if socket.peer.borrow().is_none() {
            // Linux: AF_UNIX ENOTCONN, UDP EDESTADDRREQ.
            Err(if socket.is_inet() {
                Errno::EDESTADDRREQ
            } else {
                Errno::ENOTCONN
            }
            .into())
        } else {
            datagram::send(k, file, iov, None, non_blocking)
        };
    }
    let non_blocking = non_blocking || socket.non_blocking.get();
    let Some(end) = socket.connection.get() else {
        return unconnected(k, socket, into_guest, signal);
    };
    if into_guest {
        if end.rx.borrow().available() == 0 {
            // A reset is reported once, after what was queued; then end of file.
            if std::mem::take(&mut end.rx.borrow_mut().reset) {
                return Err(Errno::ECONNRESET.into());
            }
            // After its own SHUT_RD a socket still gives what was queued, then end of file.
            if end.read_shut.get() {
                return Ok(0);
            }
        }
        return stream_io(k, &end.rx, iov, true, non_blocking, signal);
    }
    // TCP's first write after a reset reports it (`sk_stream_error`), with no SIGPIPE.
    if socket.is_inet() && std::mem::take(&mut end.rx.borrow_mut().reset) {
        return Err(Errno::ECONNRESET.into());
    }
    if end.write_shut.get() {
        // A blocked write that the shutdown cut off returns what it wrote.
        let done = std::mem::take(&mut k.task.io_progress);
        if done > 0 {
            return Ok(done);
        }
        return broken(k, signal);
    }
    stream_io(k, &end.tx, iov, false, non_blocking, signal)
}

/// EPIPE, with SIGPIPE if `signal`.
fn broken(k: &mut Kernel, signal: bool) -> SysResult {
    if signal {
        pipe_signal(k, Err(Errno::EPIPE))
    } else {
        Err(Errno::EPIPE.into())
    }
}

/// A read or write of a socket with no connection: TCP reads ENOTCONN and writes EPIPE;
/// AF_UNIX reads EINVAL and writes ENOTCONN.
fn unconnected(k: &mut Kernel, socket: &Socket, into_guest: bool, signal: bool) -> SysResult {
    match (socket.is_inet(), into_guest) {
        (true, true) => Err(Errno::ENOTCONN.into()),
        (true, false) => broken(k, signal),
        (false, true) => Err(Errno::EINVAL.into()),
        (false, false) => Err(Errno::ENOTCONN.into()),
    }
}

/// The flags send and recv take here: MSG_DONTWAIT, and for send MSG_NOSIGNAL and MSG_MORE
/// (a hint to coalesce, which a model with no packets has no use for); another stops the
/// run. Gives (don't wait, signal on EPIPE).
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

/// sendto(fd, buf, len, flags, dest, dest_len).
pub fn sendto(k: &mut Kernel, a: &Args) -> SysResult {
    let file = socket_of(k, a[0])?;
    k.proc.mem.begin_transfer();
    let iov = k.proc.mem.host_iovecs(a[1], a[2] as usize, false)?;
    let to = address_at(k, a[4], a[5])?;
    send(k, &file, &iov, to.as_deref(), a[3])
}

/// The address a send names: none for a null pointer or a length of 0 (Linux ignores a
/// pointer with length 0).
fn address_at(k: &mut Kernel, addr: u64, len: u64) -> Result<Option<Vec<u8>>, SysError> {
    if addr == 0 || len == 0 {
        return Ok(None);
    }
    if len as i32 > 128 || (len as i32) < 0 {
        return Err(Errno::EINVAL.into());
    }
    Ok(Some(k.proc.mem.read_vec(addr, len as usize)?))
}

/// Sends the bytes of `iov` on `file`'s socket, to `to` if given: a datagram, or onto a
/// connection. A connected AF_UNIX stream socket refuses an address (EISCONN; EOPNOTSUPP
/// before it is connected); TCP ignores it.
fn send(
    k: &mut Kernel,
    file: &Rc<OpenFile>,
    iov: &[libc::iovec],
    to: Option<&[u8]>,
    flags: u64,
) -> SysResult {
    let socket = file.socket().expect("a socket");
    let allowed = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL | libc::MSG_MORE;
    let (dont_wait, signal) = message_flags(flags, allowed, "a send")?;
    if socket.is_datagram() {
        return datagram::send(k, file, iov, to, dont_wait);
    }
    if to.is_some() && !socket.is_inet() {
        return Err(if socket.connection.get().is_some() {
            Errno::EISCONN
        } else {
            Errno::EOPNOTSUPP
        }
        .into());
    }
    socket_io(k, file, iov, false, dont_wait, signal)
}

/// Receives into `iov` from `file`'s socket: returns what recv returns (the bytes copied,
/// or with MSG_TRUNC a datagram's whole length), whether a datagram was cut, and the
/// sender's name to give (`None`: a name of length 0).
fn receive(
    k: &mut Kernel,
    file: &Rc<OpenFile>,
    iov: &[libc::iovec],
    flags: u64,
) -> Result<(u64, bool, Option<Address>), SysError> {
    let socket = file.socket().expect("a socket");
    if socket.is_datagram() {
        let allowed = libc::MSG_DONTWAIT | libc::MSG_PEEK | libc::MSG_TRUNC;
        let (dont_wait, _) = message_flags(flags, allowed, "a receive")?;
        let peek = flags as i32 & libc::MSG_PEEK != 0;
        let got = datagram::receive(k, socket, iov, dont_wait, peek)?;
        let ret = if flags as i32 & libc::MSG_TRUNC != 0 {
            got.length
        } else {
            got.copied
        };
        let from = (got.from != Address::Unnamed).then_some(got.from);
        return Ok((ret, got.copied < got.length, from));
    }
    let (dont_wait, _) = message_flags(flags, libc::MSG_DONTWAIT, "a receive")?;
    let got = socket_io(k, file, iov, true, dont_wait, false)?;
    // An AF_UNIX socket gives its peer's name (none for an unnamed peer), TCP none.
    let from = match file.stream().map(|end| &end.peer) {
        Some(peer @ (Address::Path(_) | Address::Abstract(_))) if !socket.is_inet() => {
            Some(peer.clone())
        }
        _ => None,
    };
    Ok((got, false, from))
}

/// Gives a sender's name at `addr`, its length at `len` (0 for none).
fn give_from(k: &mut Kernel, addr: u64, len: u64, from: Option<&Address>) -> Result<(), Errno> {
    match from {
        Some(from) => give_address(k, addr, len, from),
        None => give(k, len, &0u32.to_le_bytes()),
    }
}

/// recvfrom(fd, buf, len, flags, src, src_len).
pub fn recvfrom(k: &mut Kernel, a: &Args) -> SysResult {
    let file = socket_of(k, a[0])?;
    k.proc.mem.begin_transfer();
    let iov = k.proc.mem.host_iovecs(a[1], a[2] as usize, true)?;
    let (got, _, from) = receive(k, &file, &iov, a[3])?;
    if a[4] != 0 && a[5] != 0 {
        give_from(k, a[4], a[5], from.as_ref())?;
    }
    Ok(got)
}

/// `struct msghdr`: name, namelen, iov, iovlen, control, controllen, flags.
const MSGHDR_SIZE: usize = 56;

/// A guest's `struct msghdr`.
struct MessageHeader {
    name: u64,
    name_len: u64,
    iov: u64,
    iov_len: u64,
    control_len: u64,
}

fn message_header(k: &mut Kernel, at: u64) -> Result<MessageHeader, Errno> {
    let raw = k.proc.mem.read_vec(at, MSGHDR_SIZE)?;
    let word = |i: usize| u64::from_le_bytes(raw[i * 8..i * 8 + 8].try_into().unwrap());
    Ok(MessageHeader {
        name: word(0),
        name_len: word(1) & 0xffff_ffff,
        iov: word(2),
        iov_len: word(3),
        control_len: word(5),
    })
}

/// sendmsg(fd, msg, flags): ancillary data (SCM_RIGHTS, SCM_CREDENTIALS) is not modelled
/// and stops the run.
pub fn sendmsg(k: &mut Kernel, a: &Args) -> SysResult {
    let file = socket_of(k, a[0])?;
    let header = message_header(k, a[1])?;
    if header.control_len != 0 {
        return Err(SysError::Unsupported(
            "sendmsg with ancillary data (SCM_RIGHTS or SCM_CREDENTIALS)".into(),
        ));
    }
    let iov = guest_iovecs(k, header.iov, header.iov_len, false)?;
    let to = address_at(k, header.name, header.name_len)?;
    send(k, &file, &iov, to.as_deref(), a[2])
}

/// recvmsg(fd, msg, flags): no ancillary data comes (controllen 0); MSG_TRUNC in the
/// header's flags for a datagram cut short.
pub fn recvmsg(k: &mut Kernel, a: &Args) -> SysResult {
    let file = socket_of(k, a[0])?;
    let header = message_header(k, a[1])?;
    let iov = guest_iovecs(k, header.iov, header.iov_len, true)?;
    let (got, cut, from) = receive(k, &file, &iov, a[2])?;
    if header.name != 0 {
        give_from(k, header.name, a[1] + 8, from.as_ref())?;
    } else {
        give(k, a[1] + 8, &0u32.to_le_bytes())?;
    }
    give(k, a[1] + 40, &0u64.to_le_bytes())?;
    let flags = if cut { libc::MSG_TRUNC } else { 0 };
    give(k, a[1] + 48, &flags.to_le_bytes())?;
    Ok(got)
}

/// sendfile into a socket: its connection's way out, as a write (`pipes::sendfile_into_way`).
pub fn sendfile_into(
    k: &mut Kernel,
    file: &Rc<OpenFile>,
    from: std::os::fd::RawFd,
    offset: u64,
    count: u64,
) -> SysResult {
    let socket = file.socket().expect("a modelled socket");
    let Some(end) = socket.connection.get() else {
        return unconnected(k, socket, false, true);
    };
    if socket.is_inet() && std::mem::take(&mut end.rx.borrow_mut().reset) {
        return Err(Errno::ECONNRESET.into());
    }
    if end.write_shut.get() {
        return broken(k, true);
    }
    sendfile_into_way(k, &end.tx, socket.non_blocking.get(), from, offset, count)
}
