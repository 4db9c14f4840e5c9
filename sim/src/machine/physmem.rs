//! Guest physical RAM: one host mapping handed to Unicorn, carved into 4 KiB frames.
//!
//! Once guest paging is on, Unicorn addresses memory physically, and it reports 40 physical
//! address bits, so frames come from an allocator below 2^40 rather than mirroring user
//! addresses (DESIGN.md, "Build real x86-64 page tables").

use std::ptr::NonNull;

pub const PAGE_SIZE: u64 = 4096;

/// Size of the physical address space offered to the guest. The host mapping is
/// `MAP_NORESERVE`, so only frames the guest touches cost host memory.
pub const PHYS_SIZE: u64 = 32 << 30;

/// A physical frame number.
pub type Frame = u64;

/// Freed code frames held back before they are reused all at once (4 MiB).
const QUARANTINE_LIMIT: usize = 1024;

pub struct PhysMem {
    base: NonNull<u8>,
    next_fresh: Frame,
    /// Freed frames, reused before fresh ones; they are zeroed when handed out again.
    free: Vec<Frame>,
    /// Freed frames that were mapped executable. The CPU may hold translations of them,
    /// which Unicorn keys by physical page, and which must go before such a frame holds
    /// other code. They are reused all at once, with one flush of every translation
    /// (`recycle`), rather than with a flush at each address space dropped: a fork and
    /// exec loop frees code frames at every exec and every reap.
    quarantine: Vec<Frame>,
    /// A quarantined frame was handed out (fresh frames ran out): translations must go.
    flush_needed: bool,
    /// For each frame, how many address spaces map it beyond the first. Indexed rather
    /// than hashed: a fork adds a user to every frame of the parent's, and a hash map's
    /// SipHash was 18 % of a run of forks (perf). Zeroed by the host until touched.
    extra_users: Box<[u32]>,
}

#[derive(Debug, thiserror::Error)]
pub enum PhysMemError {
    /// the host refused to reserve the guest's physical memory
    #[error("cannot reserve {PHYS_SIZE} bytes of guest physical memory: {0}")]
    Reserve(std::io::Error),
}

impl PhysMem {
    pub fn new() -> Result<Self, PhysMemError> {
        // SAFETY: an anonymous private mapping with no fixed address has no preconditions.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                PHYS_SIZE as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(PhysMemError::Reserve(std::io::Error::last_os_error()));
        }
        Ok(Self {
            base: NonNull::new(ptr.cast()).expect("mmap returned null"),
            // Frame 0 stays unused so that a zero entry never names a real frame.
            next_fresh: 1,
            free: Vec::new(),
            quarantine: Vec::new(),
            flush_needed: false,
            extra_users: vec![0; (PHYS_SIZE / PAGE_SIZE) as usize].into_boxed_slice(),
        })
    }

    /// The host address of physical address 0, for `Unicorn::mem_map_ptr`.
    pub fn host_base(&self) -> *mut u8 {
        self.base.as_ptr()
    }

    /// A zeroed frame, or `None` when guest physical memory is exhausted.
    pub fn alloc(&mut self) -> Option<Frame> {
        if self.free.is_empty() && self.next_fresh >= PHYS_SIZE / PAGE_SIZE {
            self.free = std::mem::take(&mut self.quarantine);
            self.flush_needed |= !self.free.is_empty();
        }
        if let Some(frame) = self.free.pop() {
            // Only a frame that was written needs zeroing: writing an untouched one would
            // make the host back it, and a guest that maps, unmaps and maps gigabytes again
            // would then cost that much host memory (found by sim/tests/syscall_fuzz.rs).
            // Word by word, and a chunk at a time, which the compiler turns into vector ORs:
            // a byte loop here was most of a fork+exec's time, and a word loop 10 % of it
            // at ring 0 (perf).
            let bytes = self.frame_mut(frame);
            // SAFETY: any bytes are valid u64s; frames are page-aligned, so all are words.
            let (_, words, _) = unsafe { bytes.align_to::<u64>() };
            let written = words
                .chunks(64)
                .any(|chunk| chunk.iter().fold(0, |any, &word| any | word) != 0);
            if written {
                bytes.fill(0);
            }
            return Some(frame);
        }
        if self.next_fresh >= PHYS_SIZE / PAGE_SIZE {
            return None;
        }
        // Fresh frames of an anonymous mapping are already zero.
        self.next_fresh += 1;
        Some(self.next_fresh - 1)
    }

    /// Frames that `alloc` can still hand out.
    pub fn available(&self) -> u64 {
        PHYS_SIZE / PAGE_SIZE - self.next_fresh + (self.free.len() + self.quarantine.len()) as u64
    }

    /// Drops a user of `frame`; the last one's drop frees it. `executable`: it was mapped
    /// so, and the CPU may have translated code from it.
    pub fn free(&mut self, frame: Frame, executable: bool) {
        let extra = &mut self.extra_users[frame as usize];
        if *extra > 0 {
            *extra -= 1;
        } else if executable {
            self.quarantine.push(frame);
        } else {
            self.free.push(frame);
        }
    }

    /// `frame` gains a user: another address space maps it too.
    pub fn share(&mut self, frame: Frame) {
        self.extra_users[frame as usize] += 1;
    }

    /// Whether more than one address space maps `frame`.
    pub fn is_shared(&self, frame: Frame) -> bool {
        self.extra_users[frame as usize] > 0
    }

    /// Whether the CPU must drop its translations now: quarantined frames were handed out,
    /// or enough wait that they are put back into use, which this call does.
    pub fn recycle(&mut self) -> bool {
        if self.quarantine.len() >= QUARANTINE_LIMIT {
            self.free.append(&mut self.quarantine);
            self.flush_needed = true;
        }
        std::mem::take(&mut self.flush_needed)
    }

    /// The CPU dropped every translation: no quarantined frame holds any now.
    pub fn translations_flushed(&mut self) {
        self.free.append(&mut self.quarantine);
    }

    pub fn frame(&self, frame: Frame) -> &[u8] {
        assert!(frame < PHYS_SIZE / PAGE_SIZE);
        // SAFETY: the frame lies inside the live mapping, checked above.
        unsafe {
            std::slice::from_raw_parts(
                self.base.as_ptr().add((frame * PAGE_SIZE) as usize),
                PAGE_SIZE as usize,
            )
        }
    }

    pub fn frame_mut(&mut self, frame: Frame) -> &mut [u8] {
        assert!(frame < PHYS_SIZE / PAGE_SIZE);
        // SAFETY: the frame lies inside the live mapping, checked above, and `&mut self`
        // guarantees no other Rust reference into it exists.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.base.as_ptr().add((frame * PAGE_SIZE) as usize),
                PAGE_SIZE as usize,
            )
        }
    }

    /// Copies frame `from` into frame `to`.
    pub fn copy_frame(&mut self, from: Frame, to: Frame) {
        assert!(from != to && from.max(to) < PHYS_SIZE / PAGE_SIZE);
        // SAFETY: two distinct frames inside the live mapping, checked above; `&mut self`
        // guarantees no Rust reference into either exists.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.base.as_ptr().add((from * PAGE_SIZE) as usize),
                self.base.as_ptr().add((to * PAGE_SIZE) as usize),
                PAGE_SIZE as usize,
            );
        }
    }

    pub fn read_u64(&self, phys: u64) -> u64 {
        let off = (phys % PAGE_SIZE) as usize;
        u64::from_le_bytes(
            self.frame(phys / PAGE_SIZE)[off..off + 8]
                .try_into()
                .unwrap(),
        )
    }

    pub fn write_u64(&mut self, phys: u64, value: u64) {
        let off = (phys % PAGE_SIZE) as usize;
        self.frame_mut(phys / PAGE_SIZE)[off..off + 8].copy_from_slice(&value.to_le_bytes());
    }
}

impl Drop for PhysMem {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`; Unicorn, which also points into
        // it, is closed before the machine drops its memory.
        unsafe { libc::munmap(self.base.as_ptr().cast(), PHYS_SIZE as usize) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many of `frames` the host backs with a page of their own: written pages are
    /// mapped exclusively, unwritten ones not at all or to the shared zero page
    /// (/proc/self/pagemap bit 56, readable without privileges).
    fn backed(phys: &PhysMem, frames: &[Frame]) -> usize {
        use std::os::unix::fs::FileExt;
        let pagemap = std::fs::File::open("/proc/self/pagemap").unwrap();
        let base = phys.host_base() as u64;
        frames
            .iter()
            .filter(|&&frame| {
                let mut entry = [0u8; 8];
                let page = (base + frame * PAGE_SIZE) / PAGE_SIZE;
                pagemap.read_exact_at(&mut entry, page * 8).unwrap();
                u64::from_le_bytes(entry) & (1 << 56) != 0
            })
            .count()
    }

    #[test]
    fn reused_frames_are_zeroed_and_only_written_ones_are_backed() {
        let mut phys = PhysMem::new().unwrap();
        let frames: Vec<Frame> = (0..1024).map(|_| phys.alloc().unwrap()).collect();
        phys.frame_mut(frames[7])[100] = 1;
        for &frame in &frames {
            phys.free(frame, false);
        }
        let again: Vec<Frame> = (0..1024).map(|_| phys.alloc().unwrap()).collect();
        assert!(again.contains(&frames[7]));
        assert!(phys.frame(frames[7]).iter().all(|&b| b == 0));
        assert_eq!(backed(&phys, &again), 1, "only the written frame is backed");
    }

    #[test]
    fn code_frames_wait_in_quarantine_until_a_flush_recycles_them() {
        let mut phys = PhysMem::new().unwrap();
        let code = phys.alloc().unwrap();
        phys.free(code, true);
        assert_ne!(
            phys.alloc(),
            Some(code),
            "a fresh frame rather than old code"
        );
        assert!(!phys.recycle());
        for _ in 0..QUARANTINE_LIMIT {
            let frame = phys.alloc().unwrap();
            phys.free(frame, true);
        }
        assert!(phys.recycle(), "the translations must go now");
        let again: Vec<Frame> = (0..=QUARANTINE_LIMIT)
            .map(|_| phys.alloc().unwrap())
            .collect();
        assert!(again.contains(&code));
    }

    #[test]
    fn a_shared_frame_is_freed_by_its_last_user() {
        let mut phys = PhysMem::new().unwrap();
        let frame = phys.alloc().unwrap();
        phys.share(frame);
        phys.free(frame, false);
        assert!(!phys.is_shared(frame));
        assert_ne!(phys.alloc(), Some(frame));
        phys.free(frame, false);
        assert_eq!(phys.alloc(), Some(frame));
    }
}
