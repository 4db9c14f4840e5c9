//! The native run: the program on the host CPU under ptrace, made as reproducible as the
//! simulator's run. ASLR is off (personality), AT_RANDOM and getrandom's bytes are the
//! simulator's seeded ones, the vDSO is hidden (AT_SYSINFO_EHDR becomes AT_IGNORE) so that
//! time calls are syscalls, and tracer and tracee share one CPU: unpinned, a traced
//! syscall costs about 100 µs on this machine, pinned about 16 µs.

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::sys::ptrace;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use sim::accounting::SyscallRecord;

use crate::observed::{Observed, Status};
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

const AT_NULL: u64 = 0;
const AT_IGNORE: u64 = 1;
const AT_RANDOM: u64 = 25;
const AT_SYSINFO_EHDR: u64 = 33;
/// `ptrace_syscall_info.op`.
const OP_ENTRY: u8 = 1;
const OP_EXIT: u8 = 2;
/// `ptrace_syscall_info.arch` of an `int 0x80` syscall.
const AUDIT_ARCH_I386: u32 = 0x4000_0003;

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

    let pinned = Pinned::to_one_cpu();
    let cpus = pinned.as_ref().map(|p| &p.cpus);
    let child = spawn_traced(&program, &argv, &env, &dir, &stdout, &stderr, cpus)?;
    drop((stdout, stderr));
    let traced = trace(child, spec.seed, spec.timeout);
    drop(pinned);
    let (status, syscalls) = traced?;
    let read = |path: &Path| std::fs::read(path).map_err(|e| NativeError::Setup(e.to_string()));
    Ok(Observed {
        status,
        stdout: read(&stdout_path)?,
        stderr: read(&stderr_path)?,
        syscalls,
        files: Default::default(),
        guest_instructions: None,
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
            drop(KillOnDrop(pid));
            Err(NativeError::Setup(format!(
                "unexpected first stop: {other:?}"
            )))
        }
    }
}

/// Follows the stopped-at-exec child to its end, recording each syscall.
fn trace(
    pid: Pid,
    seed: u64,
    timeout: Duration,
) -> Result<(Status, Vec<SyscallRecord>), NativeError> {
    let guard = KillOnDrop(pid);
    ptrace::setoptions(
        pid,
        ptrace::Options::PTRACE_O_TRACESYSGOOD | ptrace::Options::PTRACE_O_EXITKILL,
    )?;
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    prepare_auxv(pid, &mut rng)?;
    let watchdog = Watchdog::start(pid, timeout);
    let followed = follow(pid, &mut rng);
    // Killed by the watchdog: whatever ptrace said then, the run took too long.
    if watchdog.fired() {
        return Err(NativeError::Timeout(timeout));
    }
    let (status, syscalls) = followed?;
    std::mem::forget(guard);
    Ok((status, syscalls))
}

/// Resumes the tracee from stop to stop until it ends, recording each syscall.
fn follow(pid: Pid, rng: &mut ChaCha20Rng) -> Result<(Status, Vec<SyscallRecord>), NativeError> {
    let mut syscalls = Vec::new();
    let mut entry: Option<(u64, [u64; 6])> = None;
    let mut signal = None;
    loop {
        ptrace::syscall(pid, signal.take())?;
        let status = waitpid(pid, None)?;
        match status {
            WaitStatus::PtraceSyscall(_) => {
                let info = syscall_info(pid)?;
                match info.op {
                    OP_ENTRY => {
                        // SAFETY: op says which member of the union is filled in.
                        let e = unsafe { info.u.entry };
                        let nr = if info.arch == AUDIT_ARCH_I386 {
                            // int 0x80: recorded as its x86-64 equivalent, as the
                            // simulator records it.
                            sim::kernel::syscalls::compat::to_native(e.nr).unwrap_or(e.nr)
                        } else {
                            e.nr
                        };
                        entry = Some((nr, e.args));
                    }
                    OP_EXIT => {
                        // SAFETY: as above.
                        let ret = unsafe { info.u.exit }.sval as u64;
                        if let Some((nr, args)) = entry.take() {
                            if nr == libc::SYS_getrandom as u64 && (ret as i64) > 0 {
                                overwrite_random(pid, args[0], ret as usize, rng)?;
                            }
                            syscalls.push(SyscallRecord { nr, args, ret });
                        }
                    }
                    _ => {}
                }
            }
            WaitStatus::Stopped(_, sig) => signal = Some(sig),
            WaitStatus::Exited(_, code) => {
                finish_pending(&mut syscalls, entry);
                return Ok((Status::Exited(code), syscalls));
            }
            WaitStatus::Signaled(_, sig, _) => {
                finish_pending(&mut syscalls, entry);
                return Ok((Status::Signaled(sig.as_str().to_string()), syscalls));
            }
            _ => {}
        }
    }
}

/// PTRACE_GET_SYSCALL_INFO. (nix 0.30's `syscall_info` passes a size of 0, so the kernel
/// fills in nothing.)
fn syscall_info(pid: Pid) -> Result<libc::ptrace_syscall_info, NativeError> {
    let mut info = std::mem::MaybeUninit::<libc::ptrace_syscall_info>::zeroed();
    // SAFETY: the kernel writes at most `size` bytes into `info`, which has that many.
    let filled = unsafe {
        libc::ptrace(
            libc::PTRACE_GET_SYSCALL_INFO,
            pid.as_raw(),
            std::mem::size_of::<libc::ptrace_syscall_info>(),
            info.as_mut_ptr(),
        )
    };
    if filled <= 0 {
        return Err(match nix::Error::last() {
            // An unknown request: a kernel older than 5.3.
            nix::Error::EIO => NativeError::Setup(
                "the host kernel lacks PTRACE_GET_SYSCALL_INFO (Linux 5.3 or later needed)".into(),
            ),
            other => NativeError::Trace(other),
        });
    }
    // SAFETY: zeroed, then filled in by the kernel: every field is plain data.
    Ok(unsafe { info.assume_init() })
}

/// exit and exit_group never return: their entry is all there is (result 0, as the
/// simulator records them).
fn finish_pending(syscalls: &mut Vec<SyscallRecord>, entry: Option<(u64, [u64; 6])>) {
    if let Some((nr, args)) = entry {
        syscalls.push(SyscallRecord { nr, args, ret: 0 });
    }
}

/// Kills the tracee when the time is up; the tracer then sees it killed.
struct Watchdog {
    done: std::sync::mpsc::Sender<()>,
    fired: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Watchdog {
    fn start(pid: Pid, timeout: Duration) -> Self {
        let (done, wait) = std::sync::mpsc::channel::<()>();
        let fired = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = fired.clone();
        std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(timeout) {
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
                let _ = kill(pid, Signal::SIGKILL);
            }
        });
        Self { done, fired }
    }

    fn fired(&self) -> bool {
        self.fired.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let _ = self.done.send(());
    }
}

/// Kills the tracee if tracing ends early (an error or a timeout).
struct KillOnDrop(Pid);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = kill(self.0, Signal::SIGKILL);
        let _ = waitpid(self.0, None);
    }
}

/// At the exec stop, RSP points at argc; after argv and envp comes the auxiliary vector.
/// AT_SYSINFO_EHDR becomes AT_IGNORE, and AT_RANDOM's 16 bytes the seeded ones.
fn prepare_auxv(pid: Pid, rng: &mut ChaCha20Rng) -> Result<(), NativeError> {
    let rsp = ptrace::getregs(pid)?.rsp;
    let word = |address: u64| ptrace::read(pid, address as ptrace::AddressType).map(|w| w as u64);
    let argc = word(rsp)?;
    let mut at = rsp + 8 * (argc + 2);
    while word(at)? != 0 {
        at += 8;
    }
    at += 8;
    loop {
        let kind = word(at)?;
        match kind {
            AT_NULL => return Ok(()),
            AT_SYSINFO_EHDR => write_word(pid, at, AT_IGNORE)?,
            AT_RANDOM => {
                let mut random = [0u8; 16];
                rng.fill_bytes(&mut random);
                write_bytes(pid, word(at + 8)?, &random)?;
            }
            _ => {}
        }
        at += 16;
    }
}

/// getrandom's result, replaced with the simulator's seeded bytes.
fn overwrite_random(
    pid: Pid,
    buffer: u64,
    len: usize,
    rng: &mut ChaCha20Rng,
) -> Result<(), NativeError> {
    let mut bytes = vec![0u8; len];
    rng.fill_bytes(&mut bytes);
    write_bytes(pid, buffer, &bytes)
}

fn write_word(pid: Pid, address: u64, value: u64) -> Result<(), NativeError> {
    ptrace::write(pid, address as ptrace::AddressType, value as libc::c_long)?;
    Ok(())
}

/// Writes `bytes` at `address` a word at a time, keeping the bytes around them.
fn write_bytes(pid: Pid, address: u64, bytes: &[u8]) -> Result<(), NativeError> {
    let start = address & !7;
    let end = address + bytes.len() as u64;
    let mut word_at = start;
    while word_at < end {
        let mut word = (ptrace::read(pid, word_at as ptrace::AddressType)? as u64).to_le_bytes();
        for (i, byte) in word.iter_mut().enumerate() {
            let at = word_at + i as u64;
            if (address..end).contains(&at) {
                *byte = bytes[(at - address) as usize];
            }
        }
        write_word(pid, word_at, u64::from_le_bytes(word))?;
        word_at += 8;
    }
    Ok(())
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
