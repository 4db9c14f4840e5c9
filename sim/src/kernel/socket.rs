//! Modelled sockets: what socket, socketpair and accept make. A stream socket is bound at
//! most once, and then either listens or is connected, at most once each, so each of
//! those is set once (`OnceCell`) and read without borrowing.
//!
//! A connection is a modelled pipe each way (`kernel::pipe`), which blocks the task, not
//! the simulator.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::BTreeMap;
use std::rc::{Rc, Weak};

use super::net::address::{Address, Domain};
use super::net::{Binding, Listener, Mailbox};
use super::pipe::{Changes, Pipe};

pub struct Socket {
    pub domain: Domain,
    /// SOCK_STREAM, SOCK_DGRAM or (AF_UNIX) SOCK_SEQPACKET.
    pub kind: i32,
    pub protocol: i32,
    /// O_NONBLOCK, kept here so that a read or write needs no host call to learn it.
    pub non_blocking: Cell<bool>,
    /// Its name: from bind, or given by connect or accept (`local()`).
    local: RefCell<Option<Address>>,
    /// Its claim on the name in the network namespace, while it lives (`binding()`).
    binding: RefCell<Option<Rc<Binding>>>,
    /// bind chose its port, and its address (Linux's SOCK_BINDPORT_LOCK and
    /// SOCK_BINDADDR_LOCK): a UDP disconnect keeps those, and gives back the rest.
    pub chosen: Cell<(bool, bool)>,
    /// Its connection, once connected.
    pub connection: OnceCell<SocketEnd>,
    /// A TCP connect returned EINPROGRESS, and no connect has reported it made since.
    pub connecting: Cell<bool>,
    /// A non-blocking TCP connect that found the accept queue full, in Linux's SYN_SENT:
    /// an accept or a listen that makes room makes it (`Listener::waiting`).
    pub syn_sent: RefCell<Option<SynSent>>,
    /// A datagram socket's receive queue.
    pub mailbox: Option<Rc<RefCell<Mailbox>>>,
    /// A datagram socket's default destination, set by connect.
    pub peer: RefCell<Option<Peer>>,
    /// An error to report on the next call (`sk_err`): a UDP datagram's port unreachable.
    pub error: Cell<Option<nix::errno::Errno>>,
    /// Options set by setsockopt; a listener's are shared with its queue, whose
    /// connections inherit them.
    pub options: Options,
}

/// Where a connect waiting in SYN_SENT goes: the listener's binding, and the address
/// connected to.
pub struct SynSent {
    pub binding: Weak<Binding>,
    pub to: Address,
}

/// Socket options set by setsockopt, by level and name, as getsockopt gives them back.
pub type Options = Rc<RefCell<BTreeMap<(i32, i32), Vec<u8>>>>;

/// A connected datagram socket's peer: its name, and for AF_UNIX its receive queue (a
/// UDP peer is looked up by name at each send: a socket may bind it later).
pub struct Peer {
    pub address: Address,
    pub mailbox: Option<Weak<RefCell<Mailbox>>>,
}

impl Socket {
    /// A new socket; `mailbox` is a datagram socket's receive queue.
    pub fn new(
        domain: Domain,
        kind: i32,
        protocol: i32,
        non_blocking: bool,
        mailbox: Option<Mailbox>,
    ) -> Self {
        Self {
            domain,
            kind,
            protocol,
            non_blocking: Cell::new(non_blocking),
            local: RefCell::new(None),
            binding: RefCell::new(None),
            chosen: Cell::new((false, false)),
            connection: OnceCell::new(),
            connecting: Cell::new(false),
            syn_sent: RefCell::new(None),
            mailbox: mailbox.map(|m| Rc::new(RefCell::new(m))),
            peer: RefCell::new(None),
            error: Cell::new(None),
            options: Rc::default(),
        }
    }

    /// Its accept queue, once listening.
    pub fn listener(&self) -> Option<Rc<RefCell<Listener>>> {
        self.binding.borrow().as_ref()?.listener.get().cloned()
    }

    /// The name it was bound to or given, if any.
    pub fn local(&self) -> Option<Address> {
        self.local.borrow().clone()
    }

    /// Its claim on its name.
    pub fn binding(&self) -> Option<Rc<Binding>> {
        self.binding.borrow().clone()
    }

    /// Takes `address`, claimed as `binding`.
    pub fn bind_to(&self, binding: Rc<Binding>, address: Address) {
        self.binding.replace(Some(binding));
        self.local.replace(Some(address));
    }

    /// Is known by `address` from now on, its claim unchanged (a UDP socket bound to the
    /// wildcard takes its source address at connect, and gives it back at disconnect).
    pub fn rename(&self, address: Address) {
        self.local.replace(Some(address));
    }

    /// In SYN_SENT to a listener that has closed: the SYN's next resend meets an RST, so
    /// the connect is refused, its ECONNREFUSED pending as a refused non-blocking
    /// connect's. Every call that looks at a connecting socket settles it first.
    pub fn settle_syn_sent(&self) {
        let refused = self
            .syn_sent
            .borrow()
            .as_ref()
            .is_some_and(|syn| syn.binding.strong_count() == 0);
        if refused {
            self.syn_sent.replace(None);
            self.error.set(Some(nix::errno::Errno::ECONNREFUSED));
            self.connecting.set(true);
        }
    }

    /// The id of the listener a socket in SYN_SENT waits on, once a closed one has
    /// refused it (`settle_syn_sent`).
    pub fn waiting_on(&self) -> Option<u64> {
        self.settle_syn_sent();
        let syn = self.syn_sent.borrow();
        let binding = syn.as_ref()?.binding.upgrade()?;
        let listener = binding.listener.get().expect("a listening binding");
        let id = listener.borrow().id;
        Some(id)
    }

    /// Gives its port and claim back (a UDP disconnect of a port bind did not choose),
    /// and its address too unless bind chose it: then it is known by that address with
    /// port 0, and its next port is taken there (Linux keeps `rcv_saddr`).
    pub fn release_port(&self) {
        self.binding.replace(None);
        let kept = self
            .local()
            .filter(|_| self.chosen.get().1)
            .map(|address| address.with_port(0));
        self.local.replace(kept);
    }

    /// Has a name (for an internet socket a port, Linux's `inet_num`, which an accepted
    /// socket has too): bind and IPV6_V6ONLY are refused from then on.
    pub fn is_bound(&self) -> bool {
        self.local()
            .is_some_and(|address| address.port() != Some(0))
    }

    /// Its name, as getsockname gives it.
    pub fn name(&self) -> Address {
        match (self.connection.get(), self.local()) {
            // An AF_UNIX socket bound after it connected (a pair's end) has that name.
            (_, Some(local)) if !self.is_inet() => local,
            (Some(end), _) => end.local.clone(),
            (None, Some(local)) => local,
            (None, None) => self.domain.unbound(),
        }
    }

    /// An int option's value, if set (a flag is set when not 0).
    pub fn int_option(&self, level: i32, name: i32) -> Option<i32> {
        let options = self.options.borrow();
        let value = options.get(&(level, name))?;
        Some(i32::from_le_bytes(value.get(..4)?.try_into().ok()?))
    }

    pub fn flag(&self, level: i32, name: i32) -> bool {
        self.int_option(level, name).is_some_and(|v| v != 0)
    }

    /// Whether it is an internet socket (TCP or UDP): its errors differ from AF_UNIX's.
    pub fn is_inet(&self) -> bool {
        self.domain != Domain::Unix
    }

    pub fn is_datagram(&self) -> bool {
        self.kind == libc::SOCK_DGRAM
    }

    /// SOCK_SEQPACKET: connected, as a stream is, with messages kept whole.
    pub fn is_seqpacket(&self) -> bool {
        self.kind == libc::SOCK_SEQPACKET
    }

    /// SO_LINGER on with a time of 0: a close resets the connection.
    fn linger_zero(&self) -> bool {
        let options = self.options.borrow();
        let linger = options.get(&(libc::SOL_SOCKET, libc::SO_LINGER));
        linger.is_some_and(|v| v.len() == 8 && v[..4] != [0; 4] && v[4..] == [0; 4])
    }
}

impl Drop for Socket {
    /// The last descriptor closes it. Unread data, or SO_LINGER on with no time, makes the
    /// close a reset: the peer reads what it was sent, then ECONNRESET, as Linux's TCP sends
    /// an RST and `unix_release_sock` sets ECONNRESET; an RST after this end's FIN leaves
    /// the peer EPIPE instead (`tcp_reset` in CLOSE_WAIT).
    fn drop(&mut self) {
        if let Some(end) = self.connection.get() {
            let abortive = self.is_inet() && self.linger_zero();
            if end.rx.borrow().available() > 0 || abortive {
                let errno = if end.write_shut.get() && self.is_inet() {
                    nix::errno::Errno::EPIPE
                } else {
                    nix::errno::Errno::ECONNRESET
                };
                end.tx.borrow_mut().set_reset(errno);
            }
            end.release_read();
            end.shut_write();
        }
    }
}

/// One end of a connected stream socket: a pipe each way, this end reading `rx` and
/// writing `tx`.
pub struct SocketEnd {
    pub rx: Rc<RefCell<Pipe>>,
    pub tx: Rc<RefCell<Pipe>>,
    /// The peer's name, as getpeername gives it, and this end's, as getsockname does
    /// (a TCP socket bound to the wildcard is known by its loopback address once connected).
    pub peer: Address,
    pub local: Address,
    /// shutdown's SHUT_RD and SHUT_WR: that way is closed before the last descriptor is.
    /// TCP's SHUT_RD only marks this end (the peer may still send); AF_UNIX's and a close
    /// release the way too (`read_released`), so the peer's writes fail.
    pub read_shut: Cell<bool>,
    pub write_shut: Cell<bool>,
    pub read_released: Cell<bool>,
}

impl SocketEnd {
    pub fn new(
        rx: &Rc<RefCell<Pipe>>,
        tx: &Rc<RefCell<Pipe>>,
        peer: Address,
        local: Address,
    ) -> Self {
        Self {
            rx: Rc::clone(rx),
            tx: Rc::clone(tx),
            peer,
            local,
            read_shut: Cell::new(false),
            write_shut: Cell::new(false),
            read_released: Cell::new(false),
        }
    }

    /// Closes the reading way: reads see end of file, the peer's writes EPIPE (AF_UNIX's
    /// SHUT_RD and a close).
    pub fn shut_read(&self) {
        self.read_shut.set(true);
        self.release_read();
    }

    /// Whether a TCP connection is over: reset, or shut both ways (getpeername and shutdown
    /// then answer ENOTCONN, as for Linux's closed states).
    pub fn closed(&self) -> bool {
        let rx = self.rx.borrow();
        rx.reset != super::pipe::Reset::None || (self.write_shut.get() && rx.writers == 0)
    }

    /// This end reads no more: the way's reader count drops (a close).
    pub fn release_read(&self) {
        if !self.read_released.replace(true) {
            self.read_shut.set(true);
            self.rx.borrow_mut().close_reader();
        }
    }

    /// Closes the writing way: the peer reads end of file, writes here get EPIPE.
    pub fn shut_write(&self) {
        if !self.write_shut.replace(true) {
            self.tx.borrow_mut().close_writer();
        }
    }
}

/// The changes of what `socket` reads, writes and accepts from (see `Pipe::changes`): its
/// connection's way in for its readers and way out for its writers, its listener's
/// arrivals, its datagram queue's.
pub fn changes(socket: &Socket) -> Changes {
    let connection = socket
        .connection
        .get()
        .map_or(Changes::default(), |end| Changes {
            for_readers: end.rx.borrow().changes.for_readers,
            for_writers: end.tx.borrow().changes.for_writers,
        });
    let listener = socket.listener().map_or(Changes::default(), |l| Changes {
        for_readers: l.borrow().arrivals,
        for_writers: 0,
    });
    let mailbox = socket
        .mailbox
        .as_ref()
        .map_or(Changes::default(), |m| m.borrow().changes);
    connection + listener + mailbox
}

impl Drop for Listener {
    /// A listener closed with connections not yet accepted resets them, as Linux's
    /// `inet_csk_listen_stop` and `unix_release_sock` do.
    fn drop(&mut self) {
        for file in &self.queue {
            if let Some(end) = file.socket().and_then(|s| s.connection.get()) {
                end.tx.borrow_mut().set_reset(nix::errno::Errno::ECONNRESET);
            }
        }
    }
}
