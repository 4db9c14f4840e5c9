//! Syscall normalization: what may legitimately differ between a native run and a
//! simulated one, one rule per reason, and nothing else. The rules and each syscall's
//! signature live in the simulator's syscall table (`sim::kernel::signature`, read from the
//! table's rows), which the report's sequence digest reads too; this applies them to a
//! recorded syscall.
//!
//! In a run of several tasks, an id that names one of the run's tasks (an argument of kind
//! `i`, a result under the pid rule) is compared by that task's normalized id
//! (`observed::normalized_ids`, each run through its own map), so that `fork() = <pid 1001>`
//! on one side cannot be `fork() = <pid 1002>` on the other. Two kinds of result stay under
//! the pid rule alone: a process group's id (the native root is in the oracle's group; the
//! simulated root leads its own), and the child that a wait for any child reaped (which one
//! comes first is the schedule's; `compare` checks the set of them instead).

use std::collections::BTreeMap;
use std::fmt;

use sim::accounting::SyscallRecord;
pub use sim::kernel::signature::{Normalized, Rule, Shown, UnknownSyscall, RULES};
use sim::kernel::table;
use syscalls::Sysno;

/// The syscall as compared: its own arguments only, each under its rule.
pub fn normalize(record: &SyscallRecord) -> Result<Normalized, UnknownSyscall> {
    sim::kernel::signature::normalize(record.nr, &record.args, record.ret)
}

/// Results under the pid rule that are a process group's or a session's id, not a task's.
const GROUP_RESULTS: &[Sysno] = &[Sysno::getpgrp, Sysno::getpgid, Sysno::getsid];

/// An argument or result as compared in a run of several tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value {
    /// Under its rule.
    Shown(Shown),
    /// The id of one of the run's tasks, by its normalized id.
    Task(u32),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Shown(shown) => shown.fmt(f),
            Value::Task(id) => write!(f, "<pid {id}>"),
        }
    }
}

/// A syscall as compared: `Normalized`, with the run's task ids named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub name: &'static str,
    pub args: Vec<Value>,
    pub result: Value,
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let args: Vec<String> = self.args.iter().map(Value::to_string).collect();
        write!(f, "{}({}) = {}", self.name, args.join(", "), self.result)
    }
}

/// Whether `record` waits for any child (or any of a group) rather than a given one.
pub fn waits_for_any_child(record: &SyscallRecord) -> bool {
    record.nr == Sysno::wait4.id() as u64 && record.args[0] as i32 <= 0
}

/// The syscall as compared, with each id of a task in `ids` (host or simulated id →
/// normalized id) named by its normalized id. With no ids, exactly `normalize`.
pub fn normalize_with_ids(
    record: &SyscallRecord,
    ids: &BTreeMap<i32, u32>,
) -> Result<Call, UnknownSyscall> {
    let normalized = normalize(record)?;
    let row = table::lookup(record.nr).expect("normalize found its row");
    let taken = argument_kinds(row.signature, &record.args)
        .chars()
        .zip(record.args)
        .filter(|&(kind, _)| kind != '-');
    let args = taken
        .zip(normalized.args)
        .map(|((kind, value), shown)| match kind {
            'i' => task(ids, shown, value),
            _ => Value::Shown(shown),
        })
        .collect();
    let names_a_task = row.signature.result == Rule::Pid
        && !GROUP_RESULTS.contains(&row.sysno)
        && !waits_for_any_child(record);
    let result = if names_a_task {
        task(ids, normalized.result, record.ret)
    } else {
        Value::Shown(normalized.result)
    };
    Ok(Call {
        name: normalized.name,
        args,
        result,
    })
}

/// An id shown under the pid rule, by its normalized id if it is one of the run's tasks.
fn task(ids: &BTreeMap<i32, u32>, shown: Shown, value: u64) -> Value {
    // A pid_t, whatever the register's upper half holds.
    match ids.get(&(value as i32)) {
        Some(&id) if shown == Shown::Pid => Value::Task(id),
        _ => Value::Shown(shown),
    }
}

/// An error result: -4095..-1 as a signed number.
fn failed(ret: u64) -> bool {
    (-4095..0).contains(&(ret as i64))
}

/// Calls the simulator declines on purpose (`Rule::Declined`, -ENOSYS) that glibc then
/// follows with another: clone3, as a kernel before 5.3, and clone.
const FALLBACKS: &[(Sysno, Sysno)] = &[(Sysno::clone3, Sysno::clone)];

/// A task's calls as compared, each with its index in `records`. A declined call and the
/// fallback that follows it count as one: the declined call with the fallback's result;
/// where the declined call succeeded (natively), its own result is compared as the
/// fallback's would be; where it failed otherwise, or no fallback follows, it is compared
/// as declined, as in a run of one task. So a native `clone3(...) = <pid 1001>` meets the simulator's
/// `clone3(...) = -ENOSYS; clone(...) = <pid 1001>`, and the task each created is compared.
pub fn calls<'a>(
    records: &'a [SyscallRecord],
    ids: &'a BTreeMap<i32, u32>,
) -> impl Iterator<Item = (usize, Result<Call, UnknownSyscall>)> + 'a {
    let enosys = (-(libc::ENOSYS as i64)) as u64;
    let mut next = 0;
    std::iter::from_fn(move || {
        let (index, record) = (next, records.get(next)?);
        next += 1;
        let fallback = FALLBACKS
            .iter()
            .find(|(declined, _)| declined.id() as u64 == record.nr)
            .map(|&(_, fallback)| fallback.id() as u64);
        let Some(fallback) = fallback else {
            return Some((index, normalize_with_ids(record, ids)));
        };
        let served_by = records
            .get(next)
            .filter(|call| record.ret == enosys && call.nr == fallback);
        next += served_by.is_some() as usize;
        let served = served_by.or((!failed(record.ret)).then_some(record));
        let Some(&SyscallRecord { ret, .. }) = served else {
            return Some((index, normalize_with_ids(record, ids)));
        };
        let folded = normalize_with_ids(record, ids).and_then(|call| {
            let served = SyscallRecord {
                nr: fallback,
                ret,
                ..record.clone()
            };
            Ok(Call {
                result: normalize_with_ids(&served, ids)?.result,
                ..call
            })
        });
        Some((index, folded))
    })
}

/// The kinds of these arguments (`Signature::args`): their command's, or the syscall's own.
fn argument_kinds(signature: sim::kernel::signature::Signature, args: &[u64; 6]) -> &'static str {
    let command = |c: &sim::kernel::signature::Commands| {
        let command = args[c.at] & c.mask;
        c.args.iter().find(|(known, _)| *known == command)
    };
    signature
        .commands
        .and_then(command)
        .map_or(signature.args, |(_, kinds)| kinds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use syscalls::Sysno;

    fn record(nr: Sysno, args: &[u64], ret: u64) -> SyscallRecord {
        let mut all = [0xdead_beef; 6];
        all[..args.len()].copy_from_slice(args);
        SyscallRecord {
            machine_file: false,
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

    /// A native run's host ids and the simulator's, each mapped to the same normalized ids.
    fn native_ids() -> BTreeMap<i32, u32> {
        BTreeMap::from([(41_233, 1000), (41_240, 1001), (41_236, 1002)])
    }

    fn simulated_ids() -> BTreeMap<i32, u32> {
        BTreeMap::from([(1000, 1000), (1001, 1001), (1002, 1002)])
    }

    fn same_in_trees(native: &SyscallRecord, simulated: &SyscallRecord) -> bool {
        let native = normalize_with_ids(native, &native_ids()).unwrap();
        native == normalize_with_ids(simulated, &simulated_ids()).unwrap()
    }

    #[test]
    fn ids_of_the_run_s_tasks_compare_by_normalized_id() {
        assert!(same_in_trees(
            &record(Sysno::fork, &[], 41_240),
            &record(Sysno::fork, &[], 1001)
        ));
        assert!(!same_in_trees(
            &record(Sysno::fork, &[], 41_240),
            &record(Sysno::fork, &[], 1002)
        ));
        assert!(same_in_trees(
            &record(Sysno::wait4, &[41_236, 0x7ff0, 0, 0], 41_236),
            &record(Sysno::wait4, &[1002, 0x7ff0, 0, 0], 1002)
        ));
        assert!(!same_in_trees(
            &record(Sysno::tgkill, &[41_233, 41_240, 15], 0),
            &record(Sysno::tgkill, &[1000, 1000, 15], 0)
        ));
        // The parent of the root is outside both runs: an id, whichever.
        assert!(same_in_trees(
            &record(Sysno::getppid, &[], 812),
            &record(Sysno::getppid, &[], 999)
        ));
        let fork = normalize_with_ids(&record(Sysno::fork, &[], 1001), &simulated_ids());
        assert_eq!(fork.unwrap().to_string(), "fork() = <pid 1001>");
    }

    #[test]
    fn group_ids_and_a_wait_for_any_child_keep_the_pid_rule() {
        // The native root is in the oracle's process group; the simulated root leads its own.
        assert!(same_in_trees(
            &record(Sysno::getpgrp, &[], 700),
            &record(Sysno::getpgrp, &[], 1000)
        ));
        // Which child ends first is the schedule's.
        let any = u64::MAX;
        assert!(same_in_trees(
            &record(Sysno::wait4, &[any, 0x7ff0, 0, 0], 41_240),
            &record(Sysno::wait4, &[any, 0x7ff0, 0, 0], 1002)
        ));
    }

    #[test]
    fn with_no_ids_calls_compare_as_normalize_shows_them() {
        let none = BTreeMap::new();
        let call = record(Sysno::kill, &[41_233, 0], 0);
        let normalized = normalize_with_ids(&call, &none).unwrap();
        assert_eq!(
            normalized.to_string(),
            normalize(&call).unwrap().to_string()
        );
    }

    #[test]
    fn a_declined_clone3_and_its_fallback_are_one_creation() {
        let enosys = (-(libc::ENOSYS as i64)) as u64;
        let eagain = (-(libc::EAGAIN as i64)) as u64;
        let native = [
            record(Sysno::clone3, &[0x7ff0, 0x58], 41_240),
            record(Sysno::getpid, &[], 41_233),
        ];
        let simulated = [
            record(Sysno::clone3, &[0x7fe0, 0x58], enosys),
            record(
                Sysno::clone,
                &[0x3d0f00, 0x7fd0, 0x7fc0, 0x7fb0, 0x7fa0],
                1001,
            ),
            record(Sysno::getpid, &[], 1000),
        ];
        let (native_ids, simulated_ids) = (native_ids(), simulated_ids());
        let native: Vec<_> = calls(&native, &native_ids).collect();
        let simulated: Vec<_> = calls(&simulated, &simulated_ids).collect();
        let indices = |calls: &[(usize, _)]| calls.iter().map(|c| c.0).collect::<Vec<_>>();
        assert_eq!(
            (indices(&native), indices(&simulated)),
            (vec![0, 1], vec![0, 2])
        );
        let shown = |calls: &[(usize, Result<Call, UnknownSyscall>)]| {
            calls
                .iter()
                .map(|c| c.1.clone().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            shown(&native),
            [
                "clone3(<pointer>, 0x58) = <pid 1001>",
                "getpid() = <pid 1000>"
            ]
        );
        assert_eq!(shown(&native), shown(&simulated));
        // A clone3 that failed otherwise, natively, is compared as declined.
        let failed = [record(Sysno::clone3, &[0x7ff0, 0x58], eagain)];
        let failed: Vec<_> = calls(&failed, &native_ids).collect();
        assert_eq!(shown(&failed), ["clone3(<pointer>, 0x58) = <declined>"]);
    }
}
