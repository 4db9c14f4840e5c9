//! Datagram sockets: UDP on loopback and AF_UNIX SOCK_DGRAM. Each message goes whole into
//! its receiver's queue (`net::Mailbox`) and comes out whole, cut to the reader's buffer.
//!
//! As Linux: a UDP datagram to a port where no socket is bound, or to a full queue, is
//! dropped, and a connected sender learns of the first (ECONNREFUSED, from the ICMP error)
//! on its next call; an AF_UNIX sender to a full queue waits (or gets EAGAIN), to a name
//! where nothing is bound gets ECONNREFUSED, and to a socket connected elsewhere EPERM.

use std::cell::RefCell;
use std::rc::Rc;

use nix::errno::Errno;

use super::pipes::{gather, scatter};
use super::socket::{autobind, destination, source_of};
use crate::kernel::fd::OpenFile;
use crate::kernel::net::address::{Address, Domain, Use};
use crate::kernel::net::{Datagram, Limit, Mailbox};
use crate::kernel::socket::{Peer, Socket};
use crate::kernel::task::Wait;
use crate::kernel::{Kernel, SysError, SysResult};

/// `net.unix.max_dgram_qlen`: an AF_UNIX receiver holds this many datagrams and one more.
const UNIX_QUEUE: usize = 10;
/// `net.core.rmem_default`: a UDP receiver's queue, in bytes (Linux counts each datagram's
/// buffer overhead too, so it drops sooner under a flood).
const UDP_QUEUE: usize = 212_992;
/// The largest UDP payload over IPv4 and over IPv6 (65,535 less the headers).
const UDP_MAX_V4: usize = 65_507;
const UDP_MAX_V6: usize = 65_527;
/// An AF_UNIX datagram may be as long as the send buffer less 32 bytes (`unix_dgram_sendmsg`).
const UNIX_MAX: usize = 212_992 - 32;
/// What Linux charges a sender's buffer for a small datagram (an skb's truesize, 6.x: 768
/// bytes up to a few hundred of data), so that a pair's sender stops after 278 one-byte
/// datagrams; a larger one is charged its bytes and the skb's own 576, an approximation.
const DATAGRAM_CHARGE: usize = 768;
const SKB_OVERHEAD: usize = 576;
/// A pair's sender's buffer (`net.core.wmem_default`).
const SEND_BUFFER: usize = 212_992;

/// Whether `queue` takes a datagram of `len` bytes from the socket whose queue is `own`: a
/// receiver connected back to its sender (a pair) is not held to its queue's length, only
/// to the sender's buffer (`pair_has_room`); any other is (`Mailbox::full`).
fn has_room(queue: &Mailbox, own: *const RefCell<Mailbox>, len: usize) -> bool {
    let pair = queue
        .peer
        .as_ref()
        .is_some_and(|p| std::ptr::eq(p.as_ptr(), own));
    if pair {
        pair_has_room(queue)
    } else {
        !queue.full(len)
    }
}

/// Whether a pair's receiver queue, charged to its sender's buffer, takes another datagram:
/// Linux allocates while what is charged is below the buffer.
fn pair_has_room(queue: &Mailbox) -> bool {
    let charged: usize = queue
        .queue
        .iter()
        .map(|d| DATAGRAM_CHARGE.max(d.bytes.len() + SKB_OVERHEAD))
        .sum();
    charged < SEND_BUFFER
}

/// A new datagram socket's receive queue, named `id`.
pub fn mailbox(domain: Domain, id: u64) -> Mailbox {
    let limit = match domain {
        Domain::Unix => Limit::Messages(UNIX_QUEUE),
        Domain::Inet | Domain::Inet6 => Limit::Bytes(UDP_QUEUE),
    };
    Mailbox::new(id, limit)
}

/// connect of a datagram socket: its default destination and, for AF_UNIX, whom it takes
/// datagrams from; AF_UNSPEC forgets it.
pub fn connect(k: &mut Kernel, socket: &Socket, bytes: &[u8]) -> SysResult {
    if bytes.len() >= 2 && u16::from_le_bytes([bytes[0], bytes[1]]) == libc::AF_UNSPEC as u16 {
        socket.peer.replace(None);
        set_filter(socket, None);
        if socket.is_inet() {
            disconnect_udp(socket);
        }
        return Ok(0);
    }
    let address = Address::parse(socket.domain, bytes, Use::Connect)?;
    let (name, to) = destination(socket, &address)?;
    let peer = if socket.is_inet() {
        let source = source_of(socket, &to);
        autobind(k, socket, &source)?;
        // A socket bound to the wildcard is known by its source address once connected.
        if !socket.chosen.get().1 {
            socket.rename(source.with_port(socket.local().and_then(|a| a.port()).unwrap_or(0)));
        }
        Peer {
            address: to,
            mailbox: None,
        }
    } else {
        let binding = k.net.reach(&name, socket.kind)?;
        let queue = binding
            .mailbox
            .as_ref()
            .expect("a datagram binding has a queue");
        // `unix_may_send`: a socket connected to another refuses this one at connect.
        let own = socket.mailbox.as_ref().map(Rc::as_ptr);
        let taken = queue.borrow().peer.as_ref().map(std::rc::Weak::as_ptr);
        if taken.is_some_and(|p| Some(p) != own)
            && !Rc::ptr_eq(queue, socket.mailbox.as_ref().expect("a queue"))
        {
            return Err(Errno::EPERM.into());
        }
        Peer {
            address: binding.address.clone(),
            mailbox: Some(Rc::downgrade(queue)),
        }
    };
    set_filter(socket, Some(&peer));
    socket.peer.replace(Some(peer));
    Ok(0)
}

/// A UDP disconnect (`__udp_disconnect`): an address bind did not choose goes back to the
/// wildcard, and a port it did not choose is given back.
fn disconnect_udp(socket: &Socket) {
    let Some(local) = socket.local() else {
        return;
    };
    let (port_chosen, address_chosen) = socket.chosen.get();
    if !port_chosen {
        socket.release_port();
    } else if !address_chosen {
        let port = local.port().unwrap_or(0);
        socket.rename(socket.domain.unbound().with_port(port));
    }
}

/// A connected socket takes datagrams only from its peer.
pub(super) fn set_filter(socket: &Socket, peer: Option<&Peer>) {
    if let Some(mailbox) = &socket.mailbox {
        let mut mailbox = mailbox.borrow_mut();
        mailbox.peer = peer.and_then(|p| p.mailbox.clone());
        mailbox.peer_address = peer.map(|p| p.address.clone());
    }
}

/// Sends the bytes of `iov` as one datagram to `to` (the guest's address bytes) or to the
/// socket's peer.
pub fn send(
    k: &mut Kernel,
    file: &Rc<OpenFile>,
    iov: &[libc::iovec],
    to: Option<&[u8]>,
    non_blocking: bool,
) -> SysResult {
    let socket = file.socket().expect("a socket");
    if let Some(error) = socket.error.take() {
        return Err(error.into());
    }
    let bytes = gather(iov, 0);
    // A datagram moves whole: its length is the one asked for, and memory that cannot be
    // mapped in it is EFAULT once that length has passed the size checks.
    let (asked, cut) = k.proc.mem.transfer_asked();
    let length = if cut { asked } else { bytes.len() };
    let non_blocking = non_blocking || socket.non_blocking.get();
    if socket.is_inet() {
        return send_udp(k, socket, bytes, (length, cut), to);
    }
    let receiver = match to {
        Some(to) => {
            let address = Address::parse(socket.domain, to, Use::Connect)?;
            let (name, _) = destination(socket, &address)?;
            let binding = k.net.reach(&name, socket.kind)?;
            binding
                .mailbox
                .clone()
                .expect("a datagram binding has a queue")
        }
        None => {
            let queue = {
                let peer = socket.peer.borrow();
                let peer = peer.as_ref().ok_or(Errno::ENOTCONN)?;
                let weak = peer.mailbox.as_ref().expect("an AF_UNIX peer has a queue");
                weak.upgrade()
            };
            // A peer that is gone refuses once; then the socket is no longer connected.
            let Some(queue) = queue else {
                socket.peer.replace(None);
                set_filter(socket, None);
                return Err(Errno::ECONNREFUSED.into());
            };
            queue
        }
    };
    if length > UNIX_MAX {
        return Err(Errno::EMSGSIZE.into());
    }
    if cut {
        return Err(Errno::EFAULT.into());
    }
    let own = socket
        .mailbox
        .as_ref()
        .expect("a datagram socket has a queue");
    let mut queue = receiver.borrow_mut();
    if queue
        .peer
        .as_ref()
        .is_some_and(|p| !std::ptr::eq(p.as_ptr(), Rc::as_ptr(own)))
    {
        return Err(Errno::EPERM.into());
    }
    if !has_room(&queue, Rc::as_ptr(own), bytes.len()) {
        if non_blocking {
            return Err(Errno::EAGAIN.into());
        }
        return Err(SysError::Block(Wait::Datagrams { queue: queue.id }));
    }
    let len = bytes.len() as u64;
    queue.push(Datagram {
        from: socket.name(),
        sender: Some(Rc::downgrade(own)),
        bytes,
        rights: k.sending_rights.take().unwrap_or_default(),
    });
    let id = queue.id;
    drop(queue);
    k.proc.mem.note_transfer(len);
    k.wake_pipe_waiters(id);
    Ok(len)
}

/// A UDP datagram: delivered to the socket bound where it goes, if any, if that socket
/// takes it and has room; otherwise dropped, and for a connected sender a refusal kept
/// for its next call.
fn send_udp(
    k: &mut Kernel,
    socket: &Socket,
    bytes: Vec<u8>,
    (length, cut): (usize, bool),
    to: Option<&[u8]>,
) -> SysResult {
    // No UDP datagram is longer than its 16-bit length field (`udp_sendmsg`).
    if length > 0xffff {
        return Err(Errno::EMSGSIZE.into());
    }
    let explicit = to.is_some();
    let to = match to {
        // UDP over IPv4 takes AF_UNSPEC as AF_INET (`udp_sendmsg`).
        Some(to) if socket.domain == Domain::Inet && to.len() >= 2 && to[..2] == [0, 0] => {
            let mut as_inet = to.to_vec();
            as_inet[..2].copy_from_slice(&(libc::AF_INET as u16).to_le_bytes());
            Address::parse(socket.domain, &as_inet, Use::Connect)?
        }
        Some(to) => Address::parse(socket.domain, to, Use::Connect)?,
        None => socket
            .peer
            .borrow()
            .as_ref()
            .map(|p| p.address.clone())
            .ok_or(Errno::EDESTADDRREQ)?,
    };
    // A datagram sent to port 0 by name is EINVAL; a socket connected to port 0 sends
    // there, and nothing takes it (`udp_sendmsg`).
    if explicit && to.port() == Some(0) {
        return Err(Errno::EINVAL.into());
    }
    let (name, to) = destination(socket, &to)?;
    let most = if matches!(to, Address::Inet6(_)) {
        UDP_MAX_V6
    } else {
        UDP_MAX_V4
    };
    if length > most {
        return Err(Errno::EMSGSIZE.into());
    }
    if cut {
        return Err(Errno::EFAULT.into());
    }
    // An unbound sender gets a port on the wildcard address.
    autobind(k, socket, &socket.domain.unbound())?;
    let from = source_of(socket, &to);
    let len = bytes.len() as u64;
    k.proc.mem.note_transfer(len);
    let Ok(binding) = k.net.reach(&name, socket.kind) else {
        if socket.peer.borrow().is_some() {
            socket.error.set(Some(Errno::ECONNREFUSED));
        }
        return Ok(len);
    };
    let receiver = binding
        .mailbox
        .clone()
        .expect("a datagram binding has a queue");
    let domain = match binding.address {
        Address::Inet6(_) => Domain::Inet6,
        _ => Domain::Inet,
    };
    let from = super::socket::in_family(&from, domain);
    let mut queue = receiver.borrow_mut();
    let unwanted = queue.peer_address.as_ref().is_some_and(|p| *p != from);
    if unwanted || queue.full(bytes.len()) {
        return Ok(len);
    }
    queue.push(Datagram {
        from,
        sender: None,
        bytes,
        rights: Vec::new(),
    });
    let id = queue.id;
    drop(queue);
    k.wake_pipe_waiters(id);
    Ok(len)
}

/// What a receive got: the bytes copied, the datagram's whole length, and its sender.
pub struct Received {
    pub copied: u64,
    pub length: u64,
    pub from: Address,
}

/// Takes the oldest datagram into `iov` (cut to fit), or with `peek` copies it and leaves
/// it queued; an empty queue blocks or is EAGAIN.
pub fn receive(
    k: &mut Kernel,
    socket: &Socket,
    iov: &[libc::iovec],
    non_blocking: bool,
    peek: bool,
) -> Result<Received, SysError> {
    if let Some(error) = socket.error.take() {
        return Err(error.into());
    }
    let mailbox = socket
        .mailbox
        .as_ref()
        .expect("a datagram socket has a queue");
    let mut queue = mailbox.borrow_mut();
    let id = queue.id;
    let taken = if peek {
        queue.queue.front().map(|d| Datagram {
            from: d.from.clone(),
            sender: None,
            bytes: d.bytes.clone(),
            rights: Vec::new(),
        })
    } else {
        queue.pop()
    };
    drop(queue);
    let Some(datagram) = taken else {
        if non_blocking || socket.non_blocking.get() {
            return Err(Errno::EAGAIN.into());
        }
        return Err(SysError::Block(Wait::Datagrams { queue: id }));
    };
    k.received_rights.extend(datagram.rights);
    let room: usize = iov.iter().map(|v| v.iov_len).sum();
    let copied = room.min(datagram.bytes.len());
    // A copy that reaches memory that cannot be mapped is EFAULT, the datagram taken all
    // the same unless peeked (`udp_recvmsg`, `__unix_dgram_recvmsg`).
    let (asked, cut) = k.proc.mem.transfer_asked();
    let faulted = cut && asked.min(datagram.bytes.len()) > room;
    scatter(iov, 0, &datagram.bytes[..copied]);
    k.proc.mem.note_transfer(copied as u64);
    if !peek {
        k.wake_pipe_waiters(id);
    }
    if faulted {
        return Err(Errno::EFAULT.into());
    }
    Ok(Received {
        copied: copied as u64,
        length: datagram.bytes.len() as u64,
        from: datagram.from,
    })
}

/// A connected datagram socket's peer, for getpeername; a UDP socket connected to port 0
/// has none (`inet_getname`: no destination port, not connected).
pub fn peer_name(socket: &Socket) -> Option<Address> {
    let peer = socket.peer.borrow();
    let address = &peer.as_ref()?.address;
    (address.port() != Some(0)).then(|| address.clone())
}

/// Whether a datagram to the socket's peer could go now (poll's POLLOUT).
pub fn writable(socket: &Socket) -> bool {
    let peer = socket.peer.borrow();
    let queue = peer
        .as_ref()
        .and_then(|p| p.mailbox.as_ref())
        .and_then(std::rc::Weak::upgrade);
    let own = Rc::as_ptr(
        socket
            .mailbox
            .as_ref()
            .expect("a datagram socket has a queue"),
    );
    queue.is_none_or(|q| has_room(&q.borrow(), own, 0))
}
