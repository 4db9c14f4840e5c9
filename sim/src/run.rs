//! One simulation, start to end: load the program, run it at ring 3, price it, report.

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

use nix::fcntl::OFlag;
use nix::sys::stat::{self, Mode as FileMode};

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

use crate::accounting::SyscallRecord;
use crate::costs::CostModel;
use crate::kernel::history::ProcessLog;
use crate::kernel::process::{FIRST_PID, INIT_PID};
use crate::kernel::sched::Scheduler;
use crate::kernel::syscalls::ids::Credentials;
use crate::kernel::{Exit, Kernel, OnUnsupported, Unsupported};
use crate::loader::{self, ExecArgs, LoadError};
use crate::machine::physmem::PhysMemError;
use crate::machine::{Machine, MachineError};
use crate::memory::AddressSpace;
use crate::report::Report;
use crate::system::{Mode, Stop, System};
use translator::cpu::Vendor;

/// Everything a run depends on. The same config gives a byte-identical report.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub program: PathBuf,
    /// argv[1..].
    pub args: Vec<OsString>,
    /// argv[0]; the program path when `None`.
    pub argv0: Option<OsString>,
    /// The guest's environment, in order.
    pub env: Vec<OsString>,
    pub cost_model: CostModel,
    /// The vendor whose CPU the simulated one follows where Intel and AMD differ.
    pub cpu_vendor: Vendor,
    /// Seeds AT_RANDOM and getrandom.
    pub seed: u64,
    /// The guest's user and group id (real, effective and saved; its one group the gid),
    /// for runs that must not depend on the host user; the host user's when `None`.
    pub user_ids: Option<(u32, u32)>,
    pub max_instructions: Option<u64>,
    /// The scheduler's quantum, in guest instructions.
    pub quantum: u64,
    /// Seeds a randomized schedule (round robin when `None`).
    pub schedule_seed: Option<u64>,
    /// Live tasks past which fork and clone fail with EAGAIN.
    pub max_tasks: usize,
    /// Where the interpreter and the guest's absolute paths are looked up first
    /// (`--sysroot`, as qemu-user's `-L`).
    pub sysroot: Option<PathBuf>,
    pub on_unsupported: OnUnsupported,
    pub mode: Mode,
    /// Keep a disassembly of every translated block (ring 0).
    pub dump_translation: bool,
    /// Record every syscall with its arguments and result.
    pub trace_syscalls: bool,
    /// A translator bug to make on purpose: tests of the oracle only.
    pub planted_bug: Option<PlantedBug>,
    /// `--net host`: internet sockets are the host's (not deterministic).
    pub net_host: bool,
}

/// A bug made on purpose, to show that the checks catch it: tests only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlantedBug {
    /// One of the translator's (see `translator::planted`).
    Translator(translator::PlantedBug),
    /// The syscall hook panics: the run must end as an internal error, not abort.
    PanicInSyscallHook,
}

/// How a run ended, and its report.
#[derive(Debug)]
pub struct Outcome {
    pub report: Report,
    /// The exit status `simulate` passes on: the guest's, 128+N for signal N, 124 when the
    /// instruction limit stopped it.
    pub status: i32,
    /// A line for stderr when the guest did not simply exit.
    pub notice: Option<String>,
    /// Every translated block, guest code beside translation (`dump_translation`).
    pub translation_dump: Option<String>,
    /// Every syscall in order (`trace_syscalls`).
    pub syscall_trace: Option<Vec<SyscallRecord>>,
}

/// Why `simulate` itself could not complete a run. Each message is one line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Machine(#[from] MachineError),
    #[error(transparent)]
    Memory(#[from] PhysMemError),
    #[error("unsupported: {} at guest rip {:#x}", .0.what, .0.rip)]
    Unsupported(Unsupported),
}

/// Exit statuses, following env(1), timeout(1) and chroot(1).
pub mod status {
    /// Every task of the program waits for something no task can do.
    pub const DEADLOCK: i32 = 123;
    /// The instruction limit stopped the program.
    pub const INSTRUCTION_LIMIT: i32 = 124;
    /// `simulate` itself failed: a usage error, a bad cost model, an unsupported syscall.
    pub const SIMULATOR_FAILED: i32 = 125;
    /// The program exists but cannot be run.
    pub const CANNOT_RUN: i32 = 126;
    /// The program, or its interpreter, was not found.
    pub const NOT_FOUND: i32 = 127;
}

impl Error {
    pub fn exit_status(&self) -> i32 {
        match self {
            Error::Load(LoadError::NotFound(_)) => status::NOT_FOUND,
            // As a shell reports the ENOENT of execve for a missing interpreter.
            Error::Load(LoadError::Interpreter { source, .. })
                if matches!(**source, LoadError::NotFound(_)) =>
            {
                status::NOT_FOUND
            }
            Error::Load(_) => status::CANNOT_RUN,
            Error::Machine(_) | Error::Memory(_) | Error::Unsupported(_) => {
                status::SIMULATOR_FAILED
            }
        }
    }
}

/// The host process's working directory and umask. The guest's paths are the host's, so its
/// `chdir` and `umask` change the host process's: they must be given back when the run ends,
/// however it ends, or the simulator's own files (report, trace) would follow the guest's.
struct HostDirectoryState {
    /// `None` when the working directory is gone: then there is nothing to return to.
    cwd: Option<OwnedFd>,
    umask: FileMode,
}

impl HostDirectoryState {
    fn save() -> Self {
        // O_PATH: fchdir needs no read permission on the directory.
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let cwd = nix::fcntl::open(".", flags, FileMode::empty()).ok();
        // umask can only be read by setting it; put it straight back.
        let umask = stat::umask(FileMode::empty());
        stat::umask(umask);
        HostDirectoryState { cwd, umask }
    }
}

impl Drop for HostDirectoryState {
    fn drop(&mut self) {
        if let Some(cwd) = &self.cwd {
            // Held open, the directory can still be entered even if the guest removed it.
            let _ = nix::unistd::fchdir(cwd);
        }
        stat::umask(self.umask);
    }
}

/// Raises the host process's open-file limit to its hard limit: every guest descriptor of
/// every simulated process holds a host one, so the guests together may need more than one
/// process's default soft limit (1,024).
fn raise_host_open_files() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

pub fn run(config: &RunConfig) -> Result<Outcome, Error> {
    let _host_directory = HostDirectoryState::save();
    raise_host_open_files();
    let bytes = loader::read_program(&config.program)?;
    let exe = std::fs::canonicalize(&config.program).unwrap_or_else(|_| config.program.clone());
    let mut rng = ChaCha20Rng::seed_from_u64(config.seed);
    let mut random = [0u8; 16];
    rng.fill_bytes(&mut random);
    let argv0 = config
        .argv0
        .clone()
        .unwrap_or_else(|| config.program.clone().into_os_string());
    let credentials = config
        .user_ids
        .map_or_else(Credentials::of_host, |(uid, gid)| {
            Credentials::new([uid; 3], [gid; 3], vec![gid])
        });
    let exec = ExecArgs {
        argv: std::iter::once(&argv0)
            .chain(&config.args)
            .map(|a| a.as_bytes().to_vec())
            .collect(),
        envp: config.env.iter().map(|e| e.as_bytes().to_vec()).collect(),
        execfn: config.program.clone().into_os_string().into_vec(),
        random,
        ids: [
            credentials.uid.real,
            credentials.uid.effective,
            credentials.gid.real,
            credentials.gid.effective,
        ],
    };

    let mut mem = AddressSpace::new()?;
    let sysroot = config.sysroot.as_deref();
    let loaded = loader::load(&mut mem, &config.program, &bytes, &exec, sysroot)?;
    let comm = config.program.file_name().map_or_else(Vec::new, |n| {
        n.as_bytes().iter().take(15).copied().collect()
    });
    let kernel = Kernel::new(
        mem,
        exe,
        comm,
        rng,
        credentials,
        config.cpu_vendor.model(),
        config.on_unsupported,
    );
    let mut kernel = kernel;
    kernel.seed = config.seed;
    kernel.max_tasks = config.max_tasks;
    kernel.sysroot = config.sysroot.clone();
    kernel.net_host = config.net_host;
    kernel.sched = Scheduler::new(config.quantum, config.schedule_seed);
    let argv_shown = exec
        .argv
        .iter()
        .map(|a| String::from_utf8_lossy(a).into_owned());
    let log = ProcessLog::new(FIRST_PID, INIT_PID, Vec::new(), argv_shown.collect());
    kernel.history.insert(FIRST_PID, log);
    let mut system = System::new(
        kernel,
        config.cost_model.clone(),
        config.max_instructions,
        config.mode,
    );
    system.dump_translation = config.dump_translation;
    if let (true, Some(cache)) = (config.dump_translation, &mut system.cache) {
        cache.keep_retired_blocks();
    }
    system.panic_in_syscall_hook = config.planted_bug == Some(PlantedBug::PanicInSyscallHook);
    if let (Some(PlantedBug::Translator(bug)), Some(cache)) =
        (config.planted_bug, &mut system.cache)
    {
        cache.plant(bug);
    }
    system.syscall_trace = config.trace_syscalls.then(Vec::new);
    let finished = Machine::new(system, loaded.entry, loaded.stack_pointer)?.run()?;

    let (status, notice) = match &finished.stop {
        Stop::Exit(Exit::Code(code)) => (*code, None),
        Stop::Exit(Exit::Signal { signal, reason }) => (
            128 + *signal as i32,
            Some(format!("guest killed by {}: {reason}", signal.as_str())),
        ),
        Stop::InstructionLimit => (
            status::INSTRUCTION_LIMIT,
            Some(format!(
                "stopped after {} instructions (--max-instructions)",
                finished.counts.guest_instructions
            )),
        ),
        Stop::Deadlock(waits) => (status::DEADLOCK, Some(format!("deadlock: {waits}"))),
        Stop::Unsupported(unsupported) => return Err(Error::Unsupported(unsupported.clone())),
    };
    let report = Report::new(config, &finished);
    Ok(Outcome {
        report,
        status,
        notice,
        translation_dump: finished.translation_dump,
        syscall_trace: finished.syscall_trace,
    })
}
