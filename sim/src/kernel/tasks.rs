//! The life of tasks: creation, exit, waking, and switching the running task. The machine
//! carries out the CPU side of each (contexts, page tables); this is the kernel's side.

use super::process::Pid;
use super::task::{Parked, State, Task, Wake};
use super::{Exit, Kernel};
use crate::kernel::process::FIRST_PID;

/// A task made by the running syscall: its CPU state is the caller's, with these changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spawn {
    pub tid: Pid,
    /// Its stack pointer (clone's `stack`), if one was given.
    pub stack: Option<u64>,
    /// Its FS base (CLONE_SETTLS).
    pub tls: Option<u64>,
}

/// What the machine does after the running task gave up the CPU.
#[derive(Debug)]
pub enum Switch {
    /// Run the (new) running task; if it was parked in a syscall, the call ends so.
    To { resume: Option<(Parked, Wake)> },
    /// No task is left.
    Finished,
    /// Tasks remain but none can run again: what each waits for.
    Deadlock(String),
}

impl Kernel {
    pub fn alloc_pid(&mut self) -> Pid {
        self.next_pid += 1;
        self.next_pid - 1
    }

    /// Whether the running task must give up the CPU at the end of this syscall.
    pub fn must_switch(&self) -> bool {
        self.yielded || !matches!(self.task.state, State::Runnable)
    }

    /// A new thread of the running process, runnable, after the others.
    pub fn spawn_thread(&mut self, stack: Option<u64>, tls: Option<u64>) -> Pid {
        let tid = self.alloc_pid();
        self.tasks.insert(tid, Task::new(tid, self.proc.pid));
        self.sched.enqueue(tid);
        self.spawned.push(Spawn { tid, stack, tls });
        tid
    }

    /// Wakes the blocked task `tid`; its parked call ends as `wake` says.
    pub fn wake(&mut self, tid: Pid, wake: Wake) {
        let task = if tid == self.task.tid {
            &mut self.task
        } else if let Some(task) = self.tasks.get_mut(&tid) {
            task
        } else {
            return;
        };
        if let State::Blocked { call, .. } = task.state {
            task.state = State::Woken { wake, call };
            self.sched.enqueue(tid);
        }
    }

    /// The running task ends with `code` (the `exit` syscall): its clear-child-tid word is
    /// zeroed and a waiter on it woken (pthread_join), and if it was its process's last
    /// task the process ends too.
    pub fn exit_task(&mut self, code: i32) {
        let address = self.task.clear_child_tid;
        // Linux ignores a fault here (the thread may have unmapped its own word).
        if address != 0 && self.proc.mem.write(address, &0u32.to_le_bytes()).is_ok() {
            for tid in self.futexes.wake((self.proc.pid, address), 1, u32::MAX) {
                self.wake(tid, Wake::Return(0));
            }
        }
        self.task.state = State::Exited;
        let pid = self.proc.pid;
        if !self.tasks.values().any(|t| t.pid == pid) {
            self.end_process(Exit::Code(code));
        }
    }

    /// The running process ends (exit_group, a fatal signal): all its tasks with it.
    pub fn exit_process(&mut self, exit: Exit) {
        let pid = self.proc.pid;
        let others: Vec<Pid> = self
            .tasks
            .values()
            .filter(|t| t.pid == pid)
            .map(|t| t.tid)
            .collect();
        for tid in others {
            self.tasks.remove(&tid);
            self.sched.remove(tid);
            self.futexes.forget(tid);
        }
        self.task.state = State::Exited;
        self.end_process(exit);
    }

    fn end_process(&mut self, exit: Exit) {
        if self.proc.pid == FIRST_PID {
            self.first_exit = Some(exit);
        }
    }

    /// Puts the running task away (back in the run queue if it can still run; `preempted`
    /// says it used up its quantum) and makes the next one the running task.
    pub fn switch(&mut self, preempted: bool) -> Switch {
        self.yielded = false;
        let Some(next) = self.pick() else {
            return self.stuck();
        };
        let old = std::mem::replace(&mut self.task, next);
        self.put_away(old, preempted);
        let resume = match self.task.state {
            State::Woken { wake, call } => {
                self.task.state = State::Runnable;
                Some((call, wake))
            }
            _ => None,
        };
        Switch::To { resume }
    }

    /// The next task to run, taken out of `tasks`: the running one itself when nobody else
    /// is runnable and it can go on.
    fn pick(&mut self) -> Option<Task> {
        if matches!(self.task.state, State::Runnable) && !self.sched.has_runnable() {
            return None;
        }
        if matches!(self.task.state, State::Runnable) {
            self.sched.enqueue(self.task.tid);
        }
        let tid = self.sched.pick()?;
        if tid == self.task.tid {
            // Only the running task could run: it goes on.
            return None;
        }
        Some(self.tasks.remove(&tid).expect("queued tasks exist"))
    }

    fn put_away(&mut self, mut old: Task, preempted: bool) {
        match old.state {
            State::Exited => return,
            State::Runnable if preempted => old.preempted += 1,
            _ => old.voluntary_switches += 1,
        }
        self.tasks.insert(old.tid, old);
    }

    /// No other task could be picked: the running one goes on if it can, else the run is
    /// over or stuck.
    fn stuck(&mut self) -> Switch {
        if matches!(self.task.state, State::Runnable) {
            return Switch::To { resume: None };
        }
        if self.tasks.is_empty() {
            return Switch::Finished;
        }
        let mut waits: Vec<String> = Vec::new();
        for task in std::iter::once(&self.task).chain(self.tasks.values()) {
            if let State::Blocked { wait, .. } = &task.state {
                waits.push(format!("task {} waits for {wait}", task.tid));
            }
        }
        Switch::Deadlock(waits.join("; "))
    }
}
