//! Prices each basic block of one function of an ELF file on every built-in
//! microarchitecture, for a look at the figures:
//!
//! ```text
//! cargo run --release -p uarch --example price-function -- corpora/build/cpu_bound main
//! ```

use std::collections::BTreeSet;

use anyhow::{Context, Result};
use goblin::elf::Elf;
use iced_x86::{Decoder, DecoderOptions, FlowControl, Formatter, GasFormatter, Instruction};
use uarch::BlockPricer;

fn main() -> Result<()> {
    let mut arguments = std::env::args().skip(1);
    let (Some(path), Some(function)) = (arguments.next(), arguments.next()) else {
        anyhow::bail!("usage: price-function ELF FUNCTION");
    };
    let bytes = std::fs::read(&path).with_context(|| format!("reading {path}"))?;
    let elf = Elf::parse(&bytes)?;
    let symbol = elf
        .syms
        .iter()
        .find(|symbol| elf.strtab.get_at(symbol.st_name) == Some(function.as_str()))
        .with_context(|| format!("{path} has no symbol {function}"))?;
    let offset = elf
        .program_headers
        .iter()
        .find(|segment| segment.vm_range().contains(&(symbol.st_value as usize)))
        .map(|segment| symbol.st_value - segment.p_vaddr + segment.p_offset)
        .context("the symbol is in no segment")? as usize;
    let code = &bytes[offset..offset + symbol.st_size as usize];
    let instructions: Vec<Instruction> =
        Decoder::with_ip(64, code, symbol.st_value, DecoderOptions::NONE)
            .into_iter()
            .collect();
    let mut pricers: Vec<BlockPricer> = uarch::all().iter().map(BlockPricer::new).collect();
    let mut formatter = GasFormatter::new();
    for block in basic_blocks(&instructions) {
        println!("block at {:#x}:", block[0].ip());
        for instruction in block {
            let mut text = String::new();
            formatter.format(instruction, &mut text);
            println!("    {text}");
        }
        for (uarch, pricer) in uarch::all().iter().zip(&mut pricers) {
            let cost = pricer.price(block);
            println!(
                "  {:>15}: {:6.2} cycles (throughput {:.2}, recurrence {:.2}, critical path {:.0}, {} uops, {} unpriced)",
                uarch.name,
                cost.cycles,
                cost.throughput_bound,
                cost.recurrence,
                cost.critical_path,
                cost.uops,
                cost.unpriced
            );
        }
    }
    Ok(())
}

/// The function's basic blocks: a block starts at the function's start, at a branch
/// target inside it, and after a branch.
fn basic_blocks(instructions: &[Instruction]) -> Vec<&[Instruction]> {
    let mut leaders = BTreeSet::new();
    for (index, instruction) in instructions.iter().enumerate() {
        if instruction.flow_control() != FlowControl::Next {
            leaders.insert(index + 1);
            let target = instruction.near_branch_target();
            if let Some(at) = instructions.iter().position(|i| i.ip() == target) {
                leaders.insert(at);
            }
        }
    }
    leaders.insert(0);
    leaders.insert(instructions.len());
    let bounds: Vec<usize> = leaders
        .into_iter()
        .filter(|&l| l <= instructions.len())
        .collect();
    bounds
        .windows(2)
        .map(|pair| &instructions[pair[0]..pair[1]])
        .filter(|block| !block.is_empty())
        .collect()
}
