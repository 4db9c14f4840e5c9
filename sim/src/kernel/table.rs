//! The x86-64 syscall table: one row per implemented number, with its handler, its cost
//! and its signature (which the oracle's comparison and the report's digest read).
//!
//! A number with no row is unsupported: the run stops naming it, or with
//! `--on-unsupported-syscall enosys` it returns -ENOSYS. `NoSys` rows are deliberate
//! ENOSYS answers that Linux programs are built to expect.

use std::sync::OnceLock;

use syscalls::x86_64::Sysno;

use super::signature::{self, Commands, Rule, Signature};
use super::syscalls::{
    epoll, eventfd, fs, ids, mm, pipes, poll, proc, signal, signalfd, socket, socket_io, sockopt,
    sync, time, timerfd, xattr,
};
use super::{Args, Kernel, SysResult};
use crate::costs::work::{Direction, WorkClass};

pub type HandlerFn = fn(&mut Kernel, &Args) -> SysResult;

#[derive(Clone, Copy)]
pub enum Handler {
    Call(HandlerFn),
    /// Answered with ENOSYS on purpose (a feature glibc probes for and can do without).
    NoSys,
}

/// The kernel work a syscall does beyond what a null call does, as a cost-model class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Work {
    Fixed(WorkClass),
    /// Bytes through the descriptor in argument 0: the class is its kind's, this way.
    Transfer(Direction),
}

pub struct Row {
    pub sysno: Sysno,
    pub work: Work,
    pub handler: Handler,
    pub signature: Signature,
}

/// A call with its arguments' kinds (see [`Signature`]), its result compared exactly.
const fn call(sysno: Sysno, args: &'static str, handler: HandlerFn) -> Row {
    Row {
        sysno,
        work: Work::Fixed(WorkClass::Other),
        handler: Handler::Call(handler),
        signature: Signature {
            args,
            commands: None,
            result: Rule::Exact,
        },
    }
}

/// A call whose whole work is a null call's: identity and trivial queries.
const fn null(sysno: Sysno, args: &'static str, handler: HandlerFn) -> Row {
    Row {
        work: Work::Fixed(WorkClass::Identity),
        ..call(sysno, args, handler)
    }
}

/// A call declined with ENOSYS on purpose.
const fn declined(sysno: Sysno, args: &'static str) -> Row {
    Row {
        sysno,
        work: Work::Fixed(WorkClass::Identity),
        handler: Handler::NoSys,
        signature: Signature {
            args,
            commands: None,
            result: Rule::Declined,
        },
    }
}

impl Row {
    /// The same row, its kernel work of `class`.
    const fn work(self, class: WorkClass) -> Row {
        Row {
            work: Work::Fixed(class),
            ..self
        }
    }

    /// The same row, moving bytes through its descriptor `direction`.
    const fn transfer(self, direction: Direction) -> Row {
        Row {
            work: Work::Transfer(direction),
            ..self
        }
    }

    /// The same row, its result compared under `result`.
    const fn returning(self, result: Rule) -> Row {
        Row {
            signature: Signature {
                result,
                ..self.signature
            },
            ..self
        }
    }

    /// The same row, its arguments following its command as `commands` says.
    const fn by_command(self, commands: &'static Commands) -> Row {
        Row {
            signature: Signature {
                commands: Some(commands),
                ..self.signature
            },
            ..self
        }
    }
}

/// Every syscall the simulator serves. `ioctl`'s and `prctl`'s argument after the request
/// is a pointer for the requests programs make here (TCGETS, PR_SET_NAME).
pub static TABLE: &[Row] = &[
    // files and descriptors
    call(Sysno::read, "vpv", fs::read).transfer(Direction::Read),
    call(Sysno::write, "vpv", fs::write).transfer(Direction::Write),
    call(Sysno::readv, "vpv", fs::readv).transfer(Direction::Read),
    call(Sysno::writev, "vpv", fs::writev).transfer(Direction::Write),
    call(Sysno::pread64, "vpvv", fs::pread64).transfer(Direction::Read),
    call(Sysno::pwrite64, "vpvv", fs::pwrite64).transfer(Direction::Write),
    call(Sysno::open, "pvv", fs::open).work(WorkClass::OpenStat),
    call(Sysno::openat, "vpvv", fs::openat).work(WorkClass::OpenStat),
    call(Sysno::creat, "pv", fs::creat).work(WorkClass::OpenStat),
    call(Sysno::close, "v", fs::close).work(WorkClass::Descriptor),
    call(Sysno::lseek, "vvv", fs::lseek).work(WorkClass::Descriptor),
    call(Sysno::dup, "v", fs::dup).work(WorkClass::Descriptor),
    call(Sysno::dup2, "vv", fs::dup2).work(WorkClass::Descriptor),
    call(Sysno::dup3, "vvv", fs::dup3).work(WorkClass::Descriptor),
    call(Sysno::fcntl, "vvv", fs::fcntl).by_command(&signature::FCNTL),
    call(Sysno::pipe, "p", pipes::pipe),
    call(Sysno::pipe2, "pv", pipes::pipe2),
    call(Sysno::eventfd, "v", eventfd::eventfd),
    call(Sysno::eventfd2, "vv", eventfd::eventfd2),
    call(Sysno::timerfd_create, "vv", timerfd::timerfd_create),
    call(Sysno::timerfd_settime, "vvpp", timerfd::timerfd_settime),
    call(Sysno::timerfd_gettime, "vp", timerfd::timerfd_gettime),
    call(Sysno::signalfd, "vpv", signalfd::signalfd),
    call(Sysno::signalfd4, "vpvv", signalfd::signalfd4),
    call(Sysno::epoll_create, "v", epoll::epoll_create),
    call(Sysno::epoll_create1, "v", epoll::epoll_create1),
    call(Sysno::epoll_ctl, "vvvp", epoll::epoll_ctl),
    call(Sysno::epoll_wait, "vpvv", epoll::epoll_wait).work(WorkClass::EpollWait),
    call(Sysno::epoll_pwait, "vpvvpv", epoll::epoll_pwait).work(WorkClass::EpollWait),
    call(Sysno::ioctl, "vvp", fs::ioctl),
    call(Sysno::getdents64, "vpv", fs::getdents64).work(WorkClass::OpenStat),
    call(Sysno::sendfile, "vvpv", fs::sendfile).transfer(Direction::Write),
    call(Sysno::ftruncate, "vv", fs::ftruncate),
    call(Sysno::fsync, "v", fs::fsync),
    call(Sysno::fdatasync, "v", fs::fsync),
    call(Sysno::fadvise64, "vvvv", fs::fadvise64),
    // file status and names
    call(Sysno::stat, "pp", fs::stat).work(WorkClass::OpenStat),
    call(Sysno::lstat, "pp", fs::lstat).work(WorkClass::OpenStat),
    call(Sysno::fstat, "vp", fs::fstat).work(WorkClass::Descriptor),
    call(Sysno::newfstatat, "vppv", fs::newfstatat).work(WorkClass::OpenStat),
    call(Sysno::statx, "vpvvp", fs::statx).work(WorkClass::OpenStat),
    call(Sysno::statfs, "pp", fs::statfs).work(WorkClass::OpenStat),
    call(Sysno::fstatfs, "vp", fs::fstatfs).work(WorkClass::OpenStat),
    call(Sysno::access, "pv", fs::access).work(WorkClass::OpenStat),
    call(Sysno::faccessat, "vpv", fs::faccessat).work(WorkClass::OpenStat),
    call(Sysno::faccessat2, "vpvv", fs::faccessat2).work(WorkClass::OpenStat),
    call(Sysno::readlink, "ppv", fs::readlink).work(WorkClass::OpenStat),
    call(Sysno::readlinkat, "vppv", fs::readlinkat).work(WorkClass::OpenStat),
    call(Sysno::copy_file_range, "vpvpvv", fs::copy_file_range).work(WorkClass::FileWrite),
    call(Sysno::socket, "vvv", socket::socket),
    call(Sysno::socketpair, "vvvp", socket::socketpair),
    call(Sysno::bind, "vpv", socket::bind),
    call(Sysno::listen, "vv", socket::listen),
    call(Sysno::connect, "vpv", socket::connect).work(WorkClass::Connect),
    call(Sysno::accept, "vpp", socket::accept).work(WorkClass::Accept),
    call(Sysno::accept4, "vppv", socket::accept4).work(WorkClass::Accept),
    call(Sysno::sendto, "vpvvpv", socket_io::sendto).transfer(Direction::Write),
    call(Sysno::recvfrom, "vpvvpp", socket_io::recvfrom).transfer(Direction::Read),
    call(Sysno::sendmsg, "vpv", socket_io::sendmsg).transfer(Direction::Write),
    call(Sysno::recvmsg, "vpv", socket_io::recvmsg).transfer(Direction::Read),
    call(Sysno::shutdown, "vv", socket::shutdown).work(WorkClass::Descriptor),
    call(Sysno::getsockname, "vpp", socket::getsockname).work(WorkClass::Descriptor),
    call(Sysno::getpeername, "vpp", socket::getpeername).work(WorkClass::Descriptor),
    call(Sysno::setsockopt, "vvvpv", sockopt::setsockopt).work(WorkClass::Descriptor),
    call(Sysno::getsockopt, "vvvpp", sockopt::getsockopt).work(WorkClass::Descriptor),
    call(Sysno::getxattr, "pppv", xattr::getxattr),
    call(Sysno::lgetxattr, "pppv", xattr::lgetxattr),
    call(Sysno::fgetxattr, "vppv", xattr::fgetxattr),
    call(Sysno::listxattr, "ppv", xattr::listxattr),
    call(Sysno::llistxattr, "ppv", xattr::llistxattr),
    call(Sysno::flistxattr, "vpv", xattr::flistxattr),
    call(Sysno::getcwd, "pv", fs::getcwd).work(WorkClass::OpenStat),
    call(Sysno::chdir, "p", fs::chdir).work(WorkClass::OpenStat),
    call(Sysno::fchdir, "v", fs::fchdir).work(WorkClass::OpenStat),
    call(Sysno::unlink, "p", fs::unlink),
    call(Sysno::unlinkat, "vpv", fs::unlinkat),
    call(Sysno::rename, "pp", fs::rename),
    call(Sysno::renameat, "vpvp", fs::renameat),
    call(Sysno::renameat2, "vpvpv", fs::renameat2),
    call(Sysno::mkdir, "pv", fs::mkdir),
    call(Sysno::mkdirat, "vpv", fs::mkdirat),
    call(Sysno::rmdir, "p", fs::rmdir),
    call(Sysno::link, "pp", fs::link),
    call(Sysno::linkat, "vpvpv", fs::linkat),
    call(Sysno::symlink, "pp", fs::symlink),
    call(Sysno::symlinkat, "pvp", fs::symlinkat),
    call(Sysno::chmod, "pv", fs::chmod),
    call(Sysno::fchmod, "vv", fs::fchmod),
    call(Sysno::fchmodat, "vpv", fs::fchmodat),
    call(Sysno::fchown, "vvv", fs::fchown),
    call(Sysno::fchownat, "vpvvv", fs::fchownat),
    call(Sysno::lchown, "pvv", fs::lchown),
    call(Sysno::chown, "pvv", fs::chown),
    call(Sysno::utimensat, "vppv", fs::utimensat),
    null(Sysno::umask, "v", fs::umask),
    // memory
    call(Sysno::brk, "p", mm::brk)
        .work(WorkClass::Memory)
        .returning(Rule::Break),
    call(Sysno::mmap, "pvvvvv", mm::mmap)
        .work(WorkClass::Memory)
        .returning(Rule::Pointer),
    call(Sysno::munmap, "pv", mm::munmap).work(WorkClass::Memory),
    call(Sysno::mremap, "pvvvp", mm::mremap)
        .work(WorkClass::Memory)
        .returning(Rule::Pointer),
    call(Sysno::mprotect, "pvv", mm::mprotect).work(WorkClass::Memory),
    call(Sysno::madvise, "pvv", mm::madvise).work(WorkClass::Memory),
    // process set-up and identity
    call(Sysno::arch_prctl, "vp", proc::arch_prctl),
    call(Sysno::prctl, "vpvvv", proc::prctl).by_command(&signature::PRCTL),
    null(Sysno::set_tid_address, "p", sync::set_tid_address).returning(Rule::Pid),
    call(Sysno::set_robust_list, "pv", sync::set_robust_list),
    call(Sysno::get_robust_list, "ipp", sync::get_robust_list),
    declined(Sysno::rseq, "pvvv"),
    call(Sysno::prlimit64, "ivpp", proc::prlimit64),
    call(Sysno::getrlimit, "vp", proc::getrlimit),
    call(Sysno::setrlimit, "vp", proc::setrlimit),
    call(Sysno::uname, "p", proc::uname),
    call(Sysno::sysinfo, "p", proc::sysinfo),
    call(Sysno::sched_getaffinity, "ivp", proc::sched_getaffinity).returning(Rule::CpuMaskSize),
    call(Sysno::sched_setaffinity, "ivp", proc::sched_setaffinity),
    null(Sysno::getpid, "", proc::getpid).returning(Rule::Pid),
    null(Sysno::getppid, "", proc::getppid).returning(Rule::Pid),
    null(Sysno::gettid, "", proc::gettid).returning(Rule::Pid),
    null(Sysno::getpgrp, "", proc::getpgrp).returning(Rule::Pid),
    call(Sysno::getpgid, "i", proc::getpgid).returning(Rule::Pid),
    call(Sysno::getsid, "i", proc::getsid).returning(Rule::Pid),
    call(Sysno::setpgid, "ii", proc::setpgid),
    call(Sysno::setsid, "", proc::setsid).returning(Rule::Pid),
    call(Sysno::getrandom, "pvv", proc::getrandom),
    call(Sysno::futex, "pvvppv", sync::futex)
        .work(WorkClass::Futex)
        .by_command(&signature::FUTEX),
    call(Sysno::wait4, "ipvp", proc::wait4)
        .work(WorkClass::Process)
        .returning(Rule::Pid),
    call(Sysno::waitid, "vipvp", proc::waitid).work(WorkClass::Process),
    call(Sysno::clone, "vpppp", proc::clone)
        .work(WorkClass::Process)
        .returning(Rule::Pid),
    call(Sysno::fork, "", proc::fork)
        .work(WorkClass::Process)
        .returning(Rule::Pid),
    call(Sysno::execve, "ppp", proc::execve).work(WorkClass::Process),
    call(Sysno::vfork, "", proc::vfork)
        .work(WorkClass::Process)
        .returning(Rule::Pid),
    // As a kernel before 5.3: glibc then falls back to clone.
    declined(Sysno::clone3, "pv"),
    call(Sysno::exit, "v", proc::exit)
        .work(WorkClass::Process)
        .returning(Rule::NoReturn),
    call(Sysno::exit_group, "v", proc::exit_group)
        .work(WorkClass::Process)
        .returning(Rule::NoReturn),
    // user and group ids
    null(Sysno::getuid, "", ids::getuid).returning(Rule::Id),
    null(Sysno::geteuid, "", ids::geteuid).returning(Rule::Id),
    null(Sysno::getgid, "", ids::getgid).returning(Rule::Id),
    null(Sysno::getegid, "", ids::getegid).returning(Rule::Id),
    null(Sysno::getresuid, "ppp", ids::getresuid),
    null(Sysno::getresgid, "ppp", ids::getresgid),
    call(Sysno::getgroups, "vp", ids::getgroups).returning(Rule::Groups),
    call(Sysno::setuid, "u", ids::setuid),
    call(Sysno::setgid, "u", ids::setgid),
    call(Sysno::setreuid, "uu", ids::setreuid),
    call(Sysno::setregid, "uu", ids::setregid),
    call(Sysno::setresuid, "uuu", ids::setresuid),
    call(Sysno::setresgid, "uuu", ids::setresgid),
    call(Sysno::setfsuid, "u", ids::setfsuid).returning(Rule::Id),
    call(Sysno::setfsgid, "u", ids::setfsgid).returning(Rule::Id),
    call(Sysno::setgroups, "vp", ids::setgroups),
    // time
    call(Sysno::clock_gettime, "vp", time::clock_gettime),
    call(Sysno::clock_getres, "vp", time::clock_getres),
    call(Sysno::gettimeofday, "pp", time::gettimeofday),
    call(Sysno::time, "p", time::time).returning(Rule::Time),
    call(Sysno::nanosleep, "pp", time::nanosleep),
    call(Sysno::clock_nanosleep, "vvpp", time::clock_nanosleep),
    call(Sysno::times, "p", time::times).returning(Rule::Time),
    call(Sysno::getrusage, "vp", time::getrusage),
    // signals and scheduling
    call(Sysno::rt_sigaction, "vppv", signal::rt_sigaction),
    call(Sysno::rt_sigprocmask, "vppv", signal::rt_sigprocmask),
    call(Sysno::sigaltstack, "pp", signal::sigaltstack),
    call(Sysno::alarm, "v", signal::alarm),
    call(Sysno::setitimer, "vpp", signal::setitimer),
    call(Sysno::getitimer, "vp", signal::getitimer),
    call(Sysno::kill, "iv", signal::kill),
    call(Sysno::tgkill, "iiv", signal::tgkill),
    call(Sysno::tkill, "iv", signal::tkill),
    call(Sysno::restart_syscall, "", signal::restart_syscall),
    call(Sysno::rt_sigsuspend, "pv", signal::rt_sigsuspend),
    call(Sysno::poll, "pvv", poll::poll),
    call(Sysno::ppoll, "pvppv", poll::ppoll),
    call(Sysno::select, "vpppp", poll::select),
    call(Sysno::pselect6, "vppppp", poll::pselect6),
    call(Sysno::pause, "", signal::pause),
    call(Sysno::rt_sigpending, "pv", signal::rt_sigpending),
    call(Sysno::rt_sigreturn, "", signal::rt_sigreturn).returning(Rule::Restored),
    // A yield's switch, when there is another task to run, is charged as a switch.
    null(Sysno::sched_yield, "", sync::sched_yield),
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
        assert_eq!(lookup(24).map(|r| r.sysno), Some(Sysno::sched_yield));
        assert!(lookup(9999).is_none());
    }
}
