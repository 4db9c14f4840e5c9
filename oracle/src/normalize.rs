//! Syscall normalization: what may legitimately differ between a native run and a
//! simulated one, one rule per reason, and nothing else. The rules and each syscall's
//! signature live in the simulator's syscall table (`sim::kernel::signature`, read from the
//! table's rows), which the report's sequence digest reads too; this applies them to a
//! recorded syscall.

use sim::accounting::SyscallRecord;
pub use sim::kernel::signature::{Normalized, Rule, Shown, UnknownSyscall, RULES};

/// The syscall as compared: its own arguments only, each under its rule.
pub fn normalize(record: &SyscallRecord) -> Result<Normalized, UnknownSyscall> {
    sim::kernel::signature::normalize(record.nr, &record.args, record.ret)
}

#[cfg(test)]
mod tests {
    use super::*;
    use syscalls::Sysno;

    fn record(nr: Sysno, args: &[u64], ret: u64) -> SyscallRecord {
        let mut all = [0xdead_beef; 6];
        all[..args.len()].copy_from_slice(args);
        SyscallRecord {
            tid: 1000,
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
        assert_eq!(normalize(&failed).unwrap().result.to_string(), "-ENOMEM");
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
    fn user_and_group_ids_compare_as_ids() {
        let eperm = (-(libc::EPERM as i64)) as u64;
        let unchanged = u32::MAX as u64;
        judge(&[
            // Root on one host, an ordinary user on another.
            (Sysno::getuid, (&[], 0), (&[], 1000), true),
            (Sysno::setgid, (&[0], 0), (&[1000], 0), true),
            (Sysno::getgroups, (&[0, 0], 1), (&[0, 0], 3), true),
            // -1 leaves an id unchanged: not an id.
            (
                Sysno::setresuid,
                (&[unchanged, 0, unchanged], 0),
                (&[0, 0, unchanged], 0),
                false,
            ),
            (Sysno::setuid, (&[0], 0), (&[0], eperm), false),
        ]);
    }

    #[test]
    fn an_unknown_syscall_is_refused_not_guessed() {
        let record = record(Sysno::io_uring_setup, &[1, 0], 3);
        assert_eq!(
            normalize(&record),
            Err(UnknownSyscall("io_uring_setup".into()))
        );
    }
}
