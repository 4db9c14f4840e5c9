//! Sensitive instructions: each gets exactly the outcome it has at ring 3.

use iced_x86::{Code, Instruction};

use crate::emit::Emitter;
use crate::runtime::fault;

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

pub fn unsupported(e: &mut Emitter, instruction: &Instruction) {
    e.fault(fault::UNSUPPORTED_AT_RING0, instruction.ip());
}

pub fn invalid(e: &mut Emitter, instruction: &Instruction) {
    e.fault(fault::INVALID, instruction.ip());
}

pub fn fetch_fault(e: &mut Emitter, instruction: &Instruction) {
    e.fault(fault::FETCH, instruction.ip());
}

const IF: u32 = 1 << 9;
const IOPL: u32 = 3 << 12;

/// popf at ring 0 could set IF and IOPL, which ring 3's popf silently keeps: the popped
/// value gets ring 3's (IF = 1, IOPL = 0) before the real popf. The value is rewritten in
/// the spill slot and pushed back where it was, so no byte below the guest RSP changes.
pub fn popf(e: &mut Emitter, instruction: &Instruction) {
    let spill = e.slot(e.runtime.spill);
    let (pop, and, or, push, popf) = if instruction.code() == Code::Popfw {
        (
            Code::Pop_rm16,
            Code::And_rm16_imm16,
            Code::Or_rm16_imm16,
            Code::Push_rm16,
            Code::Popfw,
        )
    } else {
        (
            Code::Pop_rm64,
            Code::And_rm32_imm32,
            Code::Or_rm32_imm32,
            Code::Push_rm64,
            Code::Popfq,
        )
    };
    e.emit_built(Instruction::with1(pop, spill));
    e.emit_built(Instruction::with2(and, spill, !(IF | IOPL)));
    e.emit_built(Instruction::with2(or, spill, IF));
    e.emit_built(Instruction::with1(push, spill));
    e.emit(Instruction::with(popf));
}
