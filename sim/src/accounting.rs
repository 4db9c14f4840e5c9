//! Counting what the guest does: instructions per block (never per instruction), syscalls
//! by number and kind, and bytes copied. The cost model turns the counts into cycles.

use std::cell::Cell;
use std::collections::BTreeMap;

use iced_x86::{Decoder, DecoderOptions, FlowControl, Instruction, Mnemonic};
use translator::cpu::LACKING;
use translator::Source;

use crate::costs::work::{WorkClass, WorkCounts};
use crate::costs::{to_units, Ring0Events};
use crate::kernel::signature;
use crate::memory::AddressSpace;

mod predictor;

pub use predictor::Predictor;

/// Event counts of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counts {
    pub guest_instructions: u64,
    /// Their price under the model's microarchitecture, syscalls' own `syscall` left out
    /// (the crossing is its price), in `costs::CYCLE_UNITS`; 0 under `cpi`.
    pub guest_cycle_units: u64,
    /// Syscalls: each a ring crossing, charged the ABI-call column.
    pub abi_calls: u64,
    /// Switches of the CPU between threads of one process, and between processes.
    pub thread_switches: u64,
    pub process_switches: u64,
    /// Process creations in their three steps: forks (and vforks and process clones),
    /// execs, and children reaped.
    pub forks: u64,
    /// The pages whose page-table entries the forks copied.
    pub fork_pages: u64,
    /// The areas the forks copied beyond the Create Proc figure's parent's.
    pub fork_areas: u64,
    pub execs: u64,
    pub reaps: u64,
    /// Pages copied on write after forks: each is a page fault, priced as `page_fault`.
    pub pages_copied_on_write: u64,
    /// The guest's conditional branches that `Predictor` mispredicted, each priced at the
    /// microarchitecture's penalty. Under `cpi` no branch is run through the predictor.
    pub branch_mispredictions: u64,
    /// Syscalls and the bytes they moved, by kernel-work class. Bytes the kernel copies
    /// outside a syscall (signal frames) count as `Other`'s.
    pub work: WorkCounts,
    /// Syscalls by number.
    pub by_number: BTreeMap<u64, u64>,
    /// Unsupported syscalls answered with ENOSYS (`--on-unsupported-syscall enosys`), by number.
    pub enosys: BTreeMap<u64, u64>,
    /// What the kernel lacks and answered with Linux's errno, by what and errno.
    pub lacking: BTreeMap<String, u64>,
    /// FNV-1a over every syscall as the oracle compares it (normalized by its signature:
    /// pointers as NULL or not, pids and uids as ids, clock readings as success), in order:
    /// two runs with the same digest made the same syscalls in the same order, and the
    /// digest does not depend on the host user or the host's addresses.
    pub sequence_digest: u64,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

impl Default for Counts {
    fn default() -> Self {
        Self {
            guest_instructions: 0,
            guest_cycle_units: 0,
            abi_calls: 0,
            thread_switches: 0,
            process_switches: 0,
            forks: 0,
            fork_pages: 0,
            fork_areas: 0,
            execs: 0,
            reaps: 0,
            pages_copied_on_write: 0,
            branch_mispredictions: 0,
            work: WorkCounts::default(),
            by_number: BTreeMap::new(),
            enosys: BTreeMap::new(),
            lacking: BTreeMap::new(),
            sequence_digest: FNV_OFFSET,
        }
    }
}

/// What the cost model prices, as running totals for the whole system. A task's share of
/// the run's estimate is what they grew by while it was the running task: switches and the
/// kernel's work between two tasks go to the one switched to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub guest_instructions: u64,
    pub guest_cycle_units: u64,
    pub abi_calls: u64,
    pub work: WorkCounts,
    pub thread_switches: u64,
    pub process_switches: u64,
    pub forks: u64,
    pub fork_pages: u64,
    pub fork_areas: u64,
    pub execs: u64,
    pub reaps: u64,
    pub branch_mispredictions: u64,
    /// Ring 0 only: what `costs::Ring0Events` names.
    pub translated_instructions: u64,
    pub translated_cycle_units: u64,
    pub call_instructions: u64,
    pub guest_instructions_translated: u64,
    pub indirect_lookups: u64,
}

impl Tally {
    fn zip(self, other: Self, f: fn(u64, u64) -> u64) -> Self {
        Self {
            guest_instructions: f(self.guest_instructions, other.guest_instructions),
            guest_cycle_units: f(self.guest_cycle_units, other.guest_cycle_units),
            abi_calls: f(self.abi_calls, other.abi_calls),
            work: self.work.zip(other.work, f),
            thread_switches: f(self.thread_switches, other.thread_switches),
            process_switches: f(self.process_switches, other.process_switches),
            forks: f(self.forks, other.forks),
            fork_pages: f(self.fork_pages, other.fork_pages),
            fork_areas: f(self.fork_areas, other.fork_areas),
            execs: f(self.execs, other.execs),
            reaps: f(self.reaps, other.reaps),
            branch_mispredictions: f(self.branch_mispredictions, other.branch_mispredictions),
            translated_instructions: f(self.translated_instructions, other.translated_instructions),
            translated_cycle_units: f(self.translated_cycle_units, other.translated_cycle_units),
            call_instructions: f(self.call_instructions, other.call_instructions),
            guest_instructions_translated: f(
                self.guest_instructions_translated,
                other.guest_instructions_translated,
            ),
            indirect_lookups: f(self.indirect_lookups, other.indirect_lookups),
        }
    }

    /// Wrapping, as `since`: a sum of differences comes out right as long as the total
    /// it makes does.
    pub fn plus(self, other: Self) -> Self {
        self.zip(other, u64::wrapping_add)
    }

    /// What grew from the reading `earlier` to this one. Wrapping: a block counted before
    /// a reading may be taken back after it (`System::uncount_from`).
    pub fn since(self, earlier: Self) -> Self {
        self.zip(earlier, u64::wrapping_sub)
    }

    /// The counts the ring-3 estimate reads.
    pub fn counts(&self) -> Counts {
        Counts {
            guest_instructions: self.guest_instructions,
            guest_cycle_units: self.guest_cycle_units,
            abi_calls: self.abi_calls,
            work: self.work,
            thread_switches: self.thread_switches,
            process_switches: self.process_switches,
            forks: self.forks,
            fork_pages: self.fork_pages,
            fork_areas: self.fork_areas,
            execs: self.execs,
            reaps: self.reaps,
            branch_mispredictions: self.branch_mispredictions,
            ..Counts::default()
        }
    }

    /// The events the ring-0 estimate reads beyond the counts.
    pub fn ring0_events(&self) -> Ring0Events {
        Ring0Events {
            translated_instructions: self.translated_instructions,
            translated_cycle_units: self.translated_cycle_units,
            call_instructions: self.call_instructions,
            guest_instructions_translated: self.guest_instructions_translated,
            indirect_lookups: self.indirect_lookups,
        }
    }
}

impl Counts {
    pub fn syscalls(&self) -> u64 {
        self.abi_calls
    }

    /// Bytes moved between user memory and the kernel.
    pub fn bytes_copied(&self) -> u64 {
        self.work.bytes_copied()
    }

    /// Adds one syscall, its arguments and its result, normalized, to the sequence digest:
    /// as values in a fixed encoding, not as text (formatting cost 590 instructions a
    /// syscall).
    pub fn record_sequence(&mut self, nr: u64, args: &[u64; 6], ret: u64) {
        let mut fnv = Fnv(self.sequence_digest);
        fnv.word(nr);
        // A syscall the table lacks (answered with ENOSYS): its result only, since the kinds
        // of its arguments are unknown.
        if !signature::encode(nr, args, ret, |word| fnv.word(word)) {
            fnv.word(ret);
        }
        self.sequence_digest = fnv.0;
    }

    /// Records a call answered for what the kernel lacks.
    pub fn record_lacking(&mut self, what: &str) {
        *self.lacking.entry(what.to_string()).or_default() += 1;
    }

    /// Records syscall `nr` of kernel-work `class`; `enosys` says it was unsupported and
    /// answered with ENOSYS.
    pub fn record_syscall(&mut self, nr: u64, class: WorkClass, enosys: bool) {
        self.abi_calls += 1;
        self.work.add_call(class);
        *self.by_number.entry(nr).or_default() += 1;
        if enosys {
            *self.enosys.entry(nr).or_default() += 1;
        }
    }
}

/// FNV-1a taken a word at a time: the same on every machine (the standard library's hasher
/// is seeded per process), and a few instructions a word.
struct Fnv(u64);

impl Fnv {
    fn word(&mut self, word: u64) {
        self.0 = (self.0 ^ word).wrapping_mul(FNV_PRIME);
    }
}

/// One syscall as the program made it: number, arguments and result (a negated errno
/// on failure), as `strace` would show them raw.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SyscallRecord {
    /// The task that made it.
    #[serde(default)]
    pub tid: u64,
    pub nr: u64,
    pub args: [u64; 6],
    pub ret: u64,
    /// It opened a file that describes the machine (`kernel::machine_files`): what reads
    /// of it get is the simulated machine's, not the host's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub machine_file: bool,
}

/// The running cycle count, shared with the RDTSC hook so the guest's TSC is virtual.
#[derive(Debug)]
pub struct Clock {
    instructions: Cell<u64>,
    /// Cycles of everything but user instructions (crossings, kernel work), so far.
    event_cycles: Cell<u64>,
    /// The last value RDTSC returned.
    last_tsc: Cell<u64>,
    cpi: f64,
}

impl Clock {
    pub fn new(cpi: f64) -> Self {
        Self {
            instructions: Cell::new(0),
            event_cycles: Cell::new(0),
            last_tsc: Cell::new(0),
            cpi,
        }
    }

    /// The instruction count is now `n` (per block: the caller adds without an overflow
    /// check, see `System::enter_block`).
    pub fn set_instructions(&self, n: u64) {
        self.instructions.set(n);
    }

    /// Takes back instructions counted for a block that did not run to its end.
    pub fn remove_instructions(&self, n: u64) {
        self.instructions.set(self.instructions.get() - n);
    }

    pub fn instructions(&self) -> u64 {
        self.instructions.get()
    }

    /// Where the instruction count lives, for code that counts inline (`System::inline_counting`).
    pub fn instructions_ptr(&self) -> *mut u64 {
        self.instructions.as_ptr()
    }

    pub fn set_event_cycles(&self, cycles: u64) {
        self.event_cycles.set(cycles);
    }

    /// Cycles so far.
    pub fn cycles(&self) -> u64 {
        self.cycles_at(self.instructions.get())
    }

    /// The cycles when `instructions` guest instructions have run, if nothing else happens.
    pub fn cycles_at(&self, instructions: u64) -> u64 {
        ((instructions as f64 * self.cpi).round() as u64).saturating_add(self.event_cycles.get())
    }

    /// What the guest's RDTSC reads: the cycles so far, made strictly increasing, since a
    /// block's instructions are counted when it starts and two reads in one block would
    /// otherwise be equal (a program waiting for the TSC to move would never end).
    pub fn read_tsc(&self) -> u64 {
        let tsc = self.cycles().max(self.last_tsc.get() + 1);
        self.last_tsc.set(tsc);
        tsc
    }
}

/// By source, how many more instructions translated code executes than the guest
/// instructions it stands for (negative for a piece of a block whose guest instructions'
/// translations go on past it). 16 bits each: QEMU ends a block at 512 instructions.
pub type Extra = [i16; Source::ALL.len()];

/// A slice of `len` all-zero values, from zeroed memory.
fn zeroed_slice<T: Zeroable>(len: usize) -> Box<[T]> {
    // SAFETY: `Zeroable` types are valid with every byte zero.
    unsafe { Box::new_zeroed_slice(len).assume_init() }
}

/// Types whose all-zero bit pattern is their default value.
///
/// # Safety
/// Implement only for types made of integers and bools, whose zero is valid.
unsafe trait Zeroable: Default {}
// SAFETY: integers and a bool.
unsafe impl Zeroable for Slot {}
// SAFETY: an array of integers.
unsafe impl Zeroable for Extra {}
// SAFETY: integers.
unsafe impl Zeroable for Price {}

/// A block's cached facts, in a direct-mapped slot.
#[derive(Clone, Copy, Default)]
struct Slot {
    addr: u64,
    size: u32,
    instructions: u32,
    /// Guest instructions it stands for: the same as `instructions` for guest code run
    /// as is, fewer for translated code.
    guest: u32,
    repeat: bool,
    conditional: bool,
}

/// A block's price and its guest code's, in `costs::CYCLE_UNITS`, kept beside the slots.
#[derive(Clone, Copy, Default)]
struct Price {
    cycle_units: u32,
    guest_cycle_units: u32,
}

/// What the caller makes of a freshly decoded block.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Accounted {
    /// Guest instructions it stands for, and the extra instructions by source.
    pub guest: u32,
    pub extra: Extra,
    /// Its price and that of the guest instructions it stands for, under the model's
    /// microarchitecture, in `costs::CYCLE_UNITS` (0 under `cpi`).
    pub cycle_units: u32,
    pub guest_cycle_units: u32,
    /// It ends in one of the guest's conditional branches, and a microarchitecture prices
    /// their mispredictions: the block run next says which way it went.
    pub conditional: bool,
}

impl Accounted {
    /// Guest code run as is: every instruction its own.
    pub fn untranslated(
        instructions: &[Instruction],
        core: Option<&uarch::Microarchitecture>,
    ) -> Self {
        let price = core.map_or(0, |core| price_without_syscalls(instructions, core));
        Self {
            guest: instructions.len() as u32,
            extra: Extra::default(),
            cycle_units: price,
            guest_cycle_units: price,
            conditional: core.is_some() && ends_in_conditional_branch(instructions),
        }
    }
}

/// Whether a block's last instruction is a conditional branch (a jcc, jrcxz or a loop).
pub fn ends_in_conditional_branch(instructions: &[Instruction]) -> bool {
    instructions
        .last()
        .is_some_and(|last| last.flow_control() == FlowControl::ConditionalBranch)
}

/// The price of instructions on `core`, in `costs::CYCLE_UNITS`, every `syscall` left out:
/// a guest's is priced as its crossing, the runtime's hypercalls as what they stand for
/// (LLVM's Zen 3 model has `syscall` at 100 cycles, a microcode guess).
pub fn price_without_syscalls(
    instructions: &[Instruction],
    core: &uarch::Microarchitecture,
) -> u32 {
    let priced: Vec<Instruction> = instructions
        .iter()
        .filter(|i| i.mnemonic() != Mnemonic::Syscall)
        .copied()
        .collect();
    if priced.is_empty() {
        return 0;
    }
    to_units(core.price_block(&priced).cycles)
}

/// What running one emulator block executes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockCount {
    pub instructions: u32,
    pub guest: u32,
    pub extra: Extra,
    pub cycle_units: u32,
    pub guest_cycle_units: u32,
    /// The block is one rep-prefixed string instruction. QEMU runs each further iteration of
    /// such an instruction as a block of its own, which must not count again: the CPU
    /// retires a rep instruction once, however many times it repeats.
    pub repeat: bool,
    pub conditional: bool,
    /// Decoded now rather than found in the cache: `BlockCounter::unusual` then says more.
    pub fresh: bool,
}

impl BlockCount {
    /// Counts nothing: a further iteration of a rep instruction (see `repeat`).
    pub fn uncount(&mut self) {
        self.instructions = 0;
        self.guest = 0;
        self.extra = Extra::default();
        self.cycle_units = 0;
        self.guest_cycle_units = 0;
    }
}

/// What only a freshly decoded block can be (cached blocks are neither).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Unusual {
    /// The address of the block's first instruction that the CPU model lacks, if any.
    pub lacking: Option<u64>,
    /// The block lies in writable code, where it may change with no syscall to say so.
    pub volatile: bool,
}

/// A block, decoded: its instructions, whether it is one rep-prefixed string instruction,
/// and the first instruction the CPU model lacks.
struct Decoded {
    instructions: Vec<Instruction>,
    repeat: bool,
    lacking: Option<u64>,
}

/// Slots in the direct-mapped cache (1.5 MiB, and 512 KiB of prices under a microarchitecture). A hash map probe per block took 40 % of
/// the run time of `busybox sha256sum` (perf, this machine); one indexed load does not.
const SLOTS: usize = 1 << 16;

/// Instruction counts of Unicorn's blocks, decoded once with iced-x86 and cached.
pub struct BlockCounter {
    slots: Box<[Slot]>,
    /// Each slot's extra instructions, kept beside the slots and only for translated code:
    /// untranslated code has none, and its per-block path stays as small as it was.
    extras: Box<[Extra]>,
    /// Each slot's prices, likewise only when a microarchitecture prices blocks.
    prices: Box<[Price]>,
    /// What the last freshly decoded block is, off the per-block path.
    unusual: Unusual,
}

impl BlockCounter {
    /// A counter for translated code (which has extra instructions) or for guest code,
    /// keeping blocks' prices if `priced`. Every process has one; its memory is zeroed
    /// lazily by the host (calloc), so a fork pays for the slots its blocks use, not for
    /// 1.5 MiB.
    pub fn new(translated: bool, priced: bool) -> Self {
        Self {
            slots: zeroed_slice(SLOTS),
            extras: zeroed_slice(if translated { SLOTS } else { 0 }),
            prices: zeroed_slice(if priced { SLOTS } else { 0 }),
            unusual: Unusual::default(),
        }
    }

    fn slot(addr: u64) -> usize {
        ((addr ^ (addr >> 16)) as usize) & (SLOTS - 1)
    }

    /// The instructions in the `size`-byte block at `addr`, and what `account` makes of
    /// them when they are decoded afresh: the guest instructions they stand for, the extra
    /// ones, their prices.
    #[inline]
    pub fn count(
        &mut self,
        addr: u64,
        size: u32,
        mem: &AddressSpace,
        account: impl FnOnce(&[Instruction]) -> Accounted,
    ) -> BlockCount {
        let index = Self::slot(addr);
        let slot = &mut self.slots[index];
        if slot.addr == addr && slot.size == size {
            let price = self.prices.get(index).copied().unwrap_or_default();
            return BlockCount {
                instructions: slot.instructions,
                guest: slot.guest,
                extra: self.extras.get(index).copied().unwrap_or_default(),
                cycle_units: price.cycle_units,
                guest_cycle_units: price.guest_cycle_units,
                repeat: slot.repeat,
                conditional: slot.conditional,
                fresh: false,
            };
        }
        let decoded = Self::decode(addr, size, mem);
        let Accounted {
            guest,
            extra,
            cycle_units,
            guest_cycle_units,
            conditional,
        } = account(&decoded.instructions);
        let (instructions, repeat, lacking) = (
            decoded.instructions.len() as u32,
            decoded.repeat,
            decoded.lacking,
        );
        // Code in a writable and executable page may change with no syscall to say so:
        // it is not cached, and is decoded afresh each time; nor is a block that stops at
        // an instruction the CPU lacks (it runs once).
        let volatile = mem.is_writable_code(addr) || mem.is_writable_code(addr + size as u64 - 1);
        if !volatile && lacking.is_none() {
            *slot = Slot {
                addr,
                size,
                instructions,
                guest,
                repeat,
                conditional,
            };
            if let Some(cached) = self.extras.get_mut(index) {
                *cached = extra;
            }
            if let Some(cached) = self.prices.get_mut(index) {
                *cached = Price {
                    cycle_units,
                    guest_cycle_units,
                };
            }
        }
        self.unusual = Unusual { lacking, volatile };
        BlockCount {
            instructions,
            guest,
            extra,
            cycle_units,
            guest_cycle_units,
            repeat,
            conditional,
            fresh: true,
        }
    }

    /// What a block holds, decoded.
    fn decode(addr: u64, size: u32, mem: &AddressSpace) -> Decoded {
        let mut decoded = Decoded {
            instructions: Vec::new(),
            repeat: false,
            lacking: None,
        };
        let mut bytes = vec![0u8; size as usize];
        if mem.peek(addr, &mut bytes).is_err() {
            return decoded;
        }
        let mut decoder = Decoder::with_ip(64, &bytes, addr, DecoderOptions::NONE);
        let mut repeat = false;
        while decoder.can_decode() {
            let instruction = decoder.decode();
            repeat = decoded.instructions.is_empty()
                && instruction.is_string_instruction()
                && (instruction.has_rep_prefix() || instruction.has_repne_prefix());
            if decoded.lacking.is_none() && LACKING.contains(&instruction.mnemonic()) {
                decoded.lacking = Some(instruction.ip());
            }
            decoded.instructions.push(instruction);
        }
        decoded.repeat = repeat && decoded.instructions.len() == 1;
        decoded
    }

    /// Instructions of the block at `block` (of `size` bytes) that lie before `rip`, for
    /// a fault mid-block.
    pub fn executed_before(block: u64, size: u32, rip: u64, mem: &AddressSpace) -> Option<u32> {
        if rip < block || rip >= block + size as u64 {
            return None;
        }
        Some(
            Self::decode(block, (rip - block) as u32, mem)
                .instructions
                .len() as u32,
        )
    }

    /// The length of the instruction at `addr` if it is a rep-prefixed string instruction.
    /// A fault stops one between iterations, and it goes on with the next.
    pub fn repeated_string_length(addr: u64, mem: &AddressSpace) -> Option<u64> {
        let mut bytes = [0u8; 15];
        let fetched = (1..=bytes.len())
            .rev()
            .find(|&n| mem.peek(addr, &mut bytes[..n]).is_ok())?;
        let instruction =
            Decoder::with_ip(64, &bytes[..fetched], addr, DecoderOptions::NONE).decode();
        (instruction.is_string_instruction()
            && (instruction.has_rep_prefix() || instruction.has_repne_prefix()))
        .then_some(instruction.len() as u64)
    }

    /// What the block `count` last returned with `fresh` is.
    pub fn unusual(&self) -> Unusual {
        self.unusual
    }

    /// Whether the instruction at `addr` goes on to the next one, so a block would not end
    /// with it: not a branch, not a repeated string instruction.
    pub fn runs_on(addr: u64, mem: &AddressSpace) -> bool {
        let instruction = mem.instruction_at(addr);
        instruction.flow_control() == FlowControl::Next
            && !(instruction.is_string_instruction()
                && (instruction.has_rep_prefix() || instruction.has_repne_prefix()))
    }

    /// Forgets blocks that start in `page`: its code changed.
    pub fn forget_page(&mut self, page: u64) {
        for slot in self.slots.iter_mut().filter(|s| s.addr & !0xfff == page) {
            *slot = Slot::default();
        }
    }

    /// Forgets every block.
    pub fn forget_all(&mut self) {
        self.slots.fill(Slot::default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use syscalls::x86_64::Sysno;

    fn digest(calls: &[(Sysno, [u64; 6], u64)]) -> u64 {
        let mut counts = Counts::default();
        for (sysno, args, ret) in calls {
            counts.record_sequence(sysno.id() as u64, args, *ret);
        }
        counts.sequence_digest
    }

    #[test]
    fn the_digest_does_not_depend_on_the_host_user_or_addresses() {
        let as_root = [
            (Sysno::getuid, [0; 6], 0),
            (Sysno::setgid, [0, 7, 7, 7, 7, 7], 0),
            (Sysno::read, [0, 0x7fff_0000, 10, 0, 0, 0], 10),
        ];
        let as_user = [
            (Sysno::getuid, [9; 6], 1000),
            (Sysno::setgid, [1000, 0, 0, 0, 0, 0], 0),
            (Sysno::read, [0, 0x4c_0000, 10, 0, 0, 0], 10),
        ];
        assert_eq!(digest(&as_root), digest(&as_user));
    }

    #[test]
    fn a_guest_block_is_priced_without_its_syscall() {
        let core = uarch::by_name("znver3").unwrap();
        let decode = |bytes: &[u8]| -> Vec<Instruction> {
            Decoder::new(64, bytes, DecoderOptions::NONE)
                .into_iter()
                .collect()
        };
        // imul rax, rax twice: znver3's table has each on its one multiplier port (Zn3ALU1)
        // for a cycle at a latency of 3, and each reads the other's RAX, from one
        // execution into the next too: the chain's 6 cycles bound the block, not the
        // port's 2 (uarch::PRICE is the larger of the throughput bound and the recurrence).
        let chain = decode(b"\x48\x0f\xaf\xc0\x48\x0f\xaf\xc0");
        assert_eq!(price_without_syscalls(&chain, core), 6 * 256);
        // The same with a syscall after it: the crossing is the syscall's price.
        let with_syscall = decode(b"\x48\x0f\xaf\xc0\x48\x0f\xaf\xc0\x0f\x05");
        assert_eq!(price_without_syscalls(&with_syscall, core), 6 * 256);
        assert_eq!(price_without_syscalls(&decode(b"\x0f\x05"), core), 0);
        let untranslated = Accounted::untranslated(&with_syscall, Some(core));
        assert_eq!(untranslated.guest, 3);
        assert_eq!(untranslated.cycle_units, untranslated.guest_cycle_units);
        assert_eq!(Accounted::untranslated(&chain, None).cycle_units, 0);
    }

    #[test]
    fn the_digest_tells_calls_and_results_apart() {
        let eperm = (-(libc::EPERM as i64)) as u64;
        let base = [(Sysno::setuid, [0; 6], 0)];
        for other in [
            [(Sysno::setuid, [0; 6], eperm)],
            [(Sysno::setgid, [0; 6], 0)],
            [(Sysno::setuid, [u32::MAX as u64, 0, 0, 0, 0, 0], 0)],
        ] {
            assert_ne!(digest(&base), digest(&other), "{other:?}");
        }
        // A syscall the table lacks still counts, by number and result.
        let unknown = |ret| [(Sysno::io_uring_setup, [1; 6], ret)];
        assert_ne!(digest(&unknown(0)), digest(&unknown(eperm)));
        assert_ne!(digest(&unknown(0)), digest(&[]));
    }
}
