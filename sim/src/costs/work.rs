//! Kernel work by class: what a syscall costs inside the kernel beyond a null call, whichever
//! ring its caller runs in. One `syscall_base` cannot fit both a write to /dev/null (about 50
//! cycles beyond the null call on this project's machine kind) and a pread from the page
//! cache (about 240), so each class has its own base per call and its own cost per byte
//! moved.

use serde::Serialize;

/// A class of syscalls that cost alike in the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkClass {
    /// getpid, getuid, sched_yield…: nothing beyond the null call.
    Identity,
    /// read, readv, pread64 of a regular file (the page cache).
    FileRead,
    /// write, writev, pwrite64 of a regular file.
    FileWrite,
    /// Reads of a pipe. The guest's standard streams count as pipes, whatever they are on
    /// the host, so that a report does not depend on where its output goes.
    PipeRead,
    PipeWrite,
    /// Sends on an internet socket (loopback TCP; UDP priced alike): write, send, sendto,
    /// sendmsg and their kin.
    TcpSend,
    /// Receives from an internet socket.
    TcpReceive,
    /// Sends on an AF_UNIX socket.
    UnixSend,
    /// Receives from an AF_UNIX socket.
    UnixReceive,
    /// connect: on loopback TCP the handshake is done within the call.
    Connect,
    /// accept and accept4.
    Accept,
    /// epoll_wait and epoll_pwait: a base per call and a cost per byte of the ready events'
    /// records copied out (12 bytes an event), so that the per-byte term prices each ready
    /// event's poll and copy.
    EpollWait,
    /// Reads and writes of character devices: /dev/null, /dev/zero, /dev/urandom.
    CharDevice,
    /// Name lookups: open, stat by name and their kin.
    OpenStat,
    /// Calls on a descriptor that move no data: close, dup, lseek, fstat.
    Descriptor,
    /// brk, mmap, munmap, mremap, mprotect, madvise.
    Memory,
    /// fork, clone, execve, exit, wait: the syscalls' own part (process creation's bulk is
    /// the creation work, from the Create Proc column).
    Process,
    Futex,
    /// Not a syscall: a page fault the kernel resolves, a page's first touch (demand-zero)
    /// or a write to a page shared since a fork (copy on write), the CPU's or the kernel's
    /// own copy to user memory. Its whole cost, entry and exit too: the mode does not
    /// change it.
    PageFault,
    /// Every other syscall.
    Other,
}

/// Every class with its name in cost-model files and reports (where JSON lists them by
/// name).
pub const CLASSES: [(WorkClass, &str); 20] = [
    (WorkClass::Identity, "identity"),
    (WorkClass::FileRead, "file_read"),
    (WorkClass::FileWrite, "file_write"),
    (WorkClass::PipeRead, "pipe_read"),
    (WorkClass::PipeWrite, "pipe_write"),
    (WorkClass::TcpSend, "tcp_send"),
    (WorkClass::TcpReceive, "tcp_receive"),
    (WorkClass::UnixSend, "unix_send"),
    (WorkClass::UnixReceive, "unix_receive"),
    (WorkClass::Connect, "connect"),
    (WorkClass::Accept, "accept"),
    (WorkClass::EpollWait, "epoll_wait"),
    (WorkClass::CharDevice, "char_device"),
    (WorkClass::OpenStat, "open_stat"),
    (WorkClass::Descriptor, "descriptor"),
    (WorkClass::Memory, "memory"),
    (WorkClass::Process, "process"),
    (WorkClass::Futex, "futex"),
    (WorkClass::PageFault, "page_fault"),
    (WorkClass::Other, "other"),
];

/// The classes of socket calls and the event loop's waits, whose share a report shows.
pub const SOCKET_CLASSES: [WorkClass; 7] = [
    WorkClass::TcpSend,
    WorkClass::TcpReceive,
    WorkClass::UnixSend,
    WorkClass::UnixReceive,
    WorkClass::Connect,
    WorkClass::Accept,
    WorkClass::EpollWait,
];

impl WorkClass {
    pub const COUNT: usize = CLASSES.len();

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        CLASSES[self.index()].1
    }

    pub fn by_name(name: &str) -> Option<Self> {
        CLASSES.iter().find(|(_, n)| *n == name).map(|(c, _)| *c)
    }
}

/// What a descriptor is, as far as the cost of moving bytes through it goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DescriptorKind {
    Regular,
    Pipe,
    CharDevice,
    /// A modelled AF_INET or AF_INET6 socket.
    InetSocket,
    /// A modelled AF_UNIX socket.
    UnixSocket,
    /// Directories, the host's sockets and the rest: priced as `Other`.
    Other,
}

/// Which way bytes move.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Read,
    Write,
}

/// The class of a transfer through a descriptor of `kind`: a table, by kind and direction.
pub fn transfer_class(kind: DescriptorKind, direction: Direction) -> WorkClass {
    use DescriptorKind as K;
    use Direction::{Read, Write};
    const TABLE: [(DescriptorKind, Direction, WorkClass); 10] = [
        (K::Regular, Read, WorkClass::FileRead),
        (K::Regular, Write, WorkClass::FileWrite),
        (K::Pipe, Read, WorkClass::PipeRead),
        (K::Pipe, Write, WorkClass::PipeWrite),
        (K::CharDevice, Read, WorkClass::CharDevice),
        (K::CharDevice, Write, WorkClass::CharDevice),
        (K::InetSocket, Read, WorkClass::TcpReceive),
        (K::InetSocket, Write, WorkClass::TcpSend),
        (K::UnixSocket, Read, WorkClass::UnixReceive),
        (K::UnixSocket, Write, WorkClass::UnixSend),
    ];
    TABLE
        .iter()
        .find(|(k, d, _)| *k == kind && *d == direction)
        .map_or(WorkClass::Other, |(_, _, class)| *class)
}

/// Calls and bytes of one class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ClassCount {
    pub calls: u64,
    pub bytes: u64,
}

/// Calls and bytes by class: what the kernel-work estimate reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkCounts(pub [ClassCount; WorkClass::COUNT]);

impl WorkCounts {
    pub fn get(&self, class: WorkClass) -> ClassCount {
        self.0[class.index()]
    }

    pub fn add_call(&mut self, class: WorkClass) {
        self.0[class.index()].calls += 1;
    }

    /// For a class counted elsewhere (`PageFault`: by the address space).
    pub fn set(&mut self, class: WorkClass, count: ClassCount) {
        self.0[class.index()] = count;
    }

    pub fn add_bytes(&mut self, class: WorkClass, bytes: u64) {
        self.0[class.index()].bytes += bytes;
    }

    /// Element by element, as `Tally::zip` combines readings.
    pub fn zip(self, other: Self, f: fn(u64, u64) -> u64) -> Self {
        Self(std::array::from_fn(|i| ClassCount {
            calls: f(self.0[i].calls, other.0[i].calls),
            bytes: f(self.0[i].bytes, other.0[i].bytes),
        }))
    }

    /// Bytes moved between user memory and the kernel: every class's but `PageFault`'s,
    /// whose bytes are pages mapped, not copied.
    pub fn bytes_copied(&self) -> u64 {
        let faults = self.get(WorkClass::PageFault).bytes;
        self.0.iter().map(|c| c.bytes).sum::<u64>() - faults
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_class_table_is_in_declaration_order() {
        for (i, (class, name)) in CLASSES.iter().enumerate() {
            assert_eq!(class.index(), i, "{name}");
            assert_eq!(WorkClass::by_name(name), Some(*class));
        }
    }

    #[test]
    fn transfers_are_classed_by_descriptor_and_direction() {
        use DescriptorKind as K;
        assert_eq!(
            transfer_class(K::Regular, Direction::Read),
            WorkClass::FileRead
        );
        assert_eq!(
            transfer_class(K::Pipe, Direction::Write),
            WorkClass::PipeWrite
        );
        assert_eq!(
            transfer_class(K::CharDevice, Direction::Read),
            WorkClass::CharDevice
        );
        assert_eq!(transfer_class(K::Other, Direction::Read), WorkClass::Other);
    }
}
