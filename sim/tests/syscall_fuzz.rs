//! Fuzzes the syscall layer: random syscalls from the table with random arguments, against a
//! real `Kernel` and `AddressSpace` (no CPU). No call may panic, and every result is a value
//! or a -errno that Linux defines.
//!
//! `cargo test` runs a short campaign. `RINGSIM_FUZZ_SYSCALLS=N` runs N calls instead, and
//! `RINGSIM_FUZZ_SEED=S` starts from seed S; a failure names the seed, the call and its
//! arguments. Calls act on the host as the simulator's do, from a temporary directory, with
//! /dev/null as standard streams: the calls that would change host files are denied or made
//! read-only (`DENIED`, `READ_ONLY`).

use std::os::fd::OwnedFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use nix::errno::Errno;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use sim::kernel::fd::{FdTable, OpenFile};
use sim::kernel::sigframe::{FxState, UserRegs};
use sim::kernel::signal::{AtSyscall, Delivered};
use sim::kernel::syscalls::ids::Credentials;
use sim::kernel::syscalls::time::KTIME_MAX;
use sim::kernel::table::TABLE;
use sim::kernel::task::{State, Wake};
use sim::kernel::tasks::Switch;
use sim::kernel::{Args, Kernel, OnUnsupported};
use sim::machine::physmem::PAGE_SIZE;
use sim::memory::{AddressSpace, Prot, TASK_SIZE, USER_END};
use syscalls::x86_64::Sysno;

/// Calls in the campaign `cargo test` runs: a few seconds in a release build.
const DEFAULT_CALLS: u64 = 4000;
const DEFAULT_SEED: u64 = 8;

/// Syscalls the fuzzer never makes, and why: each would change the host beyond the
/// temporary directory, or block the test.
const DENIED: &[(Sysno, &str)] = &[
    (
        Sysno::chdir,
        "moves the test's working directory out of its temporary one",
    ),
    (
        Sysno::fchdir,
        "moves the test's working directory out of its temporary one",
    ),
    (
        Sysno::umask,
        "sets the test process's umask, under which the other tests make their files",
    ),
    (Sysno::unlink, "removes host files"),
    (Sysno::unlinkat, "removes host files"),
    (Sysno::rmdir, "removes host directories"),
    (Sysno::rename, "moves host files"),
    (Sysno::renameat, "moves host files"),
    (Sysno::renameat2, "moves host files"),
    (Sysno::creat, "creates or truncates host files"),
    (Sysno::mkdir, "creates host directories"),
    (Sysno::mkdirat, "creates host directories"),
    (Sysno::link, "creates host files"),
    (Sysno::linkat, "creates host files"),
    (Sysno::symlink, "creates host files"),
    (Sysno::symlinkat, "creates host files"),
    (Sysno::chmod, "changes host files' modes"),
    (
        Sysno::fchmod,
        "changes host files' modes (an fd may name `..`)",
    ),
    (Sysno::fchmodat, "changes host files' modes"),
    (Sysno::chown, "changes host files' owners"),
    (
        Sysno::fchown,
        "changes host files' owners (an fd may name `..`)",
    ),
    (Sysno::fchownat, "changes host files' owners"),
    (Sysno::lchown, "changes host files' owners"),
    (Sysno::utimensat, "changes host files' times"),
    (Sysno::fork, MAKES_A_PROCESS),
    (Sysno::vfork, MAKES_A_PROCESS),
    (Sysno::clone, MAKES_A_PROCESS),
    (
        Sysno::execve,
        "runs a host file in place of the fuzzed process",
    ),
];

const MAKES_A_PROCESS: &str =
    "makes a task with no CPU here, a process copying the fuzzed address space (its \
     gigabyte mappings included)";

/// Syscalls whose flags argument (by index) loses every bit that could create or write a
/// file: `open` and `openat` open read-only.
const READ_ONLY: &[(Sysno, usize)] = &[(Sysno::open, 1), (Sysno::openat, 2)];

const WRITE_FLAGS: u64 = (libc::O_WRONLY
    | libc::O_RDWR
    | libc::O_CREAT
    | libc::O_TRUNC
    | libc::O_APPEND
    | (libc::O_TMPFILE & !libc::O_DIRECTORY)) as u64;

const RW: Prot = Prot(Prot::READ | Prot::WRITE);

/// Areas the fuzz maps before it starts, (start, pages, prot): pointers are drawn from them.
const AREAS: &[(u64, u64, Prot)] = &[
    (0x10000, 16, RW),
    (0x40_0000, 4, Prot(Prot::READ)),
    (0x50_0000, 4, Prot(Prot::READ | Prot::WRITE | Prot::EXEC)),
    (0x60_0000, 4, Prot::NONE),
    // Ends at TASK_SIZE, the top of what a process can map.
    (TASK_SIZE - 2 * PAGE_SIZE, 2, RW),
];

/// Strings planted in the first area, so path arguments sometimes name something.
const PLANTED: &[&[u8]] = &[
    b"file\0",
    b".\0",
    b"..\0",
    b"/proc/self/exe\0",
    b"/proc/self/fd/3\0",
    b"\0",
];

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v} is not a number"))
        })
        .unwrap_or(default)
}

/// A temporary directory that goes away with the test.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "ringsim-syscall-fuzz-{test}-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn dev_null() -> OwnedFd {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .expect("open /dev/null")
        .into()
}

fn kernel(dir: &TempDir, rng: &mut ChaCha20Rng) -> Kernel {
    let mut mem = AddressSpace::new().expect("reserve guest physical memory");
    for &(start, pages, prot) in AREAS {
        mem.map_fixed(start, pages * PAGE_SIZE, prot).unwrap();
    }
    let mut noise = vec![0u8; (AREAS[0].1 * PAGE_SIZE) as usize];
    rng.fill_bytes(&mut noise);
    let mut at = 0;
    for planted in PLANTED {
        noise[at..at + planted.len()].copy_from_slice(planted);
        at += planted.len() + 64;
    }
    let mut at = TIMESPECS_AT as usize;
    for &(seconds, nanos) in TIMESPECS {
        noise[at..at + 8].copy_from_slice(&seconds.to_le_bytes());
        noise[at + 8..at + 16].copy_from_slice(&nanos.to_le_bytes());
        at += 16;
    }
    mem.fill(AREAS[0].0, &noise);
    mem.init_brk(0x70_0000);

    let mut fds = FdTable::default();
    for fd in 0..3 {
        fds.install_at(fd, OpenFile::host(dev_null()), false);
    }
    let file = dir.0.join("file");
    std::fs::write(&file, b"ringsim syscall fuzz\n".repeat(300)).unwrap();
    fds.install(std::fs::File::open(&file).unwrap().into(), false, 3)
        .unwrap();
    let mut kernel = Kernel::new(
        mem,
        file,
        b"fuzz".to_vec(),
        ChaCha20Rng::seed_from_u64(rng.next_u64()),
        // An ordinary user's ids, whoever runs the test (the set*id calls are modelled).
        Credentials::new([1000; 3], [1000; 3], vec![1000]),
        translator::cpu::Vendor::Intel.model(),
        OnUnsupported::Enosys,
    );
    kernel.proc.fds = fds;
    kernel
}

/// Values where Linux's checks and the simulator's arithmetic change course.
const EDGES: &[u64] = &[
    0,
    1,
    PAGE_SIZE,
    TASK_SIZE,
    USER_END,
    i64::MAX as u64,
    1 << 63,
    0xffff_ffff_ffff_0000,
    0xffff_ffff_ffff_f000,
    u64::MAX,
];

/// What an argument is, for the syscalls whose arguments are mostly addresses, lengths and
/// times: the fuzz draws those more often, and shapes their arguments, so that a call gets
/// past its flag checks to its arithmetic.
#[derive(Clone, Copy)]
enum Kind {
    /// Anything ([`argument`]).
    Any,
    /// A page-aligned address, mostly where an area starts or inside one.
    Page,
    /// A length: a few pages, or one that page rounding or an addition carries past 2^64.
    Length,
    /// One of these, now and then anything.
    OneOf(&'static [u64]),
    /// A pointer to one of the `TIMESPECS`.
    Timespec,
}

use Kind::{Any, Length, OneOf, Page, Timespec};

const PROTS: &[u64] = &[0, 1, 3, 5, 7];
const MAP_FLAGS: &[u64] = &[0x22, 0x32, 0x02, 0x12, 0x100022, 0x21];
/// Descriptors: none, a standard stream, the open file.
const FDS: &[u64] = &[u64::MAX, 0, 3];

const SHAPES: &[(Sysno, [Kind; 6])] = &[
    (Sysno::brk, [Length, Any, Any, Any, Any, Any]),
    (
        Sysno::mmap,
        [
            Page,
            Length,
            OneOf(PROTS),
            OneOf(MAP_FLAGS),
            OneOf(FDS),
            Length,
        ],
    ),
    (Sysno::munmap, [Page, Length, Any, Any, Any, Any]),
    (
        Sysno::mremap,
        [Page, Length, Length, OneOf(&[0, 1]), Any, Any],
    ),
    (Sysno::mprotect, [Page, Length, OneOf(PROTS), Any, Any, Any]),
    (
        Sysno::madvise,
        [Page, Length, OneOf(&[0, 4, 8, 0xff]), Any, Any, Any],
    ),
    (Sysno::nanosleep, [Timespec, Page, Any, Any, Any, Any]),
    (
        Sysno::clock_nanosleep,
        [
            OneOf(&[0, 1, 2, 7]),
            OneOf(&[0, 1]),
            Timespec,
            Page,
            Any,
            Any,
        ],
    ),
    (
        Sysno::alarm,
        [OneOf(&[0, 1, 1 << 32, u64::MAX]), Any, Any, Any, Any, Any],
    ),
];

/// Timespecs planted after the strings: the longest sleep, and the ones just valid and invalid.
const TIMESPECS: &[(i64, i64)] = &[
    (i64::MAX, 0),
    (i64::MAX, 999_999_999),
    (0, 1),
    (1, 0),
    (0, 1_000_000_000),
    (-1, 0),
];
/// Where the timespecs start in the first area.
const TIMESPECS_AT: u64 = 0x800;

fn shaped(rng: &mut ChaCha20Rng, kind: Kind) -> u64 {
    if rng.random_range(0..8) == 0 {
        return argument(rng);
    }
    match kind {
        Any => argument(rng),
        Page => {
            let (start, pages, _) = AREAS[rng.random_range(0..AREAS.len())];
            start + rng.random_range(0..pages + 1) * PAGE_SIZE
        }
        Length => match rng.random_range(0..4) {
            0 => rng.random_range(1..8) * PAGE_SIZE,
            1 => rng.random_range(1..0x3000),
            2 => 0u64.wrapping_sub(rng.random_range(1..=16) * PAGE_SIZE),
            _ => EDGES[rng.random_range(0..EDGES.len())],
        },
        OneOf(values) => values[rng.random_range(0..values.len())],
        Timespec => AREAS[0].0 + TIMESPECS_AT + 16 * rng.random_range(0..TIMESPECS.len() as u64),
    }
}

/// One argument, biased towards the values that find bugs at edges.
fn argument(rng: &mut ChaCha20Rng) -> u64 {
    let near = |rng: &mut ChaCha20Rng, at: u64| {
        at.wrapping_add(rng.random_range(0..0x2000))
            .wrapping_sub(0x1000)
    };
    match rng.random_range(0..10) {
        0 => 0,
        9 => EDGES[rng.random_range(0..EDGES.len())],
        1 => rng.random_range(0..64),
        2 => rng.random_range(0..64) * PAGE_SIZE,
        // Lengths that page rounding carries past 2^64, and page-aligned ones just short of it.
        3 if rng.random() => u64::MAX - rng.random_range(0..0x2000),
        3 => 0u64.wrapping_sub(rng.random_range(1..=16) * PAGE_SIZE),
        4 => near(rng, USER_END),
        5 => near(rng, TASK_SIZE),
        6 => {
            let (start, pages, _) = AREAS[rng.random_range(0..AREAS.len())];
            if rng.random() {
                start + rng.random_range(0..pages) * PAGE_SIZE
            } else {
                start + rng.random_range(0..pages * PAGE_SIZE + 64)
            }
        }
        7 => {
            let power = 1 << rng.random_range(0..64);
            near(rng, power)
        }
        _ => rng.next_u64(),
    }
}

fn describe(sysno: Sysno, args: &Args) -> String {
    let args: Vec<String> = args.iter().map(|a| format!("{a:#x}")).collect();
    format!("{}({})", sysno.name(), args.join(", "))
}

#[test]
fn random_syscalls_never_panic_and_answer_a_value_or_an_errno() {
    let calls = env_u64("RINGSIM_FUZZ_SYSCALLS", DEFAULT_CALLS);
    let seed = env_u64("RINGSIM_FUZZ_SEED", DEFAULT_SEED);
    let dir = TempDir::new("random");
    // No other test of this binary depends on the working directory.
    std::env::set_current_dir(&dir.0).unwrap();

    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut k = kernel(&dir, &mut rng);
    let rows: Vec<_> = TABLE
        .iter()
        .filter(|row| DENIED.iter().all(|(denied, _)| *denied != row.sysno))
        .collect();
    let (mut errors, mut unsupported) = (0u64, 0u64);
    for call in 0..calls {
        let (sysno, kinds) = if rng.random_range(0..3) == 0 {
            SHAPES[rng.random_range(0..SHAPES.len())]
        } else {
            (rows[rng.random_range(0..rows.len())].sysno, [Any; 6])
        };
        let mut args: Args = kinds.map(|kind| shaped(&mut rng, kind));
        // Lengths and addresses often come in related pairs (mremap's old and new length).
        for at in 1..args.len() {
            if rng.random_range(0..4) == 0 {
                args[at] = args[at - 1].wrapping_add(rng.random_range(0..4) * PAGE_SIZE);
            }
        }
        for &(_, at) in READ_ONLY.iter().filter(|(s, _)| *s == sysno) {
            args[at] &= !WRITE_FLAGS;
        }
        let what = describe(sysno, &args);
        let dispatched = catch_unwind(AssertUnwindSafe(|| {
            k.dispatch(sysno.id() as u64, &args, 0x40_0000)
        }))
        .unwrap_or_else(|_| panic!("seed {seed}, call {call}: {what} panicked"));
        let dispatched = dispatched
            .unwrap_or_else(|u| panic!("seed {seed}, call {call}: {what} stopped: {}", u.what));
        // Tasks it made have no CPU here; a call that must wait is as good as done.
        k.spawned.clear();
        let Some(dispatched) = dispatched else {
            k.task.state = State::Runnable;
            continue;
        };
        unsupported += u64::from(dispatched.enosys);
        let ret = dispatched.ret as i64;
        // A call cut short by a signal may return a kernel-internal value (ERESTART*),
        // which only a tracer sees: the signal's delivery settles it.
        if (-4095..0).contains(&ret) && k.first_exit.is_none() && !k.signal_pending() {
            errors += 1;
            let errno = Errno::from_raw(-ret as i32);
            assert_ne!(
                errno,
                Errno::UnknownErrno,
                "seed {seed}, call {call}: {what} returned {ret}, not a Linux errno"
            );
        }
        assert!(
            k.proc.mem.vma_at(TASK_SIZE).is_none(),
            "seed {seed}, call {call}: {what} mapped the page above TASK_SIZE"
        );
        // The process lives on whatever the call did; time moves as the machine moves it
        // (an overflow here panics, as it would in the machine).
        k.first_exit = None;
        k.task.state = State::Runnable;
        k.cpu_ns += 1000;
        k.elapsed_ns = k.cpu_ns + k.slept_ns;
        assert!(
            k.slept_ns <= KTIME_MAX,
            "seed {seed}, call {call}: {what} slept past KTIME_MAX"
        );
        let _ = k.proc.mem.take_sync();
    }
    eprintln!(
        "syscall fuzz: seed {seed}, {calls} calls, {errors} errors, {unsupported} unsupported ({})",
        dir.0.as_os_str().to_string_lossy()
    );
    assert!(
        errors < calls,
        "every call failed: the arguments never reach the handlers' paths"
    );
}

#[test]
fn denied_and_read_only_rows_name_syscalls_of_the_table() {
    let in_table = |sysno: Sysno| TABLE.iter().any(|row| row.sysno == sysno);
    for (sysno, reason) in DENIED {
        assert!(in_table(*sysno), "{} ({reason}) has no row", sysno.name());
    }
    for (sysno, _) in SHAPES {
        assert!(in_table(*sysno), "{} has no row", sysno.name());
    }
    for (sysno, _) in READ_ONLY {
        assert!(in_table(*sysno), "{} has no row", sysno.name());
    }
}

/// Runs nanosleep on the timespec at `timespec`: the task blocks, and with no other task
/// the scheduler moves the clock to the sleep's end or to an alarm first. Returns what the
/// call ends with.
fn sleep_to_the_end(k: &mut Kernel, timespec: u64) -> u64 {
    let nanosleep = Sysno::nanosleep.id() as u64;
    let blocked = k.dispatch(nanosleep, &[timespec, 0, 0, 0, 0, 0], 0x40_0000);
    assert!(matches!(blocked, Ok(None)), "the sleep blocks");
    match k.switch(false) {
        Switch::To {
            resume: Some((_, Wake::Return(ret))),
        } => ret,
        other => panic!("the sleeper wakes: {other:?}"),
    }
}

/// Runs one syscall on `k` and returns RAX.
fn call(k: &mut Kernel, sysno: Sysno, args: Args) -> u64 {
    k.dispatch(sysno.id() as u64, &args, 0x40_0000)
        .unwrap_or_else(|u| panic!("{} stopped: {}", sysno.name(), u.what))
        .unwrap_or_else(|| panic!("{} blocked", sysno.name()))
        .ret
}

fn errno(errno: Errno) -> u64 {
    (errno as u64).wrapping_neg()
}

/// The mremap of issue 8 (item D), which overflowed: Linux 6.1 answers EFAULT, whether the
/// old address is mapped (the old length passes its area's end) or not.
#[test]
fn mremap_from_near_2_64_to_near_2_64_is_efault() {
    let dir = TempDir::new("mremap");
    let mut k = kernel(&dir, &mut ChaCha20Rng::seed_from_u64(0));
    for old in [0x10000, 0x20000] {
        let args = [old, 0xffff_ffff_ffff_0000, 0xffff_ffff_ffff_f000, 0, 0, 0];
        assert_eq!(call(&mut k, Sysno::mremap, args), errno(Errno::EFAULT));
    }
}

/// `nanosleep({INT64_MAX, 0})` sleeps until the clock saturates at KTIME_MAX and returns,
/// and the clock goes on from there without wrapping.
#[test]
fn a_sleep_for_ever_saturates_the_clock() {
    let dir = TempDir::new("sleep");
    let mut k = kernel(&dir, &mut ChaCha20Rng::seed_from_u64(0));
    let forever = AREAS[0].0 + TIMESPECS_AT;
    assert_eq!(sleep_to_the_end(&mut k, forever), 0);
    assert_eq!(k.elapsed_ns, KTIME_MAX);
    k.cpu_ns += 1000;
    k.elapsed_ns = k.cpu_ns + k.slept_ns;
    let out = AREAS[0].0 + 0x900;
    let realtime = libc::CLOCK_REALTIME as u64;
    assert_eq!(
        call(&mut k, Sysno::clock_gettime, [realtime, out, 0, 0, 0, 0]),
        0
    );
}

/// With an alarm pending, a sleep for ever lasts until the alarm, whose SIGALRM ends the
/// process; the sleep answers what Linux's does then (only a tracer sees it).
#[test]
fn an_alarm_ends_a_sleep_for_ever() {
    let dir = TempDir::new("alarm");
    let mut k = kernel(&dir, &mut ChaCha20Rng::seed_from_u64(0));
    assert_eq!(call(&mut k, Sysno::alarm, [5, 0, 0, 0, 0, 0]), 0);
    assert_eq!(call(&mut k, Sysno::alarm, [2, 0, 0, 0, 0, 0]), 5);
    let forever = AREAS[0].0 + TIMESPECS_AT;
    let interrupted = sleep_to_the_end(&mut k, forever);
    assert_eq!(interrupted, 516u64.wrapping_neg(), "ERESTART_RESTARTBLOCK");
    assert_eq!(k.elapsed_ns, 2_000_000_000);
    let at = Some(AtSyscall {
        nr: Sysno::nanosleep.id() as u64,
    });
    let regs = UserRegs {
        rax: interrupted,
        ..UserRegs::default()
    };
    assert!(matches!(
        k.deliver_signals(regs, &FxState::INIT, at),
        Delivered::Ended
    ));
    assert!(k.first_exit.is_some());
}

/// A file mapping is filled a page at a time from the file: whole pages, and the partial
/// last one with zeros after the file's end, from an offset; the pages past that are not
/// there to read (SIGBUS to the program, EFAULT to the kernel's copy).
#[test]
fn a_file_mapping_larger_than_the_file_reads_the_file_and_zeros() {
    let dir = TempDir::new("file");
    let mut k = kernel(&dir, &mut ChaCha20Rng::seed_from_u64(0));
    let contents: Vec<u8> = (0..3 * PAGE_SIZE + 100).map(|i| (i % 251) as u8).collect();
    let path = dir.0.join("pages");
    std::fs::write(&path, &contents).unwrap();
    let fd = k
        .proc
        .fds
        .install(std::fs::File::open(&path).unwrap().into(), false, 0)
        .unwrap();
    let len = 1 << 30;
    let private = libc::MAP_PRIVATE as u64;
    let start = call(&mut k, Sysno::mmap, [0, len, 1, private, fd, PAGE_SIZE]);
    assert!(start < TASK_SIZE, "mmap failed: {}", start as i64);
    let expected = &contents[PAGE_SIZE as usize..];
    assert_eq!(
        k.proc.mem.read_vec(start, expected.len()).unwrap(),
        expected
    );
    let end = start + expected.len() as u64;
    let rest_of_page = PAGE_SIZE - end % PAGE_SIZE;
    let after = k.proc.mem.read_vec(end, rest_of_page as usize).unwrap();
    assert!(after.iter().all(|&b| b == 0));
    let past = k.proc.mem.read_vec(end + rest_of_page, 1);
    assert_eq!(past, Err(nix::errno::Errno::EFAULT));
    assert_eq!(call(&mut k, Sysno::munmap, [start, len, 0, 0, 0, 0]), 0);
}

/// A writable MAP_SHARED file mapping is refused, with a message naming the file.
#[test]
fn a_writable_shared_file_mapping_is_refused_naming_the_file() {
    let dir = TempDir::new("shared");
    let mut k = kernel(&dir, &mut ChaCha20Rng::seed_from_u64(0));
    k.on_unsupported = OnUnsupported::Stop;
    let path = dir.0.join("shared-file");
    std::fs::write(&path, [0u8; 4096]).unwrap();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let fd = k.proc.fds.install(file.into(), false, 0).unwrap();
    let shared = libc::MAP_SHARED as u64;
    let read_write = (libc::PROT_READ | libc::PROT_WRITE) as u64;
    let refused = k
        .dispatch(
            Sysno::mmap.id() as u64,
            &[0, 4096, read_write, shared, fd, 0],
            0x40_0000,
        )
        .err()
        .expect("refused");
    assert!(
        refused.what.contains("writable MAP_SHARED mapping of"),
        "{}",
        refused.what
    );
    assert!(refused.what.contains("shared-file"), "{}", refused.what);
}
