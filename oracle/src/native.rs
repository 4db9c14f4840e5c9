//! The native run: the program on the host CPU under ptrace, made as reproducible as the
//! simulator's run. ASLR is off (personality), AT_RANDOM and getrandom's bytes are the
//! simulator's seeded ones (`sim::kernel::random`: one stream per process), the vDSO is
//! hidden at every exec (AT_SYSINFO_EHDR becomes AT_IGNORE) so that time calls are
//! syscalls, and tracer and tracees share one CPU: unpinned, a traced syscall costs about
//! 100 µs on this machine, pinned about 16 µs. Every task the program creates is followed
//! (`follow`).

mod follow;
mod tracee;

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use crate::observed::Observed;
use crate::scratch::TempDir;

/// What the native run is given.
pub struct NativeSpec<'a> {
    pub program: &'a Path,
    /// argv, argv[0] included.
    pub argv: &'a [OsString],
    pub env: &'a [OsString],
    /// The working directory; stdin is /dev/null.
    pub dir: &'a Path,
    /// The simulator's seed: AT_RANDOM and getrandom get the bytes it would give.
    pub seed: u64,
    /// The run is killed after this long.
    pub timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum NativeError {
    #[error("native run: {0}")]
    Setup(String),
    #[error("native run: ptrace: {0}")]
    Trace(nix::Error),
    #[error("native run: still running after {0:?}, killed")]
    Timeout(Duration),
}

impl From<nix::Error> for NativeError {
    fn from(e: nix::Error) -> Self {
        NativeError::Trace(e)
    }
}

fn c_string(bytes: &[u8]) -> Result<CString, NativeError> {
    CString::new(bytes).map_err(|_| NativeError::Setup("a NUL byte in an argument".into()))
}

/// Runs the program natively and records what it did.
pub fn run(spec: &NativeSpec) -> Result<Observed, NativeError> {
    let program = c_string(spec.program.as_os_str().as_bytes())?;
    let argv: Vec<CString> = spec
        .argv
        .iter()
        .map(|a| c_string(a.as_bytes()))
        .collect::<Result<_, _>>()?;
    let env: Vec<CString> = spec
        .env
        .iter()
        .map(|e| c_string(e.as_bytes()))
        .collect::<Result<_, _>>()?;
    let dir = c_string(spec.dir.as_os_str().as_bytes())?;
    let outputs = TempDir::new("native-output").map_err(|e| NativeError::Setup(e.to_string()))?;
    let stdout_path = outputs.path().join("stdout");
    let stderr_path = outputs.path().join("stderr");
    let stdout =
        std::fs::File::create(&stdout_path).map_err(|e| NativeError::Setup(e.to_string()))?;
    let stderr =
        std::fs::File::create(&stderr_path).map_err(|e| NativeError::Setup(e.to_string()))?;

    let (status, tree) = std::thread::scope(|scope| {
        // A thread of its own: it waits for any child of its own (`follow`), so it must
        // have none but the program's.
        std::thread::Builder::new()
            .name("native-tracer".into())
            .spawn_scoped(scope, || {
                let pinned = Pinned::to_one_cpu();
                let cpus = pinned.as_ref().map(|p| &p.cpus);
                let child = spawn_traced(&program, &argv, &env, &dir, &stdout, &stderr, cpus)?;
                follow::follow(child, spec.seed, spec.timeout)
            })
            .map_err(|e| NativeError::Setup(e.to_string()))?
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })?;
    drop((stdout, stderr));
    let read = |path: &Path| std::fs::read(path).map_err(|e| NativeError::Setup(e.to_string()));
    Ok(Observed {
        status,
        stdout: read(&stdout_path)?,
        stderr: read(&stderr_path)?,
        syscalls: tree.tasks[0].syscalls.clone(),
        files: Default::default(),
        guest_instructions: None,
        tree,
    })
}

/// The calling thread pinned to one CPU, back to its old set when dropped.
struct Pinned {
    old: CpuSet,
    cpus: CpuSet,
}

impl Pinned {
    /// Pins to the first CPU the thread may run on (whatever the host's CPU count, cgroup
    /// or taskset allows), or does nothing where affinity cannot be read or set (a sandbox
    /// that forbids it, more CPUs than a `CpuSet` holds): pinning only makes tracing faster.
    fn to_one_cpu() -> Option<Self> {
        let old = sched_getaffinity(Pid::from_raw(0)).ok()?;
        let cpu = (0..CpuSet::count()).find(|&c| old.is_set(c).unwrap_or(false))?;
        let mut cpus = CpuSet::new();
        cpus.set(cpu).ok()?;
        sched_setaffinity(Pid::from_raw(0), &cpus).ok()?;
        Some(Self { old, cpus })
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        let _ = sched_setaffinity(Pid::from_raw(0), &self.old);
    }
}

/// Closes every descriptor from 3 up, in a forked child (async-signal-safe): close_range,
/// or on a kernel older than 5.9 one close per descriptor the limit allows.
fn close_from_3() -> bool {
    // SAFETY: plain syscalls on this process's own descriptors.
    unsafe {
        if libc::syscall(libc::SYS_close_range, 3, u32::MAX, 0) == 0 {
            return true;
        }
        let mut limit = std::mem::zeroed::<libc::rlimit>();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return false;
        }
        for fd in 3..limit.rlim_cur.min(1 << 20) as i32 {
            libc::close(fd);
        }
        true
    }
}

/// Forks a child that asks to be traced, then execs the program; returns once it stopped
/// at the exec.
fn spawn_traced(
    program: &CString,
    argv: &[CString],
    env: &[CString],
    dir: &CString,
    stdout: &std::fs::File,
    stderr: &std::fs::File,
    cpus: Option<&CpuSet>,
) -> Result<Pid, NativeError> {
    use std::os::fd::AsRawFd;
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let mut env_ptrs: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    env_ptrs.push(std::ptr::null());
    let dev_null = c"/dev/null";
    let (out_fd, err_fd) = (stdout.as_raw_fd(), stderr.as_raw_fd());
    // SAFETY: the child calls only async-signal-safe functions (no allocation: every
    // string and array was built before the fork) and ends in execve or _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(NativeError::Trace(nix::Error::last()));
    }
    if pid == 0 {
        // SAFETY: see above; every pointer refers to memory built before the fork.
        unsafe {
            libc::personality(libc::ADDR_NO_RANDOMIZE as libc::c_ulong);
            // As the simulated process starts: every signal's default action (this process
            // ignores SIGPIPE, as Rust programs do, and exec would pass that on) and none
            // blocked.
            for signo in 1..=libc::SIGRTMAX() {
                libc::signal(signo, libc::SIG_DFL);
            }
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
            // A group of its own, as the simulated first process leads (and as a shell
            // starts a job): a kill(0, …) of the program's stays within its own tree.
            libc::setpgid(0, 0);
            if let Some(cpus) = cpus {
                let _ = sched_setaffinity(Pid::from_raw(0), cpus);
            }
            let null = libc::open(dev_null.as_ptr(), libc::O_RDONLY);
            if null < 0
                || libc::dup2(null, 0) < 0
                || libc::dup2(out_fd, 1) < 0
                || libc::dup2(err_fd, 2) < 0
                // Only stdin, stdout and stderr, as the simulated process has.
                || !close_from_3()
                || libc::chdir(dir.as_ptr()) < 0
                || libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) < 0
            {
                libc::_exit(126);
            }
            libc::execve(program.as_ptr(), argv_ptrs.as_ptr(), env_ptrs.as_ptr());
            libc::_exit(127);
        }
    }
    let pid = Pid::from_raw(pid);
    match waitpid(pid, None)? {
        WaitStatus::Stopped(_, Signal::SIGTRAP) => Ok(pid),
        WaitStatus::Exited(_, code) => Err(NativeError::Setup(format!(
            "cannot start the program (exit status {code})"
        ))),
        other => {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
            Err(NativeError::Setup(format!(
                "unexpected first stop: {other:?}"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A host whose allowed set is one CPU, and not CPU 0 or 1 when the host has more
    /// (a 1-CPU VM, a cgroup, taskset): the pin must land on that CPU.
    #[test]
    fn pins_to_a_cpu_the_thread_may_use() {
        let allowed = sched_getaffinity(Pid::from_raw(0)).unwrap();
        let last = (0..CpuSet::count())
            .rev()
            .find(|&c| allowed.is_set(c).unwrap_or(false))
            .expect("a CPU to run on");
        let mut only = CpuSet::new();
        only.set(last).unwrap();
        sched_setaffinity(Pid::from_raw(0), &only).unwrap();
        let pinned = Pinned::to_one_cpu().expect("pinned");
        assert!(pinned.cpus.is_set(last).unwrap());
        drop(pinned);
        assert!(sched_getaffinity(Pid::from_raw(0))
            .unwrap()
            .is_set(last)
            .unwrap());
        sched_setaffinity(Pid::from_raw(0), &allowed).unwrap();
    }
}
