//! ringsim's machine: runs an x86-64 Linux program (static, or through its `ld.so`) on
//! Unicorn at a real ring 3, or translated at ring 0, with its syscalls served by a
//! modelled Linux kernel, and prices the run with a cost model.
//!
//! The pipeline, one module a stage: `loader` (ELF, initial stack) → `machine` (CPU, page
//! tables, rings) → `kernel` (syscall table and handlers) → `accounting` (counts) →
//! `costs` (cycles) → `report`. `run` ties them together.

pub mod accounting;
pub mod bt;
pub mod costs;
pub mod kernel;
pub mod loader;
pub mod machine;
pub mod memory;
pub mod report;
pub mod run;
pub mod sysroot;
pub mod system;

pub use run::{run, Error, Outcome, RunConfig};
