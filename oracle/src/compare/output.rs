//! stdout and stderr. The oracle sees each as one file that every task of the run shares,
//! so when several tasks write to one, the order of their writes is the schedule's: two
//! lines written by two processes may come in either order, natively from one run to the
//! next. The rule, for each of the two:
//!
//! - when at most one task wrote to the descriptor (a write-family call on fd 1, or fd 2,
//!   in its sequence), byte for byte: the bytes' order is that task's, as in a run of one
//!   task;
//! - when several did, as a multiset of lines (each up to and including its newline; the
//!   last may lack one): every line must be there as many times on each side, in any order.
//!   What each task wrote is still checked call by call in its sequence (each write's count
//!   and result); what is given up is the order of lines from different tasks.
//!
//! A task that writes to the output through another descriptor (a dup of 1) is not counted,
//! which can only make the comparison stricter than the rule: a false divergence, never a
//! missed one.

use std::collections::BTreeMap;

use sim::accounting::SyscallRecord;
use syscalls::Sysno;

use super::{first_difference, window, Divergence, Named};
use crate::observed::TaskTree;

/// The calls that write to a descriptor, and which of their arguments it is.
const WRITES: &[(Sysno, usize)] = &[
    (Sysno::write, 0),
    (Sysno::writev, 0),
    (Sysno::pwrite64, 0),
    (Sysno::pwritev, 0),
    (Sysno::pwritev2, 0),
    (Sysno::sendfile, 0),
    (Sysno::splice, 2),
    (Sysno::tee, 1),
    (Sysno::copy_file_range, 2),
];

/// The first difference in stdout, then in stderr.
pub(super) fn compare(a: &Named, b: &Named) -> Option<Divergence> {
    let (x, y) = (a.observed, b.observed);
    [
        ("stdout", 1, &x.stdout, &y.stdout),
        ("stderr", 2, &x.stderr, &y.stderr),
    ]
    .into_iter()
    .find_map(|(what, fd, left, right)| {
        let several = writers(&x.tree, fd).max(writers(&y.tree, fd)) > 1;
        if several {
            by_lines(left, right).map(|(left, right)| Divergence::between(a, b, what, left, right))
        } else {
            let offset = first_difference(left, right)?;
            Some(Divergence {
                index: Some(offset),
                ..Divergence::between(a, b, what, window(left, offset), window(right, offset))
            })
        }
    })
}

/// The tasks of `tree` that made a write-family call on `fd`.
fn writers(tree: &TaskTree, fd: u64) -> usize {
    let writes_to_fd = |call: &SyscallRecord| {
        WRITES
            .iter()
            .any(|&(nr, at)| call.nr == nr.id() as u64 && call.args[at] as i32 as i64 == fd as i64)
    };
    tree.tasks
        .iter()
        .filter(|task| task.syscalls.iter().any(writes_to_fd))
        .count()
}

/// How many times each line occurs.
fn lines(bytes: &[u8]) -> BTreeMap<&[u8], usize> {
    let mut counts = BTreeMap::new();
    for line in bytes.split_inclusive(|&byte| byte == b'\n') {
        *counts.entry(line).or_insert(0) += 1;
    }
    counts
}

/// Each side's description of the first line (in `left`'s order, then `right`'s) that
/// occurs a different number of times in the two; `None` when none does.
fn by_lines(left: &[u8], right: &[u8]) -> Option<(String, String)> {
    let (x, y) = (lines(left), lines(right));
    let count =
        |counts: &BTreeMap<&[u8], usize>, line: &[u8]| counts.get(line).copied().unwrap_or(0);
    let line = left
        .split_inclusive(|&byte| byte == b'\n')
        .chain(right.split_inclusive(|&byte| byte == b'\n'))
        .find(|line| count(&x, line) != count(&y, line))?;
    let describe = |counts: &BTreeMap<&[u8], usize>| {
        format!(
            "{} lines in any order, \"{}\" {} times",
            counts.values().sum::<usize>(),
            line.escape_ascii(),
            count(counts, line)
        )
    };
    Some((describe(&x), describe(&y)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::tests::{diverge, forked};

    /// The forked parent and child of `compare::tests`, each writing a line to stdout.
    fn both_write(stdout: [&[u8]; 2]) -> [crate::observed::Observed; 2] {
        let mut runs = forked([501, 1001]);
        for (run, stdout) in runs.iter_mut().zip(stdout) {
            for task in &mut run.tree.tasks {
                let write = SyscallRecord {
                    machine_file: false,
                    tid: task.tid as u64,
                    nr: Sysno::write.id() as u64,
                    args: [1, 0x7ff0, 6, 0, 0, 0],
                    ret: 6,
                };
                task.syscalls.insert(0, write);
                task.order.insert(0, 0);
            }
            run.stdout = stdout.to_vec();
        }
        runs
    }

    #[test]
    fn lines_of_several_writers_may_come_in_any_order() {
        let [native, simulated] = both_write([b"child\nparent\n", b"parent\nchild\n"]);
        assert_eq!(diverge(&native, &simulated), None);
        let [native, simulated] = both_write([b"child\nparent\n", b"parent\nchilD\n"]);
        let d = diverge(&native, &simulated).unwrap();
        assert_eq!((d.what.as_str(), d.index), ("stdout", None));
    }

    #[test]
    fn one_writer_s_bytes_compare_exactly() {
        let [mut native, mut simulated] = forked([501, 1001]);
        native.stdout = b"a\nb\n".to_vec();
        simulated.stdout = b"b\na\n".to_vec();
        let d = diverge(&native, &simulated).unwrap();
        assert_eq!((d.what.as_str(), d.index), ("stdout", Some(0)));
    }

    #[test]
    fn lines_in_another_order_agree_and_a_missing_or_changed_one_does_not() {
        assert_eq!(by_lines(b"a\nb\nb\n", b"b\na\nb\n"), None);
        assert_eq!(
            by_lines(b"a\nb\n", b"a\n"),
            Some((
                "2 lines in any order, \"b\\n\" 1 times".into(),
                "1 lines in any order, \"b\\n\" 0 times".into()
            ))
        );
        // The last line without its newline is another line.
        assert!(by_lines(b"a\nb\n", b"b\na").is_some());
    }
}
