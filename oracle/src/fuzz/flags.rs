//! Which flags a sequence leaves architecturally undefined, and so are not compared.
//!
//! The rule: a flag is compared unless the last instruction that wrote it left it
//! undefined, as the instruction's definition says (iced-x86's `rflags_undefined`: the
//! arithmetic flags after `mul`, `div`, `bsf`, `bt`, AF after the logic instructions, OF after a
//! shift or rotate by more than one…). A later instruction that defines the flag makes it
//! compared again. A shift or rotate by CL may shift by 0 and leave every flag as it was,
//! so it never makes an undefined flag defined. Register results are never undefined here:
//! the forms avoid the cases that would be (`bsf`/`bsr` of zero).
//!
//! Emulator bugs the fuzzer found that leave flags wrong are listed in `UNICORN_FLAG_BUGS`:
//! campaigns treat those flags as undefined so that they go on finding new things, and each
//! bug's minimized case in `corpora/regressions/` checks, unmasked, that it is still there.

use iced_x86::{Decoder, DecoderOptions, Instruction, Mnemonic, OpKind, Register, RflagsBits};

/// Whether the flags Unicorn gets wrong count as undefined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KnownBugs {
    Masked,
    Exposed,
}

/// Instructions after which Unicorn 2.1.5 leaves flags wrong, the flags, and the
/// regression case that shows it.
pub const UNICORN_FLAG_BUGS: &[(Mnemonic, u32, &str)] = &[(
    Mnemonic::Cmpxchg16b,
    RflagsBits::CF | RflagsBits::PF | RflagsBits::AF | RflagsBits::SF | RflagsBits::OF,
    "unicorn-cmpxchg16b-flags.json: cmpxchg16b must change only ZF; Unicorn recomputes the \
     others from a stale flags state",
)];

/// A shift or rotate whose count is in CL.
fn counts_by_cl(instruction: &Instruction) -> bool {
    (0..instruction.op_count()).any(|i| {
        instruction.op_kind(i) == OpKind::Register && instruction.op_register(i) == Register::CL
    }) && matches!(
        instruction.mnemonic(),
        Mnemonic::Shl
            | Mnemonic::Shr
            | Mnemonic::Sar
            | Mnemonic::Sal
            | Mnemonic::Rol
            | Mnemonic::Ror
            | Mnemonic::Rcl
            | Mnemonic::Rcr
            | Mnemonic::Shld
            | Mnemonic::Shrd
    )
}

/// iced's flag bits and their places in RFLAGS.
const FLAGS: [(u32, u64); 6] = [
    (RflagsBits::CF, 1 << 0),
    (RflagsBits::PF, 1 << 2),
    (RflagsBits::AF, 1 << 4),
    (RflagsBits::ZF, 1 << 6),
    (RflagsBits::SF, 1 << 7),
    (RflagsBits::OF, 1 << 11),
];

fn to_rflags(bits: u32) -> u64 {
    FLAGS
        .iter()
        .filter(|(iced, _)| bits & iced != 0)
        .map(|(_, rflags)| rflags)
        .sum()
}

/// The RFLAGS bits whose value after `code` is undefined.
pub fn undefined_after(code: &[u8], known: KnownBugs) -> u64 {
    to_rflags(walk(code, known).0)
}

/// Whether an instruction of `code` reads a flag that is undefined there: its result would
/// be undefined too, so such a sequence is never run (the generator defines the flags
/// first, and minimization keeps that).
pub fn reads_undefined(code: &[u8]) -> bool {
    walk(code, KnownBugs::Masked).1
}

/// The undefined flags after `code` (iced's bits), and whether any was read.
fn walk(code: &[u8], known: KnownBugs) -> (u32, bool) {
    let mut undefined = 0u32;
    let mut read = false;
    for instruction in Decoder::new(64, code, DecoderOptions::NONE) {
        read |= instruction.rflags_read() & undefined != 0;
        let defined = if counts_by_cl(&instruction) {
            0
        } else {
            instruction.rflags_modified()
        };
        undefined = (undefined & !defined) | instruction.rflags_undefined();
        if known == KnownBugs::Masked {
            for (mnemonic, flags, _) in UNICORN_FLAG_BUGS {
                if instruction.mnemonic() == *mnemonic {
                    undefined |= flags;
                }
            }
        }
    }
    (undefined, read)
}

#[cfg(test)]
mod tests {
    use super::*;
    use iced_x86::code_asm::*;

    fn code(build: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>) -> Vec<u8> {
        let mut a = CodeAssembler::new(64).unwrap();
        build(&mut a).unwrap();
        a.assemble(0).unwrap()
    }

    #[test]
    fn mul_leaves_sf_zf_af_pf_undefined() {
        let undefined = undefined_after(&code(|a| a.mul(rbx)), KnownBugs::Exposed);
        assert_eq!(undefined, (1 << 7) | (1 << 6) | (1 << 4) | (1 << 2));
    }

    #[test]
    fn a_later_definition_makes_a_flag_compared_again() {
        assert_eq!(
            undefined_after(
                &code(|a| {
                    a.mul(rbx)?;
                    a.add(rax, rcx)
                }),
                KnownBugs::Exposed
            ),
            0
        );
    }

    #[test]
    fn logic_leaves_only_af_undefined() {
        assert_eq!(
            undefined_after(&code(|a| a.and(rax, rcx)), KnownBugs::Exposed),
            1 << 4
        );
    }

    #[test]
    fn reading_an_undefined_flag_is_seen() {
        assert!(reads_undefined(&code(|a| {
            a.rcl(rax, 5)?;
            a.cmovo(rbx, rcx)
        })));
        assert!(!reads_undefined(&code(|a| {
            a.rcl(rax, 5)?;
            a.cmove(rbx, rcx)
        })));
    }

    #[test]
    fn a_shift_by_cl_may_leave_flags_as_they_were() {
        let after_mul = undefined_after(&code(|a| a.mul(rbx)), KnownBugs::Exposed);
        let shifted = undefined_after(
            &code(|a| {
                a.mul(rbx)?;
                a.shl(rax, cl)
            }),
            KnownBugs::Exposed,
        );
        assert_eq!(shifted & after_mul, after_mul);
    }

    #[test]
    fn known_unicorn_bugs_are_masked_only_when_asked() {
        let cmpxchg16b = code(|a| a.lock().cmpxchg16b(xmmword_ptr(rbp)));
        assert_eq!(undefined_after(&cmpxchg16b, KnownBugs::Exposed), 0);
        assert_eq!(
            undefined_after(&cmpxchg16b, KnownBugs::Masked),
            0x8d5 & !(1 << 6)
        );
    }

    #[test]
    fn division_leaves_every_arithmetic_flag_undefined() {
        assert_eq!(
            undefined_after(&code(|a| a.div(rcx)), KnownBugs::Exposed),
            0x8d5
        );
    }
}
