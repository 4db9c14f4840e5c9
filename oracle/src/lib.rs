//! The correctness oracle: a program run natively on the host (under ptrace), untranslated
//! in the simulator at ring 3 and translated at ring 0, compared pair by pair on what a
//! user can see: exit status, stdout, stderr, the normalized syscall sequence and the files
//! written; the two simulated runs must also agree on the guest instruction count.
//!
//! `native` makes the host run reproducible, `normalize` says what may differ and why,
//! `compare` finds the first divergence, `check` runs the three sides.

pub mod check;
pub mod child;
pub mod compare;
pub mod fuzz;
pub mod native;
pub mod normalize;
pub mod observed;
pub mod scratch;

pub use check::{check, CheckConfig, CheckError, CheckReport};
