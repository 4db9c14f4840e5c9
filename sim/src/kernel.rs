//! The modelled Linux kernel: one process's syscall layer, in the style of qemu-user.
//!
//! File and descriptor calls act on the host through host syscalls, with guest descriptors
//! mapped to host ones. Time is virtual and randomness is seeded, so runs are reproducible.

pub mod fd;
pub mod machine_files;
pub mod sigframe;
pub mod signature;
pub mod syscalls;
pub mod table;

use std::path::PathBuf;

use nix::errno::Errno;
use nix::sys::signal::Signal;
use rand_chacha::ChaCha20Rng;
use translator::cpu::CpuModel;

use crate::memory::AddressSpace;
use fd::FdTable;
use machine_files::MachineFiles;
use syscalls::ids::Credentials;
use syscalls::signal::SignalState;
use table::{Handler, Row};

/// The arguments of one syscall, RDI RSI RDX R10 R8 R9.
pub type Args = [u64; 6];

/// Why a handler did not return a value to the guest.
#[derive(Debug)]
pub enum SysError {
    /// A Linux error, returned to the guest as -errno.
    Errno(Errno),
    /// A case this simulator does not model yet; it stops the run loudly.
    Unsupported(String),
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

/// The thread's registers as the kernel sees them: the FS and GS bases live in the CPU (a
/// guest's `mov` to FS or GS changes them with no syscall), so the machine reads them in
/// for the calls that read them (`arch_prctl`), and carries out the changes asked for.
#[derive(Debug, Default)]
pub struct RegisterRequests {
    /// The CPU's FS and GS bases when the syscall was made.
    pub fs_base_now: u64,
    pub gs_base_now: u64,
    /// New bases to load on return to the guest.
    pub fs_base: Option<u64>,
    pub gs_base: Option<u64>,
}

/// Fixed identity of the simulated process, so reports and outputs are reproducible.
pub const GUEST_PID: u64 = 1000;
pub const GUEST_PPID: u64 = 999;

pub struct Kernel {
    pub mem: AddressSpace,
    pub fds: FdTable,
    pub signals: SignalState,
    /// The process's user and group ids: the host user's at start, then the guest's own.
    pub credentials: Credentials,
    pub registers: RegisterRequests,
    /// The program's absolute path: what /proc/self/exe names.
    pub exe: PathBuf,
    /// The task name (PR_GET_NAME): the file name, at most 15 bytes.
    pub comm: Vec<u8>,
    pub rng: ChaCha20Rng,
    /// Virtual time since the program started, in nanoseconds: CPU time plus sleeps.
    /// The machine sets it (and `cpu_ns`) before each syscall.
    pub elapsed_ns: u64,
    /// Virtual CPU time used so far, in nanoseconds.
    pub cpu_ns: u64,
    /// Time that passed without CPU work (nanosleep); it advances the clock, not the cycles.
    pub slept_ns: u64,
    pub exit: Option<Exit>,
    pub on_unsupported: OnUnsupported,
    /// The CPU the guest runs on, as /proc/cpuinfo describes it.
    pub cpu: &'static CpuModel,
    /// The files of /proc and /sys that describe the machine, made as they are opened.
    pub machine_files: MachineFiles,
}

/// The outcome of one syscall, for the machine and the accounting.
pub struct Dispatched {
    pub row: Option<&'static Row>,
    /// The value for RAX.
    pub ret: u64,
    /// It was unsupported and answered with ENOSYS (`OnUnsupported::Enosys`).
    pub enosys: bool,
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
            mem,
            fds: FdTable::with_host_stdio(),
            signals: SignalState::default(),
            credentials,
            registers: RegisterRequests::default(),
            exe,
            comm,
            rng,
            elapsed_ns: 0,
            cpu_ns: 0,
            slept_ns: 0,
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

    /// Runs syscall `nr`. `Err` stops the run: the syscall is not supported.
    pub fn dispatch(&mut self, nr: u64, args: &Args, rip: u64) -> Result<Dispatched, Unsupported> {
        let row = table::lookup(nr);
        let result = match row.map(|r| r.handler) {
            // Signals are acted on as the syscall returns to the guest.
            Some(Handler::Call(handler)) => handler(self, args)
                .and_then(|value| syscalls::signal::fire_due_alarm(self).map(|()| value)),
            Some(Handler::NoSys) => Err(SysError::Errno(Errno::ENOSYS)),
            None => {
                let name = syscalls::name(nr);
                Err(SysError::Unsupported(format!("syscall {name}")))
            }
        };
        let (ret, enosys) = match result {
            Ok(value) => (value, false),
            Err(SysError::Errno(errno)) => ((-(errno as i64)) as u64, false),
            Err(SysError::Unsupported(what)) => match self.on_unsupported {
                OnUnsupported::Stop => return Err(Unsupported { what, rip }),
                OnUnsupported::Enosys => ((-(Errno::ENOSYS as i64)) as u64, true),
            },
        };
        Ok(Dispatched { row, ret, enosys })
    }
}
