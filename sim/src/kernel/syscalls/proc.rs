//! Process set-up, identity, randomness, futexes, scheduling and exit.

use nix::errno::Errno;
use rand::RngCore;

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
        option => Err(SysError::Unsupported(format!("prctl option {option}"))),
    }
}

/// Resource limits the guest sees: (resource, soft, hard). Fixed, so runs are reproducible;
/// the values are Linux's defaults for a login session.
const RLIMITS: &[(u32, u64, u64)] = &[
    (libc::RLIMIT_CPU, u64::MAX, u64::MAX),
    (libc::RLIMIT_FSIZE, u64::MAX, u64::MAX),
    (libc::RLIMIT_DATA, u64::MAX, u64::MAX),
    (libc::RLIMIT_STACK, crate::memory::STACK_SIZE, u64::MAX),
    (libc::RLIMIT_CORE, 0, u64::MAX),
    (libc::RLIMIT_RSS, u64::MAX, u64::MAX),
    (libc::RLIMIT_NPROC, 63_704, 63_704),
    (
        libc::RLIMIT_NOFILE,
        super::super::fd::MAX_FDS as u64,
        1 << 20,
    ),
    (libc::RLIMIT_MEMLOCK, 8 << 20, 8 << 20),
    (libc::RLIMIT_AS, u64::MAX, u64::MAX),
    (libc::RLIMIT_LOCKS, u64::MAX, u64::MAX),
    (libc::RLIMIT_SIGPENDING, 63_704, 63_704),
    (libc::RLIMIT_MSGQUEUE, 819_200, 819_200),
    (libc::RLIMIT_NICE, 0, 0),
    (libc::RLIMIT_RTPRIO, 0, 0),
    (libc::RLIMIT_RTTIME, u64::MAX, u64::MAX),
];

fn rlimit_bytes(resource: u64) -> Result<[u8; 16], Errno> {
    let &(_, soft, hard) = RLIMITS
        .iter()
        .find(|r| r.0 as u64 == resource)
        .ok_or(Errno::EINVAL)?;
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&soft.to_le_bytes());
    out[8..].copy_from_slice(&hard.to_le_bytes());
    Ok(out)
}

pub fn prlimit64(k: &mut Kernel, a: &Args) -> SysResult {
    if a[0] != 0 && a[0] != k.proc.pid {
        return Err(Errno::ESRCH.into());
    }
    if a[2] != 0 {
        return Err(SysError::Unsupported("setting a resource limit".into()));
    }
    if a[3] != 0 {
        k.proc.mem.write(a[3], &rlimit_bytes(a[1])?)?;
    }
    Ok(0)
}

pub fn getrlimit(k: &mut Kernel, a: &Args) -> SysResult {
    k.proc.mem.write(a[1], &rlimit_bytes(a[0])?)?;
    Ok(0)
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
pub fn sched_getaffinity(k: &mut Kernel, a: &Args) -> SysResult {
    const MASK: [u8; 8] = [1, 0, 0, 0, 0, 0, 0, 0];
    // Linux takes a pid_t and an unsigned int.
    let (pid, len) = (a[0] as i32 as i64, a[1] as u32 as u64);
    if pid != 0 && pid != k.proc.pid as i64 {
        return Err(Errno::ESRCH.into());
    }
    if len < MASK.len() as u64 || !len.is_multiple_of(MASK.len() as u64) {
        return Err(Errno::EINVAL.into());
    }
    k.proc.mem.write(a[2], &MASK)?;
    Ok(MASK.len() as u64)
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
    Ok(k.proc.pid)
}

pub fn getpgid(k: &mut Kernel, a: &Args) -> SysResult {
    if a[0] == 0 || a[0] == k.proc.pid {
        Ok(k.proc.pid)
    } else {
        Err(Errno::ESRCH.into())
    }
}

/// Seeded bytes (`--seed`), so programs that ask for randomness stay reproducible.
pub fn getrandom(k: &mut Kernel, a: &Args) -> SysResult {
    let len = (a[1] as usize).min(1 << 25);
    let mut bytes = vec![0u8; len];
    k.proc.rng.fill_bytes(&mut bytes);
    k.proc.mem.write(a[0], &bytes)?;
    Ok(len as u64)
}

/// The process never has children (fork is not modelled), so there is nothing to wait for.
pub fn wait4(_k: &mut Kernel, _a: &Args) -> SysResult {
    Err(Errno::ECHILD.into())
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
}
