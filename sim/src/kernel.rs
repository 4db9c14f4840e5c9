//! The modelled Linux kernel: processes, their tasks and the scheduler, and the syscall
//! layer, in the style of qemu-user.
//!
//! File and descriptor calls act on the host through host syscalls, with guest descriptors
//! mapped to host ones. Time is virtual and randomness is seeded, so runs are reproducible.

pub mod epoll;
pub mod eventfd;
pub mod exec;
pub mod fd;
pub mod futex;
pub mod history;
pub mod limits;
pub mod machine_files;
pub mod net;
pub mod pipe;
pub mod process;
pub mod random;
pub mod sched;
pub mod sigframe;
pub mod signal;
pub mod signature;
pub mod socket;
pub mod syscalls;
pub mod table;
pub mod task;
pub mod tasks;
pub mod timerfd;

use std::collections::BTreeMap;
use std::path::PathBuf;

use nix::errno::Errno;
use nix::sys::signal::Signal;
use rand_chacha::ChaCha20Rng;
use translator::cpu::CpuModel;

use crate::costs::work::{transfer_class, WorkClass};
use crate::memory::AddressSpace;
use fd::FdTable;
use futex::Futexes;
use machine_files::MachineFiles;
use process::{Pid, Process, FIRST_PID, INIT_PID};
use sched::Scheduler;
use signal::SignalState;
use syscalls::ids::Credentials;
use table::{Handler, Work};
use task::{Task, Wait};
use tasks::Spawn;

/// The default `--max-tasks`: Linux's default `pid_max` is far higher, but a fork bomb
/// should end in EAGAIN long before it exhausts the simulator's memory.
pub const DEFAULT_MAX_TASKS: usize = 4096;

/// The arguments of one syscall, RDI RSI RDX R10 R8 R9.
pub type Args = [u64; 6];

/// Why a handler did not return a value to the guest.
#[derive(Debug)]
pub enum SysError {
    /// A Linux error, returned to the guest as -errno.
    Errno(Errno),
    /// A case this simulator does not model yet; it stops the run loudly.
    Unsupported(String),
    /// The call must wait: the task sleeps until what it waits for happens.
    Block(Wait),
    /// What this kernel lacks (a socket family, an option): answered with `errno`, as a
    /// Linux kernel built without it answers, and counted in the report as `what`.
    Lacking { errno: Errno, what: String },
}

impl From<Errno> for SysError {
    fn from(errno: Errno) -> Self {
        SysError::Errno(errno)
    }
}

pub type SysResult = Result<u64, SysError>;

/// How the process ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal { signal: Signal, reason: String },
}

impl Exit {
    /// The status word wait4 reports for a child that ended so.
    pub fn wait_status(&self) -> u32 {
        match self {
            Exit::Code(code) => ((*code as u32) & 0xff) << 8,
            Exit::Signal { signal, .. } => *signal as u32 & 0x7f,
        }
    }
}

/// What to do about a syscall the table does not implement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnUnsupported {
    /// Stop the run with an error naming the syscall.
    Stop,
    /// Return -ENOSYS, count it, and go on.
    Enosys,
}

/// A syscall the simulator cannot carry out, with where the guest asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// What was asked for, e.g. "syscall mknodat (259)".
    pub what: String,
    pub rip: u64,
}

/// The thread's registers as the kernel sees them: they live in the CPU (a guest's `mov`
/// to FS changes its base with no syscall), so the machine reads them in for the calls that
/// read them (`arch_prctl`, sigaltstack, rt_sigreturn), and carries out the changes asked
/// for.
#[derive(Debug, Default)]
pub struct RegisterRequests {
    /// The CPU's FS and GS bases when the syscall was made.
    pub fs_base_now: u64,
    pub gs_base_now: u64,
    /// The guest's RSP when the syscall was made.
    pub rsp_now: u64,
    /// The guest's registers when the syscall was made (rt_sigreturn).
    pub user_now: sigframe::UserRegs,
    /// New bases to load on return to the guest.
    pub fs_base: Option<u64>,
    pub gs_base: Option<u64>,
    /// Registers and FP state to load on return to the guest (rt_sigreturn).
    pub restore: Option<(sigframe::UserRegs, sigframe::FxState)>,
}

pub struct Kernel {
    /// The running process and task: live here, as the running task's registers are live
    /// in the CPU.
    pub proc: Process,
    pub task: Task,
    /// Every other live task, and every other process (live or a zombie).
    pub tasks: BTreeMap<Pid, Task>,
    pub procs: BTreeMap<Pid, Process>,
    pub sched: Scheduler,
    pub futexes: Futexes,
    /// Tasks made by the running syscall, whose CPU state the machine makes from the
    /// caller's.
    pub spawned: Vec<Spawn>,
    /// The running task gives up the CPU at the end of this syscall (sched_yield).
    pub yielded: bool,
    /// The next pid or tid to hand out.
    next_pid: Pid,
    /// The last pipe's name.
    next_pipe_id: u64,
    /// The network namespace every process shares.
    pub net: net::Network,
    /// `--net host`: internet sockets are the host's (`syscalls::host_net`).
    pub net_host: bool,
    /// Open files the running sendmsg passes (SCM_RIGHTS), for the message it sends.
    pub sending_rights: Option<Vec<std::rc::Rc<fd::OpenFile>>>,
    /// Open files the running call's read took (SCM_RIGHTS): recvmsg installs them; after
    /// any other call they are dropped, as Linux closes what a plain read takes.
    pub received_rights: Vec<std::rc::Rc<fd::OpenFile>>,
    /// Every timerfd timer made, held weakly: their expiries are deadlines of the idle clock.
    pub timers: Vec<std::rc::Weak<std::cell::RefCell<timerfd::Timer>>>,
    /// How the first process ended, once it has: the run's exit status.
    pub first_exit: Option<Exit>,
    /// Past this many live tasks, fork and clone fail with EAGAIN (`--max-tasks`).
    pub max_tasks: usize,
    /// The run's seed, from which every process's entropy stream comes.
    pub seed: u64,
    /// The guest address of the syscall being served.
    pub syscall_rip: u64,
    /// Every process the run made, by pid.
    pub history: BTreeMap<Pid, history::ProcessLog>,
    /// Process creations so far, in their three steps: forks, execs, children reaped.
    pub forks: u64,
    /// Of the forks, the pages whose page-table entries they copied (vforks copy none).
    pub fork_pages: u64,
    /// Of the forks, the areas they copied beyond the Create Proc figure's parent's
    /// (vforks copy none).
    pub fork_areas: u64,
    pub execs: u64,
    pub reaps: u64,
    /// The running task execve'd: where the CPU starts the new image.
    pub execed: Option<exec::Image>,
    pub registers: RegisterRequests,
    /// Virtual time since the program started, in nanoseconds: CPU time plus sleeps.
    /// The machine sets it (and `cpu_ns`) before each syscall.
    pub elapsed_ns: u64,
    /// Virtual CPU time used so far, in nanoseconds.
    pub cpu_ns: u64,
    /// Time that passed without CPU work (nanosleep); it advances the clock, not the cycles.
    pub slept_ns: u64,
    /// The running syscall named a file that describes the machine (`machine_files`).
    pub named_machine_file: bool,
    /// The running syscall named a guest descriptor (/dev/stdout, /proc/self/fd/N): what it
    /// opens is that descriptor's file, of its kind, whatever the host's is.
    pub named_descriptor: Option<crate::costs::work::DescriptorKind>,
    /// `--sysroot`: where absolute paths are looked up first.
    pub sysroot: Option<PathBuf>,
    /// A syscall set a deadline the running task does not wait on (an alarm): the
    /// machine's timer must be set again.
    pub timers_changed: bool,
    pub exit: Option<Exit>,
    pub on_unsupported: OnUnsupported,
    /// The CPU the guest runs on, as /proc/cpuinfo describes it.
    pub cpu: &'static CpuModel,
    /// The files of /proc and /sys that describe the machine, made as they are opened.
    pub machine_files: MachineFiles,
}

/// The outcome of one syscall, for the machine and the accounting.
pub struct Dispatched {
    /// The value for RAX.
    pub ret: u64,
    /// It was unsupported and answered with ENOSYS (`OnUnsupported::Enosys`).
    pub enosys: bool,
    /// What the kernel lacks that it answered with an errno (`SysError::Lacking`).
    pub lacking: Option<String>,
}

impl Kernel {
    /// The kernel side of a process about to start: the host's standard descriptors, no
    /// signal handlers, the clock at 0.
    pub fn new(
        mem: AddressSpace,
        exe: PathBuf,
        comm: Vec<u8>,
        rng: ChaCha20Rng,
        credentials: Credentials,
        cpu: &'static CpuModel,
        on_unsupported: OnUnsupported,
    ) -> Self {
        Self {
            proc: Process {
                pid: FIRST_PID,
                ppid: INIT_PID,
                pgid: FIRST_PID,
                sid: process::INIT_PID,
                execed: false,
                path: Vec::new(),
                children_made: 0,
                exit: None,
                exit_signal: libc::SIGCHLD as u32,
                mem,
                fds: FdTable::with_host_stdio(),
                signals: SignalState::default(),
                credentials,
                exe,
                comm,
                rng,
                fs: process::FsContext::of_host().expect("the working directory can be opened"),
                limits: limits::Limits::default(),
            },
            task: Task::new(FIRST_PID, FIRST_PID),
            tasks: BTreeMap::new(),
            procs: BTreeMap::new(),
            sched: Scheduler::new(sched::DEFAULT_QUANTUM, None),
            futexes: Futexes::default(),
            spawned: Vec::new(),
            yielded: false,
            next_pid: FIRST_PID + 1,
            next_pipe_id: 0,
            net: net::Network::default(),
            net_host: false,
            sending_rights: None,
            received_rights: Vec::new(),
            timers: Vec::new(),
            first_exit: None,
            max_tasks: DEFAULT_MAX_TASKS,
            seed: 0,
            syscall_rip: 0,
            execed: None,
            history: BTreeMap::new(),
            forks: 0,
            fork_pages: 0,
            fork_areas: 0,
            execs: 0,
            reaps: 0,
            registers: RegisterRequests::default(),
            elapsed_ns: 0,
            cpu_ns: 0,
            slept_ns: 0,
            timers_changed: false,
            sysroot: None,
            named_machine_file: false,
            named_descriptor: None,
            exit: None,
            on_unsupported,
            cpu,
            machine_files: MachineFiles::default(),
        }
    }

    /// A kernel for handler tests: an empty address space and `credentials`.
    #[cfg(test)]
    pub(crate) fn for_tests(credentials: Credentials) -> Self {
        use rand::SeedableRng;
        let mem = AddressSpace::new().expect("physical memory for a test");
        let rng = ChaCha20Rng::seed_from_u64(0);
        Self::new(
            mem,
            "/test".into(),
            b"test".to_vec(),
            rng,
            credentials,
            translator::cpu::Vendor::Intel.model(),
            OnUnsupported::Stop,
        )
    }

    /// The kernel-work class of syscall `nr` with `args`: its row's, or for a transfer the
    /// class of its descriptor's kind. A number with no row does nothing (ENOSYS).
    pub fn work_class(&self, nr: u64, args: &Args) -> WorkClass {
        match table::lookup(nr).map(|row| row.work) {
            None => WorkClass::Identity,
            Some(Work::Fixed(class)) => class,
            Some(Work::Transfer(direction)) => self
                .proc
                .fds
                .file(args[0])
                .map_or(WorkClass::Other, |file| {
                    transfer_class(file.kind, direction)
                }),
        }
    }

    /// Runs syscall `nr` from guest address `rip`. `Ok(None)`: the call must wait, and the
    /// running task is parked in it (see [`Kernel::switch`]). `Err` stops the run: the
    /// syscall is not supported.
    pub fn dispatch(
        &mut self,
        nr: u64,
        args: &Args,
        rip: u64,
    ) -> Result<Option<Dispatched>, Unsupported> {
        self.syscall_rip = rip;
        self.named_machine_file = false;
        self.named_descriptor = None;
        let row = table::lookup(nr);
        let result = match row.map(|r| r.handler) {
            // Signals are acted on as the syscall returns to the guest.
            Some(Handler::Call(handler)) => handler(self, args).inspect(|_| {
                syscalls::signal::fire_due_alarm(self);
            }),
            Some(Handler::NoSys) => Err(SysError::Errno(Errno::ENOSYS)),
            None => {
                let name = syscalls::name(nr);
                Err(SysError::Unsupported(format!("syscall {name}")))
            }
        };
        // What a call passed or took and did not use goes (its descriptors close).
        self.sending_rights = None;
        self.received_rights.clear();
        let mut lacking = None;
        let (ret, enosys) = match result {
            Ok(value) => (value, false),
            Err(SysError::Errno(errno)) => ((-(errno as i64)) as u64, false),
            Err(SysError::Lacking { errno, what }) => {
                lacking = Some(format!("{what} ({errno:?})"));
                ((-(errno as i64)) as u64, false)
            }
            Err(SysError::Block(wait)) => {
                let call = task::Parked {
                    nr,
                    args: *args,
                    rip,
                };
                self.task.state = task::State::Blocked { wait, call };
                // A signal that came while the task was woken and not yet running again
                // ends the wait at once, as Linux's wait loops check for one before they
                // sleep.
                if self.signal_pending() {
                    self.interrupt(self.task.tid);
                }
                return Ok(None);
            }
            Err(SysError::Unsupported(what)) => match self.on_unsupported {
                OnUnsupported::Stop => return Err(Unsupported { what, rip }),
                OnUnsupported::Enosys => ((-(Errno::ENOSYS as i64)) as u64, true),
            },
        };
        if let Some(exit) = self.exit.take() {
            self.exit_process(exit);
        }
        Ok(Some(Dispatched {
            ret,
            enosys,
            lacking,
        }))
    }
}
