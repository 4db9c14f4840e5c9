//! Reading extended attributes (`ls -l` asks for SELinux labels and ACLs): the host file's,
//! as every other file call, at most Linux's 64 KiB. Setting and removing them are not
//! modelled: they would change the host's files' metadata behind the oracle's back.

use std::ffi::CString;

use super::fs::{give, host, path};
use crate::kernel::{Args, Kernel, SysResult};

/// Linux's `XATTR_SIZE_MAX` and `XATTR_LIST_MAX`.
const XATTR_MAX: usize = 65536;
/// Linux's `XATTR_NAME_MAX`, with its NUL.
const NAME_MAX: usize = 256;

/// Runs `call` on a host buffer as large as the guest's (at most `XATTR_MAX`) and copies
/// what it filled to `out`. A size of 0 asks only for the size.
fn into_guest(
    k: &mut Kernel,
    out: u64,
    size: u64,
    call: impl FnOnce(*mut libc::c_void, usize) -> libc::c_long,
) -> SysResult {
    let len = (size as usize).min(XATTR_MAX);
    let mut buf = vec![0u8; len];
    let filled = host(call(buf.as_mut_ptr().cast(), len))?;
    if len > 0 {
        give(k, out, &buf[..filled as usize])?;
    }
    Ok(filled)
}

fn name(k: &mut Kernel, addr: u64) -> Result<CString, nix::errno::Errno> {
    let bytes = k.proc.mem.read_cstring(addr, NAME_MAX)?;
    Ok(CString::new(bytes).expect("read_cstring stops at NUL"))
}

/// getxattr and lgetxattr: `syscall` names which.
fn get_by_path(k: &mut Kernel, a: &Args, syscall: libc::c_long) -> SysResult {
    let (file, attribute) = (path(k, a[0])?, name(k, a[1])?);
    into_guest(k, a[2], a[3], |buf, len| {
        // SAFETY: C strings and a buffer of `len` bytes.
        unsafe { libc::syscall(syscall, file.as_ptr(), attribute.as_ptr(), buf, len) }
    })
}

pub fn getxattr(k: &mut Kernel, a: &Args) -> SysResult {
    get_by_path(k, a, libc::SYS_getxattr)
}

pub fn lgetxattr(k: &mut Kernel, a: &Args) -> SysResult {
    get_by_path(k, a, libc::SYS_lgetxattr)
}

pub fn fgetxattr(k: &mut Kernel, a: &Args) -> SysResult {
    let (fd, attribute) = (k.proc.fds.host(a[0])?, name(k, a[1])?);
    into_guest(k, a[2], a[3], |buf, len| {
        // SAFETY: a C string and a buffer of `len` bytes.
        unsafe { libc::syscall(libc::SYS_fgetxattr, fd, attribute.as_ptr(), buf, len) }
    })
}

/// listxattr and llistxattr: `syscall` names which.
fn list_by_path(k: &mut Kernel, a: &Args, syscall: libc::c_long) -> SysResult {
    let file = path(k, a[0])?;
    into_guest(k, a[1], a[2], |buf, len| {
        // SAFETY: a C string and a buffer of `len` bytes.
        unsafe { libc::syscall(syscall, file.as_ptr(), buf, len) }
    })
}

pub fn listxattr(k: &mut Kernel, a: &Args) -> SysResult {
    list_by_path(k, a, libc::SYS_listxattr)
}

pub fn llistxattr(k: &mut Kernel, a: &Args) -> SysResult {
    list_by_path(k, a, libc::SYS_llistxattr)
}

pub fn flistxattr(k: &mut Kernel, a: &Args) -> SysResult {
    let fd = k.proc.fds.host(a[0])?;
    into_guest(k, a[1], a[2], |buf, len| {
        // SAFETY: a buffer of `len` bytes.
        unsafe { libc::syscall(libc::SYS_flistxattr, fd, buf, len) }
    })
}
