//! Rounds that other work disturbed: the probing thread's involuntary context switches show
//! them, and they are run again while a budget of re-runs lasts.

use super::Sample;
use crate::CalibrateError;

/// A probe's watch on preemption, and its count of rounds re-run and kept anyway.
pub(super) struct Preemption {
    /// False for probes whose partner on the CPU preempts the probing thread by design.
    watch: bool,
    reruns_left: u32,
    pub rerun: u32,
    pub kept: u32,
}

impl Preemption {
    /// At most `reruns` re-runs over the whole probe.
    pub fn new(watch: bool, reruns: u32) -> Preemption {
        Preemption {
            watch,
            reruns_left: reruns,
            rerun: 0,
            kept: 0,
        }
    }

    /// Runs `round` until no involuntary switch happens during it (here or in the child
    /// that timed it), or the re-runs run out (then the preempted round is kept, and
    /// counted).
    pub fn round(
        &mut self,
        mut round: impl FnMut() -> Result<Sample, CalibrateError>,
    ) -> Result<Sample, CalibrateError> {
        loop {
            let before = involuntary_switches(libc::RUSAGE_THREAD);
            let sample = round()?;
            let preempted =
                sample.child_preempted || involuntary_switches(libc::RUSAGE_THREAD) != before;
            if !self.watch || !preempted {
                return Ok(sample);
            }
            if self.reruns_left == 0 {
                self.kept += 1;
                return Ok(sample);
            }
            self.reruns_left -= 1;
            self.rerun += 1;
        }
    }

    /// The counts for a probe's figures: `(rerun, kept)`, `None` when not watched.
    pub fn counts(&self) -> (Option<u32>, Option<u32>) {
        if self.watch {
            (Some(self.rerun), Some(self.kept))
        } else {
            (None, None)
        }
    }
}

/// The involuntary context switches so far of the calling thread (`RUSAGE_THREAD`) or
/// process (`RUSAGE_SELF`). A raw syscall, so that a forked child may call it.
pub(super) fn involuntary_switches(who: libc::c_int) -> i64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` is a writable rusage, and the call cannot fail with a valid `who`
    // (the zeroed rusage would stay if it did).
    unsafe {
        libc::syscall(
            libc::SYS_getrusage,
            libc::c_long::from(who),
            usage.as_mut_ptr(),
        );
        usage.assume_init().ru_nivcsw
    }
}
