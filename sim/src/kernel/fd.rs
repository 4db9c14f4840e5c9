//! Guest file descriptors, each backed by a host descriptor that this process owns.
//! A fork child's table shares its parent's open files (an `Rc` each, as Linux's
//! `struct file` is shared), with no host `dup`.
//!
//! Guest numbers follow Linux: the lowest free number is taken. The guest's 0, 1 and 2
//! are duplicates of the host's, so a guest that closes its stdout leaves the simulator's
//! own stderr report intact.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::rc::Rc;

use nix::errno::Errno;

/// Linux's default `RLIMIT_NOFILE` soft limit.
pub const MAX_FDS: usize = 1024;

#[derive(Clone)]
struct Slot {
    host: Rc<OwnedFd>,
    cloexec: bool,
}

#[derive(Clone, Default)]
pub struct FdTable {
    slots: Vec<Option<Slot>>,
}

impl FdTable {
    /// A table whose 0, 1 and 2 duplicate the host's standard streams, where those are open.
    pub fn with_host_stdio() -> Self {
        let mut table = Self::default();
        for fd in 0..3 {
            let host = nix::fcntl::fcntl(
                // SAFETY: fds 0-2 of this process are only read here, never closed.
                unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) },
                nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3),
            );
            table.slots.push(host.ok().map(|raw| Slot {
                // SAFETY: the descriptor was just created by F_DUPFD and is owned by nobody else.
                host: Rc::new(unsafe { std::os::fd::FromRawFd::from_raw_fd(raw) }),
                cloexec: false,
            }));
        }
        table
    }

    /// The host descriptor behind guest `fd`.
    pub fn host(&self, fd: u64) -> Result<RawFd, Errno> {
        self.slots
            .get(fd as usize)
            .and_then(Option::as_ref)
            .map(|s| s.host.as_raw_fd())
            .ok_or(Errno::EBADF)
    }

    /// Installs `host` at the lowest free guest number at or above `min`.
    pub fn install(&mut self, host: OwnedFd, cloexec: bool, min: usize) -> Result<u64, Errno> {
        let free = (min..MAX_FDS)
            .find(|&n| self.slots.get(n).is_none_or(Option::is_none))
            .ok_or(Errno::EMFILE)?;
        self.install_at(free, host, cloexec);
        Ok(free as u64)
    }

    /// Installs `host` at guest number `fd`, closing what was there (dup2).
    pub fn install_at(&mut self, fd: usize, host: OwnedFd, cloexec: bool) {
        if self.slots.len() <= fd {
            self.slots.resize_with(fd + 1, || None);
        }
        self.slots[fd] = Some(Slot {
            host: Rc::new(host),
            cloexec,
        });
    }

    /// Takes a raw host descriptor the kernel just opened and installs it.
    pub fn install_raw(&mut self, raw: RawFd, cloexec: bool) -> Result<u64, Errno> {
        // SAFETY: `raw` was just returned by a host syscall and has no other owner.
        let host = unsafe { std::os::fd::FromRawFd::from_raw_fd(raw) };
        self.install(host, cloexec, 0)
    }

    pub fn close(&mut self, fd: u64) -> Result<(), Errno> {
        let slot = self.slots.get_mut(fd as usize).ok_or(Errno::EBADF)?;
        slot.take().map(drop).ok_or(Errno::EBADF)
    }

    /// A new host descriptor for the same open file as guest `fd`.
    pub fn duplicate(&self, fd: u64) -> Result<OwnedFd, Errno> {
        let host = self.host(fd)?;
        // SAFETY: `host` is open while `self` holds it; the borrow ends with this call.
        let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(host) };
        borrowed
            .try_clone_to_owned()
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)))
    }

    /// Closes every descriptor marked close-on-exec (execve).
    pub fn close_on_exec(&mut self) {
        for slot in &mut self.slots {
            if slot.as_ref().is_some_and(|s| s.cloexec) {
                *slot = None;
            }
        }
    }

    pub fn cloexec(&self, fd: u64) -> Result<bool, Errno> {
        self.slots
            .get(fd as usize)
            .and_then(Option::as_ref)
            .map(|s| s.cloexec)
            .ok_or(Errno::EBADF)
    }

    pub fn set_cloexec(&mut self, fd: u64, cloexec: bool) -> Result<(), Errno> {
        let slot = self
            .slots
            .get_mut(fd as usize)
            .and_then(Option::as_mut)
            .ok_or(Errno::EBADF)?;
        slot.cloexec = cloexec;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn devnull() -> OwnedFd {
        std::fs::File::open("/dev/null").unwrap().into()
    }

    #[test]
    fn lowest_free_number_is_taken() {
        let mut table = FdTable::default();
        assert_eq!(table.install(devnull(), false, 0), Ok(0));
        assert_eq!(table.install(devnull(), false, 0), Ok(1));
        table.close(0).unwrap();
        assert_eq!(table.install(devnull(), false, 0), Ok(0));
        assert_eq!(table.install(devnull(), false, 5), Ok(5));
        assert_eq!(table.close(7), Err(Errno::EBADF));
        assert_eq!(table.host(3), Err(Errno::EBADF));
    }
}
