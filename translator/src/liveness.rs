//! Which general registers are dead before each instruction of a block: free scratch for
//! the sandbox and for rewrites, with no spill. Conservative: everything is live at the
//! block's end, at its side exits and around anything that leaves translated code (syscalls, hypercalls).

use iced_x86::{Instruction, InstructionInfoFactory, OpAccess, Register};

use crate::decode::Entry;
use crate::rules::classify;

/// The general registers a rewrite may borrow (never RSP).
pub const SCRATCH: [Register; 15] = [
    Register::RAX,
    Register::RCX,
    Register::RDX,
    Register::RBX,
    Register::RBP,
    Register::RSI,
    Register::RDI,
    Register::R8,
    Register::R9,
    Register::R10,
    Register::R11,
    Register::R12,
    Register::R13,
    Register::R14,
    Register::R15,
];

/// Registers read by the instruction, and those it overwrites entirely (64-bit writes and
/// 32-bit ones, which zero-extend). A narrower write merges into the old value, so it
/// neither reads nor kills: the register stays as live as it was.
fn reads_and_kills(
    instruction: &Instruction,
    factory: &mut InstructionInfoFactory,
) -> (Vec<Register>, Vec<Register>) {
    let mut reads = Vec::new();
    let mut kills = Vec::new();
    for used in factory.info(instruction).used_registers() {
        let full = used.register().full_register();
        match used.access() {
            OpAccess::Write if used.register().size() >= 4 => kills.push(full),
            OpAccess::Write | OpAccess::CondWrite => {}
            _ => reads.push(full),
        }
    }
    (reads, kills)
}

/// For each entry, the scratch registers dead just before it.
pub fn dead_before(entries: &[Entry]) -> Vec<Vec<Register>> {
    let mut factory = InstructionInfoFactory::new();
    let mut live: Vec<Register> = SCRATCH.to_vec();
    let mut dead = vec![Vec::new(); entries.len()];
    for (i, entry) in entries.iter().enumerate().rev() {
        let leaves = match entry {
            Entry::Instruction(instruction) => classify(instruction).may_leave(),
            Entry::FetchFault(_) => true,
        };
        if leaves {
            live = SCRATCH.to_vec();
        }
        if let Entry::Instruction(instruction) = entry {
            let (reads, kills) = reads_and_kills(instruction, &mut factory);
            live.retain(|r| !kills.contains(r));
            for read in reads {
                if SCRATCH.contains(&read) && !live.contains(&read) {
                    live.push(read);
                }
            }
        }
        dead[i] = SCRATCH
            .iter()
            .copied()
            .filter(|r| !live.contains(r))
            .collect();
    }
    dead
}

#[cfg(test)]
mod tests {
    use super::*;
    use iced_x86::{Decoder, DecoderOptions};

    fn entries(code: &[u8]) -> Vec<Entry> {
        Decoder::with_ip(64, code, 0x1000, DecoderOptions::NONE)
            .into_iter()
            .map(Entry::Instruction)
            .collect()
    }

    #[test]
    fn a_register_overwritten_later_is_dead_until_then() {
        // mov rcx, [rbx+rax*8]; mov eax, 1; ret
        let block = entries(&[0x48, 0x8b, 0x0c, 0xc3, 0xb8, 1, 0, 0, 0, 0xc3]);
        let dead = dead_before(&block);
        assert!(
            dead[0].contains(&Register::RCX),
            "rcx is written by the load before any read"
        );
        assert!(!dead[0].contains(&Register::RAX), "rax is read by the load");
        assert!(!dead[0].contains(&Register::RBX));
        assert!(
            dead[1].contains(&Register::RAX),
            "mov eax, 1 overwrites rax whole"
        );
        assert!(dead[2].is_empty(), "at a return everything is live");
    }

    #[test]
    fn everything_is_live_at_a_side_exit() {
        // test eax, eax; jne +5; mov eax, 1; ret
        let block = entries(&[0x85, 0xc0, 0x75, 0x05, 0xb8, 1, 0, 0, 0, 0xc3]);
        let dead = dead_before(&block);
        assert!(dead[1].is_empty(), "the taken jne may go anywhere");
        assert!(
            dead[2].contains(&Register::RAX),
            "the fall-through overwrites rax"
        );
    }
}
