//! Rounds that other work disturbed: the probing thread's run delay (the time it spent
//! runnable but waiting for its CPU) shows them, and they are run again while a budget of
//! re-runs lasts.

use std::ffi::{CStr, CString};

use super::Sample;
use crate::CalibrateError;

/// A round is disturbed when others took more than this share of its time. Measured on a
/// 2-vCPU KVM guest (Linux 6.18): a slice another task takes is 1 to 4 ms, 15 % or more of
/// a round; the work that mmap+munmap and brk rounds leave to kernel threads (freeing areas)
/// takes 0.2 to 4 % of each round, is theirs, and must not count.
const DISTURBED: f64 = 0.10;

/// A probe's watch on other work, and its count of rounds re-run and kept anyway.
pub(super) struct Preemption {
    /// TSC ticks per nanosecond, to set a run delay against a round's ticks; `None` when
    /// the probe is not watched: its partner on the CPU takes it by design, or the kernel
    /// does not give run delays.
    ghz: Option<f64>,
    reruns_left: u32,
    rerun: u32,
    kept: u32,
}

impl Preemption {
    /// Watches a probe (if `watch`) with at most `reruns` re-runs; `ghz` is the TSC's rate.
    pub fn new(watch: bool, reruns: u32, ghz: f64) -> Preemption {
        Preemption {
            ghz: (watch && run_delay_ns().is_some()).then_some(ghz),
            reruns_left: reruns,
            rerun: 0,
            kept: 0,
        }
    }

    /// Runs `round` until others take at most 10 % of its time (on this thread's CPU, or on
    /// the child's that timed it), or the re-runs run out (then the disturbed round is kept,
    /// and counted).
    pub fn round(
        &mut self,
        mut round: impl FnMut() -> Result<Sample, CalibrateError>,
    ) -> Result<Sample, CalibrateError> {
        let Some(ghz) = self.ghz else {
            return round();
        };
        loop {
            let before = run_delay_ns().unwrap_or(0);
            let sample = round()?;
            let delay = run_delay_ns().unwrap_or(0).saturating_sub(before) + sample.child_delay_ns;
            if (delay as f64 * ghz) <= DISTURBED * sample.ticks {
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

    /// `(rerun, kept)` for a probe's figures; `None` when not watched.
    pub fn counts(&self) -> (Option<u32>, Option<u32>) {
        match self.ghz {
            Some(_) => (Some(self.rerun), Some(self.kept)),
            None => (None, None),
        }
    }
}

/// The calling thread's run delay so far in nanoseconds: the second field of
/// /proc/thread-self/schedstat (CONFIG_SCHED_INFO, which distribution kernels set). Raw
/// syscalls and no allocation, so that a forked child may call it.
pub(super) fn run_delay_ns() -> Option<u64> {
    schedstat_run_delay_ns(c"/proc/thread-self/schedstat")
}

/// The run delay of the process `pid` (its main thread) in nanoseconds, over its life so
/// far; an exited child not yet reaped still has it.
pub(super) fn process_run_delay_ns(pid: u32) -> Option<u64> {
    let path = CString::new(format!("/proc/{pid}/schedstat")).ok()?;
    schedstat_run_delay_ns(&path)
}

/// The second field of the schedstat file at `path`, by raw syscalls.
fn schedstat_run_delay_ns(path: &CStr) -> Option<u64> {
    let flags = libc::c_long::from(libc::O_RDONLY | libc::O_CLOEXEC);
    let at = libc::c_long::from(libc::AT_FDCWD);
    // SAFETY: the path is a NUL-terminated string.
    let fd = unsafe { libc::syscall(libc::SYS_openat, at, path.as_ptr(), flags) };
    if fd < 0 {
        return None;
    }
    let mut text = [0u8; 96];
    // SAFETY: `text` is writable for its whole length; `fd` was just opened, and is closed
    // once read.
    let read = unsafe {
        let read = libc::syscall(libc::SYS_read, fd, text.as_mut_ptr(), text.len());
        libc::syscall(libc::SYS_close, fd);
        read
    };
    second_number(text.get(..usize::try_from(read).ok()?)?)
}

/// The second of the whitespace-separated numbers in `text`.
fn second_number(text: &[u8]) -> Option<u64> {
    let field = text.split(u8::is_ascii_whitespace).nth(1)?;
    if field.is_empty() {
        return None;
    }
    field.iter().try_fold(0u64, |value, &digit| {
        digit
            .is_ascii_digit()
            .then(|| value.checked_mul(10)?.checked_add(u64::from(digit - b'0')))?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_delay_is_the_second_number_of_schedstat() {
        assert_eq!(second_number(b"2164046 3435844 1\n"), Some(3_435_844));
        assert_eq!(
            second_number(b"2164046 18446744073709551615 1\n"),
            Some(u64::MAX)
        );
        for bad in [
            &b"2164046"[..],
            b"2164046 34x5 1",
            b"1 18446744073709551616 1",
            b"",
        ] {
            assert_eq!(
                second_number(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
