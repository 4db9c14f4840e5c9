//! What one run of a program did that the oracle compares.

use std::collections::BTreeMap;

use serde::Serialize;
use sim::accounting::SyscallRecord;

/// How the program ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Exited(i32),
    /// Killed by the named signal (SIGSEGV, ...).
    Signaled(String),
    /// Still running when the run stopped (a simulated run's deadlock or instruction
    /// limit): a process other than the root has no status then.
    Unfinished,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Status::Exited(code) => write!(f, "exit status {code}"),
            Status::Signaled(signal) => write!(f, "killed by {signal}"),
            Status::Unfinished => f.write_str("still running when the run stopped"),
        }
    }
}

/// An entry in the working directory that the run created, changed or removed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileChange {
    /// A regular file, with its bytes now.
    Written(Vec<u8>),
    Directory,
    /// A symbolic link, with its target.
    Symlink(String),
    Removed,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    /// The root process's end.
    pub status: Status,
    /// What every process wrote to stdout and stderr, in the order the host saw it.
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// The root task's syscalls (`tree.tasks[0].syscalls` where the tree is known).
    pub syscalls: Vec<SyscallRecord>,
    /// By path relative to the working directory.
    pub files: BTreeMap<String, FileChange>,
    /// Guest instructions executed (simulated runs only).
    pub guest_instructions: Option<u64>,
    /// Every task and process of the run.
    pub tree: TaskTree,
}

/// A process's first task, or one of its other threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    Process,
    Thread,
}

/// One task (a thread, in the kernel's sense) from its creation to its end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TaskRecord {
    /// The host's id for it when it was created (a process's first task: its pid).
    pub tid: i32,
    pub kind: TaskKind,
    /// Its place in `TaskTree::tasks`: 0 for the root, then in the order the creating
    /// calls were seen. Across different creators that order is the schedule's.
    pub index: usize,
    /// The index of the task that created it; `None` for the root.
    pub parent: Option<usize>,
    /// Its process's creation path (`sim::kernel::random`); a thread's is its process's.
    pub path: Vec<u32>,
    /// 0 for a process's first task, then its other threads 1, 2, … in creation order.
    pub thread: u32,
    /// From its first syscall after the call that created it (which it does not see
    /// return) to its last; one that death cut short is recorded with result 0, as exit
    /// and exit_group always are.
    pub syscalls: Vec<SyscallRecord>,
    /// Each syscall's place in the order of all the run's syscalls, every task's: the
    /// simulator's trace order, or the order in which the tracer saw them end.
    pub order: Vec<usize>,
    /// `None` for a thread group leader that vanished because another of its threads
    /// called execve (that thread takes over the leader's id; Linux reports no end), and
    /// in a simulated run, which reports ends per process.
    pub exit: Option<Status>,
}

impl TaskRecord {
    /// A task with no calls yet and no end, not yet placed in its tree (`index`, `parent`):
    /// its process's first task when `thread` is 0.
    pub fn new(tid: i32, path: Vec<u32>, thread: u32) -> Self {
        TaskRecord {
            tid,
            kind: if thread == 0 {
                TaskKind::Process
            } else {
                TaskKind::Thread
            },
            index: 0,
            parent: None,
            path,
            thread,
            syscalls: Vec::new(),
            order: Vec::new(),
            exit: None,
        }
    }
}

/// How one process ended: as its parent's wait4 would see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProcessRecord {
    pub path: Vec<u32>,
    /// The host's pid.
    pub pid: i32,
    /// The argv of its last image.
    pub argv: Vec<String>,
    pub status: Status,
}

/// Every task of a run and how each process ended.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TaskTree {
    /// The root first, then by `TaskRecord::index`.
    pub tasks: Vec<TaskRecord>,
    /// By creation path (the root first).
    pub processes: Vec<ProcessRecord>,
    /// Each task's host id → its normalized id (`normalized_ids`).
    pub ids: BTreeMap<i32, u32>,
}

/// The normalized id of the root process; the simulator gives its root the same pid.
pub const ROOT_ID: u32 = 1000;

/// Normalized ids, the same on both sides of a comparison whatever pids the host or the
/// simulator gave out: each task is keyed by (its process's creation path, its `thread`
/// number); keys are sorted, paths lexicographically (a prefix first, so a parent before
/// its children: `[] < [0] < [0, 0] < [1]`), then by thread; the i-th key gets
/// `ROOT_ID + i`. A single-threaded tree is numbered in depth-first creation-path order.
///
/// The simulator, which gives out pids 1000, 1001, … in its creation order, builds its own
/// map by this rule from its own tasks; a pid or tid in a syscall's arguments or result is
/// then compared through the two maps. A host id reused within one run (only after the
/// pid space wrapped) maps to the number of the task that sorts last.
pub fn normalized_ids(tasks: &[TaskRecord]) -> BTreeMap<i32, u32> {
    let mut keyed: Vec<(&[u32], u32, i32)> = tasks
        .iter()
        .map(|task| (task.path.as_slice(), task.thread, task.tid))
        .collect();
    keyed.sort_unstable();
    keyed
        .iter()
        .zip(ROOT_ID..)
        .map(|(&(_, _, tid), id)| (tid, id))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(tid: i32, path: &[u32], thread: u32) -> TaskRecord {
        TaskRecord::new(tid, path.to_vec(), thread)
    }

    /// Whatever order the host created them in and whatever tids it gave: a parent before
    /// its children, a process's threads right after it, subtrees depth first.
    #[test]
    fn ids_follow_creation_paths_then_threads() {
        let tasks = [
            task(50, &[], 0),
            task(61, &[1], 0),
            task(52, &[0], 0),
            task(73, &[], 1),
            task(54, &[0, 0], 0),
            task(45, &[0], 1),
        ];
        let ids = normalized_ids(&tasks);
        let expected = [
            (50, 1000),
            (73, 1001),
            (52, 1002),
            (45, 1003),
            (54, 1004),
            (61, 1005),
        ];
        assert_eq!(ids, BTreeMap::from(expected));
    }
}
