//! Measures this machine's costs natively with its own probes: the null syscall, switches
//! between threads and processes, a pipe round trip, process creation, the kernel work of
//! each syscall class (with a per-byte slope where bytes move), a page fault, the cost fork
//! adds per page the parent holds, the TSC frequency and the core's clock against it.
//!
//! Every figure is in TSC ticks read with `lfence; rdtsc; lfence` (on an invariant TSC these
//! tick at the nominal frequency, not the core's clock: `core_clock` measures TSC ticks per
//! core cycle with a chain of dependent adds), unprivileged (no perf counters), on
//! the CPU the calling thread is on. That thread is pinned there for the run (the caller's
//! other threads are left alone); the threads and children the probes start inherit its
//! mask. A probe runs a warm-up round and then `rounds` rounds; it reports the median over
//! the rounds of the per-operation figure, with the rounds' minimum and maximum as its spread.
//!
//! `clock` reads the TSC, `stats` reduces rounds, `machine` names the CPU and kernel, `pin`
//! holds the thread on one CPU, `child` forks children that make raw syscalls only, `elf`
//! writes the programs process creation runs (a minimal parent that times it, and the
//! program it runs), `fixture` holds the files and pages the probes work on, `probes` lists
//! and runs them.

mod child;
mod clock;
pub mod elf;
mod error;
mod fixture;
mod machine;
mod pin;
mod probes;
mod stats;

use std::path::PathBuf;

use serde::Serialize;

pub use error::CalibrateError;
pub use machine::{cpu_model_name, Machine};

/// How long a calibration runs: rounds per probe and a scale on each probe's iterations.
#[derive(Clone, Debug)]
pub struct Options {
    /// Rounds per probe after the warm-up round; the median is over these.
    pub rounds: u32,
    /// Multiplies each probe's iterations per round (1.0 = the full counts).
    pub iterations_scale: f64,
    /// Where the probes' files go; `None`: `std::env::temp_dir()` (`$TMPDIR`, else /tmp).
    pub temp_dir: Option<PathBuf>,
}

impl Options {
    /// For CI: 5 rounds of a fifth of the full counts, the whole run well under 3 s on 2 vCPUs.
    pub fn quick() -> Self {
        Options {
            rounds: 5,
            iterations_scale: 0.2,
            temp_dir: None,
        }
    }

    /// For a cost model: medians of 31 rounds of the full counts, well under 30 s.
    pub fn full() -> Self {
        Options {
            rounds: 31,
            iterations_scale: 1.0,
            temp_dir: None,
        }
    }

    /// A probe's iterations per round from its full count: scaled, at least one.
    fn iterations(&self, full: u64) -> u64 {
        ((full as f64 * self.iterations_scale).round() as u64).max(1)
    }
}

/// What one calibration run found: the machine and every probe's figures.
#[derive(Clone, Debug, Serialize)]
pub struct Calibration {
    pub machine: Machine,
    /// What each probe's `low` and `high` are.
    pub spread: &'static str,
    pub probes: Vec<Probe>,
}

impl Calibration {
    /// The probe called `name`.
    pub fn probe(&self, name: &str) -> Option<&Probe> {
        self.probes.iter().find(|probe| probe.name == name)
    }
}

/// The spread every probe reports.
pub const SPREAD: &str = "low and high are the minimum and maximum of the rounds' figures";

/// One probe's figures.
#[derive(Clone, Debug, Serialize)]
pub struct Probe {
    pub name: &'static str,
    /// One line saying what it measures.
    pub what: &'static str,
    pub unit: &'static str,
    /// The median over the rounds of the per-operation figure; for a sized probe, the
    /// base: the intercept of the per-byte fit; for a paged probe (`fork_per_page`,
    /// `page_fault`), the figure at no pages.
    pub median: f64,
    pub low: f64,
    pub high: f64,
    /// Rounds measured, after one warm-up round.
    pub rounds: u32,
    /// Operations timed per round (for a sized probe: at 1 byte, fewer at larger sizes; for
    /// a paged probe: at each count of pages; for `tsc_ghz`: milliseconds per round).
    pub iterations: u64,
    /// The figure is the kernel work beyond the null call: each round's figure minus the
    /// `null_call` median.
    pub beyond_null: bool,
    /// Where bytes move: the cost per byte, fitted over several sizes.
    pub per_byte: Option<PerByte>,
    /// Where pages cost more: the cost per page, fitted over several counts of pages (the
    /// parent's pages for `fork_per_page`, the pages faulted in for `page_fault`).
    pub per_page: Option<PerPage>,
    /// Where the probe's operations run in children (`create_process`): the minor page
    /// faults they take per operation, the median over the rounds (getrusage of the
    /// children, the spawner's own start and exit spread over its operations).
    pub page_faults: Option<f64>,
    /// Rounds (for a sized probe: one size of a round) run again because other work took
    /// over 10 % of their time: the probing thread (or the child timing the round) waited
    /// that long for its CPU (run delay, /proc/thread-self/schedstat). `None` for the
    /// probes whose partner on the CPU takes it by design (the yields, the ping-pong), for
    /// `tsc_ghz`, which sleeps, and on a kernel that gives no run delays.
    pub rerun: Option<u32>,
    /// Rounds kept although other work took over 10 % of their time, once the re-runs (at
    /// most `rounds`) ran out: their figures include that work. 0 on a quiet machine.
    pub preempted: Option<u32>,
}

/// A least-squares line through a probe's per-operation ticks at several sizes, fitted per
/// round: `median`, `low` and `high` are its slope over the rounds; `points` shows each
/// size as measured.
#[derive(Clone, Debug, Serialize)]
pub struct Slope<Point> {
    pub median: f64,
    pub low: f64,
    pub high: f64,
    /// The median per-operation figure at each size.
    pub points: Vec<Point>,
}

/// A sized probe's slope in ticks per byte; the intercept is the probe's own `median`, and
/// the points are beyond the null call like it. Where the cost is not a straight line (a
/// pipe takes a page per 4 KiB, so its larger writes cost more per byte) the intercept falls
/// below the small sizes' cost, even below zero.
pub type PerByte = Slope<SizePoint>;

/// A sized probe's median per-call figure at one size.
#[derive(Clone, Debug, Serialize)]
pub struct SizePoint {
    pub bytes: u64,
    pub median: f64,
}

/// A paged probe's slope in ticks per page (for `fork_per_page`, per page its parent
/// holds); the probe's own `median` is its figure at no pages.
pub type PerPage = Slope<PagesPoint>;

/// A paged probe's median per-operation figure at `pages` pages.
#[derive(Clone, Debug, Serialize)]
pub struct PagesPoint {
    pub pages: u64,
    pub median: f64,
}

/// Measures this machine: pins the calling thread to the CPU it is on (restored after; a
/// refusal is recorded in `Machine::unpinned` and the run goes on), then runs every probe.
pub fn run(options: &Options) -> Result<Calibration, CalibrateError> {
    if options.rounds == 0 {
        return Err(CalibrateError::Options("rounds must be at least 1".into()));
    }
    if !(options.iterations_scale.is_finite() && options.iterations_scale > 0.0) {
        return Err(CalibrateError::Options(format!(
            "iterations_scale must be a positive number, not {}",
            options.iterations_scale
        )));
    }
    let pin = pin::Pin::here()?;
    let temp_dir = options.temp_dir.clone().unwrap_or_else(std::env::temp_dir);
    let fixture = fixture::Fixture::create(&temp_dir)?;
    let machine = Machine::read(&pin, &temp_dir)?;
    let probes = probes::run_all(options, fixture)?;
    Ok(Calibration {
        machine,
        spread: SPREAD,
        probes,
    })
}
