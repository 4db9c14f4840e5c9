//! The instruction forms the translator emits around guest code at ring 0
//! (translator/src/rewrite/*.rs and emit.rs), so that each has its own row even when no
//! input binary contains it.

use iced_x86::{Code, Instruction, MemoryOperand, Register};

/// A runtime slot: the translator addresses its slots as absolute `[disp32]` operands.
fn slot() -> MemoryOperand {
    MemoryOperand::with_base_displ_size(Register::None, 0x7fff_f000, 8)
}

fn with_slot(code: Code) -> Instruction {
    Instruction::with1(code, slot()).expect("a slot operand encodes")
}

/// One instance of each instruction form a rewrite emits.
pub fn forms() -> Vec<Instruction> {
    let stub = 0xffff_ffff_8000_0000;
    let mut forms = vec![
        // sandbox: the check, the address formed in a scratch register, the spill.
        Instruction::with2(Code::Bndcu_bnd_rm64, Register::BND0, Register::RAX),
        Instruction::with2(
            Code::Lea_r64_m,
            Register::RAX,
            MemoryOperand::new(
                Register::RBX,
                Register::RCX,
                8,
                16,
                1,
                false,
                Register::None,
            ),
        ),
        Instruction::with2(Code::Mov_rm64_r64, slot(), Register::RAX),
        Instruction::with2(Code::Mov_r64_rm64, Register::RAX, slot()),
        Instruction::with2(
            Code::Mov_r64_rm64,
            Register::RAX,
            MemoryOperand::with_base(Register::RAX),
        ),
        Instruction::with2(Code::Mov_r64_imm64, Register::RAX, 0x7fff_0000_1000u64),
        Instruction::with2(Code::Mov_r32_imm32, Register::ECX, 0x40_1000u32),
        Instruction::with2(Code::Mov_r16_imm16, Register::AX, 0x33u32),
        Instruction::with2(Code::Mov_rm16_imm16, slot(), 0x33u32),
        // branches: pushing the guest return address, exits, the lookup, the kernel call.
        Instruction::with1(Code::Pushq_imm32, 0x40_1000i32),
        Instruction::with2(
            Code::Lea_r64_m,
            Register::RSP,
            MemoryOperand::with_base_displ(Register::RSP, -8),
        ),
        Instruction::with2(Code::Mov_rm32_imm32, slot(), 0x40_1000u32),
        Instruction::with2(Code::Mov_rm64_r64, slot(), Register::RSP),
        Instruction::with2(Code::Mov_rm64_imm32, Register::RSP, -0x1000i32),
        Instruction::with_branch(Code::Jmp_rel32_64, stub),
        Instruction::with_branch(Code::Call_rel32_64, stub),
        Ok(Instruction::with(Code::Syscall)),
        Ok(Instruction::with(Code::Nopd)),
        // popf at ring 0: the popped value masked in a slot, then a real popf.
        Instruction::with2(Code::And_rm32_imm32, slot(), 0xffff_cdffu32),
        Instruction::with2(Code::Or_rm32_imm32, slot(), 0x200u32),
        Instruction::with2(Code::And_rm16_imm16, slot(), 0xcdffu32),
        Instruction::with2(Code::Or_rm16_imm16, slot(), 0x200u32),
        Ok(Instruction::with(Code::Popfq)),
        Ok(Instruction::with(Code::Popfw)),
        Ok(Instruction::with(Code::Pushfq)),
    ]
    .into_iter()
    .collect::<Result<Vec<_>, _>>()
    .expect("the translator's forms encode");
    forms.extend(
        [
            Code::Jmp_rm64,
            Code::Pop_rm64,
            Code::Push_rm64,
            Code::Pop_rm16,
            Code::Push_rm16,
        ]
        .map(with_slot),
    );
    forms
}
