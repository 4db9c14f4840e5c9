//! x86-64 4-level page tables, written into guest physical memory.
//!
//! A leaf entry is in one of three states: empty (no frame), a frame kept but not present
//! (`PROT_NONE` after the page held data), or a present mapping.

use super::physmem::{Frame, PhysMem, PAGE_SIZE};

const PRESENT: u64 = 1 << 0;
const WRITABLE: u64 = 1 << 1;
const USER: u64 = 1 << 2;
const NO_EXECUTE: u64 = 1 << 63;
const ADDRESS_MASK: u64 = 0x000f_ffff_ffff_f000;

/// What a leaf mapping allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageFlags {
    /// Accessible at all; x86 has no write-only or execute-only pages, so this means readable.
    pub present: bool,
    pub write: bool,
    pub execute: bool,
    /// Reachable from ring 3 (the U/S bit).
    pub user: bool,
}

impl PageFlags {
    fn bits(self) -> u64 {
        let mut bits = 0;
        if self.present {
            bits |= PRESENT;
        }
        if self.write {
            bits |= WRITABLE;
        }
        if self.user {
            bits |= USER;
        }
        if !self.execute {
            bits |= NO_EXECUTE;
        }
        bits
    }

    fn from_bits(bits: u64) -> Self {
        Self {
            present: bits & PRESENT != 0,
            write: bits & WRITABLE != 0,
            execute: bits & NO_EXECUTE == 0,
            user: bits & USER != 0,
        }
    }
}

/// A leaf entry that holds a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leaf {
    pub frame: Frame,
    pub flags: PageFlags,
}

impl Leaf {
    /// The same frame, left out of the page tables until a fault maps it again.
    pub fn not_present(self) -> Self {
        let flags = PageFlags {
            present: false,
            ..self.flags
        };
        Self { flags, ..self }
    }
}

pub struct PageTables {
    root: Frame,
}

impl PageTables {
    pub fn new(phys: &mut PhysMem) -> Option<Self> {
        Some(Self {
            root: phys.alloc()?,
        })
    }

    /// The value for CR3.
    pub fn cr3(&self) -> u64 {
        self.root * PAGE_SIZE
    }

    fn index(vaddr: u64, level: u32) -> u64 {
        (vaddr >> (12 + 9 * level)) & 0x1ff
    }

    /// The physical address of the leaf entry for `vaddr`, if its tables exist.
    fn leaf_entry(&self, phys: &PhysMem, vaddr: u64) -> Option<u64> {
        let mut table = self.root;
        for level in (1..4).rev() {
            let entry = phys.read_u64(table * PAGE_SIZE + Self::index(vaddr, level) * 8);
            if entry & PRESENT == 0 {
                return None;
            }
            table = (entry & ADDRESS_MASK) / PAGE_SIZE;
        }
        Some(table * PAGE_SIZE + Self::index(vaddr, 0) * 8)
    }

    /// Like `leaf_entry`, creating missing tables; `None` when no frame is left for one.
    fn leaf_entry_or_create(&self, phys: &mut PhysMem, vaddr: u64) -> Option<u64> {
        let mut table = self.root;
        for level in (1..4).rev() {
            let entry_addr = table * PAGE_SIZE + Self::index(vaddr, level) * 8;
            let entry = phys.read_u64(entry_addr);
            table = if entry & PRESENT != 0 {
                (entry & ADDRESS_MASK) / PAGE_SIZE
            } else {
                let next = phys.alloc()?;
                // Intermediate levels allow everything; the leaf decides.
                phys.write_u64(entry_addr, (next * PAGE_SIZE) | PRESENT | WRITABLE | USER);
                next
            };
        }
        Some(table * PAGE_SIZE + Self::index(vaddr, 0) * 8)
    }

    /// Maps the page at `vaddr` to `frame`. `None` when no frame is left for a table.
    pub fn map(&self, phys: &mut PhysMem, vaddr: u64, leaf: Leaf) -> Option<()> {
        let entry = self.leaf_entry_or_create(phys, vaddr)?;
        phys.write_u64(entry, (leaf.frame * PAGE_SIZE) | leaf.flags.bits());
        Some(())
    }

    /// The frame held at `vaddr` and its flags, present or not.
    pub fn leaf(&self, phys: &PhysMem, vaddr: u64) -> Option<Leaf> {
        let entry = phys.read_u64(self.leaf_entry(phys, vaddr)?);
        let frame = (entry & ADDRESS_MASK) / PAGE_SIZE;
        (frame != 0).then(|| Leaf {
            frame,
            flags: PageFlags::from_bits(entry),
        })
    }

    /// Calls `each` with every leaf that holds a frame in `[start, end)` (page-aligned),
    /// skipping absent tables whole, so a vast sparse range costs little.
    pub fn for_each_leaf(
        &self,
        phys: &PhysMem,
        start: u64,
        end: u64,
        mut each: impl FnMut(u64, Leaf),
    ) {
        self.walk(phys, self.root, 3, 0, start, end, &mut each);
    }

    #[allow(clippy::too_many_arguments)]
    fn walk(
        &self,
        phys: &PhysMem,
        table: Frame,
        level: u32,
        base: u64,
        start: u64,
        end: u64,
        each: &mut impl FnMut(u64, Leaf),
    ) {
        let span = 1u64 << (12 + 9 * level);
        for index in 0..512u64 {
            // Canonical addresses: the upper half sign-extends bit 47.
            let mut vaddr = base + index * span;
            if level == 3 && index >= 256 {
                vaddr |= 0xffff_0000_0000_0000;
            }
            // The last byte, not the end: the top entry's end wraps to 0.
            if vaddr + (span - 1) < start || vaddr >= end {
                continue;
            }
            let entry = phys.read_u64(table * PAGE_SIZE + index * 8);
            let frame = (entry & ADDRESS_MASK) / PAGE_SIZE;
            if level == 0 {
                if frame != 0 {
                    each(
                        vaddr,
                        Leaf {
                            frame,
                            flags: PageFlags::from_bits(entry),
                        },
                    );
                }
            } else if entry & PRESENT != 0 {
                self.walk(phys, frame, level - 1, vaddr, start, end, each);
            }
        }
    }

    /// Frees every frame the tables hold, leaves and tables alike.
    pub fn release(&self, phys: &mut PhysMem) {
        Self::release_table(phys, self.root, 3);
    }

    fn release_table(phys: &mut PhysMem, table: Frame, level: u32) {
        for index in 0..512u64 {
            let entry = phys.read_u64(table * PAGE_SIZE + index * 8);
            let frame = (entry & ADDRESS_MASK) / PAGE_SIZE;
            if level == 0 {
                if frame != 0 {
                    phys.free(frame, entry & NO_EXECUTE == 0);
                }
            } else if entry & PRESENT != 0 {
                Self::release_table(phys, frame, level - 1);
            }
        }
        phys.free(table, false);
    }

    /// Empties the entry at `vaddr` and returns the frame it held.
    pub fn clear(&self, phys: &mut PhysMem, vaddr: u64) -> Option<Frame> {
        let leaf = self.leaf(phys, vaddr)?;
        phys.write_u64(self.leaf_entry(phys, vaddr)?, 0);
        Some(leaf.frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER_RW: PageFlags = PageFlags {
        present: true,
        write: true,
        execute: false,
        user: true,
    };

    #[test]
    fn map_lookup_clear() {
        let mut phys = PhysMem::new().unwrap();
        let tables = PageTables::new(&mut phys).unwrap();
        let frame = phys.alloc().unwrap();
        let leaf = Leaf {
            frame,
            flags: USER_RW,
        };
        tables.map(&mut phys, 0x7fff_ffff_e000, leaf).unwrap();
        assert_eq!(tables.leaf(&phys, 0x7fff_ffff_e000), Some(leaf));
        assert_eq!(tables.leaf(&phys, 0x7fff_ffff_d000), None);
        assert_eq!(tables.clear(&mut phys, 0x7fff_ffff_e000), Some(frame));
        assert_eq!(tables.leaf(&phys, 0x7fff_ffff_e000), None);
    }

    #[test]
    fn leaves_are_visited_in_order_and_absent_tables_skipped() {
        let mut phys = PhysMem::new().unwrap();
        let tables = PageTables::new(&mut phys).unwrap();
        for vaddr in [0x1000, 0x7fff_ffff_e000, 0x40_0000_0000] {
            let frame = phys.alloc().unwrap();
            tables
                .map(
                    &mut phys,
                    vaddr,
                    Leaf {
                        frame,
                        flags: USER_RW,
                    },
                )
                .unwrap();
        }
        let mut seen = Vec::new();
        tables.for_each_leaf(&phys, 0x1000, 0x8000_0000_0000, |vaddr, _| seen.push(vaddr));
        assert_eq!(seen, [0x1000, 0x40_0000_0000, 0x7fff_ffff_e000]);
        seen.clear();
        tables.for_each_leaf(&phys, 0x2000, 0x40_0000_0000, |vaddr, _| seen.push(vaddr));
        assert!(seen.is_empty());
    }

    #[test]
    fn a_kept_frame_survives_losing_presence() {
        let mut phys = PhysMem::new().unwrap();
        let tables = PageTables::new(&mut phys).unwrap();
        let frame = phys.alloc().unwrap();
        let hidden = PageFlags {
            present: false,
            ..USER_RW
        };
        tables
            .map(
                &mut phys,
                0x1000,
                Leaf {
                    frame,
                    flags: hidden,
                },
            )
            .unwrap();
        assert_eq!(
            tables.leaf(&phys, 0x1000),
            Some(Leaf {
                frame,
                flags: hidden
            })
        );
    }
}
