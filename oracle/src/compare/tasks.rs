//! Runs of several tasks, task by task: each task matched by (creation path, thread number)
//! with its counterpart, whatever ids the host or the simulator gave them.
//!
//! In order: each pair's syscall sequences (the diverging task that comes first in the
//! second run's order is reported: a later divergence elsewhere is likely its consequence,
//! as a parent's that reads its child's status); then, task by task, a task on one side only
//! and the children reaped by waits for any child, compared as a set since which child
//! ends first is the schedule's; then each process's exit.
//!
//! What the schedule decides in a sequence is left out of it: futex calls everywhere; in a
//! task that runs signal handlers and waits for children, where its handlers run and the
//! waits around them (`AROUND_HANDLERS`); in a task another task's signal killed, how far it
//! got (`compared_length`); in a network process, how its streams' bytes split into reads
//! and writes and the polls between them (`STREAM_MOVES`, `STREAM_POLLS`), whose totals per descriptor are
//! compared instead.

use std::collections::{BTreeMap, BTreeSet};

use syscalls::Sysno;

use sim::accounting::SyscallRecord;

use super::{first_diverging_call, Divergence, Named, Sequence, TaskName};
use crate::normalize::waits_for_any_child;
use crate::observed::{ProcessRecord, Status, TaskRecord, TaskTree};

/// Calls whose presence and results the schedule decides, left out of the sequences:
/// glibc's locks, condition variables and joins call futex only when contended (a wait
/// fails with EAGAIN if the word changed meanwhile, a wake counts whom it woke).
const SCHEDULED: &[Sysno] = &[Sysno::futex];

/// What a task that runs signal handlers and waits for children does where the schedule
/// puts it: a SIGCHLD handler runs wherever a child's end finds the task (its rt_sigreturn
/// there), and the waits, sigsuspends and signal masking around it follow (a WNOHANG round
/// finds a child or not; a sigsuspend is needed or not; ash blocks signals while it reaps).
/// The children it reaps are still compared, as a set.
const AROUND_HANDLERS: &[Sysno] = &[
    Sysno::futex,
    Sysno::rt_sigreturn,
    Sysno::rt_sigsuspend,
    Sysno::rt_sigprocmask,
    Sysno::wait4,
    Sysno::waitid,
];

/// A network process's stream I/O: how many bytes a read of a socket gets, and so how many
/// reads, writes and polls its loop makes, is what its peer had sent when the call ran,
/// which natively is the host's schedule (two CPUs) and simulated the simulator's. The bytes
/// the moving calls moved through each descriptor are compared as totals instead
/// (`stream_totals`); the polls, which move none, are left out.
const STREAM_MOVES: &[Sysno] = &[
    Sysno::read,
    Sysno::readv,
    Sysno::recvfrom,
    Sysno::recvmsg,
    Sysno::write,
    Sysno::writev,
    Sysno::sendto,
    Sysno::sendmsg,
    Sysno::sendfile,
];
const STREAM_POLLS: &[Sysno] = &[
    Sysno::poll,
    Sysno::ppoll,
    Sysno::select,
    Sysno::pselect6,
    Sysno::epoll_wait,
    Sysno::epoll_pwait,
];

/// The calls that make a process a network one: they make a socket with a peer the
/// schedule runs (a socketpair's processes are compared call by call).
const NETWORK: &[Sysno] = &[Sysno::socket, Sysno::accept, Sysno::accept4];

/// Of the stream I/O calls, those that move bytes into the task (the rest move them out).
const INTO_TASK: &[Sysno] = &[Sysno::read, Sysno::readv, Sysno::recvfrom, Sysno::recvmsg];

/// Signals a task's own instruction raises: a process one of them killed got exactly as far
/// on both sides.
const FAULT_SIGNALS: &[&str] = &["SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE", "SIGTRAP", "SIGSYS"];

/// Whether `call` is one of `calls`.
fn is_one_of(call: &SyscallRecord, calls: &[Sysno]) -> bool {
    calls.iter().any(|sysno| sysno.id() as u64 == call.nr)
}

/// The calls of `left` and `right` that are left out of their comparison, as `SCHEDULED`,
/// `AROUND_HANDLERS` and, for a network process's task, the stream calls say.
fn left_out(left: &TaskRecord, right: &TaskRecord, network: bool) -> Vec<Sysno> {
    let makes = |calls: &[Sysno]| {
        [left, right]
            .iter()
            .any(|task| task.syscalls.iter().any(|call| is_one_of(call, calls)))
    };
    let mut calls = if makes(&[Sysno::rt_sigreturn]) && makes(&[Sysno::wait4, Sysno::waitid]) {
        AROUND_HANDLERS.to_vec()
    } else {
        SCHEDULED.to_vec()
    };
    if network {
        calls.extend_from_slice(STREAM_MOVES);
        calls.extend_from_slice(STREAM_POLLS);
    }
    calls
}

/// The creation paths of the processes that made a network socket, on either side.
fn network_processes<'a>(sides: [&Side<'a>; 2]) -> BTreeSet<&'a [u32]> {
    sides
        .iter()
        .flat_map(|side| side.tasks.values())
        .filter(|task| task.syscalls.iter().any(|call| is_one_of(call, NETWORK)))
        .map(|task| task.path.as_slice())
        .collect()
}

/// Whether the process at `path` is a network one: it, or a process it descends from, made
/// a network socket (which it may have inherited).
fn is_network(path: &[u32], network: &BTreeSet<&[u32]>) -> bool {
    (0..=path.len()).any(|n| network.contains(&path[..n]))
}

/// The bytes `records`' stream I/O moved, by descriptor: (into the task, out of it).
fn stream_totals(records: &[SyscallRecord]) -> BTreeMap<u64, (u64, u64)> {
    let mut totals: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for call in records {
        if !is_one_of(call, STREAM_MOVES) || (call.ret as i64) <= 0 {
            continue;
        }
        let entry = totals.entry(call.args[0]).or_default();
        if is_one_of(call, INTO_TASK) {
            entry.0 += call.ret;
        } else {
            entry.1 += call.ret;
        }
    }
    totals
}

fn describe_totals(totals: &BTreeMap<u64, (u64, u64)>) -> String {
    let each: Vec<String> = totals
        .iter()
        .map(|(fd, (read, written))| format!("fd {fd}: {read} bytes in, {written} out"))
        .collect();
    format!("{{{}}}", each.join("; "))
}

/// How many of a pair's calls are compared: all, unless another task's signal killed their
/// process on both sides. Then natively it got as far as the host's schedule let it before
/// the signal landed, and simulated as far as the simulated one did: the calls both made
/// are compared, but the last, which death may have cut short on the side that got less far.
fn compared_length(pair: [&TaskRecord; 2], processes: [Option<&&ProcessRecord>; 2]) -> usize {
    let shorter = pair[0].syscalls.len().min(pair[1].syscalls.len());
    match processes.map(|p| p.map(|p| &p.status)) {
        [Some(Status::Signaled(x)), Some(Status::Signaled(y))]
            if x == y && !FAULT_SIGNALS.contains(&x.as_str()) =>
        {
            shorter.saturating_sub(1)
        }
        _ => pair[0].syscalls.len().max(pair[1].syscalls.len()),
    }
}

/// A task's place in its tree: its process's creation path and its thread number.
type Key<'a> = (&'a [u32], u32);

/// One run's tree, its tasks and processes by key.
struct Side<'a> {
    tree: &'a TaskTree,
    tasks: BTreeMap<Key<'a>, &'a TaskRecord>,
    processes: BTreeMap<&'a [u32], &'a ProcessRecord>,
}

impl<'a> Side<'a> {
    fn new(tree: &'a TaskTree) -> Self {
        Side {
            tree,
            tasks: tree
                .tasks
                .iter()
                .map(|task| ((task.path.as_slice(), task.thread), task))
                .collect(),
            processes: tree
                .processes
                .iter()
                .map(|process| (process.path.as_slice(), process))
                .collect(),
        }
    }

    fn id(&self, key: Key) -> Option<u32> {
        self.tree.ids.get(&self.tasks.get(&key)?.tid).copied()
    }

    fn argv(&self, key: Key) -> Option<&'a [String]> {
        let process = self.processes.get(key.0)?;
        (!process.argv.is_empty()).then_some(process.argv.as_slice())
    }
}

/// The task at `key`, named as the first run numbers it (the second, if only it has it).
fn name(x: &Side, y: &Side, key: Key) -> TaskName {
    TaskName {
        id: x.id(key).or_else(|| y.id(key)).unwrap_or_default(),
        argv: x
            .argv(key)
            .or_else(|| y.argv(key))
            .unwrap_or_default()
            .to_vec(),
    }
}

/// The first difference in the tasks of `a` and `b`, or in their processes' ends.
pub(super) fn compare<'a>(a: &Named<'a>, b: &Named<'a>) -> Option<Divergence> {
    let (x, y) = (Side::new(&a.observed.tree), Side::new(&b.observed.tree));
    let keys: BTreeSet<Key> = x.tasks.keys().chain(y.tasks.keys()).copied().collect();
    let named = |divergence: Divergence, key: Key| Divergence {
        task: Some(name(&x, &y, key)),
        ..divergence
    };
    let network = network_processes([&x, &y]);
    let first_in_time = keys
        .iter()
        .filter_map(|&key| {
            let (left, right) = (x.tasks.get(&key)?, y.tasks.get(&key)?);
            let processes = [x.processes.get(key.0), y.processes.get(key.0)];
            let length = compared_length([left, right], processes);
            let unordered = left_out(left, right, is_network(key.0, &network));
            let sequence = |task: &'a TaskRecord, side: &Side<'a>| Sequence {
                records: &task.syscalls[..length.min(task.syscalls.len())],
                ids: &side.tree.ids,
                unordered: &unordered,
                merged_reads: true,
            };
            let difference = first_diverging_call(sequence(left, &x), sequence(right, &y))?;
            let time = when(right, difference.right_index);
            Some((time, named(difference.divergence(a, b), key)))
        })
        .min_by_key(|(time, _)| *time);
    if let Some((_, divergence)) = first_in_time {
        return Some(divergence);
    }
    let task = keys.iter().find_map(|&key| {
        let (left, right) = (x.tasks.get(&key), y.tasks.get(&key));
        let divergence = match (left, right) {
            (Some(left), Some(right)) => {
                let (reaped_left, reaped_right) = (reaped(left, x.tree), reaped(right, y.tree));
                let totals = [left, right].map(|task| stream_totals(&task.syscalls));
                if reaped_left != reaped_right {
                    let show = |reaped| describe_reaped(&reaped);
                    Some(Divergence::between(
                        a,
                        b,
                        "reaped children",
                        show(reaped_left),
                        show(reaped_right),
                    ))
                } else if is_network(key.0, &network) && totals[0] != totals[1] {
                    let [left, right] = totals.map(|t| describe_totals(&t));
                    Some(Divergence::between(a, b, "stream bytes", left, right))
                } else {
                    None
                }
            }
            _ => Some(Divergence::between(
                a,
                b,
                "presence",
                describe_presence(left),
                describe_presence(right),
            )),
        }?;
        Some(named(divergence, key))
    });
    task.or_else(|| {
        let paths: BTreeSet<&[u32]> = x
            .processes
            .keys()
            .chain(y.processes.keys())
            .copied()
            .collect();
        paths.into_iter().find_map(|path| {
            let (left, right) = (x.processes.get(path)?, y.processes.get(path)?);
            (left.status != right.status).then(|| {
                let (left, right) = (left.status.to_string(), right.status.to_string());
                named(
                    Divergence::between(a, b, "exit status", left, right),
                    (path, 0),
                )
            })
        })
    })
}

/// Where a divergence at call `index` of `task` falls in its run's order: that call's place,
/// or where the task made fewer calls, its last one's (it stopped there; with none at all,
/// it diverged from its start).
fn when(task: &TaskRecord, index: usize) -> usize {
    task.order
        .get(index)
        .or(task.order.last())
        .copied()
        .unwrap_or(0)
}

/// The children `task` reaped through waits for any child, by normalized id (`None`: an id
/// outside the run), each with how many times.
fn reaped(task: &TaskRecord, tree: &TaskTree) -> BTreeMap<Option<u32>, usize> {
    let mut reaped = BTreeMap::new();
    for call in task
        .syscalls
        .iter()
        .filter(|call| waits_for_any_child(call))
    {
        if call.ret as i64 > 0 {
            let id = tree.ids.get(&(call.ret as i32)).copied();
            *reaped.entry(id).or_insert(0) += 1;
        }
    }
    reaped
}

fn describe_reaped(reaped: &BTreeMap<Option<u32>, usize>) -> String {
    let ids: Vec<String> = reaped
        .iter()
        .flat_map(|(id, &times)| {
            let id = id.map_or("<pid>".to_string(), |id| format!("<pid {id}>"));
            std::iter::repeat_n(id, times)
        })
        .collect();
    format!("{{{}}}", ids.join(", "))
}

fn describe_presence(task: Option<&&TaskRecord>) -> String {
    match task {
        Some(task) => format!("present, {} syscalls", task.syscalls.len()),
        None => "absent".into(),
    }
}

#[cfg(test)]
mod tests {
    use sim::accounting::SyscallRecord;
    use syscalls::Sysno;

    use crate::compare::tests::{diverge, forked, run_of, task};
    use crate::observed::{Observed, Status};

    const ANY: u64 = u64::MAX;

    #[test]
    fn how_the_tasks_calls_interleave_is_not_compared() {
        let [native, simulated] = forked([501, 1001]);
        assert_eq!(diverge(&native, &simulated), None);
    }

    #[test]
    fn futex_calls_are_the_schedule_s() {
        let [native, mut simulated] = forked([501, 1001]);
        let wait = SyscallRecord {
            machine_file: false,
            tid: 1001,
            nr: Sysno::futex.id() as u64,
            args: [0x7ff0, 0x80, 2, 0, 0, 0],
            ret: (-(libc::EAGAIN as i64)) as u64,
        };
        simulated.tree.tasks[1].syscalls.insert(0, wait);
        simulated.tree.tasks[1].order.insert(0, 2);
        assert_eq!(diverge(&native, &simulated), None);
    }

    /// glibc asks for rseq in a new thread only if its creator got it: natively, not
    /// simulated.
    #[test]
    fn a_declined_call_on_one_side_only_is_skipped() {
        let [mut native, simulated] = forked([501, 1001]);
        let rseq = SyscallRecord {
            machine_file: false,
            tid: 501,
            nr: Sysno::rseq.id() as u64,
            args: [0x7ff0, 0x20, 0, 0x5305_3053, 0, 0],
            ret: 0,
        };
        native.tree.tasks[1].syscalls.insert(0, rseq);
        native.tree.tasks[1].order.insert(0, 1);
        assert_eq!(diverge(&native, &simulated), None);
    }

    #[test]
    fn the_task_that_diverged_first_in_the_second_run_is_named() {
        let [native, mut simulated] = forked([501, 1001]);
        // The child's exit status, then the parent's wait (order 1, before the child's
        // exit_group at 3): the parent comes first in the simulated run's order.
        simulated.tree.tasks[1].syscalls[1].args[0] = 4;
        simulated.tree.tasks[0].syscalls[1].ret = (-(libc::EINTR as i64)) as u64;
        let d = diverge(&native, &simulated).unwrap();
        assert_eq!((d.what.as_str(), d.index), ("syscall", Some(1)));
        assert_eq!(d.task.unwrap().to_string(), "task 1000 (prog[])");
        // Now the parent's wait comes after the child's exit.
        simulated.tree.tasks[0].order[1] = 4;
        let d = diverge(&native, &simulated).unwrap();
        assert_eq!(d.task.unwrap().to_string(), "task 1001 (prog[0])");
        assert_eq!(d.left, "exit_group(0x3) = <no return>");
        assert_eq!(d.context, ["#0 getpid() = <pid 1001>"]);
    }

    #[test]
    fn a_wrong_task_id_diverges() {
        let [native, mut simulated] = forked([501, 1001]);
        simulated.tree.tasks[1].syscalls[0].ret = 1000;
        let d = diverge(&native, &simulated).unwrap();
        assert_eq!(
            (d.left.as_str(), d.right.as_str()),
            ("getpid() = <pid 1001>", "getpid() = <pid 1000>")
        );
    }

    #[test]
    fn a_task_on_one_side_only_diverges() {
        let [native, mut simulated] = forked([501, 1001]);
        simulated.tree.tasks.pop();
        let d = diverge(&native, &simulated).unwrap();
        assert_eq!(d.what, "presence");
        assert_eq!(
            (d.left.as_str(), d.right.as_str()),
            ("present, 2 syscalls", "absent")
        );
    }

    #[test]
    fn each_process_s_exit_is_compared() {
        let [native, mut simulated] = forked([501, 1001]);
        simulated.tree.processes[1].status = Status::Signaled("SIGSEGV".into());
        let d = diverge(&native, &simulated).unwrap();
        assert_eq!(d.what, "exit status");
        assert_eq!(d.task.unwrap().id, 1001);
        assert_eq!(d.right, "killed by SIGSEGV");
    }

    /// Two children; the parent waits for any child twice.
    fn reaping(reaped: [u64; 2], children: [i32; 2], parent: i32) -> Observed {
        let [first, second] = children;
        let exit = |pid: i32, order| task(&[], pid, &[(Sysno::exit_group, &[0], 0, order)]);
        let mut children = [exit(first, 4), exit(second, 5)];
        children[0].path = vec![0];
        children[1].path = vec![1];
        let [a, b] = [first as u64, second as u64];
        let parent = task(
            &[],
            parent,
            &[
                (Sysno::fork, &[], a, 0),
                (Sysno::fork, &[], b, 1),
                (Sysno::wait4, &[ANY], reaped[0], 2),
                (Sysno::wait4, &[ANY], reaped[1], 3),
            ],
        );
        let [x, y] = children;
        run_of(vec![parent, x, y])
    }

    #[test]
    fn children_reaped_by_waits_for_any_child_compare_as_a_set() {
        let native = reaping([502, 501], [501, 502], 500);
        assert_eq!(
            diverge(&native, &reaping([1001, 1002], [1001, 1002], 1000)),
            None
        );
        let d = diverge(&native, &reaping([1001, 1001], [1001, 1002], 1000)).unwrap();
        assert_eq!(d.what, "reaped children");
        assert_eq!(
            (d.left.as_str(), d.right.as_str()),
            ("{<pid 1001>, <pid 1002>}", "{<pid 1001>, <pid 1001>}")
        );
    }

    /// The child reads a pipe: natively in two pieces, simulated in one.
    fn reader(pieces: &[u64], child_pid: i32) -> Observed {
        let reads: Vec<(Sysno, &[u64], u64, usize)> = pieces
            .iter()
            .chain([&0])
            .enumerate()
            .map(|(n, &got)| (Sysno::read, &[3, 0x7ff0, 4096][..], got, n + 1))
            .collect();
        let mut run = run_of(vec![
            task(
                &[],
                child_pid - 1,
                &[(Sysno::fork, &[], child_pid as u64, 0)],
            ),
            task(&[0], child_pid, &reads),
        ]);
        run.tree.tasks[0].syscalls.truncate(1);
        run
    }

    #[test]
    fn consecutive_reads_compare_by_what_they_got_in_all() {
        let native = reader(&[8, 31], 501);
        assert_eq!(diverge(&native, &reader(&[39], 1001)), None);
        let d = diverge(&native, &reader(&[38], 1001)).unwrap();
        assert_eq!(
            (d.left.as_str(), d.right.as_str()),
            (
                "read(0x3, <pointer>, 0x1000) = 0x27",
                "read(0x3, <pointer>, 0x1000) = 0x26"
            )
        );
    }

    #[test]
    fn a_process_another_task_killed_compares_as_far_as_both_got() {
        let [mut native, mut simulated] = forked([501, 1001]);
        // Natively the child got to its exit_group before the signal landed; simulated it
        // was killed in its getpid.
        simulated.tree.tasks[1].syscalls.truncate(1);
        simulated.tree.tasks[1].syscalls[0].ret = 0;
        for run in [&mut native, &mut simulated] {
            run.tree.processes[1].status = Status::Signaled("SIGKILL".into());
        }
        assert_eq!(diverge(&native, &simulated), None);
        // Its own fault would have stopped it at the same place on both sides.
        for run in [&mut native, &mut simulated] {
            run.tree.processes[1].status = Status::Signaled("SIGSEGV".into());
        }
        assert_eq!(diverge(&native, &simulated).unwrap().what, "syscall");
    }

    #[test]
    fn where_a_waiting_task_s_handlers_run_is_the_schedule_s() {
        let [mut native, simulated] = forked([501, 1001]);
        let sigreturn = SyscallRecord {
            machine_file: false,
            tid: 500,
            nr: Sysno::rt_sigreturn.id() as u64,
            args: [0; 6],
            ret: 0,
        };
        native.tree.tasks[0].syscalls.insert(1, sigreturn);
        native.tree.tasks[0].order.insert(1, 3);
        assert_eq!(diverge(&native, &simulated), None);
        // A task that waits for no child gets no such allowance.
        let mut simulated = simulated;
        for run in [&mut native, &mut simulated] {
            let parent = &mut run.tree.tasks[0];
            parent.syscalls.pop();
            parent.order.pop();
        }
        assert_eq!(diverge(&native, &simulated).unwrap().what, "syscall");
    }
    /// A forked client whose reply came in the reads `reads` got, with a poll before each.
    fn client(reads: &[u64]) -> Observed {
        let mut calls: Vec<(Sysno, &[u64], u64, usize)> = vec![
            (Sysno::socket, &[2, 1, 0], 3, 1),
            (Sysno::connect, &[3, 0x1000, 16], 0, 2),
            (Sysno::write, &[3, 0x2000, 5], 5, 3),
        ];
        for (n, &got) in reads.iter().enumerate() {
            calls.push((Sysno::poll, &[0x3000, 1, ANY], 1, 4 + 2 * n));
            calls.push((Sysno::read, &[3, 0x4000, 4096], got, 5 + 2 * n));
        }
        calls.push((Sysno::exit_group, &[0], 0, 98));
        let parent = [
            (Sysno::fork, &[][..], 1001, 0),
            (Sysno::wait4, &[1001], 1001, 99),
        ];
        run_of(vec![task(&[], 1000, &parent), task(&[0], 1001, &calls)])
    }

    #[test]
    fn how_a_network_stream_splits_into_calls_is_not_compared_but_its_bytes_are() {
        assert_eq!(diverge(&client(&[226]), &client(&[209, 17])), None);
        let short = diverge(&client(&[226]), &client(&[209])).expect("a divergence");
        assert_eq!(short.what, "stream bytes");
        assert!(
            short.right.contains("fd 3: 209 bytes in, 5 out"),
            "{}",
            short.right
        );
    }
}
