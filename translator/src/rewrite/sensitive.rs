//! Sensitive instructions: each gets exactly the outcome it has at ring 3.

use iced_x86::{Code, Instruction, MemoryOperand, OpKind, Register};

use crate::emit::Emitter;
use crate::rewrite::sandbox;
use crate::runtime::{fault, RFLAGS_IF, RFLAGS_IOPL, USER_CS, USER_DS};

/// `mov dest, cs|ss` at ring 0 would show the kernel's selectors: store ring 3's instead.
/// A 32- or 64-bit register gets the selector zero-extended; memory gets 16 bits.
pub fn segment_read(e: &mut Emitter, instruction: &Instruction) {
    let selector = if instruction.op1_register() == Register::CS {
        USER_CS as u32
    } else {
        USER_DS as u32
    };
    if instruction.op0_kind() == OpKind::Register {
        let dest = instruction.op0_register();
        let built = if dest.is_gpr16() {
            Instruction::with2(Code::Mov_r16_imm16, dest, selector)
        } else {
            Instruction::with2(Code::Mov_r32_imm32, dest.full_register32(), selector)
        };
        e.emit_built(built);
    } else {
        let mut store = Instruction::with2(
            Code::Mov_rm16_imm16,
            iced_x86::MemoryOperand::with_base(Register::RAX),
            selector,
        )
        .expect("a 16-bit store encodes");
        sandbox::copy_memory_operand(instruction, &mut store);
        sandbox::check_and_emit(e, store);
    }
}

/// MPX is off at ring 3, so its instructions are nops there.
pub fn bounds_hint(e: &mut Emitter, _instruction: &Instruction) {
    e.emit(Instruction::with(Code::Nopd));
}

pub fn breakpoint(e: &mut Emitter, instruction: &Instruction) {
    e.fault(fault::BREAKPOINT, instruction.next_ip());
}

pub fn debug_trap(e: &mut Emitter, instruction: &Instruction) {
    e.fault(fault::DEBUG_TRAP, instruction.next_ip());
}

pub fn software_interrupt(e: &mut Emitter, instruction: &Instruction) {
    e.fault(fault::INTERRUPT_GATE, instruction.ip());
}

pub fn privileged(e: &mut Emitter, instruction: &Instruction) {
    e.fault(fault::PRIVILEGED, instruction.ip());
}

/// Segment loads and far transfers depend on selector values only known when they run:
/// the simulator carries them out as ring 3 would (it has the GDT ring 3 sees).
pub fn emulated(e: &mut Emitter, instruction: &Instruction) {
    let at = e.slot(e.runtime.fault_rip);
    e.store_u64(at, instruction.ip());
    e.jump_to_address(Code::Jmp_rel32_64, e.runtime.emulate);
}

pub fn invalid(e: &mut Emitter, instruction: &Instruction) {
    e.fault(fault::INVALID, instruction.ip());
}

pub fn fetch_fault(e: &mut Emitter, instruction: &Instruction) {
    e.fault(fault::FETCH, instruction.ip());
}

const IF: u32 = RFLAGS_IF as u32;
const IOPL: u32 = RFLAGS_IOPL as u32;

/// popf at ring 0 could set IF and IOPL, which ring 3's popf silently keeps: the popped
/// value gets ring 3's (IF = 1, IOPL = 0) in the spill slot before the real popf. The
/// stack is left as ring 3 leaves it: the slot popf read still holds the guest's value
/// (kept in the target slot and stored back), and RSP moves up by the operand size.
pub fn popf(e: &mut Emitter, instruction: &Instruction) {
    let (spill, original) = (e.slot(e.runtime.spill), e.slot(e.runtime.target));
    let (pop, and, or, push, popf, size) = if instruction.code() == Code::Popfw {
        (
            Code::Pop_rm16,
            Code::And_rm16_imm16,
            Code::Or_rm16_imm16,
            Code::Push_rm16,
            Code::Popfw,
            2,
        )
    } else {
        (
            Code::Pop_rm64,
            Code::And_rm32_imm32,
            Code::Or_rm32_imm32,
            Code::Push_rm64,
            Code::Popfq,
            8,
        )
    };
    e.emit_built(Instruction::with1(pop, spill));
    // Pushed and popped again: a copy into the second slot that rewrites the same bytes.
    e.emit_built(Instruction::with1(push, spill));
    e.emit_built(Instruction::with1(pop, original));
    // The 16-bit form takes a 16-bit immediate.
    let keep = if popf == Code::Popfw {
        !(IF | IOPL) & 0xffff
    } else {
        !(IF | IOPL)
    };
    e.emit_built(Instruction::with2(and, spill, keep));
    e.emit_built(Instruction::with2(or, spill, IF));
    e.emit_built(Instruction::with1(push, spill));
    e.emit(Instruction::with(popf));
    // The guest's own value back where popf read it; lea moves RSP and leaves the flags.
    e.emit_built(Instruction::with1(push, original));
    let above = MemoryOperand::with_base_displ(Register::RSP, size);
    e.emit_built(Instruction::with2(Code::Lea_r64_m, Register::RSP, above));
}
