//! ringsim's binary translator, in the style of VMware's and DynamoRIO's: it rewrites a
//! guest x86-64 basic block so that it can run at ring 0 in a kernel's code cache.
//!
//! - Ordinary instructions are copied; RIP-relative operands keep addressing guest data.
//! - Direct branches exit to the dispatcher until the runtime chains them to their targets.
//! - Indirect branches and returns go through the runtime's indirect-branch lookup.
//! - `syscall` becomes a direct call into the kernel entry, on the kernel stack.
//! - Sensitive instructions get exactly their ring-3 outcome.
//! - Every memory access is confined to the user half (software fault isolation with MPX
//!   `bndcu`; see `rewrite::sandbox`).
//!
//! The translator knows nothing of the emulator: it reads guest bytes through
//! [`CodeSource`], and the addresses of the runtime it calls are a [`Runtime`] value.
//! Translation is deterministic: the same bytes, addresses and runtime give the same code.

pub mod cpu;
mod decode;
mod emit;
mod liveness;
pub mod planted;
mod rewrite;
pub mod rules;
pub mod runtime;

pub use planted::PlantedBug;
pub use rules::{BySource, Class, Rule, Source, RULES};
pub use runtime::{FaultKind, Runtime, FAULT_KINDS};

use iced_x86::{Decoder, DecoderOptions, Formatter, IntelFormatter, Register};

/// Reads guest code as ring 3 would fetch it.
pub trait CodeSource {
    /// Fills `buf` from `addr` with executable guest bytes; returns how many were
    /// available before the first byte that cannot be fetched.
    fn read_code(&self, addr: u64, buf: &mut [u8]) -> usize;

    /// Whether the guest may write the code at `addr` (its page is writable). A block from
    /// such a page ends after each instruction that writes memory, so that a store which
    /// rewrites the instructions after it takes effect at once, as on hardware (DynamoRIO
    /// splits its self-modifying-code fragments the same way).
    fn is_writable(&self, _addr: u64) -> bool {
        false
    }
}

/// A direct branch out of a block, which the runtime may chain to the translated target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitSite {
    /// The guest address the branch goes to.
    pub guest_target: u64,
    /// Offset in the block's code of the branch's rel32 field; it goes to the block's
    /// exit stub (which calls the dispatcher) until the runtime chains it.
    pub rel32_offset: u32,
    /// Offset just after the branch: the rel32 is relative to it.
    pub next_offset: u32,
}

/// One translated block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TranslatedBlock {
    pub guest_start: u64,
    /// One past the last guest byte translated.
    pub guest_end: u64,
    /// The guest bytes translated (short of `guest_end` when the last instruction could not
    /// be fetched whole).
    pub guest_code: Vec<u8>,
    pub guest_instructions: u32,
    /// Where the code goes in the code cache.
    pub cache_address: u64,
    pub code: Vec<u8>,
    /// Instructions in `code`.
    pub translated_instructions: u32,
    pub exits: Vec<ExitSite>,
    /// Each guest instruction's class, in order.
    pub classes: Vec<(u64, Class)>,
    /// Each translated instruction's offset in `code` and what it is there for, in order.
    pub sources: Vec<(u32, Source)>,
    /// Translate-back table: (offset in `code`, guest address), one per guest instruction,
    /// in order. Code from one offset up to the next belongs to that guest instruction.
    pub guest_boundaries: Vec<(u32, u64)>,
    /// The translated instructions (by offset in `code`) that run while a guest register's
    /// value is in the runtime's spill slot instead of the register, with that register:
    /// a fault there must take it back from the slot to show the guest's registers.
    pub spills: Vec<(u32, Register)>,
}

impl TranslatedBlock {
    /// The guest instruction whose translation contains `cache_address`.
    pub fn guest_address_of(&self, cache_address: u64) -> Option<u64> {
        let offset = cache_address.checked_sub(self.cache_address)?;
        self.guest_boundaries
            .iter()
            .rev()
            .find(|(o, _)| *o as u64 <= offset)
            .map(|&(_, guest)| guest)
    }

    /// The guest register whose value is in the spill slot while the translated instruction
    /// at `cache_address` runs, if any.
    pub fn spilled_at(&self, cache_address: u64) -> Option<Register> {
        let offset = cache_address.checked_sub(self.cache_address)?;
        self.spills
            .iter()
            .find(|(o, _)| *o as u64 == offset)
            .map(|&(_, register)| register)
    }

    /// Translated instructions with offsets in `range`, by source.
    pub fn translated_by_source(&self, range: std::ops::Range<u32>) -> BySource {
        let mut counts = BySource::default();
        for (_, source) in self.sources.iter().filter(|(o, _)| range.contains(o)) {
            counts[*source as usize] += 1;
        }
        counts
    }

    /// Guest instructions whose translations start at offsets in `range`, by the source
    /// of their rule.
    pub fn guest_by_source(&self, range: std::ops::Range<u32>) -> BySource {
        let mut counts = BySource::default();
        for ((offset, _), (_, class)) in self.guest_boundaries.iter().zip(&self.classes) {
            if range.contains(offset) {
                counts[rules::rule_for(*class).source as usize] += 1;
            }
        }
        counts
    }

    /// Disassembly of the guest code, one instruction per line (Intel syntax).
    pub fn disassemble_guest(&self) -> String {
        disassemble(&self.guest_code, self.guest_start)
    }

    /// Disassembly of the translated code, one instruction per line (Intel syntax), each
    /// with its source.
    pub fn disassemble(&self) -> String {
        let listing = disassemble(&self.code, self.cache_address);
        listing
            .lines()
            .zip(&self.sources)
            .map(|(line, (_, source))| format!("{line:<62}  ; {}\n", source.name()))
            .collect()
    }
}

/// Why a block could not be translated.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TranslateError {
    /// The first instruction cannot be fetched: ring 3 would take a page fault.
    #[error("no executable code at guest address {0:#x}")]
    Unfetchable(u64),
    /// The runtime layout is unusable (a programming error in the caller).
    #[error("bad runtime layout: {0}")]
    Runtime(String),
    /// iced-x86 refused to encode the block.
    #[error("cannot encode the translation of the block at {address:#x}: {reason}")]
    Encode { address: u64, reason: String },
}

/// Translates guest blocks for one runtime layout.
#[derive(Clone, Debug)]
pub struct Translator {
    runtime: Runtime,
    planted: Option<PlantedBug>,
}

impl Translator {
    pub fn new(runtime: Runtime) -> Result<Self, TranslateError> {
        runtime.validate().map_err(TranslateError::Runtime)?;
        Ok(Self {
            runtime,
            planted: None,
        })
    }

    /// The same translator, making `bug` on purpose (see [`planted`]).
    pub fn with_planted_bug(self, bug: PlantedBug) -> Self {
        Self {
            planted: Some(bug),
            ..self
        }
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Translates the guest block at `guest` for placement at `cache_address`.
    pub fn translate(
        &self,
        source: &dyn CodeSource,
        guest: u64,
        cache_address: u64,
    ) -> Result<TranslatedBlock, TranslateError> {
        let block = decode::decode_block(source, guest)?;
        emit::emit_block(&self.runtime, self.planted, &block, cache_address)
    }
}

/// Disassembles `code` at `address`, one instruction per line.
pub fn disassemble(code: &[u8], address: u64) -> String {
    // MPX decoding, so the sandbox's bndcu shows as itself rather than as a hint nop.
    let mut decoder = Decoder::with_ip(64, code, address, DecoderOptions::MPX);
    let mut formatter = IntelFormatter::new();
    formatter.options_mut().set_first_operand_char_index(8);
    let mut out = String::new();
    for instruction in &mut decoder {
        let mut text = String::new();
        formatter.format(&instruction, &mut text);
        out.push_str(&format!("{:016x}  {text}\n", instruction.ip()));
    }
    out
}
