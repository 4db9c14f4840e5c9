//! The x86-64 syscall table: one row per implemented number.
//!
//! A number with no row is unsupported: the run stops naming it, or with
//! `--on-unsupported-syscall enosys` it returns -ENOSYS. `NoSys` rows are deliberate
//! ENOSYS answers that Linux programs are built to expect.

use std::sync::OnceLock;

use syscalls::x86_64::Sysno;

use super::syscalls::{fs, mm, proc, signal, time};
use super::{Args, Kernel, SysResult};

pub type HandlerFn = fn(&mut Kernel, &Args) -> SysResult;

#[derive(Clone, Copy)]
pub enum Handler {
    Call(HandlerFn),
    /// Answered with ENOSYS on purpose (a feature glibc probes for and can do without).
    NoSys,
}

/// Which column of the cost model a syscall's ring crossing is charged from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A system call round trip.
    AbiCall,
    /// Giving up the CPU to another thread.
    Yield,
}

/// Whether a syscall does kernel work beyond what a null call does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Work {
    /// Nothing beyond the null call that the crossing cost already includes.
    Null,
    /// The cost model's per-syscall base.
    Base,
}

pub struct Row {
    pub sysno: Sysno,
    pub event: Event,
    pub work: Work,
    pub handler: Handler,
}

const fn call(sysno: Sysno, handler: HandlerFn) -> Row {
    Row {
        sysno,
        event: Event::AbiCall,
        work: Work::Base,
        handler: Handler::Call(handler),
    }
}

/// A call whose whole work is a null call's: identity and trivial queries.
const fn null(sysno: Sysno, handler: HandlerFn) -> Row {
    Row {
        sysno,
        event: Event::AbiCall,
        work: Work::Null,
        handler: Handler::Call(handler),
    }
}

pub static TABLE: &[Row] = &[
    // files and descriptors
    call(Sysno::read, fs::read),
    call(Sysno::write, fs::write),
    call(Sysno::readv, fs::readv),
    call(Sysno::writev, fs::writev),
    call(Sysno::pread64, fs::pread64),
    call(Sysno::pwrite64, fs::pwrite64),
    call(Sysno::open, fs::open),
    call(Sysno::openat, fs::openat),
    call(Sysno::creat, fs::creat),
    call(Sysno::close, fs::close),
    call(Sysno::lseek, fs::lseek),
    call(Sysno::dup, fs::dup),
    call(Sysno::dup2, fs::dup2),
    call(Sysno::dup3, fs::dup3),
    call(Sysno::fcntl, fs::fcntl),
    call(Sysno::pipe, fs::pipe),
    call(Sysno::pipe2, fs::pipe2),
    call(Sysno::ioctl, fs::ioctl),
    call(Sysno::getdents64, fs::getdents64),
    call(Sysno::sendfile, fs::sendfile),
    call(Sysno::ftruncate, fs::ftruncate),
    call(Sysno::fsync, fs::fsync),
    call(Sysno::fdatasync, fs::fsync),
    call(Sysno::fadvise64, fs::fadvise64),
    // file status and names
    call(Sysno::stat, fs::stat),
    call(Sysno::lstat, fs::lstat),
    call(Sysno::fstat, fs::fstat),
    call(Sysno::newfstatat, fs::newfstatat),
    call(Sysno::statx, fs::statx),
    call(Sysno::statfs, fs::statfs),
    call(Sysno::fstatfs, fs::fstatfs),
    call(Sysno::access, fs::access),
    call(Sysno::faccessat, fs::faccessat),
    call(Sysno::faccessat2, fs::faccessat2),
    call(Sysno::readlink, fs::readlink),
    call(Sysno::readlinkat, fs::readlinkat),
    call(Sysno::getcwd, fs::getcwd),
    call(Sysno::chdir, fs::chdir),
    call(Sysno::fchdir, fs::fchdir),
    call(Sysno::unlink, fs::unlink),
    call(Sysno::unlinkat, fs::unlinkat),
    call(Sysno::rename, fs::rename),
    call(Sysno::renameat, fs::renameat),
    call(Sysno::renameat2, fs::renameat2),
    call(Sysno::mkdir, fs::mkdir),
    call(Sysno::mkdirat, fs::mkdirat),
    call(Sysno::rmdir, fs::rmdir),
    call(Sysno::link, fs::link),
    call(Sysno::linkat, fs::linkat),
    call(Sysno::symlink, fs::symlink),
    call(Sysno::symlinkat, fs::symlinkat),
    call(Sysno::chmod, fs::chmod),
    call(Sysno::fchmod, fs::fchmod),
    call(Sysno::fchmodat, fs::fchmodat),
    call(Sysno::fchown, fs::fchown),
    call(Sysno::fchownat, fs::fchownat),
    call(Sysno::lchown, fs::lchown),
    call(Sysno::chown, fs::chown),
    call(Sysno::utimensat, fs::utimensat),
    null(Sysno::umask, fs::umask),
    // memory
    call(Sysno::brk, mm::brk),
    call(Sysno::mmap, mm::mmap),
    call(Sysno::munmap, mm::munmap),
    call(Sysno::mremap, mm::mremap),
    call(Sysno::mprotect, mm::mprotect),
    call(Sysno::madvise, mm::madvise),
    // process set-up and identity
    call(Sysno::arch_prctl, proc::arch_prctl),
    call(Sysno::prctl, proc::prctl),
    null(Sysno::set_tid_address, proc::set_tid_address),
    call(Sysno::set_robust_list, proc::set_robust_list),
    Row {
        sysno: Sysno::rseq,
        event: Event::AbiCall,
        work: Work::Null,
        handler: Handler::NoSys,
    },
    call(Sysno::prlimit64, proc::prlimit64),
    call(Sysno::getrlimit, proc::getrlimit),
    call(Sysno::uname, proc::uname),
    call(Sysno::sysinfo, proc::sysinfo),
    null(Sysno::getpid, proc::getpid),
    null(Sysno::getppid, proc::getppid),
    null(Sysno::gettid, proc::gettid),
    null(Sysno::getuid, proc::getuid),
    null(Sysno::geteuid, proc::geteuid),
    null(Sysno::getgid, proc::getgid),
    null(Sysno::getegid, proc::getegid),
    null(Sysno::getpgrp, proc::getpgrp),
    call(Sysno::getpgid, proc::getpgid),
    call(Sysno::getgroups, proc::getgroups),
    call(Sysno::getrandom, proc::getrandom),
    call(Sysno::futex, proc::futex),
    call(Sysno::wait4, proc::wait4),
    call(Sysno::exit, proc::exit),
    call(Sysno::exit_group, proc::exit),
    // time
    call(Sysno::clock_gettime, time::clock_gettime),
    call(Sysno::clock_getres, time::clock_getres),
    call(Sysno::gettimeofday, time::gettimeofday),
    call(Sysno::time, time::time),
    call(Sysno::nanosleep, time::nanosleep),
    call(Sysno::clock_nanosleep, time::clock_nanosleep),
    call(Sysno::times, time::times),
    call(Sysno::getrusage, time::getrusage),
    // signals and scheduling
    call(Sysno::rt_sigaction, signal::rt_sigaction),
    call(Sysno::rt_sigprocmask, signal::rt_sigprocmask),
    call(Sysno::sigaltstack, signal::sigaltstack),
    call(Sysno::alarm, signal::alarm),
    call(Sysno::kill, signal::kill),
    call(Sysno::tgkill, signal::tgkill),
    call(Sysno::tkill, signal::tkill),
    // The yield column already includes the scheduler's work.
    Row {
        sysno: Sysno::sched_yield,
        event: Event::Yield,
        work: Work::Null,
        handler: Handler::Call(proc::sched_yield),
    },
];

/// The highest x86-64 syscall number, plus one.
const NR_LIMIT: usize = 512;

/// The row for `nr`, if the table has one.
pub fn lookup(nr: u64) -> Option<&'static Row> {
    static INDEX: OnceLock<Vec<Option<&'static Row>>> = OnceLock::new();
    let index = INDEX.get_or_init(|| {
        let mut index = vec![None; NR_LIMIT];
        for row in TABLE {
            index[row.sysno.id() as usize] = Some(row);
        }
        index
    });
    index.get(nr as usize).copied().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_unique_and_in_range() {
        let mut seen = std::collections::HashSet::new();
        for row in TABLE {
            assert!((row.sysno.id() as usize) < NR_LIMIT);
            assert!(
                seen.insert(row.sysno.id()),
                "{} listed twice",
                row.sysno.name()
            );
        }
    }

    #[test]
    fn lookup_finds_rows_by_number() {
        assert_eq!(lookup(39).map(|r| r.sysno), Some(Sysno::getpid));
        assert_eq!(lookup(24).map(|r| r.event), Some(Event::Yield));
        assert!(lookup(9999).is_none());
    }
}
