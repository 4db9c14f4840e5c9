//! Comparing two runs; the first difference is reported with its context.
//!
//! A run of one task is compared on its exit status, stdout, stderr, its normalized syscall
//! sequence, the files written, and, between two simulated runs, the guest instruction
//! count, in that order.
//!
//! A run of several tasks (fork, vfork, clone on either side) is compared task by task
//! (`tasks`), each task matched with its counterpart by (creation path, thread number):
//!
//! 1. each pair's syscall sequences, ids of the run's tasks compared by normalized id
//!    (`normalize`), and futex calls left out (glibc makes them only when a lock is
//!    contended: the schedule's);
//! 2. the set of tasks, and the children each reaped through waits for any child, as a set;
//! 3. each process's exit (the root's included);
//! 4. stdout and stderr (`output`: byte for byte when one task wrote to the descriptor, as
//!    lines in any order when several did);
//! 5. the files and the instruction count, as for one task.
//!
//! Not compared: how the tasks' calls interleave, which is the schedule's (the host's
//! natively, the simulator's scheduler in a simulated run). Where the program orders its
//! tasks itself, the order shows in the sequences it is made of (a pipe read's count, a
//! wait's result). A task's divergence is a cause, and a process's status or the output its
//! consequence, so the tasks come first; of several diverging tasks, the one that diverged
//! first in the second run's order (a simulated run's trace, in both pairs) is reported.
//!
//! In either kind of run, a declined call (rseq) on one side only is skipped: glibc
//! remembers the simulator's refusal, so a new thread that natively asks again asks nothing
//! simulated; and a declined clone3 with the clone glibc falls back to counts as one call
//! (`normalize::calls`).

mod output;
mod tasks;

use std::collections::BTreeMap;

use serde::Serialize;
use sim::accounting::SyscallRecord;
use syscalls::Sysno;

use crate::normalize::{calls, Call, Shown, UnknownSyscall, Value};
use crate::observed::{FileChange, Observed};

/// Syscalls shown before a diverging one.
const CONTEXT: usize = 3;
/// Bytes shown around the first differing byte of an output.
const WINDOW: usize = 32;

/// The first difference between two runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Divergence {
    /// The two runs, e.g. ["native", "ring3"].
    pub pair: [String; 2],
    /// What differs: "exit status", "stdout", "stderr", "syscall", "file", "guest
    /// instructions"; in a run of several tasks also "presence" (a task on one side only)
    /// and "reaped children"; for a network process, "stream bytes" (the totals per
    /// descriptor).
    pub what: String,
    /// For a syscall, its index in the first run's sequence of its task (from 0); for an
    /// output compared byte for byte, the byte offset.
    pub index: Option<usize>,
    /// A file's path.
    pub path: Option<String>,
    /// In a run of several tasks, the task (or the process, by its first task) that differs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskName>,
    /// Each side, as the first run saw it and as the second did.
    pub left: String,
    pub right: String,
    /// The syscalls before a diverging one, which both runs made alike.
    pub context: Vec<String>,
}

impl Divergence {
    fn between(a: &Named, b: &Named, what: &str, left: String, right: String) -> Self {
        Divergence {
            pair: [a.name.to_string(), b.name.to_string()],
            what: what.to_string(),
            index: None,
            path: None,
            task: None,
            left,
            right,
            context: Vec::new(),
        }
    }
}

/// A task as a divergence names it: its normalized id and its process's argv.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TaskName {
    pub id: u32,
    pub argv: Vec<String>,
}

impl std::fmt::Display for TaskName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "task {} ({})", self.id, self.argv.join(" "))
    }
}

/// One run, named.
pub struct Named<'a> {
    pub name: &'a str,
    pub observed: &'a Observed,
}

/// The first difference between `a` and `b`, if any.
pub fn compare(a: &Named, b: &Named) -> Option<Divergence> {
    let several = |run: &Named| run.observed.tree.tasks.len() > 1;
    let found = if several(a) || several(b) {
        tasks::compare(a, b).or_else(|| output::compare(a, b))
    } else {
        status(a, b)
            .or_else(|| output::compare(a, b))
            .or_else(|| root_syscalls(a, b))
    };
    found.or_else(|| files(a, b)).or_else(|| instructions(a, b))
}

fn status(a: &Named, b: &Named) -> Option<Divergence> {
    let (x, y) = (&a.observed.status, &b.observed.status);
    (x != y).then(|| Divergence::between(a, b, "exit status", x.to_string(), y.to_string()))
}

fn root_syscalls<'a>(a: &Named<'a>, b: &Named<'a>) -> Option<Divergence> {
    let none = BTreeMap::new();
    let sequence = |run: &'a Observed| Sequence {
        records: &run.syscalls,
        ids: &none,
        unordered: &[],
        merged_reads: false,
    };
    let difference = first_diverging_call(sequence(a.observed), sequence(b.observed))?;
    Some(difference.divergence(a, b))
}

/// Where two syscall sequences first differ.
struct CallDifference {
    /// The index in the first run's sequence (where it ended, if it did first).
    index: usize,
    /// The same in the second run's.
    right_index: usize,
    left: String,
    right: String,
    /// The calls before it.
    context: Vec<String>,
}

impl CallDifference {
    fn divergence(self, a: &Named, b: &Named) -> Divergence {
        Divergence {
            index: Some(self.index),
            context: self.context,
            ..Divergence::between(a, b, "syscall", self.left, self.right)
        }
    }
}

/// A task's syscalls as compared.
struct Sequence<'a> {
    records: &'a [SyscallRecord],
    /// Its run's task ids → normalized ids (empty: ids compared under their rule alone).
    ids: &'a BTreeMap<i32, u32>,
    /// Calls left out of the comparison.
    unordered: &'a [Sysno],
    /// Consecutive reads of one descriptor that got bytes compared as one (`merge_reads`).
    merged_reads: bool,
}

impl<'a> Sequence<'a> {
    /// The calls as compared, each with its index in `records`.
    fn calls(&self) -> impl Iterator<Item = (usize, Result<Call, UnknownSyscall>)> + 'a {
        let (records, unordered) = (self.records, self.unordered);
        let compared = calls(records, self.ids).filter(move |(index, _)| {
            let nr = records[*index].nr;
            !unordered.iter().any(|left_out| left_out.id() as u64 == nr)
        });
        merge_reads(compared, self.merged_reads)
    }
}

/// With `merge`, each run of consecutive reads of one descriptor that got bytes becomes one
/// read of all of them, shown with the first one's arguments. Between processes, how much a
/// read of a pipe gets is the schedule's: what the writer wrote before the reader ran, in
/// one write or several.
fn merge_reads<'a>(
    calls: impl Iterator<Item = (usize, Result<Call, UnknownSyscall>)> + 'a,
    merge: bool,
) -> impl Iterator<Item = (usize, Result<Call, UnknownSyscall>)> + 'a {
    fn got(call: &Call) -> Option<u64> {
        match call.result {
            Value::Shown(Shown::Exact(bytes)) if call.name == "read" && bytes > 0 => Some(bytes),
            _ => None,
        }
    }
    let mut calls = calls.peekable();
    std::iter::from_fn(move || {
        let (index, mut call) = calls.next()?;
        if let (true, Ok(read)) = (merge, call.as_mut()) {
            while let Some(total) = got(read) {
                let more = calls.next_if(|(_, next)| {
                    matches!(next, Ok(next) if next.args.first() == read.args.first() && got(next).is_some())
                });
                let Some((_, Ok(next))) = more else { break };
                let bytes = got(&next).expect("checked by next_if");
                read.result = Value::Shown(Shown::Exact(total + bytes));
            }
        }
        Some((index, call))
    })
}

/// A call that `Rule::Declined` compares (rseq): glibc remembers the simulator's refusal
/// (a new thread inherits it and does not ask again), so where the host grants it, one side
/// may make such a call that the other never does.
fn declined(call: Option<&(usize, Result<Call, UnknownSyscall>)>) -> bool {
    matches!(call, Some((_, Ok(call))) if call.result == Value::Shown(Shown::Declined))
}

/// The first difference of two sequences, a declined call on one side only skipped.
fn first_diverging_call(x: Sequence, y: Sequence) -> Option<CallDifference> {
    let (mut left_calls, mut right_calls) = (x.calls().peekable(), y.calls().peekable());
    let mut context: Vec<String> = Vec::new();
    loop {
        let (next_left, next_right) = (left_calls.peek(), right_calls.peek());
        let name = |call: Option<&(usize, Result<Call, UnknownSyscall>)>| match call {
            Some((_, Ok(call))) => Some(call.name),
            _ => None,
        };
        if name(next_left) != name(next_right) {
            if declined(next_left) {
                left_calls.next();
                continue;
            }
            if declined(next_right) {
                right_calls.next();
                continue;
            }
        }
        let (left, right) = (left_calls.next(), right_calls.next());
        let (left_call, right_call) = (left.as_ref().map(|c| &c.1), right.as_ref().map(|c| &c.1));
        if left.is_none() && right.is_none() {
            return None;
        }
        if left_call != right_call || matches!(left_call, Some(Err(_))) {
            let show =
                |side: Option<&Result<Call, UnknownSyscall>>, calls: &[SyscallRecord]| match side {
                    Some(Ok(call)) => call.to_string(),
                    Some(Err(unknown)) => unknown.to_string(),
                    None => format!("(none: {} syscalls in all)", calls.len()),
                };
            let start = context.len().saturating_sub(CONTEXT);
            return Some(CallDifference {
                index: left.as_ref().map_or(x.records.len(), |c| c.0),
                right_index: right.as_ref().map_or(y.records.len(), |c| c.0),
                left: show(left_call, x.records),
                right: show(right_call, y.records),
                context: context.split_off(start),
            });
        }
        if let Some((index, Ok(call))) = left {
            context.push(format!("#{index} {call}"));
        }
    }
}

fn files(a: &Named, b: &Named) -> Option<Divergence> {
    let (x, y) = (&a.observed.files, &b.observed.files);
    let paths: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
    paths.into_iter().find_map(|path| {
        let (left, right) = (x.get(path), y.get(path));
        (left != right).then(|| Divergence {
            path: Some(path.clone()),
            ..Divergence::between(a, b, "file", describe_file(left), describe_file(right))
        })
    })
}

fn instructions(a: &Named, b: &Named) -> Option<Divergence> {
    let (left, right) = (
        a.observed.guest_instructions?,
        b.observed.guest_instructions?,
    );
    (left != right).then(|| {
        Divergence::between(
            a,
            b,
            "guest instructions",
            left.to_string(),
            right.to_string(),
        )
    })
}

fn describe_file(change: Option<&FileChange>) -> String {
    match change {
        None => "not written".into(),
        Some(FileChange::Removed) => "removed".into(),
        Some(FileChange::Directory) => "a directory".into(),
        Some(FileChange::Symlink(target)) => format!("a symbolic link to {target}"),
        Some(FileChange::Written(bytes)) => {
            format!("{} bytes, starting {}", bytes.len(), window(bytes, 0))
        }
    }
}

fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    if a == b {
        return None;
    }
    Some(
        a.iter()
            .zip(b)
            .position(|(x, y)| x != y)
            .unwrap_or(a.len().min(b.len())),
    )
}

/// The bytes around `offset`, escaped, with the total length.
fn window(bytes: &[u8], offset: usize) -> String {
    let start = offset.saturating_sub(WINDOW / 2);
    let end = (offset + WINDOW / 2).min(bytes.len());
    let shown: String = bytes
        .get(start..end)
        .unwrap_or_default()
        .escape_ascii()
        .to_string();
    format!("{} bytes: …\"{shown}\"…", bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observed::{normalized_ids, ProcessRecord, Status, TaskRecord, TaskTree};
    use sim::accounting::SyscallRecord;

    /// A task with its calls, each `(syscall, arguments, result, place in the run's order)`.
    pub(super) fn task(
        path: &[u32],
        tid: i32,
        calls: &[(Sysno, &[u64], u64, usize)],
    ) -> TaskRecord {
        let record = |&(nr, args, ret, _): &(Sysno, &[u64], u64, usize)| {
            let mut all = [0; 6];
            all[..args.len()].copy_from_slice(args);
            SyscallRecord {
                machine_file: false,
                tid: tid as u64,
                nr: nr.id() as u64,
                args: all,
                ret,
            }
        };
        TaskRecord {
            syscalls: calls.iter().map(record).collect(),
            order: calls.iter().map(|call| call.3).collect(),
            ..TaskRecord::new(tid, path.to_vec(), 0)
        }
    }

    /// A run of these single-threaded processes, each exited 0.
    pub(super) fn run_of(tasks: Vec<TaskRecord>) -> Observed {
        let processes = tasks
            .iter()
            .map(|task| ProcessRecord {
                path: task.path.clone(),
                pid: task.tid,
                argv: vec![format!("prog{:?}", task.path)],
                status: Status::Exited(0),
            })
            .collect();
        Observed {
            status: Status::Exited(0),
            stdout: Vec::new(),
            stderr: Vec::new(),
            syscalls: tasks[0].syscalls.clone(),
            files: Default::default(),
            guest_instructions: None,
            tree: TaskTree {
                ids: normalized_ids(&tasks),
                tasks,
                processes,
            },
        }
    }

    pub(super) fn diverge(native: &Observed, simulated: &Observed) -> Option<Divergence> {
        let named = |name, observed| Named { name, observed };
        compare(&named("native", native), &named("ring3", simulated))
    }

    /// A parent that forks, and waits for its child, which exits 3; natively the child ran
    /// first, simulated the parent did.
    pub(super) fn forked(child_pid: [i32; 2]) -> [Observed; 2] {
        // Each call's place in the run's order: (the parent's wait, the child's two calls).
        let run = |parent: i32, child: i32, (wait, getpid, exit): (usize, usize, usize)| {
            let pid = child as u64;
            let parent_calls = [
                (Sysno::fork, &[][..], pid, 0),
                (Sysno::wait4, &[pid], pid, wait),
            ];
            let child_calls = [
                (Sysno::getpid, &[][..], pid, getpid),
                (Sysno::exit_group, &[3], 0, exit),
            ];
            run_of(vec![
                task(&[], parent, &parent_calls),
                task(&[0], child, &child_calls),
            ])
        };
        [
            run(500, child_pid[0], (3, 1, 2)),
            run(1000, child_pid[1], (1, 2, 3)),
        ]
    }

    fn run(syscalls: &[(u64, u64)]) -> Observed {
        Observed {
            status: Status::Exited(0),
            stdout: b"hello\n".to_vec(),
            stderr: Vec::new(),
            syscalls: syscalls
                .iter()
                .map(|&(nr, ret)| SyscallRecord {
                    machine_file: false,
                    tid: 1000,
                    nr,
                    args: [1, 0x1000, 6, 0, 0, 0],
                    ret,
                })
                .collect(),
            files: Default::default(),
            guest_instructions: Some(100),
            tree: Default::default(),
        }
    }

    fn named<'a>(name: &'a str, observed: &'a Observed) -> Named<'a> {
        Named { name, observed }
    }

    #[test]
    fn identical_runs_agree() {
        let a = run(&[(1, 6), (231, 0)]);
        assert_eq!(compare(&named("a", &a), &named("b", &a.clone())), None);
    }

    #[test]
    fn the_first_diverging_syscall_is_reported_with_what_came_before() {
        let a = run(&[(39, 5), (1, 6), (1, 6), (231, 0)]);
        let b = run(&[(39, 6), (1, 6), (1, 5), (231, 0)]);
        let d = compare(&named("native", &a), &named("ring3", &b)).unwrap();
        assert_eq!(d.what, "syscall");
        assert_eq!(d.index, Some(2));
        assert_eq!(d.left, "write(0x1, <pointer>, 0x6) = 0x6");
        assert_eq!(d.right, "write(0x1, <pointer>, 0x6) = 0x5");
        assert_eq!(d.context.len(), 2);
        assert!(d.context[0].starts_with("#0 getpid"), "{:?}", d.context);
    }

    #[test]
    fn a_missing_syscall_diverges() {
        let a = run(&[(1, 6), (231, 0)]);
        let b = run(&[(1, 6)]);
        let d = compare(&named("a", &a), &named("b", &b)).unwrap();
        assert_eq!(
            (d.index, d.right.as_str()),
            (Some(1), "(none: 1 syscalls in all)")
        );
    }

    #[test]
    fn status_outputs_files_and_counts_each_diverge() {
        let a = run(&[]);
        let mut b = a.clone();
        b.status = Status::Signaled("SIGSEGV".into());
        assert_eq!(
            compare(&named("a", &a), &named("b", &b)).unwrap().what,
            "exit status"
        );
        let mut b = a.clone();
        b.stdout = b"help\n".to_vec();
        let d = compare(&named("a", &a), &named("b", &b)).unwrap();
        assert_eq!((d.what.as_str(), d.index), ("stdout", Some(3)));
        let mut b = a.clone();
        b.files
            .insert("out.txt".into(), FileChange::Written(b"x".to_vec()));
        let d = compare(&named("a", &a), &named("b", &b)).unwrap();
        assert_eq!(
            (d.what.as_str(), d.path.as_deref()),
            ("file", Some("out.txt"))
        );
        let mut b = a.clone();
        b.guest_instructions = Some(101);
        assert_eq!(
            compare(&named("a", &a), &named("b", &b)).unwrap().what,
            "guest instructions"
        );
    }
}
