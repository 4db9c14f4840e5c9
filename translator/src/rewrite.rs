//! The rewrites the rules table names, by instruction kind.

pub mod branch;
pub mod indirect;
pub mod plain;
pub mod sandbox;
pub mod sensitive;
pub mod syscall;
