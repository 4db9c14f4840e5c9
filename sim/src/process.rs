//! One simulated process: its kernel, its counts under a cost model, and how its run ended.
//! The machine calls in on each syscall and fault; nothing here touches Unicorn.

use std::rc::Rc;

use nix::sys::signal::Signal;

use crate::accounting::{BlockCounter, Clock, Counts};
use crate::costs::CostModel;
use crate::kernel::{Args, Exit, Kernel, Unsupported};
use crate::machine::faults;

/// Why the run stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    Exit(Exit),
    Unsupported(Unsupported),
    /// `--max-instructions` was reached.
    InstructionLimit,
}

/// The record of a finished run.
#[derive(Debug)]
pub struct Finished {
    pub stop: Stop,
    pub counts: Counts,
}

/// What the machine does after a syscall.
pub enum SyscallFlow {
    /// Return this value in RAX and go on.
    Return(u64),
    /// End the run; `Process::stop` says why.
    Stop,
}

pub struct Process {
    pub kernel: Kernel,
    pub model: CostModel,
    pub counts: Counts,
    pub clock: Rc<Clock>,
    pub blocks: BlockCounter,
    pub max_instructions: Option<u64>,
    /// The block now running: address, size, instructions counted for it.
    pub current_block: (u64, u32, u32),
    pub stop: Option<Stop>,
}

impl Process {
    pub fn new(kernel: Kernel, model: CostModel, max_instructions: Option<u64>) -> Self {
        let clock = Rc::new(Clock::new(model.cpi.value));
        Self {
            kernel,
            model,
            counts: Counts::default(),
            clock,
            blocks: BlockCounter::default(),
            max_instructions,
            current_block: (0, 0, 0),
            stop: None,
        }
    }

    /// Counts a block about to run; false when the instruction limit says stop.
    pub fn enter_block(&mut self, addr: u64, size: u32) -> bool {
        let n = self.blocks.count(addr, size, &self.kernel.mem);
        self.clock.add_instructions(n as u64);
        self.current_block = (addr, size, n);
        match self.max_instructions {
            Some(limit) if self.clock.instructions() >= limit && self.stop.is_none() => {
                self.stop = Some(Stop::InstructionLimit);
                false
            }
            _ => true,
        }
    }

    /// The counts as of now, with the instruction total from the clock.
    pub fn counts_now(&self) -> Counts {
        Counts {
            guest_instructions: self.clock.instructions(),
            bytes_copied: self.kernel.mem.bytes_copied(),
            ..self.counts.clone()
        }
    }

    /// The run's record; call once, after the machine stopped with `stop` set.
    pub fn finish(&mut self) -> Finished {
        Finished {
            stop: self.stop.take().expect("the run stopped for a reason"),
            counts: self.counts_now(),
        }
    }

    fn set_kernel_time(&mut self) {
        let cpu_ns = (self.model.seconds(self.clock.cycles()) * 1e9) as u64;
        self.kernel.cpu_ns = cpu_ns;
        self.kernel.elapsed_ns = cpu_ns + self.kernel.slept_ns;
    }

    pub fn syscall(&mut self, nr: u64, args: &Args, rip: u64) -> SyscallFlow {
        self.set_kernel_time();
        match self.kernel.dispatch(nr, args, rip) {
            Err(unsupported) => {
                self.stop = Some(Stop::Unsupported(unsupported));
                SyscallFlow::Stop
            }
            Ok(done) => {
                self.counts.record_syscall(nr, done.row, done.enosys);
                self.counts.bytes_copied = self.kernel.mem.bytes_copied();
                let cycles = self.model.ring3_cycles(&self.counts);
                self.clock
                    .set_event_cycles(cycles.crossings + cycles.kernel_work);
                match self.kernel.exit.take() {
                    Some(exit) => {
                        self.stop = Some(Stop::Exit(exit));
                        SyscallFlow::Stop
                    }
                    None => SyscallFlow::Return(done.ret),
                }
            }
        }
    }

    /// A CPU exception at ring 3: vector, RIP as Unicorn reports it, and CR2.
    pub fn fault(&mut self, vector: u32, rip: u64, cr2: u64) {
        let mut before = [0u8; 2];
        let software = self
            .kernel
            .mem
            .peek(rip.wrapping_sub(2), &mut before)
            .is_ok()
            && before == [0xcd, vector as u8];
        let breakpoint = vector == 3 && {
            let mut one = [0u8; 1];
            self.kernel.mem.peek(rip.wrapping_sub(1), &mut one).is_ok() && one == [0xcc]
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
        if software && vector == 0x80 {
            let what = "int 0x80 (the 32-bit system call entry)".to_string();
            self.stop = Some(Stop::Unsupported(Unsupported {
                what,
                rip: fault_rip,
            }));
            return;
        }
        let (signal, reason) = match faults::fault(vector) {
            _ if software && vector != 3 => (
                Signal::SIGSEGV,
                format!("int {vector:#x} (general protection fault: the gate is kernel-only)"),
            ),
            Some(row) if vector == 14 => (row.signal, self.page_fault_reason(cr2)),
            Some(row) => (row.signal, row.name.to_string()),
            None => (Signal::SIGSEGV, format!("CPU exception {vector}")),
        };
        self.kill(signal, reason, fault_rip);
    }

    /// An invalid instruction at `rip` (Unicorn ends the run for these).
    pub fn invalid_instruction(&mut self, rip: u64) {
        self.uncount_rest_of_block(rip);
        self.kill(Signal::SIGILL, "invalid opcode (#UD)".into(), rip);
    }

    fn page_fault_reason(&self, addr: u64) -> String {
        if addr >= crate::memory::USER_END {
            format!("page fault (#PF): access to kernel address {addr:#x}")
        } else if self.kernel.mem.vma_at(addr).is_some() {
            format!("page fault (#PF): access to {addr:#x} not allowed by its protection")
        } else {
            format!("page fault (#PF): access to unmapped address {addr:#x}")
        }
    }

    /// Ends the process with `signal`, unless the guest has a handler, which is not modelled.
    fn kill(&mut self, signal: Signal, reason: String, rip: u64) {
        let handler = self.kernel.signals.handler(signal as usize);
        self.stop = Some(if handler > 1 {
            let what = format!(
                "delivering {} ({reason}) to a guest handler",
                signal.as_str()
            );
            Stop::Unsupported(Unsupported { what, rip })
        } else {
            Stop::Exit(Exit::Signal {
                signal,
                reason: format!("{reason} at rip {rip:#x}"),
            })
        });
    }

    /// Takes back the instructions of the current block from `rip` on: they never ran.
    fn uncount_rest_of_block(&mut self, rip: u64) {
        let (block, size, counted) = self.current_block;
        if let Some(ran) = BlockCounter::executed_before(block, size, rip, &self.kernel.mem) {
            self.clock
                .remove_instructions((counted - ran.min(counted)) as u64);
            self.current_block.2 = ran;
        }
    }
}
