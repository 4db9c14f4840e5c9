//! Segment loads and far transfers in translated code, carried out as ring 3 would: against
//! the GDT ring 3 sees (Linux's layout), with ring 3's privilege checks. At ring 0 the CPU
//! would accept kernel selectors and refuse user stack selectors, so these instructions
//! cannot simply run.

use iced_x86::{Code, Instruction, Mnemonic, OpKind, Register};
use nix::sys::signal::Signal;
use unicorn_engine::{RegisterX86, Unicorn};

use super::layout::RUNTIME;
use crate::kernel::Unsupported;
use crate::machine::{set_segment_base, SegmentBase};
use crate::system::{Flow, Stop, System};
use translator::runtime::{
    RFLAGS_IF as IF, RFLAGS_IOPL as IOPL, USER32_CS, USER_CS, USER_DS, USER_MAX,
};

/// Why an emulated instruction did not complete.
enum Failure {
    /// #GP at ring 3.
    Protection,
    /// #PF at ring 3 on this address.
    Page(u64),
    /// Something ringsim does not model yet.
    Unsupported(String),
}

/// General registers by iced's name, for reading operands.
const GPRS: [(Register, RegisterX86); 16] = [
    (Register::RAX, RegisterX86::RAX),
    (Register::RCX, RegisterX86::RCX),
    (Register::RDX, RegisterX86::RDX),
    (Register::RBX, RegisterX86::RBX),
    (Register::RSP, RegisterX86::RSP),
    (Register::RBP, RegisterX86::RBP),
    (Register::RSI, RegisterX86::RSI),
    (Register::RDI, RegisterX86::RDI),
    (Register::R8, RegisterX86::R8),
    (Register::R9, RegisterX86::R9),
    (Register::R10, RegisterX86::R10),
    (Register::R11, RegisterX86::R11),
    (Register::R12, RegisterX86::R12),
    (Register::R13, RegisterX86::R13),
    (Register::R14, RegisterX86::R14),
    (Register::R15, RegisterX86::R15),
];

fn read_gpr(uc: &Unicorn<'_, System>, register: Register) -> u64 {
    let full = register.full_register();
    let value = GPRS
        .iter()
        .find(|(r, _)| *r == full)
        .map_or(0, |&(_, x)| uc.reg_read(x).unwrap_or(0));
    match register.size() {
        2 => value & 0xffff,
        4 => value & 0xffff_ffff,
        _ => value,
    }
}

/// Reads `N` bytes of guest memory as ring 3 would.
fn load<const N: usize>(uc: &mut Unicorn<'_, System>, address: u64) -> Result<[u8; N], Failure> {
    let mut bytes = [0u8; N];
    uc.get_data_mut()
        .kernel
        .proc
        .mem
        .cpu_access(address, &mut bytes, false)
        .map_err(|_| Failure::Page(address))?;
    Ok(bytes)
}

fn load_u64(uc: &mut Unicorn<'_, System>, address: u64) -> Result<u64, Failure> {
    load::<8>(uc, address).map(u64::from_le_bytes)
}

fn load_u16(uc: &mut Unicorn<'_, System>, address: u64) -> Result<u16, Failure> {
    load::<2>(uc, address).map(u16::from_le_bytes)
}

/// The linear address of the instruction's memory operand.
fn linear_address(uc: &Unicorn<'_, System>, instruction: &Instruction) -> u64 {
    let base = match instruction.memory_base() {
        Register::None => 0,
        register => read_gpr(uc, register),
    };
    let index = match instruction.memory_index() {
        Register::None => 0,
        register => read_gpr(uc, register).wrapping_mul(instruction.memory_index_scale() as u64),
    };
    let segment = match instruction.segment_prefix() {
        Register::FS => uc.reg_read(RegisterX86::FS_BASE).unwrap_or(0),
        Register::GS => uc.reg_read(RegisterX86::GS_BASE).unwrap_or(0),
        _ => 0,
    };
    segment
        .wrapping_add(base)
        .wrapping_add(index)
        .wrapping_add(instruction.memory_displacement64())
}

/// Whether ring 3 may load `selector` into `segment` (Linux's GDT: entries 4, 5 and 6 have
/// DPL 3; there is no LDT).
fn ring3_may_load(segment: Register, selector: u16) -> bool {
    let null = selector & !3 == 0;
    let local = selector & 4 != 0;
    match segment {
        Register::SS => selector == USER_DS,
        _ => null || (!local && matches!(selector >> 3, 4..=6)),
    }
}

fn load_segment(
    uc: &mut Unicorn<'_, System>,
    segment: Register,
    selector: u16,
) -> Result<(), Failure> {
    if !ring3_may_load(segment, selector) {
        return Err(Failure::Protection);
    }
    let (register, base) = match segment {
        Register::DS => (RegisterX86::DS, None),
        Register::ES => (RegisterX86::ES, None),
        // Loading FS or GS takes the descriptor's base, 0 for every Linux user segment.
        Register::FS => (RegisterX86::FS, Some(SegmentBase::Fs)),
        Register::GS => (RegisterX86::GS, Some(SegmentBase::Gs)),
        // SS at ring 0 must hold a ring-0 selector; the guest's is always USER_DS, which
        // is what reads of SS show.
        _ => return Ok(()),
    };
    let _ = uc.reg_write(register, selector as u64);
    if let Some(which) = base {
        set_segment_base(uc, which, 0);
    }
    Ok(())
}

/// Ring 3 may transfer to 64-bit user code only (32-bit code would leave long mode).
fn far_target(selector: u16) -> Result<(), Failure> {
    match selector {
        USER_CS => Ok(()),
        USER32_CS => Err(Failure::Unsupported(
            "a far transfer into 32-bit code".into(),
        )),
        _ => Err(Failure::Protection),
    }
}

/// Carries out `instruction`; returns the guest address execution continues at.
fn carry_out(uc: &mut Unicorn<'_, System>, instruction: &Instruction) -> Result<u64, Failure> {
    let rsp = uc.reg_read(RegisterX86::RSP).unwrap_or(0);
    let next = instruction.next_ip();
    match (instruction.mnemonic(), instruction.code()) {
        (Mnemonic::Mov, _) => {
            let selector = if instruction.op1_kind() == OpKind::Register {
                read_gpr(uc, instruction.op1_register()) as u16
            } else {
                let address = linear_address(uc, instruction);
                load_u16(uc, address)?
            };
            load_segment(uc, instruction.op0_register(), selector)?;
            Ok(next)
        }
        (Mnemonic::Pop, _) => {
            let selector = load_u64(uc, rsp)? as u16;
            load_segment(uc, instruction.op0_register(), selector)?;
            let _ = uc.reg_write(RegisterX86::RSP, rsp.wrapping_add(8));
            Ok(next)
        }
        (Mnemonic::Retf, Code::Retfq | Code::Retfq_imm16) => {
            let (target, selector) = (
                load_u64(uc, rsp)?,
                load_u64(uc, rsp.wrapping_add(8))? as u16,
            );
            far_target(selector)?;
            let release = if instruction.op_count() == 1 {
                instruction.immediate16() as u64
            } else {
                0
            };
            let _ = uc.reg_write(RegisterX86::RSP, rsp.wrapping_add(16 + release));
            Ok(target)
        }
        (Mnemonic::Iretq, _) => {
            let frame: Vec<u64> = (0..5)
                .map(|i| load_u64(uc, rsp.wrapping_add(8 * i)))
                .collect::<Result<_, _>>()?;
            far_target(frame[1] as u16)?;
            if frame[4] as u16 != USER_DS {
                return Err(Failure::Protection);
            }
            // As popf at ring 3: IF and IOPL stay as they are (1 and 0).
            let flags = (frame[2] & !(IF | IOPL)) | IF | 2;
            let _ = uc.reg_write(RegisterX86::RFLAGS, flags);
            let _ = uc.reg_write(RegisterX86::RSP, frame[3]);
            Ok(frame[0])
        }
        (Mnemonic::Jmp, Code::Jmp_m1632) => {
            let address = linear_address(uc, instruction);
            let target = u32::from_le_bytes(load::<4>(uc, address)?) as u64;
            far_target(load_u16(uc, address.wrapping_add(4))?)?;
            Ok(target)
        }
        (Mnemonic::Jmp | Mnemonic::Call, Code::Jmp_m1664 | Code::Call_m1664) => {
            let address = linear_address(uc, instruction);
            let (target, selector) = (
                load_u64(uc, address)?,
                load_u16(uc, address.wrapping_add(8))?,
            );
            far_target(selector)?;
            if instruction.mnemonic() == Mnemonic::Call {
                let mut frame = [0u8; 16];
                frame[..8].copy_from_slice(&next.to_le_bytes());
                frame[8..].copy_from_slice(&(USER_CS as u64).to_le_bytes());
                let top = rsp.wrapping_sub(16);
                uc.get_data_mut()
                    .kernel
                    .proc
                    .mem
                    .cpu_access(top, &mut frame, true)
                    .map_err(|_| Failure::Page(top))?;
                let _ = uc.reg_write(RegisterX86::RSP, top);
            }
            Ok(target)
        }
        _ => Err(Failure::Unsupported(format!("`{instruction}` at ring 0"))),
    }
}

/// The emulate hypercall: carries out the guest instruction at the `fault_rip` slot.
pub fn emulate(uc: &mut Unicorn<'_, System>) -> Flow {
    let rip = uc
        .get_data()
        .kernel
        .proc
        .mem
        .read_kernel_u64(RUNTIME.fault_rip);
    let instruction = uc.get_data().kernel.proc.mem.instruction_at(rip);
    if instruction.mnemonic() == Mnemonic::Sysenter {
        let eax = uc.reg_read(RegisterX86::RAX).unwrap_or(0);
        let regs = crate::machine::compat_args(uc);
        uc.get_data_mut()
            .sysenter(eax, regs, rip, instruction.len() as u64);
        return Flow::Stop;
    }
    match carry_out(uc, &instruction) {
        // Ring 3 would run on with such a stack and fault at its first use; ring 0 must not
        // run with it at all (the sandbox trusts RSP), so the fault comes at once.
        Ok(_) if uc.reg_read(RegisterX86::RSP).unwrap_or(0) > USER_MAX => {
            let reason =
                "page fault (#PF): the stack was moved to a kernel or non-canonical address".into();
            uc.get_data_mut().kill(Signal::SIGSEGV, reason, rip);
            Flow::Stop
        }
        Ok(next) => uc.get_data_mut().continue_at(next),
        Err(failure) => {
            let system = uc.get_data_mut();
            match failure {
                Failure::Protection => {
                    let reason =
                        "general protection fault (#GP): a selector ring 3 may not use".into();
                    system.emulated_fault(Signal::SIGSEGV, reason, rip);
                }
                Failure::Page(address) => {
                    let reason = format!("page fault (#PF): access to {address:#x}");
                    system.emulated_fault(Signal::SIGSEGV, reason, rip);
                }
                Failure::Unsupported(what) => {
                    system.stop = Some(Stop::Unsupported(Unsupported { what, rip }))
                }
            }
            Flow::Stop
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring3_selectors() {
        assert!(ring3_may_load(Register::DS, 0));
        assert!(ring3_may_load(Register::DS, USER_DS));
        assert!(ring3_may_load(Register::FS, USER_CS));
        assert!(!ring3_may_load(Register::DS, 0x18), "kernel data");
        assert!(!ring3_may_load(Register::DS, 0x2c), "LDT");
        assert!(!ring3_may_load(Register::SS, 0));
        assert!(ring3_may_load(Register::SS, USER_DS));
        assert!(!ring3_may_load(Register::GS, 0x38), "past the GDT");
    }
}
