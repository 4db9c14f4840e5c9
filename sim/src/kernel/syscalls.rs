//! Syscall handlers, by area. Each takes the kernel and the raw arguments.

pub mod compat;
pub mod datagram;
pub mod epoll;
pub mod eventfd;
pub mod fs;
pub mod host_net;
pub mod ids;
pub mod mm;
pub mod pipes;
pub mod poll;
pub mod proc;
pub mod signal;
pub mod signalfd;
pub mod socket;
pub mod socket_io;
pub mod sockopt;
pub mod sync;
pub mod time;
pub mod timerfd;
pub mod xattr;

use syscalls::x86_64::Sysno;

/// The Linux name of syscall `nr`, or its number when it has none.
pub fn name(nr: u64) -> String {
    match Sysno::new(nr as usize) {
        Some(sysno) => format!("{} ({nr})", sysno.name()),
        None => format!("#{nr}"),
    }
}

/// The bare Linux name of syscall `nr`, for counts by name.
pub fn short_name(nr: u64) -> String {
    match Sysno::new(nr as usize) {
        Some(sysno) => sysno.name().to_string(),
        None => format!("syscall_{nr}"),
    }
}
