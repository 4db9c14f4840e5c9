//! The translation rules: every guest instruction falls in one class, and each class has
//! one rewrite. This table is the translator's specification; the snapshot tests show one
//! translated example of each row.

use iced_x86::{Code, FlowControl, Instruction, Mnemonic, OpKind, Register};

use crate::emit::Emitter;
use crate::rewrite::{branch, indirect, plain, sensitive, syscall};

/// What a guest instruction is, for the translator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    Plain,
    DirectJump,
    ConditionalJump,
    CounterJump,
    DirectCall,
    IndirectJump,
    IndirectCall,
    Return,
    Syscall,
    AnsweredByMachine,
    SegmentRead,
    BoundsHint,
    Popf,
    Breakpoint,
    DebugTrap,
    SoftwareInterrupt,
    Int80,
    Sysenter,
    Privileged,
    FarTransfer,
    SegmentLoad,
    Invalid,
    FetchFault,
}

impl Class {
    /// Whether the block ends after an instruction of this class. A conditional jump does
    /// not: the block goes on along its fall-through path (a superblock), and the jump is a
    /// side exit.
    pub fn ends_block(self) -> bool {
        !matches!(
            self,
            Class::Plain
                | Class::AnsweredByMachine
                | Class::SegmentRead
                | Class::BoundsHint
                | Class::Popf
                | Class::ConditionalJump
        )
    }

    /// Whether control may leave the translated block after an instruction of this class.
    pub fn may_leave(self) -> bool {
        self.ends_block() || self == Class::ConditionalJump
    }
}

/// What a translated instruction is there for: the dynamic code expansion, broken down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// The guest instruction itself, copied (RIP-relative operands rewritten).
    Copy,
    /// Software fault isolation: `bndcu` checks, the addresses formed for them, spills.
    Sandbox,
    /// Branches and returns: exits, pushed return addresses, lookups, the dispatcher.
    ControlFlow,
    /// Syscalls as calls: the stack switch, the call and the kernel entry.
    Syscall,
    /// The ring-3 outcomes of sensitive instructions.
    Sensitive,
}

impl Source {
    pub const ALL: [Source; 5] = [
        Source::Copy,
        Source::Sandbox,
        Source::ControlFlow,
        Source::Syscall,
        Source::Sensitive,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Source::Copy => "copy",
            Source::Sandbox => "sandbox",
            Source::ControlFlow => "control_flow",
            Source::Syscall => "syscall",
            Source::Sensitive => "sensitive",
        }
    }
}

/// Counts per [`Source`], indexed by `Source as usize`.
pub type BySource = [u32; Source::ALL.len()];

pub type RewriteFn = fn(&mut Emitter, &Instruction);

pub struct Rule {
    pub class: Class,
    /// What becomes of the instruction, for people.
    pub description: &'static str,
    /// What its translation is there for: a sandbox check inside it counts as `Sandbox`.
    pub source: Source,
    pub(crate) rewrite: RewriteFn,
}

const fn rule(class: Class, source: Source, description: &'static str, rewrite: RewriteFn) -> Rule {
    Rule {
        class,
        description,
        source,
        rewrite,
    }
}

pub static RULES: &[Rule] = &[
    rule(
        Class::Plain,
        Source::Copy,
        "copied; each memory operand is checked against the user half first (bndcu), \
         RIP-relative operands are rewritten to address the same guest data, and a write to RSP \
         is checked after",
        plain::copy,
    ),
    rule(
        Class::DirectJump,
        Source::ControlFlow,
        "jmp: exits to the target's translation (chained once translated)",
        branch::direct_jump,
    ),
    rule(
        Class::ConditionalJump,
        Source::ControlFlow,
        "jcc: rel32 jcc to the taken exit (a side exit); the block goes on along the fall-through",
        branch::conditional_jump,
    ),
    rule(
        Class::CounterJump,
        Source::ControlFlow,
        "jrcxz, jecxz, loop, loope, loopne: the same instruction to a local jmp to the taken exit",
        branch::counter_jump,
    ),
    rule(
        Class::DirectCall,
        Source::ControlFlow,
        "call: pushes the guest return address, then exits to the target",
        branch::direct_call,
    ),
    rule(
        Class::IndirectJump,
        Source::ControlFlow,
        "jmp r/m: the guest target goes to the target slot; indirect-branch lookup",
        indirect::indirect_jump,
    ),
    rule(
        Class::IndirectCall,
        Source::ControlFlow,
        "call r/m: target to the slot, guest return address pushed, indirect-branch lookup",
        indirect::indirect_call,
    ),
    rule(
        Class::Return,
        Source::ControlFlow,
        "ret: pops the guest return address into the target slot; indirect-branch lookup",
        indirect::ret,
    ),
    rule(
        Class::Syscall,
        Source::Syscall,
        "syscall: RCX = next guest RIP, switch to the kernel stack, call the kernel entry \
         (which sets R11 = RFLAGS); no ring crossing, nothing written below the guest RSP",
        syscall::syscall,
    ),
    rule(
        Class::AnsweredByMachine,
        Source::Copy,
        "cpuid, rdtsc, rdtscp: copied; the machine answers them at ring 0 exactly as at ring 3",
        plain::copy,
    ),
    rule(
        Class::SegmentRead,
        Source::Sensitive,
        "mov from CS or SS: the selector ring 3 has (Linux's 0x33 and 0x2b), not ring 0's",
        sensitive::segment_read,
    ),
    rule(
        Class::BoundsHint,
        Source::Sensitive,
        "bndmk, bndcl, bndcu, bndcn, bndmov, bndldx, bndstx: a nop, as at ring 3 where MPX is off \
         (at ring 0 they would change the sandbox's bound)",
        sensitive::bounds_hint,
    ),
    rule(
        Class::Popf,
        Source::Sensitive,
        "popf: the popped value's IF and IOPL are replaced by ring 3's (IF=1, IOPL=0), which \
         ring 3's popf cannot change",
        sensitive::popf,
    ),
    rule(
        Class::Breakpoint,
        Source::Sensitive,
        "int3: SIGTRAP, RIP after the instruction",
        sensitive::breakpoint,
    ),
    rule(
        Class::DebugTrap,
        Source::Sensitive,
        "int1: SIGTRAP, RIP after the instruction",
        sensitive::debug_trap,
    ),
    rule(
        Class::SoftwareInterrupt,
        Source::Sensitive,
        "int n: SIGSEGV, as Linux's kernel-only gates make it at ring 3",
        sensitive::software_interrupt,
    ),
    rule(
        Class::Int80,
        Source::Syscall,
        "int 0x80: the 32-bit syscall entry, called like syscall (only RAX changes)",
        syscall::int80,
    ),
    rule(
        Class::Sysenter,
        Source::Sensitive,
        "sysenter: carried out by the simulator as the CPU model does it in 64-bit mode (AMD: \
         #UD, SIGILL; Intel: Linux's 32-bit entry makes the i386 syscall, then SIGSEGV)",
        sensitive::emulated,
    ),
    rule(
        Class::Privileged,
        Source::Sensitive,
        "hlt, cli, sti, in, out, ins, outs, mov cr/dr, rdmsr, wrmsr, swapgs, lgdt, lidt, lldt, \
         ltr, sgdt, sidt, sldt, str, smsw (UMIP), clts, invd, wbinvd, invlpg, sysexit, sysret, \
         rdpmc, monitor, mwait: SIGSEGV (#GP at ring 3)",
        sensitive::privileged,
    ),
    rule(
        Class::FarTransfer,
        Source::Sensitive,
        "far jmp, far call, retf, iretq: carried out by the simulator as at ring 3 (to Linux's \
         64-bit user code selector; others raise #GP, SIGSEGV)",
        sensitive::emulated,
    ),
    rule(
        Class::SegmentLoad,
        Source::Sensitive,
        "mov to a segment register, pop fs/gs, lss/lfs/lgs: carried out by the simulator as at \
         ring 3 against Linux's GDT (an invalid selector raises #GP, SIGSEGV)",
        sensitive::emulated,
    ),
    rule(
        Class::Invalid,
        Source::Sensitive,
        "an undecodable instruction; rdrand and rdseed (the CPU model lacks them); xgetbv, \
         xsetbv, the xsave and xrstor family (XSAVE is off at ring 3); clac, stac: SIGILL",
        sensitive::invalid,
    ),
    rule(
        Class::FetchFault,
        Source::Sensitive,
        "an instruction that runs into an unfetchable page: SIGSEGV (#PF)",
        sensitive::fetch_fault,
    ),
];

/// The rule for `class`.
pub fn rule_for(class: Class) -> &'static Rule {
    RULES
        .iter()
        .find(|r| r.class == class)
        .expect("every class has a rule")
}

const PRIVILEGED: &[Mnemonic] = &[
    Mnemonic::Hlt,
    Mnemonic::Cli,
    Mnemonic::Sti,
    Mnemonic::In,
    Mnemonic::Out,
    Mnemonic::Insb,
    Mnemonic::Insw,
    Mnemonic::Insd,
    Mnemonic::Outsb,
    Mnemonic::Outsw,
    Mnemonic::Outsd,
    Mnemonic::Rdmsr,
    Mnemonic::Wrmsr,
    Mnemonic::Swapgs,
    Mnemonic::Lgdt,
    Mnemonic::Lidt,
    Mnemonic::Lldt,
    Mnemonic::Ltr,
    Mnemonic::Sgdt,
    Mnemonic::Sidt,
    Mnemonic::Sldt,
    Mnemonic::Str,
    Mnemonic::Smsw,
    Mnemonic::Lmsw,
    Mnemonic::Clts,
    Mnemonic::Invd,
    Mnemonic::Wbinvd,
    Mnemonic::Invlpg,
    Mnemonic::Invpcid,
    Mnemonic::Sysexit,
    Mnemonic::Sysexitq,
    Mnemonic::Sysret,
    Mnemonic::Sysretq,
    Mnemonic::Rdpmc,
    Mnemonic::Monitor,
    Mnemonic::Mwait,
];

/// Undefined at ring 3 here: XSAVE is off there (CPUID says so; CR4.OSXSAVE is clear), and
/// clac/stac need ring 0. At ring 0, with XSAVE on for the sandbox, they would run.
const UNDEFINED_AT_RING3: &[Mnemonic] = &[
    Mnemonic::Xgetbv,
    Mnemonic::Xsetbv,
    Mnemonic::Xsave,
    Mnemonic::Xsave64,
    Mnemonic::Xsavec,
    Mnemonic::Xsavec64,
    Mnemonic::Xsaveopt,
    Mnemonic::Xsaveopt64,
    Mnemonic::Xsaves,
    Mnemonic::Xsaves64,
    Mnemonic::Xrstor,
    Mnemonic::Xrstor64,
    Mnemonic::Xrstors,
    Mnemonic::Xrstors64,
    Mnemonic::Clac,
    Mnemonic::Stac,
];

const BOUNDS: &[Mnemonic] = &[
    Mnemonic::Bndmk,
    Mnemonic::Bndcl,
    Mnemonic::Bndcu,
    Mnemonic::Bndcn,
    Mnemonic::Bndmov,
    Mnemonic::Bndldx,
    Mnemonic::Bndstx,
];

const FAR: &[Mnemonic] = &[
    Mnemonic::Retf,
    Mnemonic::Iret,
    Mnemonic::Iretd,
    Mnemonic::Iretq,
];

const SEGMENT_LOADS: &[Mnemonic] = &[Mnemonic::Lss, Mnemonic::Lfs, Mnemonic::Lgs];

fn is_control_or_debug_register(register: Register) -> bool {
    register.is_cr() || register.is_dr()
}

/// The class of a guest instruction.
pub fn classify(instruction: &Instruction) -> Class {
    let mnemonic = instruction.mnemonic();
    let code = instruction.code();
    if code == Code::INVALID
        || UNDEFINED_AT_RING3.contains(&mnemonic)
        || crate::cpu::LACKING.contains(&mnemonic)
    {
        return Class::Invalid;
    }
    if BOUNDS.contains(&mnemonic) {
        return Class::BoundsHint;
    }
    match mnemonic {
        Mnemonic::Syscall => return Class::Syscall,
        Mnemonic::Cpuid | Mnemonic::Rdtsc | Mnemonic::Rdtscp => return Class::AnsweredByMachine,
        Mnemonic::Popf | Mnemonic::Popfq => return Class::Popf,
        Mnemonic::Int3 => return Class::Breakpoint,
        Mnemonic::Int1 => return Class::DebugTrap,
        Mnemonic::Int if instruction.immediate8() == 0x80 => return Class::Int80,
        // What it does depends on the vendor: the simulator has the CPU model.
        Mnemonic::Sysenter => return Class::Sysenter,
        Mnemonic::Int => return Class::SoftwareInterrupt,
        _ => {}
    }
    let moves_control_register = mnemonic == Mnemonic::Mov
        && (0..instruction.op_count()).any(|i| {
            instruction.op_kind(i) == OpKind::Register
                && is_control_or_debug_register(instruction.op_register(i))
        });
    if PRIVILEGED.contains(&mnemonic) || moves_control_register {
        return Class::Privileged;
    }
    if FAR.contains(&mnemonic)
        || instruction.is_jmp_far()
        || instruction.is_call_far()
        || instruction.is_jmp_far_indirect()
        || instruction.is_call_far_indirect()
    {
        return Class::FarTransfer;
    }
    let reads_code_or_stack_segment = mnemonic == Mnemonic::Mov
        && instruction.op1_kind() == OpKind::Register
        && matches!(instruction.op1_register(), Register::CS | Register::SS);
    if reads_code_or_stack_segment {
        return Class::SegmentRead;
    }
    let writes_segment = mnemonic == Mnemonic::Mov
        && instruction.op0_kind() == OpKind::Register
        && instruction.op0_register().is_segment_register();
    let pops_segment = mnemonic == Mnemonic::Pop
        && instruction.op0_kind() == OpKind::Register
        && instruction.op0_register().is_segment_register();
    if writes_segment || pops_segment || SEGMENT_LOADS.contains(&mnemonic) {
        return Class::SegmentLoad;
    }
    match instruction.flow_control() {
        FlowControl::UnconditionalBranch => Class::DirectJump,
        FlowControl::ConditionalBranch if instruction.is_jcc_short_or_near() => {
            Class::ConditionalJump
        }
        FlowControl::ConditionalBranch => Class::CounterJump,
        FlowControl::IndirectBranch => Class::IndirectJump,
        FlowControl::Call => Class::DirectCall,
        FlowControl::IndirectCall => Class::IndirectCall,
        FlowControl::Return => Class::Return,
        _ => Class::Plain,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_has_exactly_one_rule() {
        let classes = [
            Class::Plain,
            Class::DirectJump,
            Class::ConditionalJump,
            Class::CounterJump,
            Class::DirectCall,
            Class::IndirectJump,
            Class::IndirectCall,
            Class::Return,
            Class::Syscall,
            Class::AnsweredByMachine,
            Class::SegmentRead,
            Class::BoundsHint,
            Class::Popf,
            Class::Breakpoint,
            Class::DebugTrap,
            Class::SoftwareInterrupt,
            Class::Int80,
            Class::Sysenter,
            Class::Privileged,
            Class::FarTransfer,
            Class::SegmentLoad,
            Class::Invalid,
            Class::FetchFault,
        ];
        for class in classes {
            assert_eq!(
                RULES.iter().filter(|r| r.class == class).count(),
                1,
                "{class:?}"
            );
        }
        assert_eq!(RULES.len(), classes.len());
    }
}
