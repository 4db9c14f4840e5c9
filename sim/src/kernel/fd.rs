//! Guest file descriptors, each naming an open file: a host descriptor that this process
//! owns, and for a pipe end or a connected socket the modelled channel. Descriptors made by
//! dup and fork share the open file (an `Rc`, as Linux's `struct file` is shared), with no
//! host `dup`.
//!
//! A pipe end's host descriptor is one end of a host pipe that carries no data: it answers
//! what needs no model (fstat, F_GETFL and F_SETFL, lseek's ESPIPE, ioctl's ENOTTY) as
//! Linux would. A modelled socket's is a host AF_UNIX socket, likewise, which is bound
//! to the guest's path when the guest binds to one (so the socket file exists) and is
//! never connected.
//!
//! Guest numbers follow Linux: the lowest free number is taken. The guest's 0, 1 and 2
//! are duplicates of the host's, so a guest that closes its stdout leaves the simulator's
//! own stderr report intact.

use std::cell::{Cell, RefCell};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::rc::Rc;

use super::epoll::Interest;
use super::eventfd::Counter;
use super::pipe::Pipe;
use super::socket::{Socket, SocketEnd};
use crate::costs::work::DescriptorKind;

use nix::errno::Errno;

/// /dev/random (1, 8) and /dev/urandom (1, 9), by device number.
const RANDOM_DEVICES: [u64; 2] = [(1 << 8) | 8, (1 << 8) | 9];

/// Linux's default `RLIMIT_NOFILE` soft limit.
pub const MAX_FDS: usize = 1024;

/// An open file description.
pub struct OpenFile {
    pub host: OwnedFd,
    pub channel: Channel,
    /// What moving bytes through it costs the kernel, as the cost model classes it.
    pub kind: DescriptorKind,
}

/// What the bytes read and written through an open file go through.
pub enum Channel {
    /// The host descriptor.
    Host,
    /// A modelled pipe.
    Pipe(PipeEnd),
    /// A modelled socket.
    Socket(Box<Socket>),
    /// A modelled eventfd counter.
    Event(EventEnd),
    /// An epoll instance's interest list.
    Epoll(Rc<RefCell<Interest>>),
    /// A timerfd timer.
    Timer(TimerEnd),
    /// A signalfd: the signals of its mask pending for the task that reads it.
    Signal(SignalEnd),
    /// An internet socket of the host's (`--net host`).
    HostSocket(HostSocket),
    /// /dev/random or /dev/urandom: reads come from the process's seeded stream, as
    /// getrandom's do, so that runs repeat; writes (entropy the guest adds) are taken and
    /// dropped.
    Random,
}

/// A timerfd's timer, shared by the descriptors of its open file.
pub struct TimerEnd {
    pub timer: Rc<RefCell<super::timerfd::Timer>>,
    /// O_NONBLOCK (TFD_NONBLOCK), as for a pipe end.
    pub non_blocking: Cell<bool>,
}

/// A host socket's state that the host descriptor, always non-blocking, does not keep.
pub struct HostSocket {
    /// The guest's O_NONBLOCK.
    pub non_blocking: Cell<bool>,
    /// SOCK_STREAM: a blocking send sends everything.
    pub stream: bool,
    /// A blocking connect waits for the host's answer.
    pub connecting: Cell<bool>,
}

/// A signalfd's mask, which a signalfd4 on the descriptor may change.
pub struct SignalEnd {
    pub mask: Cell<u64>,
    /// O_NONBLOCK (SFD_NONBLOCK), as for a pipe end.
    pub non_blocking: Cell<bool>,
}

/// An eventfd's counter, shared by the descriptors of its open file.
pub struct EventEnd {
    pub counter: Rc<RefCell<Counter>>,
    /// O_NONBLOCK (EFD_NONBLOCK), as for a pipe end.
    pub non_blocking: Cell<bool>,
}

/// One end of a modelled pipe.
#[derive(Clone)]
pub struct PipeEnd {
    pub pipe: Rc<RefCell<Pipe>>,
    pub writer: bool,
    /// O_NONBLOCK, as pipe2 and F_SETFL set it: kept here so that a read or write needs no
    /// host call to learn it (an F_GETFL on every pipe operation was 13 % of a ping-pong's
    /// time, perf).
    pub non_blocking: Cell<bool>,
}

impl OpenFile {
    /// Whether reads and writes go through a modelled pipe or socket, not the host.
    pub fn is_modelled(&self) -> bool {
        !matches!(self.channel, Channel::Host | Channel::Random)
    }

    pub fn pipe(&self) -> Option<&PipeEnd> {
        match &self.channel {
            Channel::Pipe(end) => Some(end),
            _ => None,
        }
    }

    pub fn socket(&self) -> Option<&Socket> {
        match &self.channel {
            Channel::Socket(socket) => Some(socket),
            _ => None,
        }
    }

    /// A connected socket's end of its connection.
    pub fn stream(&self) -> Option<&SocketEnd> {
        self.socket().and_then(|s| s.connection.get())
    }

    /// A modelled channel's own O_NONBLOCK (the host descriptor keeps its flags too).
    pub fn non_blocking(&self) -> Option<&Cell<bool>> {
        match &self.channel {
            Channel::Host | Channel::Random => None,
            Channel::Pipe(end) => Some(&end.non_blocking),
            Channel::Socket(socket) => Some(&socket.non_blocking),
            Channel::Event(end) => Some(&end.non_blocking),
            Channel::Timer(end) => Some(&end.non_blocking),
            Channel::Signal(end) => Some(&end.non_blocking),
            Channel::HostSocket(socket) => Some(&socket.non_blocking),
            Channel::Epoll(_) => None,
        }
    }

    /// The bytes waiting to be read, for a modelled pipe (either end, as Linux's FIONREAD
    /// answers) or socket; `None` for a host file or an eventfd (which has no FIONREAD).
    pub fn queued(&self) -> Option<usize> {
        match &self.channel {
            Channel::Host
            | Channel::Random
            | Channel::Event(_)
            | Channel::Epoll(_)
            | Channel::Timer(_)
            | Channel::Signal(_)
            | Channel::HostSocket(_) => None,
            Channel::Pipe(end) => Some(end.pipe.borrow().available()),
            // A datagram socket's first datagram (`udp_ioctl`, `unix_ioctl`).
            Channel::Socket(socket) => Some(match (&socket.mailbox, socket.connection.get()) {
                (Some(mailbox), _) => mailbox.borrow().queue.front().map_or(0, |d| d.bytes.len()),
                (None, Some(end)) => end.rx.borrow().available(),
                (None, None) => 0,
            }),
        }
    }

    /// A host file, its kind as the host's fstat gives it.
    pub fn host(host: OwnedFd) -> Rc<Self> {
        let stat = nix::sys::stat::fstat(&host);
        let kind = match stat.map(|st| st.st_mode & libc::S_IFMT) {
            Ok(libc::S_IFREG) => DescriptorKind::Regular,
            Ok(libc::S_IFIFO) => DescriptorKind::Pipe,
            Ok(libc::S_IFCHR) => DescriptorKind::CharDevice,
            _ => DescriptorKind::Other,
        };
        let random = stat.is_ok_and(|st| {
            st.st_mode & libc::S_IFMT == libc::S_IFCHR && RANDOM_DEVICES.contains(&st.st_rdev)
        });
        Rc::new(Self {
            host,
            channel: if random {
                Channel::Random
            } else {
                Channel::Host
            },
            kind,
        })
    }

    /// A host file priced as `kind`, whatever it is on the host: the guest's standard
    /// streams as pipes (so that a report does not depend on where the output goes), and a
    /// guest descriptor reopened by name as that descriptor.
    fn of_kind(host: OwnedFd, kind: DescriptorKind) -> Rc<Self> {
        Rc::new(Self {
            host,
            channel: Channel::Host,
            kind,
        })
    }
}

impl Drop for OpenFile {
    /// The last descriptor of a pipe end closes it (a socket's closes itself).
    fn drop(&mut self) {
        if let Channel::Pipe(end) = &self.channel {
            let mut pipe = end.pipe.borrow_mut();
            if end.writer {
                pipe.close_writer();
            } else {
                pipe.close_reader();
            }
        }
    }
}

#[derive(Clone)]
struct Slot {
    file: Rc<OpenFile>,
    cloexec: bool,
}

#[derive(Clone)]
pub struct FdTable {
    slots: Vec<Option<Slot>>,
    /// One past the highest number a descriptor may take: RLIMIT_NOFILE's soft limit.
    pub limit: usize,
}

impl Default for FdTable {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            limit: MAX_FDS,
        }
    }
}

impl FdTable {
    /// A table whose 0, 1 and 2 duplicate the host's standard streams, where those are open.
    pub fn with_host_stdio() -> Self {
        let mut table = Self::default();
        for fd in 0..3 {
            let host = nix::fcntl::fcntl(
                // SAFETY: fds 0-2 of this process are only read here, never closed.
                unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) },
                nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3),
            );
            table.slots.push(host.ok().map(|raw| Slot {
                // SAFETY: the descriptor was just created by F_DUPFD and is owned by nobody else.
                file: OpenFile::of_kind(
                    unsafe { std::os::fd::FromRawFd::from_raw_fd(raw) },
                    DescriptorKind::Pipe,
                ),
                cloexec: false,
            }));
        }
        table
    }

    /// The host descriptor behind guest `fd`.
    pub fn host(&self, fd: u64) -> Result<RawFd, Errno> {
        self.file(fd).map(|f| f.host.as_raw_fd())
    }

    /// The open file guest `fd` names.
    pub fn file(&self, fd: u64) -> Result<Rc<OpenFile>, Errno> {
        self.slots
            .get(fd as usize)
            .and_then(Option::as_ref)
            .map(|s| Rc::clone(&s.file))
            .ok_or(Errno::EBADF)
    }

    /// Installs `host` at the lowest free guest number at or above `min`.
    pub fn install(&mut self, host: OwnedFd, cloexec: bool, min: usize) -> Result<u64, Errno> {
        self.install_file(OpenFile::host(host), cloexec, min)
    }

    /// Installs an open file at the lowest free guest number at or above `min`.
    pub fn install_file(
        &mut self,
        file: Rc<OpenFile>,
        cloexec: bool,
        min: usize,
    ) -> Result<u64, Errno> {
        let free = (min..self.limit)
            .find(|&n| self.slots.get(n).is_none_or(Option::is_none))
            .ok_or(Errno::EMFILE)?;
        self.install_at(free, file, cloexec);
        Ok(free as u64)
    }

    /// Installs an open file at guest number `fd`, closing what was there (dup2).
    pub fn install_at(&mut self, fd: usize, file: Rc<OpenFile>, cloexec: bool) {
        if self.slots.len() <= fd {
            self.slots.resize_with(fd + 1, || None);
        }
        self.slots[fd] = Some(Slot { file, cloexec });
    }

    /// Takes a raw host descriptor the kernel just opened and installs it, of `kind` if
    /// given (a guest descriptor reopened by name), else of the host file's kind.
    pub fn install_raw(
        &mut self,
        raw: RawFd,
        cloexec: bool,
        kind: Option<DescriptorKind>,
    ) -> Result<u64, Errno> {
        // SAFETY: `raw` was just returned by a host syscall and has no other owner.
        let host = unsafe { std::os::fd::FromRawFd::from_raw_fd(raw) };
        let file = match kind {
            Some(kind) => OpenFile::of_kind(host, kind),
            None => OpenFile::host(host),
        };
        self.install_file(file, cloexec, 0)
    }

    pub fn close(&mut self, fd: u64) -> Result<(), Errno> {
        let slot = self.slots.get_mut(fd as usize).ok_or(Errno::EBADF)?;
        slot.take().map(drop).ok_or(Errno::EBADF)
    }

    /// Closes every descriptor marked close-on-exec (execve).
    pub fn close_on_exec(&mut self) {
        for slot in &mut self.slots {
            if slot.as_ref().is_some_and(|s| s.cloexec) {
                *slot = None;
            }
        }
    }

    pub fn cloexec(&self, fd: u64) -> Result<bool, Errno> {
        self.slots
            .get(fd as usize)
            .and_then(Option::as_ref)
            .map(|s| s.cloexec)
            .ok_or(Errno::EBADF)
    }

    pub fn set_cloexec(&mut self, fd: u64, cloexec: bool) -> Result<(), Errno> {
        let slot = self
            .slots
            .get_mut(fd as usize)
            .and_then(Option::as_mut)
            .ok_or(Errno::EBADF)?;
        slot.cloexec = cloexec;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn devnull() -> OwnedFd {
        std::fs::File::open("/dev/null").unwrap().into()
    }

    #[test]
    fn lowest_free_number_is_taken() {
        let mut table = FdTable::default();
        assert_eq!(table.install(devnull(), false, 0), Ok(0));
        assert_eq!(table.install(devnull(), false, 0), Ok(1));
        table.close(0).unwrap();
        assert_eq!(table.install(devnull(), false, 0), Ok(0));
        assert_eq!(table.install(devnull(), false, 5), Ok(5));
        assert_eq!(table.close(7), Err(Errno::EBADF));
        assert_eq!(table.host(3), Err(Errno::EBADF));
    }
}
