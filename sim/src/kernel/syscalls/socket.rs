//! Sockets: socket, socketpair, bind, listen, connect, accept, shutdown and their names, on
//! the modelled network (`kernel::net`, `kernel::socket`). Stream and datagram sockets of
//! AF_UNIX (path and abstract names), AF_INET and AF_INET6 (TCP and UDP on loopback), and
//! AF_UNIX seqpacket ones, are modelled (datagrams in `datagram`); another type stops the
//! run as unsupported. Under `--net host` the internet ones are the host's (`host_net`).
//!
//! Where AF_UNIX and TCP answer differently (a read before connecting, a second connect,
//! a write to an unconnected socket), each gives its own errno, as Linux's `unix_stream_*`
//! and `tcp_*`/`inet_*` functions do.

use std::cell::RefCell;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::rc::Rc;

use nix::errno::Errno;

use super::datagram;
use super::fs::{give, host};
use super::host_net;
use super::pipes::install_pair;
use crate::costs::work::DescriptorKind;
use crate::kernel::fd::{Channel, OpenFile};
use crate::kernel::net::address::{Address, Domain, Use};
use crate::kernel::net::{self, Binding, Listener, Name, FIRST_UNPRIVILEGED_PORT, SOMAXCONN};
use crate::kernel::pipe::Pipe;
use crate::kernel::socket::{Peer, Socket, SocketEnd, SynSent};
use crate::kernel::task::Wait;
use crate::kernel::{Args, Kernel, SysError, SysResult};

/// One past the highest address family Linux knows (`AF_MAX` in linux/socket.h, 6.x).
const AF_MAX: i32 = 46;
/// `SOCK_TYPE_MASK`: the type's bits of socket's second argument.
const SOCK_TYPE_MASK: i32 = 0xf;
/// `sizeof(struct sockaddr_storage)`: the longest address a call takes.
const SOCKADDR_STORAGE_SIZE: u64 = 128;
/// The socket types Linux has (stream, datagram, raw, rdm, seqpacket, dccp, packet).
const KNOWN_TYPES: &[i32] = &[1, 2, 3, 4, 5, 6, 10];
/// The modelled types of each family, with the protocol number each takes besides 0 (the
/// default).
const PROTOCOLS: &[(Domain, i32, i32)] = &[
    (Domain::Unix, libc::SOCK_STREAM, libc::PF_UNIX),
    (Domain::Unix, libc::SOCK_DGRAM, libc::PF_UNIX),
    (Domain::Unix, libc::SOCK_SEQPACKET, libc::PF_UNIX),
    (Domain::Inet, libc::SOCK_STREAM, libc::IPPROTO_TCP),
    (Domain::Inet, libc::SOCK_DGRAM, libc::IPPROTO_UDP),
    (Domain::Inet6, libc::SOCK_STREAM, libc::IPPROTO_TCP),
    (Domain::Inet6, libc::SOCK_DGRAM, libc::IPPROTO_UDP),
];

/// A new open file for a modelled socket, with a host AF_UNIX socket that carries no data
/// (see `kernel::fd`).
fn socket_file(socket: Socket) -> Result<Rc<OpenFile>, Errno> {
    let non_blocking = if socket.non_blocking.get() {
        libc::SOCK_NONBLOCK
    } else {
        0
    };
    // SAFETY: plain syscall; the descriptor it returns is owned at once.
    let raw = host(unsafe {
        libc::socket(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC | non_blocking,
            0,
        )
    } as libc::c_long)?;
    // SAFETY: the host just made it; nobody else owns it.
    let host = unsafe { OwnedFd::from_raw_fd(raw as i32) };
    let kind = match socket.domain {
        Domain::Unix => DescriptorKind::UnixSocket,
        Domain::Inet | Domain::Inet6 => DescriptorKind::InetSocket,
    };
    Ok(Rc::new(OpenFile {
        host,
        channel: Channel::Socket(Box::new(socket)),
        kind,
    }))
}

/// Splits socket's type argument into the type and its SOCK_NONBLOCK and SOCK_CLOEXEC.
fn type_and_flags(kind: i32) -> Result<(i32, bool, bool), Errno> {
    let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    if kind & !SOCK_TYPE_MASK & !flags != 0 {
        return Err(Errno::EINVAL);
    }
    Ok((
        kind & SOCK_TYPE_MASK,
        kind & libc::SOCK_NONBLOCK != 0,
        kind & libc::SOCK_CLOEXEC != 0,
    ))
}

/// The modelled family, type and protocol of a new socket, with Linux's errors for what
/// it would refuse; what Linux has and this model lacks stops the run.
fn new_socket(domain: i32, kind: i32, protocol: i32) -> Result<(Domain, i32), SysError> {
    if !(0..AF_MAX).contains(&domain) {
        return Err(Errno::EAFNOSUPPORT.into());
    }
    let Some(modelled) = Domain::of(domain) else {
        return Err(SysError::Lacking {
            errno: Errno::EAFNOSUPPORT,
            what: format!("a socket of address family {domain}"),
        });
    };
    if !KNOWN_TYPES.contains(&kind) {
        return Err(Errno::ESOCKTNOSUPPORT.into());
    }
    let Some(&(_, _, own)) = PROTOCOLS
        .iter()
        .find(|(d, t, _)| *d == modelled && *t == kind)
    else {
        return Err(SysError::Unsupported(format!(
            "an {} socket of type {kind} (stream and datagram sockets, and AF_UNIX seqpacket ones, are modelled)",
            modelled.name()
        )));
    };
    if protocol != 0 && protocol != own {
        return Err(Errno::EPROTONOSUPPORT.into());
    }
    Ok((modelled, own))
}

/// A new socket of `kind`: a datagram one with its receive queue.
fn new_socket_of(
    k: &mut Kernel,
    domain: Domain,
    kind: i32,
    protocol: i32,
    non_blocking: bool,
) -> Socket {
    let mailbox = (kind == libc::SOCK_DGRAM).then(|| datagram::mailbox(domain, k.alloc_pipe_id()));
    Socket::new(domain, kind, protocol, non_blocking, mailbox)
}

pub fn socket(k: &mut Kernel, a: &Args) -> SysResult {
    if host_net::takes(k, a[0]) {
        return host_net::socket(k, a);
    }
    let (kind, non_blocking, cloexec) = type_and_flags(a[1] as i32)?;
    let (domain, protocol) = new_socket(a[0] as i32, kind, a[2] as i32)?;
    let protocol = if domain == Domain::Unix { 0 } else { protocol };
    let file = socket_file(new_socket_of(k, domain, kind, protocol, non_blocking))?;
    Ok(k.proc.fds.install_file(file, cloexec, 0)?)
}

/// socketpair(domain, type, protocol, sv): AF_UNIX only (another family Linux knows is
/// EOPNOTSUPP).
pub fn socketpair(k: &mut Kernel, a: &Args) -> SysResult {
    let (kind, non_blocking, cloexec) = type_and_flags(a[1] as i32)?;
    let (domain, _) = new_socket(a[0] as i32, kind, a[2] as i32)?;
    if domain != Domain::Unix {
        return Err(Errno::EOPNOTSUPP.into());
    }
    if kind == libc::SOCK_DGRAM {
        let [first, second] =
            [(); 2].map(|()| new_socket_of(k, Domain::Unix, kind, 0, non_blocking));
        for (socket, other) in [(&first, &second), (&second, &first)] {
            let peer = Peer {
                address: Address::Unnamed,
                mailbox: other.mailbox.as_ref().map(Rc::downgrade),
            };
            datagram::set_filter(socket, Some(&peer));
            socket.peer.replace(Some(peer));
        }
        let files = [socket_file(first)?, socket_file(second)?];
        return install_pair(k, files, cloexec, a[3]);
    }
    let ways = connection_ways(k, kind);
    let end = |rx, tx| {
        let socket = Socket::new(Domain::Unix, kind, 0, non_blocking, None);
        socket
            .connection
            .get_or_init(|| SocketEnd::new(rx, tx, Address::Unnamed, Address::Unnamed));
        socket_file(socket)
    };
    let first = end(&ways[0], &ways[1])?;
    let second = end(&ways[1], &ways[0])?;
    install_pair(k, [first, second], cloexec, a[3])
}

/// A connection's two ways, for a `kind` socket: SOCK_SEQPACKET's keep messages whole.
fn connection_ways(k: &mut Kernel, kind: i32) -> [Rc<RefCell<Pipe>>; 2] {
    [k.alloc_pipe_id(), k.alloc_pipe_id()].map(|id| {
        Rc::new(RefCell::new(if kind == libc::SOCK_SEQPACKET {
            Pipe::for_messages(id)
        } else {
            Pipe::new(id)
        }))
    })
}

/// The socket `fd` names (EBADF, or ENOTSOCK for another file).
pub(super) fn socket_of(k: &Kernel, fd: u64) -> Result<Rc<OpenFile>, SysError> {
    let file = k.proc.fds.file(fd)?;
    if file.socket().is_some() {
        return Ok(file);
    }
    Err(Errno::ENOTSOCK.into())
}

/// The address a guest passes at `addr`, `len` bytes long, as Linux's
/// `move_addr_to_kernel` takes it: the length is an int, whose register's upper half is
/// not looked at.
fn address_bytes(k: &mut Kernel, addr: u64, len: u64) -> Result<Vec<u8>, Errno> {
    let len = len as i32;
    if len < 0 || len as u64 > SOCKADDR_STORAGE_SIZE {
        return Err(Errno::EINVAL);
    }
    if len == 0 {
        return Ok(Vec::new());
    }
    k.proc.mem.read_vec(addr, len as usize)
}

/// The internet addresses a socket may be bound to here: the wildcard, and loopback's
/// (anything else is EADDRNOTAVAIL, there being no other device).
fn bindable(address: &Address) -> bool {
    net::loopback(address).is_some()
        || matches!(address, Address::Inet(a) if a.ip().is_unspecified())
}

/// bind(fd, addr, len).
pub fn bind(k: &mut Kernel, a: &Args) -> SysResult {
    if let Some(file) = host_net::of(k, a[0]) {
        return host_net::bind(k, &file, a);
    }
    let file = socket_of(k, a[0])?;
    let socket = file.socket().expect("a socket");
    let bytes = address_bytes(k, a[1], a[2])?;
    let mut address = Address::parse(socket.domain, &bytes, Use::Bind)?;
    // An AF_UNIX socket may be named once, connected or not; an internet one not once it
    // has a port.
    let bound = socket.is_bound() || (socket.is_inet() && socket.connection.get().is_some());
    // A named AF_UNIX socket: an autobind does nothing, an abstract name is EINVAL, and a
    // path is EINVAL once its file is made (EADDRINUSE where one exists): `unix_bind`.
    match &address {
        Address::Unnamed if bound && !socket.is_inet() => return Ok(0),
        Address::Abstract(_) if bound => return Err(Errno::EINVAL.into()),
        _ => {}
    }
    let mut chosen = (false, false);
    let name = match &address {
        Address::Unnamed => {
            let name = k.net.autobind_name(socket.kind)?;
            address = Address::Abstract(name.clone());
            Name::Abstract(name)
        }
        Address::Abstract(name) => Name::Abstract(name.clone()),
        Address::Path(path) => {
            // The host makes the socket file, with the guest's umask and Linux's errors
            // (EADDRINUSE where a file exists).
            // SAFETY: `bytes` is a sockaddr_un of the length passed.
            host(unsafe {
                libc::bind(
                    file.host.as_raw_fd(),
                    bytes.as_ptr().cast(),
                    bytes.len() as u32,
                )
            } as libc::c_long)?;
            let path = std::ffi::OsStr::from_bytes(path);
            if bound {
                nix::unistd::unlink(path)?;
                return Err(Errno::EINVAL.into());
            }
            let st = nix::sys::stat::lstat(path)?;
            Name::Inode {
                dev: st.st_dev,
                ino: st.st_ino,
            }
        }
        Address::Inet(_) | Address::Inet6(_) => {
            let port = address.port().expect("an internet address");
            let privileged = port != 0
                && port < FIRST_UNPRIVILEGED_PORT
                && k.proc.credentials.uid.effective != 0;
            let v6only = socket.flag(libc::IPPROTO_IPV6, libc::IPV6_V6ONLY);
            let mapped = matches!(&address, Address::Inet6(a) if a.ip().to_ipv4_mapped().is_some());
            // Each family checks in its own order (`__inet_bind`, `__inet6_bind`); a
            // v4-mapped address on a v6-only socket makes no sense.
            let checks = if socket.domain == Domain::Inet {
                [
                    (!bindable(&address), Errno::EADDRNOTAVAIL),
                    (privileged, Errno::EACCES),
                    (bound, Errno::EINVAL),
                ]
            } else {
                [
                    (privileged, Errno::EACCES),
                    (bound || (mapped && v6only), Errno::EINVAL),
                    (!bindable(&address), Errno::EADDRNOTAVAIL),
                ]
            };
            if let Some(&(_, errno)) = checks.iter().find(|(failed, _)| *failed) {
                return Err(errno.into());
            }
            let wildcard = address.with_port(0) == socket.domain.unbound();
            if port == 0 {
                let port = k
                    .net
                    .ephemeral(socket.kind, |p| Name::port(&address.with_port(p), v6only))?;
                address = address.with_port(port);
            }
            chosen = (port != 0, !wildcard);
            Name::port(&address, v6only)
        }
    };
    claim(k, socket, name, address)?;
    // What bind chose stays through a disconnect, once the name is claimed.
    socket.chosen.set(chosen);
    Ok(0)
}

/// Gives `socket` the name `address`, claimed in the namespace as `name`.
fn claim(k: &mut Kernel, socket: &Socket, name: Name, address: Address) -> Result<(), Errno> {
    let binding = k.net.bind(Binding {
        name,
        kind: socket.kind,
        mailbox: socket.mailbox.clone(),
        address: address.clone(),
        options: Rc::clone(&socket.options),
        uid: k.proc.credentials.uid.effective,
        listener: Default::default(),
    })?;
    // A socket is bound once: the caller checked that it was not.
    socket.bind_to(binding, address);
    Ok(())
}

/// An unbound internet socket's port for listen or connect: an ephemeral port on `ip`'s
/// family (`source`: the address it will be known by, unless it kept one that bind chose).
pub(super) fn autobind(k: &mut Kernel, socket: &Socket, source: &Address) -> Result<(), Errno> {
    if socket.is_bound() {
        return Ok(());
    }
    let source = &socket.local().unwrap_or_else(|| source.clone());
    let v6only = socket.flag(libc::IPPROTO_IPV6, libc::IPV6_V6ONLY);
    let port = k
        .net
        .ephemeral(socket.kind, |p| Name::port(&source.with_port(p), v6only))?;
    let address = source.with_port(port);
    claim(k, socket, Name::port(&address, v6only), address)
}

/// listen(fd, backlog): a second listen sets the backlog again.
pub fn listen(k: &mut Kernel, a: &Args) -> SysResult {
    if let Some(file) = host_net::of(k, a[0]) {
        return host_net::listen(k, &file, a);
    }
    let file = socket_of(k, a[0])?;
    let socket = file.socket().expect("a socket");
    if socket.is_datagram() {
        return Err(Errno::EOPNOTSUPP.into());
    }
    // Only an unconnected socket listens (`inet_listen`: SS_UNCONNECTED).
    if socket.connection.get().is_some()
        || socket.syn_sent.borrow().is_some()
        || socket.connecting.get()
    {
        return Err(Errno::EINVAL.into());
    }
    // Linux compares the backlog as unsigned: a negative one is the most.
    let backlog = (a[1] as i32 as u32 as usize).min(SOMAXCONN);
    if let Some(listener) = socket.listener() {
        listener.borrow_mut().backlog = backlog;
        complete_waiting(k, &listener);
        k.wake_pipe_waiters(listener.borrow().id);
        return Ok(0);
    }
    if socket.local().is_none() {
        if socket.domain == Domain::Unix {
            return Err(Errno::EINVAL.into());
        }
        autobind(k, socket, &socket.domain.unbound())?;
    }
    let binding = socket.binding().expect("a bound socket has a binding");
    if !k.net.may_listen(&binding) {
        return Err(Errno::EADDRINUSE.into());
    }
    let listener = Listener {
        id: k.alloc_pipe_id(),
        backlog,
        queue: Default::default(),
        options: Rc::clone(&socket.options),
        arrivals: 0,
        waiting: Default::default(),
    };
    let _ = binding.listener.set(Rc::new(RefCell::new(listener)));
    Ok(0)
}

/// Where a connect to `address` goes: the name of the listener it needs.
pub(super) fn destination(socket: &Socket, address: &Address) -> Result<(Name, Address), SysError> {
    match address {
        Address::Unnamed => Err(Errno::EINVAL.into()),
        Address::Abstract(name) => Ok((Name::Abstract(name.clone()), address.clone())),
        Address::Path(path) => {
            let path = std::ffi::OsStr::from_bytes(path);
            let st = nix::sys::stat::stat(path)?;
            // Linux's `unix_find_bsd`: the file must be writable, then a socket.
            nix::unistd::access(path, nix::unistd::AccessFlags::W_OK)?;
            if st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
                return Err(Errno::ECONNREFUSED.into());
            }
            let name = Name::Inode {
                dev: st.st_dev,
                ino: st.st_ino,
            };
            Ok((name, address.clone()))
        }
        Address::Inet(_) | Address::Inet6(_) => {
            let mapped = matches!(address, Address::Inet6(a) if a.ip().to_ipv4_mapped().is_some());
            if mapped && socket.flag(libc::IPPROTO_IPV6, libc::IPV6_V6ONLY) {
                return Err(Errno::ENETUNREACH.into());
            }
            let to = net::loopback(address).ok_or(Errno::ENETUNREACH)?;
            Ok((Name::port(&to, true), to))
        }
    }
}

/// The address a connecting internet socket is known by on loopback, in its own family.
pub(super) fn source_of(socket: &Socket, to: &Address) -> Address {
    let bound_port = socket.local().and_then(|a| a.port()).unwrap_or(0);
    match to {
        Address::Inet(_) => Address::Inet(std::net::SocketAddrV4::new(
            std::net::Ipv4Addr::LOCALHOST,
            bound_port,
        )),
        Address::Inet6(a) if a.ip().to_ipv4_mapped().is_some() => {
            Address::Inet6(std::net::SocketAddrV6::new(
                std::net::Ipv4Addr::LOCALHOST.to_ipv6_mapped(),
                bound_port,
                0,
                0,
            ))
        }
        _ => Address::Inet6(std::net::SocketAddrV6::new(
            std::net::Ipv6Addr::LOCALHOST,
            bound_port,
            0,
            0,
        )),
    }
}

/// An internet address as a socket of `domain` sees it: IPv4 in an AF_INET6 socket is
/// v4-mapped.
pub(super) fn in_family(address: &Address, domain: Domain) -> Address {
    match (address, domain) {
        (Address::Inet(a), Domain::Inet6) => Address::Inet6(std::net::SocketAddrV6::new(
            a.ip().to_ipv6_mapped(),
            a.port(),
            0,
            0,
        )),
        (Address::Inet6(a), Domain::Inet) => match a.ip().to_ipv4_mapped() {
            Some(ip) => Address::Inet(std::net::SocketAddrV4::new(ip, a.port())),
            None => address.clone(),
        },
        _ => address.clone(),
    }
}

/// connect(fd, addr, len) of a stream socket: to a listener, whose accept queue gets the
/// other end; a blocking connect to a full queue waits for room.
pub fn connect(k: &mut Kernel, a: &Args) -> SysResult {
    if let Some(file) = host_net::of(k, a[0]) {
        return host_net::connect(k, &file, a);
    }
    let file = socket_of(k, a[0])?;
    let socket = file.socket().expect("a socket");
    let bytes = address_bytes(k, a[1], a[2])?;
    if socket.is_datagram() {
        return datagram::connect(k, socket, &bytes);
    }
    if socket.is_inet() {
        if bytes.len() < 2 {
            return Err(Errno::EINVAL.into());
        }
        if u16::from_le_bytes([bytes[0], bytes[1]]) == libc::AF_UNSPEC as u16 {
            return Err(SysError::Unsupported(
                "connect to AF_UNSPEC (a TCP disconnect)".into(),
            ));
        }
    }
    if socket.is_inet() {
        // In SYN_SENT a non-blocking connect is EALREADY; a blocking one waits for the
        // connection (`inet_stream_connect`), then reports it made.
        if let Some(id) = socket.waiting_on() {
            return Err(if socket.non_blocking.get() {
                Errno::EALREADY.into()
            } else {
                SysError::Block(Wait::Connect { listener: id })
            });
        }
        // A connect that was refused: the next reports its error, if no call took it
        // before, or that it was aborted (`sock_error`).
        if socket.connection.get().is_none() && socket.connecting.replace(false) {
            let error = socket.error.take().unwrap_or(Errno::ECONNABORTED);
            return Err(error.into());
        }
        // TCP answers from the socket's state before it reads the address: the connect
        // after an EINPROGRESS one reports the connection made; then it is EISCONN.
        if socket.connection.get().is_some() {
            if socket.connecting.replace(false) {
                return Ok(0);
            }
            return Err(Errno::EISCONN.into());
        }
        if socket.listener().is_some() {
            return Err(Errno::EISCONN.into());
        }
    } else if socket.listener().is_some() {
        return Err(Errno::EINVAL.into());
    }
    let address = Address::parse(socket.domain, &bytes, Use::Connect)?;
    let (name, to) = destination(socket, &address)?;
    let binding = match k.net.reach(&name, socket.kind) {
        Ok(binding) => binding,
        Err(Errno::ECONNREFUSED) => return connect_to_self(k, socket, &to),
        Err(errno) => return Err(errno.into()),
    };
    let listener = Rc::clone(binding.listener.get().expect("a listening binding"));
    // AF_UNIX waits for room before it looks at its own state (`unix_stream_connect`).
    if listener.borrow().full() {
        let id = listener.borrow().id;
        return match (socket.non_blocking.get(), socket.is_inet()) {
            (false, _) => Err(SysError::Block(Wait::Connect { listener: id })),
            (true, false) => Err(Errno::EAGAIN.into()),
            // Linux drops the SYN and sends it again later; the socket waits in SYN_SENT.
            (true, true) => {
                autobind(k, socket, &source_of(socket, &to))?;
                socket.syn_sent.replace(Some(SynSent {
                    binding: Rc::downgrade(&binding),
                    to,
                }));
                listener
                    .borrow_mut()
                    .waiting
                    .push_back(Rc::downgrade(&file));
                Err(Errno::EINPROGRESS.into())
            }
        };
    }
    if socket.connection.get().is_some() {
        return Err(Errno::EISCONN.into());
    }
    establish(k, socket, &binding, &listener, to)?;
    connected(socket)
}

/// Makes `socket`'s connection to `to`, which `binding` listens on with `listener`: the
/// server's end joins the accept queue.
fn establish(
    k: &mut Kernel,
    socket: &Socket,
    binding: &Binding,
    listener: &Rc<RefCell<Listener>>,
    to: Address,
) -> Result<(), SysError> {
    if socket.is_inet() {
        autobind(k, socket, &source_of(socket, &to))?;
    }
    let local = match (socket.local(), socket.is_inet()) {
        (Some(bound), true) => source_of(socket, &to).with_port(bound.port().unwrap_or(0)),
        (Some(bound), false) => bound.clone(),
        (None, _) => Address::Unnamed,
    };
    let server_domain = match &binding.address {
        Address::Inet6(_) => Domain::Inet6,
        Address::Inet(_) => Domain::Inet,
        _ => Domain::Unix,
    };
    let server_local = match to {
        Address::Inet(_) | Address::Inet6(_) => in_family(&to, server_domain),
        _ => binding.address.clone(),
    };
    let ways = connection_ways(k, socket.kind);
    let server = Socket::new(server_domain, socket.kind, socket.protocol, false, None);
    *server.options.borrow_mut() = listener.borrow().options.borrow().clone();
    server.rename(server_local.clone());
    let _ = server.connection.set(SocketEnd::new(
        &ways[0],
        &ways[1],
        in_family(&local, server_domain),
        server_local,
    ));
    let id = {
        let mut listener = listener.borrow_mut();
        listener.queue.push_back(socket_file(server)?);
        listener.arrivals += 1;
        listener.id
    };
    let _ = socket
        .connection
        .set(SocketEnd::new(&ways[1], &ways[0], to, local));
    k.wake_pipe_waiters(id);
    Ok(())
}

/// After an accept or a listen made room: the oldest connects waiting in SYN_SENT are
/// made while there is room, as their next SYNs would be (Linux resends one 1, 3, 7… s
/// after the connect; here it is at once). Each one's next connect reports it made. One
/// that cannot be made now (the host out of descriptors) stays waiting, first.
fn complete_waiting(k: &mut Kernel, listener: &Rc<RefCell<Listener>>) {
    while !listener.borrow().full() {
        let Some(waiting) = listener.borrow_mut().waiting.pop_front() else {
            return;
        };
        let Some(file) = waiting.upgrade() else {
            continue;
        };
        let socket = file.socket().expect("a socket");
        let Some(syn) = socket.syn_sent.take() else {
            continue;
        };
        let Some(binding) = syn.binding.upgrade() else {
            continue;
        };
        let to = syn.to.clone();
        if establish(k, socket, &binding, listener, to).is_err() {
            socket.syn_sent.replace(Some(syn));
            listener.borrow_mut().waiting.push_front(waiting);
            return;
        }
        socket.connecting.set(true);
    }
}

/// What connect returns once connected: TCP's non-blocking connect returns EINPROGRESS
/// even on loopback, where the connection is made by then.
fn connected(socket: &Socket) -> SysResult {
    if socket.is_inet() && socket.non_blocking.get() {
        socket.connecting.set(true);
        return Err(Errno::EINPROGRESS.into());
    }
    Ok(0)
}

/// A connect that finds no listener: ECONNREFUSED, except for a TCP socket bound to the
/// very address it connects to, which Linux connects to itself (a simultaneous open).
fn connect_to_self(k: &mut Kernel, socket: &Socket, to: &Address) -> SysResult {
    let bound = socket.local();
    let own = bound
        .as_ref()
        .is_some_and(|b| socket.is_inet() && b.port() == to.port() && (*b == *to || bindable(b)));
    if !own {
        // A non-blocking TCP connect learns of the refusal later, as its RST arrives.
        if socket.is_inet() && socket.non_blocking.get() {
            socket.error.set(Some(Errno::ECONNREFUSED));
            socket.connecting.set(true);
            return Err(Errno::EINPROGRESS.into());
        }
        return Err(Errno::ECONNREFUSED.into());
    }
    let way = Rc::new(RefCell::new(Pipe::new(k.alloc_pipe_id())));
    let _ = socket
        .connection
        .set(SocketEnd::new(&way, &way, to.clone(), to.clone()));
    connected(socket)
}

pub fn accept(k: &mut Kernel, a: &Args) -> SysResult {
    accept4(k, &[a[0], a[1], a[2], 0, 0, 0])
}

/// accept4(fd, addr, len, flags): the oldest connection in the queue, or a wait for one.
pub fn accept4(k: &mut Kernel, a: &Args) -> SysResult {
    if let Some(file) = host_net::of(k, a[0]) {
        return host_net::accept4(k, &file, a);
    }
    let flags = a[3] as i32;
    if flags & !(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) != 0 {
        return Err(Errno::EINVAL.into());
    }
    let file = socket_of(k, a[0])?;
    let socket = file.socket().expect("a socket");
    if socket.is_datagram() {
        return Err(Errno::EOPNOTSUPP.into());
    }
    let listener = socket.listener().ok_or(Errno::EINVAL)?;
    let id = listener.borrow().id;
    let Some(accepted) = listener.borrow_mut().queue.pop_front() else {
        if socket.non_blocking.get() {
            return Err(Errno::EAGAIN.into());
        }
        return Err(SysError::Block(Wait::Accept { listener: id }));
    };
    let fd = match k
        .proc
        .fds
        .install_file(Rc::clone(&accepted), flags & libc::SOCK_CLOEXEC != 0, 0)
    {
        Ok(fd) => fd,
        Err(errno) => {
            listener.borrow_mut().queue.push_front(accepted);
            return Err(errno.into());
        }
    };
    complete_waiting(k, &listener);
    let new = accepted.socket().expect("a socket");
    new.non_blocking.set(flags & libc::SOCK_NONBLOCK != 0);
    if flags & libc::SOCK_NONBLOCK != 0 {
        nix::fcntl::fcntl(
            &accepted.host,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )?;
    }
    k.wake_pipe_waiters(id);
    if a[1] != 0 {
        let peer = accepted
            .stream()
            .expect("accepted sockets are connected")
            .peer
            .clone();
        if let Err(errno) = give_address(k, a[1], a[2], &peer) {
            k.proc.fds.close(fd)?;
            return Err(errno.into());
        }
    }
    Ok(fd)
}

/// The `socklen_t` at `len`: the room a caller gives for a name or an option; negative is
/// EINVAL.
pub(super) fn room_at(k: &mut Kernel, len: u64) -> Result<usize, Errno> {
    let room = k.proc.mem.read_u32(len)? as i32;
    usize::try_from(room).map_err(|_| Errno::EINVAL)
}

/// Writes `address` to `addr`, at most the length at `len`, and stores its full length
/// there, as Linux's `move_addr_to_user`.
pub(super) fn give_address(
    k: &mut Kernel,
    addr: u64,
    len: u64,
    address: &Address,
) -> Result<(), Errno> {
    let room = room_at(k, len)?;
    let bytes = address.encode();
    let n = bytes.len().min(room);
    if n > 0 {
        give(k, addr, &bytes[..n])?;
    }
    give(k, len, &(bytes.len() as u32).to_le_bytes())
}

/// getsockname(fd, addr, len).
pub fn getsockname(k: &mut Kernel, a: &Args) -> SysResult {
    if let Some(file) = host_net::of(k, a[0]) {
        return host_net::name(k, &file, a, false);
    }
    let file = socket_of(k, a[0])?;
    let socket = file.socket().expect("a socket");
    let name = socket.name();
    give_address(k, a[1], a[2], &name)?;
    Ok(0)
}

/// getpeername(fd, addr, len): ENOTCONN until connected.
pub fn getpeername(k: &mut Kernel, a: &Args) -> SysResult {
    if let Some(file) = host_net::of(k, a[0]) {
        return host_net::name(k, &file, a, true);
    }
    let file = socket_of(k, a[0])?;
    let socket = file.socket().expect("a socket");
    let peer = match file.stream() {
        Some(end) if socket.is_inet() && end.closed() => return Err(Errno::ENOTCONN.into()),
        Some(end) => end.peer.clone(),
        None => datagram::peer_name(socket).ok_or(Errno::ENOTCONN)?,
    };
    give_address(k, a[1], a[2], &peer)?;
    Ok(0)
}

/// shutdown(fd, how): SHUT_RD, SHUT_WR or SHUT_RDWR of a connection.
pub fn shutdown(k: &mut Kernel, a: &Args) -> SysResult {
    if let Some(file) = host_net::of(k, a[0]) {
        return host_net::shutdown(k, &file, a);
    }
    let file = socket_of(k, a[0])?;
    let socket = file.socket().expect("a socket");
    let how = a[1] as i32;
    if !(libc::SHUT_RD..=libc::SHUT_RDWR).contains(&how) {
        return Err(Errno::EINVAL.into());
    }
    if socket.is_datagram() {
        return match (socket.is_inet(), socket.peer.borrow().is_some()) {
            (false, _) => Err(SysError::Unsupported(
                "shutdown of an AF_UNIX datagram socket".into(),
            )),
            (true, false) => Err(Errno::ENOTCONN.into()),
            (true, true) => Err(SysError::Unsupported(
                "shutdown of a connected UDP socket".into(),
            )),
        };
    }
    let Some(end) = socket.connection.get() else {
        return match (socket.listener().is_some(), socket.is_inet()) {
            // `unix_shutdown` of an unconnected socket only marks it.
            (_, false) => Ok(0),
            (true, true) if how == libc::SHUT_WR => Ok(0),
            (true, true) => Err(SysError::Unsupported(
                "shutdown of a listening TCP socket's reading side".into(),
            )),
            (false, true) => Err(Errno::ENOTCONN.into()),
        };
    };
    if socket.is_inet() && end.closed() {
        return Err(Errno::ENOTCONN.into());
    }
    if how != libc::SHUT_WR {
        if socket.is_inet() {
            end.read_shut.set(true);
        } else {
            end.shut_read();
        }
    }
    if how != libc::SHUT_RD {
        end.shut_write();
    }
    k.pipes_changed();
    Ok(0)
}
