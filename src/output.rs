//! The files a run writes (report, syscall trace, translation dump). Each is named before
//! the run, by its directory, held open, and its name: a path that could not be written
//! fails before a long run, the guest's chdir and umask cannot move it, and nothing is
//! made until the run has something to write, so the guest never sees the file, a failed
//! run leaves none, and an existing one stays as it was.

use std::ffi::OsString;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, openat, AtFlags, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::{faccessat, AccessFlags};

pub struct Output {
    /// The directory, opened for its path only (O_PATH).
    dir: OwnedFd,
    name: OsString,
    path: PathBuf,
    /// What it holds, for messages.
    what: &'static str,
}

impl Output {
    /// Names the output at `path`; fails, with a one-line message, if it could not be
    /// written: its directory missing, or it or the directory not writable.
    pub fn name(path: &Path, what: &'static str) -> Result<Output, String> {
        let fail =
            |reason: String| format!("{}: cannot write the {what}: {reason}", path.display());
        let name = path
            .file_name()
            .ok_or_else(|| fail("not a file name".into()))?;
        let parent = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let dir = open(parent, flags, Mode::empty()).map_err(|e| fail(e.desc().into()))?;
        // The file if it is there, else the directory it would be made in.
        let writable = match faccessat(&dir, name, AccessFlags::W_OK, AtFlags::empty()) {
            Err(Errno::ENOENT) => faccessat(&dir, ".", AccessFlags::W_OK, AtFlags::empty()),
            other => other,
        };
        writable.map_err(|e| fail(e.desc().into()))?;
        Ok(Output {
            dir,
            name: name.to_owned(),
            path: path.to_owned(),
            what,
        })
    }

    /// Writes `bytes` as the file's contents, making it if need be (a device such as
    /// /dev/null is written, not replaced).
    pub fn write(&self, bytes: &[u8]) -> Result<(), String> {
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC | OFlag::O_CLOEXEC;
        openat(
            &self.dir,
            self.name.as_os_str(),
            flags,
            Mode::from_bits_truncate(0o666),
        )
        .map(std::fs::File::from)
        .and_then(|mut file| {
            file.write_all(bytes)
                .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(Errno::EIO as i32)))
        })
        .map_err(|e| {
            format!(
                "{}: cannot write the {}: {}",
                self.path.display(),
                self.what,
                e.desc()
            )
        })
    }
}
