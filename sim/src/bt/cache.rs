//! The code cache: translated blocks in the kernel half, found by guest address, chained
//! to one another, mapped back to guest addresses for faults and counting, and dropped when
//! the guest code they came from changes.
//!
//! Self-modifying code: the machine watches every writable guest page a block comes from
//! with an emulator write hook. A guest write there drops the blocks from that page and
//! undoes the links into them; the next jump there translates the new code. (Faulting on
//! write-protected pages would be the hardware way, but Unicorn never delivers exceptions,
//! so it escalates the next page fault into a double fault.)

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use translator::{
    rules, CodeSource, PlantedBug, Source, TranslateError, TranslatedBlock, Translator,
};

use super::layout::{self, CACHE, CACHE_END, RUNTIME};
use crate::accounting::Extra;
use crate::machine::physmem::PAGE_SIZE;
use crate::memory::AddressSpace;

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

/// Guest code as ring 3 would fetch it.
struct GuestCode<'a>(&'a AddressSpace);

impl CodeSource for GuestCode<'_> {
    fn read_code(&self, addr: u64, buf: &mut [u8]) -> usize {
        self.0.fetch(addr, buf)
    }
}

/// A direct branch site: its rel32 field, the address the displacement is relative to, and
/// the block's own exit stub, where it points while unchained.
#[derive(Clone, Copy, Debug)]
struct Site {
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
    /// Writable guest pages that now have translations: (page, physical address) to watch.
    pub watch: Vec<(u64, u64)>,
}

impl CacheSync {
    pub fn merge(&mut self, other: CacheSync) {
        self.patched.extend(other.patched);
        self.watch.extend(other.watch);
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
            next: CACHE,
            mapped_end: CACHE,
            blocks: BTreeMap::new(),
            by_guest: HashMap::new(),
            waiting: HashMap::new(),
            incoming: HashMap::new(),
            pages: HashMap::new(),
            stats: TranslationStats::default(),
        }
    }

    /// Makes the translator plant `bug` from now on (tests of the oracle only).
    pub fn plant(&mut self, bug: PlantedBug) {
        self.translator = self.translator.clone().with_planted_bug(bug);
    }

    /// Whether the block at `guest` is translated already.
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
        let last_byte = block.guest_end.max(block.guest_start + 1) - 1;
        for page in (block.guest_start & !(PAGE_SIZE - 1)..=last_byte).step_by(PAGE_SIZE as usize) {
            self.pages.entry(page).or_default().push(start);
            if let Some(physical) = mem.writable_frame(page) {
                sync.watch.push((page, physical));
            }
        }
        for exit in &block.exits {
            let field = start + exit.rel32_offset as u64;
            let next = start + exit.next_offset as u64;
            let original = i32::from_le_bytes(
                block.code[exit.rel32_offset as usize..][..4]
                    .try_into()
                    .unwrap(),
            );
            let site = Site {
                field,
                next,
                stub: next.wrapping_add(original as i64 as u64),
            };
            match self.by_guest.get(&exit.guest_target) {
                Some(&target) => sync.patched.push(self.chain(mem, site, target)),
                None => self
                    .waiting
                    .entry(exit.guest_target)
                    .or_default()
                    .push(site),
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

    /// Drops the blocks made from guest `page`: they can no longer be found, and every
    /// branch chained to them goes back to its exit stub. Returns the code-cache pages
    /// changed. The blocks' bytes stay (a block may be running), but nothing reaches them.
    pub fn invalidate_page(&mut self, mem: &mut AddressSpace, page: u64) -> Vec<u64> {
        let mut patched = Vec::new();
        for start in self.pages.remove(&page).unwrap_or_default() {
            let Some(block) = self.blocks.get(&start) else {
                continue;
            };
            if self.by_guest.get(&block.guest_start) == Some(&start) {
                self.by_guest.remove(&block.guest_start);
                self.stats.invalidations += 1;
            }
            for site in self.incoming.remove(&start).unwrap_or_default() {
                write_rel32(mem, site, site.stub);
                patched.push(site.field & !(PAGE_SIZE - 1));
                self.waiting
                    .entry(block.guest_start)
                    .or_default()
                    .push(site);
            }
        }
        patched.sort_unstable();
        patched.dedup();
        patched
    }

    /// Whether live translations come from guest `page`.
    pub fn has_page(&self, page: u64) -> bool {
        self.pages.contains_key(&page)
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

    /// Every block translated, in order: guest code beside its translation, disassembled.
    pub fn dump(&self) -> String {
        let mut out = format!("# ringsim translation dump: {} blocks\n", self.blocks.len());
        for (n, block) in self.blocks.values().enumerate() {
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

fn write_rel32(mem: &mut AddressSpace, site: Site, target: u64) {
    let displacement = target.wrapping_sub(site.next) as i64 as i32;
    mem.fill(site.field, &displacement.to_le_bytes());
}
