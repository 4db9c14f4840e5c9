//! The record of every process the run made, kept after each is reaped: what the report's
//! per-process table and the oracle's pid mapping read.

use super::process::Pid;
use super::Exit;
use crate::accounting::Tally;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessLog {
    pub pid: Pid,
    pub ppid: Pid,
    /// Its creation path (see `kernel::random`).
    pub path: Vec<u32>,
    /// The argv of its last image.
    pub argv: Vec<String>,
    /// Images it ran: 1 plus its successful execve calls.
    pub images: u32,
    pub exit: Option<Exit>,
    pub tasks: Vec<TaskLog>,
}

/// One of a process's tasks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskLog {
    pub tid: Pid,
    /// 0 for the process's first task, then 1, 2, … in creation order.
    pub thread: u32,
    /// What the cost model prices that it ran or caused (its guest instructions among them).
    pub tally: Tally,
    pub syscalls: u64,
    /// Switches away from it because it blocked or yielded, and because its quantum ran out.
    pub voluntary_switches: u64,
    pub preempted: u64,
}

impl ProcessLog {
    pub fn new(pid: Pid, ppid: Pid, path: Vec<u32>, argv: Vec<String>) -> Self {
        Self {
            pid,
            ppid,
            path,
            argv,
            images: 1,
            exit: None,
            tasks: vec![TaskLog {
                tid: pid,
                ..TaskLog::default()
            }],
        }
    }

    pub fn task_mut(&mut self, tid: Pid) -> Option<&mut TaskLog> {
        self.tasks.iter_mut().find(|t| t.tid == tid)
    }
}
