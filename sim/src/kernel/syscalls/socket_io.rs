//! Reads and writes of modelled stream sockets: read, write, send, recv, sendto and
//! recvfrom, on a connection's pipes (`pipes::stream_io`), with the errors of a socket
//! that is not connected, has been shut down, or was reset by its peer.

use std::rc::Rc;

use nix::errno::Errno;

use super::fs::{give, pipe_signal};
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

/// sendto(fd, buf, len, flags, dest, dest_len): a connected AF_UNIX stream socket refuses
/// an address (EISCONN; EOPNOTSUPP before it is connected); TCP ignores it.
pub fn sendto(k: &mut Kernel, a: &Args) -> SysResult {
    let file = socket_of(k, a[0])?;
    let socket = file.socket().expect("a socket");
    let allowed = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL | libc::MSG_MORE;
    let (dont_wait, signal) = message_flags(a[3], allowed, "sendto")?;
    // An address is one with a length (Linux ignores a pointer with length 0).
    if a[4] != 0 && a[5] != 0 && !socket.is_inet() {
        return Err(if socket.connection.get().is_some() {
            Errno::EISCONN
        } else {
            Errno::EOPNOTSUPP
        }
        .into());
    }
    k.proc.mem.begin_transfer();
    let iov = k.proc.mem.host_iovecs(a[1], a[2] as usize, false)?;
    socket_io(k, &file, &iov, false, dont_wait, signal)
}

/// recvfrom(fd, buf, len, flags, src, src_len): an AF_UNIX socket gives its peer's name
/// (length 0 for an unnamed peer), TCP no name (length 0).
pub fn recvfrom(k: &mut Kernel, a: &Args) -> SysResult {
    let file = socket_of(k, a[0])?;
    let (dont_wait, _) = message_flags(a[3], libc::MSG_DONTWAIT, "recvfrom")?;
    k.proc.mem.begin_transfer();
    let iov = k.proc.mem.host_iovecs(a[1], a[2] as usize, true)?;
    let got = socket_io(k, &file, &iov, true, dont_wait, false)?;
    if a[4] != 0 && a[5] != 0 {
        let socket = file.socket().expect("a socket");
        match file.stream().map(|end| &end.peer) {
            Some(peer @ (Address::Path(_) | Address::Abstract(_))) if !socket.is_inet() => {
                let peer = peer.clone();
                give_address(k, a[4], a[5], &peer)?;
            }
            _ => give(k, a[5], &0u32.to_le_bytes())?,
        }
    }
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
