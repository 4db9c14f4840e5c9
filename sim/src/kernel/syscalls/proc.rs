//! Process set-up, identity, randomness, futexes, scheduling and exit.

use nix::errno::Errno;
use rand::RngCore;

use super::sync::{self, CLONE_CHILD_CLEARTID, CLONE_CHILD_SETTID, CLONE_PARENT_SETTID};
use super::sync::{CLONE_SETTLS, CLONE_THREAD, CLONE_VFORK, CLONE_VM, CSIGNAL};
use crate::kernel::exec;
use crate::kernel::limits::Limit;
use crate::kernel::process::{Pid, Process};
use crate::kernel::sigframe::SigInfo;
use crate::kernel::task::Wait;
use crate::kernel::{Args, Exit, Kernel, SysError, SysResult};

const ARCH_SET_GS: u64 = 0x1001;
const ARCH_SET_FS: u64 = 0x1002;
const ARCH_GET_FS: u64 = 0x1003;
const ARCH_GET_GS: u64 = 0x1004;
const ARCH_GET_CPUID: u64 = 0x1011;

pub fn arch_prctl(k: &mut Kernel, a: &Args) -> SysResult {
    match a[0] {
        // Linux's TASK_SIZE_MAX: the last user page is never mapped.
        ARCH_SET_FS | ARCH_SET_GS if a[1] >= crate::memory::TASK_SIZE => Err(Errno::EPERM.into()),
        ARCH_SET_FS => {
            k.registers.fs_base = Some(a[1]);
            Ok(0)
        }
        ARCH_SET_GS => {
            k.registers.gs_base = Some(a[1]);
            Ok(0)
        }
        ARCH_GET_FS => {
            k.proc
                .mem
                .write(a[1], &k.registers.fs_base_now.to_le_bytes())?;
            Ok(0)
        }
        ARCH_GET_GS => {
            k.proc
                .mem
                .write(a[1], &k.registers.gs_base_now.to_le_bytes())?;
            Ok(0)
        }
        // CPUID is not faulting: the guest may use it.
        ARCH_GET_CPUID => Ok(1),
        _ => Err(Errno::EINVAL.into()),
    }
}

/// The highest capability Linux 6.x knows (`CAP_CHECKPOINT_RESTORE`).
const CAP_LAST_CAP: u64 = 40;

/// Linux's `TASK_COMM_LEN`.
const COMM_LEN: usize = 16;

pub fn prctl(k: &mut Kernel, a: &Args) -> SysResult {
    match a[0] as i32 {
        libc::PR_SET_NAME => {
            let mut name = [0u8; COMM_LEN - 1];
            for (i, byte) in name.iter_mut().enumerate() {
                k.proc
                    .mem
                    .read(a[1] + i as u64, std::slice::from_mut(byte))?;
                if *byte == 0 {
                    break;
                }
            }
            k.proc.comm = name.iter().take_while(|&&b| b != 0).copied().collect();
            Ok(0)
        }
        libc::PR_GET_NAME => {
            let mut name = k.proc.comm.clone();
            name.resize(COMM_LEN, 0);
            k.proc.mem.write(a[1], &name)?;
            Ok(0)
        }
        // The bounding set holds every capability, as a login session's does.
        libc::PR_CAPBSET_READ if a[1] <= CAP_LAST_CAP => Ok(1),
        libc::PR_CAPBSET_READ => Err(Errno::EINVAL.into()),
        option => Err(SysError::Unsupported(format!("prctl option {option}"))),
    }
}

/// prlimit64(pid, resource, new, old): the running process's own limits.
pub fn prlimit64(k: &mut Kernel, a: &Args) -> SysResult {
    if a[0] != 0 && a[0] != k.proc.pid {
        return Err(Errno::ESRCH.into());
    }
    let old = k.proc.limits.get(a[1])?;
    if a[2] != 0 {
        let raw = k.proc.mem.read_vec(a[2], 16)?;
        let word = |i: usize| u64::from_le_bytes(raw[i * 8..i * 8 + 8].try_into().unwrap());
        let privileged = k.proc.credentials.uid.effective == 0;
        k.proc
            .limits
            .set(a[1], Limit::new(word(0), word(1)), privileged)?;
        k.proc.fds.limit = k.proc.limits.open_files();
    }
    if a[3] != 0 {
        k.proc.mem.write(a[3], &old.bytes())?;
    }
    Ok(0)
}

pub fn getrlimit(k: &mut Kernel, a: &Args) -> SysResult {
    let limit = k.proc.limits.get(a[0])?;
    k.proc.mem.write(a[1], &limit.bytes())?;
    Ok(0)
}

pub fn setrlimit(k: &mut Kernel, a: &Args) -> SysResult {
    prlimit64(k, &[0, a[0], a[1], 0, 0, 0])
}

/// The simulated machine's identity, the same on every host (as qemu-user's `-r` pins the
/// release): sysname, nodename, release, version, machine, domainname. glibc before 2.36
/// refuses to start on a release older than the one it was built for (3.2 at the oldest,
/// NT_GNU_ABI_TAG); 2.36 no longer looks. 6.1.0 is Debian 12's kernel.
pub const UTSNAME: [&str; 6] = [
    "Linux",
    "ringsim",
    "6.1.0",
    "#1 SMP PREEMPT_DYNAMIC",
    "x86_64",
    "(none)",
];

/// Linux's `__NEW_UTS_LEN` + 1: each field of `struct new_utsname`.
const UTS_FIELD: usize = 65;

pub fn uname(k: &mut Kernel, a: &Args) -> SysResult {
    let mut bytes = [0u8; UTS_FIELD * UTSNAME.len()];
    for (field, value) in bytes.chunks_exact_mut(UTS_FIELD).zip(UTSNAME) {
        field[..value.len()].copy_from_slice(value.as_bytes());
    }
    k.proc.mem.write(a[0], &bytes)?;
    Ok(0)
}

/// The machine has one CPU, CPU 0. Linux wants whole longs, at least as many as its CPUs
/// need, and copies its mask's bytes: one long here.
/// The one CPU's mask.
const CPU_MASK: [u8; 8] = [1, 0, 0, 0, 0, 0, 0, 0];

pub fn sched_getaffinity(k: &mut Kernel, a: &Args) -> SysResult {
    const MASK: [u8; 8] = CPU_MASK;
    // Linux takes a pid_t and an unsigned int.
    let (pid, len) = (a[0] as i32 as i64, a[1] as u32 as u64);
    if pid != 0 && !k.task_exists(pid as u64) {
        return Err(Errno::ESRCH.into());
    }
    if len < MASK.len() as u64 || !len.is_multiple_of(MASK.len() as u64) {
        return Err(Errno::EINVAL.into());
    }
    k.proc.mem.write(a[2], &MASK)?;
    Ok(MASK.len() as u64)
}

/// The machine has one CPU: a mask that includes it is taken (and changes nothing), one
/// that does not is refused as Linux refuses a mask of no online CPU.
pub fn sched_setaffinity(k: &mut Kernel, a: &Args) -> SysResult {
    let (pid, len) = (a[0] as i32 as i64, a[1] as u32 as usize);
    if pid != 0 && !k.task_exists(pid as u64) {
        return Err(Errno::ESRCH.into());
    }
    let mut mask = vec![0u8; len.min(CPU_MASK.len())];
    k.proc.mem.read(a[2], &mut mask)?;
    if mask.first().is_none_or(|byte| byte & CPU_MASK[0] == 0) {
        return Err(Errno::EINVAL.into());
    }
    Ok(0)
}

/// A fixed machine, with uptime on the virtual clock.
pub fn sysinfo(k: &mut Kernel, a: &Args) -> SysResult {
    // SAFETY: sysinfo is plain data; zeroed is a valid value.
    let mut info: libc::sysinfo = unsafe { std::mem::zeroed() };
    info.uptime = (k.elapsed_ns / 1_000_000_000) as i64;
    info.totalram = crate::machine::physmem::PHYS_SIZE;
    info.freeram = crate::machine::physmem::PHYS_SIZE / 2;
    info.procs = 1;
    info.mem_unit = 1;
    // SAFETY: sysinfo is plain data, viewed as its bytes.
    let bytes = unsafe {
        std::slice::from_raw_parts(
            (&raw const info).cast::<u8>(),
            std::mem::size_of::<libc::sysinfo>(),
        )
    };
    k.proc.mem.write(a[0], bytes)?;
    Ok(0)
}

pub fn getpid(k: &mut Kernel, _a: &Args) -> SysResult {
    Ok(k.proc.pid)
}

pub fn gettid(k: &mut Kernel, _a: &Args) -> SysResult {
    Ok(k.task.tid)
}

pub fn getppid(k: &mut Kernel, _a: &Args) -> SysResult {
    Ok(k.proc.ppid)
}

pub fn getpgrp(k: &mut Kernel, _a: &Args) -> SysResult {
    Ok(k.proc.pgid)
}

/// The process a pid argument names: 0 for the caller; ESRCH for none.
fn named_process(k: &Kernel, raw: u64) -> Result<&Process, Errno> {
    match raw as i32 {
        0 => Ok(&k.proc),
        pid if pid > 0 => k.process(pid as Pid).ok_or(Errno::ESRCH),
        _ => Err(Errno::ESRCH),
    }
}

pub fn getpgid(k: &mut Kernel, a: &Args) -> SysResult {
    Ok(named_process(k, a[0])?.pgid)
}

pub fn getsid(k: &mut Kernel, a: &Args) -> SysResult {
    Ok(named_process(k, a[0])?.sid)
}

/// setpgid(pid, pgid), with Linux's rules: the caller or a child of its own (ESRCH), not
/// a child that has exec'd (EACCES), not a session leader nor a process of another session
/// (EPERM), into its own new group or an existing one of the caller's session (EPERM).
pub fn setpgid(k: &mut Kernel, a: &Args) -> SysResult {
    let (pid, pgid) = (a[0] as i32, a[1] as i32);
    if pid < 0 || pgid < 0 {
        return Err(Errno::EINVAL.into());
    }
    let me = k.proc.pid;
    let pid = if pid == 0 { me } else { pid as Pid };
    let pgid = if pgid == 0 { pid } else { pgid as Pid };
    let session = k.proc.sid;
    let target = k.process(pid).ok_or(Errno::ESRCH)?;
    if pid != me {
        if target.ppid != me {
            return Err(Errno::ESRCH.into());
        }
        if target.sid != session {
            return Err(Errno::EPERM.into());
        }
        if target.execed {
            return Err(Errno::EACCES.into());
        }
    }
    let group_in_session = || {
        std::iter::once(&k.proc)
            .chain(k.procs.values())
            .any(|p| p.pgid == pgid && p.sid == session)
    };
    if target.sid == pid || (pgid != pid && !group_in_session()) {
        return Err(Errno::EPERM.into());
    }
    k.process_mut(pid).expect("found above").pgid = pgid;
    Ok(0)
}

/// setsid(): a new session and group led by the caller, unless its pid already names a
/// group (EPERM).
pub fn setsid(k: &mut Kernel, _a: &Args) -> SysResult {
    let me = k.proc.pid;
    if std::iter::once(&k.proc)
        .chain(k.procs.values())
        .any(|p| p.pgid == me)
    {
        return Err(Errno::EPERM.into());
    }
    k.proc.sid = me;
    k.proc.pgid = me;
    Ok(me)
}

/// Seeded bytes (`--seed`), so programs that ask for randomness stay reproducible.
pub fn getrandom(k: &mut Kernel, a: &Args) -> SysResult {
    let len = (a[1] as usize).min(1 << 25);
    let mut bytes = vec![0u8; len];
    k.proc.rng.fill_bytes(&mut bytes);
    k.proc.mem.write(a[0], &bytes)?;
    Ok(len as u64)
}

/// clone(flags, stack, parent_tid, child_tid, tls): a thread, or a process.
pub fn clone(k: &mut Kernel, a: &Args) -> SysResult {
    if a[0] & CLONE_THREAD != 0 {
        sync::clone_thread(k, a)
    } else {
        clone_process(k, a)
    }
}

pub fn fork(k: &mut Kernel, _a: &Args) -> SysResult {
    clone_process(k, &[libc::SIGCHLD as u64, 0, 0, 0, 0, 0])
}

pub fn vfork(k: &mut Kernel, _a: &Args) -> SysResult {
    clone_process(
        k,
        &[CLONE_VM | CLONE_VFORK | libc::SIGCHLD as u64, 0, 0, 0, 0, 0],
    )
}

/// A new process. A vfork child (CLONE_VFORK, with CLONE_VM as vfork and posix_spawn ask)
/// gets a copy-on-write copy of the memory rather than the parent's own, and what it wrote
/// goes back to the parent when it execs or exits (`give_back_vfork_memory`): the parent
/// waits until then, so it sees what sharing would have shown it.
fn clone_process(k: &mut Kernel, a: &Args) -> SysResult {
    let [flags, stack, parent_tid, child_tid, tls, _] = *a;
    let modelled = CSIGNAL
        | CLONE_VFORK
        | CLONE_SETTLS
        | CLONE_PARENT_SETTID
        | CLONE_CHILD_SETTID
        | CLONE_CHILD_CLEARTID;
    let vfork = flags & CLONE_VFORK != 0;
    let unmodelled = flags & !(modelled | if vfork { CLONE_VM } else { 0 });
    if unmodelled != 0 {
        return Err(SysError::Unsupported(format!(
            "clone flags {unmodelled:#x} of a process"
        )));
    }
    if !k.may_spawn() {
        return Err(Errno::EAGAIN.into());
    }
    let tls = (flags & CLONE_SETTLS != 0).then_some(tls);
    let exit_signal = (flags & CSIGNAL) as u32;
    // Without CLONE_VM Linux copies the areas and page-table entries (the copy is the
    // child's here); the Create Proc figure's parent had areas of its own too.
    let (copied, areas) = if flags & CLONE_VM == 0 {
        let mem = &k.proc.mem;
        let areas = mem.areas().saturating_sub(calibrate::elf::SPAWNER_AREAS);
        (mem.private_writable_pages(), areas)
    } else {
        (0, 0)
    };
    let pid = k.spawn_process((stack != 0).then_some(stack), tls, exit_signal, vfork)?;
    k.fork_pages += copied;
    k.fork_areas += areas;
    let pid_bytes = (pid as u32).to_le_bytes();
    if flags & CLONE_PARENT_SETTID != 0 {
        k.proc.mem.write(parent_tid, &pid_bytes)?;
    }
    if flags & CLONE_CHILD_SETTID != 0 {
        if let Some(child) = k.procs.get_mut(&pid) {
            child.mem.write(child_tid, &pid_bytes)?;
        }
    }
    if flags & CLONE_CHILD_CLEARTID != 0 {
        if let Some(task) = k.tasks.get_mut(&pid) {
            task.clear_child_tid = child_tid;
        }
    }
    if vfork {
        return Err(SysError::Block(Wait::Vfork { child: pid }));
    }
    Ok(pid)
}

/// execve(path, argv, envp).
pub fn execve(k: &mut Kernel, a: &Args) -> SysResult {
    let given = k.proc.mem.read_cstring(a[0], libc::PATH_MAX as usize)?;
    let path = super::fs::path(k, a[0])?;
    let argv = exec::read_strings(k, a[1])?;
    let envp = exec::read_strings(k, a[2])?;
    exec::execve(k, &path, given, argv, envp)
}

const WNOHANG: u64 = libc::WNOHANG as u64;
/// The options wait4 accepts: stopped and continued children are not modelled, so asking
/// for them changes nothing.
const WAIT4_OPTIONS: u64 = (libc::WNOHANG
    | libc::WUNTRACED
    | libc::WCONTINUED
    | libc::__WALL
    | libc::__WCLONE
    | libc::__WNOTHREAD) as u64;
/// `struct rusage`.
const RUSAGE_SIZE: usize = 144;

/// wait4(pid, status, options, rusage): reaps a child that ended, oldest first, or waits
/// for one. The rusage is zero: children's CPU time is not reported yet.
pub fn wait4(k: &mut Kernel, a: &Args) -> SysResult {
    let [selector, status, options, rusage, ..] = *a;
    if options & !WAIT4_OPTIONS != 0 {
        return Err(Errno::EINVAL.into());
    }
    let Some(pid) = ended_child(k, selector as i32 as i64, options)? else {
        return Ok(0);
    };
    let exit = k.procs[&pid].exit.clone().expect("a zombie has ended");
    if status != 0 {
        k.proc
            .mem
            .write(status, &exit.wait_status().to_le_bytes())?;
    }
    if rusage != 0 {
        k.proc.mem.write(rusage, &[0u8; RUSAGE_SIZE])?;
    }
    k.reap(pid);
    Ok(pid)
}

/// The oldest child that ended among those `selector` names (wait4's pid: -1 any, 0 the
/// caller's group, > 0 that one, < -1 that group); `None` with WNOHANG when none has;
/// the caller waits otherwise.
fn ended_child(k: &Kernel, selector: i64, options: u64) -> Result<Option<Pid>, SysError> {
    let (me, group) = (k.proc.pid, k.proc.pgid as i64);
    let chosen = |p: &&Process| {
        p.ppid == me
            && match selector {
                -1 => true,
                0 => p.pgid as i64 == group,
                s if s > 0 => p.pid as i64 == s,
                s => p.pgid as i64 == -s,
            }
    };
    let mut children = k.procs.values().filter(chosen).peekable();
    if children.peek().is_none() {
        return Err(Errno::ECHILD.into());
    }
    match children.find(|p| p.exit.is_some()) {
        Some(zombie) => Ok(Some(zombie.pid)),
        None if options & WNOHANG != 0 => Ok(None),
        None => Err(SysError::Block(Wait::Child)),
    }
}

const P_ALL: u64 = libc::P_ALL as u64;
const P_PID: u64 = libc::P_PID as u64;
const P_PGID: u64 = libc::P_PGID as u64;
const WEXITED: u64 = libc::WEXITED as u64;
const WNOWAIT: u64 = libc::WNOWAIT as u64;
/// waitid's options: stopped and continued children are not modelled, so asking for them
/// changes nothing.
const WAITID_OPTIONS: u64 = (libc::WNOHANG
    | libc::WEXITED
    | libc::WSTOPPED
    | libc::WCONTINUED
    | libc::WNOWAIT
    | libc::__WALL
    | libc::__WCLONE
    | libc::__WNOTHREAD) as u64;
/// `siginfo_t`.
const SIGINFO_SIZE: usize = 128;

/// waitid(idtype, id, infop, options, rusage): as wait4, with the child's end in a
/// siginfo (zeroed when WNOHANG finds none) and WNOWAIT leaving it a zombie.
pub fn waitid(k: &mut Kernel, a: &Args) -> SysResult {
    let [idtype, id, info, options, rusage, _] = *a;
    if options & !WAITID_OPTIONS != 0 || options & WEXITED == 0 {
        return Err(Errno::EINVAL.into());
    }
    let selector = match idtype {
        P_ALL => -1,
        P_PID if (id as i32) > 0 => id as i32 as i64,
        // P_PGID 0 is the caller's group, as wait4's 0.
        P_PGID if (id as i32) >= 0 => -(id as i32 as i64),
        _ => return Err(Errno::EINVAL.into()),
    };
    let found = ended_child(k, selector, options)?;
    let bytes = match found {
        Some(pid) => {
            let exit = k.procs[&pid].exit.clone().expect("a zombie has ended");
            let uid = k.procs[&pid].credentials.uid.real;
            SigInfo::child_exit(pid as i32, uid, exit.wait_status() as i32, 0, 0).0
        }
        None => [0u8; SIGINFO_SIZE],
    };
    if info != 0 {
        k.proc.mem.write(info, &bytes)?;
    }
    if rusage != 0 {
        k.proc.mem.write(rusage, &[0u8; RUSAGE_SIZE])?;
    }
    if let Some(pid) = found.filter(|_| options & WNOWAIT == 0) {
        k.reap(pid);
    }
    Ok(0)
}

/// Ends the calling thread; the last thread out ends the process.
pub fn exit(k: &mut Kernel, a: &Args) -> SysResult {
    k.exit_task((a[0] & 0xff) as i32);
    Ok(0)
}

pub fn exit_group(k: &mut Kernel, a: &Args) -> SysResult {
    k.exit = Some(Exit::Code((a[0] & 0xff) as i32));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::syscalls::ids::Credentials;
    use crate::memory::Prot;

    #[test]
    fn uname_is_the_fixed_machine_not_the_host() {
        let mut k = Kernel::for_tests(Credentials::new([0; 3], [0; 3], vec![]));
        k.proc
            .mem
            .map_fixed(0x10000, 4096, Prot(Prot::READ | Prot::WRITE))
            .unwrap();
        assert_eq!(uname(&mut k, &[0x10000, 0, 0, 0, 0, 0]).unwrap(), 0);
        let bytes = k.proc.mem.read_vec(0x10000, UTS_FIELD * 6).unwrap();
        let fields: Vec<&[u8]> = bytes
            .chunks_exact(UTS_FIELD)
            .map(|f| &f[..f.iter().position(|&b| b == 0).unwrap()])
            .collect();
        let expected: Vec<&[u8]> = UTSNAME.iter().map(|s| s.as_bytes()).collect();
        assert_eq!(fields, expected);
    }

    #[test]
    fn a_child_that_has_execed_cannot_be_moved_to_another_group() {
        let mut k = Kernel::for_tests(Credentials::new([0; 3], [0; 3], vec![]));
        let child = k
            .spawn_process(None, None, libc::SIGCHLD as u32, false)
            .unwrap();
        let errno = |r: SysResult| match r {
            Err(SysError::Errno(errno)) => Some(errno),
            _ => None,
        };
        assert_eq!(setpgid(&mut k, &[child, child, 0, 0, 0, 0]).unwrap(), 0);
        k.procs.get_mut(&child).unwrap().execed = true;
        let again = setpgid(&mut k, &[child, 0, 0, 0, 0, 0]);
        assert_eq!(errno(again), Some(Errno::EACCES));
        // A session leader stays in its group.
        k.procs.get_mut(&child).unwrap().sid = child;
        let leader = setpgid(&mut k, &[child, 0, 0, 0, 0, 0]);
        assert_eq!(errno(leader), Some(Errno::EPERM));
    }
}
