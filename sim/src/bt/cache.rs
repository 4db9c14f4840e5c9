//! The code cache: translated blocks in the kernel half, found by guest address, chained
//! to one another, and mapped back to guest addresses for faults and counting.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use translator::{CodeSource, TranslateError, TranslatedBlock, Translator};

use super::layout::{CACHE, CACHE_END, RUNTIME};
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
}

/// Guest code as ring 3 would fetch it.
struct GuestCode<'a>(&'a AddressSpace);

impl CodeSource for GuestCode<'_> {
    fn read_code(&self, addr: u64, buf: &mut [u8]) -> usize {
        self.0.fetch(addr, buf)
    }
}

/// A branch site waiting for its target to be translated: its rel32 field and the address
/// the displacement is relative to.
#[derive(Clone, Copy)]
struct Site {
    field: u64,
    next: u64,
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

pub struct CodeCache {
    translator: Translator,
    next: u64,
    mapped_end: u64,
    blocks: BTreeMap<u64, TranslatedBlock>,
    by_guest: HashMap<u64, u64>,
    waiting: HashMap<u64, Vec<Site>>,
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
            stats: TranslationStats::default(),
        }
    }

    /// Whether the block at `guest` is translated already.
    pub fn knows(&self, guest: u64) -> bool {
        self.by_guest.contains_key(&guest)
    }

    /// The translation of the block at `guest`, translating it if needed. Also returns the
    /// pages of code changed in place (chained sites), whose stale emulator translations the
    /// caller must drop.
    pub fn find_or_translate(
        &mut self,
        mem: &mut AddressSpace,
        guest: u64,
    ) -> Result<(u64, Vec<u64>), CacheError> {
        if let Some(&cache) = self.by_guest.get(&guest) {
            return Ok((cache, Vec::new()));
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
        mem.write_kernel(start, &block.code);
        self.next = (end + 15) & !15;
        self.stats.blocks += 1;
        self.stats.guest_instructions_translated += block.guest_instructions as u64;

        let mut patched = Vec::new();
        for exit in &block.exits {
            let site = Site {
                field: start + exit.rel32_offset as u64,
                next: start + exit.next_offset as u64,
            };
            match self.by_guest.get(&exit.guest_target) {
                Some(&target) => patched.push(self.chain(mem, site, target)),
                None => self
                    .waiting
                    .entry(exit.guest_target)
                    .or_default()
                    .push(site),
            }
        }
        for site in self.waiting.remove(&guest).unwrap_or_default() {
            patched.push(self.chain(mem, site, start));
        }
        self.by_guest.insert(guest, start);
        self.blocks.insert(start, block);
        patched.sort_unstable();
        patched.dedup();
        Ok((start, patched))
    }

    /// Points the branch at `site` straight at `target`; returns the page it changed.
    fn chain(&mut self, mem: &mut AddressSpace, site: Site, target: u64) -> u64 {
        let displacement = target.wrapping_sub(site.next) as i64 as i32;
        mem.write_kernel(site.field, &displacement.to_le_bytes());
        self.stats.chained_links += 1;
        site.field & !(PAGE_SIZE - 1)
    }

    fn block_at(&self, cache_address: u64) -> Option<&TranslatedBlock> {
        let (_, block) = self.blocks.range(..=cache_address).next_back()?;
        (cache_address < block.cache_address + block.code.len() as u64).then_some(block)
    }

    /// The guest instruction whose translation contains `cache_address`.
    pub fn guest_address_of(&self, cache_address: u64) -> Option<u64> {
        self.block_at(cache_address)?
            .guest_address_of(cache_address)
    }

    /// Guest instructions whose translations start in `[start, start + size)`: what running
    /// that piece of the code cache executes of the guest.
    pub fn guest_instructions_in(&self, start: u64, size: u32) -> u32 {
        let Some(block) = self.block_at(start) else {
            return 0;
        };
        let end = start + size as u64;
        block
            .guest_boundaries
            .iter()
            .filter(|(offset, _)| (start..end).contains(&(block.cache_address + *offset as u64)))
            .count() as u32
    }
}
