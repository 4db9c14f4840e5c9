//! `syscall` becomes a direct call into the kernel entry: no ring crossing.

use iced_x86::{Code, Instruction, Register};

use crate::emit::Emitter;
use crate::planted::PlantedBug;

/// Runs `call entry` on the kernel stack and continues at the next guest instruction: the
/// guest RSP is saved and restored, so nothing is written below it.
fn call_on_kernel_stack(e: &mut Emitter, entry: u64, next: u64) {
    let user_rsp = e.slot(e.runtime.user_rsp);
    e.emit_built(Instruction::with2(
        Code::Mov_rm64_r64,
        user_rsp,
        Register::RSP,
    ));
    // The kernel stack is in the top 2 GiB: its address fits a sign-extended imm32.
    e.emit_built(Instruction::with2(
        Code::Mov_rm64_imm32,
        Register::RSP,
        e.runtime.kernel_stack_top as i32,
    ));
    e.jump_to_address(Code::Call_rel32_64, entry);
    e.emit_built(Instruction::with2(
        Code::Mov_r64_rm64,
        Register::RSP,
        user_rsp,
    ));
    e.exit(Code::Jmp_rel32_64, next);
}

/// `int 0x80`, the 32-bit system call entry: only RAX changes; the kernel learns the
/// instruction's address from the target slot.
pub fn int80(e: &mut Emitter, instruction: &Instruction) {
    let target = e.slot(e.runtime.target);
    e.store_u64(target, instruction.ip());
    call_on_kernel_stack(e, e.runtime.compat_entry, instruction.next_ip());
}

/// RCX = the next guest RIP (the syscall contract; RCX is no syscall argument), then the
/// call into the kernel entry, which sets R11 = RFLAGS and RAX = the result.
pub fn syscall(e: &mut Emitter, instruction: &Instruction) {
    let next = instruction.next_ip();
    if e.planted == Some(PlantedBug::SyscallRcx) {
        call_on_kernel_stack(e, e.runtime.syscall_entry, next);
        return;
    }
    if next <= u32::MAX as u64 {
        e.emit_built(Instruction::with2(
            Code::Mov_r32_imm32,
            Register::ECX,
            next as u32,
        ));
    } else {
        e.emit_built(Instruction::with2(Code::Mov_r64_imm64, Register::RCX, next));
    }
    call_on_kernel_stack(e, e.runtime.syscall_entry, next);
}
