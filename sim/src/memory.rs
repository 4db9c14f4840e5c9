//! The guest's user address space: Linux-style areas (VMAs) over real page tables, and the
//! kernel's checked access to user memory (copy_from_user / copy_to_user).
//!
//! A page gets a frame at its first access (demand-zero, as Linux's anonymous memory): the
//! CPU's page fault, the kernel's copy to or from it, or a fill by the loader. So an 8 MiB
//! stack or a large reservation costs what is touched, and a page made inaccessible keeps
//! its frame and contents.
//!
//! A file mapping's pages hold the file's bytes from the start (the page cache), but, as on
//! Linux, none is in the page tables until it is touched: the first touch is a page fault,
//! which maps the pages around it too when it reads (fault-around), and a fork child maps
//! none of an area that holds only its file's pages, so it faults them in again.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::ops::Range;
use std::rc::Rc;

use nix::errno::Errno;

pub mod maps;

use crate::machine::paging::{Leaf, PageFlags, PageTables};
use crate::machine::physmem::{PhysMem, PhysMemError, PAGE_SIZE};
pub use maps::{FileArea, MappedFile};

/// End of the user half (47-bit canonical addresses).
pub const USER_END: u64 = 0x0000_8000_0000_0000;
/// Linux's `TASK_SIZE` on x86-64: the top page of the user half is never mapped, so no
/// mapping reaches the non-canonical hole (a `syscall` in that page would return there).
pub const TASK_SIZE: u64 = USER_END - PAGE_SIZE;
/// The most one read, write, send or receive moves (`MAX_RW_COUNT`): a longer one is cut
/// to it.
pub const MAX_RW_COUNT: usize = i32::MAX as usize & !(PAGE_SIZE as usize - 1);
/// Top of the initial stack, as Linux places it with ASLR off.
pub const STACK_TOP: u64 = 0x7fff_ffff_f000;
/// The stack mapping's size: the default `RLIMIT_STACK`.
pub const STACK_SIZE: u64 = 8 << 20;
/// Where top-down `mmap` placement starts: Linux's `mmap_base` with the minimum 128 MiB gap.
pub const MMAP_BASE: u64 = STACK_TOP - (128 << 20);
/// Linux's default `vm.mmap_min_addr`.
pub const MMAP_MIN_ADDR: u64 = 0x10000;

/// Linux's `UIO_MAXIOV`.
pub const IOV_MAX: usize = 1024;
/// Linux's default `fault_around_bytes`: a read fault on a file page maps the file's pages
/// of the aligned window around it that are not mapped yet.
pub const FAULT_AROUND_BYTES: u64 = 64 << 10;
/// What one page table maps: fault-around stops at its end.
const PAGE_TABLE_SPAN: u64 = 2 << 20;

pub fn page_down(addr: u64) -> u64 {
    addr & !(PAGE_SIZE - 1)
}

pub fn page_up(addr: u64) -> Option<u64> {
    Some(addr.checked_add(PAGE_SIZE - 1)? & !(PAGE_SIZE - 1))
}

/// How a page fault ends (`AddressSpace::resolve_fault`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// The kernel made the access possible: it runs again.
    Resolved,
    /// The program's fault: SIGSEGV.
    Program,
    /// A page of a file mapping past the end of the file: SIGBUS.
    PastEndOfFile,
}

/// What a faulting access was, as a page fault's error code says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
    Fetch,
}

/// Access rights of an area, as `PROT_*` bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prot(pub u32);

impl Prot {
    pub const NONE: Prot = Prot(0);
    pub const READ: u32 = libc::PROT_READ as u32;
    pub const WRITE: u32 = libc::PROT_WRITE as u32;
    pub const EXEC: u32 = libc::PROT_EXEC as u32;

    pub fn accessible(self) -> bool {
        self.0 & (Self::READ | Self::WRITE | Self::EXEC) != 0
    }

    fn page_flags(self) -> PageFlags {
        PageFlags {
            present: self.accessible(),
            write: self.0 & Self::WRITE != 0,
            execute: self.0 & Self::EXEC != 0,
            user: true,
        }
    }
}

/// One area of the address space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vma {
    pub end: u64,
    pub prot: Prot,
    /// The file it maps, if any.
    pub file: Option<FileArea>,
    /// It has been writable (Linux's VM_ACCOUNT, which stays through mprotect): it is not
    /// one area with a neighbour that never was.
    pub accounted: bool,
    /// MAP_SHARED | MAP_ANONYMOUS: a fork child maps the same frames, writable on both sides.
    pub shared_anonymous: bool,
    /// Some page holds memory of its own rather than its file's (Linux's `anon_vma`): fork
    /// copies the area's page-table entries. It copies none of an area whose pages it can
    /// fault in again from the file.
    pub anonymous_pages: bool,
}

impl Vma {
    /// Whether a fork child faults the area's pages in again from its file: a file mapping
    /// with no page of its own (Linux's `vma_needs_copy` is false).
    fn refaulted_after_fork(&self) -> bool {
        !self.anonymous_pages && self.file.is_some()
    }

    /// Whether the area allows `access`: on x86 every accessible page can be read (Linux's
    /// `access_error` refuses a read only of PROT_NONE).
    fn allows(&self, access: Access) -> bool {
        match access {
            Access::Read => self.prot.accessible(),
            Access::Write => self.prot.0 & Prot::WRITE != 0,
            Access::Fetch => self.prot.0 & Prot::EXEC != 0,
        }
    }
}

/// Work the CPU must do after the address space changed under it.
#[derive(Debug, Default)]
pub struct CpuSync {
    /// Translations were removed or narrowed: the TLB must be flushed.
    pub flush_tlb: bool,
    /// Executable ranges unmapped, moved or re-protected: code translated from them must
    /// go. (Unicorn can only invalidate code by a virtual address that is still mapped, and
    /// freed frames may come back as code at the same address, so at ring 3 all of it goes.)
    pub changed_code: Vec<Range<u64>>,
    /// Still-mapped executable pages whose contents the kernel changed.
    pub stale_pages: Vec<u64>,
    /// Executable pages that got their first frame. At ring 0, code translated from such
    /// a page while it had none (it read as zeros) watches no frame and must go; the
    /// emulator never ran code from it (a page without a frame faults first).
    pub zero_code_pages: Vec<u64>,
    /// Pages got their first frames: one may be the page before a watched page, whose end
    /// a store can spill from (`machine::watch_page_tails`).
    pub frames_given: bool,
}

pub struct AddressSpace {
    /// The system's one physical memory, which every address space maps frames of.
    phys: Rc<RefCell<PhysMem>>,
    tables: PageTables,
    vmas: BTreeMap<u64, Vma>,
    /// The files areas map, indexed by `FileArea::file`.
    files: Vec<MappedFile>,
    brk_start: u64,
    brk: u64,
    sync: CpuSync,
    /// Bytes moved between user memory and the kernel, for the kernel-work cost: one count
    /// for the system, shared by every address space (a process's copies outlive it).
    copied: Rc<Cell<u64>>,
    /// Pages copied on write since a fork, for the system, shared the same way.
    pages_copied: Rc<Cell<u64>>,
    /// Page faults resolved (a page's first touch, a write to a write-protected page),
    /// the CPU's and the kernel's own copies', for the system, shared the same way.
    faults: Rc<Cell<u64>>,
    /// Pages those faults mapped beside the faulting one (fault-around), shared the same way.
    faulted_around: Rc<Cell<u64>>,
    /// The host transfer `host_iovecs` is preparing.
    transfer: HostTransfer,
}

/// A transfer between a host descriptor and user memory in place: `host_iovecs` gives every
/// page of the buffer its frame beforehand, but Linux faults only the pages it copies, so a
/// fault is counted once the bytes moved are known (`note_transfer`), if they reach it.
#[derive(Debug, Default)]
struct HostTransfer {
    /// The buffer's bytes prepared so far.
    bytes: usize,
    /// Where in them a page fault gave a page its frame, and the pages it mapped around it.
    faults_at: Vec<(usize, u64)>,
    /// The bytes the guest asked to move, which may be more than were prepared.
    wanted: usize,
    /// A page that cannot be mapped ended the preparation short of `wanted`.
    cut: bool,
}

impl Drop for AddressSpace {
    /// Gives back every frame: its own go back to the allocator, shared ones lose a user.
    fn drop(&mut self) {
        self.tables.release(&mut self.phys.borrow_mut());
    }
}

impl AddressSpace {
    /// An empty address space over a physical memory of its own (the first process's).
    pub fn new() -> Result<Self, PhysMemError> {
        let phys = Rc::new(RefCell::new(PhysMem::new()?));
        Ok(Self::over(phys).expect("a fresh physical memory has frames"))
    }

    /// An empty address space over `phys`; `None` when no frame is left for its root.
    pub fn over(phys: Rc<RefCell<PhysMem>>) -> Option<Self> {
        let tables = PageTables::new(&mut phys.borrow_mut())?;
        Some(Self {
            phys,
            tables,
            vmas: BTreeMap::new(),
            files: Vec::new(),
            brk_start: 0,
            brk: 0,
            sync: CpuSync::default(),
            copied: Rc::new(Cell::new(0)),
            pages_copied: Rc::new(Cell::new(0)),
            faults: Rc::new(Cell::new(0)),
            faulted_around: Rc::new(Cell::new(0)),
            transfer: HostTransfer::default(),
        })
    }

    /// The physical memory this address space maps frames of.
    pub fn phys(&self) -> &Rc<RefCell<PhysMem>> {
        &self.phys
    }

    /// A copy for a fork child: the same areas and break, over the same physical memory,
    /// copying no page. Every frame is shared; user pages either side could write become
    /// read-only in both, and the first write to one gives the writer a copy of its own
    /// (copy-on-write, `resolve_fault`). Pages in `skip` (the parent's code cache)
    /// are not carried over. A fork child must fault in again the pages of areas that hold
    /// only their file's, as Linux's does; a vfork child (`shares_memory`), which on Linux
    /// runs in its parent's memory, keeps them mapped.
    pub fn fork(&mut self, skip: Range<u64>, shares_memory: bool) -> Result<Self, Errno> {
        self.copy(0, skip, !shares_memory)
    }

    /// An empty user half for execve, with this one's kernel half but `skip`.
    pub fn successor(&mut self, skip: Range<u64>) -> Result<Self, Errno> {
        self.copy(USER_END, skip, false)
    }

    /// A new address space sharing the frames of the pages from `from` up (but `skip`),
    /// with writable user pages write-protected on both sides, and, if `refault`, the pages
    /// of areas that hold only their file's left for the new one to fault in.
    fn copy(&mut self, from: u64, skip: Range<u64>, refault: bool) -> Result<Self, Errno> {
        let mut child = Self::over(Rc::clone(&self.phys)).ok_or(Errno::ENOMEM)?;
        child.copied = Rc::clone(&self.copied);
        child.pages_copied = Rc::clone(&self.pages_copied);
        child.faults = Rc::clone(&self.faults);
        child.faulted_around = Rc::clone(&self.faulted_around);
        // Shared anonymous memory is one set of frames for both: every page gets its frame
        // now, so that a page either side touches first is the other's too.
        let shared: Vec<Range<u64>> = if from < USER_END {
            self.vmas
                .iter()
                .filter(|(_, vma)| vma.shared_anonymous)
                .map(|(&start, vma)| start..vma.end)
                .collect()
        } else {
            Vec::new()
        };
        for range in &shared {
            let prot = self
                .vma_at(range.start)
                .map(|(_, vma)| vma.prot)
                .unwrap_or(Prot(0));
            for page in range.clone().step_by(PAGE_SIZE as usize) {
                if self.tables.leaf(&self.phys.borrow(), page).is_none() {
                    self.give_frame(page, prot)?;
                }
            }
        }
        let in_shared = |page: u64| shared.iter().any(|range| range.contains(&page));
        let refaulted: Vec<Range<u64>> = if from < USER_END && refault {
            self.vmas
                .iter()
                .filter(|(_, vma)| vma.refaulted_after_fork())
                .map(|(&start, vma)| start..vma.end)
                .collect()
        } else {
            Vec::new()
        };
        let in_refaulted = |page: u64| refaulted.iter().any(|range| range.contains(&page));
        let mut held = Vec::new();
        self.tables
            .for_each_leaf(&self.phys.borrow(), from, u64::MAX, |page, leaf| {
                held.push((page, leaf))
            });
        for (page, leaf) in held.into_iter().filter(|(page, _)| !skip.contains(page)) {
            let mut phys = self.phys.borrow_mut();
            phys.share(leaf.frame);
            let leaf = if in_refaulted(page) && !leaf.flags.write {
                // The child keeps the file's page but has to fault it in.
                leaf.not_present()
            } else if page < USER_END && leaf.flags.write && !in_shared(page) {
                let protected = Leaf {
                    flags: PageFlags {
                        write: false,
                        ..leaf.flags
                    },
                    ..leaf
                };
                self.tables.map(&mut phys, page, protected);
                self.sync.flush_tlb = true;
                protected
            } else {
                leaf
            };
            child
                .tables
                .map(&mut phys, page, leaf)
                .ok_or(Errno::ENOMEM)?;
        }
        if from < USER_END {
            child.vmas = self.vmas.clone();
            child.files = self.files.clone();
            child.brk_start = self.brk_start;
            child.brk = self.brk;
        }
        Ok(child)
    }

    /// Maps `page` with `flags` to a frame of its own: its frame if no other address space
    /// maps it, else a copy, so that a write to it stays in this address space. Returns the
    /// frame.
    fn own(&mut self, page: u64, leaf: Leaf) -> Result<u64, Errno> {
        let mut phys = self.phys.borrow_mut();
        let frame = if phys.is_shared(leaf.frame) {
            let copy = phys.alloc().ok_or(Errno::ENOMEM)?;
            phys.copy_frame(leaf.frame, copy);
            phys.free(leaf.frame, leaf.flags.execute);
            self.pages_copied.set(self.pages_copied.get() + 1);
            copy
        } else {
            leaf.frame
        };
        self.tables
            .map(&mut phys, page, Leaf { frame, ..leaf })
            .ok_or(Errno::ENOMEM)?;
        self.sync.flush_tlb = true;
        Ok(frame)
    }

    /// An access to `addr` that the page tables refused, resolved as Linux's page fault
    /// handler does where the area allows it: a page never touched gets a zeroed frame
    /// (`do_anonymous_page`); a write to a page write-protected because it shares its frame
    /// (since a fork, or made writable while shared) gets a frame of its own and becomes
    /// writable (`do_wp_page`). The access can then run again (`Resolved`); else the fault
    /// is the program's, as when the area does not allow `access` at all, or the page of a
    /// file mapping lies past the end of the file (SIGBUS on Linux). `ENOMEM`: no frame is
    /// left.
    pub fn resolve_fault(&mut self, addr: u64, access: Access) -> Result<Resolution, Errno> {
        let resolution = self.resolve(addr, access)?;
        if resolution == Resolution::Resolved {
            self.faults.set(self.faults.get() + 1);
        }
        Ok(resolution)
    }

    fn resolve(&mut self, addr: u64, access: Access) -> Result<Resolution, Errno> {
        let page = page_down(addr);
        if page >= USER_END {
            return Ok(Resolution::Program);
        }
        let Some((start, vma)) = self.vma_at(page) else {
            return Ok(Resolution::Program);
        };
        let leaf = self.tables.leaf(&self.phys.borrow(), page);
        let Some(leaf) = leaf else {
            if !vma.allows(access) {
                return Ok(Resolution::Program);
            }
            if vma.file.is_some() && !self.within_file(page, start, vma) {
                return Ok(Resolution::PastEndOfFile);
            }
            if vma.file.is_some() && access != Access::Write {
                // A file's page of zeros, which mmap leaves unbacked: read-only, with its
                // window, as the file's other pages.
                self.give_frame(page, Prot(vma.prot.0 & !Prot::WRITE))?;
                self.fault_around(page, start, vma)?;
                return Ok(Resolution::Resolved);
            }
            self.give_frame(page, vma.prot)?;
            self.mark_anonymous(start);
            return Ok(Resolution::Resolved);
        };
        // A file's page not in the page tables yet (the area allows access; PROT_NONE's
        // pages are not present either).
        let unfaulted = !leaf.flags.present && vma.prot.accessible();
        if unfaulted && access != Access::Write {
            if !vma.allows(access) {
                return Ok(Resolution::Program);
            }
            self.fault_around(page, start, vma)?;
            return Ok(Resolution::Resolved);
        }
        // A write, to a page not faulted in yet or write-protected.
        let protected = leaf.flags.present && !leaf.flags.write;
        if vma.prot.0 & Prot::WRITE == 0 || !(unfaulted || protected) {
            return Ok(Resolution::Program);
        }
        if vma.shared_anonymous {
            // Shared memory is written in place, never copied.
            let flags = PageFlags {
                write: true,
                ..leaf.flags
            };
            self.tables
                .map(&mut self.phys.borrow_mut(), page, Leaf { flags, ..leaf })
                .ok_or(Errno::ENOMEM)?;
            self.sync.flush_tlb = true;
            return Ok(Resolution::Resolved);
        }
        let flags = PageFlags {
            present: true,
            write: true,
            ..leaf.flags
        };
        self.own(page, Leaf { flags, ..leaf })?;
        self.mark_anonymous(start);
        // Code translated from the page watched no frame (the page was read-only) or the one
        // it left: it must go, and be translated again watching this one.
        if flags.execute {
            self.sync.stale_pages.push(page);
        }
        Ok(Resolution::Resolved)
    }

    /// A read fault on the file page `page` of the area `vma` at `start`: maps it read-only,
    /// and the area's other file pages not mapped yet in the `FAULT_AROUND_BYTES` window
    /// Linux's `do_fault_around` takes (from the aligned start, or the area's if later, as
    /// far on, but not past the area's end or its page table's); a write to one faults
    /// again. The file's pages of zeros among them, which mmap leaves unbacked, get frames.
    fn fault_around(&mut self, page: u64, start: u64, vma: Vma) -> Result<(), Errno> {
        let from = (page & !(FAULT_AROUND_BYTES - 1)).max(start);
        let table_end = (from | (PAGE_TABLE_SPAN - 1)) + 1;
        let to = (from + FAULT_AROUND_BYTES).min(vma.end).min(table_end);
        let mut around = 0;
        for at in (from..to).step_by(PAGE_SIZE as usize) {
            let leaf = self.tables.leaf(&self.phys.borrow(), at);
            match leaf {
                Some(leaf) if !leaf.flags.present => {
                    let flags = PageFlags {
                        present: true,
                        write: false,
                        ..leaf.flags
                    };
                    self.tables
                        .map(&mut self.phys.borrow_mut(), at, Leaf { flags, ..leaf });
                }
                None if self.within_file(at, start, vma) => {
                    self.give_frame(at, Prot(vma.prot.0 & !Prot::WRITE))?
                }
                _ => continue,
            }
            around += u64::from(at != page);
        }
        self.faulted_around.set(self.faulted_around.get() + around);
        Ok(())
    }

    /// Whether `page` of the file area `vma` at `start` lies within its file's size when it
    /// was mapped (past it, touching a page is SIGBUS).
    fn within_file(&self, page: u64, start: u64, vma: Vma) -> bool {
        vma.file.is_some_and(|area| {
            let size = self.files[area.file as usize].size;
            area.offset + (page - start) < page_up(size).unwrap_or(u64::MAX)
        })
    }

    /// Records that the area at `start` holds a page of its own (`Vma::anonymous_pages`).
    fn mark_anonymous(&mut self, start: u64) {
        if let Some(vma) = self.vmas.get_mut(&start) {
            vma.anonymous_pages = true;
        }
    }

    /// Maps the file pages of the areas in `[start, end)`, which hold the file's bytes, out
    /// of the page tables, and records that the areas hold no page of their own: a fresh
    /// file mapping, whose pages are faulted in when first touched.
    fn leave_to_fault(&mut self, start: u64, end: u64) {
        let mut held = Vec::new();
        self.tables
            .for_each_leaf(&self.phys.borrow(), start, end, |page, leaf| {
                held.push((page, leaf))
            });
        let mut phys = self.phys.borrow_mut();
        for (page, leaf) in held {
            self.tables.map(&mut phys, page, leaf.not_present());
        }
        self.sync.flush_tlb = true;
    }

    /// Pages copied on write, in the whole system.
    pub fn pages_copied(&self) -> u64 {
        self.pages_copied.get()
    }

    /// Page faults resolved, in the whole system.
    pub fn faults(&self) -> u64 {
        self.faults.get()
    }

    /// Pages those faults mapped around the faulting ones, in the whole system.
    pub fn faulted_around(&self) -> u64 {
        self.faulted_around.get()
    }

    /// Faults in the page of guest code at `addr` if it is a file's page not yet in the page
    /// tables, as the CPU's fetch would: translated code is read by the translator, not
    /// fetched, and reading it is the fault a kernel-resident translator would take.
    pub fn fault_in_code(&mut self, addr: u64) -> Result<(), Errno> {
        let unfaulted = self
            .tables
            .leaf(&self.phys.borrow(), page_down(addr))
            .is_some_and(|leaf| !leaf.flags.present);
        if unfaulted && addr < USER_END {
            self.resolve_fault(addr, Access::Fetch)?;
        }
        Ok(())
    }

    pub fn cr3(&self) -> u64 {
        self.tables.cr3()
    }

    /// What the CPU must do now; resets the record.
    pub fn take_sync(&mut self) -> CpuSync {
        std::mem::take(&mut self.sync)
    }

    pub fn bytes_copied(&self) -> u64 {
        self.copied.get()
    }

    /// Maps a supervisor-only page in the kernel half, for the machine's own structures.
    pub fn map_kernel_page(&mut self, vaddr: u64, execute: bool) -> Result<(), Errno> {
        let frame = self.phys.borrow_mut().alloc().ok_or(Errno::ENOMEM)?;
        let flags = PageFlags {
            present: true,
            write: !execute,
            execute,
            user: false,
        };
        self.tables
            .map(&mut self.phys.borrow_mut(), vaddr, Leaf { frame, flags })
            .ok_or(Errno::ENOMEM)
    }

    pub fn read_kernel_u64(&self, vaddr: u64) -> u64 {
        let mut bytes = [0u8; 8];
        self.peek(vaddr, &mut bytes).expect("kernel slot is mapped");
        u64::from_le_bytes(bytes)
    }

    /// Reads guest code as ring 3 fetches it: user, executable pages only (a file's page not
    /// faulted in yet too: fetching it would fault it in), and pages of executable areas
    /// never touched, which read as zeros. Returns how many bytes could be fetched.
    pub fn fetch(&self, addr: u64, buf: &mut [u8]) -> usize {
        let mut done = 0;
        while done < buf.len() {
            let Some(cursor) = addr.checked_add(done as u64).filter(|&c| c < USER_END) else {
                break;
            };
            let off = (cursor % PAGE_SIZE) as usize;
            let take = (PAGE_SIZE as usize - off).min(buf.len() - done);
            match self.tables.leaf(&self.phys.borrow(), cursor) {
                Some(leaf) if leaf.flags.user && leaf.flags.execute => buf[done..done + take]
                    .copy_from_slice(&self.phys.borrow().frame(leaf.frame)[off..off + take]),
                None if self
                    .vma_at(cursor)
                    .is_some_and(|(_, vma)| vma.prot.0 & Prot::EXEC != 0) =>
                {
                    buf[done..done + take].fill(0)
                }
                _ => break,
            }
            done += take;
        }
        done
    }

    /// The guest instruction at `addr`, decoded from what ring 3 could fetch there (an
    /// invalid instruction if the bytes run out).
    pub fn instruction_at(&self, addr: u64) -> iced_x86::Instruction {
        let mut bytes = [0u8; 15];
        let fetched = self.fetch(addr, &mut bytes);
        iced_x86::Decoder::with_ip(64, &bytes[..fetched], addr, iced_x86::DecoderOptions::NONE)
            .decode()
    }

    /// The address of the `n`-th instruction (from 0) of the guest code from `start`, if it
    /// begins before `end`.
    pub fn nth_instruction(&self, start: u64, end: u64, n: u32) -> Option<u64> {
        let mut at = start;
        for _ in 0..n {
            let length = self.instruction_at(at).len() as u64;
            if length == 0 {
                return None;
            }
            at += length;
        }
        (at < end).then_some(at)
    }

    // ----- areas -----

    /// The area containing `addr`, with its start.
    /// Whether the page holding `addr` has a frame in the page tables.
    pub fn is_present(&self, addr: u64) -> bool {
        addr < USER_END
            && self
                .tables
                .leaf(&self.phys.borrow(), page_down(addr))
                .is_some_and(|leaf| leaf.flags.present)
    }

    /// The bytes mapped and the pages present (`/proc/self/stat`'s vsize and rss).
    pub fn size_and_resident(&self) -> (u64, u64) {
        let phys = self.phys.borrow();
        let (mut bytes, mut pages) = (0, 0);
        for (&start, vma) in &self.vmas {
            bytes += vma.end - start;
            self.tables.for_each_leaf(&phys, start, vma.end, |_, leaf| {
                pages += u64::from(leaf.flags.present);
            });
        }
        (bytes, pages)
    }

    /// The areas: a fork copies every one.
    pub fn areas(&self) -> u64 {
        self.vmas.len() as u64
    }

    /// Present pages of private areas that hold pages of their own: those whose page-table
    /// entries a fork copies (Linux copies no entries of an area it can fault in again from
    /// its file).
    pub fn private_writable_pages(&self) -> u64 {
        let phys = self.phys.borrow();
        let mut pages = 0;
        for (&start, vma) in self
            .vmas
            .iter()
            .filter(|(_, vma)| vma.anonymous_pages && !vma.shared_anonymous)
        {
            self.tables.for_each_leaf(&phys, start, vma.end, |_, leaf| {
                pages += u64::from(leaf.flags.present);
            });
        }
        pages
    }

    pub fn vma_at(&self, addr: u64) -> Option<(u64, Vma)> {
        let (&start, &vma) = self.vmas.range(..=addr).next_back()?;
        (addr < vma.end).then_some((start, vma))
    }

    /// The start of the first area at or above `addr`.
    pub fn next_vma_start(&self, addr: u64) -> Option<u64> {
        self.vmas.range(addr..).next().map(|(&start, _)| start)
    }

    /// Whether areas cover `[start, end)` without a hole.
    fn covers(&self, start: u64, end: u64) -> bool {
        let mut cursor = start;
        while cursor < end {
            match self.vma_at(cursor) {
                Some((_, vma)) => cursor = vma.end,
                None => return false,
            }
        }
        true
    }

    fn overlaps(&self, range: &Range<u64>) -> bool {
        self.vmas
            .range(..range.end)
            .next_back()
            .is_some_and(|(_, vma)| vma.end > range.start)
    }

    /// Splits areas so that `at` is an area boundary.
    fn split_at(&mut self, at: u64) {
        if let Some((start, vma)) = self.vma_at(at) {
            if start < at {
                self.vmas.insert(start, Vma { end: at, ..vma });
                let file = vma.file.map(|area| area.advanced(at - start));
                self.vmas.insert(at, Vma { file, ..vma });
            }
        }
    }

    /// Joins touching areas with the same protection from the one before `start` to the one
    /// at `end`: Linux keeps one area for one kind of memory (`vma_merge`), and mremap, for
    /// one, works within one area.
    fn merge_around(&mut self, start: u64, end: u64) {
        let first = self
            .vmas
            .range(..start)
            .next_back()
            .map_or(start, |(&s, _)| s);
        let starts: Vec<u64> = self.vmas.range(first..=end).map(|(&s, _)| s).collect();
        let mut joined: Option<u64> = None;
        for area in starts {
            let vma = self.vmas[&area];
            match joined.map(|j| (j, self.vmas[&j])) {
                Some((j, before))
                    if before.end == area
                        && before.prot == vma.prot
                        && before.accounted == vma.accounted
                        && before.shared_anonymous == vma.shared_anonymous
                        && maps::continues(before.file, area - j, vma.file) =>
                {
                    self.vmas.remove(&area);
                    self.vmas.insert(
                        j,
                        Vma {
                            end: vma.end,
                            anonymous_pages: before.anonymous_pages || vma.anonymous_pages,
                            ..before
                        },
                    );
                }
                _ => joined = Some(area),
            }
        }
    }

    /// Marks `[start, end)`, just mapped, as shared anonymous memory (MAP_SHARED |
    /// MAP_ANONYMOUS), which fork does not copy.
    pub fn share_anonymous(&mut self, start: u64, end: u64) {
        self.mark_areas(start, end, |_, vma| {
            vma.shared_anonymous = true;
            vma.accounted = false;
        });
    }

    /// Records that `[start, end)`, just mapped and filled, maps `file` from `offset` on (for
    /// `/proc/self/maps`); its pages are left to be faulted in.
    pub fn name_file(&mut self, start: u64, end: u64, file: MappedFile, offset: u64, shared: bool) {
        let index = match self.files.iter().position(|known| *known == file) {
            Some(index) => index,
            None => {
                self.files.push(file);
                self.files.len() - 1
            }
        } as u32;
        self.mark_areas(start, end, |area, vma| {
            vma.file = Some(FileArea {
                file: index,
                offset: offset + (area - start),
                shared,
            });
            vma.anonymous_pages = false;
        });
        self.leave_to_fault(start, end);
    }

    /// Changes what the areas of `[start, end)` record, `mark` given each area's start,
    /// splitting them at the bounds first and joining what then matches.
    fn mark_areas(&mut self, start: u64, end: u64, mut mark: impl FnMut(u64, &mut Vma)) {
        self.split_at(start);
        self.split_at(end);
        for (&area, vma) in self.vmas.range_mut(start..end) {
            mark(area, vma);
        }
        self.merge_around(start, end);
    }

    /// `/proc/self/maps`: every area, with the file it maps, the heap and the stack named.
    pub fn maps(&self, stack: u64) -> String {
        let areas = self.vmas.iter().map(|(&start, &vma)| (start, vma));
        maps::render(areas, &self.files, self.brk_start..self.brk, stack)
    }

    /// Maps `[start, start + len)` with `prot`, replacing whatever was there (MAP_FIXED).
    pub fn map_fixed(&mut self, start: u64, len: u64, prot: Prot) -> Result<(), Errno> {
        let end = start
            .checked_add(len)
            .filter(|&e| e <= TASK_SIZE)
            .ok_or(Errno::ENOMEM)?;
        // Refuse at once what physical memory could never hold, as Linux's heuristic
        // overcommit refuses a mapping larger than all its RAM; pages get their frames
        // when first touched.
        if prot.accessible() && len > crate::machine::physmem::PHYS_SIZE {
            return Err(Errno::ENOMEM);
        }
        self.unmap(start, len)?;
        self.vmas.insert(
            start,
            Vma {
                end,
                prot,
                file: None,
                accounted: prot.0 & Prot::WRITE != 0,
                shared_anonymous: false,
                anonymous_pages: false,
            },
        );
        self.merge_around(start, end);
        Ok(())
    }

    /// Gives `page` a zeroed frame, mapped as `prot` allows.
    fn give_frame(&mut self, page: u64, prot: Prot) -> Result<(), Errno> {
        let frame = self.phys.borrow_mut().alloc().ok_or(Errno::ENOMEM)?;
        self.sync.frames_given = true;
        if prot.0 & Prot::EXEC != 0 {
            self.sync.zero_code_pages.push(page);
        }
        let leaf = Leaf {
            frame,
            flags: prot.page_flags(),
        };
        self.tables
            .map(&mut self.phys.borrow_mut(), page, leaf)
            .ok_or(Errno::ENOMEM)
    }

    /// The highest free range of `len` bytes below `MMAP_BASE` (Linux's top-down layout).
    pub fn find_free(&self, len: u64) -> Option<u64> {
        let mut ceiling = MMAP_BASE;
        for (&start, vma) in self.vmas.range(..MMAP_BASE).rev() {
            if vma.end <= ceiling && ceiling - vma.end >= len {
                return Some(ceiling - len);
            }
            ceiling = ceiling.min(start);
        }
        ceiling.checked_sub(len).filter(|&s| s >= MMAP_MIN_ADDR)
    }

    /// Whether `[start, start + len)` is free of areas.
    pub fn is_free(&self, start: u64, len: u64) -> bool {
        start >= MMAP_MIN_ADDR
            && start.checked_add(len).is_some_and(|end| end <= TASK_SIZE)
            && !self.overlaps(&(start..start + len))
    }

    /// Unmaps `[start, start + len)`; Linux refuses a range that leaves `TASK_SIZE`.
    pub fn unmap(&mut self, start: u64, len: u64) -> Result<(), Errno> {
        if start > TASK_SIZE || len > TASK_SIZE - start {
            return Err(Errno::EINVAL);
        }
        let end = start + len;
        self.split_at(start);
        self.split_at(end);
        let doomed: Vec<(u64, Vma)> = self.vmas.range(start..end).map(|(&s, &v)| (s, v)).collect();
        for (vma_start, vma) in doomed {
            self.vmas.remove(&vma_start);
            if vma.prot.0 & Prot::EXEC != 0 {
                self.sync.changed_code.push(vma_start..vma.end);
            }
            let mut held = Vec::new();
            self.tables
                .for_each_leaf(&self.phys.borrow(), vma_start, vma.end, |page, _| {
                    held.push(page)
                });
            for page in held {
                let cleared = self.tables.clear(&mut self.phys.borrow_mut(), page);
                if let Some(frame) = cleared {
                    let executable = vma.prot.0 & Prot::EXEC != 0;
                    self.phys.borrow_mut().free(frame, executable);
                }
            }
            self.sync.flush_tlb = true;
        }
        Ok(())
    }

    pub fn protect(&mut self, start: u64, len: u64, prot: Prot) -> Result<(), Errno> {
        // Linux refuses with ENOMEM a range that wraps or is partly unmapped.
        let end = start.checked_add(len).ok_or(Errno::ENOMEM)?;
        if !self.covers(start, end) {
            return Err(Errno::ENOMEM);
        }
        self.split_at(start);
        self.split_at(end);
        let starts: Vec<u64> = self.vmas.range(start..end).map(|(&s, _)| s).collect();
        for vma_start in starts {
            let vma = self.vmas[&vma_start];
            let mut held = Vec::new();
            self.tables
                .for_each_leaf(&self.phys.borrow(), vma_start, vma.end, |page, leaf| {
                    held.push((page, leaf))
                });
            let missing = (vma.end - vma_start) / PAGE_SIZE - held.len() as u64;
            if prot.accessible() && missing > self.phys.borrow().available() {
                return Err(Errno::ENOMEM);
            }
            if (vma.prot.0 | prot.0) & Prot::EXEC != 0 && vma.prot != prot {
                self.sync.changed_code.push(vma_start..vma.end);
            }
            let accounted = vma.accounted || prot.0 & Prot::WRITE != 0;
            self.vmas.insert(
                vma_start,
                Vma {
                    prot,
                    accounted,
                    ..vma
                },
            );
            for &(page, leaf) in &held {
                let mut phys = self.phys.borrow_mut();
                let frame = leaf.frame;
                // A shared frame stays read-only until its first write, unless the area is
                // shared memory, whose frames are everyone's; a file's page not yet faulted
                // in stays out of the page tables.
                let private_copy = phys.is_shared(frame) && !vma.shared_anonymous;
                let unfaulted = vma.prot.accessible() && !leaf.flags.present;
                let flags = PageFlags {
                    present: prot.accessible() && !unfaulted,
                    write: prot.0 & Prot::WRITE != 0 && !private_copy && !unfaulted,
                    ..prot.page_flags()
                };
                self.tables.map(&mut phys, page, Leaf { frame, flags });
            }
        }
        self.merge_around(start, end);
        self.sync.flush_tlb = true;
        Ok(())
    }

    /// Moves the pages of `[old, old + len)` to `new` without copying (mremap).
    pub fn move_pages(&mut self, old: u64, len: u64, new: u64) -> Result<(), Errno> {
        let (vma_start, vma) = self.vma_at(old).ok_or(Errno::EFAULT)?;
        let old_end = old
            .checked_add(len)
            .filter(|&e| e <= vma.end)
            .ok_or(Errno::EFAULT)?;
        let new_end = new
            .checked_add(len)
            .filter(|&e| e <= TASK_SIZE)
            .ok_or(Errno::ENOMEM)?;
        self.unmap(new, len)?;
        self.split_at(old);
        self.split_at(old_end);
        self.vmas.remove(&old);
        let file = vma.file.map(|area| area.advanced(old - vma_start));
        self.vmas.insert(
            new,
            Vma {
                end: new_end,
                file,
                ..vma
            },
        );
        let mut held = Vec::new();
        self.tables
            .for_each_leaf(&self.phys.borrow(), old, old_end, |page, leaf| {
                held.push((page, leaf))
            });
        for (page, leaf) in held {
            self.tables.clear(&mut self.phys.borrow_mut(), page);
            self.tables
                .map(&mut self.phys.borrow_mut(), page - old + new, leaf)
                .ok_or(Errno::ENOMEM)?;
        }
        if vma.prot.0 & Prot::EXEC != 0 {
            self.sync.changed_code.push(old..old_end);
        }
        self.merge_around(new, new_end);
        self.sync.flush_tlb = true;
        Ok(())
    }

    /// Writes `bytes` at `addr` whatever the protection, as the kernel does when it loads
    /// an image or fills a file mapping, and as the simulator writes its own kernel-half
    /// data and code. The pages must have frames. Host writes do not reach Unicorn's
    /// translated-code cache: callers that change code that may have run must have it
    /// invalidated.
    pub fn fill(&mut self, addr: u64, bytes: &[u8]) {
        let mut done = 0;
        while done < bytes.len() {
            let cursor = addr + done as u64;
            if self.tables.leaf(&self.phys.borrow(), cursor).is_none() {
                let (start, vma) = self.vma_at(cursor).expect("filled pages are in areas");
                self.give_frame(page_down(cursor), vma.prot)
                    .expect("physical memory holds what is filled");
                self.mark_anonymous(start);
            }
            let leaf = self
                .tables
                .leaf(&self.phys.borrow(), cursor)
                .expect("filled pages have frames");
            let off = (cursor % PAGE_SIZE) as usize;
            let take = (PAGE_SIZE as usize - off).min(bytes.len() - done);
            self.phys.borrow_mut().frame_mut(leaf.frame)[off..off + take]
                .copy_from_slice(&bytes[done..done + take]);
            done += take;
        }
    }

    /// MADV_DONTNEED: drops the pages of `[start, start + len)` that have frames, as Linux
    /// zaps them: the next touch of an anonymous page faults in zeros, and of a private
    /// file mapping's page the file's bytes as they are now (read again, and left out of the
    /// page tables until touched, as when mapped). Fails on unmapped pages. Walks the frames
    /// held, not the range, so a vast reservation costs what it holds.
    pub fn drop_pages(&mut self, start: u64, len: u64) -> Result<(), Errno> {
        let end = start.checked_add(len).ok_or(Errno::EINVAL)?;
        if !self.covers(start, end) {
            return Err(Errno::ENOMEM);
        }
        let mut held = Vec::new();
        self.tables
            .for_each_leaf(&self.phys.borrow(), start, end, |page, leaf| {
                held.push((page, leaf))
            });
        for (page, leaf) in held {
            let (area_start, vma) = self.vma_at(page).expect("held pages are in areas");
            // Shared memory keeps its contents: only this space's entry would go.
            if vma.shared_anonymous {
                continue;
            }
            if leaf.flags.execute || vma.prot.0 & Prot::EXEC != 0 {
                self.sync.changed_code.push(page..page + PAGE_SIZE);
            }
            let file_bytes = vma
                .file
                .and_then(|area| self.file_page(area.file, area.offset + (page - area_start)));
            match file_bytes {
                Some(bytes) => {
                    let flags = PageFlags {
                        present: false,
                        ..vma.prot.page_flags()
                    };
                    let frame = self.own(page, Leaf { flags, ..leaf })?;
                    self.phys
                        .borrow_mut()
                        .frame_mut(frame)
                        .copy_from_slice(&bytes);
                }
                None => {
                    let cleared = self.tables.clear(&mut self.phys.borrow_mut(), page);
                    if let Some(frame) = cleared {
                        self.phys.borrow_mut().free(frame, leaf.flags.execute);
                    }
                }
            }
        }
        self.sync.flush_tlb = true;
        Ok(())
    }

    /// The page at `offset` of mapped file `file` as the file holds it now (zeros past its
    /// end), or `None` if the page lies wholly past the end it had when mapped (touching it
    /// is SIGBUS) or the file cannot be read any more.
    fn file_page(&self, file: u32, offset: u64) -> Option<[u8; PAGE_SIZE as usize]> {
        use std::os::unix::fs::FileExt;
        let mapped = &self.files[file as usize];
        if offset >= page_up(mapped.size)? {
            return None;
        }
        let mut bytes = [0; PAGE_SIZE as usize];
        let host = std::fs::File::open(&mapped.path).ok()?;
        let mut done = 0;
        while done < bytes.len() {
            match host.read_at(&mut bytes[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(_) => return None,
            }
        }
        Some(bytes)
    }

    // ----- the program break -----

    /// Sets the initial break, just after the loaded image.
    pub fn init_brk(&mut self, at: u64) {
        self.brk_start = at;
        self.brk = at;
    }

    /// Linux's brk: grows or shrinks the heap; returns the break, unchanged on failure.
    pub fn set_brk(&mut self, requested: u64) -> u64 {
        if requested < self.brk_start {
            return self.brk;
        }
        let (Some(old_top), Some(new_top)) = (page_up(self.brk), page_up(requested)) else {
            return self.brk;
        };
        let ok = if new_top > old_top {
            self.is_free(old_top, new_top - old_top)
                && self
                    .map_fixed(old_top, new_top - old_top, Prot(Prot::READ | Prot::WRITE))
                    .is_ok()
        } else {
            new_top == old_top || self.unmap(new_top, old_top - new_top).is_ok()
        };
        if ok {
            self.brk = requested;
        }
        self.brk
    }

    // ----- user memory access -----

    /// Calls `each` with the host bytes of every page piece of `[addr, addr + len)`,
    /// after checking that ring 3 could make the same access.
    fn for_each_piece(
        &mut self,
        addr: u64,
        len: usize,
        write: bool,
        mut each: impl FnMut(&mut [u8], usize),
    ) -> Result<(), Errno> {
        let end = addr
            .checked_add(len as u64)
            .filter(|&e| e <= USER_END)
            .ok_or(Errno::EFAULT)?;
        let mut cursor = addr;
        while cursor < end {
            let mut leaf = self.tables.leaf(&self.phys.borrow(), cursor);
            let refused = leaf.is_none_or(|l| !l.flags.present || (write && !l.flags.write));
            let access = if write { Access::Write } else { Access::Read };
            if refused && self.resolve_fault(cursor, access)? == Resolution::Resolved {
                leaf = self.tables.leaf(&self.phys.borrow(), cursor);
            }
            let leaf = leaf.ok_or(Errno::EFAULT)?;
            if !leaf.flags.present || !leaf.flags.user || (write && !leaf.flags.write) {
                return Err(Errno::EFAULT);
            }
            if write && leaf.flags.execute {
                self.sync.stale_pages.push(page_down(cursor));
            }
            let off = (cursor % PAGE_SIZE) as usize;
            let take = ((PAGE_SIZE as usize - off) as u64).min(end - cursor) as usize;
            let done = (cursor - addr) as usize;
            each(
                &mut self.phys.borrow_mut().frame_mut(leaf.frame)[off..off + take],
                done,
            );
            cursor += take as u64;
        }
        self.note_copied(len as u64);
        Ok(())
    }

    /// Reads present memory without user checks or accounting (the simulator's own look,
    /// e.g. decoding a block to count its instructions).
    pub fn peek(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let mut done = 0;
        while done < buf.len() {
            let cursor = addr.checked_add(done as u64).ok_or(Errno::EFAULT)?;
            let leaf = self
                .tables
                .leaf(&self.phys.borrow(), cursor)
                .filter(|l| l.flags.present)
                .ok_or(Errno::EFAULT)?;
            let off = (cursor % PAGE_SIZE) as usize;
            let take = (PAGE_SIZE as usize - off).min(buf.len() - done);
            buf[done..done + take]
                .copy_from_slice(&self.phys.borrow().frame(leaf.frame)[off..off + take]);
            done += take;
        }
        Ok(())
    }

    /// The physical address of the writable page at `page`, if it is one: a page whose
    /// translated code the guest could change by writing to it.
    pub fn writable_frame(&self, page: u64) -> Option<u64> {
        let leaf = self.tables.leaf(&self.phys.borrow(), page)?;
        (leaf.flags.present && leaf.flags.write).then_some(leaf.frame * PAGE_SIZE)
    }

    /// Whether `addr` is in an area both writable and executable, where code can change
    /// without the kernel seeing it: its page may be read-only for now (not faulted in yet,
    /// mapped by a read's fault-around, shared since a fork), but a store makes it writable.
    pub fn is_writable_code(&self, addr: u64) -> bool {
        self.vma_at(addr).is_some_and(|(_, vma)| {
            vma.prot.0 & (Prot::WRITE | Prot::EXEC) == Prot::WRITE | Prot::EXEC
        })
    }

    /// copy_from_user.
    pub fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let len = buf.len();
        self.for_each_piece(addr, len, false, |piece, done| {
            buf[done..done + piece.len()].copy_from_slice(piece)
        })
    }

    pub fn read_vec(&mut self, addr: u64, len: usize) -> Result<Vec<u8>, Errno> {
        let mut buf = vec![0; len];
        self.read(addr, &mut buf)?;
        Ok(buf)
    }

    pub fn read_u64(&mut self, addr: u64) -> Result<u64, Errno> {
        let mut buf = [0; 8];
        self.read(addr, &mut buf)?;
        Ok(u64::from_le_bytes(buf))
    }

    /// A copy of a call's control word that is not what the call moves (the signal mask
    /// of a p-call): not counted, as a class's price a byte is for what it moves.
    pub fn read_u64_control(&mut self, addr: u64) -> Result<u64, Errno> {
        let value = self.read_u64(addr)?;
        self.copied.set(self.copied.get() - 8);
        Ok(value)
    }

    pub fn read_u32(&mut self, addr: u64) -> Result<u32, Errno> {
        let mut buf = [0; 4];
        self.read(addr, &mut buf)?;
        Ok(u32::from_le_bytes(buf))
    }

    /// An access the CPU itself makes for the guest (an emulated instruction), with ring 3's
    /// permission checks; unlike the kernel's copies it is not counted as copied bytes.
    pub fn cpu_access(&mut self, addr: u64, data: &mut [u8], write: bool) -> Result<(), Errno> {
        let len = data.len();
        self.for_each_piece(addr, len, write, |piece, done| {
            if write {
                piece.copy_from_slice(&data[done..done + piece.len()]);
            } else {
                data[done..done + piece.len()].copy_from_slice(piece);
            }
        })?;
        self.copied.set(self.copied.get() - len as u64);
        Ok(())
    }

    /// What a vfork child wrote, made this space's (its parent's) as if the two had shared
    /// the memory as CLONE_VM shares it: the parent waited all along, so every page the
    /// child holds on a frame of its own (a copy on write, a page it touched first) is the
    /// shared memory's content. Pages outside this space's areas (the child's own mappings)
    /// and pages it may not write are left alone.
    pub fn take_vfork_writes(&mut self, child: &AddressSpace) {
        let mut held = Vec::new();
        child
            .tables
            .for_each_leaf(&child.phys.borrow(), 0, USER_END, |page, leaf| {
                held.push((page, leaf.frame))
            });
        for (page, frame) in held {
            let mine = self.tables.leaf(&self.phys.borrow(), page);
            if mine.is_some_and(|leaf| leaf.frame == frame) {
                continue;
            }
            let mut bytes = self.phys.borrow().frame(frame).to_vec();
            let _ = self.cpu_access(page, &mut bytes, true);
        }
    }

    /// copy_to_user.
    pub fn write(&mut self, addr: u64, bytes: &[u8]) -> Result<(), Errno> {
        self.for_each_piece(addr, bytes.len(), true, |piece, done| {
            piece.copy_from_slice(&bytes[done..done + piece.len()])
        })
    }

    /// Starts a host transfer: the buffers `host_iovecs` prepares from now on are its own.
    pub fn begin_transfer(&mut self) {
        self.transfer = HostTransfer::default();
    }

    /// Host iovecs covering `[addr, addr + len)`, for host syscalls that fill or drain user
    /// memory in place; a further call's follow the last's in the transfer. At most
    /// `IOV_MAX` pieces, so a very long buffer gives a short transfer, which Linux allows
    /// for these calls. The caller reports the bytes moved with `note_transfer`.
    ///
    /// As Linux checks only that the range is user memory (`access_ok`) and faults as it
    /// copies, a page that cannot be mapped past the transfer's first ends it there (a copy
    /// stops at the fault, and the call returns what it moved: `transfer_asked`); at the
    /// first page, or outside user memory, it is EFAULT.
    pub fn host_iovecs(
        &mut self,
        addr: u64,
        len: usize,
        write: bool,
    ) -> Result<Vec<libc::iovec>, Errno> {
        addr.checked_add(len as u64)
            .filter(|&end| end <= TASK_SIZE)
            .ok_or(Errno::EFAULT)?;
        self.transfer.wanted += len;
        let mut iovecs = Vec::new();
        let mut remaining = len;
        let mut cursor = addr;
        while remaining > 0 && iovecs.len() < IOV_MAX && !self.transfer.cut {
            let take = remaining.min((PAGE_SIZE - cursor % PAGE_SIZE) as usize);
            let (counted, faults) = (self.copied.get(), self.faults.get());
            let around = self.faulted_around.get();
            let prepared = self.for_each_piece(cursor, take, write, |piece, _| {
                iovecs.push(libc::iovec {
                    iov_base: piece.as_mut_ptr().cast(),
                    iov_len: piece.len(),
                })
            });
            match prepared {
                Err(Errno::EFAULT) if self.transfer.bytes > 0 => {
                    self.transfer.cut = true;
                    break;
                }
                prepared => prepared?,
            }
            self.copied.set(counted);
            if self.faults.get() > faults {
                self.faults.set(faults);
                let mapped_around = self.faulted_around.replace(around) - around;
                self.transfer
                    .faults_at
                    .push((self.transfer.bytes, mapped_around));
            }
            self.transfer.bytes += take;
            cursor += take as u64;
            remaining -= take;
        }
        Ok(iovecs)
    }

    /// The bytes the transfer under way asked for, and whether memory that cannot be
    /// mapped cut its preparation short: what a datagram, which moves whole or not at all,
    /// checks (EMSGSIZE by the length asked, then EFAULT).
    pub fn transfer_asked(&self) -> (usize, bool) {
        (self.transfer.wanted, self.transfer.cut)
    }

    fn note_copied(&mut self, bytes: u64) {
        self.copied.set(self.copied.get() + bytes);
    }

    /// The host transfer moved `bytes`: they are copied, and the pages they reached that
    /// faulted in its preparation are faults. (A page prepared but not reached keeps the
    /// frame it was given, with no fault counted.)
    pub fn note_transfer(&mut self, bytes: u64) {
        self.note_copied(bytes);
        let transfer = std::mem::take(&mut self.transfer);
        for &(_, around) in transfer
            .faults_at
            .iter()
            .filter(|(at, _)| (*at as u64) < bytes)
        {
            self.faults.set(self.faults.get() + 1);
            self.faulted_around.set(self.faulted_around.get() + around);
        }
    }

    /// A NUL-terminated string of at most `max` bytes (strncpy_from_user).
    pub fn read_cstring(&mut self, addr: u64, max: usize) -> Result<Vec<u8>, Errno> {
        let mut out = Vec::new();
        let mut cursor = addr;
        while out.len() < max {
            let chunk = (PAGE_SIZE - cursor % PAGE_SIZE) as usize;
            let mut piece = vec![0; chunk.min(max - out.len())];
            self.read(cursor, &mut piece)?;
            if let Some(nul) = piece.iter().position(|&b| b == 0) {
                out.extend_from_slice(&piece[..nul]);
                return Ok(out);
            }
            cursor += piece.len() as u64;
            out.extend_from_slice(&piece);
        }
        Err(Errno::ENAMETOOLONG)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RW: Prot = Prot(Prot::READ | Prot::WRITE);

    #[test]
    fn copy_round_trip_across_pages() {
        let mut space = AddressSpace::new().unwrap();
        space.map_fixed(0x10000, 2 * PAGE_SIZE, RW).unwrap();
        let data: Vec<u8> = (0..100).collect();
        space.write(0x10000 + PAGE_SIZE - 50, &data).unwrap();
        assert_eq!(space.read_vec(0x10000 + PAGE_SIZE - 50, 100).unwrap(), data);
        assert_eq!(
            space.read_vec(0x10000 + 2 * PAGE_SIZE - 1, 2),
            Err(Errno::EFAULT)
        );
    }

    #[test]
    fn protect_none_keeps_contents() {
        let mut space = AddressSpace::new().unwrap();
        space.map_fixed(0x10000, PAGE_SIZE, RW).unwrap();
        space.write(0x10000, b"kept").unwrap();
        space.protect(0x10000, PAGE_SIZE, Prot::NONE).unwrap();
        assert_eq!(space.read_vec(0x10000, 4), Err(Errno::EFAULT));
        space.protect(0x10000, PAGE_SIZE, RW).unwrap();
        assert_eq!(space.read_vec(0x10000, 4).unwrap(), b"kept");
    }

    #[test]
    fn find_free_is_top_down_and_skips_areas() {
        let mut space = AddressSpace::new().unwrap();
        let first = space.find_free(PAGE_SIZE).unwrap();
        assert_eq!(first, MMAP_BASE - PAGE_SIZE);
        space.map_fixed(first, PAGE_SIZE, RW).unwrap();
        assert_eq!(space.find_free(PAGE_SIZE), Some(first - PAGE_SIZE));
    }

    #[test]
    fn unmap_splits_an_area() {
        let mut space = AddressSpace::new().unwrap();
        space.map_fixed(0x10000, 3 * PAGE_SIZE, RW).unwrap();
        space.unmap(0x11000, PAGE_SIZE).unwrap();
        assert!(space.vma_at(0x10000).is_some());
        assert!(space.vma_at(0x11000).is_none());
        assert!(space.vma_at(0x12000).is_some());
        assert_eq!(space.read_vec(0x11000, 1), Err(Errno::EFAULT));
    }

    #[test]
    fn brk_grows_and_shrinks() {
        let mut space = AddressSpace::new().unwrap();
        space.init_brk(0x600000);
        assert_eq!(
            space.set_brk(0x600000 + 3 * PAGE_SIZE + 5),
            0x600000 + 3 * PAGE_SIZE + 5
        );
        space.write(0x600000 + 3 * PAGE_SIZE, b"x").unwrap();
        assert_eq!(space.set_brk(0x600000), 0x600000);
        assert_eq!(space.read_vec(0x600000, 1), Err(Errno::EFAULT));
        assert_eq!(space.set_brk(0x1000), 0x600000);
    }

    #[test]
    fn a_vast_reservation_costs_only_what_is_touched() {
        let mut space = AddressSpace::new().unwrap();
        let start = 0x1000_0000_0000;
        space.map_fixed(start, 1 << 40, Prot::NONE).unwrap();
        space.protect(start + (1 << 39), PAGE_SIZE, RW).unwrap();
        space.write(start + (1 << 39), b"x").unwrap();
        // MADV_DONTNEED over it all walks the frames held, not its 2^28 pages.
        space.drop_pages(start, 1 << 40).unwrap();
        assert_eq!(space.read_vec(start + (1 << 39), 1).unwrap(), [0]);
        assert_eq!(space.protect(start, 1 << 40, RW), Err(Errno::ENOMEM));
        space.unmap(start, 1 << 40).unwrap();
        assert!(space.vma_at(start + (1 << 39)).is_none());
    }

    #[test]
    fn nothing_maps_above_task_size_and_ranges_past_it_are_refused() {
        let mut space = AddressSpace::new().unwrap();
        space
            .map_fixed(TASK_SIZE - PAGE_SIZE, PAGE_SIZE, RW)
            .unwrap();
        assert_eq!(
            space.map_fixed(TASK_SIZE, PAGE_SIZE, RW),
            Err(Errno::ENOMEM)
        );
        assert!(!space.is_free(TASK_SIZE, PAGE_SIZE));
        assert_eq!(space.unmap(TASK_SIZE, PAGE_SIZE), Err(Errno::EINVAL));
        assert_eq!(space.unmap(0x10000, u64::MAX - 0xffff), Err(Errno::EINVAL));
        assert_eq!(space.protect(0x10000, u64::MAX, RW), Err(Errno::ENOMEM));
        assert_eq!(space.drop_pages(0x10000, u64::MAX), Err(Errno::EINVAL));
        assert_eq!(
            space.move_pages(TASK_SIZE - PAGE_SIZE, u64::MAX, 0x10000),
            Err(Errno::EFAULT)
        );
    }

    #[test]
    fn touching_areas_with_one_protection_are_one_area() {
        let mut space = AddressSpace::new().unwrap();
        space.map_fixed(0x10000, PAGE_SIZE, RW).unwrap();
        space.map_fixed(0x11000, PAGE_SIZE, RW).unwrap();
        assert_eq!(space.vma_at(0x11000).map(|(start, _)| start), Some(0x10000));
        space.protect(0x11000, PAGE_SIZE, Prot(Prot::READ)).unwrap();
        assert_eq!(space.vma_at(0x11000).map(|(start, _)| start), Some(0x11000));
        space.protect(0x11000, PAGE_SIZE, RW).unwrap();
        let (start, vma) = space.vma_at(0x11000).unwrap();
        assert_eq!((start, vma.end), (0x10000, 0x12000));
    }

    #[test]
    fn moved_pages_keep_their_contents() {
        let mut space = AddressSpace::new().unwrap();
        space.map_fixed(0x10000, 2 * PAGE_SIZE, RW).unwrap();
        space.write(0x10000 + PAGE_SIZE, b"moved").unwrap();
        space.move_pages(0x10000, 2 * PAGE_SIZE, 0x40000).unwrap();
        assert_eq!(space.read_vec(0x40000 + PAGE_SIZE, 5).unwrap(), b"moved");
        assert_eq!(space.read_vec(0x10000, 1), Err(Errno::EFAULT));
    }

    fn present_in_tables(space: &AddressSpace, addr: u64) -> bool {
        flags_in_tables(space, addr).present
    }

    /// A private mapping of `pages` pages of a file (this test binary, which is larger) at
    /// `start`, filled with a byte per page, as mmap and the loader make one.
    fn file_area(space: &mut AddressSpace, start: u64, pages: u64, prot: Prot) {
        let file = MappedFile::at(std::env::current_exe().unwrap()).unwrap();
        assert!(file.size >= pages * PAGE_SIZE);
        space.map_fixed(start, pages * PAGE_SIZE, prot).unwrap();
        for page in 0..pages {
            space.fill(start + page * PAGE_SIZE, &[page as u8 + 1]);
        }
        space.name_file(start, start + pages * PAGE_SIZE, file, 0, false);
    }

    #[test]
    fn a_read_fault_on_a_file_maps_its_window_of_the_area_and_a_write_faults_again() {
        let mut space = AddressSpace::new().unwrap();
        // 40 pages from a 64 KiB boundary: windows of 16 pages at pages 0, 16 and 32.
        let start = 0x100000;
        file_area(&mut space, start, 40, RW);
        assert!(!present_in_tables(&space, start + 20 * PAGE_SIZE));
        assert_eq!(space.read_vec(start + 20 * PAGE_SIZE, 1).unwrap(), [21]);
        assert_eq!((space.faults(), space.faulted_around()), (1, 15));
        for page in 0..40 {
            let present = present_in_tables(&space, start + page * PAGE_SIZE);
            assert_eq!(present, (16..32).contains(&page), "page {page}");
        }
        // The last window ends with the area: a fault there maps its 8 pages.
        space
            .resolve_fault(start + 39 * PAGE_SIZE, Access::Read)
            .unwrap();
        assert_eq!((space.faults(), space.faulted_around()), (2, 15 + 7));
        // Read-only, as Linux maps the page cache: the write faults, and the area now holds
        // a page of its own.
        assert!(!writable_in_tables(&space, start + 20 * PAGE_SIZE));
        assert!(!space.vma_at(start).unwrap().1.anonymous_pages);
        space.write(start + 20 * PAGE_SIZE, b"w").unwrap();
        assert_eq!(space.faults(), 3);
        assert!(space.vma_at(start).unwrap().1.anonymous_pages);
        // A write to a page never touched is one fault, mapping nothing around it.
        space.write(start + 2 * PAGE_SIZE, b"w").unwrap();
        assert_eq!((space.faults(), space.faulted_around()), (4, 22));
        assert!(!present_in_tables(&space, start + 3 * PAGE_SIZE));
    }

    #[test]
    fn fault_around_starts_at_an_area_that_starts_inside_a_window_and_maps_as_many_pages() {
        let mut space = AddressSpace::new().unwrap();
        // Three pages into a 64 KiB window: Linux maps 16 pages from the area's start.
        let start = 0x103000;
        file_area(&mut space, start, 40, RW);
        space.read_vec(start, 1).unwrap();
        assert_eq!((space.faults(), space.faulted_around()), (1, 15));
        assert!(present_in_tables(&space, start + 15 * PAGE_SIZE));
        assert!(!present_in_tables(&space, start + 16 * PAGE_SIZE));
    }

    #[test]
    fn a_files_pages_of_zeros_fault_in_with_their_window_and_read_only() {
        let mut space = AddressSpace::new().unwrap();
        let start = 0x100000;
        let file = MappedFile::at(std::env::current_exe().unwrap()).unwrap();
        space.map_fixed(start, 4 * PAGE_SIZE, RW).unwrap();
        // Pages 0 and 2 hold bytes; 1 and 3 are zeros, left unbacked as mmap leaves them.
        space.fill(start, &[1]);
        space.fill(start + 2 * PAGE_SIZE, &[3]);
        space.name_file(start, start + 4 * PAGE_SIZE, file, 0, false);
        assert_eq!(space.read_vec(start + PAGE_SIZE, 1).unwrap(), [0]);
        assert_eq!((space.faults(), space.faulted_around()), (1, 3));
        for page in 0..4 {
            assert!(
                present_in_tables(&space, start + page * PAGE_SIZE),
                "page {page}"
            );
            assert!(
                !writable_in_tables(&space, start + page * PAGE_SIZE),
                "page {page}"
            );
        }
        assert!(!space.vma_at(start).unwrap().1.anonymous_pages);
    }

    #[test]
    fn every_accessible_page_reads_as_on_x86_and_code_of_a_writable_area_is_writable_code() {
        let mut space = AddressSpace::new().unwrap();
        let code = 0x100000;
        file_area(&mut space, code, 1, Prot(Prot::EXEC));
        assert_eq!(space.read_vec(code, 1).unwrap(), [1]);
        assert!(!space.is_writable_code(code));
        let writable = 0x200000;
        file_area(
            &mut space,
            writable,
            1,
            Prot(Prot::READ | Prot::WRITE | Prot::EXEC),
        );
        // Read-only in the tables after a read, but a store would make it writable.
        space.read_vec(writable, 1).unwrap();
        assert!(!writable_in_tables(&space, writable));
        assert!(space.is_writable_code(writable));
    }

    #[test]
    fn dropped_pages_come_back_as_zeros_or_as_their_files_bytes() {
        let mut space = AddressSpace::new().unwrap();
        let (data, anonymous) = (0x100000, 0x200000);
        file_area(&mut space, data, 2, RW);
        space.write(data + PAGE_SIZE, b"written").unwrap();
        space.map_fixed(anonymous, PAGE_SIZE, RW).unwrap();
        space.write(anonymous, b"gone").unwrap();
        space.drop_pages(data, 2 * PAGE_SIZE).unwrap();
        space.drop_pages(anonymous, PAGE_SIZE).unwrap();
        let file = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let faults = space.faults();
        let page = PAGE_SIZE as usize;
        assert_eq!(
            space.read_vec(data + PAGE_SIZE, page).unwrap(),
            file[page..2 * page]
        );
        assert_eq!(space.read_vec(anonymous, 4).unwrap(), [0; 4]);
        // Each a fault again: the file's page (its window takes the other), the zeroed one.
        assert_eq!(space.faults(), faults + 2);
    }

    #[test]
    fn a_fork_child_faults_a_file_only_areas_pages_in_again_and_a_vfork_child_not() {
        let mut parent = AddressSpace::new().unwrap();
        let (code, data) = (0x100000, 0x200000);
        file_area(&mut parent, code, 4, Prot(Prot::READ | Prot::EXEC));
        file_area(&mut parent, data, 4, RW);
        parent.resolve_fault(code, Access::Fetch).unwrap();
        parent.write(data, b"own").unwrap();
        parent.read_vec(data + PAGE_SIZE, 1).unwrap();
        // The write's page, and the read's window: the rest of the area.
        assert_eq!(parent.private_writable_pages(), 4);
        let faults = parent.faults();
        let mut child = parent.fork(0..0, false).unwrap();
        // Code: out of the child's tables, though the parent has it; data: copied, both
        // pages (Linux copies every entry of an area with pages of its own).
        assert!(present_in_tables(&parent, code) && !present_in_tables(&child, code));
        assert!(present_in_tables(&child, data) && present_in_tables(&child, data + PAGE_SIZE));
        assert_eq!(child.read_vec(code, 1).unwrap(), [1]);
        assert_eq!(child.faults(), faults + 1);
        assert_eq!(child.read_vec(data, 3).unwrap(), b"own");
        assert_eq!(child.faults(), faults + 1);
        // A vfork child, which on Linux runs in its parent's memory, keeps the code mapped.
        let vforked = parent.fork(0..0, true).unwrap();
        assert!(present_in_tables(&vforked, code));
    }

    #[test]
    fn code_translated_from_a_file_page_faults_it_in_once() {
        let mut space = AddressSpace::new().unwrap();
        let code = 0x100000;
        file_area(&mut space, code, 2, Prot(Prot::READ | Prot::EXEC));
        let mut byte = [0];
        assert_eq!(space.fetch(code + PAGE_SIZE, &mut byte), 1);
        assert_eq!(byte, [2]);
        space.fault_in_code(code).unwrap();
        space.fault_in_code(code + PAGE_SIZE).unwrap();
        assert_eq!((space.faults(), space.faulted_around()), (1, 1));
    }

    fn writable_in_tables(space: &AddressSpace, addr: u64) -> bool {
        flags_in_tables(space, addr).write
    }

    fn flags_in_tables(space: &AddressSpace, addr: u64) -> PageFlags {
        space.tables.leaf(&space.phys.borrow(), addr).unwrap().flags
    }

    #[test]
    fn a_fork_copies_no_page_and_a_first_write_copies_one() {
        let mut parent = AddressSpace::new().unwrap();
        parent.map_fixed(0x10000, 64 * PAGE_SIZE, RW).unwrap();
        parent.write(0x10000, b"parent").unwrap();
        parent.write(0x11000, b"both").unwrap();
        let free_before = parent.phys.borrow().available();
        let mut child = parent.fork(0..0, false).unwrap();
        // Only the child's page tables were allocated: no page of the area was copied.
        assert!(free_before - parent.phys.borrow().available() < 8);
        assert_eq!(parent.pages_copied(), 0);
        assert!(!writable_in_tables(&parent, 0x10000) && !writable_in_tables(&child, 0x10000));
        // The kernel's write (copy_to_user) copies the page for the child alone.
        child.write(0x10000, b"child!").unwrap();
        assert_eq!(child.read_vec(0x10000, 6).unwrap(), b"child!");
        assert_eq!(parent.read_vec(0x10000, 6).unwrap(), b"parent");
        assert_eq!(parent.pages_copied(), 1);
        // The parent is the page's last user now: its write fault copies nothing.
        assert_eq!(
            parent.resolve_fault(0x10008, Access::Write),
            Ok(Resolution::Resolved)
        );
        assert!(writable_in_tables(&parent, 0x10000));
        assert_eq!(child.pages_copied(), 1);
        // Pages neither side wrote still share their frames.
        assert!(parent.phys.borrow().is_shared(
            parent
                .tables
                .leaf(&parent.phys.borrow(), 0x11000)
                .unwrap()
                .frame
        ));
    }

    #[test]
    fn a_page_gets_a_zeroed_frame_at_its_first_access() {
        let mut space = AddressSpace::new().unwrap();
        let free_before = space.phys.borrow().available();
        space.map_fixed(0x10000, 64 * PAGE_SIZE, RW).unwrap();
        space.map_fixed(0x90000, PAGE_SIZE, Prot(0)).unwrap();
        assert!(free_before - space.phys.borrow().available() < 8);
        assert!(space.tables.leaf(&space.phys.borrow(), 0x20000).is_none());
        assert_eq!(space.read_vec(0x20000, 4).unwrap(), [0; 4]);
        assert_eq!(
            space.resolve_fault(0x30008, Access::Read),
            Ok(Resolution::Resolved)
        );
        assert!(space.tables.leaf(&space.phys.borrow(), 0x30000).is_some());
        assert_eq!(
            space.resolve_fault(0x90000, Access::Read),
            Ok(Resolution::Program)
        );
        assert_eq!(space.pages_copied(), 0);
        // Two faults resolved: the kernel's read of 0x20000 and the CPU's of 0x30008; the
        // program's own fault is not the kernel's to count.
        assert_eq!(space.faults(), 2);
    }

    #[test]
    fn a_host_transfer_faults_only_the_pages_its_bytes_reach() {
        let mut space = AddressSpace::new().unwrap();
        space.map_fixed(0x10000, 4 * PAGE_SIZE, RW).unwrap();
        // A read of 6 bytes into a fresh 4-page buffer: every page gets its frame for the
        // host call, but the kernel copies into the first only.
        space.begin_transfer();
        let iovecs = space
            .host_iovecs(0x10000, 4 * PAGE_SIZE as usize, true)
            .unwrap();
        assert_eq!(iovecs.len(), 4);
        assert_eq!(space.faults(), 0);
        space.note_transfer(6);
        assert_eq!(space.faults(), 1);
        // A second transfer into the same pages faults none: they have their frames.
        space.begin_transfer();
        space
            .host_iovecs(0x10000, 4 * PAGE_SIZE as usize, true)
            .unwrap();
        space.note_transfer(4 * PAGE_SIZE);
        assert_eq!(space.faults(), 1);
    }

    #[test]
    fn a_host_transfer_stops_at_memory_that_cannot_be_mapped() {
        let mut space = AddressSpace::new().unwrap();
        space.map_fixed(0x10000, 2 * PAGE_SIZE, RW).unwrap();
        // Two pages mapped of the four asked for: a transfer of the two, cut.
        space.begin_transfer();
        let iovecs = space
            .host_iovecs(0x10000, 4 * PAGE_SIZE as usize, true)
            .unwrap();
        assert_eq!(iovecs.len(), 2);
        assert_eq!(space.transfer_asked(), (4 * PAGE_SIZE as usize, true));
        // Nothing mapped at the start, or a range past user memory: EFAULT.
        space.begin_transfer();
        assert_eq!(space.host_iovecs(0x12000, 1, true), Err(Errno::EFAULT));
        space.begin_transfer();
        assert_eq!(
            space.host_iovecs(0x10000, usize::MAX, true),
            Err(Errno::EFAULT)
        );
    }

    #[test]
    fn a_write_fault_the_area_forbids_is_the_programs() {
        let mut parent = AddressSpace::new().unwrap();
        parent
            .map_fixed(0x10000, PAGE_SIZE, Prot(Prot::READ))
            .unwrap();
        parent.read_vec(0x10000, 1).unwrap();
        let mut child = parent.fork(0..0, false).unwrap();
        assert_eq!(
            child.resolve_fault(0x10000, Access::Write),
            Ok(Resolution::Program)
        );
        assert_eq!(
            child.resolve_fault(0x90000, Access::Write),
            Ok(Resolution::Program)
        );
        assert_eq!(child.write(0x10000, b"x"), Err(Errno::EFAULT));
    }

    #[test]
    fn a_shared_page_made_writable_stays_protected_until_written() {
        let mut parent = AddressSpace::new().unwrap();
        parent
            .map_fixed(0x10000, PAGE_SIZE, Prot(Prot::READ))
            .unwrap();
        parent.read_vec(0x10000, 1).unwrap();
        let mut child = parent.fork(0..0, false).unwrap();
        child.protect(0x10000, PAGE_SIZE, RW).unwrap();
        assert!(!writable_in_tables(&child, 0x10000));
        assert_eq!(
            child.resolve_fault(0x10000, Access::Write),
            Ok(Resolution::Resolved)
        );
        assert!(writable_in_tables(&child, 0x10000));
        assert_eq!(child.pages_copied(), 1);
        // The parent's first touch and the child's copy on write, counted for the system.
        assert_eq!((parent.faults(), child.faults()), (2, 2));
    }
}
