//! Direct branches: each way out of the block is a chainable exit.

use iced_x86::{Code, Instruction, MemoryOperand, Register};

use crate::emit::Emitter;

pub fn direct_jump(e: &mut Emitter, instruction: &Instruction) {
    e.exit(Code::Jmp_rel32_64, instruction.near_branch_target());
}

/// A side exit; the fall-through is the rest of the block, or, after the block's last
/// instruction, the exit every block that does not end in a jump gets.
pub fn conditional_jump(e: &mut Emitter, instruction: &Instruction) {
    e.exit(
        instruction.code().as_near_branch(),
        instruction.near_branch_target(),
    );
}

/// jrcxz and the loops exist only with 8-bit displacements: they jump to a local `jmp`.
pub fn counter_jump(e: &mut Emitter, instruction: &Instruction) {
    let taken = e.label();
    e.jump_to_label(instruction.code(), taken);
    e.exit(Code::Jmp_rel32_64, instruction.next_ip());
    e.place(taken);
    e.exit(Code::Jmp_rel32_64, instruction.near_branch_target());
}

/// Pushes the guest return address, so the guest stack is as it would be natively.
pub fn push_guest_address(e: &mut Emitter, address: u64) {
    if address < 0x8000_0000 {
        e.emit_built(Instruction::with1(Code::Pushq_imm32, address as u32));
    } else {
        // lea moves RSP without touching flags; the two stores write only the new slot.
        let below = MemoryOperand::with_base_displ(Register::RSP, -8);
        e.emit_built(Instruction::with2(Code::Lea_r64_m, Register::RSP, below));
        e.store_u64(MemoryOperand::with_base(Register::RSP), address);
    }
}

pub fn direct_call(e: &mut Emitter, instruction: &Instruction) {
    push_guest_address(e, instruction.next_ip());
    e.exit(Code::Jmp_rel32_64, instruction.near_branch_target());
}
