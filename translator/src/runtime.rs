//! The contract between translated code and the runtime that hosts it: where the stubs
//! and data slots are, and what each means.
//!
//! Everything lives in the top 2 GiB of the address space (as Linux's kernel text does, for
//! `-mcmodel=kernel`), so translated code reaches it with 32-bit absolute addresses, with
//! no register to spare. The very top [`GUARD_SIZE`] bytes stay unmapped: a stack or
//! `fs:`-relative access with a small negative offset from a small base wraps there and
//! faults, as the same access at ring 3 would.

/// Bytes at the top of the address space that the runtime must leave unmapped.
pub const GUARD_SIZE: u64 = 1 << 20;
/// The lowest address 32-bit absolute addressing reaches in the kernel half.
pub const TOP_2G: u64 = 0xffff_ffff_8000_0000;
/// The highest user address: the MPX bound `bnd0` holds.
pub const USER_MAX: u64 = 0x0000_7fff_ffff_ffff;

/// The selectors a 64-bit Linux process has (its GDT layout): 32-bit user code, user data
/// (also its SS), 64-bit user code. Ring 3 sees these; the runtime shows them at ring 0.
pub const USER32_CS: u16 = 0x23;
pub const USER_DS: u16 = 0x2b;
pub const USER_CS: u16 = 0x33;

/// RFLAGS bits ring 3 cannot change with popf or iret: IF and IOPL.
pub const RFLAGS_IF: u64 = 1 << 9;
pub const RFLAGS_IOPL: u64 = 3 << 12;

/// Addresses the translated code relies on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Runtime {
    /// Stub: translate the guest address in `target` and continue there.
    pub dispatch: u64,
    /// Stub: the kernel entry. Entered by `call` on the kernel stack with the guest's
    /// registers as at its `syscall`, RCX already holding the guest's next RIP; it sets
    /// R11 = RFLAGS, serves the call (result in RAX) and returns.
    pub syscall_entry: u64,
    /// Stub: the 32-bit system call entry (`int 0x80`), entered like `syscall_entry`; it
    /// changes only RAX. The target slot holds the guest RIP of the `int 0x80`.
    pub compat_entry: u64,
    /// Stub: end the process as the ring-3 fault in `fault_kind` at `fault_rip` would.
    pub fault: u64,
    /// Stub: the simulator carries out the guest instruction at `fault_rip` as ring 3 would
    /// (segment loads, far transfers), then continues where that instruction leads.
    pub emulate: u64,
    /// Stub: the indirect-branch lookup. Finds the translation of the guest address in
    /// `target` in the runtime's in-cache table and jumps there, or, on a miss, asks the
    /// simulator (a hypercall) and goes on at `next`. Changes no register and no flag.
    pub lookup: u64,
    /// Slot (8 bytes): the guest address for `dispatch` and for an indirect-branch lookup.
    pub target: u64,
    /// Slot: where `dispatch` and a lookup continue, written by the simulator (or by the
    /// lookup when its table has the target).
    pub next: u64,
    /// Slot: the guest RSP while on the kernel stack.
    pub user_rsp: u64,
    /// Slot: one spilled guest register.
    pub spill: u64,
    /// Slot: the guest's FS base, kept current by the kernel (arch_prctl).
    pub fs_base: u64,
    /// Slot: the guest's GS base.
    pub gs_base: u64,
    /// Slot: the guest RIP of a ring-3 fault.
    pub fault_rip: u64,
    /// Slot (4 bytes): a [`FaultKind`] index.
    pub fault_kind: u64,
    /// Top of the kernel stack (16-byte aligned).
    pub kernel_stack_top: u64,
}

impl Runtime {
    pub(crate) fn validate(&self) -> Result<(), String> {
        let all = [
            ("dispatch", self.dispatch),
            ("syscall_entry", self.syscall_entry),
            ("compat_entry", self.compat_entry),
            ("fault", self.fault),
            ("emulate", self.emulate),
            ("lookup", self.lookup),
            ("target", self.target),
            ("next", self.next),
            ("user_rsp", self.user_rsp),
            ("spill", self.spill),
            ("fs_base", self.fs_base),
            ("gs_base", self.gs_base),
            ("fault_rip", self.fault_rip),
            ("fault_kind", self.fault_kind),
            ("kernel_stack_top", self.kernel_stack_top),
        ];
        for (name, address) in all {
            if !(TOP_2G..=u64::MAX - GUARD_SIZE).contains(&address) {
                return Err(format!(
                    "{name} at {address:#x} is outside the top 2 GiB below the guard"
                ));
            }
        }
        if !self.kernel_stack_top.is_multiple_of(16) {
            return Err("the kernel stack top is not 16-byte aligned".into());
        }
        Ok(())
    }
}

/// A ring-3 outcome that translated code raises through the `fault` stub, at the RIP
/// Linux would report (after the instruction for traps, on it for faults).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultKind {
    /// The Linux signal number the process gets.
    pub signal: i32,
    pub reason: &'static str,
    /// A trap: the instruction completed (int3, int1), so it counts as executed.
    pub trap: bool,
}

const fn kind(signal: i32, reason: &'static str) -> FaultKind {
    FaultKind {
        signal,
        reason,
        trap: false,
    }
}

const fn trap(signal: i32, reason: &'static str) -> FaultKind {
    FaultKind {
        signal,
        reason,
        trap: true,
    }
}

const SIGILL: i32 = 4;
const SIGTRAP: i32 = 5;
const SIGSEGV: i32 = 11;

/// Every fault translated code can raise; the `fault_kind` slot holds an index here.
pub const FAULT_KINDS: &[FaultKind] = &[
    kind(SIGILL, "invalid opcode (#UD)"),
    trap(SIGTRAP, "breakpoint (#BP)"),
    trap(SIGTRAP, "debug trap (#DB)"),
    kind(
        SIGSEGV,
        "general protection fault (#GP): privileged instruction at ring 3",
    ),
    kind(
        SIGSEGV,
        "general protection fault (#GP): the interrupt gate is kernel-only",
    ),
    kind(
        SIGSEGV,
        "page fault (#PF): instruction fetch from an unmapped or non-executable page",
    ),
    kind(SIGSEGV, "page fault (#PF): access to a kernel address"),
    kind(
        0,
        "a far control transfer or segment register load at ring 0",
    ),
];

/// Index in [`FAULT_KINDS`] of each kind, by name.
pub mod fault {
    pub const INVALID: u32 = 0;
    pub const BREAKPOINT: u32 = 1;
    pub const DEBUG_TRAP: u32 = 2;
    pub const PRIVILEGED: u32 = 3;
    pub const INTERRUPT_GATE: u32 = 4;
    pub const FETCH: u32 = 5;
    pub const KERNEL_ADDRESS: u32 = 6;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_indices_name_their_kinds() {
        assert!(FAULT_KINDS[fault::INVALID as usize].reason.contains("#UD"));
        assert!(FAULT_KINDS[fault::BREAKPOINT as usize]
            .reason
            .contains("#BP"));
        assert!(FAULT_KINDS[fault::DEBUG_TRAP as usize]
            .reason
            .contains("#DB"));
        assert!(FAULT_KINDS[fault::PRIVILEGED as usize]
            .reason
            .contains("privileged"));
        assert!(FAULT_KINDS[fault::INTERRUPT_GATE as usize]
            .reason
            .contains("gate"));
        assert!(FAULT_KINDS[fault::FETCH as usize].reason.contains("fetch"));
        assert!(FAULT_KINDS[fault::KERNEL_ADDRESS as usize]
            .reason
            .contains("kernel address"));
    }
}
