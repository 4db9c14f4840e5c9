//! The correctness oracle: a program run natively on the host (under ptrace), untranslated
//! in the simulator at ring 3 and translated at ring 0, compared pair by pair on what a
//! user can see: exit status, stdout, stderr, the normalized syscall sequence and the files
//! written; the two simulated runs must also agree on the guest instruction count.
//!
//! A program that makes processes and threads is followed whole on every side: natively by
//! ptrace (`native`), simulated through the report's processes and the trace's task ids
//! (`simulated`). Both become a `observed::TaskTree` whose tasks are keyed by creation path
//! and thread number, and are compared task by task: each task's sequence (ids of the run's
//! tasks by normalized id), the set of tasks, each process's exit, then the outputs, with
//! what the schedule decides (how tasks interleave, contended futex calls, which child a
//! wait for any child reaps, the order of lines that several tasks write) left out; the
//! rule and its reasons are in `compare`.
//!
//! `native` makes the host run reproducible, `simulated` reads a simulated run back,
//! `normalize` says what may differ and why, `compare` finds the first divergence, `check`
//! runs the three sides.

pub mod check;
pub mod child;
pub mod compare;
pub mod fuzz;
pub mod machine_reads;
pub mod native;
pub mod normalize;
pub mod observed;
pub mod scratch;
pub mod simulated;

pub use check::{check, CheckConfig, CheckError, CheckReport};
