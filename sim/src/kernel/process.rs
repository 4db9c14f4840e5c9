//! A process (Linux's thread group): what its threads share. Its address space, descriptor
//! table, signal dispositions, credentials and entropy stream.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::rc::Rc;

use std::os::unix::fs::OpenOptionsExt;

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
    /// Its working directory and umask.
    pub fs: FsContext,
    /// Its resource limits.
    pub limits: super::limits::Limits,
}

/// A process's working directory and umask (Linux's `fs_struct`): paths go to the host
/// as the guest gives them, so the host process's own are set to the running process's
/// whenever another process runs.
#[derive(Clone)]
pub struct FsContext {
    /// The directory, opened O_PATH; shared with the processes forked since a chdir.
    pub cwd: Rc<OwnedFd>,
    pub umask: u32,
}

impl FsContext {
    /// The host process's own, as the run starts.
    pub fn of_host() -> std::io::Result<Self> {
        let cwd = open_cwd()?;
        // umask can only be read by setting it; put it straight back.
        // SAFETY: umask cannot fail.
        let umask = unsafe { libc::umask(0) };
        // SAFETY: as above.
        unsafe { libc::umask(umask) };
        Ok(Self { cwd, umask })
    }

    /// Makes this the host process's, coming from `was`'s.
    pub fn enter(&self, was: &FsContext) {
        if !Rc::ptr_eq(&self.cwd, &was.cwd) {
            // SAFETY: an owned descriptor; a directory the guest reached before.
            unsafe { libc::fchdir(self.cwd.as_raw_fd()) };
        }
        if self.umask != was.umask {
            // SAFETY: umask cannot fail.
            unsafe { libc::umask(self.umask) };
        }
    }
}

/// The host process's working directory, opened O_PATH.
pub fn open_cwd() -> std::io::Result<Rc<OwnedFd>> {
    let cwd = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(".")?;
    Ok(Rc::new(cwd.into()))
}
