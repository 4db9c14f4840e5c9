//! The code cache: translated blocks in the kernel half, found by guest address, chained
//! to one another, mapped back to guest addresses for faults and counting, and dropped when
//! the guest code they came from changes.
//!
//! Self-modifying code: the machine watches the physical frame of every writable guest page
//! a block comes from with an emulator write hook. Watches are keyed by frame, because that
//! is what a store reaches: a page unmapped and mapped again gets other frames, and its old
//! frames may come back under other pages. A guest write to a watched frame drops the blocks
//! from the pages on it and undoes the links into them; the next jump there translates the
//! new code. (Faulting on write-protected pages would be the hardware way, but Unicorn never
//! delivers exceptions, so it escalates the next page fault into a double fault.)
//!
//! Dropped blocks are retired at the next dispatch, when no dropped block can be running:
//! they leave every table (no link can reach them and none is patched into them), and a
//! frame with no live translation left loses its watch.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::Serialize;
use translator::{
    rules, CodeSource, PlantedBug, Source, TranslateError, TranslatedBlock, Translator,
};

use super::layout::{self, CACHE, CACHE_END, CODE, LOOKUP_ENTRIES, LOOKUP_TABLE, RUNTIME};
use crate::accounting::{price_without_syscalls, Extra};
use crate::machine::physmem::PAGE_SIZE;
use crate::memory::AddressSpace;
use iced_x86::{DecoderOptions, Instruction};

/// Translation statistics, for the report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TranslationStats {
    pub blocks: u64,
    pub guest_instructions_translated: u64,
    /// Direct exits patched to jump straight to their target's translation.
    pub chained_links: u64,
    pub indirect_lookups: u64,
    /// Lookups whose target was already translated.
    pub indirect_hits: u64,
    /// Exits to the dispatcher from direct branches not yet chained.
    pub dispatches: u64,
    /// Blocks dropped because their guest code changed.
    pub invalidations: u64,
}

impl TranslationStats {
    /// Adds `other`'s counts to these.
    pub fn absorb(&mut self, other: &Self) {
        let Self {
            blocks,
            guest_instructions_translated,
            chained_links,
            indirect_lookups,
            indirect_hits,
            dispatches,
            invalidations,
        } = other;
        self.blocks += blocks;
        self.guest_instructions_translated += guest_instructions_translated;
        self.chained_links += chained_links;
        self.indirect_lookups += indirect_lookups;
        self.indirect_hits += indirect_hits;
        self.dispatches += dispatches;
        self.invalidations += invalidations;
    }
}

/// Guest code as ring 3 would fetch it.
struct GuestCode<'a>(&'a AddressSpace);

impl CodeSource for GuestCode<'_> {
    fn read_code(&self, addr: u64, buf: &mut [u8]) -> usize {
        self.0.fetch(addr, buf)
    }

    fn is_writable(&self, addr: u64) -> bool {
        self.0.is_writable_code(addr)
    }
}

/// A direct branch site: the block it is in, its rel32 field, the address the displacement
/// is relative to, and the block's own exit stub, where it points while unchained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Site {
    block: u64,
    field: u64,
    next: u64,
    stub: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error(transparent)]
    Translate(#[from] TranslateError),
    #[error("the code cache is full ({} MiB)", (CACHE_END - CACHE) >> 20)]
    Full,
    #[error("cannot map code-cache memory")]
    NoMemory,
}

/// What the CPU must do after the code cache changed.
#[derive(Debug, Default)]
pub struct CacheSync {
    /// Code-cache pages changed in place: the emulator's translations of them must go.
    pub patched: Vec<u64>,
    /// Physical frames (addresses) whose watch may have to start or stop: the machine
    /// brings each in line with [`CodeCache::watches`].
    pub frames: Vec<u64>,
}

impl CacheSync {
    pub fn merge(&mut self, other: CacheSync) {
        self.patched.extend(other.patched);
        self.frames.extend(other.frames);
    }
}

pub struct CodeCache {
    translator: Translator,
    next: u64,
    mapped_end: u64,
    blocks: BTreeMap<u64, TranslatedBlock>,
    by_guest: HashMap<u64, u64>,
    /// Sites whose guest target has no translation yet, by target.
    waiting: HashMap<u64, Vec<Site>>,
    /// Chained sites, by the block they jump to.
    incoming: HashMap<u64, Vec<Site>>,
    /// Live blocks by the guest pages they come from.
    pages: HashMap<u64, Vec<u64>>,
    /// The frame (physical address) of each writable guest page with live blocks.
    page_frames: HashMap<u64, u64>,
    /// Writable guest pages with live blocks, by frame: the frames to watch.
    frame_pages: HashMap<u64, BTreeSet<u64>>,
    /// Dropped blocks, retired at the next dispatch.
    dead: HashSet<u64>,
    /// Retired blocks, kept only for the dump.
    retired: Option<Vec<TranslatedBlock>>,
    pub stats: TranslationStats,
}

impl Default for CodeCache {
    fn default() -> Self {
        Self::new()
    }
}

impl CodeCache {
    pub fn new() -> Self {
        Self {
            translator: Translator::new(RUNTIME).expect("the runtime layout is valid"),
            next: CODE,
            // The lookup table's pages are mapped with the first block's.
            mapped_end: CACHE,
            blocks: BTreeMap::new(),
            by_guest: HashMap::new(),
            waiting: HashMap::new(),
            incoming: HashMap::new(),
            pages: HashMap::new(),
            page_frames: HashMap::new(),
            frame_pages: HashMap::new(),
            dead: HashSet::new(),
            retired: None,
            stats: TranslationStats::default(),
        }
    }

    /// Keeps retired blocks for [`CodeCache::dump`].
    pub fn keep_retired_blocks(&mut self) {
        self.retired.get_or_insert_with(Vec::new);
    }

    /// An empty cache that translates as this one does (a new address space's).
    pub fn fresh(&self) -> Self {
        Self {
            translator: self.translator.clone(),
            retired: self.retired.as_ref().map(|_| Vec::new()),
            ..Self::new()
        }
    }

    /// Makes the translator plant `bug` from now on (tests of the oracle only).
    pub fn plant(&mut self, bug: PlantedBug) {
        self.translator = self.translator.clone().with_planted_bug(bug);
    }

    /// Whether the block at `guest` is translated already (the tests' view: translated code
    /// asks the lookup table).
    #[cfg(test)]
    pub fn knows(&self, guest: u64) -> bool {
        self.by_guest.contains_key(&guest)
    }

    /// The translation of the block at `guest`, translating it if needed.
    pub fn find_or_translate(
        &mut self,
        mem: &mut AddressSpace,
        guest: u64,
    ) -> Result<(u64, CacheSync), CacheError> {
        if let Some(&cache) = self.by_guest.get(&guest) {
            return Ok((cache, CacheSync::default()));
        }
        let block = self
            .translator
            .translate(&GuestCode(mem), guest, self.next)?;
        for page in block_pages(&block) {
            mem.fault_in_code(page).map_err(|_| CacheError::NoMemory)?;
        }
        let start = self.next;
        let end = start + block.code.len() as u64;
        if end > CACHE_END {
            return Err(CacheError::Full);
        }
        while self.mapped_end < end {
            mem.map_kernel_page(self.mapped_end, true)
                .map_err(|_| CacheError::NoMemory)?;
            self.mapped_end += PAGE_SIZE;
        }
        mem.fill(start, &block.code);
        self.next = (end + 15) & !15;
        self.stats.blocks += 1;
        self.stats.guest_instructions_translated += block.guest_instructions as u64;

        let mut sync = CacheSync::default();
        for page in block_pages(&block) {
            self.pages.entry(page).or_default().push(start);
            if let Some(physical) = mem.writable_frame(page) {
                self.page_frames.insert(page, physical);
                self.frame_pages.entry(physical).or_default().insert(page);
                sync.frames.push(physical);
            }
        }
        for (site, guest_target) in sites(&block) {
            match self.by_guest.get(&guest_target) {
                Some(&target) => sync.patched.push(self.chain(mem, site, target)),
                None => self.waiting.entry(guest_target).or_default().push(site),
            }
        }
        for site in self.waiting.remove(&guest).unwrap_or_default() {
            sync.patched.push(self.chain(mem, site, start));
        }
        self.by_guest.insert(guest, start);
        self.blocks.insert(start, block);
        sync.patched.sort_unstable();
        sync.patched.dedup();
        Ok((start, sync))
    }

    /// Points the branch at `site` straight at `target`; returns the page it changed.
    fn chain(&mut self, mem: &mut AddressSpace, site: Site, target: u64) -> u64 {
        write_rel32(mem, site, target);
        self.incoming.entry(target).or_default().push(site);
        self.stats.chained_links += 1;
        site.field & !(PAGE_SIZE - 1)
    }

    /// Puts `translation`, the translation of guest `target`, in the lookup table, so that
    /// the next lookup of `target` finds it without the simulator.
    pub fn publish(&self, mem: &mut AddressSpace, target: u64, translation: u64) {
        let mut entry = [0; 16];
        entry[..8].copy_from_slice(&target.wrapping_neg().to_le_bytes());
        entry[8..].copy_from_slice(&translation.to_le_bytes());
        mem.fill(lookup_entry(target), &entry);
    }

    /// Takes guest `target` out of the lookup table, if its entry holds it.
    fn unpublish(&self, mem: &mut AddressSpace, target: u64) {
        let entry = lookup_entry(target);
        if self.mapped_end > entry && mem.read_kernel_u64(entry) == target.wrapping_neg() {
            mem.fill(entry, &[0; 16]);
        }
    }

    /// Drops the blocks made from guest `page`: they can no longer be found, every branch
    /// chained to them goes back to its exit stub, and their own branches leave the link
    /// tables. The blocks' bytes stay until they are retired (a block may be running).
    pub fn invalidate_page(&mut self, mem: &mut AddressSpace, page: u64) -> CacheSync {
        self.invalidate(mem, page, page..page + PAGE_SIZE)
    }

    /// Drops the blocks from guest `page` whose guest bytes overlap `bytes`, as
    /// `invalidate_page` does: a store that changed data beside code leaves the code be.
    pub fn invalidate(
        &mut self,
        mem: &mut AddressSpace,
        page: u64,
        bytes: std::ops::Range<u64>,
    ) -> CacheSync {
        let mut sync = CacheSync::default();
        for start in self.pages.get(&page).cloned().unwrap_or_default() {
            let Some(block) = self
                .blocks
                .get(&start)
                .filter(|b| b.guest_start < bytes.end && bytes.start < b.guest_end)
            else {
                continue;
            };
            let guest = block.guest_start;
            let own_sites = sites(block);
            let other_pages = block_pages(block);
            self.dead.insert(start);
            // The block may still be running (a store of its own dropped it): its branches
            // go back to its exit stubs, which find the new translations.
            for (site, target) in own_sites {
                self.unlink(site, target);
                write_rel32(mem, site, site.stub);
                sync.patched.push(site.field & !(PAGE_SIZE - 1));
            }
            self.by_guest.remove(&guest);
            self.unpublish(mem, guest);
            self.stats.invalidations += 1;
            for other in other_pages {
                self.forget_page_block(other, start, &mut sync);
            }
            for site in self.incoming.remove(&start).unwrap_or_default() {
                if self.dead.contains(&site.block) {
                    continue;
                }
                write_rel32(mem, site, site.stub);
                sync.patched.push(site.field & !(PAGE_SIZE - 1));
                self.waiting.entry(guest).or_default().push(site);
            }
        }
        sync.patched.sort_unstable();
        sync.patched.dedup();
        sync
    }

    /// Takes block `start` off guest `page`; a page left with no blocks is no longer watched.
    fn forget_page_block(&mut self, page: u64, start: u64, sync: &mut CacheSync) {
        let Some(blocks) = self.pages.get_mut(&page) else {
            return;
        };
        blocks.retain(|&b| b != start);
        if !blocks.is_empty() {
            return;
        }
        self.pages.remove(&page);
        if let Some(frame) = self.page_frames.remove(&page) {
            if let Some(pages) = self.frame_pages.get_mut(&frame) {
                pages.remove(&page);
                if pages.is_empty() {
                    self.frame_pages.remove(&frame);
                }
            }
            sync.frames.push(frame);
        }
    }

    /// Removes a dropped block's branch `site` (to guest `target`) from the link tables, so
    /// that no later translation patches it.
    fn unlink(&mut self, site: Site, target: u64) {
        if let Some(sites) = self.waiting.get_mut(&target) {
            sites.retain(|s| *s != site);
            if sites.is_empty() {
                self.waiting.remove(&target);
            }
        }
        let chained = self.by_guest.get(&target).copied();
        if let Some(sites) = chained.and_then(|block| self.incoming.get_mut(&block)) {
            sites.retain(|s| *s != site);
        }
    }

    /// Forgets the dropped blocks but the one the CPU is in at `rip` (a block dropped by a
    /// store of its own runs on to its end): called at a dispatch or lookup, where no other
    /// can be running.
    pub fn retire_dead_blocks(&mut self, rip: u64) {
        if self.dead.is_empty() {
            return;
        }
        let running = self.block_at(rip).map(|block| block.cache_address);
        for start in std::mem::take(&mut self.dead) {
            if Some(start) == running {
                self.dead.insert(start);
                continue;
            }
            if let (Some(block), Some(retired)) = (self.blocks.remove(&start), &mut self.retired) {
                retired.push(block);
            }
        }
    }

    /// The start of the next guest instruction's translation after the one holding
    /// `cache_address`, in the same block, with that guest instruction's address.
    pub fn next_boundary(&self, cache_address: u64) -> Option<(u64, u64)> {
        let block = self.block_at(cache_address)?;
        let offset = cache_address - block.cache_address;
        block
            .guest_boundaries
            .iter()
            .find(|(o, _)| *o as u64 > offset)
            .map(|&(o, guest)| (block.cache_address + o as u64, guest))
    }

    /// Where the translation of the `n`-th guest instruction (from 0) that starts in the
    /// translated code `start..end` begins: running up to it completes `n` guest
    /// instructions there.
    pub fn guest_boundary(&self, start: u64, end: u64, n: u32) -> Option<u64> {
        let block = self.block_at(start)?;
        let offset = |address: u64| address.saturating_sub(block.cache_address);
        block
            .guest_boundaries
            .iter()
            .map(|&(o, _)| o as u64)
            .filter(|&o| o >= offset(start) && o < offset(end))
            .nth(n as usize)
            .map(|o| block.cache_address + o)
    }

    /// Whether the block holding `cache_address` was dropped (and not yet retired).
    pub fn is_dropped(&self, cache_address: u64) -> bool {
        self.block_at(cache_address)
            .is_some_and(|block| self.dead.contains(&block.cache_address))
    }

    /// Whether the frame at physical address `frame` holds guest pages with live blocks.
    pub fn watches(&self, frame: u64) -> bool {
        self.frame_pages.contains_key(&frame)
    }

    /// The writable guest pages with live blocks.
    pub fn watched_pages(&self) -> impl Iterator<Item = u64> + '_ {
        self.page_frames.keys().copied()
    }

    /// The guest pages with live blocks on the frame at physical address `frame`.
    pub fn pages_on_frame(&self, frame: u64) -> Vec<u64> {
        self.frame_pages
            .get(&frame)
            .map(|pages| pages.iter().copied().collect())
            .unwrap_or_default()
    }

    /// The guest pages that live translations come from.
    pub fn guest_pages(&self) -> Vec<u64> {
        let mut pages: Vec<u64> = self.pages.keys().copied().collect();
        pages.sort_unstable();
        pages
    }

    fn block_at(&self, cache_address: u64) -> Option<&TranslatedBlock> {
        let (_, block) = self.blocks.range(..=cache_address).next_back()?;
        (cache_address < block.cache_address + block.code.len() as u64).then_some(block)
    }

    /// Where the translation of the guest instruction containing `cache_address` begins.
    pub fn boundary_containing(&self, cache_address: u64) -> Option<u64> {
        let block = self.block_at(cache_address)?;
        let offset = cache_address - block.cache_address;
        block
            .guest_boundaries
            .iter()
            .rev()
            .find(|(o, _)| *o as u64 <= offset)
            .map(|&(o, _)| block.cache_address + o as u64)
    }

    /// The translated instruction at `cache_address`.
    pub fn instruction_at(&self, cache_address: u64) -> Option<iced_x86::Instruction> {
        let block = self.block_at(cache_address)?;
        let offset = (cache_address - block.cache_address) as usize;
        let mut decoder = iced_x86::Decoder::with_ip(
            64,
            &block.code[offset..],
            cache_address,
            iced_x86::DecoderOptions::NONE,
        );
        Some(decoder.decode())
    }

    /// The guest register whose value is in the runtime's spill slot while the translated
    /// instruction at `cache_address` runs.
    pub fn spilled_at(&self, cache_address: u64) -> Option<iced_x86::Register> {
        self.block_at(cache_address)?.spilled_at(cache_address)
    }

    /// The guest instruction whose translation contains `cache_address`.
    pub fn guest_address_of(&self, cache_address: u64) -> Option<u64> {
        self.block_at(cache_address)?
            .guest_address_of(cache_address)
    }

    /// The source of the rule that translated the guest instruction whose translation
    /// contains `cache_address`.
    pub fn source_of(&self, cache_address: u64) -> Option<Source> {
        let block = self.block_at(cache_address)?;
        let offset = cache_address - block.cache_address;
        let i = block
            .guest_boundaries
            .iter()
            .rposition(|(o, _)| *o as u64 <= offset)?;
        Some(rules::rule_for(block.classes[i].1).source)
    }

    /// The source of the rule that translated the guest instruction at `guest`. (A scan of
    /// every block: it serves the one fault that ends a run.)
    pub fn source_of_guest(&self, guest: u64) -> Option<Source> {
        self.blocks
            .values()
            .flat_map(|block| &block.classes)
            .find(|(address, _)| *address == guest)
            .map(|&(_, class)| rules::rule_for(class).source)
    }

    /// What running translated code from `start` executes: the guest instructions whose
    /// translations start before `guest_end`, and, by source, how many more than those the
    /// `instructions` before `translated_end` are. Stub code counts whole for its stub.
    pub fn account(
        &self,
        start: u64,
        translated_end: u64,
        guest_end: u64,
        instructions: u32,
    ) -> (u32, Extra) {
        let mut extra = Extra::default();
        if let Some(source) = layout::stub_source(start) {
            extra[source as usize] = instructions as i16;
            return (0, extra);
        }
        let Some(block) = self.block_at(start) else {
            return (0, extra);
        };
        let offset = |address: u64| address.saturating_sub(block.cache_address) as u32;
        let translated = block.translated_by_source(offset(start)..offset(translated_end));
        let guest = block.guest_by_source(offset(start)..offset(guest_end.max(start)));
        for (i, extra) in extra.iter_mut().enumerate() {
            *extra = translated[i] as i16 - guest[i] as i16;
        }
        (guest.iter().sum(), extra)
    }

    /// What the translated instructions `translated` (a block from `start` to `end` in the
    /// cache) cost on `core`, the syscalls' own left out (the ring-0 call is their price) and
    /// every `syscall` left out (the runtime's hypercalls: an indirect-branch lookup's is
    /// priced as `translation.indirect_lookup`), and what the guest instructions whose
    /// translations start there cost, in `costs::CYCLE_UNITS`.
    pub fn price(
        &self,
        start: u64,
        end: u64,
        translated: &[Instruction],
        core: &uarch::Microarchitecture,
    ) -> (u32, u32) {
        let price = |instructions: &[Instruction]| price_without_syscalls(instructions, core);
        if let Some(source) = layout::stub_source(start) {
            let own = if source == Source::Syscall {
                0
            } else {
                price(translated)
            };
            return (own, 0);
        }
        let Some(block) = self.block_at(start) else {
            return (0, 0);
        };
        let source_at = |address: u64| {
            let offset = (address - block.cache_address) as u32;
            let at = block.sources.partition_point(|(o, _)| *o <= offset);
            at.checked_sub(1).map(|i| block.sources[i].1)
        };
        let own: Vec<Instruction> = translated
            .iter()
            .filter(|i| source_at(i.ip()) != Some(Source::Syscall))
            .copied()
            .collect();
        let range = (start - block.cache_address) as u32..(end - block.cache_address) as u32;
        let guest: Vec<Instruction> = block
            .guest_boundaries
            .iter()
            .filter(|(offset, _)| range.contains(offset))
            .filter_map(|&(_, address)| {
                let from = (address - block.guest_start) as usize;
                let bytes = block.guest_code.get(from..)?;
                let instruction =
                    iced_x86::Decoder::with_ip(64, bytes, address, DecoderOptions::NONE).decode();
                (!instruction.is_invalid()).then_some(instruction)
            })
            .collect();
        (price(&own), price_without_syscalls(&guest, core))
    }

    /// Every block translated, in order: guest code beside its translation, disassembled.
    pub fn dump(&self) -> String {
        let retired = self.retired.as_deref().unwrap_or_default();
        let mut all: Vec<&TranslatedBlock> = self.blocks.values().chain(retired).collect();
        all.sort_by_key(|block| block.cache_address);
        let mut out = format!("# ringsim translation dump: {} blocks\n", all.len());
        for (n, block) in all.into_iter().enumerate() {
            let live = self.by_guest.get(&block.guest_start) == Some(&block.cache_address);
            out.push_str(&format!(
                "\nblock {}: guest {:#x}..{:#x}, {} instructions -> {:#x}, {} instructions{}\n",
                n + 1,
                block.guest_start,
                block.guest_end,
                block.guest_instructions,
                block.cache_address,
                block.translated_instructions,
                if live { "" } else { " (invalidated)" },
            ));
            let classes: Vec<String> = block
                .classes
                .iter()
                .map(|(_, class)| format!("{class:?}"))
                .collect();
            out.push_str(&format!(
                "classes: {}\nguest:\n{}translated:\n{}",
                classes.join(" "),
                block.disassemble_guest(),
                block.disassemble()
            ));
        }
        out
    }
}

/// The lookup-table entry of guest `target`.
fn lookup_entry(target: u64) -> u64 {
    LOOKUP_TABLE + (target % LOOKUP_ENTRIES) * 16
}

/// The guest pages a block's code comes from.
fn block_pages(block: &TranslatedBlock) -> impl Iterator<Item = u64> {
    let last_byte = block.guest_end.max(block.guest_start + 1) - 1;
    (block.guest_start & !(PAGE_SIZE - 1)..=last_byte).step_by(PAGE_SIZE as usize)
}

/// A block's direct branch sites, each with its guest target.
fn sites(block: &TranslatedBlock) -> Vec<(Site, u64)> {
    let start = block.cache_address;
    block
        .exits
        .iter()
        .map(|exit| {
            let next = start + exit.next_offset as u64;
            let original = i32::from_le_bytes(
                block.code[exit.rel32_offset as usize..][..4]
                    .try_into()
                    .expect("a rel32 field is 4 bytes"),
            );
            let site = Site {
                block: start,
                field: start + exit.rel32_offset as u64,
                next,
                stub: next.wrapping_add(original as i64 as u64),
            };
            (site, exit.guest_target)
        })
        .collect()
}

fn write_rel32(mem: &mut AddressSpace, site: Site, target: u64) {
    let displacement = target.wrapping_sub(site.next) as i64 as i32;
    mem.fill(site.field, &displacement.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::Prot;

    const RWX: Prot = Prot(Prot::READ | Prot::WRITE | Prot::EXEC);
    /// `mov eax, 1; ret`.
    const RETURN_ONE: [u8; 6] = [0xb8, 1, 0, 0, 0, 0xc3];

    fn space_with(code: &[(u64, &[u8])]) -> AddressSpace {
        let mut mem = AddressSpace::new().unwrap();
        for &(at, bytes) in code {
            mem.map_fixed(at, PAGE_SIZE, RWX).unwrap();
            mem.fill(at, bytes);
        }
        mem
    }

    /// Two blocks translated, from guest 0x10000 and 0x20000, with their translations.
    fn two_blocks() -> (AddressSpace, CodeCache, u64, u64) {
        let mut mem = space_with(&[(0x10000, &RETURN_ONE), (0x20000, &RETURN_ONE)]);
        let mut cache = CodeCache::new();
        let (first, _) = cache.find_or_translate(&mut mem, 0x10000).unwrap();
        let (second, _) = cache.find_or_translate(&mut mem, 0x20000).unwrap();
        (mem, cache, first, second)
    }

    #[test]
    fn a_writable_page_is_watched_by_its_frame_until_its_blocks_go() {
        let mut mem = space_with(&[(0x10000, &RETURN_ONE)]);
        let frame = mem.writable_frame(0x10000).unwrap();
        let mut cache = CodeCache::new();
        let (_, sync) = cache.find_or_translate(&mut mem, 0x10000).unwrap();
        assert_eq!(sync.frames, [frame]);
        assert!(cache.watches(frame));
        assert_eq!(cache.pages_on_frame(frame), [0x10000]);

        let sync = cache.invalidate_page(&mut mem, 0x10000);
        assert_eq!(sync.frames, [frame]);
        assert!(!cache.watches(frame), "no live block is left on the frame");
        assert!(cache.pages_on_frame(frame).is_empty());
        assert!(!cache.knows(0x10000));
    }

    #[test]
    fn a_published_translation_leaves_the_lookup_table_with_its_block() {
        let (mut mem, mut cache, first, second) = two_blocks();
        cache.publish(&mut mem, 0x10000, first);
        cache.publish(&mut mem, 0x20000, second);
        // Both targets share an entry (their low 16 bits): the later one holds it.
        let entry = LOOKUP_TABLE;
        assert_eq!(mem.read_kernel_u64(entry), 0x20000u64.wrapping_neg());
        assert_eq!(mem.read_kernel_u64(entry + 8), second);
        // Dropping the other target's block leaves the entry be; dropping its own empties it.
        cache.invalidate_page(&mut mem, 0x10000);
        assert_eq!(mem.read_kernel_u64(entry + 8), second);
        cache.invalidate_page(&mut mem, 0x20000);
        assert_eq!(
            (mem.read_kernel_u64(entry), mem.read_kernel_u64(entry + 8)),
            (0, 0)
        );
        // The table lies before the code, whose first block starts past it.
        assert!(first >= CODE);
    }

    #[test]
    fn a_store_beside_the_code_leaves_it_be() {
        let mut mem = space_with(&[(0x10000, &RETURN_ONE)]);
        let mut cache = CodeCache::new();
        cache.find_or_translate(&mut mem, 0x10000).unwrap();
        cache.invalidate(&mut mem, 0x10000, 0x10800..0x10808);
        assert!(cache.knows(0x10000), "data on the code's page");
        cache.invalidate(&mut mem, 0x10000, 0x10005..0x10006);
        assert!(!cache.knows(0x10000), "the ret");
    }

    #[test]
    fn dropped_blocks_retire_at_the_next_dispatch_but_the_running_one() {
        let (mut mem, mut cache, first, second) = two_blocks();
        cache.invalidate_page(&mut mem, 0x10000);
        cache.invalidate_page(&mut mem, 0x20000);
        cache.retire_dead_blocks(second);
        assert_eq!(cache.guest_address_of(first), None, "retired");
        assert_eq!(
            cache.guest_address_of(second),
            Some(0x20000),
            "still running"
        );
        cache.retire_dead_blocks(layout::DISPATCH);
        assert_eq!(cache.guest_address_of(second), None);
    }

    #[test]
    fn a_dropped_block_is_never_chained() {
        // jmp 0x20000, from 0x10000: the site waits for its target's translation.
        let jump: [u8; 5] = [0xe9, 0xfb, 0xff, 0x00, 0x00];
        let mut mem = space_with(&[(0x10000, &jump), (0x20000, &RETURN_ONE)]);
        let mut cache = CodeCache::new();
        cache.find_or_translate(&mut mem, 0x10000).unwrap();
        cache.invalidate_page(&mut mem, 0x10000);
        let (_, sync) = cache.find_or_translate(&mut mem, 0x20000).unwrap();
        assert_eq!(cache.stats.chained_links, 0);
        assert!(sync.patched.is_empty());
    }
}
