//! Reads and writes of modelled stream sockets: read, write, send, recv, sendto and
//! recvfrom, on a connection's pipes (`pipes::stream_io`), with the errors of a socket
//! that is not connected, has been shut down, or was reset by its peer.

use std::rc::Rc;

use nix::errno::Errno;

use super::datagram;
use super::fs::{give, guest_iovecs, pipe_signal};
use super::host_net;
use super::pipes::{sendfile_into_way, stream_io};
use super::socket::{give_address, socket_of};
use crate::kernel::fd::OpenFile;
use crate::kernel::net::address::Address;
use crate::kernel::pipe::Reset;
use crate::kernel::socket::Socket;
use crate::kernel::task::Wait;
use crate::kernel::{Args, Kernel, SysError, SysResult};
use crate::memory::MAX_RW_COUNT;

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
        return unconnected(k, socket, into_guest, non_blocking, signal);
    };
    if into_guest {
        if end.rx.borrow().available() == 0 {
            // A reset's ECONNRESET is reported once, after what was queued; then, as after
            // an RST that follows a FIN, end of file.
            let reset = end.rx.borrow().reset;
            match reset {
                Reset::Pending(Errno::ECONNRESET) => {
                    end.rx.borrow_mut().reset = Reset::Done;
                    return Err(Errno::ECONNRESET.into());
                }
                Reset::Pending(_) | Reset::Done => return Ok(0),
                Reset::None => {}
            }
            // After its own SHUT_RD a socket still gives what was queued, then end of file.
            if end.read_shut.get() {
                return Ok(0);
            }
        }
        return stream_io(k, &end.rx, iov, true, non_blocking, signal);
    }
    if socket.is_inet() {
        // TCP's first write after an RST reports its error (`sk_stream_error`; EPIPE with
        // SIGPIPE), later ones EPIPE.
        let reset = end.rx.borrow().reset;
        match reset {
            Reset::Pending(errno) => {
                end.rx.borrow_mut().reset = Reset::Done;
                return if errno == Errno::EPIPE {
                    broken(k, signal)
                } else {
                    Err(errno.into())
                };
            }
            Reset::Done => return broken(k, signal),
            Reset::None => {}
        }
        // A peer that closed after its FIN still takes the bytes: it answers them with an
        // RST, which the next write reports.
        if end.tx.borrow().readers == 0 && !end.write_shut.get() {
            let total: usize = iov.iter().map(|v| v.iov_len).sum();
            end.rx.borrow_mut().set_reset(Errno::EPIPE);
            k.proc.mem.note_transfer(total as u64);
            return Ok(total as u64);
        }
    }
    if socket.is_seqpacket() {
        let total: usize = iov.iter().map(|v| v.iov_len).sum();
        if total > largest_message(socket) {
            return Err(Errno::EMSGSIZE.into());
        }
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

/// SIOCOUTQ of a modelled socket: what it sent that the peer has not yet taken. Loopback
/// TCP acknowledges bytes as they arrive, and a UDP datagram leaves at once: 0 (EINVAL
/// for a listener). Linux counts an AF_UNIX socket's in buffer sizes (`truesize`), which
/// the model does not have: 0 when the peer has read everything, otherwise not modelled.
pub(super) fn output_queue(socket: &Socket) -> Result<i32, SysError> {
    if socket.is_inet() {
        return if socket.listener().is_some() {
            Err(Errno::EINVAL.into())
        } else {
            Ok(0)
        };
    }
    let unread = match socket.connection.get() {
        Some(end) => end.tx.borrow().available(),
        None if socket.is_datagram() => {
            return Err(SysError::Unsupported(
                "SIOCOUTQ of an AF_UNIX datagram socket (Linux counts buffer sizes)".into(),
            ))
        }
        None => 0,
    };
    if unread > 0 {
        return Err(SysError::Unsupported(
            "SIOCOUTQ of an AF_UNIX socket with unread bytes (Linux counts buffer sizes)".into(),
        ));
    }
    Ok(0)
}

/// Linux's default send buffer (`wmem_default`), whose size less 32 bytes bounds a
/// SOCK_SEQPACKET message (`unix_dgram_sendmsg`).
const DEFAULT_SEND_BUFFER: i32 = 212_992;

/// The longest message `socket` may send: EMSGSIZE beyond.
fn largest_message(socket: &Socket) -> usize {
    let buffer = socket
        .int_option(libc::SOL_SOCKET, libc::SO_SNDBUF)
        .unwrap_or(DEFAULT_SEND_BUFFER);
    (buffer - 32).max(0) as usize
}

/// EPIPE, with SIGPIPE if `signal`.
fn broken(k: &mut Kernel, signal: bool) -> SysResult {
    if signal {
        pipe_signal(k, Err(Errno::EPIPE))
    } else {
        Err(Errno::EPIPE.into())
    }
}

/// A read or write of a socket with no connection: TCP reads ENOTCONN (end of file when
/// refused) and writes EPIPE, after a refused connect's error; AF_UNIX reads EINVAL (a
/// seqpacket socket's ENOTCONN) and writes ENOTCONN.
fn unconnected(
    k: &mut Kernel,
    socket: &Socket,
    into_guest: bool,
    non_blocking: bool,
    signal: bool,
) -> SysResult {
    // A TCP socket in SYN_SENT waits for its connection (a write in
    // `sk_stream_wait_connect`, a read for data), or is EAGAIN.
    if let Some(id) = socket.waiting_on() {
        return Err(if non_blocking {
            Errno::EAGAIN.into()
        } else {
            SysError::Block(Wait::Connect { listener: id })
        });
    }
    if socket.is_inet() {
        if let Some(error) = socket.error.take() {
            return Err(error.into());
        }
        // A refusal no connect has reported leaves the socket shut both ways, as the RST
        // left it (`tcp_done`); a connect that reports it disconnects it.
        if into_guest && socket.connecting.get() {
            return Ok(0);
        }
    }
    match (socket.is_inet(), into_guest) {
        (true, true) => Err(Errno::ENOTCONN.into()),
        (true, false) => broken(k, signal),
        (false, true) if !socket.is_seqpacket() => Err(Errno::EINVAL.into()),
        (false, _) => Err(Errno::ENOTCONN.into()),
    }
}

/// The flags send and recv take here: MSG_DONTWAIT, and for send MSG_NOSIGNAL, MSG_EOR and MSG_MORE
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

/// A send's or receive's buffer length as Linux's `import_ubuf` takes it: cut to
/// `MAX_RW_COUNT` before the range is checked (a read's is checked whole first).
pub(super) fn buffer_length(len: u64) -> usize {
    (len as usize).min(MAX_RW_COUNT)
}

/// sendto(fd, buf, len, flags, dest, dest_len).
pub fn sendto(k: &mut Kernel, a: &Args) -> SysResult {
    if let Some(file) = host_net::of(k, a[0]) {
        return host_net::sendto(k, &file, a);
    }
    let file = socket_of(k, a[0])?;
    k.proc.mem.begin_transfer();
    let iov = k.proc.mem.host_iovecs(a[1], buffer_length(a[2]), false)?;
    let to = address_at(k, a[4], a[5])?;
    send(k, &file, &iov, to.as_deref(), a[3])
}

/// The address a send names: none for a null pointer or a length of 0 (Linux ignores a
/// pointer with length 0).
fn address_at(k: &mut Kernel, addr: u64, len: u64) -> Result<Option<Vec<u8>>, SysError> {
    // An int: its register's upper half is not looked at.
    let len = len as i32;
    if addr == 0 || len == 0 {
        return Ok(None);
    }
    if !(0..=128).contains(&len) {
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
    // MSG_EOR ends a record: every message here is one already.
    let allowed = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL | libc::MSG_MORE | libc::MSG_EOR;
    let (dont_wait, signal) = message_flags(flags, allowed, "a send")?;
    if socket.is_datagram() {
        return datagram::send(k, file, iov, to, dont_wait);
    }
    // A seqpacket socket ignores an address (`unix_seqpacket_sendmsg`).
    if to.is_some() && !socket.is_inet() && !socket.is_seqpacket() {
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
    // A connection's flags are checked before anything is taken (a peek included);
    // MSG_TRUNC is a seqpacket socket's.
    let truncating = if socket.is_seqpacket() {
        libc::MSG_TRUNC
    } else {
        0
    };
    let allowed = libc::MSG_DONTWAIT | libc::MSG_PEEK | truncating;
    let (dont_wait, _) = message_flags(flags, allowed, "a receive")?;
    let peek = flags as i32 & libc::MSG_PEEK != 0;
    if let Some(peeked) = peek_stream(k, file, iov, peek) {
        let (got, message) = peeked?;
        // A seqpacket peek cut short says so, and gives the whole length for MSG_TRUNC.
        let cut = message.filter(|&whole| whole > got as usize);
        let ret = match cut {
            Some(whole) if flags as i32 & libc::MSG_TRUNC != 0 => whole as u64,
            _ => got,
        };
        return Ok((ret, cut.is_some(), peer_name(file)));
    }
    empty_receive(file, iov, dont_wait)?;
    let got = socket_io(k, file, iov, true, dont_wait, false)?;
    // A seqpacket read that cut its message short; MSG_TRUNC asks for its whole length.
    let cut = file.stream().and_then(|end| end.rx.borrow().truncated);
    let ret = match cut {
        Some(length) if flags as i32 & libc::MSG_TRUNC != 0 => length as u64,
        _ => got,
    };
    Ok((ret, cut.is_some(), peer_name(file)))
}

/// A receive of no bytes from a connection: unlike a read of none, it waits for bytes as
/// any receive does (EAGAIN when it may not), and returns 0 once some are there or at end
/// of file (Linux's stream receive loop, whose target is at least one byte).
fn empty_receive(file: &OpenFile, iov: &[libc::iovec], dont_wait: bool) -> Result<(), SysError> {
    let Some(end) = file.stream() else {
        return Ok(());
    };
    let rx = end.rx.borrow();
    let waits = iov.iter().all(|v| v.iov_len == 0)
        && rx.available() == 0
        && rx.writers > 0
        && rx.reset == Reset::None
        && !end.read_shut.get();
    if !waits {
        return Ok(());
    }
    if dont_wait || file.socket().is_some_and(|s| s.non_blocking.get()) {
        return Err(Errno::EAGAIN.into());
    }
    Err(SysError::Block(Wait::PipeRead { pipe: rx.id }))
}

/// A MSG_PEEK receive on a connection with bytes waiting: copies them and leaves them;
/// gives the bytes copied and, on a seqpacket connection, the message's length. `None`
/// when there is nothing to peek at, where a receive answers as it would without the flag
/// (end of file, a reset, a wait: none takes bytes), and when not peeking. A peek of more
/// than the buffer's mapped part holds is EFAULT, as a read's (`pipes::cut_transfer`).
fn peek_stream(
    k: &mut Kernel,
    file: &OpenFile,
    iov: &[libc::iovec],
    peek: bool,
) -> Option<Result<(u64, Option<usize>), Errno>> {
    let end = file.stream().filter(|_| peek)?;
    let rx = end.rx.borrow();
    if rx.available() == 0 {
        return None;
    }
    let total: usize = iov.iter().map(|v| v.iov_len).sum();
    let reach = rx.next_message().unwrap_or_else(|| rx.available());
    if k.proc.mem.transfer_asked().1 && reach > total {
        return Some(Err(Errno::EFAULT));
    }
    let mut copied = 0;
    rx.peek(total, |piece| {
        super::pipes::scatter(iov, copied, piece);
        copied += piece.len();
    });
    k.proc.mem.note_transfer(copied as u64);
    Some(Ok((copied as u64, rx.next_message())))
}

/// The sender's name a receive on a connection gives: an AF_UNIX peer's (none for an
/// unnamed one); TCP gives none.
fn peer_name(file: &OpenFile) -> Option<Address> {
    let socket = file.socket()?;
    match file.stream().map(|end| &end.peer) {
        Some(peer @ (Address::Path(_) | Address::Abstract(_))) if !socket.is_inet() => {
            Some(peer.clone())
        }
        _ => None,
    }
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
    if let Some(file) = host_net::of(k, a[0]) {
        return host_net::recvfrom(k, &file, a);
    }
    let file = socket_of(k, a[0])?;
    k.proc.mem.begin_transfer();
    let iov = k.proc.mem.host_iovecs(a[1], buffer_length(a[2]), true)?;
    let (got, _, from) = receive(k, &file, &iov, a[3])?;
    if a[4] != 0 && a[5] != 0 {
        give_from(k, a[4], a[5], from.as_ref())?;
    }
    Ok(got)
}

/// `struct msghdr`: name, namelen, iov, iovlen, control, controllen, flags.
const MSGHDR_SIZE: usize = 56;

/// A guest's `struct msghdr`.
pub(super) struct MessageHeader {
    pub name: u64,
    pub name_len: u64,
    pub iov: u64,
    pub iov_len: u64,
    pub control: u64,
    pub control_len: u64,
}

/// A guest's msghdr at `at`; more iovecs than `UIO_MAXIOV` is EMSGSIZE (`__copy_msghdr`).
pub(super) fn message_header(k: &mut Kernel, at: u64) -> Result<MessageHeader, Errno> {
    let raw = k.proc.mem.read_vec(at, MSGHDR_SIZE)?;
    let word = |i: usize| u64::from_le_bytes(raw[i * 8..i * 8 + 8].try_into().unwrap());
    if word(3) > crate::memory::IOV_MAX as u64 {
        return Err(Errno::EMSGSIZE);
    }
    Ok(MessageHeader {
        name: word(0),
        name_len: word(1) & 0xffff_ffff,
        iov: word(2),
        iov_len: word(3),
        control: word(4),
        control_len: word(5),
    })
}

/// `struct cmsghdr`: the length (of header and data), the level, the type.
const CMSG_HEADER: usize = 16;
/// Linux's `SCM_MAX_FD`: the most descriptors one message passes.
const SCM_MAX_FD: usize = 253;

/// The open files a message's ancillary data passes (SCM_RIGHTS), read as Linux's
/// `__scm_send` reads them: EINVAL for a malformed header or too many, EBADF for a
/// descriptor not open; an internet socket ignores them (`__sock_cmsg_send`); another kind
/// of control message stops the run.
fn rights_to_send(
    k: &mut Kernel,
    socket_is_unix: bool,
    control: u64,
    len: u64,
) -> Result<Option<Vec<Rc<OpenFile>>>, SysError> {
    if len < CMSG_HEADER as u64 {
        return Ok(None);
    }
    let bytes = k.proc.mem.read_vec(control, len as usize)?;
    let mut files = Vec::new();
    let mut at = 0;
    while at + CMSG_HEADER <= bytes.len() {
        let word = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().unwrap());
        let (cmsg_len, level, kind) = (
            word(at) as usize,
            i32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()),
            i32::from_le_bytes(bytes[at + 12..at + 16].try_into().unwrap()),
        );
        if cmsg_len < CMSG_HEADER || at + cmsg_len > bytes.len() {
            return Err(Errno::EINVAL.into());
        }
        if (level, kind) != (libc::SOL_SOCKET, libc::SCM_RIGHTS) {
            return Err(SysError::Unsupported(format!(
                "a control message of level {level}, type {kind} (only SCM_RIGHTS is modelled)"
            )));
        }
        // An internet socket ignores SCM_RIGHTS, which belongs to AF_UNIX.
        if !socket_is_unix {
            at += (cmsg_len + 7) & !7;
            continue;
        }
        for fd in bytes[at + CMSG_HEADER..at + cmsg_len].chunks_exact(4) {
            let fd = i32::from_le_bytes(fd.try_into().unwrap());
            let file = u64::try_from(fd)
                .map_err(|_| Errno::EBADF)
                .and_then(|fd| k.proc.fds.file(fd))?;
            files.push(file);
        }
        if files.len() > SCM_MAX_FD {
            return Err(Errno::EINVAL.into());
        }
        at += (cmsg_len + 7) & !7;
    }
    Ok((!files.is_empty()).then_some(files))
}

/// sendmsg(fd, msg, flags): with SCM_RIGHTS over AF_UNIX, the open files go with the
/// message (a datagram, or the stream's bytes it writes first).
pub fn sendmsg(k: &mut Kernel, a: &Args) -> SysResult {
    if let Some(file) = host_net::of(k, a[0]) {
        return host_net::sendmsg(k, &file, a);
    }
    let file = socket_of(k, a[0])?;
    let header = message_header(k, a[1])?;
    let is_unix = !file.socket().expect("a socket").is_inet();
    k.sending_rights = rights_to_send(k, is_unix, header.control, header.control_len)?;
    let iov = guest_iovecs(k, header.iov, header.iov_len, false)?;
    // A longer name is cut to a sockaddr_storage (`__copy_msghdr`).
    let to = address_at(k, header.name, header.name_len.min(128))?;
    send(k, &file, &iov, to.as_deref(), a[2])
}

/// Installs the open files the receive took and writes their SCM_RIGHTS message to the
/// control buffer at `control` (`room` bytes): as many as fit, the rest closed with
/// MSG_CTRUNC, as Linux's `scm_detach_fds`. Gives the control length and whether it was cut.
fn give_rights(
    k: &mut Kernel,
    control: u64,
    room: u64,
    cloexec: bool,
) -> Result<(u64, bool), SysError> {
    let files = std::mem::take(&mut k.received_rights);
    if files.is_empty() {
        return Ok((0, false));
    }
    let fit = (room as usize).saturating_sub(CMSG_HEADER) / 4;
    let mut fds = Vec::new();
    for file in files.iter().take(fit) {
        fds.push(k.proc.fds.install_file(Rc::clone(file), cloexec, 0)? as i32);
    }
    if fds.is_empty() {
        return Ok((0, true));
    }
    let cmsg_len = CMSG_HEADER + 4 * fds.len();
    let mut bytes = (cmsg_len as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(&libc::SOL_SOCKET.to_le_bytes());
    bytes.extend_from_slice(&libc::SCM_RIGHTS.to_le_bytes());
    for fd in &fds {
        bytes.extend_from_slice(&fd.to_le_bytes());
    }
    give(k, control, &bytes)?;
    let space = ((cmsg_len + 7) & !7).min(room as usize);
    Ok((space as u64, fds.len() < files.len()))
}

/// recvmsg(fd, msg, flags): the sender's name, MSG_TRUNC for a datagram cut short, and the
/// descriptors passed with what was read (SCM_RIGHTS; MSG_CMSG_CLOEXEC).
pub fn recvmsg(k: &mut Kernel, a: &Args) -> SysResult {
    if let Some(file) = host_net::of(k, a[0]) {
        return host_net::recvmsg(k, &file, a);
    }
    let file = socket_of(k, a[0])?;
    let header = message_header(k, a[1])?;
    let iov = guest_iovecs(k, header.iov, header.iov_len, true)?;
    let cloexec = a[2] as i32 & libc::MSG_CMSG_CLOEXEC != 0;
    let flags = a[2] & !(libc::MSG_CMSG_CLOEXEC as u64);
    let (got, cut, from) = receive(k, &file, &iov, flags)?;
    if header.name != 0 {
        give_from(k, header.name, a[1] + 8, from.as_ref())?;
    }
    let (control_len, control_cut) = give_rights(k, header.control, header.control_len, cloexec)?;
    give(k, a[1] + 40, &control_len.to_le_bytes())?;
    let flags =
        if cut { libc::MSG_TRUNC } else { 0 } | if control_cut { libc::MSG_CTRUNC } else { 0 };
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
        return unconnected(k, socket, false, socket.non_blocking.get(), true);
    };
    if socket.is_inet() && end.rx.borrow().reset != Reset::None {
        end.rx.borrow_mut().reset = Reset::Done;
        return Err(Errno::ECONNRESET.into());
    }
    if end.write_shut.get() {
        return broken(k, true);
    }
    sendfile_into_way(k, &end.tx, socket.non_blocking.get(), from, offset, count)
}
