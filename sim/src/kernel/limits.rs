//! A process's resource limits (getrlimit, setrlimit, prlimit64): Linux's defaults for a
//! login session at start, so runs are reproducible; inherited by fork, kept across exec,
//! and changed as Linux allows (`do_prlimit`): a soft limit up to the hard one, a hard one
//! down, or up only with privilege.

use nix::errno::Errno;

/// `RLIM_NLIMITS`.
const NLIMITS: usize = 16;
/// `fs.nr_open`, Linux's default: no RLIMIT_NOFILE above it.
const NR_OPEN: u64 = 1 << 20;

/// One limit: soft and hard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    pub soft: u64,
    pub hard: u64,
}

impl Limit {
    pub const fn new(soft: u64, hard: u64) -> Self {
        Self { soft, hard }
    }

    /// As `struct rlimit`.
    pub fn bytes(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.soft.to_le_bytes());
        out[8..].copy_from_slice(&self.hard.to_le_bytes());
        out
    }
}

const UNLIMITED: Limit = Limit::new(u64::MAX, u64::MAX);

/// The defaults, by resource number (RLIMIT_CPU = 0 … RLIMIT_RTTIME = 15).
const DEFAULTS: [Limit; NLIMITS] = [
    UNLIMITED,                                       // CPU
    UNLIMITED,                                       // FSIZE
    UNLIMITED,                                       // DATA
    Limit::new(crate::memory::STACK_SIZE, u64::MAX), // STACK
    Limit::new(0, u64::MAX),                         // CORE
    UNLIMITED,                                       // RSS
    Limit::new(63_704, 63_704),                      // NPROC
    Limit::new(super::fd::MAX_FDS as u64, NR_OPEN),  // NOFILE
    Limit::new(8 << 20, 8 << 20),                    // MEMLOCK
    UNLIMITED,                                       // AS
    UNLIMITED,                                       // LOCKS
    Limit::new(63_704, 63_704),                      // SIGPENDING
    Limit::new(819_200, 819_200),                    // MSGQUEUE
    Limit::new(0, 0),                                // NICE
    Limit::new(0, 0),                                // RTPRIO
    UNLIMITED,                                       // RTTIME
];

#[derive(Clone, Debug)]
pub struct Limits([Limit; NLIMITS]);

impl Default for Limits {
    fn default() -> Self {
        Self(DEFAULTS)
    }
}

impl Limits {
    pub fn get(&self, resource: u64) -> Result<Limit, Errno> {
        self.0.get(resource as usize).copied().ok_or(Errno::EINVAL)
    }

    /// Sets `resource` to `new`: EINVAL for a soft limit above the hard one (or a NOFILE
    /// above `nr_open`, EPERM), EPERM for a hard limit raised without privilege.
    pub fn set(&mut self, resource: u64, new: Limit, privileged: bool) -> Result<(), Errno> {
        let old = self.get(resource)?;
        if new.soft > new.hard {
            return Err(Errno::EINVAL);
        }
        if resource == libc::RLIMIT_NOFILE as u64 && new.hard > NR_OPEN {
            return Err(Errno::EPERM);
        }
        if new.hard > old.hard && !privileged {
            return Err(Errno::EPERM);
        }
        self.0[resource as usize] = new;
        Ok(())
    }

    /// RLIMIT_NOFILE's soft limit: one past the highest descriptor number.
    pub fn open_files(&self) -> usize {
        self.0[libc::RLIMIT_NOFILE as usize].soft as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_soft_limit_moves_up_to_the_hard_one_and_a_hard_one_only_down() {
        let mut limits = Limits::default();
        let nofile = libc::RLIMIT_NOFILE as u64;
        assert_eq!(
            limits.set(nofile, Limit::new(10_032, NR_OPEN), false),
            Ok(())
        );
        assert_eq!(limits.open_files(), 10_032);
        assert_eq!(
            limits.set(nofile, Limit::new(NR_OPEN + 1, NR_OPEN + 1), true),
            Err(Errno::EPERM)
        );
        assert_eq!(
            limits.set(nofile, Limit::new(5, 4), false),
            Err(Errno::EINVAL)
        );
        assert_eq!(limits.set(nofile, Limit::new(64, 64), false), Ok(()));
        assert_eq!(
            limits.set(nofile, Limit::new(64, 128), false),
            Err(Errno::EPERM)
        );
        assert_eq!(limits.get(99), Err(Errno::EINVAL));
    }
}
