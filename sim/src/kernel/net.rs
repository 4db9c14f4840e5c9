//! The simulated network namespace: the names sockets are bound to (internet ports on
//! loopback, AF_UNIX abstract names and socket files) and the sockets listening on them.
//!
//! It has a loopback device and nothing else, as a fresh network namespace with `lo` up:
//! 127.0.0.0/8 and ::1 are local, every other address is unreachable. A connection to a
//! listening socket is made at once and waits in its accept queue, as Linux's loopback
//! handshake completes within the connect call.

pub mod address;

use std::cell::{OnceCell, RefCell};
use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::rc::{Rc, Weak};

use nix::errno::Errno;

use super::fd::OpenFile;
use super::pipe::Changes;
use super::socket::Options;
use address::Address;

/// Linux's default `ip_local_port_range`, from which unbound sockets get a port.
const EPHEMERAL_PORTS: std::ops::RangeInclusive<u16> = 32768..=60999;
/// Ports below this need CAP_NET_BIND_SERVICE (`ip_unprivileged_port_start`).
pub const FIRST_UNPRIVILEGED_PORT: u16 = 1024;
/// Linux's `somaxconn`: the longest accept queue listen may ask for.
pub const SOMAXCONN: usize = 4096;

/// A socket's claim on a name while it lives: the namespace holds it weakly, so the name
/// is free again once the socket is closed.
pub struct Binding {
    pub name: Name,
    /// The socket's type: a port or an abstract name is taken once per type (TCP's and
    /// UDP's ports are apart), and a socket file names one type.
    pub kind: i32,
    /// The bound address, as getsockname gives it.
    pub address: Address,
    /// The socket's options: SO_REUSEADDR and SO_REUSEPORT count as they are when a
    /// conflict is checked, as Linux reads them.
    pub options: Options,
    /// The effective uid of the binder (SO_REUSEPORT shares a port only within one user).
    pub uid: u32,
    /// Set by listen.
    pub listener: OnceCell<Rc<RefCell<Listener>>>,
    /// A datagram socket's receive queue.
    pub mailbox: Option<Rc<RefCell<Mailbox>>>,
}

/// What a binding holds, for conflicts and lookups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Name {
    /// A port, on the addresses of each family the binding covers (`Some(None)`: any).
    Port {
        port: u16,
        v4: Option<Option<Ipv4Addr>>,
        v6: Option<Option<Ipv6Addr>>,
    },
    /// An AF_UNIX abstract name.
    Abstract(Vec<u8>),
    /// An AF_UNIX socket file, by the host inode its bind made.
    Inode { dev: u64, ino: u64 },
}

impl Name {
    /// The port name of an internet address: a v4-mapped IPv6 address is its IPv4
    /// address, and `::` covers IPv4 too unless the socket is IPV6_V6ONLY.
    pub fn port(address: &Address, v6only: bool) -> Self {
        let (ip, port) = match address {
            Address::Inet(a) => (IpAddr::V4(*a.ip()), a.port()),
            Address::Inet6(a) => (IpAddr::V6(*a.ip()), a.port()),
            _ => unreachable!("only internet addresses have ports"),
        };
        let some = |unspecified: bool, ip| {
            if unspecified {
                Some(None)
            } else {
                Some(Some(ip))
            }
        };
        let (v4, v6) = match ip {
            IpAddr::V4(ip) => (some(ip.is_unspecified(), ip), None),
            IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
                Some(mapped) => (some(mapped.is_unspecified(), mapped), None),
                None if ip.is_unspecified() => (if v6only { None } else { Some(None) }, Some(None)),
                None => (None, Some(Some(ip))),
            },
        };
        Name::Port { port, v4, v6 }
    }

    /// Whether two names claim some address in common.
    fn overlaps(&self, other: &Name) -> bool {
        fn meet<T: PartialEq>(a: &Option<Option<T>>, b: &Option<Option<T>>) -> bool {
            match (a, b) {
                (Some(a), Some(b)) => a.is_none() || b.is_none() || a == b,
                _ => false,
            }
        }
        match (self, other) {
            (
                Name::Port { port, v4, v6 },
                Name::Port {
                    port: p,
                    v4: w4,
                    v6: w6,
                },
            ) => port == p && (meet(v4, w4) || meet(v6, w6)),
            _ => self == other,
        }
    }
}

impl Binding {
    /// Whether it takes what is sent to it: a stream socket listening, a datagram socket.
    fn reachable(&self) -> bool {
        self.listener.get().is_some() || self.mailbox.is_some()
    }

    fn reuse_addr(&self) -> bool {
        flag(&self.options, libc::SO_REUSEADDR)
    }

    fn reuse_port(&self) -> bool {
        flag(&self.options, libc::SO_REUSEPORT)
    }
}

fn flag(options: &Options, name: i32) -> bool {
    options
        .borrow()
        .get(&(libc::SOL_SOCKET, name))
        .is_some_and(|v| v.iter().any(|&b| b != 0))
}

/// A datagram socket's receive queue: whole messages, each with its sender's name.
pub struct Mailbox {
    /// Names the wait of a task blocked receiving from it, or sending to it when full.
    pub id: u64,
    pub queue: VecDeque<Datagram>,
    /// The bytes queued, against `limit` (UDP), or the messages (AF_UNIX, `limit` of them
    /// and one more, as `unix_recvq_full`).
    pub bytes: usize,
    pub limit: Limit,
    /// The receiver's peer, once it is connected: AF_UNIX refuses another sender (EPERM),
    /// UDP drops another's datagrams.
    pub peer: Option<std::rc::Weak<RefCell<Mailbox>>>,
    pub peer_address: Option<Address>,
    /// Datagrams in, for its readers, and out, for its senders (see `Pipe::changes`).
    pub changes: Changes,
}

/// How a mailbox fills.
#[derive(Clone, Copy)]
pub enum Limit {
    /// UDP: a datagram that does not fit is dropped.
    Bytes(usize),
    /// AF_UNIX: a sender waits while this many messages are queued and more.
    Messages(usize),
}

pub struct Datagram {
    pub from: Address,
    /// The sender's own receive queue (AF_UNIX: a connected receiver takes only its peer's).
    pub sender: Option<std::rc::Weak<RefCell<Mailbox>>>,
    pub bytes: Vec<u8>,
    /// Open files passed with it (SCM_RIGHTS).
    pub rights: Vec<Rc<OpenFile>>,
}

impl Mailbox {
    pub fn new(id: u64, limit: Limit) -> Self {
        Self {
            id,
            queue: VecDeque::new(),
            bytes: 0,
            limit,
            peer: None,
            peer_address: None,
            changes: Changes::default(),
        }
    }

    /// Whether a sender must wait (AF_UNIX) or its datagram of `len` bytes is dropped (UDP).
    pub fn full(&self, len: usize) -> bool {
        match self.limit {
            Limit::Bytes(limit) => self.bytes + len > limit,
            Limit::Messages(limit) => self.queue.len() > limit,
        }
    }

    pub fn push(&mut self, datagram: Datagram) {
        self.bytes += datagram.bytes.len();
        self.queue.push_back(datagram);
        self.changes.for_readers += 1;
    }

    pub fn pop(&mut self) -> Option<Datagram> {
        let datagram = self.queue.pop_front()?;
        self.bytes -= datagram.bytes.len();
        self.changes.for_writers += 1;
        Some(datagram)
    }
}

/// A listening socket's queue of connections made and not yet accepted.
pub struct Listener {
    /// Names the wait of a task blocked in accept or connect on it.
    pub id: u64,
    /// The queue holds one more than this many (Linux's `sk_ack_backlog > max` test).
    pub backlog: usize,
    /// The server's ends of the connections, ready to be installed by accept.
    pub queue: VecDeque<Rc<OpenFile>>,
    /// The listening socket's options, which its connections inherit.
    pub options: Options,
    /// Connections queued so far: each wakes the listener's readers (see `Pipe::changes`).
    pub arrivals: u64,
    /// Non-blocking connects that found the queue full, oldest first (`Socket::syn_sent`).
    pub waiting: VecDeque<Weak<OpenFile>>,
}

impl Listener {
    pub fn full(&self) -> bool {
        self.queue.len() > self.backlog
    }
}

#[derive(Default)]
pub struct Network {
    bindings: Vec<Weak<Binding>>,
    /// The last port handed out from the ephemeral range.
    last_port: Option<u16>,
    /// The last AF_UNIX autobind name handed out.
    last_autobind: u32,
}

impl Network {
    fn live(&mut self) -> impl Iterator<Item = Rc<Binding>> + '_ {
        self.bindings.retain(|b| b.strong_count() > 0);
        self.bindings.iter().filter_map(Weak::upgrade)
    }

    /// Claims `binding`'s name, unless a live binding holds it: EADDRINUSE unless both
    /// allow reuse (SO_REUSEADDR while the other is not listening, SO_REUSEPORT for the
    /// same user), as `inet_csk_bind_conflict` decides.
    pub fn bind(&mut self, binding: Binding) -> Result<Rc<Binding>, Errno> {
        if self.live().any(|other| conflicts(&binding, &other, false)) {
            return Err(Errno::EADDRINUSE);
        }
        let binding = Rc::new(binding);
        self.bindings.push(Rc::downgrade(&binding));
        Ok(binding)
    }

    /// Whether `binding` may start listening: no other listening binding shares its name,
    /// unless both are SO_REUSEPORT.
    pub fn may_listen(&mut self, binding: &Rc<Binding>) -> bool {
        !self
            .live()
            .any(|other| !Rc::ptr_eq(binding, &other) && conflicts(binding, &other, true))
    }

    /// A free port of the ephemeral range for a `kind` socket named `name_of(port)`;
    /// EADDRINUSE when none is.
    pub fn ephemeral(&mut self, kind: i32, name_of: impl Fn(u16) -> Name) -> Result<u16, Errno> {
        let span = usize::from(EPHEMERAL_PORTS.end() - EPHEMERAL_PORTS.start()) + 1;
        let start = self.last_port.map_or(*EPHEMERAL_PORTS.start(), |p| p + 1);
        let live: Vec<Rc<Binding>> = self.live().collect();
        for step in 0..span {
            let offset = (usize::from(start - EPHEMERAL_PORTS.start()) + step) % span;
            let port = EPHEMERAL_PORTS.start() + offset as u16;
            let name = name_of(port);
            if !live
                .iter()
                .any(|b| b.kind == kind && b.name.overlaps(&name))
            {
                self.last_port = Some(port);
                return Ok(port);
            }
        }
        Err(Errno::EADDRINUSE)
    }

    /// A free abstract name for a `kind` AF_UNIX socket's autobind: five hex digits, as
    /// Linux's.
    pub fn autobind_name(&mut self, kind: i32) -> Result<Vec<u8>, Errno> {
        let live: Vec<Rc<Binding>> = self.live().collect();
        for _ in 0..=0xfffff {
            self.last_autobind = (self.last_autobind + 1) & 0xfffff;
            let name = format!("{:05x}", self.last_autobind).into_bytes();
            let taken = |b: &Rc<Binding>| b.kind == kind && b.name == Name::Abstract(name.clone());
            if !live.iter().any(taken) {
                return Ok(name);
            }
        }
        Err(Errno::ENOSPC)
    }

    /// The name listener `id` listens on.
    pub fn listening_on(&mut self, id: u64) -> Option<Address> {
        self.live()
            .find(|b| b.listener.get().is_some_and(|l| l.borrow().id == id))
            .map(|b| b.address.clone())
    }

    /// The binding a `kind` socket's connection or datagram to `name` reaches: for a port,
    /// the most specific one whose addresses cover the destination; among UDP sockets as
    /// specific (SO_REUSEADDR), the one bound last, which Linux's lookup finds first (it
    /// adds a socket at the head of its hash chain). A socket file of another type is
    /// EPROTOTYPE; nothing there that takes it, ECONNREFUSED.
    pub fn reach(&mut self, name: &Name, kind: i32) -> Result<Rc<Binding>, Errno> {
        let mut best: Option<(Rc<Binding>, bool)> = None;
        for binding in self.live() {
            if !binding.name.overlaps(name) {
                continue;
            }
            if binding.kind != kind {
                if matches!(name, Name::Inode { .. }) {
                    return Err(Errno::EPROTOTYPE);
                }
                continue;
            }
            if !binding.reachable() {
                continue;
            }
            let exact = match &binding.name {
                Name::Port { v4, v6, .. } => {
                    v4.is_some_and(|a| a.is_some()) || v6.is_some_and(|a| a.is_some())
                }
                _ => true,
            };
            let later_wins = kind == libc::SOCK_DGRAM;
            if best.as_ref().is_none_or(|(_, was_exact)| {
                (exact && !was_exact) || (later_wins && exact == *was_exact)
            }) {
                best = Some((binding, exact));
            }
        }
        best.map(|(binding, _)| binding).ok_or(Errno::ECONNREFUSED)
    }
}

/// Whether a new binding may not share `other`'s name (at bind), or a listener may not
/// (at listen, `listening`).
fn conflicts(new: &Binding, other: &Binding, listening: bool) -> bool {
    if new.kind != other.kind || !new.name.overlaps(&other.name) {
        return false;
    }
    let shared_port = new.reuse_port() && other.reuse_port() && new.uid == other.uid;
    if listening {
        return other.listener.get().is_some() && !shared_port;
    }
    let reused = new.reuse_addr() && other.reuse_addr() && other.listener.get().is_none();
    let is_port = matches!(new.name, Name::Port { .. });
    !(is_port && (reused || shared_port))
}

/// Whether an internet destination is on this namespace's loopback; `0.0.0.0` and `::`
/// mean it, as Linux takes them for a connect.
pub fn loopback(address: &Address) -> Option<Address> {
    match address {
        Address::Inet(a) if a.ip().is_unspecified() => Some(Address::Inet(
            std::net::SocketAddrV4::new(Ipv4Addr::LOCALHOST, a.port()),
        )),
        Address::Inet(a) if a.ip().is_loopback() => Some(address.clone()),
        Address::Inet6(a) if a.ip().is_unspecified() => Some(Address::Inet6(
            std::net::SocketAddrV6::new(Ipv6Addr::LOCALHOST, a.port(), 0, 0),
        )),
        Address::Inet6(a) if a.ip().is_loopback() => Some(address.clone()),
        Address::Inet6(a) => match a.ip().to_ipv4_mapped() {
            Some(ip) if ip.is_loopback() || ip.is_unspecified() => Some(address.clone()),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{SocketAddrV4, SocketAddrV6};

    fn v4(ip: Ipv4Addr, port: u16) -> Address {
        Address::Inet(SocketAddrV4::new(ip, port))
    }

    fn binding(address: Address, v6only: bool, reuse_addr: bool) -> Binding {
        let options = Options::default();
        options.borrow_mut().insert(
            (libc::SOL_SOCKET, libc::SO_REUSEADDR),
            vec![reuse_addr as u8],
        );
        Binding {
            name: Name::port(&address, v6only),
            kind: libc::SOCK_STREAM,
            address,
            options,
            uid: 1000,
            listener: OnceCell::new(),
            mailbox: None,
        }
    }

    #[test]
    fn a_port_is_taken_once_unless_reused() {
        let mut net = Network::default();
        let any = v4(Ipv4Addr::UNSPECIFIED, 8080);
        let first = net.bind(binding(any.clone(), false, true)).unwrap();
        let local = v4(Ipv4Addr::LOCALHOST, 8080);
        assert_eq!(
            net.bind(binding(local.clone(), false, false)).err(),
            Some(Errno::EADDRINUSE)
        );
        let second = net.bind(binding(local, false, true)).unwrap();
        // A wildcard IPv6 socket covers IPv4 unless it is IPV6_V6ONLY.
        let v6 = Address::Inet6(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 8080, 0, 0));
        assert!(net.bind(binding(v6.clone(), false, false)).is_err());
        assert!(net.bind(binding(v6, true, false)).is_ok());
        drop((first, second));
        assert!(net
            .bind(binding(v4(Ipv4Addr::LOCALHOST, 8080), false, false))
            .is_ok());
    }

    #[test]
    fn ephemeral_ports_skip_taken_ones() {
        let mut net = Network::default();
        let held = net
            .bind(binding(v4(Ipv4Addr::LOCALHOST, 32768), false, false))
            .unwrap();
        let name = |port| Name::port(&v4(Ipv4Addr::LOCALHOST, port), false);
        assert_eq!(net.ephemeral(libc::SOCK_STREAM, name), Ok(32769));
        assert_eq!(net.ephemeral(libc::SOCK_STREAM, name), Ok(32770));
        drop(held);
    }
}
