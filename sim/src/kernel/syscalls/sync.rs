//! Threads and their synchronisation: clone of a thread, futexes, the clear-child-tid word,
//! the robust list (walked when a thread exits), sched_yield.

use nix::errno::Errno;

use crate::kernel::task::{Wait, Wake};
use crate::kernel::{Args, Kernel, Pid, SysError, SysResult};

pub const CLONE_VM: u64 = libc::CLONE_VM as u64;
const CLONE_FS: u64 = libc::CLONE_FS as u64;
const CLONE_FILES: u64 = libc::CLONE_FILES as u64;
const CLONE_SIGHAND: u64 = libc::CLONE_SIGHAND as u64;
pub const CLONE_THREAD: u64 = libc::CLONE_THREAD as u64;
const CLONE_SYSVSEM: u64 = libc::CLONE_SYSVSEM as u64;
pub const CLONE_SETTLS: u64 = libc::CLONE_SETTLS as u64;
pub const CLONE_PARENT_SETTID: u64 = libc::CLONE_PARENT_SETTID as u64;
pub const CLONE_CHILD_CLEARTID: u64 = libc::CLONE_CHILD_CLEARTID as u64;
pub const CLONE_CHILD_SETTID: u64 = libc::CLONE_CHILD_SETTID as u64;
pub const CLONE_VFORK: u64 = libc::CLONE_VFORK as u64;
/// The low byte is the signal sent to the parent when the child ends.
pub const CSIGNAL: u64 = 0xff;

/// The flags a new thread is made with (glibc's pthread_create uses all of them but
/// CHILD_SETTID); anything else in a thread clone is refused loudly.
const THREAD_FLAGS: u64 = CLONE_VM
    | CLONE_FS
    | CLONE_FILES
    | CLONE_SIGHAND
    | CLONE_THREAD
    | CLONE_SYSVSEM
    | CLONE_SETTLS
    | CLONE_PARENT_SETTID
    | CLONE_CHILD_CLEARTID
    | CLONE_CHILD_SETTID;

/// clone of a thread: flags, stack, parent_tid, child_tid, tls as clone gives them.
pub fn clone_thread(k: &mut Kernel, a: &Args) -> SysResult {
    let [flags, stack, parent_tid, child_tid, tls, _] = *a;
    // Linux's own rules: a thread shares the signal handlers, which need a shared VM.
    if flags & CLONE_SIGHAND == 0 || flags & CLONE_VM == 0 {
        return Err(Errno::EINVAL.into());
    }
    let unmodelled = flags & !(THREAD_FLAGS | CSIGNAL);
    if unmodelled != 0 {
        return Err(SysError::Unsupported(format!(
            "clone flags {unmodelled:#x} of a thread"
        )));
    }
    if !k.may_spawn() {
        return Err(Errno::EAGAIN.into());
    }
    let tls = (flags & CLONE_SETTLS != 0).then_some(tls);
    let tid = k.spawn_thread((stack != 0).then_some(stack), tls);
    let tid_bytes = (tid as u32).to_le_bytes();
    if flags & CLONE_PARENT_SETTID != 0 {
        k.proc.mem.write(parent_tid, &tid_bytes)?;
    }
    if flags & CLONE_CHILD_SETTID != 0 {
        k.proc.mem.write(child_tid, &tid_bytes)?;
    }
    if flags & CLONE_CHILD_CLEARTID != 0 {
        if let Some(child) = k.tasks.get_mut(&tid) {
            child.clear_child_tid = child_tid;
        }
    }
    Ok(tid)
}

pub fn set_tid_address(k: &mut Kernel, a: &Args) -> SysResult {
    k.task.clear_child_tid = a[0];
    Ok(k.task.tid)
}

/// The size of `struct robust_list_head`: the list's next pointer, the futex offset, the
/// entry being locked or unlocked.
const ROBUST_LIST_HEAD_SIZE: u64 = 24;
/// Linux's `ROBUST_LIST_LIMIT`: how many entries an exit walks at most.
const ROBUST_LIST_LIMIT: u32 = 2048;
const FUTEX_WAITERS: u32 = 0x8000_0000;
const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
const FUTEX_TID_MASK: u32 = 0x3fff_ffff;

/// The list of robust futexes a thread holds (glibc registers one per thread), which its
/// exit walks (`exit_robust_list`).
pub fn set_robust_list(k: &mut Kernel, a: &Args) -> SysResult {
    if a[1] != ROBUST_LIST_HEAD_SIZE {
        return Err(Errno::EINVAL.into());
    }
    k.task.robust_list = a[0];
    Ok(0)
}

/// get_robust_list(tid, head, len): the caller's (tid 0) or a thread's of its process.
pub fn get_robust_list(k: &mut Kernel, a: &Args) -> SysResult {
    let head = match a[0] as i32 {
        0 => k.task.robust_list,
        tid if tid as Pid == k.task.tid => k.task.robust_list,
        tid => k
            .tasks
            .get(&(tid as Pid))
            .filter(|task| task.pid == k.proc.pid)
            .map(|task| task.robust_list)
            .ok_or(Errno::ESRCH)?,
    };
    k.proc.mem.write(a[1], &head.to_le_bytes())?;
    k.proc
        .mem
        .write(a[2], &ROBUST_LIST_HEAD_SIZE.to_le_bytes())?;
    Ok(0)
}

/// The running thread exits: each robust futex it still holds is marked FUTEX_OWNER_DIED
/// and one waiter woken, so the next locker gets EOWNERDEAD, as Linux's
/// `exit_robust_list` does; a fault in the list ends the walk quietly.
pub fn exit_robust_list(k: &mut Kernel) {
    let head = k.task.robust_list;
    if head == 0 {
        return;
    }
    let word = |k: &mut Kernel, address: u64| -> Option<u64> {
        let mut bytes = [0u8; 8];
        k.proc.mem.cpu_access(address, &mut bytes, false).ok()?;
        Some(u64::from_le_bytes(bytes))
    };
    let (Some(first), Some(offset), Some(pending)) =
        (word(k, head), word(k, head + 8), word(k, head + 16))
    else {
        return;
    };
    let (mut entry, pending) = (first, pending & !1);
    for _ in 0..ROBUST_LIST_LIMIT {
        if entry & !1 == head {
            break;
        }
        let next = word(k, entry & !1);
        if entry & !1 != pending {
            handle_futex_death(k, (entry & !1).wrapping_add(offset), entry & 1 != 0, false);
        }
        match next {
            Some(next) => entry = next,
            None => return,
        }
    }
    if pending != 0 {
        handle_futex_death(k, pending.wrapping_add(offset), false, true);
    }
}

/// The dying thread's robust futex at `address` (`handle_futex_death`): if it owns it,
/// the word keeps its waiters bit and gains FUTEX_OWNER_DIED, and one waiter is woken; a
/// lock being taken (`pending`) that is free wakes one waiter too.
fn handle_futex_death(k: &mut Kernel, address: u64, pi: bool, pending: bool) {
    let mut bytes = [0u8; 4];
    if !address.is_multiple_of(4) || k.proc.mem.cpu_access(address, &mut bytes, false).is_err() {
        return;
    }
    let value = u32::from_le_bytes(bytes);
    if pending && !pi && value == 0 {
        wake_one(k, address);
        return;
    }
    if value & FUTEX_TID_MASK != k.task.tid as u32 {
        return;
    }
    let mut died = ((value & FUTEX_WAITERS) | FUTEX_OWNER_DIED).to_le_bytes();
    if k.proc.mem.cpu_access(address, &mut died, true).is_ok() && !pi && value & FUTEX_WAITERS != 0
    {
        wake_one(k, address);
    }
}

fn wake_one(k: &mut Kernel, address: u64) {
    for tid in k
        .futexes
        .wake((k.proc.pid, address), 1, FUTEX_BITSET_MATCH_ANY)
    {
        k.wake(tid, Wake::Return(0));
    }
}

/// Gives the CPU to the next runnable task, if there is one.
pub fn sched_yield(k: &mut Kernel, _a: &Args) -> SysResult {
    k.yielded = k.sched.has_runnable();
    Ok(0)
}

const FUTEX_CMD_MASK: u64 = 0x7f & !(libc::FUTEX_PRIVATE_FLAG as u64);
const FUTEX_BITSET_MATCH_ANY: u32 = u32::MAX;

/// futex(uaddr, op, val, timeout or val2, uaddr2, val3). Every futex is the process's own
/// (no memory is shared between processes), so the private flag changes nothing.
pub fn futex(k: &mut Kernel, a: &Args) -> SysResult {
    let [address, op, value, timeout, address2, value3] = *a;
    let key = (k.proc.pid, address);
    if address % 4 != 0 {
        return Err(Errno::EINVAL.into());
    }
    match (op & FUTEX_CMD_MASK) as i32 {
        libc::FUTEX_WAIT => {
            let until = deadline(k, timeout, Timeout::Relative)?;
            wait(k, address, value as u32, until, FUTEX_BITSET_MATCH_ANY)
        }
        libc::FUTEX_WAIT_BITSET if value3 as u32 == 0 => Err(Errno::EINVAL.into()),
        libc::FUTEX_WAIT_BITSET => {
            let realtime = op & libc::FUTEX_CLOCK_REALTIME as u64 != 0;
            let clock = if realtime {
                Timeout::Realtime
            } else {
                Timeout::Monotonic
            };
            let until = deadline(k, timeout, clock)?;
            wait(k, address, value as u32, until, value3 as u32)
        }
        libc::FUTEX_WAKE => Ok(wake(k, key, value, FUTEX_BITSET_MATCH_ANY)),
        libc::FUTEX_WAKE_BITSET if value3 as u32 == 0 => Err(Errno::EINVAL.into()),
        libc::FUTEX_WAKE_BITSET => Ok(wake(k, key, value, value3 as u32)),
        command @ (libc::FUTEX_REQUEUE | libc::FUTEX_CMP_REQUEUE) => {
            if command == libc::FUTEX_CMP_REQUEUE && read_word(k, address)? != value3 as u32 {
                return Err(Errno::EAGAIN.into());
            }
            // The fourth argument is the count to requeue, not a timeout.
            let (woken, moved) =
                k.futexes
                    .requeue(key, (k.proc.pid, address2), value, timeout & 0x7fff_ffff);
            for &tid in &woken {
                k.wake(tid, Wake::Return(0));
            }
            Ok(woken.len() as u64 + moved)
        }
        command => Err(SysError::Unsupported(format!("futex operation {command}"))),
    }
}

fn read_word(k: &mut Kernel, address: u64) -> Result<u32, Errno> {
    let mut word = [0u8; 4];
    k.proc.mem.read(address, &mut word)?;
    Ok(u32::from_le_bytes(word))
}

/// How a futex wait's timeout reads: FUTEX_WAIT's is relative, FUTEX_WAIT_BITSET's an
/// absolute time of CLOCK_MONOTONIC, or of CLOCK_REALTIME with FUTEX_CLOCK_REALTIME.
#[derive(Clone, Copy)]
enum Timeout {
    Relative,
    Monotonic,
    Realtime,
}

/// When a wait with the timespec at `timeout` (none when 0) times out, on the virtual
/// clock (`Kernel::elapsed_ns`).
fn deadline(k: &mut Kernel, timeout: u64, clock: Timeout) -> Result<Option<u64>, Errno> {
    if timeout == 0 {
        return Ok(None);
    }
    let ns = super::time::read_timespec(k, timeout)?;
    Ok(Some(match clock {
        Timeout::Relative => k.elapsed_ns.saturating_add(ns),
        Timeout::Monotonic => ns,
        Timeout::Realtime => ns.saturating_sub(super::time::EPOCH_NS),
    }))
}

fn wait(k: &mut Kernel, address: u64, expected: u32, until: Option<u64>, bitset: u32) -> SysResult {
    if read_word(k, address)? != expected {
        return Err(Errno::EAGAIN.into());
    }
    if until.is_some_and(|at| at <= k.elapsed_ns) {
        return Err(Errno::ETIMEDOUT.into());
    }
    k.futexes.wait((k.proc.pid, address), k.task.tid, bitset);
    Err(SysError::Block(Wait::Futex {
        address,
        bitset,
        until,
    }))
}

fn wake(k: &mut Kernel, key: crate::kernel::futex::Key, count: u64, bitset: u32) -> u64 {
    let woken = k.futexes.wake(key, count, bitset);
    for &tid in &woken {
        k.wake(tid, Wake::Return(0));
    }
    woken.len() as u64
}
