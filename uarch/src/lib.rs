//! Prices x86-64 basic blocks in cycles for a named microarchitecture, from the tables in
//! `data/` that `gen-uarch-tables` writes from LLVM's scheduling models.

mod form;

pub use form::Form;
