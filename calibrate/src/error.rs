//! Why a calibration could not run: one line each.

use std::path::PathBuf;

/// A calibration that could not run.
#[derive(Debug, thiserror::Error)]
pub enum CalibrateError {
    /// The options make no run.
    #[error("bad calibration options: {0}")]
    Options(String),
    /// A machine file (/proc/cpuinfo and the like) is missing or says nothing usable.
    #[error("{path}: {problem}")]
    MachineFile { path: PathBuf, problem: String },
    /// The probes' files cannot be made in the temp dir.
    #[error(
        "cannot write the probes' files in {dir} (set TMPDIR to a writable directory): {source}"
    )]
    TempDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    /// A program the probes run does not assemble (a bug here, not in the machine).
    #[error("cannot assemble the {program} program: {problem}")]
    Assemble {
        program: &'static str,
        problem: String,
    },
    /// A call a probe needs failed.
    #[error("probe {probe}: {call} failed: {source}")]
    Call {
        probe: &'static str,
        call: &'static str,
        source: std::io::Error,
    },
    /// A call returned something other than what the probe asked for.
    #[error("probe {probe}: {call} returned {got}, expected {want}")]
    Unexpected {
        probe: &'static str,
        call: &'static str,
        got: i64,
        want: i64,
    },
    /// A forked child did not do its part.
    #[error("probe {probe}: its child {problem}")]
    Child {
        probe: &'static str,
        problem: String,
    },
}

impl CalibrateError {
    /// `call` failed with the calling thread's errno.
    pub(crate) fn last_os(probe: &'static str, call: &'static str) -> Self {
        CalibrateError::Call {
            probe,
            call,
            source: std::io::Error::last_os_error(),
        }
    }
}

/// Checks a raw syscall's result against the one the probe expects.
pub(crate) fn expect(
    probe: &'static str,
    call: &'static str,
    got: libc::c_long,
    want: libc::c_long,
) -> Result<(), CalibrateError> {
    match got {
        _ if got == want => Ok(()),
        -1 => Err(CalibrateError::last_os(probe, call)),
        _ => Err(CalibrateError::Unexpected {
            probe,
            call,
            got,
            want,
        }),
    }
}
