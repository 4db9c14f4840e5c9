//! The instruction forms to price: one representative per (`Code`, `Form`), from the
//! executable sections of ELF files and from the translator's own output.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use goblin::elf::section_header::SHF_EXECINSTR;
use goblin::elf::Elf;
use iced_x86::{Code, Decoder, DecoderOptions, Instruction};
use uarch::Form;

/// The representatives, keyed by the Code's name so that rows come out sorted.
#[derive(Default)]
pub struct Forms {
    representatives: BTreeMap<(String, Form), Instruction>,
}

impl Forms {
    /// Keeps `instruction` if its (Code, Form) has no representative yet: the first one met
    /// wins, so the translator's forms, added first, represent themselves.
    pub fn add(&mut self, instruction: Instruction) {
        if instruction.code() == Code::INVALID {
            return;
        }
        let instruction = without_hint_prefixes(instruction);
        let key = (format!("{:?}", instruction.code()), Form::of(&instruction));
        self.representatives.entry(key).or_insert(instruction);
        // The translator turns every short jcc and jmp into its rel32 form.
        if instruction.is_jcc_short() || instruction.is_jmp_short() {
            let mut near = instruction;
            near.set_code(instruction.code().as_near_branch());
            self.add(near);
        }
    }

    /// Adds every instruction of `path`'s executable sections (a linear sweep; what does
    /// not decode is skipped). Returns how many instructions were decoded.
    pub fn add_elf(&mut self, path: &Path) -> Result<u64> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let elf = Elf::parse(&bytes).with_context(|| format!("parsing {}", path.display()))?;
        let mut decoded = 0;
        if !elf.is_64 {
            return Ok(decoded);
        }
        for section in &elf.section_headers {
            if section.sh_flags & u64::from(SHF_EXECINSTR) == 0 {
                continue;
            }
            let Some(code) = section.file_range().and_then(|range| bytes.get(range)) else {
                continue;
            };
            let mut decoder = Decoder::with_ip(64, code, section.sh_addr, DecoderOptions::NONE);
            for instruction in &mut decoder {
                decoded += 1;
                self.add(instruction);
            }
        }
        Ok(decoded)
    }

    pub fn len(&self) -> usize {
        self.representatives.len()
    }

    /// The representatives in row order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Form, &Instruction)> {
        self.representatives
            .iter()
            .map(|((name, form), instruction)| (name.as_str(), *form, instruction))
    }
}

/// The instruction without the prefixes that are hints or ignored where they stand (`rep
/// ret`, `bnd jmp`, `xacquire`): they do not change the cost, and LLVM 14 rejects some.
fn without_hint_prefixes(mut instruction: Instruction) -> Instruction {
    if !instruction.is_string_instruction() {
        instruction.set_has_rep_prefix(false);
        instruction.set_has_repne_prefix(false);
    }
    instruction
}
