//! Indirect branches and returns: the guest target goes to the runtime's target slot, and
//! the runtime's lookup stub finds its translation.

use iced_x86::{Code, Instruction, MemoryOperand, OpKind, Register};

use crate::emit::Emitter;
use crate::rewrite::{branch::push_guest_address, sandbox};

/// Puts the branch's guest target in the target slot, touching no flag, no register and no
/// stack memory (a `push` would write below RSP, into a leaf function's red zone).
fn load_target(e: &mut Emitter, instruction: &Instruction) {
    let target = e.slot(e.runtime.target);
    if instruction.op0_kind() == OpKind::Register {
        e.emit_built(Instruction::with2(
            Code::Mov_rm64_r64,
            target,
            instruction.op0_register(),
        ));
        return;
    }
    // One scratch register does it all: form the address in it, check it, load through
    // it. (The sandbox's own checks would borrow a second register, and two spills
    // would share the one spill slot.)
    let borrowed = sandbox::borrow_scratch(e, instruction);
    let scratch = borrowed.register;
    if instruction.is_ip_rel_memory_operand() {
        e.emit_built(Instruction::with2(
            Code::Mov_r64_imm64,
            scratch,
            instruction.ip_rel_memory_address(),
        ));
    } else {
        sandbox::form_linear_address(e, scratch, sandbox::Address::of(instruction));
    }
    sandbox::bndcu(e, scratch);
    e.emit_built(Instruction::with2(
        Code::Mov_r64_rm64,
        scratch,
        MemoryOperand::with_base(scratch),
    ));
    e.emit_built(Instruction::with2(Code::Mov_rm64_r64, target, scratch));
    sandbox::release_scratch(e, borrowed);
}

/// The lookup: the runtime's stub finds the target's translation and goes there.
fn lookup(e: &mut Emitter) {
    e.jump_to_address(Code::Jmp_rel32_64, e.runtime.lookup);
}

pub fn indirect_jump(e: &mut Emitter, instruction: &Instruction) {
    load_target(e, instruction);
    lookup(e);
}

pub fn indirect_call(e: &mut Emitter, instruction: &Instruction) {
    // The target first: `call [rsp+8]` reads the stack as it was before the push.
    load_target(e, instruction);
    push_guest_address(e, instruction.next_ip());
    lookup(e);
}

pub fn ret(e: &mut Emitter, instruction: &Instruction) {
    let target = e.slot(e.runtime.target);
    // pop to memory: the guest return address lands in the slot, RSP moves up 8.
    e.emit_built(Instruction::with1(Code::Pop_rm64, target));
    if instruction.op_count() == 1 {
        let release =
            MemoryOperand::with_base_displ(Register::RSP, instruction.immediate16() as i64);
        e.emit_built(Instruction::with2(Code::Lea_r64_m, Register::RSP, release));
        sandbox::bndcu(e, Register::RSP);
    }
    lookup(e);
}
