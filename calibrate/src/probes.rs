//! The probes as a table, and the driver that runs each one's rounds and reduces them.
//!
//! `calls` holds the syscall-class probes (one call or a pair timed in a loop, or per call
//! for the pipe halves), `switches` the ones with a partner thread or child process, and
//! process creation.

mod calls;
mod events;
mod preemption;
mod sockets;
mod switches;

use std::time::Duration;

use self::preemption::Preemption;
use crate::clock;
use crate::fixture::{Fixture, LARGEST, MAPPED_FILE, PAGE};
use crate::stats::{fit_line, Summary};
use crate::{CalibrateError, Options, PagesPoint, Probe, SizePoint, Slope};

/// What one round timed: `ticks` for `ops` operations.
pub(crate) struct Sample {
    pub ticks: f64,
    pub ops: u64,
    /// When a child timed the round: the time it waited for its CPU meanwhile.
    pub child_delay_ns: u64,
    /// Where the round ran in children: the minor page faults they took (getrusage).
    pub child_faults: Option<u64>,
}

impl Sample {
    fn new(ticks: f64, ops: u64) -> Sample {
        Sample {
            ticks,
            ops,
            child_delay_ns: 0,
            child_faults: None,
        }
    }

    fn per_op(&self) -> f64 {
        self.ticks / self.ops as f64
    }
}

/// A probe under way: rounds of `iterations` operations, each of `size`: bytes moved
/// (sized probes), pages in the parent (`fork_per_page`); others ignore it.
pub(crate) trait Workload {
    fn round(&mut self, iterations: u64, size: usize) -> Result<Sample, CalibrateError>;
}

/// What the probes share: the fixture, the TSC's rate and the timer's own cost.
pub(crate) struct Session {
    pub fixture: Fixture,
    /// The `tsc_ghz` probe's median, to set the time other work took against a round's.
    pub ghz: f64,
    /// The `timer` probe's median, subtracted from probes that time each call.
    pub timer: f64,
}

type Start = fn(&Session) -> Result<Box<dyn Workload + '_>, CalibrateError>;

/// How a probe's figure is formed.
#[derive(Clone, Copy, PartialEq)]
enum Shape {
    /// The per-operation ticks as they are.
    Whole,
    /// The per-operation ticks minus the null call's median.
    BeyondNull,
    /// Beyond the null call at each of these sizes (`SIZES` for most), fitted to a base and a
    /// per-byte slope.
    Sized(&'static [usize]),
    /// The per-operation ticks at each of `PAGES`, fitted to a per-page slope; the base is
    /// the figure at no pages.
    Paged,
}

struct Spec {
    name: &'static str,
    what: &'static str,
    unit: &'static str,
    /// Iterations per round at `iterations_scale` 1 (sized: at 1 byte; fewer at larger
    /// sizes, so that each size takes about as long; paged: at each count). Rounds of a few
    /// milliseconds, shorter than a scheduler slice, so that most escape other work on the
    /// CPU.
    iterations: u64,
    shape: Shape,
    /// A partner on the same CPU takes it from the probe by design, so the probing thread's
    /// run delay does not say whether other work did.
    partner: bool,
    start: Start,
}

/// The sizes a sized probe moves, in bytes.
const SIZES: [usize; 6] = [1, 64, 1024, 4096, 16 * 1024, LARGEST];

/// The pages of a paged probe (held by `fork_per_page`'s parent, faulted in by
/// `page_fault`): none first (its base), up to 16 MiB.
const PAGES: [usize; 4] = [0, 256, 1024, 4096];
const _: () = assert!(PAGES[PAGES.len() - 1] * PAGE <= MAPPED_FILE);

/// Measured first: the cost of the timer itself.
const TIMER: Spec = Spec {
    name: "timer",
    what: "an lfence; rdtsc; lfence pair timing nothing: subtracted from the probes that time each call (pipe_write, pipe_read)",
    unit: "ticks",
    iterations: 25_000,
    shape: Shape::Whole,
    partner: false,
    start: |_| Ok(Box::new(calls::Timer)),
};

/// Measured second: what the `BeyondNull` and `Sized` probes subtract.
const NULL_CALL: Spec = Spec {
    name: "null_call",
    what: "getppid by raw syscall: the kernel's entry and exit with no work",
    unit: "ticks/call",
    iterations: 25_000,
    shape: Shape::Whole,
    partner: false,
    start: |session| calls::each(session, 1, calls::null_call),
};

/// The rest, in the order they run.
const PROBES: &[Spec] = &[
    Spec {
        name: "core_clock",
        what: "a chain of dependent register adds, one core cycle each on every x86-64 core: TSC ticks per core cycle (below 1 when the core runs faster than its TSC)",
        unit: "ticks/core cycle",
        iterations: 10_000_000,
        shape: Shape::Whole,
        partner: false,
        start: |_| Ok(Box::new(calls::DependentAdds)),
    },
    Spec {
        name: "branch_mispredict",
        what: "a conditional branch on a byte just loaded, over random bytes (taken half the time, so mispredicted half the time by any predictor) against the same loop over bytes that always take it: the difference per misprediction",
        unit: "ticks/misprediction",
        iterations: 1_000_000,
        shape: Shape::Whole,
        partner: false,
        start: |_| Ok(Box::new(calls::BranchOnBytes::new())),
    },
    Spec {
        name: "yield_threads",
        what: "sched_yield between two threads of this process on one CPU: one switch and one syscall per yield",
        unit: "ticks/yield",
        iterations: 5_000,
        shape: Shape::Whole,
        partner: true,
        start: switches::yield_threads,
    },
    Spec {
        name: "yield_processes",
        what: "sched_yield between this process and a forked child on one CPU: one switch (of address space too) and one syscall per yield",
        unit: "ticks/yield",
        iterations: 5_000,
        shape: Shape::Whole,
        partner: true,
        start: switches::yield_processes,
    },
    Spec {
        name: "pipe_ping_pong",
        what: "one byte to a forked child on the same CPU through a pipe and back through another: per round trip",
        unit: "ticks/round trip",
        iterations: 1_250,
        shape: Shape::Whole,
        partner: true,
        start: switches::pipe_ping_pong,
    },
    Spec {
        name: "create_process",
        what: "fork + execve of a 132-byte static program that calls exit_group(0) + wait4, per process, looped and timed by a minimal parent: a static program of a few hundred bytes, hand-assembled like the child (fork copies the parent's memory map, so a bigger parent costs more)",
        unit: "ticks/process",
        iterations: 10,
        shape: Shape::Whole,
        partner: false,
        start: switches::create_process,
    },
    Spec {
        name: "fork_per_page",
        what: "create_process with N pages more in the parent: anonymous, private, each written once (the kind whose page-table entries fork copies and write-protects, and the child's execve then drops; fork copies none of an area with no anonymous memory, such as a program's text), 4 KiB each (huge pages refused by madvise), mapped and written before the timing starts; per process, fitted over N to a cost per page",
        unit: "ticks/process",
        iterations: 10,
        shape: Shape::Paged,
        partner: false,
        start: switches::fork_per_page,
    },
    Spec {
        name: "fork_per_area",
        what: "create_process with N areas more in the parent, of one anonymous page each, alternately PROT_NONE and PROT_READ so that none merges with the next, never touched (fork copies each area but none of its page-table entries; the child's execve drops them), mapped before the timing starts; per process, fitted over N to a cost per area",
        unit: "ticks/process",
        iterations: 10,
        shape: Shape::Paged,
        partner: false,
        start: switches::fork_per_area,
    },
    Spec {
        name: "page_fault",
        what: "mmap of N anonymous pages (huge pages refused), a byte written to each, munmap: per page, fitted over N; each page's first write faults and gets a zeroed frame, which munmap frees",
        unit: "ticks/page",
        iterations: 2,
        shape: Shape::Paged,
        partner: false,
        start: |session| calls::each(session, 1, calls::page_faults),
    },
    Spec {
        name: "fault_around",
        what: "mmap of N pages of a file in the page cache, private and read-only (huge pages refused by madvise), a byte read from the first page of each 16-page window, munmap: per page, fitted over N; each read faults and maps the window's 16 pages (Linux's default fault-around of 64 KiB), which munmap unmaps",
        unit: "ticks/page",
        iterations: 2,
        shape: Shape::Paged,
        partner: false,
        start: |session| calls::each(session, 1, calls::fault_around),
    },
    Spec {
        name: "identity",
        what: "getpid and getuid alternately, beyond the null call",
        unit: "ticks/call",
        iterations: 12_500,
        shape: Shape::BeyondNull,
        partner: false,
        start: |session| calls::each(session, 2, calls::identity),
    },
    Spec {
        name: "file_read",
        what: "pread of N bytes at offset 0 of a regular file in the page cache, beyond the null call",
        unit: "ticks/call",
        iterations: 5_000,
        shape: Shape::Sized(&SIZES),
        partner: false,
        start: |session| calls::each(session, 1, calls::file_read),
    },
    Spec {
        name: "file_write",
        what: "pwrite of N bytes at offset 0 of a regular file (the same cached page each time), beyond the null call",
        unit: "ticks/call",
        iterations: 5_000,
        shape: Shape::Sized(&SIZES),
        partner: false,
        start: |session| calls::each(session, 1, calls::file_write),
    },
    Spec {
        name: "pipe_write",
        what: "write of N bytes into an empty pipe, beyond the null call (each call timed, the timer subtracted)",
        unit: "ticks/call",
        iterations: 5_000,
        shape: Shape::Sized(&SIZES),
        partner: false,
        start: |session| calls::pipe_half(session, calls::Half::Write),
    },
    Spec {
        name: "pipe_read",
        what: "read of those N bytes back out of the pipe, beyond the null call (each call timed, the timer subtracted)",
        unit: "ticks/call",
        iterations: 5_000,
        shape: Shape::Sized(&SIZES),
        partner: false,
        start: |session| calls::pipe_half(session, calls::Half::Read),
    },
    Spec {
        name: "tcp_send",
        what: "write of N bytes into a loopback TCP connection whose reader has read all before (TCP_NODELAY), beyond the null call (each call timed, the timer subtracted)",
        unit: "ticks/call",
        iterations: 2_500,
        shape: Shape::Sized(&SIZES),
        partner: false,
        start: |session| sockets::tcp_half(session, calls::Half::Write),
    },
    Spec {
        name: "tcp_receive",
        what: "read of those N bytes from the connection's other end, beyond the null call (each call timed, the timer subtracted)",
        unit: "ticks/call",
        iterations: 2_500,
        shape: Shape::Sized(&SIZES),
        partner: false,
        start: |session| sockets::tcp_half(session, calls::Half::Read),
    },
    Spec {
        name: "unix_send",
        what: "write of N bytes into an AF_UNIX stream socket pair, beyond the null call (each call timed, the timer subtracted)",
        unit: "ticks/call",
        iterations: 5_000,
        shape: Shape::Sized(&SIZES),
        partner: false,
        start: |session| sockets::unix_half(session, calls::Half::Write),
    },
    Spec {
        name: "unix_receive",
        what: "read of those N bytes from the pair's other end, beyond the null call (each call timed, the timer subtracted)",
        unit: "ticks/call",
        iterations: 5_000,
        shape: Shape::Sized(&SIZES),
        partner: false,
        start: |session| sockets::unix_half(session, calls::Half::Read),
    },
    Spec {
        name: "connect",
        what: "connect of a new TCP socket to a loopback listener (the handshake, done within the call on loopback), beyond the null call (each call timed, the timer subtracted; the socket, the accept and the closes are not)",
        unit: "ticks/call",
        iterations: 1_000,
        shape: Shape::BeyondNull,
        partner: false,
        start: |session| sockets::connect_accept(session, calls::Half::Write),
    },
    Spec {
        name: "accept",
        what: "accept4 of that connection from the listener's queue, beyond the null call (each call timed, the timer subtracted)",
        unit: "ticks/call",
        iterations: 1_000,
        shape: Shape::BeyondNull,
        partner: false,
        start: |session| sockets::connect_accept(session, calls::Half::Read),
    },
    Spec {
        name: "epoll_wait",
        what: "epoll_wait with a timeout of 0 returning N level-triggered eventfds, every one ready, beyond the null call; N is counted in bytes of struct epoll_event (12 a record), 1 to 256 records, so the slope is per byte of a ready event's record",
        unit: "ticks/call",
        iterations: 5_000,
        shape: Shape::Sized(&events::SIZES),
        partner: false,
        start: |_| events::ready_epolls(),
    },
    Spec {
        name: "dev_null",
        what: "write of N bytes to /dev/null, beyond the null call (nothing is copied: the slope is about 0)",
        unit: "ticks/call",
        iterations: 12_500,
        shape: Shape::Sized(&SIZES),
        partner: false,
        start: |session| calls::each(session, 1, calls::dev_null),
    },
    Spec {
        name: "open_stat",
        what: "openat + close of a file in the temp dir by its absolute path: the pair's cost halved, per call, beyond the null call",
        unit: "ticks/call",
        iterations: 2_500,
        shape: Shape::BeyondNull,
        partner: false,
        start: |session| calls::each(session, 2, calls::open_close),
    },
    Spec {
        name: "fstat",
        what: "fstat of an open regular file, beyond the null call",
        unit: "ticks/call",
        iterations: 12_500,
        shape: Shape::BeyondNull,
        partner: false,
        start: |session| calls::each(session, 1, calls::fstat),
    },
    Spec {
        name: "newfstatat",
        what: "newfstatat of a file in the temp dir by its absolute path, beyond the null call",
        unit: "ticks/call",
        iterations: 5_000,
        shape: Shape::BeyondNull,
        partner: false,
        start: |session| calls::each(session, 1, calls::newfstatat),
    },
    Spec {
        name: "mmap_munmap",
        what: "mmap of one anonymous page, never touched, then munmap: the pair's cost halved, per call, beyond the null call",
        unit: "ticks/call",
        iterations: 2_500,
        shape: Shape::BeyondNull,
        partner: false,
        start: |session| calls::each(session, 2, calls::mmap_munmap),
    },
    Spec {
        name: "mprotect",
        what: "mprotect of one page between read and read-write, its neighbours PROT_NONE so no areas merge or split, beyond the null call",
        unit: "ticks/call",
        iterations: 5_000,
        shape: Shape::BeyondNull,
        partner: false,
        start: |session| calls::each(session, 2, calls::mprotect),
    },
    Spec {
        name: "brk",
        what: "brk one page up and back: the pair's cost halved, per call, beyond the null call (in a forked single-threaded child, so that no allocator moves the break meanwhile)",
        unit: "ticks/call",
        iterations: 2_500,
        shape: Shape::BeyondNull,
        partner: false,
        start: switches::brk,
    },
    Spec {
        name: "futex",
        what: "FUTEX_WAKE (private) of a word nobody waits on, beyond the null call",
        unit: "ticks/call",
        iterations: 25_000,
        shape: Shape::BeyondNull,
        partner: false,
        start: |session| calls::each(session, 1, calls::futex_wake),
    },
];

/// The TSC frequency first (the watch on other work needs it), then every probe; the TSC
/// frequency is listed last.
pub(crate) fn run_all(options: &Options, fixture: Fixture) -> Result<Vec<Probe>, CalibrateError> {
    let tsc = tsc_ghz(options);
    let mut session = Session {
        fixture,
        ghz: tsc.median,
        timer: 0.0,
    };
    let timer = measure(&TIMER, options, &session, 0.0)?;
    session.timer = timer.median;
    let null_call = measure(&NULL_CALL, options, &session, 0.0)?;
    let null = null_call.median;
    let mut probes = vec![timer, null_call];
    for spec in PROBES {
        probes.push(measure(spec, options, &session, null)?);
    }
    probes.push(tsc);
    Ok(probes)
}

/// Runs a probe's warm-up round and its rounds; `null` is the null call's median.
fn measure(
    spec: &Spec,
    options: &Options,
    session: &Session,
    null: f64,
) -> Result<Probe, CalibrateError> {
    let mut workload = (spec.start)(session)?;
    let iterations = options.iterations(spec.iterations);
    let mut preemption = Preemption::new(!spec.partner, options.rounds, session.ghz);
    let (mut per_byte, mut per_page, mut page_faults) = (None, None, None);
    let figure = match spec.shape {
        Shape::Sized(sizes) => {
            let rounds = sized_rounds(
                sizes,
                null,
                options.rounds,
                workload.as_mut(),
                &mut preemption,
                |bytes| options.iterations(spec.iterations / (1 + (bytes / 4096) as u64)),
            )?;
            per_byte = Some(rounds.slope(sizes, |bytes, median| SizePoint { bytes, median }));
            Summary::of(&rounds.intercepts)
        }
        Shape::Paged => {
            let rounds = sized_rounds(
                &PAGES,
                0.0,
                options.rounds,
                workload.as_mut(),
                &mut preemption,
                |_| iterations,
            )?;
            per_page = Some(rounds.slope(&PAGES, |pages, median| PagesPoint { pages, median }));
            Summary::of(&rounds.at_size[0])
        }
        Shape::Whole | Shape::BeyondNull => {
            let offset = if spec.shape == Shape::BeyondNull {
                null
            } else {
                0.0
            };
            workload.round(iterations, 0)?;
            let mut faults = Vec::new();
            let figures = (0..options.rounds)
                .map(|_| {
                    let sample = preemption.round(|| workload.round(iterations, 0))?;
                    if let Some(taken) = sample.child_faults {
                        faults.push(taken as f64 / sample.ops as f64);
                    }
                    Ok(sample.per_op() - offset)
                })
                .collect::<Result<Vec<f64>, CalibrateError>>()?;
            if !faults.is_empty() {
                page_faults = Some(Summary::of(&faults).median);
            }
            Summary::of(&figures)
        }
    };
    let (rerun, preempted) = preemption.counts();
    Ok(Probe {
        name: spec.name,
        what: spec.what,
        unit: spec.unit,
        median: figure.median,
        low: figure.low,
        high: figure.high,
        rounds: options.rounds,
        iterations,
        beyond_null: matches!(spec.shape, Shape::BeyondNull | Shape::Sized(_)),
        per_byte,
        per_page,
        page_faults,
        rerun,
        preempted,
    })
}

/// What a probe's rounds over several sizes found, each round fitted on its own.
struct SizedRounds {
    /// Each round's least-squares slope and intercept.
    slopes: Vec<f64>,
    intercepts: Vec<f64>,
    /// Each size's figures, one a round.
    at_size: Vec<Vec<f64>>,
}

impl SizedRounds {
    /// The slope over the rounds, with a point made by `point` from each of `sizes` and the
    /// median of its figures.
    fn slope<Point>(&self, sizes: &[usize], point: impl Fn(u64, f64) -> Point) -> Slope<Point> {
        let slope = Summary::of(&self.slopes);
        Slope {
            median: slope.median,
            low: slope.low,
            high: slope.high,
            points: sizes
                .iter()
                .zip(&self.at_size)
                .map(|(&size, figures)| point(size as u64, Summary::of(figures).median))
                .collect(),
        }
    }
}

/// A warm-up round and the rounds of a probe over several sizes, each round over every
/// size (so that drift touches all sizes alike), `iterations` at each; `offset` is
/// subtracted from every per-operation figure.
fn sized_rounds(
    sizes: &[usize],
    offset: f64,
    rounds: u32,
    workload: &mut dyn Workload,
    preemption: &mut Preemption,
    iterations: impl Fn(usize) -> u64,
) -> Result<SizedRounds, CalibrateError> {
    let xs: Vec<f64> = sizes.iter().map(|&size| size as f64).collect();
    let mut found = SizedRounds {
        slopes: Vec::new(),
        intercepts: Vec::new(),
        at_size: vec![Vec::new(); sizes.len()],
    };
    // Round 0 is the warm-up.
    for round in 0..=rounds {
        let mut figures = Vec::with_capacity(sizes.len());
        for &size in sizes {
            let sample = if round == 0 {
                workload.round(iterations(size), size)?
            } else {
                preemption.round(|| workload.round(iterations(size), size))?
            };
            figures.push(sample.per_op() - offset);
        }
        if round == 0 {
            continue;
        }
        let (slope, intercept) = fit_line(&xs, &figures);
        found.slopes.push(slope);
        found.intercepts.push(intercept);
        for (figures_at, figure) in found.at_size.iter_mut().zip(figures) {
            figures_at.push(figure);
        }
    }
    Ok(found)
}

/// The TSC frequency: rounds of sleep timed by the TSC and by CLOCK_MONOTONIC, together
/// 500 ms at `iterations_scale` 1, and never under 100 ms.
fn tsc_ghz(options: &Options) -> Probe {
    let total_ms = ((500.0 * options.iterations_scale) as u64).max(100);
    let round_ms = total_ms.div_ceil(options.rounds.into());
    let figures: Vec<f64> = (0..options.rounds)
        .map(|_| clock::tsc_ghz(Duration::from_millis(round_ms)))
        .collect();
    let ghz = Summary::of(&figures);
    Probe {
        name: "tsc_ghz",
        what: "TSC ticks per nanosecond of CLOCK_MONOTONIC over a sleep (no warm-up round): what turns the other figures into time",
        unit: "GHz",
        median: ghz.median,
        low: ghz.low,
        high: ghz.high,
        rounds: options.rounds,
        iterations: round_ms,
        beyond_null: false,
        per_byte: None,
        per_page: None,
        page_faults: None,
        rerun: None,
        preempted: None,
    }
}
