//! What a CPU exception at ring 3 does to a Linux process: the signal it raises.

use nix::sys::signal::Signal;

/// An x86 exception vector, its name, and the signal Linux sends for it at ring 3.
pub struct FaultRow {
    pub vector: u32,
    pub name: &'static str,
    pub signal: Signal,
}

const fn row(vector: u32, name: &'static str, signal: Signal) -> FaultRow {
    FaultRow {
        vector,
        name,
        signal,
    }
}

/// Linux's arch/x86/kernel/traps.c, per vector.
pub const FAULTS: &[FaultRow] = &[
    row(0, "divide error (#DE)", Signal::SIGFPE),
    row(1, "debug trap (#DB)", Signal::SIGTRAP),
    row(3, "breakpoint (#BP)", Signal::SIGTRAP),
    row(4, "overflow (#OF)", Signal::SIGSEGV),
    row(5, "bound range exceeded (#BR)", Signal::SIGSEGV),
    row(6, "invalid opcode (#UD)", Signal::SIGILL),
    row(7, "device not available (#NM)", Signal::SIGSEGV),
    row(10, "invalid TSS (#TS)", Signal::SIGSEGV),
    row(11, "segment not present (#NP)", Signal::SIGBUS),
    row(12, "stack-segment fault (#SS)", Signal::SIGBUS),
    row(13, "general protection fault (#GP)", Signal::SIGSEGV),
    row(14, "page fault (#PF)", Signal::SIGSEGV),
    row(16, "x87 floating-point exception (#MF)", Signal::SIGFPE),
    row(17, "alignment check (#AC)", Signal::SIGBUS),
    row(19, "SIMD floating-point exception (#XM)", Signal::SIGFPE),
];

pub fn fault(vector: u32) -> Option<&'static FaultRow> {
    FAULTS.iter().find(|r| r.vector == vector)
}
