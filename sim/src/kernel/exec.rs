//! execve: a new program in the running process. The image is loaded into a fresh user
//! half before anything of the old one goes, so a failure leaves the caller as it was, with
//! Linux's errno; past that point the other threads end, close-on-exec descriptors close,
//! caught signals go back to their defaults, and the CPU starts the new image.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use rand::RngCore;

use super::task::State;
use super::{Kernel, SysError, SysResult};
use crate::loader::{self, ExecArgs, LoadError};

/// Where the CPU starts the new image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Image {
    pub entry: u64,
    pub stack_pointer: u64,
    pub cr3: u64,
}

/// Linux's limit on `#!` interpreters that are scripts themselves (BINPRM_MAX_RECURSION).
const MAX_INTERPRETERS: usize = 4;
/// The room argv and envp may take: Linux's `ARG_MAX` for an 8 MiB stack (a quarter).
const ARG_MAX: usize = 2 << 20;

/// Reads a NULL-terminated array of string pointers (argv, envp); a NULL array is empty.
pub fn read_strings(k: &mut Kernel, mut addr: u64) -> Result<Vec<Vec<u8>>, Errno> {
    let mut strings = Vec::new();
    let mut total = 0;
    if addr == 0 {
        return Ok(strings);
    }
    loop {
        let pointer = k.proc.mem.read_u64(addr)?;
        if pointer == 0 {
            return Ok(strings);
        }
        let string = k.proc.mem.read_cstring(pointer, ARG_MAX)?;
        total += string.len() + 1 + 8;
        if total > ARG_MAX {
            return Err(Errno::E2BIG);
        }
        strings.push(string);
        addr += 8;
    }
}

/// Runs the program at host path `path` (`given` is the name the guest used) in the
/// running process. `Ok` means the new image is in place: [`Kernel::execed`] says where it
/// starts.
pub fn execve(
    k: &mut Kernel,
    path: &CString,
    given: Vec<u8>,
    mut argv: Vec<Vec<u8>>,
    envp: Vec<Vec<u8>>,
) -> SysResult {
    let mut path = Path::new(std::ffi::OsStr::from_bytes(path.as_bytes())).to_path_buf();
    let mut bytes = read_executable(&path)?;
    for _ in 0..MAX_INTERPRETERS {
        let Some((interpreter, argument)) = shebang(&bytes) else {
            break;
        };
        // binfmt_script: the interpreter, its one argument, the script's name, the rest.
        let script = path.as_os_str().as_bytes().to_vec();
        let rest = argv.split_off(argv.len().min(1));
        argv = std::iter::once(interpreter.clone())
            .chain(argument)
            .chain(std::iter::once(script))
            .chain(rest)
            .collect();
        path = Path::new(std::ffi::OsStr::from_bytes(&interpreter)).to_path_buf();
        bytes = read_executable(&path)?;
    }
    if shebang(&bytes).is_some() {
        return Err(Errno::ELOOP.into());
    }
    let args_shown: Vec<String> = argv
        .iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let mut random = [0u8; 16];
    k.proc.rng.fill_bytes(&mut random);
    let ids = &k.proc.credentials;
    let args = ExecArgs {
        argv,
        envp,
        execfn: given.clone(),
        random,
        ids: [
            ids.uid.real,
            ids.uid.effective,
            ids.gid.real,
            ids.gid.effective,
        ],
    };
    let private = crate::bt::layout::CACHE..crate::bt::layout::CACHE_END;
    let mut mem = k.proc.mem.successor(private)?;
    let sysroot = k.sysroot.clone();
    let loaded =
        loader::load(&mut mem, &path, &bytes, &args, sysroot.as_deref()).map_err(refusal)?;
    // The point of no return.
    let pid = k.proc.pid;
    k.end_other_threads();
    let cr3 = mem.cr3();
    k.execs += 1;
    k.proc.execed = true;
    super::syscalls::sync::exit_robust_list(k);
    k.task.robust_list = 0;
    k.give_back_vfork_memory();
    k.proc.mem = mem;
    k.proc.fds.close_on_exec();
    k.pipes_changed();
    k.proc.signals.reset_for_exec();
    k.proc.exe = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
    // Linux names the task after the file as the caller named it (a script's, not its
    // interpreter's; "exe" for /proc/self/exe).
    let base = given.rsplit(|&b| b == b'/').next().unwrap_or_default();
    k.proc.comm = base.iter().take(15).copied().collect();
    if let Some(log) = k.history.get_mut(&pid) {
        log.argv = args_shown;
        log.images += 1;
    }
    k.task.clear_child_tid = 0;
    k.task.signals.altstack = Default::default();
    k.task.signals.saved_mask = None;
    k.task.state = State::Runnable;
    let parent = k.proc.ppid;
    k.wake_parent(parent, pid);
    k.execed = Some(Image {
        entry: loaded.entry,
        stack_pointer: loaded.stack_pointer,
        cr3,
    });
    Ok(0)
}

/// The file's bytes, if the guest may execute it: EACCES for a directory or a file without
/// execute permission, as Linux answers.
fn read_executable(path: &Path) -> Result<Vec<u8>, SysError> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::ENOENT)?;
    // SAFETY: a valid C string.
    if unsafe { libc::access(c.as_ptr(), libc::X_OK) } != 0 {
        return Err(Errno::last().into());
    }
    if path.is_dir() {
        return Err(Errno::EACCES.into());
    }
    std::fs::read(path).map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)).into())
}

/// A `#!` line's interpreter and optional argument (Linux splits at the first blank).
fn shebang(bytes: &[u8]) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
    let line = bytes.strip_prefix(b"#!")?;
    let line = &line[..line.iter().position(|&b| b == b'\n').unwrap_or(line.len())];
    let blank = |b: &u8| *b == b' ' || *b == b'\t';
    let start = line.iter().position(|b| !blank(b))?;
    let line = &line[start..];
    let end = line.iter().position(blank).unwrap_or(line.len());
    let argument = line[end..].iter().position(|b| !blank(b)).map(|at| {
        let rest = &line[end + at..];
        let trimmed = rest.len() - rest.iter().rev().take_while(|b| blank(b)).count();
        rest[..trimmed].to_vec()
    });
    Some((line[..end].to_vec(), argument))
}

/// The errno Linux gives for a file the loader refuses.
fn refusal(error: LoadError) -> SysError {
    match error {
        LoadError::NotFound(_) => Errno::ENOENT.into(),
        LoadError::Unreadable { source, .. } => {
            Errno::from_raw(source.raw_os_error().unwrap_or(libc::EIO)).into()
        }
        LoadError::NoSpace(_) => Errno::ENOMEM.into(),
        // Linux: a missing interpreter is ENOENT, one it cannot use ELIBBAD.
        LoadError::Interpreter { source, .. } => match *source {
            LoadError::NotFound(_) => Errno::ENOENT.into(),
            LoadError::NoSpace(_) => Errno::ENOMEM.into(),
            _ => Errno::ELIBBAD.into(),
        },
        LoadError::NotElf(_)
        | LoadError::Truncated(_)
        | LoadError::Malformed { .. }
        | LoadError::Elf32(_)
        | LoadError::WrongMachine { .. }
        | LoadError::NotExecutable { .. } => Errno::ENOEXEC.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebang_lines_split_as_linux_splits_them() {
        assert_eq!(
            shebang(b"#!/bin/sh\necho"),
            Some((b"/bin/sh".to_vec(), None))
        );
        assert_eq!(
            shebang(b"#! /usr/bin/env  python3 -u \n"),
            Some((b"/usr/bin/env".to_vec(), Some(b"python3 -u".to_vec())))
        );
        assert_eq!(shebang(b"#!\n"), None);
        assert_eq!(shebang(b"\x7fELF"), None);
    }
}
