//! The guest's registers as the kernel's signal code sees them (`sigframe::UserRegs` and
//! the FXSAVE image), read from and written to the CPU at a syscall boundary. At ring 3
//! they are the CPU's; at ring 0, during a translated syscall, the guest's RSP is in the
//! runtime's slot and its RIP (the instruction after the call) in RCX, as the syscall
//! contract leaves it at both rings.

use unicorn_engine::{RegisterX86, Unicorn};

use crate::bt::layout::{self, RUNTIME};
use crate::kernel::sigframe::{FxState, UserRegs, FIX_EFLAGS, USER_CS, USER_DS};
use crate::machine::faults::{self, FaultFrame};
use crate::memory::USER_END;
use crate::system::System;

use RegisterX86::{
    R10, R11, R12, R13, R14, R15, R8, R9, RAX, RBP, RBX, RCX, RDI, RDX, RFLAGS, RSI, RSP,
};

/// RFLAGS bits every user-mode context has: IF and the always-one bit 1.
const USER_EFLAGS: u64 = 0x202;

/// The general registers in `UserRegs` order, with their field accessors.
fn general(regs: &mut UserRegs) -> [(RegisterX86, &mut u64); 15] {
    [
        (R8, &mut regs.r8),
        (R9, &mut regs.r9),
        (R10, &mut regs.r10),
        (R11, &mut regs.r11),
        (R12, &mut regs.r12),
        (R13, &mut regs.r13),
        (R14, &mut regs.r14),
        (R15, &mut regs.r15),
        (RDI, &mut regs.rdi),
        (RSI, &mut regs.rsi),
        (RBP, &mut regs.rbp),
        (RBX, &mut regs.rbx),
        (RDX, &mut regs.rdx),
        (RAX, &mut regs.rax),
        (RCX, &mut regs.rcx),
    ]
}

const XMM: [RegisterX86; 16] = [
    RegisterX86::XMM0,
    RegisterX86::XMM1,
    RegisterX86::XMM2,
    RegisterX86::XMM3,
    RegisterX86::XMM4,
    RegisterX86::XMM5,
    RegisterX86::XMM6,
    RegisterX86::XMM7,
    RegisterX86::XMM8,
    RegisterX86::XMM9,
    RegisterX86::XMM10,
    RegisterX86::XMM11,
    RegisterX86::XMM12,
    RegisterX86::XMM13,
    RegisterX86::XMM14,
    RegisterX86::XMM15,
];

const ST: [RegisterX86; 8] = [
    RegisterX86::ST0,
    RegisterX86::ST1,
    RegisterX86::ST2,
    RegisterX86::ST3,
    RegisterX86::ST4,
    RegisterX86::ST5,
    RegisterX86::ST6,
    RegisterX86::ST7,
];

fn read(uc: &Unicorn<'_, System>, register: RegisterX86) -> u64 {
    uc.reg_read(register).unwrap_or(0)
}

fn ring0(uc: &Unicorn<'_, System>) -> bool {
    uc.get_data().cache.is_some()
}

/// The guest's RSP during a syscall.
pub fn guest_rsp(uc: &Unicorn<'_, System>) -> u64 {
    if ring0(uc) {
        uc.get_data()
            .kernel
            .proc
            .mem
            .read_kernel_u64(RUNTIME.user_rsp)
    } else {
        read(uc, RSP)
    }
}

/// The guest's registers at the end of a syscall: RIP after the call, RFLAGS as the call
/// saved it in R11.
pub fn user_regs(uc: &Unicorn<'_, System>) -> UserRegs {
    let mut regs = UserRegs::default();
    for (register, field) in general(&mut regs) {
        *field = read(uc, register);
    }
    regs.rsp = guest_rsp(uc);
    regs.rip = regs.rcx;
    regs.eflags = regs.r11;
    regs.cs = USER_CS;
    regs.ss = USER_DS;
    regs
}

/// The guest's registers where the running task stopped between two of its instructions
/// (a quantum's end, a timer, a signal waiting): `None` where they are not the guest's
/// alone (a stub at ring 3; at ring 0 anywhere but where a guest instruction's translation
/// begins, or the dispatcher about to look one up).
pub fn interrupted_regs(uc: &Unicorn<'_, System>) -> Option<UserRegs> {
    let pc = uc.pc_read().ok()?;
    let system = uc.get_data();
    let rip = match &system.cache {
        None => (pc < USER_END).then_some(pc)?,
        Some(_) if pc == layout::DISPATCH => system.kernel.proc.mem.read_kernel_u64(RUNTIME.target),
        Some(cache) if cache.boundary_containing(pc) == Some(pc) => cache.guest_address_of(pc)?,
        Some(_) => return None,
    };
    Some(guest_regs(uc, rip))
}

/// The guest's registers where a fault stopped it, as `frame` says: at the faulting guest
/// instruction (or after a trap), with the sigcontext's trap number, error code and CR2,
/// and at ring 0 with a register the sandbox had spilled taken back from its slot.
pub fn fault_regs(uc: &Unicorn<'_, System>, frame: &FaultFrame) -> UserRegs {
    let mut regs = guest_regs(uc, frame.rip);
    let mem = &uc.get_data().kernel.proc.mem;
    if let Some(field) = frame
        .spilled
        .and_then(|register| faults::general_register(&mut regs, register))
    {
        *field = mem.read_kernel_u64(RUNTIME.spill);
    }
    regs.trapno = frame.trapno;
    regs.cr2 = frame.cr2;
    regs.err = frame.err;
    regs
}

/// The CPU's registers as the guest's, at guest instruction `rip`: RFLAGS keeps the bits a
/// program owns, with IF set as in user mode.
pub fn guest_regs(uc: &Unicorn<'_, System>, rip: u64) -> UserRegs {
    let mut regs = UserRegs::default();
    for (register, field) in general(&mut regs) {
        *field = read(uc, register);
    }
    regs.rsp = read(uc, RSP);
    regs.rip = rip;
    regs.eflags = (read(uc, RFLAGS) & FIX_EFLAGS) | USER_EFLAGS;
    regs.cs = USER_CS;
    regs.ss = USER_DS;
    regs
}

/// The FPU and SSE state, as FXSAVE lays it out (the tag word is left empty: no x87
/// register is reported in use).
pub fn fx_state(uc: &Unicorn<'_, System>) -> FxState {
    let mut fx = FxState::INIT;
    fx.set_fcw(read(uc, RegisterX86::FPCW) as u16);
    fx.set_fsw(read(uc, RegisterX86::FPSW) as u16);
    fx.set_mxcsr(read(uc, RegisterX86::MXCSR) as u32);
    for (i, &register) in ST.iter().enumerate() {
        if let Ok(bytes) = uc.reg_read_long(register) {
            let mut value = [0u8; 10];
            value.copy_from_slice(&bytes[..10]);
            fx.set_st(i, value);
        }
    }
    for (i, &register) in XMM.iter().enumerate() {
        if let Ok(bytes) = uc.reg_read_long(register) {
            let mut value = [0u8; 16];
            value.copy_from_slice(&bytes[..16]);
            fx.set_xmm(i, value);
        }
    }
    fx
}

/// Makes the guest go on with `regs` and `fx`: at ring 3 directly; at ring 0 through the
/// dispatcher, which finds the translation of `regs.rip` (the kernel stack is left empty).
pub fn set_user_regs(uc: &mut Unicorn<'_, System>, regs: &UserRegs, fx: &FxState) {
    let mut copy = *regs;
    for (register, field) in general(&mut copy) {
        let _ = uc.reg_write(register, *field);
    }
    let _ = uc.reg_write(RSP, regs.rsp);
    let _ = uc.reg_write(RFLAGS, regs.eflags);
    let _ = uc.reg_write(RegisterX86::FPCW, fx.fcw() as u64);
    let _ = uc.reg_write(RegisterX86::FPSW, fx.fsw() as u64);
    let _ = uc.reg_write(RegisterX86::MXCSR, fx.mxcsr() as u64);
    for (i, &register) in ST.iter().enumerate() {
        let _ = uc.reg_write_long(register, &fx.st(i));
    }
    for (i, &register) in XMM.iter().enumerate() {
        let _ = uc.reg_write_long(register, &fx.xmm(i));
    }
    if ring0(uc) {
        let mem = &mut uc.get_data_mut().kernel.proc.mem;
        mem.fill(RUNTIME.target, &regs.rip.to_le_bytes());
        let _ = uc.set_pc(layout::DISPATCH);
    } else {
        let _ = uc.set_pc(regs.rip);
    }
}
