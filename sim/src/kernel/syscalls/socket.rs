//! Sockets, as far as a program goes when no name-service daemon runs: glibc looks a user
//! or group up through nscd first (an AF_UNIX socket, a connect to nscd's path, which fails
//! with ENOENT where nscd does not run, a close), then in the files. The socket is the
//! host's; a connect to a path where something exists, and every other socket call, stop
//! the run as unsupported until the network is modelled.

use std::ffi::CString;

use nix::errno::Errno;

use super::fs::host;
use crate::kernel::{Args, Kernel, SysError, SysResult};

/// `struct sockaddr_un`: the family, then at most 108 bytes of path.
const SOCKADDR_UN_SIZE: u64 = 110;

pub fn socket(k: &mut Kernel, a: &Args) -> SysResult {
    let (domain, kind, protocol) = (a[0] as i32, a[1] as i32, a[2] as i32);
    if domain != libc::AF_UNIX {
        return Err(SysError::Unsupported(format!(
            "socket of address family {domain}"
        )));
    }
    // SAFETY: plain syscall; the descriptor it returns is installed at once.
    let raw = host(unsafe {
        libc::syscall(
            libc::SYS_socket,
            domain,
            kind | libc::SOCK_CLOEXEC,
            protocol,
        )
    })?;
    Ok(k.proc
        .fds
        .install_raw(raw as i32, kind & libc::SOCK_CLOEXEC != 0, None)?)
}

/// connect(fd, addr, len) of an AF_UNIX socket to a path: the error Linux gives when
/// nothing is there (ENOENT, ENOTDIR, EACCES…).
pub fn connect(k: &mut Kernel, a: &Args) -> SysResult {
    k.proc.fds.host(a[0])?;
    let len = a[2];
    if !(2..=SOCKADDR_UN_SIZE).contains(&len) {
        return Err(Errno::EINVAL.into());
    }
    let address = k.proc.mem.read_vec(a[1], len as usize)?;
    if u16::from_le_bytes([address[0], address[1]]) != libc::AF_UNIX as u16 {
        return Err(Errno::EINVAL.into());
    }
    let path = &address[2..];
    let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
    if end == 0 {
        return Err(SysError::Unsupported(
            "connect to an abstract AF_UNIX socket".into(),
        ));
    }
    let name = CString::new(&path[..end]).expect("cut at the first NUL");
    match nix::sys::stat::lstat(name.as_c_str()) {
        Err(errno) => Err(errno.into()),
        Ok(_) => Err(SysError::Unsupported(format!(
            "connect to the host's socket {}",
            name.to_string_lossy()
        ))),
    }
}
