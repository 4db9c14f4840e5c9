//! The life of tasks: creation, exit, waking, and switching the running task. The machine
//! carries out the CPU side of each (contexts, page tables); this is the kernel's side.

use std::os::fd::RawFd;

use nix::errno::Errno;

use super::fd::FdTable;
use super::history::{ProcessLog, TaskLog};
use super::process::{Pid, Process, FIRST_PID, INIT_PID};
use super::random;
use super::sigframe::{AltStack, SigInfo};
use super::task::{Parked, State, Task, Wait, Wake};
use super::{Exit, Kernel};

/// Linux's default timer slack for an ordinary task (`timer_slack_ns`, 50 µs).
pub const TIMER_SLACK_NS: u64 = 50_000;

/// A task made by the running syscall: its CPU state is the caller's, with these changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spawn {
    pub tid: Pid,
    /// Its stack pointer (clone's `stack`), if one was given.
    pub stack: Option<u64>,
    /// Its FS base (CLONE_SETTLS).
    pub tls: Option<u64>,
    /// A new process: its page tables' root (CR3), and the guest address after the call
    /// (where a ring-0 child goes on through the dispatcher, with a code cache of its own).
    pub process: Option<NewProcess>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewProcess {
    pub cr3: u64,
    pub resume_at: u64,
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

    /// Whether the machine has CPU work to do for this syscall before the task goes on:
    /// a switch, new tasks' CPU state, or a new image.
    pub fn must_stop(&self) -> bool {
        self.must_switch() || !self.spawned.is_empty() || self.execed.is_some()
    }

    /// A new thread of the running process, runnable, after the others.
    pub fn spawn_thread(&mut self, stack: Option<u64>, tls: Option<u64>) -> Pid {
        let tid = self.alloc_pid();
        let mut task = Task::new(tid, self.proc.pid);
        // A new thread keeps the mask and gets no alternate stack (`sas_ss_reset`).
        task.signals.mask = self.task.signals.mask;
        task.signals.altstack = AltStack::RESET;
        self.tasks.insert(tid, task);
        if let Some(log) = self.history.get_mut(&self.proc.pid) {
            let thread = log.tasks.len() as u32;
            log.tasks.push(TaskLog {
                tid,
                thread,
                ..TaskLog::default()
            });
        }
        self.sched.enqueue(tid);
        self.spawned.push(Spawn {
            tid,
            stack,
            tls,
            process: None,
        });
        tid
    }

    /// A name for a new pipe (or eventfd counter, or listener: they share the names).
    pub fn alloc_pipe_id(&mut self) -> u64 {
        self.next_pipe_id += 1;
        self.next_pipe_id
    }

    /// Wakes the tasks that wait on pipe (or eventfd counter) `pipe` to look again.
    pub fn wake_pipe_waiters(&mut self, pipe: u64) {
        self.wake_waiting(|wait| match wait {
            Wait::PipeRead { pipe: p }
            | Wait::PipeWrite { pipe: p }
            | Wait::Accept { listener: p }
            | Wait::Connect { listener: p }
            | Wait::Datagrams { queue: p }
            | Wait::Timerfd { timer: p }
            | Wait::Eventfd { counter: p } => *p == pipe,
            Wait::Poll { .. } => true,
            _ => false,
        });
    }

    /// Descriptors were closed, so a pipe may have lost its last reader or writer: every
    /// task waiting on a pipe looks again.
    pub fn pipes_changed(&mut self) {
        self.wake_waiting(|wait| {
            matches!(
                wait,
                Wait::PipeRead { .. }
                    | Wait::PipeWrite { .. }
                    | Wait::Accept { .. }
                    | Wait::Connect { .. }
                    | Wait::Datagrams { .. }
                    | Wait::Poll { .. }
            )
        });
    }

    fn wake_waiting(&mut self, woken: impl Fn(&Wait) -> bool) {
        let tids: Vec<Pid> = std::iter::once(&self.task)
            .chain(self.tasks.values())
            .filter(|t| matches!(&t.state, State::Blocked { wait, .. } if woken(wait)))
            .map(|t| t.tid)
            .collect();
        for tid in tids {
            self.wake(tid, Wake::Retry);
        }
    }

    /// Records `task`'s counts in its process's log.
    pub fn log_task(&mut self, task: &Task) {
        if let Some(log) = self
            .history
            .get_mut(&task.pid)
            .and_then(|l| l.task_mut(task.tid))
        {
            log.tally = task.tally;
            log.syscalls = task.syscalls;
            log.voluntary_switches = task.voluntary_switches;
            log.preempted = task.preempted;
        }
    }

    /// Process `pid`, running or not.
    pub fn process_mut(&mut self, pid: Pid) -> Option<&mut Process> {
        if pid == self.proc.pid {
            Some(&mut self.proc)
        } else {
            self.procs.get_mut(&pid)
        }
    }

    /// Live task `tid`, running or not.
    pub fn task_ref(&self, tid: Pid) -> Option<&Task> {
        if tid == self.task.tid {
            Some(&self.task)
        } else {
            self.tasks.get(&tid)
        }
    }

    pub fn task_mut(&mut self, tid: Pid) -> Option<&mut Task> {
        if tid == self.task.tid {
            Some(&mut self.task)
        } else {
            self.tasks.get_mut(&tid)
        }
    }

    /// The process of live task `tid`.
    pub fn task_process(&self, tid: Pid) -> Option<Pid> {
        self.task_ref(tid)
            .filter(|t| !matches!(t.state, State::Exited))
            .map(|t| t.pid)
    }

    /// The live tasks of process `pid`, lowest tid first.
    pub fn tasks_of(&self, pid: Pid) -> Vec<Pid> {
        let mut tids: Vec<Pid> = std::iter::once(&self.task)
            .chain(self.tasks.values())
            .filter(|t| t.pid == pid && !matches!(t.state, State::Exited))
            .map(|t| t.tid)
            .collect();
        tids.sort_unstable();
        tids
    }

    /// Process `pid`, running or not, live or a zombie.
    pub fn process(&self, pid: Pid) -> Option<&Process> {
        if pid == self.proc.pid {
            Some(&self.proc)
        } else {
            self.procs.get(&pid)
        }
    }

    /// Every process that has not ended, with its group: (pid, pgid).
    pub fn live_processes(&self) -> Vec<(Pid, Pid)> {
        std::iter::once(&self.proc)
            .chain(self.procs.values())
            .filter(|p| p.exit.is_none())
            .map(|p| (p.pid, p.pgid))
            .collect()
    }

    /// Whether a live task has id `tid`.
    pub fn task_exists(&self, tid: Pid) -> bool {
        tid == self.task.tid || self.tasks.contains_key(&tid)
    }

    /// Whether another task may be made (`--max-tasks`).
    pub fn may_spawn(&self) -> bool {
        1 + self.tasks.len() < self.max_tasks
    }

    /// A new process, a copy of the running one (fork, vfork, clone of a process), with
    /// one task, runnable after the others. Its memory is a copy (see
    /// `AddressSpace::fork`), its descriptors share the parent's open files, its signal
    /// dispositions are the parent's, and its entropy stream is its own.
    pub fn spawn_process(
        &mut self,
        stack: Option<u64>,
        tls: Option<u64>,
        exit_signal: u32,
        vfork: bool,
    ) -> Result<Pid, Errno> {
        let parent = &mut self.proc;
        let code_cache = crate::bt::layout::CACHE..crate::bt::layout::CACHE_END;
        let mem = parent.mem.fork(code_cache, vfork)?;
        let resume_at = self.syscall_rip + parent.mem.instruction_at(self.syscall_rip).len() as u64;
        let mut path = parent.path.clone();
        path.push(parent.children_made);
        parent.children_made += 1;
        let cr3 = mem.cr3();
        self.forks += 1;
        let pid = self.next_pid;
        self.next_pid += 1;
        let parent = &self.proc;
        let child = Process {
            pid,
            ppid: parent.pid,
            pgid: parent.pgid,
            sid: parent.sid,
            execed: false,
            rng: random::process_stream(self.seed, &path),
            path,
            children_made: 0,
            exit: None,
            exit_signal,
            mem,
            fds: parent.fds.clone(),
            signals: parent.signals.for_child(),
            credentials: parent.credentials.clone(),
            exe: parent.exe.clone(),
            comm: parent.comm.clone(),
            fs: parent.fs.clone(),
            limits: parent.limits.clone(),
        };
        let argv = self
            .history
            .get(&parent.pid)
            .map_or_else(Vec::new, |l| l.argv.clone());
        let log = ProcessLog::new(pid, parent.pid, child.path.clone(), argv);
        self.history.insert(pid, log);
        self.procs.insert(pid, child);
        let mut task = Task::new(pid, pid);
        task.signals.mask = self.task.signals.mask;
        task.signals.altstack = self.task.signals.altstack;
        self.tasks.insert(pid, task);
        self.sched.enqueue(pid);
        self.spawned.push(Spawn {
            tid: pid,
            stack,
            tls,
            process: Some(NewProcess { cr3, resume_at }),
        });
        Ok(pid)
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
            self.sched.enqueue_woken(tid);
        }
    }

    /// The running task ends with `code` (the `exit` syscall): its clear-child-tid word is
    /// zeroed and a waiter on it woken (pthread_join), and if it was its process's last
    /// task the process ends too.
    pub fn exit_task(&mut self, code: i32) {
        super::syscalls::sync::exit_robust_list(self);
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

    /// Every task of the running process but the running one ends (exit_group, execve).
    pub fn end_other_threads(&mut self) {
        let pid = self.proc.pid;
        let others: Vec<Pid> = self
            .tasks
            .values()
            .filter(|t| t.pid == pid)
            .map(|t| t.tid)
            .collect();
        for tid in others {
            if let Some(task) = self.tasks.remove(&tid) {
                self.log_task(&task);
            }
            self.sched.remove(tid);
            self.futexes.forget(tid);
        }
    }

    /// The running process ends (exit_group, a fatal signal): all its tasks with it.
    pub fn exit_process(&mut self, exit: Exit) {
        self.end_other_threads();
        self.task.state = State::Exited;
        self.end_process(exit);
    }

    /// The running process ended: it becomes a zombie for its parent to reap, its
    /// descriptors close, its children go to init (which reaps the zombies among them at
    /// once), and its parent's waits are woken.
    fn end_process(&mut self, exit: Exit) {
        let pid = self.proc.pid;
        if pid == FIRST_PID {
            self.first_exit = Some(exit.clone());
        }
        if let Some(log) = self.history.get_mut(&pid) {
            log.exit = Some(exit.clone());
        }
        self.give_back_vfork_memory();
        self.proc.exit = Some(exit);
        self.proc.fds = FdTable::default();
        self.pipes_changed();
        for child in self.procs.values_mut().filter(|p| p.ppid == pid) {
            child.ppid = INIT_PID;
        }
        self.procs
            .retain(|_, p| !(p.ppid == INIT_PID && p.exit.is_some()));
        let parent = self.proc.ppid;
        self.wake_parent(parent, pid);
        let signo = self.proc.exit_signal;
        if signo != 0 && parent != INIT_PID {
            let uid = self.proc.credentials.uid.real;
            let status = self.proc.exit.as_ref().map_or(0, Exit::wait_status);
            let mut info = SigInfo::child_exit(pid as i32, uid, status as i32, 0, 0);
            // clone may name another signal than SIGCHLD; the siginfo is the same.
            info.0[..4].copy_from_slice(&(signo as i32).to_le_bytes());
            self.signal_process(parent, info);
        }
    }

    /// The running process, a vfork child, is about to exec or end: what it wrote becomes
    /// its waiting parent's (`AddressSpace::take_vfork_writes`), as glibc's posix_spawn,
    /// whose child reports a failed exec in the parent's memory, relies on.
    pub fn give_back_vfork_memory(&mut self) {
        let (pid, ppid) = (self.proc.pid, self.proc.ppid);
        let parent_waits = self.tasks.values().any(|t| {
            t.pid == ppid
                && matches!(t.state, State::Blocked { wait: Wait::Vfork { child }, .. } if child == pid)
        });
        if let Some(parent) = self.procs.get_mut(&ppid).filter(|_| parent_waits) {
            parent.mem.take_vfork_writes(&self.proc.mem);
        }
    }

    /// Wakes the tasks of process `parent` that wait for its child `child` (vfork) or for
    /// any child (wait4, which then looks again).
    pub fn wake_parent(&mut self, parent: Pid, child: Pid) {
        let waiting: Vec<(Pid, Wake)> = std::iter::once(&self.task)
            .chain(self.tasks.values())
            .filter(|t| t.pid == parent)
            .filter_map(|t| match &t.state {
                State::Blocked {
                    wait: Wait::Child, ..
                } => Some((t.tid, Wake::Retry)),
                State::Blocked {
                    wait: Wait::Vfork { child: c },
                    ..
                } if *c == child => Some((t.tid, Wake::Return(child))),
                _ => None,
            })
            .collect();
        for (tid, wake) in waiting {
            self.wake(tid, wake);
        }
    }

    /// Takes zombie `pid` out of the process table: its memory goes back.
    pub fn reap(&mut self, pid: Pid) -> Option<Process> {
        let zombie = self.procs.remove(&pid)?;
        self.reaps += 1;
        Some(zombie)
    }

    /// Puts the running task away (back in the run queue if it can still run; `preempted`
    /// says it used up its quantum) and makes the next one the running task. When no task
    /// can run, the virtual clock jumps to the earliest sleep or alarm deadline.
    pub fn switch(&mut self, preempted: bool) -> Switch {
        self.yielded = false;
        if matches!(self.task.state, State::Runnable) {
            self.sched.enqueue(self.task.tid);
        }
        let next = loop {
            self.fire_due_timers();
            if let Some(tid) = self.sched.pick() {
                break tid;
            }
            if matches!(self.task.state, State::Exited) && self.tasks.is_empty() {
                return Switch::Finished;
            }
            if self.wait_for_host(self.next_deadline()) {
                continue;
            }
            match self.next_deadline() {
                Some(at) => self.advance_clock(at),
                None => return self.deadlock(),
            }
        };
        if next != self.task.tid {
            let next = self.tasks.remove(&next).expect("queued tasks exist");
            let old = std::mem::replace(&mut self.task, next);
            self.put_away(old, preempted);
        }
        if self.task.pid != self.proc.pid {
            let next = self
                .procs
                .remove(&self.task.pid)
                .expect("a task's process exists");
            let old = std::mem::replace(&mut self.proc, next);
            self.proc.fs.enter(&old.fs);
            // Init reaps its own children at once.
            if !(old.exit.is_some() && old.ppid == INIT_PID) {
                self.procs.insert(old.pid, old);
            }
        }
        let resume = match self.task.state {
            State::Woken { wake, call } => {
                self.task.state = State::Runnable;
                Some((call, wake))
            }
            _ => None,
        };
        Switch::To { resume }
    }

    /// Marks the timerfd timers whose next expiry the clock has reached, and wakes their
    /// waiters (a read, a poll, an epoll).
    pub fn announce_timer_expiries(&mut self) {
        let now = self.elapsed_ns;
        self.timers.retain(|t| t.strong_count() > 0);
        let expired: Vec<u64> = self
            .timers
            .iter()
            .filter_map(std::rc::Weak::upgrade)
            .filter_map(|timer| {
                let mut timer = timer.borrow_mut();
                let due = timer
                    .next
                    .filter(|&at| at <= now && timer.announced != Some(at))?;
                timer.announced = Some(due);
                timer.changes.for_readers += 1;
                Some(timer.id)
            })
            .collect();
        for id in expired {
            self.wake_pipe_waiters(id);
        }
    }

    /// Wakes the sleepers whose time has come and fires the alarms that are due.
    pub fn fire_due_timers(&mut self) {
        self.announce_timer_expiries();
        let now = self.elapsed_ns;

        let sleepers: Vec<Pid> = std::iter::once(&self.task)
            .chain(self.tasks.values())
            .filter(|t| {
                matches!(t.state, State::Blocked { wait: Wait::Sleep { until, .. }, .. }
                    if until <= now)
            })
            .map(|t| t.tid)
            .collect();
        for tid in sleepers {
            self.wake(tid, Wake::Return(0));
        }
        let polls: Vec<Pid> = std::iter::once(&self.task)
            .chain(self.tasks.values())
            .filter(|t| {
                matches!(t.state, State::Blocked { wait: Wait::Poll { until: Some(until), .. }, .. }
                    if until <= now)
            })
            .map(|t| t.tid)
            .collect();
        for tid in polls {
            self.wake(tid, Wake::Retry);
        }
        let timed_out: Vec<Pid> = std::iter::once(&self.task)
            .chain(self.tasks.values())
            .filter(|t| {
                matches!(t.state, State::Blocked { wait: Wait::Futex { until: Some(until), .. }, .. }
                    if until <= now)
            })
            .map(|t| t.tid)
            .collect();
        for tid in timed_out {
            self.futexes.forget(tid);
            self.wake(tid, Wake::Return((-(Errno::ETIMEDOUT as i64)) as u64));
        }
        let ringing: Vec<Pid> = std::iter::once(&self.proc)
            .chain(self.procs.values())
            .filter(|p| p.exit.is_none() && p.signals.alarm.at.is_some_and(|at| at <= now))
            .map(|p| p.pid)
            .collect();
        for pid in ringing {
            if let Some(process) = self.process_mut(pid) {
                process.signals.alarm.fire(now);
            }
            self.signal_process(pid, SigInfo::kernel(libc::SIGALRM as u32));
        }
    }

    /// Where the idle clock jumps: the earliest sleep or alarm deadline, or the latest one
    /// within `TIMER_SLACK_NS` of it, so that timers due together fire together, as Linux's
    /// timer slack lets them.
    fn next_deadline(&self) -> Option<u64> {
        let deadlines = self.deadlines();
        let earliest = *deadlines.iter().min()?;
        deadlines
            .into_iter()
            .filter(|&at| at <= earliest.saturating_add(TIMER_SLACK_NS))
            .max()
    }

    /// The earliest sleep, poll, futex or alarm deadline.
    pub fn earliest_deadline(&self) -> Option<u64> {
        self.deadlines().into_iter().min()
    }

    /// Every sleep, poll and alarm deadline.
    fn deadlines(&self) -> Vec<u64> {
        let sleeps = std::iter::once(&self.task)
            .chain(self.tasks.values())
            .filter_map(|t| match t.state {
                State::Blocked {
                    wait:
                        Wait::Sleep { until, .. }
                        | Wait::Poll {
                            until: Some(until), ..
                        }
                        | Wait::Futex {
                            until: Some(until), ..
                        },
                    ..
                } => Some(until),
                _ => None,
            });
        let alarms = std::iter::once(&self.proc)
            .chain(self.procs.values())
            .filter(|p| p.exit.is_none())
            .filter_map(|p| p.signals.alarm.at);
        let now = self.elapsed_ns;
        let timers = self
            .timers
            .iter()
            .filter_map(std::rc::Weak::upgrade)
            .filter_map(|t| t.borrow().next)
            .filter(|&at| at > now);
        sleeps.chain(alarms).chain(timers).collect()
    }

    /// No task can run, and under `--net host` some wait for host descriptors (a host
    /// socket, or a terminal or pipe from outside that a poll watches): the simulator waits
    /// for them as the host's kernel would, until `deadline` on the virtual clock at most.
    /// The clock moves by the real time waited; the tasks whose descriptors became ready
    /// look again. `false`: nothing to wait for on the host (the default, modelled network
    /// never waits, so that runs repeat).
    fn wait_for_host(&mut self, deadline: Option<u64>) -> bool {
        if !self.net_host {
            return false;
        }
        let waiting: Vec<(Pid, RawFd, i16)> = std::iter::once(&self.task)
            .chain(self.tasks.values())
            .flat_map(|t| {
                let host: Vec<(RawFd, i16)> = match &t.state {
                    State::Blocked {
                        wait: Wait::Host { fd, events },
                        ..
                    } => vec![(*fd, *events)],
                    State::Blocked {
                        wait: Wait::Poll { host, .. },
                        ..
                    } => host.clone(),
                    _ => Vec::new(),
                };
                host.into_iter()
                    .map(move |(fd, events)| (t.tid, fd, events))
            })
            .collect();
        if waiting.is_empty() {
            return false;
        }
        let mut fds: Vec<libc::pollfd> = waiting
            .iter()
            .map(|&(_, fd, events)| libc::pollfd {
                fd,
                events,
                revents: 0,
            })
            .collect();
        let timeout_ms = deadline.map_or(-1, |at| {
            let left = at.saturating_sub(self.elapsed_ns).div_ceil(1_000_000);
            left.min(i32::MAX as u64) as i32
        });
        let start = std::time::Instant::now();
        let ready = loop {
            // SAFETY: `fds` is a live array of its length.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
            if n >= 0 || Errno::last() != Errno::EINTR {
                break n;
            }
        };
        if ready < 0 {
            return false;
        }
        let waited = start.elapsed().as_nanos() as u64;
        let now = self.elapsed_ns.saturating_add(waited);
        self.advance_clock(deadline.map_or(now, |at| now.min(at)));
        let mut woken: Vec<Pid> = waiting
            .iter()
            .zip(&fds)
            .filter(|(_, fd)| fd.revents != 0)
            .map(|(&(tid, _, _), _)| tid)
            .collect();
        woken.dedup();
        for tid in woken {
            self.wake(tid, Wake::Retry);
        }
        true
    }

    /// Time passes with no task running: the clock moves to `at`.
    fn advance_clock(&mut self, at: u64) {
        let gap = at.saturating_sub(self.elapsed_ns);
        self.slept_ns += gap;
        self.elapsed_ns += gap;
    }

    fn put_away(&mut self, mut old: Task, preempted: bool) {
        match old.state {
            State::Exited => {
                self.log_task(&old);
                return;
            }
            State::Runnable if preempted => old.preempted += 1,
            _ => old.voluntary_switches += 1,
        }
        self.tasks.insert(old.tid, old);
    }

    /// Tasks remain, all waiting for what no task can do. When all of them are servers
    /// waiting in accept, the message says so, with the names they listen on.
    fn deadlock(&mut self) -> Switch {
        let mut waits: Vec<String> = Vec::new();
        let mut listening: Vec<String> = Vec::new();
        let blocked: Vec<(Pid, Wait)> = std::iter::once(&self.task)
            .chain(self.tasks.values())
            .filter_map(|task| match &task.state {
                State::Blocked { wait, .. } => Some((task.tid, wait.clone())),
                _ => None,
            })
            .collect();
        for (tid, wait) in &blocked {
            waits.push(format!("task {tid} waits for {wait}"));
            if let Wait::Accept { listener } = wait {
                if let Some(address) = self.net.listening_on(*listener) {
                    listening.push(format!("task {tid} on {address}"));
                }
            }
        }
        if !listening.is_empty() && listening.len() == blocked.len() {
            return Switch::Deadlock(format!(
                "a server is left listening with no task left to connect: {}",
                listening.join("; ")
            ));
        }
        Switch::Deadlock(waits.join("; "))
    }
}
