//! The simulated system: the kernel with its processes and tasks, the CPU-side state of the
//! ring-0 runtime, the counts under a cost model, and how the run ended. The machine calls in
//! on each syscall, hypercall and fault; nothing here calls Unicorn (it keeps only the ids of
//! the machine's code-watch hooks).

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use nix::sys::signal::Signal;
use translator::cpu::Sysenter;
use translator::runtime::fault;
use translator::{Source, TranslateError, FAULT_KINDS};
use unicorn_engine::{uc_inline_block, uc_inline_counting, UcHookId};

use crate::accounting::{
    ends_in_conditional_branch, Accounted, BlockCount, BlockCounter, Clock, Counts, Extra,
    Predictor, SyscallRecord, Tally,
};
use crate::bt::cache::{CacheError, CacheSync, CodeCache, TranslationStats};
use crate::bt::layout::{self, Hypercall, NEXT, RUNTIME};
use crate::costs::work::{ClassCount, WorkClass, WorkCounts};
use crate::costs::CostModel;
use crate::kernel::process::Pid;
use crate::kernel::sigframe::SIG_IGN;
use crate::kernel::task::{Parked, Wake};
use crate::kernel::{Args, Dispatched, Exit, Kernel, Unsupported};
use crate::machine::faults::{
    self, FaultFrame, BOUND_RANGE, BREAKPOINT, GENERAL_PROTECTION, INVALID_OPCODE, PAGE_FAULT,
};
use crate::machine::physmem::PAGE_SIZE;
use crate::memory::{Access, Resolution};

/// How the program runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Untranslated, at a real ring 3; every syscall is a ring crossing.
    Ring3,
    /// Translated, at ring 0 in the kernel half; syscalls are direct calls.
    Ring0,
}

/// Why the run stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    Exit(Exit),
    Unsupported(Unsupported),
    /// `--max-instructions` was reached.
    InstructionLimit,
    /// Every task waits for something that no task can do: what each waits for.
    Deadlock(String),
}

/// A place the machine runs up to (Unicorn's `until`), and what happens there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunUntil {
    /// An instruction the CPU model lacks, in a block about to run: #UD there.
    Lacking(u64),
    /// The next guest instruction's translation in a block a store of its own dropped: go
    /// on from the guest instruction's new translation, through the dispatcher.
    Redispatch { at: u64, guest: u64 },
    /// Where the running task's quantum ends or a timer is due, inside a block: the task
    /// stops there (`System::reach_stop`).
    Preempt(u64),
}

impl RunUntil {
    pub fn address(self) -> u64 {
        match self {
            RunUntil::Lacking(at) | RunUntil::Redispatch { at, .. } | RunUntil::Preempt(at) => at,
        }
    }
}

/// What only a translated run has to report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ring0Counts {
    /// Instructions the CPU executed in the code cache and the runtime's stubs.
    pub translated_instructions: u64,
    /// Their price under the model's microarchitecture, the syscalls' own instructions left
    /// out, in `costs::CYCLE_UNITS`.
    pub translated_cycle_units: u64,
    /// By source, how many more instructions than the guest's those were.
    pub extra_by_source: [i64; Source::ALL.len()],
    pub stats: TranslationStats,
    /// Guest accesses the sandbox stopped (they end the process as at ring 3).
    pub sandbox_stops: u64,
    /// Guest accesses that reached the kernel half: must be 0.
    pub kernel_half_accesses: u64,
}

impl Ring0Counts {
    /// The translated instructions of `calls` syscalls' own sequences: each guest `syscall`
    /// (one guest instruction of the Syscall source) and what its translation and the
    /// kernel entry add.
    pub fn call_instructions(&self, calls: u64) -> u64 {
        let extra = self.extra_by_source[Source::Syscall as usize];
        calls.wrapping_add(extra as u64)
    }
}

/// The record of a finished run.
#[derive(Debug)]
pub struct Finished {
    pub stop: Stop,
    pub counts: Counts,
    pub ring0: Option<Ring0Counts>,
    /// The code cache disassembled, when asked for (`dump_translation`).
    pub translation_dump: Option<String>,
    /// Every syscall in order, when asked for (`syscall_trace`).
    pub syscall_trace: Option<Vec<SyscallRecord>>,
    /// Every process the run made, in pid order.
    pub processes: Vec<crate::kernel::history::ProcessLog>,
}

/// What the machine does after a syscall or hypercall.
pub enum Flow {
    /// Return this value in RAX and go on.
    Return(u64),
    /// Go on, once the CPU caught up with the code cache.
    Continue(CacheSync),
    /// Stop the engine: the run ends (`System::stop` says why) or another task runs.
    Stop,
    /// Return this value in RAX, if any (none: the call was parked), and stop the engine:
    /// the running task gives up the CPU, or tasks were made that need CPU state.
    Reschedule(Option<u64>),
}

/// How the running block was counted, in `System::inline_current`: by `enter_block`
/// (`current_block` holds it), by itself, or not at all (a further iteration of a rep
/// instruction).
const COUNTED_BY_HOOK: u64 = 0;
const COUNTED_INLINE: u64 = 1;
const COUNTED_AS_REPEAT: u64 = 2;

/// The counters a block counting itself adds to, by their index in
/// `uc_inline_counting::totals` and `uc_inline_block::totals`.
const GUEST_CYCLE_UNITS: usize = 0;
const TRANSLATED_INSTRUCTIONS: usize = 1;
const TRANSLATED_CYCLE_UNITS: usize = 2;
const INDIRECT_LOOKUPS: usize = 3;
const INDIRECT_HITS: usize = 4;
/// The first of `Source::ALL.len()`.
const EXTRA_BY_SOURCE: usize = 5;
/// Unicorn's `UC_INLINE_TOTALS`.
const INLINE_TOTALS: usize = 12;
const _: () = assert!(EXTRA_BY_SOURCE + Source::ALL.len() <= INLINE_TOTALS);

/// An emulator block and what was counted for it.
#[derive(Clone, Copy, Default)]
struct CurrentBlock {
    addr: u64,
    size: u32,
    instructions: u32,
    guest: u32,
    extra: Extra,
    cycle_units: u32,
    guest_cycle_units: u32,
}

impl CurrentBlock {
    fn new(addr: u64, size: u32, count: &BlockCount) -> Self {
        Self {
            addr,
            size,
            instructions: count.instructions,
            guest: count.guest,
            extra: count.extra,
            cycle_units: count.cycle_units,
            guest_cycle_units: count.guest_cycle_units,
        }
    }
}

pub struct System {
    pub kernel: Kernel,
    pub model: CostModel,
    pub counts: Counts,
    pub clock: Rc<Clock>,
    pub blocks: BlockCounter,
    pub max_instructions: Option<u64>,
    /// The emulator block now running and what was counted for it, when `enter_block`
    /// counted it (see `current_block`).
    current_block: CurrentBlock,
    /// The address of the block now running, and its size with how it was counted
    /// (`COUNTED_BY_HOOK`…) in the upper half, as `enter_block` or the block's generated
    /// code stores them.
    inline_current: [u64; 2],
    /// A block whose instructions would take the instruction count to this or beyond goes
    /// through `enter_block` rather than counting itself (see `regate`).
    gate: u64,
    predictor: Predictor,
    /// The fall-through of the guest conditional branch the running task's last block
    /// ended with, or 0: the block it runs next says which way the branch went.
    pending_branch: u64,
    pub stop: Option<Stop>,
    /// The code cache, in ring-0 mode.
    pub cache: Option<CodeCache>,
    ring0: Ring0Counts,
    /// CPU work waiting for the emulation to stop (see `watched_write`).
    pub resync: Option<CacheSync>,
    /// Where the machine must stop next, and why.
    pub run_until: Option<RunUntil>,
    /// The emulator write hooks on frames of guest code, by frame (physical address).
    pub watch_hooks: HashMap<u64, UcHookId>,
    /// The hooks on the ends of the frames before pages of guest code, by frame, and those
    /// pages.
    pub tail_hooks: HashMap<u64, UcHookId>,
    /// By the frame of the page before them, the watched pages a store there may run into.
    pub tail_pages: BTreeMap<u64, Vec<u64>>,
    /// Whether `finish` disassembles the code cache.
    pub dump_translation: bool,
    /// Every syscall so far, when a trace was asked for.
    pub syscall_trace: Option<Vec<SyscallRecord>>,
    /// A planted bug (tests only): the first syscall panics.
    pub panic_in_syscall_hook: bool,
    /// The running task used up its quantum: the machine switches before the next block.
    pub preempted: bool,
    /// The guest instruction count at which the running task's quantum ends.
    pub quantum_end: u64,
    /// A timer came due, or a signal waits, while the running task ran in user mode: the
    /// machine stops at a guest instruction boundary to fire timers and deliver signals
    /// (`serve_interrupt`), as a timer interrupt does.
    pub interrupted: bool,
    /// A fault of the running task that its handler is to get (`raise`).
    pub fault_frame: Option<FaultFrame>,
    /// The earliest sleep, poll, futex or alarm deadline of any task, as the cycle count
    /// at which the virtual clock reaches it.
    deadline_cycles: Option<f64>,
    /// The guest instruction count at which the clock reaches `deadline_cycles`, if no
    /// syscall intervenes.
    timer_end: u64,
    /// The earlier of `quantum_end` and `timer_end`: what each block is checked against.
    check_at: u64,
    /// The system's tally when the running task was last charged.
    charged_at: Tally,
    /// The kernel's copied-byte total when its bytes were last given a work class.
    copies_attributed: u64,
    /// The block counter and code cache of every address space but the running one.
    spaces: BTreeMap<Pid, Space>,
    /// The translation statistics of code caches dropped with their address space.
    retired_stats: TranslationStats,
}

/// What the CPU side keeps per address space: counts of its blocks and, at ring 0, the
/// code cache of its translations (at the same kernel-half addresses in every one).
struct Space {
    blocks: BlockCounter,
    cache: Option<CodeCache>,
}

impl System {
    pub fn new(
        kernel: Kernel,
        model: CostModel,
        max_instructions: Option<u64>,
        mode: Mode,
    ) -> Self {
        let clock = Rc::new(Clock::new(model.cpi.value));
        let priced = model.instruction_costs.microarchitecture().is_some();
        Self {
            kernel,
            model,
            counts: Counts::default(),
            clock,
            blocks: BlockCounter::new(mode == Mode::Ring0, priced),
            max_instructions,
            current_block: CurrentBlock::default(),
            inline_current: [0, COUNTED_BY_HOOK << 32],
            gate: 0,
            predictor: Predictor::default(),
            pending_branch: 0,
            stop: None,
            cache: (mode == Mode::Ring0).then(CodeCache::new),
            ring0: Ring0Counts::default(),
            resync: None,
            run_until: None,
            watch_hooks: HashMap::new(),
            tail_hooks: HashMap::new(),
            tail_pages: BTreeMap::new(),
            dump_translation: false,
            syscall_trace: None,
            panic_in_syscall_hook: false,
            preempted: false,
            quantum_end: u64::MAX,
            interrupted: false,
            fault_frame: None,
            deadline_cycles: None,
            timer_end: u64::MAX,
            check_at: u64::MAX,
            charged_at: Tally::default(),
            copies_attributed: 0,
            spaces: BTreeMap::new(),
            retired_stats: TranslationStats::default(),
        }
    }

    /// A block counter for a new address space: for translated code at ring 0, keeping
    /// prices under a microarchitecture.
    fn new_block_counter(&self) -> BlockCounter {
        let priced = self.model.instruction_costs.microarchitecture().is_some();
        BlockCounter::new(self.cache.is_some(), priced)
    }

    /// A new process `pid`'s address space gets a block counter and code cache of its own.
    pub fn add_space(&mut self, pid: Pid) {
        let space = Space {
            blocks: self.new_block_counter(),
            cache: self.cache.as_ref().map(CodeCache::fresh),
        };
        self.spaces.insert(pid, space);
    }

    /// The running process has a new image (execve): its block counts and translations
    /// are of the old one.
    pub fn replace_space(&mut self) {
        self.blocks = self.new_block_counter();
        if let Some(cache) = &mut self.cache {
            self.retired_stats.absorb(&cache.stats);
            *cache = cache.fresh();
        }
    }

    /// The running process changed from `outgoing`: its space is kept while it lives, and
    /// the new one's comes in.
    fn switch_space(&mut self, outgoing: Pid) {
        let incoming = self.kernel.proc.pid;
        if incoming == outgoing {
            return;
        }
        let next = self
            .spaces
            .remove(&incoming)
            .expect("a process has a space");
        let old = Space {
            blocks: std::mem::replace(&mut self.blocks, next.blocks),
            cache: std::mem::replace(&mut self.cache, next.cache),
        };
        let alive = self
            .kernel
            .procs
            .get(&outgoing)
            .is_some_and(|p| p.exit.is_none());
        if alive {
            self.spaces.insert(outgoing, old);
        } else if let Some(cache) = old.cache {
            self.retired_stats.absorb(&cache.stats);
        }
    }

    /// Whether the machine must stop and switch tasks (or make the CPU state of new ones).
    pub fn wants_switch(&self) -> bool {
        self.preempted
            || self.interrupted
            || self.fault_frame.is_some()
            || self.kernel.must_stop()
            || self.kernel.signal_pending()
            || self.kernel.registers.restore.is_some()
    }

    /// The running task starts (or goes on after another switch) with a fresh quantum.
    pub fn start_quantum(&mut self) {
        let now = self.clock.instructions();
        self.quantum_end = now.saturating_add(self.kernel.sched.next_quantum());
        self.refresh_timer();
    }

    /// Takes the system's earliest deadline afresh (after a switch, an alarm, a firing),
    /// in cycles: the inverse of `set_kernel_time`.
    fn refresh_timer(&mut self) {
        let slept = self.kernel.slept_ns;
        let ghz = self.model.ghz.value;
        self.deadline_cycles = self
            .kernel
            .earliest_deadline()
            .map(|deadline| deadline.saturating_sub(slept) as f64 * ghz);
        self.retime();
    }

    /// Puts the earliest deadline in guest instructions, for the clock as it now stands (a
    /// syscall's cycles move it closer), in floating point: it may land an instruction
    /// early (the timer then fires at a later stop) or late, alike in both modes. Never
    /// now, so the machine always gets on: every timer due by now has fired. Never, when
    /// instructions take no time (a model with `cpi = 0`).
    fn retime(&mut self) {
        let cpi = self.model.cpi.value;
        self.timer_end = match self.deadline_cycles {
            Some(deadline) if cpi > 0.0 => {
                let now = self.clock.instructions();
                let cycles_now = self.clock.cycles_at(now) as f64;
                let ahead = ((deadline - cycles_now) / cpi).ceil();
                now.saturating_add((ahead as u64).max(1))
            }
            _ => u64::MAX,
        };
        self.set_check_at(self.quantum_end.min(self.timer_end));
    }

    /// A signal waits for the running task, which is not at a guest instruction boundary:
    /// the machine stops at the next one.
    pub fn interrupt_soon(&mut self) {
        self.set_check_at(0);
    }

    /// The machine stopped for a timer or a waiting signal: fire what is due.
    pub fn serve_interrupt(&mut self) {
        self.interrupted = false;
        self.set_kernel_time();
        self.kernel.fire_due_timers();
        self.refresh_timer();
    }

    /// The `guest` instructions of the block `addr..end` would run the running task past its
    /// quantum or the earliest timer, or a signal waits for it. The task stops exactly there,
    /// in guest instructions, so that both modes interleave tasks and take interrupts alike:
    /// before this block, or at the guest instruction boundary inside it where the machine
    /// runs up to (`RunUntil::Preempt`); at ring 0 always where a guest instruction's
    /// translation begins, where the registers are the guest's. A quantum ends there only if
    /// another task is waiting. Returns whether the block must not run now. Never inside the
    /// ring-0 runtime's stubs, where the one kernel stack may hold a live return address.
    fn preempt_within(&mut self, addr: u64, end: u64, guest: u32) -> bool {
        let now = self.clock.instructions();
        let signal = self.kernel.signal_pending();
        let timer = self.timer_end <= now.saturating_add(guest as u64);
        if !signal && !timer && !self.kernel.sched.has_runnable() {
            self.quantum_end = now.saturating_add(self.kernel.sched.next_quantum());
            self.set_check_at(self.quantum_end.min(self.timer_end));
            return false;
        }
        let may_stop = match self.cache {
            Some(_) => !(crate::bt::layout::STUBS..crate::bt::layout::DATA).contains(&addr),
            None => addr < crate::memory::USER_END,
        };
        if self.run_until.is_some() || !may_stop {
            return false;
        }
        let stop_at = if signal { now } else { self.check_at };
        let remaining = stop_at.saturating_sub(now).min(guest as u64) as u32;
        let boundary = match &self.cache {
            Some(cache) => cache.guest_boundary(addr, end, remaining),
            None if remaining == 0 => Some(addr),
            None => self.kernel.proc.mem.nth_instruction(addr, end, remaining),
        };
        match boundary {
            Some(at) if at == addr => {
                self.reach_stop();
                true
            }
            Some(at) => {
                self.run_until = Some(RunUntil::Preempt(at));
                true
            }
            None => false,
        }
    }

    /// The running task stopped where `preempt_within` chose: its quantum ended (with
    /// another task waiting), or a timer is due or a signal waits, or both.
    fn reach_stop(&mut self) {
        let now = self.clock.instructions();
        if now >= self.timer_end || self.kernel.signal_pending() {
            self.interrupted = true;
        }
        if now >= self.quantum_end && self.kernel.sched.has_runnable() {
            self.preempted = true;
        }
        if !(self.interrupted || self.preempted) {
            // The quantum ended with no other task waiting: a fresh one.
            self.quantum_end = now.saturating_add(self.kernel.sched.next_quantum());
            self.retime();
            self.interrupted = true;
        }
    }

    /// Adds what the system's tally grew by since the running task's last charge to its own.
    fn charge_running_task(&mut self) {
        let now = self.tally_now();
        let task = &mut self.kernel.task;
        task.tally = task.tally.plus(now.since(self.charged_at));
        self.charged_at = now;
    }

    /// The system's running totals of what the cost model prices. The translation counts
    /// are every code cache's, the dropped ones' too, so they only grow.
    fn tally_now(&mut self) -> Tally {
        let mut translation = self.retired_stats.clone();
        let caches = self.cache.iter();
        for cache in caches.chain(self.spaces.values().filter_map(|s| s.cache.as_ref())) {
            translation.absorb(&cache.stats);
        }
        let kernel = &self.kernel;
        Tally {
            guest_instructions: self.clock.instructions(),
            guest_cycle_units: self.counts.guest_cycle_units,
            abi_calls: self.counts.abi_calls,
            work: self.work_now(),
            thread_switches: self.counts.thread_switches,
            process_switches: self.counts.process_switches,
            forks: kernel.forks,
            fork_pages: kernel.fork_pages,
            fork_areas: kernel.fork_areas,
            execs: kernel.execs,
            reaps: kernel.reaps,
            branch_mispredictions: self.predictor.mispredictions(),
            translated_instructions: self.ring0.translated_instructions,
            translated_cycle_units: self.ring0.translated_cycle_units,
            call_instructions: self.ring0.call_instructions(self.counts.abi_calls),
            guest_instructions_translated: translation.guest_instructions_translated,
            indirect_lookups: translation.indirect_lookups,
        }
    }

    /// The process log with the live tasks' counts as of now.
    fn process_logs(&mut self) -> Vec<crate::kernel::history::ProcessLog> {
        self.charge_running_task();
        let kernel = &mut self.kernel;
        let running = std::mem::replace(&mut kernel.task, crate::kernel::task::Task::new(0, 0));
        kernel.log_task(&running);
        let others: Vec<u64> = kernel.tasks.keys().copied().collect();
        for tid in others {
            let task = kernel.tasks.remove(&tid).expect("listed");
            kernel.log_task(&task);
            kernel.tasks.insert(tid, task);
        }
        kernel.task = running;
        kernel.history.values().cloned().collect()
    }

    /// Counts `instructions` run in the code cache or stubs that are not the guest's own,
    /// for `source`.
    pub fn count_translated(&mut self, instructions: u64, source: Option<Source>) {
        self.ring0.translated_instructions += instructions;
        if let Some(source) = source {
            self.ring0.extra_by_source[source as usize] += instructions as i64;
        }
    }

    /// Gives up the CPU: the running task's instructions are recorded, the kernel picks the
    /// next task. The machine has saved the CPU state and restores the next one's.
    pub fn switch(&mut self) -> crate::kernel::tasks::Switch {
        self.charge_running_task();
        self.set_kernel_time();
        let preempted = std::mem::take(&mut self.preempted);
        self.settle_current_block();
        let (outgoing, outgoing_task) = (self.kernel.proc.pid, self.kernel.task.tid);
        // A task's last branch is resolved by its own next block, whoever runs between.
        self.kernel.task.pending_branch = std::mem::take(&mut self.pending_branch);
        let switch = self.kernel.switch(preempted);
        self.pending_branch = std::mem::take(&mut self.kernel.task.pending_branch);
        if self.kernel.task.tid != outgoing_task {
            if self.kernel.proc.pid == outgoing {
                self.counts.thread_switches += 1;
            } else {
                self.counts.process_switches += 1;
            }
            self.update_event_cycles();
        }
        self.switch_space(outgoing);
        match &switch {
            crate::kernel::tasks::Switch::Finished => {
                let exit = self.kernel.first_exit.clone();
                self.stop = Some(Stop::Exit(exit.expect("the first process ended")));
            }
            crate::kernel::tasks::Switch::Deadlock(waits) => {
                self.stop = Some(Stop::Deadlock(waits.clone()));
            }
            crate::kernel::tasks::Switch::To { .. } => self.start_quantum(),
        }
        switch
    }

    /// What the block at `addr` counts, from the block counter's cache or decoded afresh.
    fn count_block(&mut self, addr: u64, size: u32) -> BlockCount {
        let (cache, model) = (&self.cache, &self.model);
        let end = addr.wrapping_add(size as u64);
        self.blocks
            .count(addr, size, &self.kernel.proc.mem, |decoded| {
                // Only for a block decoded afresh.
                let core = model.instruction_costs.microarchitecture();
                let Some(cache) = cache else {
                    return Accounted::untranslated(decoded, core);
                };
                let (guest, extra) = cache.account(addr, end, end, decoded.len() as u32);
                let (cycle_units, guest_cycle_units) =
                    core.map_or((0, 0), |core| cache.price(addr, end, decoded, core));
                Accounted {
                    guest,
                    extra,
                    cycle_units,
                    guest_cycle_units,
                    // The runtime's stubs branch on its own state, not the guest's.
                    conditional: core.is_some()
                        && layout::stub_source(addr).is_none()
                        && ends_in_conditional_branch(decoded),
                }
            })
    }

    /// Counts a block about to run; false when it must not run yet: the CPU must catch up
    /// with changed code first, or the instruction limit says stop. Blocks that count
    /// themselves (`inline_counts`) come here only when `gate` sends them.
    pub fn enter_block(&mut self, addr: u64, size: u32) -> bool {
        if self.resync.is_some() {
            return false;
        }
        // The per-block path: plain wrapping arithmetic on addresses and counters, which no
        // run comes near 2^64 in, so that the release build's overflow checks stay off it
        // (they cost 4 % of a ring-0 run's instructions here, callgrind).
        let end = addr.wrapping_add(size as u64);
        let mut count = self.count_block(addr, size);
        if count.fresh {
            let unusual = self.blocks.unusual();
            // Unicorn's core would run it: stop before the block runs, and let the machine
            // run it again up to that instruction.
            if let (Some(at), None) = (unusual.lacking, self.run_until) {
                self.run_until = Some(RunUntil::Lacking(at));
                return false;
            }
            if self.cache.is_none() && unusual.volatile && self.restarts_after_store(addr, count) {
                self.uncount_rest_of_block(addr);
            }
        }
        // A further iteration of the rep instruction the previous block ended with.
        if count.repeat {
            let previous = self.current_block();
            if previous.addr.wrapping_add(previous.size as u64) == end {
                count.uncount();
            }
        }
        // The guest's clock runs on guest instructions in both modes, so both runs see the
        // same times and behave the same. One read of it serves the quantum, the clock and
        // the instruction limit (three reads cost 0.7 % more host instructions in a ring-3
        // busybox sha256sum of 256 KiB, callgrind).
        let after = self.clock.instructions().wrapping_add(count.guest as u64);
        if after > self.check_at && self.preempt_within(addr, end, count.guest) {
            return false;
        }
        self.clock.set_instructions(after);
        let guest_cycles = &mut self.counts.guest_cycle_units;
        *guest_cycles = guest_cycles.wrapping_add(count.guest_cycle_units as u64);
        if let Some(cache) = &mut self.cache {
            if addr == layout::LOOKUP {
                cache.stats.indirect_lookups += 1;
                cache.stats.indirect_hits += 1;
            }
            let translated = &mut self.ring0.translated_instructions;
            *translated = translated.wrapping_add(count.instructions as u64);
            let cycles = &mut self.ring0.translated_cycle_units;
            *cycles = cycles.wrapping_add(count.cycle_units as u64);
            for (total, extra) in self.ring0.extra_by_source.iter_mut().zip(count.extra) {
                *total = total.wrapping_add(extra as i64);
            }
        }
        let fall_through = std::mem::take(&mut self.pending_branch);
        if fall_through != 0 {
            self.predictor.record(fall_through, addr != fall_through);
        }
        if count.conditional {
            self.pending_branch = end;
        }
        self.inline_current = [addr, size as u64 | COUNTED_BY_HOOK << 32];
        self.current_block = CurrentBlock::new(addr, size, &count);
        match self.max_instructions {
            Some(limit) if after >= limit && self.stop.is_none() => {
                self.stop = Some(Stop::InstructionLimit);
                false
            }
            _ => true,
        }
    }

    /// Whether the one-instruction block at `addr`, in writable code, is Unicorn (QEMU)
    /// starting again at a store that changed the code of the block running it: QEMU drops
    /// that block and goes on from the store in a block of that one instruction, so what the
    /// dropped block counted from the store on never ran. Only such a store does this,
    /// within the block before (at its start, if the store began it), and a block starting
    /// there would otherwise run on past it.
    fn restarts_after_store(&mut self, addr: u64, count: BlockCount) -> bool {
        let previous = self.current_block();
        count.instructions == 1
            && !count.repeat
            && previous.addr <= addr
            && addr < previous.addr + previous.size as u64
            && !(addr == previous.addr && previous.instructions == 1)
            && BlockCounter::runs_on(addr, &self.kernel.proc.mem)
    }

    /// The block now running and what was counted for it: `current_block` if
    /// `enter_block` counted it, else (it counted itself) as the block counter counts it.
    fn current_block(&mut self) -> CurrentBlock {
        let [addr, size_how] = self.inline_current;
        let (size, how) = (size_how as u32, size_how >> 32);
        let mut count = match how {
            COUNTED_INLINE | COUNTED_AS_REPEAT => self.count_block(addr, size),
            _ => return self.current_block,
        };
        if how == COUNTED_AS_REPEAT {
            count.uncount();
        }
        self.inline_current[1] = size as u64 | COUNTED_BY_HOOK << 32;
        self.current_block = CurrentBlock::new(addr, size, &count);
        self.current_block
    }

    /// Works out the running block's counts now, while its address space and block counter
    /// are the ones it ran in: before a syscall (an execve replaces them) or a switch.
    fn settle_current_block(&mut self) {
        self.current_block();
    }

    fn set_check_at(&mut self, at: u64) {
        self.check_at = at;
        self.regate();
    }

    /// Sets the gate that sends blocks counting themselves to `enter_block`: every one
    /// while the CPU must catch up with changed code, else the first whose instructions
    /// pass `check_at` or reach the instruction limit, where `enter_block` does more than
    /// count.
    fn regate(&mut self) {
        self.gate = if self.resync.is_some() {
            0
        } else {
            let limit = self.max_instructions.unwrap_or(u64::MAX);
            self.check_at.saturating_add(1).min(limit)
        };
    }

    /// What the block at `addr` adds to the counters when its generated code counts it
    /// (Unicorn asks as it translates the block), as `enter_block` would; `None` for a
    /// block that must go through `enter_block` every time: one decoded afresh that the
    /// CPU model lacks an instruction of or that lies in writable code.
    pub fn inline_counts(&mut self, addr: u64, size: u32) -> Option<uc_inline_block> {
        let count = self.count_block(addr, size);
        let unusual = self.blocks.unusual();
        if count.fresh && (unusual.lacking.is_some() || unusual.volatile) {
            return None;
        }
        let mut totals = [0; INLINE_TOTALS];
        totals[GUEST_CYCLE_UNITS] = count.guest_cycle_units as u64;
        if self.cache.is_some() {
            totals[TRANSLATED_INSTRUCTIONS] = count.instructions as u64;
            totals[TRANSLATED_CYCLE_UNITS] = count.cycle_units as u64;
            let lookup = u64::from(addr == layout::LOOKUP);
            totals[INDIRECT_LOOKUPS] = lookup;
            totals[INDIRECT_HITS] = lookup;
            for (total, extra) in totals[EXTRA_BY_SOURCE..].iter_mut().zip(count.extra) {
                *total = extra as i64 as u64;
            }
        }
        Some(uc_inline_block {
            hook: 0,
            repeat: count.repeat.into(),
            instructions: count.guest as u64,
            branch_site: if count.conditional {
                addr.wrapping_add(size as u64)
            } else {
                0
            },
            totals,
        })
    }

    /// Where the counters live that blocks counting themselves add to, in the order of
    /// `uc_inline_block::totals`, with the instruction count, the gate, the running block
    /// and the branch predictor. They stay put while the machine runs: the system lives
    /// in the engine's heap-allocated data, the clock in an `Rc`, and a switch of address
    /// space moves the next code cache into the same `cache` slot.
    pub fn inline_counting(&mut self) -> uc_inline_counting {
        let predictor = self.predictor.raw_parts();
        let mut totals = [std::ptr::null_mut(); INLINE_TOTALS];
        totals[GUEST_CYCLE_UNITS] = &raw mut self.counts.guest_cycle_units;
        if let Some(cache) = &mut self.cache {
            totals[TRANSLATED_INSTRUCTIONS] = &raw mut self.ring0.translated_instructions;
            totals[TRANSLATED_CYCLE_UNITS] = &raw mut self.ring0.translated_cycle_units;
            totals[INDIRECT_LOOKUPS] = &raw mut cache.stats.indirect_lookups;
            totals[INDIRECT_HITS] = &raw mut cache.stats.indirect_hits;
            for (total, extra) in totals[EXTRA_BY_SOURCE..]
                .iter_mut()
                .zip(&mut self.ring0.extra_by_source)
            {
                *total = (extra as *mut i64).cast();
            }
        }
        self.regate();
        uc_inline_counting {
            clock: self.clock.instructions_ptr(),
            gate: &raw const self.gate,
            current: self.inline_current.as_mut_ptr(),
            // No branch is ever pending where no microarchitecture prices mispredictions.
            pending: if self.model.instruction_costs.microarchitecture().is_some() {
                &raw mut self.pending_branch
            } else {
                std::ptr::null_mut()
            },
            history: predictor.history,
            table: predictor.table,
            next: predictor.next,
            mispredictions: predictor.mispredictions,
            bits: predictor.bits,
            log: predictor.log,
            log_next: predictor.log_next,
            log_end: predictor.log_end,
            totals,
        }
    }

    /// The running task goes on elsewhere than where its last block led.
    pub fn forget_pending_branch(&mut self) {
        self.pending_branch = 0;
    }

    /// The counts as of now, with the instruction total from the clock.
    pub fn counts_now(&mut self) -> Counts {
        Counts {
            guest_instructions: self.clock.instructions(),
            work: self.work_now(),
            pages_copied_on_write: self.kernel.proc.mem.pages_copied(),
            forks: self.kernel.forks,
            fork_pages: self.kernel.fork_pages,
            fork_areas: self.kernel.fork_areas,
            execs: self.kernel.execs,
            reaps: self.kernel.reaps,
            branch_mispredictions: self.predictor.mispredictions(),
            ..self.counts.clone()
        }
    }

    /// Bytes the kernel copied that no class has been given yet.
    fn unattributed_copies(&self) -> u64 {
        let copied = self.kernel.proc.mem.bytes_copied();
        copied.saturating_sub(self.copies_attributed)
    }

    /// Gives the bytes the kernel copied since the last call to `class`.
    fn attribute_copies(&mut self, class: WorkClass) {
        let fresh = self.unattributed_copies();
        self.counts.work.add_bytes(class, fresh);
        self.copies_attributed = self.kernel.proc.mem.bytes_copied();
    }

    /// The page faults so far, with the bytes of the pages they mapped around the faulting
    /// ones (the class's per-byte term prices fault-around).
    fn page_faults(&self) -> ClassCount {
        let mem = &self.kernel.proc.mem;
        ClassCount {
            calls: mem.faults(),
            bytes: mem.faulted_around() * PAGE_SIZE,
        }
    }

    /// The work counts as of now: bytes not yet given a class are `Other`'s.
    fn work_now(&self) -> WorkCounts {
        let mut work = self.counts.work;
        work.add_bytes(WorkClass::Other, self.unattributed_copies());
        work.set(WorkClass::PageFault, self.page_faults());
        work
    }

    /// The virtual clock's cycles of everything but user instructions follow the counts.
    fn update_event_cycles(&mut self) {
        self.attribute_copies(WorkClass::Other);
        let faults = self.page_faults();
        self.counts.work.set(WorkClass::PageFault, faults);
        let kernel = &self.kernel;
        (self.counts.forks, self.counts.execs, self.counts.reaps) =
            (kernel.forks, kernel.execs, kernel.reaps);
        self.counts.fork_pages = kernel.fork_pages;
        self.counts.fork_areas = kernel.fork_areas;
        let cycles = self.model.ring3_cycles(&self.counts);
        self.clock
            .set_event_cycles(cycles.crossings + cycles.switches + cycles.kernel_work);
    }

    /// The run's record; call once, after the machine stopped with `stop` set.
    pub fn finish(&mut self) -> Finished {
        let ring0 = self.cache.as_ref().map(|cache| {
            let mut stats = self.retired_stats.clone();
            stats.absorb(&cache.stats);
            for other in self.spaces.values().filter_map(|s| s.cache.as_ref()) {
                stats.absorb(&other.stats);
            }
            Ring0Counts {
                stats,
                ..self.ring0.clone()
            }
        });
        let translation_dump = self
            .cache
            .as_ref()
            .filter(|_| self.dump_translation)
            .map(CodeCache::dump);
        Finished {
            stop: self.stop.take().expect("the run stopped for a reason"),
            counts: self.counts_now(),
            ring0,
            translation_dump,
            syscall_trace: self.syscall_trace.take(),
            processes: self.process_logs(),
        }
    }

    pub fn set_kernel_time(&mut self) {
        let cpu_ns = (self.model.seconds(self.clock.cycles()) * 1e9) as u64;
        self.kernel.cpu_ns = cpu_ns;
        self.kernel.elapsed_ns = cpu_ns + self.kernel.slept_ns;
    }

    /// The guest's syscall `nr` from guest address `rip`.
    pub fn syscall(&mut self, nr: u64, args: &Args, rip: u64) -> Flow {
        assert!(
            !self.panic_in_syscall_hook,
            "planted: a panic in the syscall hook"
        );
        self.set_kernel_time();
        self.settle_current_block();
        // Copies since the last syscall were the kernel's own (signal frames).
        self.attribute_copies(WorkClass::Other);
        let class = self.kernel.work_class(nr, args);
        let dispatched = self.kernel.dispatch(nr, args, rip);
        self.attribute_copies(class);
        match dispatched {
            Err(unsupported) => {
                self.stop = Some(Stop::Unsupported(unsupported));
                Flow::Stop
            }
            Ok(None) => Flow::Reschedule(None),
            Ok(Some(done)) => self.complete(nr, args, class, &done),
        }
    }

    /// The syscall `nr` of the running task completed as `done`: it is counted, and the
    /// task goes on unless it must give up the CPU.
    fn complete(&mut self, nr: u64, args: &Args, class: WorkClass, done: &Dispatched) -> Flow {
        self.counts.record_syscall(nr, class, done.enosys);
        if let Some(what) = &done.lacking {
            self.counts.record_lacking(what);
        }
        self.kernel.task.syscalls += 1;
        self.kernel.task.at_syscall = Some(crate::kernel::signal::AtSyscall { nr });
        self.counts.record_sequence(nr, args, done.ret);
        if let Some(trace) = &mut self.syscall_trace {
            trace.push(SyscallRecord {
                machine_file: std::mem::take(&mut self.kernel.named_machine_file),
                tid: self.kernel.task.tid,
                nr,
                args: *args,
                ret: done.ret,
            });
        }
        self.update_event_cycles();
        if std::mem::take(&mut self.kernel.timers_changed) {
            self.refresh_timer();
        } else if self.deadline_cycles.is_some() {
            self.retime();
        }
        if self.wants_switch() {
            Flow::Reschedule(Some(done.ret))
        } else {
            // Straight back to user mode: nothing to deliver there.
            self.kernel.task.at_syscall = None;
            Flow::Return(done.ret)
        }
    }

    /// The parked call of the task now running ends: as its waker said, or by running
    /// again (it may park again).
    pub fn resume(&mut self, call: Parked, wake: Wake) -> Flow {
        match wake {
            Wake::Retry => self.syscall(call.nr, &call.args, call.rip),
            Wake::Return(ret) => {
                let done = Dispatched {
                    ret,
                    enosys: false,
                    lacking: None,
                };
                let class = self.kernel.work_class(call.nr, &call.args);
                self.complete(call.nr, &call.args, class, &done)
            }
        }
    }

    /// An i386 syscall through Linux's 32-bit entry, by `entry` (`int 0x80`, `sysenter`)
    /// from guest address `rip`: EAX and the six 32-bit argument registers.
    pub fn compat_syscall(&mut self, entry: &str, eax: u64, args: &Args, rip: u64) -> Flow {
        let nr = eax & 0xffff_ffff;
        let args = args.map(|a| a & 0xffff_ffff);
        match crate::kernel::syscalls::compat::to_native(nr) {
            Some(native) => self.syscall(native, &args, rip),
            None => {
                let what = format!("i386 syscall {nr} through {entry}");
                self.stop = Some(Stop::Unsupported(Unsupported { what, rip }));
                Flow::Stop
            }
        }
    }

    /// The guest's `sysenter` at `rip`, `length` bytes long, as the CPU model carries it out
    /// in 64-bit mode; `regs` are EBX, ECX, EDX, ESI, EDI and EBP. At ring 3 it has not run
    /// yet; at ring 0 the emulate hypercall serves it.
    pub fn sysenter(&mut self, eax: u64, regs: Args, rip: u64, length: u64) {
        let ring0 = self.cache.is_some();
        match self.kernel.cpu.sysenter {
            Sysenter::InvalidOpcode if ring0 => {
                self.emulated_fault(Signal::SIGILL, "invalid opcode (#UD)".into(), rip)
            }
            Sysenter::InvalidOpcode => self.invalid_instruction(rip),
            Sysenter::CompatSyscall => {
                let [ebx, ecx, edx, esi, edi, ebp] = regs;
                // Linux's compat entry reads the sixth argument at the user's EBP; when that
                // fails the call fails with EFAULT before it starts.
                let mut sixth = [0u8; 4];
                if self
                    .kernel
                    .proc
                    .mem
                    .read(ebp & 0xffff_ffff, &mut sixth)
                    .is_ok()
                {
                    let sixth = u32::from_le_bytes(sixth) as u64;
                    self.compat_syscall("sysenter", eax, &[ebx, ecx, edx, esi, edi, sixth], rip);
                }
                if !ring0 {
                    self.uncount_rest_of_block(rip + length);
                }
                if self.stop.is_none() {
                    let reason = "sysenter: Linux's 32-bit entry returned in 32-bit mode to the \
                                  32-bit vDSO, which a 64-bit process does not have";
                    self.kill(Signal::SIGSEGV, reason.into(), rip);
                }
            }
        }
    }

    /// Whether the exception `vector` with RIP `rip` (after the instruction) is the guest's
    /// `int 0x80` at ring 3.
    pub fn is_int80(&self, vector: u32, rip: u64) -> bool {
        let mut before = [0u8; 2];
        vector == 0x80
            && self
                .kernel
                .proc
                .mem
                .peek(rip.wrapping_sub(2), &mut before)
                .is_ok()
            && before == [0xcd, 0x80]
    }

    /// A hypercall at `rip` from the ring-0 runtime (not the kernel entries).
    pub fn hypercall(&mut self, call: Hypercall, rip: u64) -> Flow {
        match call {
            Hypercall::Dispatch | Hypercall::Indirect => self.branch(call, rip),
            Hypercall::Fault => {
                self.translated_fault();
                Flow::Stop
            }
            Hypercall::KernelEntry | Hypercall::CompatEntry | Hypercall::Emulate => {
                unreachable!("the machine serves the kernel entries as syscalls")
            }
        }
    }

    /// Finds or makes the translation of the guest target in the target slot, for the
    /// hypercall at `rip`. Dropped blocks other than the caller's retire here.
    fn branch(&mut self, call: Hypercall, rip: u64) -> Flow {
        let target = self.kernel.proc.mem.read_kernel_u64(RUNTIME.target);
        let cache = self.cache.as_mut().expect("hypercalls come from ring 0");
        cache.retire_dead_blocks(rip);
        // The dropped block left by another way than its next instruction: nothing to do.
        if matches!(self.run_until, Some(RunUntil::Redispatch { .. })) {
            self.run_until = None;
        }
        match call {
            // The lookup stub counted a hit when it began (`enter_block`): it missed.
            Hypercall::Indirect => cache.stats.indirect_hits -= 1,
            _ => cache.stats.dispatches += 1,
        }
        self.continue_at(target)
    }

    /// Continues translated execution at guest address `target`: its translation goes to
    /// the runtime's `next` slot.
    pub fn continue_at(&mut self, target: u64) -> Flow {
        let cache = self.cache.as_mut().expect("ring 0 has a code cache");
        match cache.find_or_translate(&mut self.kernel.proc.mem, target) {
            Ok((translation, sync)) => {
                let mem = &mut self.kernel.proc.mem;
                mem.fill(NEXT, &translation.to_le_bytes());
                cache.publish(mem, target, translation);
                Flow::Continue(sync)
            }
            Err(CacheError::Translate(TranslateError::Unfetchable(address))) => {
                let fetch = FAULT_KINDS[translator::runtime::fault::FETCH as usize];
                let mem = &self.kernel.proc.mem;
                let frame = FaultFrame::for_page_fault(address, address, Access::Fetch, mem);
                self.raise(Signal::SIGSEGV, fetch.reason.into(), address, Some(frame));
                Flow::Stop
            }
            Err(error) => {
                self.stop = Some(Stop::Unsupported(Unsupported {
                    what: error.to_string(),
                    rip: target,
                }));
                Flow::Stop
            }
        }
    }

    /// An instruction the simulator carried out for translated code ended in a ring-3
    /// fault: it was counted when its block began, but never ran.
    pub fn emulated_fault(&mut self, signal: Signal, reason: String, rip: u64) {
        self.uncount_guest_instruction(rip);
        self.kill(signal, reason, rip);
    }

    /// Takes back the guest instruction at `guest_rip`, counted when its block began: it
    /// never completed, so the translated instructions that ran for it become extra ones.
    fn uncount_guest_instruction(&mut self, guest_rip: u64) {
        self.clock.remove_instructions(1);
        if let Some(source) = self
            .cache
            .as_ref()
            .and_then(|c| c.source_of_guest(guest_rip))
        {
            self.ring0.extra_by_source[source as usize] += 1;
        }
    }

    /// A ring-3 outcome raised by translated code through the fault stub.
    fn translated_fault(&mut self) {
        let rip = self.kernel.proc.mem.read_kernel_u64(RUNTIME.fault_rip);
        let index = self.kernel.proc.mem.read_kernel_u64(RUNTIME.fault_kind) as u32 as usize;
        let kind = FAULT_KINDS[index];
        if !kind.trap {
            self.uncount_guest_instruction(rip);
        }
        let signal = Signal::try_from(kind.signal).expect("fault kinds name Linux signals");
        let mem = &self.kernel.proc.mem;
        let frame = match index as u32 {
            fault::INVALID => FaultFrame::for_vector(INVALID_OPCODE, rip, rip),
            fault::BREAKPOINT => FaultFrame::for_vector(BREAKPOINT, rip, rip),
            fault::PRIVILEGED => FaultFrame::for_vector(GENERAL_PROTECTION, rip, rip),
            fault::INTERRUPT_GATE => match mem.instruction_at(rip) {
                gate if gate.code() == iced_x86::Code::Int_imm8 => {
                    FaultFrame::for_software_interrupt(gate.immediate8(), rip)
                }
                _ => None,
            },
            fault::FETCH => Some(FaultFrame::for_page_fault(rip, rip, Access::Fetch, mem)),
            _ => None,
        };
        self.raise(signal, kind.reason.into(), rip, frame);
    }

    /// A CPU exception: vector, RIP as Unicorn reports it, and CR2. Returns whether the
    /// guest goes on from the faulting instruction (a write to a page shared since a fork,
    /// now copied); otherwise the exception ends the process.
    #[must_use]
    pub fn fault(&mut self, vector: u32, rip: u64, cr2: u64, access: Access) -> bool {
        if vector == PAGE_FAULT {
            match self.kernel.proc.mem.resolve_fault(cr2, access) {
                Ok(Resolution::Resolved) => {
                    // The emulator restarts at the instruction with a block of its own,
                    // which counts it; but a rep instruction's next iteration does not
                    // count again (`BlockCount::repeat`), so it stays counted.
                    let mem = &self.kernel.proc.mem;
                    let restart = BlockCounter::repeated_string_length(rip, mem)
                        .map_or(rip, |length| rip + length);
                    self.uncount_rest_of_block(restart);
                    return true;
                }
                Ok(Resolution::Program) => {}
                Ok(Resolution::PastEndOfFile) => {
                    let guest_rip = self.faulting_guest_rip(rip);
                    let spilled = self.cache.as_ref().and_then(|c| c.spilled_at(rip));
                    let mem = &self.kernel.proc.mem;
                    let frame = FaultFrame::for_bus_error(guest_rip, cr2, access, mem);
                    let reason = format!(
                        "bus error (#PF): access to {cr2:#x}, past the end of the file it maps"
                    );
                    let frame = FaultFrame { spilled, ..frame };
                    self.raise(Signal::SIGBUS, reason, guest_rip, Some(frame));
                    return false;
                }
                Err(_) => {
                    let guest_rip = self.faulting_guest_rip(rip);
                    self.kernel.exit_process(Exit::Signal {
                        signal: Signal::SIGKILL,
                        reason: format!(
                            "out of memory: no frame left to copy a page on write, at rip {guest_rip:#x}"
                        ),
                    });
                    return false;
                }
            }
        }
        if self.cache.is_some() {
            self.ring0_fault(vector, rip, cr2, access);
            return false;
        }
        let mut before = [0u8; 2];
        let software = self
            .kernel
            .proc
            .mem
            .peek(rip.wrapping_sub(2), &mut before)
            .is_ok()
            && before == [0xcd, vector as u8];
        let breakpoint = vector == 3 && {
            let mut one = [0u8; 1];
            self.kernel
                .proc
                .mem
                .peek(rip.wrapping_sub(1), &mut one)
                .is_ok()
                && one == [0xcc]
        };
        // Software interrupts leave RIP after the instruction; faults leave it on it.
        let (fault_rip, executed_rip) = if breakpoint {
            (rip - 1, rip)
        } else if software {
            (rip - 2, rip - 2)
        } else {
            (rip, rip)
        };
        self.uncount_rest_of_block(executed_rip);
        let (signal, reason) = match faults::fault(vector) {
            _ if software && vector != 3 => (
                Signal::SIGSEGV,
                format!("int {vector:#x} (general protection fault: the gate is kernel-only)"),
            ),
            Some(row) if vector == 14 => (row.signal, self.page_fault_reason(cr2)),
            Some(row) => (row.signal, row.name.to_string()),
            None => (Signal::SIGSEGV, format!("CPU exception {vector}")),
        };
        let frame = if breakpoint || (software && vector == BREAKPOINT) {
            FaultFrame::for_vector(BREAKPOINT, fault_rip, rip)
        } else if software {
            FaultFrame::for_software_interrupt(vector as u8, fault_rip)
        } else if vector == PAGE_FAULT {
            let mem = &self.kernel.proc.mem;
            Some(FaultFrame::for_page_fault(rip, cr2, access, mem))
        } else {
            FaultFrame::for_vector(vector, rip, rip)
        };
        self.raise(signal, reason, fault_rip, frame);
        false
    }

    /// Takes back what the current block counted from the faulting `rip` on, and returns
    /// the guest instruction that faulted.
    fn faulting_guest_rip(&mut self, rip: u64) -> u64 {
        if self.cache.is_some() {
            self.uncount_from(rip, true);
            self.guest_rip(rip)
        } else {
            self.uncount_rest_of_block(rip);
            rip
        }
    }

    /// A CPU exception in translated code: the guest instruction is found through the
    /// code cache's translate-back table.
    fn ring0_fault(&mut self, vector: u32, rip: u64, cr2: u64, access: Access) {
        let guest_rip = self.faulting_guest_rip(rip);
        let spilled = self.cache.as_ref().and_then(|cache| cache.spilled_at(rip));
        let (signal, reason) = match faults::fault(vector) {
            // #BR: the sandbox's bndcu stopped an access outside the user half.
            _ if vector == 5 => {
                self.ring0.sandbox_stops += 1;
                (
                    Signal::SIGSEGV,
                    "page fault (#PF): access to a kernel address (stopped by the sandbox)".into(),
                )
            }
            Some(row) if vector == 14 => {
                if cr2 >= crate::memory::USER_END {
                    self.ring0.kernel_half_accesses += 1;
                }
                (row.signal, self.page_fault_reason(cr2))
            }
            Some(row) => (row.signal, row.name.to_string()),
            None => (Signal::SIGSEGV, format!("CPU exception {vector}")),
        };
        // Where the sandbox stopped an access, the address it would have faulted on is not
        // kept: a handler cannot be told it.
        let frame = match vector {
            BOUND_RANGE => None,
            PAGE_FAULT => {
                let mem = &self.kernel.proc.mem;
                Some(FaultFrame::for_page_fault(guest_rip, cr2, access, mem))
            }
            _ => FaultFrame::for_vector(vector, guest_rip, guest_rip),
        }
        .map(|frame| FaultFrame { spilled, ..frame });
        self.raise(signal, reason, guest_rip, frame);
    }

    /// Guest code on `pages` changed: drop what was translated from it.
    pub fn code_changed(&mut self, pages: &[u64]) -> CacheSync {
        let mut sync = CacheSync::default();
        let Some(cache) = self.cache.as_mut() else {
            return sync;
        };
        for &page in pages {
            sync.merge(cache.invalidate_page(&mut self.kernel.proc.mem, page));
        }
        sync
    }

    /// A guest store of `size` bytes at physical address `physical`, in the watched frame
    /// at `frame`: drop the code translated from the bytes it wrote, on every page on that
    /// frame. See `written`.
    pub fn watched_write(&mut self, frame: u64, physical: u64, size: u64) {
        let Some(cache) = &self.cache else {
            return;
        };
        let offset = physical - frame;
        let end = (offset + size).min(PAGE_SIZE);
        for page in cache.pages_on_frame(frame) {
            self.written(page, page + offset..page + end);
        }
    }

    /// A guest store of `size` bytes at physical address `physical`, in the last bytes of
    /// `frame`, the frame of the page before watched pages (`tail_pages`), which Unicorn
    /// checks against hooks by its first byte only: what spilled into those pages is dropped.
    pub fn watched_tail_write(&mut self, frame: u64, physical: u64, size: u64) {
        let spilled = (physical % PAGE_SIZE + size).saturating_sub(PAGE_SIZE);
        if spilled == 0 {
            return;
        }
        let pages = self.tail_pages.get(&frame).cloned().unwrap_or_default();
        for page in pages {
            self.written(page, page..page + spilled);
        }
    }

    /// The guest wrote `bytes` of `page`: drop the code translated from them, and have the
    /// machine stop before the next block to bring the CPU up to date. Not at once:
    /// invalidating emulator translations inside a running block is not safe, and Unicorn
    /// would stop with RIP still on the store, which has happened (a read-modify-write would
    /// run twice). The store ends its block (see `translator::CodeSource::is_writable`).
    fn written(&mut self, page: u64, bytes: std::ops::Range<u64>) {
        let Some(cache) = self.cache.as_mut() else {
            return;
        };
        let dropped_before = cache.stats.invalidations;
        let sync = cache.invalidate(&mut self.kernel.proc.mem, page, bytes);
        if cache.stats.invalidations == dropped_before {
            return;
        }
        self.resync
            .get_or_insert_with(CacheSync::default)
            .merge(sync);
        self.regate();
    }

    /// What the CPU must catch up with, taken: blocks count themselves again.
    pub fn take_resync(&mut self) -> CacheSync {
        let sync = self.resync.take().unwrap_or_default();
        self.regate();
        sync
    }

    /// Where the machine goes on after a store dropped translations: `rip`, where the next
    /// block would have begun, unless that is in a dropped block. Then the guest
    /// instruction there goes on from its new translation, through the dispatcher: at once
    /// when `rip` begins its translation, else once the old one ends (`run_until`).
    pub fn resume_after_store(&mut self, rip: u64) -> u64 {
        let Some(cache) = self.cache.as_ref().filter(|cache| cache.is_dropped(rip)) else {
            return rip;
        };
        match (cache.guest_address_of(rip), cache.boundary_containing(rip)) {
            (Some(guest), Some(boundary)) if boundary == rip => {
                self.kernel
                    .proc
                    .mem
                    .fill(RUNTIME.target, &guest.to_le_bytes());
                crate::bt::layout::DISPATCH
            }
            _ => {
                if let Some((at, guest)) = cache.next_boundary(rip) {
                    self.run_until = Some(RunUntil::Redispatch { at, guest });
                }
                rip
            }
        }
    }

    /// The machine reached `run_until`'s place; returns where to go on, if anywhere.
    pub fn reached_run_until(&mut self, rip: u64) -> Option<u64> {
        match self.run_until.take() {
            Some(RunUntil::Lacking(_)) => {
                self.invalid_instruction(rip);
                None
            }
            Some(RunUntil::Redispatch { guest, .. }) => {
                self.kernel
                    .proc
                    .mem
                    .fill(RUNTIME.target, &guest.to_le_bytes());
                Some(crate::bt::layout::DISPATCH)
            }
            Some(RunUntil::Preempt(_)) => {
                self.reach_stop();
                None
            }
            None => Some(rip),
        }
    }

    /// Every guest page with translations (for changes that name no page).
    pub fn translated_pages(&self) -> Vec<u64> {
        self.cache
            .as_ref()
            .map(CodeCache::guest_pages)
            .unwrap_or_default()
    }

    /// The guest address for a CPU RIP: itself at ring 3, found through the code cache at
    /// ring 0.
    pub fn guest_rip(&self, rip: u64) -> u64 {
        self.cache
            .as_ref()
            .and_then(|c| c.guest_address_of(rip))
            .unwrap_or(rip)
    }

    /// An invalid instruction at `rip` (Unicorn ends the run for these).
    pub fn invalid_instruction(&mut self, rip: u64) {
        self.uncount_from(rip, true);
        let guest_rip = self.guest_rip(rip);
        let frame = FaultFrame::for_vector(INVALID_OPCODE, guest_rip, guest_rip);
        self.raise(
            Signal::SIGILL,
            "invalid opcode (#UD)".into(),
            guest_rip,
            frame,
        );
    }

    fn page_fault_reason(&self, addr: u64) -> String {
        if addr >= crate::memory::USER_END {
            format!("page fault (#PF): access to kernel address {addr:#x}")
        } else if self.kernel.proc.mem.vma_at(addr).is_some() {
            format!("page fault (#PF): access to {addr:#x} not allowed by its protection")
        } else {
            format!("page fault (#PF): access to unmapped address {addr:#x}")
        }
    }

    /// A fault for which no handler can be told what happened: ends the process with
    /// `signal`, unless the guest has a handler for it, which is not modelled.
    pub fn kill(&mut self, signal: Signal, reason: String, rip: u64) {
        self.raise(signal, reason, rip, None);
    }

    /// A fault at guest `rip` raises `signal`, as Linux's `force_sig_fault` does: a handler
    /// that is installed and not blocked gets it, with `frame` (the machine builds its
    /// signal frame before the guest goes on); otherwise the process ends. Without a
    /// frame a handler cannot be run, and the run stops as unsupported.
    pub fn raise(&mut self, signal: Signal, reason: String, rip: u64, frame: Option<FaultFrame>) {
        let signo = signal as u32;
        let handler = self.kernel.proc.signals.handler(signo);
        let blocked = self.kernel.task.signals.mask & crate::kernel::signal::bit(signo) != 0;
        if handler > SIG_IGN && !blocked {
            match frame {
                Some(frame) => self.fault_frame = Some(frame),
                None => {
                    let what = format!(
                        "delivering {} ({reason}) to a guest handler",
                        signal.as_str()
                    );
                    self.stop = Some(Stop::Unsupported(Unsupported { what, rip }));
                }
            }
        } else {
            self.kernel.exit_process(Exit::Signal {
                signal,
                reason: format!("{reason} at rip {rip:#x}"),
            });
        }
    }

    /// Stops the run: the simulator cannot do `what`.
    pub fn unsupported(&mut self, what: String) {
        // Whoever counted the running block recorded its address.
        let rip = self.inline_current[0];
        self.stop = Some(Stop::Unsupported(Unsupported { what, rip }));
    }

    /// Takes back what the current block counted from `rip` on: it never ran.
    pub fn uncount_rest_of_block(&mut self, rip: u64) {
        self.uncount_from(rip, false);
    }

    /// Takes back what the current block counted from `rip` on. If `faulted`, the
    /// instruction at `rip` raised an exception: at ring 0 that means the guest
    /// instruction whose translation contains it did not complete either, even if its
    /// translation began before `rip` (a sandbox check, a spill) or in an earlier block.
    fn uncount_from(&mut self, rip: u64, faulted: bool) {
        let block = self.current_block();
        let Some(ran) =
            BlockCounter::executed_before(block.addr, block.size, rip, &self.kernel.proc.mem)
        else {
            return;
        };
        let (guest_ran, extra_ran, earlier) = match &self.cache {
            Some(cache) => {
                let start = match cache.boundary_containing(rip) {
                    Some(boundary) if faulted => boundary,
                    _ => rip,
                };
                let (guest_ran, mut extra_ran) = cache.account(block.addr, rip, start, ran);
                // A guest instruction whose translation began in an earlier block did not
                // complete: its instructions there become extra ones.
                let earlier = faulted && start < block.addr;
                if earlier {
                    if let Some(source) = cache.source_of(start) {
                        extra_ran[source as usize] += 1;
                    }
                }
                (guest_ran, extra_ran, earlier as u64)
            }
            None => (ran, Extra::default(), 0),
        };
        self.clock
            .remove_instructions((block.guest - guest_ran.min(block.guest)) as u64 + earlier);
        // A block's price is not a sum over its instructions: the part that ran keeps its
        // share by instruction count.
        let share = |units: u32, kept: u32, of: u32| {
            if of == 0 {
                0
            } else {
                (units as u64 * kept.min(of) as u64 / of as u64) as u32
            }
        };
        let guest_cycles_ran = share(block.guest_cycle_units, guest_ran, block.guest);
        self.counts.guest_cycle_units -= (block.guest_cycle_units - guest_cycles_ran) as u64;
        let cycles_ran = share(block.cycle_units, ran, block.instructions);
        if self.cache.is_some() {
            self.ring0.translated_cycle_units -= (block.cycle_units - cycles_ran) as u64;
            self.ring0.translated_instructions -=
                (block.instructions - ran.min(block.instructions)) as u64;
            for ((total, counted), ran) in self
                .ring0
                .extra_by_source
                .iter_mut()
                .zip(block.extra)
                .zip(extra_ran)
            {
                *total -= (counted - ran) as i64;
            }
        }
        self.current_block = CurrentBlock {
            instructions: ran,
            guest: guest_ran,
            extra: extra_ran,
            cycle_units: cycles_ran,
            guest_cycle_units: guest_cycles_ran,
            ..block
        };
        // Its closing branch did not run.
        self.pending_branch = 0;
    }
}
