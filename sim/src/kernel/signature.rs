//! Syscall signatures: what each argument and result is, and so what may legitimately differ
//! between two runs of a program on different hosts or under different kernels. The syscall
//! table's rows carry them; the oracle compares native and simulated runs by them, and the
//! report's sequence digest is taken over them, so a digest never depends on the host either.
//!
//! Every argument a syscall does not take is dropped (its register holds whatever the caller
//! left there), and every argument and result is compared exactly unless a rule says otherwise.

use std::fmt;

use super::table;

/// How one argument or result is compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// Compared exactly: numbers, flags, sizes, descriptors, error codes.
    Exact,
    /// An address in the program's address space.
    Pointer,
    /// A process, thread or group id.
    Pid,
    /// A user or group id.
    Id,
    /// The number of supplementary groups.
    Groups,
    /// brk's result: the new break, or the old one when it failed.
    Break,
    /// A reading of the clock.
    Time,
    /// sched_getaffinity's result: the size of the kernel's CPU mask.
    CpuMaskSize,
    /// The result of a syscall that never returns.
    NoReturn,
    /// A call the simulator declines on purpose.
    Declined,
    /// rt_sigreturn's result: the interrupted code's RAX, put back.
    Restored,
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
        Rule::Id,
        "id",
        "the guest runs as the host user, root on one machine and an ordinary user on another; \
         a user or group id compared as an id, and -1 (\"unchanged\") exactly",
    ),
    (
        Rule::Groups,
        "groups",
        "the supplementary groups are the host user's; their number compared as a success \
         or not",
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
        Rule::CpuMaskSize,
        "cpu mask size",
        "sched_getaffinity returns the size of the kernel's CPU mask, which the host kernel's          configuration sets (the simulated one has one CPU and an 8-byte mask); compared as a          success or not",
    ),
    (
        Rule::NoReturn,
        "no return",
        "exit and exit_group do not return: there is no result to compare",
    ),
    (
        Rule::Restored,
        "restored",
        "rt_sigreturn returns the RAX the handler's frame saved: whatever the interrupted code \
         held there (a pid, an address), which the call it interrupted already showed; not \
         compared",
    ),
    (
        Rule::Declined,
        "declined",
        "rseq: the simulator declines restartable sequences (ENOSYS, as a kernel built \
         without them) and glibc goes on without them; the native kernel registers them",
    ),
];

/// A syscall's arguments, one letter each: `v` exact, `p` pointer, `i` pid, `u` user or
/// group id, `-` not taken; the arguments of its commands, if they differ; and how its
/// result is compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signature {
    pub args: &'static str,
    pub commands: Option<&'static Commands>,
    pub result: Rule,
}

/// Arguments that depend on a command argument: where the command is, the mask that
/// extracts it, and each command's arguments. The row's own are for every other command.
#[derive(Debug, PartialEq, Eq)]
pub struct Commands {
    pub at: usize,
    pub mask: u64,
    pub args: &'static [(u64, &'static str)],
}

pub const FCNTL: Commands = Commands {
    at: 1,
    mask: !0,
    args: &[
        (libc::F_GETFD as u64, "vv"),
        (libc::F_GETFL as u64, "vv"),
        (libc::F_GETOWN as u64, "vv"),
        (libc::F_GETPIPE_SZ as u64, "vv"),
        (libc::F_GETLK as u64, "vvp"),
        (libc::F_SETLK as u64, "vvp"),
        (libc::F_SETLKW as u64, "vvp"),
        (libc::F_OFD_GETLK as u64, "vvp"),
        (libc::F_OFD_SETLK as u64, "vvp"),
        (libc::F_OFD_SETLKW as u64, "vvp"),
    ],
};

/// The command is the low 7 bits of the operation.
pub const FUTEX: Commands = Commands {
    at: 1,
    mask: 0x7f,
    args: &[
        (libc::FUTEX_WAIT as u64, "pvvp"),
        (libc::FUTEX_WAKE as u64, "pvv"),
        (libc::FUTEX_WAIT_BITSET as u64, "pvvp-v"),
        (libc::FUTEX_WAKE_BITSET as u64, "pvv--v"),
        (libc::FUTEX_REQUEUE as u64, "pvvvp"),
        (libc::FUTEX_CMP_REQUEUE as u64, "pvvvpv"),
    ],
};

pub const PRCTL: Commands = Commands {
    at: 0,
    mask: !0,
    args: &[
        (libc::PR_SET_PDEATHSIG as u64, "vv"),
        (libc::PR_GET_PDEATHSIG as u64, "vp"),
        (libc::PR_GET_DUMPABLE as u64, "v"),
        (libc::PR_SET_DUMPABLE as u64, "vv"),
        (libc::PR_SET_NAME as u64, "vp"),
        (libc::PR_GET_NAME as u64, "vp"),
        (libc::PR_SET_VMA as u64, "vvpvp"),
        (libc::PR_CAPBSET_READ as u64, "vv"),
    ],
};

/// One argument or result as compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shown {
    Exact(u64),
    Errno(i32),
    Null,
    Pointer,
    Pid,
    GroupPid,
    /// A pid of 0 or -1, which mean "self" or "any".
    SpecialPid(i64),
    Id,
    /// The id -1: "leave it unchanged".
    IdUnchanged,
    Success,
    AddressAsked,
    NotAddressAsked,
    NoReturn,
    Declined,
    Restored,
}

impl Shown {
    /// A tag and a value that together say what this is, for digests: fixed here, so
    /// digests do not change with the compiler (a derived `Hash` may).
    pub fn code(self) -> (u8, u64) {
        match self {
            Shown::Exact(value) => (0, value),
            Shown::Errno(errno) => (1, errno as u64),
            Shown::Null => (2, 0),
            Shown::Pointer => (3, 0),
            Shown::Pid => (4, 0),
            Shown::GroupPid => (5, 0),
            Shown::SpecialPid(pid) => (6, pid as u64),
            Shown::Id => (7, 0),
            Shown::IdUnchanged => (8, 0),
            Shown::Success => (9, 0),
            Shown::AddressAsked => (10, 0),
            Shown::NotAddressAsked => (11, 0),
            Shown::NoReturn => (12, 0),
            Shown::Declined => (13, 0),
            Shown::Restored => (14, 0),
        }
    }
}

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shown::Exact(value) => write!(f, "{value:#x}"),
            Shown::Errno(errno) => write!(f, "-{:?}", nix::errno::Errno::from_raw(*errno)),
            Shown::Null => f.write_str("NULL"),
            Shown::Pointer => f.write_str("<pointer>"),
            Shown::Pid => f.write_str("<pid>"),
            Shown::GroupPid => f.write_str("-<pid>"),
            Shown::SpecialPid(pid) => write!(f, "{pid}"),
            Shown::Id => f.write_str("<id>"),
            Shown::IdUnchanged => f.write_str("-1"),
            Shown::Success => f.write_str("<success>"),
            Shown::AddressAsked => f.write_str("<the address asked>"),
            Shown::NotAddressAsked => f.write_str("<not the address asked>"),
            Shown::NoReturn => f.write_str("<no return>"),
            Shown::Declined => f.write_str("<declined>"),
            Shown::Restored => f.write_str("<restored>"),
        }
    }
}

/// A syscall as compared: its name, its own arguments and its result, each under its rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Normalized {
    pub name: &'static str,
    pub args: Vec<Shown>,
    pub result: Shown,
}

impl fmt::Display for Normalized {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.name)?;
        for (i, arg) in self.args.iter().enumerate() {
            let separator = if i == 0 { "" } else { ", " };
            write!(f, "{separator}{arg}")?;
        }
        write!(f, ") = {}", self.result)
    }
}

/// A syscall the table does not know: its arguments cannot be normalized, and the
/// oracle says so rather than guess.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no normalization rule for syscall {0} (a row of sim/src/kernel/table.rs)")]
pub struct UnknownSyscall(pub String);

/// An error result: -4095..-1 as a signed number.
fn errno(value: u64) -> Option<i32> {
    let signed = value as i64;
    (-4095..0).contains(&signed).then_some(-signed as i32)
}

/// One value under `rule`, never read as an error code (arguments are not results).
fn shown(rule: Rule, value: u64) -> Shown {
    match rule {
        Rule::Exact => Shown::Exact(value),
        Rule::Pointer if value == 0 => Shown::Null,
        Rule::Pointer | Rule::Break => Shown::Pointer,
        Rule::Pid if (value as i64) > 0 => Shown::Pid,
        Rule::Pid if (value as i64) < -1 => Shown::GroupPid,
        Rule::Pid => Shown::SpecialPid(value as i64),
        // The kernel reads a uid_t, 32 bits, whatever the register's upper half holds.
        Rule::Id if value as u32 == u32::MAX => Shown::IdUnchanged,
        Rule::Id => Shown::Id,
        Rule::Groups | Rule::Time | Rule::CpuMaskSize => Shown::Success,
        Rule::NoReturn => Shown::NoReturn,
        Rule::Declined => Shown::Declined,
        Rule::Restored => Shown::Restored,
    }
}

/// A result under `rule`: an error code is compared exactly, except where there is no
/// result to compare.
fn result(rule: Rule, asked: u64, value: u64) -> Shown {
    match (rule, errno(value)) {
        (Rule::NoReturn | Rule::Declined | Rule::Restored, _) => shown(rule, value),
        (_, Some(errno)) => Shown::Errno(errno),
        (Rule::Break, None) if asked != 0 && value == asked => Shown::AddressAsked,
        (Rule::Break, None) if asked != 0 => Shown::NotAddressAsked,
        (rule, None) => shown(rule, value),
    }
}

/// The argument kinds for these arguments: their command's, or the syscall's own.
fn kinds(signature: Signature, args: &[u64; 6]) -> &'static str {
    signature
        .commands
        .and_then(|c| {
            let command = args[c.at] & c.mask;
            c.args.iter().find(|(known, _)| *known == command)
        })
        .map_or(signature.args, |(_, kinds)| kinds)
}

/// The arguments a call with signature `signature` takes, as compared.
fn shown_args(signature: Signature, args: &[u64; 6]) -> impl Iterator<Item = Shown> + '_ {
    kinds(signature, args)
        .chars()
        .zip(args)
        .filter(|(kind, _)| *kind != '-')
        .map(|(kind, &value)| match kind {
            'p' => shown(Rule::Pointer, value),
            'i' => shown(Rule::Pid, value),
            'u' => shown(Rule::Id, value),
            _ => shown(Rule::Exact, value),
        })
}

/// Syscall `nr` with `args` and result `ret` as compared, or why it cannot be.
pub fn normalize(nr: u64, args: &[u64; 6], ret: u64) -> Result<Normalized, UnknownSyscall> {
    let row = table::lookup(nr).ok_or_else(|| UnknownSyscall(super::syscalls::short_name(nr)))?;
    Ok(Normalized {
        name: row.sysno.name(),
        args: shown_args(row.signature, args).collect(),
        result: result(row.signature.result, args[0], ret),
    })
}

/// What `normalize` compares of syscall `nr`, as words for a digest, with no allocation
/// (it runs on every syscall): each argument and then the result as a tag and a value, the
/// result after a word no tag is. False for a syscall the table lacks.
pub fn encode(nr: u64, args: &[u64; 6], ret: u64, mut sink: impl FnMut(u64)) -> bool {
    let Some(row) = table::lookup(nr) else {
        return false;
    };
    let result = result(row.signature.result, args[0], ret);
    for shown in shown_args(row.signature, args) {
        let (tag, value) = shown.code();
        sink(tag as u64);
        sink(value);
    }
    let (tag, value) = result.code();
    sink(u64::MAX);
    sink(tag as u64);
    sink(value);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_signature_is_well_formed() {
        let well_formed = |args: &str| args.len() <= 6 && args.chars().all(|c| "vpiu-".contains(c));
        for row in table::TABLE {
            let signature = row.signature;
            let commands = signature.commands.map_or(&[][..], |c| c.args);
            for args in std::iter::once(signature.args).chain(commands.iter().map(|c| c.1)) {
                assert!(well_formed(args), "{}: {args:?}", row.sysno.name());
            }
            if let Some(commands) = signature.commands {
                assert!(commands.at < signature.args.len(), "{}", row.sysno.name());
            }
        }
    }

    #[test]
    fn every_rule_has_a_reason() {
        let rules = [
            Rule::Pointer,
            Rule::Pid,
            Rule::Id,
            Rule::Groups,
            Rule::Break,
            Rule::Time,
            Rule::CpuMaskSize,
            Rule::NoReturn,
            Rule::Declined,
            Rule::Restored,
        ];
        for rule in rules {
            assert!(RULES
                .iter()
                .any(|(r, _, reason)| *r == rule && !reason.is_empty()));
        }
        assert_eq!(RULES.len(), rules.len());
    }
}
