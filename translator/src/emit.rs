//! Building a block's translation: an instruction list with local labels, the exit stubs
//! after the body, and the final encoding at the block's code-cache address.

use iced_x86::{
    BlockEncoder, BlockEncoderOptions, Code, FlowControl, IcedError, Instruction, InstructionBlock,
    MemoryOperand, Register,
};

use crate::decode::{DecodedBlock, Entry};
use crate::planted::PlantedBug;
use crate::rewrite::sandbox;
use crate::rules::{classify, rule_for, Class, Source};
use crate::runtime::Runtime;
use crate::{ExitSite, TranslateError, TranslatedBlock};

/// A position in the translation that branches can target. Ids are small integers, far
/// from any real address a branch could also name (the runtime lives in the top 2 GiB).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Label(u64);

struct PendingExit {
    stub: Label,
    guest_target: u64,
    /// Index of the branch instruction that goes to the stub.
    site: usize,
}

pub struct Emitter<'r> {
    pub runtime: &'r Runtime,
    /// A bug to make on purpose (tests of the oracle only).
    pub planted: Option<PlantedBug>,
    instructions: Vec<Instruction>,
    /// What each instruction is there for, in step with `instructions`.
    sources: Vec<Source>,
    /// The guest register whose value is in the spill slot as each instruction starts, in
    /// step with `instructions`.
    spilled: Vec<Option<Register>>,
    /// The guest register in the spill slot now (`sandbox::borrow_scratch`).
    pub live_spill: Option<Register>,
    /// The source of instructions emitted now.
    source: Source,
    next_label: u64,
    pending_label: Option<Label>,
    exits: Vec<PendingExit>,
    error: Option<IcedError>,
    /// Registers the sandbox checked earlier in the block and nothing wrote since.
    pub checked: Vec<Register>,
    /// Registers dead before the guest instruction being rewritten: free scratch.
    pub dead: Vec<Register>,
    /// The last instruction moved RSP, which is checked before anything else runs.
    pub rsp_unchecked: bool,
}

impl<'r> Emitter<'r> {
    fn new(runtime: &'r Runtime, planted: Option<PlantedBug>) -> Self {
        Self {
            runtime,
            planted,
            instructions: Vec::new(),
            sources: Vec::new(),
            spilled: Vec::new(),
            live_spill: None,
            source: Source::Copy,
            next_label: 1,
            pending_label: None,
            exits: Vec::new(),
            error: None,
            checked: Vec::new(),
            dead: Vec::new(),
            rsp_unchecked: false,
        }
    }

    pub fn label(&mut self) -> Label {
        self.next_label += 1;
        Label(self.next_label - 1)
    }

    /// The next instruction emitted is `label`.
    pub fn place(&mut self, label: Label) {
        self.pending_label = Some(label);
    }

    pub fn emit(&mut self, mut instruction: Instruction) {
        instruction.set_ip(self.pending_label.take().map_or(0, |l| l.0));
        self.instructions.push(instruction);
        self.sources.push(self.source);
        self.spilled.push(self.live_spill);
    }

    /// Emits what `emit` emits as instructions of `source`.
    pub fn with_source(&mut self, source: Source, emit: impl FnOnce(&mut Self)) {
        let outer = std::mem::replace(&mut self.source, source);
        emit(self);
        self.source = outer;
    }

    /// Emits an instruction built by iced's constructors, keeping the first error.
    pub fn emit_built(&mut self, built: Result<Instruction, IcedError>) {
        match built {
            Ok(instruction) => self.emit(instruction),
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
    }

    pub fn jump_to_label(&mut self, code: Code, label: Label) {
        self.emit_built(Instruction::with_branch(code, label.0));
    }

    /// A near branch to an absolute address outside the block (a runtime stub).
    pub fn jump_to_address(&mut self, code: Code, address: u64) {
        self.emit_built(Instruction::with_branch(code, address));
    }

    /// A chainable exit to `guest_target` taken by branch `code` (a rel32 jmp or jcc).
    pub fn exit(&mut self, code: Code, guest_target: u64) {
        let stub = self.label();
        let site = self.instructions.len();
        self.jump_to_label(code, stub);
        self.exits.push(PendingExit {
            stub,
            guest_target,
            site,
        });
    }

    /// A runtime slot as an absolute memory operand. iced encodes a 64-bit-address-size
    /// absolute operand that fits a sign-extended 32-bit displacement as `[disp32]` (SIB, no
    /// base, no index): displacement size 8 asks for that; 4 would mean 32-bit addressing.
    pub fn slot(&self, address: u64) -> MemoryOperand {
        MemoryOperand::with_base_displ_size(Register::None, address as i64, 8)
    }

    /// Stores a 64-bit constant in memory with two 32-bit immediate stores: no register and
    /// no flag is touched.
    pub fn store_u64(&mut self, memory: MemoryOperand, value: u64) {
        let displ_size = if memory.base == Register::None { 8 } else { 1 };
        let high = MemoryOperand {
            displacement: memory.displacement + 4,
            displ_size,
            ..memory
        };
        self.emit_built(Instruction::with2(
            Code::Mov_rm32_imm32,
            memory,
            value as u32,
        ));
        self.emit_built(Instruction::with2(
            Code::Mov_rm32_imm32,
            high,
            (value >> 32) as u32,
        ));
    }

    /// Jumps to the `fault` stub with a ring-3 fault of `kind` at guest `rip`.
    pub fn fault(&mut self, kind: u32, rip: u64) {
        let (fault_rip, fault_kind, stub) = (
            self.runtime.fault_rip,
            self.runtime.fault_kind,
            self.runtime.fault,
        );
        self.store_u64(self.slot(fault_rip), rip);
        self.emit_built(Instruction::with2(
            Code::Mov_rm32_imm32,
            self.slot(fault_kind),
            kind,
        ));
        self.jump_to_address(Code::Jmp_rel32_64, stub);
    }
}

/// Translates a decoded block into code for `cache_address`.
pub fn emit_block(
    runtime: &Runtime,
    planted: Option<PlantedBug>,
    block: &DecodedBlock,
    cache_address: u64,
) -> Result<TranslatedBlock, TranslateError> {
    let mut e = Emitter::new(runtime, planted);
    let mut starts = Vec::new();
    let mut classes = Vec::new();
    let dead = crate::liveness::dead_before(&block.entries);
    for (entry, dead) in block.entries.iter().zip(dead) {
        starts.push(e.instructions.len());
        sandbox::check_moved_rsp(&mut e);
        e.dead = dead;
        match entry {
            Entry::Instruction(instruction) => {
                let class = classify(instruction);
                classes.push((instruction.ip(), class));
                let rule = rule_for(class);
                e.source = rule.source;
                (rule.rewrite)(&mut e, instruction);
            }
            Entry::FetchFault(address) => {
                classes.push((*address, Class::FetchFault));
                let mut at = Instruction::default();
                at.set_ip(*address);
                let rule = rule_for(Class::FetchFault);
                e.source = rule.source;
                (rule.rewrite)(&mut e, &at);
            }
        }
    }
    // Whatever the last rewrite was (a side exit, say), control must never run off the end
    // of the block.
    sandbox::check_moved_rsp(&mut e);
    e.source = Source::ControlFlow;
    let ends_in_jump = e.instructions.last().is_some_and(|last| {
        matches!(
            last.flow_control(),
            FlowControl::UnconditionalBranch | FlowControl::IndirectBranch
        )
    });
    if !ends_in_jump {
        e.exit(Code::Jmp_rel32_64, block.end);
    }
    let exits = std::mem::take(&mut e.exits);
    for exit in &exits {
        e.place(exit.stub);
        let target = e.slot(runtime.target);
        e.store_u64(target, exit.guest_target);
        e.jump_to_address(Code::Jmp_rel32_64, runtime.dispatch);
    }
    let encode_error = |reason: String| TranslateError::Encode {
        address: block.start,
        reason,
    };
    if let Some(error) = e.error {
        return Err(encode_error(error.to_string()));
    }
    let options = BlockEncoderOptions::DONT_FIX_BRANCHES
        | BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS;
    let encoded = BlockEncoder::encode(
        64,
        InstructionBlock::new(&e.instructions, cache_address),
        options,
    )
    .map_err(|err| encode_error(err.to_string()))?;
    let offsets = &encoded.new_instruction_offsets;
    let exit_sites = exits
        .iter()
        .map(|exit| {
            let site = offsets[exit.site];
            let size = if e.instructions[exit.site].code() == Code::Jmp_rel32_64 {
                5
            } else {
                6
            };
            ExitSite {
                guest_target: exit.guest_target,
                rel32_offset: site + size - 4,
                next_offset: site + size,
            }
        })
        .collect();
    Ok(TranslatedBlock {
        guest_start: block.start,
        guest_end: block.end,
        guest_code: block.bytes.clone(),
        guest_instructions: block.entries.len() as u32,
        cache_address,
        code: encoded.code_buffer,
        translated_instructions: e.instructions.len() as u32,
        exits: exit_sites,
        classes,
        sources: offsets.iter().copied().zip(e.sources).collect(),
        spills: offsets
            .iter()
            .zip(&e.spilled)
            .filter_map(|(&offset, spilled)| spilled.map(|register| (offset, register)))
            .collect(),
        guest_boundaries: starts
            .iter()
            .zip(&block.entries)
            .map(|(&i, entry)| (offsets[i], entry_address(entry)))
            .collect(),
    })
}

fn entry_address(entry: &Entry) -> u64 {
    match entry {
        Entry::Instruction(instruction) => instruction.ip(),
        Entry::FetchFault(address) => *address,
    }
}
