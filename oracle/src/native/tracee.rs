//! Reading and changing a stopped tracee: its syscall, its new image's auxiliary vector,
//! the bytes getrandom gave it.

use nix::sys::ptrace;
use nix::unistd::Pid;
use rand::RngCore;
use rand_chacha::ChaCha20Rng;

use super::NativeError;

const AT_NULL: u64 = 0;
const AT_IGNORE: u64 = 1;
const AT_RANDOM: u64 = 25;
const AT_SYSINFO_EHDR: u64 = 33;
/// Linux's 64-bit user code segment selector (`__USER_CS`).
const USER_CS: u64 = 0x33;

/// PTRACE_GET_SYSCALL_INFO. (nix 0.30's `syscall_info` passes a size of 0, so the kernel
/// fills in nothing.)
pub(super) fn syscall_info(pid: Pid) -> Result<libc::ptrace_syscall_info, NativeError> {
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

pub(super) fn read_word(pid: Pid, address: u64) -> Result<u64, NativeError> {
    Ok(ptrace::read(pid, address as ptrace::AddressType)? as u64)
}

/// At the stop after an exec, RSP points at argc; after argv and envp comes the auxiliary
/// vector. AT_SYSINFO_EHDR becomes AT_IGNORE (so time calls are syscalls), and AT_RANDOM's
/// 16 bytes the next ones of the process's stream.
pub(super) fn prepare_auxv(pid: Pid, stream: &mut ChaCha20Rng) -> Result<(), NativeError> {
    let regs = ptrace::getregs(pid)?;
    // A 32-bit image's auxv is of 32-bit words; the simulator refuses such programs too.
    if regs.cs != USER_CS {
        return Err(NativeError::Setup(format!(
            "task {pid} exec'd a 32-bit program (x86-64 only)"
        )));
    }
    let rsp = regs.rsp;
    let word = |address: u64| read_word(pid, address);
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
                stream.fill_bytes(&mut random);
                write_bytes(pid, word(at + 8)?, &random)?;
            }
            _ => {}
        }
        at += 16;
    }
}

/// getrandom's result, replaced with the next bytes of the process's stream.
pub(super) fn overwrite_random(
    pid: Pid,
    buffer: u64,
    len: usize,
    stream: &mut ChaCha20Rng,
) -> Result<(), NativeError> {
    let mut bytes = vec![0u8; len];
    stream.fill_bytes(&mut bytes);
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
        let mut word = read_word(pid, word_at)?.to_le_bytes();
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
