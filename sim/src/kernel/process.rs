//! A process (Linux's thread group): what its threads share. Its address space, descriptor
//! table, signal dispositions, credentials and entropy stream.

use std::path::PathBuf;

use rand_chacha::ChaCha20Rng;

use super::fd::FdTable;
use super::signal::SignalState;
use super::syscalls::ids::Credentials;
use super::Exit;
use crate::memory::AddressSpace;

/// A process id; also a thread id (a process's id is its first thread's).
pub type Pid = u64;

/// The pid of the first process. Pids are handed out in creation order from here, so that
/// reports and outputs are reproducible.
pub const FIRST_PID: Pid = 1000;
/// The parent of the first process: a simulated init, which reaps what it inherits. The
/// first process leads a group of its own in init's session, as a shell's job does.
pub const INIT_PID: Pid = 999;

pub struct Process {
    pub pid: Pid,
    pub ppid: Pid,
    /// Its process group and session: inherited, changed by setpgid and setsid.
    pub pgid: Pid,
    pub sid: Pid,
    /// It has called execve since it was made: its parent may no longer move it to another
    /// group (setpgid's EACCES).
    pub execed: bool,
    /// Where it stands in the process tree, for its entropy stream (see `kernel::random`).
    pub path: Vec<u32>,
    /// How many child processes it has made.
    pub children_made: u32,
    /// How it ended, once it has: until its parent reaps it, it is a zombie.
    pub exit: Option<Exit>,
    /// The signal its parent gets when it ends (clone's CSIGNAL; SIGCHLD for fork).
    pub exit_signal: u32,
    pub mem: AddressSpace,
    pub fds: FdTable,
    pub signals: SignalState,
    /// The process's user and group ids: the host user's at start, then the guest's own.
    pub credentials: Credentials,
    /// The program's absolute path: what /proc/self/exe names.
    pub exe: PathBuf,
    /// The task name (PR_GET_NAME): the file name, at most 15 bytes.
    pub comm: Vec<u8>,
    /// AT_RANDOM and getrandom's bytes.
    pub rng: ChaCha20Rng,
}
