//! The probes with a partner on the same CPU (a thread or a forked child, which inherit the
//! pinned mask), and the ones run in children: process creation (in the spawner, a minimal
//! static parent, alone or holding pages) and brk.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use nix::fcntl::OFlag;
use nix::sys::resource::{getrusage, UsageWho};

use super::preemption::{process_run_delay_ns, run_delay_ns};
use super::{Sample, Session, Workload};
use crate::child::Child;
use crate::clock::ticks;
use crate::elf::SpawnerFailure;
use crate::fixture::{Mapping, PAGE};
use crate::CalibrateError;

type Started<'a> = Result<Box<dyn Workload + 'a>, CalibrateError>;

fn sched_yield() {
    // SAFETY: sched_yield takes no arguments and always succeeds.
    unsafe { libc::syscall(libc::SYS_sched_yield) };
}

/// Times `iterations` yields of this thread while a partner counts its own in `partner`:
/// every yield of either side is one syscall and, pinned, one switch.
fn yield_round(iterations: u64, partner: &AtomicU64) -> Sample {
    let before = partner.load(Ordering::Relaxed);
    let start = ticks();
    for _ in 0..iterations {
        sched_yield();
    }
    let ticks = (ticks() - start) as f64;
    let partner_yields = partner.load(Ordering::Relaxed) - before;
    Sample::new(ticks, iterations + partner_yields)
}

/// A thread of this process yielding in a loop until told to stop.
struct YieldThreads {
    partner_yields: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    partner: Option<JoinHandle<()>>,
}

pub(super) fn yield_threads(_: &Session) -> Started<'_> {
    let (partner_yields, stop) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let (yields, stopped) = (partner_yields.clone(), stop.clone());
    let partner = std::thread::Builder::new()
        .name("calibrate-yield".into())
        .spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                sched_yield();
                yields.fetch_add(1, Ordering::Relaxed);
            }
        })
        .map_err(|source| CalibrateError::Call {
            probe: "yield_threads",
            call: "spawn a thread",
            source,
        })?;
    Ok(Box::new(YieldThreads {
        partner_yields,
        stop,
        partner: Some(partner),
    }))
}

impl Workload for YieldThreads {
    fn round(&mut self, iterations: u64, _: usize) -> Result<Sample, CalibrateError> {
        Ok(yield_round(iterations, &self.partner_yields))
    }
}

impl Drop for YieldThreads {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(partner) = self.partner.take() {
            let _ = partner.join();
        }
    }
}

/// A forked child yielding in a loop, counting in a page it shares with us; killed on drop.
struct YieldProcesses {
    _child: Child,
    counter: Mapping,
}

impl YieldProcesses {
    fn partner_yields(&self) -> &AtomicU64 {
        // SAFETY: the mapping is a page, page-aligned, zero-filled, and lives as long as
        // `self`; the child and this process touch it only atomically.
        unsafe { &*self.counter.ptr.cast::<AtomicU64>() }
    }
}

pub(super) fn yield_processes(_: &Session) -> Started<'_> {
    let counter = Mapping::anonymous(PAGE, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED)?;
    let shared = counter.ptr.cast::<AtomicU64>();
    let child = Child::fork("yield_processes", || loop {
        sched_yield();
        // SAFETY: the shared page stays mapped in the child until it is killed.
        unsafe { &*shared }.fetch_add(1, Ordering::Relaxed);
    })?;
    Ok(Box::new(YieldProcesses {
        _child: child,
        counter,
    }))
}

impl Workload for YieldProcesses {
    fn round(&mut self, iterations: u64, _: usize) -> Result<Sample, CalibrateError> {
        Ok(yield_round(iterations, self.partner_yields()))
    }
}

/// A forked child that sends back each byte it gets; our ends of the two pipes.
struct PingPong {
    _child: Child,
    to_child: OwnedFd,
    from_child: OwnedFd,
}

fn pipe(probe: &'static str) -> Result<(OwnedFd, OwnedFd), CalibrateError> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|errno| CalibrateError::Call {
        probe,
        call: "pipe2",
        source: errno.into(),
    })
}

/// One byte through a raw read or write; true when it went.
fn one_byte(call: libc::c_long, fd: libc::c_int, byte: &mut u8) -> bool {
    // SAFETY: `byte` is one writable byte; `fd` is an open pipe end.
    unsafe { libc::syscall(call, libc::c_long::from(fd), byte as *mut u8, 1usize) == 1 }
}

pub(super) fn pipe_ping_pong(_: &Session) -> Started<'_> {
    let (child_reads, to_child) = pipe("pipe_ping_pong")?;
    let (from_child, child_writes) = pipe("pipe_ping_pong")?;
    let (input, output) = (child_reads.as_raw_fd(), child_writes.as_raw_fd());
    let child = Child::fork("pipe_ping_pong", || {
        let mut byte = 0;
        while one_byte(libc::SYS_read, input, &mut byte)
            && one_byte(libc::SYS_write, output, &mut byte)
        {}
        0
    })?;
    // Only the child holds its ends now, so its death is an end of file here, not a hang.
    drop((child_reads, child_writes));
    Ok(Box::new(PingPong {
        _child: child,
        to_child,
        from_child,
    }))
}

impl Workload for PingPong {
    fn round(&mut self, iterations: u64, _: usize) -> Result<Sample, CalibrateError> {
        let (to_child, from_child) = (self.to_child.as_raw_fd(), self.from_child.as_raw_fd());
        let mut byte = 1;
        let start = ticks();
        for _ in 0..iterations {
            if !(one_byte(libc::SYS_write, to_child, &mut byte)
                && one_byte(libc::SYS_read, from_child, &mut byte))
            {
                return Err(CalibrateError::Child {
                    probe: "pipe_ping_pong",
                    problem: "stopped answering".into(),
                });
            }
        }
        Ok(Sample::new((ticks() - start) as f64, iterations))
    }
}

/// Process creation timed by the spawner, a minimal static parent: one spawner per round,
/// run from here with its stdout a pipe that brings back its ticks.
struct CreateProcess<'a> {
    session: &'a Session,
    probe: &'static str,
    /// What a round's size adds to the parent.
    grows: fn(usize) -> Parent,
}

/// How long process creation waits for an ETXTBSY to pass: another thread's child forked
/// while the spawner's or the exit program's file was open for writing holds it until that
/// child execs.
const TEXT_BUSY_TRIES: u32 = 100;
const TEXT_BUSY_PAUSE: Duration = Duration::from_millis(10);

/// Why a spawner run timed nothing.
enum Refused<'a> {
    /// execve of this program (the spawner, or its child) failed with this errno.
    Exec(&'a Path, i32),
    Error(CalibrateError),
}

impl From<CalibrateError> for Refused<'_> {
    fn from(error: CalibrateError) -> Self {
        Refused::Error(error)
    }
}

impl Refused<'_> {
    fn into_error(self, probe: &'static str) -> CalibrateError {
        match self {
            Refused::Exec(program, errno) => {
                could_not_run(probe, program, std::io::Error::from_raw_os_error(errno))
            }
            Refused::Error(error) => error,
        }
    }
}

pub(super) fn create_process(session: &Session) -> Started<'_> {
    spawning(session, "create_process", Parent::with_pages)
}

pub(super) fn fork_per_page(session: &Session) -> Started<'_> {
    spawning(session, "fork_per_page", Parent::with_pages)
}

pub(super) fn fork_per_area(session: &Session) -> Started<'_> {
    spawning(session, "fork_per_area", Parent::with_areas)
}

/// Process creation for `probe`, once the spawner and the exit program can be run; a
/// round's size adds what `grows` makes of it to the parent.
fn spawning<'a>(
    session: &'a Session,
    probe: &'static str,
    grows: fn(usize) -> Parent,
) -> Started<'a> {
    let mut workload = CreateProcess {
        session,
        probe,
        grows,
    };
    for _ in 1..TEXT_BUSY_TRIES {
        match workload.spawn(1, Parent::default()) {
            Err(Refused::Exec(_, libc::ETXTBSY)) => std::thread::sleep(TEXT_BUSY_PAUSE),
            _ => break,
        }
    }
    workload.round(1, 0)?;
    Ok(Box::new(workload))
}

impl<'a> CreateProcess<'a> {
    /// Runs the spawner for `iterations` processes with `parent`'s pages and areas (no
    /// arguments for none, as create_process runs it) and reads its report, with its run
    /// delay over its life (the pages' writing too, which is not timed).
    fn spawn(&self, iterations: u64, parent: Parent) -> Result<Sample, Refused<'a>> {
        let (fixture, probe) = (&self.session.fixture, self.probe);
        let spawner = fixture.spawner.path();
        let faults_before = children_minor_faults();
        let spawned = Command::new(spawner)
            .arg(iterations.to_string())
            .args(parent.arguments())
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(error) => {
                return Err(match error.raw_os_error() {
                    Some(errno) => Refused::Exec(spawner, errno),
                    None => could_not_run(probe, spawner, error).into(),
                })
            }
        };
        let mut report = Vec::new();
        let read = child
            .stdout
            .take()
            .map_or(Ok(0), |mut stdout| stdout.read_to_end(&mut report));
        let delay = if exited(child.id()) {
            process_run_delay_ns(child.id()).unwrap_or(0)
        } else {
            0
        };
        let status = child.wait().map_err(|source| CalibrateError::Call {
            probe,
            call: "wait for the spawner",
            source,
        })?;
        read.map_err(|source| CalibrateError::Call {
            probe,
            call: "read the spawner's report",
            source,
        })?;
        let spawner_failed = |problem: String| {
            Refused::Error(CalibrateError::Child {
                probe,
                problem: format!("{} (the spawner) {problem}", spawner.display()),
            })
        };
        match (status.code(), <[u8; 8]>::try_from(report)) {
            (Some(0), Ok(ticks)) => Ok(Sample {
                child_delay_ns: delay,
                // The spawner and the children it reaped, now reaped themselves.
                child_faults: Some(children_minor_faults().saturating_sub(faults_before)),
                ..Sample::new(u64::from_ne_bytes(ticks) as f64, iterations)
            }),
            (Some(0), Err(report)) => Err(spawner_failed(format!(
                "wrote {} bytes, not 8",
                report.len()
            ))),
            (Some(code), _) => Err(match SpawnerFailure::from_exit_code(code) {
                Some(failure) => spawner_failed(failure.problem().into()),
                None => Refused::Exec(fixture.exit_program.path(), code),
            }),
            (None, _) => Err(spawner_failed(format!("was ended by {status}"))),
        }
    }
}

/// The minor page faults of this process's reaped children and theirs (0 if getrusage
/// fails, which it cannot for this process).
fn children_minor_faults() -> u64 {
    getrusage(UsageWho::RUSAGE_CHILDREN).map_or(0, |usage| usage.minor_page_faults() as u64)
}

/// Waits for the child `pid` to exit without reaping it; false if that cannot be done.
fn exited(pid: libc::id_t) -> bool {
    loop {
        // SAFETY: `info` is zeroed, as waitid wants it; WNOWAIT leaves our child unreaped.
        let result = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::waitid(libc::P_PID, pid, &mut info, libc::WEXITED | libc::WNOWAIT)
        };
        if result == 0 {
            return true;
        }
        if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return false;
        }
    }
}

/// Process creation (for `probe`) could not execve `program`.
fn could_not_run(probe: &'static str, program: &Path, error: std::io::Error) -> CalibrateError {
    let noexec = error.raw_os_error() == Some(libc::EACCES);
    CalibrateError::Child {
        probe,
        problem: format!(
            "could not run {}: {error}{}",
            program.display(),
            if noexec {
                " (is the temp dir mounted noexec? set TMPDIR to another)"
            } else {
                ""
            }
        ),
    }
}

impl Workload for CreateProcess<'_> {
    /// `size`: the parent's pages (fork_per_page) or areas (fork_per_area) beyond its own.
    fn round(&mut self, iterations: u64, size: usize) -> Result<Sample, CalibrateError> {
        self.spawn(iterations, (self.grows)(size))
            .map_err(|refused| refused.into_error(self.probe))
    }
}

/// What the spawner holds beyond its own code and stack when it forks.
#[derive(Clone, Copy, Default)]
struct Parent {
    /// Anonymous pages, each written.
    pages: usize,
    /// One-page areas, never touched.
    areas: usize,
}

impl Parent {
    fn with_pages(pages: usize) -> Self {
        Parent { pages, areas: 0 }
    }

    fn with_areas(areas: usize) -> Self {
        Parent { pages: 0, areas }
    }

    /// The spawner's arguments after the count of processes.
    fn arguments(self) -> Vec<String> {
        match (self.pages, self.areas) {
            (0, 0) => Vec::new(),
            (pages, 0) => vec![pages.to_string()],
            (pages, areas) => vec![pages.to_string(), areas.to_string()],
        }
    }
}

/// brk one page up and back, in a child per round: the parent's allocator may move the
/// break from another thread at any time, and a child has one thread.
struct Brk;

pub(super) fn brk(_: &Session) -> Started<'_> {
    Ok(Box::new(Brk))
}

/// Pairs a brk child makes before it starts timing.
const BRK_WARM_UP: u64 = 100;

/// brk to `to`; true when the break moved there.
fn set_break(to: libc::c_long) -> bool {
    // SAFETY: brk moves the end of the heap of this single-threaded child, whose memory
    // above the current break nothing uses.
    unsafe { libc::syscall(libc::SYS_brk, to) == to }
}

impl Workload for Brk {
    fn round(&mut self, iterations: u64, _: usize) -> Result<Sample, CalibrateError> {
        let (from_child, child_writes) = pipe("brk")?;
        let output = child_writes.as_raw_fd();
        let child = Child::fork("brk", || {
            // The parent, on this CPU too, runs until it waits for the report: let it get
            // there first, so that it does not preempt the timed loop.
            sched_yield();
            // SAFETY: brk(0) only reports the current break.
            let current = unsafe { libc::syscall(libc::SYS_brk, 0 as libc::c_long) };
            let up = current + PAGE as libc::c_long;
            let pair = || set_break(up) && set_break(current);
            if !(0..BRK_WARM_UP).all(|_| pair()) {
                return 1;
            }
            let delay = run_delay_ns().unwrap_or(0);
            let start = ticks();
            if !(0..iterations).all(|_| pair()) {
                return 1;
            }
            let elapsed = ticks() - start;
            let report = [elapsed, run_delay_ns().unwrap_or(0).saturating_sub(delay)];
            // SAFETY: `report` is 16 readable bytes; `output` is the pipe's open write end.
            let written = unsafe {
                libc::syscall(
                    libc::SYS_write,
                    libc::c_long::from(output),
                    report.as_ptr(),
                    16usize,
                )
            };
            i32::from(written != 16)
        })?;
        drop(child_writes);
        let mut report = [0; 16];
        let read = File::from(from_child).read_exact(&mut report);
        if child.wait()? != 0 {
            return Err(CalibrateError::Child {
                probe: "brk",
                problem: "could not move the break a page up and back".into(),
            });
        }
        read.map_err(|source| CalibrateError::Call {
            probe: "brk",
            call: "read the child's report",
            source,
        })?;
        let (elapsed, delay) = report.split_at(8);
        let word = |bytes: &[u8]| u64::from_ne_bytes(bytes.try_into().unwrap_or_default());
        Ok(Sample {
            child_delay_ns: word(delay),
            ..Sample::new(word(elapsed) as f64, 2 * iterations)
        })
    }
}
