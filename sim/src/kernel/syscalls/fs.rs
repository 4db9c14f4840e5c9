//! Files, descriptors, file status and names: carried out on the host, as qemu-user does.
//!
//! Guest and host are both x86-64 Linux, so structures such as `struct stat`, `statx`,
//! `linux_dirent64` and `termios` have the same layout on both sides and pass through as
//! bytes; only descriptors and a few /proc paths need translating.

use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use nix::errno::Errno;
use nix::sys::signal::Signal;

use super::signal::send_to_self;
use crate::kernel::fd::Channel;
use crate::kernel::{Args, Kernel, SysError, SysResult};

/// Linux's `PATH_MAX`.
const PATH_MAX: usize = 4096;
const AT_FDCWD: i64 = libc::AT_FDCWD as i64;
const STAT_SIZE: usize = std::mem::size_of::<libc::stat>();
const STATX_SIZE: usize = std::mem::size_of::<libc::statx>();
const STATFS_SIZE: usize = std::mem::size_of::<libc::statfs>();
/// `struct termios` as the kernel's TCGETS fills it (glibc's is larger).
const KERNEL_TERMIOS_SIZE: usize = 36;
const WINSIZE_SIZE: usize = std::mem::size_of::<libc::winsize>();
const FLOCK_SIZE: usize = std::mem::size_of::<libc::flock>();

/// A host syscall's return value as a result.
pub(super) fn host(ret: libc::c_long) -> Result<u64, Errno> {
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(ret as u64)
    }
}

/// A guest path, with the names that must mean the guest rather than the simulator rewritten.
pub(super) fn path(k: &mut Kernel, addr: u64) -> Result<CString, SysError> {
    let given = k.proc.mem.read_cstring(addr, PATH_MAX)?;
    // The names below are matched as the kernel would resolve them (`//proc/./x` is
    // `/proc/x`); a path that matches none goes to the host as given.
    let bytes = lexical(&given);
    if bytes == b"/proc/self/exe" {
        return Ok(CString::new(k.proc.exe.as_os_str().as_bytes()).expect("paths have no NUL"));
    }
    // The guest's descriptors by name, never the simulator's own (its outputs' directories,
    // the machine files).
    let descriptor = match bytes.as_slice() {
        b"/dev/stdin" => Some(&b"0"[..]),
        b"/dev/stdout" => Some(&b"1"[..]),
        b"/dev/stderr" => Some(&b"2"[..]),
        _ => bytes
            .strip_prefix(b"/proc/self/fd/")
            .or_else(|| bytes.strip_prefix(b"/dev/fd/")),
    };
    if let Some(rest) = descriptor {
        let guest: u64 = std::str::from_utf8(rest)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(Errno::ENOENT)?;
        let file = k.proc.fds.file(guest).map_err(|_| Errno::ENOENT)?;
        k.named_descriptor = Some(file.kind);
        let fd = std::os::fd::AsRawFd::as_raw_fd(&file.host);
        return Ok(CString::new(format!("/proc/self/fd/{fd}")).expect("no NUL"));
    }
    if let Some(&(name, _, render)) = own_process_file(k.proc.pid, &bytes) {
        let contents = render(k);
        let host = k.machine_files.snapshot(name, &contents)?;
        k.named_machine_file = true;
        return Ok(CString::new(host.into_os_string().into_vec()).expect("no NUL"));
    }
    if bytes.starts_with(b"/proc/self/") || bytes.starts_with(b"/proc/thread-self/") {
        let shown = String::from_utf8_lossy(&bytes).into_owned();
        return Err(SysError::Unsupported(format!(
            "the path {shown} (it would describe the simulator)"
        )));
    }
    let under = |root: &[u8]| {
        bytes
            .strip_prefix(root)
            .is_some_and(|rest| rest.first().is_none_or(|&b| b == b'/'))
    };
    if under(b"/proc") || under(b"/sys") {
        return match k.machine_files.lookup(&bytes, k.cpu)? {
            Some(host) => {
                k.named_machine_file = true;
                Ok(CString::new(host.into_os_string().into_vec()).expect("no NUL"))
            }
            None => Err(SysError::Unsupported(format!(
                "the path {} (it would describe the host, not the simulated machine)",
                String::from_utf8_lossy(&bytes)
            ))),
        };
    }
    if let Some(inside) = k
        .sysroot
        .as_deref()
        .and_then(|root| crate::sysroot::resolve(root, &bytes))
    {
        return Ok(CString::new(inside.into_os_string().into_vec()).expect("no NUL"));
    }
    Ok(CString::new(given).expect("read_cstring stops at NUL"))
}

/// The files of /proc that describe the running process itself, as of the open: name,
/// whether `/proc/thread-self/` names it too, and its contents.
type OwnFile = (&'static str, bool, fn(&Kernel) -> String);
const OWN_FILES: [OwnFile; 2] = [
    ("maps", true, |k| {
        k.proc.mem.maps(crate::memory::STACK_TOP - 1)
    }),
    ("stat", false, process_stat),
];

/// The row of `OWN_FILES` that `path` names under `/proc/self/`, `/proc/thread-self/` or
/// `/proc/PID/` of the running process's pid.
fn own_process_file(pid: u64, path: &[u8]) -> Option<&'static OwnFile> {
    let rest = path.strip_prefix(b"/proc/")?;
    let slash = rest.iter().position(|&b| b == b'/')?;
    let (who, name) = (&rest[..slash], &rest[slash + 1..]);
    let thread = who == b"thread-self";
    let own = thread
        || who == b"self"
        || (who.first() != Some(&b'0')
            && std::str::from_utf8(who).ok().and_then(|w| w.parse().ok()) == Some(pid));
    OWN_FILES
        .iter()
        .find(|(file, thread_too, _)| own && name == file.as_bytes() && (*thread_too || !thread))
}

/// `/proc/self/stat` of the running process, as Linux's `do_task_stat` writes it: its ids,
/// its threads, its CPU time on the virtual clock (in 100 Hz ticks), its size and resident
/// pages; fields the model has no figure for are 0.
fn process_stat(k: &Kernel) -> String {
    const TICK_NS: u64 = 10_000_000;
    let p = &k.proc;
    let (vsize, rss) = p.mem.size_and_resident();
    let threads = k.tasks_of(p.pid).len().max(1);
    let comm = String::from_utf8_lossy(&p.comm);
    let mut fields = vec![
        format!(
            "{} ({comm}) R {} {} {} 0 -1 4194560 0 0 0 0",
            p.pid, p.ppid, p.pgid, p.sid
        ),
        format!(
            "{} 0 0 0 20 0 {threads} 0 0 {vsize} {rss} {}",
            k.cpu_ns / TICK_NS,
            u64::MAX
        ),
    ];
    // startcode … exit_code: 27 fields, exit_signal (SIGCHLD) among them.
    let mut rest = vec!["0"; 27];
    rest[13] = "17";
    fields.push(rest.join(" "));
    format!("{}\n", fields.join(" "))
}

/// An absolute path with `//`, `.` and `..` resolved by name (symbolic links are not
/// followed); any other path as it is.
fn lexical(path: &[u8]) -> Vec<u8> {
    if path.first() != Some(&b'/') {
        return path.to_vec();
    }
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in path.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            name => parts.push(name),
        }
    }
    let mut out = Vec::with_capacity(path.len());
    for part in parts {
        out.push(b'/');
        out.extend_from_slice(part);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// A guest path that may be NULL (utimensat).
fn optional_path(k: &mut Kernel, addr: u64) -> Result<Option<CString>, SysError> {
    if addr == 0 {
        Ok(None)
    } else {
        path(k, addr).map(Some)
    }
}

/// The host directory descriptor for a guest `dirfd` argument.
fn dirfd(k: &Kernel, fd: u64) -> Result<libc::c_long, Errno> {
    if fd as i32 as i64 == AT_FDCWD {
        Ok(AT_FDCWD)
    } else {
        Ok(k.proc.fds.host(fd)? as libc::c_long)
    }
}

fn c(p: &CString) -> libc::c_long {
    p.as_ptr() as libc::c_long
}

fn c_opt(p: &Option<CString>) -> libc::c_long {
    p.as_ref().map_or(0, c)
}

/// Copies a host-filled buffer to the guest.
pub(super) fn give(k: &mut Kernel, addr: u64, bytes: &[u8]) -> Result<(), Errno> {
    k.proc.mem.write(addr, bytes)
}

/// Turns EPIPE from a write into SIGPIPE, as Linux does.
pub(super) fn pipe_signal(k: &mut Kernel, result: Result<u64, Errno>) -> SysResult {
    if result == Err(Errno::EPIPE) {
        send_to_self(k, Signal::SIGPIPE);
    }
    Ok(result?)
}

// ----- read and write -----

/// Moves bytes between a host descriptor and guest memory in place, at `offset` or at
/// the file position, and accounts for them.
fn host_io(
    k: &mut Kernel,
    fd: u64,
    iov: &[libc::iovec],
    offset: Option<u64>,
    into_guest: bool,
) -> SysResult {
    let file = k.proc.fds.file(fd)?;
    if file.is_modelled() && offset.is_some() {
        return Err(Errno::ESPIPE.into());
    }
    if file.pipe().is_some() {
        return super::pipes::pipe_io(k, &file, iov, into_guest);
    }
    if file.socket().is_some() {
        // A socket's read of nothing is 0 before anything else (`sock_read_iter`).
        if into_guest && iov.iter().all(|v| v.iov_len == 0) {
            return Ok(0);
        }
        return super::socket_io::socket_io(k, &file, iov, into_guest, false, true);
    }
    if let Channel::Event(_) = file.channel {
        return super::eventfd::eventfd_io(k, &file, iov, into_guest);
    }
    if let Channel::Timer(_) = file.channel {
        return super::timerfd::timerfd_io(k, &file, iov, into_guest);
    }
    if let Channel::Signal(_) = file.channel {
        return super::signalfd::signalfd_io(k, &file, iov, into_guest);
    }
    if let Channel::HostSocket(_) = file.channel {
        return super::host_net::io(k, &file, iov, into_guest);
    }
    if let Channel::Random = file.channel {
        let total: usize = iov.iter().map(|v| v.iov_len).sum();
        if into_guest {
            let mut bytes = vec![0u8; total];
            rand::RngCore::fill_bytes(&mut k.proc.rng, &mut bytes);
            super::pipes::scatter(iov, 0, &bytes);
        }
        k.proc.mem.note_transfer(total as u64);
        return Ok(total as u64);
    }
    let host_fd = k.proc.fds.host(fd)?;
    let (ptr, count) = (iov.as_ptr(), iov.len() as i32);
    // SAFETY: the iovecs point into guest physical memory, which stays mapped and is not
    // otherwise touched while the host call runs.
    let ret = unsafe {
        match (offset, into_guest) {
            (None, true) => libc::readv(host_fd, ptr, count),
            (None, false) => libc::writev(host_fd, ptr, count),
            (Some(off), true) => libc::preadv(host_fd, ptr, count, off as i64),
            (Some(off), false) => libc::pwritev(host_fd, ptr, count, off as i64),
        }
    };
    let result = host(ret as libc::c_long);
    if let Ok(n) = result {
        k.proc.mem.note_transfer(n);
    }
    if into_guest {
        Ok(result?)
    } else {
        pipe_signal(k, result)
    }
}

fn transfer(
    k: &mut Kernel,
    fd: u64,
    addr: u64,
    len: u64,
    offset: Option<u64>,
    into_guest: bool,
) -> SysResult {
    k.proc.fds.host(fd)?;
    k.proc.mem.begin_transfer();
    let iov = k.proc.mem.host_iovecs(addr, len as usize, into_guest)?;
    host_io(k, fd, &iov, offset, into_guest)
}

pub fn read(k: &mut Kernel, a: &Args) -> SysResult {
    transfer(k, a[0], a[1], a[2], None, true)
}

pub fn write(k: &mut Kernel, a: &Args) -> SysResult {
    transfer(k, a[0], a[1], a[2], None, false)
}

pub fn pread64(k: &mut Kernel, a: &Args) -> SysResult {
    if (a[3] as i64) < 0 {
        return Err(Errno::EINVAL.into());
    }
    transfer(k, a[0], a[1], a[2], Some(a[3]), true)
}

pub fn pwrite64(k: &mut Kernel, a: &Args) -> SysResult {
    if (a[3] as i64) < 0 {
        return Err(Errno::EINVAL.into());
    }
    transfer(k, a[0], a[1], a[2], Some(a[3]), false)
}

/// The host iovecs for a guest iovec array.
pub(super) fn guest_iovecs(
    k: &mut Kernel,
    addr: u64,
    count: u64,
    into_guest: bool,
) -> Result<Vec<libc::iovec>, Errno> {
    if count > crate::memory::IOV_MAX as u64 {
        return Err(Errno::EINVAL);
    }
    let raw = k.proc.mem.read_vec(addr, count as usize * 16)?;
    k.proc.mem.begin_transfer();
    let mut all = Vec::new();
    for entry in raw.chunks_exact(16) {
        let base = u64::from_le_bytes(entry[..8].try_into().unwrap());
        let len = u64::from_le_bytes(entry[8..].try_into().unwrap());
        all.extend(k.proc.mem.host_iovecs(base, len as usize, into_guest)?);
    }
    all.truncate(crate::memory::IOV_MAX);
    Ok(all)
}

fn vectored(k: &mut Kernel, a: &Args, into_guest: bool) -> SysResult {
    k.proc.fds.host(a[0])?;
    let iov = guest_iovecs(k, a[1], a[2], into_guest)?;
    host_io(k, a[0], &iov, None, into_guest)
}

pub fn readv(k: &mut Kernel, a: &Args) -> SysResult {
    vectored(k, a, true)
}

pub fn writev(k: &mut Kernel, a: &Args) -> SysResult {
    vectored(k, a, false)
}

// ----- opening and descriptors -----

fn open_common(k: &mut Kernel, dir: u64, path_addr: u64, flags: u64, mode: u64) -> SysResult {
    let dir = dirfd(k, dir)?;
    let p = path(k, path_addr)?;
    // SAFETY: plain syscall with a valid C string.
    let raw = host(unsafe {
        libc::syscall(
            libc::SYS_openat,
            dir,
            c(&p),
            flags | libc::O_CLOEXEC as u64,
            mode,
        )
    })?;
    let cloexec = flags & libc::O_CLOEXEC as u64 != 0;
    Ok(k.proc
        .fds
        .install_raw(raw as i32, cloexec, k.named_descriptor)?)
}

pub fn open(k: &mut Kernel, a: &Args) -> SysResult {
    open_common(k, AT_FDCWD as u64, a[0], a[1], a[2])
}

pub fn openat(k: &mut Kernel, a: &Args) -> SysResult {
    open_common(k, a[0], a[1], a[2], a[3])
}

pub fn creat(k: &mut Kernel, a: &Args) -> SysResult {
    let flags = (libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC) as u64;
    open_common(k, AT_FDCWD as u64, a[0], flags, a[1])
}

pub fn close(k: &mut Kernel, a: &Args) -> SysResult {
    k.proc.fds.close(a[0])?;
    k.pipes_changed();
    Ok(0)
}

pub fn lseek(k: &mut Kernel, a: &Args) -> SysResult {
    let fd = k.proc.fds.host(a[0])?;
    // SAFETY: plain syscall on an owned descriptor.
    Ok(host(unsafe {
        libc::syscall(libc::SYS_lseek, fd, a[1], a[2])
    })?)
}

pub fn dup(k: &mut Kernel, a: &Args) -> SysResult {
    let file = k.proc.fds.file(a[0])?;
    Ok(k.proc.fds.install_file(file, false, 0)?)
}

fn dup_to(k: &mut Kernel, old: u64, new: u64, cloexec: bool) -> SysResult {
    if new as usize >= k.proc.fds.limit {
        return Err(Errno::EBADF.into());
    }
    let file = k.proc.fds.file(old)?;
    k.proc.fds.install_at(new as usize, file, cloexec);
    k.pipes_changed();
    Ok(new)
}

pub fn dup2(k: &mut Kernel, a: &Args) -> SysResult {
    if a[0] == a[1] {
        k.proc.fds.host(a[0])?;
        return Ok(a[1]);
    }
    dup_to(k, a[0], a[1], false)
}

pub fn dup3(k: &mut Kernel, a: &Args) -> SysResult {
    if a[0] == a[1] || a[2] & !(libc::O_CLOEXEC as u64) != 0 {
        return Err(Errno::EINVAL.into());
    }
    dup_to(k, a[0], a[1], a[2] != 0)
}

pub fn fcntl(k: &mut Kernel, a: &Args) -> SysResult {
    let fd = k.proc.fds.host(a[0])?;
    match a[1] as i32 {
        libc::F_DUPFD | libc::F_DUPFD_CLOEXEC => {
            let file = k.proc.fds.file(a[0])?;
            let min = a[2] as usize;
            if min >= k.proc.fds.limit {
                return Err(Errno::EINVAL.into());
            }
            Ok(k.proc
                .fds
                .install_file(file, a[1] as i32 == libc::F_DUPFD_CLOEXEC, min)?)
        }
        libc::F_GETFD => Ok(if k.proc.fds.cloexec(a[0])? {
            libc::FD_CLOEXEC as u64
        } else {
            0
        }),
        libc::F_SETFD => {
            k.proc
                .fds
                .set_cloexec(a[0], a[2] & libc::FD_CLOEXEC as u64 != 0)?;
            Ok(0)
        }
        libc::F_GETFL | libc::F_SETFL
            if matches!(k.proc.fds.file(a[0])?.channel, Channel::HostSocket(_)) =>
        {
            let file = k.proc.fds.file(a[0])?;
            super::host_net::file_flags(&file, a[1] as i32, a[2])
        }
        libc::F_GETFL | libc::F_SETFL | libc::F_GETPIPE_SZ | libc::F_SETPIPE_SZ => {
            // SAFETY: integer-argument fcntl on an owned descriptor.
            let result = host(unsafe { libc::syscall(libc::SYS_fcntl, fd, a[1], a[2]) })?;
            if a[1] as i32 == libc::F_SETFL {
                // The host descriptor keeps the flags; a modelled pipe end or socket reads
                // its own.
                if let Some(flag) = k.proc.fds.file(a[0])?.non_blocking() {
                    flag.set(a[2] & libc::O_NONBLOCK as u64 != 0);
                }
            }
            Ok(result)
        }
        libc::F_GETLK
        | libc::F_SETLK
        | libc::F_SETLKW
        | libc::F_OFD_GETLK
        | libc::F_OFD_SETLK
        | libc::F_OFD_SETLKW => {
            let mut lock = k.proc.mem.read_vec(a[2], FLOCK_SIZE)?;
            // SAFETY: `lock` is a buffer of the size of `struct flock`.
            host(unsafe { libc::syscall(libc::SYS_fcntl, fd, a[1], lock.as_mut_ptr()) })?;
            give(k, a[2], &lock)?;
            Ok(0)
        }
        cmd => Err(SysError::Unsupported(format!("fcntl command {cmd}"))),
    }
}

/// The ioctl requests the simulator passes through, with the size of their argument.
const IOCTLS: &[(u64, &str, usize)] = &[
    (libc::TCGETS, "TCGETS", KERNEL_TERMIOS_SIZE),
    (libc::TIOCGWINSZ, "TIOCGWINSZ", WINSIZE_SIZE),
    (libc::FIONREAD, "FIONREAD", 4),
    (libc::TIOCGPGRP, "TIOCGPGRP", 4),
    // SIOCOUTQ on a socket.
    (libc::TIOCOUTQ, "TIOCOUTQ", 4),
];

pub fn ioctl(k: &mut Kernel, a: &Args) -> SysResult {
    let fd = k.proc.fds.host(a[0])?;
    let Some(&(request, _, size)) = IOCTLS.iter().find(|(r, _, _)| *r == a[1]) else {
        return Err(SysError::Unsupported(format!("ioctl request {:#x}", a[1])));
    };
    if request == libc::FIONREAD {
        // The bytes a modelled pipe or socket holds are the model's: its host descriptor
        // carries none.
        if let Some(queued) = k.proc.fds.file(a[0])?.queued() {
            give(k, a[2], &(queued as i32).to_le_bytes())?;
            return Ok(0);
        }
    }
    if request == libc::TIOCOUTQ {
        if let Some(socket) = k.proc.fds.file(a[0])?.socket() {
            let unsent = super::socket_io::output_queue(socket)?;
            give(k, a[2], &unsent.to_le_bytes())?;
            return Ok(0);
        }
    }
    let mut buf = vec![0u8; size];
    // SAFETY: `buf` has the size this request writes.
    host(unsafe { libc::syscall(libc::SYS_ioctl, fd, request, buf.as_mut_ptr()) })?;
    give(k, a[2], &buf)?;
    Ok(0)
}

/// In-kernel copy between descriptors: no user memory is touched but the offset.
pub fn sendfile(k: &mut Kernel, a: &Args) -> SysResult {
    let (out, in_fd) = (k.proc.fds.file(a[0])?, k.proc.fds.host(a[1])?);
    match k.proc.fds.file(a[1])?.channel {
        Channel::Host => {}
        // Linux reads a sendfile's input through its file's splice_read, which pipes,
        // eventfds and epolls lack, and refuses a socket's too (EINVAL, as 6.x answers
        // busybox cat reading one): programs then read and write, as busybox cat does.
        Channel::Pipe(_)
        | Channel::Event(_)
        | Channel::Epoll(_)
        | Channel::Socket(_)
        | Channel::Timer(_)
        | Channel::Signal(_)
        | Channel::HostSocket(_) => return Err(Errno::EINVAL.into()),
        Channel::Random => {
            return Err(SysError::Unsupported(
                "sendfile from /dev/random or /dev/urandom".into(),
            ))
        }
    }
    if out.pipe().is_some() {
        return super::pipes::sendfile_into(k, &out, in_fd, a[2], a[3]);
    }
    if out.socket().is_some() {
        return super::socket_io::sendfile_into(k, &out, in_fd, a[2], a[3]);
    }
    let out_fd = out.host.as_raw_fd();
    let mut offset = if a[2] == 0 {
        None
    } else {
        Some(k.proc.mem.read_u64(a[2])? as i64)
    };
    let offset_ptr = offset
        .as_mut()
        .map_or(std::ptr::null_mut(), |o| o as *mut i64);
    // SAFETY: owned descriptors, and a valid offset pointer or null.
    let result =
        host(unsafe { libc::sendfile(out_fd, in_fd, offset_ptr, a[3] as usize) } as libc::c_long);
    if let Some(o) = offset {
        k.proc.mem.write(a[2], &o.to_le_bytes())?;
    }
    if let (Channel::HostSocket(_), Err(errno)) = (&out.channel, result) {
        return Err(super::host_net::would_block(
            &out,
            errno,
            false,
            libc::POLLOUT,
        ));
    }
    pipe_signal(k, result)
}

/// An offset argument: the value at `pointer`, or none for a null pointer.
fn offset_at(k: &mut Kernel, pointer: u64) -> Result<Option<i64>, Errno> {
    if pointer == 0 {
        return Ok(None);
    }
    Ok(Some(k.proc.mem.read_u64(pointer)? as i64))
}

/// copy_file_range(in, in_offset, out, out_offset, len, flags) between host files. A
/// modelled pipe on either side is EINVAL, as Linux refuses anything but regular files there
/// (coreutils then reads and writes).
pub fn copy_file_range(k: &mut Kernel, a: &Args) -> SysResult {
    let (from, to) = (k.proc.fds.file(a[0])?, k.proc.fds.file(a[2])?);
    if from.is_modelled() || to.is_modelled() {
        return Err(Errno::EINVAL.into());
    }
    let (mut in_offset, mut out_offset) = (offset_at(k, a[1])?, offset_at(k, a[3])?);
    let pointer = |o: &mut Option<i64>| o.as_mut().map_or(std::ptr::null_mut(), |o| o as *mut i64);
    // SAFETY: owned descriptors, and valid offset pointers or null.
    let result = host(unsafe {
        libc::syscall(
            libc::SYS_copy_file_range,
            from.host.as_raw_fd(),
            pointer(&mut in_offset),
            to.host.as_raw_fd(),
            pointer(&mut out_offset),
            a[4],
            a[5],
        )
    });
    for (address, offset) in [(a[1], in_offset), (a[3], out_offset)] {
        if let Some(offset) = offset {
            k.proc.mem.write(address, &offset.to_le_bytes())?;
        }
    }
    Ok(result?)
}

pub fn getdents64(k: &mut Kernel, a: &Args) -> SysResult {
    let fd = k.proc.fds.host(a[0])?;
    let mut buf = vec![0u8; (a[2] as usize).min(1 << 20)];
    // SAFETY: `buf` has the length passed.
    let n = host(unsafe { libc::syscall(libc::SYS_getdents64, fd, buf.as_mut_ptr(), buf.len()) })?;
    give(k, a[1], &buf[..n as usize])?;
    Ok(n)
}

pub fn ftruncate(k: &mut Kernel, a: &Args) -> SysResult {
    let fd = k.proc.fds.host(a[0])?;
    // SAFETY: plain syscall on an owned descriptor.
    Ok(host(unsafe {
        libc::syscall(libc::SYS_ftruncate, fd, a[1])
    })?)
}

pub fn fsync(k: &mut Kernel, a: &Args) -> SysResult {
    let fd = k.proc.fds.host(a[0])?;
    // SAFETY: plain syscall on an owned descriptor.
    Ok(host(unsafe { libc::syscall(libc::SYS_fsync, fd) })?)
}

pub fn fadvise64(k: &mut Kernel, a: &Args) -> SysResult {
    let fd = k.proc.fds.host(a[0])?;
    // SAFETY: plain syscall on an owned descriptor.
    Ok(host(unsafe {
        libc::syscall(libc::SYS_fadvise64, fd, a[1], a[2], a[3])
    })?)
}

// ----- file status -----

fn stat_into(
    k: &mut Kernel,
    out: u64,
    size: usize,
    call: impl FnOnce(*mut u8) -> libc::c_long,
) -> SysResult {
    let mut buf = vec![0u8; size];
    host(call(buf.as_mut_ptr()))?;
    give(k, out, &buf)?;
    Ok(0)
}

fn fstatat_common(k: &mut Kernel, dir: u64, path_addr: u64, out: u64, flags: u64) -> SysResult {
    let dir = dirfd(k, dir)?;
    let p = path(k, path_addr)?;
    // SAFETY: the buffer has the size of `struct stat`.
    stat_into(k, out, STAT_SIZE, |buf| unsafe {
        libc::syscall(libc::SYS_newfstatat, dir, c(&p), buf, flags)
    })
}

pub fn stat(k: &mut Kernel, a: &Args) -> SysResult {
    fstatat_common(k, AT_FDCWD as u64, a[0], a[1], 0)
}

pub fn lstat(k: &mut Kernel, a: &Args) -> SysResult {
    fstatat_common(
        k,
        AT_FDCWD as u64,
        a[0],
        a[1],
        libc::AT_SYMLINK_NOFOLLOW as u64,
    )
}

pub fn newfstatat(k: &mut Kernel, a: &Args) -> SysResult {
    fstatat_common(k, a[0], a[1], a[2], a[3])
}

pub fn fstat(k: &mut Kernel, a: &Args) -> SysResult {
    let fd = k.proc.fds.host(a[0])?;
    // SAFETY: the buffer has the size of `struct stat`.
    stat_into(k, a[1], STAT_SIZE, |buf| unsafe {
        libc::syscall(libc::SYS_fstat, fd, buf)
    })
}

pub fn statx(k: &mut Kernel, a: &Args) -> SysResult {
    let dir = dirfd(k, a[0])?;
    let p = path(k, a[1])?;
    // SAFETY: the buffer has the size of `struct statx`.
    stat_into(k, a[4], STATX_SIZE, |buf| unsafe {
        libc::syscall(libc::SYS_statx, dir, c(&p), a[2], a[3], buf)
    })
}

pub fn statfs(k: &mut Kernel, a: &Args) -> SysResult {
    let p = path(k, a[0])?;
    // SAFETY: the buffer has the size of `struct statfs`.
    stat_into(k, a[1], STATFS_SIZE, |buf| unsafe {
        libc::syscall(libc::SYS_statfs, c(&p), buf)
    })
}

pub fn fstatfs(k: &mut Kernel, a: &Args) -> SysResult {
    let fd = k.proc.fds.host(a[0])?;
    // SAFETY: the buffer has the size of `struct statfs`.
    stat_into(k, a[1], STATFS_SIZE, |buf| unsafe {
        libc::syscall(libc::SYS_fstatfs, fd, buf)
    })
}

fn faccessat_common(k: &mut Kernel, dir: u64, path_addr: u64, mode: u64, flags: u64) -> SysResult {
    let dir = dirfd(k, dir)?;
    let p = path(k, path_addr)?;
    // SAFETY: plain syscall with a valid C string.
    Ok(host(unsafe {
        libc::syscall(libc::SYS_faccessat2, dir, c(&p), mode, flags)
    })?)
}

pub fn access(k: &mut Kernel, a: &Args) -> SysResult {
    faccessat_common(k, AT_FDCWD as u64, a[0], a[1], 0)
}

pub fn faccessat(k: &mut Kernel, a: &Args) -> SysResult {
    faccessat_common(k, a[0], a[1], a[2], 0)
}

pub fn faccessat2(k: &mut Kernel, a: &Args) -> SysResult {
    faccessat_common(k, a[0], a[1], a[2], a[3])
}

fn readlinkat_common(k: &mut Kernel, dir: u64, path_addr: u64, out: u64, size: u64) -> SysResult {
    if (size as i64) <= 0 {
        return Err(Errno::EINVAL.into());
    }
    let raw = k.proc.mem.read_cstring(path_addr, PATH_MAX)?;
    let target = if raw == b"/proc/self/exe" {
        k.proc.exe.as_os_str().as_bytes().to_vec()
    } else {
        let dir = dirfd(k, dir)?;
        let p = path(k, path_addr)?;
        let mut buf = vec![0u8; PATH_MAX];
        // SAFETY: `buf` has the length passed.
        let n = host(unsafe {
            libc::syscall(
                libc::SYS_readlinkat,
                dir,
                c(&p),
                buf.as_mut_ptr(),
                buf.len(),
            )
        })?;
        buf.truncate(n as usize);
        buf
    };
    let n = target.len().min(size as usize);
    give(k, out, &target[..n])?;
    Ok(n as u64)
}

pub fn readlink(k: &mut Kernel, a: &Args) -> SysResult {
    readlinkat_common(k, AT_FDCWD as u64, a[0], a[1], a[2])
}

pub fn readlinkat(k: &mut Kernel, a: &Args) -> SysResult {
    readlinkat_common(k, a[0], a[1], a[2], a[3])
}

// ----- names and directories -----

pub fn getcwd(k: &mut Kernel, a: &Args) -> SysResult {
    let cwd = std::env::current_dir()
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::ENOENT)))?;
    let mut bytes = cwd.as_os_str().as_bytes().to_vec();
    bytes.push(0);
    if bytes.len() > a[1] as usize {
        return Err(Errno::ERANGE.into());
    }
    give(k, a[0], &bytes)?;
    Ok(bytes.len() as u64)
}

pub fn chdir(k: &mut Kernel, a: &Args) -> SysResult {
    let p = path(k, a[0])?;
    // SAFETY: plain syscall with a valid C string.
    host(unsafe { libc::syscall(libc::SYS_chdir, c(&p)) })?;
    moved(k)
}

pub fn fchdir(k: &mut Kernel, a: &Args) -> SysResult {
    let fd = k.proc.fds.host(a[0])?;
    // SAFETY: plain syscall on an owned descriptor.
    host(unsafe { libc::syscall(libc::SYS_fchdir, fd) })?;
    moved(k)
}

/// The host process moved to the running process's new working directory: it is that
/// process's now (see `process::FsContext`).
fn moved(k: &mut Kernel) -> SysResult {
    k.proc.fs.cwd = crate::kernel::process::open_cwd()
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    Ok(0)
}

/// A host `*at` call taking one directory and one path, plus integer arguments.
fn at_call(
    k: &mut Kernel,
    nr: libc::c_long,
    dir: u64,
    path_addr: u64,
    rest: [u64; 2],
) -> SysResult {
    let dir = dirfd(k, dir)?;
    let p = path(k, path_addr)?;
    // SAFETY: plain syscall with a valid C string and integer arguments.
    Ok(host(unsafe {
        libc::syscall(nr, dir, c(&p), rest[0], rest[1])
    })?)
}

/// A host `*at` call taking two directory/path pairs.
fn at2_call(k: &mut Kernel, nr: libc::c_long, pairs: [(u64, u64); 2], flags: u64) -> SysResult {
    let (d1, d2) = (dirfd(k, pairs[0].0)?, dirfd(k, pairs[1].0)?);
    let (p1, p2) = (path(k, pairs[0].1)?, path(k, pairs[1].1)?);
    // SAFETY: plain syscall with valid C strings.
    Ok(host(unsafe {
        libc::syscall(nr, d1, c(&p1), d2, c(&p2), flags)
    })?)
}

const CWD: u64 = AT_FDCWD as u64;

pub fn unlink(k: &mut Kernel, a: &Args) -> SysResult {
    at_call(k, libc::SYS_unlinkat, CWD, a[0], [0, 0])
}

pub fn unlinkat(k: &mut Kernel, a: &Args) -> SysResult {
    at_call(k, libc::SYS_unlinkat, a[0], a[1], [a[2], 0])
}

pub fn rmdir(k: &mut Kernel, a: &Args) -> SysResult {
    at_call(
        k,
        libc::SYS_unlinkat,
        CWD,
        a[0],
        [libc::AT_REMOVEDIR as u64, 0],
    )
}

pub fn mkdir(k: &mut Kernel, a: &Args) -> SysResult {
    at_call(k, libc::SYS_mkdirat, CWD, a[0], [a[1], 0])
}

pub fn mkdirat(k: &mut Kernel, a: &Args) -> SysResult {
    at_call(k, libc::SYS_mkdirat, a[0], a[1], [a[2], 0])
}

pub fn chmod(k: &mut Kernel, a: &Args) -> SysResult {
    at_call(k, libc::SYS_fchmodat, CWD, a[0], [a[1], 0])
}

pub fn fchmodat(k: &mut Kernel, a: &Args) -> SysResult {
    at_call(k, libc::SYS_fchmodat, a[0], a[1], [a[2], 0])
}

pub fn fchmod(k: &mut Kernel, a: &Args) -> SysResult {
    let fd = k.proc.fds.host(a[0])?;
    // SAFETY: plain syscall on an owned descriptor.
    Ok(host(unsafe { libc::syscall(libc::SYS_fchmod, fd, a[1]) })?)
}

pub fn chown(k: &mut Kernel, a: &Args) -> SysResult {
    let dir = dirfd(k, CWD)?;
    let p = path(k, a[0])?;
    // SAFETY: plain syscall with a valid C string.
    Ok(host(unsafe {
        libc::syscall(libc::SYS_fchownat, dir, c(&p), a[1], a[2], 0)
    })?)
}

pub fn lchown(k: &mut Kernel, a: &Args) -> SysResult {
    let dir = dirfd(k, CWD)?;
    let p = path(k, a[0])?;
    let flags = libc::AT_SYMLINK_NOFOLLOW;
    // SAFETY: plain syscall with a valid C string.
    Ok(host(unsafe {
        libc::syscall(libc::SYS_fchownat, dir, c(&p), a[1], a[2], flags)
    })?)
}

pub fn fchownat(k: &mut Kernel, a: &Args) -> SysResult {
    let dir = dirfd(k, a[0])?;
    let p = path(k, a[1])?;
    // SAFETY: plain syscall with a valid C string.
    Ok(host(unsafe {
        libc::syscall(libc::SYS_fchownat, dir, c(&p), a[2], a[3], a[4])
    })?)
}

pub fn fchown(k: &mut Kernel, a: &Args) -> SysResult {
    let fd = k.proc.fds.host(a[0])?;
    // SAFETY: plain syscall on an owned descriptor.
    Ok(host(unsafe {
        libc::syscall(libc::SYS_fchown, fd, a[1], a[2])
    })?)
}

pub fn rename(k: &mut Kernel, a: &Args) -> SysResult {
    at2_call(k, libc::SYS_renameat2, [(CWD, a[0]), (CWD, a[1])], 0)
}

pub fn renameat(k: &mut Kernel, a: &Args) -> SysResult {
    at2_call(k, libc::SYS_renameat2, [(a[0], a[1]), (a[2], a[3])], 0)
}

pub fn renameat2(k: &mut Kernel, a: &Args) -> SysResult {
    at2_call(k, libc::SYS_renameat2, [(a[0], a[1]), (a[2], a[3])], a[4])
}

pub fn link(k: &mut Kernel, a: &Args) -> SysResult {
    at2_call(k, libc::SYS_linkat, [(CWD, a[0]), (CWD, a[1])], 0)
}

pub fn linkat(k: &mut Kernel, a: &Args) -> SysResult {
    at2_call(k, libc::SYS_linkat, [(a[0], a[1]), (a[2], a[3])], a[4])
}

/// A symlink's target is stored as written: it is not a path looked up now.
fn link_target(k: &mut Kernel, addr: u64) -> Result<CString, SysError> {
    let bytes = k.proc.mem.read_cstring(addr, PATH_MAX)?;
    Ok(CString::new(bytes).expect("read_cstring stops at NUL"))
}

pub fn symlink(k: &mut Kernel, a: &Args) -> SysResult {
    let target = link_target(k, a[0])?;
    let dir = dirfd(k, CWD)?;
    let p = path(k, a[1])?;
    // SAFETY: plain syscall with valid C strings.
    Ok(host(unsafe {
        libc::syscall(libc::SYS_symlinkat, c(&target), dir, c(&p))
    })?)
}

pub fn symlinkat(k: &mut Kernel, a: &Args) -> SysResult {
    let target = link_target(k, a[0])?;
    let dir = dirfd(k, a[1])?;
    let p = path(k, a[2])?;
    // SAFETY: plain syscall with valid C strings.
    Ok(host(unsafe {
        libc::syscall(libc::SYS_symlinkat, c(&target), dir, c(&p))
    })?)
}

pub fn utimensat(k: &mut Kernel, a: &Args) -> SysResult {
    let dir = dirfd(k, a[0])?;
    let p = optional_path(k, a[1])?;
    let times = if a[2] == 0 {
        None
    } else {
        Some(k.proc.mem.read_vec(a[2], 32)?)
    };
    let times_ptr = times.as_ref().map_or(0, |t| t.as_ptr() as libc::c_long);
    // SAFETY: plain syscall with a valid (or null) C string and a 2-timespec buffer (or null).
    Ok(host(unsafe {
        libc::syscall(libc::SYS_utimensat, dir, c_opt(&p), times_ptr, a[3])
    })?)
}

pub fn umask(k: &mut Kernel, a: &Args) -> SysResult {
    let mask = (a[0] & 0o777) as libc::mode_t;
    // SAFETY: umask cannot fail.
    unsafe { libc::umask(mask) };
    Ok(std::mem::replace(&mut k.proc.fs.umask, mask).into())
}

#[cfg(test)]
mod tests {
    use super::lexical;

    #[test]
    fn absolute_paths_are_resolved_by_name() {
        assert_eq!(lexical(b"//proc/./loadavg"), b"/proc/loadavg");
        assert_eq!(lexical(b"/sys/../proc/version/"), b"/proc/version");
        assert_eq!(lexical(b"/.."), b"/");
        assert_eq!(lexical(b"proc/./x"), b"proc/./x", "relative: as given");
    }
}
