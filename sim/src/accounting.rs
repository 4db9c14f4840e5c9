//! Counting what the guest does: instructions per block (never per instruction), syscalls
//! by number and kind, and bytes copied. The cost model turns the counts into cycles.

use std::cell::Cell;
use std::collections::BTreeMap;

use iced_x86::{Decoder, DecoderOptions};
use rustc_hash::FxHashMap;

use crate::kernel::table::{Event, Row, Work};
use crate::memory::AddressSpace;

/// Event counts of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub guest_instructions: u64,
    /// Syscalls charged the ABI-call column.
    pub abi_calls: u64,
    /// Syscalls charged the yield column.
    pub yields: u64,
    /// Syscalls charged the per-syscall kernel-work base.
    pub working_syscalls: u64,
    pub bytes_copied: u64,
    /// Syscalls by number.
    pub by_number: BTreeMap<u64, u64>,
    /// Unsupported syscalls answered with ENOSYS (`--on-unsupported-syscall enosys`), by number.
    pub enosys: BTreeMap<u64, u64>,
}

impl Counts {
    pub fn syscalls(&self) -> u64 {
        self.abi_calls + self.yields
    }

    /// Records syscall `nr`; `row` is `None` for a number the table lacks, and `enosys`
    /// says it was unsupported and answered with ENOSYS.
    pub fn record_syscall(&mut self, nr: u64, row: Option<&Row>, enosys: bool) {
        let event = row.map_or(Event::AbiCall, |r| r.event);
        match event {
            Event::AbiCall => self.abi_calls += 1,
            Event::Yield => self.yields += 1,
        }
        if row.is_some_and(|r| r.work == Work::Base) {
            self.working_syscalls += 1;
        }
        *self.by_number.entry(nr).or_default() += 1;
        if enosys {
            *self.enosys.entry(nr).or_default() += 1;
        }
    }
}

/// The running cycle count, shared with the RDTSC hook so the guest's TSC is virtual.
#[derive(Debug)]
pub struct Clock {
    instructions: Cell<u64>,
    /// Cycles of everything but user instructions (crossings, kernel work), so far.
    event_cycles: Cell<u64>,
    cpi: f64,
}

impl Clock {
    pub fn new(cpi: f64) -> Self {
        Self {
            instructions: Cell::new(0),
            event_cycles: Cell::new(0),
            cpi,
        }
    }

    pub fn add_instructions(&self, n: u64) {
        self.instructions.set(self.instructions.get() + n);
    }

    /// Takes back instructions counted for a block that did not run to its end.
    pub fn remove_instructions(&self, n: u64) {
        self.instructions.set(self.instructions.get() - n);
    }

    pub fn instructions(&self) -> u64 {
        self.instructions.get()
    }

    pub fn set_event_cycles(&self, cycles: u64) {
        self.event_cycles.set(cycles);
    }

    /// Cycles so far: the value the guest's RDTSC reads.
    pub fn cycles(&self) -> u64 {
        (self.instructions.get() as f64 * self.cpi).round() as u64 + self.event_cycles.get()
    }
}

/// A block's cached facts.
#[derive(Clone, Copy)]
struct BlockFacts {
    size: u32,
    instructions: u32,
    /// In a writable and executable page: the code may change with no syscall to say so,
    /// so it is decoded afresh each time.
    volatile: bool,
}

/// Instruction counts of Unicorn's blocks, decoded once with iced-x86 and cached.
#[derive(Default)]
pub struct BlockCounter {
    cache: FxHashMap<u64, BlockFacts>,
}

impl BlockCounter {
    /// The number of instructions in the `size`-byte block at `addr`.
    pub fn count(&mut self, addr: u64, size: u32, mem: &AddressSpace) -> u32 {
        if let Some(facts) = self.cache.get(&addr) {
            if facts.size == size && !facts.volatile {
                return facts.instructions;
            }
        }
        let instructions = Self::decode(addr, size, mem);
        let volatile = mem.is_writable_code(addr) || mem.is_writable_code(addr + size as u64 - 1);
        self.cache.insert(
            addr,
            BlockFacts {
                size,
                instructions,
                volatile,
            },
        );
        instructions
    }

    fn decode(addr: u64, size: u32, mem: &AddressSpace) -> u32 {
        let mut bytes = vec![0u8; size as usize];
        if mem.peek(addr, &mut bytes).is_err() {
            return 0;
        }
        let mut decoder = Decoder::with_ip(64, &bytes, addr, DecoderOptions::NONE);
        let mut count = 0;
        while decoder.can_decode() {
            let _ = decoder.decode();
            count += 1;
        }
        count
    }

    /// Instructions of the block at `block` that lie before `rip` (for a fault mid-block).
    pub fn executed_before(&self, block: u64, rip: u64, mem: &AddressSpace) -> Option<u32> {
        let size = self.cache.get(&block)?.size;
        if rip < block || rip >= block + size as u64 {
            return None;
        }
        Some(Self::decode(block, (rip - block) as u32, mem))
    }

    /// Forgets blocks that start in `page`: its code changed.
    pub fn forget_page(&mut self, page: u64) {
        self.cache.retain(|&addr, _| addr & !0xfff != page);
    }

    /// Forgets every block.
    pub fn forget_all(&mut self) {
        self.cache.clear();
    }
}
