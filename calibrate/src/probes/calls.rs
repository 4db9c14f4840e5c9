//! The syscall-class probes: one call (or a pair, halved) timed in a loop, every call by raw
//! syscall so that no libc wrapper picks another syscall or adds work; and the pipe halves,
//! timed call by call.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::fcntl::OFlag;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Sample, Session, Workload};
use crate::clock::ticks;
use crate::error::expect;
use crate::fixture::{Fixture, PAGE};
use crate::CalibrateError;

/// One iteration of a probe: a call or a pair on `bytes` bytes, checked.
type Op = fn(&Fixture, usize) -> Result<(), CalibrateError>;

/// A probe whose iteration is `op`, making `calls` calls.
struct Each<'a> {
    fixture: &'a Fixture,
    calls: u64,
    op: Op,
}

pub(super) fn each(
    session: &Session,
    calls: u64,
    op: Op,
) -> Result<Box<dyn Workload + '_>, CalibrateError> {
    Ok(Box::new(Each {
        fixture: &session.fixture,
        calls,
        op,
    }))
}

impl Workload for Each<'_> {
    fn round(&mut self, iterations: u64, bytes: usize) -> Result<Sample, CalibrateError> {
        let start = ticks();
        for _ in 0..iterations {
            (self.op)(self.fixture, bytes)?;
        }
        Ok(Sample::new(
            (ticks() - start) as f64,
            iterations * self.calls,
        ))
    }
}

/// A raw syscall's result as a signed count (syscall returns -1 and sets errno on failure).
macro_rules! sys {
    ($number:expr $(, $arg:expr)*) => {
        // SAFETY: every use passes the syscall's arguments as the kernel reads them: fds
        // the fixture holds open, pointers to live buffers of at least the length given.
        unsafe { libc::syscall($number $(, $arg)*) }
    };
}

pub(super) fn null_call(_: &Fixture, _: usize) -> Result<(), CalibrateError> {
    // getppid cannot fail, and its answer does not matter.
    sys!(libc::SYS_getppid);
    Ok(())
}

pub(super) fn identity(_: &Fixture, _: usize) -> Result<(), CalibrateError> {
    sys!(libc::SYS_getpid);
    sys!(libc::SYS_getuid);
    Ok(())
}

/// Moves `bytes` between the buffer and `fd` by syscall `number`, checked to move them all:
/// pread64 and pwrite64 at offset 0; read and write ignore that fourth argument.
fn transfer(
    probe: &'static str,
    (call, number): (&'static str, libc::c_long),
    fd: libc::c_long,
    fixture: &Fixture,
    bytes: usize,
) -> Result<(), CalibrateError> {
    let moved = sys!(number, fd, fixture.buffer.ptr, bytes, 0 as libc::c_long);
    expect(probe, call, moved, bytes as libc::c_long)
}

pub(super) fn file_read(fixture: &Fixture, bytes: usize) -> Result<(), CalibrateError> {
    let call = ("pread64", libc::SYS_pread64);
    transfer("file_read", call, fixture.data_fd(), fixture, bytes)
}

pub(super) fn file_write(fixture: &Fixture, bytes: usize) -> Result<(), CalibrateError> {
    let call = ("pwrite64", libc::SYS_pwrite64);
    transfer("file_write", call, fixture.data_fd(), fixture, bytes)
}

pub(super) fn dev_null(fixture: &Fixture, bytes: usize) -> Result<(), CalibrateError> {
    let call = ("write", libc::SYS_write);
    transfer("dev_null", call, fixture.dev_null_fd(), fixture, bytes)
}

pub(super) fn open_close(fixture: &Fixture, _: usize) -> Result<(), CalibrateError> {
    let flags = libc::c_long::from(libc::O_RDONLY | libc::O_CLOEXEC);
    let fd = sys!(
        libc::SYS_openat,
        libc::c_long::from(libc::AT_FDCWD),
        fixture.data_path.as_ptr(),
        flags
    );
    if fd < 0 {
        return Err(CalibrateError::last_os("open_stat", "openat"));
    }
    expect("open_stat", "close", sys!(libc::SYS_close, fd), 0)
}

pub(super) fn fstat(fixture: &Fixture, _: usize) -> Result<(), CalibrateError> {
    let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
    expect(
        "fstat",
        "fstat",
        sys!(libc::SYS_fstat, fixture.data_fd(), stat.as_mut_ptr()),
        0,
    )
}

pub(super) fn newfstatat(fixture: &Fixture, _: usize) -> Result<(), CalibrateError> {
    let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
    let done = sys!(
        libc::SYS_newfstatat,
        libc::c_long::from(libc::AT_FDCWD),
        fixture.data_path.as_ptr(),
        stat.as_mut_ptr(),
        0 as libc::c_long
    );
    expect("newfstatat", "newfstatat", done, 0)
}

/// A fresh private anonymous read-write mapping of `length` bytes, for `probe`.
fn map_anonymous(probe: &'static str, length: usize) -> Result<libc::c_long, CalibrateError> {
    let area = sys!(
        libc::SYS_mmap,
        std::ptr::null_mut::<libc::c_void>(),
        length,
        libc::c_long::from(libc::PROT_READ | libc::PROT_WRITE),
        libc::c_long::from(libc::MAP_PRIVATE | libc::MAP_ANONYMOUS),
        -1 as libc::c_long,
        0 as libc::c_long
    );
    if area == -1 {
        return Err(CalibrateError::last_os(probe, "mmap"));
    }
    Ok(area)
}

pub(super) fn mmap_munmap(_: &Fixture, _: usize) -> Result<(), CalibrateError> {
    let page = map_anonymous("mmap_munmap", PAGE)?;
    expect(
        "mmap_munmap",
        "munmap",
        sys!(libc::SYS_munmap, page, PAGE),
        0,
    )
}

/// Maps `pages` anonymous pages (one if none), writes a byte to each, and unmaps them:
/// each write is a page fault that gives the page a zeroed frame. Huge pages are refused
/// (MADV_NOHUGEPAGE), so that each page faults on its own whatever the system's setting.
pub(super) fn page_faults(_: &Fixture, pages: usize) -> Result<(), CalibrateError> {
    let length = pages.max(1) * PAGE;
    let area = map_anonymous("page_fault", length)?;
    touch_and_unmap("page_fault", area, length, (0..pages).step_by(1), |page| {
        // SAFETY: the page lies within the area just mapped readable and writable.
        unsafe { page.write_volatile(1) }
    })
}

/// The pages a read fault on a file page maps around it: Linux's default
/// `fault_around_bytes` (64 KiB), in pages.
const FAULT_AROUND_PAGES: usize = 16;

/// Maps `pages` pages (one if none) of a file in the page cache privately, huge pages
/// refused, reads a byte of the first page of each `FAULT_AROUND_PAGES` window, and unmaps
/// them: each read is a page fault that maps the window's pages, which munmap unmaps.
pub(super) fn fault_around(fixture: &Fixture, pages: usize) -> Result<(), CalibrateError> {
    let length = pages.max(1) * PAGE;
    let area = sys!(
        libc::SYS_mmap,
        std::ptr::null_mut::<libc::c_void>(),
        length,
        libc::c_long::from(libc::PROT_READ),
        libc::c_long::from(libc::MAP_PRIVATE),
        fixture.mapped_file_fd(),
        0 as libc::c_long
    );
    if area == -1 {
        return Err(CalibrateError::last_os("fault_around", "mmap"));
    }
    let windows = (0..pages).step_by(FAULT_AROUND_PAGES);
    touch_and_unmap("fault_around", area, length, windows, |page| {
        // SAFETY: the page lies within the area just mapped readable, and within the file.
        unsafe { page.read_volatile() };
    })
}

/// Refuses huge pages for the `length` bytes mapped at `area` (a page cache of large
/// folios would be mapped 2 MiB at a fault where the area is aligned so, and anonymous
/// memory likewise), touches the first byte of each of `pages`, and unmaps the area.
fn touch_and_unmap(
    probe: &'static str,
    area: libc::c_long,
    length: usize,
    pages: impl Iterator<Item = usize>,
    touch: impl Fn(*mut u8),
) -> Result<(), CalibrateError> {
    let advised = sys!(
        libc::SYS_madvise,
        area,
        length,
        libc::c_long::from(libc::MADV_NOHUGEPAGE)
    );
    expect(probe, "madvise", advised, 0)?;
    let start = area as *mut u8;
    for page in pages {
        // SAFETY: the callers' pages lie within the area.
        touch(unsafe { start.add(page * PAGE) });
    }
    expect(probe, "munmap", sys!(libc::SYS_munmap, area, length), 0)
}

pub(super) fn mprotect(fixture: &Fixture, _: usize) -> Result<(), CalibrateError> {
    let page = fixture.guarded_page();
    for prot in [libc::PROT_READ, libc::PROT_READ | libc::PROT_WRITE] {
        let done = sys!(libc::SYS_mprotect, page, PAGE, libc::c_long::from(prot));
        expect("mprotect", "mprotect", done, 0)?;
    }
    Ok(())
}

pub(super) fn futex_wake(fixture: &Fixture, _: usize) -> Result<(), CalibrateError> {
    let woken = sys!(
        libc::SYS_futex,
        fixture.futex_word.as_ptr(),
        libc::c_long::from(libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG),
        1 as libc::c_long
    );
    expect("futex", "futex", woken, 0)
}

/// The timer's own cost, which every call timed one by one includes. The pipe calls are
/// timed so: a write needs a pipe with room, a read a pipe the write filled.
pub(super) struct Timer;

impl Workload for Timer {
    fn round(&mut self, iterations: u64, _: usize) -> Result<Sample, CalibrateError> {
        let mut total = 0;
        for _ in 0..iterations {
            let start = ticks();
            total += ticks() - start;
        }
        Ok(Sample::new(total as f64, iterations))
    }
}

/// Dependent adds in a loop: each reads the previous one's result, and an add's latency
/// is one core cycle on every x86-64 core, so the ticks per add are TSC ticks per core
/// cycle, whatever clock (turbo, a power limit) the core runs at.
pub(super) struct DependentAdds;

/// Adds per pass of the loop: enough that its counter and branch, which run beside the
/// chain, never bound it.
const ADDS_PER_PASS: u64 = 16;

impl Workload for DependentAdds {
    fn round(&mut self, iterations: u64, _: usize) -> Result<Sample, CalibrateError> {
        let passes = iterations.div_ceil(ADDS_PER_PASS).max(1);
        let mut value: u64 = 0;
        // A register, not an immediate: Intel cores since Golden Cove fold chains of
        // `add reg, imm` at rename, several a cycle (0.14 ticks a "cycle" on a Xeon here).
        let step: u64 = std::hint::black_box(1);
        let start = ticks();
        for _ in 0..passes {
            // SAFETY: register arithmetic on `value` only: no memory, stack or flags the
            // compiler relies on.
            unsafe {
                std::arch::asm!(
                    "add {v}, {s}", "add {v}, {s}", "add {v}, {s}", "add {v}, {s}",
                    "add {v}, {s}", "add {v}, {s}", "add {v}, {s}", "add {v}, {s}",
                    "add {v}, {s}", "add {v}, {s}", "add {v}, {s}", "add {v}, {s}",
                    "add {v}, {s}", "add {v}, {s}", "add {v}, {s}", "add {v}, {s}",
                    v = inout(reg) value,
                    s = in(reg) step,
                    options(nomem, nostack),
                );
            }
        }
        let elapsed = ticks() - start;
        std::hint::black_box(value);
        Ok(Sample::new(elapsed as f64, passes * ADDS_PER_PASS))
    }
}

/// Runs a loop whose branch tests the low bit of each byte it loads, over random bytes and
/// over bytes that always take it; a round is the two loops' difference, its operations
/// the mispredictions that difference is for: half the random bytes' branches, since no
/// predictor foresees random data better than a coin, and the same code without them
/// costs the other loop's time.
pub(super) struct BranchOnBytes {
    random: Vec<u8>,
    taken: Vec<u8>,
    /// Fresh bytes each round, so that no predictor learns a sequence it met in the round
    /// before.
    rng: ChaCha8Rng,
}

impl BranchOnBytes {
    pub(super) fn new() -> Self {
        Self {
            random: Vec::new(),
            taken: Vec::new(),
            rng: ChaCha8Rng::seed_from_u64(0),
        }
    }
}

/// Ticks to run the branch over each of `bytes`.
fn branch_over(bytes: &[u8]) -> u64 {
    let mut sum: u64 = 0;
    let start = ticks();
    // SAFETY: reads `bytes.len()` bytes from `bytes`, registers and flags only otherwise.
    unsafe {
        std::arch::asm!(
            "2:",
            "movzx {byte:e}, byte ptr [{base} + {index}]",
            "test {byte:e}, 1",
            "jz 3f",
            "add {sum}, {index}",
            "3:",
            "inc {index}",
            "cmp {index}, {end}",
            "jb 2b",
            base = in(reg) bytes.as_ptr(),
            index = inout(reg) 0usize => _,
            end = in(reg) bytes.len(),
            sum = inout(reg) sum,
            byte = out(reg) _,
            options(readonly, nostack),
        );
    }
    let elapsed = ticks() - start;
    std::hint::black_box(sum);
    elapsed
}

impl Workload for BranchOnBytes {
    fn round(&mut self, iterations: u64, _: usize) -> Result<Sample, CalibrateError> {
        let bytes = iterations as usize;
        self.random.resize(bytes, 0);
        self.rng.fill_bytes(&mut self.random);
        self.taken.resize(bytes, 1);
        let taken = branch_over(&self.taken);
        let random = branch_over(&self.random);
        Ok(Sample::new(
            random.saturating_sub(taken) as f64,
            (iterations / 2).max(1),
        ))
    }
}

#[derive(Clone, Copy, PartialEq)]
pub(super) enum Half {
    Write,
    Read,
}

/// Writes N bytes into an empty channel (a pipe, a socket connection) and reads them back,
/// timing one of the two halves.
struct StreamHalf<'a> {
    fixture: &'a Fixture,
    read_end: OwnedFd,
    write_end: OwnedFd,
    half: Half,
    timer: f64,
    /// The probes of the two halves, for errors: the write's and the read's.
    probes: [&'static str; 2],
}

pub(super) fn pipe_half(
    session: &Session,
    half: Half,
) -> Result<Box<dyn Workload + '_>, CalibrateError> {
    // Non-blocking, so that a pipe too small for the largest size fails instead of hanging.
    let (read_end, write_end) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).map_err(|errno| {
            CalibrateError::Call {
                probe: "pipe",
                call: "pipe2",
                source: errno.into(),
            }
        })?;
    stream_half(
        session,
        [read_end, write_end],
        ["pipe_write", "pipe_read"],
        half,
    )
}

/// A probe of one half of a channel's write-then-read, `ends` its reading and writing ends.
pub(super) fn stream_half<'a>(
    session: &'a Session,
    ends: [OwnedFd; 2],
    probes: [&'static str; 2],
    half: Half,
) -> Result<Box<dyn Workload + 'a>, CalibrateError> {
    let [read_end, write_end] = ends;
    Ok(Box::new(StreamHalf {
        fixture: &session.fixture,
        read_end,
        write_end,
        half,
        timer: session.timer,
        probes,
    }))
}

impl Workload for StreamHalf<'_> {
    fn round(&mut self, iterations: u64, bytes: usize) -> Result<Sample, CalibrateError> {
        let buffer = self.fixture.buffer.ptr;
        let (write_end, read_end) = (self.write_end.as_raw_fd(), self.read_end.as_raw_fd());
        let mut total = 0;
        for _ in 0..iterations {
            let start = ticks();
            let written = sys!(
                libc::SYS_write,
                libc::c_long::from(write_end),
                buffer,
                bytes
            );
            let between = ticks();
            // Checked before the read sets errno again.
            expect(self.probes[0], "write", written, bytes as libc::c_long)?;
            let read = sys!(libc::SYS_read, libc::c_long::from(read_end), buffer, bytes);
            let end = ticks();
            expect(self.probes[1], "read", read, bytes as libc::c_long)?;
            total += match self.half {
                Half::Write => between - start,
                Half::Read => end - between,
            };
        }
        Ok(Sample::new(
            total as f64 - self.timer * iterations as f64,
            iterations,
        ))
    }
}
