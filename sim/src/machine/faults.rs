//! What a CPU exception at ring 3 does to a Linux process: the signal it raises, and what a
//! guest handler for that signal is told about it (Linux 6.1's arch/x86/kernel/traps.c and
//! arch/x86/mm/fault.c).

use iced_x86::{Instruction, InstructionInfoFactory, OpAccess, Register};
use nix::sys::signal::Signal;

use crate::kernel::sigframe::{
    SigInfo, UserRegs, BUS_ADRALN, BUS_ADRERR, FPE_INTDIV, ILL_ILLOPN, SEGV_ACCERR, SEGV_MAPERR,
    SI_KERNEL,
};
use crate::memory::{Access, AddressSpace, USER_END};

/// What a fault's `si_addr` holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SiAddr {
    /// Nothing: the signal is sent as `force_sig` sends it (`SI_KERNEL`).
    None,
    /// The faulting instruction (`error_get_trap_addr`).
    Rip,
    /// The address the access faulted on (CR2).
    Cr2,
}

/// An x86 exception vector, its name, the signal Linux sends for it at ring 3, and the
/// siginfo a handler gets: `code` is `None` where delivery to a handler is not modelled
/// (the debug trap's DR6 decoding, x87 and SIMD exceptions' status decoding).
pub struct FaultRow {
    pub vector: u32,
    pub name: &'static str,
    pub signal: Signal,
    pub code: Option<i32>,
    pub addr: SiAddr,
}

const fn row(
    vector: u32,
    name: &'static str,
    signal: Signal,
    code: Option<i32>,
    addr: SiAddr,
) -> FaultRow {
    FaultRow {
        vector,
        name,
        signal,
        code,
        addr,
    }
}

const KERNEL: Option<i32> = Some(SI_KERNEL);

/// Linux's arch/x86/kernel/traps.c, per vector. #PF's code is MAPERR or ACCERR by the
/// address (`page_fault_code`).
pub const FAULTS: &[FaultRow] = &[
    row(
        0,
        "divide error (#DE)",
        Signal::SIGFPE,
        Some(FPE_INTDIV),
        SiAddr::Rip,
    ),
    row(1, "debug trap (#DB)", Signal::SIGTRAP, None, SiAddr::None),
    row(3, "breakpoint (#BP)", Signal::SIGTRAP, KERNEL, SiAddr::None),
    row(4, "overflow (#OF)", Signal::SIGSEGV, KERNEL, SiAddr::None),
    row(
        5,
        "bound range exceeded (#BR)",
        Signal::SIGSEGV,
        KERNEL,
        SiAddr::None,
    ),
    row(
        6,
        "invalid opcode (#UD)",
        Signal::SIGILL,
        Some(ILL_ILLOPN),
        SiAddr::Rip,
    ),
    row(
        7,
        "device not available (#NM)",
        Signal::SIGSEGV,
        None,
        SiAddr::None,
    ),
    row(
        10,
        "invalid TSS (#TS)",
        Signal::SIGSEGV,
        KERNEL,
        SiAddr::None,
    ),
    row(
        11,
        "segment not present (#NP)",
        Signal::SIGBUS,
        KERNEL,
        SiAddr::None,
    ),
    row(
        12,
        "stack-segment fault (#SS)",
        Signal::SIGBUS,
        KERNEL,
        SiAddr::None,
    ),
    row(
        13,
        "general protection fault (#GP)",
        Signal::SIGSEGV,
        KERNEL,
        SiAddr::None,
    ),
    row(
        14,
        "page fault (#PF)",
        Signal::SIGSEGV,
        Some(SEGV_MAPERR),
        SiAddr::Cr2,
    ),
    row(
        16,
        "x87 floating-point exception (#MF)",
        Signal::SIGFPE,
        None,
        SiAddr::None,
    ),
    row(
        17,
        "alignment check (#AC)",
        Signal::SIGBUS,
        Some(BUS_ADRALN),
        SiAddr::None,
    ),
    row(
        19,
        "SIMD floating-point exception (#XM)",
        Signal::SIGFPE,
        None,
        SiAddr::None,
    ),
];

pub const BREAKPOINT: u32 = 3;
pub const BOUND_RANGE: u32 = 5;
pub const INVALID_OPCODE: u32 = 6;
pub const GENERAL_PROTECTION: u32 = 13;
pub const PAGE_FAULT: u32 = 14;

pub fn fault(vector: u32) -> Option<&'static FaultRow> {
    FAULTS.iter().find(|r| r.vector == vector)
}

/// A synchronous fault on its way to a guest handler: its siginfo, what the frame's
/// sigcontext says of it, and where the handler returns to.
#[derive(Clone, Copy, Debug)]
pub struct FaultFrame {
    pub info: SigInfo,
    /// The guest instruction the handler's sigreturn goes back to: the faulting one, or
    /// the one after a trap (int3).
    pub rip: u64,
    pub trapno: u64,
    pub err: u64,
    pub cr2: u64,
    /// At ring 0, the guest register whose value the runtime's spill slot held when the
    /// translated code faulted.
    pub spilled: Option<Register>,
}

impl FaultFrame {
    /// The frame for exception `vector` at guest instruction `rip` (the handler returns to
    /// `resume`), if a handler can be told about it.
    pub fn for_vector(vector: u32, rip: u64, resume: u64) -> Option<Self> {
        Self::for_fault(vector, rip, resume, 0)
    }

    /// The frame for a page fault at `cr2` by guest instruction `rip`, an `access` that
    /// `space` refused: SEGV_MAPERR where no area is, SEGV_ACCERR where one forbids it.
    pub fn for_page_fault(rip: u64, cr2: u64, access: Access, space: &AddressSpace) -> Self {
        Self {
            info: SigInfo::fault(Signal::SIGSEGV as u32, page_fault_code(cr2, space), cr2),
            rip,
            trapno: PAGE_FAULT as u64,
            err: page_fault_error_code(space, cr2, access),
            cr2,
            spilled: None,
        }
    }

    /// The frame the row of `vector` describes, with error code `err`.
    fn for_fault(vector: u32, rip: u64, resume: u64, err: u64) -> Option<Self> {
        let row = fault(vector)?;
        let code = row.code?;
        let signo = row.signal as u32;
        let info = match row.addr {
            SiAddr::None => SigInfo::kernel(signo),
            SiAddr::Rip => SigInfo::fault(signo, code, rip),
            // A page fault's frame needs its address and access: `for_page_fault`.
            SiAddr::Cr2 => return None,
        };
        Some(Self {
            info,
            rip: resume,
            trapno: vector as u64,
            err,
            cr2: 0,
            spilled: None,
        })
    }

    /// A page of a file mapping past the end of the file, touched at `cr2` by guest
    /// instruction `rip`: SIGBUS with BUS_ADRERR (`do_sigbus`).
    pub fn for_bus_error(rip: u64, cr2: u64, access: Access, space: &AddressSpace) -> Self {
        Self {
            info: SigInfo::fault(Signal::SIGBUS as u32, BUS_ADRERR, cr2),
            ..Self::for_page_fault(rip, cr2, access, space)
        }
    }

    /// `int n` at ring 3: #GP with the gate's selector-style error code, `n * 8 + 2`.
    pub fn for_software_interrupt(n: u8, rip: u64) -> Option<Self> {
        let err = u64::from(n) * 8 + 2;
        Self::for_fault(GENERAL_PROTECTION, rip, rip, err)
    }
}

/// SEGV_MAPERR for an address no area holds (or the kernel's), SEGV_ACCERR for one whose
/// area forbids the access.
fn page_fault_code(address: u64, space: &AddressSpace) -> i32 {
    if address < USER_END && space.vma_at(address).is_some() {
        SEGV_ACCERR
    } else {
        SEGV_MAPERR
    }
}

const PF_PROT: u64 = 1;
const PF_WRITE: u64 = 2;
const PF_USER: u64 = 4;
const PF_INSTR: u64 = 16;

/// The page-fault error code Linux puts in the frame (`set_signal_archinfo`): user mode
/// always; protection for a page that is there (and for any kernel address, which Linux
/// reports so to hide its layout); write or fetch as the access was.
pub fn page_fault_error_code(space: &AddressSpace, cr2: u64, access: Access) -> u64 {
    let mut code = PF_USER;
    if cr2 >= USER_END || space.is_present(cr2) {
        code |= PF_PROT;
    }
    code | match access {
        Access::Read => 0,
        Access::Write => PF_WRITE,
        Access::Fetch => PF_INSTR,
    }
}

/// What access of `instruction`, run with `regs`, faulted at `cr2`: a fetch when `cr2` is
/// in the instruction itself (or it cannot be decoded), a write when an operand it writes
/// lies on `cr2`'s page, else a read.
pub fn faulting_access(instruction: &Instruction, regs: &UserRegs, cr2: u64) -> Access {
    let start = instruction.ip();
    let length = instruction.len().max(1) as u64;
    if (start..start + length).contains(&cr2) || instruction.is_invalid() {
        return Access::Fetch;
    }
    let mut factory = InstructionInfoFactory::new();
    let info = factory.info(instruction);
    let page = cr2 & !0xfff;
    let writes = info.used_memory().iter().any(|memory| {
        let writes = matches!(
            memory.access(),
            OpAccess::Write | OpAccess::CondWrite | OpAccess::ReadWrite | OpAccess::ReadCondWrite
        );
        let address = memory.virtual_address(0, |register, _, _| register_value(regs, register));
        let size = memory.memory_size().size().max(1) as u64;
        writes
            && address.is_some_and(|start| {
                let end = start.wrapping_add(size - 1);
                (start & !0xfff) == page || (end & !0xfff) == page
            })
    });
    if writes {
        Access::Write
    } else {
        Access::Read
    }
}

/// A general register's value in `regs`, for iced's address computation (segment bases
/// other than FS and GS are 0 in 64-bit mode; FS and GS operands are not resolved).
fn register_value(regs: &UserRegs, register: Register) -> Option<u64> {
    let full = match register.full_register() {
        Register::RIP => regs.rip,
        Register::ES | Register::CS | Register::SS | Register::DS => 0,
        full => *general_register(&mut regs.clone(), full)?,
    };
    let mask = match register.size() {
        1 => 0xff,
        2 => 0xffff,
        4 => 0xffff_ffff,
        _ => u64::MAX,
    };
    Some(full & mask)
}

/// The field of `regs` that holds 64-bit general register `register`.
pub fn general_register(regs: &mut UserRegs, register: Register) -> Option<&mut u64> {
    Some(match register {
        Register::RAX => &mut regs.rax,
        Register::RBX => &mut regs.rbx,
        Register::RCX => &mut regs.rcx,
        Register::RDX => &mut regs.rdx,
        Register::RSI => &mut regs.rsi,
        Register::RDI => &mut regs.rdi,
        Register::RBP => &mut regs.rbp,
        Register::RSP => &mut regs.rsp,
        Register::R8 => &mut regs.r8,
        Register::R9 => &mut regs.r9,
        Register::R10 => &mut regs.r10,
        Register::R11 => &mut regs.r11,
        Register::R12 => &mut regs.r12,
        Register::R13 => &mut regs.r13,
        Register::R14 => &mut regs.r14,
        Register::R15 => &mut regs.r15,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::sigframe::UserRegs;
    use crate::memory::Prot;

    /// A space with `code` at 0x10000 (read and execute) and a read-only page at 0x20000.
    fn space_with(code: &[u8]) -> AddressSpace {
        let mut space = AddressSpace::new().unwrap();
        space
            .map_fixed(0x10000, 0x1000, Prot(Prot::READ | Prot::WRITE | Prot::EXEC))
            .unwrap();
        space.write(0x10000, code).unwrap();
        space
            .protect(0x10000, 0x1000, Prot(Prot::READ | Prot::EXEC))
            .unwrap();
        space.map_fixed(0x20000, 0x1000, Prot(Prot::READ)).unwrap();
        space
    }

    #[test]
    fn page_fault_error_codes_say_what_the_access_was() {
        // mov rax, [rbx]; mov [rbx], rax; mov [rip + 0xfff3], rax (0x20000)
        let code = [
            0x48, 0x8b, 0x03, 0x48, 0x89, 0x03, 0x48, 0x89, 0x05, 0xf3, 0xff, 0x00, 0x00,
        ];
        let space = space_with(&code);
        let regs = UserRegs {
            rbx: 0x20000,
            ..UserRegs::default()
        };
        // (rip, cr2, error code, what)
        let cases = [
            (0x10000, 0x50000, PF_USER, "a read of an unmapped page"),
            (
                0x10003,
                0x20000,
                PF_USER | PF_WRITE,
                "a write to a read-only page",
            ),
            (
                0x10006,
                0x20000,
                PF_USER | PF_WRITE,
                "a RIP-relative write there",
            ),
            (0x10006, 0x50000, PF_USER, "a fault elsewhere in it"),
            (0x30000, 0x30000, PF_USER | PF_INSTR, "a fetch"),
            (
                0x10000,
                USER_END + 0x1000,
                PF_USER | PF_PROT,
                "a kernel address",
            ),
        ];
        for (rip, cr2, expected, what) in cases {
            let instruction = space.instruction_at(rip);
            let access = faulting_access(&instruction, &regs, cr2);
            assert_eq!(
                page_fault_error_code(&space, cr2, access),
                expected,
                "{what}"
            );
        }
    }

    #[test]
    fn a_page_fault_on_a_mapped_page_is_accerr() {
        let space = space_with(&[0x90]);
        let mapped = FaultFrame::for_page_fault(0x10000, 0x20000, Access::Write, &space);
        let unmapped = FaultFrame::for_page_fault(0x10000, 0x50000, Access::Read, &space);
        assert_eq!(mapped.info.code(), SEGV_ACCERR);
        assert_eq!(unmapped.info.code(), SEGV_MAPERR);
        assert!(FaultFrame::for_vector(1, 0x10000, 0x10000).is_none());
    }
}
