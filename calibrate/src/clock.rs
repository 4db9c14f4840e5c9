//! The TSC, read unprivileged, and its frequency against the monotonic clock.

use std::arch::x86_64::{_mm_lfence, _rdtsc};
use std::time::{Duration, Instant};

/// The TSC between two `lfence`s, so that no earlier instruction is still running and no
/// later one has started when it is read.
#[inline(always)]
pub(crate) fn ticks() -> u64 {
    // SAFETY: lfence is SSE2, which every x86-64 CPU has; rdtsc reads a counter that every
    // x86-64 CPU has and Linux lets ring 3 read (a kernel that set CR4.TSD would fault it,
    // and no mainstream one does).
    unsafe {
        _mm_lfence();
        let now = _rdtsc();
        _mm_lfence();
        now
    }
}

/// A TSC reading and the monotonic clock at the same moment: the clock (`Instant` is
/// CLOCK_MONOTONIC on Linux) read between two TSC reads, paired with their midpoint.
fn paired() -> (f64, Instant) {
    let before = ticks();
    let now = Instant::now();
    let after = ticks();
    ((before as f64 + after as f64) / 2.0, now)
}

/// TSC ticks per nanosecond (GHz) over `span` of sleep.
pub(crate) fn tsc_ghz(span: Duration) -> f64 {
    let (start_ticks, start) = paired();
    std::thread::sleep(span);
    let (end_ticks, end) = paired();
    (end_ticks - start_ticks) / (end - start).as_nanos() as f64
}
