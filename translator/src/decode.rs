//! Decoding a guest block: instructions from an address up to the first one that ends a
//! block, the end of the guest page, or a length limit. Conditional jumps do not end it,
//! up to a limit: a block is a superblock with side exits.

use iced_x86::{
    Decoder, DecoderError, DecoderOptions, FlowControl, Instruction, InstructionInfoFactory,
    OpAccess,
};

use crate::rules::{classify, Class};
use crate::{CodeSource, TranslateError};

/// Guest instructions per block at most (DynamoRIO's default basic-block limit is similar).
const MAX_INSTRUCTIONS: usize = 64;
/// Conditional jumps a block continues past. Each saves its fall-through `jmp` and lets
/// checks and dead registers carry on; but a jump into the middle of a block starts a new
/// one, so longer blocks translate more guest code twice.
const MAX_SIDE_EXITS: usize = 2;
const PAGE_SIZE: u64 = 4096;
/// The longest x86 instruction.
const MAX_INSTRUCTION_LENGTH: usize = 15;

/// One decoded guest instruction, or the address where fetching fails.
#[derive(Clone, Copy, Debug)]
pub enum Entry {
    Instruction(Instruction),
    /// The instruction here cannot be fetched completely: ring 3 takes a page fault.
    FetchFault(u64),
}

pub struct DecodedBlock {
    pub start: u64,
    pub entries: Vec<Entry>,
    /// The guest address after the last entry (where a fall-through exit goes).
    pub end: u64,
    /// The guest bytes from `start` to `end`, as fetched.
    pub bytes: Vec<u8>,
}

pub fn decode_block(source: &dyn CodeSource, start: u64) -> Result<DecodedBlock, TranslateError> {
    // The last page of the address space is the kernel's, and there is no page after it for
    // a block's end to name: ring 3 cannot fetch there.
    let page_end = (start & !(PAGE_SIZE - 1))
        .checked_add(PAGE_SIZE)
        .ok_or(TranslateError::Unfetchable(start))?;
    let mut bytes = vec![0u8; (page_end - start) as usize + MAX_INSTRUCTION_LENGTH];
    let available = source.read_code(start, &mut bytes);
    if available == 0 {
        return Err(TranslateError::Unfetchable(start));
    }
    bytes.truncate(available);
    // MPX decoding, so the guest's own bnd* instructions are seen for what they are.
    let mut decoder = Decoder::with_ip(64, &bytes, start, DecoderOptions::MPX);
    // A block stays in its page, so one answer holds for all of it.
    let mut stores = source.is_writable(start).then(InstructionInfoFactory::new);
    let mut entries = Vec::new();
    let mut end = start;
    let mut side_exits = 0;
    while entries.len() < MAX_INSTRUCTIONS && end < page_end {
        let instruction = decoder.decode();
        if decoder.last_error() == DecoderError::NoMoreBytes {
            entries.push(Entry::FetchFault(end));
            break;
        }
        end = instruction.next_ip();
        entries.push(Entry::Instruction(instruction));
        // ud2 and its kin always fault: nothing after them runs.
        let class = classify(&instruction);
        side_exits += usize::from(class == Class::ConditionalJump);
        let writes_code_page = stores
            .as_mut()
            .is_some_and(|info| writes_memory(info, &instruction));
        if class.ends_block()
            || side_exits > MAX_SIDE_EXITS
            || instruction.flow_control() == FlowControl::Exception
            || writes_code_page
        {
            break;
        }
    }
    let fetched = ((end - start) as usize).min(bytes.len());
    let bytes = bytes[..fetched].to_vec();
    Ok(DecodedBlock {
        start,
        entries,
        end,
        bytes,
    })
}

/// Whether `instruction` may write memory (stack pushes included).
fn writes_memory(info: &mut InstructionInfoFactory, instruction: &Instruction) -> bool {
    info.info(instruction).used_memory().iter().any(|memory| {
        matches!(
            memory.access(),
            OpAccess::Write | OpAccess::CondWrite | OpAccess::ReadWrite | OpAccess::ReadCondWrite
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Bytes(Vec<u8>);

    impl CodeSource for Bytes {
        fn read_code(&self, addr: u64, buf: &mut [u8]) -> usize {
            let start = (addr - 0x1000) as usize;
            let n = buf.len().min(self.0.len().saturating_sub(start));
            buf[..n].copy_from_slice(&self.0[start..start + n]);
            n
        }
    }

    /// Serves every address: as if the whole address space were guest code.
    struct Everywhere;

    impl CodeSource for Everywhere {
        fn read_code(&self, _addr: u64, buf: &mut [u8]) -> usize {
            buf.fill(0x90);
            buf.len()
        }
    }

    #[test]
    fn the_last_page_of_the_address_space_is_unfetchable() {
        let start = u64::MAX - 5;
        assert!(matches!(
            decode_block(&Everywhere, start),
            Err(TranslateError::Unfetchable(at)) if at == start
        ));
        let below = decode_block(&Everywhere, u64::MAX - PAGE_SIZE - 5).unwrap();
        assert_eq!(below.end, u64::MAX - PAGE_SIZE + 1);
    }

    #[test]
    fn a_block_goes_on_past_two_conditional_jumps_and_ends_at_the_third() {
        // Four times `test eax, eax; je +0`, then ret.
        let mut code = [0x85, 0xc0, 0x74, 0x00].repeat(4);
        code.push(0xc3);
        let block = decode_block(&Bytes(code), 0x1000).unwrap();
        assert_eq!(block.entries.len(), 6, "three tests and three jumps");
        assert_eq!(block.end, 0x100c);
    }

    /// Code the guest can write: as `Bytes`, from a writable page.
    struct Writable(Vec<u8>);

    impl CodeSource for Writable {
        fn read_code(&self, addr: u64, buf: &mut [u8]) -> usize {
            Bytes(self.0.clone()).read_code(addr, buf)
        }

        fn is_writable(&self, _addr: u64) -> bool {
            true
        }
    }

    #[test]
    fn a_block_from_a_writable_page_ends_after_each_store() {
        // add byte [rip+1], 2; mov edi, 7; push rax; ret
        let code = vec![
            0x80, 0x05, 0x01, 0x00, 0x00, 0x00, 0x02, 0xbf, 0x07, 0, 0, 0, 0x50, 0xc3,
        ];
        let read_only = decode_block(&Bytes(code.clone()), 0x1000).unwrap();
        assert_eq!(read_only.entries.len(), 4);
        let first = decode_block(&Writable(code.clone()), 0x1000).unwrap();
        assert_eq!(first.entries.len(), 1, "the add writes memory");
        let second = decode_block(&Writable(code), 0x1007).unwrap();
        assert_eq!(second.entries.len(), 2, "the push writes the stack");
    }
}
