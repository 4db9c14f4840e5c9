//! The probes as a table, and the driver that runs each one's rounds and reduces them.
//!
//! `calls` holds the syscall-class probes (one call or a pair timed in a loop, or per call
//! for the pipe halves), `switches` the ones with a partner thread or child process.

mod calls;
mod preemption;
mod switches;

use std::time::Duration;

use self::preemption::Preemption;
use crate::clock;
use crate::fixture::{Fixture, LARGEST};
use crate::stats::{fit_line, Summary};
use crate::{CalibrateError, Options, PerByte, Probe, SizePoint};

/// What one round timed: `ticks` for `ops` operations.
pub(crate) struct Sample {
    pub ticks: f64,
    pub ops: u64,
    /// When a child timed the round: the time it waited for its CPU meanwhile.
    pub child_delay_ns: u64,
}

impl Sample {
    fn new(ticks: f64, ops: u64) -> Sample {
        Sample {
            ticks,
            ops,
            child_delay_ns: 0,
        }
    }

    fn per_op(&self) -> f64 {
        self.ticks / self.ops as f64
    }
}

/// A probe under way: rounds of `iterations` operations, each on `bytes` bytes (sized
/// probes; others ignore it).
pub(crate) trait Workload {
    fn round(&mut self, iterations: u64, bytes: usize) -> Result<Sample, CalibrateError>;
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
    /// Beyond the null call at each of `SIZES`, fitted to a base and a per-byte slope.
    Sized,
}

struct Spec {
    name: &'static str,
    what: &'static str,
    unit: &'static str,
    /// Iterations per round at `iterations_scale` 1 (sized: at 1 byte; fewer at larger
    /// sizes, so that each size takes about as long). Rounds of a few milliseconds, shorter
    /// than a scheduler slice, so that most escape other work on the CPU.
    iterations: u64,
    shape: Shape,
    /// A partner on the same CPU takes it from the probe by design, so the probing thread's
    /// run delay does not say whether other work did.
    partner: bool,
    start: Start,
}

/// The sizes a sized probe moves, in bytes.
const SIZES: [usize; 6] = [1, 64, 1024, 4096, 16 * 1024, LARGEST];

/// Measured first: the cost of the timer itself.
const TIMER: Spec = Spec {
    name: "timer",
    what: "an lfence; rdtsc; lfence pair timing nothing: subtracted from the probes that time each call (pipe_write, pipe_read)",
    unit: "cycles",
    iterations: 25_000,
    shape: Shape::Whole,
    partner: false,
    start: |_| Ok(Box::new(calls::Timer)),
};

/// Measured second: what the `BeyondNull` and `Sized` probes subtract.
const NULL_CALL: Spec = Spec {
    name: "null_call",
    what: "getppid by raw syscall: the kernel's entry and exit with no work",
    unit: "cycles/call",
    iterations: 25_000,
    shape: Shape::Whole,
    partner: false,
    start: |session| calls::each(session, 1, calls::null_call),
};

/// The rest, in the order they run.
const PROBES: &[Spec] = &[
    Spec {
        name: "yield_threads",
        what: "sched_yield between two threads of this process on one CPU: one switch and one syscall per yield",
        unit: "cycles/yield",
        iterations: 5_000,
        shape: Shape::Whole,
        partner: true,
        start: switches::yield_threads,
    },
    Spec {
        name: "yield_processes",
        what: "sched_yield between this process and a forked child on one CPU: one switch (of address space too) and one syscall per yield",
        unit: "cycles/yield",
        iterations: 5_000,
        shape: Shape::Whole,
        partner: true,
        start: switches::yield_processes,
    },
    Spec {
        name: "pipe_ping_pong",
        what: "one byte to a forked child on the same CPU through a pipe and back through another: per round trip",
        unit: "cycles/round trip",
        iterations: 1_250,
        shape: Shape::Whole,
        partner: true,
        start: switches::pipe_ping_pong,
    },
    Spec {
        name: "create_process",
        what: "fork + execve of a 132-byte static program that calls exit_group(0) + wait4, per process, looped and timed by a minimal parent: a static program of a few hundred bytes, hand-assembled like the child (fork copies the parent's memory map, so a bigger parent costs more)",
        unit: "cycles/process",
        iterations: 10,
        shape: Shape::Whole,
        partner: false,
        start: switches::create_process,
    },
    Spec {
        name: "identity",
        what: "getpid and getuid alternately, beyond the null call",
        unit: "cycles/call",
        iterations: 12_500,
        shape: Shape::BeyondNull,
        partner: false,
        start: |session| calls::each(session, 2, calls::identity),
    },
    Spec {
        name: "file_read",
        what: "pread of N bytes at offset 0 of a regular file in the page cache, beyond the null call",
        unit: "cycles/call",
        iterations: 5_000,
        shape: Shape::Sized,
        partner: false,
        start: |session| calls::each(session, 1, calls::file_read),
    },
    Spec {
        name: "file_write",
        what: "pwrite of N bytes at offset 0 of a regular file (the same cached page each time), beyond the null call",
        unit: "cycles/call",
        iterations: 5_000,
        shape: Shape::Sized,
        partner: false,
        start: |session| calls::each(session, 1, calls::file_write),
    },
    Spec {
        name: "pipe_write",
        what: "write of N bytes into an empty pipe, beyond the null call (each call timed, the timer subtracted)",
        unit: "cycles/call",
        iterations: 5_000,
        shape: Shape::Sized,
        partner: false,
        start: |session| calls::pipe_half(session, calls::Half::Write),
    },
    Spec {
        name: "pipe_read",
        what: "read of those N bytes back out of the pipe, beyond the null call (each call timed, the timer subtracted)",
        unit: "cycles/call",
        iterations: 5_000,
        shape: Shape::Sized,
        partner: false,
        start: |session| calls::pipe_half(session, calls::Half::Read),
    },
    Spec {
        name: "dev_null",
        what: "write of N bytes to /dev/null, beyond the null call (nothing is copied: the slope is about 0)",
        unit: "cycles/call",
        iterations: 12_500,
        shape: Shape::Sized,
        partner: false,
        start: |session| calls::each(session, 1, calls::dev_null),
    },
    Spec {
        name: "open_stat",
        what: "openat + close of a file in the temp dir by its absolute path: the pair's cost halved, per call, beyond the null call",
        unit: "cycles/call",
        iterations: 2_500,
        shape: Shape::BeyondNull,
        partner: false,
        start: |session| calls::each(session, 2, calls::open_close),
    },
    Spec {
        name: "fstat",
        what: "fstat of an open regular file, beyond the null call",
        unit: "cycles/call",
        iterations: 12_500,
        shape: Shape::BeyondNull,
        partner: false,
        start: |session| calls::each(session, 1, calls::fstat),
    },
    Spec {
        name: "newfstatat",
        what: "newfstatat of a file in the temp dir by its absolute path, beyond the null call",
        unit: "cycles/call",
        iterations: 5_000,
        shape: Shape::BeyondNull,
        partner: false,
        start: |session| calls::each(session, 1, calls::newfstatat),
    },
    Spec {
        name: "mmap_munmap",
        what: "mmap of one anonymous page, never touched, then munmap: the pair's cost halved, per call, beyond the null call",
        unit: "cycles/call",
        iterations: 2_500,
        shape: Shape::BeyondNull,
        partner: false,
        start: |session| calls::each(session, 2, calls::mmap_munmap),
    },
    Spec {
        name: "mprotect",
        what: "mprotect of one page between read and read-write, its neighbours PROT_NONE so no areas merge or split, beyond the null call",
        unit: "cycles/call",
        iterations: 5_000,
        shape: Shape::BeyondNull,
        partner: false,
        start: |session| calls::each(session, 2, calls::mprotect),
    },
    Spec {
        name: "brk",
        what: "brk one page up and back: the pair's cost halved, per call, beyond the null call (in a forked single-threaded child, so that no allocator moves the break meanwhile)",
        unit: "cycles/call",
        iterations: 2_500,
        shape: Shape::BeyondNull,
        partner: false,
        start: switches::brk,
    },
    Spec {
        name: "futex",
        what: "FUTEX_WAKE (private) of a word nobody waits on, beyond the null call",
        unit: "cycles/call",
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
    let (figure, per_byte) = match spec.shape {
        Shape::Sized => {
            let (base, per_byte) =
                sized_rounds(spec, options, workload.as_mut(), &mut preemption, null)?;
            (base, Some(per_byte))
        }
        Shape::Whole | Shape::BeyondNull => {
            let offset = if spec.shape == Shape::BeyondNull {
                null
            } else {
                0.0
            };
            workload.round(iterations, 0)?;
            let figures = (0..options.rounds)
                .map(|_| {
                    let sample = preemption.round(|| workload.round(iterations, 0))?;
                    Ok(sample.per_op() - offset)
                })
                .collect::<Result<Vec<f64>, CalibrateError>>()?;
            (Summary::of(&figures), None)
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
        beyond_null: spec.shape != Shape::Whole,
        per_byte,
        rerun,
        preempted,
    })
}

/// A sized probe's rounds, each over every size (so that drift touches all sizes alike) and
/// fitted on its own: the base over the rounds, and the slope with each size's median.
fn sized_rounds(
    spec: &Spec,
    options: &Options,
    workload: &mut dyn Workload,
    preemption: &mut Preemption,
    null: f64,
) -> Result<(Summary, PerByte), CalibrateError> {
    let sizes = SIZES.map(|bytes| bytes as f64);
    let mut at_size = vec![Vec::new(); SIZES.len()];
    let (mut bases, mut slopes) = (Vec::new(), Vec::new());
    // Round 0 is the warm-up.
    for round in 0..=options.rounds {
        let mut figures = [0.0; SIZES.len()];
        for (figure, bytes) in figures.iter_mut().zip(SIZES) {
            let iterations = options.iterations(spec.iterations / (1 + (bytes / 4096) as u64));
            let sample = if round == 0 {
                workload.round(iterations, bytes)?
            } else {
                preemption.round(|| workload.round(iterations, bytes))?
            };
            *figure = sample.per_op() - null;
        }
        if round == 0 {
            continue;
        }
        let (slope, base) = fit_line(&sizes, &figures);
        slopes.push(slope);
        bases.push(base);
        for (figures_at, figure) in at_size.iter_mut().zip(figures) {
            figures_at.push(figure);
        }
    }
    let slope = Summary::of(&slopes);
    let points = SIZES
        .iter()
        .zip(&at_size)
        .map(|(&bytes, figures)| SizePoint {
            bytes: bytes as u64,
            median: Summary::of(figures).median,
        })
        .collect();
    let per_byte = PerByte {
        median: slope.median,
        low: slope.low,
        high: slope.high,
        points,
    };
    Ok((Summary::of(&bases), per_byte))
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
        rerun: None,
        preempted: None,
    }
}
