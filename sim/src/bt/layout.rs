//! Addresses of the ring-0 runtime and the machine code of its stubs.
//!
//! Each stub that needs the simulator executes `syscall`: at ring 0 that is the
//! simulator's hypercall (Unicorn's syscall hook sees which stub by its address), not a
//! ring crossing. The guest's own `syscall`s never execute: the translator turned them into
//! calls to the kernel entry stub.
//!
//! Indirect branches and returns go through the lookup stub, which probes a table at the
//! code cache's start, as DynamoRIO's indirect-branch lookup does: 2^16 entries of 16
//! bytes, indexed by the guest target's low 16 bits, each the target negated (so that an
//! `lea` and a `jrcxz` compare it without touching the flags) and its translation. Only a
//! miss leaves Unicorn, through the lookup-miss stub's hypercall; the simulator then fills
//! the entry (`CodeCache::publish`).

use iced_x86::code_asm::*;
use translator::runtime::{Runtime, USER_MAX};
use translator::Source;

pub const BASE: u64 = 0xffff_ffff_8000_0000;
/// One page of stubs, supervisor read-execute.
pub const STUBS: u64 = BASE;
/// One page of slots, supervisor read-write.
pub const DATA: u64 = BASE + 0x1_0000;
pub const KERNEL_STACK: u64 = BASE + 0x2_0000;
pub const KERNEL_STACK_TOP: u64 = BASE + 0x3_0000;
/// The lookup table, then the code cache, which grows up a page at a time.
pub const CACHE: u64 = BASE + 0x100_0000;
/// Entries in the lookup table, and the guest-target bits that index it.
pub const LOOKUP_ENTRIES: u64 = 1 << 16;
pub const LOOKUP_TABLE: u64 = CACHE;
/// Where translated code starts, past the table.
pub const CODE: u64 = LOOKUP_TABLE + LOOKUP_ENTRIES * 16;
/// The code cache's end: 1 GiB, far below the guard.
pub const CACHE_END: u64 = BASE + 0x4000_0000;

pub const DISPATCH: u64 = STUBS;
pub const SYSCALL_ENTRY: u64 = STUBS + 0x80;
pub const FAULT: u64 = STUBS + 0xc0;
/// Entered once: loads the sandbox bound, then jumps to the program's first block.
pub const START: u64 = STUBS + 0x100;
pub const COMPAT_ENTRY: u64 = STUBS + 0x200;
pub const EMULATE: u64 = STUBS + 0x240;
/// The lookup's miss path, and the lookup itself.
pub const LOOKUP_MISS: u64 = STUBS + 0x280;
pub const LOOKUP: u64 = STUBS + 0x2c0;

/// Slots where the lookup keeps the two registers it works in.
const LOOKUP_RCX: u64 = DATA + 0x40;
const LOOKUP_RDX: u64 = DATA + 0x48;
/// The runtime's slots, from `target` on: what a task switch saves and restores.
pub const SLOTS_END: u64 = DATA + 0x50;

/// Slot: where `dispatch` and an indirect-branch lookup continue (written by the simulator).
pub const NEXT: u64 = DATA + 0x38;

pub const RUNTIME: Runtime = Runtime {
    dispatch: DISPATCH,
    syscall_entry: SYSCALL_ENTRY,
    compat_entry: COMPAT_ENTRY,
    fault: FAULT,
    emulate: EMULATE,
    lookup: LOOKUP,
    target: DATA,
    next: NEXT,
    user_rsp: DATA + 0x08,
    spill: DATA + 0x10,
    fs_base: DATA + 0x18,
    gs_base: DATA + 0x20,
    fault_rip: DATA + 0x28,
    fault_kind: DATA + 0x30,
    kernel_stack_top: KERNEL_STACK_TOP,
};

/// What a hypercall at a given address asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hypercall {
    /// Translate (or find) the block at the target slot; continue there.
    Dispatch,
    /// The same, for an indirect branch or a return.
    Indirect,
    /// The guest's syscall, from the kernel entry.
    KernelEntry,
    /// The guest's `int 0x80`, from the 32-bit entry.
    CompatEntry,
    /// Carry out a segment load or far transfer as ring 3 would.
    Emulate,
    /// A ring-3 fault raised by translated code.
    Fault,
}

/// XCR0: x87, SSE, and MPX's BNDREGS and BNDCSR state.
const XCR0: u32 = 0x1b;
/// RFLAGS at the start of the program, as at ring 3 (IF set).
const START_RFLAGS: u32 = 0x202;

fn mem(address: u64) -> AsmMemoryOperand {
    qword_ptr(address)
}

type Build = fn(&mut CodeAssembler) -> Result<(), IcedError>;

/// The stubs, each at its fixed address, with what its instructions are there for.
const STUB_CODE: &[(u64, Source, Build)] = &[
    (DISPATCH, Source::ControlFlow, |a| {
        a.syscall()?;
        a.jmp(mem(NEXT))
    }),
    // R11 = RFLAGS, as the syscall instruction would leave it; RAX comes back from the kernel.
    (SYSCALL_ENTRY, Source::Syscall, |a| {
        a.pushfq()?;
        a.pop(r11)?;
        a.syscall()?;
        a.ret()
    }),
    (FAULT, Source::Sensitive, |a| {
        a.syscall()?;
        a.ud2()
    }),
    (COMPAT_ENTRY, Source::Syscall, |a| {
        a.syscall()?;
        a.ret()
    }),
    (EMULATE, Source::Sensitive, |a| {
        a.syscall()?;
        a.jmp(mem(NEXT))
    }),
    (LOOKUP_MISS, Source::ControlFlow, |a| {
        a.mov(rcx, mem(LOOKUP_RCX))?;
        a.mov(rdx, mem(LOOKUP_RDX))?;
        a.syscall()?;
        a.jmp(mem(NEXT))
    }),
    // RDX holds the target and RCX works out its entry: the target's low 16 bits, doubled,
    // scaled by 8. No instruction here writes a flag.
    (LOOKUP, Source::ControlFlow, |a| {
        let mut miss = a.create_label();
        let mut found = a.create_label();
        a.mov(mem(LOOKUP_RCX), rcx)?;
        a.mov(mem(LOOKUP_RDX), rdx)?;
        a.mov(rdx, mem(RUNTIME.target))?;
        a.movzx(ecx, dx)?;
        a.lea(rcx, qword_ptr(rcx + rcx))?;
        a.mov(rcx, qword_ptr(rcx * 8 + LOOKUP_TABLE as i64 as i32))?;
        a.lea(rcx, qword_ptr(rcx + rdx))?;
        a.jrcxz(found)?;
        a.set_label(&mut miss)?;
        a.jmp(LOOKUP_MISS)?;
        a.set_label(&mut found)?;
        a.movzx(ecx, dx)?;
        a.lea(rcx, qword_ptr(rcx + rcx))?;
        a.mov(rcx, qword_ptr(rcx * 8 + (LOOKUP_TABLE + 8) as i64 as i32))?;
        // An empty entry matches target 0: its translation, 0, sends it to the miss path.
        a.jrcxz(miss)?;
        a.mov(mem(NEXT), rcx)?;
        a.mov(rcx, mem(LOOKUP_RCX))?;
        a.mov(rdx, mem(LOOKUP_RDX))?;
        a.jmp(mem(NEXT))
    }),
    (START, Source::ControlFlow, |a| {
        a.mov(rsp, KERNEL_STACK_TOP)?;
        a.xor(ecx, ecx)?;
        a.mov(eax, XCR0)?;
        a.xor(edx, edx)?;
        a.xsetbv()?;
        a.mov(rax, USER_MAX)?;
        // Index only, no base: lower bound 0, upper bound RAX.
        a.bndmk(bnd0, qword_ptr(rax * 1))?;
        a.xor(eax, eax)?;
        a.xor(ecx, ecx)?;
        a.push(START_RFLAGS as i32)?;
        a.popfq()?;
        a.mov(rsp, mem(RUNTIME.user_rsp))?;
        a.jmp(mem(NEXT))
    }),
];

/// Each stub's address and code.
pub fn stubs() -> Vec<(u64, Vec<u8>)> {
    STUB_CODE
        .iter()
        .map(|&(address, _, build)| {
            let mut a = CodeAssembler::new(64).expect("64-bit assembler");
            build(&mut a).expect("stubs assemble");
            (address, a.assemble(address).expect("stubs encode"))
        })
        .collect()
}

/// What the instruction at `rip` in the stubs' page is there for: the stub it lies in
/// (the last one that starts at or before it) says.
pub fn stub_source(rip: u64) -> Option<Source> {
    if !(STUBS..DATA).contains(&rip) {
        return None;
    }
    STUB_CODE
        .iter()
        .filter(|(address, ..)| *address <= rip)
        .max_by_key(|(address, ..)| *address)
        .map(|&(_, source, _)| source)
}

/// Whether `rip` is the `ret` of a kernel entry, after its hypercall: where a task that
/// gives up the CPU in a syscall stops at ring 0.
pub fn is_entry_return(rip: u64) -> bool {
    rip == SYSCALL_ENTRY + 5 || rip == COMPAT_ENTRY + 2
}

/// The hypercall whose `syscall` instruction is at `rip`.
pub fn hypercall_at(rip: u64) -> Option<Hypercall> {
    match rip {
        DISPATCH => Some(Hypercall::Dispatch),
        // A lookup's miss: two register reloads (8 bytes each) come first.
        r if r == LOOKUP_MISS + 16 => Some(Hypercall::Indirect),
        // pushfq (1 byte) and pop r11 (2 bytes) come first.
        r if r == SYSCALL_ENTRY + 3 => Some(Hypercall::KernelEntry),
        FAULT => Some(Hypercall::Fault),
        COMPAT_ENTRY => Some(Hypercall::CompatEntry),
        EMULATE => Some(Hypercall::Emulate),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iced_x86::{Decoder, DecoderOptions, Mnemonic};

    #[test]
    fn every_hypercall_is_a_syscall_where_it_is_expected() {
        let starts: Vec<u64> = STUB_CODE.iter().map(|&(address, ..)| address).collect();
        for (address, code) in stubs() {
            let next = starts
                .iter()
                .copied()
                .filter(|&start| start > address)
                .min()
                .unwrap_or(DATA);
            assert!(
                address + code.len() as u64 <= next,
                "stub at {address:#x} overlaps the next"
            );
            let decoder = Decoder::with_ip(64, &code, address, DecoderOptions::MPX);
            for instruction in decoder {
                let expected = instruction.mnemonic() == Mnemonic::Syscall;
                assert_eq!(
                    hypercall_at(instruction.ip()).is_some(),
                    expected,
                    "{instruction} at {:#x}",
                    instruction.ip()
                );
            }
        }
    }

    #[test]
    fn the_kernel_entries_end_with_a_ret_after_their_hypercall() {
        for (address, code) in stubs() {
            for instruction in Decoder::with_ip(64, &code, address, DecoderOptions::MPX) {
                if is_entry_return(instruction.ip()) {
                    assert_eq!(instruction.mnemonic(), Mnemonic::Ret);
                    let before = instruction.ip() - 2;
                    assert!(matches!(
                        hypercall_at(before),
                        Some(Hypercall::KernelEntry | Hypercall::CompatEntry)
                    ));
                }
            }
        }
        assert!(is_entry_return(SYSCALL_ENTRY + 5) && is_entry_return(COMPAT_ENTRY + 2));
    }

    #[test]
    fn a_lookup_leaves_unicorn_only_from_its_miss_path() {
        assert_eq!(hypercall_at(LOOKUP_MISS + 16), Some(Hypercall::Indirect));
        assert_eq!(hypercall_at(CACHE), None);
        assert_eq!(hypercall_at(CODE), None);
        // No instruction of the lookup writes a flag: the guest's are live across a `ret`.
        let (_, code) = stubs()
            .into_iter()
            .find(|&(address, _)| address == LOOKUP)
            .unwrap();
        for instruction in Decoder::with_ip(64, &code, LOOKUP, DecoderOptions::NONE) {
            assert_eq!(instruction.rflags_modified(), 0, "{instruction}");
        }
    }
}
