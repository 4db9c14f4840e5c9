//! The 32-bit system call entry (`int 0x80`) of a 64-bit process: i386 numbers, arguments
//! in EBX ECX EDX ESI EDI EBP, each zero-extended, as Linux's compat entry treats them.
//! Only calls whose arguments mean the same in both ABIs are mapped; the rest stop the run
//! as unsupported (structure layouts differ between the ABIs).

use syscalls::x86_64::Sysno;

/// i386 syscall number → the x86-64 call with the same arguments.
const COMPAT: &[(u64, Sysno)] = &[
    (0, Sysno::restart_syscall),
    (1, Sysno::exit),
    (3, Sysno::read),
    (4, Sysno::write),
    (6, Sysno::close),
    (20, Sysno::getpid),
    (64, Sysno::getppid),
    (158, Sysno::sched_yield),
    (199, Sysno::getuid),
    (200, Sysno::getgid),
    (201, Sysno::geteuid),
    (202, Sysno::getegid),
    (224, Sysno::gettid),
    (252, Sysno::exit_group),
];

/// The x86-64 number for i386 syscall `nr`, if mapped.
pub fn to_native(nr: u64) -> Option<u64> {
    COMPAT
        .iter()
        .find(|(i386, _)| *i386 == nr)
        .map(|(_, native)| native.id() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_and_write_map() {
        assert_eq!(to_native(1), Some(60));
        assert_eq!(to_native(4), Some(1));
        assert_eq!(to_native(5), None, "open takes a path: unmapped");
    }
}
