//! Bugs the translator can be asked to make, on purpose: they prove that the oracle
//! (`simulate --check`) notices a translation that changes what a program does. Never for
//! anything but that test.

/// One planted bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlantedBug {
    /// `syscall` no longer sets RCX to the next guest RIP.
    SyscallRcx,
    /// A scratch register the sandbox spilled is not given its value back.
    SpillNotRestored,
}
