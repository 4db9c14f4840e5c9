//! Syscall normalization: what may legitimately differ between a native run and a
//! simulated one, one rule per reason, and nothing else. Every argument a syscall does not
//! take is dropped (its register holds whatever the caller left there), and every argument
//! and result is compared exactly unless a rule below says otherwise.

use std::fmt;

use sim::accounting::SyscallRecord;
use syscalls::Sysno;

/// How one argument or result is compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// Compared exactly: numbers, flags, sizes, descriptors, error codes.
    Exact,
    /// An address in the program's address space.
    Pointer,
    /// A process, thread or group id.
    Pid,
    /// brk's result: the new break, or the old one when it failed.
    Break,
    /// A reading of the clock.
    Time,
    /// The result of a syscall that never returns.
    NoReturn,
    /// A call the simulator declines on purpose.
    Declined,
}

/// Every rule but `Exact`, with its reason: the README's list comes from here.
pub const RULES: &[(Rule, &str, &str)] = &[
    (
        Rule::Pointer,
        "pointer",
        "addresses (buffers, brk and mmap results) depend on where the kernel and the simulator \
         place the stack, the heap and mappings; compared as NULL or not",
    ),
    (
        Rule::Pid,
        "pid",
        "the simulated process has pid and tid 1000 and parent 999; the native one, whatever \
         the host gives; a positive id compared as an id, a negative one below -1 as a group \
         id, and 0 and -1 exactly",
    ),
    (
        Rule::Break,
        "break",
        "brk answers with the new break, or with the old one when it fails: compared as equal \
         to the asked address or not (a pointer when the address asked is 0)",
    ),
    (
        Rule::Time,
        "time",
        "time in the simulator is virtual, derived from simulated cycles; compared as a \
         success or not",
    ),
    (
        Rule::NoReturn,
        "no return",
        "exit and exit_group do not return: there is no result to compare",
    ),
    (
        Rule::Declined,
        "declined",
        "rseq: the simulator declines restartable sequences (ENOSYS, as a kernel built \
         without them) and glibc goes on without them; the native kernel registers them",
    ),
];

/// A syscall's arguments (one letter each: `v` exact, `p` pointer, `i` pid, `-` not taken)
/// and how its result is compared.
struct Signature {
    nr: Sysno,
    args: &'static str,
    result: Rule,
}

const fn sig(nr: Sysno, args: &'static str) -> Signature {
    Signature {
        nr,
        args,
        result: Rule::Exact,
    }
}

const fn returns(nr: Sysno, args: &'static str, result: Rule) -> Signature {
    Signature { nr, args, result }
}

/// Every syscall the simulator serves. `ioctl`'s and `prctl`'s argument after the request
/// is a pointer for the requests programs make here (TCGETS, PR_SET_NAME).
const SIGNATURES: &[Signature] = &[
    sig(Sysno::read, "vpv"),
    sig(Sysno::write, "vpv"),
    sig(Sysno::open, "pvv"),
    sig(Sysno::close, "v"),
    sig(Sysno::stat, "pp"),
    sig(Sysno::fstat, "vp"),
    sig(Sysno::lstat, "pp"),
    sig(Sysno::lseek, "vvv"),
    returns(Sysno::mmap, "pvvvvv", Rule::Pointer),
    sig(Sysno::mprotect, "pvv"),
    sig(Sysno::munmap, "pv"),
    returns(Sysno::brk, "p", Rule::Break),
    sig(Sysno::rt_sigaction, "vppv"),
    sig(Sysno::rt_sigprocmask, "vppv"),
    sig(Sysno::ioctl, "vvp"),
    sig(Sysno::pread64, "vpvv"),
    sig(Sysno::pwrite64, "vpvv"),
    sig(Sysno::readv, "vpv"),
    sig(Sysno::writev, "vpv"),
    sig(Sysno::access, "pv"),
    sig(Sysno::pipe, "p"),
    sig(Sysno::sched_yield, ""),
    returns(Sysno::mremap, "pvvvp", Rule::Pointer),
    sig(Sysno::madvise, "pvv"),
    sig(Sysno::dup, "v"),
    sig(Sysno::dup2, "vv"),
    sig(Sysno::nanosleep, "pp"),
    returns(Sysno::getpid, "", Rule::Pid),
    sig(Sysno::sendfile, "vvpv"),
    returns(Sysno::exit, "v", Rule::NoReturn),
    returns(Sysno::wait4, "ipvp", Rule::Pid),
    sig(Sysno::alarm, "v"),
    sig(Sysno::kill, "iv"),
    sig(Sysno::uname, "p"),
    sig(Sysno::fcntl, "vvv"),
    sig(Sysno::fsync, "v"),
    sig(Sysno::fdatasync, "v"),
    sig(Sysno::getdents64, "vpv"),
    sig(Sysno::ftruncate, "vv"),
    sig(Sysno::getcwd, "pv"),
    sig(Sysno::chdir, "p"),
    sig(Sysno::fchdir, "v"),
    sig(Sysno::rename, "pp"),
    sig(Sysno::mkdir, "pv"),
    sig(Sysno::rmdir, "p"),
    sig(Sysno::creat, "pv"),
    sig(Sysno::link, "pp"),
    sig(Sysno::unlink, "p"),
    sig(Sysno::symlink, "pp"),
    sig(Sysno::readlink, "ppv"),
    sig(Sysno::chmod, "pv"),
    sig(Sysno::fchmod, "vv"),
    sig(Sysno::chown, "pvv"),
    sig(Sysno::fchown, "vvv"),
    sig(Sysno::lchown, "pvv"),
    sig(Sysno::umask, "v"),
    sig(Sysno::gettimeofday, "pp"),
    sig(Sysno::getrlimit, "vp"),
    sig(Sysno::getrusage, "vp"),
    sig(Sysno::sysinfo, "p"),
    returns(Sysno::times, "p", Rule::Time),
    sig(Sysno::getuid, ""),
    sig(Sysno::getgid, ""),
    sig(Sysno::geteuid, ""),
    sig(Sysno::getegid, ""),
    returns(Sysno::getppid, "", Rule::Pid),
    returns(Sysno::getpgrp, "", Rule::Pid),
    sig(Sysno::getgroups, "vp"),
    returns(Sysno::getpgid, "i", Rule::Pid),
    sig(Sysno::sigaltstack, "pp"),
    sig(Sysno::statfs, "pp"),
    sig(Sysno::fstatfs, "vp"),
    sig(Sysno::prctl, "vpvvv"),
    sig(Sysno::arch_prctl, "vp"),
    returns(Sysno::gettid, "", Rule::Pid),
    returns(Sysno::time, "p", Rule::Time),
    sig(Sysno::futex, "pvvppv"),
    returns(Sysno::set_tid_address, "p", Rule::Pid),
    sig(Sysno::fadvise64, "vvvv"),
    sig(Sysno::clock_gettime, "vp"),
    sig(Sysno::clock_getres, "vp"),
    sig(Sysno::clock_nanosleep, "vvpp"),
    returns(Sysno::exit_group, "v", Rule::NoReturn),
    sig(Sysno::tgkill, "iiv"),
    sig(Sysno::utimensat, "vppv"),
    sig(Sysno::openat, "vpvv"),
    sig(Sysno::mkdirat, "vpv"),
    sig(Sysno::fchownat, "vpvvv"),
    sig(Sysno::newfstatat, "vppv"),
    sig(Sysno::unlinkat, "vpv"),
    sig(Sysno::renameat, "vpvp"),
    sig(Sysno::linkat, "vpvpv"),
    sig(Sysno::symlinkat, "pvp"),
    sig(Sysno::readlinkat, "vppv"),
    sig(Sysno::fchmodat, "vpv"),
    sig(Sysno::faccessat, "vpv"),
    sig(Sysno::set_robust_list, "pv"),
    sig(Sysno::dup3, "vvv"),
    sig(Sysno::pipe2, "pv"),
    sig(Sysno::prlimit64, "ivpp"),
    sig(Sysno::renameat2, "vpvpv"),
    sig(Sysno::getrandom, "pvv"),
    sig(Sysno::statx, "vpvvp"),
    sig(Sysno::faccessat2, "vpvv"),
    returns(Sysno::rseq, "pvvv", Rule::Declined),
    sig(Sysno::tkill, "iv"),
];

/// Arguments that depend on a command argument: (syscall, the command's argument index, a
/// mask, the command, the arguments). The signature's own are for every other command.
const COMMANDS: &[(Sysno, usize, u64, u64, &str)] = &[
    (Sysno::fcntl, 1, !0, libc::F_GETFD as u64, "vv"),
    (Sysno::fcntl, 1, !0, libc::F_GETFL as u64, "vv"),
    (Sysno::fcntl, 1, !0, libc::F_GETOWN as u64, "vv"),
    (Sysno::fcntl, 1, !0, libc::F_GETPIPE_SZ as u64, "vv"),
    (Sysno::fcntl, 1, !0, libc::F_GETLK as u64, "vvp"),
    (Sysno::fcntl, 1, !0, libc::F_SETLK as u64, "vvp"),
    (Sysno::fcntl, 1, !0, libc::F_SETLKW as u64, "vvp"),
    (Sysno::fcntl, 1, !0, libc::F_OFD_GETLK as u64, "vvp"),
    (Sysno::fcntl, 1, !0, libc::F_OFD_SETLK as u64, "vvp"),
    (Sysno::fcntl, 1, !0, libc::F_OFD_SETLKW as u64, "vvp"),
    // futex: the command is the low 7 bits of the operation.
    (Sysno::futex, 1, 0x7f, libc::FUTEX_WAIT as u64, "pvvp"),
    (Sysno::futex, 1, 0x7f, libc::FUTEX_WAKE as u64, "pvv"),
    (
        Sysno::futex,
        1,
        0x7f,
        libc::FUTEX_WAIT_BITSET as u64,
        "pvvp-v",
    ),
    (
        Sysno::futex,
        1,
        0x7f,
        libc::FUTEX_WAKE_BITSET as u64,
        "pvv--v",
    ),
    (Sysno::prctl, 0, !0, libc::PR_SET_PDEATHSIG as u64, "vv"),
    (Sysno::prctl, 0, !0, libc::PR_GET_PDEATHSIG as u64, "vp"),
    (Sysno::prctl, 0, !0, libc::PR_GET_DUMPABLE as u64, "v"),
    (Sysno::prctl, 0, !0, libc::PR_SET_DUMPABLE as u64, "vv"),
    (Sysno::prctl, 0, !0, libc::PR_SET_NAME as u64, "vp"),
    (Sysno::prctl, 0, !0, libc::PR_GET_NAME as u64, "vp"),
    (Sysno::prctl, 0, !0, libc::PR_SET_VMA as u64, "vvpvp"),
];

/// A syscall as the oracle compares it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Normalized {
    pub name: String,
    pub args: Vec<String>,
    pub result: String,
}

impl fmt::Display for Normalized {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}({}) = {}",
            self.name,
            self.args.join(", "),
            self.result
        )
    }
}

/// A syscall the table does not know: its arguments cannot be normalized, and the
/// oracle says so rather than guess.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no normalization rule for syscall {0} (oracle/src/normalize.rs)")]
pub struct UnknownSyscall(pub String);

fn name_of(nr: u64) -> String {
    sim::kernel::syscalls::short_name(nr)
}

/// An error result: -4095..-1 as a signed number.
fn errno(value: u64) -> Option<String> {
    let signed = value as i64;
    (-4095..0).contains(&signed).then(|| {
        let name = nix::errno::Errno::from_raw(-signed as i32);
        format!("-{name:?}")
    })
}

/// One value under `rule`.
pub fn apply(rule: Rule, value: u64) -> String {
    match errno(value).filter(|_| rule != Rule::NoReturn && rule != Rule::Declined) {
        Some(error) => error,
        None => shown(rule, value),
    }
}

/// One value under `rule`, never read as an error code (arguments are not results).
fn shown(rule: Rule, value: u64) -> String {
    match rule {
        Rule::Exact => format!("{value:#x}"),
        Rule::Pointer if value == 0 => "NULL".into(),
        Rule::Pointer | Rule::Break => "<pointer>".into(),
        Rule::Pid if (value as i64) > 0 => "<pid>".into(),
        Rule::Pid if (value as i64) < -1 => "-<pid>".into(),
        Rule::Pid => format!("{}", value as i64),
        Rule::Time => "<time>".into(),
        Rule::NoReturn => "<no return>".into(),
        Rule::Declined => "<declined>".into(),
    }
}

/// The syscall as compared: its own arguments only, each under its rule.
pub fn normalize(record: &SyscallRecord) -> Result<Normalized, UnknownSyscall> {
    let signature = SIGNATURES
        .iter()
        .find(|s| s.nr.id() as u64 == record.nr)
        .ok_or_else(|| UnknownSyscall(name_of(record.nr)))?;
    let kinds = COMMANDS
        .iter()
        .find(|(nr, at, mask, command, _)| {
            *nr == signature.nr && record.args[*at] & mask == *command
        })
        .map_or(signature.args, |row| row.4);
    let args = kinds
        .chars()
        .zip(record.args)
        .filter(|(kind, _)| *kind != '-')
        .map(|(kind, value)| match kind {
            'p' => shown(Rule::Pointer, value),
            'i' => shown(Rule::Pid, value),
            // An argument is never an error code: show it whole.
            _ => format!("{value:#x}"),
        })
        .collect();
    let result = match signature.result {
        Rule::Break if record.args[0] != 0 && errno(record.ret).is_none() => {
            if record.ret == record.args[0] {
                "<the address asked>".into()
            } else {
                "<not the address asked>".into()
            }
        }
        rule => apply(rule, record.ret),
    };
    Ok(Normalized {
        name: name_of(record.nr),
        args,
        result,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(nr: Sysno, args: &[u64], ret: u64) -> SyscallRecord {
        let mut all = [0xdead_beef; 6];
        all[..args.len()].copy_from_slice(args);
        SyscallRecord {
            nr: nr.id() as u64,
            args: all,
            ret,
        }
    }

    fn same(a: &SyscallRecord, b: &SyscallRecord) -> bool {
        normalize(a).unwrap() == normalize(b).unwrap()
    }

    #[test]
    fn arguments_a_syscall_does_not_take_are_dropped() {
        let mut a = record(Sysno::getppid, &[], 7);
        let b = a.clone();
        a.args = [1, 2, 3, 4, 5, 6];
        assert!(same(&a, &b));
        assert_eq!(normalize(&a).unwrap().args.len(), 0);
    }

    #[test]
    fn pointers_compare_as_null_or_not() {
        let a = record(Sysno::read, &[3, 0x7fff_0000, 100], 100);
        let b = record(Sysno::read, &[3, 0x4c_0000, 100], 100);
        let null = record(Sysno::read, &[3, 0, 100], 100);
        assert!(same(&a, &b));
        assert!(!same(&a, &null));
        assert!(same(
            &record(Sysno::brk, &[0], 0x4c_a000),
            &record(Sysno::brk, &[0], 0x5555_5555_9000)
        ));
    }

    #[test]
    fn everything_else_compares_exactly() {
        let a = record(Sysno::read, &[3, 0x1000, 100], 100);
        assert!(!same(&a, &record(Sysno::read, &[4, 0x1000, 100], 100)));
        assert!(!same(&a, &record(Sysno::read, &[3, 0x1000, 99], 100)));
        assert!(!same(&a, &record(Sysno::read, &[3, 0x1000, 100], 99)));
        assert!(!same(&a, &record(Sysno::write, &[3, 0x1000, 100], 100)));
    }

    #[test]
    fn errors_compare_exactly_whatever_the_rule() {
        let enomem = (-(libc::ENOMEM as i64)) as u64;
        let failed = record(Sysno::mmap, &[0, 4096, 3, 0x22, u64::MAX, 0], enomem);
        assert_eq!(normalize(&failed).unwrap().result, "-ENOMEM");
        let mapped = record(
            Sysno::mmap,
            &[0, 4096, 3, 0x22, u64::MAX, 0],
            0x7fff_f7ff_0000,
        );
        assert!(!same(&failed, &mapped));
        let esrch = (-(libc::ESRCH as i64)) as u64;
        assert!(!same(
            &record(Sysno::getpgid, &[5], esrch),
            &record(Sysno::getpgid, &[5], 5)
        ));
    }

    #[test]
    fn ids_compare_as_valid_or_not() {
        assert!(same(
            &record(Sysno::getpid, &[], 1000),
            &record(Sysno::getpid, &[], 41_233)
        ));
        assert!(same(
            &record(Sysno::kill, &[1000, 0], 0),
            &record(Sysno::kill, &[41_233, 0], 0)
        ));
    }

    /// A syscall, each side's arguments and result, and whether they compare equal.
    type Judged<'a> = (Sysno, (&'a [u64], u64), (&'a [u64], u64), bool);

    fn judge(cases: &[Judged]) {
        for &(nr, (a, ra), (b, rb), alike) in cases {
            let (x, y) = (record(nr, a, ra), record(nr, b, rb));
            assert_eq!(same(&x, &y), alike, "{x:x?} vs {y:x?}");
        }
    }

    #[test]
    fn ids_zero_and_minus_one_compare_exactly() {
        let group = |id: i64| (-id) as u64;
        judge(&[
            (Sysno::kill, (&[0, 15], 0), (&[1234, 15], 0), false),
            (
                Sysno::wait4,
                (&[u64::MAX, 0, 1, 0], 0),
                (&[u64::MAX, 0, 1, 0], 4321),
                false,
            ),
            (
                Sysno::kill,
                (&[group(1000), 15], 0),
                (&[group(4321), 15], 0),
                true,
            ),
        ]);
    }

    #[test]
    fn a_failed_brk_is_not_a_successful_one() {
        let asked = 0x50_0000;
        let elsewhere = 0x5555_5000_0000;
        judge(&[
            (Sysno::brk, (&[asked], 0x4c_0000), (&[asked], asked), false),
            (
                Sysno::brk,
                (&[asked], asked),
                (&[elsewhere], elsewhere),
                true,
            ),
        ]);
    }

    #[test]
    fn arguments_follow_the_command() {
        let (getfl, setlk, setfl) = (
            libc::F_GETFL as u64,
            libc::F_SETLK as u64,
            libc::F_SETFL as u64,
        );
        let wake = libc::FUTEX_WAKE as u64 | 128;
        let pdeathsig = libc::PR_SET_PDEATHSIG as u64;
        judge(&[
            // F_GETFL takes no third argument: what is left in RDX is dropped.
            (
                Sysno::fcntl,
                (&[3, getfl, 0x1234], 2),
                (&[3, getfl, 0x9999], 2),
                true,
            ),
            // F_SETLK's third argument is a pointer, F_SETFL's a value.
            (
                Sysno::fcntl,
                (&[3, setlk, 0x7fff_e5d0], 0),
                (&[3, setlk, 0x7fff_e610], 0),
                true,
            ),
            (
                Sysno::fcntl,
                (&[3, setfl, 0x800], 0),
                (&[3, setfl, 0], 0),
                false,
            ),
            (
                Sysno::futex,
                (&[0x1000, wake, 1, 7, 8, 9], 0),
                (&[0x2000, wake, 1, 0, 0, 0], 0),
                true,
            ),
            (
                Sysno::prctl,
                (&[pdeathsig, 9], 0),
                (&[pdeathsig, 15], 0),
                false,
            ),
        ]);
    }

    #[test]
    fn clock_readings_compare_as_success() {
        assert!(same(
            &record(Sysno::time, &[0], 1_700_000_000),
            &record(Sysno::time, &[0], 86_400)
        ));
    }

    #[test]
    fn exit_has_no_result_and_rseq_is_declined() {
        assert!(same(
            &record(Sysno::exit_group, &[0], 0),
            &record(Sysno::exit_group, &[0], 12345)
        ));
        assert!(!same(
            &record(Sysno::exit_group, &[0], 0),
            &record(Sysno::exit_group, &[1], 0)
        ));
        let enosys = (-(libc::ENOSYS as i64)) as u64;
        assert!(same(
            &record(Sysno::rseq, &[0x1000, 32, 0, 0x53053053], 0),
            &record(Sysno::rseq, &[0x2000, 32, 0, 0x53053053], enosys)
        ));
    }

    #[test]
    fn an_unknown_syscall_is_refused_not_guessed() {
        let record = record(Sysno::io_uring_setup, &[1, 0], 3);
        assert_eq!(
            normalize(&record),
            Err(UnknownSyscall("io_uring_setup".into()))
        );
    }

    #[test]
    fn every_syscall_the_simulator_serves_has_a_signature() {
        let missing: Vec<String> = sim::kernel::table::TABLE
            .iter()
            .map(|row| row.sysno.name().to_string())
            .filter(|name| !SIGNATURES.iter().any(|s| s.nr.name() == name))
            .collect();
        assert!(missing.is_empty(), "no signature for {missing:?}");
    }

    #[test]
    fn every_rule_has_a_reason() {
        for rule in [
            Rule::Pointer,
            Rule::Pid,
            Rule::Break,
            Rule::Time,
            Rule::NoReturn,
            Rule::Declined,
        ] {
            assert!(RULES
                .iter()
                .any(|(r, _, reason)| *r == rule && !reason.is_empty()));
        }
    }
}
