//! Forked children. The parent may be multithreaded (a test harness, a simulator), so a child
//! may only make async-signal-safe calls: raw syscalls and `_exit`, no allocation, no lock.

use crate::CalibrateError;

/// A forked child; killed and reaped on drop unless waited for.
pub(crate) struct Child {
    pid: libc::pid_t,
    probe: &'static str,
    reaped: bool,
}

impl Child {
    /// Forks; the child runs `body` and exits with the code it returns. `body` must make
    /// only async-signal-safe calls and must not panic.
    pub fn fork(probe: &'static str, body: impl FnOnce() -> i32) -> Result<Child, CalibrateError> {
        // SAFETY: the child only runs `body`, which by this function's contract makes only
        // async-signal-safe calls, then `_exit`s without running destructors or atexit.
        match unsafe { libc::fork() } {
            -1 => Err(CalibrateError::last_os(probe, "fork")),
            0 => {
                let code = body();
                // SAFETY: _exit ends the child at once; nothing of the parent's runs.
                unsafe { libc::_exit(code) }
            }
            pid => Ok(Child {
                pid,
                probe,
                reaped: false,
            }),
        }
    }

    /// Waits for the child to exit and gives its exit code; a child a signal ended is an
    /// error.
    pub fn wait(mut self) -> Result<i32, CalibrateError> {
        let status = self.reap()?;
        if libc::WIFEXITED(status) {
            Ok(libc::WEXITSTATUS(status))
        } else {
            Err(CalibrateError::Child {
                probe: self.probe,
                problem: format!("was ended by signal {}", libc::WTERMSIG(status)),
            })
        }
    }

    /// waitpid for this child, again when a signal interrupts it.
    fn reap(&mut self) -> Result<libc::c_int, CalibrateError> {
        let mut status = 0;
        loop {
            // SAFETY: waits for our own child; `status` is a valid out-pointer.
            if unsafe { libc::waitpid(self.pid, &mut status, 0) } == self.pid {
                self.reaped = true;
                return Ok(status);
            }
            let error = std::io::Error::last_os_error();
            if error.kind() != std::io::ErrorKind::Interrupted {
                self.reaped = true;
                return Err(CalibrateError::Call {
                    probe: self.probe,
                    call: "waitpid",
                    source: error,
                });
            }
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.reaped {
            // SAFETY: the pid is our unreaped child, so it names no other process.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
            let _ = self.reap();
        }
    }
}
