//! What one run of a program did that the oracle compares.

use std::collections::BTreeMap;

use serde::Serialize;
use sim::accounting::SyscallRecord;

/// How the program ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Exited(i32),
    /// Killed by the named signal (SIGSEGV, ...).
    Signaled(String),
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Status::Exited(code) => write!(f, "exit status {code}"),
            Status::Signaled(signal) => write!(f, "killed by {signal}"),
        }
    }
}

/// An entry in the working directory that the run created, changed or removed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileChange {
    /// A regular file, with its bytes now.
    Written(Vec<u8>),
    Directory,
    /// A symbolic link, with its target.
    Symlink(String),
    Removed,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    pub status: Status,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub syscalls: Vec<SyscallRecord>,
    /// By path relative to the working directory.
    pub files: BTreeMap<String, FileChange>,
    /// Guest instructions executed (simulated runs only).
    pub guest_instructions: Option<u64>,
}
