//! Following the traced program's whole tree: every task fork, vfork and clone create
//! (ptrace attaches them as they are born), each to its end, with each task's syscalls, and
//! each process's entropy drawn from its own stream (`sim::kernel::random`).
//!
//! One `waitpid(-1, __WALL | __WNOTHREAD)` loop serves every task, so reports come in the
//! host's order, which the tracer must not assume. A new task reports its first stop (the
//! SIGSTOP ptrace gives it) either before or after its creator's PTRACE_EVENT_FORK, VFORK
//! or CLONE that names it: a report from a task not yet named waits in `early` until the
//! event comes. A task may die while stopped (another thread's exit_group, the watchdog):
//! a ptrace request on it then fails with ESRCH and its end is reported next.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::ptrace::{self, Event};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use rand_chacha::ChaCha20Rng;
use sim::accounting::SyscallRecord;
use sim::kernel::random::process_stream;

use super::tracee::{overwrite_random, prepare_auxv, read_word, syscall_info};
use super::NativeError;
use crate::observed::{normalized_ids, ProcessRecord, Status, TaskKind, TaskRecord, TaskTree};

/// `ptrace_syscall_info.op`.
const OP_ENTRY: u8 = 1;
const OP_EXIT: u8 = 2;
/// `ptrace_syscall_info.arch` of an `int 0x80` syscall.
const AUDIT_ARCH_I386: u32 = 0x4000_0003;

/// Every task is traced, and new ones are attached as they are created.
fn options() -> ptrace::Options {
    use ptrace::Options as O;
    O::PTRACE_O_TRACESYSGOOD
        | O::PTRACE_O_EXITKILL
        | O::PTRACE_O_TRACEFORK
        | O::PTRACE_O_TRACEVFORK
        | O::PTRACE_O_TRACECLONE
        | O::PTRACE_O_TRACEEXEC
}

/// Follows `root`, stopped after its exec, and all it creates until the last task ends.
/// Returns the root process's end and the tree.
pub(super) fn follow(
    root: Pid,
    seed: u64,
    timeout: Duration,
) -> Result<(Status, TaskTree), NativeError> {
    let mut tree = Follower::new(root, seed);
    ptrace::setoptions(root, options())?;
    prepare_auxv(root, &mut tree.processes[0].stream)?;
    let watchdog = Watchdog::start(tree.live.clone(), timeout);
    tree.resume(root, None)?;
    let followed = tree.run(&watchdog);
    // Killed by the watchdog: whatever ptrace said then, the run took too long.
    if watchdog.fired() {
        return Err(NativeError::Timeout(timeout));
    }
    followed?;
    tree.finish()
}

/// A process of the tree.
struct Process {
    path: Vec<u32>,
    /// Its thread group id: its first task's tid (a thread that execs takes it over).
    pid: Pid,
    stream: ChaCha20Rng,
    /// The argv of its last image, as /proc showed it at the exec.
    argv: Vec<String>,
    /// Child processes made so far: the last index of the next one's path.
    children: u32,
    /// Threads made so far besides its first task: the last one's `thread` number.
    threads: u32,
    status: Option<Status>,
}

/// A task alive and followed.
struct Followed {
    /// Index into `Follower::tasks`.
    task: usize,
    /// Index into `Follower::processes`.
    process: usize,
    /// The syscall whose entry stop was seen and whose exit stop was not yet.
    entry: Option<(u64, [u64; 6])>,
    /// False until its first stop: a new task cannot be resumed before.
    started: bool,
}

/// Host ids of the tasks that may be alive, for the watchdog to kill.
type LiveIds = Arc<Mutex<HashSet<Pid>>>;

struct Follower {
    seed: u64,
    tasks: Vec<TaskRecord>,
    processes: Vec<Process>,
    followed: HashMap<Pid, Followed>,
    /// Reports of tasks that no creator's event has named yet, oldest first.
    early: HashMap<Pid, Vec<WaitStatus>>,
    live: LiveIds,
    /// Syscalls recorded so far, every task's: the next one's place in the run's order.
    calls: usize,
    /// Set once every task has ended: nothing is left to kill.
    done: bool,
}

impl Follower {
    fn new(root: Pid, seed: u64) -> Self {
        let path = Vec::new();
        Self {
            seed,
            tasks: vec![TaskRecord::new(root.as_raw(), path.clone(), 0)],
            processes: vec![Process {
                stream: process_stream(seed, &path),
                path,
                pid: root,
                argv: command_line(root),
                children: 0,
                threads: 0,
                status: None,
            }],
            followed: HashMap::from([(
                root,
                Followed {
                    task: 0,
                    process: 0,
                    entry: None,
                    started: true,
                },
            )]),
            early: HashMap::new(),
            live: Arc::new(Mutex::new(HashSet::from([root]))),
            calls: 0,
            done: false,
        }
    }

    /// Serves every report until no traced task is left. Once the watchdog has fired, a
    /// task that stops is killed instead of resumed: one it did not know of yet (created
    /// while it killed the others) ends that way too.
    fn run(&mut self, watchdog: &Watchdog) -> Result<(), NativeError> {
        loop {
            let status = match waitpid(None, Some(WaitPidFlag::__WALL | WaitPidFlag::__WNOTHREAD)) {
                Ok(status) => status,
                Err(Errno::ECHILD) => {
                    self.done = true;
                    return Ok(());
                }
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            };
            let Some(pid) = status.pid() else { continue };
            let ended = matches!(status, WaitStatus::Exited(..) | WaitStatus::Signaled(..));
            self.mark_live(pid, !ended);
            if watchdog.fired() {
                if !ended {
                    let _ = kill(pid, Signal::SIGKILL);
                }
                continue;
            }
            self.dispatch(pid, status)?;
        }
    }

    /// A report served now, or kept until a creator's event names the task.
    fn dispatch(&mut self, pid: Pid, status: WaitStatus) -> Result<(), NativeError> {
        if self.followed.contains_key(&pid) {
            self.report(pid, status)
        } else {
            self.early.entry(pid).or_default().push(status);
            Ok(())
        }
    }

    fn mark_live(&self, pid: Pid, alive: bool) {
        let mut live = self.live.lock().expect("the watchdog does not panic");
        if alive {
            live.insert(pid);
        } else {
            live.remove(&pid);
        }
    }

    /// One report of a followed task; a task that died under a request is left for its
    /// end's report.
    fn report(&mut self, pid: Pid, status: WaitStatus) -> Result<(), NativeError> {
        match self.serve(pid, status) {
            Err(NativeError::Trace(Errno::ESRCH)) => Ok(()),
            other => other,
        }
    }

    fn serve(&mut self, pid: Pid, status: WaitStatus) -> Result<(), NativeError> {
        match status {
            WaitStatus::PtraceSyscall(_) => {
                self.syscall_stop(pid)?;
                self.resume(pid, None)
            }
            WaitStatus::PtraceEvent(_, _, event) => {
                self.event(pid, event)?;
                self.resume(pid, None)
            }
            WaitStatus::Stopped(_, signal) => {
                let task = self.followed.get_mut(&pid).expect("followed");
                // A new task's first stop is the SIGSTOP ptrace gave it, not the program's.
                let attached = !task.started && signal == Signal::SIGSTOP;
                task.started = true;
                self.resume(pid, (!attached).then_some(signal))
            }
            WaitStatus::Exited(_, code) => {
                self.end(pid, Status::Exited(code));
                Ok(())
            }
            WaitStatus::Signaled(_, signal, _) => {
                self.end(pid, Status::Signaled(signal.as_str().to_string()));
                Ok(())
            }
            WaitStatus::Continued(_) | WaitStatus::StillAlive => Ok(()),
        }
    }

    fn resume(&self, pid: Pid, signal: Option<Signal>) -> Result<(), NativeError> {
        match ptrace::syscall(pid, signal) {
            Ok(()) | Err(Errno::ESRCH) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn syscall_stop(&mut self, pid: Pid) -> Result<(), NativeError> {
        let info = syscall_info(pid)?;
        let task = self.followed.get_mut(&pid).expect("followed");
        match info.op {
            OP_ENTRY => {
                // SAFETY: op says which member of the union is filled in.
                let e = unsafe { info.u.entry };
                let nr = if info.arch == AUDIT_ARCH_I386 {
                    // int 0x80: recorded as its x86-64 equivalent, as the simulator
                    // records it.
                    sim::kernel::syscalls::compat::to_native(e.nr).unwrap_or(e.nr)
                } else {
                    e.nr
                };
                task.entry = Some((nr, e.args));
            }
            OP_EXIT => {
                // SAFETY: as above.
                let ret = unsafe { info.u.exit }.sval as u64;
                if let Some((nr, args)) = task.entry.take() {
                    let (task, process) = (task.task, task.process);
                    if nr == libc::SYS_getrandom as u64 && (ret as i64) > 0 {
                        let stream = &mut self.processes[process].stream;
                        overwrite_random(pid, args[0], ret as usize, stream)?;
                    }
                    let tid = pid.as_raw() as u64;
                    self.record(
                        task,
                        SyscallRecord {
                            machine_file: false,
                            tid,
                            nr,
                            args,
                            ret,
                        },
                    );
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn event(&mut self, pid: Pid, event: i32) -> Result<(), NativeError> {
        const FORK: i32 = Event::PTRACE_EVENT_FORK as i32;
        const VFORK: i32 = Event::PTRACE_EVENT_VFORK as i32;
        const CLONE: i32 = Event::PTRACE_EVENT_CLONE as i32;
        const EXEC: i32 = Event::PTRACE_EVENT_EXEC as i32;
        match event {
            FORK | VFORK | CLONE => {
                let new = Pid::from_raw(ptrace::getevent(pid)? as i32);
                self.created(pid, new)?;
            }
            EXEC => {
                let former = Pid::from_raw(ptrace::getevent(pid)? as i32);
                if former != pid {
                    self.take_over(former, pid);
                }
                let process = self
                    .followed
                    .get(&pid)
                    .ok_or_else(|| {
                        NativeError::Setup(format!("task {former} exec'd unfollowed as {pid}"))
                    })?
                    .process;
                let process = &mut self.processes[process];
                prepare_auxv(pid, &mut process.stream)?;
                process.argv = command_line(pid);
            }
            _ => {}
        }
        Ok(())
    }

    /// `creator`'s event named `new`: it is followed from now on, and what it reported
    /// before is served.
    fn created(&mut self, creator: Pid, new: Pid) -> Result<(), NativeError> {
        let kind = self.created_kind(creator)?;
        self.add(creator, new, kind);
        for status in self.early.remove(&new).unwrap_or_default() {
            self.report(new, status)?;
        }
        Ok(())
    }

    /// A thread or a process, from the flags of the call `creator` is stopped in.
    fn created_kind(&self, creator: Pid) -> Result<TaskKind, NativeError> {
        let entry = self.followed[&creator].entry;
        let flags = match entry {
            Some((nr, _)) if nr == libc::SYS_fork as u64 || nr == libc::SYS_vfork as u64 => 0,
            Some((nr, args)) if nr == libc::SYS_clone as u64 => args[0],
            // struct clone_args begins with the flags.
            Some((nr, args)) if nr == libc::SYS_clone3 as u64 => read_word(creator, args[0])?,
            _ => {
                return Err(NativeError::Setup(format!(
                    "task {creator} created a task outside fork, vfork and clone: {entry:?}"
                )))
            }
        };
        Ok(if flags & libc::CLONE_THREAD as u64 != 0 {
            TaskKind::Thread
        } else {
            TaskKind::Process
        })
    }

    /// Records the task `creator` just made, with a path and a stream if it is a process.
    fn add(&mut self, creator: Pid, new: Pid, kind: TaskKind) {
        let creator = &self.followed[&creator];
        let (parent, mut process) = (creator.task, creator.process);
        let thread = match kind {
            TaskKind::Process => {
                let parent = &mut self.processes[process];
                let mut path = parent.path.clone();
                path.push(parent.children);
                parent.children += 1;
                let argv = parent.argv.clone();
                self.processes.push(Process {
                    stream: process_stream(self.seed, &path),
                    path,
                    pid: new,
                    argv,
                    children: 0,
                    threads: 0,
                    status: None,
                });
                process = self.processes.len() - 1;
                0
            }
            TaskKind::Thread => {
                self.processes[process].threads += 1;
                self.processes[process].threads
            }
        };
        let index = self.tasks.len();
        let path = self.processes[process].path.clone();
        self.tasks.push(TaskRecord {
            index,
            parent: Some(parent),
            ..TaskRecord::new(new.as_raw(), path, thread)
        });
        self.followed.insert(
            new,
            Followed {
                task: index,
                process,
                entry: None,
                started: false,
            },
        );
        self.mark_live(new, true);
    }

    /// A thread other than the leader called execve: Linux gives it the leader's tid, and
    /// the old leader vanishes without a report of its end.
    fn take_over(&mut self, former: Pid, leader: Pid) {
        self.followed.remove(&leader);
        if let Some(thread) = self.followed.remove(&former) {
            self.followed.insert(leader, thread);
        }
        self.mark_live(former, false);
    }

    fn end(&mut self, pid: Pid, status: Status) {
        let Some(task) = self.followed.remove(&pid) else {
            return;
        };
        // exit and exit_group never return: their entry is all there is (result 0, as the
        // simulator records them).
        if let Some((nr, args)) = task.entry {
            let tid = pid.as_raw() as u64;
            let call = SyscallRecord {
                machine_file: false,
                tid,
                nr,
                args,
                ret: 0,
            };
            self.record(task.task, call);
        }
        self.tasks[task.task].exit = Some(status.clone());
        let process = &mut self.processes[task.process];
        // The leader's end is reported last, with the process's status.
        if process.pid == pid {
            process.status = Some(status);
        }
    }

    fn record(&mut self, task: usize, call: SyscallRecord) {
        let task = &mut self.tasks[task];
        task.syscalls.push(call);
        task.order.push(self.calls);
        self.calls += 1;
    }

    /// The tree, once every task has ended.
    fn finish(mut self) -> Result<(Status, TaskTree), NativeError> {
        if let Some(stray) = self.early.keys().next() {
            return Err(NativeError::Setup(format!(
                "task {stray} ran, but no creator's event named it"
            )));
        }
        let mut processes = std::mem::take(&mut self.processes)
            .into_iter()
            .map(|process| {
                let status = process.status.ok_or_else(|| {
                    NativeError::Setup(format!("process {} ended unreported", process.pid))
                })?;
                Ok(ProcessRecord {
                    path: process.path,
                    pid: process.pid.as_raw(),
                    argv: process.argv,
                    status,
                })
            })
            .collect::<Result<Vec<_>, NativeError>>()?;
        let root = processes[0].status.clone();
        processes.sort_by(|a, b| a.path.cmp(&b.path));
        let tasks = std::mem::take(&mut self.tasks);
        Ok((
            root,
            TaskTree {
                ids: normalized_ids(&tasks),
                tasks,
                processes,
            },
        ))
    }
}

impl Drop for Follower {
    /// Tracing ended early (an error, a timeout): no task of the tree may outlive it.
    /// PTRACE_O_EXITKILL would kill them only when this whole process exits.
    fn drop(&mut self) {
        if self.done {
            return;
        }
        for pid in self
            .live
            .lock()
            .expect("the watchdog does not panic")
            .iter()
        {
            let _ = kill(*pid, Signal::SIGKILL);
        }
        loop {
            match waitpid(None, Some(WaitPidFlag::__WALL | WaitPidFlag::__WNOTHREAD)) {
                Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) => {}
                Ok(status) => {
                    if let Some(pid) = status.pid() {
                        let _ = kill(pid, Signal::SIGKILL);
                    }
                }
                Err(Errno::EINTR) => {}
                Err(_) => return,
            }
        }
    }
}

/// `pid`'s argv as /proc shows it; empty where it cannot be read (a task that died).
fn command_line(pid: Pid) -> Vec<String> {
    let bytes = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    // Each argument ends in a NUL.
    let Some(args) = bytes.strip_suffix(&[0]) else {
        return Vec::new();
    };
    args.split(|&byte| byte == 0)
        .map(|arg| String::from_utf8_lossy(arg).into_owned())
        .collect()
}

/// Kills every live task of the tree when the time is up; the tracer then sees them die.
struct Watchdog {
    done: std::sync::mpsc::Sender<()>,
    fired: Arc<AtomicBool>,
}

impl Watchdog {
    fn start(live: LiveIds, timeout: Duration) -> Self {
        let (done, wait) = std::sync::mpsc::channel::<()>();
        let fired = Arc::new(AtomicBool::new(false));
        let flag = fired.clone();
        std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(timeout) {
                flag.store(true, Ordering::SeqCst);
                // The tracer forgets a tid right after reaping it: too short a window for
                // the pid space to wrap and hand the tid to another process.
                for pid in live.lock().expect("the tracer does not panic").iter() {
                    let _ = kill(*pid, Signal::SIGKILL);
                }
            }
        });
        Self { done, fired }
    }

    fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let _ = self.done.send(());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ids above any pid_max: no such task, so every ptrace request fails with ESRCH,
    /// which the follower takes for a task that died meanwhile. The bookkeeping runs alone.
    const ROOT: Pid = Pid::from_raw(i32::MAX - 1);
    const FIRST: Pid = Pid::from_raw(i32::MAX - 2);
    const SECOND: Pid = Pid::from_raw(i32::MAX - 3);

    fn forking() -> Follower {
        let mut tree = Follower::new(ROOT, 5);
        // Nothing to kill or reap when dropped.
        tree.done = true;
        tree.followed.get_mut(&ROOT).unwrap().entry = Some((libc::SYS_fork as u64, [0; 6]));
        tree
    }

    /// The race the host's scheduler decides: the child's first stop (here, and its death)
    /// reported before the parent's PTRACE_EVENT_FORK, or after it.
    #[test]
    fn a_task_that_reports_before_its_creator_s_event_is_served_when_named() {
        let mut tree = forking();
        tree.dispatch(FIRST, WaitStatus::Stopped(FIRST, Signal::SIGSTOP))
            .unwrap();
        tree.dispatch(FIRST, WaitStatus::Signaled(FIRST, Signal::SIGKILL, false))
            .unwrap();
        assert_eq!(tree.early[&FIRST].len(), 2);
        assert!(tree.tasks.len() == 1 && !tree.followed.contains_key(&FIRST));
        tree.created(ROOT, FIRST).unwrap();
        assert!(tree.early.is_empty());
        assert!(!tree.followed.contains_key(&FIRST));
        let killed = Some(Status::Signaled("SIGKILL".into()));
        assert_eq!(tree.tasks[1].exit, killed);
        assert_eq!(tree.processes[1].status, killed);

        tree.created(ROOT, SECOND).unwrap();
        assert!(!tree.followed[&SECOND].started);
        tree.dispatch(SECOND, WaitStatus::Stopped(SECOND, Signal::SIGSTOP))
            .unwrap();
        assert!(tree.followed[&SECOND].started);
        assert!(tree.early.is_empty());
        let paths: Vec<&[u32]> = tree.tasks.iter().map(|t| t.path.as_slice()).collect();
        assert_eq!(paths, [&[][..], &[0], &[1]]);
        assert_eq!(tree.tasks[2].parent, Some(0));
    }

    #[test]
    fn a_task_no_event_named_is_an_error_not_a_silent_loss() {
        let mut tree = forking();
        tree.dispatch(FIRST, WaitStatus::Exited(FIRST, 0)).unwrap();
        tree.dispatch(ROOT, WaitStatus::Exited(ROOT, 0)).unwrap();
        let Err(NativeError::Setup(message)) = tree.finish() else {
            panic!("finished with a stray task");
        };
        assert!(message.contains("no creator's event named it"), "{message}");
    }
}
