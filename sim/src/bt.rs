//! The ring-0 runtime that hosts the translator: where the code cache, the stubs and the
//! translator's data live in the kernel half, and the code cache itself.
//!
//! Placement: everything sits in the top 2 GiB of the address space, where translated code
//! reaches it with 32-bit absolute addresses (Linux puts its kernel text there for the same
//! reason, `-mcmodel=kernel`). Unicorn reaches these addresses once guest paging is on
//! (DESIGN.md). The top 1 MiB stays unmapped as the sandbox's guard.

pub mod cache;
pub mod emulate;
pub mod layout;
