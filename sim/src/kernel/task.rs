//! A task (a thread): what each thread of a process has of its own.

use super::process::Pid;

pub struct Task {
    pub tid: Pid,
}
