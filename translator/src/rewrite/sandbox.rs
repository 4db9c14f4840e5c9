//! Software fault isolation: every memory access of translated code stays in the user half.
//!
//! At ring 0 the page tables' user/supervisor bit no longer protects the kernel, so memory
//! operands are checked before the access with MPX's `bndcu` against `bnd0` (upper bound
//! 0x7fff_ffff_ffff), which the runtime loads once. `bndcu` touches no flag and no register
//! and raises #BR when its operand lies above the user half (kernel addresses and
//! non-canonical ones alike).
//!
//! For `[base + disp]` with |disp| < GUARD_SIZE, the base register itself is checked, with
//! `bndcu`'s register form: base at most 2^47 - 1 and such a displacement can only reach
//! the user half, the non-canonical hole (which faults) or, wrapping below 0, the unmapped
//! guard at the top of the address space: one instruction. Any other operand (an index
//! register, which may legitimately be negative, or a large displacement) has its effective
//! address formed with `lea` in a scratch register and checked whole: two instructions with a
//! register that is dead there, four when one must be spilled and reloaded. A register
//! checked once is not checked again in the block until something writes it.
//! (Unicorn 2.1.5 mis-decodes `bndcu` with a memory operand that has a SIB byte or a
//! displacement: it reads those bytes twice, as this translator's ring-0 runs showed. The
//! register form has no such bytes.)
//!
//! No check is needed, by invariant, for:
//! - RIP-relative and absolute operands: the address is known now; one above the user half
//!   becomes a guaranteed fault.
//! - `[rsp + disp]` with |disp| < GUARD_SIZE, and push/pop/call/ret: RSP is checked after
//!   every instruction that writes it other than a push or pop of its own (enter, leave,
//!   add/sub/and/lea/mov/xchg to RSP, `ret imm16`, and emulated `retf`/`iretq` included), so
//!   it stays in the user half; a push or pop moves it by 8 and touches the stack there. The
//!   check opens the next instruction's translation, so that, as at ring 3, the instruction
//!   that moved RSP completes and the fault belongs to the one after it.
//! - `fs:[disp]` and `gs:[disp]` with disp >= -GUARD_SIZE: the kernel keeps FS and GS bases in
//!   the user half (arch_prctl refuses others). Other `fs:`/`gs:` operands have their linear
//!   address formed in a scratch register and checked.
//! - Operands with 32-bit address size: they cannot leave the low 4 GiB.

use iced_x86::{
    Code, Instruction, InstructionInfoFactory, MemoryOperand, Mnemonic, OpAccess, OpKind, Register,
    UsedMemory,
};

use crate::emit::Emitter;
use crate::planted::PlantedBug;
use crate::rules::Source;
use crate::runtime::{fault, GUARD_SIZE, USER_MAX};

/// A register a rewrite may use around `instruction`: one that is dead there if there is
/// one (free), or one the instruction does not touch, spilled to the runtime's slot.
pub struct Scratch {
    pub register: Register,
    spilled: bool,
}

/// Takes a scratch register for `instruction`, spilling it if none is dead.
pub fn borrow_scratch(e: &mut Emitter, instruction: &Instruction) -> Scratch {
    let mut factory = InstructionInfoFactory::new();
    let info = factory.info(instruction);
    let used: Vec<Register> = info
        .used_registers()
        .iter()
        .map(|r| r.register().full_register())
        .collect();
    let read: Vec<Register> = info
        .used_registers()
        .iter()
        .filter(|r| !matches!(r.access(), OpAccess::Write | OpAccess::CondWrite))
        .map(|r| r.register().full_register())
        .collect();
    // A dead register may even be the instruction's destination: its value before the
    // instruction matters to nobody.
    if let Some(&register) = e.dead.iter().find(|r| !read.contains(r)) {
        return Scratch {
            register,
            spilled: false,
        };
    }
    let register = *crate::liveness::SCRATCH
        .iter()
        .find(|r| !used.contains(r))
        .expect("no instruction uses 14 registers");
    let spill = e.slot(e.runtime.spill);
    e.emit_built(Instruction::with2(Code::Mov_rm64_r64, spill, register));
    e.live_spill = Some(register);
    Scratch {
        register,
        spilled: true,
    }
}

/// Gives the scratch register its value back, if it was spilled.
pub fn release_scratch(e: &mut Emitter, scratch: Scratch) {
    if scratch.spilled && e.planted != Some(PlantedBug::SpillNotRestored) {
        let spill = e.slot(e.runtime.spill);
        e.emit_built(Instruction::with2(
            Code::Mov_r64_rm64,
            scratch.register,
            spill,
        ));
    }
    if scratch.spilled {
        e.live_spill = None;
    }
}

/// Gives `to`'s memory operand the base, index, scale, displacement and segment of
/// `from`'s.
pub fn copy_memory_operand(from: &Instruction, to: &mut Instruction) {
    to.set_memory_base(from.memory_base());
    to.set_memory_index(from.memory_index());
    to.set_memory_index_scale(from.memory_index_scale());
    to.set_memory_displacement64(from.memory_displacement64());
    to.set_memory_displ_size(from.memory_displ_size());
    to.set_segment_prefix(from.segment_prefix());
    to.set_ip(from.ip());
    to.set_len(from.len());
}

fn is_32_bit(register: Register) -> bool {
    register != Register::None && register.is_gpr32()
}

/// What an access needs before it runs.
enum Check {
    None,
    /// Check these address registers.
    Registers(Vec<Register>),
    /// Form the whole linear address (with this segment's base, if any) and check it.
    Linear(Option<Register>, UsedMemory),
}

fn check_for(memory: &UsedMemory) -> Check {
    let (base, index, displacement) = (memory.base(), memory.index(), memory.displacement() as i64);
    if is_32_bit(base) || is_32_bit(index) {
        return Check::None;
    }
    let small = displacement.unsigned_abs() < GUARD_SIZE;
    if matches!(memory.segment(), Register::FS | Register::GS) {
        let plain = base == Register::None
            && index == Register::None
            && displacement >= -(GUARD_SIZE as i64);
        return if plain {
            Check::None
        } else {
            Check::Linear(Some(memory.segment()), *memory)
        };
    }
    if base == Register::RSP && index == Register::None && small {
        return Check::None;
    }
    // Absolute addresses were checked when the block was translated.
    if base == Register::None && index == Register::None {
        return Check::None;
    }
    // xlat indexes with AL: at most 255 past the base, which the guard covers.
    let index = if index.is_gpr8() {
        Register::None
    } else {
        index
    };
    if index == Register::None && small && base.is_gpr64() {
        return Check::Registers(vec![base]);
    }
    Check::Linear(None, *memory)
}

/// Checks that `register` holds an address in the user half.
pub fn bndcu(e: &mut Emitter, register: Register) {
    e.with_source(Source::Sandbox, |e| {
        e.emit_built(Instruction::with2(
            Code::Bndcu_bnd_rm64,
            Register::BND0,
            register,
        ))
    });
}

/// A memory operand's parts, as the address computation sees them.
#[derive(Clone, Copy)]
pub struct Address {
    pub segment: Option<Register>,
    pub base: Register,
    pub index: Register,
    pub scale: u32,
    pub displacement: i64,
}

impl Address {
    /// The explicit memory operand of `instruction`.
    pub fn of(instruction: &Instruction) -> Self {
        Self {
            segment: matches!(instruction.segment_prefix(), Register::FS | Register::GS)
                .then(|| instruction.segment_prefix()),
            base: instruction.memory_base(),
            index: instruction.memory_index(),
            scale: instruction.memory_index_scale(),
            displacement: instruction.memory_displacement64() as i64,
        }
    }

    fn used(memory: &UsedMemory, segment: Option<Register>) -> Self {
        // xlat indexes with AL: at most 255 past the base.
        let (index, displacement) = if memory.index().is_gpr8() {
            (Register::None, memory.displacement() as i64 + 255)
        } else {
            (memory.index(), memory.displacement() as i64)
        };
        Self {
            segment,
            base: memory.base(),
            index,
            scale: memory.scale(),
            displacement,
        }
    }
}

/// Puts the linear address of `address` (segment base included) in `scratch`, touching no
/// flag. RIP-relative operands must have been resolved to their target first.
pub fn form_linear_address(e: &mut Emitter, scratch: Register, address: Address) {
    let Address {
        segment,
        base,
        index,
        scale,
        displacement,
    } = address;
    let Some(segment) = segment else {
        let operand =
            MemoryOperand::new(base, index, scale, displacement, 8, false, Register::None);
        e.emit_built(Instruction::with2(Code::Lea_r64_m, scratch, operand));
        return;
    };
    let base_slot = e.slot(if segment == Register::FS {
        e.runtime.fs_base
    } else {
        e.runtime.gs_base
    });
    e.emit_built(Instruction::with2(Code::Mov_r64_rm64, scratch, base_slot));
    let first = match base {
        Register::None => MemoryOperand::with_base_displ(scratch, displacement),
        Register::RSP => MemoryOperand::new(
            Register::RSP,
            scratch,
            1,
            displacement,
            8,
            false,
            Register::None,
        ),
        base => MemoryOperand::new(scratch, base, 1, displacement, 8, false, Register::None),
    };
    e.emit_built(Instruction::with2(Code::Lea_r64_m, scratch, first));
    if index != Register::None {
        let indexed = MemoryOperand::new(scratch, index, scale, 0, 0, false, Register::None);
        e.emit_built(Instruction::with2(Code::Lea_r64_m, scratch, indexed));
    }
}

/// Checks a whole linear address, formed in a scratch register (a dead one, or a spilled
/// one given back after).
fn check_linear(
    e: &mut Emitter,
    instruction: &Instruction,
    segment: Option<Register>,
    memory: &UsedMemory,
) {
    e.with_source(Source::Sandbox, |e| {
        let borrowed = borrow_scratch(e, instruction);
        form_linear_address(e, borrowed.register, Address::used(memory, segment));
        bndcu(e, borrowed.register);
        release_scratch(e, borrowed);
    });
}

/// The full registers the instruction writes.
fn written_registers(
    instruction: &Instruction,
    factory: &mut InstructionInfoFactory,
) -> Vec<Register> {
    factory
        .info(instruction)
        .used_registers()
        .iter()
        .filter(|r| {
            matches!(
                r.access(),
                OpAccess::Write
                    | OpAccess::ReadWrite
                    | OpAccess::CondWrite
                    | OpAccess::ReadCondWrite
            )
        })
        .map(|r| r.register().full_register())
        .collect()
}

/// Whether the instruction writes RSP in a way that needs checking: anything but a push or
/// pop of its own, which moves RSP by 8 and touches the stack there, so that from a checked
/// RSP it reaches the guard or the non-canonical hole, and faults, before anything else.
/// (A small adjustment alone would be safe too, but several in a row are not.)
fn moves_rsp(instruction: &Instruction, written: &[Register]) -> bool {
    if !written.contains(&Register::RSP) {
        return false;
    }
    let into_rsp = instruction.op0_kind() == OpKind::Register
        && instruction.op0_register().full_register() == Register::RSP;
    let push_or_pop = matches!(
        instruction.mnemonic(),
        Mnemonic::Push
            | Mnemonic::Pop
            | Mnemonic::Pushf
            | Mnemonic::Pushfq
            | Mnemonic::Popf
            | Mnemonic::Popfq
    );
    !push_or_pop || into_rsp
}

/// Rewrites a RIP-relative operand to address the same guest data from the code cache.
fn emit_rip_relative(e: &mut Emitter, mut instruction: Instruction, target: u64) {
    if instruction.mnemonic() == Mnemonic::Lea {
        // The address itself is the result: load it as a constant (mov, like lea, leaves
        // the flags alone; a 32-bit mov zero-extends as a 32-bit lea does).
        let dest = instruction.op0_register();
        let load = if dest.is_gpr64() && target > u32::MAX as u64 {
            Instruction::with2(Code::Mov_r64_imm64, dest, target)
        } else if dest.is_gpr16() {
            Instruction::with2(Code::Mov_r16_imm16, dest, target as u16 as u32)
        } else {
            Instruction::with2(Code::Mov_r32_imm32, dest.full_register32(), target as u32)
        };
        e.emit_built(load);
        return;
    }
    if target < 0x8000_0000 {
        instruction.set_memory_base(Register::None);
        instruction.set_memory_displacement64(target);
        instruction.set_memory_displ_size(8);
        e.emit(instruction);
        return;
    }
    let borrowed = borrow_scratch(e, &instruction);
    let scratch = borrowed.register;
    e.emit_built(Instruction::with2(Code::Mov_r64_imm64, scratch, target));
    instruction.set_memory_base(scratch);
    instruction.set_memory_displacement64(0);
    instruction.set_memory_displ_size(0);
    e.emit(instruction);
    release_scratch(e, borrowed);
}

/// Emits `instruction` with its memory accesses confined to the user half.
pub fn check_and_emit(e: &mut Emitter, instruction: Instruction) {
    let mut factory = InstructionInfoFactory::new();
    let accesses: Vec<UsedMemory> = factory
        .info(&instruction)
        .used_memory()
        .iter()
        .filter(|m| m.access() != OpAccess::NoMemAccess)
        .copied()
        .collect();
    let static_address = if instruction.is_ip_rel_memory_operand() {
        Some(instruction.ip_rel_memory_address())
    } else if instruction.op_kinds().any(|k| k == OpKind::Memory)
        && instruction.memory_base() == Register::None
        && instruction.memory_index() == Register::None
        && !matches!(instruction.segment_prefix(), Register::FS | Register::GS)
    {
        Some(instruction.memory_displacement64())
    } else {
        None
    };
    if let Some(address) = static_address {
        if !accesses.is_empty() && address > USER_MAX {
            e.with_source(Source::Sandbox, |e| {
                e.fault(fault::KERNEL_ADDRESS, instruction.ip())
            });
            return;
        }
    }
    if instruction.is_ip_rel_memory_operand() {
        emit_rip_relative(e, instruction, instruction.ip_rel_memory_address());
    } else {
        for memory in &accesses {
            match check_for(memory) {
                Check::None => {}
                Check::Registers(registers) => {
                    for register in registers {
                        // Checked earlier in the block and not written since: still good.
                        if !e.checked.contains(&register) {
                            bndcu(e, register);
                            e.checked.push(register);
                        }
                    }
                }
                Check::Linear(segment, memory) => check_linear(e, &instruction, segment, &memory),
            }
        }
        e.emit(instruction);
    }
    let written = written_registers(&instruction, &mut factory);
    e.checked.retain(|r| !written.contains(r));
    if moves_rsp(&instruction, &written) {
        e.rsp_unchecked = true;
    }
}

/// The check of an RSP that the previous instruction moved, if it is still owed.
pub fn check_moved_rsp(e: &mut Emitter) {
    if std::mem::take(&mut e.rsp_unchecked) {
        bndcu(e, Register::RSP);
    }
}
