//! What the probes work on: a file in the page cache, /dev/null, the exit program and the
//! spawner that runs it, a buffer and pages, made once per run and removed after.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::AtomicU32;

use crate::elf::Program;
use crate::CalibrateError;

/// The largest transfer a sized probe makes, and the size of the file and buffer.
pub(crate) const LARGEST: usize = 64 * 1024;
pub(crate) const PAGE: usize = 4096;
/// The size of the file the fault_around probe maps: the most pages a paged probe takes.
pub(crate) const MAPPED_FILE: usize = 4096 * PAGE;

/// An anonymous mapping, unmapped on drop. Only the kernel and raw pointers touch it, so
/// syscalls may write into it while it is shared.
pub(crate) struct Mapping {
    pub ptr: *mut libc::c_void,
    pub len: usize,
}

impl Mapping {
    /// `len` bytes of anonymous memory with `prot`, private or (`MAP_SHARED`) shared with
    /// children.
    pub fn anonymous(
        len: usize,
        prot: libc::c_int,
        share: libc::c_int,
    ) -> Result<Mapping, CalibrateError> {
        // SAFETY: a fresh anonymous mapping at an address the kernel picks replaces nothing.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                share | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(CalibrateError::last_os("fixture", "mmap"));
        }
        Ok(Mapping { ptr, len })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping is ours and nothing refers to it once it is dropped.
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}

pub(crate) struct Fixture {
    /// A regular file of `LARGEST` bytes in the temp dir, written and read once, so that it
    /// is in the page cache.
    pub data: tempfile::NamedTempFile,
    pub data_path: CString,
    /// A regular file of `MAPPED_FILE` bytes in the temp dir, for the fault_around probe to
    /// map: written a page at a time, so that the page cache holds it in single pages, as
    /// it holds a program a linker wrote (a file written at once can be held in large
    /// folios, which map several times faster).
    pub mapped_file: tempfile::NamedTempFile,
    /// /dev/null opened for writing (never truncated, never removed).
    pub dev_null: File,
    /// Exits 0: the program process creation runs.
    pub exit_program: Program,
    /// Creates processes running the exit program, and times them.
    pub spawner: Program,
    /// `LARGEST` bytes, written once so that every page is present.
    pub buffer: Mapping,
    /// Three pages, PROT_NONE: the middle one is the mprotect probe's, the other two keep
    /// it from merging with whatever mapping lies next to it.
    pub guarded: Mapping,
    /// A futex word nobody waits on.
    pub futex_word: Box<AtomicU32>,
}

impl Fixture {
    pub fn create(dir: &Path) -> Result<Fixture, CalibrateError> {
        let temp_dir_error = |source| CalibrateError::TempDir {
            dir: dir.to_path_buf(),
            source,
        };
        let mut data = tempfile::Builder::new()
            .prefix("calibrate-data-")
            .tempfile_in(dir)
            .map_err(temp_dir_error)?;
        data.write_all(&[0x5a; LARGEST]).map_err(temp_dir_error)?;
        data.flush().map_err(temp_dir_error)?;
        std::fs::read(data.path()).map_err(temp_dir_error)?;
        let mut mapped_file = tempfile::Builder::new()
            .prefix("calibrate-mapped-")
            .tempfile_in(dir)
            .map_err(temp_dir_error)?;
        for _ in 0..MAPPED_FILE / PAGE {
            mapped_file
                .write_all(&[0x5a; PAGE])
                .map_err(temp_dir_error)?;
        }
        let dev_null = OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .map_err(|source| CalibrateError::Call {
                probe: "fixture",
                call: "open /dev/null",
                source,
            })?;
        let exit_program = Program::exit_in(dir, 0)?;
        let spawner = Program::spawner_in(dir, exit_program.path())?;
        let buffer = Mapping::anonymous(
            LARGEST,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE,
        )?;
        // SAFETY: the buffer is LARGEST writable bytes that nothing else refers to yet.
        unsafe { std::ptr::write_bytes(buffer.ptr.cast::<u8>(), 0xa5, LARGEST) };
        Ok(Fixture {
            data_path: c_path(data.path()),
            data,
            mapped_file,
            dev_null,
            exit_program,
            spawner,
            buffer,
            guarded: Mapping::anonymous(3 * PAGE, libc::PROT_NONE, libc::MAP_PRIVATE)?,
            futex_word: Box::new(AtomicU32::new(0)),
        })
    }

    pub fn data_fd(&self) -> libc::c_long {
        self.data.as_file().as_raw_fd().into()
    }

    pub fn mapped_file_fd(&self) -> libc::c_long {
        self.mapped_file.as_file().as_raw_fd().into()
    }

    pub fn dev_null_fd(&self) -> libc::c_long {
        self.dev_null.as_raw_fd().into()
    }

    /// The page the mprotect probe toggles.
    pub fn guarded_page(&self) -> *mut libc::c_void {
        // SAFETY: the mapping is three pages long, so one page in is inside it.
        unsafe { self.guarded.ptr.cast::<u8>().add(PAGE).cast() }
    }
}

/// A path as a C string (a Linux path holds no NUL, so none is lost).
fn c_path(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).unwrap_or_default()
}
