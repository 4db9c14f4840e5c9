//! Holding the calling thread on the CPU it is on, so that every probe, and every thread and
//! child a probe starts (they inherit the mask), runs on that one CPU.

use nix::sched::{sched_getaffinity, sched_getcpu, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

use crate::CalibrateError;

/// The calling thread pinned to one CPU; its previous mask comes back on drop.
pub(crate) struct Pin {
    /// The CPU the thread was on, and is held on when pinned.
    pub cpu: usize,
    /// Why the thread could not be pinned, when it could not.
    pub refused: Option<String>,
    previous: Option<CpuSet>,
}

impl Pin {
    /// Pins the calling thread to the CPU it is on; a refusal is recorded, not an error.
    pub fn here() -> Result<Pin, CalibrateError> {
        let cpu = sched_getcpu().map_err(|errno| CalibrateError::Call {
            probe: "machine",
            call: "sched_getcpu",
            source: errno.into(),
        })?;
        // Pid 0 is the calling thread.
        let this_thread = Pid::from_raw(0);
        let pinned = sched_getaffinity(this_thread).and_then(|previous| {
            let mut only = CpuSet::new();
            only.set(cpu)?;
            sched_setaffinity(this_thread, &only)?;
            Ok(previous)
        });
        Ok(match pinned {
            Ok(previous) => Pin {
                cpu,
                refused: None,
                previous: Some(previous),
            },
            Err(errno) => Pin {
                cpu,
                refused: Some(format!("sched_setaffinity to CPU {cpu} refused: {errno}")),
                previous: None,
            },
        })
    }
}

impl Drop for Pin {
    fn drop(&mut self) {
        if let Some(previous) = &self.previous {
            // Nothing to do if the old mask is refused now: the thread stays on one CPU.
            let _ = sched_setaffinity(Pid::from_raw(0), previous);
        }
    }
}
